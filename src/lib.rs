//! Porchlight: a self-hosted, privacy-first home NVR.
//!
//! Data flows camera → ingest → recorder → store (fMP4 inside sealed chunks) → index;
//! `check` and `export` read it back. Lower layers never import higher ones: `store`
//! knows nothing of cameras' sockets, `index` nothing of files.

pub mod archive;
pub mod audit;
pub mod auth;
pub mod camera;
pub mod check;
pub mod clock;
pub mod config;
pub mod daemon;
pub mod data_rights;
pub mod deletion;
pub mod discovery;
pub mod e2e;
pub mod error_chain;
pub mod export;
pub mod index;
pub mod logging;
pub mod mail;
pub mod model;
pub mod motion;
pub mod notifications;
pub mod notify;
pub mod recorder;
pub mod retention;
pub mod rotate;
pub mod share;
pub mod store;
#[cfg(test)]
mod testutil;
pub mod unlocked;
pub mod web;
