//! The key directory as one open handle: checked once, then used only through it.
//!
//! `key_dir` holds `master.key`, the end-to-end tags marker and, while a rotation is
//! unfinished, `master.key.rotating` (see `crypto` and `rotate`). Its checks (not
//! group- or world-writable, owned by this process's user or root) are what make the
//! key file in it trustworthy: whoever can write the directory can rename a key of
//! their own over `master.key`. Checking the path and then opening
//! `<key_dir>/master.key` are two lookups of `key_dir`, and between them the
//! directory (or any component above it) could be renamed away and replaced by one
//! that was never checked.
//!
//! So [`KeyDir::open`] looks the path up once (`O_PATH | O_DIRECTORY | O_CLOEXEC`),
//! checks the directory with `fstat` on that descriptor, and every later open,
//! stat, link, rename, unlink and fsync is relative to the descriptor (`openat`,
//! `statat`, `linkat`, `renameat`, `unlinkat`): they act on the directory that was
//! checked, whatever the path names by then. Names inside it are never followed
//! (`O_NOFOLLOW`, `AT_SYMLINK_NOFOLLOW`; exclusive creation never follows anyway).
//! `O_PATH` needs only search permission on the directory, as the path lookups it
//! replaces did; an fsync reopens `.` through the descriptor for reading, as the
//! old `open(key_dir)` needed read permission.
//!
//! `key_dir` itself may still be a symbolic link to the real directory, as it
//! always could (`O_NOFOLLOW` is not used on it): the checks describe the directory
//! the descriptor holds, not the link, and whoever could put a link there could as
//! well rename a real directory into its place, which the checks treat the same way.
//!
//! Holding a `KeyDir` keeps a descriptor open: on another disk, that disk cannot be
//! unmounted meanwhile. `Store` therefore keeps one only until the marker is
//! written (see `Store::tag_untagged_e2e_files`).
//!
//! May call: the filesystem, inside the key directory only.

use std::fs::File;
use std::io;
use std::os::fd::OwnedFd;
use std::path::{Path, PathBuf};

use rustix::fs::{AtFlags, FileType, Mode, OFlags, Stat};

use super::crypto::{check_key_owner, fill_key_file, MASTER_KEY_FILE};
use super::error::StoreError;

/// The key directory, opened and checked (see the module doc).
pub(crate) struct KeyDir {
    fd: OwnedFd,
    /// The path it was opened by: for messages only, never looked up again.
    path: PathBuf,
}

impl KeyDir {
    /// Opens `path` and checks it: a directory that group and others cannot write,
    /// owned by this process's user or root (see [`check_key_owner`]). A missing
    /// directory is [`StoreError::MasterKeyMissing`] for the key file in it, as a
    /// missing key file is: that error says more than "no such directory".
    pub(crate) fn open(path: &Path) -> Result<KeyDir, StoreError> {
        let flags = OFlags::PATH | OFlags::DIRECTORY | OFlags::CLOEXEC;
        let fd = match rustix::fs::open(path, flags, Mode::empty()) {
            Ok(fd) => fd,
            Err(rustix::io::Errno::NOENT) => {
                return Err(StoreError::MasterKeyMissing {
                    path: path.join(MASTER_KEY_FILE),
                })
            }
            Err(e) => return Err(StoreError::io("open key directory", path, e.into())),
        };
        let stat = rustix::fs::fstat(&fd)
            .map_err(|e| StoreError::io("stat key directory", path, e.into()))?;
        check(path, &stat)?;
        #[cfg(test)]
        tests::after_check(path);
        Ok(KeyDir {
            fd,
            path: path.to_owned(),
        })
    }

    /// The path the directory was opened by (for messages).
    pub(crate) fn path(&self) -> &Path {
        &self.path
    }

    /// The path of `name` in the directory (for messages).
    pub(crate) fn join(&self, name: &str) -> PathBuf {
        self.path.join(name)
    }

    /// Opens the existing `name` for reading, not through a symbolic link (`ELOOP`).
    pub(crate) fn open_read(&self, name: &str) -> io::Result<File> {
        self.open_file(name, OFlags::RDONLY)
    }

    /// Creates and opens `name` for writing, mode 0600; fails if it exists.
    pub(crate) fn create_new(&self, name: &str) -> io::Result<File> {
        self.open_file(name, OFlags::WRONLY | OFlags::CREATE | OFlags::EXCL)
    }

    /// Opens `name` for writing, created with mode 0600 or truncated, not through a
    /// symbolic link.
    pub(crate) fn create_or_truncate(&self, name: &str) -> io::Result<File> {
        self.open_file(name, OFlags::WRONLY | OFlags::CREATE | OFlags::TRUNC)
    }

    fn open_file(&self, name: &str, flags: OFlags) -> io::Result<File> {
        let flags = flags | OFlags::NOFOLLOW | OFlags::CLOEXEC;
        let fd = rustix::fs::openat(&self.fd, name, flags, Mode::from_raw_mode(0o600))?;
        Ok(File::from(fd))
    }

    /// Writes a new secret file `name`: exclusive create, mode 0600, fsynced (as
    /// `crypto::write_new_key_file` does by path). The caller links or renames it
    /// into place; the open file is returned for its metadata.
    pub(crate) fn write_new(&self, name: &str, bytes: &[u8]) -> Result<File, StoreError> {
        let path = self.join(name);
        let file = self
            .create_new(name)
            .map_err(|e| StoreError::io("create key file", &path, e))?;
        fill_key_file(file, &path, bytes)
    }

    /// Whether `name` exists (a symbolic link counts, it is not followed).
    pub(crate) fn exists(&self, name: &str) -> io::Result<bool> {
        match self.stat(name) {
            Ok(_) => Ok(true),
            Err(e) if e.kind() == io::ErrorKind::NotFound => Ok(false),
            Err(e) => Err(e),
        }
    }

    /// `name`'s metadata, not through a symbolic link.
    pub(crate) fn stat(&self, name: &str) -> io::Result<Stat> {
        Ok(rustix::fs::statat(
            &self.fd,
            name,
            AtFlags::SYMLINK_NOFOLLOW,
        )?)
    }

    /// Renames `from` to `to` inside the directory, replacing `to`.
    pub(crate) fn rename(&self, from: &str, to: &str) -> io::Result<()> {
        Ok(rustix::fs::renameat(&self.fd, from, &self.fd, to)?)
    }

    /// Links `to` to the file `from`; fails with `AlreadyExists` rather than replace.
    pub(crate) fn link(&self, from: &str, to: &str) -> io::Result<()> {
        Ok(rustix::fs::linkat(
            &self.fd,
            from,
            &self.fd,
            to,
            AtFlags::empty(),
        )?)
    }

    /// Removes the file `name`.
    pub(crate) fn remove(&self, name: &str) -> io::Result<()> {
        Ok(rustix::fs::unlinkat(&self.fd, name, AtFlags::empty())?)
    }

    /// Fsyncs the directory, so names just created, linked or renamed survive a
    /// power cut. `.` is reopened through the descriptor, never by path.
    pub(crate) fn sync(&self) -> Result<(), StoreError> {
        let flags = OFlags::RDONLY | OFlags::DIRECTORY | OFlags::CLOEXEC;
        rustix::fs::openat(&self.fd, ".", flags, Mode::empty())
            .and_then(rustix::fs::fsync)
            .map_err(|e| StoreError::io("fsync directory", &self.path, e.into()))
    }
}

/// Refuses a key directory that group or others can write to, or that belongs to
/// someone else (see [`check_key_owner`]); `stat` is the directory's own, from its
/// descriptor.
fn check(path: &Path, stat: &Stat) -> Result<(), StoreError> {
    debug_assert_eq!(
        FileType::from_raw_mode(stat.st_mode),
        FileType::Directory,
        "opened with O_DIRECTORY"
    );
    let mode = stat.st_mode & 0o7777;
    if mode & 0o022 != 0 {
        return Err(StoreError::KeyPathUnsafe {
            path: path.to_owned(),
            problem: format!(
                "the key directory has mode {:03o}: others can replace the master key in it",
                mode & 0o777
            ),
            fix: format!("chmod 700 {}", path.display()),
        });
    }
    let euid = rustix::process::geteuid().as_raw();
    check_key_owner(path, stat.st_uid, euid)
}

#[cfg(test)]
#[path = "key_dir_tests.rs"]
pub(super) mod tests;
