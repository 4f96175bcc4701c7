//! `/api/v1/customer-categories` and `/api/v1/custom-fields`: the customer classes and the
//! typed fields each of them carries.
use axum::Router;
use axum::extract::State;
use axum::http::StatusCode;
use axum::response::Response;
use axum::routing::get;
use customers::fields::{
    self, Category, CategoryPatch, CustomField, CustomFieldPatch, FieldFilter, NewCategory, NewCustomField,
};
use kernel::Id;
use kernel::paging::Page;
use serde::Deserialize;

use super::{ListParams, versioned};
use crate::error::ApiResult;
use crate::extract::{IfMatch, Json, PathId, Query};
use crate::state::{AppState, Credentials};

pub fn router() -> Router<AppState> {
    Router::new()
        .route("/api/v1/customer-categories", get(list_categories).post(create_category))
        .route("/api/v1/custom-fields", get(list_fields).post(create_field))
        .route("/api/v1/customer-categories/{id}", get(read_category).patch(update_category).delete(remove_category))
        .route("/api/v1/custom-fields/{id}", get(read_field).patch(update_field).delete(remove_field))
}

#[utoipa::path(get, path = "/api/v1/customer-categories/{id}", tag = "customers", params(("id" = String, Path)),
    responses((status = 200, body = Category)))]
pub async fn read_category(
    State(state): State<AppState>,
    creds: Credentials,
    PathId(id): PathId,
) -> ApiResult<Response> {
    let category = state.read(creds, move |tx, who| fields::get_category(tx, who, id)).await?;
    Ok(versioned(StatusCode::OK, category.version, None, &category))
}

/// Renames a category.
#[utoipa::path(patch, path = "/api/v1/customer-categories/{id}", tag = "customers", params(("id" = String, Path), ("If-Match" = Option<String>, Header, description = "The version you read, e.g. \"3\"", pattern = r#"^(W/)?"[0-9]+"$"#)),
    request_body = CategoryPatch, responses((status = 200, body = Category)))]
pub async fn update_category(
    State(state): State<AppState>,
    creds: Credentials,
    PathId(id): PathId,
    IfMatch(version): IfMatch,
    Json(mut patch): Json<CategoryPatch>,
) -> ApiResult<Response> {
    patch.version = version.or(patch.version);
    let category = state.write(creds, move |tx, who| fields::update_category(tx, who, id, patch)).await?;
    Ok(versioned(StatusCode::OK, category.version, None, &category))
}

/// Deletes a category that no live account or contact is in (409 otherwise).
#[utoipa::path(delete, path = "/api/v1/customer-categories/{id}", tag = "customers", params(("id" = String, Path)),
    responses((status = 204)))]
pub async fn remove_category(
    State(state): State<AppState>,
    creds: Credentials,
    PathId(id): PathId,
) -> ApiResult<StatusCode> {
    state.write(creds, move |tx, who| fields::delete_category(tx, who, id)).await?;
    Ok(StatusCode::NO_CONTENT)
}

#[utoipa::path(get, path = "/api/v1/custom-fields/{id}", tag = "customers", params(("id" = String, Path)),
    responses((status = 200, body = CustomField)))]
pub async fn read_field(State(state): State<AppState>, creds: Credentials, PathId(id): PathId) -> ApiResult<Response> {
    let field = state.read(creds, move |tx, who| fields::get_field(tx, who, id)).await?;
    Ok(versioned(StatusCode::OK, field.version, None, &field))
}

/// Changes a field's label, required flag, type (only while no record holds a value) or
/// options (only additions).
#[utoipa::path(patch, path = "/api/v1/custom-fields/{id}", tag = "customers", params(("id" = String, Path), ("If-Match" = Option<String>, Header, description = "The version you read, e.g. \"3\"", pattern = r#"^(W/)?"[0-9]+"$"#)),
    request_body = CustomFieldPatch, responses((status = 200, body = CustomField)))]
pub async fn update_field(
    State(state): State<AppState>,
    creds: Credentials,
    PathId(id): PathId,
    IfMatch(version): IfMatch,
    Json(mut patch): Json<CustomFieldPatch>,
) -> ApiResult<Response> {
    patch.version = version.or(patch.version);
    let field = state.write(creds, move |tx, who| fields::update_field(tx, who, id, patch)).await?;
    Ok(versioned(StatusCode::OK, field.version, None, &field))
}

/// Deletes a field: records keep their stored values, which are no longer validated or
/// shown.
#[utoipa::path(delete, path = "/api/v1/custom-fields/{id}", tag = "customers", params(("id" = String, Path)),
    responses((status = 204)))]
pub async fn remove_field(
    State(state): State<AppState>,
    creds: Credentials,
    PathId(id): PathId,
) -> ApiResult<StatusCode> {
    state.write(creds, move |tx, who| fields::delete_field(tx, who, id)).await?;
    Ok(StatusCode::NO_CONTENT)
}

#[utoipa::path(get, path = "/api/v1/customer-categories", tag = "customers", params(ListParams),
    responses((status = 200, body = Page<Category>)))]
pub async fn list_categories(
    State(state): State<AppState>,
    creds: Credentials,
    Query(p): Query<ListParams>,
) -> ApiResult<axum::Json<Page<Category>>> {
    let page = p.page()?;
    Ok(axum::Json(state.read(creds, move |tx, who| fields::list_categories(tx, who, &page)).await?))
}

#[utoipa::path(post, path = "/api/v1/customer-categories", tag = "customers", request_body = NewCategory,
    responses((status = 201, body = Category)))]
pub async fn create_category(
    State(state): State<AppState>,
    creds: Credentials,
    Json(input): Json<NewCategory>,
) -> ApiResult<Response> {
    let category = state.write(creds, move |tx, who| fields::create_category(tx, who, input)).await?;
    let location = format!("/api/v1/customer-categories/{}", category.id);
    Ok(versioned(StatusCode::CREATED, category.version, Some(location), &category))
}

#[derive(Debug, Deserialize, utoipa::IntoParams)]
#[serde(deny_unknown_fields)]
#[into_params(parameter_in = Query)]
pub struct FieldListParams {
    /// At most 500; default 50.
    #[param(minimum = 1, maximum = 500)]
    pub limit: Option<u32>,
    pub cursor: Option<String>,
    /// Only this category's fields.
    pub category_id: Option<Id>,
    /// `account` or `contact`.
    pub record_type: Option<String>,
}

#[utoipa::path(get, path = "/api/v1/custom-fields", tag = "customers", params(FieldListParams),
    responses((status = 200, body = Page<CustomField>)))]
pub async fn list_fields(
    State(state): State<AppState>,
    creds: Credentials,
    Query(p): Query<FieldListParams>,
) -> ApiResult<axum::Json<Page<CustomField>>> {
    let page = ListParams { limit: p.limit, cursor: p.cursor }.page()?;
    let filter = FieldFilter { category_id: p.category_id, record_type: p.record_type };
    Ok(axum::Json(state.read(creds, move |tx, who| fields::list_fields(tx, who, &filter, &page)).await?))
}

#[utoipa::path(post, path = "/api/v1/custom-fields", tag = "customers", request_body = NewCustomField,
    responses((status = 201, body = CustomField)))]
pub async fn create_field(
    State(state): State<AppState>,
    creds: Credentials,
    Json(input): Json<NewCustomField>,
) -> ApiResult<Response> {
    let field = state.write(creds, move |tx, who| fields::create_field(tx, who, input)).await?;
    let location = format!("/api/v1/custom-fields/{}", field.id);
    Ok(versioned(StatusCode::CREATED, field.version, Some(location), &field))
}
