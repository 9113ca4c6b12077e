//! A message for the page a redirect leads to (a unit file saved, but its unit did not
//! start). The text stays here; the browser holds only a random id in a short-lived
//! cookie. Any site on the same host name (another port: the apps unitdeck runs) can set
//! cookies for it, so a cookie's text could say anything; an id it cannot guess shows
//! nothing.

use std::collections::HashMap;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use axum::http::{HeaderMap, HeaderValue, header};
use axum::response::Response;

use super::extract::cookie;
use super::gate::cookie_value;

const NOTICE_COOKIE: &str = "unitdeck_notice";
/// Long enough for the redirect to be followed.
const NOTICE_TTL: Duration = Duration::from_secs(60);
/// Most notices kept at once (each lives a minute): a bound, not a limit anyone meets.
const MAX_NOTICES: usize = 256;

/// Notices waiting for their page, by id.
#[derive(Clone, Default)]
pub struct Notices(Arc<Mutex<HashMap<String, (String, Instant)>>>);

impl Notices {
    /// Keeps `message` for the next page that shows notices and points `response` at it.
    pub fn attach(&self, response: &mut Response, request: &HeaderMap, message: &str) {
        let id = crate::auth::new_secret("n_");
        {
            let mut notices = self.0.lock().unwrap();
            notices.retain(|_, (_, at)| at.elapsed() < NOTICE_TTL);
            if notices.len() >= MAX_NOTICES {
                return;
            }
            notices.insert(id.clone(), (message.to_string(), Instant::now()));
        }
        let secs = NOTICE_TTL.as_secs();
        if let Ok(value) = HeaderValue::from_str(&cookie(request, NOTICE_COOKIE, &id, secs)) {
            response.headers_mut().append(header::SET_COOKIE, value);
        }
    }

    /// The notice the request points at, taken (shown once), and the header that clears
    /// the cookie.
    pub fn take(&self, request: &HeaderMap) -> Option<(String, HeaderValue)> {
        let id = cookie_value(request, NOTICE_COOKIE)?;
        let (text, at) = self.0.lock().unwrap().remove(id)?;
        let clear = HeaderValue::from_str(&cookie(request, NOTICE_COOKIE, "", 0)).ok()?;
        (at.elapsed() < NOTICE_TTL).then_some((text, clear))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn request_with(cookie_pair: &str) -> HeaderMap {
        let mut request = HeaderMap::new();
        request.insert(header::COOKIE, HeaderValue::from_str(cookie_pair).unwrap());
        request
    }

    #[test]
    fn a_notice_is_shown_once_and_only_for_its_id() {
        let notices = Notices::default();
        let mut response = Response::new(axum::body::Body::empty());
        notices.attach(&mut response, &HeaderMap::new(), "start failed: <b>x</b>");
        let set = response.headers()[header::SET_COOKIE].to_str().unwrap();
        assert!(
            !set.contains("start failed"),
            "the text stays on the server: {set}"
        );
        let pair = set.split(';').next().unwrap();
        // A cookie another site set: not an id unitdeck gave out.
        let forged = request_with("unitdeck_notice=Saved%20as%20revision%201%2C%20but");
        assert!(notices.take(&forged).is_none());
        let (text, clear) = notices.take(&request_with(pair)).unwrap();
        assert_eq!(text, "start failed: <b>x</b>");
        assert!(clear.to_str().unwrap().contains("Max-Age=0"));
        assert!(notices.take(&request_with(pair)).is_none(), "shown once");
    }
}
