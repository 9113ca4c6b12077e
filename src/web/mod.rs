//! Server-rendered pages (askama) and the htmx fragments they swap in.

mod admin;
mod assets;
mod jobs;
mod logs;
mod notifications;
mod pages;
mod ports;
mod unit_form;
mod view;

use axum::Router;
use axum::routing::{get, post};

use crate::state::AppState;

pub use assets::asset_url;

pub fn router() -> Router<AppState> {
    Router::new()
        .route("/", get(pages::dashboard))
        .route("/login", get(pages::login_page).post(pages::login_submit))
        .route("/logout", post(pages::logout))
        .route("/logout-everywhere", post(pages::logout_everywhere))
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
        .route(
            "/units/{name}/override",
            get(unit_form::override_page).post(unit_form::override_submit),
        )
        .route(
            "/units/{name}/override/preview",
            post(unit_form::override_preview),
        )
        .route(
            "/units/{name}/override/remove",
            post(unit_form::override_remove),
        )
        .route(
            "/units/{name}/override/rollback",
            post(unit_form::override_rollback),
        )
        .route("/ui/unit-form/preview", post(unit_form::preview_fragment))
        .route("/ui/units", get(pages::unit_rows))
        .route("/ui/units/{name}/row", get(pages::unit_row))
        .route("/ui/units/{name}/resources", get(pages::unit_resources))
        .route("/ui/units/{name}/logview", get(logs::log_view))
        .route("/ui/units/{name}/logs/stream", get(logs::log_stream))
        .route("/ui/units/{name}/logs/lines", get(logs::log_lines))
        .route("/logs", get(logs::logs_page))
        .route("/ui/logs/stream", get(logs::merged_log_stream))
        .route("/ui/logs/lines", get(logs::merged_log_lines))
        .route("/ui/logs/summary", get(logs::log_summary))
        .route("/ui/units/{name}/{action}", post(pages::unit_action))
        .route("/ui/units/{name}/pin", post(pages::pin))
        .route("/ui/units/{name}/unpin", post(pages::unpin))
        .route("/ui/events", get(pages::row_events))
        .route("/settings", get(admin::settings))
        .route("/audit", get(admin::audit))
        .route("/ui/tokens", post(admin::create_token))
        .route("/ui/tokens/{id}/revoke", post(admin::revoke_token))
        .route("/static/{*path}", get(assets::serve))
        .route("/favicon.ico", get(assets::favicon))
        .route("/ports", get(ports::ports_page))
        .route("/jobs", get(jobs::jobs_page))
        .route("/ui/jobs", get(jobs::job_rows))
        .route("/ui/jobs/events", get(jobs::job_events))
        .route("/ui/jobs/{name}/{action}", post(jobs::job_action))
        .route("/ui/units/{name}/runs", get(jobs::unit_runs))
        .route("/notifications", get(notifications::deliveries_page))
        .route(
            "/ui/notifications/channels",
            post(notifications::create_channel),
        )
        .route(
            "/ui/notifications/channels/{id}/test",
            post(notifications::test_channel),
        )
        .route(
            "/ui/notifications/channels/{id}/toggle",
            post(notifications::toggle_channel),
        )
        .route(
            "/ui/notifications/channels/{id}/delete",
            post(notifications::delete_channel),
        )
        .route("/ui/alerts", get(notifications::alerts))
}
