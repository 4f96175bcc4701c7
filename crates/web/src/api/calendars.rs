//! Working calendars: `/api/v1/branches/{id}/working-hours` (a branch's weekly hours) and
//! `/api/v1/calendar-days` (holidays and make-up working days, per branch or for every
//! branch, and the built-in CN/KR presets).
use axum::Router;
use axum::extract::State;
use axum::http::StatusCode;
use axum::response::Response;
use axum::routing::{delete, get, post};
use serde::Deserialize;
use workflow::calendar::{self, BranchHours, CalendarDay, HoursInput, NewCalendarDay, PresetInput, PresetReport};

use super::versioned;
use crate::error::ApiResult;
use crate::extract::{Json, PathId, Query};
use crate::state::{AppState, Credentials};

pub fn router() -> Router<AppState> {
    Router::new()
        .route("/api/v1/branches/{id}/working-hours", get(read_hours).put(set_hours).delete(clear_hours))
        .route("/api/v1/calendar-days", get(list_days).post(create_day))
        .route("/api/v1/calendar-days/presets", post(load_preset))
        .route("/api/v1/calendar-days/{id}", delete(delete_day))
}

/// The working hours that apply to a branch: its own, its nearest parent's, or the default
/// (Monday–Friday 09:00–18:00).
#[utoipa::path(get, path = "/api/v1/branches/{id}/working-hours", tag = "workflow", params(("id" = String, Path)),
    responses((status = 200, body = BranchHours)))]
pub async fn read_hours(
    State(state): State<AppState>,
    creds: Credentials,
    PathId(id): PathId,
) -> ApiResult<axum::Json<BranchHours>> {
    Ok(axum::Json(state.read(creds, move |tx, who| calendar::hours(tx, who, id)).await?))
}

/// Sets a branch's own working hours: per weekday (`mon`…`sun`) zero or more intervals
/// `{"start": "09:00", "end": "12:00"}`; an omitted weekday has none. Bad weekdays,
/// times, ends before starts and overlaps are 422 naming `week.<day>[i].start|end`.
#[utoipa::path(put, path = "/api/v1/branches/{id}/working-hours", tag = "workflow", params(("id" = String, Path)),
    request_body = HoursInput, responses((status = 200, body = BranchHours)))]
pub async fn set_hours(
    State(state): State<AppState>,
    creds: Credentials,
    PathId(id): PathId,
    Json(input): Json<HoursInput>,
) -> ApiResult<axum::Json<BranchHours>> {
    let now = chrono::Utc::now();
    Ok(axum::Json(state.write(creds, move |tx, who| calendar::set_hours(tx, who, id, input, now)).await?))
}

/// Drops a branch's own working hours: it inherits its parent's again.
#[utoipa::path(delete, path = "/api/v1/branches/{id}/working-hours", tag = "workflow", params(("id" = String, Path)),
    responses((status = 200, body = BranchHours)))]
pub async fn clear_hours(
    State(state): State<AppState>,
    creds: Credentials,
    PathId(id): PathId,
) -> ApiResult<axum::Json<BranchHours>> {
    Ok(axum::Json(state.write(creds, move |tx, who| calendar::clear_hours(tx, who, id)).await?))
}

#[derive(Debug, Deserialize, utoipa::IntoParams)]
#[serde(deny_unknown_fields)]
#[into_params(parameter_in = Query)]
pub struct DayListParams {
    /// The days that apply to this branch (its own, its parents', every branch's);
    /// omitted: the days of every branch's calendar.
    pub branch_id: Option<String>,
    /// Only this year.
    pub year: Option<String>,
}

/// Holidays and make-up working days, by date.
#[utoipa::path(get, path = "/api/v1/calendar-days", tag = "workflow", params(DayListParams),
    responses((status = 200, body = Vec<CalendarDay>)))]
pub async fn list_days(
    State(state): State<AppState>,
    creds: Credentials,
    Query(p): Query<DayListParams>,
) -> ApiResult<axum::Json<Vec<CalendarDay>>> {
    let branch = match p.branch_id.as_deref().filter(|b| !b.is_empty()) {
        None => None,
        Some(b) => {
            Some(b.parse::<i64>().map(kernel::Id).map_err(|_| kernel::Error::field("branch_id", "is not an id"))?)
        }
    };
    let year = match p.year.as_deref().filter(|y| !y.is_empty()) {
        None => None,
        Some(y) => Some(y.parse::<i32>().map_err(|_| kernel::Error::field("year", "is not a year"))?),
    };
    Ok(axum::Json(state.read(creds, move |tx, who| calendar::days(tx, who, branch, year)).await?))
}

/// Adds a holiday or (`"kind": "working"`) a make-up working day to a branch's calendar
/// or (no `branch_id`) every branch's. A date the calendar has already is 422.
#[utoipa::path(post, path = "/api/v1/calendar-days", tag = "workflow", request_body = NewCalendarDay,
    responses((status = 201, body = CalendarDay)))]
pub async fn create_day(
    State(state): State<AppState>,
    creds: Credentials,
    Json(input): Json<NewCalendarDay>,
) -> ApiResult<Response> {
    let d = state.write(creds, move |tx, who| calendar::add_day(tx, who, input)).await?;
    Ok(versioned(StatusCode::CREATED, 1, Some(format!("/api/v1/calendar-days/{}", d.id)), &d))
}

/// Removes a holiday or working day.
#[utoipa::path(delete, path = "/api/v1/calendar-days/{id}", tag = "workflow", params(("id" = String, Path)),
    responses((status = 204)))]
pub async fn delete_day(
    State(state): State<AppState>,
    creds: Credentials,
    PathId(id): PathId,
) -> ApiResult<StatusCode> {
    state.write(creds, move |tx, who| calendar::delete_day(tx, who, id)).await?;
    Ok(StatusCode::NO_CONTENT)
}

/// Loads the built-in public holidays of `CN` (with the make-up working days) or `KR`
/// (with substitute holidays) for a year into one calendar. Idempotent: dates the
/// calendar has already are kept (`skipped`).
#[utoipa::path(post, path = "/api/v1/calendar-days/presets", tag = "workflow", request_body = PresetInput,
    responses((status = 200, body = PresetReport)))]
pub async fn load_preset(
    State(state): State<AppState>,
    creds: Credentials,
    Json(input): Json<PresetInput>,
) -> ApiResult<axum::Json<PresetReport>> {
    Ok(axum::Json(state.write(creds, move |tx, who| calendar::load_preset(tx, who, input)).await?))
}
