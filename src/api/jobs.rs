//! Runs of a unit, and the jobs (timers) with the last runs of what they start.

use axum::Json;
use axum::extract::State;
use serde::Deserialize;
use utoipa::IntoParams;

use super::params::UnitPath;
use crate::error::{AppError, AppResult};
use crate::http::extract::{ApiPath, ApiQuery};
use crate::http::problem::Problem;
use crate::service::Services;
use crate::service::runs::{MAX_RUNS, Run, TimerJob};

#[derive(Deserialize, IntoParams)]
#[into_params(parameter_in = Query)]
pub struct RunsQuery {
    /// At most this many runs (1-200, default 20).
    #[param(minimum = 1, maximum = 200)]
    limit: Option<usize>,
}

/// A unit's runs as systemd recorded them (PID 1's journal entries and the unit's
/// properties), newest first; what started each one where that is known.
#[utoipa::path(get, path = "/api/v1/units/{name}/runs", tag = "units",
    params(UnitPath, RunsQuery),
    responses(
        (status = 200, description = "newest first", body = Vec<Run>),
        (status = 400, description = "not a valid unit name, or `limit` out of range", body = Problem),
        (status = 404, description = "no such unit", body = Problem),
        (status = 503, description = "systemd is unreachable", body = Problem)
    ))]
pub async fn runs(
    State(services): State<Services>,
    ApiPath(UnitPath { name }): ApiPath<UnitPath>,
    ApiQuery(query): ApiQuery<RunsQuery>,
) -> AppResult<Json<Vec<Run>>> {
    let limit = match query.limit {
        None => 20,
        Some(n @ 1..=MAX_RUNS) => n,
        Some(_) => {
            return Err(AppError::BadRequest(format!(
                "query parameter limit: must be 1 to {MAX_RUNS}"
            )));
        }
    };
    Ok(Json(services.unit_runs(&name, limit).await?))
}

/// Every timer (also those unitdeck did not create): its schedule as written, next and
/// last elapse, `Persistent=`, the unit it starts and that unit's last runs. "Run now" is
/// `POST /api/v1/units/{service}/start`.
#[utoipa::path(get, path = "/api/v1/timers", tag = "units",
    responses(
        (status = 200, description = "by timer name", body = Vec<TimerJob>),
        (status = 503, description = "systemd is unreachable", body = Problem)
    ))]
pub async fn timers(State(services): State<Services>) -> AppResult<Json<Vec<TimerJob>>> {
    Ok(Json(services.timer_jobs().await?))
}
