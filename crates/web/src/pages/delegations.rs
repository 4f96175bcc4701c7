//! "Delegation": an approver names a colleague to decide in their place for a period,
//! sees and revokes (after a confirmation) the delegations they gave, and sees whom they
//! currently stand in for.
use askama::Template;
use axum::extract::State;
use axum::routing::get;
use axum::{Form, Router};
use chrono::{DateTime, NaiveDateTime, TimeZone, Utc};
use kernel::Id;
use kernel::identity::users;
use serde::Deserialize;
use workflow::delegations::{self, NewDelegation};

use super::admin::Opt;
use crate::error::ApiError;
use crate::extract::PathId;
use crate::pages::{
    ConfirmPage, CsrfForm, Ctx, FormErrors, PageResult, WithErrors, act, load, opt_id, refused, render,
};
use crate::state::{AppState, Credentials};

pub fn router() -> Router<AppState> {
    Router::new()
        .route("/delegations", get(show).post(create))
        .route("/delegations/{id}/revoke", get(confirm_revoke).post(revoke))
}

pub struct Row {
    pub id: String,
    pub person: String,
    pub starts: String,
    pub ends: String,
    /// `running`, `scheduled`, `ended` or `revoked`.
    pub status: String,
    pub can_revoke: bool,
}

#[derive(Template)]
#[template(path = "delegations/page.html")]
struct DelegationsPage {
    ctx: Ctx,
    given: Vec<Row>,
    received: Vec<Row>,
    people: Vec<Opt>,
    starts_at: String,
    ends_at: String,
    errors: FormErrors,
}

impl WithErrors for DelegationsPage {
    fn ctx(&self) -> &Ctx {
        &self.ctx
    }

    fn errors(&mut self) -> &mut FormErrors {
        &mut self.errors
    }
}

#[derive(Deserialize)]
pub struct DelegationForm {
    csrf_token: Option<String>,
    delegate_id: Option<String>,
    starts_at: Option<String>,
    ends_at: Option<String>,
}

async fn page(
    state: &AppState,
    creds: Credentials,
    picked: Option<Id>,
) -> Result<DelegationsPage, crate::pages::PageError> {
    let now = Utc::now();
    let (ctx, (list, people, names)) = load(state, creds, "/delegations", move |tx, who| {
        let list = delegations::list(tx, who)?;
        let people = if who.can("workflow.approvals.decide") { delegations::colleagues(tx, who)? } else { Vec::new() };
        let mut names = std::collections::BTreeMap::new();
        for d in &list {
            for id in [d.user_id, d.delegate_id] {
                if let std::collections::btree_map::Entry::Vacant(e) = names.entry(id) {
                    e.insert(users::find(tx, id)?.map_or_else(|| id.to_string(), |u| u.name));
                }
            }
        }
        Ok((list, people, names))
    })
    .await?;
    let me = ctx.user.as_ref().map(|u| u.user_id);
    let row = |d: &delegations::Delegation, person: Id| {
        let status = if d.revoked_at.is_some() {
            "revoked"
        } else if d.ends_at <= now {
            "ended"
        } else if d.starts_at > now {
            "scheduled"
        } else {
            "running"
        };
        Row {
            id: d.id.to_string(),
            person: names.get(&person).cloned().unwrap_or_default(),
            starts: ctx.datetime(&d.starts_at),
            ends: ctx.datetime(&d.ends_at),
            status: ctx.t(&format!("delegations-status-{status}")),
            can_revoke: matches!(status, "running" | "scheduled"),
        }
    };
    let given = list.iter().filter(|d| Some(d.user_id) == me).map(|d| row(d, d.delegate_id)).collect();
    let received = list
        .iter()
        .filter(|d| Some(d.delegate_id) == me && d.revoked_at.is_none() && d.ends_at > now)
        .map(|d| Row { can_revoke: false, ..row(d, d.user_id) })
        .collect();
    let people = people
        .iter()
        .map(|p| Opt::new(p.id.to_string(), format!("{} <{}>", p.name, p.email), Some(p.id) == picked))
        .collect();
    Ok(DelegationsPage {
        ctx,
        given,
        received,
        people,
        starts_at: String::new(),
        ends_at: String::new(),
        errors: FormErrors::default(),
    })
}

async fn show(State(state): State<AppState>, creds: Credentials) -> PageResult {
    Ok(render(&page(&state, creds, None).await?))
}

/// A `datetime-local` value in the user's time zone → UTC.
fn local(text: &str, tz: &str) -> Option<DateTime<Utc>> {
    let naive = NaiveDateTime::parse_from_str(text.trim(), "%Y-%m-%dT%H:%M").ok()?;
    let tz: chrono_tz::Tz = tz.parse().unwrap_or(chrono_tz::UTC);
    tz.from_local_datetime(&naive).earliest().map(|t| t.with_timezone(&Utc))
}

async fn create(State(state): State<AppState>, creds: Credentials, Form(form): Form<DelegationForm>) -> PageResult {
    let creds = creds.with_csrf(form.csrf_token.clone());
    let picked = opt_id(&form.delegate_id);
    let mut shown = page(&state, creds.clone(), picked).await?;
    shown.starts_at = form.starts_at.clone().unwrap_or_default();
    shown.ends_at = form.ends_at.clone().unwrap_or_default();
    let tz = shown.ctx.time_zone().to_owned();
    let mut bad = Vec::new();
    let parse = |text: &Option<String>, field: &str, bad: &mut Vec<kernel::FieldError>| match text.as_deref() {
        None | Some("") => None,
        Some(t) => {
            let at = local(t, &tz);
            if at.is_none() {
                bad.push(kernel::FieldError::new(field, "is not a date and time"));
            }
            at
        }
    };
    let starts_at = parse(&form.starts_at, "starts_at", &mut bad);
    let ends_at = parse(&form.ends_at, "ends_at", &mut bad);
    if !bad.is_empty() {
        return refused(shown, ApiError::from(kernel::Error::Validation(bad)));
    }
    let input = NewDelegation { delegate_id: picked, starts_at, ends_at };
    let now = Utc::now();
    match state.write(creds, move |tx, who| delegations::create(tx, who, input, now)).await {
        Ok(_) => Ok(crate::pages::see_other("/delegations")),
        Err(e) => refused(shown, e),
    }
}

async fn confirm_revoke(State(state): State<AppState>, creds: Credentials, PathId(id): PathId) -> PageResult {
    let (ctx, ()) = load(&state, creds, "/delegations", |_, who| who.require("workflow.approvals.decide")).await?;
    Ok(render(&ConfirmPage {
        title: ctx.t("delegations-revoke"),
        question: ctx.t("delegations-revoke-question"),
        action: format!("/delegations/{id}/revoke"),
        button: ctx.t("delegations-revoke"),
        cancel: "/delegations".into(),
        error: None,
        ctx,
    }))
}

async fn revoke(
    State(state): State<AppState>,
    creds: Credentials,
    PathId(id): PathId,
    Form(form): Form<CsrfForm>,
) -> PageResult {
    let now = Utc::now();
    act(&state, creds, form, "/delegations", move |tx, who| delegations::revoke(tx, who, id, now)).await
}
