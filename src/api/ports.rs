//! Ports and health checks.

use axum::Json;
use axum::extract::State;
use axum::http::HeaderMap;

use crate::error::AppResult;
use crate::http::request_host;
use crate::ports::PortInfo;
use crate::service::Services;
use crate::service::health::HealthCheckInfo;

/// Every watched port (UNITDECK_PORTS) and every other TCP port a service listens on.
#[utoipa::path(get, path = "/api/v1/ports", tag = "ports",
    responses((status = 200, description = "by port number", body = Vec<PortInfo>)))]
pub async fn ports(
    State(services): State<Services>,
    headers: HeaderMap,
) -> AppResult<Json<Vec<PortInfo>>> {
    Ok(Json(services.port_map(&request_host(&headers)).await?))
}

/// Health checks of managed units and their last results.
#[utoipa::path(get, path = "/api/v1/health-checks", tag = "ports",
    responses((status = 200, description = "one per managed unit with a health check", body = Vec<HealthCheckInfo>)))]
pub async fn health_checks(State(services): State<Services>) -> Json<Vec<HealthCheckInfo>> {
    Json(services.health_checks())
}
