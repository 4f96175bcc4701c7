//! `/api/v1`: JSON over the same area functions the pages use.
pub mod accounts;
pub mod activities;
pub mod audit;
pub mod branches;
pub mod categories;
pub mod contacts;
pub mod events;
pub mod imports;
pub mod jobs;
pub mod me;
pub mod openapi;
pub mod quality;
pub mod roles;
pub mod saved_views;
pub mod search;
pub mod tags;
pub mod tasks;
pub mod tokens;
pub mod users;
// Workflow: approvals, expense claims, notifications.
pub mod approvals;
pub mod attachments;
pub mod calendars;
pub mod expense_claims;
pub mod notifications;

use axum::Router;
use axum::http::{HeaderMap, HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Response};
use serde::Serialize;

use crate::state::AppState;

pub fn router() -> Router<AppState> {
    Router::new()
        .merge(me::router())
        .merge(users::router())
        .merge(branches::router())
        .merge(roles::router())
        .merge(tokens::router())
        .merge(audit::router())
        .merge(events::router())
        .merge(jobs::router())
        .merge(categories::router())
        .merge(accounts::router())
        .merge(contacts::router())
        .merge(activities::router())
        .merge(tasks::router())
        .merge(search::router())
        .merge(tags::router())
        .merge(saved_views::router())
        .merge(quality::router())
        .merge(imports::router())
        .merge(approvals::router())
        .merge(approvals::delegations_router())
        .merge(expense_claims::router())
        .merge(notifications::router())
        .merge(attachments::router())
        .merge(calendars::router())
        .route("/api/v1/openapi.json", axum::routing::get(openapi::document))
        .fallback(not_found)
}

/// An unknown address: problem+json under `/api/`, a page (in the caller's layout, via
/// the pages' error layer) anywhere else.
async fn not_found(uri: axum::http::Uri, headers: HeaderMap) -> Response {
    let error = crate::error::ApiError::new(StatusCode::NOT_FOUND, "not_found", "Not found", "no such page");
    if uri.path().starts_with("/api/") {
        return error.into_response();
    }
    crate::pages::PageError::new(error, crate::pages::anonymous_locale(&headers, None)).into_response()
}

/// A record with its version as the ETag.
pub fn versioned<T: Serialize>(status: StatusCode, version: i64, location: Option<String>, body: &T) -> Response {
    let mut headers = HeaderMap::new();
    if let Ok(v) = HeaderValue::from_str(&format!("\"{version}\"")) {
        headers.insert(header::ETAG, v);
    }
    if let Some(loc) = location.and_then(|l| HeaderValue::from_str(&l).ok()) {
        headers.insert(header::LOCATION, loc);
    }
    (status, headers, axum::Json(body)).into_response()
}

/// Query parameters every list accepts.
#[derive(Debug, Default, serde::Deserialize, utoipa::IntoParams)]
#[into_params(parameter_in = Query)]
pub struct ListParams {
    /// At most 500; default 50.
    pub limit: Option<u32>,
    /// `next_cursor` of the previous page.
    pub cursor: Option<String>,
}

/// `limit` and `cursor` from a list's raw query pairs (the filter reads the rest).
pub fn page_from_pairs(pairs: &[(String, String)]) -> Result<kernel::paging::PageRequest, crate::error::ApiError> {
    let get = |k: &str| pairs.iter().find(|(n, _)| n == k).map(|(_, v)| v.as_str());
    let limit = get("limit")
        .map(|l| l.trim().parse::<u32>().map_err(|_| kernel::Error::field("limit", "must be a number from 1 to 500")))
        .transpose()?;
    Ok(kernel::paging::PageRequest::parse(limit, get("cursor"))?)
}

impl ListParams {
    pub fn page(&self) -> Result<kernel::paging::PageRequest, crate::error::ApiError> {
        Ok(kernel::paging::PageRequest::parse(self.limit, self.cursor.as_deref())?)
    }
}
