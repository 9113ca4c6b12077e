//! Extractors whose rejections are problem+json like every other API error.

use std::net::{IpAddr, Ipv4Addr, SocketAddr};

use axum::extract::{ConnectInfo, FromRequest, FromRequestParts, Request};
use axum::http::request::Parts;
use axum::http::{HeaderMap, header};
use serde::de::DeserializeOwned;

use crate::auth::Principal;
use crate::error::{AppError, FieldError};

/// The largest JSON body any route accepts.
pub const MAX_BODY: usize = 64 * 1024;

/// A JSON body: a type mismatch is a 422 naming the field, bad syntax a 400,
/// a body over `MAX_BODY` a 413.
pub struct ApiJson<T>(pub T);

impl<S: Send + Sync, T: DeserializeOwned> FromRequest<S> for ApiJson<T> {
    type Rejection = AppError;

    async fn from_request(req: Request, state: &S) -> Result<Self, Self::Rejection> {
        let json_content = req
            .headers()
            .get(header::CONTENT_TYPE)
            .and_then(|v| v.to_str().ok())
            .is_some_and(|v| v.starts_with("application/json") || v.contains("+json"));
        if !json_content {
            return Err(AppError::BadRequest(
                "expected a JSON body with Content-Type: application/json".into(),
            ));
        }
        let bytes = axum::body::Bytes::from_request(req, state)
            .await
            .map_err(|_| AppError::PayloadTooLarge(MAX_BODY))?;
        parse_json(&bytes).map(ApiJson)
    }
}

/// Parses JSON, naming the offending field on a type error.
pub fn parse_json<T: DeserializeOwned>(bytes: &[u8]) -> Result<T, AppError> {
    let mut de = serde_json::Deserializer::from_slice(bytes);
    serde_path_to_error::deserialize(&mut de).map_err(|err| {
        let path = err.path().to_string();
        let inner = err.into_inner();
        if inner.is_syntax() || inner.is_eof() {
            AppError::BadRequest(format!("the body is not valid JSON: {inner}"))
        } else {
            let field = if path == "." {
                "body".to_string()
            } else {
                path
            };
            AppError::Validation(vec![FieldError::new(field, inner.to_string())])
        }
    })
}

/// Path parameters; a value of the wrong type is a 400 problem.
#[derive(axum::extract::FromRequestParts)]
#[from_request(via(axum::extract::Path), rejection(AppError))]
pub struct ApiPath<T>(pub T);

/// Query parameters; a malformed one is a 400 problem naming it.
#[derive(axum::extract::FromRequestParts)]
#[from_request(via(axum::extract::Query), rejection(AppError))]
pub struct ApiQuery<T>(pub T);

impl From<axum::extract::rejection::PathRejection> for AppError {
    fn from(rejection: axum::extract::rejection::PathRejection) -> Self {
        AppError::BadRequest(rejection.body_text())
    }
}

impl From<axum::extract::rejection::QueryRejection> for AppError {
    fn from(rejection: axum::extract::rejection::QueryRejection) -> Self {
        AppError::BadRequest(rejection.body_text())
    }
}

/// The caller's address (unknown in in-process tests, where it is 0.0.0.0).
pub struct ClientIp(pub IpAddr);

impl<S: Send + Sync> FromRequestParts<S> for ClientIp {
    type Rejection = std::convert::Infallible;

    async fn from_request_parts(parts: &mut Parts, _: &S) -> Result<Self, Self::Rejection> {
        Ok(Self(
            parts
                .extensions
                .get::<ConnectInfo<SocketAddr>>()
                .map(|c| c.0.ip())
                .unwrap_or(IpAddr::V4(Ipv4Addr::UNSPECIFIED)),
        ))
    }
}

/// The authenticated caller (the middleware guarantees one on non-public routes).
impl<S: Send + Sync> FromRequestParts<S> for Principal {
    type Rejection = AppError;

    async fn from_request_parts(parts: &mut Parts, _: &S) -> Result<Self, Self::Rejection> {
        parts
            .extensions
            .get::<Principal>()
            .cloned()
            .ok_or(AppError::Unauthorized)
    }
}

/// `Set-Cookie` for a session; Secure when a TLS proxy says the page is https.
pub fn session_cookie(headers: &HeaderMap, value: &str, max_age_secs: u64) -> String {
    let secure = headers
        .get("x-forwarded-proto")
        .and_then(|v| v.to_str().ok())
        .is_some_and(|v| v.eq_ignore_ascii_case("https"));
    format!(
        "{}={value}; HttpOnly; SameSite=Strict; Path=/; Max-Age={max_age_secs}{}",
        crate::auth::SESSION_COOKIE,
        if secure { "; Secure" } else { "" }
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    #[derive(serde::Deserialize, Debug)]
    #[allow(dead_code)]
    struct Body {
        name: String,
        port: u16,
    }

    #[test]
    fn type_errors_name_the_field() {
        match parse_json::<Body>(br#"{"name": "x", "port": "eighty"}"#) {
            Err(AppError::Validation(errors)) => assert_eq!(errors[0].field, "port"),
            other => panic!("{other:?}"),
        }
        assert!(matches!(
            parse_json::<Body>(b"{"),
            Err(AppError::BadRequest(_))
        ));
        match parse_json::<Body>(b"[]") {
            Err(AppError::Validation(errors)) => assert_eq!(errors[0].field, "body"),
            other => panic!("{other:?}"),
        }
    }
}
