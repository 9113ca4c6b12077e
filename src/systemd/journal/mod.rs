//! Reading, following and counting the journal.
//!
//! Entries are read through `journalctl --output=json` children (argv only, never a
//! shell), and live logs come from one `journalctl --follow` child per distinct filter,
//! shared by every viewer through a [`tokio::sync::broadcast`] channel ([`JournalHub`]).
//! Histograms and facet counts read the journal files through libsystemd's sd-journal
//! in a short-lived child process (`scan`): 15 times faster than parsing journalctl's
//! JSON (bench/README.md), and a journal file truncated under it (SIGBUS on systemd 252)
//! ends that child, not the server. Text patterns are compiled with the same PCRE2
//! library journalctl loads (`pattern`).
//!
//! Quirks of journalctl (checked against systemd 252, Debian 12) that shape this module:
//!
//! - `--grep` combined with `--lines` walks the journal *backwards* (newest first, and from
//!   the cursor backwards when a cursor is given). Tail reads therefore always pass
//!   `--reverse` (and are flipped here), and cursor reads with a pattern pass no `--lines`
//!   but stop reading (and kill the child) after enough entries.
//! - `--after-cursor=C` silently skips one entry when C does not itself match the filter
//!   (it seeks to C and steps twice). We use `--cursor=C` instead, which includes C if it
//!   matches, and drop the entry whose cursor equals C.
//! - `--follow --unit=X` with `--lines=0` (or the default 10) missed the first ~5000
//!   entries (~250 ms at 20,000/s) of a unit that had no entries yet when it started; with
//!   an explicit `--cursor=` start it missed none. Followers always start from a cursor.
//! - JSON output replaces fields longer than 4096 bytes by `null` unless `--all` is given.
//! - `--since` together with a cursor is refused.
//! - `--grep` exits with status 1 and no message when nothing matched.
//! - `--grep` is a PCRE2 pattern with "smart case": patterns without an upper-case letter
//!   match case-insensitively. A literal filter's special characters are escaped
//!   ([`literal_pattern`]): "a(" is no refused pattern, "a.b" no wildcard.
//! - `--reverse --cursor=C` walks backwards from C, C included if it matches.
//! - `--unit`, `--identifier`, `--priority`, `--boot` and positional `FIELD=VALUE`
//!   matches are ANDed; `+` between positional matches is an OR of everything on either
//!   side (so an invocation's two fields repeat the other matches, `args`).

mod args;
mod boots;
mod entry;
mod follow;
mod pattern;
mod read;
mod runs;
pub mod scan;
mod sdjournal;

pub use args::literal_pattern;
pub use boots::{Boot, list_boots};
pub use entry::format_time;
pub use follow::JournalHub;
pub use pattern::{Pattern, PatternError};
pub use read::{Start, read, sync};
pub use runs::{JournalRun, Restarted, run_entries, run_of, startups, unit_runs};

/// Which entries to show. Every value is validated ([`check_filter`]) before it reaches
/// journalctl or sd-journal.
#[derive(Debug, Clone, Default, PartialEq, Eq, Hash, serde::Serialize, serde::Deserialize)]
pub struct LogFilter {
    /// Full unit names, e.g. `foo.service`: entries of any of them (journalctl's `--unit`,
    /// which also takes systemd's and coredumps' messages about the unit). Empty: every
    /// entry.
    pub units: Vec<String>,
    /// 0..=7: keep this level and the more severe ones.
    pub priority: Option<u8>,
    /// Text (or a pattern) in the message. Empty text means none.
    pub grep: Option<TextFilter>,
    /// Invocation ID (32 hex characters): only that run of the unit.
    pub invocation: Option<String>,
    /// SYSLOG_IDENTIFIER (journalctl's `--identifier`).
    pub identifier: Option<String>,
    /// A boot ID (32 hex characters).
    pub boot: Option<String>,
    /// `FIELD=VALUE` matches: values of one field are ORed, fields ANDed (journalctl's
    /// positional matches).
    pub matches: Vec<FieldMatch>,
    /// Entries that have any of these `FIELD=VALUE` are left out (journalctl has no
    /// negative match: they are dropped after reading).
    pub excludes: Vec<FieldMatch>,
    /// µs since the epoch: entries at or after it. Tail reads and backlogs pass it to
    /// journalctl; reads from a cursor drop what is outside; live entries are newer.
    pub since: Option<u64>,
    /// µs since the epoch: entries at or before it; later live entries are not sent.
    pub until: Option<u64>,
}

/// How a text filter treats case (journalctl's `--case-sensitive`).
#[derive(
    Debug,
    Clone,
    Copy,
    Default,
    PartialEq,
    Eq,
    Hash,
    serde::Serialize,
    serde::Deserialize,
    utoipa::ToSchema,
)]
#[serde(rename_all = "lowercase")]
pub enum Case {
    /// journalctl's "smart case": case-insensitive unless the pattern has an upper-case
    /// letter (A-Z).
    #[default]
    Auto,
    Insensitive,
    Sensitive,
}

/// A filter on MESSAGE: literal text, or a PCRE2 pattern as journalctl's `--grep` takes it.
#[derive(Debug, Clone, PartialEq, Eq, Hash, serde::Serialize, serde::Deserialize)]
pub struct TextFilter {
    pub text: String,
    /// `text` is a PCRE2 pattern; otherwise it is matched literally.
    pub regex: bool,
    pub case: Case,
}

impl TextFilter {
    /// The PCRE2 pattern: `text` itself, or with its special characters escaped.
    pub fn pattern(&self) -> String {
        if self.regex {
            self.text.clone()
        } else {
            literal_pattern(&self.text)
        }
    }
}

/// `FIELD=VALUE`, a journal field and one of its values.
#[derive(Debug, Clone, PartialEq, Eq, Hash, serde::Serialize, serde::Deserialize)]
pub struct FieldMatch {
    pub field: String,
    pub value: String,
}

impl FieldMatch {
    /// `FIELD=VALUE` as journalctl and sd-journal take it.
    pub fn to_arg(&self) -> String {
        format!("{}={}", self.field, self.value)
    }
}

/// Is `name` a journal field one may match or count: `A-Z`, `0-9` and `_`, not starting
/// with a digit or with `__` (cursor, timestamps: not matchable), at most 64 characters
/// (sd-journal's `journal_field_valid`).
pub fn is_valid_field_name(name: &str) -> bool {
    (1..=64).contains(&name.len())
        && !name.starts_with("__")
        && !name.starts_with(|c: char| c.is_ascii_digit())
        && name
            .bytes()
            .all(|b| b.is_ascii_uppercase() || b.is_ascii_digit() || b == b'_')
}

/// [`is_valid_field_name`] as a regular expression, for the OpenAPI document.
pub const FIELD_NAME_PATTERN: &str = "([A-Z][A-Z0-9_]{0,63}|_[A-Z0-9][A-Z0-9_]{0,62}|_)";

/// One journal entry, as the API shows it.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize, serde::Deserialize, utoipa::ToSchema)]
pub struct LogEntry {
    /// Journal cursor: the SSE event id, and what `after`/`Last-Event-ID` resume from.
    pub cursor: String,
    /// RFC 3339, microseconds, UTC, e.g. `2026-11-28T09:13:20.123456Z`.
    pub time: String,
    /// Syslog priority 0 (emerg) ..= 7 (debug).
    pub priority: u8,
    /// SYSLOG_IDENTIFIER, else the process name.
    pub identifier: Option<String>,
    pub pid: Option<u32>,
    /// The message; invalid UTF-8 is replaced, more than 64 KiB is cut with a marker.
    pub message: String,
    /// The unit invocation the entry belongs to.
    pub invocation_id: Option<String>,
    /// The unit the entry is about (`UNIT`, e.g. systemd's "Started …", else the unit
    /// of the process that wrote it).
    pub unit: Option<String>,
}

#[derive(Debug, thiserror::Error)]
pub enum JournalError {
    #[error("could not run journalctl: {0}")]
    Spawn(std::io::Error),
    #[error("journalctl failed: {0}")]
    Failed(String),
}

/// What a live log stream yields.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum StreamItem {
    Entry(LogEntry),
    /// This viewer fell behind the shared follower by this many entries. They are not
    /// lost: the stream re-reads them from the journal, so the entries that follow
    /// continue right after the last one delivered.
    Skipped(u64),
}

/// Messages longer than this (in bytes) are cut.
pub const MAX_MESSAGE_BYTES: usize = 64 * 1024;
/// Entries per journalctl run when a stream catches up from a cursor.
const CATCH_UP_CHUNK: usize = 2000;
/// Live log streams with different filters at once (one `journalctl --follow` each;
/// viewers of the same filter share one): only many different filters reach it.
pub const MAX_FOLLOWERS: usize = 32;
/// Catch-up reads tried again after a failure before the stream ends.
const CATCH_UP_TRIES: u32 = 3;
/// Live entries buffered per follower before a slow viewer lags. 8192 is ~0.4 s at
/// 20,000 lines/s: with 1024 (~50 ms), a viewer that lagged once at that rate lagged again
/// while re-reading the gap (a 2000-entry read takes ~50 ms plus spawning journalctl), and
/// kept cycling (measured). Memory: at most this many entries per follower.
const BROADCAST_CAPACITY: usize = 8192;
/// A JSON line longer than this is skipped (with a warning) rather than buffered.
const MAX_RAW_LINE: usize = 32 * 1024 * 1024;
/// Consecutive quick deaths after which a follower gives up (its streams then end).
const MAX_QUICK_FAILURES: u32 = 5;
const JOURNALCTL: &str = "journalctl";
const OUTPUT_FIELDS: &str = "--output-fields=MESSAGE,PRIORITY,SYSLOG_IDENTIFIER,_PID,_COMM,\
_SYSTEMD_INVOCATION_ID,INVOCATION_ID,UNIT,_SYSTEMD_UNIT,__CURSOR,__REALTIME_TIMESTAMP";

/// Is this a journal cursor (`after=`, `Last-Event-ID`) as journald writes them,
/// `s=<32 hex>;i=<hex>;b=<32 hex>;m=<hex>;t=<hex>;x=<hex>` ([`CURSOR_PATTERN`])?
/// journalctl refuses other strings ("Failed to seek to cursor"), and seeks to the
/// nearest entry for well-formed ones that name none.
pub fn validate_cursor(s: &str) -> bool {
    let fields = s.split(';').collect::<Vec<_>>();
    fields.len() == CURSOR_FIELDS.len()
        && fields
            .iter()
            .zip(CURSOR_FIELDS)
            .all(|(field, (key, digits))| {
                field
                    .strip_prefix(key)
                    .and_then(|f| f.strip_prefix('='))
                    .is_some_and(|hex| {
                        digits.contains(&hex.len()) && hex.bytes().all(|b| b.is_ascii_hexdigit())
                    })
            })
}

/// The fields of a cursor, in journald's order, and how many hex digits each has.
const CURSOR_FIELDS: [(&str, std::ops::RangeInclusive<usize>); 6] = [
    ("s", 32..=32),
    ("i", 1..=16),
    ("b", 32..=32),
    ("m", 1..=16),
    ("t", 1..=16),
    ("x", 1..=16),
];

/// [`validate_cursor`] as a regular expression, for the OpenAPI document.
pub const CURSOR_PATTERN: &str = "s=[0-9a-fA-F]{32};i=[0-9a-fA-F]{1,16};b=[0-9a-fA-F]{32};\
    m=[0-9a-fA-F]{1,16};t=[0-9a-fA-F]{1,16};x=[0-9a-fA-F]{1,16}";

fn is_id128(id: &str) -> bool {
    id.len() == 32 && id.bytes().all(|b| b.is_ascii_hexdigit())
}

fn check_filter(filter: &LogFilter) -> Result<(), JournalError> {
    let bad = |what: &str| Err(JournalError::Failed(format!("invalid {what}")));
    // Full unit names, `-.slice` (the root slice) included: each goes in as
    // `--unit=NAME`, so a leading `-` is no option.
    if !filter
        .units
        .iter()
        .all(|u| super::names::is_valid_unit_name(u))
    {
        return bad("unit name");
    }
    if filter.priority.is_some_and(|p| p > 7) {
        return bad("priority");
    }
    if filter.invocation.as_deref().is_some_and(|id| !is_id128(id)) {
        return bad("invocation id");
    }
    if filter.boot.as_deref().is_some_and(|id| !is_id128(id)) {
        return bad("boot id");
    }
    // Values go in as `--identifier=V`, `--grep=V` or `FIELD=V`: one argv entry each,
    // never an option; only a NUL cannot be passed.
    let texts = filter
        .identifier
        .iter()
        .chain(filter.grep.iter().map(|g| &g.text))
        .chain(
            filter
                .matches
                .iter()
                .chain(&filter.excludes)
                .map(|m| &m.value),
        );
    if texts.into_iter().any(|t| t.contains('\0')) || filter.identifier.as_deref() == Some("") {
        return bad("text");
    }
    if !filter
        .matches
        .iter()
        .chain(&filter.excludes)
        .all(|m| is_valid_field_name(&m.field))
    {
        return bad("field name");
    }
    if let (Some(since), Some(until)) = (filter.since, filter.until)
        && since > until
    {
        return bad("time range");
    }
    Ok(())
}

#[cfg(test)]
mod tests;
