//! The REST API under `/api/v1` and its OpenAPI document. Handlers parse, call
//! one domain function on `AppState`, and serialise.

mod access;
mod events;
mod jobs;
pub mod logs;
mod notifications;
mod overrides;
mod params;
mod pins;

pub mod ports;
mod problems;
mod unit_files;
mod units;

use axum::Json;
use axum::Router;
use axum::extract::State;
use axum::http::StatusCode;
use axum::response::IntoResponse;
use serde::Serialize;
use utoipa::openapi::security::{ApiKey, ApiKeyValue, HttpAuthScheme, HttpBuilder, SecurityScheme};
use utoipa::{Modify, OpenApi, ToSchema};
use utoipa_axum::router::OpenApiRouter;
use utoipa_axum::routes;

use crate::http::problem::Problem;
use crate::service::Services;
use crate::state::AppState;

#[derive(OpenApi)]
#[openapi(
    info(
        title = "unitdeck",
        description = "Control plane for the systemd services of a development container.",
        license(name = "MIT")
    ),
    components(schemas(Problem, crate::notify::Notice)),
    modifiers(&Security),
    security(("bearer" = []), ("cookie" = []))
)]
struct ApiDoc;

struct Security;

impl Modify for Security {
    fn modify(&self, openapi: &mut utoipa::openapi::OpenApi) {
        let components = openapi.components.get_or_insert_with(Default::default);
        components.add_security_scheme(
            "bearer",
            SecurityScheme::Http(HttpBuilder::new().scheme(HttpAuthScheme::Bearer).build()),
        );
        components.add_security_scheme(
            "cookie",
            SecurityScheme::ApiKey(ApiKey::Cookie(ApiKeyValue::new(
                crate::http::gate::SESSION_COOKIE,
            ))),
        );
    }
}

/// The API routes and the OpenAPI document describing them, built together so
/// the document cannot miss a route.
pub fn router() -> (Router<AppState>, utoipa::openapi::OpenApi) {
    let (router, mut openapi) = OpenApiRouter::with_openapi(ApiDoc::openapi())
        .routes(routes!(healthz))
        .routes(routes!(access::create_session, access::delete_session))
        .routes(routes!(access::delete_sessions))
        .routes(routes!(access::create_token, access::list_tokens))
        .routes(routes!(access::delete_token))
        .routes(routes!(access::audit))
        .routes(routes!(units::list_units))
        .routes(routes!(units::get_unit))
        .routes(routes!(units::unit_action))
        .routes(routes!(jobs::runs))
        .routes(routes!(jobs::timers))
        .routes(routes!(pins::list))
        .routes(routes!(pins::pin, pins::unpin))
        .routes(routes!(events::events))
        .routes(routes!(unit_files::preview))
        .routes(routes!(unit_files::create, unit_files::list))
        .routes(routes!(
            unit_files::get,
            unit_files::update,
            unit_files::delete
        ))
        .routes(routes!(unit_files::rollback))
        .routes(routes!(ports::ports))
        .routes(routes!(ports::health_checks))
        .routes(routes!(logs::logs))
        .routes(routes!(logs::stream))
        .routes(routes!(logs::download))
        .routes(routes!(logs::merged_logs))
        .routes(routes!(logs::merged_stream))
        .routes(routes!(logs::histogram))
        .routes(routes!(logs::facets))
        .routes(routes!(logs::boots))
        .routes(routes!(
            notifications::list_channels,
            notifications::create_channel
        ))
        .routes(routes!(
            notifications::update_channel,
            notifications::delete_channel
        ))
        .routes(routes!(notifications::test_channel))
        .routes(routes!(notifications::deliveries))
        .routes(routes!(overrides::files))
        .routes(routes!(overrides::get, overrides::put, overrides::delete))
        .routes(routes!(overrides::preview))
        .routes(routes!(overrides::revisions))
        .routes(routes!(overrides::rollback))
        .split_for_parts();
    problems::document(&mut openapi);
    (router, openapi)
}

/// The document's `servers` entry: the base path, or — when a proxy strips a prefix
/// unitdeck does not know — the root relative to the document (`/api/openapi.json`).
pub fn set_server(openapi: &mut utoipa::openapi::OpenApi, base_path: &str) {
    let (url, description) = if base_path.is_empty() {
        (
            "..",
            "unitdeck's root, relative to this document (it works under any proxy prefix)",
        )
    } else {
        (base_path, "unitdeck's root (UNITDECK_BASE_PATH)")
    };
    openapi.servers = Some(vec![
        utoipa::openapi::ServerBuilder::new()
            .url(url)
            .description(Some(description))
            .build(),
    ]);
}

#[derive(Serialize, ToSchema)]
pub struct Healthz {
    /// "ok", or "unavailable" when the system bus does not answer.
    status: &'static str,
    /// systemd's SystemState (running, degraded, starting, ...), null when unreachable.
    systemd: Option<String>,
    version: &'static str,
    #[serde(skip_serializing_if = "Option::is_none")]
    detail: Option<String>,
}

/// Liveness and systemd reachability; no authentication.
#[utoipa::path(get, path = "/healthz", tag = "meta", security(()),
    responses(
        (status = 200, description = "systemd answers", body = Healthz),
        (status = 503, description = "the system bus is unreachable", body = Healthz)
    ))]
async fn healthz(State(services): State<Services>) -> impl IntoResponse {
    match services.system_state().await {
        Ok(systemd) => (
            StatusCode::OK,
            Json(Healthz {
                status: "ok",
                systemd: Some(systemd),
                version: env!("CARGO_PKG_VERSION"),
                detail: None,
            }),
        ),
        Err(e) => (
            StatusCode::SERVICE_UNAVAILABLE,
            Json(Healthz {
                status: "unavailable",
                systemd: None,
                version: env!("CARGO_PKG_VERSION"),
                detail: Some(format!(
                    "{e}; check that dbus is running and {} is reachable",
                    services.config().bus_socket_path()
                )),
            }),
        ),
    }
}
