//! Every error leaves as RFC 9457 problem+json (API) with a stable machine code; 5xx are
//! logged once with the request id and never leak internals.
use axum::http::{HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Response};
use kernel::{Error, FieldError};
use serde::Serialize;

#[derive(Debug, Serialize, utoipa::ToSchema)]
pub struct Problem {
    /// A URI reference naming the kind of problem, e.g. `/problems/validation`.
    #[serde(rename = "type")]
    pub kind: String,
    pub title: String,
    pub status: u16,
    pub detail: String,
    /// A stable machine-readable code, also the i18n key suffix (`problem-<code>`).
    pub code: String,
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub errors: Vec<FieldError>,
}

/// The web layer's error: a kernel error, or one found while parsing the request.
#[derive(Debug)]
pub struct ApiError {
    pub status: StatusCode,
    pub code: &'static str,
    pub title: &'static str,
    pub detail: String,
    pub errors: Vec<FieldError>,
    pub retry_after: Option<u64>,
}

impl ApiError {
    pub fn new(status: StatusCode, code: &'static str, title: &'static str, detail: impl Into<String>) -> Self {
        ApiError { status, code, title, detail: detail.into(), errors: Vec::new(), retry_after: None }
    }

    pub fn bad_request(detail: impl Into<String>) -> Self {
        Self::new(StatusCode::BAD_REQUEST, "bad_request", "Bad request", detail)
    }

    pub fn field(status: StatusCode, field: &str, message: impl Into<String>) -> Self {
        let message = message.into();
        let mut e = Self::new(status, "validation", "Invalid input", format!("{field}: {message}"));
        e.errors.push(FieldError::new(field, message));
        e
    }

    pub fn problem(&self) -> Problem {
        Problem {
            kind: format!("/problems/{}", self.code),
            title: self.title.to_owned(),
            status: self.status.as_u16(),
            detail: self.detail.clone(),
            code: self.code.to_owned(),
            errors: self.errors.clone(),
        }
    }
}

impl From<Error> for ApiError {
    fn from(e: Error) -> Self {
        match e {
            Error::Validation(errors) => {
                let detail =
                    errors.iter().map(|e| format!("{}: {}", e.field, e.message)).collect::<Vec<_>>().join("; ");
                ApiError {
                    errors,
                    ..Self::new(StatusCode::UNPROCESSABLE_ENTITY, "validation", "Invalid input", detail)
                }
            }
            Error::BadRequest(m) => Self::bad_request(m),
            Error::Unauthenticated => Self::new(
                StatusCode::UNAUTHORIZED,
                "unauthenticated",
                "Authentication required",
                "log in or send a valid API token",
            ),
            Error::Forbidden(p) => {
                Self::new(StatusCode::FORBIDDEN, "forbidden", "Forbidden", format!("this needs the permission {p}"))
            }
            Error::NotFound(what) => {
                Self::new(StatusCode::NOT_FOUND, "not_found", "Not found", format!("{what} not found"))
            }
            Error::Conflict { field, message } => {
                let mut e = Self::new(StatusCode::CONFLICT, "conflict", "Conflict", message.clone());
                if let Some(f) = field {
                    e.errors.push(FieldError::new(f, message));
                }
                e
            }
            Error::StaleVersion { current } => Self::new(
                StatusCode::PRECONDITION_FAILED,
                "stale_version",
                "Changed by someone else",
                format!("the record is now at version {current}; reload it and apply your change again"),
            ),
            Error::TooManyAttempts { retry_after_secs } => ApiError {
                retry_after: Some(retry_after_secs),
                ..Self::new(
                    StatusCode::TOO_MANY_REQUESTS,
                    "too_many_attempts",
                    "Too many attempts",
                    format!("try again in {retry_after_secs} seconds"),
                )
            },
            Error::Db(e) => internal(e.to_string()),
            Error::Internal(m) => internal(m),
        }
    }
}

impl From<kernel::DbError> for ApiError {
    fn from(e: kernel::DbError) -> Self {
        Error::from(e).into()
    }
}

fn internal(message: String) -> ApiError {
    tracing::error!(error = %message, "internal error");
    ApiError::new(
        StatusCode::INTERNAL_SERVER_ERROR,
        "internal",
        "Internal error",
        "something went wrong on our side; it has been logged",
    )
}

impl IntoResponse for ApiError {
    fn into_response(self) -> Response {
        let body = serde_json::to_vec(&self.problem()).unwrap_or_default();
        let mut response = (self.status, body).into_response();
        response.headers_mut().insert(header::CONTENT_TYPE, HeaderValue::from_static("application/problem+json"));
        if let Some(v) = self.retry_after.and_then(|secs| HeaderValue::from_str(&secs.to_string()).ok()) {
            response.headers_mut().insert(header::RETRY_AFTER, v);
        }
        response
    }
}

pub type ApiResult<T> = Result<T, ApiError>;
