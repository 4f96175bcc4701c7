//! Request extractors that turn every rejection into our problem+json.
use axum::body::Bytes;
use axum::extract::{FromRequest, FromRequestParts, Request};
use axum::http::{StatusCode, header, request::Parts};
use serde::de::DeserializeOwned;

use crate::error::ApiError;

/// JSON body: must be `application/json`, well-formed, with no unknown fields (the
/// types use `deny_unknown_fields`); a bad field is named in `errors`.
pub struct Json<T>(pub T);

impl<T: DeserializeOwned, S: Send + Sync> FromRequest<S> for Json<T> {
    type Rejection = ApiError;

    async fn from_request(req: Request, state: &S) -> Result<Self, ApiError> {
        let is_json = req
            .headers()
            .get(header::CONTENT_TYPE)
            .and_then(|v| v.to_str().ok())
            .is_some_and(|ct| ct.starts_with("application/json") || ct.contains("+json"));
        if !is_json {
            return Err(ApiError::new(
                StatusCode::UNSUPPORTED_MEDIA_TYPE,
                "unsupported_media_type",
                "Unsupported media type",
                "send the body as application/json",
            ));
        }
        let bytes = Bytes::from_request(req, state).await.map_err(|e| {
            if e.status() == StatusCode::PAYLOAD_TOO_LARGE {
                ApiError::new(
                    StatusCode::PAYLOAD_TOO_LARGE,
                    "too_large",
                    "Body too large",
                    "the request body is larger than allowed",
                )
            } else {
                ApiError::bad_request(e.body_text())
            }
        })?;
        parse_json(&bytes).map(Json)
    }
}

pub fn parse_json<T: DeserializeOwned>(bytes: &[u8]) -> Result<T, ApiError> {
    let mut de = serde_json::Deserializer::from_slice(bytes);
    let parsed = serde_path_to_error::deserialize(&mut de);
    if parsed.is_ok() {
        de.end().map_err(|e| ApiError::bad_request(format!("malformed JSON: {e}")))?;
    }
    match parsed {
        Ok(v) => Ok(v),
        Err(e) => {
            let inner = e.inner();
            let path = e.path().to_string();
            if inner.is_syntax() || inner.is_eof() {
                return Err(ApiError::bad_request(format!("malformed JSON: {inner}")));
            }
            let message = inner.to_string();
            // Name the offending field: the path, or the unknown field itself.
            let field = if let Some(rest) = message.strip_prefix("unknown field `") {
                // The path already ends with the unknown field's name.
                if path == "." { rest.split('`').next().unwrap_or_default().to_owned() } else { path }
            } else if let Some(rest) = message.strip_prefix("missing field `") {
                rest.split('`').next().unwrap_or_default().to_owned()
            } else if path == "." {
                "body".to_owned()
            } else {
                path
            };
            let message = message.split(" at line ").next().unwrap_or_default().to_owned();
            Err(ApiError::field(StatusCode::UNPROCESSABLE_ENTITY, &field, message))
        }
    }
}

/// Query string with the same error shape.
pub struct Query<T>(pub T);

impl<T: DeserializeOwned, S: Send + Sync> FromRequestParts<S> for Query<T> {
    type Rejection = ApiError;

    async fn from_request_parts(parts: &mut Parts, _: &S) -> Result<Self, ApiError> {
        let query = parts.uri.query().unwrap_or_default();
        serde_urlencoded_compat(query).map(Query)
    }
}

fn serde_urlencoded_compat<T: DeserializeOwned>(query: &str) -> Result<T, ApiError> {
    axum::extract::Query::<T>::try_from_uri(
        &format!("/?{query}").parse().map_err(|_| ApiError::bad_request("bad query string"))?,
    )
    .map(|q| q.0)
    .map_err(|e| {
        let text = e.body_text();
        let message = text.trim_start_matches("Failed to deserialize query string: ").to_owned();
        let field = message.split('`').nth(1).unwrap_or("query").to_owned();
        ApiError::field(StatusCode::UNPROCESSABLE_ENTITY, &field, message)
    })
}

/// A path id: a bad one is a 404 (no such record), not a 400.
pub struct PathId(pub kernel::Id);

impl<S: Send + Sync> FromRequestParts<S> for PathId {
    type Rejection = ApiError;

    async fn from_request_parts(parts: &mut Parts, state: &S) -> Result<Self, ApiError> {
        let axum::extract::Path(raw) = axum::extract::Path::<String>::from_request_parts(parts, state)
            .await
            .map_err(|e| ApiError::bad_request(e.body_text()))?;
        raw.parse().map(PathId).map_err(|_| {
            ApiError::new(StatusCode::NOT_FOUND, "not_found", "Not found", format!("{raw:?} is not a record id"))
        })
    }
}

/// `If-Match: "<version>"` (or `W/"<version>"`), if sent.
pub struct IfMatch(pub Option<i64>);

impl<S: Send + Sync> FromRequestParts<S> for IfMatch {
    type Rejection = ApiError;

    async fn from_request_parts(parts: &mut Parts, _: &S) -> Result<Self, ApiError> {
        let Some(value) = parts.headers.get(header::IF_MATCH) else { return Ok(IfMatch(None)) };
        let text = value.to_str().unwrap_or_default().trim();
        let text = text.trim_start_matches("W/").trim_matches('"');
        text.parse::<i64>().map(|v| IfMatch(Some(v))).map_err(|_| {
            ApiError::field(StatusCode::BAD_REQUEST, "If-Match", "must be the record's version in quotes, e.g. \"3\"")
        })
    }
}
