//! Serving under a path prefix. A reverse proxy may put unitdeck under a path of its own:
//! code-server's `/proxy/8035/` strips it (unitdeck sees `/`), `/absproxy/8035/` keeps it
//! (then `UNITDECK_BASE_PATH=/absproxy/8035`). In the first case unitdeck cannot know the
//! prefix, so every URL it emits is relative:
//!
//! - a page carries `<base href>` naming unitdeck's root relative to itself (`./`, `../`):
//!   links, forms, htmx and SSE URLs and scripts are written relative to that root
//!   (`units/x`, never `/units/x`);
//! - a redirect's `Location` is relative to the request (`url`);
//! - cookies set by pages have no `Path`: browsers scope them to the directory of the page
//!   that set it, unitdeck's root wherever a proxy puts it (`cookie_path`).
//!
//! The layer here strips the configured base path before routing and keeps, for the
//! request's handlers, where the request is relative to the root (`here`).

use std::sync::Arc;

use axum::extract::{Request, State};
use axum::http::Uri;
use axum::http::uri::PathAndQuery;
use axum::middleware::Next;
use axum::response::{IntoResponse, Redirect, Response};

use super::layers::not_found;

/// Where the request being handled is, relative to unitdeck's root.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Here {
    /// The root relative to the requested page: `./`, `../`, `../../`, ...
    pub root: String,
    /// The requested path and query relative to the root (`units/x?y=1`; empty at the root).
    pub page: String,
    /// The configured base path (`/absproxy/8035`), empty when none.
    base: String,
}

tokio::task_local! {
    static HERE: Here;
}

impl Here {
    /// The place of `path_and_query` (as routed: without the base path).
    pub fn of(path_and_query: &str, base: &str) -> Self {
        let path = path_and_query.split('?').next().unwrap_or("/");
        let depth = path.matches('/').count().saturating_sub(1);
        Self {
            root: if depth == 0 {
                "./".into()
            } else {
                "../".repeat(depth)
            },
            page: path_and_query.trim_start_matches('/').to_string(),
            base: base.to_string(),
        }
    }
}

/// Where the current request is (the root itself outside a request: tests, rendering
/// in a spawned task).
pub fn here() -> Here {
    HERE.try_with(Here::clone)
        .unwrap_or_else(|_| Here::of("/", ""))
}

/// `target` (a path from unitdeck's root: `/units/x`) relative to the current request.
pub fn url(target: &str) -> String {
    let target = target.trim_start_matches('/');
    let root = here().root;
    if target.is_empty() || target.starts_with('?') {
        format!("{root}{target}")
    } else if root == "./" {
        target.to_string()
    } else {
        format!("{root}{target}")
    }
}

/// A 303 to `target` (a path from unitdeck's root), relative to the current request.
pub fn redirect(target: &str) -> Redirect {
    Redirect::to(&url(target))
}

/// The `Path` of the API's session cookie: the base path, or `/`. (Cookies set by pages
/// have none: see the module's comment.)
pub fn api_cookie_path() -> String {
    let base = here().base;
    if base.is_empty() { "/".into() } else { base }
}

/// Routes requests under `base` (empty: everything) with the prefix removed, and runs
/// them knowing where they are (`here`). `base` itself redirects to `base/`; anything
/// outside is a 404.
pub async fn serve_under_base(
    State(base): State<Arc<str>>,
    mut request: Request,
    next: Next,
) -> Response {
    let uri = request.uri().clone();
    let path_and_query = uri.path_and_query().map_or("/", PathAndQuery::as_str);
    let inner = if base.is_empty() {
        path_and_query.to_string()
    } else {
        match path_and_query.strip_prefix(&*base) {
            Some(rest) if rest.is_empty() || rest.starts_with('?') => {
                let last = base.rsplit('/').next().unwrap_or("");
                return Redirect::permanent(&format!("{last}/{rest}")).into_response();
            }
            Some(rest) if rest.starts_with('/') => rest.to_string(),
            _ => return not_found(uri).await,
        }
    };
    let here = Here::of(&inner, &base);
    if !base.is_empty() {
        let mut parts = uri.into_parts();
        parts.path_and_query = inner.parse().ok();
        match Uri::from_parts(parts) {
            Ok(stripped) => *request.uri_mut() = stripped,
            Err(_) => return not_found(request.uri().clone()).await,
        }
    }
    HERE.scope(here, next.run(request)).await
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_root_is_relative_to_the_page() {
        assert_eq!(Here::of("/", "").root, "./");
        assert_eq!(Here::of("/login?next=%2F", "").root, "./");
        assert_eq!(Here::of("/units/a.service", "").root, "../");
        assert_eq!(Here::of("/units/a.service/edit", "").root, "../../");
        assert_eq!(Here::of("/audit/", "").root, "../");
        // A query's slashes are not the path's.
        assert_eq!(Here::of("/logs?units=a/b", "").root, "./");
        assert_eq!(Here::of("/units/x?y=1", "").page, "units/x?y=1");
    }

    #[tokio::test]
    async fn urls_are_relative_to_the_request() {
        let at = |path: &str, target: &'static str| {
            HERE.scope(Here::of(path, ""), async move { url(target) })
        };
        assert_eq!(at("/login", "/").await, "./");
        assert_eq!(at("/login", "/units/x").await, "units/x");
        assert_eq!(at("/units/new", "/units/x").await, "../units/x");
        assert_eq!(
            at("/units/x/edit", "/login?next=%2F").await,
            "../../login?next=%2F"
        );
        assert_eq!(at("/units/x/edit", "/").await, "../../");
        assert_eq!(url("/settings"), "settings");
    }
}
