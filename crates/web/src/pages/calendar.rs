//! "Working calendar" (admin): per branch, the week's working hours, the holidays and
//! make-up working days of a year (with whose calendar each comes from), adding and
//! deleting days (after a confirmation), and loading the built-in CN/KR public holidays.
use std::collections::BTreeMap;

use askama::Template;
use axum::extract::State;
use axum::routing::{get, post};
use axum::{Form, Router};
use chrono::Datelike;
use kernel::Id;
use kernel::identity::branches;
use serde::Deserialize;
use workflow::calendar::{self, HoursInput, Interval, NewCalendarDay, PresetInput, WEEKDAYS};

use super::admin::{Opt, branch_options};
use crate::error::ApiError;
use crate::extract::{PathId, Query};
use crate::pages::{
    ConfirmPage, CsrfForm, Ctx, FormErrors, PageError, PageResult, WithErrors, load, non_empty, opt_id, refused_in,
    render, see_other,
};
use crate::state::{AppState, Credentials};

pub fn router() -> Router<AppState> {
    Router::new()
        .route("/working-calendar", get(show))
        .route("/working-calendar/hours", post(save_hours))
        .route("/working-calendar/days", post(add_day))
        .route("/working-calendar/presets", post(load_preset))
        .route("/working-calendar/days/{id}/delete", get(confirm_delete).post(delete_day))
}

pub struct DayRow {
    pub id: String,
    pub day: String,
    pub weekday: String,
    pub kind: String,
    pub name: String,
    /// Whose calendar: this branch, a parent, every branch.
    pub source: String,
    /// Only the shown calendar's own days are deleted here.
    pub own: bool,
}

pub struct HoursRow {
    pub key: &'static str,
    pub label: String,
    pub value: String,
    pub error: Option<String>,
}

#[derive(Template)]
#[template(path = "calendar/page.html")]
struct CalendarPage {
    ctx: Ctx,
    /// The shown calendar's branch ("" for every branch).
    branch: String,
    branches: Vec<Opt>,
    year: i32,
    hours: Vec<HoursRow>,
    hours_source: String,
    days: Vec<DayRow>,
    countries: Vec<&'static str>,
    years: Vec<i32>,
    notice: Option<String>,
    errors: FormErrors,
    hours_errors: FormErrors,
    day: String,
    kind: String,
    name: String,
}

impl WithErrors for CalendarPage {
    fn ctx(&self) -> &Ctx {
        &self.ctx
    }

    fn errors(&mut self) -> &mut FormErrors {
        &mut self.errors
    }
}

fn hours_slot(p: &mut CalendarPage) -> &mut FormErrors {
    &mut p.hours_errors
}

#[derive(Deserialize)]
pub struct CalendarQuery {
    branch: Option<String>,
    year: Option<String>,
    notice: Option<String>,
}

fn this_year() -> i32 {
    chrono::Utc::now().year()
}

fn url(branch: Option<Id>, year: i32) -> String {
    format!("/working-calendar?branch={}&year={year}", branch.map(|b| b.to_string()).unwrap_or_default())
}

async fn page(state: &AppState, creds: Credentials, branch: Option<Id>, year: i32) -> Result<CalendarPage, PageError> {
    let (ctx, (tree, hours, days)) = load(state, creds, "/working-calendar", move |tx, who| {
        who.require("workflow.processes.manage")?;
        let tree = branches::tree(tx, who)?;
        let hours = branch.map(|b| calendar::hours(tx, who, b)).transpose()?;
        let days = calendar::days(tx, who, branch, Some(year))?;
        Ok((tree, hours, days))
    })
    .await?;
    let names: BTreeMap<Id, String> = tree.iter().map(|b| (b.id, b.name.clone())).collect();
    let source = |b: Option<Id>| match b {
        None => ctx.t("calendar-all-branches"),
        Some(b) => names.get(&b).cloned().unwrap_or_else(|| b.to_string()),
    };
    let days = days
        .iter()
        .map(|d| DayRow {
            id: d.id.to_string(),
            day: d.day.format("%Y-%m-%d").to_string(),
            weekday: ctx.t(&format!("calendar-day-{}", WEEKDAYS[d.day.weekday().num_days_from_monday() as usize])),
            kind: ctx.t(&format!("calendar-kind-{}", d.kind)),
            name: d.name.clone(),
            source: source(d.branch_id),
            own: d.branch_id == branch,
        })
        .collect();
    let (hours, hours_source) = match &hours {
        None => (Vec::new(), String::new()),
        Some(h) => {
            let rows = WEEKDAYS
                .iter()
                .map(|key| HoursRow {
                    key,
                    label: ctx.t(&format!("calendar-day-{key}")),
                    value: h
                        .week
                        .get(*key)
                        .map(|list| {
                            list.iter().map(|i| format!("{}-{}", i.start, i.end)).collect::<Vec<_>>().join(", ")
                        })
                        .unwrap_or_default(),
                    error: None,
                })
                .collect();
            let src = match h.source.as_str() {
                "own" => ctx.t("calendar-hours-own"),
                "inherited" => ctx.ta("calendar-hours-inherited", "branch", &source(h.inherited_from)),
                _ => ctx.t("calendar-hours-default"),
            };
            (rows, src)
        }
    };
    let mut branches = vec![Opt::new("", ctx.t("calendar-all-branches"), branch.is_none())];
    branches.extend(branch_options(&tree, branch));
    Ok(CalendarPage {
        ctx,
        branch: branch.map(|b| b.to_string()).unwrap_or_default(),
        branches,
        year,
        hours,
        hours_source,
        days,
        countries: calendar::presets::COUNTRIES.to_vec(),
        years: (2026..=2027).collect(),
        notice: None,
        errors: FormErrors::default(),
        hours_errors: FormErrors::default(),
        day: String::new(),
        kind: "holiday".into(),
        name: String::new(),
    })
}

fn year_of(text: &Option<String>) -> i32 {
    text.as_deref().and_then(|y| y.trim().parse().ok()).filter(|y| (2000..=2100).contains(y)).unwrap_or_else(this_year)
}

async fn show(State(state): State<AppState>, creds: Credentials, Query(q): Query<CalendarQuery>) -> PageResult {
    let mut shown = page(&state, creds, opt_id(&q.branch), year_of(&q.year)).await?;
    shown.notice = q.notice.as_deref().map(|n| match n.split_once(':') {
        Some((added, skipped)) => {
            shown.ctx.i18n.t_args(shown.ctx.locale, "calendar-preset-loaded", &[("added", added), ("skipped", skipped)])
        }
        None => shown.ctx.t("calendar-saved"),
    });
    Ok(render(&shown))
}

#[derive(Deserialize)]
pub struct HoursForm {
    csrf_token: Option<String>,
    branch: Option<String>,
    year: Option<String>,
    mon: Option<String>,
    tue: Option<String>,
    wed: Option<String>,
    thu: Option<String>,
    fri: Option<String>,
    sat: Option<String>,
    sun: Option<String>,
}

/// "09:00-12:00, 13:00-18:00" → intervals (what does not split is passed on as a start
/// the area refuses, naming the field).
fn intervals(text: &str) -> Vec<Interval> {
    text.split([',', ';', '，'])
        .map(str::trim)
        .filter(|p| !p.is_empty())
        .map(|p| match p.split_once(['-', '–', '~']) {
            Some((s, e)) => Interval { start: s.trim().into(), end: e.trim().into() },
            None => Interval { start: p.into(), end: String::new() },
        })
        .collect()
}

async fn save_hours(State(state): State<AppState>, creds: Credentials, Form(form): Form<HoursForm>) -> PageResult {
    let creds = creds.with_csrf(form.csrf_token.clone());
    let branch = opt_id(&form.branch).ok_or_else(|| ApiError::from(kernel::Error::field("branch", "is required")))?;
    let year = year_of(&form.year);
    let texts = [&form.mon, &form.tue, &form.wed, &form.thu, &form.fri, &form.sat, &form.sun];
    let week: BTreeMap<String, Vec<Interval>> =
        WEEKDAYS.iter().zip(texts).map(|(k, t)| ((*k).to_owned(), intervals(t.as_deref().unwrap_or("")))).collect();
    let now = chrono::Utc::now();
    let input = HoursInput { week };
    match state.write(creds.clone(), move |tx, who| calendar::set_hours(tx, who, branch, input, now)).await {
        Ok(_) => Ok(see_other(&format!("{}&notice=saved", url(Some(branch), year)))),
        Err(e) => {
            let mut shown = page(&state, creds, Some(branch), year).await?;
            for (row, text) in shown.hours.iter_mut().zip(texts) {
                row.value = text.clone().unwrap_or_default();
                row.error = e
                    .errors
                    .iter()
                    .filter(|f| f.field.starts_with(&format!("week.{}", row.key)))
                    .map(|f| f.message.clone())
                    .next();
            }
            refused_in(shown, e, hours_slot)
        }
    }
}

#[derive(Deserialize)]
pub struct DayForm {
    csrf_token: Option<String>,
    branch: Option<String>,
    year: Option<String>,
    day: Option<String>,
    kind: Option<String>,
    name: Option<String>,
}

async fn add_day(State(state): State<AppState>, creds: Credentials, Form(form): Form<DayForm>) -> PageResult {
    let creds = creds.with_csrf(form.csrf_token.clone());
    let branch = opt_id(&form.branch);
    let year = year_of(&form.year);
    let input = NewCalendarDay {
        branch_id: branch,
        day: form.day.clone(),
        kind: non_empty(form.kind.clone()),
        name: form.name.clone(),
    };
    match state.write(creds.clone(), move |tx, who| calendar::add_day(tx, who, input)).await {
        Ok(d) => Ok(see_other(&format!("{}&notice=saved", url(branch, d.day.year())))),
        Err(e) => {
            let mut shown = page(&state, creds, branch, year).await?;
            shown.day = form.day.unwrap_or_default();
            shown.kind = form.kind.unwrap_or_default();
            shown.name = form.name.unwrap_or_default();
            refused_in(shown, e, <CalendarPage as WithErrors>::errors)
        }
    }
}

#[derive(Deserialize)]
pub struct PresetForm {
    csrf_token: Option<String>,
    branch: Option<String>,
    country: Option<String>,
    year: Option<String>,
}

async fn load_preset(State(state): State<AppState>, creds: Credentials, Form(form): Form<PresetForm>) -> PageResult {
    let creds = creds.with_csrf(form.csrf_token.clone());
    let branch = opt_id(&form.branch);
    let year = year_of(&form.year);
    let input = PresetInput { country: form.country.clone(), year: Some(year), branch_id: branch };
    match state.write(creds.clone(), move |tx, who| calendar::load_preset(tx, who, input)).await {
        Ok(r) => Ok(see_other(&format!("{}&notice={}:{}", url(branch, year), r.added, r.skipped))),
        Err(e) => refused_in(page(&state, creds, branch, year).await?, e, <CalendarPage as WithErrors>::errors),
    }
}

async fn confirm_delete(State(state): State<AppState>, creds: Credentials, PathId(id): PathId) -> PageResult {
    let (ctx, ()) = load(&state, creds, "/working-calendar", |_, who| who.require("workflow.processes.manage")).await?;
    Ok(render(&ConfirmPage {
        title: ctx.t("calendar-delete"),
        question: ctx.t("calendar-delete-question"),
        action: format!("/working-calendar/days/{id}/delete"),
        button: ctx.t("calendar-delete"),
        cancel: "/working-calendar".into(),
        error: None,
        ctx,
    }))
}

async fn delete_day(
    State(state): State<AppState>,
    creds: Credentials,
    PathId(id): PathId,
    Form(form): Form<CsrfForm>,
) -> PageResult {
    let creds = creds.with_csrf(form.csrf_token);
    let d = state.write(creds, move |tx, who| calendar::delete_day(tx, who, id)).await?;
    Ok(see_other(&format!("{}&notice=saved", url(d.branch_id, d.day.year()))))
}
