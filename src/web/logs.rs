//! The live log panel of the unit page (a filter toolbar and a stream of rendered,
//! HTML-escaped lines over SSE) and the logs page, the same for several units merged.

use askama::Template;
use askama_web::WebTemplate;
use axum::extract::{Path, Query, State};
use axum::http::HeaderMap;
use axum::response::sse::Event;
use axum::response::{IntoResponse, Response};
use futures_util::{Stream, StreamExt};

use super::pages::Chrome;
use crate::error::AppError;
use crate::http::problem::PageError;
use crate::http::sse::{last_event_id, sse_response};
use crate::http::urlencode;
use crate::service::logs::{LogQuery, UnitsParam};
use crate::state::AppState;
use crate::systemd::UnitFilter;
use crate::systemd::journal::{LogEntry, StreamItem};

/// The `.log` box, connected to a stream with the current filters.
#[derive(Template, WebTemplate)]
#[template(path = "log_view.html")]
pub struct LogView {
    pub stream_url: String,
    /// The text download (one unit's view only).
    pub download_url: Option<String>,
}

impl LogView {
    /// The view of one unit (the unit page).
    pub fn new(name: &str, q: &LogQuery) -> Self {
        let query = filter_query(q);
        let name = urlencode(name);
        Self {
            stream_url: format!("ui/units/{name}/logs/stream?{query}"),
            download_url: Some(format!("api/v1/units/{name}/logs/download?{query}")),
        }
    }

    /// The merged view of several units (the logs page).
    pub fn merged(names: &[&str], q: &LogQuery) -> Self {
        let mut stream_url = format!("ui/logs/stream?units={}", urlencode(&names.join(",")));
        let filters = filter_query(q);
        if !filters.is_empty() {
            stream_url.push('&');
            stream_url.push_str(&filters);
        }
        Self {
            stream_url,
            download_url: None,
        }
    }
}

/// The filters of `q` as a query string (without `?`).
fn filter_query(q: &LogQuery) -> String {
    let mut params = Vec::new();
    if let Some(p) = q.priority {
        params.push(format!("priority={p}"));
    }
    if let Some(g) = q.grep.as_deref().filter(|g| !g.is_empty()) {
        params.push(format!("grep={}", urlencode(g)));
    }
    if let Some(i) = q.invocation.as_deref().filter(|i| !i.is_empty()) {
        params.push(format!("invocation={}", urlencode(i)));
    }
    params.join("&")
}

#[derive(Template, WebTemplate)]
#[template(path = "log_line.html")]
struct LogLine<'a> {
    e: &'a LogEntry,
    /// HH:MM:SS.mmm of the UTC time, for a compact column.
    clock: &'a str,
    who: String,
    /// The entry's unit, shown in merged views.
    unit: Option<&'a str>,
}

pub(super) fn render_line(e: &LogEntry, show_unit: bool) -> String {
    let clock = e.time.get(11..23).unwrap_or(&e.time);
    let who = match (&e.identifier, e.pid) {
        (Some(id), Some(pid)) => format!("{id}[{pid}]"),
        (Some(id), None) => id.clone(),
        _ => String::new(),
    };
    let unit = e.unit.as_deref().filter(|_| show_unit);
    LogLine {
        e,
        clock,
        who,
        unit,
    }
    .render()
    .unwrap_or_default()
}

/// The log box for new filters (the toolbar swaps it in).
pub async fn log_view(
    State(state): State<AppState>,
    Path(name): Path<String>,
    Query(q): Query<LogQuery>,
) -> Result<impl IntoResponse, PageError> {
    state.services.log_filter(&[&name], &q).await?;
    Ok(LogView::new(&name, &q))
}

/// Rendered lines: `event: entry` with one `.log-line`, `id:` the cursor, so the
/// browser's own reconnect resumes exactly (`Last-Event-ID`).
pub async fn log_stream(
    State(state): State<AppState>,
    Path(name): Path<String>,
    Query(q): Query<LogQuery>,
    headers: HeaderMap,
) -> Result<Response, PageError> {
    let items = state
        .services
        .follow_logs(&[&name], &q, last_event_id(&headers))
        .await?;
    Ok(line_events(items, false))
}

/// The merged view's rendered lines, each naming its unit.
pub async fn merged_log_stream(
    State(state): State<AppState>,
    Query(units): Query<UnitsParam>,
    Query(q): Query<LogQuery>,
    headers: HeaderMap,
) -> Result<Response, PageError> {
    let items = state
        .services
        .follow_logs(&units.names()?, &q, last_event_id(&headers))
        .await?;
    Ok(line_events(items, true))
}

fn line_events(
    items: impl Stream<Item = StreamItem> + Send + 'static,
    show_unit: bool,
) -> Response {
    let events = items.map(move |item| {
        Ok(match item {
            StreamItem::Entry(entry) => Event::default()
                .id(entry.cursor.clone())
                .event("entry")
                .data(render_line(&entry, show_unit)),
            StreamItem::Skipped(n) => Event::default().event("entry").data(format!(
                "<div class=\"log-gap\">fell behind by {n} lines — caught up from the journal</div>"
            )),
        })
    });
    sse_response(events).into_response()
}

/// A service the logs page offers: the units unitdeck created first, then running ones.
pub struct LogChoice {
    pub name: String,
    pub managed: bool,
    pub checked: bool,
}

#[derive(Template, WebTemplate)]
#[template(path = "logs.html")]
struct LogsPage {
    chrome: Chrome,
    choices: Vec<LogChoice>,
    /// The rendered log box of the chosen units.
    view: Option<String>,
}

/// `/logs?units=a.service&units=b.service` (the form's checkboxes) or `?units=a,b`: the
/// merged live view; without a choice, the units unitdeck created.
pub async fn logs_page(
    State(state): State<AppState>,
    Query(pairs): Query<Vec<(String, String)>>,
) -> Result<impl IntoResponse, PageError> {
    let chosen: Vec<String> = pairs
        .into_iter()
        .filter(|(k, _)| k == "units")
        .map(|(_, v)| v)
        .collect();
    let services = state.services.list_units(&UnitFilter {
        unit_type: Some("service".into()),
        ..Default::default()
    })?;
    let default: Vec<String> = services
        .iter()
        .filter(|u| u.managed)
        .map(|u| u.name.clone())
        .collect();
    let param = UnitsParam {
        units: Some(if chosen.is_empty() { default } else { chosen }.join(",")),
    };
    let names = param.names().unwrap_or_default();
    let view = if names.is_empty() {
        None
    } else {
        state
            .services
            .log_filter(&names, &LogQuery::default())
            .await?;
        let html = LogView::merged(&names, &LogQuery::default())
            .render()
            .map_err(|e| PageError::from(AppError::internal(e)))?;
        Some(html)
    };
    let mut choices: Vec<LogChoice> = services
        .into_iter()
        .filter(|u| {
            u.managed
                || u.active_state.as_deref() == Some("active")
                || names.contains(&u.name.as_str())
        })
        .map(|u| LogChoice {
            checked: names.contains(&u.name.as_str()),
            name: u.name,
            managed: u.managed,
        })
        .collect();
    choices.sort_by(|a, b| b.managed.cmp(&a.managed).then_with(|| a.name.cmp(&b.name)));
    Ok(LogsPage {
        chrome: Chrome::new("logs"),
        choices,
        view,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn lines_are_escaped() {
        let e = LogEntry {
            cursor: "s=1;i=2".into(),
            time: "2026-11-28T09:13:20.123456Z".into(),
            priority: 3,
            identifier: Some("app".into()),
            pid: Some(7),
            message: "<script>alert(1)</script> & \"x\"".into(),
            invocation_id: None,
            unit: Some("a<b>.service".into()),
        };
        let html = render_line(&e, false);
        assert!(!html.contains(".service"), "{html}");
        let merged = render_line(&e, true);
        assert!(merged.contains("a&#60;b&#62;.service"), "{merged}");
        assert!(!html.contains("<script>"), "{html}");
        assert!(html.contains("&#60;script&#62;"), "{html}");
        assert!(html.contains("data-prio=\"3\""));
        assert!(html.contains("09:13:20.123"));
        assert!(!html.contains('\n'));
    }
}
