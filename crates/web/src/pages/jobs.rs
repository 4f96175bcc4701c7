//! Background jobs: the caller's jobs (every job for holders of `system.jobs.read`) with
//! live progress, and a button for admins that queues the maintenance job.
//!
//! Live updates come from `assets/app.js`: the list carries `data-live-jobs`, the script
//! listens to `job.progress` on `/api/v1/events`, updates rows in place (`data-job-id`)
//! and reloads the list fragment (`/jobs?fragment=1`) when it does not know a job.
use askama::Template;
use axum::extract::{Query, State};
use axum::routing::{get, post};
use axum::{Form, Router};
use kernel::jobs::{self, Job, JobStatus};
use kernel::paging::PageRequest;
use serde::Deserialize;

use super::{CsrfForm, Ctx, PageError, PageResult, act, enc, load, render};
use crate::state::{AppState, Credentials};

pub fn router() -> Router<AppState> {
    Router::new().route("/jobs", get(list)).route("/jobs/maintenance", post(run_maintenance))
}

/// Job kinds with a translated label; any other kind shows its name.
const KIND_LABELS: &[(&str, &str)] = &[
    (jobs::MAINTENANCE_KIND, "job-kind-system-cleanup"),
    (customers::imports::IMPORT_JOB, "job-kind-customers-import"),
];

const STATUSES: [JobStatus; 4] = [JobStatus::Queued, JobStatus::Running, JobStatus::Done, JobStatus::Failed];

fn status_key(status: JobStatus) -> String {
    format!("job-status-{}", status.as_str())
}

/// A job ready to show.
pub struct JobRow {
    pub id: String,
    pub kind: String,
    pub status: &'static str,
    pub status_label: String,
    pub percent: u32,
    pub message: String,
    pub attempts: String,
    pub last_error: String,
    pub created: String,
    pub updated: String,
}

fn row(ctx: &Ctx, job: &Job) -> JobRow {
    let kind =
        KIND_LABELS.iter().find(|(kind, _)| *kind == job.kind).map_or_else(|| job.kind.clone(), |(_, key)| ctx.t(key));
    let (attempts, max) = (job.attempts.to_string(), job.max_attempts.to_string());
    JobRow {
        id: job.id.to_string(),
        kind,
        status: job.status.as_str(),
        status_label: ctx.t(&status_key(job.status)),
        // Clamped to 0..=1 first, so the cast cannot wrap.
        percent: (job.progress.clamp(0.0, 1.0) * 100.0).round() as u32,
        message: job.message.clone().unwrap_or_default(),
        attempts: ctx.i18n.t_args(ctx.locale, "jobs-attempts-of", &[("attempts", &attempts), ("max", &max)]),
        last_error: job.last_error.clone().unwrap_or_default(),
        created: ctx.datetime(&job.created_at),
        updated: ctx.datetime(&job.updated_at),
    }
}

/// The translated status labels, for the script that updates rows live.
pub struct StatusLabel {
    pub status: &'static str,
    pub label: String,
}

#[derive(Deserialize, Default)]
pub struct JobsQuery {
    cursor: Option<String>,
    /// `1`: only the list, for the live reload.
    fragment: Option<String>,
}

#[derive(Template)]
#[template(path = "jobs/list.html")]
struct ListPage {
    ctx: Ctx,
    rows: Vec<JobRow>,
    next: Option<String>,
    first_page: bool,
    fragment_url: String,
    labels: Vec<StatusLabel>,
}

#[derive(Template)]
#[template(path = "jobs/_rows.html")]
struct ListFragment {
    ctx: Ctx,
    rows: Vec<JobRow>,
    next: Option<String>,
}

async fn list(State(state): State<AppState>, creds: Credentials, Query(q): Query<JobsQuery>) -> PageResult {
    let cursor = q.cursor.filter(|c| !c.is_empty());
    let page = PageRequest::parse(None, cursor.as_deref()).map_err(PageError::from)?;
    let (ctx, found) = load(&state, creds, "/jobs", move |tx, who| jobs::list(tx, who, &page)).await?;
    let rows: Vec<JobRow> = found.items.iter().map(|job| row(&ctx, job)).collect();
    let next = found.next_cursor.map(|c| format!("/jobs?cursor={}", enc(&c)));
    if q.fragment.as_deref() == Some("1") {
        return Ok(render(&ListFragment { ctx, rows, next }));
    }
    let fragment_url = match &cursor {
        Some(c) => format!("/jobs?fragment=1&cursor={}", enc(c)),
        None => "/jobs?fragment=1".to_owned(),
    };
    let labels = STATUSES.iter().map(|s| StatusLabel { status: s.as_str(), label: ctx.t(&status_key(*s)) }).collect();
    Ok(render(&ListPage { ctx, rows, next, first_page: cursor.is_none(), fragment_url, labels }))
}

/// Queues the maintenance job now, as the caller (who then sees its progress). A refusal
/// is shown in the caller's language and layout by [`super::error_layout`].
async fn run_maintenance(State(state): State<AppState>, creds: Credentials, Form(form): Form<CsrfForm>) -> PageResult {
    act(&state, creds, form, "/jobs", |tx, who| {
        who.require(jobs::READ_ALL_PERMISSION)?;
        Ok(jobs::enqueue(tx, jobs::MAINTENANCE_KIND, serde_json::json!({}), who.actor())?)
    })
    .await
}
