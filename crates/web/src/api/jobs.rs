use axum::Router;
use axum::extract::State;
use axum::routing::get;
use kernel::Error;
use kernel::jobs::{self, Job};
use kernel::paging::Page;

use super::ListParams;
use crate::error::ApiResult;
use crate::extract::{PathId, Query};
use crate::state::{AppState, Credentials};

pub fn router() -> Router<AppState> {
    Router::new().route("/api/v1/jobs", get(list)).route("/api/v1/jobs/{id}", get(read))
}

/// The caller's jobs, newest first; every job for holders of `system.jobs.read`.
#[utoipa::path(get, path = "/api/v1/jobs", tag = "jobs", params(ListParams),
    responses((status = 200, body = Page<Job>), (status = 401, body = crate::error::Problem), (status = 422, body = crate::error::Problem)))]
pub async fn list(
    State(state): State<AppState>,
    creds: Credentials,
    Query(p): Query<ListParams>,
) -> ApiResult<axum::Json<Page<Job>>> {
    let page = p.page()?;
    Ok(axum::Json(state.read(creds, move |tx, who| jobs::list(tx, who, &page)).await?))
}

/// A job is visible to whoever started it, and to holders of `system.jobs.read`.
#[utoipa::path(get, path = "/api/v1/jobs/{id}", tag = "jobs", params(("id" = String, Path)),
    responses((status = 200, body = Job), (status = 401, body = crate::error::Problem), (status = 404, body = crate::error::Problem)))]
pub async fn read(State(state): State<AppState>, creds: Credentials, PathId(id): PathId) -> ApiResult<axum::Json<Job>> {
    let job = state
        .read(creds, move |tx, who| {
            let job = jobs::get(tx, id)?.ok_or(Error::NotFound("job"))?;
            if jobs::visible_to(&job, who) { Ok(job) } else { Err(Error::NotFound("job")) }
        })
        .await?;
    Ok(axum::Json(job))
}
