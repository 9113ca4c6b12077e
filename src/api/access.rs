//! Session, token and audit routes.

use axum::Json;
use axum::extract::State;
use axum::http::{HeaderMap, StatusCode, header};
use axum::response::IntoResponse;
use serde::Deserialize;
use utoipa::{IntoParams, ToSchema};

use crate::auth::{Principal, Scope};
use crate::error::{AppError, AppResult};
use crate::http::extract::{ApiJson, ApiPath, ApiQuery, ClientIp, api_session_cookie};
use crate::http::problem::Problem;
use crate::service::Services;
use crate::service::{AuditRecord, Token};
use crate::service::{NewToken, SESSION_TTL};

#[derive(Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct LoginRequest {
    password: String,
}

#[derive(serde::Serialize, ToSchema)]
pub struct Ok {
    ok: bool,
}

/// Log in with the password; sets the `unitdeck_session` cookie.
#[utoipa::path(post, path = "/api/v1/session", tag = "auth", security(()),
    request_body = LoginRequest,
    responses(
        (status = 200, description = "logged in", body = Ok, headers(("set-cookie" = String, description = "unitdeck_session=...; HttpOnly; SameSite=Strict"))),
        (status = 401, description = "wrong password", body = Problem),
        (status = 429, description = "too many failures", body = Problem, headers(("retry-after" = u64, description = "seconds to wait")))
    ))]
pub async fn create_session(
    State(services): State<Services>,
    ClientIp(client): ClientIp,
    headers: HeaderMap,
    ApiJson(body): ApiJson<LoginRequest>,
) -> AppResult<impl IntoResponse> {
    let previous = crate::http::gate::session_hash(&headers);
    let session = services.login(body.password, client, previous).await?;
    let cookie = api_session_cookie(&headers, &session, SESSION_TTL.as_secs());
    Ok(([(header::SET_COOKIE, cookie)], Json(Ok { ok: true })))
}

/// Log out: the session is deleted server-side.
#[utoipa::path(delete, path = "/api/v1/session", tag = "auth",
    responses((status = 204, description = "logged out (a token stays valid)")))]
pub async fn delete_session(
    State(services): State<Services>,
    principal: Principal,
    headers: HeaderMap,
) -> AppResult<impl IntoResponse> {
    services.logout(&principal).await?;
    Ok((
        StatusCode::NO_CONTENT,
        [(header::SET_COOKIE, api_session_cookie(&headers, "", 0))],
    ))
}

/// Log out everywhere: every session ends, this one too (API tokens stay valid).
#[utoipa::path(delete, path = "/api/v1/sessions", tag = "auth",
    responses((status = 204, description = "every session has ended")))]
pub async fn delete_sessions(
    State(services): State<Services>,
    principal: Principal,
    headers: HeaderMap,
) -> AppResult<impl IntoResponse> {
    services.logout_everywhere(&principal).await?;
    Ok((
        StatusCode::NO_CONTENT,
        [(header::SET_COOKIE, api_session_cookie(&headers, "", 0))],
    ))
}

#[derive(Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct TokenRequest {
    /// 1 to 100 characters, not all white space, no control characters.
    #[schema(
        min_length = 1,
        max_length = 100,
        pattern = r"^[^\u0000-\u001f\u007f-\u009f]*[^\s\u0000-\u001f\u007f-\u009f][^\u0000-\u001f\u007f-\u009f]*$"
    )]
    name: String,
    scope: Scope,
}

/// Create an API token. The secret is in this answer only.
#[utoipa::path(post, path = "/api/v1/tokens", tag = "auth",
    request_body = TokenRequest,
    responses(
        (status = 201, description = "the token, with its secret", body = NewToken),
        (status = 422, description = "an invalid name or scope", body = Problem)
    ))]
pub async fn create_token(
    State(services): State<Services>,
    principal: Principal,
    ApiJson(body): ApiJson<TokenRequest>,
) -> AppResult<impl IntoResponse> {
    let token = services
        .create_token(&principal, &body.name, body.scope)
        .await?;
    Ok((StatusCode::CREATED, Json(token)))
}

/// List API tokens (without secrets).
#[utoipa::path(get, path = "/api/v1/tokens", tag = "auth",
    responses((status = 200, description = "every token, newest first", body = Vec<Token>)))]
pub async fn list_tokens(State(services): State<Services>) -> AppResult<Json<Vec<Token>>> {
    Ok(Json(services.list_tokens().await?))
}

/// Revoke an API token.
#[utoipa::path(delete, path = "/api/v1/tokens/{id}", tag = "auth",
    params(("id" = i64, Path)),
    responses(
        (status = 204, description = "revoked"),
        (status = 404, description = "no token with that id", body = Problem)
    ))]
pub async fn delete_token(
    State(services): State<Services>,
    principal: Principal,
    ApiPath(id): ApiPath<i64>,
) -> AppResult<StatusCode> {
    services.revoke_token(&principal, id).await?;
    Ok(StatusCode::NO_CONTENT)
}

#[derive(Deserialize, IntoParams)]
#[into_params(parameter_in = Query)]
#[serde(deny_unknown_fields)]
pub struct AuditQuery {
    /// At most this many records (1-1000, default 100).
    #[param(minimum = 1, maximum = 1000)]
    limit: Option<u32>,
    /// Only records with a smaller id (for paging).
    before: Option<i64>,
}

impl AuditQuery {
    fn limit(&self) -> AppResult<u32> {
        match self.limit {
            None => Ok(100),
            Some(n @ 1..=1000) => Ok(n),
            Some(_) => Err(AppError::BadRequest(
                "query parameter limit: must be 1 to 1000".into(),
            )),
        }
    }
}

/// The audit log, newest first.
#[utoipa::path(get, path = "/api/v1/audit", tag = "audit",
    params(AuditQuery),
    responses(
        (status = 200, description = "newest first", body = Vec<AuditRecord>),
        (status = 400, description = "`limit` out of range, or a parameter that is not a number", body = Problem)
    ))]
pub async fn audit(
    State(services): State<Services>,
    ApiQuery(query): ApiQuery<AuditQuery>,
) -> AppResult<Json<Vec<AuditRecord>>> {
    Ok(Json(
        services.audit_log(query.limit()?, query.before).await?,
    ))
}
