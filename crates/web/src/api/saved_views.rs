//! `/api/v1/saved-views`: named list queries of accounts or contacts, private or shared.
use axum::Router;
use axum::extract::State;
use axum::http::StatusCode;
use axum::response::Response;
use axum::routing::get;
use customers::views::{self, NewSavedView, SavedView, SavedViewPatch};
use kernel::paging::Page;
use serde::Deserialize;

use super::{ListParams, versioned};
use crate::error::ApiResult;
use crate::extract::{IfMatch, Json, PathId, Query};
use crate::state::{AppState, Credentials};

pub fn router() -> Router<AppState> {
    Router::new()
        .route("/api/v1/saved-views", get(list).post(create))
        .route("/api/v1/saved-views/{id}", get(read).patch(update).delete(remove))
}

#[derive(Debug, Deserialize, utoipa::IntoParams)]
#[serde(deny_unknown_fields)]
#[into_params(parameter_in = Query)]
pub struct SavedViewListParams {
    /// At most 500; default 50.
    #[param(minimum = 1, maximum = 500)]
    pub limit: Option<u32>,
    pub cursor: Option<String>,
    /// `account` or `contact`.
    pub record_type: Option<String>,
}

/// Your own views and the shared ones, of the records you can read.
#[utoipa::path(get, path = "/api/v1/saved-views", tag = "customers", params(SavedViewListParams),
    responses((status = 200, body = Page<SavedView>)))]
pub async fn list(
    State(state): State<AppState>,
    creds: Credentials,
    Query(p): Query<SavedViewListParams>,
) -> ApiResult<axum::Json<Page<SavedView>>> {
    let page = ListParams { limit: p.limit, cursor: p.cursor }.page()?;
    let record_type = p.record_type;
    Ok(axum::Json(state.read(creds, move |tx, who| views::list(tx, who, record_type.as_deref(), &page)).await?))
}

/// Saves a view; its `query` is checked like the list's query string.
#[utoipa::path(post, path = "/api/v1/saved-views", tag = "customers", request_body = NewSavedView,
    responses((status = 201, body = SavedView)))]
pub async fn create(
    State(state): State<AppState>,
    creds: Credentials,
    Json(input): Json<NewSavedView>,
) -> ApiResult<Response> {
    let view = state.write(creds, move |tx, who| views::create(tx, who, input)).await?;
    Ok(versioned(StatusCode::CREATED, view.version, Some(format!("/api/v1/saved-views/{}", view.id)), &view))
}

#[utoipa::path(get, path = "/api/v1/saved-views/{id}", tag = "customers", params(("id" = String, Path)),
    responses((status = 200, body = SavedView)))]
pub async fn read(State(state): State<AppState>, creds: Credentials, PathId(id): PathId) -> ApiResult<Response> {
    let view = state.read(creds, move |tx, who| views::get(tx, who, id)).await?;
    Ok(versioned(StatusCode::OK, view.version, None, &view))
}

/// Renames, re-queries or (un)shares one of your views.
#[utoipa::path(patch, path = "/api/v1/saved-views/{id}", tag = "customers", params(("id" = String, Path), ("If-Match" = Option<String>, Header, description = "The version you read, e.g. \"3\"", pattern = r#"^(W/)?"[0-9]+"$"#)),
    request_body = SavedViewPatch, responses((status = 200, body = SavedView)))]
pub async fn update(
    State(state): State<AppState>,
    creds: Credentials,
    PathId(id): PathId,
    IfMatch(version): IfMatch,
    Json(mut patch): Json<SavedViewPatch>,
) -> ApiResult<Response> {
    patch.version = version.or(patch.version);
    let view = state.write(creds, move |tx, who| views::update(tx, who, id, patch)).await?;
    Ok(versioned(StatusCode::OK, view.version, None, &view))
}

#[utoipa::path(delete, path = "/api/v1/saved-views/{id}", tag = "customers", params(("id" = String, Path)),
    responses((status = 204)))]
pub async fn remove(State(state): State<AppState>, creds: Credentials, PathId(id): PathId) -> ApiResult<StatusCode> {
    state.write(creds, move |tx, who| views::delete(tx, who, id)).await?;
    Ok(StatusCode::NO_CONTENT)
}
