use axum::Router;
use axum::extract::State;
use axum::http::StatusCode;
use axum::response::Response;
use axum::routing::{delete, get};
use kernel::Id;
use kernel::identity::tokens;
use serde::{Deserialize, Serialize};

use crate::error::ApiResult;
use crate::extract::{Json, PathId, Query};
use crate::state::{AppState, Credentials};

pub fn router() -> Router<AppState> {
    Router::new().route("/api/v1/tokens", get(list).post(create)).route("/api/v1/tokens/{id}", delete(revoke))
}

#[derive(Debug, Deserialize, utoipa::IntoParams)]
#[serde(deny_unknown_fields)]
#[into_params(parameter_in = Query)]
pub struct TokenListParams {
    /// Another user's tokens (needs `identity.tokens.manage`).
    pub user_id: Option<Id>,
}

#[derive(Serialize, utoipa::ToSchema)]
pub struct TokenList {
    pub items: Vec<tokens::ApiToken>,
}

#[utoipa::path(get, path = "/api/v1/tokens", tag = "tokens", params(TokenListParams),
    responses((status = 200, body = TokenList), (status = 401, body = crate::error::Problem), (status = 403, body = crate::error::Problem), (status = 422, body = crate::error::Problem)))]
pub async fn list(
    State(state): State<AppState>,
    creds: Credentials,
    Query(p): Query<TokenListParams>,
) -> ApiResult<axum::Json<TokenList>> {
    let items = state.read(creds, move |tx, who| tokens::list(tx, who, p.user_id)).await?;
    Ok(axum::Json(TokenList { items }))
}

#[utoipa::path(post, path = "/api/v1/tokens", tag = "tokens", request_body = tokens::NewToken,
    responses((status = 201, body = tokens::CreatedToken, description = "The secret is shown this once"), (status = 401, body = crate::error::Problem), (status = 403, body = crate::error::Problem), (status = 422, body = crate::error::Problem)))]
pub async fn create(
    State(state): State<AppState>,
    creds: Credentials,
    Json(input): Json<tokens::NewToken>,
) -> ApiResult<Response> {
    let created = state.write(creds, move |tx, who| tokens::create(tx, who, input)).await?;
    Ok(super::versioned(StatusCode::CREATED, 1, Some(format!("/api/v1/tokens/{}", created.token.id)), &created))
}

#[utoipa::path(delete, path = "/api/v1/tokens/{id}", tag = "tokens", params(("id" = String, Path)),
    responses((status = 204), (status = 401, body = crate::error::Problem), (status = 403, body = crate::error::Problem), (status = 404, body = crate::error::Problem)))]
pub async fn revoke(State(state): State<AppState>, creds: Credentials, PathId(id): PathId) -> ApiResult<StatusCode> {
    state.write(creds, move |tx, who| tokens::revoke(tx, who, id)).await?;
    Ok(StatusCode::NO_CONTENT)
}
