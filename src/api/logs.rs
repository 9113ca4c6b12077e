//! Log routes: read, follow over SSE, download.

use axum::Json;
use axum::extract::State;
use axum::http::{HeaderMap, header};
use axum::response::sse::Event;
use axum::response::{IntoResponse, Response};
use futures_util::{Stream, StreamExt};

use super::params::UnitPath;
use crate::error::AppResult;
use crate::http::extract::{ApiPath, ApiQuery};
use crate::http::problem::Problem;
use crate::http::sse::{last_event_id, sse_response};
use crate::service::Services;
use crate::service::logs::{LogQuery, UnitsParam, format_line};
use crate::systemd::journal::{LogEntry, StreamItem};

/// A unit's journal entries, oldest first.
#[utoipa::path(get, path = "/api/v1/units/{name}/logs", tag = "logs",
    params(UnitPath, LogQuery),
    responses(
        (status = 200, description = "oldest first", body = Vec<LogEntry>),
        (status = 400, description = "not a valid unit name, or a bad filter", body = Problem),
        (status = 404, description = "no such unit", body = Problem),
        (status = 503, description = "systemd is unreachable", body = Problem)
    ))]
pub async fn logs(
    State(services): State<Services>,
    ApiPath(UnitPath { name }): ApiPath<UnitPath>,
    ApiQuery(q): ApiQuery<LogQuery>,
) -> AppResult<Json<Vec<LogEntry>>> {
    Ok(Json(services.read_logs(&[&name], &q, 200).await?))
}

/// The journal entries of several units merged in time order, oldest first; each entry
/// names its `unit`.
#[utoipa::path(get, path = "/api/v1/logs", tag = "logs",
    params(UnitsParam, LogQuery),
    responses(
        (status = 200, description = "oldest first", body = Vec<LogEntry>),
        (status = 400, description = "no units, too many, a name that is not valid, or a bad filter", body = Problem),
        (status = 404, description = "no such unit", body = Problem),
        (status = 503, description = "systemd is unreachable", body = Problem)
    ))]
pub async fn merged_logs(
    State(services): State<Services>,
    ApiQuery(units): ApiQuery<UnitsParam>,
    ApiQuery(q): ApiQuery<LogQuery>,
) -> AppResult<Json<Vec<LogEntry>>> {
    Ok(Json(services.read_logs(&units.names()?, &q, 200).await?))
}

/// Backlog (`lines`, default 100) then live entries as `event: entry`, `id: <cursor>`.
/// `event: skipped` with `{"skipped": N}` tells a slow client it fell behind; the
/// entries are then re-read, so none is lost.
#[utoipa::path(get, path = "/api/v1/units/{name}/logs/stream", tag = "logs",
    params(UnitPath, LogQuery,
        ("Last-Event-ID" = Option<String>, Header, nullable = false, description = "resume right after this cursor",
            pattern = "^(s=[0-9a-fA-F]{32};i=[0-9a-fA-F]{1,16};b=[0-9a-fA-F]{32};m=[0-9a-fA-F]{1,16};t=[0-9a-fA-F]{1,16};x=[0-9a-fA-F]{1,16})?$")),
    responses(
        (status = 200, content_type = "text/event-stream", description = "event: entry / id: cursor / data: log entry"),
        (status = 400, description = "not a valid unit name, or a bad filter", body = Problem),
        (status = 404, description = "no such unit", body = Problem),
        (status = 503, description = "systemd is unreachable, or too many log streams with different filters are open", body = Problem)
    ))]
pub async fn stream(
    State(services): State<Services>,
    ApiPath(UnitPath { name }): ApiPath<UnitPath>,
    ApiQuery(q): ApiQuery<LogQuery>,
    headers: HeaderMap,
) -> AppResult<Response> {
    let items = services
        .follow_logs(&[&name], &q, last_event_id(&headers))
        .await?;
    Ok(entry_events(items))
}

/// The merged live view of several units, as `/api/v1/units/{name}/logs/stream` is of one.
#[utoipa::path(get, path = "/api/v1/logs/stream", tag = "logs",
    params(UnitsParam, LogQuery,
        ("Last-Event-ID" = Option<String>, Header, nullable = false, description = "resume right after this cursor",
            pattern = "^(s=[0-9a-fA-F]{32};i=[0-9a-fA-F]{1,16};b=[0-9a-fA-F]{32};m=[0-9a-fA-F]{1,16};t=[0-9a-fA-F]{1,16};x=[0-9a-fA-F]{1,16})?$")),
    responses(
        (status = 200, content_type = "text/event-stream", description = "event: entry / id: cursor / data: log entry"),
        (status = 400, description = "no units, too many, a name that is not valid, or a bad filter", body = Problem),
        (status = 404, description = "no such unit", body = Problem),
        (status = 503, description = "systemd is unreachable, or too many log streams with different filters are open", body = Problem)
    ))]
pub async fn merged_stream(
    State(services): State<Services>,
    ApiQuery(units): ApiQuery<UnitsParam>,
    ApiQuery(q): ApiQuery<LogQuery>,
    headers: HeaderMap,
) -> AppResult<Response> {
    let items = services
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
    params(UnitPath, LogQuery),
    responses(
        (status = 200, content_type = "text/plain", description = "attachment"),
        (status = 400, description = "not a valid unit name, or a bad filter", body = Problem),
        (status = 404, description = "no such unit", body = Problem),
        (status = 503, description = "systemd is unreachable", body = Problem)
    ))]
pub async fn download(
    State(services): State<Services>,
    ApiPath(UnitPath { name }): ApiPath<UnitPath>,
    ApiQuery(q): ApiQuery<LogQuery>,
) -> AppResult<Response> {
    let entries = services.read_logs(&[&name], &q, 1000).await?;
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

#[cfg(test)]
mod tests {
    use crate::systemd::journal::CURSOR_PATTERN;

    /// The document's cursor patterns are the one `validate_cursor` is checked against.
    #[test]
    fn documented_cursors_are_the_checked_ones() {
        let (_, openapi) = super::super::router();
        let doc = serde_json::to_value(openapi).unwrap();
        let expected = format!("^({CURSOR_PATTERN})?$");
        let mut seen = 0;
        for path in ["", "/stream", "/download"] {
            let op = &doc["paths"][format!("/api/v1/units/{{name}}/logs{path}")]["get"];
            for p in op["parameters"].as_array().unwrap() {
                if p["name"] == "after" || p["name"] == "Last-Event-ID" {
                    assert_eq!(p["schema"]["pattern"], expected, "{path} {}", p["name"]);
                    seen += 1;
                }
            }
        }
        assert_eq!(seen, 4);
    }
}
