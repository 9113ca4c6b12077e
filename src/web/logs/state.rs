//! A log view's state as its query string: the API's filters plus what only pages have
//! (`range` presets, `mode=highlight`, `follow=off`). The explorer's whole state lives in
//! its URL; every link and fragment URL of a view is derived from it here.

use std::sync::Arc;

use serde::Deserialize;

use crate::error::{AppError, AppResult};
use crate::http::urlencode;
use crate::service::logs::{LogQuery, LogSelection, highlight_pattern};
use crate::systemd::journal::Pattern;

/// Keys that page through a view rather than choose it.
const PAGING: [&str; 3] = ["before", "after", "lines"];

/// The query string of a view, in the order given (repeated keys kept).
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct QueryState(Vec<(String, String)>);

impl QueryState {
    /// The state of a request's query: empty values and paging keys dropped.
    pub fn new(pairs: &[(String, String)]) -> Self {
        Self(
            pairs
                .iter()
                .filter(|(k, v)| !v.is_empty() && !PAGING.contains(&k.as_str()))
                .cloned()
                .collect(),
        )
    }

    pub fn pairs(&self) -> &[(String, String)] {
        &self.0
    }

    pub fn get(&self, key: &str) -> Option<&str> {
        self.0
            .iter()
            .find(|(k, _)| k == key)
            .map(|(_, v)| v.as_str())
    }

    pub fn has(&self, key: &str, value: &str) -> bool {
        self.0.iter().any(|(k, v)| k == key && v == value)
    }

    /// Without every `key`.
    pub fn without(&self, keys: &[&str]) -> Self {
        Self(
            self.0
                .iter()
                .filter(|(k, _)| !keys.contains(&k.as_str()))
                .cloned()
                .collect(),
        )
    }

    /// With `key=value` replacing any other value of `key`.
    pub fn with(&self, key: &str, value: &str) -> Self {
        let mut next = self.without(&[key]);
        next.0.push((key.to_string(), value.to_string()));
        next
    }

    /// With `key=value` added, or removed if it was there (repeatable keys).
    pub fn toggled(&self, key: &str, value: &str) -> Self {
        if self.has(key, value) {
            Self(
                self.0
                    .iter()
                    .filter(|(k, v)| !(k == key && v == value))
                    .cloned()
                    .collect(),
            )
        } else {
            let mut next = self.clone();
            next.0.push((key.to_string(), value.to_string()));
            next
        }
    }

    /// `a=1&b=2`, percent-encoded.
    pub fn query(&self) -> String {
        self.0
            .iter()
            .map(|(k, v)| format!("{}={}", urlencode(k), urlencode(v)))
            .collect::<Vec<_>>()
            .join("&")
    }

    /// `path?query` (just `path` when empty).
    pub fn url(&self, path: &str) -> String {
        let query = self.query();
        if query.is_empty() {
            path.to_string()
        } else {
            format!("{path}?{query}")
        }
    }
}

/// The page-only parameters of a log view.
#[derive(Debug, Default, Clone, Deserialize)]
pub struct ViewQuery {
    /// `15min`, `1h`, `24h`, `boot`, `prevboot` or `all`: a preset time range.
    pub range: Option<String>,
    /// `highlight`: the text marks matches instead of filtering.
    pub mode: Option<String>,
    /// `off`: no live entries.
    pub follow: Option<String>,
}

/// The preset ranges: (value of `range`, label, `since`, `boot`).
pub const RANGES: [(&str, &str, Option<&str>, Option<&str>); 6] = [
    ("15min", "15 min", Some("-15min"), None),
    ("1h", "1 h", Some("-1h"), None),
    ("24h", "24 h", Some("-24h"), None),
    ("boot", "This boot", None, Some("0")),
    ("prevboot", "Previous boot", None, Some("-1")),
    ("all", "All", None, None),
];

/// A view resolved: what to read, what to mark, whether to follow.
pub struct LogParams {
    pub sel: LogSelection,
    pub highlight: Option<Arc<Pattern>>,
    /// Live entries are shown (no `until`, no past boot, not `follow=off`).
    pub follow: bool,
    pub state: QueryState,
    /// The preset in force, if any.
    pub range: Option<&'static str>,
}

fn bad(param: &str, why: &str) -> AppError {
    AppError::BadRequest(format!("query parameter {param}: {why}"))
}

impl LogParams {
    /// The view of a query. `unit` is the unit page's unit (else `units` are read from
    /// the query); `default_range` applies when no range, time or boot is given.
    pub fn new(
        unit: Option<&str>,
        mut q: LogQuery,
        view: &ViewQuery,
        pairs: &[(String, String)],
        default_range: Option<&'static str>,
    ) -> AppResult<Self> {
        let state = QueryState::new(pairs);
        let given = |v: &Option<String>| v.as_deref().is_some_and(|v| !v.is_empty());
        let explicit = given(&q.since) || given(&q.until) || given(&q.boot);
        // An explicit time or boot (a zoom, a custom range) wins over a preset.
        let range = match view.range.as_deref().filter(|r| !r.is_empty()) {
            _ if explicit => None,
            Some(r) => Some(
                RANGES
                    .iter()
                    .find(|(name, ..)| *name == r)
                    .ok_or_else(|| bad("range", "15min, 1h, 24h, boot, prevboot or all"))?,
            ),
            None => default_range.and_then(|d| RANGES.iter().find(|(name, ..)| *name == d)),
        };
        if let Some((_, _, since, boot)) = range {
            q.since = since.map(String::from);
            q.boot = boot.map(String::from);
        }
        let highlight = match view.mode.as_deref() {
            Some("highlight") => {
                let pattern = highlight_pattern(q.grep.as_deref().unwrap_or(""), &q)?;
                q.grep = None;
                pattern.map(Arc::new)
            }
            None | Some("" | "filter") => None,
            Some(_) => return Err(bad("mode", "filter or highlight")),
        };
        let past_boot = q.boot.as_deref().is_some_and(|b| !b.is_empty() && b != "0");
        let follow = view.follow.as_deref() != Some("off") && !given(&q.until) && !past_boot;
        let sel = match unit {
            Some(name) => LogSelection::unit(name, q, pairs)?,
            None => LogSelection::from_query(q, pairs)?,
        };
        Ok(Self {
            sel,
            highlight,
            follow,
            state,
            range: range.map(|(name, ..)| *name),
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn pairs(q: &str) -> Vec<(String, String)> {
        let uri: axum::http::Uri = format!("/logs?{q}").parse().unwrap();
        axum::extract::Query::try_from_uri(&uri).unwrap().0
    }

    fn params(q: &str, default: Option<&'static str>) -> AppResult<LogParams> {
        let uri: axum::http::Uri = format!("/logs?{q}").parse().unwrap();
        let query = axum::extract::Query::<LogQuery>::try_from_uri(&uri)
            .unwrap()
            .0;
        let view = axum::extract::Query::<ViewQuery>::try_from_uri(&uri)
            .unwrap()
            .0;
        LogParams::new(None, query, &view, &pairs(q), default)
    }

    #[test]
    fn the_state_is_the_query_without_paging() {
        let s = QueryState::new(&pairs(
            "units=a.service&before=x&grep=&match=A%3D1&match=B%3D2",
        ));
        assert_eq!(s.query(), "units=a.service&match=A%3D1&match=B%3D2");
        assert_eq!(
            s.toggled("match", "A=1").query(),
            "units=a.service&match=B%3D2"
        );
        assert_eq!(
            s.toggled("exclude", "C=3").url("logs"),
            "logs?units=a.service&match=A%3D1&match=B%3D2&exclude=C%3D3"
        );
        assert_eq!(s.with("units", "b.service").get("units"), Some("b.service"));
        assert_eq!(QueryState::default().url("logs"), "logs");
    }

    #[test]
    fn ranges_modes_and_follow() {
        let p = params("", Some("1h")).unwrap();
        assert_eq!(p.range, Some("1h"));
        assert_eq!(p.sel.query.since.as_deref(), Some("-1h"));
        assert!(p.follow);
        let p = params("since=-2h", Some("1h")).unwrap();
        assert_eq!((p.range, p.sel.query.since.as_deref()), (None, Some("-2h")));
        let p = params("range=prevboot", Some("1h")).unwrap();
        assert_eq!(p.sel.query.boot.as_deref(), Some("-1"));
        assert!(!p.follow, "a past boot has no live entries");
        let p = params("range=prevboot&since=-2h", Some("1h")).unwrap();
        assert_eq!(
            p.sel.query.since.as_deref(),
            Some("-2h"),
            "explicit times win"
        );
        assert_eq!((p.range, p.sel.query.boot), (None, None));
        assert!(!params("until=now", None).unwrap().follow);
        assert!(!params("follow=off", None).unwrap().follow);
        let p = params("grep=Boom&mode=highlight", None).unwrap();
        assert!(p.sel.query.grep.is_none() && p.highlight.is_some());
        let p = params("grep=boom", None).unwrap();
        assert!(p.sel.query.grep.is_some() && p.highlight.is_none());
        assert!(params("range=week", None).is_err());
        assert!(params("mode=loud", None).is_err());
        assert!(params("grep=a(&regex=true&mode=highlight", None).is_err());
    }
}
