//! A message for the page a redirect leads to (a unit file saved, but its unit did not
//! start): a short-lived cookie that page shows once, then clears.

use axum::http::{HeaderMap, HeaderValue, header};
use axum::response::Response;

use crate::api::extract::cookie;

const NOTICE_COOKIE: &str = "unitdeck_notice";
/// Most bytes of a message kept: hex-encoded it stays well inside a browser's 4 KiB.
const MAX_NOTICE_BYTES: usize = 1500;
/// Long enough for the redirect to be followed.
const NOTICE_SECS: u64 = 60;

/// Adds `message` to `response` for the next page that shows notices.
pub fn attach(response: &mut Response, request: &HeaderMap, message: &str) {
    let mut end = message.len().min(MAX_NOTICE_BYTES);
    while !message.is_char_boundary(end) {
        end -= 1;
    }
    let hex: String = message.as_bytes()[..end]
        .iter()
        .map(|b| format!("{b:02x}"))
        .collect();
    if let Ok(value) = HeaderValue::from_str(&cookie(request, NOTICE_COOKIE, &hex, NOTICE_SECS)) {
        response.headers_mut().append(header::SET_COOKIE, value);
    }
}

/// The notice the request carries, if any, and the header that clears it.
pub fn take(request: &HeaderMap) -> Option<(String, HeaderValue)> {
    let hex = crate::auth::cookie_value(request, NOTICE_COOKIE)?;
    let bytes = (0..hex.len())
        .step_by(2)
        .map(|i| u8::from_str_radix(hex.get(i..i + 2)?, 16).ok())
        .collect::<Option<Vec<u8>>>()?;
    let text = String::from_utf8(bytes).ok()?;
    let clear = HeaderValue::from_str(&cookie(request, NOTICE_COOKIE, "", 0)).ok()?;
    Some((text, clear))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_notice_survives_the_round_trip_and_is_cut_on_a_character() {
        let mut response = Response::new(axum::body::Body::empty());
        let message = format!("start failed: {}", "é".repeat(MAX_NOTICE_BYTES));
        attach(&mut response, &HeaderMap::new(), &message);
        let set = response.headers()[header::SET_COOKIE].to_str().unwrap();
        let pair = set.split(';').next().unwrap().to_string();
        let mut request = HeaderMap::new();
        request.insert(header::COOKIE, HeaderValue::from_str(&pair).unwrap());
        let (text, clear) = take(&request).unwrap();
        assert!(text.starts_with("start failed: éé") && text.len() <= MAX_NOTICE_BYTES);
        assert!(clear.to_str().unwrap().contains("Max-Age=0"));
        request.insert(
            header::COOKIE,
            HeaderValue::from_static("unitdeck_notice=zz"),
        );
        assert!(take(&request).is_none());
    }
}
