//! What the JSON API and the HTML pages share about HTTP, and nothing about what they
//! show: extractors (JSON bodies, cookies, the client's address), the auth gate, the
//! layers around every route (Host allowlist, security headers, live streams), SSE
//! helpers, errors as problem+json or pages, notices across a redirect, and serving under
//! a path prefix. `api/` and
//! `web/` build on this module and never on each other.

pub mod base;
pub mod extract;
pub mod gate;
pub mod host;
pub mod layers;
pub mod notice;
pub mod problem;
pub mod sse;

use axum::http::{HeaderMap, header};

/// The host the client used, for links to other ports on it.
pub fn request_host(headers: &HeaderMap) -> String {
    headers
        .get(header::HOST)
        .and_then(|v| v.to_str().ok())
        .unwrap_or("localhost")
        .to_string()
}

/// Percent-encodes everything but unreserved characters and `/` (a path or query value).
pub fn urlencode(s: &str) -> String {
    s.bytes()
        .map(|b| match b {
            b'A'..=b'Z' | b'a'..=b'z' | b'0'..=b'9' | b'-' | b'_' | b'.' | b'~' | b'/' => {
                (b as char).to_string()
            }
            _ => format!("%{b:02X}"),
        })
        .collect()
}
