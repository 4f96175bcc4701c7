//! Files attached to records: `/api/v1/expense-claims/{id}/attachments` (a claim's
//! receipts: list, upload) and `/api/v1/attachments/{id}` (download, delete). The area
//! owning the record decides who may: here, [`workflow::expenses`].
use axum::Router;
use axum::body::Bytes;
use axum::extract::{DefaultBodyLimit, FromRequest, Multipart, Request, State};
use axum::http::{HeaderMap, HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Response};
use axum::routing::get;
use kernel::attachments::{self, Attachment};
use kernel::{Error, Id};
use serde::Deserialize;
use workflow::expenses;

use crate::error::{ApiError, ApiResult};
use crate::extract::{PathId, Query};
use crate::state::{AppState, Credentials};

/// The policy of a stored file: no script, no form, not framed; the browser's own image
/// and PDF viewers (an embed and inline styles) allowed.
const FILE_CSP: &str =
    "script-src 'none'; object-src 'self'; frame-ancestors 'none'; base-uri 'none'; form-action 'none'";

/// Room for the multipart envelope around a file of the largest size.
const ENVELOPE: usize = 64 * 1024;

pub fn router() -> Router<AppState> {
    Router::new()
        .route(
            "/api/v1/expense-claims/{id}/attachments",
            get(list_claim).post(upload_claim).layer(DefaultBodyLimit::max(attachments::MAX_BYTES + ENVELOPE)),
        )
        .route("/api/v1/attachments/{id}", get(download).delete(remove))
}

pub fn too_large() -> ApiError {
    ApiError::field(StatusCode::PAYLOAD_TOO_LARGE, "file", "is larger than 10 MB, the most a file may have")
}

/// The uploaded file: the `file` part of a `multipart/form-data` body (with its file
/// name), or the raw body.
pub struct Upload {
    pub file_name: Option<String>,
    pub bytes: Bytes,
}

impl<S: Send + Sync> FromRequest<S> for Upload {
    type Rejection = ApiError;

    async fn from_request(req: Request, state: &S) -> Result<Self, ApiError> {
        let multipart = req
            .headers()
            .get(header::CONTENT_TYPE)
            .and_then(|v| v.to_str().ok())
            .is_some_and(|ct| ct.starts_with("multipart/form-data"));
        let limit = |status: StatusCode, text: String| {
            if status == StatusCode::PAYLOAD_TOO_LARGE { too_large() } else { ApiError::bad_request(text) }
        };
        if !multipart {
            let bytes = Bytes::from_request(req, state).await.map_err(|e| limit(e.status(), e.body_text()))?;
            return Ok(Upload { file_name: None, bytes });
        }
        let mut form = Multipart::from_request(req, state).await.map_err(|e| limit(e.status(), e.body_text()))?;
        loop {
            match form.next_field().await {
                Ok(Some(field)) if field.name() == Some("file") => {
                    let file_name = field.file_name().map(str::to_owned);
                    let bytes = field.bytes().await.map_err(|e| limit(e.status(), e.body_text()))?;
                    return Ok(Upload { file_name, bytes });
                }
                Ok(Some(_)) => {}
                Ok(None) => return Err(ApiError::field(StatusCode::UNPROCESSABLE_ENTITY, "file", "is required")),
                Err(e) => return Err(limit(e.status(), e.body_text())),
            }
        }
    }
}

#[derive(Debug, Default, Deserialize, utoipa::IntoParams)]
#[serde(deny_unknown_fields)]
#[into_params(parameter_in = Query)]
pub struct UploadParams {
    /// The file's name; needed with a raw body, overrides a multipart part's name.
    pub file_name: Option<String>,
}

/// A claim's receipts (within your scope, or a claim you are asked to approve).
#[utoipa::path(get, path = "/api/v1/expense-claims/{id}/attachments", tag = "workflow", params(("id" = String, Path)),
    responses((status = 200, body = Vec<Attachment>), (status = 404, body = crate::error::Problem)))]
pub async fn list_claim(
    State(state): State<AppState>,
    creds: Credentials,
    PathId(id): PathId,
) -> ApiResult<axum::Json<Vec<Attachment>>> {
    Ok(axum::Json(state.read(creds, move |tx, who| expenses::receipts(tx, who, id)).await?))
}

/// Attaches a receipt to a claim you may edit: an image (PNG, JPEG, GIF, WebP, HEIC) or a
/// PDF, at most 10 MB, as the multipart field `file` or as the raw body with
/// `?file_name=`. The type is read from the bytes, never from the client. Empty or not an
/// image/PDF: 422 (field `file`); too large: 413; the claim awaiting approval or approved:
/// 409.
#[utoipa::path(post, path = "/api/v1/expense-claims/{id}/attachments", tag = "workflow",
    params(("id" = String, Path), UploadParams),
    request_body(content = Vec<u8>, content_type = "application/octet-stream", description = "The file (or multipart/form-data with a `file` part)"),
    responses((status = 201, body = Attachment), (status = 409, body = crate::error::Problem),
        (status = 413, body = crate::error::Problem), (status = 422, body = crate::error::Problem)))]
pub async fn upload_claim(
    State(state): State<AppState>,
    creds: Credentials,
    PathId(id): PathId,
    Query(p): Query<UploadParams>,
    upload: Upload,
) -> ApiResult<Response> {
    if upload.bytes.len() > attachments::MAX_BYTES {
        return Err(too_large());
    }
    let name = p.file_name.or(upload.file_name).unwrap_or_default();
    let bytes = upload.bytes;
    let a = state.write(creds, move |tx, who| expenses::add_receipt(tx, who, id, &name, &bytes)).await?;
    let mut response = (StatusCode::CREATED, axum::Json(&a)).into_response();
    if let Ok(v) = HeaderValue::from_str(&format!("/api/v1/attachments/{}", a.id)) {
        response.headers_mut().insert(header::LOCATION, v);
    }
    Ok(response)
}

/// Which area owns a file of this record type (and so decides who may see it).
fn owner(record_type: &str) -> Result<(), Error> {
    match record_type {
        expenses::RECORD_TYPE => Ok(()),
        _ => Err(Error::NotFound("attachment")),
    }
}

/// Downloads a file, for whoever may read its record (a claim's approvers too). Images
/// and PDFs come inline, anything else as a download; the name survives in any script
/// (`filename*`, RFC 5987).
#[utoipa::path(get, path = "/api/v1/attachments/{id}", tag = "workflow", params(("id" = String, Path)),
    responses((status = 200, description = "The file's bytes", content_type = "application/octet-stream", body = Vec<u8>),
        (status = 404, body = crate::error::Problem)))]
pub async fn download(State(state): State<AppState>, creds: Credentials, PathId(id): PathId) -> ApiResult<Response> {
    let (a, bytes) = state.read(creds, move |tx, who| receipt(tx, who, id)).await?;
    Ok(file_response(&a, bytes))
}

fn receipt(tx: &mut kernel::Tx<'_>, who: &kernel::Principal, id: Id) -> kernel::Result<(Attachment, Vec<u8>)> {
    let a = attachments::find(tx, id)?.ok_or(Error::NotFound("attachment"))?;
    owner(&a.record_type)?;
    expenses::receipt(tx, who, id)
}

/// Deletes a file (softly) of a record you may edit; 409 while the record is locked.
#[utoipa::path(delete, path = "/api/v1/attachments/{id}", tag = "workflow", params(("id" = String, Path)),
    responses((status = 204), (status = 404, body = crate::error::Problem), (status = 409, body = crate::error::Problem)))]
pub async fn remove(State(state): State<AppState>, creds: Credentials, PathId(id): PathId) -> ApiResult<StatusCode> {
    state
        .write(creds, move |tx, who| {
            let a = attachments::find(tx, id)?.ok_or(Error::NotFound("attachment"))?;
            owner(&a.record_type)?;
            expenses::remove_receipt(tx, who, id)
        })
        .await?;
    Ok(StatusCode::NO_CONTENT)
}

/// The file as a response: its sniffed type, `nosniff`, and a `Content-Disposition` with
/// an ASCII fallback name and the real one as `filename*=UTF-8''…`.
pub fn file_response(a: &Attachment, bytes: Vec<u8>) -> Response {
    let mut headers = HeaderMap::new();
    let inline = a.is_image() || a.is_pdf();
    let content_type = if inline { a.content_type.as_str() } else { attachments::OCTET_STREAM };
    headers.insert(header::CONTENT_TYPE, HeaderValue::from_static(static_type(content_type)));
    headers.insert(header::X_CONTENT_TYPE_OPTIONS, HeaderValue::from_static("nosniff"));
    // The pages' policy (`object-src 'none'`, no inline styles) stops Chrome's built-in
    // PDF viewer (crbug.com/271452); a stored file runs no script in any case.
    headers.insert(header::CONTENT_SECURITY_POLICY, HeaderValue::from_static(FILE_CSP));
    headers.insert(header::CACHE_CONTROL, HeaderValue::from_static("private, max-age=3600"));
    if let Ok(v) = HeaderValue::from_str(&format!("\"{}\"", a.sha256)) {
        headers.insert(header::ETAG, v);
    }
    if let Ok(v) =
        HeaderValue::from_str(&content_disposition(if inline { "inline" } else { "attachment" }, &a.file_name))
    {
        headers.insert(header::CONTENT_DISPOSITION, v);
    }
    (StatusCode::OK, headers, bytes).into_response()
}

fn static_type(t: &str) -> &'static str {
    match t {
        "image/png" => "image/png",
        "image/jpeg" => "image/jpeg",
        "image/gif" => "image/gif",
        "image/webp" => "image/webp",
        "application/pdf" => "application/pdf",
        _ => attachments::OCTET_STREAM,
    }
}

/// `inline; filename="ascii"; filename*=UTF-8''percent-encoded` (RFC 6266 / RFC 5987):
/// every browser shows the UTF-8 name; the ASCII one is for very old clients.
pub fn content_disposition(kind: &str, name: &str) -> String {
    let ascii: String =
        name.chars().map(|c| if c.is_ascii_graphic() && c != '"' && c != '\\' || c == ' ' { c } else { '_' }).collect();
    let encoded: String = name
        .bytes()
        .map(|b| {
            if b.is_ascii_alphanumeric() || b"!#$&+-.^_`|~".contains(&b) {
                (b as char).to_string()
            } else {
                format!("%{b:02X}")
            }
        })
        .collect();
    format!("{kind}; filename=\"{ascii}\"; filename*=UTF-8''{encoded}")
}

#[cfg(test)]
mod tests {
    use super::content_disposition;

    #[test]
    fn disposition_keeps_chinese_and_korean_names() {
        assert_eq!(
            content_disposition("inline", "发票 영수증.pdf"),
            "inline; filename=\"__ ___.pdf\"; filename*=UTF-8''%E5%8F%91%E7%A5%A8%20%EC%98%81%EC%88%98%EC%A6%9D.pdf"
        );
        assert_eq!(
            content_disposition("attachment", "a\"b.txt"),
            "attachment; filename=\"a_b.txt\"; filename*=UTF-8''a%22b.txt"
        );
    }
}
