//! Extractors whose rejections are problem+json like every other API error.

use std::net::{IpAddr, Ipv4Addr, SocketAddr};

use axum::extract::{ConnectInfo, FromRequest, FromRequestParts, Request};
use axum::http::request::Parts;
use axum::http::{HeaderMap, header};
use serde::de::DeserializeOwned;

use super::problem::ApiError;
use crate::auth::Principal;
use crate::error::{AppError, FieldError};

/// The largest JSON body any route accepts.
pub const MAX_BODY: usize = 64 * 1024;

/// A JSON body: a type mismatch is a 422 naming the field, bad syntax a 400,
/// a body over `MAX_BODY` a 413.
pub struct ApiJson<T>(pub T);

impl<S: Send + Sync, T: DeserializeOwned> FromRequest<S> for ApiJson<T> {
    type Rejection = ApiError;

    async fn from_request(req: Request, state: &S) -> Result<Self, Self::Rejection> {
        let json_content = req
            .headers()
            .get(header::CONTENT_TYPE)
            .and_then(|v| v.to_str().ok())
            .is_some_and(is_json_media_type);
        if !json_content {
            return Err(AppError::BadRequest(
                "expected a JSON body with Content-Type: application/json".into(),
            )
            .into());
        }
        let bytes = axum::body::Bytes::from_request(req, state)
            .await
            .map_err(|_| ApiError::PayloadTooLarge(MAX_BODY))?;
        Ok(parse_json(&bytes).map(ApiJson)?)
    }
}

/// `application/json` or `application/<anything>+json`, parameters allowed, case ignored:
/// the media type as parsed, not a substring (`application/jsonp`, `text/plain; a=+json`).
fn is_json_media_type(value: &str) -> bool {
    let essence = value.split(';').next().unwrap_or("").trim();
    let Some((kind, subtype)) = essence.split_once('/') else {
        return false;
    };
    let token = |s: &str| {
        !s.is_empty()
            && s.bytes()
                .all(|b| b.is_ascii_alphanumeric() || b"!#$&-^_.+".contains(&b))
    };
    kind.eq_ignore_ascii_case("application")
        && token(subtype)
        && (subtype.eq_ignore_ascii_case("json")
            || subtype
                .to_ascii_lowercase()
                .strip_suffix("+json")
                .is_some_and(|prefix| !prefix.is_empty()))
}

/// Parses JSON, naming the offending field on a type error.
pub fn parse_json<T: DeserializeOwned>(bytes: &[u8]) -> Result<T, AppError> {
    let mut value: serde_json::Value = serde_json::from_slice(bytes)
        .map_err(|err| AppError::BadRequest(format!("the body is not valid JSON: {err}")))?;
    integral_floats_as_integers(&mut value);
    serde_path_to_error::deserialize(value).map_err(|err| {
        let path = err.path().to_string();
        let field = if path == "." {
            "body".to_string()
        } else {
            path
        };
        AppError::Validation(vec![FieldError::new(field, err.into_inner().to_string())])
    })
}

/// JSON has one number type, and JSON Schema's `integer` is any number without a
/// fraction: `2.0` is a valid port, as `2` is.
fn integral_floats_as_integers(value: &mut serde_json::Value) {
    use serde_json::Value;
    const TWO_POW_63: f64 = 9_223_372_036_854_775_808.0;
    match value {
        Value::Number(n) => {
            if let Some(f) = n.as_f64().filter(|f| n.is_f64() && f.fract() == 0.0) {
                if (-TWO_POW_63..TWO_POW_63).contains(&f) {
                    *n = (f as i64).into();
                } else if (0.0..2.0 * TWO_POW_63).contains(&f) {
                    *n = (f as u64).into();
                }
            }
        }
        Value::Array(items) => items.iter_mut().for_each(integral_floats_as_integers),
        Value::Object(fields) => fields.values_mut().for_each(integral_floats_as_integers),
        _ => {}
    }
}

/// Path parameters; a value of the wrong type is a 400 problem.
#[derive(axum::extract::FromRequestParts)]
#[from_request(via(axum::extract::Path), rejection(ApiError))]
pub struct ApiPath<T>(pub T);

/// Query parameters; a malformed one is a 400 problem naming it.
#[derive(axum::extract::FromRequestParts)]
#[from_request(via(axum::extract::Query), rejection(ApiError))]
pub struct ApiQuery<T>(pub T);

impl From<axum::extract::rejection::PathRejection> for ApiError {
    fn from(rejection: axum::extract::rejection::PathRejection) -> Self {
        AppError::BadRequest(rejection.body_text()).into()
    }
}

impl From<axum::extract::rejection::QueryRejection> for ApiError {
    fn from(rejection: axum::extract::rejection::QueryRejection) -> Self {
        AppError::BadRequest(rejection.body_text()).into()
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

/// `Set-Cookie` for a session opened (or ended: `max_age_secs` 0) by a page.
pub fn session_cookie(headers: &HeaderMap, value: &str, max_age_secs: u64) -> String {
    cookie(headers, super::gate::SESSION_COOKIE, value, max_age_secs)
}

/// `Set-Cookie` for a session opened or ended through the API: `Path` is the base path or
/// `/` (API clients keep it for every request).
pub fn api_session_cookie(headers: &HeaderMap, value: &str, max_age_secs: u64) -> String {
    let path = super::base::api_cookie_path();
    format!(
        "{}; Path={path}",
        cookie(headers, super::gate::SESSION_COOKIE, value, max_age_secs)
    )
}

/// A cookie only this site's own requests carry back (HttpOnly, SameSite=Strict), Secure
/// when the request came over HTTPS (through a proxy that says so). No `Path`: a browser
/// scopes it to the directory of the page that set it, which is unitdeck's root wherever
/// a proxy puts it (`http::base`); pages set cookies only from paths at the root.
pub fn cookie(headers: &HeaderMap, name: &str, value: &str, max_age_secs: u64) -> String {
    let secure = headers
        .get("x-forwarded-proto")
        .and_then(|v| v.to_str().ok())
        .is_some_and(|v| v.eq_ignore_ascii_case("https"));
    format!(
        "{name}={value}; HttpOnly; SameSite=Strict; Max-Age={max_age_secs}{}",
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

    #[test]
    fn json_media_types_are_parsed() {
        for ok in [
            "application/json",
            "Application/JSON; charset=utf-8",
            "application/merge-patch+json",
            "application/problem+json ; x=y",
        ] {
            assert!(is_json_media_type(ok), "{ok}");
        }
        for bad in [
            "application/jsonp",
            "application/json-seq",
            "text/plain; x=+json",
            "text/json",
            "application/+json",
            "application/x+json/more",
            "multipart/form-data; boundary=+json",
            "",
        ] {
            assert!(!is_json_media_type(bad), "{bad}");
        }
    }

    #[test]
    fn integral_floats_are_integers() {
        let body: Body = parse_json(br#"{"name": "x", "port": 8036.0}"#).unwrap();
        assert_eq!(body.port, 8036);
        for bad in [
            r#"{"name": "x", "port": 80.5}"#,
            r#"{"name": "x", "port": 1e30}"#,
        ] {
            match parse_json::<Body>(bad.as_bytes()) {
                Err(AppError::Validation(errors)) => assert_eq!(errors[0].field, "port"),
                other => panic!("{bad}: {other:?}"),
            }
        }
        let big: serde_json::Value = parse_json(b"[1.8e19, -4.0, 2.5]").unwrap();
        assert_eq!(
            big,
            serde_json::json!([18_000_000_000_000_000_000_u64, -4, 2.5])
        );
    }
}
