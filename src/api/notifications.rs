//! Notification channels (admin) and their deliveries.

use axum::Json;
use axum::extract::State;
use axum::http::StatusCode;
use serde::Deserialize;
use utoipa::IntoParams;

use crate::auth::{Principal, Scope};
use crate::error::{AppError, AppResult};
use crate::http::extract::{ApiJson, ApiPath, ApiQuery};
use crate::http::problem::Problem;
use crate::service::Services;
use crate::service::notifications::{Channel, ChannelSpec, Delivery};

/// Every channel, oldest first. `url` reads `***` unless the caller is an admin.
#[utoipa::path(get, path = "/api/v1/notifications/channels", tag = "notifications",
    responses((status = 200, description = "every channel", body = Vec<Channel>)))]
pub async fn list_channels(
    State(services): State<Services>,
    principal: Principal,
) -> AppResult<Json<Vec<Channel>>> {
    let channels = services.channels().await?;
    Ok(Json(if principal.scope >= Scope::Admin {
        channels
    } else {
        channels.into_iter().map(Channel::redacted).collect()
    }))
}

/// Add a channel (audited).
#[utoipa::path(post, path = "/api/v1/notifications/channels", tag = "notifications",
    request_body = ChannelSpec,
    responses(
        (status = 201, description = "the channel", body = Channel),
        (status = 422, description = "an invalid field (a URL that is not http(s) or is unitdeck itself, an unknown or no event, a cooldown out of range, ...); `errors` names it", body = Problem)
    ))]
pub async fn create_channel(
    State(services): State<Services>,
    principal: Principal,
    ApiJson(spec): ApiJson<ChannelSpec>,
) -> AppResult<(StatusCode, Json<Channel>)> {
    let channel = services.create_channel(&principal, spec).await?;
    Ok((StatusCode::CREATED, Json(channel)))
}

/// Replace a channel (audited).
#[utoipa::path(put, path = "/api/v1/notifications/channels/{id}", tag = "notifications",
    params(("id" = i64, Path)),
    request_body = ChannelSpec,
    responses(
        (status = 200, description = "the channel", body = Channel),
        (status = 404, description = "no channel with that id", body = Problem),
        (status = 422, description = "an invalid field; `errors` names it", body = Problem)
    ))]
pub async fn update_channel(
    State(services): State<Services>,
    principal: Principal,
    ApiPath(id): ApiPath<i64>,
    ApiJson(spec): ApiJson<ChannelSpec>,
) -> AppResult<Json<Channel>> {
    Ok(Json(services.update_channel(&principal, id, spec).await?))
}

/// Delete a channel (audited); its deliveries stay listed.
#[utoipa::path(delete, path = "/api/v1/notifications/channels/{id}", tag = "notifications",
    params(("id" = i64, Path)),
    responses(
        (status = 204, description = "deleted"),
        (status = 404, description = "no channel with that id", body = Problem)
    ))]
pub async fn delete_channel(
    State(services): State<Services>,
    principal: Principal,
    ApiPath(id): ApiPath<i64>,
) -> AppResult<StatusCode> {
    services.delete_channel(&principal, id).await?;
    Ok(StatusCode::NO_CONTENT)
}

/// Send a test message through a channel now (one try, at most 5 s; recorded and
/// audited). A channel that fails answers 200 too: `status` says how it went.
#[utoipa::path(post, path = "/api/v1/notifications/channels/{id}/test", tag = "notifications",
    params(("id" = i64, Path)),
    responses(
        (status = 200, description = "the delivery", body = Delivery),
        (status = 404, description = "no channel with that id", body = Problem)
    ))]
pub async fn test_channel(
    State(services): State<Services>,
    principal: Principal,
    ApiPath(id): ApiPath<i64>,
) -> AppResult<Json<Delivery>> {
    Ok(Json(services.test_channel(&principal, id).await?))
}

#[derive(Deserialize, IntoParams)]
#[into_params(parameter_in = Query)]
pub struct DeliveriesQuery {
    /// At most this many (1-1000, default 100).
    #[param(minimum = 1, maximum = 1000)]
    limit: Option<u32>,
}

/// The deliveries made, newest first.
#[utoipa::path(get, path = "/api/v1/notifications/deliveries", tag = "notifications",
    params(DeliveriesQuery),
    responses(
        (status = 200, description = "newest first", body = Vec<Delivery>),
        (status = 400, description = "`limit` out of range", body = Problem)
    ))]
pub async fn deliveries(
    State(services): State<Services>,
    ApiQuery(query): ApiQuery<DeliveriesQuery>,
) -> AppResult<Json<Vec<Delivery>>> {
    let limit = match query.limit {
        None => 100,
        Some(n @ 1..=1000) => n,
        Some(_) => {
            return Err(AppError::BadRequest(
                "query parameter limit: must be 1 to 1000".into(),
            ));
        }
    };
    Ok(Json(services.deliveries(limit).await?))
}
