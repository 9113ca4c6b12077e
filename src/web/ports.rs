//! The ports page and the strip of watched ports on the dashboard.

use askama::Template;
use askama_web::WebTemplate;
use axum::extract::State;
use axum::http::HeaderMap;
use axum::response::IntoResponse;

use super::pages::Chrome;
use crate::http::problem::PageError;
use crate::http::request_host;
use crate::ports::PortInfo;
use crate::service::health::HealthCheckInfo;
use crate::state::AppState;

/// A port as a tile: `mismatch` when something is wrong, else its state.
pub struct PortTile {
    pub p: PortInfo,
    pub tile_state: &'static str,
    pub unit_href: Option<String>,
}

impl PortTile {
    pub fn new(p: PortInfo) -> Self {
        let tile_state = if p.problem.is_some() {
            "mismatch"
        } else {
            p.state
        };
        let unit_href = p
            .unit
            .as_deref()
            .filter(|u| u.ends_with(".service"))
            .map(|u| format!("units/{}", crate::http::urlencode(u)));
        Self {
            p,
            tile_state,
            unit_href,
        }
    }
}

#[derive(Template, WebTemplate)]
#[template(path = "ports.html")]
struct PortsPage {
    chrome: Chrome,
    tiles: Vec<PortTile>,
    checks: Vec<HealthCheckInfo>,
}

pub async fn ports_page(
    State(state): State<AppState>,
    headers: HeaderMap,
) -> Result<impl IntoResponse, PageError> {
    let ports = state.services.port_map(&request_host(&headers)).await?;
    Ok(PortsPage {
        chrome: Chrome::new("ports"),
        tiles: ports.into_iter().map(PortTile::new).collect(),
        checks: state.services.health_checks(),
    })
}

/// The watched ports only, for the dashboard.
pub async fn watched_tiles(state: &AppState, headers: &HeaderMap) -> Vec<PortTile> {
    state
        .services
        .port_map(&request_host(headers))
        .await
        .unwrap_or_default()
        .into_iter()
        .filter(|p| p.watched)
        .map(PortTile::new)
        .collect()
}
