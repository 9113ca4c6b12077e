//! Log views: the unit page's log panel and the journal explorer (`explorer`). A view is
//! a `.log` box of rendered, HTML-escaped lines: live over SSE (a backlog, then new
//! entries), or the newest entries of a past range; either way older entries load as
//! the reader scrolls up (`data-older`).

mod explorer;
mod state;

use std::sync::Arc;

use askama::Template;
use askama_web::WebTemplate;
use axum::extract::{FromRequestParts, Path, Query, State};
use axum::http::HeaderMap;
use axum::http::request::Parts;
use axum::response::sse::Event;
use axum::response::{Html, IntoResponse, Response};
use futures_util::{Stream, StreamExt};

pub use explorer::{log_summary, logs_page};
pub use state::{LogParams, QueryState, ViewQuery};

use crate::error::AppError;
use crate::http::extract::ApiQuery;
use crate::http::problem::PageError;
use crate::http::sse::{last_event_id, sse_response};
use crate::http::urlencode;
use crate::service::logs::{LogQuery, PageQuery, StreamQuery};
use crate::state::AppState;
use crate::systemd::UnitDetail;
use crate::systemd::journal::{LogEntry, Pattern, StreamItem};

/// Lines a view shows at first, and per older page.
const PAGE_LINES: usize = 200;
/// Marks per line at most (a pattern matching every character marks the first ones).
const MAX_MARKS: usize = 64;

/// The `.log` box of a view.
#[derive(Template, WebTemplate)]
#[template(path = "log_view.html")]
pub struct LogView {
    /// The live stream, when following.
    pub stream_url: Option<String>,
    /// Where older lines come from (`&before=CURSOR` is added).
    pub older_url: String,
    /// Rendered lines, when not following.
    pub lines: String,
    /// The text download (one unit's view only).
    pub download_url: Option<String>,
    /// Shown when nothing matched (a past range with no entries).
    pub empty: bool,
}

impl LogView {
    /// The view of `params` whose fragments live under `base` (`/ui/logs` or
    /// `/ui/units/NAME`), reading the entries of a past range now.
    async fn build(
        state: &AppState,
        params: &LogParams,
        base: &str,
        show_unit: bool,
    ) -> Result<Self, AppError> {
        let stream = params.state.url(&format!("{base}/logs/stream"));
        let older_url = params.state.url(&format!("{base}/logs/lines"));
        if params.follow {
            return Ok(Self {
                stream_url: Some(stream),
                older_url,
                lines: String::new(),
                download_url: None,
                empty: false,
            });
        }
        let entries = state
            .services
            .read_logs(&params.sel, &PageQuery::default(), PAGE_LINES)
            .await?;
        Ok(Self {
            stream_url: None,
            older_url,
            empty: entries.is_empty(),
            lines: render_lines(&entries, show_unit, params.highlight.as_deref()),
            download_url: None,
        })
    }
}

/// The message split into runs, marked where `highlight` matches.
fn marked<'a>(message: &'a str, highlight: Option<&Pattern>) -> Vec<(&'a str, bool)> {
    let Some(pattern) = highlight else {
        return vec![(message, false)];
    };
    let mut parts = Vec::new();
    let mut at = 0;
    for (from, to) in pattern.find_all(message, MAX_MARKS) {
        if from > at {
            parts.push((&message[at..from], false));
        }
        parts.push((&message[from..to], true));
        at = to;
    }
    if at < message.len() || parts.is_empty() {
        parts.push((&message[at..], false));
    }
    parts
}

#[derive(Template, WebTemplate)]
#[template(path = "log_line.html")]
struct LogLine<'a> {
    e: &'a LogEntry,
    /// HH:MM:SS.mmm of the UTC time, for a compact column.
    clock: &'a str,
    who: String,
    /// The entry's unit, shown (linked) in merged views.
    unit: Option<&'a str>,
    unit_href: String,
    /// The unit page filtered to the entry's run (merged views).
    run_href: Option<String>,
    parts: Vec<(&'a str, bool)>,
}

pub(super) fn render_line(e: &LogEntry, show_unit: bool, highlight: Option<&Pattern>) -> String {
    let clock = e.time.get(11..23).unwrap_or(&e.time);
    let who = match (&e.identifier, e.pid) {
        (Some(id), Some(pid)) => format!("{id}[{pid}]"),
        (Some(id), None) => id.clone(),
        _ => String::new(),
    };
    let unit_href = e
        .unit
        .as_deref()
        .map(|u| format!("units/{}", urlencode(u)))
        .unwrap_or_default();
    let run_href = match (&e.unit, &e.invocation_id) {
        (Some(_), Some(id)) => Some(format!("{unit_href}?invocation={}#logs", urlencode(id))),
        _ => None,
    };
    LogLine {
        e,
        clock,
        who,
        unit: e.unit.as_deref().filter(|_| show_unit),
        unit_href,
        run_href,
        parts: marked(&e.message, highlight),
    }
    .render()
    .unwrap_or_default()
}

fn render_lines(entries: &[LogEntry], show_unit: bool, highlight: Option<&Pattern>) -> String {
    entries
        .iter()
        .map(|e| render_line(e, show_unit, highlight))
        .collect()
}

/// Rendered lines: `event: entry` with one `.log-line`, `id:` the cursor, so the
/// browser's own reconnect resumes exactly (`Last-Event-ID`).
fn line_events(
    items: impl Stream<Item = StreamItem> + Send + 'static,
    show_unit: bool,
    highlight: Option<Arc<Pattern>>,
) -> Response {
    let events = items.map(move |item| {
        Ok(match item {
            StreamItem::Entry(entry) => Event::default()
                .id(entry.cursor.clone())
                .event("entry")
                .data(render_line(&entry, show_unit, highlight.as_deref())),
            StreamItem::Skipped(n) => Event::default().event("entry").data(format!(
                "<div class=\"log-gap\">fell behind by {n} lines — caught up from the journal</div>"
            )),
        })
    });
    sse_response(events).into_response()
}

/// A log view's query string, read once: the filters, the page-only parameters, and
/// every pair (`units`, the repeated `match` and `exclude`, the state to link on from).
pub struct ViewRequest {
    query: LogQuery,
    view: ViewQuery,
    pairs: Vec<(String, String)>,
}

impl<S: Send + Sync> FromRequestParts<S> for ViewRequest {
    type Rejection = PageError;

    async fn from_request_parts(parts: &mut Parts, state: &S) -> Result<Self, Self::Rejection> {
        let ApiQuery(query) = ApiQuery::from_request_parts(parts, state).await?;
        let ApiQuery(view) = ApiQuery::from_request_parts(parts, state).await?;
        let ApiQuery(pairs) = ApiQuery::from_request_parts(parts, state).await?;
        Ok(Self { query, view, pairs })
    }
}

impl ViewRequest {
    /// The view of the unit page's `unit`, or (`None`) of the query's units.
    fn params(
        self,
        unit: Option<&str>,
        default_range: Option<&'static str>,
    ) -> Result<LogParams, AppError> {
        LogParams::new(unit, self.query, &self.view, &self.pairs, default_range)
    }

    /// The explorer's view.
    fn explorer(self) -> Result<LogParams, AppError> {
        self.params(None, Some(explorer::DEFAULT_RANGE))
    }

    /// The unit page's log panel: its toolbar as the URL set it, and its rendered box.
    pub async fn unit_panel(
        self,
        state: &AppState,
        unit: &UnitDetail,
    ) -> Result<(LogControls, String), PageError> {
        let q = &self.query;
        let asked = q.invocation.clone().filter(|i| !i.is_empty());
        let run = match (asked, &unit.invocation_id) {
            (Some(run), Some(current)) if run.eq_ignore_ascii_case(current) => {
                Some((run, true, "This run only".into()))
            }
            (Some(run), _) => {
                let label = format!("Run {} only", run.get(..8).unwrap_or(&run));
                Some((run, true, label))
            }
            (None, Some(current)) => Some((current.clone(), false, "This run only".into())),
            (None, None) => None,
        };
        let controls = LogControls {
            range: self.view.range.clone().unwrap_or_default(),
            priority: q.priority.map(|p| p.to_string()).unwrap_or_default(),
            grep: q.grep.clone().unwrap_or_default(),
            regex: q.regex == Some(true),
            highlight: self.view.mode.as_deref() == Some("highlight"),
            run,
        };
        let name = &unit.summary.name;
        let params = self.params(Some(name), None)?;
        let view = unit_log_view(state, name, &params)
            .await?
            .render()
            .map_err(|e| PageError::from(AppError::internal(e)))?;
        Ok((controls, view))
    }
}

/// The unit page's log toolbar.
pub struct LogControls {
    pub range: String,
    pub priority: String,
    pub grep: String,
    pub regex: bool,
    pub highlight: bool,
    /// The run the checkbox offers (the one asked for, else the current one): its ID,
    /// whether it is checked, and the label.
    pub run: Option<(String, bool, String)>,
}

/// The unit page's log box for new filters (the toolbar swaps it in).
pub async fn log_view(
    State(state): State<AppState>,
    Path(name): Path<String>,
    request: ViewRequest,
) -> Result<impl IntoResponse, PageError> {
    let params = request.params(Some(&name), None)?;
    unit_log_view(&state, &name, &params).await
}

/// The unit page's log box for `params`, with the text download.
async fn unit_log_view(
    state: &AppState,
    name: &str,
    params: &LogParams,
) -> Result<LogView, PageError> {
    state.services.log_filter(&params.sel).await?;
    let base = format!("ui/units/{}", urlencode(name));
    let mut view = LogView::build(state, params, &base, false).await?;
    view.download_url = Some(
        params
            .state
            .url(&format!("api/v1/units/{}/logs/download", urlencode(name))),
    );
    Ok(view)
}

/// A unit's live lines.
pub async fn log_stream(
    State(state): State<AppState>,
    Path(name): Path<String>,
    Query(live): Query<StreamQuery>,
    headers: HeaderMap,
    request: ViewRequest,
) -> Result<Response, PageError> {
    let params = request.params(Some(&name), None)?;
    stream_view(&state, params, &live, &headers, false).await
}

/// The explorer's live lines, each naming its unit.
pub async fn merged_log_stream(
    State(state): State<AppState>,
    Query(live): Query<StreamQuery>,
    headers: HeaderMap,
    request: ViewRequest,
) -> Result<Response, PageError> {
    stream_view(&state, request.explorer()?, &live, &headers, true).await
}

async fn stream_view(
    state: &AppState,
    params: LogParams,
    live: &StreamQuery,
    headers: &HeaderMap,
    show_unit: bool,
) -> Result<Response, PageError> {
    let items = state
        .services
        .follow_logs(&params.sel, live, last_event_id(headers))
        .await?;
    Ok(line_events(items, show_unit, params.highlight))
}

/// A unit's lines just older than `before` (scrolling up).
pub async fn log_lines(
    State(state): State<AppState>,
    Path(name): Path<String>,
    Query(page): Query<PageQuery>,
    request: ViewRequest,
) -> Result<Html<String>, PageError> {
    let params = request.params(Some(&name), None)?;
    lines_view(&state, &params, &page, false).await
}

/// The explorer's lines just older than `before`.
pub async fn merged_log_lines(
    State(state): State<AppState>,
    Query(page): Query<PageQuery>,
    request: ViewRequest,
) -> Result<Html<String>, PageError> {
    lines_view(&state, &request.explorer()?, &page, true).await
}

async fn lines_view(
    state: &AppState,
    params: &LogParams,
    page: &PageQuery,
    show_unit: bool,
) -> Result<Html<String>, PageError> {
    let entries = state
        .services
        .read_logs(&params.sel, page, PAGE_LINES)
        .await?;
    Ok(Html(render_lines(
        &entries,
        show_unit,
        params.highlight.as_deref(),
    )))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::systemd::journal::{Case, TextFilter};

    fn entry() -> LogEntry {
        LogEntry {
            cursor: "s=1;i=2".into(),
            time: "2026-11-28T09:13:20.123456Z".into(),
            priority: 3,
            identifier: Some("app".into()),
            pid: Some(7),
            message: "<script>alert(1)</script> & \"x\"".into(),
            invocation_id: Some("0fa83c77af2c48d2981d21c42034cc16".into()),
            unit: Some("a<b>.service".into()),
        }
    }

    #[test]
    fn lines_are_escaped_and_linked() {
        let e = entry();
        let html = render_line(&e, false, None);
        assert!(!html.contains("<a "), "the unit page links neither: {html}");
        assert!(!html.contains("<script>"), "{html}");
        assert!(html.contains("&#60;script&#62;"), "{html}");
        assert!(html.contains("data-prio=\"3\""));
        assert!(html.contains("09:13:20.123"));
        assert!(!html.contains('\n'));
        // The run: the unit page filtered to the invocation.
        let merged = render_line(&e, true, None);
        assert!(
            merged.contains(
                "href=\"units/a%3Cb%3E.service?invocation=0fa83c77af2c48d2981d21c42034cc16#logs\""
            ),
            "{merged}"
        );
        assert!(
            merged.contains(
                "<a class=\"unit\" href=\"units/a%3Cb%3E.service\">a&#60;b&#62;.service</a>"
            ),
            "{merged}"
        );
        let plain = LogEntry {
            unit: None,
            ..entry()
        };
        assert!(!render_line(&plain, true, None).contains("<a "));
    }

    #[test]
    fn highlights_mark_matches_without_dropping_text() {
        let pattern = Pattern::new(&TextFilter {
            text: "x|<s".into(),
            regex: true,
            case: Case::Auto,
        })
        .unwrap();
        let html = render_line(&entry(), false, Some(&pattern));
        assert!(
            html.contains("<mark>&#60;s</mark>cript&#62;alert(1)&#60;/script&#62; &#38; &#34;<mark>x</mark>&#34;"),
            "{html}"
        );
        assert_eq!(marked("abc", None), [("abc", false)]);
        assert_eq!(marked("", Some(&pattern)), [("", false)]);
    }
}
