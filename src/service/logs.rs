//! The log operations behind the JSON routes, the unit page and the merged view of
//! several units: validate the filters, check the units exist, then read or follow the
//! journal.

use futures_util::Stream;
use serde::{Deserialize, Deserializer};
use utoipa::IntoParams;

use super::units::checked_unit_name;
use crate::error::{AppError, AppResult};
use crate::service::Services;
use crate::systemd::journal::{self, LogEntry, LogFilter, StreamItem, validate_cursor};

/// The most entries one read returns.
pub const MAX_LINES: usize = 10_000;
const MAX_GREP: usize = 256;

/// Filters shared by `/logs`, `/logs/stream` and `/logs/download`.
#[derive(Debug, Default, Clone, Deserialize, IntoParams)]
#[into_params(parameter_in = Query)]
pub struct LogQuery {
    /// How many entries (the newest, or the first after `after`); 1-10000. Empty: the
    /// default.
    #[param(value_type = Option<String>, pattern = r"^([1-9][0-9]{0,3}|10000)?$")]
    #[serde(default, deserialize_with = "empty_as_none")]
    pub lines: Option<usize>,
    /// 0-7: this level and the more severe ones; empty or 7: every entry (journalctl adds
    /// no match for 0-7, so entries without a PRIORITY field are kept too). Empty is what
    /// a form's "All priorities" sends.
    #[param(value_type = Option<String>, pattern = r"^[0-7]?$")]
    #[serde(default, deserialize_with = "empty_as_none")]
    pub priority: Option<u8>,
    /// Text in the message, taken literally (all lower case: any case); at most 256
    /// characters, none of them a control character.
    #[param(max_length = 256, pattern = r"^[^\u0000-\u001f\u007f-\u009f]*$")]
    pub grep: Option<String>,
    /// A journal cursor (an entry's `cursor`): entries strictly after it.
    #[param(
        pattern = r"^(s=[0-9a-fA-F]{32};i=[0-9a-fA-F]{1,16};b=[0-9a-fA-F]{32};m=[0-9a-fA-F]{1,16};t=[0-9a-fA-F]{1,16};x=[0-9a-fA-F]{1,16})?$"
    )]
    pub after: Option<String>,
    /// An InvocationID (32 hex digits): only that run of the unit.
    #[param(pattern = r"^([0-9A-Fa-f]{32})?$")]
    pub invocation: Option<String>,
}

fn bad(param: &str, why: &str) -> AppError {
    AppError::BadRequest(format!("query parameter {param}: {why}"))
}

impl LogQuery {
    /// The number of entries asked for, within limits.
    pub fn lines_or(&self, default: usize) -> AppResult<usize> {
        match self.lines {
            None => Ok(default),
            Some(n) if (1..=MAX_LINES).contains(&n) => Ok(n),
            Some(_) => Err(bad("lines", &format!("must be 1 to {MAX_LINES}"))),
        }
    }

    fn cursor(&self) -> AppResult<Option<&str>> {
        match self.after.as_deref().filter(|c| !c.is_empty()) {
            Some(c) if !validate_cursor(c) => Err(bad("after", "not a journal cursor")),
            other => Ok(other),
        }
    }
}

/// The most units one merged view follows.
pub const MAX_UNITS: usize = 32;
/// The longest `units` parameter; more is a 400 (and keeps the URI well under the
/// server's limit however a client encodes it).
pub const MAX_UNITS_LEN: usize = 4096;

/// The `units` parameter of the merged views (`/api/v1/logs`, `/logs`); its OpenAPI
/// description is in `api::params`.
#[derive(Debug, Default, Clone, Deserialize)]
pub struct UnitsParam {
    /// Comma-separated full unit names (1-32), e.g. `shop-api.service,shop-web.service`.
    pub units: Option<String>,
}

impl UnitsParam {
    /// The named units, de-duplicated, in the order given.
    pub fn names(&self) -> AppResult<Vec<&str>> {
        if self
            .units
            .as_ref()
            .is_some_and(|u| u.chars().count() > MAX_UNITS_LEN)
        {
            return Err(bad("units", &format!("at most {MAX_UNITS_LEN} characters")));
        }
        let mut names: Vec<&str> = Vec::new();
        for name in self
            .units
            .as_deref()
            .unwrap_or("")
            .split(',')
            .map(str::trim)
        {
            if !name.is_empty() && !names.contains(&name) {
                names.push(name);
            }
        }
        if names.is_empty() || names.len() > MAX_UNITS {
            return Err(bad(
                "units",
                &format!("1 to {MAX_UNITS} comma-separated unit names"),
            ));
        }
        Ok(names)
    }
}

/// A number in a query string where an empty value means none: what a form's "All
/// priorities" option sends (`priority=`), which was a 400.
fn empty_as_none<'de, D, T>(deserializer: D) -> Result<Option<T>, D::Error>
where
    D: Deserializer<'de>,
    T: std::str::FromStr,
    T::Err: std::fmt::Display,
{
    match Option::<String>::deserialize(deserializer)?.as_deref() {
        None | Some("") => Ok(None),
        Some(text) => text.parse().map(Some).map_err(serde::de::Error::custom),
    }
}

impl Services {
    /// A validated filter for existing units (404 for unknown units, 400 for bad filters).
    pub async fn log_filter(&self, names: &[&str], q: &LogQuery) -> AppResult<LogFilter> {
        let mut units = Vec::with_capacity(names.len());
        for name in names {
            let name = checked_unit_name(name)?;
            self.systemd.find(name).await?;
            units.push(name.to_string());
        }
        // One follower serves every viewer of the same set, in whatever order it was named.
        units.sort_unstable();
        if q.priority.is_some_and(|p| p > 7) {
            return Err(bad("priority", "must be 0 (emerg) to 7 (debug)"));
        }
        let grep = q.grep.as_deref().filter(|g| !g.is_empty());
        if let Some(g) = grep
            && (g.chars().count() > MAX_GREP || g.chars().any(char::is_control))
        {
            return Err(bad(
                "grep",
                &format!("at most {MAX_GREP} printable characters"),
            ));
        }
        let invocation = q.invocation.as_deref().filter(|i| !i.is_empty());
        if let Some(i) = invocation
            && (i.len() != 32 || !i.bytes().all(|b| b.is_ascii_hexdigit()))
        {
            return Err(bad("invocation", "must be 32 hex digits"));
        }
        Ok(LogFilter {
            units,
            priority: q.priority,
            grep: grep.map(String::from),
            invocation: invocation.map(|i| i.to_ascii_lowercase()),
            since: None,
        })
    }

    /// Entries oldest first.
    pub async fn read_logs(
        &self,
        names: &[&str],
        q: &LogQuery,
        default_lines: usize,
    ) -> AppResult<Vec<LogEntry>> {
        let filter = self.log_filter(names, q).await?;
        let lines = q.lines_or(default_lines)?;
        journal::read(&filter, lines, q.cursor()?)
            .await
            // The filters were checked: journalctl failing (a corrupt journal file, killed) is ours.
            .map_err(AppError::internal)
    }

    /// Backlog then live entries. A `resume` cursor (Last-Event-ID, or `after`)
    /// continues right after it instead of sending a backlog.
    pub async fn follow_logs(
        &self,
        names: &[&str],
        q: &LogQuery,
        resume: Option<String>,
    ) -> AppResult<impl Stream<Item = StreamItem> + Send + 'static> {
        let filter = self.log_filter(names, q).await?;
        let backlog = q.lines_or(100)?;
        // `after` is checked even when Last-Event-ID (a reconnect) wins over it.
        let after = q.cursor()?;
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
        Ok(self.journal.subscribe(filter, backlog, resume))
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
    fn lines_are_bounded() {
        let q = LogQuery {
            lines: Some(0),
            ..Default::default()
        };
        assert!(q.lines_or(5).is_err());
        let q = LogQuery {
            lines: Some(MAX_LINES + 1),
            ..Default::default()
        };
        assert!(q.lines_or(5).is_err());
        assert_eq!(LogQuery::default().lines_or(5).unwrap(), 5);
    }

    #[test]
    fn units_param_is_a_short_comma_list() {
        let p = |s: &str| UnitsParam {
            units: Some(s.into()),
        };
        assert_eq!(
            p(" a.service, b.service,a.service ,").names().unwrap(),
            ["a.service", "b.service"]
        );
        assert!(p(" , ").names().is_err());
        assert!(UnitsParam::default().names().is_err());
        let many = (0..=MAX_UNITS)
            .map(|i| format!("u{i}.service"))
            .collect::<Vec<_>>()
            .join(",");
        assert!(p(&many).names().is_err());
    }

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

    #[test]
    fn empty_numbers_in_a_query_mean_none() {
        let query = |q: &str| {
            let uri: axum::http::Uri = format!("/logs?{q}").parse().unwrap();
            axum::extract::Query::<LogQuery>::try_from_uri(&uri).map(|q| (q.priority, q.lines))
        };
        assert_eq!(query("priority=&lines=&grep=x").unwrap(), (None, None));
        assert_eq!(query("priority=4&lines=20").unwrap(), (Some(4), Some(20)));
        assert!(query("priority=x").is_err());
    }
}
