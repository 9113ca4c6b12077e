//! Unit routes: list, detail, actions.

use axum::Json;
use axum::extract::State;
use serde::Deserialize;
use utoipa::IntoParams;
use utoipa::openapi::{Object, ObjectBuilder, Type};

use super::params::{UnitActionPath, UnitPath};
use crate::auth::Principal;
use crate::error::AppResult;
use crate::http::extract::{ApiPath, ApiQuery};
use crate::http::problem::Problem;
use crate::service::{Services, unit_action_named, unit_filter};
use crate::systemd::names::UNIT_TYPES;
use crate::systemd::{ActionOutcome, UnitDetail, UnitSummary};

#[derive(Deserialize, IntoParams)]
#[into_params(parameter_in = Query)]
#[serde(deny_unknown_fields)]
pub struct UnitsQuery {
    /// A unit type (service, timer, socket, ...) or `all`; default `service`.
    #[serde(rename = "type")]
    #[param(rename = "type", schema_with = unit_type)]
    unit_type: Option<String>,
    /// Matches the active, sub, load or unit-file state (e.g. `failed`, `running`, `enabled`).
    state: Option<String>,
    /// Text in the name or description, case-insensitive.
    q: Option<String>,
}

fn unit_type() -> Object {
    ObjectBuilder::new()
        .schema_type(Type::String)
        .enum_values(Some(
            std::iter::once("all").chain(UNIT_TYPES.iter().copied()),
        ))
        .default(Some("service".into()))
        .build()
}

/// List units from the live cache.
#[utoipa::path(get, path = "/api/v1/units", tag = "units",
    params(UnitsQuery),
    responses(
        (status = 200, description = "the matching units", body = Vec<UnitSummary>),
        (status = 400, description = "an unknown unit type", body = Problem),
        (status = 503, description = "systemd has not answered since unitdeck started", body = Problem)
    ))]
pub async fn list_units(
    State(services): State<Services>,
    ApiQuery(query): ApiQuery<UnitsQuery>,
) -> AppResult<Json<Vec<UnitSummary>>> {
    let filter = unit_filter(
        query.unit_type.as_deref(),
        query.state.as_deref(),
        query.q.as_deref(),
    )?;
    Ok(Json(services.list_units(&filter)?))
}

/// One unit with its relationships, commands, ports and timer.
#[utoipa::path(get, path = "/api/v1/units/{name}", tag = "units",
    params(UnitPath),
    responses(
        (status = 200, description = "the unit", body = UnitDetail),
        (status = 400, description = "not a valid unit name", body = Problem),
        (status = 404, description = "no such unit", body = Problem),
        (status = 503, description = "systemd is unreachable", body = Problem)
    ))]
pub async fn get_unit(
    State(services): State<Services>,
    ApiPath(UnitPath { name }): ApiPath<UnitPath>,
) -> AppResult<Json<UnitDetail>> {
    Ok(Json(services.unit_detail(&name).await?))
}

#[derive(Deserialize, IntoParams)]
#[into_params(parameter_in = Query)]
#[serde(deny_unknown_fields)]
pub struct ActionQuery {
    /// false: answer as soon as the job is queued.
    wait: Option<bool>,
}

/// Start, stop, restart, reload, enable, disable or reset-failed a unit.
#[utoipa::path(post, path = "/api/v1/units/{name}/{action}", tag = "units",
    params(UnitActionPath, ActionQuery),
    responses(
        (status = 200, description = "the job and the unit afterwards", body = ActionOutcome),
        (status = 400, description = "not a valid unit name", body = Problem),
        (status = 404, description = "unknown unit or action", body = Problem),
        (status = 409, description = "the unit is protected (stop, disable), it would shut the container down or take it out of service (start, restart: reboot.target, rescue.target, ...), or systemd refused", body = Problem),
        (status = 503, description = "systemd is unreachable", body = Problem)
    ))]
pub async fn unit_action(
    State(services): State<Services>,
    principal: Principal,
    ApiPath(UnitActionPath { name, action }): ApiPath<UnitActionPath>,
    ApiQuery(query): ApiQuery<ActionQuery>,
) -> AppResult<Json<ActionOutcome>> {
    let wait = query.wait.unwrap_or(true);
    Ok(Json(
        services
            .unit_action(&principal, &name, unit_action_named(&action)?, wait)
            .await?,
    ))
}
