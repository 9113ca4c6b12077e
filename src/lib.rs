//! unitdeck: a web control plane for the systemd services of a development container.
//!
//! The router is assembled here and `serve` runs it; the layers, from the inside out:
//! - `systemd/`, `db`, `ports`, `unitfile/`: systemd over D-Bus and the journal, SQLite,
//!   /proc, unit files as text and on disk; none of them knows the others' callers;
//! - `auth/`: credentials (password, sessions, tokens, scopes, the login brake);
//! - `service/`: the domain, one struct both the API and the pages call;
//! - `http/`: what the API and the pages share about HTTP (extractors, the auth gate,
//!   errors as answers, SSE);
//! - `api/` (JSON and the OpenAPI document) and `web/` (pages), each on `http` and
//!   `service`, never on each other.
//!
//! docs/architecture.md states which module may use which; tests/layers.rs checks it.

pub mod api;
pub mod auth;
pub mod config;
pub mod db;
pub mod error;
pub mod http;
pub mod machine;
pub mod notify;
pub mod ports;
pub mod service;
pub mod state;
pub mod systemd;
pub mod task;
pub mod tls;
pub mod unitfile;
pub mod web;

#[cfg(test)]
mod tests;

use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Duration;

use axum::Router;
use axum::extract::DefaultBodyLimit;
use axum::http::{HeaderValue, header};
use axum::routing::get;
use axum::serve::ListenerExt;
use tower_http::compression::CompressionLayer;
use tower_http::set_header::SetResponseHeaderLayer;
use tower_http::trace::TraceLayer;

use crate::config::Config;
use crate::http::layers;
use crate::service::Services;
use crate::state::AppState;

/// The whole HTTP surface: API, pages, static files, behind the auth gate, under the
/// configured base path (`http::base`).
pub fn app(state: AppState) -> Router {
    let base: Arc<str> = state.services.config().base_path.as_str().into();
    Router::new()
        .fallback_service(routes(state))
        .layer(axum::middleware::from_fn_with_state(
            base,
            http::base::serve_under_base,
        ))
}

fn routes(state: AppState) -> Router {
    let (api, mut openapi) = api::router();
    api::set_server(&mut openapi, &state.services.config().base_path);
    let openapi_json: Arc<str> = openapi.to_json().unwrap_or_default().into();
    Router::new()
        .merge(api)
        .route(
            "/api/openapi.json",
            get(move || {
                let json = openapi_json.clone();
                async move {
                    (
                        [(header::CONTENT_TYPE, "application/json")],
                        json.to_string(),
                    )
                }
            }),
        )
        .merge(web::router())
        .fallback(layers::not_found)
        // After every route: it applies to the routes registered so far.
        .method_not_allowed_fallback(layers::method_not_allowed)
        .layer(axum::middleware::from_fn_with_state(
            state.clone(),
            http::gate::authenticate,
        ))
        .layer(axum::middleware::from_fn_with_state(
            state.clone(),
            layers::wait_for_units,
        ))
        // Outside the auth gate: a request for a foreign host gets nothing else done.
        .layer(axum::middleware::from_fn_with_state(
            state.clone(),
            layers::known_hosts_only,
        ))
        .layer(axum::middleware::from_fn(layers::security_headers))
        .layer(DefaultBodyLimit::max(http::extract::MAX_BODY))
        // SSE responses are excluded by the default predicate, so streams are never buffered.
        .layer(CompressionLayer::new())
        .layer(SetResponseHeaderLayer::if_not_present(
            header::X_CONTENT_TYPE_OPTIONS,
            HeaderValue::from_static("nosniff"),
        ))
        .layer(SetResponseHeaderLayer::if_not_present(
            header::X_FRAME_OPTIONS,
            HeaderValue::from_static("DENY"),
        ))
        .layer(SetResponseHeaderLayer::if_not_present(
            header::REFERRER_POLICY,
            HeaderValue::from_static("same-origin"),
        ))
        .layer(TraceLayer::new_for_http())
        .with_state(state)
}

/// `unitdeck serve`.
pub async fn serve(config: Config) -> anyhow::Result<()> {
    let listen = config.listen;
    let tls = tls::setup(&config)?;
    if let Some(tls) = &tls {
        tracing::info!(fingerprint = %tls.fingerprint, "serving HTTPS; certificate SHA-256");
    }
    let services = Services::start(config).await?;
    services.spawn_background();
    let state = AppState::new(services, tls.as_ref().map(|t| t.fingerprint.clone()));
    let listener = tokio::net::TcpListener::bind(listen)
        .await
        .map_err(|e| anyhow::anyhow!("cannot listen on {listen}: {e}"))?;
    tracing::info!(%listen, version = env!("CARGO_PKG_VERSION"), https = tls.is_some(), "unitdeck is serving");
    let (stopping, mut stop) = tokio::sync::watch::channel(false);
    let mut app = app(state).layer(axum::middleware::from_fn_with_state(
        stop.clone(),
        layers::live_streams,
    ));
    if tls.is_some() {
        app = app.layer(axum::middleware::from_fn(tls::secure_cookies));
    }
    let app = app.into_make_service_with_connect_info::<SocketAddr>();
    let stopped = async move {
        shutdown_signal().await;
        let _ = stopping.send(true);
    };
    let server: std::pin::Pin<Box<dyn Future<Output = std::io::Result<()>> + Send>> = match tls {
        None => Box::pin(
            axum::serve(listener, app)
                .with_graceful_shutdown(stopped)
                .into_future(),
        ),
        // tap_io: axum hands the peer address of any listener on to ConnectInfo this way.
        Some(tls) => Box::pin(
            axum::serve(
                tls::TlsListener::new(listener, tls.acceptor)?.tap_io(|_| ()),
                app,
            )
            .with_graceful_shutdown(stopped)
            .into_future(),
        ),
    };
    // Bounds what still runs after the live streams ended (an action waiting for its job).
    let drained = async move {
        let _ = stop.wait_for(|s| *s).await;
        tokio::time::sleep(SHUTDOWN_DRAIN).await;
    };
    tokio::select! {
        res = server => res?,
        () = drained => tracing::warn!("requests still running after the drain time: closing their connections"),
    }
    Ok(())
}

/// How long requests in flight may take to finish after SIGTERM.
const SHUTDOWN_DRAIN: Duration = Duration::from_secs(3);

async fn shutdown_signal() {
    use tokio::signal::unix::{SignalKind, signal};
    let mut term = signal(SignalKind::terminate()).expect("SIGTERM handler");
    tokio::select! {
        _ = term.recv() => {}
        _ = tokio::signal::ctrl_c() => {}
    }
    tracing::info!("shutting down");
}
