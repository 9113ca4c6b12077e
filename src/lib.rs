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
pub mod tls;
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
use axum::serve::ListenerExt;
use futures_util::StreamExt;
use tower_http::compression::CompressionLayer;
use tower_http::set_header::SetResponseHeaderLayer;
use tower_http::trace::TraceLayer;

use crate::auth::{HostAllowlist, LoginLimiter, PasswordVerifier};
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
        // Outside the auth gate: a request for a foreign host gets nothing else done.
        .layer(axum::middleware::from_fn_with_state(
            state.clone(),
            known_hosts_only,
        ))
        .layer(axum::middleware::from_fn(security_headers))
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

/// Answers 421 to a request whose `Host` does not name this machine (DNS rebinding).
async fn known_hosts_only(
    State(state): State<AppState>,
    request: Request,
    next: axum::middleware::Next,
) -> Response {
    // HTTP/2 carries the host in the URI; HTTP/1.1 in the header.
    let host = request
        .headers()
        .get(header::HOST)
        .and_then(|h| h.to_str().ok())
        .or_else(|| request.uri().authority().map(|a| a.as_str()));
    if host.is_some_and(|h| state.hosts.allows(h)) {
        return next.run(request).await;
    }
    let err = AppError::MisdirectedRequest(format!(
        "this server does not answer to the host {:?}; add it to UNITDECK_ALLOWED_HOSTS \
         if it names this machine",
        host.unwrap_or("")
    ));
    error_for(request.uri().path(), err)
}

/// What a browser must know about every answer: HTML pages run only this site's own
/// scripts and styles, in no frame; nothing but static files is cached.
async fn security_headers(request: Request, next: axum::middleware::Next) -> Response {
    let mut response = next.run(request).await;
    let headers = response.headers_mut();
    let is_html = headers
        .get(header::CONTENT_TYPE)
        .is_some_and(|v| v.as_bytes().starts_with(b"text/html"));
    if is_html {
        headers.insert(
            header::CONTENT_SECURITY_POLICY,
            HeaderValue::from_static(CONTENT_SECURITY_POLICY),
        );
    }
    // Static files say how long they keep; everything else may hold what a login shows.
    if !headers.contains_key(header::CACHE_CONTROL) {
        headers.insert(header::CACHE_CONTROL, HeaderValue::from_static("no-store"));
    }
    response
}

/// No inline script or style, no eval (htmx's `allowEval` is off), no frames, forms
/// post only here.
pub const CONTENT_SECURITY_POLICY: &str = "default-src 'self'; script-src 'self'; \
     style-src 'self'; img-src 'self'; object-src 'none'; frame-ancestors 'none'; \
     base-uri 'none'; form-action 'self'";

/// An error as problem+json on the JSON routes (`/api/`, `/healthz`), as a page elsewhere.
fn error_for(path: &str, err: AppError) -> Response {
    if path.starts_with("/api/") || path == "/healthz" {
        err.into_response()
    } else {
        web::PageError(err).into_response()
    }
}

async fn not_found(uri: Uri) -> Response {
    error_for(
        uri.path(),
        AppError::NotFound(format!("no route for {}", uri.path())),
    )
}

/// A known path with another method: problem+json under `/api/` like every API error
/// (axum adds the `Allow` header).
async fn method_not_allowed(method: Method, uri: Uri) -> Response {
    error_for(uri.path(), AppError::MethodNotAllowed(method.to_string()))
}

/// The unit unitdeck itself runs in, from its cgroup (None when started by hand).
fn own_unit() -> Option<String> {
    let cgroup = std::fs::read_to_string("/proc/self/cgroup").ok()?;
    ports::unit_from_cgroup(&cgroup).filter(|u| u.ends_with(".service"))
}

/// Builds the state: opens the database, resolves the password, starts the watchers.
/// `tls_fingerprint`: the certificate's, when unitdeck serves HTTPS (shown on /settings).
pub async fn build_state(
    config: Config,
    tls_fingerprint: Option<String>,
) -> anyhow::Result<AppState> {
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
    // The comparison with the password sessions were opened under (an argon2 check for
    // a plain-text one) runs now, in the background: the first login need not wait.
    let settling = password.clone();
    tokio::spawn(async move {
        if let Err(e) = settling.ready().await {
            tracing::error!(error = %e, "cannot settle the login password");
        }
    });
    let systemd = Systemd::start(config.bus_address.clone(), own_unit());
    unitfile::load_managed(&db, &systemd).await?;
    let hosts = Arc::new(HostAllowlist::new(config.allowed_hosts.clone()));
    let state = AppState {
        config: Arc::new(config),
        db,
        systemd,
        journal: Arc::new(JournalHub::new()),
        password,
        login_limiter: Arc::new(LoginLimiter::default()),
        hosts,
        tls_fingerprint: tls_fingerprint.map(Arc::from),
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
    let tls = tls::setup(&config)?;
    if let Some(tls) = &tls {
        tracing::info!(fingerprint = %tls.fingerprint, "serving HTTPS; certificate SHA-256");
    }
    let state = build_state(config, tls.as_ref().map(|t| t.fingerprint.clone())).await?;
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
    tracing::info!(%listen, version = env!("CARGO_PKG_VERSION"), https = tls.is_some(), "unitdeck is serving");
    let (stopping, mut stop) = tokio::sync::watch::channel(false);
    let mut app = app(state).layer(axum::middleware::from_fn_with_state(
        stop.clone(),
        live_streams,
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
