//! `/api/v1/activities`: calls, visits, meetings, e-mails and notes; and an account's
//! timeline of them, by anyone.
use axum::Router;
use axum::extract::State;
use axum::http::StatusCode;
use axum::response::Response;
use axum::routing::get;
use customers::activities::{self, Activity, ActivityFilter, ActivityPatch, NewActivity};
use kernel::Id;
use kernel::paging::Page;
use serde::Deserialize;

use super::{ListParams, versioned};
use crate::error::ApiResult;
use crate::extract::{IfMatch, Json, PathId, Query};
use crate::state::{AppState, Credentials};

pub fn router() -> Router<AppState> {
    Router::new()
        .route("/api/v1/activities", get(list).post(create))
        .route("/api/v1/activities/{id}", get(read).patch(update).delete(remove))
        .route("/api/v1/activities/{id}/restore", axum::routing::post(restore))
        .route("/api/v1/accounts/{id}/timeline", get(timeline))
        .route("/api/v1/contacts/{id}/timeline", get(contact_timeline))
}

#[derive(Debug, Deserialize, utoipa::IntoParams)]
#[serde(deny_unknown_fields)]
#[into_params(parameter_in = Query)]
pub struct ActivityListParams {
    /// At most 500; default 50.
    #[param(minimum = 1, maximum = 500)]
    pub limit: Option<u32>,
    pub cursor: Option<String>,
    pub account_id: Option<Id>,
    pub contact_id: Option<Id>,
    /// `call`, `visit`, `meeting`, `email` or `note`.
    pub kind: Option<String>,
    pub owner_id: Option<Id>,
}

/// Activities within your data scope, newest first.
#[utoipa::path(get, path = "/api/v1/activities", tag = "customers", params(ActivityListParams),
    responses((status = 200, body = Page<Activity>)))]
pub async fn list(
    State(state): State<AppState>,
    creds: Credentials,
    Query(p): Query<ActivityListParams>,
) -> ApiResult<axum::Json<Page<Activity>>> {
    let page = ListParams { limit: p.limit, cursor: p.cursor }.page()?;
    let filter =
        ActivityFilter { account_id: p.account_id, contact_id: p.contact_id, kind: p.kind, owner_id: p.owner_id };
    Ok(axum::Json(state.read(creds, move |tx, who| activities::list(tx, who, &filter, &page)).await?))
}

/// Logs an activity on an account or a contact (a contact's account is filled in).
#[utoipa::path(post, path = "/api/v1/activities", tag = "customers", request_body = NewActivity,
    responses((status = 201, body = Activity)))]
pub async fn create(
    State(state): State<AppState>,
    creds: Credentials,
    Json(input): Json<NewActivity>,
) -> ApiResult<Response> {
    let activity = state.write(creds, move |tx, who| activities::create(tx, who, input)).await?;
    Ok(versioned(StatusCode::CREATED, activity.version, Some(format!("/api/v1/activities/{}", activity.id)), &activity))
}

#[utoipa::path(get, path = "/api/v1/activities/{id}", tag = "customers", params(("id" = String, Path)),
    responses((status = 200, body = Activity)))]
pub async fn read(State(state): State<AppState>, creds: Credentials, PathId(id): PathId) -> ApiResult<Response> {
    let activity = state.read(creds, move |tx, who| activities::get(tx, who, id)).await?;
    Ok(versioned(StatusCode::OK, activity.version, None, &activity))
}

#[utoipa::path(patch, path = "/api/v1/activities/{id}", tag = "customers", params(("id" = String, Path), ("If-Match" = Option<String>, Header, description = "The version you read, e.g. \"3\"", pattern = r#"^(W/)?"[0-9]+"$"#)),
    request_body = ActivityPatch, responses((status = 200, body = Activity)))]
pub async fn update(
    State(state): State<AppState>,
    creds: Credentials,
    PathId(id): PathId,
    IfMatch(version): IfMatch,
    Json(mut patch): Json<ActivityPatch>,
) -> ApiResult<Response> {
    patch.version = version.or(patch.version);
    let activity = state.write(creds, move |tx, who| activities::update(tx, who, id, patch)).await?;
    Ok(versioned(StatusCode::OK, activity.version, None, &activity))
}

#[utoipa::path(delete, path = "/api/v1/activities/{id}", tag = "customers", params(("id" = String, Path)),
    responses((status = 204)))]
pub async fn remove(State(state): State<AppState>, creds: Credentials, PathId(id): PathId) -> ApiResult<StatusCode> {
    state.write(creds, move |tx, who| activities::delete(tx, who, id)).await?;
    Ok(StatusCode::NO_CONTENT)
}

/// Brings back a deleted activity.
#[utoipa::path(post, path = "/api/v1/activities/{id}/restore", tag = "customers", params(("id" = String, Path)),
    responses((status = 200, body = Activity)))]
pub async fn restore(State(state): State<AppState>, creds: Credentials, PathId(id): PathId) -> ApiResult<Response> {
    let activity = state.write(creds, move |tx, who| activities::restore(tx, who, id)).await?;
    Ok(versioned(StatusCode::OK, activity.version, None, &activity))
}

/// Every activity on the account and its contacts, by anyone, newest first (by
/// `occurred_at`); for whoever can read the account.
#[utoipa::path(get, path = "/api/v1/accounts/{id}/timeline", tag = "customers", params(("id" = String, Path), ListParams),
    responses((status = 200, body = Page<Activity>)))]
pub async fn timeline(
    State(state): State<AppState>,
    creds: Credentials,
    PathId(id): PathId,
    Query(p): Query<ListParams>,
) -> ApiResult<axum::Json<Page<Activity>>> {
    let page = p.page()?;
    Ok(axum::Json(state.read(creds, move |tx, who| activities::timeline(tx, who, id, &page)).await?))
}

/// Every activity on the contact, by anyone, newest first (by `occurred_at`); for whoever
/// can read the contact.
#[utoipa::path(get, path = "/api/v1/contacts/{id}/timeline", tag = "customers", params(("id" = String, Path), ListParams),
    responses((status = 200, body = Page<Activity>)))]
pub async fn contact_timeline(
    State(state): State<AppState>,
    creds: Credentials,
    PathId(id): PathId,
    Query(p): Query<ListParams>,
) -> ApiResult<axum::Json<Page<Activity>>> {
    let page = p.page()?;
    Ok(axum::Json(state.read(creds, move |tx, who| activities::contact_timeline(tx, who, id, &page)).await?))
}
