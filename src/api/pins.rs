//! Pinned units: the ones the dashboard shows first (one list, on the server).

use axum::Json;
use axum::extract::State;

use super::params::UnitPath;
use crate::auth::Principal;
use crate::error::AppResult;
use crate::http::extract::ApiPath;
use crate::http::problem::Problem;
use crate::service::Services;

/// The pinned units, in the order they were pinned.
#[utoipa::path(get, path = "/api/v1/pins", tag = "units",
    responses((status = 200, description = "unit names", body = Vec<String>)))]
pub async fn list(State(services): State<Services>) -> Json<Vec<String>> {
    Json(services.pinned_units())
}

/// Pin a unit to the top of the dashboard (it need not be loaded); already pinned is fine.
#[utoipa::path(put, path = "/api/v1/pins/{name}", tag = "units",
    params(UnitPath),
    responses(
        (status = 200, description = "the pinned units afterwards", body = Vec<String>),
        (status = 400, description = "not a valid unit name", body = Problem),
        (status = 409, description = "as many units as allowed (50) are pinned", body = Problem)
    ))]
pub async fn pin(
    State(services): State<Services>,
    principal: Principal,
    ApiPath(UnitPath { name }): ApiPath<UnitPath>,
) -> AppResult<Json<Vec<String>>> {
    Ok(Json(services.set_pinned(&principal, &name, true).await?))
}

/// Unpin a unit; not pinned is fine.
#[utoipa::path(delete, path = "/api/v1/pins/{name}", tag = "units",
    params(UnitPath),
    responses(
        (status = 200, description = "the pinned units afterwards", body = Vec<String>),
        (status = 400, description = "not a valid unit name", body = Problem)
    ))]
pub async fn unpin(
    State(services): State<Services>,
    principal: Principal,
    ApiPath(UnitPath { name }): ApiPath<UnitPath>,
) -> AppResult<Json<Vec<String>>> {
    Ok(Json(services.set_pinned(&principal, &name, false).await?))
}
