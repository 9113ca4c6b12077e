//! Server-rendered pages (askama) and the htmx fragments they swap in.

mod admin;
mod assets;
mod logs;
mod notice;
mod pages;
mod ports;
mod unit_form;
mod view;

use askama::Template;
use axum::Router;
use axum::http::StatusCode;
use axum::response::{Html, IntoResponse, Response};
use axum::routing::{get, post};

use crate::error::AppError;
use crate::state::AppState;

pub use assets::asset_url;
pub use notice::Notices;

pub fn router() -> Router<AppState> {
    Router::new()
        .route("/", get(pages::dashboard))
        .route("/login", get(pages::login_page).post(pages::login_submit))
        .route("/logout", post(pages::logout))
        .route("/logout/everywhere", post(pages::logout_everywhere))
        .route("/units/{name}", get(pages::unit_page))
        .route(
            "/units/new",
            get(unit_form::new_page).post(unit_form::new_submit),
        )
        .route(
            "/units/{name}/edit",
            get(unit_form::edit_page).post(unit_form::edit_submit),
        )
        .route("/units/{name}/rollback", post(unit_form::rollback))
        .route("/units/{name}/delete", post(unit_form::delete))
        .route("/ui/unit-form/preview", post(unit_form::preview_fragment))
        .route("/ui/units", get(pages::unit_rows))
        .route("/ui/units/{name}/row", get(pages::unit_row))
        .route("/ui/units/{name}/resources", get(pages::unit_resources))
        .route("/ui/units/{name}/logview", get(logs::log_view))
        .route("/ui/units/{name}/logs/stream", get(logs::log_stream))
        .route("/logs", get(logs::logs_page))
        .route("/ui/logs/stream", get(logs::merged_log_stream))
        .route("/ui/units/{name}/{action}", post(pages::unit_action))
        .route("/ui/events", get(pages::row_events))
        .route("/settings", get(admin::settings))
        .route("/audit", get(admin::audit))
        .route("/ui/tokens", post(admin::create_token))
        .route("/ui/tokens/{id}/revoke", post(admin::revoke_token))
        .route("/static/{*path}", get(assets::serve))
        .route("/favicon.ico", get(assets::favicon))
        .route("/ports", get(ports::ports_page))
}

/// An error shown as a page (HTML routes) rather than problem+json.
pub struct PageError(pub AppError);

impl From<AppError> for PageError {
    fn from(err: AppError) -> Self {
        Self(err)
    }
}

#[derive(Template)]
#[template(path = "error.html")]
struct ErrorPage<'a> {
    status: u16,
    title: &'a str,
    detail: String,
}

impl IntoResponse for PageError {
    fn into_response(self) -> Response {
        let status = self.0.status();
        let page = ErrorPage {
            status: status.as_u16(),
            title: status.canonical_reason().unwrap_or("Error"),
            detail: self.0.to_string(),
        };
        match page.render() {
            Ok(html) => (status, Html(html)).into_response(),
            Err(_) => (StatusCode::INTERNAL_SERVER_ERROR, "error page failed").into_response(),
        }
    }
}

/// Renders a template or reports the (programming) error as a 500.
pub fn render(template: &impl Template) -> Result<Html<String>, PageError> {
    template
        .render()
        .map(Html)
        .map_err(|e| PageError(AppError::internal(format!("template: {e}"))))
}
