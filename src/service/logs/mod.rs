//! The log operations behind the JSON routes, the unit page and the journal explorer:
//! check the parameters and the units, resolve times and boots into a filter, then read,
//! follow or count the journal.

mod params;
mod summary;
mod time;

use futures_util::Stream;

pub use params::{
    DEFAULT_BUCKETS, DEFAULT_FACETS, FacetsQuery, FieldMatches, HistogramQuery, LogQuery,
    MAX_BUCKETS, MAX_FACET_FIELDS, MAX_FIELD_MATCHES, MAX_LINES, MAX_TEXT, MAX_UNITS,
    MAX_UNITS_LEN, PageQuery, StreamQuery, UnitsParam,
};
pub use summary::{BootInfo, Bucket, FacetValue, Facets, Histogram, LogSummary};
pub use time::{TIME_PATTERN, parse_time};

use super::units::checked_unit_name;
use crate::error::{AppError, AppResult};
use crate::service::Services;
use crate::systemd::journal::{
    self, Boot, LogEntry, LogFilter, Pattern, Start, StreamItem, TextFilter, validate_cursor,
};
use params::{bad, cursor};

/// Everything that selects entries: the units, the filters and the field matches of a
/// query string.
#[derive(Debug, Default, Clone)]
pub struct LogSelection {
    pub units: UnitsParam,
    pub query: LogQuery,
    pub fields: FieldMatches,
}

impl LogSelection {
    /// The selection of a query string: its filters, and among all its `pairs` the
    /// units (`units=a,b` or repeated) and the repeated `match` and `exclude`.
    pub fn from_query(query: LogQuery, pairs: &[(String, String)]) -> AppResult<Self> {
        Ok(Self {
            units: UnitsParam::from_pairs(pairs),
            query,
            fields: FieldMatches::from_pairs(pairs)?,
        })
    }

    /// The same for one unit's entries (the unit routes).
    pub fn unit(name: &str, query: LogQuery, pairs: &[(String, String)]) -> AppResult<Self> {
        Ok(Self {
            // A unit name has no comma: this is one unit, never a list.
            units: UnitsParam {
                units: Some(checked_unit_name(name)?.to_string()),
            },
            query,
            fields: FieldMatches::from_pairs(pairs)?,
        })
    }
}

/// Printable text of at most [`MAX_TEXT`] characters; empty is none.
fn text_param<'a>(param: &str, value: Option<&'a str>) -> AppResult<Option<&'a str>> {
    match value.filter(|v| !v.is_empty()) {
        Some(v) if v.chars().count() > MAX_TEXT || v.chars().any(char::is_control) => Err(bad(
            param,
            &format!("at most {MAX_TEXT} printable characters"),
        )),
        other => Ok(other),
    }
}

/// `grep` as journalctl will take it, compiled; a pattern PCRE2 refuses is a 400.
fn text_filter(text: &str, q: &LogQuery) -> AppResult<(TextFilter, Pattern)> {
    let filter = TextFilter {
        text: text.to_string(),
        regex: q.regex.unwrap_or(false),
        case: q.case.unwrap_or_default(),
    };
    let pattern = Pattern::new(&filter)
        .map_err(|e| bad("grep", &format!("not a pattern journalctl accepts: {e}")))?;
    Ok((filter, pattern))
}

/// The pattern that marks matches of `text` in shown lines (the pages' highlight mode),
/// checked as `grep` is (with the same `regex` and `case`).
pub fn highlight_pattern(text: &str, q: &LogQuery) -> AppResult<Option<Pattern>> {
    match text_param("grep", Some(text))? {
        Some(text) => Ok(Some(text_filter(text, q)?.1)),
        None => Ok(None),
    }
}

impl Services {
    /// A validated filter for existing units (404 for unknown units, 400 for bad filters),
    /// with its times and boot resolved.
    pub async fn log_filter(&self, sel: &LogSelection) -> AppResult<LogFilter> {
        Ok(self.resolve_filter(sel, time::now()).await?.0)
    }

    /// The filter of `sel` as of `now`, and the boot it names.
    async fn resolve_filter(
        &self,
        sel: &LogSelection,
        now: u64,
    ) -> AppResult<(LogFilter, Option<Boot>)> {
        let q = &sel.query;
        let mut units = Vec::new();
        for name in sel.units.names()? {
            let name = checked_unit_name(name)?;
            self.systemd.find(name).await?;
            units.push(name.to_string());
        }
        // One follower serves every viewer of the same set, in whatever order it was named.
        units.sort_unstable();
        if q.priority.is_some_and(|p| p > 7) {
            return Err(bad("priority", "must be 0 (emerg) to 7 (debug)"));
        }
        let grep = match text_param("grep", q.grep.as_deref())? {
            Some(text) => Some(text_filter(text, q)?.0),
            None => None,
        };
        let invocation = q.invocation.as_deref().filter(|i| !i.is_empty());
        if let Some(i) = invocation
            && (i.len() != 32 || !i.bytes().all(|b| b.is_ascii_hexdigit()))
        {
            return Err(bad("invocation", "must be 32 hex digits"));
        }
        let identifier = text_param("identifier", q.identifier.as_deref())?;
        let at = |param: &str, value: Option<&str>| -> AppResult<Option<u64>> {
            match value.filter(|v| !v.is_empty()) {
                None => Ok(None),
                Some(v) => parse_time(v, now).map(Some).ok_or_else(|| {
                    bad(
                        param,
                        "not a time: RFC 3339 (2026-12-06T14:10:00Z), now, or before now \
                         (-15min, -1h, -2d)",
                    )
                }),
            }
        };
        let (since, until) = (
            at("since", q.since.as_deref())?,
            at("until", q.until.as_deref())?,
        );
        if let (Some(s), Some(u)) = (since, until)
            && s > u
        {
            return Err(bad("since", "is after until"));
        }
        let boot = match q.boot.as_deref().filter(|b| !b.is_empty()) {
            Some(b) => Some(self.find_boot(b).await?),
            None => None,
        };
        let filter = LogFilter {
            units,
            priority: q.priority,
            grep,
            invocation: invocation.map(|i| i.to_ascii_lowercase()),
            identifier: identifier.map(String::from),
            boot: boot.as_ref().map(|b| b.id.clone()),
            matches: sel.fields.matches.clone(),
            excludes: sel.fields.excludes.clone(),
            since,
            until,
        };
        Ok((filter, boot))
    }

    /// A boot by offset (`0`, `-1`, ...) or ID; one the journal does not list is a 400.
    async fn find_boot(&self, boot: &str) -> AppResult<Boot> {
        let wanted = if boot.len() == 32 && boot.bytes().all(|b| b.is_ascii_hexdigit()) {
            Ok(boot.to_ascii_lowercase())
        } else {
            match boot.parse::<i64>() {
                Ok(n) if n <= 0 => Err(n),
                _ => return Err(bad("boot", "0, -1, -2, ... or a boot ID (32 hex digits)")),
            }
        };
        let boots = journal::list_boots().await.map_err(AppError::internal)?;
        boots
            .into_iter()
            .find(|b| match &wanted {
                Ok(id) => b.id == *id,
                Err(index) => b.index == *index,
            })
            .ok_or_else(|| {
                bad(
                    "boot",
                    &format!("the journal has no entries of boot {boot} (GET /api/v1/boots)"),
                )
            })
    }

    /// Entries oldest first.
    pub async fn read_logs(
        &self,
        sel: &LogSelection,
        page: &PageQuery,
        default_lines: usize,
    ) -> AppResult<Vec<LogEntry>> {
        let filter = self.log_filter(sel).await?;
        let lines = page.lines_or(default_lines)?;
        let start = match (
            cursor("after", page.after.as_deref())?,
            cursor("before", page.before.as_deref())?,
        ) {
            (Some(_), Some(_)) => return Err(bad("before", "not together with after")),
            (Some(c), None) => Start::After(c),
            (None, Some(c)) => Start::Before(c),
            (None, None) => Start::Newest,
        };
        journal::read(&filter, lines, start)
            .await
            // The filters were checked: journalctl failing (a corrupt journal file, killed) is ours.
            .map_err(AppError::internal)
    }

    /// Backlog then live entries. A `resume` cursor (Last-Event-ID, or `after`)
    /// continues right after it instead of sending a backlog.
    pub async fn follow_logs(
        &self,
        sel: &LogSelection,
        stream: &StreamQuery,
        resume: Option<String>,
    ) -> AppResult<impl Stream<Item = StreamItem> + Send + 'static> {
        let filter = self.log_filter(sel).await?;
        let backlog = stream.backlog()?;
        // `after` is checked even when Last-Event-ID (a reconnect) wins over it.
        let after = cursor("after", stream.after.as_deref())?;
        let resume = match resume.filter(|c| !c.is_empty()) {
            Some(c) if validate_cursor(&c) => Some(c),
            Some(_) => {
                return Err(AppError::BadRequest(
                    "header Last-Event-ID: not a journal cursor".into(),
                ));
            }
            None => after.map(String::from),
        };
        if !self.journal.has_room_for(&filter) {
            return Err(AppError::Unavailable(format!(
                "{} log streams with different filters are open (one journalctl each); \
                 close one, or use a filter already open",
                journal::MAX_FOLLOWERS
            )));
        }
        Ok(self.journal.subscribe(filter, backlog, resume).await)
    }
}

/// One entry as a line of text: time, priority, identifier[pid]: message. Line breaks
/// inside a message are written as `\n` (and a backslash as `\\`), so that every line
/// of a download is one entry with its timestamp.
pub fn format_line(e: &LogEntry) -> String {
    let escape = |text: &str| {
        text.replace('\\', "\\\\")
            .replace('\r', "\\r")
            .replace('\n', "\\n")
    };
    let who = match (&e.identifier, e.pid) {
        (Some(id), Some(pid)) => format!("{}[{pid}]", escape(id)),
        (Some(id), None) => escape(id),
        (None, Some(pid)) => format!("[{pid}]"),
        (None, None) => "-".to_string(),
    };
    format!("{} <{}> {who}: {}", e.time, e.priority, escape(&e.message))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn lines_format_for_download() {
        let e = LogEntry {
            cursor: "c".into(),
            time: "2026-11-28T09:13:20.123456Z".into(),
            priority: 3,
            identifier: Some("app".into()),
            pid: Some(42),
            message: "boom".into(),
            invocation_id: None,
            unit: None,
        };
        assert_eq!(
            format_line(&e),
            "2026-11-28T09:13:20.123456Z <3> app[42]: boom"
        );
        let e = LogEntry {
            message: "first\nsecond\\n\r".into(),
            ..e
        };
        assert_eq!(
            format_line(&e),
            "2026-11-28T09:13:20.123456Z <3> app[42]: first\\nsecond\\\\n\\r"
        );
        // The identifier is the sender's to choose too.
        let e = LogEntry {
            identifier: Some("a\nb".into()),
            message: "m".into(),
            ..e
        };
        assert_eq!(
            format_line(&e),
            "2026-11-28T09:13:20.123456Z <3> a\\nb[42]: m"
        );
    }
}
