//! The activity (audit log) page: the owner sees everyone's entries and filters by
//! user, kind and day; anyone else sees only their own.

use askama::Template;
use axum::extract::State;
use axum::response::Response;
use jiff::civil::Date;
use serde::Deserialize;

use super::{blocking, frame_for};
use crate::auth::policy::{self, Action, Object};
use crate::index::{AuditKind, AuditQuery, UserId};
use crate::web::extract::{FullSession, Query};
use crate::web::view::{self, render, Frame};
use crate::web::{WebError, WebState};

pub struct AuditRow {
    pub when: String,
    pub kind: &'static str,
    pub actor: String,
    pub subject: String,
    pub address: String,
}

pub struct Choice {
    pub value: String,
    pub label: String,
    pub selected: bool,
}

#[derive(Template)]
#[template(path = "audit.html")]
struct AuditPage {
    frame: Frame,
    /// Empty unless the viewer may see everyone's entries.
    users: Vec<Choice>,
    kinds: Vec<Choice>,
    day: String,
    rows: Vec<AuditRow>,
    limit: usize,
}

#[derive(Deserialize, Default)]
pub struct AuditFilter {
    #[serde(default)]
    user: String,
    #[serde(default)]
    kind: String,
    #[serde(default)]
    day: String,
}

pub async fn audit_log(
    State(state): State<WebState>,
    session: FullSession,
    Query(filter): Query<AuditFilter>,
) -> Result<Response, WebError> {
    let me = session.0.user.id;
    session.require(Action::ViewAuditLog, Object::User(me))?;
    let sees_all = policy::allowed(&session.principal(), Action::ViewAuditLog, Object::System);
    let mut query = AuditQuery {
        limit: crate::audit::PAGE_LIMIT,
        ..Default::default()
    };
    query.user = if sees_all {
        match filter.user.trim() {
            "" => None,
            raw => Some(
                u64::from_str_radix(raw, 16)
                    .map(UserId)
                    .map_err(|_| WebError::BadRequest("unknown user filter".into()))?,
            ),
        }
    } else {
        Some(me)
    };
    query.kind = match filter.kind.trim() {
        "" => None,
        raw => Some(
            AuditKind::from_name(raw)
                .ok_or_else(|| WebError::BadRequest("unknown kind of entry".into()))?,
        ),
    };
    let day = filter.day.trim().to_owned();
    if !day.is_empty() {
        let date: Date = day
            .parse()
            .map_err(|_| WebError::BadRequest("the day is YYYY-MM-DD".into()))?;
        let (from, to) = view::day_bounds(date)
            .ok_or_else(|| WebError::BadRequest("day out of range".into()))?;
        query.from_micros = Some(from);
        query.to_micros = Some(to);
    }
    let (log, index, wanted) = (state.auth.audit().clone(), state.index.clone(), query.user);
    let (entries, users) = blocking(move || {
        let users = if sees_all {
            index.all_users()?
        } else {
            Vec::new()
        };
        Ok((log.list(query)?, users))
    })
    .await?;
    let rows = entries
        .into_iter()
        .map(|e| AuditRow {
            when: view::date_time_seconds(e.time_micros),
            kind: e.kind.name(),
            actor: e.actor,
            subject: e.subject,
            address: e.address.unwrap_or_default(),
        })
        .collect();
    let mut user_choices = Vec::new();
    if sees_all {
        user_choices.push(Choice {
            value: String::new(),
            label: "everyone".into(),
            selected: wanted.is_none(),
        });
        for u in users {
            user_choices.push(Choice {
                value: u.id.to_string(),
                label: u.username,
                selected: wanted == Some(u.id),
            });
        }
    }
    let mut kinds = vec![Choice {
        value: String::new(),
        label: "all kinds".into(),
        selected: filter.kind.trim().is_empty(),
    }];
    kinds.extend(AuditKind::ALL.into_iter().map(|k| Choice {
        value: k.name().into(),
        label: k.name().replace('_', " "),
        selected: filter.kind.trim() == k.name(),
    }));
    render(&AuditPage {
        frame: frame_for(&state, &session.0).await?,
        users: user_choices,
        kinds,
        day,
        rows,
        limit: crate::audit::PAGE_LIMIT,
    })
}
