//! `/api/v1/notifications`: your in-app notices and their unread count (the bell);
//! new ones arrive live as `notification` events on `/api/v1/events`.
//! `/api/v1/me/notification-preferences`: which kinds of notice you get in the app and by mail.
use axum::Router;
use axum::extract::State;
use axum::routing::{get, post};
use kernel::paging::Page;
use serde::Serialize;
use workflow::notifications::{self, Notification, Preference, PreferencesInput};

use super::ListParams;
use crate::error::ApiResult;
use crate::extract::{Json, PathId, Query};
use crate::state::{AppState, Credentials};

pub fn router() -> Router<AppState> {
    Router::new()
        .route("/api/v1/notifications", get(list))
        .route("/api/v1/notifications/unread", get(unread))
        .route("/api/v1/notifications/read", post(read_all))
        .route("/api/v1/notifications/{id}/read", post(read_one))
        .route("/api/v1/me/notification-preferences", get(preferences).put(set_preferences))
}

/// Your choice per kind of notice.
#[derive(Debug, Serialize, utoipa::ToSchema)]
pub struct Preferences {
    pub items: Vec<Preference>,
}

/// Which kinds of notice you get in the app and by e-mail: every kind, both unless you
/// switched one off.
#[utoipa::path(get, path = "/api/v1/me/notification-preferences", tag = "workflow",
    responses((status = 200, body = Preferences)))]
pub async fn preferences(State(state): State<AppState>, creds: Credentials) -> ApiResult<axum::Json<Preferences>> {
    let registry = state.config.workflow.clone();
    let items = state.read(creds, move |tx, who| notifications::preferences(tx, who, &registry)).await?;
    Ok(axum::Json(Preferences { items }))
}

/// Sets your choice for the kinds listed (others stay as they are). An unknown kind, or
/// one listed twice, is a 422 naming `items[i].kind`, and nothing is saved.
#[utoipa::path(put, path = "/api/v1/me/notification-preferences", tag = "workflow", request_body = PreferencesInput,
    responses((status = 200, body = Preferences)))]
pub async fn set_preferences(
    State(state): State<AppState>,
    creds: Credentials,
    Json(input): Json<PreferencesInput>,
) -> ApiResult<axum::Json<Preferences>> {
    let registry = state.config.workflow.clone();
    let items = state.write(creds, move |tx, who| notifications::set_preferences(tx, who, &registry, input)).await?;
    Ok(axum::Json(Preferences { items }))
}

#[derive(Debug, Serialize, utoipa::ToSchema)]
pub struct Unread {
    pub unread: i64,
}

/// Your notifications, newest first.
#[utoipa::path(get, path = "/api/v1/notifications", tag = "workflow", params(ListParams),
    responses((status = 200, body = Page<Notification>)))]
pub async fn list(
    State(state): State<AppState>,
    creds: Credentials,
    Query(p): Query<ListParams>,
) -> ApiResult<axum::Json<Page<Notification>>> {
    let page = p.page()?;
    Ok(axum::Json(state.read(creds, move |tx, who| notifications::list(tx, who, &page)).await?))
}

#[utoipa::path(get, path = "/api/v1/notifications/unread", tag = "workflow", responses((status = 200, body = Unread)))]
pub async fn unread(State(state): State<AppState>, creds: Credentials) -> ApiResult<axum::Json<Unread>> {
    let unread = state.read(creds, notifications::unread).await?;
    Ok(axum::Json(Unread { unread }))
}

/// Marks all your notifications read.
#[utoipa::path(post, path = "/api/v1/notifications/read", tag = "workflow", responses((status = 200, body = Unread)))]
pub async fn read_all(State(state): State<AppState>, creds: Credentials) -> ApiResult<axum::Json<Unread>> {
    let unread = state.write(creds, |tx, who| notifications::mark_read(tx, who, None)).await?;
    Ok(axum::Json(Unread { unread }))
}

/// Marks one of your notifications read.
#[utoipa::path(post, path = "/api/v1/notifications/{id}/read", tag = "workflow", params(("id" = String, Path)),
    responses((status = 200, body = Unread)))]
pub async fn read_one(
    State(state): State<AppState>,
    creds: Credentials,
    PathId(id): PathId,
) -> ApiResult<axum::Json<Unread>> {
    let unread = state.write(creds, move |tx, who| notifications::mark_read(tx, who, Some(id))).await?;
    Ok(axum::Json(Unread { unread }))
}
