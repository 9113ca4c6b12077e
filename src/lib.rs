//! unitdeck: a web control plane for the systemd services of a development container.
//!
//! The router is assembled here; `serve` wires configuration, the database,
//! the systemd watcher and the journal hub into it.

pub mod access;
pub mod api;
pub mod auth;
pub mod config;
pub mod db;
pub mod error;
pub mod health;
pub mod logs;
pub mod ports;
pub mod state;
pub mod systemd;
pub mod task;
pub mod unitfile;
pub mod units;
pub mod web;

use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Duration;

use axum::Router;
use axum::extract::{DefaultBodyLimit, Request, State};
use axum::http::{HeaderValue, Method, Uri, header};
use axum::response::{IntoResponse, Response};
use axum::routing::get;
use futures_util::StreamExt;
use tower_http::compression::CompressionLayer;
use tower_http::set_header::SetResponseHeaderLayer;
use tower_http::trace::TraceLayer;

use crate::auth::{LoginLimiter, PasswordVerifier};
use crate::config::Config;
use crate::db::Db;
use crate::error::AppError;
use crate::state::AppState;
use crate::systemd::Systemd;
use crate::systemd::journal::JournalHub;

/// The whole HTTP surface: API, pages, static files, behind the auth gate.
pub fn app(state: AppState) -> Router {
    let (api, openapi) = api::router();
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
        .fallback(not_found)
        // After every route: it applies to the routes registered so far.
        .method_not_allowed_fallback(method_not_allowed)
        .layer(axum::middleware::from_fn_with_state(
            state.clone(),
            auth::authenticate,
        ))
        .layer(axum::middleware::from_fn_with_state(
            state.clone(),
            wait_for_units,
        ))
        .layer(DefaultBodyLimit::max(api::extract::MAX_BODY))
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

/// Right after start, requests wait (at most 10 s) for the first full unit list rather
/// than a 503; `/healthz` answers at once (200 once every loaded unit is listed).
async fn wait_for_units(
    State(state): State<AppState>,
    request: Request,
    next: axum::middleware::Next,
) -> Response {
    if request.uri().path() != "/healthz" {
        state.systemd.filled(Duration::from_secs(10)).await;
    }
    next.run(request).await
}

async fn not_found(uri: Uri) -> Response {
    let err = AppError::NotFound(format!("no route for {}", uri.path()));
    if uri.path().starts_with("/api/") {
        err.into_response()
    } else {
        web::PageError(err).into_response()
    }
}

/// A known path with another method: problem+json under `/api/` like every API error
/// (axum adds the `Allow` header).
async fn method_not_allowed(method: Method, uri: Uri) -> Response {
    let err = AppError::MethodNotAllowed(method.to_string());
    if uri.path().starts_with("/api/") {
        err.into_response()
    } else {
        web::PageError(err).into_response()
    }
}

/// The unit unitdeck itself runs in, from its cgroup (None when started by hand).
fn own_unit() -> Option<String> {
    let cgroup = std::fs::read_to_string("/proc/self/cgroup").ok()?;
    ports::unit_from_cgroup(&cgroup).filter(|u| u.ends_with(".service"))
}

/// Builds the state: opens the database, resolves the password, starts the watchers.
pub async fn build_state(config: Config) -> anyhow::Result<AppState> {
    std::fs::create_dir_all(&config.state_dir).map_err(|e| {
        anyhow::anyhow!(
            "cannot create the state directory {}: {e}",
            config.state_dir.display()
        )
    })?;
    let db = Db::open(&config.database_path()).await?;
    match db.close_interrupted_actions().await {
        Ok(0) => {}
        Ok(n) => tracing::warn!(actions = n, "unit actions interrupted by the last stop"),
        Err(e) => tracing::error!(error = %e, "cannot mark interrupted unit actions"),
    }
    let password =
        PasswordVerifier::from_source(&config.password, &db, &config.initial_password_path())
            .await?;
    let systemd = Systemd::start(config.bus_address.clone(), own_unit());
    unitfile::load_managed(&db, &systemd).await?;
    let state = AppState {
        config: Arc::new(config),
        db,
        systemd,
        journal: Arc::new(JournalHub::new()),
        password,
        login_limiter: Arc::new(LoginLimiter::default()),
        health: Default::default(),
        port_scanner: Arc::new(std::sync::Mutex::new(ports::PortScanner::new("/proc"))),
        notices: Default::default(),
    };
    // The unit directory agrees with the database again: missing files are written back
    // (a recreated container), interrupted changes settled, hand edits reported.
    if let Err(e) = unitfile::reconcile_on_start(&state).await {
        tracing::error!(error = %e, "cannot check the unit files unitdeck created");
    }
    Ok(state)
}

/// `unitdeck serve`.
pub async fn serve(config: Config) -> anyhow::Result<()> {
    let listen = config.listen;
    let state = build_state(config).await?;
    health::spawn(state.clone());
    // The first port scan walks every process's fd table (~30 ms at 1,000 listeners);
    // do it now so the first page that shows ports gets the remembered, cheap one.
    let warm = state.clone();
    tokio::spawn(async move {
        let _ = warm.listeners().await;
    });
    let listener = tokio::net::TcpListener::bind(listen)
        .await
        .map_err(|e| anyhow::anyhow!("cannot listen on {listen}: {e}"))?;
    tracing::info!(%listen, version = env!("CARGO_PKG_VERSION"), "unitdeck is serving");
    let (stopping, mut stop) = tokio::sync::watch::channel(false);
    let app = app(state).layer(axum::middleware::from_fn_with_state(
        stop.clone(),
        live_streams,
    ));
    let server = axum::serve(
        listener,
        app.into_make_service_with_connect_info::<SocketAddr>(),
    )
    .with_graceful_shutdown(async move {
        shutdown_signal().await;
        let _ = stopping.send(true);
    });
    // Bounds what still runs after the live streams ended (an action waiting for its job).
    let drained = async move {
        let _ = stop.wait_for(|s| *s).await;
        tokio::time::sleep(SHUTDOWN_DRAIN).await;
    };
    tokio::select! {
        res = async { server.await } => res?,
        () = drained => tracing::warn!("requests still running after the drain time: closing their connections"),
    }
    Ok(())
}

/// Live streams (SSE) never end by themselves: they end when unitdeck stops, so a restart
/// does not wait for them (it waited the whole drain time whenever a page was open), and
/// they ask browsers to come back after a second instead of their default three.
async fn live_streams(
    State(stopping): State<tokio::sync::watch::Receiver<bool>>,
    request: Request,
    next: axum::middleware::Next,
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

/// How long requests in flight may take to finish after SIGTERM.
const SHUTDOWN_DRAIN: std::time::Duration = std::time::Duration::from_secs(3);

async fn shutdown_signal() {
    use tokio::signal::unix::{SignalKind, signal};
    let mut term = signal(SignalKind::terminate()).expect("SIGTERM handler");
    tokio::select! {
        _ = term.recv() => {}
        _ = tokio::signal::ctrl_c() => {}
    }
    tracing::info!("shutting down");
}
