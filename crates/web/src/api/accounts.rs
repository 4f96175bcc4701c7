//! `/api/v1/accounts`: organisations the company sells to.
use axum::Router;
use axum::extract::State;
use axum::http::StatusCode;
use axum::response::Response;
use axum::routing::{get, post};
use customers::accounts::{self, Account, AccountFilter, AccountPatch, NewAccount};
use kernel::Id;
use kernel::paging::Page;
use serde::Deserialize;

use super::versioned;
use crate::error::ApiResult;
use crate::extract::{IfMatch, Json, PathId, Query};
use crate::state::{AppState, Credentials};

pub fn router() -> Router<AppState> {
    Router::new()
        .route("/api/v1/accounts", get(list).post(create))
        .route("/api/v1/accounts/{id}", get(read).patch(update).delete(remove))
        .route("/api/v1/accounts/{id}/restore", post(restore))
}

/// The documented parameters; `customers::accounts::AccountFilter::from_query` reads
/// them (and `custom.<key>`, `custom.<key>.gte`, `custom.<key>.lte`).
#[derive(Debug, Deserialize, utoipa::IntoParams)]
#[into_params(parameter_in = Query)]
pub struct AccountListParams {
    /// At most 500; default 50.
    #[param(minimum = 1, maximum = 500)]
    pub limit: Option<u32>,
    pub cursor: Option<String>,
    pub category_id: Option<Id>,
    /// This branch and the branches below it.
    pub branch_id: Option<Id>,
    pub owner_id: Option<Id>,
    /// `prospect`, `active` or `inactive`.
    pub status: Option<String>,
    /// Accounts carrying this tag.
    pub tag: Option<String>,
    /// `name`, `-name`, `created_at`, `-created_at`, `updated_at` or `-updated_at`
    /// (default: creation order).
    pub sort: Option<String>,
    /// A custom field's value: `custom.<key>=<value>` (a multi-select field contains it);
    /// number, money and date fields also take `custom.<key>.gte` and `custom.<key>.lte`.
    #[param(rename = "custom.<key>")]
    pub custom: Option<String>,
    /// Only accounts matching this search text: Chinese or Korean characters (one or more),
    /// the start of a word of the name, e-mail, web address or external id (`gome`,
    /// `@gome`), or four or more digits of the phone in any format (`138 0013`).
    pub q: Option<String>,
}

/// Accounts within your data scope, filtered and sorted (default: oldest first). An
/// unknown parameter, sort or custom key is refused naming it.
#[utoipa::path(get, path = "/api/v1/accounts", tag = "customers", params(AccountListParams),
    responses((status = 200, body = Page<Account>)))]
pub async fn list(
    State(state): State<AppState>,
    creds: Credentials,
    Query(pairs): Query<Vec<(String, String)>>,
) -> ApiResult<axum::Json<Page<Account>>> {
    let page = super::page_from_pairs(&pairs)?;
    let filter = AccountFilter::from_query(&pairs)?;
    Ok(axum::Json(state.read(creds, move |tx, who| accounts::list(tx, who, &filter, &page)).await?))
}

/// Creates an account; one that looks like a duplicate is still created, and the accounts
/// it resembles are listed under `duplicate_candidates`.
#[utoipa::path(post, path = "/api/v1/accounts", tag = "customers", request_body = NewAccount,
    responses((status = 201, body = Account)))]
pub async fn create(
    State(state): State<AppState>,
    creds: Credentials,
    Json(input): Json<NewAccount>,
) -> ApiResult<Response> {
    let account = state.write(creds, move |tx, who| accounts::create(tx, who, input)).await?;
    Ok(versioned(StatusCode::CREATED, account.version, Some(format!("/api/v1/accounts/{}", account.id)), &account))
}

#[utoipa::path(get, path = "/api/v1/accounts/{id}", tag = "customers", params(("id" = String, Path)),
    responses((status = 200, body = Account), (status = 308, description = "Merged into another account: `Location` names it")))]
pub async fn read(State(state): State<AppState>, creds: Credentials, PathId(id): PathId) -> ApiResult<Response> {
    // A merged-away account answers 308 with the address of the one it was merged into.
    let found = state
        .read(creds, move |tx, who| {
            super::quality::get_or_redirect(tx, who, customers::RecordType::Account, id, accounts::get)
        })
        .await?;
    let account = match found {
        super::quality::Found::Record(r) => r,
        super::quality::Found::MovedTo(to) => return Ok(super::quality::moved_to("/api/v1/accounts", to)),
    };
    Ok(versioned(StatusCode::OK, account.version, None, &account))
}

#[utoipa::path(patch, path = "/api/v1/accounts/{id}", tag = "customers", params(("id" = String, Path), ("If-Match" = Option<String>, Header, description = "The version you read, e.g. \"3\"", pattern = r#"^(W/)?"[0-9]+"$"#)),
    request_body = AccountPatch, responses((status = 200, body = Account)))]
pub async fn update(
    State(state): State<AppState>,
    creds: Credentials,
    PathId(id): PathId,
    IfMatch(version): IfMatch,
    Json(mut patch): Json<AccountPatch>,
) -> ApiResult<Response> {
    patch.version = version.or(patch.version);
    let account = state.write(creds, move |tx, who| accounts::update(tx, who, id, patch)).await?;
    Ok(versioned(StatusCode::OK, account.version, None, &account))
}

#[utoipa::path(delete, path = "/api/v1/accounts/{id}", tag = "customers", params(("id" = String, Path)),
    responses((status = 204)))]
pub async fn remove(State(state): State<AppState>, creds: Credentials, PathId(id): PathId) -> ApiResult<StatusCode> {
    state.write(creds, move |tx, who| accounts::delete(tx, who, id)).await?;
    Ok(StatusCode::NO_CONTENT)
}

#[utoipa::path(post, path = "/api/v1/accounts/{id}/restore", tag = "customers", params(("id" = String, Path)),
    responses((status = 200, body = Account)))]
pub async fn restore(State(state): State<AppState>, creds: Credentials, PathId(id): PathId) -> ApiResult<Response> {
    let account = state.write(creds, move |tx, who| accounts::restore(tx, who, id)).await?;
    Ok(versioned(StatusCode::OK, account.version, None, &account))
}
