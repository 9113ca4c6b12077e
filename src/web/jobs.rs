//! The jobs page (every timer, its schedule, next and last runs, "Run now"), kept live
//! over SSE, and the history strip of a unit's runs on its page.

use std::collections::{HashMap, HashSet};
use std::convert::Infallible;
use std::time::Duration;

use askama::Template;
use askama_web::WebTemplate;
use axum::extract::{Path, State};
use axum::http::{HeaderValue, StatusCode};
use axum::response::sse::{Event, KeepAlive, Sse};
use axum::response::{IntoResponse, Response};
use futures_util::Stream;
use tokio::sync::broadcast::error::RecvError;

use super::pages::{Chrome, with_toast};
use super::view::dom_id;
use crate::auth::Principal;
use crate::error::AppError;
use crate::http::problem::PageError;
use crate::http::sse::{KEEP_ALIVE, async_stream};
use crate::http::urlencode;
use crate::service::runs::{Run, TimerJob};
use crate::service::unit_action_named;
use crate::state::AppState;
use crate::systemd::UnitEvent;

/// Runs in a unit page's strip.
const STRIP_RUNS: usize = 30;
/// Changes to one job within this long are shown once (a run sends a dozen signals).
const COALESCE: Duration = Duration::from_millis(300);

/// A run as a square of the strip.
pub struct RunView {
    /// The unit page's log view filtered to this run (None for refused starts).
    pub href: Option<String>,
    /// `success`, `failed`, `running`, `unknown`: the colour.
    pub tone: &'static str,
    /// Result, start, duration and trigger, for the tooltip and screen readers.
    pub title: String,
}

impl RunView {
    fn new(unit: &str, r: &Run) -> Self {
        let tone = match r.result.as_str() {
            "success" => "success",
            "running" => "running",
            "unknown" => "unknown",
            _ => "failed",
        };
        let mut title = r.result.clone();
        if let Some(status) = r.exit_status {
            title.push_str(&format!(", exit status {status}"));
        }
        if r.refused_starts > 1 {
            title.push_str(&format!(" ({} refused starts)", r.refused_starts));
        }
        title.push_str(&format!(" · started {}", r.started_at));
        if let Some(ms) = r.duration_ms {
            title.push_str(&format!(" · {}", human_duration(ms)));
        }
        if let Some(t) = r.trigger {
            title.push_str(&format!(" · {}", t.as_str()));
        }
        Self {
            href: r
                .invocation_id
                .as_ref()
                .map(|id| format!("units/{}?invocation={id}#logs", urlencode(unit))),
            tone,
            title,
        }
    }
}

/// Runs oldest first, as the strip reads left to right.
fn strip(unit: &str, runs: &[Run]) -> Vec<RunView> {
    runs.iter().rev().map(|r| RunView::new(unit, r)).collect()
}

/// "512 ms", "3.2 s", "4 min 10 s", "2 h 5 min".
pub fn human_duration(ms: u64) -> String {
    match ms {
        0..1000 => format!("{ms} ms"),
        1000..60_000 => format!("{:.1} s", ms as f64 / 1000.0),
        60_000..3_600_000 => format!("{} min {} s", ms / 60_000, ms % 60_000 / 1000),
        _ => format!("{} h {} min", ms / 3_600_000, ms % 3_600_000 / 60_000),
    }
}

/// A timer as a row of the jobs page.
pub struct JobView {
    pub j: TimerJob,
    pub dom_id: String,
    pub href: String,
    pub service_href: Option<String>,
    /// The service runs now.
    pub running: bool,
    /// The last run, when it failed: "exit-code, exit status 3".
    pub failed: Option<String>,
    pub last: Option<String>,
    /// The last runs as a strip (rendered HTML).
    pub strip: String,
    /// POST URLs of the buttons (the service's start; the timer's enable or disable).
    pub run_url: Option<String>,
    pub toggle: Option<(&'static str, String)>,
}

impl JobView {
    pub fn new(j: TimerJob) -> Self {
        let running = matches!(
            j.service_state.as_deref(),
            Some("activating" | "active" | "deactivating" | "reloading")
        );
        let newest = j.last_runs.first();
        let failed = newest.filter(|r| r.failed()).map(|r| {
            let mut what = r.result.clone();
            if let Some(status) = r.exit_status {
                what.push_str(&format!(", exit status {status}"));
            }
            what
        });
        let last = newest.map(|r| {
            let took = r
                .duration_ms
                .map(|ms| format!(" in {}", human_duration(ms)))
                .unwrap_or_default();
            format!("{}{took}", r.result)
        });
        let href = format!("ui/jobs/{}", urlencode(&j.name));
        let toggle = match j.unit_file_state.as_deref() {
            Some("enabled") => Some(("Disable", format!("{href}/disable"))),
            Some("disabled") => Some(("Enable", format!("{href}/enable"))),
            _ => None,
        };
        Self {
            dom_id: format!("j{}", &dom_id(&j.name)[1..]),
            href: format!("units/{}", urlencode(&j.name)),
            service_href: j
                .service
                .as_ref()
                .map(|s| format!("units/{}", urlencode(s))),
            run_url: j
                .service
                .as_ref()
                .map(|s| format!("ui/jobs/{}/start", urlencode(s))),
            strip: RunsStrip {
                runs: j
                    .service
                    .as_deref()
                    .map(|s| strip(s, &j.last_runs))
                    .unwrap_or_default(),
                shown: None,
            }
            .render()
            .unwrap_or_default(),
            running,
            failed,
            last,
            toggle,
            j,
        }
    }
}

#[derive(Template, WebTemplate)]
#[template(path = "jobs.html")]
struct JobsPage {
    chrome: Chrome,
    jobs: Vec<JobView>,
}

#[derive(Template, WebTemplate)]
#[template(path = "job_rows.html")]
struct JobRows {
    jobs: Vec<JobView>,
}

#[derive(Template, WebTemplate)]
#[template(path = "job_row.html")]
struct JobRow {
    job: JobView,
}

async fn job_views(state: &AppState) -> Result<Vec<JobView>, PageError> {
    Ok(state
        .services
        .timer_jobs()
        .await?
        .into_iter()
        .map(JobView::new)
        .collect())
}

pub async fn jobs_page(State(state): State<AppState>) -> Result<impl IntoResponse, PageError> {
    Ok(JobsPage {
        chrome: Chrome::new("jobs"),
        jobs: job_views(&state).await?,
    })
}

/// The rows alone, for a resync.
pub async fn job_rows(State(state): State<AppState>) -> Result<impl IntoResponse, PageError> {
    Ok(JobRows {
        jobs: job_views(&state).await?,
    })
}

/// "Run now" (start of the timer's service) and enable / disable of the timer, through
/// the same guarded, audited path as every unit action; answers with the job's row.
pub async fn job_action(
    State(state): State<AppState>,
    principal: Principal,
    Path((name, action)): Path<(String, String)>,
) -> Response {
    let done = async {
        let action = unit_action_named(&action)?;
        let outcome = state
            .services
            .unit_action(&principal, &name, action, false)
            .await?;
        let timer = state
            .services
            .timer_of(&name)
            .ok_or_else(|| AppError::NotFound(format!("no timer starts {name}")))?;
        let row = JobRow {
            job: JobView::new(state.services.timer_job(&timer).await?),
        };
        Ok::<_, AppError>((row, outcome))
    };
    match done.await {
        Ok((row, outcome)) => {
            let verb = match action.as_str() {
                "start" => "started",
                "enable" => "enabled",
                "disable" => "disabled",
                other => other,
            };
            let message = format!(
                "{name} {verb} ({})",
                outcome.job.result.map_or("queued", |r| r.as_str())
            );
            with_toast(row.into_response(), true, &message)
        }
        Err(e) => {
            let mut response = with_toast(
                StatusCode::NO_CONTENT.into_response(),
                false,
                &e.to_string(),
            );
            response
                .headers_mut()
                .insert("hx-reswap", HeaderValue::from_static("none"));
            response
        }
    }
}

/// Rendered job rows over SSE: `j:<timer>` replaces that row when the timer or its
/// service changed (at most every 300 ms per job), `resync` asks for the whole list
/// (a timer appeared or went, or unitdeck re-read systemd).
pub async fn job_events(
    State(state): State<AppState>,
) -> Result<Sse<impl Stream<Item = Result<Event, Infallible>>>, PageError> {
    let services = state.services.clone();
    let mut rx = services.subscribe_units();
    let mut timers: HashSet<String> = services.timer_names()?.into_iter().collect();
    let stream = async_stream(move |tx| async move {
        let mut sent: HashMap<String, u64> = HashMap::new();
        let mut due: HashSet<String> = HashSet::new();
        let mut flush = tokio::time::interval(COALESCE);
        loop {
            let event = tokio::select! {
                change = rx.recv() => change,
                _ = flush.tick(), if !due.is_empty() => {
                    for timer in std::mem::take(&mut due) {
                        let Ok(job) = services.timer_job(&timer).await else { continue };
                        let Ok(html) = (JobRow { job: JobView::new(job) }).render() else {
                            continue;
                        };
                        let digest = super::pages::digest_of(&html);
                        if sent.insert(timer.clone(), digest) == Some(digest) {
                            continue;
                        }
                        let event = Event::default().event(format!("j:{timer}")).data(html);
                        if tx.send(event).await.is_err() {
                            return;
                        }
                    }
                    continue;
                }
            };
            let resync = match event {
                Ok(UnitEvent::Changed(summary)) => {
                    let name = summary.name;
                    if name.ends_with(".timer") {
                        let new = timers.insert(name.clone());
                        due.insert(name);
                        new
                    } else {
                        if let Some(timer) = services.timer_of(&name).filter(|t| timers.contains(t))
                        {
                            due.insert(timer);
                        }
                        false
                    }
                }
                Ok(UnitEvent::Removed(name)) => timers.remove(&name),
                Ok(UnitEvent::Resync) | Err(RecvError::Lagged(_)) => true,
                Err(RecvError::Closed) => return,
            };
            if resync {
                sent.clear();
                if tx
                    .send(Event::default().event("resync").data("resync"))
                    .await
                    .is_err()
                {
                    return;
                }
            }
        }
    });
    Ok(Sse::new(stream).keep_alive(KeepAlive::new().interval(KEEP_ALIVE)))
}

/// The log box of a run that has ended: its lines, rendered, no live stream.
#[derive(Template, WebTemplate)]
#[template(path = "run_log.html")]
pub struct RunLog {
    lines: Vec<String>,
    download_url: String,
    all_url: String,
}

impl RunLog {
    pub fn new(
        unit: &str,
        invocation: &str,
        entries: &[crate::systemd::journal::LogEntry],
    ) -> Self {
        let unit = urlencode(unit);
        Self {
            lines: entries
                .iter()
                .map(|e| super::logs::render_line(e, false, None))
                .collect(),
            download_url: format!("api/v1/units/{unit}/logs/download?invocation={invocation}"),
            all_url: format!("units/{unit}#logs"),
        }
    }
}

#[derive(Template, WebTemplate)]
#[template(path = "runs_strip.html")]
struct RunsStrip {
    runs: Vec<RunView>,
    /// The run whose logs the page shows, marked in the strip.
    shown: Option<String>,
}

/// The unit page's strip of runs (oldest first); `?invocation=` marks the one shown.
pub async fn unit_runs(
    State(state): State<AppState>,
    Path(name): Path<String>,
    axum::extract::Query(q): axum::extract::Query<crate::service::LogQuery>,
) -> Result<impl IntoResponse, PageError> {
    let runs = state.services.unit_runs(&name, STRIP_RUNS).await?;
    Ok(RunsStrip {
        runs: strip(&name, &runs),
        shown: q
            .invocation
            .filter(|i| !i.is_empty())
            .map(|i| format!("units/{}?invocation={i}#logs", urlencode(&name))),
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn durations_read_easily() {
        assert_eq!(human_duration(512), "512 ms");
        assert_eq!(human_duration(3200), "3.2 s");
        assert_eq!(human_duration(250_000), "4 min 10 s");
        assert_eq!(human_duration(7_500_000), "2 h 5 min");
    }
}
