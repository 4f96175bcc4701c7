//! `/api/v1/expense-claims`: the requester's claims, their submission for approval and
//! their approval history.
use axum::Router;
use axum::extract::State;
use axum::http::StatusCode;
use axum::response::Response;
use axum::routing::{get, post};
use kernel::paging::Page;
use serde::Deserialize;
use workflow::engine::History;
use workflow::expenses::{self, ClaimPatch, ExpenseClaim, NewClaim};

use super::{ListParams, versioned};
use crate::error::ApiResult;
use crate::extract::{IfMatch, Json, PathId, Query};
use crate::state::{AppState, Credentials};

pub fn router() -> Router<AppState> {
    Router::new()
        .route("/api/v1/expense-claims", get(list).post(create))
        .route("/api/v1/expense-claims/{id}", get(read).patch(update))
        .route("/api/v1/expense-claims/{id}/submit", post(submit))
        .route("/api/v1/expense-claims/{id}/approvals", get(history))
}

#[derive(Debug, Deserialize, utoipa::IntoParams)]
#[serde(deny_unknown_fields)]
#[into_params(parameter_in = Query)]
pub struct ClaimListParams {
    /// At most 500; default 50.
    #[param(minimum = 1, maximum = 500)]
    pub limit: Option<u32>,
    pub cursor: Option<String>,
    /// `pending`, `approved` or `rejected`; `draft` lists the claims never submitted.
    pub approval_status: Option<String>,
}

/// Expense claims within your data scope, newest first.
#[utoipa::path(get, path = "/api/v1/expense-claims", tag = "workflow", params(ClaimListParams),
    responses((status = 200, body = Page<ExpenseClaim>)))]
pub async fn list(
    State(state): State<AppState>,
    creds: Credentials,
    Query(p): Query<ClaimListParams>,
) -> ApiResult<axum::Json<Page<ExpenseClaim>>> {
    let page = ListParams { limit: p.limit, cursor: p.cursor }.page()?;
    Ok(axum::Json(
        state.read(creds, move |tx, who| expenses::list(tx, who, p.approval_status.as_deref(), &page)).await?,
    ))
}

/// Creates a draft claim of yours (`approval_status` and `submitted_at` null); submit it to
/// start its approval.
#[utoipa::path(post, path = "/api/v1/expense-claims", tag = "workflow", request_body = NewClaim,
    responses((status = 201, body = ExpenseClaim)))]
pub async fn create(
    State(state): State<AppState>,
    creds: Credentials,
    Json(input): Json<NewClaim>,
) -> ApiResult<Response> {
    let c = state.write(creds, move |tx, who| expenses::create(tx, who, input)).await?;
    Ok(versioned(StatusCode::CREATED, c.version, Some(format!("/api/v1/expense-claims/{}", c.id)), &c))
}

/// A claim within your scope, or one you are asked to approve.
#[utoipa::path(get, path = "/api/v1/expense-claims/{id}", tag = "workflow", params(("id" = String, Path)),
    responses((status = 200, body = ExpenseClaim)))]
pub async fn read(State(state): State<AppState>, creds: Credentials, PathId(id): PathId) -> ApiResult<Response> {
    let c = state.read(creds, move |tx, who| expenses::get(tx, who, id)).await?;
    Ok(versioned(StatusCode::OK, c.version, None, &c))
}

/// Edits a draft or rejected claim; a pending or approved one is locked (409).
#[utoipa::path(patch, path = "/api/v1/expense-claims/{id}", tag = "workflow", params(("id" = String, Path), ("If-Match" = Option<String>, Header, description = "The version you read, e.g. \"3\"", pattern = r#"^(W/)?"[0-9]+"$"#)),
    request_body = ClaimPatch, responses((status = 200, body = ExpenseClaim), (status = 409, description = "The claim is awaiting approval or approved")))]
pub async fn update(
    State(state): State<AppState>,
    creds: Credentials,
    PathId(id): PathId,
    IfMatch(version): IfMatch,
    Json(mut patch): Json<ClaimPatch>,
) -> ApiResult<Response> {
    patch.version = version.or(patch.version);
    let c = state.write(creds, move |tx, who| expenses::update(tx, who, id, patch)).await?;
    Ok(versioned(StatusCode::OK, c.version, None, &c))
}

/// Submits the claim: the first matching approval process starts and the claim turns
/// `pending`. 409 when it is already pending or approved, or no process applies.
#[utoipa::path(post, path = "/api/v1/expense-claims/{id}/submit", tag = "workflow", params(("id" = String, Path)),
    responses((status = 200, body = ExpenseClaim)))]
pub async fn submit(State(state): State<AppState>, creds: Credentials, PathId(id): PathId) -> ApiResult<Response> {
    let config = state.config.clone();
    let c = state.write(creds, move |tx, who| expenses::submit(tx, who, &config.workflow, id)).await?;
    Ok(versioned(StatusCode::OK, c.version, None, &c))
}

/// Where the claim's approvals stand: each run, newest first, with every decision.
#[utoipa::path(get, path = "/api/v1/expense-claims/{id}/approvals", tag = "workflow", params(("id" = String, Path)),
    responses((status = 200, body = Vec<History>)))]
pub async fn history(
    State(state): State<AppState>,
    creds: Credentials,
    PathId(id): PathId,
) -> ApiResult<axum::Json<Vec<History>>> {
    Ok(axum::Json(
        state
            .read(creds, move |tx, who| {
                expenses::get(tx, who, id)?;
                workflow::engine::history(tx, expenses::RECORD_TYPE, id)
            })
            .await?,
    ))
}
