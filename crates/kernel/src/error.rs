//! The one error type of every area function. The web layer maps it to problem+json.
use serde::Serialize;

use crate::db::DbError;

/// One bad field of a request, named the way the client sent it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, utoipa::ToSchema)]
pub struct FieldError {
    pub field: String,
    pub message: String,
}

impl FieldError {
    pub fn new(field: impl Into<String>, message: impl Into<String>) -> Self {
        FieldError { field: field.into(), message: message.into() }
    }
}

#[derive(Debug, thiserror::Error)]
pub enum Error {
    /// 422: the input is well-formed but some fields are not acceptable.
    #[error("invalid input: {}", describe(.0))]
    Validation(Vec<FieldError>),
    /// 400: the request itself is unusable.
    #[error("{0}")]
    BadRequest(String),
    /// 401: who is asking is unknown.
    #[error("authentication required")]
    Unauthenticated,
    /// 403: the caller lacks the named permission.
    #[error("missing permission {0}")]
    Forbidden(String),
    /// 404: no such record, or not within the caller's data scope.
    #[error("{0} not found")]
    NotFound(&'static str),
    /// 409: the change conflicts with existing data (a unique field, a record in use).
    #[error("{message}")]
    Conflict { field: Option<String>, message: String },
    /// 412: the record changed since the caller read it (`If-Match` or `version`).
    #[error("the record was changed by someone else (now at version {current})")]
    StaleVersion { current: i64 },
    /// 429: too many attempts; try again after the given number of seconds.
    #[error("too many attempts; try again in {retry_after_secs} s")]
    TooManyAttempts { retry_after_secs: u64 },
    #[error(transparent)]
    Db(DbError),
    #[error("internal error: {0}")]
    Internal(String),
}

fn describe(errors: &[FieldError]) -> String {
    errors.iter().map(|e| format!("{}: {}", e.field, e.message)).collect::<Vec<_>>().join("; ")
}

impl Error {
    pub fn field(field: impl Into<String>, message: impl Into<String>) -> Self {
        Error::Validation(vec![FieldError::new(field, message)])
    }

    pub fn conflict(field: impl Into<String>, message: impl Into<String>) -> Self {
        Error::Conflict { field: Some(field.into()), message: message.into() }
    }
}

impl From<DbError> for Error {
    /// A unique-constraint violation names its field (409); anything else is internal.
    fn from(e: DbError) -> Self {
        if let Some(columns) = e.unique_violation() {
            return Error::Conflict { message: format!("{columns} is already taken"), field: Some(columns) };
        }
        Error::Db(e)
    }
}

pub type Result<T, E = Error> = std::result::Result<T, E>;

/// Collects field errors so a form reports every bad field at once, not the first.
#[derive(Debug, Default)]
pub struct Validator {
    errors: Vec<FieldError>,
}

impl Validator {
    pub fn new() -> Self {
        Self::default()
    }

    pub fn add(&mut self, field: &str, message: impl Into<String>) {
        self.errors.push(FieldError::new(field, message));
    }

    /// Keeps `Ok` values, records `Err` ones under `field`.
    pub fn check<T>(&mut self, field: &str, result: std::result::Result<T, String>) -> Option<T> {
        match result {
            Ok(v) => Some(v),
            Err(message) => {
                self.add(field, message);
                None
            }
        }
    }

    pub fn finish(self) -> Result<()> {
        if self.errors.is_empty() { Ok(()) } else { Err(Error::Validation(self.errors)) }
    }
}
