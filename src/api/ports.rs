//! Ports and health checks.

use axum::Json;
use axum::extract::State;
use axum::http::{HeaderMap, header};

use crate::error::AppResult;
use crate::health::HealthCheckInfo;
use crate::ports::PortInfo;
use crate::state::AppState;

/// The host the client used, for links to other ports on it.
pub fn request_host(headers: &HeaderMap) -> String {
    headers
        .get(header::HOST)
        .and_then(|v| v.to_str().ok())
        .unwrap_or("localhost")
        .to_string()
}

/// Every watched port (UNITDECK_PORTS) and every other TCP port a service listens on.
#[utoipa::path(get, path = "/api/v1/ports", tag = "ports",
    responses((status = 200, description = "by port number", body = Vec<PortInfo>)))]
pub async fn ports(
    State(state): State<AppState>,
    headers: HeaderMap,
) -> AppResult<Json<Vec<PortInfo>>> {
    Ok(Json(state.port_map(&request_host(&headers)).await?))
}

/// Health checks of managed units and their last results.
#[utoipa::path(get, path = "/api/v1/health-checks", tag = "ports",
    responses((status = 200, description = "one per managed unit with a health check", body = Vec<HealthCheckInfo>)))]
pub async fn health_checks(State(state): State<AppState>) -> Json<Vec<HealthCheckInfo>> {
    Json(state.health.list())
}
