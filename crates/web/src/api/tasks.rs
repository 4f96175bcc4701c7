//! `/api/v1/tasks`: to-dos with a due time, a reminder and an assignee; and "my day".
use axum::Router;
use axum::extract::State;
use axum::http::StatusCode;
use axum::response::Response;
use axum::routing::get;
use customers::tasks::{self, MyDay, NewTask, Task, TaskFilter, TaskPatch};
use kernel::Id;
use kernel::paging::Page;
use serde::Deserialize;

use super::{ListParams, versioned};
use crate::error::ApiResult;
use crate::extract::{IfMatch, Json, PathId, Query};
use crate::state::{AppState, Credentials};

pub fn router() -> Router<AppState> {
    Router::new()
        .route("/api/v1/tasks", get(list).post(create))
        .route("/api/v1/tasks/my-day", get(my_day))
        .route("/api/v1/tasks/{id}", get(read).patch(update).delete(remove))
}

#[derive(Debug, Deserialize, utoipa::IntoParams)]
#[serde(deny_unknown_fields)]
#[into_params(parameter_in = Query)]
pub struct TaskListParams {
    /// At most 500; default 50.
    #[param(minimum = 1, maximum = 500)]
    pub limit: Option<u32>,
    pub cursor: Option<String>,
    pub assignee_id: Option<Id>,
    pub account_id: Option<Id>,
    pub contact_id: Option<Id>,
    /// `open` or `done`.
    pub status: Option<String>,
}

/// Tasks within your data scope (assigned to you, or in the branches you reach), newest
/// first.
#[utoipa::path(get, path = "/api/v1/tasks", tag = "customers", params(TaskListParams),
    responses((status = 200, body = Page<Task>)))]
pub async fn list(
    State(state): State<AppState>,
    creds: Credentials,
    Query(p): Query<TaskListParams>,
) -> ApiResult<axum::Json<Page<Task>>> {
    let page = ListParams { limit: p.limit, cursor: p.cursor }.page()?;
    let filter =
        TaskFilter { assignee_id: p.assignee_id, account_id: p.account_id, contact_id: p.contact_id, status: p.status };
    Ok(axum::Json(state.read(creds, move |tx, who| tasks::list(tx, who, &filter, &page)).await?))
}

/// Creates a task (assigned to you unless `assignee_id` says otherwise); a `remind_at`
/// sends the assignee a `task.reminder` event then.
#[utoipa::path(post, path = "/api/v1/tasks", tag = "customers", request_body = NewTask,
    responses((status = 201, body = Task)))]
pub async fn create(
    State(state): State<AppState>,
    creds: Credentials,
    Json(input): Json<NewTask>,
) -> ApiResult<Response> {
    let task = state.write(creds, move |tx, who| tasks::create(tx, who, input)).await?;
    Ok(versioned(StatusCode::CREATED, task.version, Some(format!("/api/v1/tasks/{}", task.id)), &task))
}

#[utoipa::path(get, path = "/api/v1/tasks/{id}", tag = "customers", params(("id" = String, Path)),
    responses((status = 200, body = Task)))]
pub async fn read(State(state): State<AppState>, creds: Credentials, PathId(id): PathId) -> ApiResult<Response> {
    let task = state.read(creds, move |tx, who| tasks::get(tx, who, id)).await?;
    Ok(versioned(StatusCode::OK, task.version, None, &task))
}

/// Edits, completes (`"status": "done"`) or reopens a task.
#[utoipa::path(patch, path = "/api/v1/tasks/{id}", tag = "customers", params(("id" = String, Path), ("If-Match" = Option<String>, Header, description = "The version you read, e.g. \"3\"", pattern = r#"^(W/)?"[0-9]+"$"#)),
    request_body = TaskPatch, responses((status = 200, body = Task)))]
pub async fn update(
    State(state): State<AppState>,
    creds: Credentials,
    PathId(id): PathId,
    IfMatch(version): IfMatch,
    Json(mut patch): Json<TaskPatch>,
) -> ApiResult<Response> {
    patch.version = version.or(patch.version);
    let task = state.write(creds, move |tx, who| tasks::update(tx, who, id, patch)).await?;
    Ok(versioned(StatusCode::OK, task.version, None, &task))
}

#[utoipa::path(delete, path = "/api/v1/tasks/{id}", tag = "customers", params(("id" = String, Path)),
    responses((status = 204)))]
pub async fn remove(State(state): State<AppState>, creds: Credentials, PathId(id): PathId) -> ApiResult<StatusCode> {
    state.write(creds, move |tx, who| tasks::delete(tx, who, id)).await?;
    Ok(StatusCode::NO_CONTENT)
}

/// Your open tasks due today in your time zone, and the overdue ones from earlier days.
#[utoipa::path(get, path = "/api/v1/tasks/my-day", tag = "customers", responses((status = 200, body = MyDay)))]
pub async fn my_day(State(state): State<AppState>, creds: Credentials) -> ApiResult<axum::Json<MyDay>> {
    let now = chrono::Utc::now();
    Ok(axum::Json(state.read(creds, move |tx, who| tasks::my_day(tx, who, now, &who.time_zone)).await?))
}
