//! The live log panel of the unit page: a filter toolbar, and a stream of
//! rendered (HTML-escaped) lines over SSE.

use askama::Template;
use axum::extract::{Path, Query, State};
use axum::http::HeaderMap;
use axum::response::sse::Event;
use axum::response::{Html, IntoResponse, Response};
use futures_util::StreamExt;

use super::{PageError, render};
use crate::api::logs::{last_event_id, sse_response};
use crate::auth::urlencode;
use crate::logs::LogQuery;
use crate::state::AppState;
use crate::systemd::journal::{LogEntry, StreamItem};

/// The `.log` box, connected to a stream with the current filters.
#[derive(Template)]
#[template(path = "log_view.html")]
pub struct LogView {
    pub stream_url: String,
    pub download_url: String,
}

impl LogView {
    pub fn new(name: &str, q: &LogQuery) -> Self {
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
        let query = params.join("&");
        let name = urlencode(name);
        Self {
            stream_url: format!("/ui/units/{name}/logs/stream?{query}"),
            download_url: format!("/api/v1/units/{name}/logs/download?{query}"),
        }
    }
}

#[derive(Template)]
#[template(path = "log_line.html")]
struct LogLine<'a> {
    e: &'a LogEntry,
    /// HH:MM:SS.mmm of the UTC time, for a compact column.
    clock: &'a str,
    who: String,
}

fn render_line(e: &LogEntry) -> String {
    let clock = e.time.get(11..23).unwrap_or(&e.time);
    let who = match (&e.identifier, e.pid) {
        (Some(id), Some(pid)) => format!("{id}[{pid}]"),
        (Some(id), None) => id.clone(),
        _ => String::new(),
    };
    LogLine { e, clock, who }.render().unwrap_or_default()
}

/// The log box for new filters (the toolbar swaps it in).
pub async fn log_view(
    State(state): State<AppState>,
    Path(name): Path<String>,
    Query(q): Query<LogQuery>,
) -> Result<Html<String>, PageError> {
    state.log_filter(&name, &q).await?;
    render(&LogView::new(&name, &q))
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
        .follow_logs(&name, &q, last_event_id(&headers))
        .await?;
    let events = items.map(|item| {
        Ok(match item {
            StreamItem::Entry(entry) => Event::default()
                .id(entry.cursor.clone())
                .event("entry")
                .data(render_line(&entry)),
            StreamItem::Skipped(n) => Event::default().event("entry").data(format!(
                "<div class=\"log-gap\">fell behind by {n} lines — caught up from the journal</div>"
            )),
        })
    });
    Ok(sse_response(events).into_response())
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
        };
        let html = render_line(&e);
        assert!(!html.contains("<script>"), "{html}");
        assert!(html.contains("&#60;script&#62;"), "{html}");
        assert!(html.contains("data-prio=\"3\""));
        assert!(html.contains("09:13:20.123"));
        assert!(!html.contains('\n'));
    }
}
