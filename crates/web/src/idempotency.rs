//! `Idempotency-Key` on POST: the first response is stored and replayed for a repeat
//! with the same key by the same user; nothing is written twice. A key is claimed
//! before the handler runs, so two concurrent repeats cannot both write.
use axum::body::{Body, to_bytes};
use axum::extract::{FromRequestParts, Request, State};
use axum::http::{HeaderValue, Method, StatusCode, header};
use axum::middleware::Next;
use axum::response::{IntoResponse, Response};
use chrono::Utc;

use crate::error::ApiError;
use crate::state::{AppState, Credentials};

const MAX_STORED_BODY: usize = 256 * 1024;

enum Claim {
    Claimed(i64),
    Replay(u16, String),
}

pub async fn layer(State(state): State<AppState>, request: Request, next: Next) -> Response {
    if request.method() != Method::POST {
        return next.run(request).await;
    }
    let Some(key) = request.headers().get("idempotency-key").and_then(|v| v.to_str().ok()).map(str::to_owned) else {
        return next.run(request).await;
    };
    if key.is_empty() || key.len() > 200 {
        return ApiError::field(StatusCode::BAD_REQUEST, "Idempotency-Key", "must be 1–200 characters").into_response();
    }
    let path = request.uri().path().to_owned();
    let (mut parts, body) = request.into_parts();
    let Ok(creds) = Credentials::from_request_parts(&mut parts, &state).await;
    let request = Request::from_parts(parts, body);
    let claim_key = key.clone();
    let claim_path = path.clone();
    let claim = state
        .write(creds.clone(), move |tx, who| {
            let existing: Option<(Option<i64>, Option<String>, String)> = tx
                .query_opt_sql::<StoredRow>(
                    "SELECT status, response, path FROM idempotency_keys WHERE user_id = $1 AND key = $2",
                    &[who.user_id.into(), claim_key.clone().into()],
                )?
                .map(|r| (r.status, r.response, r.path));
            match existing {
                Some((_, _, stored_path)) if stored_path != claim_path => Err(kernel::Error::field(
                    "Idempotency-Key",
                    "was already used for another request",
                )),
                Some((Some(status), response, _)) => Ok(Claim::Replay(status as u16, response.unwrap_or_default())),
                Some((None, _, _)) => Err(kernel::Error::Conflict {
                    field: Some("Idempotency-Key".into()),
                    message: "a request with this key is still being processed".into(),
                }),
                None => {
                    tx.execute_sql(
                        "INSERT INTO idempotency_keys (user_id, key, method, path, created_at) VALUES ($1, $2, 'POST', $3, $4)",
                        &[who.user_id.into(), claim_key.clone().into(), claim_path.clone().into(), Utc::now().into()],
                    )?;
                    Ok(Claim::Claimed(who.user_id.get()))
                }
            }
        })
        .await;
    let user_id = match claim {
        Err(e) => return e.into_response(),
        Ok(Claim::Replay(status, body)) => {
            let mut response = (StatusCode::from_u16(status).unwrap_or(StatusCode::OK), body).into_response();
            response.headers_mut().insert(header::CONTENT_TYPE, HeaderValue::from_static("application/json"));
            response.headers_mut().insert("idempotent-replayed", HeaderValue::from_static("true"));
            return response;
        }
        Ok(Claim::Claimed(user_id)) => user_id,
    };
    let response = next.run(request).await;
    let (parts, body) = response.into_parts();
    let bytes = to_bytes(body, MAX_STORED_BODY).await.unwrap_or_default();
    let status = parts.status.as_u16();
    let stored = String::from_utf8_lossy(&bytes).into_owned();
    let result = state
        .db
        .write(move |tx| {
            if status >= 500 {
                // The request failed on our side: let the client retry with the same key.
                tx.execute_sql(
                    "DELETE FROM idempotency_keys WHERE user_id = $1 AND key = $2",
                    &[user_id.into(), key.into()],
                )
            } else {
                tx.execute_sql(
                    "UPDATE idempotency_keys SET status = $1, response = $2 WHERE user_id = $3 AND key = $4",
                    &[i64::from(status).into(), stored.into(), user_id.into(), key.into()],
                )
            }
        })
        .await;
    if let Err(e) = result {
        tracing::error!(error = %e, "could not store an idempotent response");
    }
    Response::from_parts(parts, Body::from(bytes))
}

struct StoredRow {
    status: Option<i64>,
    response: Option<String>,
    path: String,
}

impl kernel::db::FromRow for StoredRow {
    fn from_row(row: &kernel::db::Row<'_>) -> Result<Self, kernel::DbError> {
        Ok(StoredRow { status: row.get("status")?, response: row.get("response")?, path: row.get("path")? })
    }
}
