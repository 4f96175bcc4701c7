use axum::Router;
use axum::extract::{Path, State};
use axum::http::StatusCode;
use axum::response::Response;
use axum::routing::get;
use kernel::identity::roles;
use serde::Serialize;

use super::versioned;
use crate::error::ApiResult;
use crate::extract::{IfMatch, Json};
use crate::state::{AppState, Credentials};

pub fn router() -> Router<AppState> {
    Router::new()
        .route("/api/v1/roles", get(list).post(create))
        .route("/api/v1/roles/{key}", get(read).patch(update))
        .route("/api/v1/permissions", get(permissions))
}

#[derive(Serialize, utoipa::ToSchema)]
pub struct RoleList {
    pub items: Vec<roles::Role>,
}

#[utoipa::path(get, path = "/api/v1/roles", tag = "roles",
    responses((status = 200, body = RoleList), (status = 401, body = crate::error::Problem), (status = 403, body = crate::error::Problem)))]
pub async fn list(State(state): State<AppState>, creds: Credentials) -> ApiResult<axum::Json<RoleList>> {
    let items = state.read(creds, roles::list).await?;
    Ok(axum::Json(RoleList { items }))
}

#[utoipa::path(post, path = "/api/v1/roles", tag = "roles", request_body = roles::NewRole,
    responses((status = 201, body = roles::Role), (status = 401, body = crate::error::Problem), (status = 403, body = crate::error::Problem), (status = 409, body = crate::error::Problem), (status = 422, body = crate::error::Problem)))]
pub async fn create(
    State(state): State<AppState>,
    creds: Credentials,
    Json(input): Json<roles::NewRole>,
) -> ApiResult<Response> {
    let known = state.permission_names();
    let role = state.write(creds, move |tx, who| roles::create(tx, who, input, &known)).await?;
    Ok(versioned(StatusCode::CREATED, role.version, Some(format!("/api/v1/roles/{}", role.key)), &role))
}

#[utoipa::path(get, path = "/api/v1/roles/{key}", tag = "roles", params(("key" = String, Path)),
    responses((status = 200, body = roles::Role), (status = 401, body = crate::error::Problem), (status = 403, body = crate::error::Problem), (status = 404, body = crate::error::Problem)))]
pub async fn read(State(state): State<AppState>, creds: Credentials, Path(key): Path<String>) -> ApiResult<Response> {
    let role = state.read(creds, move |tx, who| roles::get(tx, who, &key)).await?;
    Ok(versioned(StatusCode::OK, role.version, None, &role))
}

#[utoipa::path(patch, path = "/api/v1/roles/{key}", tag = "roles", params(("key" = String, Path), ("If-Match" = Option<String>, Header, pattern = r#"^(W/)?"[0-9]+"$"#)),
    request_body = roles::RolePatch,
    responses((status = 200, body = roles::Role), (status = 400, body = crate::error::Problem), (status = 401, body = crate::error::Problem), (status = 403, body = crate::error::Problem), (status = 404, body = crate::error::Problem), (status = 412, body = crate::error::Problem), (status = 422, body = crate::error::Problem)))]
pub async fn update(
    State(state): State<AppState>,
    creds: Credentials,
    Path(key): Path<String>,
    IfMatch(version): IfMatch,
    Json(mut patch): Json<roles::RolePatch>,
) -> ApiResult<Response> {
    patch.version = version.or(patch.version);
    let known = state.permission_names();
    let role = state.write(creds, move |tx, who| roles::update(tx, who, &key, patch, &known)).await?;
    Ok(versioned(StatusCode::OK, role.version, None, &role))
}

#[derive(Serialize, utoipa::ToSchema)]
pub struct PermissionInfo {
    pub key: String,
    pub description: String,
}

#[derive(Serialize, utoipa::ToSchema)]
pub struct PermissionList {
    pub items: Vec<PermissionInfo>,
}

#[utoipa::path(get, path = "/api/v1/permissions", tag = "roles",
    responses((status = 200, body = PermissionList), (status = 401, body = crate::error::Problem), (status = 403, body = crate::error::Problem)))]
pub async fn permissions(State(state): State<AppState>, creds: Credentials) -> ApiResult<axum::Json<PermissionList>> {
    state.read(creds, |_, who| who.require("identity.roles.read")).await?;
    let items = state
        .config
        .permissions
        .iter()
        .map(|(k, d)| PermissionInfo { key: (*k).to_owned(), description: (*d).to_owned() })
        .collect();
    Ok(axum::Json(PermissionList { items }))
}
