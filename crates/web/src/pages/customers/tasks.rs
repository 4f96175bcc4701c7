//! "My day" (today's and overdue tasks, completed with one tap and undone as easily) and
//! the new-task form, also reached from account and contact pages.
use askama::Template;
use axum::extract::{Path, Query, State};
use axum::http::HeaderMap;
use axum::response::IntoResponse;
use axum::routing::{get, post};
use axum::{Form, Router};
use chrono::{DateTime, NaiveDateTime, TimeZone, Utc};
use customers::tasks::{self as ctasks, NewTask, TaskPatch};
use kernel::{Error, Id};
use serde::Deserialize;

use super::{
    Names, Pairs, TaskRow, account_choices, id_options, is_htmx, local_path, task_row, task_rows, user_choices,
};
use crate::pages::admin::Opt;
use crate::pages::{Ctx, FormErrors, PageError, PageResult, load, load_with_ctx, render, see_other};
use crate::state::{AppState, Credentials};

pub fn router() -> Router<AppState> {
    Router::new()
        .route("/my-day", get(my_day))
        .route("/tasks", post(create))
        .route("/tasks/new", get(new_form))
        .route("/tasks/{id}/complete", post(complete))
        .route("/tasks/{id}/reopen", post(reopen))
}

#[derive(Template)]
#[template(path = "tasks/my_day.html")]
struct MyDayPage {
    ctx: Ctx,
    today: String,
    overdue: Vec<TaskRow>,
    due: Vec<TaskRow>,
    back: String,
    can_create: bool,
}

async fn my_day(State(state): State<AppState>, creds: Credentials) -> PageResult {
    let (ctx, (overdue, due)) = load_with_ctx(&state, creds, "/my-day", move |tx, who, ctx| {
        let day = ctasks::my_day(tx, who, Utc::now(), &who.time_zone)?;
        let mut names = Names::default();
        Ok((task_rows(tx, ctx, &mut names, &day.overdue, true)?, task_rows(tx, ctx, &mut names, &day.today, true)?))
    })
    .await?;
    let today = crate::pages::fmt::long_date(&Utc::now(), ctx.time_zone(), ctx.locale);
    Ok(render(&MyDayPage {
        today,
        overdue,
        due,
        back: "/my-day".into(),
        can_create: ctx.can("customers.tasks.create"),
        ctx,
    }))
}

/// One task row alone (htmx swaps it after a complete or undo).
#[derive(Template)]
#[template(path = "tasks/task_row.html")]
struct RowFragment {
    ctx: Ctx,
    t: TaskRow,
    back: String,
}

#[derive(Deserialize)]
pub struct StatusForm {
    csrf_token: Option<String>,
    back: Option<String>,
}

async fn set_status(
    state: AppState,
    creds: Credentials,
    headers: HeaderMap,
    id: Id,
    form: StatusForm,
    status: &'static str,
) -> PageResult {
    let creds = creds.with_csrf(form.csrf_token);
    let back = local_path(form.back.as_deref().unwrap_or_default(), "/my-day");
    let patch = TaskPatch { status: Some(status.into()), ..Default::default() };
    let task = state.write(creds.clone(), move |tx, who| ctasks::update(tx, who, id, patch)).await?;
    if !is_htmx(&headers) {
        return Ok(see_other(&back));
    }
    let (ctx, t) = load_with_ctx(&state, creds, "", move |tx, _, ctx| {
        let mut names = Names::default();
        task_row(tx, ctx, &mut names, &task, true)
    })
    .await?;
    Ok(render(&RowFragment { ctx, t, back }))
}

async fn complete(
    State(state): State<AppState>,
    creds: Credentials,
    headers: HeaderMap,
    Path(id): Path<i64>,
    Form(form): Form<StatusForm>,
) -> PageResult {
    set_status(state, creds, headers, Id(id), form, "done").await
}

async fn reopen(
    State(state): State<AppState>,
    creds: Credentials,
    headers: HeaderMap,
    Path(id): Path<i64>,
    Form(form): Form<StatusForm>,
) -> PageResult {
    set_status(state, creds, headers, Id(id), form, "open").await
}

#[derive(Template)]
#[template(path = "tasks/form.html")]
struct FormPage {
    ctx: Ctx,
    form: Pairs,
    assignees: Vec<Opt>,
    accounts: Vec<Opt>,
    errors: FormErrors,
}

/// A `datetime-local` value read in time zone `tz`.
fn parse_local(text: &str, tz: &str) -> Result<Option<DateTime<Utc>>, String> {
    let text = text.trim();
    if text.is_empty() {
        return Ok(None);
    }
    let zone: chrono_tz::Tz = tz.parse().unwrap_or(chrono_tz::Tz::UTC);
    let local = NaiveDateTime::parse_from_str(text, "%Y-%m-%dT%H:%M")
        .or_else(|_| NaiveDateTime::parse_from_str(text, "%Y-%m-%dT%H:%M:%S"))
        .map_err(|_| format!("{text:?} is not a date and time"))?;
    zone.from_local_datetime(&local)
        .earliest()
        .map(|t| Some(t.with_timezone(&Utc)))
        .ok_or_else(|| format!("{text:?} does not exist in {tz}"))
}

async fn form_page(
    state: &AppState,
    creds: Credentials,
    form: Pairs,
    errors: FormErrors,
) -> Result<FormPage, PageError> {
    let account = form.id("account_id");
    let (ctx, (assignees, accounts)) = load(state, creds, "/my-day", move |tx, who| {
        who.require("customers.tasks.create")?;
        Ok((user_choices(tx, who, None)?, account_choices(tx, who, account)?))
    })
    .await?;
    let mut form = form;
    if form.get("due_at").is_empty() {
        // Default: today at 17:00 in the user's time zone.
        let zone: chrono_tz::Tz = ctx.time_zone().parse().unwrap_or(chrono_tz::Tz::UTC);
        let today = Utc::now().with_timezone(&zone).date_naive();
        form.set("due_at", format!("{}T17:00", today.format("%Y-%m-%d")));
    }
    let me = ctx.user.as_ref().map(|u| u.user_id);
    let assignee = form.id("assignee_id").or(me);
    Ok(FormPage {
        assignees: id_options(&assignees, assignee),
        accounts: id_options(&accounts, form.id("account_id")),
        form,
        errors,
        ctx,
    })
}

async fn new_form(
    State(state): State<AppState>,
    creds: Credentials,
    Query(q): Query<Vec<(String, String)>>,
) -> PageResult {
    let mut form = Pairs::default();
    let q = Pairs(q);
    for key in ["account_id", "contact_id"] {
        if let Some(v) = q.opt(key) {
            form.set(key, v);
        }
    }
    let back = match (q.id("contact_id"), q.id("account_id")) {
        (Some(c), _) => format!("/contacts/{c}"),
        (None, Some(a)) => format!("/accounts/{a}"),
        _ => "/my-day".into(),
    };
    form.set("back", back);
    Ok(render(&form_page(&state, creds, form, FormErrors::default()).await?))
}

async fn create(
    State(state): State<AppState>,
    creds: Credentials,
    Form(pairs): Form<Vec<(String, String)>>,
) -> PageResult {
    let form = Pairs(pairs);
    let creds = creds.with_csrf(form.opt("csrf_token"));
    let f = form.clone();
    let result = state
        .write(creds.clone(), move |tx, who| {
            let mut v = kernel::error::Validator::new();
            let due_at = v.check("due_at", parse_local(f.get("due_at"), &who.time_zone)).flatten();
            let remind_at = v.check("remind_at", parse_local(f.get("remind_at"), &who.time_zone)).flatten();
            let input = NewTask {
                subject: f.get("subject").to_owned(),
                due_at,
                remind_at,
                assignee_id: f.id("assignee_id"),
                account_id: f.id("account_id"),
                contact_id: f.id("contact_id"),
            };
            // Both the dates and the task's own checks are reported at once.
            match (v.finish(), ctasks::create(tx, who, input)) {
                (Ok(()), out) => out,
                (Err(Error::Validation(mut mine)), Err(Error::Validation(theirs))) => {
                    mine.extend(theirs.into_iter().filter(|e| e.field != "due_at"));
                    Err(Error::Validation(mine))
                }
                (Err(e), _) => Err(e),
            }
        })
        .await;
    let back = local_path(form.get("back"), "/my-day");
    match result {
        Ok(_) => Ok(see_other(&format!("{back}{}saved=task", if back.contains('?') { '&' } else { '?' }))),
        Err(e) => {
            let status = e.status;
            let page = form_page(&state, creds, form, FormErrors::default()).await?;
            let mut page = page;
            page.errors = FormErrors::from_error(&page.ctx, e)?;
            Ok((status, render(&page)).into_response())
        }
    }
}
