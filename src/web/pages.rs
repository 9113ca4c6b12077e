//! Page and fragment handlers: parse, call the domain on `AppState`, render.

use std::collections::{HashMap, HashSet};
use std::convert::Infallible;

use askama::Template;
use askama_web::WebTemplate;
use axum::Form;
use axum::extract::{Path, Query, State};
use axum::http::{HeaderMap, HeaderValue, StatusCode, header};
use axum::response::sse::{Event, KeepAlive, Sse};
use axum::response::{Html, IntoResponse, Response};
use futures_util::Stream;
use serde::Deserialize;
use tokio::sync::broadcast::error::RecvError;

use super::asset_url;
use super::view::{UnitView, dom_id, rows};
use crate::auth::{Principal, Scope};
use crate::error::AppError;
use crate::http::base::redirect;
use crate::http::extract::{ClientIp, session_cookie};
use crate::http::problem::{PageError, status_of};
use crate::http::sse::{KEEP_ALIVE, async_stream};
use crate::service::overrides::{SourceKind, UnitSource};
use crate::service::{SESSION_TTL, unit_action_named, unit_filter};
use crate::state::AppState;
use crate::systemd::{UnitDetail, UnitEvent, UnitSummary};
use crate::unitfile::shell::shell_quote_argv;

/// What every page's frame needs: asset URLs and which nav item is current.
pub struct Chrome {
    pub css: String,
    pub htmx: String,
    pub sse: String,
    pub app: String,
    pub palette: String,
    pub manifest: String,
    pub touch_icon: String,
    pub nav: &'static str,
    /// unitdeck's root relative to this page: the page's `<base href>` (`http::base`).
    pub root: String,
    /// This page relative to the root, for links within it (`#main` alone would resolve
    /// against the root).
    pub page: String,
}

/// A main destination: in the top navigation on a wide screen; in the tab bar on a phone
/// (`tab`), or else in its "More" menu.
pub struct NavItem {
    pub key: &'static str,
    pub href: &'static str,
    pub label: &'static str,
    pub tab: bool,
}

/// The main destinations, in the order both navigations show them.
pub const NAV: &[NavItem] = &[
    NavItem {
        key: "services",
        href: "./",
        label: "Services",
        tab: true,
    },
    NavItem {
        key: "jobs",
        href: "jobs",
        label: "Jobs",
        tab: true,
    },
    NavItem {
        key: "logs",
        href: "logs",
        label: "Logs",
        tab: true,
    },
    NavItem {
        key: "ports",
        href: "ports",
        label: "Ports",
        tab: true,
    },
    NavItem {
        key: "new",
        href: "units/new",
        label: "New unit",
        tab: false,
    },
    NavItem {
        key: "audit",
        href: "audit",
        label: "Audit",
        tab: false,
    },
    NavItem {
        key: "settings",
        href: "settings",
        label: "Settings",
        tab: false,
    },
];

impl Chrome {
    pub(crate) fn new(nav: &'static str) -> Self {
        let here = crate::http::base::here();
        Self {
            css: asset_url("app.css"),
            htmx: asset_url("vendor/htmx.min.js"),
            sse: asset_url("vendor/htmx-ext-sse.js"),
            app: asset_url("app.js"),
            palette: asset_url("palette.js"),
            manifest: asset_url("manifest.webmanifest"),
            touch_icon: asset_url("icon-192.png"),
            nav,
            root: here.root,
            page: here.page,
        }
    }

    pub fn items(&self) -> &'static [NavItem] {
        NAV
    }

    /// Whether the current page is one of the phone's "More" menu.
    pub fn more_is_current(&self) -> bool {
        NAV.iter().any(|i| !i.tab && i.key == self.nav)
    }
}

// --- login ---------------------------------------------------------------------

#[derive(Template, WebTemplate)]
#[template(path = "login.html")]
struct LoginPage {
    chrome: Chrome,
    next: String,
    error: Option<String>,
}

#[derive(Deserialize)]
pub struct NextQuery {
    next: Option<String>,
}

/// Where to go after the login: a path on this site or `/`. One leading `/`, never
/// `//` (another host), no `\` (browsers read it as `/`), no control characters or
/// white space (browsers drop tabs and newlines: `/<TAB>/evil` became `//evil`); each
/// checked on the text as sent and once percent-decoded.
fn safe_next(next: Option<&str>) -> String {
    let acceptable = |path: &str| {
        path.starts_with('/')
            && !path.starts_with("//")
            && !path
                .chars()
                .any(|c| c == '\\' || c.is_control() || c.is_whitespace())
    };
    match next {
        Some(n) if acceptable(n) && acceptable(&percent_decode(n)) => n.to_string(),
        _ => "/".to_string(),
    }
}

/// `%XX` sequences decoded (invalid ones left as they are), bytes read as UTF-8 lossily.
fn percent_decode(text: &str) -> String {
    let bytes = text.as_bytes();
    let mut out = Vec::with_capacity(bytes.len());
    let mut i = 0;
    while i < bytes.len() {
        let hex = bytes
            .get(i + 1..i + 3)
            .and_then(|h| std::str::from_utf8(h).ok())
            .and_then(|h| u8::from_str_radix(h, 16).ok());
        match (bytes[i], hex) {
            (b'%', Some(byte)) => {
                out.push(byte);
                i += 3;
            }
            (b, _) => {
                out.push(b);
                i += 1;
            }
        }
    }
    String::from_utf8_lossy(&out).into_owned()
}

pub async fn login_page(Query(q): Query<NextQuery>) -> Result<impl IntoResponse, PageError> {
    Ok(LoginPage {
        chrome: Chrome::new("login"),
        next: safe_next(q.next.as_deref()),
        error: None,
    })
}

#[derive(Deserialize)]
pub struct LoginForm {
    password: String,
    next: Option<String>,
}

pub async fn login_submit(
    State(state): State<AppState>,
    ClientIp(client): ClientIp,
    headers: HeaderMap,
    Form(form): Form<LoginForm>,
) -> Result<Response, PageError> {
    let next = safe_next(form.next.as_deref());
    let previous = crate::http::gate::session_hash(&headers);
    match state.services.login(form.password, client, previous).await {
        Ok(session) => {
            let cookie = session_cookie(&headers, &session, SESSION_TTL.as_secs());
            Ok(([(header::SET_COOKIE, cookie)], redirect(&next)).into_response())
        }
        Err(err @ (AppError::Unauthorized | AppError::TooManyRequests { .. })) => {
            let status = status_of(&err);
            let message = match &err {
                AppError::Unauthorized => "Wrong password.".to_string(),
                other => format!("{other}."),
            };
            let page = LoginPage {
                chrome: Chrome::new("login"),
                next,
                error: Some(message),
            };
            let mut response = (status, page).into_response();
            if let AppError::TooManyRequests { retry_after } = err {
                response
                    .headers_mut()
                    .insert(header::RETRY_AFTER, HeaderValue::from(retry_after));
            }
            Ok(response)
        }
        Err(other) => Err(other.into()),
    }
}

pub async fn logout(
    State(state): State<AppState>,
    principal: Principal,
    headers: HeaderMap,
) -> Result<Response, PageError> {
    state.services.logout(&principal).await?;
    Ok(logged_out(&headers))
}

/// `/logout-everywhere` (settings): every session ends, this browser's too. (At the root
/// like `/logout`: the cookie it clears has no `Path`, so it is cleared from where it
/// was set.)
pub async fn logout_everywhere(
    State(state): State<AppState>,
    principal: Principal,
    headers: HeaderMap,
) -> Result<Response, PageError> {
    state.services.logout_everywhere(&principal).await?;
    Ok(logged_out(&headers))
}

fn logged_out(headers: &HeaderMap) -> Response {
    (
        [(header::SET_COOKIE, session_cookie(headers, "", 0))],
        redirect("/login"),
    )
        .into_response()
}

// --- dashboard -------------------------------------------------------------------

#[derive(Deserialize, Default)]
pub struct ListQuery {
    #[serde(rename = "type")]
    unit_type: Option<String>,
    state: Option<String>,
    q: Option<String>,
    /// Events for this one unit only (the unit page).
    unit: Option<String>,
}

#[derive(Template, WebTemplate)]
#[template(path = "dashboard.html")]
struct DashboardPage {
    chrome: Chrome,
    units: Vec<UnitView>,
    unit_type: String,
    state: String,
    q: String,
    counts: Counts,
    tiles: Vec<super::ports::PortTile>,
}

#[derive(Template, WebTemplate)]
#[template(path = "unit_rows.html")]
struct UnitRows {
    units: Vec<UnitView>,
}

#[derive(Template, WebTemplate)]
#[template(path = "unit_row.html")]
struct UnitRow {
    u: UnitView,
}

/// Totals shown above the list.
struct Counts {
    total: usize,
    active: usize,
    failed: usize,
}

/// Rows come from the cache filtered by type only; text and state filters run
/// in the browser (and on the server for the no-JS first render via the same
/// query), so typing never waits for the network.
fn listed(state: &AppState, q: &ListQuery) -> Result<(Vec<UnitSummary>, String), AppError> {
    let unit_type = q.unit_type.clone().unwrap_or_else(|| "service".into());
    let filter = unit_filter(Some(&unit_type), None, None)?;
    Ok((state.services.list_units(&filter)?, unit_type))
}

pub async fn dashboard(
    State(state): State<AppState>,
    Query(q): Query<ListQuery>,
    headers: HeaderMap,
) -> Result<impl IntoResponse, PageError> {
    let (units, unit_type) = listed(&state, &q)?;
    let counts = Counts {
        total: units.len(),
        active: units
            .iter()
            .filter(|u| u.active_state.as_deref() == Some("active"))
            .count(),
        failed: units
            .iter()
            .filter(|u| u.active_state.as_deref() == Some("failed"))
            .count(),
    };
    Ok(DashboardPage {
        chrome: Chrome::new("services"),
        units: rows(&state.services, &units),
        unit_type,
        state: q.state.unwrap_or_default(),
        q: q.q.unwrap_or_default(),
        counts,
        tiles: super::ports::watched_tiles(&state, &headers).await,
    })
}

/// The list body alone, for a resync after a reconnect or daemon-reload.
pub async fn unit_rows(
    State(state): State<AppState>,
    Query(q): Query<ListQuery>,
) -> Result<impl IntoResponse, PageError> {
    let (units, _) = listed(&state, &q)?;
    Ok(UnitRows {
        units: rows(&state.services, &units),
    })
}

// --- one unit ------------------------------------------------------------------------

#[derive(Template, WebTemplate)]
#[template(path = "unit.html")]
struct UnitPage {
    chrome: Chrome,
    u: UnitView,
    d: UnitDetail,
    exec_lines: Vec<String>,
    relations: Vec<(&'static str, Vec<(String, String)>)>,
    /// The rendered log box (its own template, also served alone on filter changes).
    log_view: String,
    /// The log toolbar's controls, as the URL set them (a line of the explorer links to
    /// its run: `?invocation=ID`).
    log_controls: super::logs::LogControls,
    resources: String,
    /// Said once after a redirect (a change saved, but its unit did not start).
    notice: Option<String>,
    /// The run whose logs are shown (`?invocation=`), else all of them.
    run: Option<String>,
    /// What systemd reads for it, in its order.
    sources: Vec<SourceView>,
}

/// Lines of a run that has ended, on the unit page.
const RUN_LOG_LINES: usize = 1000;

#[derive(Deserialize)]
pub struct UnitPageQuery {
    invocation: Option<String>,
}

/// One file of a unit as its page shows it.
struct SourceView {
    path: String,
    fragment: bool,
    text: String,
    managed: bool,
    /// The settings it assigns, as `Key=`, comma-separated.
    changes: String,
    note: Option<String>,
}

impl SourceView {
    fn of(source: UnitSource) -> Self {
        let keys: Vec<String> = source
            .changes
            .iter()
            .map(|k| format!("{}=", k.rsplit('.').next().unwrap_or(k)))
            .collect();
        Self {
            path: source.path,
            fragment: source.kind == SourceKind::Fragment,
            text: source.text,
            managed: source.managed,
            changes: keys.join(", "),
            note: source.note,
        }
    }
}

pub async fn unit_page(
    State(state): State<AppState>,
    principal: Principal,
    Path(name): Path<String>,
    Query(q): Query<UnitPageQuery>,
    headers: HeaderMap,
    request: super::logs::ViewRequest,
) -> Result<Response, PageError> {
    let d = state.services.unit_detail(&name).await?;
    // `?invocation=`: the log view of that run (a notification's link, the runs strip, a
    // line of the explorer); the panel checks it.
    let run = q
        .invocation
        .filter(|i| !i.is_empty())
        .map(|i| i.to_ascii_lowercase());
    let (log_controls, log_view) = request.unit_panel(&state, &d).await?;
    // Environment values are an admin's to see.
    let sources = state
        .services
        .unit_sources(&d.summary.name)
        .await?
        .into_iter()
        .map(|s| {
            if principal.scope >= Scope::Admin {
                s
            } else {
                s.redacted()
            }
        })
        .map(SourceView::of)
        .collect();
    let link = |names: &[String]| {
        names
            .iter()
            .map(|n| (n.clone(), format!("units/{}", crate::http::urlencode(n))))
            .collect::<Vec<_>>()
    };
    let relations = vec![
        ("Requires", link(&d.requires)),
        ("Wants", link(&d.wants)),
        ("After", link(&d.after)),
        ("Before", link(&d.before)),
        ("Required by", link(&d.required_by)),
        ("Wanted by", link(&d.wanted_by)),
    ];
    // A run that has ended: its lines, also those journald could not tie to it; a run
    // that goes on (or the unit's whole log): the panel as the URL asks.
    let ended = match &run {
        Some(invocation) => state
            .services
            .run_log(&d.summary.name, invocation, RUN_LOG_LINES)
            .await?
            .map(|entries| super::jobs::RunLog::new(&d.summary.name, invocation, &entries)),
        None => None,
    };
    let log_view = match ended {
        Some(run_log) => run_log
            .render()
            .map_err(|e| PageError::from(AppError::internal(e)))?,
        None => log_view,
    };
    let resources = resources(&state, &d.summary)
        .render()
        .map_err(|e| PageError::from(AppError::internal(e)))?;
    let page = |notice| UnitPage {
        chrome: Chrome::new("services"),
        resources,
        u: UnitView::of(&state.services, &d.summary),
        log_view,
        log_controls,
        exec_lines: d
            .exec_start
            .iter()
            .map(|argv| shell_quote_argv(argv))
            .collect(),
        relations,
        run,
        d,
        notice,
        sources,
    };
    Ok(with_notice(&state, &headers, |notice| {
        page(notice).into_response()
    }))
}

/// A page with the notice the request points at: `page` gets its text, the answer clears
/// its cookie (a notice is shown once).
pub(crate) fn with_notice(
    state: &AppState,
    request: &HeaderMap,
    page: impl FnOnce(Option<String>) -> Response,
) -> Response {
    let notice = state.notices.take(request);
    let mut response = page(notice.as_ref().map(|(text, _)| text.clone()));
    if let Some((_, clear)) = notice {
        response.headers_mut().append(header::SET_COOKIE, clear);
    }
    response
}

/// One unit's row, for the unit page's resync.
pub async fn unit_row(
    State(state): State<AppState>,
    Path(name): Path<String>,
) -> Result<impl IntoResponse, PageError> {
    let summary = state.services.unit_summary(&name).await?;
    Ok(UnitRow {
        u: UnitView::of(&state.services, &summary),
    })
}

// --- actions and live rows ----------------------------------------------------------

/// Log lines shown when an action from a button fails.
const ACTION_LOG_LINES: usize = 20;

/// `#action-log`, swapped out of band with an action's answer.
#[derive(Template, WebTemplate)]
#[template(path = "action_log.html")]
struct ActionLog<'a> {
    /// false: an empty box (clears an earlier failure).
    show: bool,
    name: &'a str,
    href: &'a str,
    result: &'a str,
    lines: Vec<ActionLogLine>,
    /// Why the lines could not be read.
    error: Option<String>,
}

/// A journal entry as the action log shows it (askama escapes the text).
struct ActionLogLine {
    priority: u8,
    time: String,
    /// HH:MM:SS of the UTC time.
    clock: String,
    who: String,
    message: String,
}

impl ActionLogLine {
    fn new(e: &crate::systemd::journal::LogEntry) -> Self {
        Self {
            priority: e.priority,
            clock: e.time.get(11..19).unwrap_or(&e.time).to_string(),
            time: e.time.clone(),
            who: match (&e.identifier, e.pid) {
                (Some(id), Some(pid)) => format!("{id}[{pid}]"),
                (Some(id), None) => id.clone(),
                _ => String::new(),
            },
            message: e.message.clone(),
        }
    }
}

/// An action from a button: answers with the fresh row and a toast.
pub async fn unit_action(
    State(state): State<AppState>,
    principal: Principal,
    Path((name, action)): Path<(String, String)>,
) -> Response {
    let outcome = match unit_action_named(&action) {
        Ok(action) => {
            state
                .services
                .unit_action(&principal, &name, action, true)
                .await
        }
        Err(e) => Err(e),
    };
    match outcome {
        Ok(outcome) => {
            let result = outcome.job.result.map(|r| r.as_str()).unwrap_or("queued");
            // "queued": the job was not waited for (unitdeck restarting itself).
            let ok = matches!(result, "done" | "queued");
            let message = if ok {
                format!("{action} {name}: {result}")
            } else {
                format!(
                    "{action} {name} failed: {result}. Its last log lines are at the top of the page."
                )
            };
            // The row, plus the log box out of band: the failed run's last lines, or
            // emptied after a success so an old failure does not linger.
            let row = UnitRow {
                u: UnitView::of(&state.services, &outcome.unit),
            };
            let mut log = ActionLog {
                show: !ok,
                name: &row.u.name,
                href: &row.u.href,
                result,
                lines: Vec::new(),
                error: None,
            };
            if !ok {
                match state
                    .services
                    .last_run_log(&row.u.name, ACTION_LOG_LINES)
                    .await
                {
                    Ok(entries) => log.lines = entries.iter().map(ActionLogLine::new).collect(),
                    Err(e) => log.error = Some(e.to_string()),
                }
            }
            match (row.render(), log.render()) {
                (Ok(row), Ok(log)) => with_toast(Html(row + &log).into_response(), ok, &message),
                (Err(e), _) | (_, Err(e)) => PageError::from(AppError::internal(e)).into_response(),
            }
        }
        Err(err) => unchanged_row(&err.to_string()),
    }
}

/// A row's button whose request failed: the row stays as it is, a toast says why.
fn unchanged_row(message: &str) -> Response {
    let mut response = with_toast(StatusCode::NO_CONTENT.into_response(), false, message);
    response
        .headers_mut()
        .insert("hx-reswap", HeaderValue::from_static("none"));
    response
}

/// A row's pin button: answers with the row, marked, and a toast.
pub async fn pin(state: State<AppState>, principal: Principal, name: Path<String>) -> Response {
    set_pin(state, principal, name, true).await
}

pub async fn unpin(state: State<AppState>, principal: Principal, name: Path<String>) -> Response {
    set_pin(state, principal, name, false).await
}

async fn set_pin(
    State(state): State<AppState>,
    principal: Principal,
    Path(name): Path<String>,
    pinned: bool,
) -> Response {
    let changed = async {
        state.services.set_pinned(&principal, &name, pinned).await?;
        state.services.unit_summary(&name).await
    };
    match changed.await {
        Ok(summary) => {
            let row = UnitRow {
                u: UnitView::of(&state.services, &summary),
            };
            let message = if pinned {
                format!("{name} pinned to the top")
            } else {
                format!("{name} unpinned")
            };
            match row.render() {
                Ok(html) => with_toast(Html(html).into_response(), true, &message),
                Err(e) => PageError::from(AppError::internal(e)).into_response(),
            }
        }
        Err(err) => unchanged_row(&err.to_string()),
    }
}

pub(crate) fn with_toast(mut response: Response, ok: bool, message: &str) -> Response {
    let trigger =
        serde_json::json!({"toast": {"kind": if ok { "ok" } else { "err" }, "message": message}});
    if let Ok(value) = HeaderValue::from_str(&trigger.to_string()) {
        response.headers_mut().insert("hx-trigger", value);
    }
    response
}

/// Rendered rows over SSE: `u:<name>` replaces that row, `unit-new` appends a
/// unit the page did not have, `resync` asks the page to reload its list. Each row
/// event follows a `changed` event (data: the unit) that the page always hears, also
/// for a `u:<name>` it has no row for (yet): a reload of the rows in flight is older.
pub async fn row_events(
    State(state): State<AppState>,
    Query(q): Query<ListQuery>,
) -> Result<Sse<impl Stream<Item = Result<Event, Infallible>>>, PageError> {
    let (units, unit_type) = listed(&state, &q)?;
    let mut known: HashSet<String> = units.into_iter().map(|u| u.name).collect();
    let only = q.unit.clone();
    // What each row last looked like on this page (a digest of the HTML sent).
    let mut sent: HashMap<String, u64> = HashMap::new();
    let mut rx = state.services.subscribe_units();
    let services = state.services.clone();
    let stream = async_stream(move |tx| async move {
        loop {
            let event = match rx.recv().await {
                Ok(UnitEvent::Changed(summary)) => {
                    let wanted = (unit_type == "all" || summary.unit_type == unit_type)
                        && only.as_ref().is_none_or(|n| *n == summary.name);
                    if !wanted {
                        continue;
                    }
                    let name = if known.insert(summary.name.clone()) {
                        "unit-new".to_string()
                    } else {
                        format!("u:{}", summary.name)
                    };
                    let Ok(html) = (UnitRow {
                        u: UnitView::of(&services, &summary),
                    })
                    .render() else {
                        continue;
                    };
                    // One change often comes as several signals that render the same row
                    // (7 for a stop): each swap costs the browser, send it once.
                    let digest = digest_of(&html);
                    if sent.insert(summary.name.clone(), digest) == Some(digest) {
                        continue;
                    }
                    if !changed(&tx, &summary.name).await {
                        return;
                    }
                    Event::default().event(name).data(html)
                }
                Ok(UnitEvent::Removed(name)) => {
                    if !known.remove(&name) {
                        continue;
                    }
                    sent.remove(&name);
                    if !changed(&tx, &name).await {
                        return;
                    }
                    Event::default()
                        .event(format!("u:{name}"))
                        .data(format!("<template id=\"{}\"></template>", dom_id(&name)))
                }
                Ok(UnitEvent::Resync) | Err(RecvError::Lagged(_)) => {
                    sent.clear();
                    Event::default().event("resync").data("resync")
                }
                Err(RecvError::Closed) => return,
            };
            if tx.send(event).await.is_err() {
                return;
            }
        }
    });
    Ok(Sse::new(stream).keep_alive(KeepAlive::new().interval(KEEP_ALIVE)))
}

/// Sends the `changed` event that comes before a row event; false once the page left.
async fn changed(tx: &tokio::sync::mpsc::Sender<Event>, unit: &str) -> bool {
    tx.send(Event::default().event("changed").data(unit))
        .await
        .is_ok()
}

pub(super) fn digest_of(html: &str) -> u64 {
    use std::hash::{Hash, Hasher};
    let mut hasher = std::collections::hash_map::DefaultHasher::new();
    html.hash(&mut hasher);
    hasher.finish()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn next_is_kept_on_site() {
        assert_eq!(safe_next(Some("/units/a.service")), "/units/a.service");
        assert_eq!(safe_next(Some("//evil.example/")), "/");
        assert_eq!(safe_next(Some("/\\evil.example")), "/");
        assert_eq!(safe_next(Some("https://evil.example")), "/");
        assert_eq!(safe_next(None), "/");
        for bad in [
            "/\t/evil.example",
            "/%09/evil.example",
            "/\n/evil.example",
            "/%0d%0a/evil.example",
            "/ /evil.example",
            "/%2F/evil.example",
            "%2F%2Fevil.example",
            "/%5Cevil.example",
            "/%5cevil.example",
            "/units/a\u{7f}",
            "/units/a\u{2028}b",
            "evil.example",
            "",
        ] {
            assert_eq!(safe_next(Some(bad)), "/", "{bad:?}");
        }
        assert_eq!(
            safe_next(Some("/units/a%40b.service?x=1%2C2")),
            "/units/a%40b.service?x=1%2C2"
        );
    }

    #[test]
    fn shell_lines_quote_what_needs_it() {
        let argv: Vec<String> = ["/bin/echo", "a b", "it's", "x=1"]
            .map(String::from)
            .to_vec();
        assert_eq!(shell_quote_argv(&argv), "/bin/echo 'a b' 'it'\\''s' x=1");
    }
}

#[derive(Template, WebTemplate)]
#[template(path = "resources.html")]
struct Resources {
    name: String,
    memory: String,
    cpu: String,
    memory_spark: String,
    cpu_spark: String,
    minutes: i64,
}

fn resources(state: &AppState, summary: &UnitSummary) -> Resources {
    let samples = state.services.unit_samples(&summary.name);
    let (memory, cpu) = super::view::resource_series(&samples);
    let minutes = match (samples.first(), samples.last()) {
        (Some(a), Some(b)) => ((b.at_ms - a.at_ms) / 60_000).max(1),
        _ => 0,
    };
    Resources {
        name: summary.name.clone(),
        memory: summary
            .memory_bytes
            .map(super::view::human_bytes)
            .unwrap_or_else(|| "—".into()),
        cpu: cpu
            .last()
            .map(|c| format!("{c:.1} %"))
            .unwrap_or_else(|| "—".into()),
        memory_spark: super::view::sparkline(&memory, "memory"),
        cpu_spark: super::view::sparkline(&cpu, "CPU"),
        minutes,
    }
}

/// The resources card alone; the unit page refreshes it every 10 s.
pub async fn unit_resources(
    State(state): State<AppState>,
    Path(name): Path<String>,
) -> Result<impl IntoResponse, PageError> {
    let summary = state.services.unit_summary(&name).await?;
    Ok(resources(&state, &summary))
}
