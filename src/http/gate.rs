//! The one gate every request passes: resolve the credential, refuse cross-site
//! state changes made with the cookie, enforce the scope of the route. Who a token or a
//! session stands for is the domain's answer (`Services::token_principal`,
//! `session_principal`).

use axum::extract::{Request, State};
use axum::http::{HeaderMap, Method, header};
use axum::middleware::Next;
use axum::response::{IntoResponse, Response};

use super::problem::error_for;
use super::urlencode;
use crate::auth::{Principal, Scope, secret_hash};
use crate::error::AppError;
use crate::service::{AuditEntry, Services, unit_action_named};
use crate::state::AppState;

pub const SESSION_COOKIE: &str = "unitdeck_session";

/// Routes anyone may call (API.md "Authentication").
fn is_public(method: &Method, path: &str) -> bool {
    matches!(
        path,
        "/healthz" | "/login" | "/api/openapi.json" | "/favicon.ico"
    ) || path.starts_with("/static/")
        || (path == "/api/v1/session" && method == Method::POST)
}

/// The least scope a request needs: GETs read, unit actions and pins operate, the rest
/// admin.
fn required_scope(method: &Method, path: &str) -> Scope {
    if matches!(*method, Method::GET | Method::HEAD) {
        return Scope::Read;
    }
    let pin = matches!(*method, Method::PUT | Method::DELETE) && path.starts_with("/api/v1/pins/")
        || *method == Method::POST && is_row_pin(path);
    if pin || *method == Method::POST && unit_action_path(path).is_some() {
        Scope::Operate
    } else {
        Scope::Admin
    }
}

/// `(name, action)` of `/api/v1/units/{name}/{action}`, `/ui/units/{name}/{action}` and
/// the jobs page's `/ui/jobs/{name}/{action}`, for the unit actions only: another route
/// under a unit (its override) stays admin's.
fn unit_action_path(path: &str) -> Option<(&str, &str)> {
    ["/api/v1/units/", "/ui/units/", "/ui/jobs/"]
        .iter()
        .filter_map(|prefix| path.strip_prefix(prefix)?.split_once('/'))
        .find(|(name, action)| !name.is_empty() && unit_action_named(action).is_ok())
}

/// The star of a row on the pages: `/ui/units/{name}/pin` and `/unpin`.
fn is_row_pin(path: &str) -> bool {
    path.strip_prefix("/ui/units/")
        .and_then(|rest| rest.split_once('/'))
        .is_some_and(|(name, what)| !name.is_empty() && matches!(what, "pin" | "unpin"))
}

fn is_state_changing(method: &Method) -> bool {
    !matches!(*method, Method::GET | Method::HEAD | Method::OPTIONS)
}

/// A request the browser marks as cross-site, or whose Origin names another host.
pub fn is_cross_site(headers: &HeaderMap) -> bool {
    let header_str = |name| {
        headers
            .get(name)
            .and_then(|v: &header::HeaderValue| v.to_str().ok())
    };
    if header_str("sec-fetch-site") == Some("cross-site") {
        return true;
    }
    let Some(origin) = header_str("origin") else {
        return false;
    };
    // "null" origins (sandboxed frames, file:) are never same-site.
    let origin_host = origin
        .split_once("://")
        .map(|(_, rest)| rest.split('/').next().unwrap_or(rest));
    match (origin_host, header_str("host")) {
        (Some(origin_host), Some(host)) => !origin_host.eq_ignore_ascii_case(host),
        _ => true,
    }
}

pub fn cookie_value<'a>(headers: &'a HeaderMap, name: &str) -> Option<&'a str> {
    headers
        .get_all(header::COOKIE)
        .iter()
        .filter_map(|v| v.to_str().ok())
        .flat_map(|v| v.split(';'))
        .filter_map(|pair| pair.trim().split_once('='))
        .find(|(k, _)| *k == name)
        .map(|(_, v)| v)
}

/// The session cookie's hash, if the request carries one (used by logout and login).
pub fn session_hash(headers: &HeaderMap) -> Option<String> {
    cookie_value(headers, SESSION_COOKIE).map(secret_hash)
}

async fn resolve(services: &Services, headers: &HeaderMap) -> Result<Option<Principal>, AppError> {
    if let Some(auth) = headers.get(header::AUTHORIZATION) {
        let token = auth
            .to_str()
            .ok()
            .and_then(|v| v.strip_prefix("Bearer "))
            .ok_or(AppError::Unauthorized)?;
        return services.token_principal(token.trim()).await.map(Some);
    }
    match session_hash(headers) {
        Some(hash) => services.session_principal(&hash).await,
        None => Ok(None),
    }
}

pub async fn authenticate(State(state): State<AppState>, mut req: Request, next: Next) -> Response {
    let method = req.method().clone();
    let path = req.uri().path().to_string();
    let is_api = path.starts_with("/api/");
    let public = is_public(&method, &path);

    let principal = match resolve(&state.services, req.headers()).await {
        Ok(p) => p,
        // A bad token is refused even on public routes: the caller meant to authenticate.
        Err(e) => return e.into_response(),
    };
    let via_cookie = principal.as_ref().is_none_or(Principal::is_session);
    if is_state_changing(&method) && via_cookie && is_cross_site(req.headers()) {
        let err = AppError::Forbidden("cross-site request refused".into());
        if let Err(e) =
            audit_refusal(&state.services, principal.as_ref(), &method, &path, &err).await
        {
            return e.into_response();
        }
        return error_for(&path, err);
    }
    match principal {
        Some(principal) => {
            let needed = required_scope(&method, &path);
            if !public && principal.scope < needed {
                let err = AppError::Forbidden(format!(
                    "this token's scope is {}; this request needs {needed}",
                    principal.scope
                ));
                if let Err(e) =
                    audit_refusal(&state.services, Some(&principal), &method, &path, &err).await
                {
                    return e.into_response();
                }
                return err.into_response();
            }
            req.extensions_mut().insert(principal);
        }
        None if public => {}
        None if is_api || path.starts_with("/ui/") => {
            return AppError::Unauthorized.into_response();
        }
        None => {
            let target = req
                .uri()
                .path_and_query()
                .map(|p| p.as_str())
                .unwrap_or("/");
            let next = if target == "/" {
                String::new()
            } else {
                format!("?next={}", urlencode(target))
            };
            return super::base::redirect(&format!("/login{next}")).into_response();
        }
    }
    next.run(req).await
}

/// Records a refused state change by a known caller (a token beyond its scope, a
/// cookie sent cross-site) before the 403 goes out. Anonymous refusals are not
/// recorded: anyone could fill the log with them.
async fn audit_refusal(
    services: &Services,
    principal: Option<&Principal>,
    method: &Method,
    path: &str,
    err: &AppError,
) -> Result<(), AppError> {
    let Some(principal) = principal else {
        return Ok(());
    };
    if !is_state_changing(method) {
        return Ok(());
    }
    let (action, target) = refused_action(method, path);
    services
        .audit(AuditEntry {
            actor: &principal.actor,
            action: &action,
            target: target.as_deref(),
            result: "forbidden",
            detail: Some(&err.to_string()),
        })
        .await
}

/// How a refused request appears in the audit log: unit actions like the
/// allowed ones (`unit.stop`, the unit), anything else as method and path.
fn refused_action(method: &Method, path: &str) -> (String, Option<String>) {
    match unit_action_path(path) {
        Some((name, action)) if *method == Method::POST => {
            (format!("unit.{action}"), Some(name.to_string()))
        }
        _ => (format!("{method} {path}"), None),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use axum::http::HeaderValue;

    fn headers(pairs: &[(&'static str, &'static str)]) -> HeaderMap {
        let mut h = HeaderMap::new();
        for (k, v) in pairs {
            h.append(*k, HeaderValue::from_static(v));
        }
        h
    }

    #[test]
    fn cross_site_detection() {
        assert!(!is_cross_site(&headers(&[("host", "box:8035")])));
        assert!(!is_cross_site(&headers(&[
            ("host", "box:8035"),
            ("origin", "http://box:8035"),
            ("sec-fetch-site", "same-origin"),
        ])));
        assert!(is_cross_site(&headers(&[
            ("host", "box:8035"),
            ("sec-fetch-site", "cross-site")
        ])));
        assert!(is_cross_site(&headers(&[
            ("host", "box:8035"),
            ("origin", "http://evil.example")
        ])));
        assert!(is_cross_site(&headers(&[
            ("host", "box:8035"),
            ("origin", "http://box:9999")
        ])));
        assert!(is_cross_site(&headers(&[
            ("host", "box:8035"),
            ("origin", "null")
        ])));
    }

    #[test]
    fn scopes_per_route() {
        assert_eq!(required_scope(&Method::GET, "/api/v1/units"), Scope::Read);
        assert_eq!(
            required_scope(&Method::POST, "/api/v1/units/a.service/start"),
            Scope::Operate
        );
        assert_eq!(
            required_scope(&Method::POST, "/ui/units/a.service/stop"),
            Scope::Operate
        );
        assert_eq!(
            required_scope(&Method::POST, "/ui/jobs/a.service/start"),
            Scope::Operate
        );
        assert_eq!(
            required_scope(&Method::POST, "/ui/notifications/channels"),
            Scope::Admin
        );
        assert_eq!(
            required_scope(&Method::POST, "/api/v1/unit-files"),
            Scope::Admin
        );
        assert_eq!(
            required_scope(&Method::POST, "/api/v1/tokens"),
            Scope::Admin
        );
        assert_eq!(
            required_scope(&Method::DELETE, "/api/v1/units/a.service/x"),
            Scope::Admin
        );
        assert_eq!(
            required_scope(&Method::POST, "/api/v1/unit-files/a/rollback"),
            Scope::Admin
        );
        for path in [
            "/api/v1/units/a.service/override",
            "/api/v1/units/a.service/override/preview",
            "/api/v1/units/a.service/explode",
            "/ui/units/a.service/start/x",
        ] {
            assert_eq!(required_scope(&Method::POST, path), Scope::Admin, "{path}");
        }
        for method in [Method::PUT, Method::DELETE] {
            assert_eq!(
                required_scope(&method, "/api/v1/pins/a.service"),
                Scope::Operate
            );
        }
        assert_eq!(
            required_scope(&Method::POST, "/ui/units/a.service/pin"),
            Scope::Operate
        );
    }

    #[test]
    fn refusals_are_named_like_the_actions() {
        assert_eq!(
            refused_action(&Method::POST, "/api/v1/units/a.service/stop"),
            ("unit.stop".to_string(), Some("a.service".to_string()))
        );
        assert_eq!(
            refused_action(&Method::POST, "/ui/units/a.service/start"),
            ("unit.start".to_string(), Some("a.service".to_string()))
        );
        assert_eq!(
            refused_action(&Method::DELETE, "/api/v1/tokens/3"),
            ("DELETE /api/v1/tokens/3".to_string(), None)
        );
    }

    #[test]
    fn public_routes() {
        assert!(is_public(&Method::GET, "/healthz"));
        assert!(is_public(&Method::POST, "/api/v1/session"));
        assert!(!is_public(&Method::DELETE, "/api/v1/session"));
        assert!(is_public(&Method::GET, "/static/app.css"));
        assert!(!is_public(&Method::GET, "/api/v1/units"));
        assert!(!is_public(&Method::GET, "/"));
    }

    #[test]
    fn cookies_are_found_among_others() {
        let h = headers(&[("cookie", "a=1; unitdeck_session=abc; b=2")]);
        assert_eq!(cookie_value(&h, SESSION_COOKIE), Some("abc"));
        assert_eq!(cookie_value(&headers(&[]), SESSION_COOKIE), None);
    }
}
