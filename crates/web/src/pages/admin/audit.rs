//! The audit log: newest first, filtered by record type and action, cursor paging.
use askama::Template;
use axum::Router;
use axum::extract::{Query, State};
use axum::routing::get;
use kernel::audit;
use kernel::paging::PageRequest;
use serde::Deserialize;

use super::{AUDIT_ACTIONS, AuditRow, Opt, RECORD_TYPES, action_label, audit_rows, record_type_label};
use crate::pages::{Ctx, PageError, PageResult, enc, load, non_empty, render};
use crate::state::{AppState, Credentials};

pub fn router() -> Router<AppState> {
    Router::new().route("/audit", get(list))
}

#[derive(Deserialize, Default)]
pub struct AuditQuery {
    record_type: Option<String>,
    action: Option<String>,
    cursor: Option<String>,
}

#[derive(Template)]
#[template(path = "audit/list.html")]
struct ListPage {
    ctx: Ctx,
    record_types: Vec<Opt>,
    actions: Vec<Opt>,
    rows: Vec<AuditRow>,
    next: Option<String>,
}

async fn list(State(state): State<AppState>, creds: Credentials, Query(q): Query<AuditQuery>) -> PageResult {
    let page = PageRequest::parse(None, q.cursor.as_deref().filter(|c| !c.is_empty())).map_err(PageError::from)?;
    let record_type = q.record_type.clone().unwrap_or_default();
    let action = q.action.clone().unwrap_or_default();
    let filter =
        audit::AuditFilter { record_type: non_empty(q.record_type), action: non_empty(q.action), ..Default::default() };
    let (ctx, found) = load(&state, creds, "/audit", move |tx, who| audit::list(tx, who, &filter, &page)).await?;
    let rows = audit_rows(&ctx, &found.items);
    let next = found
        .next_cursor
        .map(|c| format!("/audit?record_type={}&action={}&cursor={}", enc(&record_type), enc(&action), enc(&c)));
    let record_types =
        RECORD_TYPES.iter().map(|t| Opt::new(*t, record_type_label(&ctx, t), *t == record_type)).collect();
    let actions = AUDIT_ACTIONS.iter().map(|a| Opt::new(*a, action_label(&ctx, a), *a == action)).collect();
    Ok(render(&ListPage { ctx, record_types, actions, rows, next }))
}
