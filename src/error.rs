//! The one error type of the domain: what went wrong, in words a caller can act on, with
//! one entry per invalid field of a request. It knows nothing of HTTP: `http::problem`
//! turns it into a status and an `application/problem+json` body (API) or an error page.

use serde::Serialize;
use utoipa::ToSchema;

use crate::systemd::SystemdError;
use crate::systemd::journal::scan::ScanError;

/// One invalid field of a request body.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, ToSchema)]
pub struct FieldError {
    pub field: String,
    pub message: String,
}

impl FieldError {
    pub fn new(field: impl Into<String>, message: impl Into<String>) -> Self {
        Self {
            field: field.into(),
            message: message.into(),
        }
    }
}

#[derive(Debug, thiserror::Error)]
pub enum AppError {
    /// No valid credentials (or a wrong password).
    #[error("authentication required")]
    Unauthorized,
    #[error("{0}")]
    Forbidden(String),
    /// A parameter that is not of the form it must have (not a body field: those are
    /// `Validation`).
    #[error("{0}")]
    BadRequest(String),
    #[error("{0}")]
    NotFound(String),
    #[error("{0}")]
    Conflict(String),
    #[error("the request has {} invalid field(s)", .0.len())]
    Validation(Vec<FieldError>),
    #[error("too many failed attempts; retry in {retry_after} s")]
    TooManyRequests { retry_after: u64 },
    /// Something unitdeck depends on (systemd, the journal) cannot answer now.
    #[error("{0}")]
    Unavailable(String),
    #[error("{0}")]
    Internal(String),
}

pub type AppResult<T> = Result<T, AppError>;

impl AppError {
    pub fn internal(err: impl std::fmt::Display) -> Self {
        Self::Internal(err.to_string())
    }
}

impl From<sqlx::Error> for AppError {
    fn from(err: sqlx::Error) -> Self {
        tracing::error!(error = %err, "database error");
        Self::Internal(format!("database error: {err}"))
    }
}

impl From<SystemdError> for AppError {
    fn from(err: SystemdError) -> Self {
        match err {
            SystemdError::Disconnected(_) => AppError::Unavailable(err.to_string()),
            SystemdError::NoSuchUnit(_) => AppError::NotFound(err.to_string()),
            SystemdError::Refused(msg) => AppError::Conflict(msg),
            SystemdError::Bus(_) => AppError::Internal(err.to_string()),
        }
    }
}

impl From<ScanError> for AppError {
    fn from(err: ScanError) -> Self {
        match err {
            ScanError::Busy | ScanError::TimedOut => AppError::Unavailable(err.to_string()),
            ScanError::Pattern(why) => {
                AppError::BadRequest(format!("query parameter grep: PCRE2 gave up: {why}"))
            }
            ScanError::Failed(_) => AppError::internal(err),
        }
    }
}
