//! Log routes: read, follow over SSE, download.

use std::convert::Infallible;

use axum::Json;
use axum::extract::State;
use axum::http::{HeaderMap, HeaderValue, header};
use axum::response::sse::{Event, KeepAlive, Sse};
use axum::response::{IntoResponse, Response};
use futures_util::{Stream, StreamExt};

use super::KEEP_ALIVE;
use super::extract::{ApiPath, ApiQuery};
use crate::error::{AppResult, Problem};
use crate::logs::{LogQuery, UnitsParam, format_line};
use crate::state::AppState;
use crate::systemd::journal::{LogEntry, StreamItem};

/// A unit's journal entries, oldest first.
#[utoipa::path(get, path = "/api/v1/units/{name}/logs", tag = "logs",
    params(("name" = String, Path), LogQuery),
    responses((status = 200, body = Vec<LogEntry>), (status = 400, body = Problem), (status = 404, body = Problem)))]
pub async fn logs(
    State(state): State<AppState>,
    ApiPath(name): ApiPath<String>,
    ApiQuery(q): ApiQuery<LogQuery>,
) -> AppResult<Json<Vec<LogEntry>>> {
    Ok(Json(state.read_logs(&[&name], &q, 200).await?))
}

/// The journal entries of several units merged in time order, oldest first; each entry
/// names its `unit`.
#[utoipa::path(get, path = "/api/v1/logs", tag = "logs",
    params(UnitsParam, LogQuery),
    responses((status = 200, body = Vec<LogEntry>), (status = 400, body = Problem), (status = 404, body = Problem)))]
pub async fn merged_logs(
    State(state): State<AppState>,
    ApiQuery(units): ApiQuery<UnitsParam>,
    ApiQuery(q): ApiQuery<LogQuery>,
) -> AppResult<Json<Vec<LogEntry>>> {
    Ok(Json(state.read_logs(&units.names()?, &q, 200).await?))
}

/// The SSE response for a log stream, shared by the API (JSON entries) and the
/// unit page (rendered lines): `id:` is the journal cursor so a reconnect with
/// `Last-Event-ID` resumes exactly; proxies are told not to buffer.
pub fn sse_response<S>(stream: S) -> Response
where
    S: Stream<Item = Result<Event, Infallible>> + Send + 'static,
{
    let mut response = Sse::new(stream)
        .keep_alive(KeepAlive::new().interval(KEEP_ALIVE))
        .into_response();
    response
        .headers_mut()
        .insert("x-accel-buffering", HeaderValue::from_static("no"));
    response
}

pub fn last_event_id(headers: &HeaderMap) -> Option<String> {
    headers
        .get("last-event-id")
        .and_then(|v| v.to_str().ok())
        .map(String::from)
}

/// Backlog (`lines`, default 100) then live entries as `event: entry`, `id: <cursor>`.
/// `event: skipped` with `{"skipped": N}` tells a slow client it fell behind; the
/// entries are then re-read, so none is lost.
#[utoipa::path(get, path = "/api/v1/units/{name}/logs/stream", tag = "logs",
    params(("name" = String, Path), LogQuery,
        ("Last-Event-ID" = Option<String>, Header, description = "resume right after this cursor")),
    responses((status = 200, content_type = "text/event-stream", description = "event: entry / id: cursor / data: log entry"),
        (status = 400, body = Problem), (status = 404, body = Problem)))]
pub async fn stream(
    State(state): State<AppState>,
    ApiPath(name): ApiPath<String>,
    ApiQuery(q): ApiQuery<LogQuery>,
    headers: HeaderMap,
) -> AppResult<Response> {
    let items = state
        .follow_logs(&[&name], &q, last_event_id(&headers))
        .await?;
    Ok(entry_events(items))
}

/// The merged live view of several units, as `/api/v1/units/{name}/logs/stream` is of one.
#[utoipa::path(get, path = "/api/v1/logs/stream", tag = "logs",
    params(UnitsParam, LogQuery,
        ("Last-Event-ID" = Option<String>, Header, description = "resume right after this cursor")),
    responses((status = 200, content_type = "text/event-stream", description = "event: entry / id: cursor / data: log entry"),
        (status = 400, body = Problem), (status = 404, body = Problem)))]
pub async fn merged_stream(
    State(state): State<AppState>,
    ApiQuery(units): ApiQuery<UnitsParam>,
    ApiQuery(q): ApiQuery<LogQuery>,
    headers: HeaderMap,
) -> AppResult<Response> {
    let items = state
        .follow_logs(&units.names()?, &q, last_event_id(&headers))
        .await?;
    Ok(entry_events(items))
}

/// Entries as JSON `entry` events with their cursor as id, and `skipped` notices.
fn entry_events(items: impl Stream<Item = StreamItem> + Send + 'static) -> Response {
    sse_response(items.map(|item| {
        Ok(match item {
            StreamItem::Entry(entry) => Event::default()
                .id(entry.cursor.clone())
                .event("entry")
                .data(serde_json::to_string(&entry).unwrap_or_default()),
            StreamItem::Skipped(n) => Event::default()
                .event("skipped")
                .data(serde_json::json!({ "skipped": n }).to_string()),
        })
    }))
}

/// The entries as a text file, one line each: time, priority, identifier[pid]: message.
#[utoipa::path(get, path = "/api/v1/units/{name}/logs/download", tag = "logs",
    params(("name" = String, Path), LogQuery),
    responses((status = 200, content_type = "text/plain", description = "attachment"),
        (status = 400, body = Problem), (status = 404, body = Problem)))]
pub async fn download(
    State(state): State<AppState>,
    ApiPath(name): ApiPath<String>,
    ApiQuery(q): ApiQuery<LogQuery>,
) -> AppResult<Response> {
    let entries = state.read_logs(&[&name], &q, 1000).await?;
    let mut text = String::new();
    for e in &entries {
        text.push_str(&format_line(e));
        text.push('\n');
    }
    let safe_name: String = name
        .chars()
        .map(|c| {
            if c.is_ascii_alphanumeric() || "._-@".contains(c) {
                c
            } else {
                '_'
            }
        })
        .collect();
    Ok((
        [
            (
                header::CONTENT_TYPE,
                "text/plain; charset=utf-8".to_string(),
            ),
            (
                header::CONTENT_DISPOSITION,
                format!("attachment; filename=\"{safe_name}.log\""),
            ),
        ],
        text,
    )
        .into_response())
}
