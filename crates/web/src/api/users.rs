use axum::Router;
use axum::extract::State;
use axum::http::StatusCode;
use axum::response::Response;
use axum::routing::{get, post};
use kernel::identity::{passwords, users};
use kernel::paging::Page;
use kernel::{Error, Id};
use serde::Deserialize;

use super::{ListParams, versioned};
use crate::error::{ApiError, ApiResult};
use crate::extract::{IfMatch, Json, PathId, Query};
use crate::state::{AppState, Credentials};

pub fn router() -> Router<AppState> {
    Router::new()
        .route("/api/v1/users", get(list).post(create))
        .route("/api/v1/users/{id}", get(read).patch(update).delete(remove))
        .route("/api/v1/users/{id}/restore", post(restore))
        .route("/api/v1/users/{id}/password", post(reset_password))
}

#[derive(Debug, Deserialize, utoipa::IntoParams)]
#[serde(deny_unknown_fields)]
#[into_params(parameter_in = Query)]
pub struct UserListParams {
    /// At most 500; default 50.
    #[param(minimum = 1, maximum = 500)]
    pub limit: Option<u32>,
    pub cursor: Option<String>,
    /// Free text: part of a name or e-mail.
    pub q: Option<String>,
    pub branch_id: Option<Id>,
    pub role: Option<String>,
    pub active: Option<bool>,
}

#[utoipa::path(get, path = "/api/v1/users", tag = "users", params(UserListParams),
    responses((status = 200, body = Page<users::User>), (status = 401, body = crate::error::Problem), (status = 403, body = crate::error::Problem), (status = 422, body = crate::error::Problem)))]
pub async fn list(
    State(state): State<AppState>,
    creds: Credentials,
    Query(p): Query<UserListParams>,
) -> ApiResult<axum::Json<Page<users::User>>> {
    let page = ListParams { limit: p.limit, cursor: p.cursor }.page()?;
    let filter = users::UserFilter { q: p.q, branch_id: p.branch_id, role: p.role, active: p.active };
    Ok(axum::Json(state.read(creds, move |tx, who| users::list(tx, who, &filter, &page)).await?))
}

#[utoipa::path(post, path = "/api/v1/users", tag = "users", request_body = users::NewUser,
    responses((status = 201, body = users::User), (status = 401, body = crate::error::Problem), (status = 403, body = crate::error::Problem), (status = 409, body = crate::error::Problem), (status = 422, body = crate::error::Problem)))]
pub async fn create(
    State(state): State<AppState>,
    creds: Credentials,
    Json(input): Json<users::NewUser>,
) -> ApiResult<Response> {
    // Validate first so a bad request costs no password hashing, then hash off the
    // async threads, then write.
    let check = input.clone();
    state.read(creds.clone(), move |tx, who| users::validate_new(tx, who, &check)).await?;
    let password = input.password.clone();
    let hash = tokio::task::spawn_blocking(move || passwords::hash(&password))
        .await
        .map_err(|e| ApiError::from(Error::Internal(e.to_string())))??;
    let user = state.write(creds, move |tx, who| users::create(tx, who, input, hash)).await?;
    Ok(versioned(StatusCode::CREATED, user.version, Some(format!("/api/v1/users/{}", user.id)), &user))
}

#[utoipa::path(get, path = "/api/v1/users/{id}", tag = "users", params(("id" = String, Path)),
    responses((status = 200, body = users::User), (status = 401, body = crate::error::Problem), (status = 403, body = crate::error::Problem), (status = 404, body = crate::error::Problem)))]
pub async fn read(State(state): State<AppState>, creds: Credentials, PathId(id): PathId) -> ApiResult<Response> {
    let user = state.read(creds, move |tx, who| users::get(tx, who, id)).await?;
    Ok(versioned(StatusCode::OK, user.version, None, &user))
}

#[utoipa::path(patch, path = "/api/v1/users/{id}", tag = "users", params(("id" = String, Path), ("If-Match" = Option<String>, Header, description = "The version you read, e.g. \"3\"", pattern = r#"^(W/)?"[0-9]+"$"#)),
    request_body = users::UserPatch,
    responses((status = 200, body = users::User), (status = 400, body = crate::error::Problem), (status = 401, body = crate::error::Problem), (status = 403, body = crate::error::Problem), (status = 404, body = crate::error::Problem), (status = 409, body = crate::error::Problem), (status = 412, body = crate::error::Problem), (status = 422, body = crate::error::Problem)))]
pub async fn update(
    State(state): State<AppState>,
    creds: Credentials,
    PathId(id): PathId,
    IfMatch(version): IfMatch,
    Json(mut patch): Json<users::UserPatch>,
) -> ApiResult<Response> {
    patch.version = version.or(patch.version);
    let user = state.write(creds, move |tx, who| users::update(tx, who, id, patch)).await?;
    Ok(versioned(StatusCode::OK, user.version, None, &user))
}

#[utoipa::path(delete, path = "/api/v1/users/{id}", tag = "users", params(("id" = String, Path)),
    responses((status = 204), (status = 401, body = crate::error::Problem), (status = 403, body = crate::error::Problem), (status = 404, body = crate::error::Problem), (status = 409, body = crate::error::Problem)))]
pub async fn remove(State(state): State<AppState>, creds: Credentials, PathId(id): PathId) -> ApiResult<StatusCode> {
    state.write(creds, move |tx, who| users::delete(tx, who, id)).await?;
    Ok(StatusCode::NO_CONTENT)
}

#[utoipa::path(post, path = "/api/v1/users/{id}/restore", tag = "users", params(("id" = String, Path)),
    responses((status = 200, body = users::User), (status = 401, body = crate::error::Problem), (status = 403, body = crate::error::Problem), (status = 404, body = crate::error::Problem)))]
pub async fn restore(State(state): State<AppState>, creds: Credentials, PathId(id): PathId) -> ApiResult<Response> {
    let user = state.write(creds, move |tx, who| users::restore(tx, who, id)).await?;
    Ok(versioned(StatusCode::OK, user.version, None, &user))
}

#[derive(Debug, Deserialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
pub struct PasswordReset {
    pub password: String,
}

#[utoipa::path(post, path = "/api/v1/users/{id}/password", tag = "users", params(("id" = String, Path)), request_body = PasswordReset,
    responses((status = 204), (status = 401, body = crate::error::Problem), (status = 403, body = crate::error::Problem), (status = 404, body = crate::error::Problem), (status = 422, body = crate::error::Problem)))]
pub async fn reset_password(
    State(state): State<AppState>,
    creds: Credentials,
    PathId(id): PathId,
    Json(input): Json<PasswordReset>,
) -> ApiResult<StatusCode> {
    passwords::check_policy(&input.password).map_err(|m| Error::field("password", m))?;
    let hash = tokio::task::spawn_blocking(move || passwords::hash(&input.password))
        .await
        .map_err(|e| ApiError::from(Error::Internal(e.to_string())))??;
    state.write(creds, move |tx, who| users::set_password(tx, who, id, hash, None)).await?;
    Ok(StatusCode::NO_CONTENT)
}
