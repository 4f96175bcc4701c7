use axum::Router;
use axum::extract::State;
use axum::http::StatusCode;
use axum::response::Response;
use axum::routing::{get, post};
use kernel::Id;
use kernel::identity::branches;
use kernel::paging::Page;
use serde::Deserialize;

use super::{ListParams, versioned};
use crate::error::ApiResult;
use crate::extract::{IfMatch, Json, PathId, Query};
use crate::state::{AppState, Credentials};

pub fn router() -> Router<AppState> {
    Router::new()
        .route("/api/v1/branches", get(list).post(create))
        .route("/api/v1/branches/{id}", get(read).patch(update).delete(remove))
        .route("/api/v1/branches/{id}/restore", post(restore))
}

#[derive(Debug, Deserialize, utoipa::IntoParams)]
#[serde(deny_unknown_fields)]
#[into_params(parameter_in = Query)]
pub struct BranchListParams {
    /// At most 500; default 50.
    #[param(minimum = 1, maximum = 500)]
    pub limit: Option<u32>,
    pub cursor: Option<String>,
    /// Only the direct children of this branch.
    pub parent_id: Option<Id>,
}

#[utoipa::path(get, path = "/api/v1/branches", tag = "branches", params(BranchListParams),
    responses((status = 200, body = Page<branches::Branch>), (status = 401, body = crate::error::Problem), (status = 403, body = crate::error::Problem), (status = 422, body = crate::error::Problem)))]
pub async fn list(
    State(state): State<AppState>,
    creds: Credentials,
    Query(p): Query<BranchListParams>,
) -> ApiResult<axum::Json<Page<branches::Branch>>> {
    let page = ListParams { limit: p.limit, cursor: p.cursor }.page()?;
    Ok(axum::Json(state.read(creds, move |tx, who| branches::list(tx, who, p.parent_id, &page)).await?))
}

#[utoipa::path(post, path = "/api/v1/branches", tag = "branches", request_body = branches::NewBranch,
    responses((status = 201, body = branches::Branch), (status = 401, body = crate::error::Problem), (status = 403, body = crate::error::Problem), (status = 409, body = crate::error::Problem), (status = 422, body = crate::error::Problem)))]
pub async fn create(
    State(state): State<AppState>,
    creds: Credentials,
    Json(input): Json<branches::NewBranch>,
) -> ApiResult<Response> {
    let branch = state.write(creds, move |tx, who| branches::create(tx, who, input)).await?;
    Ok(versioned(StatusCode::CREATED, branch.version, Some(format!("/api/v1/branches/{}", branch.id)), &branch))
}

#[utoipa::path(get, path = "/api/v1/branches/{id}", tag = "branches", params(("id" = String, Path)),
    responses((status = 200, body = branches::Branch), (status = 401, body = crate::error::Problem), (status = 403, body = crate::error::Problem), (status = 404, body = crate::error::Problem)))]
pub async fn read(State(state): State<AppState>, creds: Credentials, PathId(id): PathId) -> ApiResult<Response> {
    let branch = state.read(creds, move |tx, who| branches::get(tx, who, id)).await?;
    Ok(versioned(StatusCode::OK, branch.version, None, &branch))
}

#[utoipa::path(patch, path = "/api/v1/branches/{id}", tag = "branches", params(("id" = String, Path), ("If-Match" = Option<String>, Header, description = "The version you read, e.g. \"3\"", pattern = r#"^(W/)?"[0-9]+"$"#)),
    request_body = branches::BranchPatch,
    responses((status = 200, body = branches::Branch), (status = 400, body = crate::error::Problem), (status = 401, body = crate::error::Problem), (status = 403, body = crate::error::Problem), (status = 404, body = crate::error::Problem), (status = 409, body = crate::error::Problem), (status = 412, body = crate::error::Problem), (status = 422, body = crate::error::Problem)))]
pub async fn update(
    State(state): State<AppState>,
    creds: Credentials,
    PathId(id): PathId,
    IfMatch(version): IfMatch,
    Json(mut patch): Json<branches::BranchPatch>,
) -> ApiResult<Response> {
    patch.version = version.or(patch.version);
    let branch = state.write(creds, move |tx, who| branches::update(tx, who, id, patch)).await?;
    Ok(versioned(StatusCode::OK, branch.version, None, &branch))
}

#[utoipa::path(delete, path = "/api/v1/branches/{id}", tag = "branches", params(("id" = String, Path)),
    responses((status = 204), (status = 401, body = crate::error::Problem), (status = 403, body = crate::error::Problem), (status = 404, body = crate::error::Problem), (status = 409, body = crate::error::Problem)))]
pub async fn remove(State(state): State<AppState>, creds: Credentials, PathId(id): PathId) -> ApiResult<StatusCode> {
    state.write(creds, move |tx, who| branches::delete(tx, who, id)).await?;
    Ok(StatusCode::NO_CONTENT)
}

#[utoipa::path(post, path = "/api/v1/branches/{id}/restore", tag = "branches", params(("id" = String, Path)),
    responses((status = 200, body = branches::Branch), (status = 401, body = crate::error::Problem), (status = 403, body = crate::error::Problem), (status = 404, body = crate::error::Problem)))]
pub async fn restore(State(state): State<AppState>, creds: Credentials, PathId(id): PathId) -> ApiResult<Response> {
    let branch = state.write(creds, move |tx, who| branches::restore(tx, who, id)).await?;
    Ok(versioned(StatusCode::OK, branch.version, None, &branch))
}
