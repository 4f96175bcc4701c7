//! Data quality over JSON: the duplicate scan, merges and their undo, handovers, consent
//! and do-not-contact, and data-subject export and erase.
use axum::Router;
use axum::extract::{Path, State};
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post, put};
use customers::RecordType;
use customers::consent::{self, Consent, ConsentInput, Consents, DoNotContactInput};
use customers::duplicates::{self, Candidate};
use customers::handover::{self, Handover, NewHandover};
use customers::merge::{self, Merge, NewMerge};
use customers::privacy::{self, EraseRequest, Erased, PersonalData};
use kernel::Id;
use serde::{Deserialize, Serialize};

use crate::error::{ApiError, ApiResult};
use crate::extract::{Json, PathId, Query};
use crate::state::{AppState, Credentials};

pub fn router() -> Router<AppState> {
    Router::new()
        .route("/api/v1/duplicates", get(duplicates))
        .route("/api/v1/merges", post(create_merge))
        .route("/api/v1/merges/{id}/undo", post(undo_merge))
        .route("/api/v1/handovers", post(create_handover))
        .route("/api/v1/contacts/{id}/consents", get(list_consents))
        .route("/api/v1/contacts/{id}/consents/{channel}", put(set_consent))
        .route("/api/v1/contacts/{id}/do-not-contact", put(set_do_not_contact))
        .route("/api/v1/contacts/{id}/personal-data", get(personal_data))
        .route("/api/v1/contacts/{id}/erase", post(erase))
}

#[derive(Debug, Deserialize, utoipa::IntoParams)]
#[serde(deny_unknown_fields)]
#[into_params(parameter_in = Query)]
pub struct DuplicateParams {
    /// `contact` or `account`.
    pub record_type: String,
    /// At most 500; default 50.
    #[param(minimum = 1, maximum = 500)]
    pub limit: Option<u32>,
}

#[derive(Debug, Serialize, utoipa::ToSchema)]
pub struct DuplicateList {
    pub items: Vec<Candidate>,
}

fn record_type(text: &str) -> Result<RecordType, ApiError> {
    RecordType::parse(text).map_err(|m| kernel::Error::field("record_type", m).into())
}

/// Candidate duplicate pairs among the records you can see, best first: the same e-mail
/// or phone, the same or a similar name (ignoring case, width, spaces, punctuation and the
/// order of words), the same company. The first scan after an upgrade builds the keys.
#[utoipa::path(get, path = "/api/v1/duplicates", tag = "customers", params(DuplicateParams),
    responses((status = 200, body = DuplicateList)))]
pub async fn duplicates(
    State(state): State<AppState>,
    creds: Credentials,
    Query(p): Query<DuplicateParams>,
) -> ApiResult<axum::Json<DuplicateList>> {
    let kind = record_type(&p.record_type)?;
    let built = state.read(creds.clone(), move |tx, _| duplicates::is_built(tx, kind)).await?;
    if !built {
        state.write(creds.clone(), move |tx, who| duplicates::ensure_built(tx, who, kind)).await?;
    }
    let limit = p.limit.map(|l| l as usize);
    let items = state.read(creds, move |tx, who| duplicates::scan(tx, who, kind, limit)).await?;
    Ok(axum::Json(DuplicateList { items }))
}

/// Merges `merge_ids` into `keep_id`, field by field (`fields` names the record whose
/// value wins; default: the kept record's, else the first non-empty). Every related
/// record moves to the kept one; the merged ones are deleted and redirect to it.
#[utoipa::path(post, path = "/api/v1/merges", tag = "customers", request_body = NewMerge,
    responses((status = 201, body = Merge)))]
pub async fn create_merge(
    State(state): State<AppState>,
    creds: Credentials,
    Json(input): Json<NewMerge>,
) -> ApiResult<(StatusCode, axum::Json<Merge>)> {
    let done = state.write(creds, move |tx, who| merge::merge(tx, who, input)).await?;
    Ok((StatusCode::CREATED, axum::Json(done)))
}

/// Undoes a merge exactly; refused with 409 when it was undone already or the records
/// changed since in a way undo would lose.
#[utoipa::path(post, path = "/api/v1/merges/{id}/undo", tag = "customers", params(("id" = String, Path)),
    responses((status = 200, body = Merge)))]
pub async fn undo_merge(
    State(state): State<AppState>,
    creds: Credentials,
    PathId(id): PathId,
) -> ApiResult<axum::Json<Merge>> {
    Ok(axum::Json(state.write(creds, move |tx, who| merge::undo(tx, who, id)).await?))
}

/// Hands every account, contact and open task a user owns (within your scope) over to
/// another user; `dry_run` only counts.
#[utoipa::path(post, path = "/api/v1/handovers", tag = "customers", request_body = NewHandover,
    responses((status = 200, body = Handover)))]
pub async fn create_handover(
    State(state): State<AppState>,
    creds: Credentials,
    Json(input): Json<NewHandover>,
) -> ApiResult<axum::Json<Handover>> {
    Ok(axum::Json(state.write(creds, move |tx, who| handover::handover(tx, who, input)).await?))
}

/// A contact's consent per channel (current and history) and do-not-contact flag.
#[utoipa::path(get, path = "/api/v1/contacts/{id}/consents", tag = "customers", params(("id" = String, Path)),
    responses((status = 200, body = Consents)))]
pub async fn list_consents(
    State(state): State<AppState>,
    creds: Credentials,
    PathId(id): PathId,
) -> ApiResult<axum::Json<Consents>> {
    Ok(axum::Json(state.read(creds, move |tx, who| consent::list(tx, who, id)).await?))
}

fn path_id(raw: &str) -> Result<Id, ApiError> {
    raw.parse().map_err(|_| {
        ApiError::new(StatusCode::NOT_FOUND, "not_found", "Not found", format!("{raw:?} is not a record id"))
    })
}

/// Records a consent decision (granted or withdrawn) for `email`, `sms`, `phone` or `post`.
#[utoipa::path(put, path = "/api/v1/contacts/{id}/consents/{channel}", tag = "customers",
    params(("id" = String, Path), ("channel" = String, Path, description = "email, sms, phone or post")),
    request_body = ConsentInput, responses((status = 200, body = Consent)))]
pub async fn set_consent(
    State(state): State<AppState>,
    creds: Credentials,
    Path((id, channel)): Path<(String, String)>,
    Json(input): Json<ConsentInput>,
) -> ApiResult<axum::Json<Consent>> {
    let id = path_id(&id)?;
    Ok(axum::Json(state.write(creds, move |tx, who| consent::set(tx, who, id, &channel, input)).await?))
}

/// Sets or clears the do-not-contact flag.
#[utoipa::path(put, path = "/api/v1/contacts/{id}/do-not-contact", tag = "customers", params(("id" = String, Path)),
    request_body = DoNotContactInput, responses((status = 200, body = Consents)))]
pub async fn set_do_not_contact(
    State(state): State<AppState>,
    creds: Credentials,
    PathId(id): PathId,
    Json(input): Json<DoNotContactInput>,
) -> ApiResult<axum::Json<Consents>> {
    Ok(axum::Json(state.write(creds, move |tx, who| consent::set_do_not_contact(tx, who, id, input)).await?))
}

/// Everything held about the person (data-subject access request); audited.
#[utoipa::path(get, path = "/api/v1/contacts/{id}/personal-data", tag = "customers", params(("id" = String, Path)),
    responses((status = 200, body = PersonalData)))]
pub async fn personal_data(
    State(state): State<AppState>,
    creds: Credentials,
    PathId(id): PathId,
) -> ApiResult<axum::Json<PersonalData>> {
    // A write: the export itself is audited.
    Ok(axum::Json(state.write(creds, move |tx, who| privacy::export(tx, who, id)).await?))
}

/// Erases the person: personal fields anonymised, activities and tasks kept without their
/// words, search terms and duplicate keys removed. `confirm` must repeat the contact id.
#[utoipa::path(post, path = "/api/v1/contacts/{id}/erase", tag = "customers", params(("id" = String, Path)),
    request_body = EraseRequest, responses((status = 200, body = Erased)))]
pub async fn erase(
    State(state): State<AppState>,
    creds: Credentials,
    PathId(id): PathId,
    Json(input): Json<EraseRequest>,
) -> ApiResult<axum::Json<Erased>> {
    Ok(axum::Json(state.write(creds, move |tx, who| privacy::erase(tx, who, id, input)).await?))
}

/// The answer to a read of an account or contact: the record, or where a merged-away one
/// lives on now.
pub enum Found<T> {
    Record(T),
    MovedTo(Id),
}

/// Runs `get`; when the record is not found, looks for the record it was merged into.
pub fn get_or_redirect<T>(
    tx: &mut kernel::Tx<'_>,
    who: &kernel::Principal,
    kind: RecordType,
    id: Id,
    get: impl FnOnce(&mut kernel::Tx<'_>, &kernel::Principal, Id) -> kernel::Result<T>,
) -> kernel::Result<Found<T>> {
    match get(tx, who, id) {
        Ok(record) => Ok(Found::Record(record)),
        Err(kernel::Error::NotFound(what)) => match merge::redirect(tx, who, kind, id)? {
            Some(to) => Ok(Found::MovedTo(to)),
            None => Err(kernel::Error::NotFound(what)),
        },
        Err(e) => Err(e),
    }
}

/// 308 to the kept record's address.
pub fn moved_to(path: &str, id: Id) -> Response {
    (StatusCode::PERMANENT_REDIRECT, [(axum::http::header::LOCATION, format!("{path}/{id}"))]).into_response()
}
