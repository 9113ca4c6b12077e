//! The journal explorer, `/logs`: time range presets, a histogram stacked by priority
//! (a bar is a link that zooms to it; app.js adds drag-to-zoom), facets with counts (a
//! value links to the view with it included or excluded), the text filter or highlight,
//! and the lines, live or of the range. Every control is a link to, or a form for, the
//! next state's URL: the URL is the whole state.

use askama::Template;
use askama_web::WebTemplate;
use axum::extract::State;
use axum::response::{Html, IntoResponse};

use super::state::RANGES;
use super::{LogView, QueryState, ViewRequest};
use crate::error::AppError;
use crate::http::problem::PageError;
use crate::service::logs::{DEFAULT_BUCKETS, DEFAULT_FACETS, LogSummary};
use crate::state::AppState;
use crate::systemd::journal::format_time;
use crate::web::pages::Chrome;

/// The range shown when the URL names none.
pub const DEFAULT_RANGE: &str = "1h";

/// The histogram's drawing box (the SVG stretches it to the page's width).
const WIDTH: f64 = 600.0;
const HEIGHT: f64 = 100.0;

const PRIORITY_NAMES: [&str; 8] = [
    "emerg", "alert", "crit", "err", "warning", "notice", "info", "debug",
];

/// A link of the page: where it goes, and whether it is the state in force.
pub struct Link {
    pub label: String,
    pub href: String,
    pub active: bool,
}

#[derive(Template, WebTemplate)]
#[template(path = "logs.html")]
struct ExplorerPage {
    chrome: Chrome,
    ranges: Vec<Link>,
    /// The custom range's fields.
    since: String,
    until: String,
    custom: bool,
    grep: String,
    regex: bool,
    highlight: bool,
    priority: String,
    /// State the visible controls do not hold, carried through the form.
    hidden: Vec<(String, String)>,
    /// Filters in force, each a link that removes it.
    chips: Vec<Link>,
    /// Pause or resume the live lines (none for a past range).
    follow: Option<Link>,
    summary_url: String,
    log_view: String,
    error: Option<String>,
}

/// Keys the form's visible controls hold.
const FORM_KEYS: [&str; 7] = [
    "since", "until", "grep", "regex", "mode", "priority", "range",
];

/// What a filter chip says.
fn chip_label(key: &str, value: &str) -> String {
    match key {
        "units" => format!("unit {value}"),
        "match" => value.to_string(),
        "exclude" => format!("not {value}"),
        "identifier" => format!("identifier {value}"),
        "invocation" => format!("run {}", value.get(..8).unwrap_or(value)),
        "boot" => format!("boot {}", value.get(..8).unwrap_or(value)),
        _ => format!("{key} {value}"),
    }
}

/// `/logs`: the explorer. A filter that cannot be applied (a refused pattern, a unit
/// that does not exist) is said above the controls, which stay usable.
pub async fn logs_page(
    State(state): State<AppState>,
    request: ViewRequest,
) -> Result<impl IntoResponse, PageError> {
    let current = QueryState::new(&request.pairs);
    let params = request.explorer();
    let checked = match params {
        Ok(p) => state.services.log_filter(&p.sel).await.map(|_| p),
        Err(e) => Err(e),
    };
    let (params, error) = match checked {
        Ok(p) => (Some(p), None),
        Err(e @ (AppError::BadRequest(_) | AppError::NotFound(_))) => (None, Some(e.to_string())),
        Err(e) => return Err(e.into()),
    };
    let log_view = match &params {
        Some(p) => LogView::build(&state, p, "ui", true)
            .await?
            .render()
            .map_err(|e| PageError::from(AppError::internal(e)))?,
        None => String::new(),
    };
    let range = params.as_ref().and_then(|p| p.range);
    let times = ["range", "since", "until", "boot", "follow"];
    let ranges = RANGES
        .iter()
        .map(|(name, label, ..)| Link {
            label: label.to_string(),
            href: current.without(&times).with("range", name).url("logs"),
            active: range == Some(*name),
        })
        .collect();
    let chips = current
        .pairs()
        .iter()
        .filter(|(k, _)| {
            [
                "units",
                "match",
                "exclude",
                "identifier",
                "invocation",
                "boot",
            ]
            .contains(&k.as_str())
        })
        .map(|(k, v)| Link {
            label: chip_label(k, v),
            href: current.toggled(k, v).url("logs"),
            active: true,
        })
        .collect();
    let follow = params.as_ref().and_then(|p| {
        if p.follow {
            Some(Link {
                label: "Pause".into(),
                href: current.with("follow", "off").url("logs"),
                active: true,
            })
        } else if current.get("follow") == Some("off") {
            Some(Link {
                label: "Follow live".into(),
                href: current.without(&["follow"]).url("logs"),
                active: false,
            })
        } else {
            None
        }
    });
    let get = |k: &str| current.get(k).unwrap_or("").to_string();
    Ok(ExplorerPage {
        chrome: Chrome::new("logs"),
        ranges,
        custom: range.is_none()
            && (current.get("since").is_some() || current.get("until").is_some()),
        since: get("since"),
        until: get("until"),
        grep: get("grep"),
        regex: current.get("regex") == Some("true"),
        highlight: current.get("mode") == Some("highlight"),
        priority: get("priority"),
        hidden: current
            .without(&FORM_KEYS)
            .pairs()
            .to_vec()
            .into_iter()
            .chain(range.map(|r| ("range".to_string(), r.to_string())))
            .collect(),
        chips,
        follow,
        summary_url: current.url("ui/logs/summary"),
        log_view,
        error,
    })
}

/// One stacked bar: the link that zooms to its bucket, and its coloured segments.
pub struct Bar {
    pub href: String,
    pub since: String,
    pub until: String,
    pub title: String,
    pub x: String,
    pub width: String,
    /// (priority, y, height) from the bottom up, most severe first.
    pub segments: Vec<(usize, String, String)>,
}

/// One value of a facet with the links that include or exclude it.
pub struct FacetRow {
    pub value: String,
    pub count: u64,
    pub include: String,
    pub exclude: String,
    /// Included already: the include link removes it.
    pub active: bool,
}

pub struct FacetView {
    pub label: &'static str,
    pub field: String,
    pub rows: Vec<FacetRow>,
    pub distinct: usize,
    pub capped: bool,
}

#[derive(Template, WebTemplate)]
#[template(path = "log_summary.html")]
struct SummaryFragment {
    total: u64,
    since: String,
    until: String,
    bucket: String,
    bars: Vec<Bar>,
    axis: Vec<String>,
    facets: Vec<FacetView>,
}

/// `HH:MM:SS` of a time, or `MM-DD HH:MM` when the range spans days.
fn clock(micros: u64, days: bool) -> String {
    let text = format_time(micros);
    if days {
        format!("{} {}", &text[5..10], &text[11..16])
    } else {
        text[11..19].to_string()
    }
}

/// `90 s`, `15 min`, `2 h`: a bucket's width.
fn duration(micros: u64) -> String {
    let s = micros as f64 / 1e6;
    if s < 1.0 {
        format!("{:.0} ms", s * 1000.0)
    } else if s < 120.0 {
        format!("{s:.0} s")
    } else if s < 7200.0 {
        format!("{:.0} min", s / 60.0)
    } else {
        format!("{:.1} h", s / 3600.0)
    }
}

fn facet_label(field: &str) -> &'static str {
    match field {
        "_SYSTEMD_UNIT" => "Unit",
        "PRIORITY" => "Priority",
        "SYSLOG_IDENTIFIER" => "Identifier",
        "_COMM" => "Command",
        _ => "Field",
    }
}

fn bars(summary: &LogSummary, current: &QueryState) -> Vec<Bar> {
    let width = summary.scan.bucket_us;
    let buckets = &summary.scan.buckets;
    let most = buckets
        .iter()
        .map(|b| b.iter().sum::<u64>())
        .max()
        .unwrap_or(0)
        .max(1);
    let step = WIDTH / buckets.len().max(1) as f64;
    let days = summary.until - summary.since > 86_400_000_000;
    let zoom = current.without(&["range", "since", "until", "boot", "follow"]);
    buckets
        .iter()
        .zip(0u64..)
        .map(|(counts, i)| {
            let start = summary.since + i * width;
            let end = (start + width - 1).min(summary.until).max(start);
            let (since, until) = (format_time(start), format_time(end));
            let total: u64 = counts.iter().sum();
            let severe: u64 = counts[..=3].iter().sum();
            let mut y = HEIGHT;
            let segments = counts
                .iter()
                .enumerate()
                .filter(|(_, c)| **c > 0)
                .map(|(p, c)| {
                    let h = *c as f64 / most as f64 * HEIGHT;
                    y -= h;
                    (p, format!("{y:.2}"), format!("{h:.2}"))
                })
                .collect();
            Bar {
                href: zoom.with("since", &since).with("until", &until).url("logs"),
                title: format!(
                    "{}–{} UTC: {total} entries, {severe} errors or worse",
                    clock(start, days),
                    clock(end, days)
                ),
                since,
                until,
                x: format!("{:.2}", i as f64 * step),
                width: format!("{step:.2}"),
                segments,
            }
        })
        .collect()
}

fn facets(summary: &LogSummary, current: &QueryState) -> Vec<FacetView> {
    summary
        .scan
        .facets
        .iter()
        .map(|f| FacetView {
            label: facet_label(&f.field),
            field: f.field.clone(),
            rows: f
                .values
                .iter()
                .map(|(value, count)| {
                    let arg = format!("{}={value}", f.field);
                    let shown = match (f.field.as_str(), value.parse::<usize>()) {
                        ("PRIORITY", Ok(p)) if p < 8 => format!("{p} {}", PRIORITY_NAMES[p]),
                        _ => value.clone(),
                    };
                    FacetRow {
                        value: shown,
                        count: *count,
                        include: current.toggled("match", &arg).url("logs"),
                        exclude: current.toggled("exclude", &arg).url("logs"),
                        active: current.has("match", &arg),
                    }
                })
                .collect(),
            distinct: f.distinct,
            capped: f.capped,
        })
        .collect()
}

/// The histogram and the facets of the explorer's state: one scan.
pub async fn log_summary(
    State(state): State<AppState>,
    request: ViewRequest,
) -> Result<Html<String>, PageError> {
    let current = QueryState::new(&request.pairs);
    let params = request.explorer()?;
    let fields = DEFAULT_FACETS.map(String::from);
    let summary = state
        .services
        .log_summary(&params.sel, DEFAULT_BUCKETS, &fields)
        .await?;
    let days = summary.until - summary.since > 86_400_000_000;
    let axis = (0..=4)
        .map(|i| {
            clock(
                summary.since + (summary.until - summary.since) / 4 * i,
                days,
            )
        })
        .collect();
    let fragment = SummaryFragment {
        total: summary.scan.total,
        since: format_time(summary.since),
        until: format_time(summary.until),
        bucket: duration(summary.scan.bucket_us),
        bars: bars(&summary, &current),
        axis,
        facets: facets(&summary, &current),
    };
    Ok(Html(
        fragment
            .render()
            .map_err(|e| PageError::from(AppError::internal(e)))?,
    ))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::systemd::journal::scan::{FacetCount, ScanResult};

    #[test]
    fn bars_stack_by_priority_and_zoom_to_their_bucket() {
        let summary = LogSummary {
            since: 1_796_566_200_000_000,
            until: 1_796_566_260_000_000,
            scan: ScanResult {
                total: 6,
                buckets: vec![[0, 0, 0, 2, 0, 0, 2, 0], [0, 0, 0, 0, 0, 0, 0, 2]],
                bucket_us: 30_000_000,
                ..Default::default()
            },
        };
        let state = QueryState::new(&[("range".into(), "1h".into()), ("grep".into(), "x".into())]);
        let b = bars(&summary, &state);
        assert_eq!(b[0].x, "0.00");
        assert_eq!(b[1].x, "300.00");
        assert_eq!(
            b[0].segments,
            [
                (3, "50.00".into(), "50.00".into()),
                (6, "0.00".into(), "50.00".into())
            ]
        );
        assert_eq!(
            b[1].href,
            "logs?grep=x&since=2026-12-06T14%3A10%3A30.000000Z&until=2026-12-06T14%3A10%3A59.999999Z"
        );
        assert!(
            b[0].title
                .contains("14:10:00–14:10:29 UTC: 4 entries, 2 errors"),
            "{}",
            b[0].title
        );
    }

    #[test]
    fn facet_values_include_or_exclude() {
        let summary = LogSummary {
            since: 0,
            until: 1,
            scan: ScanResult {
                facets: vec![FacetCount {
                    field: "PRIORITY".into(),
                    values: vec![("3".into(), 5)],
                    distinct: 1,
                    capped: false,
                }],
                ..Default::default()
            },
        };
        let state = QueryState::new(&[("match".into(), "PRIORITY=3".into())]);
        let f = facets(&summary, &state);
        assert_eq!(f[0].label, "Priority");
        let row = &f[0].rows[0];
        assert_eq!(row.value, "3 err");
        assert!(row.active);
        assert_eq!(row.include, "logs", "a second tap removes it");
        assert_eq!(row.exclude, "logs?match=PRIORITY%3D3&exclude=PRIORITY%3D3");
    }
}
