//! `/api/v1/imports`, `/api/v1/import-mappings` and the list exports
//! (`/api/v1/contacts/export`, `/api/v1/accounts/export`).
use axum::Router;
use axum::body::Bytes;
use axum::extract::{DefaultBodyLimit, FromRequest, Request, State};
use axum::http::{HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post, put};
use customers::accounts::AccountFilter;
use customers::contacts::ContactFilter;
use customers::exports::{self, ExportFormat};
use customers::imports::{self, DryRun, Import, Mapping, NewMapping, SavedMapping, Uploaded};
use kernel::Id;
use serde::{Deserialize, Serialize};

use crate::error::{ApiError, ApiResult};
use crate::extract::{Json, PathId, Query};
use crate::state::{AppState, Credentials};

pub fn router() -> Router<AppState> {
    Router::new()
        .route(
            "/api/v1/imports",
            // The file is the body: this route alone takes up to the import limit.
            post(upload).layer(DefaultBodyLimit::max(imports::MAX_BYTES)),
        )
        .route("/api/v1/imports/{id}", get(read))
        .route("/api/v1/imports/{id}/mapping", put(set_mapping))
        .route("/api/v1/imports/{id}/dry-run", post(dry_run))
        .route("/api/v1/imports/{id}/start", post(start))
        .route("/api/v1/imports/{id}/errors.csv", get(errors_csv))
        .route("/api/v1/import-mappings", get(list_mappings).post(create_mapping))
        .route("/api/v1/contacts/export", get(export_contacts))
        .route("/api/v1/accounts/export", get(export_accounts))
}

/// The raw request body, with a too-large body answered as a 413 problem.
pub struct RawFile(pub Bytes);

impl<S: Send + Sync> FromRequest<S> for RawFile {
    type Rejection = ApiError;

    async fn from_request(req: Request, state: &S) -> Result<Self, ApiError> {
        Bytes::from_request(req, state).await.map(RawFile).map_err(|e| {
            if e.status() == StatusCode::PAYLOAD_TOO_LARGE { too_large() } else { ApiError::bad_request(e.body_text()) }
        })
    }
}

fn too_large() -> ApiError {
    ApiError::new(
        StatusCode::PAYLOAD_TOO_LARGE,
        "too_large",
        "File too large",
        "the file is larger than 200 MB, the most an import accepts; split it into smaller files",
    )
}

#[derive(Debug, Deserialize, utoipa::IntoParams)]
#[serde(deny_unknown_fields)]
#[into_params(parameter_in = Query)]
pub struct UploadParams {
    /// `contact` or `account`.
    pub record_type: String,
    /// The file's name (its extension helps tell CSV, XLSX and vCard apart).
    pub filename: String,
}

/// Uploads a CSV, XLSX or vCard file (the raw file as the body, at most 200 MB) as a new
/// import: answers the detected format and encoding, the header, a suggested mapping and
/// sample rows. A file that is not CSV/XLSX/vCard, empty or binary is refused (422,
/// field `file`) and nothing is stored.
#[utoipa::path(post, path = "/api/v1/imports", tag = "imports", params(UploadParams),
    request_body(content = Vec<u8>, content_type = "application/octet-stream", description = "The file"),
    responses((status = 201, body = Uploaded), (status = 413, description = "The file is larger than 200 MB")))]
pub async fn upload(
    State(state): State<AppState>,
    creds: Credentials,
    Query(p): Query<UploadParams>,
    RawFile(body): RawFile,
) -> ApiResult<Response> {
    if body.len() > imports::MAX_BYTES {
        return Err(too_large());
    }
    let uploaded =
        state.write(creds, move |tx, who| imports::create(tx, who, &p.record_type, &p.filename, &body)).await?;
    let mut response = (StatusCode::CREATED, axum::Json(&uploaded)).into_response();
    if let Ok(v) = HeaderValue::from_str(&format!("/api/v1/imports/{}", uploaded.id)) {
        response.headers_mut().insert(header::LOCATION, v);
    }
    Ok(response)
}

/// An import's status, counts and progress (0..1).
#[utoipa::path(get, path = "/api/v1/imports/{id}", tag = "imports", params(("id" = String, Path)),
    responses((status = 200, body = Import)))]
pub async fn read(
    State(state): State<AppState>,
    creds: Credentials,
    PathId(id): PathId,
) -> ApiResult<axum::Json<Import>> {
    Ok(axum::Json(state.read(creds, move |tx, who| imports::get(tx, who, id)).await?))
}

/// Sets the column mapping, the upsert key and what happens to existing records.
#[utoipa::path(put, path = "/api/v1/imports/{id}/mapping", tag = "imports", params(("id" = String, Path)),
    request_body = Mapping, responses((status = 200, body = Import)))]
pub async fn set_mapping(
    State(state): State<AppState>,
    creds: Credentials,
    PathId(id): PathId,
    Json(mapping): Json<Mapping>,
) -> ApiResult<axum::Json<Import>> {
    Ok(axum::Json(state.write(creds, move |tx, who| imports::set_mapping(tx, who, id, mapping)).await?))
}

#[derive(Debug, Default, Deserialize, utoipa::IntoParams)]
#[serde(deny_unknown_fields)]
#[into_params(parameter_in = Query)]
pub struct DryRunParams {
    /// Rows to check (default 1,000, at most 10,000).
    pub limit: Option<usize>,
}

/// Checks the first rows exactly as the import would: per-row errors, and how many rows
/// would create, update or skip records. Writes nothing but the import's error report.
#[utoipa::path(post, path = "/api/v1/imports/{id}/dry-run", tag = "imports", params(("id" = String, Path), DryRunParams),
    responses((status = 200, body = DryRun)))]
pub async fn dry_run(
    State(state): State<AppState>,
    creds: Credentials,
    PathId(id): PathId,
    Query(p): Query<DryRunParams>,
) -> ApiResult<axum::Json<DryRun>> {
    Ok(axum::Json(state.write(creds, move |tx, who| imports::dry_run(tx, who, id, p.limit)).await?))
}

#[derive(Debug, Serialize, utoipa::ToSchema)]
pub struct Started {
    pub import_id: Id,
    /// Follow it at `/api/v1/jobs/{job_id}` or `/api/v1/imports/{import_id}`.
    pub job_id: Id,
}

/// Starts the import as a background job (once: a repeat answers the same job).
#[utoipa::path(post, path = "/api/v1/imports/{id}/start", tag = "imports", params(("id" = String, Path)),
    responses((status = 202, body = Started)))]
pub async fn start(State(state): State<AppState>, creds: Credentials, PathId(id): PathId) -> ApiResult<Response> {
    let job_id = state.write(creds, move |tx, who| imports::start(tx, who, id)).await?;
    Ok((StatusCode::ACCEPTED, axum::Json(Started { import_id: id, job_id })).into_response())
}

fn download(bytes: Vec<u8>, content_type: &'static str, filename: &str) -> Response {
    let mut response = (StatusCode::OK, bytes).into_response();
    let headers = response.headers_mut();
    headers.insert(header::CONTENT_TYPE, HeaderValue::from_static(content_type));
    if let Ok(v) = HeaderValue::from_str(&format!("attachment; filename=\"{filename}\"")) {
        headers.insert(header::CONTENT_DISPOSITION, v);
    }
    response
}

/// The error report (CSV, UTF-8 with BOM): row, column, message and the row's original
/// values. The run's once started, else the last dry run's.
#[utoipa::path(get, path = "/api/v1/imports/{id}/errors.csv", tag = "imports", params(("id" = String, Path)),
    responses((status = 200, content_type = "text/csv", body = String)))]
pub async fn errors_csv(State(state): State<AppState>, creds: Credentials, PathId(id): PathId) -> ApiResult<Response> {
    let bytes = state.read(creds, move |tx, who| imports::errors_csv(tx, who, id)).await?;
    Ok(download(bytes, "text/csv; charset=utf-8", &format!("import-{id}-errors.csv")))
}

#[derive(Debug, Default, Deserialize, utoipa::IntoParams)]
#[serde(deny_unknown_fields)]
#[into_params(parameter_in = Query)]
pub struct MappingListParams {
    /// `contact` or `account`.
    pub record_type: Option<String>,
}

#[derive(Debug, Serialize, utoipa::ToSchema)]
pub struct MappingList {
    pub items: Vec<SavedMapping>,
}

/// Saved mappings, by record type and name.
#[utoipa::path(get, path = "/api/v1/import-mappings", tag = "imports", params(MappingListParams),
    responses((status = 200, body = MappingList)))]
pub async fn list_mappings(
    State(state): State<AppState>,
    creds: Credentials,
    Query(p): Query<MappingListParams>,
) -> ApiResult<axum::Json<MappingList>> {
    let items = state.read(creds, move |tx, who| imports::list_mappings(tx, who, p.record_type.as_deref())).await?;
    Ok(axum::Json(MappingList { items }))
}

/// Saves a mapping for later imports.
#[utoipa::path(post, path = "/api/v1/import-mappings", tag = "imports", request_body = NewMapping,
    responses((status = 201, body = SavedMapping)))]
pub async fn create_mapping(
    State(state): State<AppState>,
    creds: Credentials,
    Json(input): Json<NewMapping>,
) -> ApiResult<Response> {
    let saved = state.write(creds, move |tx, who| imports::create_mapping(tx, who, input)).await?;
    Ok((StatusCode::CREATED, axum::Json(saved)).into_response())
}

#[derive(Debug, Deserialize, utoipa::IntoParams)]
#[serde(deny_unknown_fields)]
#[into_params(parameter_in = Query)]
pub struct ContactExportParams {
    /// `csv` (default; UTF-8 with BOM), `xlsx` or `vcf` (vCard 3.0).
    pub format: Option<String>,
    pub account_id: Option<Id>,
    pub branch_id: Option<Id>,
    pub owner_id: Option<Id>,
    /// The list's search text.
    pub q: Option<String>,
}

/// The export's `format` and the list's own filter parameters (which the list's parser
/// checks, the same as `GET /api/v1/contacts`).
fn split_format(pairs: Vec<(String, String)>) -> Result<(ExportFormat, Vec<(String, String)>), ApiError> {
    let (format, filters): (Vec<_>, Vec<_>) = pairs.into_iter().partition(|(k, _)| k == "format");
    let format = ExportFormat::parse(format.first().map_or("csv", |(_, v)| v.as_str()))?;
    Ok((format, filters))
}

/// The contacts the list's filters select, as a file (custom fields as `custom.<key>`
/// columns). Read page by page.
#[utoipa::path(get, path = "/api/v1/contacts/export", tag = "customers", params(ContactExportParams),
    responses((status = 200, description = "The file", content_type = "text/csv", body = String)))]
pub async fn export_contacts(
    State(state): State<AppState>,
    creds: Credentials,
    Query(pairs): Query<Vec<(String, String)>>,
) -> ApiResult<Response> {
    let (format, pairs) = split_format(pairs)?;
    let filter = ContactFilter::from_query(&pairs)?;
    let bytes = state
        .read(creds, move |tx, who| {
            let mut out = Vec::new();
            exports::contacts(tx, who, &filter, format, &mut out)?;
            Ok(out)
        })
        .await?;
    Ok(download(bytes, format.content_type(), &format!("contacts.{}", format.extension())))
}

#[derive(Debug, Deserialize, utoipa::IntoParams)]
#[serde(deny_unknown_fields)]
#[into_params(parameter_in = Query)]
pub struct AccountExportParams {
    /// `csv` (default; UTF-8 with BOM) or `xlsx`.
    pub format: Option<String>,
    pub category_id: Option<Id>,
    pub branch_id: Option<Id>,
    pub owner_id: Option<Id>,
    pub status: Option<String>,
    /// The list's search text.
    pub q: Option<String>,
}

/// The accounts the list's filters select, as a file.
#[utoipa::path(get, path = "/api/v1/accounts/export", tag = "customers", params(AccountExportParams),
    responses((status = 200, description = "The file", content_type = "text/csv", body = String)))]
pub async fn export_accounts(
    State(state): State<AppState>,
    creds: Credentials,
    Query(pairs): Query<Vec<(String, String)>>,
) -> ApiResult<Response> {
    let (format, pairs) = split_format(pairs)?;
    let filter = AccountFilter::from_query(&pairs)?;
    let bytes = state
        .read(creds, move |tx, who| {
            let mut out = Vec::new();
            exports::accounts(tx, who, &filter, format, &mut out)?;
            Ok(out)
        })
        .await?;
    Ok(download(bytes, format.content_type(), &format!("accounts.{}", format.extension())))
}
