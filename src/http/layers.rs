//! The layers every request passes besides the auth gate: the Host allowlist, the wait
//! for systemd's units right after start, the security headers, the end of live streams
//! at shutdown, and the answers for unknown routes and methods.

use std::time::Duration;

use axum::extract::{Request, State};
use axum::http::{HeaderValue, Method, Uri, header};
use axum::middleware::Next;
use axum::response::Response;
use futures_util::StreamExt;

use super::problem::{ApiError, error_for};
use crate::error::AppError;
use crate::state::AppState;

/// No inline script or style, no eval (htmx's `allowEval` is off), no frames, forms
/// post only here, `<base>` only here (pages name their root with it: `http::base`).
pub const CONTENT_SECURITY_POLICY: &str = "default-src 'self'; script-src 'self'; \
     style-src 'self'; img-src 'self'; object-src 'none'; frame-ancestors 'none'; \
     base-uri 'self'; form-action 'self'";

/// Answers 421 to a request whose `Host` does not name this machine (DNS rebinding),
/// before anything else is done for it.
pub async fn known_hosts_only(
    State(state): State<AppState>,
    request: Request,
    next: Next,
) -> Response {
    // HTTP/2 carries the host in the URI; HTTP/1.1 in the header.
    let host = request
        .headers()
        .get(header::HOST)
        .and_then(|h| h.to_str().ok())
        .or_else(|| request.uri().authority().map(|a| a.as_str()));
    if host.is_some_and(|h| state.hosts.allows(h)) {
        return next.run(request).await;
    }
    let err = ApiError::MisdirectedRequest(format!(
        "this server does not answer to the host {:?}; add it to UNITDECK_ALLOWED_HOSTS \
         if it names this machine",
        host.unwrap_or("")
    ));
    error_for(request.uri().path(), err)
}

/// Right after start, requests wait (at most 10 s) for the first full unit list rather
/// than a 503; `/healthz` answers at once (200 as soon as systemd answers, maybe before
/// the list is filled).
pub async fn wait_for_units(
    State(state): State<AppState>,
    request: Request,
    next: Next,
) -> Response {
    if request.uri().path() != "/healthz" {
        state.services.units_ready(Duration::from_secs(10)).await;
    }
    next.run(request).await
}

/// What a browser must know about every answer: HTML pages run only this site's own
/// scripts and styles, in no frame; nothing but static files is cached.
pub async fn security_headers(request: Request, next: Next) -> Response {
    let mut response = next.run(request).await;
    let headers = response.headers_mut();
    let is_html = headers
        .get(header::CONTENT_TYPE)
        .is_some_and(|v| v.as_bytes().starts_with(b"text/html"));
    if is_html {
        headers.insert(
            header::CONTENT_SECURITY_POLICY,
            HeaderValue::from_static(CONTENT_SECURITY_POLICY),
        );
    }
    // Static files say how long they keep; everything else may hold what a login shows.
    if !headers.contains_key(header::CACHE_CONTROL) {
        headers.insert(header::CACHE_CONTROL, HeaderValue::from_static("no-store"));
    }
    response
}

/// Live streams (SSE) never end by themselves: they end when unitdeck stops, so a restart
/// does not wait for them (it waited the whole drain time whenever a page was open), and
/// they ask browsers to come back after a second instead of their default three.
pub async fn live_streams(
    State(stopping): State<tokio::sync::watch::Receiver<bool>>,
    request: Request,
    next: Next,
) -> Response {
    let response = next.run(request).await;
    let is_stream = response
        .headers()
        .get(header::CONTENT_TYPE)
        .is_some_and(|v| v.as_bytes().starts_with(b"text/event-stream"));
    if !is_stream {
        return response;
    }
    let mut stop = stopping.clone();
    let stopped = async move {
        let _ = stop.wait_for(|s| *s).await;
    };
    let (parts, body) = response.into_parts();
    // A block with only a `retry:` field sets the reconnection delay and shows nothing.
    let retry = futures_util::stream::once(async {
        Ok::<_, axum::Error>(axum::body::Bytes::from_static(b"retry: 1000\n\n"))
    });
    let body = retry.chain(body.into_data_stream()).take_until(stopped);
    Response::from_parts(parts, axum::body::Body::from_stream(body))
}

pub async fn not_found(uri: Uri) -> Response {
    error_for(
        uri.path(),
        AppError::NotFound(format!("no route for {}", uri.path())),
    )
}

/// A known path with another method: problem+json under `/api/` like every API error
/// (axum adds the `Allow` header).
pub async fn method_not_allowed(method: Method, uri: Uri) -> Response {
    error_for(uri.path(), ApiError::MethodNotAllowed(method.to_string()))
}
