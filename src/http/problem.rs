//! Errors as HTTP answers, in one place: RFC 9457 `application/problem+json` on the JSON
//! routes, an error page on the HTML ones. The domain's `AppError` says what went wrong;
//! `ApiError` adds what only HTTP can get wrong (a method, a body size, a host name).

use askama::Template;
use axum::http::{HeaderValue, StatusCode, header};
use axum::response::{Html, IntoResponse, Response};
use serde::Serialize;
use utoipa::ToSchema;

use crate::error::{AppError, FieldError};

/// The problem+json body of every 4xx/5xx under `/api/`.
#[derive(Debug, Serialize, ToSchema)]
pub struct Problem {
    #[serde(rename = "type")]
    pub kind: String,
    pub title: String,
    pub status: u16,
    pub detail: String,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub errors: Option<Vec<FieldError>>,
}

#[derive(Debug, thiserror::Error)]
pub enum ApiError {
    #[error(transparent)]
    App(#[from] AppError),
    #[error("{0} is not allowed on this path")]
    MethodNotAllowed(String),
    #[error("request body is larger than {0} bytes")]
    PayloadTooLarge(usize),
    /// The request named a host this server does not answer to (421).
    #[error("{0}")]
    MisdirectedRequest(String),
}

pub type ApiResult<T> = Result<T, ApiError>;

impl ApiError {
    pub fn status(&self) -> StatusCode {
        match self {
            Self::App(e) => status_of(e),
            Self::MethodNotAllowed(_) => StatusCode::METHOD_NOT_ALLOWED,
            Self::PayloadTooLarge(_) => StatusCode::PAYLOAD_TOO_LARGE,
            Self::MisdirectedRequest(_) => StatusCode::MISDIRECTED_REQUEST,
        }
    }

    /// A short, stable slug used in the problem `type` URI.
    fn slug(&self) -> &'static str {
        match self {
            Self::App(e) => match e {
                AppError::Unauthorized => "unauthorized",
                AppError::Forbidden(_) => "forbidden",
                AppError::BadRequest(_) => "bad-request",
                AppError::NotFound(_) => "not-found",
                AppError::Conflict(_) => "conflict",
                AppError::Validation(_) => "validation",
                AppError::TooManyRequests { .. } => "too-many-requests",
                AppError::Unavailable(_) => "unavailable",
                AppError::Internal(_) => "internal",
            },
            Self::MethodNotAllowed(_) => "method-not-allowed",
            Self::PayloadTooLarge(_) => "payload-too-large",
            Self::MisdirectedRequest(_) => "misdirected-request",
        }
    }

    pub fn problem(&self) -> Problem {
        let status = self.status();
        Problem {
            kind: format!("/problems/{}", self.slug()),
            title: status.canonical_reason().unwrap_or("Error").to_string(),
            status: status.as_u16(),
            detail: self.to_string(),
            errors: match self {
                Self::App(AppError::Validation(errors)) => Some(errors.clone()),
                _ => None,
            },
        }
    }
}

impl IntoResponse for ApiError {
    fn into_response(self) -> Response {
        if matches!(self, Self::App(AppError::Internal(_))) {
            tracing::error!(error = %self, "internal error");
        }
        let status = self.status();
        let body = serde_json::to_vec(&self.problem()).unwrap_or_default();
        let mut response = (status, body).into_response();
        let headers = response.headers_mut();
        headers.insert(
            header::CONTENT_TYPE,
            HeaderValue::from_static("application/problem+json"),
        );
        match self {
            Self::App(AppError::TooManyRequests { retry_after }) => {
                headers.insert(header::RETRY_AFTER, HeaderValue::from(retry_after));
            }
            Self::App(AppError::Unauthorized) => {
                headers.insert(
                    header::WWW_AUTHENTICATE,
                    HeaderValue::from_static("Bearer realm=\"unitdeck\""),
                );
            }
            _ => {}
        }
        response
    }
}

/// The status a domain error answers with.
pub fn status_of(err: &AppError) -> StatusCode {
    match err {
        AppError::Unauthorized => StatusCode::UNAUTHORIZED,
        AppError::Forbidden(_) => StatusCode::FORBIDDEN,
        AppError::BadRequest(_) => StatusCode::BAD_REQUEST,
        AppError::NotFound(_) => StatusCode::NOT_FOUND,
        AppError::Conflict(_) => StatusCode::CONFLICT,
        AppError::Validation(_) => StatusCode::UNPROCESSABLE_ENTITY,
        AppError::TooManyRequests { .. } => StatusCode::TOO_MANY_REQUESTS,
        AppError::Unavailable(_) => StatusCode::SERVICE_UNAVAILABLE,
        AppError::Internal(_) => StatusCode::INTERNAL_SERVER_ERROR,
    }
}

/// Handlers return the domain's result as it is: an error becomes its problem+json.
impl IntoResponse for AppError {
    fn into_response(self) -> Response {
        ApiError::App(self).into_response()
    }
}

/// An error shown as a page (HTML routes) rather than problem+json.
pub struct PageError(pub ApiError);

impl From<AppError> for PageError {
    fn from(err: AppError) -> Self {
        Self(err.into())
    }
}

impl From<ApiError> for PageError {
    fn from(err: ApiError) -> Self {
        Self(err)
    }
}

#[derive(Template)]
#[template(path = "error.html")]
struct ErrorPage<'a> {
    status: u16,
    title: &'a str,
    detail: String,
    /// unitdeck's root relative to the page (`http::base`).
    root: String,
}

impl IntoResponse for PageError {
    fn into_response(self) -> Response {
        let status = self.0.status();
        let page = ErrorPage {
            status: status.as_u16(),
            title: status.canonical_reason().unwrap_or("Error"),
            detail: self.0.to_string(),
            root: super::base::here().root,
        };
        match page.render() {
            Ok(html) => (status, Html(html)).into_response(),
            Err(_) => (StatusCode::INTERNAL_SERVER_ERROR, "error page failed").into_response(),
        }
    }
}

/// An error as problem+json on the JSON routes (`/api/`, `/healthz`), as a page elsewhere.
pub fn error_for(path: &str, err: impl Into<ApiError>) -> Response {
    let err = err.into();
    if path.starts_with("/api/") || path == "/healthz" {
        err.into_response()
    } else {
        PageError(err).into_response()
    }
}
