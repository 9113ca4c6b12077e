//! Unit files created by unitdeck (API.md): preview, create, list, read, update,
//! rollback, delete. `{name}` is the base name (`shop-api`) or a file name
//! (`shop-api.service`, `nightly.timer`).

use axum::Json;
use axum::extract::State;
use axum::http::StatusCode;
use serde::Deserialize;
use utoipa::ToSchema;

use super::params::UnitFilePath;
use crate::auth::{Principal, Scope};
use crate::error::AppResult;
use crate::http::extract::{ApiJson, ApiPath};
use crate::http::problem::Problem;
use crate::service::Services;
use crate::service::unit_files::{Applied, Preview, UnitFileDetail, UnitFileInfo};
use crate::unitfile::UnitSpec;

/// Render a spec and check it with `systemd-analyze verify` (and `calendar` for a job),
/// without changing anything. A spec that breaks a rule is a 422; problems of this machine
/// (missing program, directory, user, a name taken by another unit) are listed in
/// `verify.errors`, and make a create or update answer 422.
#[utoipa::path(post, path = "/api/v1/unit-files/preview", tag = "unit-files",
    request_body = UnitSpec,
    responses(
        (status = 200, description = "the files and what systemd says of them", body = Preview),
        (status = 422, description = "one error per invalid field", body = Problem)
    ))]
pub async fn preview(
    State(services): State<Services>,
    ApiJson(spec): ApiJson<UnitSpec>,
) -> AppResult<Json<Preview>> {
    Ok(Json(services.preview_unit_file(&spec).await?))
}

/// Create a unit file: written atomically, systemd reloaded, revision 1 recorded, then
/// enabled and started as the spec asks. `unit` is the primary unit (the timer of a job);
/// `job` is its start job; `warnings` say what failed after the files were installed.
#[utoipa::path(post, path = "/api/v1/unit-files", tag = "unit-files",
    request_body = UnitSpec,
    responses(
        (status = 201, description = "written, reloaded, enabled and started as asked", body = Applied),
        (status = 409, description = "a unit of that name exists and unitdeck did not create it", body = Problem),
        (status = 422, description = "one error per invalid field; nothing written", body = Problem),
        (status = 503, description = "systemd is unreachable", body = Problem)
    ))]
pub async fn create(
    State(services): State<Services>,
    principal: Principal,
    ApiJson(spec): ApiJson<UnitSpec>,
) -> AppResult<(StatusCode, Json<Applied>)> {
    let applied = services.create_unit_file(&principal, spec).await?;
    Ok((StatusCode::CREATED, Json(applied)))
}

/// The unit files unitdeck created.
#[utoipa::path(get, path = "/api/v1/unit-files", tag = "unit-files",
    responses((status = 200, description = "newest change first", body = Vec<UnitFileInfo>)))]
pub async fn list(State(services): State<Services>) -> AppResult<Json<Vec<UnitFileInfo>>> {
    Ok(Json(services.list_unit_files().await?))
}

/// One unit file: its current spec and files, and its revisions (newest first).
/// Environment values read `***` unless the caller is an admin.
#[utoipa::path(get, path = "/api/v1/unit-files/{name}", tag = "unit-files",
    params(UnitFilePath),
    responses(
        (status = 200, description = "the unit file", body = UnitFileDetail),
        (status = 400, description = "not a unit file name", body = Problem),
        (status = 404, description = "unitdeck created no such unit file", body = Problem)
    ))]
pub async fn get(
    State(services): State<Services>,
    principal: Principal,
    ApiPath(UnitFilePath { name }): ApiPath<UnitFilePath>,
) -> AppResult<Json<UnitFileDetail>> {
    let detail = services.unit_file(&name).await?;
    // Environment values often are secrets: only admins see them.
    Ok(Json(if principal.scope >= Scope::Admin {
        detail
    } else {
        detail.redacted()
    }))
}

/// Replace a unit file with a full spec: a new revision, systemd reloaded, the unit
/// restarted if it was running (started if `start` and it was not), enabled or disabled
/// as `enable` says. `spec.name` must be the unit in the URL.
#[utoipa::path(put, path = "/api/v1/unit-files/{name}", tag = "unit-files",
    params(UnitFilePath),
    request_body = UnitSpec,
    responses(
        (status = 200, description = "the new revision, applied", body = Applied),
        (status = 400, description = "not a unit file name, or a body that is not JSON", body = Problem),
        (status = 404, description = "unitdeck created no such unit file", body = Problem),
        (status = 409, description = "the unit was not created by unitdeck", body = Problem),
        (status = 422, description = "one error per invalid field; nothing written", body = Problem),
        (status = 503, description = "systemd is unreachable", body = Problem)
    ))]
pub async fn update(
    State(services): State<Services>,
    principal: Principal,
    ApiPath(UnitFilePath { name }): ApiPath<UnitFilePath>,
    ApiJson(spec): ApiJson<UnitSpec>,
) -> AppResult<Json<Applied>> {
    Ok(Json(
        services.update_unit_file(&principal, &name, spec).await?,
    ))
}

#[derive(Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct RollbackRequest {
    /// The revision whose spec becomes the new revision (history is append-only).
    revision: i64,
}

/// Roll back: a new revision whose spec equals revision N's, applied like an update.
#[utoipa::path(post, path = "/api/v1/unit-files/{name}/rollback", tag = "unit-files",
    params(UnitFilePath),
    request_body = RollbackRequest,
    responses(
        (status = 200, description = "the new revision, applied", body = Applied),
        (status = 400, description = "not a unit file name, or a body that is not JSON", body = Problem),
        (status = 404, description = "unitdeck created no such unit file", body = Problem),
        (status = 409, description = "the unit was not created by unitdeck", body = Problem),
        (status = 422, description = "no such revision, or its spec no longer passes the checks", body = Problem),
        (status = 503, description = "systemd is unreachable", body = Problem)
    ))]
pub async fn rollback(
    State(services): State<Services>,
    principal: Principal,
    ApiPath(UnitFilePath { name }): ApiPath<UnitFilePath>,
    ApiJson(body): ApiJson<RollbackRequest>,
) -> AppResult<Json<Applied>> {
    Ok(Json(
        services
            .rollback_unit_file(&principal, &name, body.revision)
            .await?,
    ))
}

/// Delete a unit file: stop and disable the unit, remove its files, reload systemd. Its
/// revisions go too (the audit log keeps the last spec).
#[utoipa::path(delete, path = "/api/v1/unit-files/{name}", tag = "unit-files",
    params(UnitFilePath),
    responses(
        (status = 204, description = "stopped, disabled and removed"),
        (status = 400, description = "not a unit file name", body = Problem),
        (status = 404, description = "unitdeck created no such unit file", body = Problem),
        (status = 409, description = "the unit was not created by unitdeck, or its service did not stop (nothing was changed)", body = Problem),
        (status = 503, description = "systemd is unreachable", body = Problem)
    ))]
pub async fn delete(
    State(services): State<Services>,
    principal: Principal,
    ApiPath(UnitFilePath { name }): ApiPath<UnitFilePath>,
) -> AppResult<StatusCode> {
    services.delete_unit_file(&principal, &name).await?;
    Ok(StatusCode::NO_CONTENT)
}
