//! Log routes: read, follow over SSE, download, and count (histogram, facets, boots).

use axum::Json;
use axum::extract::{FromRequestParts, State};
use axum::http::request::Parts;
use axum::http::{HeaderMap, header};
use axum::response::sse::Event;
use axum::response::{IntoResponse, Response};
use futures_util::{Stream, StreamExt};

use super::params::UnitPath;
use crate::error::AppResult;
use crate::http::extract::{ApiPath, ApiQuery};
use crate::http::problem::{ApiError, Problem};
use crate::http::sse::{last_event_id, sse_response};
use crate::service::Services;
use crate::service::logs::{
    BootInfo, Facets, FacetsQuery, FieldMatches, Histogram, HistogramQuery, LogQuery, LogSelection,
    PageQuery, StreamQuery, UnitsParam, format_line,
};
use crate::systemd::journal::{LogEntry, StreamItem};

/// A log route's filters: the named parameters, and every pair of the query (for
/// `units` and the repeated `match` and `exclude`).
pub struct Filters {
    query: LogQuery,
    pairs: Vec<(String, String)>,
}

impl<S: Send + Sync> FromRequestParts<S> for Filters {
    type Rejection = ApiError;

    async fn from_request_parts(parts: &mut Parts, state: &S) -> Result<Self, Self::Rejection> {
        let ApiQuery(query) = ApiQuery::from_request_parts(parts, state).await?;
        let ApiQuery(pairs) = ApiQuery::from_request_parts(parts, state).await?;
        Ok(Self { query, pairs })
    }
}

impl Filters {
    /// Of the units named (none: the whole journal).
    fn merged(self) -> AppResult<LogSelection> {
        LogSelection::from_query(self.query, &self.pairs)
    }

    fn unit(self, name: &str) -> AppResult<LogSelection> {
        LogSelection::unit(name, self.query, &self.pairs)
    }
}

/// A unit's journal entries, oldest first.
#[utoipa::path(get, path = "/api/v1/units/{name}/logs", tag = "logs",
    params(UnitPath, LogQuery, FieldMatches, PageQuery),
    responses(
        (status = 200, description = "oldest first", body = Vec<LogEntry>),
        (status = 400, description = "not a valid unit name, or a bad filter", body = Problem),
        (status = 404, description = "no such unit", body = Problem),
        (status = 503, description = "systemd is unreachable", body = Problem)
    ))]
pub async fn logs(
    State(services): State<Services>,
    ApiPath(UnitPath { name }): ApiPath<UnitPath>,
    ApiQuery(page): ApiQuery<PageQuery>,
    filters: Filters,
) -> AppResult<Json<Vec<LogEntry>>> {
    Ok(Json(
        services
            .read_logs(&filters.unit(&name)?, &page, 200)
            .await?,
    ))
}

/// Journal entries, oldest first: of up to 32 units merged in time order, or without
/// `units` of the whole journal. Each entry names its `unit`.
#[utoipa::path(get, path = "/api/v1/logs", tag = "logs",
    params(UnitsParam, LogQuery, FieldMatches, PageQuery),
    responses(
        (status = 200, description = "oldest first", body = Vec<LogEntry>),
        (status = 400, description = "an empty or too long unit list, a name that is not valid, or a bad filter", body = Problem),
        (status = 404, description = "no such unit", body = Problem),
        (status = 503, description = "systemd is unreachable", body = Problem)
    ))]
pub async fn merged_logs(
    State(services): State<Services>,
    ApiQuery(page): ApiQuery<PageQuery>,
    filters: Filters,
) -> AppResult<Json<Vec<LogEntry>>> {
    Ok(Json(
        services.read_logs(&filters.merged()?, &page, 200).await?,
    ))
}

/// Backlog (`lines`, default 100) then live entries as `event: entry`, `id: <cursor>`.
/// `event: skipped` with `{"skipped": N}` tells a slow client it fell behind; the
/// entries are then re-read, so none is lost.
#[utoipa::path(get, path = "/api/v1/units/{name}/logs/stream", tag = "logs",
    params(UnitPath, LogQuery, FieldMatches, StreamQuery,
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
    ApiQuery(live): ApiQuery<StreamQuery>,
    headers: HeaderMap,
    filters: Filters,
) -> AppResult<Response> {
    let items = services
        .follow_logs(&filters.unit(&name)?, &live, last_event_id(&headers))
        .await?;
    Ok(entry_events(items))
}

/// The live view of several units merged, or of the whole journal, as
/// `/api/v1/units/{name}/logs/stream` is of one.
#[utoipa::path(get, path = "/api/v1/logs/stream", tag = "logs",
    params(UnitsParam, LogQuery, FieldMatches, StreamQuery,
        ("Last-Event-ID" = Option<String>, Header, nullable = false, description = "resume right after this cursor",
            pattern = "^(s=[0-9a-fA-F]{32};i=[0-9a-fA-F]{1,16};b=[0-9a-fA-F]{32};m=[0-9a-fA-F]{1,16};t=[0-9a-fA-F]{1,16};x=[0-9a-fA-F]{1,16})?$")),
    responses(
        (status = 200, content_type = "text/event-stream", description = "event: entry / id: cursor / data: log entry"),
        (status = 400, description = "an empty or too long unit list, a name that is not valid, or a bad filter", body = Problem),
        (status = 404, description = "no such unit", body = Problem),
        (status = 503, description = "systemd is unreachable, or too many log streams with different filters are open", body = Problem)
    ))]
pub async fn merged_stream(
    State(services): State<Services>,
    ApiQuery(live): ApiQuery<StreamQuery>,
    headers: HeaderMap,
    filters: Filters,
) -> AppResult<Response> {
    let items = services
        .follow_logs(&filters.merged()?, &live, last_event_id(&headers))
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
    params(UnitPath, LogQuery, FieldMatches, PageQuery),
    responses(
        (status = 200, content_type = "text/plain", description = "attachment"),
        (status = 400, description = "not a valid unit name, or a bad filter", body = Problem),
        (status = 404, description = "no such unit", body = Problem),
        (status = 503, description = "systemd is unreachable", body = Problem)
    ))]
pub async fn download(
    State(services): State<Services>,
    ApiPath(UnitPath { name }): ApiPath<UnitPath>,
    ApiQuery(page): ApiQuery<PageQuery>,
    filters: Filters,
) -> AppResult<Response> {
    let entries = services
        .read_logs(&filters.unit(&name)?, &page, 1000)
        .await?;
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

/// Entries per time bucket and priority over the range (`since`..`until`, else the
/// boot's or the whole journal's), with the same filters as `/api/v1/logs`. The counts
/// are what journalctl finds for the same filters.
#[utoipa::path(get, path = "/api/v1/logs/histogram", tag = "logs",
    params(UnitsParam, LogQuery, FieldMatches, HistogramQuery),
    responses(
        (status = 200, description = "counts per bucket and priority", body = Histogram),
        (status = 400, description = "a bad filter, time, boot or bucket count", body = Problem),
        (status = 404, description = "no such unit", body = Problem),
        (status = 503, description = "systemd is unreachable, or the journal scans are all busy or took too long", body = Problem)
    ))]
pub async fn histogram(
    State(services): State<Services>,
    ApiQuery(h): ApiQuery<HistogramQuery>,
    filters: Filters,
) -> AppResult<Json<Histogram>> {
    let sel = filters.merged()?;
    let summary = services.log_summary(&sel, h.buckets()?, &[]).await?;
    Ok(Json(summary.histogram()))
}

/// The 50 most frequent values of journal fields over the range, with the number of
/// entries that have each, with the same filters as `/api/v1/logs`.
#[utoipa::path(get, path = "/api/v1/logs/facets", tag = "logs",
    params(UnitsParam, LogQuery, FieldMatches, FacetsQuery),
    responses(
        (status = 200, description = "values with counts per field", body = Facets),
        (status = 400, description = "a bad filter, time, boot or field name", body = Problem),
        (status = 404, description = "no such unit", body = Problem),
        (status = 503, description = "systemd is unreachable, or the journal scans are all busy or took too long", body = Problem)
    ))]
pub async fn facets(
    State(services): State<Services>,
    ApiQuery(f): ApiQuery<FacetsQuery>,
    filters: Filters,
) -> AppResult<Json<Facets>> {
    let sel = filters.merged()?;
    let summary = services.log_summary(&sel, 0, &f.fields()?).await?;
    Ok(Json(summary.facets()))
}

/// The boots the journal has entries of, oldest first.
#[utoipa::path(get, path = "/api/v1/boots", tag = "logs",
    responses(
        (status = 200, description = "oldest first; index 0 is the current boot", body = Vec<BootInfo>),
        (status = 503, description = "systemd is unreachable", body = Problem)
    ))]
pub async fn boots(State(services): State<Services>) -> AppResult<Json<Vec<BootInfo>>> {
    Ok(Json(services.boots().await?))
}

#[cfg(test)]
mod tests {
    use crate::service::logs::TIME_PATTERN;
    use crate::systemd::journal::CURSOR_PATTERN;

    fn document() -> serde_json::Value {
        let (_, openapi) = super::super::router();
        serde_json::to_value(openapi).unwrap()
    }

    /// The parameters of `path` named `name`.
    fn params<'a>(
        doc: &'a serde_json::Value,
        path: &str,
        name: &str,
    ) -> Vec<&'a serde_json::Value> {
        doc["paths"][path]["get"]["parameters"]
            .as_array()
            .unwrap()
            .iter()
            .filter(|p| p["name"] == name)
            .collect()
    }

    /// The document's cursor patterns are the one `validate_cursor` is checked against.
    #[test]
    fn documented_cursors_are_the_checked_ones() {
        let doc = document();
        let expected = format!("^({CURSOR_PATTERN})?$");
        let mut seen = 0;
        for path in ["", "/stream", "/download"] {
            let path = format!("/api/v1/units/{{name}}/logs{path}");
            for name in ["after", "before", "Last-Event-ID"] {
                for p in params(&doc, &path, name) {
                    assert_eq!(p["schema"]["pattern"], expected, "{path} {name}");
                    seen += 1;
                }
            }
        }
        assert_eq!(seen, 6);
    }

    /// The document's time pattern is the one `parse_time` is checked against.
    #[test]
    fn documented_times_are_the_parsed_ones() {
        let doc = document();
        let expected = format!("^({})?$", &TIME_PATTERN[2..TIME_PATTERN.len() - 2]);
        for path in [
            "/api/v1/logs",
            "/api/v1/logs/histogram",
            "/api/v1/logs/facets",
        ] {
            for name in ["since", "until"] {
                let p = params(&doc, path, name);
                assert_eq!(p[0]["schema"]["pattern"], expected, "{path} {name}");
            }
        }
    }
}
