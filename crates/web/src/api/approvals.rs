//! `/api/v1/approval-processes` (definitions, versioned) and `/api/v1/approvals` (the
//! approver's inbox and decisions).
use axum::Router;
use axum::extract::State;
use axum::http::StatusCode;
use axum::response::Response;
use axum::routing::{get, post};
use kernel::paging::Page;
use serde::Deserialize;
use workflow::delegations::{self, Delegation, NewDelegation};
use workflow::engine::{self, Approval, Colleague, Decision, DecisionInput, PassInput};
use workflow::processes::{self, NewProcess, Process, ProcessPatch};

use super::{ListParams, versioned};
use crate::error::ApiResult;
use crate::extract::{IfMatch, Json, PathId, Query};
use crate::state::{AppState, Credentials};

pub fn router() -> Router<AppState> {
    Router::new()
        .route("/api/v1/approval-processes", get(list_processes).post(create_process))
        .route("/api/v1/approval-processes/{id}", get(read_process).patch(update_process))
        .route("/api/v1/approvals", get(list))
        .route("/api/v1/approvals/{id}", get(read))
        .route("/api/v1/approvals/{id}/approve", post(approve))
        .route("/api/v1/approvals/{id}/reject", post(reject))
        .route("/api/v1/approvals/{id}/pass", post(pass))
        .route("/api/v1/approvals/{id}/pass-candidates", get(pass_candidates))
}

#[derive(Debug, Deserialize, utoipa::IntoParams)]
#[serde(deny_unknown_fields)]
#[into_params(parameter_in = Query)]
pub struct ProcessListParams {
    /// At most 500; default 50.
    #[param(minimum = 1, maximum = 500)]
    pub limit: Option<u32>,
    pub cursor: Option<String>,
    /// Only processes guarding this record type, e.g. `expense_claim`.
    pub record_type: Option<String>,
}

/// Approval processes (their current versions).
#[utoipa::path(get, path = "/api/v1/approval-processes", tag = "workflow", params(ProcessListParams),
    responses((status = 200, body = Page<Process>)))]
pub async fn list_processes(
    State(state): State<AppState>,
    creds: Credentials,
    Query(p): Query<ProcessListParams>,
) -> ApiResult<axum::Json<Page<Process>>> {
    let page = ListParams { limit: p.limit, cursor: p.cursor }.page()?;
    Ok(axum::Json(state.read(creds, move |tx, who| processes::list(tx, who, p.record_type.as_deref(), &page)).await?))
}

/// Defines an approval process: the record type it guards, entry conditions, a
/// priority (lower runs first) and its steps.
#[utoipa::path(post, path = "/api/v1/approval-processes", tag = "workflow", request_body = NewProcess,
    responses((status = 201, body = Process)))]
pub async fn create_process(
    State(state): State<AppState>,
    creds: Credentials,
    Json(input): Json<NewProcess>,
) -> ApiResult<Response> {
    let config = state.config.clone();
    let p = state.write(creds, move |tx, who| processes::create(tx, who, &config.workflow, input)).await?;
    Ok(versioned(StatusCode::CREATED, p.version, Some(format!("/api/v1/approval-processes/{}", p.id)), &p))
}

#[utoipa::path(get, path = "/api/v1/approval-processes/{id}", tag = "workflow", params(("id" = String, Path)),
    responses((status = 200, body = Process)))]
pub async fn read_process(
    State(state): State<AppState>,
    creds: Credentials,
    PathId(id): PathId,
) -> ApiResult<Response> {
    let p = state.read(creds, move |tx, who| processes::get(tx, who, id)).await?;
    Ok(versioned(StatusCode::OK, p.version, None, &p))
}

/// Edits a process: writes a new version. Approvals already running finish on theirs.
#[utoipa::path(patch, path = "/api/v1/approval-processes/{id}", tag = "workflow", params(("id" = String, Path), ("If-Match" = Option<String>, Header, description = "The version you read, e.g. \"3\"", pattern = r#"^(W/)?"[0-9]+"$"#)),
    request_body = ProcessPatch, responses((status = 200, body = Process)))]
pub async fn update_process(
    State(state): State<AppState>,
    creds: Credentials,
    PathId(id): PathId,
    IfMatch(version): IfMatch,
    Json(mut patch): Json<ProcessPatch>,
) -> ApiResult<Response> {
    patch.version = version.or(patch.version);
    let config = state.config.clone();
    let p = state.write(creds, move |tx, who| processes::update(tx, who, &config.workflow, id, patch)).await?;
    Ok(versioned(StatusCode::OK, p.version, None, &p))
}

#[derive(Debug, Deserialize, utoipa::IntoParams)]
#[serde(deny_unknown_fields)]
#[into_params(parameter_in = Query)]
pub struct ApprovalListParams {
    /// `pending` (your inbox; the default) or `decided`.
    pub mine: Option<String>,
    /// At most 500; default 50.
    #[param(minimum = 1, maximum = 500)]
    pub limit: Option<u32>,
    pub cursor: Option<String>,
}

/// Your approval tasks: `?mine=pending` is your inbox, newest first.
#[utoipa::path(get, path = "/api/v1/approvals", tag = "workflow", params(ApprovalListParams),
    responses((status = 200, body = Page<Approval>)))]
pub async fn list(
    State(state): State<AppState>,
    creds: Credentials,
    Query(p): Query<ApprovalListParams>,
) -> ApiResult<axum::Json<Page<Approval>>> {
    let page = ListParams { limit: p.limit, cursor: p.cursor }.page()?;
    let which = p.mine.unwrap_or_else(|| "pending".into());
    Ok(axum::Json(state.read(creds, move |tx, who| engine::list_mine(tx, who, &which, &page)).await?))
}

#[utoipa::path(get, path = "/api/v1/approvals/{id}", tag = "workflow", params(("id" = String, Path)),
    responses((status = 200, body = Approval)))]
pub async fn read(
    State(state): State<AppState>,
    creds: Credentials,
    PathId(id): PathId,
) -> ApiResult<axum::Json<Approval>> {
    Ok(axum::Json(state.read(creds, move |tx, who| engine::get(tx, who, id)).await?))
}

async fn decide(
    state: AppState,
    creds: Credentials,
    id: kernel::Id,
    decision: Decision,
    comment: Option<String>,
) -> ApiResult<axum::Json<Approval>> {
    let config = state.config.clone();
    Ok(axum::Json(
        state.write(creds, move |tx, who| engine::decide(tx, who, &config.workflow, id, decision, comment)).await?,
    ))
}

/// Approves as this task's approver. Posting the same decision again changes nothing.
#[utoipa::path(post, path = "/api/v1/approvals/{id}/approve", tag = "workflow", params(("id" = String, Path)),
    request_body = DecisionInput, responses((status = 200, body = Approval)))]
pub async fn approve(
    State(state): State<AppState>,
    creds: Credentials,
    PathId(id): PathId,
    Json(input): Json<DecisionInput>,
) -> ApiResult<axum::Json<Approval>> {
    decide(state, creds, id, Decision::Approve, input.comment).await
}

/// Rejects as this task's approver: the record is rejected unless the step tolerates it.
#[utoipa::path(post, path = "/api/v1/approvals/{id}/reject", tag = "workflow", params(("id" = String, Path)),
    request_body = DecisionInput, responses((status = 200, body = Approval)))]
pub async fn reject(
    State(state): State<AppState>,
    creds: Credentials,
    PathId(id): PathId,
    Json(input): Json<DecisionInput>,
) -> ApiResult<axum::Json<Approval>> {
    decide(state, creds, id, Decision::Reject, input.comment).await
}

/// Passes the item on to a colleague, who continues the chain (relay steps only).
#[utoipa::path(post, path = "/api/v1/approvals/{id}/pass", tag = "workflow", params(("id" = String, Path)),
    request_body = PassInput, responses((status = 200, body = Approval)))]
pub async fn pass(
    State(state): State<AppState>,
    creds: Credentials,
    PathId(id): PathId,
    Json(input): Json<PassInput>,
) -> ApiResult<axum::Json<Approval>> {
    let Some(to_user_id) = input.to_user_id else {
        return Err(kernel::Error::field("to_user_id", "is required").into());
    };
    decide(state, creds, id, Decision::Pass { to_user_id }, input.comment).await
}

pub fn delegations_router() -> Router<AppState> {
    Router::new()
        .route("/api/v1/delegations", get(list_delegations).post(create_delegation))
        .route("/api/v1/delegations/{id}", axum::routing::delete(revoke_delegation))
}

/// Your delegations: those you gave and those you received, newest first.
#[utoipa::path(get, path = "/api/v1/delegations", tag = "workflow", responses((status = 200, body = Vec<Delegation>)))]
pub async fn list_delegations(
    State(state): State<AppState>,
    creds: Credentials,
) -> ApiResult<axum::Json<Vec<Delegation>>> {
    Ok(axum::Json(state.read(creds, delegations::list).await?))
}

/// Names a colleague to decide your approvals for a period; their decisions record that
/// they were made on your behalf.
#[utoipa::path(post, path = "/api/v1/delegations", tag = "workflow", request_body = NewDelegation,
    responses((status = 201, body = Delegation)))]
pub async fn create_delegation(
    State(state): State<AppState>,
    creds: Credentials,
    Json(input): Json<NewDelegation>,
) -> ApiResult<Response> {
    let now = chrono::Utc::now();
    let d = state.write(creds, move |tx, who| delegations::create(tx, who, input, now)).await?;
    Ok(versioned(StatusCode::CREATED, 1, Some(format!("/api/v1/delegations/{}", d.id)), &d))
}

/// Ends one of your delegations now.
#[utoipa::path(delete, path = "/api/v1/delegations/{id}", tag = "workflow", params(("id" = String, Path)),
    responses((status = 204)))]
pub async fn revoke_delegation(
    State(state): State<AppState>,
    creds: Credentials,
    PathId(id): PathId,
) -> ApiResult<StatusCode> {
    let now = chrono::Utc::now();
    state.write(creds, move |tx, who| delegations::revoke(tx, who, id, now)).await?;
    Ok(StatusCode::NO_CONTENT)
}

#[derive(Debug, Deserialize, utoipa::IntoParams)]
#[serde(deny_unknown_fields)]
#[into_params(parameter_in = Query)]
pub struct CandidateParams {
    /// Part of a name or e-mail.
    pub q: Option<String>,
    /// At most 50; default 10.
    #[param(minimum = 1, maximum = 50)]
    pub limit: Option<u64>,
}

/// Whom you may pass this relay item on to: active users whose name or e-mail contains
/// `q`, by name (you left out). For the item's approver, or a delegate standing in.
#[utoipa::path(get, path = "/api/v1/approvals/{id}/pass-candidates", tag = "workflow", params(("id" = String, Path), CandidateParams),
    responses((status = 200, body = Vec<Colleague>), (status = 404, body = crate::error::Problem), (status = 409, body = crate::error::Problem), (status = 422, body = crate::error::Problem)))]
pub async fn pass_candidates(
    State(state): State<AppState>,
    creds: Credentials,
    PathId(id): PathId,
    Query(p): Query<CandidateParams>,
) -> ApiResult<axum::Json<Vec<Colleague>>> {
    let q = p.q.unwrap_or_default();
    let limit = p.limit.unwrap_or(10);
    Ok(axum::Json(state.read(creds, move |tx, who| engine::pass_candidates(tx, who, id, &q, limit)).await?))
}
