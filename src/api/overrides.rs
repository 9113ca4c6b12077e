//! Every unit's files, and overrides of the units unitdeck did not create (API.md
//! "Overrides"). `{name}` is a full unit name; an alias is resolved to the unit it stands
//! for.

use axum::Json;
use axum::extract::State;
use serde::Deserialize;
use utoipa::ToSchema;

use super::params::UnitPath;
use crate::auth::{Principal, Scope};
use crate::error::AppResult;
use crate::http::extract::{ApiJson, ApiPath};
use crate::http::problem::Problem;
use crate::service::Services;
use crate::service::overrides::{
    OverrideApplied, OverridePreview, OverrideRevision, OverrideState, UnitSource,
};
use crate::unitfile::dropin::OverrideSpec;

/// `value` as the caller may see it: whole for an admin, else through `redact` (secret
/// values, environment values above all, read `***`).
fn as_seen_by<T>(principal: &Principal, value: T, redact: impl FnOnce(T) -> T) -> T {
    if principal.scope >= Scope::Admin {
        value
    } else {
        redact(value)
    }
}

/// The files systemd reads for the unit, in the order it applies them (what `systemctl
/// cat` prints): its fragment, then every drop-in, each with the settings it assigns.
/// Only the paths systemd reports are read, each up to 1 MiB. Environment values read
/// `***` unless the caller is an admin.
#[utoipa::path(get, path = "/api/v1/units/{name}/files", tag = "overrides",
    params(UnitPath),
    responses(
        (status = 200, description = "the fragment, then the drop-ins", body = Vec<UnitSource>),
        (status = 400, description = "not a valid unit name", body = Problem),
        (status = 404, description = "no such unit", body = Problem),
        (status = 503, description = "systemd is unreachable", body = Problem)
    ))]
pub async fn files(
    State(services): State<Services>,
    principal: Principal,
    ApiPath(UnitPath { name }): ApiPath<UnitPath>,
) -> AppResult<Json<Vec<UnitSource>>> {
    let files = services.unit_sources(&name).await?;
    Ok(Json(as_seen_by(&principal, files, |files| {
        files.into_iter().map(UnitSource::redacted).collect()
    })))
}

/// The unit's override (unitdeck's drop-in `UNIT.d/50-unitdeck.conf`) and its revisions.
/// `revision` is null for a unit never overridden, `settings` null when there is no
/// override in place. Environment values read `***` unless the caller is an admin.
#[utoipa::path(get, path = "/api/v1/units/{name}/override", tag = "overrides",
    params(UnitPath),
    responses(
        (status = 200, description = "the override, or none", body = OverrideState),
        (status = 400, description = "not a valid unit name", body = Problem),
        (status = 404, description = "no such unit", body = Problem),
        (status = 409, description = "the unit may not be overridden: protected, its start would take the container down, created by unitdeck, not loaded, or its drop-in directory or file is not unitdeck's", body = Problem),
        (status = 503, description = "systemd is unreachable", body = Problem)
    ))]
pub async fn get(
    State(services): State<Services>,
    principal: Principal,
    ApiPath(UnitPath { name }): ApiPath<UnitPath>,
) -> AppResult<Json<OverrideState>> {
    let state = services.override_state(&name).await?;
    Ok(Json(as_seen_by(&principal, state, OverrideState::redacted)))
}

/// Check an override without writing anything: the drop-in, `systemd-analyze verify` of
/// the unit with it and every other file of the unit applied, the unit's settings before
/// and after, drop-ins applied later that set the same settings, and whether a running
/// unit needs a restart. A spec that breaks a rule is a 422; what systemd rejects is in
/// `verify.errors` (a save answers 422 with them).
#[utoipa::path(post, path = "/api/v1/units/{name}/override/preview", tag = "overrides",
    params(UnitPath),
    request_body = OverrideSpec,
    responses(
        (status = 200, description = "the drop-in and what it changes", body = OverridePreview),
        (status = 404, description = "no such unit", body = Problem),
        (status = 409, description = "the unit may not be overridden", body = Problem),
        (status = 422, description = "one error per invalid field", body = Problem),
        (status = 503, description = "systemd is unreachable", body = Problem)
    ))]
pub async fn preview(
    State(services): State<Services>,
    ApiPath(UnitPath { name }): ApiPath<UnitPath>,
    ApiJson(spec): ApiJson<OverrideSpec>,
) -> AppResult<Json<OverridePreview>> {
    Ok(Json(services.preview_override(&name, &spec).await?))
}

/// Override the unit: unitdeck's drop-in written atomically, systemd reloaded and seen to
/// apply it, a new revision recorded and audited. Settings that apply on the reload
/// (restart policy, time-outs, memory and CPU limits, ordering) take effect at once;
/// for the others `restart_needed` says to restart the unit
/// (`POST /api/v1/units/{name}/restart`).
#[utoipa::path(put, path = "/api/v1/units/{name}/override", tag = "overrides",
    params(UnitPath),
    request_body = OverrideSpec,
    responses(
        (status = 200, description = "written, reloaded, recorded", body = OverrideApplied),
        (status = 404, description = "no such unit", body = Problem),
        (status = 409, description = "the unit may not be overridden (nothing written)", body = Problem),
        (status = 422, description = "one error per invalid field, systemd's objections included; nothing written", body = Problem),
        (status = 503, description = "systemd is unreachable", body = Problem)
    ))]
pub async fn put(
    State(services): State<Services>,
    principal: Principal,
    ApiPath(UnitPath { name }): ApiPath<UnitPath>,
    ApiJson(spec): ApiJson<OverrideSpec>,
) -> AppResult<Json<OverrideApplied>> {
    Ok(Json(services.save_override(&principal, &name, spec).await?))
}

/// Remove the override: back to the unit's own settings. Recorded as a revision, so a
/// rollback can bring it back; other drop-ins stay as they are.
#[utoipa::path(delete, path = "/api/v1/units/{name}/override", tag = "overrides",
    params(UnitPath),
    responses(
        (status = 200, description = "removed, reloaded, recorded", body = OverrideApplied),
        (status = 404, description = "no such unit, or no override to remove", body = Problem),
        (status = 409, description = "the unit may not be overridden", body = Problem),
        (status = 503, description = "systemd is unreachable", body = Problem)
    ))]
pub async fn delete(
    State(services): State<Services>,
    principal: Principal,
    ApiPath(UnitPath { name }): ApiPath<UnitPath>,
) -> AppResult<Json<OverrideApplied>> {
    Ok(Json(services.remove_override(&principal, &name).await?))
}

/// The override's revisions, newest first, with their specs and drop-ins (a removal has
/// neither). Environment values read `***` unless the caller is an admin.
#[utoipa::path(get, path = "/api/v1/units/{name}/override/revisions", tag = "overrides",
    params(UnitPath),
    responses(
        (status = 200, description = "newest first", body = Vec<OverrideRevision>),
        (status = 400, description = "not a valid unit name", body = Problem),
        (status = 404, description = "no such unit, or never overridden", body = Problem),
        (status = 503, description = "systemd is unreachable", body = Problem)
    ))]
pub async fn revisions(
    State(services): State<Services>,
    principal: Principal,
    ApiPath(UnitPath { name }): ApiPath<UnitPath>,
) -> AppResult<Json<Vec<OverrideRevision>>> {
    let revisions = services.override_revisions(&name).await?;
    Ok(Json(as_seen_by(&principal, revisions, |revisions| {
        revisions
            .into_iter()
            .map(OverrideRevision::redacted)
            .collect()
    })))
}

#[derive(Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct OverrideRollback {
    /// The revision whose spec (or removal) becomes the new revision.
    revision: i64,
}

/// Roll back: a new revision that applies revision N's spec, or removes the override when
/// N was a removal; applied like a save.
#[utoipa::path(post, path = "/api/v1/units/{name}/override/rollback", tag = "overrides",
    params(UnitPath),
    request_body = OverrideRollback,
    responses(
        (status = 200, description = "the new revision, applied", body = OverrideApplied),
        (status = 404, description = "no such unit, or nothing to remove", body = Problem),
        (status = 409, description = "the unit may not be overridden", body = Problem),
        (status = 422, description = "no such revision, or its spec no longer passes the checks", body = Problem),
        (status = 503, description = "systemd is unreachable", body = Problem)
    ))]
pub async fn rollback(
    State(services): State<Services>,
    principal: Principal,
    ApiPath(UnitPath { name }): ApiPath<UnitPath>,
    ApiJson(body): ApiJson<OverrideRollback>,
) -> AppResult<Json<OverrideApplied>> {
    Ok(Json(
        services
            .rollback_override(&principal, &name, body.revision)
            .await?,
    ))
}
