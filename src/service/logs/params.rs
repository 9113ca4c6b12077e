//! The query parameters of the log routes and the checks that make them filters. A bad
//! value is a 400 that names its parameter.

use serde::{Deserialize, Deserializer};
use utoipa::IntoParams;

use crate::error::{AppError, AppResult};
use crate::systemd::journal::{Case, FieldMatch, is_valid_field_name};

/// The most entries one read returns.
pub const MAX_LINES: usize = 10_000;
/// The longest `grep`, `identifier` and `match`/`exclude` value.
pub const MAX_TEXT: usize = 256;
/// The most `match` and `exclude` parameters each.
pub const MAX_FIELD_MATCHES: usize = 32;
/// The most units one merged view follows.
pub const MAX_UNITS: usize = 32;
/// The longest `units` parameter; more is a 400 (and keeps the URI well under the
/// server's limit however a client encodes it).
pub const MAX_UNITS_LEN: usize = 4096;
/// Histogram buckets: the default and the most.
pub const DEFAULT_BUCKETS: usize = 60;
pub const MAX_BUCKETS: usize = 500;
/// The fields counted when `fields` is not given.
pub const DEFAULT_FACETS: [&str; 4] = ["_SYSTEMD_UNIT", "PRIORITY", "SYSLOG_IDENTIFIER", "_COMM"];
/// The most fields one facets request counts.
pub const MAX_FACET_FIELDS: usize = 16;

pub(super) fn bad(param: &str, why: &str) -> AppError {
    AppError::BadRequest(format!("query parameter {param}: {why}"))
}

/// What selects entries, shared by every log route: reads, streams, downloads, the
/// histogram and the facets. Empty values are no filter (what a form sends).
#[derive(Debug, Default, Clone, Deserialize, IntoParams)]
#[into_params(parameter_in = Query)]
pub struct LogQuery {
    /// 0-7: this level and the more severe ones; empty or 7: every entry (journalctl adds
    /// no match for 0-7, so entries without a PRIORITY field are kept too). Empty is what
    /// a form's "All priorities" sends.
    #[param(value_type = Option<String>, pattern = r"^[0-7]?$")]
    #[serde(default, deserialize_with = "empty_as_none")]
    pub priority: Option<u8>,
    /// Text in the message, taken literally, or with `regex=true` a PCRE2 pattern as
    /// journalctl's `--grep` takes it (a pattern PCRE2 refuses is a 400); at most 256
    /// characters, none of them a control character.
    #[param(max_length = 256, pattern = r"^[^\u0000-\u001f\u007f-\u009f]*$")]
    pub grep: Option<String>,
    /// `grep` is a PCRE2 pattern (default false: literal text).
    pub regex: Option<bool>,
    /// How `grep` treats case: `auto` (the default: any case unless the text has an
    /// upper-case letter A-Z), `insensitive` or `sensitive`.
    #[param(inline)]
    pub case: Option<Case>,
    /// An InvocationID (32 hex digits): only that run of the unit.
    #[param(pattern = r"^([0-9A-Fa-f]{32})?$")]
    pub invocation: Option<String>,
    /// SYSLOG_IDENTIFIER: only entries with this identifier (journalctl's `-t`).
    #[param(max_length = 256, pattern = r"^[^\u0000-\u001f\u007f-\u009f]*$")]
    pub identifier: Option<String>,
    /// Entries at or after this time: RFC 3339 (`2026-12-06T14:10:00Z`, with a fraction
    /// and an offset if wanted), `now`, or relative to now: `-15min`, `-1h`, `-1h30min`
    /// (units `s`, `sec`, `min`, `h`, `d`, `w`). A date that does not exist is a 400.
    #[param(
        pattern = r"^(now|-([0-9]{1,9}(s|sec|min|h|d|w))+|[0-9]{4}-[0-9]{2}-[0-9]{2}T[0-9]{2}:[0-9]{2}:[0-9]{2}(\.[0-9]{1,9})?(Z|[+-][0-9]{2}:[0-9]{2}))?$"
    )]
    pub since: Option<String>,
    /// Entries at or before this time (as `since`); not before `since` (a 400).
    #[param(
        pattern = r"^(now|-([0-9]{1,9}(s|sec|min|h|d|w))+|[0-9]{4}-[0-9]{2}-[0-9]{2}T[0-9]{2}:[0-9]{2}:[0-9]{2}(\.[0-9]{1,9})?(Z|[+-][0-9]{2}:[0-9]{2}))?$"
    )]
    pub until: Option<String>,
    /// One boot: `0` the current one, `-1` the one before, ..., or a boot ID (32 hex
    /// digits) from `GET /api/v1/boots`. A boot the journal has no entries of is a 400.
    #[param(pattern = r"^(0|-[1-9][0-9]{0,3}|[0-9A-Fa-f]{32})?$")]
    pub boot: Option<String>,
}

/// Which of the selected entries a read returns.
#[derive(Debug, Default, Clone, Deserialize, IntoParams)]
#[into_params(parameter_in = Query)]
pub struct PageQuery {
    /// How many entries (the newest, the first after `after`, or the last before
    /// `before`); 1-10000. Empty: the default.
    #[param(value_type = Option<String>, pattern = r"^([1-9][0-9]{0,3}|10000)?$")]
    #[serde(default, deserialize_with = "empty_as_none")]
    pub lines: Option<usize>,
    /// A journal cursor (an entry's `cursor`): entries strictly after it.
    #[param(
        pattern = r"^(s=[0-9a-fA-F]{32};i=[0-9a-fA-F]{1,16};b=[0-9a-fA-F]{32};m=[0-9a-fA-F]{1,16};t=[0-9a-fA-F]{1,16};x=[0-9a-fA-F]{1,16})?$"
    )]
    pub after: Option<String>,
    /// A journal cursor: the entries just older than it (paging backwards); not with
    /// `after`.
    #[param(
        pattern = r"^(s=[0-9a-fA-F]{32};i=[0-9a-fA-F]{1,16};b=[0-9a-fA-F]{32};m=[0-9a-fA-F]{1,16};t=[0-9a-fA-F]{1,16};x=[0-9a-fA-F]{1,16})?$"
    )]
    pub before: Option<String>,
}

/// Where a live stream starts.
#[derive(Debug, Default, Clone, Deserialize, IntoParams)]
#[into_params(parameter_in = Query)]
pub struct StreamQuery {
    /// Entries of the backlog sent before the live ones; 0-10000, default 100. 0: only
    /// entries written from now on (as `journalctl -n 0 -f`).
    #[param(value_type = Option<String>, pattern = r"^([0-9]|[1-9][0-9]{1,3}|10000)?$")]
    #[serde(default, deserialize_with = "empty_as_none")]
    pub lines: Option<usize>,
    /// A journal cursor: every entry strictly after it, then live ones, instead of a
    /// backlog.
    #[param(
        pattern = r"^(s=[0-9a-fA-F]{32};i=[0-9a-fA-F]{1,16};b=[0-9a-fA-F]{32};m=[0-9a-fA-F]{1,16};t=[0-9a-fA-F]{1,16};x=[0-9a-fA-F]{1,16})?$"
    )]
    pub after: Option<String>,
}

/// The histogram's resolution.
#[derive(Debug, Default, Clone, Deserialize, IntoParams)]
#[into_params(parameter_in = Query)]
pub struct HistogramQuery {
    /// Buckets over the time range, 1-500 (default 60).
    #[param(value_type = Option<String>, pattern = r"^([1-9][0-9]?|[1-4][0-9]{2}|500)?$")]
    #[serde(default, deserialize_with = "empty_as_none")]
    pub buckets: Option<usize>,
}

/// The fields of the facets; its OpenAPI description is in `api::params`.
#[derive(Debug, Default, Clone, Deserialize)]
pub struct FacetsQuery {
    /// Comma-separated journal field names (default
    /// `_SYSTEMD_UNIT,PRIORITY,SYSLOG_IDENTIFIER,_COMM`).
    pub fields: Option<String>,
}

/// The `units` parameter of the merged views (`/api/v1/logs`, `/logs`); its OpenAPI
/// description is in `api::params`.
#[derive(Debug, Default, Clone, Deserialize)]
pub struct UnitsParam {
    /// Comma-separated full unit names (1-32), e.g. `shop-api.service,shop-web.service`.
    pub units: Option<String>,
}

/// `match=FIELD=VALUE` and `exclude=FIELD=VALUE`, each repeatable: read from the query's
/// pairs (a struct cannot hold a repeated key); documented in `api::params`.
#[derive(Debug, Default, Clone, PartialEq, Eq)]
pub struct FieldMatches {
    pub matches: Vec<FieldMatch>,
    pub excludes: Vec<FieldMatch>,
}

impl FieldMatches {
    /// The `match` and `exclude` pairs of a query string.
    pub fn from_pairs(pairs: &[(String, String)]) -> AppResult<Self> {
        let read = |param: &str| -> AppResult<Vec<FieldMatch>> {
            let values: Vec<&String> = pairs
                .iter()
                .filter(|(k, _)| k == param)
                .map(|(_, v)| v)
                .collect();
            if values.len() > MAX_FIELD_MATCHES {
                return Err(bad(param, &format!("at most {MAX_FIELD_MATCHES} of them")));
            }
            values.into_iter().map(|v| field_match(param, v)).collect()
        };
        Ok(Self {
            matches: read("match")?,
            excludes: read("exclude")?,
        })
    }
}

/// `FIELD=VALUE`: a journal field name, a value of at most 256 characters (any but NUL,
/// which no journal value has).
fn field_match(param: &str, text: &str) -> AppResult<FieldMatch> {
    let why = "FIELD=VALUE with a journal field name (A-Z, 0-9, _) and a value of at most \
               256 characters";
    let (field, value) = text.split_once('=').ok_or_else(|| bad(param, why))?;
    if !is_valid_field_name(field) || value.chars().count() > MAX_TEXT || value.contains('\0') {
        return Err(bad(param, why));
    }
    Ok(FieldMatch {
        field: field.to_string(),
        value: value.to_string(),
    })
}

impl UnitsParam {
    /// The named units, de-duplicated, in the order given; none without the parameter
    /// (the whole journal). Present, it names 1 to 32 units.
    pub fn names(&self) -> AppResult<Vec<&str>> {
        let Some(units) = self.units.as_deref() else {
            return Ok(Vec::new());
        };
        if units.chars().count() > MAX_UNITS_LEN {
            return Err(bad("units", &format!("at most {MAX_UNITS_LEN} characters")));
        }
        let mut names: Vec<&str> = Vec::new();
        for name in units.split(',').map(str::trim) {
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

    /// The units of a query with the parameter repeated (a form's checkboxes) or
    /// comma-separated.
    pub fn from_pairs(pairs: &[(String, String)]) -> Self {
        let units: Vec<&str> = pairs
            .iter()
            .filter(|(k, _)| k == "units")
            .map(|(_, v)| v.as_str())
            .collect();
        Self {
            units: (!units.is_empty()).then(|| units.join(",")),
        }
    }
}

impl PageQuery {
    /// The number of entries asked for, within limits.
    pub fn lines_or(&self, default: usize) -> AppResult<usize> {
        match self.lines {
            None => Ok(default),
            Some(n) if (1..=MAX_LINES).contains(&n) => Ok(n),
            Some(_) => Err(bad("lines", &format!("must be 1 to {MAX_LINES}"))),
        }
    }
}

impl StreamQuery {
    /// The backlog asked for, within limits (0: none).
    pub fn backlog(&self) -> AppResult<usize> {
        match self.lines {
            None => Ok(100),
            Some(n) if n <= MAX_LINES => Ok(n),
            Some(_) => Err(bad("lines", &format!("must be 0 to {MAX_LINES}"))),
        }
    }
}

impl HistogramQuery {
    pub fn buckets(&self) -> AppResult<usize> {
        match self.buckets {
            None => Ok(DEFAULT_BUCKETS),
            Some(n) if (1..=MAX_BUCKETS).contains(&n) => Ok(n),
            Some(_) => Err(bad("buckets", &format!("must be 1 to {MAX_BUCKETS}"))),
        }
    }
}

impl FacetsQuery {
    /// The fields to count, de-duplicated, in the order given.
    pub fn fields(&self) -> AppResult<Vec<String>> {
        let Some(list) = self.fields.as_deref() else {
            return Ok(DEFAULT_FACETS.map(String::from).to_vec());
        };
        let mut fields: Vec<String> = Vec::new();
        for field in list.split(',') {
            if !is_valid_field_name(field) {
                return Err(bad(
                    "fields",
                    &format!("{field:?} is not a journal field name (A-Z, 0-9, _)"),
                ));
            }
            if !fields.iter().any(|f| f == field) {
                fields.push(field.to_string());
            }
        }
        if fields.len() > MAX_FACET_FIELDS {
            return Err(bad("fields", &format!("at most {MAX_FACET_FIELDS} fields")));
        }
        Ok(fields)
    }
}

/// A cursor parameter: empty is none; anything else must be a journal cursor.
pub(super) fn cursor<'a>(param: &str, value: Option<&'a str>) -> AppResult<Option<&'a str>> {
    match value.filter(|c| !c.is_empty()) {
        Some(c) if !crate::systemd::journal::validate_cursor(c) => {
            Err(bad(param, "not a journal cursor"))
        }
        other => Ok(other),
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

#[cfg(test)]
mod tests {
    use super::*;

    fn pairs(q: &str) -> Vec<(String, String)> {
        let uri: axum::http::Uri = format!("/logs?{q}").parse().unwrap();
        axum::extract::Query::try_from_uri(&uri).unwrap().0
    }

    #[test]
    fn lines_are_bounded() {
        let page = |n| PageQuery {
            lines: Some(n),
            ..Default::default()
        };
        assert!(page(0).lines_or(5).is_err());
        assert!(page(MAX_LINES + 1).lines_or(5).is_err());
        assert_eq!(PageQuery::default().lines_or(5).unwrap(), 5);
        let stream = |n| StreamQuery {
            lines: Some(n),
            ..Default::default()
        };
        assert_eq!(stream(0).backlog().unwrap(), 0, "live only");
        assert!(stream(MAX_LINES + 1).backlog().is_err());
        assert_eq!(StreamQuery::default().backlog().unwrap(), 100);
    }

    #[test]
    fn units_param_is_a_short_comma_list_or_nothing() {
        let p = |s: &str| UnitsParam {
            units: Some(s.into()),
        };
        assert_eq!(
            p(" a.service, b.service,a.service ,").names().unwrap(),
            ["a.service", "b.service"]
        );
        assert!(p(" , ").names().is_err());
        assert!(
            UnitsParam::default().names().unwrap().is_empty(),
            "the whole journal"
        );
        let many = (0..=MAX_UNITS)
            .map(|i| format!("u{i}.service"))
            .collect::<Vec<_>>()
            .join(",");
        assert!(p(&many).names().is_err());
        assert_eq!(
            UnitsParam::from_pairs(&pairs("units=a.service&units=b.service&x=1")).units,
            Some("a.service,b.service".into())
        );
    }

    #[test]
    fn field_matches_are_field_equals_value() {
        let m = FieldMatches::from_pairs(&pairs(
            "match=_COMM%3Dsh&match=PRIORITY%3D3&exclude=SYSLOG_IDENTIFIER%3Da%3Db&other=x",
        ))
        .unwrap();
        assert_eq!(m.matches.len(), 2);
        assert_eq!(m.matches[0].to_arg(), "_COMM=sh");
        assert_eq!(m.excludes[0].value, "a=b", "the first = splits");
        assert_eq!(
            FieldMatches::from_pairs(&[]).unwrap(),
            FieldMatches::default()
        );
        for bad in [
            "match=nofield",
            "match=lower%3Dx",
            "match=__CURSOR%3Dx",
            "match=1ABC%3Dx",
            "exclude=%3Dx",
            "match=A%3Dx%00",
        ] {
            assert!(FieldMatches::from_pairs(&pairs(bad)).is_err(), "{bad}");
        }
        let long = format!("match=A%3D{}", "x".repeat(MAX_TEXT + 1));
        assert!(FieldMatches::from_pairs(&pairs(&long)).is_err());
        let many = vec![("exclude".to_string(), "A=x".to_string()); MAX_FIELD_MATCHES + 1];
        assert!(FieldMatches::from_pairs(&many).is_err());
    }

    #[test]
    fn buckets_and_fields_are_checked() {
        let b = |n| HistogramQuery { buckets: Some(n) }.buckets();
        assert_eq!(
            HistogramQuery::default().buckets().unwrap(),
            DEFAULT_BUCKETS
        );
        assert!(b(0).is_err() && b(501).is_err());
        assert_eq!(b(500).unwrap(), 500);
        let f = |s: &str| {
            FacetsQuery {
                fields: Some(s.into()),
            }
            .fields()
        };
        assert_eq!(FacetsQuery::default().fields().unwrap(), DEFAULT_FACETS);
        assert_eq!(f("_COMM,_COMM,PRIORITY").unwrap(), ["_COMM", "PRIORITY"]);
        for bad in ["", "_COMM,", "comm", "A B", "__CURSOR", &"A".repeat(65)] {
            assert!(f(bad).is_err(), "{bad:?}");
        }
        let many = (0..=MAX_FACET_FIELDS)
            .map(|i| format!("F{i}"))
            .collect::<Vec<_>>()
            .join(",");
        assert!(f(&many).is_err());
    }

    #[test]
    fn empty_numbers_in_a_query_mean_none() {
        let query = |q: &str| {
            let uri: axum::http::Uri = format!("/logs?{q}").parse().unwrap();
            axum::extract::Query::<LogQuery>::try_from_uri(&uri).map(|q| q.priority)
        };
        assert_eq!(query("priority=&grep=x").unwrap(), None);
        assert_eq!(query("priority=4").unwrap(), Some(4));
        assert!(query("priority=x").is_err());
        let regex = |q: &str| {
            let uri: axum::http::Uri = format!("/logs?{q}").parse().unwrap();
            axum::extract::Query::<LogQuery>::try_from_uri(&uri).map(|q| (q.regex, q.case))
        };
        assert_eq!(
            regex("regex=true&case=insensitive").unwrap(),
            (Some(true), Some(Case::Insensitive))
        );
        assert!(regex("case=loud").is_err());
    }
}
