//! Reading and following the journal through `journalctl --output=json`.
//!
//! No libsystemd binding: every read is a `journalctl` child process (argv only, never a
//! shell), and live logs come from one `journalctl --follow` child per distinct filter,
//! shared by every viewer through a [`tokio::sync::broadcast`] channel ([`JournalHub`]).
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
//! - `--grep` is a PCRE2 pattern with "smart case": all-lowercase patterns match
//!   case-insensitively. The filter is text (API.md), so its special characters are
//!   escaped ([`literal_pattern`]): "a(" is no refused pattern, "a.b" no wildcard.

use std::collections::{HashMap, VecDeque};
use std::process::Stdio;
use std::sync::atomic::{AtomicU64, AtomicUsize, Ordering};
use std::sync::{Arc, Mutex, MutexGuard, Weak};
use std::time::{Duration, Instant};

use futures_util::Stream;
use serde::Deserialize;
use serde_json::Value;
use tokio::io::{AsyncBufRead, AsyncBufReadExt, AsyncRead, AsyncReadExt, BufReader};
use tokio::process::{Child, Command};
use tokio::sync::{broadcast, oneshot, watch};

/// Which entries to show. `unit` must already be a validated full unit name.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct LogFilter {
    /// Full unit names, e.g. `foo.service`: entries of any of them.
    pub units: Vec<String>,
    /// 0..=7: keep this level and the more severe ones.
    pub priority: Option<u8>,
    /// Text in the message (all lower case: any case). Empty means none.
    pub grep: Option<String>,
    /// Invocation ID (32 hex characters): only that run of the unit.
    pub invocation: Option<String>,
    /// Anything journalctl's `--since=` accepts. Applies to tail reads and backlogs only:
    /// reads after a cursor and live entries ignore it.
    pub since: Option<String>,
}

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

fn check_filter(filter: &LogFilter) -> Result<(), JournalError> {
    let bad = |what: &str| Err(JournalError::Failed(format!("invalid {what}")));
    // Full unit names, `-.slice` (the root slice) included: each goes in as
    // `--unit=NAME`, so a leading `-` is no option.
    if filter.units.is_empty()
        || !filter
            .units
            .iter()
            .all(|u| super::names::is_valid_unit_name(u))
    {
        return bad("unit name");
    }
    if filter.priority.is_some_and(|p| p > 7) {
        return bad("priority");
    }
    if let Some(id) = &filter.invocation
        && !(id.len() == 32 && id.bytes().all(|b| b.is_ascii_hexdigit()))
    {
        return bad("invocation id");
    }
    Ok(())
}

// ---------------------------------------------------------------------------------------
// journalctl arguments

/// Where a journalctl run starts.
#[derive(Debug, Clone, Copy)]
enum Mode<'a> {
    /// The last `n` matching entries (printed newest first: `--reverse`).
    Tail(usize),
    /// Entries from cursor `c` on (`c` itself included if it matches), at most `n`
    /// (`None`: no `--lines`, the caller stops reading).
    From(&'a str, Option<usize>),
    /// Follow from cursor `c` (included if it matches), or from the very start.
    Follow(Option<&'a str>),
}

/// `text` as a PCRE2 pattern matching it literally: its special characters escaped.
pub fn literal_pattern(text: &str) -> String {
    let mut pattern = String::with_capacity(text.len() + 8);
    for c in text.chars() {
        if "\\^$.|?*+()[]{}".contains(c) {
            pattern.push('\\');
        }
        pattern.push(c);
    }
    pattern
}

fn build_args(filter: &LogFilter, mode: Mode<'_>) -> Vec<String> {
    let mut args: Vec<String> = vec![
        "--no-pager".into(),
        "--quiet".into(),
        "--all".into(),
        "--output=json".into(),
        OUTPUT_FIELDS.into(),
    ];
    args.extend(filter.units.iter().map(|u| format!("--unit={u}")));
    if let Some(p) = filter.priority {
        args.push(format!("--priority={p}"));
    }
    if let Some(g) = filter.grep.as_deref().filter(|g| !g.is_empty()) {
        args.push(format!("--grep={}", literal_pattern(g)));
    }
    match mode {
        Mode::Tail(n) => {
            if let Some(s) = &filter.since {
                args.push(format!("--since={s}"));
            }
            args.push("--reverse".into());
            args.push(format!("--lines={n}"));
        }
        Mode::From(cursor, lines) => {
            // journalctl refuses --since together with a cursor; the cursor wins.
            args.push(format!("--cursor={cursor}"));
            if let Some(n) = lines {
                args.push(format!("--lines={n}"));
            }
        }
        Mode::Follow(from) => {
            args.push("--follow".into());
            match from {
                Some(cursor) => args.push(format!("--cursor={cursor}")),
                None => args.push("--no-tail".into()),
            }
        }
    }
    // Field matches last: `A + B` is ORed, and the whole group ANDed with --unit etc.
    if let Some(id) = &filter.invocation {
        args.push(format!("_SYSTEMD_INVOCATION_ID={id}"));
        args.push("+".into());
        args.push(format!("INVOCATION_ID={id}"));
    }
    args
}

fn spawn_journalctl(args: &[String]) -> Result<Child, JournalError> {
    Command::new(JOURNALCTL)
        .args(args)
        .env("SYSTEMD_COLORS", "0")
        .env("SYSTEMD_PAGER", "")
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .kill_on_drop(true)
        .spawn()
        .map_err(JournalError::Spawn)
}

// ---------------------------------------------------------------------------------------
// Parsing

#[derive(Deserialize)]
struct RawEntry {
    #[serde(rename = "__CURSOR")]
    cursor: Option<Value>,
    #[serde(rename = "__REALTIME_TIMESTAMP")]
    realtime: Option<Value>,
    #[serde(rename = "MESSAGE")]
    message: Option<Value>,
    #[serde(rename = "PRIORITY")]
    priority: Option<Value>,
    #[serde(rename = "SYSLOG_IDENTIFIER")]
    identifier: Option<Value>,
    #[serde(rename = "_COMM")]
    comm: Option<Value>,
    #[serde(rename = "_PID")]
    pid: Option<Value>,
    #[serde(rename = "_SYSTEMD_INVOCATION_ID")]
    invocation: Option<Value>,
    #[serde(rename = "INVOCATION_ID")]
    object_invocation: Option<Value>,
    #[serde(rename = "UNIT")]
    object_unit: Option<Value>,
    #[serde(rename = "_SYSTEMD_UNIT")]
    unit: Option<Value>,
}

/// A journal field value as bytes: a string, or an array of byte values (non-UTF-8 data).
fn value_bytes(v: Value) -> Option<Vec<u8>> {
    match v {
        Value::String(s) => Some(s.into_bytes()),
        Value::Array(items) if items.iter().all(Value::is_number) => Some(
            items
                .iter()
                .map(|n| n.as_u64().map_or(b'?', |n| u8::try_from(n).unwrap_or(b'?')))
                .collect(),
        ),
        Value::Number(n) => Some(n.to_string().into_bytes()),
        _ => None,
    }
}

/// A field that appears several times in one entry comes as an array of values.
fn field_values(v: Option<Value>) -> Vec<Vec<u8>> {
    match v {
        None | Some(Value::Null) => Vec::new(),
        Some(Value::Array(items)) if !items.is_empty() && !items.iter().all(Value::is_number) => {
            items.into_iter().filter_map(value_bytes).collect()
        }
        Some(v) => value_bytes(v).into_iter().collect(),
    }
}

fn first_text(v: Option<Value>) -> Option<String> {
    field_values(v)
        .into_iter()
        .next()
        .map(|b| String::from_utf8_lossy(&b).into_owned())
}

/// UTF-8 (lossy) text of a message, cut at [`MAX_MESSAGE_BYTES`] with a marker.
fn message_text(bytes: Vec<u8>) -> String {
    if bytes.len() <= MAX_MESSAGE_BYTES {
        return String::from_utf8(bytes)
            .unwrap_or_else(|e| String::from_utf8_lossy(e.as_bytes()).into_owned());
    }
    let mut cut = MAX_MESSAGE_BYTES;
    // Do not split a UTF-8 sequence (at most 3 continuation bytes).
    for _ in 0..3 {
        if bytes[cut] & 0xC0 == 0x80 {
            cut -= 1;
        }
    }
    let mut text = String::from_utf8_lossy(&bytes[..cut]).into_owned();
    text.push_str(&format!("… [truncated {} bytes]", bytes.len() - cut));
    text
}

fn format_time(micros: u64) -> String {
    i64::try_from(micros)
        .ok()
        .and_then(chrono::DateTime::from_timestamp_micros)
        .unwrap_or_default()
        .to_rfc3339_opts(chrono::SecondsFormat::Micros, true)
}

/// One line of `journalctl --output=json` → an entry (`None`: not an entry, e.g. no cursor).
fn parse_entry(line: &[u8]) -> Option<LogEntry> {
    let raw: RawEntry = match serde_json::from_slice(line) {
        Ok(raw) => raw,
        Err(e) => {
            tracing::debug!(error = %e, "unparsable journalctl line");
            return None;
        }
    };
    let cursor = first_text(raw.cursor)?;
    let micros = first_text(raw.realtime)
        .and_then(|t| t.trim().parse::<u64>().ok())
        .or_else(|| CursorPos::parse(&cursor).realtime);
    let messages = field_values(raw.message);
    let message = match messages.len() {
        0 => String::new(),
        1 => message_text(messages.into_iter().next().unwrap_or_default()),
        _ => message_text(messages.join(&b'\n')),
    };
    let priority = first_text(raw.priority)
        .and_then(|p| p.trim().parse::<u8>().ok())
        .map_or(6, |p| p.min(7));
    let identifier = first_text(raw.identifier).or_else(|| first_text(raw.comm));
    let pid = first_text(raw.pid).and_then(|p| p.trim().parse::<u32>().ok());
    let invocation_id = first_text(raw.invocation).or_else(|| first_text(raw.object_invocation));
    let unit = first_text(raw.object_unit).or_else(|| first_text(raw.unit));
    Some(LogEntry {
        cursor,
        time: format_time(micros.unwrap_or(0)),
        priority,
        identifier,
        pid,
        message,
        invocation_id,
        unit,
    })
}

/// Where an entry sits in the journal, from its cursor
/// `s=<seqnum id>;i=<seqnum hex>;b=<boot>;m=<monotonic hex>;t=<realtime hex>;x=<hash>`.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
struct CursorPos {
    seqnum_id: Option<u128>,
    seqnum: Option<u64>,
    realtime: Option<u64>,
}

impl CursorPos {
    fn parse(cursor: &str) -> Self {
        let mut pos = CursorPos::default();
        for part in cursor.split(';') {
            match part.split_once('=') {
                Some(("s", v)) => pos.seqnum_id = u128::from_str_radix(v, 16).ok(),
                Some(("i", v)) => pos.seqnum = u64::from_str_radix(v, 16).ok(),
                Some(("t", v)) => pos.realtime = u64::from_str_radix(v, 16).ok(),
                _ => {}
            }
        }
        pos
    }

    /// Is `self` later in the journal than `other`? journald numbers every entry it writes
    /// (in all its files) from one counter, identified by the seqnum id; journalctl
    /// interleaves files in that order, so within one seqnum id `i=` orders entries
    /// exactly — unlike timestamps, which can be equal or go backwards. Across seqnum ids
    /// (journald started over with no journal files) only the wall clock is left. When
    /// nothing can be compared, the entry counts as new: a rare duplicate beats a loss.
    fn is_after(&self, other: &CursorPos) -> bool {
        match (self.seqnum_id, other.seqnum_id, self.seqnum, other.seqnum) {
            (Some(a), Some(b), Some(x), Some(y)) if a == b => x > y,
            _ => match (self.realtime, other.realtime) {
                (Some(x), Some(y)) => x >= y,
                _ => true,
            },
        }
    }
}

// ---------------------------------------------------------------------------------------
// Reading journalctl's stdout

/// Reads newline-separated lines of bounded size into a reused buffer.
struct LineReader<R> {
    inner: R,
    buf: Vec<u8>,
    max: usize,
}

enum Line {
    /// A line is in `buf`.
    Complete,
    /// A line longer than the limit ([`MAX_RAW_LINE`]) was skipped; its length.
    Oversized(usize),
}

impl<R: AsyncBufRead + Unpin> LineReader<R> {
    fn new(inner: R) -> Self {
        LineReader {
            inner,
            buf: Vec::new(),
            max: MAX_RAW_LINE,
        }
    }

    /// The next line (without `\n`) into `self.buf`; `None` at end of output.
    async fn next_line(&mut self) -> std::io::Result<Option<Line>> {
        self.buf.clear();
        let mut oversized = 0usize;
        loop {
            let avail = self.inner.fill_buf().await?;
            if avail.is_empty() {
                return Ok(match (oversized, self.buf.is_empty()) {
                    (0, true) => None,
                    (0, false) => Some(Line::Complete),
                    (n, _) => Some(Line::Oversized(n)),
                });
            }
            let newline = avail.iter().position(|&b| b == b'\n');
            let chunk = &avail[..newline.unwrap_or(avail.len())];
            if oversized == 0 && self.buf.len() + chunk.len() <= self.max {
                self.buf.extend_from_slice(chunk);
            } else {
                oversized += self.buf.len() + chunk.len();
                self.buf.clear();
            }
            let used = newline.map_or(avail.len(), |i| i + 1);
            self.inner.consume(used);
            if newline.is_some() {
                return Ok(Some(match oversized {
                    0 => Line::Complete,
                    n => Line::Oversized(n),
                }));
            }
        }
    }

    /// The next entry; `None` at end of output. Unparsable or oversized lines are skipped.
    async fn next_entry(&mut self) -> std::io::Result<Option<LogEntry>> {
        loop {
            match self.next_line().await? {
                None => return Ok(None),
                Some(Line::Oversized(n)) => {
                    tracing::warn!(bytes = n, "skipping an oversized journal entry");
                }
                Some(Line::Complete) => {
                    if let Some(entry) = parse_entry(&self.buf) {
                        return Ok(Some(entry));
                    }
                }
            }
        }
    }
}

/// The first 4 KiB of a child's stderr (the rest is drained and dropped).
async fn drain_stderr(stderr: Option<impl AsyncRead + Unpin>) -> String {
    let Some(mut stderr) = stderr else {
        return String::new();
    };
    let mut kept = Vec::new();
    let mut chunk = [0u8; 4096];
    while let Ok(n @ 1..) = stderr.read(&mut chunk).await {
        let room = 4096usize.saturating_sub(kept.len());
        kept.extend_from_slice(&chunk[..n.min(room)]);
    }
    String::from_utf8_lossy(&kept).trim().to_owned()
}

// ---------------------------------------------------------------------------------------
// One-shot reads

/// Entries of `filter`, oldest first.
///
/// - Without `after_cursor`: the last `lines` matching entries (since `filter.since`).
/// - With `after_cursor`: the first `lines` matching entries strictly after that cursor
///   (`filter.since` is ignored: journalctl refuses both).
///
/// An invalid `since` or cursor gives [`JournalError::Failed`] with journalctl's message. Dropping the future kills the journalctl child.
pub async fn read(
    filter: &LogFilter,
    lines: usize,
    after_cursor: Option<&str>,
) -> Result<Vec<LogEntry>, JournalError> {
    check_filter(filter)?;
    if lines == 0 {
        return Ok(Vec::new());
    }
    let grep = filter.grep.as_deref().is_some_and(|g| !g.is_empty());
    let (args, want) = match after_cursor {
        None => (build_args(filter, Mode::Tail(lines)), lines),
        Some(cursor) => {
            if !validate_cursor(cursor) {
                return Err(JournalError::Failed("invalid cursor".into()));
            }
            // +1: the cursor's own entry comes first when it matches, and is dropped.
            let want = lines.saturating_add(1);
            // --grep with --lines walks backwards: stop reading ourselves instead.
            let limit = (!grep).then_some(want);
            (build_args(filter, Mode::From(cursor, limit)), want)
        }
    };
    let mut child = spawn_journalctl(&args)?;
    let stderr = child.stderr.take();
    let stdout = child
        .stdout
        .take()
        .ok_or_else(|| JournalError::Failed("no stdout".into()))?;
    let collect = async {
        let mut reader = LineReader::new(BufReader::with_capacity(64 * 1024, stdout));
        let mut entries = Vec::new();
        let mut killed = false;
        loop {
            match reader.next_entry().await {
                Ok(Some(entry)) => {
                    entries.push(entry);
                    if entries.len() >= want {
                        killed = child.start_kill().is_ok();
                        break;
                    }
                }
                Ok(None) => break,
                Err(e) => return Err(JournalError::Failed(format!("reading output: {e}"))),
            }
        }
        let status = child.wait().await.map_err(JournalError::Spawn)?;
        Ok((entries, status, killed))
    };
    let (result, stderr) = tokio::join!(collect, drain_stderr(stderr));
    let (mut entries, status, killed) = result?;
    // Nothing matched the pattern: journalctl exits 1, like grep, without a message.
    let no_match = grep && status.code() == Some(1) && stderr.is_empty();
    if !(status.success() || killed || no_match) {
        let msg = if stderr.is_empty() {
            status.to_string()
        } else {
            stderr
        };
        return Err(JournalError::Failed(msg));
    }
    match after_cursor {
        None => entries.reverse(),
        Some(cursor) => {
            if entries.first().is_some_and(|e| e.cursor == cursor) {
                entries.remove(0);
            }
            entries.truncate(lines);
        }
    }
    Ok(entries)
}

/// The cursor of the newest entry in the whole journal, if any.
async fn journal_tail_cursor() -> Result<Option<String>, JournalError> {
    let args = [
        "--no-pager",
        "--quiet",
        "--output=json",
        "--output-fields=__CURSOR",
        "--reverse",
        "--lines=1",
    ]
    .map(String::from);
    let output = spawn_journalctl(&args)?
        .wait_with_output()
        .await
        .map_err(JournalError::Spawn)?;
    if !output.status.success() {
        let stderr = String::from_utf8_lossy(&output.stderr).trim().to_owned();
        return Err(JournalError::Failed(stderr));
    }
    Ok(output
        .stdout
        .split(|&b| b == b'\n')
        .find_map(|line| serde_json::from_slice::<RawEntry>(line).ok())
        .and_then(|raw| first_text(raw.cursor)))
}

// ---------------------------------------------------------------------------------------
// Live following, shared per filter

/// A live entry with its parsed position, shared by all viewers of a follower.
#[derive(Debug)]
struct Live {
    entry: LogEntry,
    pos: CursorPos,
}

/// One `journalctl --follow` per distinct filter (ignoring `since`), shared by all viewers
/// and stopped when the last viewer's stream is dropped. Cheap to clone; one per app.
/// [`JournalHub::subscribe`] must be called inside a Tokio runtime.
#[derive(Clone, Default)]
pub struct JournalHub {
    inner: Arc<HubInner>,
}

#[derive(Default)]
struct HubInner {
    followers: Mutex<HashMap<LogFilter, Slot>>,
    /// journalctl --follow children alive (spawned and not yet reaped).
    children: Arc<AtomicUsize>,
    next_id: AtomicU64,
}

struct Slot {
    id: u64,
    viewers: usize,
    tx: broadcast::Sender<Arc<Live>>,
    ready: watch::Receiver<bool>,
    /// Dropping it (with the slot) tells the follower task to kill its child and exit.
    _stop: oneshot::Sender<()>,
}

impl HubInner {
    fn lock(&self) -> MutexGuard<'_, HashMap<LogFilter, Slot>> {
        self.followers.lock().unwrap_or_else(|e| e.into_inner())
    }
}

/// Held by each stream: the last one dropped stops the follower.
struct ViewerGuard {
    hub: Arc<HubInner>,
    key: LogFilter,
    id: u64,
}

impl Drop for ViewerGuard {
    fn drop(&mut self) {
        let mut followers = self.hub.lock();
        if let Some(slot) = followers.get_mut(&self.key)
            && slot.id == self.id
        {
            slot.viewers -= 1;
            if slot.viewers == 0 {
                followers.remove(&self.key);
            }
        }
    }
}

/// The follower a filter's live entries come from: they do not depend on `since`, so
/// one serves all of them.
fn follower_key(filter: &LogFilter) -> LogFilter {
    LogFilter {
        since: None,
        ..filter.clone()
    }
}

impl JournalHub {
    pub fn new() -> Self {
        Self::default()
    }

    /// Number of `journalctl --follow` processes alive right now (a stopped follower's
    /// child counts until it has been killed and reaped).
    pub fn follower_count(&self) -> usize {
        self.inner.children.load(Ordering::SeqCst)
    }

    /// A live stream of `filter`'s entries.
    ///
    /// With `resume_after`: every entry strictly after that cursor, then live ones (a
    /// cursor journalctl rejects falls back to the backlog). Otherwise the last `backlog`
    /// entries as of the first poll, then live ones; with `backlog == 0`, every entry
    /// written after this call. Nothing is lost or repeated at the seam, nor when the
    /// viewer lags ([`StreamItem::Skipped`]) or the follower process dies. The stream ends
    /// only if journalctl keeps failing. Dropping the stream leaves; the last viewer to
    /// leave stops the follower.
    pub fn subscribe(
        &self,
        filter: LogFilter,
        backlog: usize,
        resume_after: Option<String>,
    ) -> impl Stream<Item = StreamItem> + Send + 'static {
        let mut state = Viewer {
            filter,
            rx: None,
            ready: None,
            guard: None,
            pending: VecDeque::new(),
            last_cursor: None,
            origin: None,
            boundary: None,
            resume_unchecked: false,
            catch_up_failures: 0,
            phase: Phase::Done,
        };
        match check_filter(&state.filter) {
            Err(e) => tracing::warn!(error = %e, "log stream not started"),
            Ok(()) => {
                let resume = resume_after.filter(|c| validate_cursor(c));
                let (rx, ready, guard) = self.join(&state.filter);
                state.rx = Some(rx);
                state.ready = Some(ready);
                state.guard = Some(guard);
                state.resume_unchecked = resume.is_some();
                state.phase = match resume {
                    Some(cursor) => {
                        state.boundary = Some(CursorPos::parse(&cursor));
                        state.last_cursor = Some(cursor);
                        Phase::CatchUp { backlog }
                    }
                    None => Phase::Backlog(backlog),
                };
            }
        }
        futures_util::stream::unfold(state, |mut state| async move {
            let item = state.next().await?;
            Some((item, state))
        })
    }

    /// Register a viewer: subscribe to the follower of `filter`, starting it if needed.
    /// Whether a stream of `filter` can start: it shares a running follower, or there
    /// is room for one more ([`MAX_FOLLOWERS`]).
    pub fn has_room_for(&self, filter: &LogFilter) -> bool {
        let followers = self.inner.lock();
        followers.contains_key(&follower_key(filter)) || followers.len() < MAX_FOLLOWERS
    }

    fn join(
        &self,
        filter: &LogFilter,
    ) -> (
        broadcast::Receiver<Arc<Live>>,
        watch::Receiver<bool>,
        ViewerGuard,
    ) {
        let key = follower_key(filter);
        let mut followers = self.inner.lock();
        let slot = followers.entry(key.clone()).or_insert_with(|| {
            let id = self.inner.next_id.fetch_add(1, Ordering::Relaxed);
            let (tx, _) = broadcast::channel(BROADCAST_CAPACITY);
            let (ready_tx, ready) = watch::channel(false);
            let (stop, stop_rx) = oneshot::channel();
            let follower = Follower {
                key: key.clone(),
                id,
                tx: tx.clone(),
                ready: ready_tx,
                stop: stop_rx,
                hub: Arc::downgrade(&self.inner),
                children: self.inner.children.clone(),
            };
            tokio::spawn(follower.run());
            Slot {
                id,
                viewers: 0,
                tx,
                ready,
                _stop: stop,
            }
        });
        slot.viewers += 1;
        let rx = slot.tx.subscribe();
        let ready = slot.ready.clone();
        let guard = ViewerGuard {
            hub: self.inner.clone(),
            key,
            id: slot.id,
        };
        (rx, ready, guard)
    }
}

/// Counts a live follower child; decrements when dropped (after reaping, or if the task
/// is torn down, when kill_on_drop kills it).
struct ChildCount(Arc<AtomicUsize>);

impl ChildCount {
    fn new(counter: Arc<AtomicUsize>) -> Self {
        counter.fetch_add(1, Ordering::SeqCst);
        ChildCount(counter)
    }
}

impl Drop for ChildCount {
    fn drop(&mut self) {
        self.0.fetch_sub(1, Ordering::SeqCst);
    }
}

struct Follower {
    key: LogFilter,
    id: u64,
    tx: broadcast::Sender<Arc<Live>>,
    ready: watch::Sender<bool>,
    stop: oneshot::Receiver<()>,
    hub: Weak<HubInner>,
    children: Arc<AtomicUsize>,
}

enum RunEnd {
    Stopped,
    Exited { produced: bool },
}

impl Follower {
    /// Seam design: the follower starts at the journal's tail cursor as of *before* it
    /// reports ready, and every viewer subscribes to the broadcast before it waits for
    /// ready and reads its backlog/catch-up. So for each viewer, the catch-up read covers
    /// everything up to a point at or after the follower's start, and the broadcast
    /// covers everything the follower sends after the viewer subscribed; whatever the
    /// follower sent before that is already in the journal, hence in the catch-up read.
    /// The overlap is removed by position (see [`CursorPos::is_after`]). After a crash the
    /// child restarts from the last cursor it sent, so the follower itself has no gaps.
    async fn run(mut self) {
        let start = tokio::select! {
            _ = &mut self.stop => return,
            tail = journal_tail_cursor() => tail,
        };
        let mut from = match start {
            Ok(cursor) => cursor,
            Err(e) => {
                tracing::warn!(units = ?self.key.units, error = %e, "journal follower cannot start");
                self.give_up();
                return;
            }
        };
        self.ready.send_replace(true);
        let mut quick_failures = 0u32;
        loop {
            let started = Instant::now();
            let end = match spawn_journalctl(&build_args(&self.key, Mode::Follow(from.as_deref())))
            {
                Ok(child) => self.pump(child, &mut from).await,
                Err(e) => {
                    tracing::warn!(units = ?self.key.units, error = %e, "journal follower spawn failed");
                    RunEnd::Exited { produced: false }
                }
            };
            let produced = match end {
                RunEnd::Stopped => return,
                RunEnd::Exited { produced } => produced,
            };
            if produced || started.elapsed() > Duration::from_secs(5) {
                quick_failures = 0;
            } else {
                quick_failures += 1;
            }
            if quick_failures >= MAX_QUICK_FAILURES {
                tracing::warn!(units = ?self.key.units, "journal follower keeps failing; giving up");
                self.give_up();
                return;
            }
            let backoff = Duration::from_millis(100 << quick_failures.min(5));
            tokio::select! {
                _ = &mut self.stop => return,
                _ = tokio::time::sleep(backoff) => {}
            }
        }
    }

    /// Broadcast the child's entries until it exits or we are told to stop; then kill and
    /// reap it. `from` tracks the last cursor sent (the restart point).
    async fn pump(&mut self, mut child: Child, from: &mut Option<String>) -> RunEnd {
        let count = ChildCount::new(self.children.clone());
        let stderr = tokio::spawn(drain_stderr(child.stderr.take()));
        let mut reader = child
            .stdout
            .take()
            .map(|out| LineReader::new(BufReader::with_capacity(64 * 1024, out)));
        // `--cursor=C` repeats C's own entry if it matches the filter: skip it.
        let mut skip = from.clone();
        let mut produced = false;
        let stopped = loop {
            let Some(reader) = reader.as_mut() else {
                break false;
            };
            tokio::select! {
                biased;
                _ = &mut self.stop => break true,
                next = reader.next_entry() => match next {
                    Ok(Some(entry)) => {
                        if skip.take().is_some_and(|c| c == entry.cursor) {
                            continue;
                        }
                        produced = true;
                        *from = Some(entry.cursor.clone());
                        let pos = CursorPos::parse(&entry.cursor);
                        // No receivers is fine: viewers may all be between joins.
                        let _ = self.tx.send(Arc::new(Live { entry, pos }));
                    }
                    Ok(None) => break false,
                    Err(e) => {
                        tracing::warn!(units = ?self.key.units, error = %e, "reading journal follower");
                        break false;
                    }
                },
            }
        };
        let _ = child.start_kill();
        let status = child.wait().await;
        drop(count);
        if stopped {
            stderr.abort();
            return RunEnd::Stopped;
        }
        let stderr = stderr.await.unwrap_or_default();
        tracing::warn!(
            units = ?self.key.units, status = ?status, stderr = %stderr,
            "journal follower exited; restarting from its last cursor"
        );
        RunEnd::Exited { produced }
    }

    /// Remove our slot so that the broadcast closes and the viewers' streams end.
    fn give_up(&self) {
        self.ready.send_replace(true);
        if let Some(hub) = self.hub.upgrade() {
            let mut followers = hub.lock();
            if followers.get(&self.key).is_some_and(|s| s.id == self.id) {
                followers.remove(&self.key);
            }
        }
    }
}

enum Phase {
    /// Read the last `n` entries, then go live.
    Backlog(usize),
    /// Read everything after `last_cursor` (in chunks), then go live. `backlog` is the
    /// fallback if an unchecked client cursor is rejected.
    CatchUp {
        backlog: usize,
    },
    Live,
    Done,
}

/// The state of one viewer's stream.
struct Viewer {
    filter: LogFilter,
    rx: Option<broadcast::Receiver<Arc<Live>>>,
    ready: Option<watch::Receiver<bool>>,
    guard: Option<ViewerGuard>,
    pending: VecDeque<StreamItem>,
    /// Cursor of the last entry delivered (or the resume cursor).
    last_cursor: Option<String>,
    /// Without backlog: the newest entry when the stream started (not sent).
    origin: Option<String>,
    /// Live entries at or before this position were (or will be) delivered by a read.
    boundary: Option<CursorPos>,
    /// `last_cursor` came from the client and journalctl has not accepted it yet.
    resume_unchecked: bool,
    /// Catch-up reads that failed in a row.
    catch_up_failures: u32,
    phase: Phase,
}

impl Viewer {
    async fn next(&mut self) -> Option<StreamItem> {
        loop {
            if let Some(item) = self.pending.pop_front() {
                return Some(item);
            }
            match self.phase {
                Phase::Done => {
                    self.rx = None;
                    self.guard = None;
                    return None;
                }
                Phase::Backlog(n) => {
                    self.wait_ready().await;
                    // With no backlog, still read the newest entry (without sending it):
                    // the position to catch up from should this viewer lag before it has
                    // received anything. Everything broadcast since subscribe() is sent.
                    match read(&self.filter, n.max(1), None).await {
                        Ok(mut entries) if n == 0 => {
                            self.origin = entries.pop().map(|e| e.cursor);
                        }
                        Ok(entries) => self.push_read(entries),
                        Err(e) => tracing::warn!(error = %e, "log backlog read failed"),
                    }
                    self.phase = Phase::Live;
                }
                Phase::CatchUp { backlog } => {
                    self.wait_ready().await;
                    let Some(after) = self.last_cursor.clone() else {
                        self.phase = Phase::Live;
                        continue;
                    };
                    match read(&self.filter, CATCH_UP_CHUNK, Some(&after)).await {
                        Ok(entries) => {
                            self.resume_unchecked = false;
                            self.catch_up_failures = 0;
                            let more = entries.len() == CATCH_UP_CHUNK;
                            if entries.is_empty() {
                                // Everything up to the cursor was delivered already.
                                self.boundary = Some(CursorPos::parse(&after));
                            }
                            self.push_read(entries);
                            if !more {
                                self.phase = Phase::Live;
                            }
                        }
                        Err(e) if self.resume_unchecked => {
                            tracing::info!(error = %e, "cannot resume after that cursor; sending the backlog");
                            self.resume_unchecked = false;
                            self.last_cursor = None;
                            self.boundary = None;
                            self.phase = Phase::Backlog(backlog);
                        }
                        // Going live now would skip what the read missed, silently: try
                        // again, then end the stream, whose client resumes from the last
                        // entry it got (Last-Event-ID) once journalctl works again.
                        Err(e) if self.catch_up_failures < CATCH_UP_TRIES => {
                            self.catch_up_failures += 1;
                            tracing::warn!(error = %e, "log catch-up read failed; trying again");
                            tokio::time::sleep(Duration::from_millis(
                                250 * u64::from(self.catch_up_failures),
                            ))
                            .await;
                        }
                        Err(e) => {
                            tracing::warn!(error = %e, "log catch-up reads keep failing; ending the stream");
                            self.phase = Phase::Done;
                        }
                    }
                }
                Phase::Live => {
                    let Some(rx) = self.rx.as_mut() else {
                        self.phase = Phase::Done;
                        continue;
                    };
                    match rx.recv().await {
                        Ok(live) => {
                            if self.boundary.is_some_and(|b| !live.pos.is_after(&b))
                                || self.last_cursor.as_deref() == Some(live.entry.cursor.as_str())
                            {
                                continue;
                            }
                            self.last_cursor = Some(live.entry.cursor.clone());
                            return Some(StreamItem::Entry(live.entry.clone()));
                        }
                        Err(broadcast::error::RecvError::Lagged(n)) => {
                            self.pending.push_back(StreamItem::Skipped(n));
                            if self.last_cursor.is_none() {
                                self.last_cursor = self.origin.take();
                            }
                            if self.last_cursor.is_some() {
                                self.phase = Phase::CatchUp { backlog: 0 };
                            }
                        }
                        Err(broadcast::error::RecvError::Closed) => self.phase = Phase::Done,
                    }
                }
            }
        }
    }

    async fn wait_ready(&mut self) {
        if let Some(ready) = self.ready.as_mut() {
            let _ = ready.wait_for(|r| *r).await;
        }
        self.ready = None;
    }

    /// Queue entries from a read and move the live boundary to the last of them.
    fn push_read(&mut self, entries: Vec<LogEntry>) {
        if let Some(last) = entries.last() {
            self.boundary = Some(CursorPos::parse(&last.cursor));
            self.last_cursor = Some(last.cursor.clone());
        }
        self.pending
            .extend(entries.into_iter().map(StreamItem::Entry));
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const CURSOR: &str = "s=7ae8dbdf89fa4e67b34961f708e2cd24;i=ca;b=b5a7169e314b4dec9fd47955771ce375;m=f485dcd;t=661531d9a1133;x=501148b9228078c3";

    fn line(fields: &str) -> Vec<u8> {
        format!(r#"{{"__CURSOR":"{CURSOR}","__REALTIME_TIMESTAMP":"1795859467079987"{fields}}}"#)
            .into_bytes()
    }

    #[test]
    fn parses_a_full_entry() {
        let e = parse_entry(&line(
            r#","MESSAGE":"hello","PRIORITY":"3","SYSLOG_IDENTIFIER":"sh","_COMM":"dash","_PID":"54","_SYSTEMD_INVOCATION_ID":"0fa83c77af2c48d2981d21c42034cc16","_BOOT_ID":"x""#,
        ))
        .unwrap();
        assert_eq!(e.cursor, CURSOR);
        assert_eq!(e.time, "2026-11-28T09:51:07.079987Z");
        assert_eq!(e.priority, 3);
        assert_eq!(e.identifier.as_deref(), Some("sh"));
        assert_eq!(e.pid, Some(54));
        assert_eq!(e.message, "hello");
        assert_eq!(
            e.invocation_id.as_deref(),
            Some("0fa83c77af2c48d2981d21c42034cc16")
        );
    }

    #[test]
    fn missing_fields_get_defaults() {
        let e = parse_entry(&line("")).unwrap();
        assert_eq!(e.message, "");
        assert_eq!(e.priority, 6);
        assert_eq!(e.identifier, None);
        assert_eq!(e.pid, None);
        assert_eq!(e.invocation_id, None);
        let e = parse_entry(&line(r#","MESSAGE":null,"PRIORITY":null,"_COMM":"x""#)).unwrap();
        assert_eq!((e.message.as_str(), e.priority), ("", 6));
        assert_eq!(e.identifier.as_deref(), Some("x"), "falls back to _COMM");
    }

    #[test]
    fn no_cursor_or_garbage_is_not_an_entry() {
        assert!(parse_entry(br#"{"MESSAGE":"x"}"#).is_none());
        assert!(parse_entry(b"-- No entries --").is_none());
        assert!(parse_entry(b"").is_none());
    }

    #[test]
    fn byte_array_messages_are_lossy_utf8() {
        let e = parse_entry(&line(r#","MESSAGE":[1,98,105,110,255]"#)).unwrap();
        assert_eq!(e.message, "\u{1}bin\u{FFFD}");
        let e = parse_entry(&line(r#","MESSAGE":[104,195,169]"#)).unwrap();
        assert_eq!(e.message, "hé");
    }

    #[test]
    fn repeated_fields_come_as_arrays() {
        let e = parse_entry(&line(
            r#","MESSAGE":["a",[98,255]],"PRIORITY":["4","5"],"_PID":["7","8"]"#,
        ))
        .unwrap();
        assert_eq!(e.message, "a\nb\u{FFFD}");
        assert_eq!(e.priority, 4);
        assert_eq!(e.pid, Some(7));
    }

    #[test]
    fn object_invocation_id_is_used_for_pid1_messages() {
        let e = parse_entry(&line(
            r#","INVOCATION_ID":"0fa83c77af2c48d2981d21c42034cc16""#,
        ))
        .unwrap();
        assert_eq!(
            e.invocation_id.as_deref(),
            Some("0fa83c77af2c48d2981d21c42034cc16")
        );
    }

    #[test]
    fn odd_priorities_and_pids() {
        let e = parse_entry(&line(r#","PRIORITY":"9","_PID":"x""#)).unwrap();
        assert_eq!((e.priority, e.pid), (7, None));
        let e = parse_entry(&line(r#","PRIORITY":"junk""#)).unwrap();
        assert_eq!(e.priority, 6);
    }

    #[test]
    fn huge_messages_are_truncated_not_dropped() {
        let big = "b".repeat(100_000);
        let e = parse_entry(&line(&format!(r#","MESSAGE":"{big}""#))).unwrap();
        assert!(e.message.starts_with("bbbb"));
        let marker = format!("… [truncated {} bytes]", 100_000 - MAX_MESSAGE_BYTES);
        assert!(
            e.message.ends_with(&marker),
            "{}",
            &e.message[e.message.len() - 40..]
        );
        assert_eq!(e.message.len(), MAX_MESSAGE_BYTES + marker.len());
        // Exactly at the limit: untouched.
        let e = parse_entry(&line(&format!(
            r#","MESSAGE":"{}""#,
            "c".repeat(MAX_MESSAGE_BYTES)
        )))
        .unwrap();
        assert_eq!(e.message.len(), MAX_MESSAGE_BYTES);
        // A multi-byte character straddling the limit is not split.
        let text = format!("{}é{}", "a".repeat(MAX_MESSAGE_BYTES - 1), "z".repeat(10));
        let e = parse_entry(&line(&format!(r#","MESSAGE":"{text}""#))).unwrap();
        assert!(e.message.starts_with(&"a".repeat(MAX_MESSAGE_BYTES - 1)));
        assert!(
            e.message.ends_with("… [truncated 12 bytes]"),
            "{}",
            &e.message[e.message.len() - 30..]
        );
        assert!(!e.message.contains('\u{FFFD}'));
        // Huge byte arrays too.
        let bytes = vec!["255"; 70_000].join(",");
        let e = parse_entry(&line(&format!(r#","MESSAGE":[{bytes}]"#))).unwrap();
        assert!(e.message.ends_with(&format!(
            "… [truncated {} bytes]",
            70_000 - MAX_MESSAGE_BYTES
        )));
    }

    #[test]
    fn time_falls_back_to_the_cursor() {
        let raw = format!(r#"{{"__CURSOR":"{CURSOR}","MESSAGE":"x"}}"#);
        let e = parse_entry(raw.as_bytes()).unwrap();
        assert_eq!(e.time, format_time(0x661531d9a1133));
        assert_eq!(format_time(0), "1970-01-01T00:00:00.000000Z");
    }

    #[test]
    fn cursor_positions_order_entries() {
        let a = CursorPos::parse(CURSOR);
        assert_eq!(a.seqnum, Some(0xca));
        assert_eq!(a.realtime, Some(0x661531d9a1133));
        let b = CursorPos::parse(&CURSOR.replace("i=ca", "i=cb"));
        assert!(b.is_after(&a));
        assert!(!a.is_after(&b));
        assert!(!a.is_after(&a));
        // Another seqnum id: the wall clock decides.
        let c = CursorPos::parse(
            &CURSOR
                .replace("s=7ae8", "s=0000")
                .replace("i=ca", "i=1")
                .replace("t=6615", "t=6616"),
        );
        assert!(c.is_after(&a));
        assert!(!a.is_after(&c));
        assert!(CursorPos::parse("garbage").is_after(&a));
    }

    #[test]
    fn cursor_validation() {
        assert!(validate_cursor(CURSOR));
        let pattern = regex::Regex::new(&format!("^{CURSOR_PATTERN}$")).unwrap();
        assert!(pattern.is_match(CURSOR));
        for bad in [
            "",
            "s=1; i=2",
            "s=1\ni=2",
            "s=é",
            "network.target",
            &"a".repeat(512),
            &CURSOR.replace(";i=ca;", ";i=;"),
            &CURSOR.replace(";i=ca;", ";i=10000000000000000;"),
            &CURSOR.replace(";x=", ";y="),
            &format!("{CURSOR};"),
            &CURSOR.replace("s=7ae8", "s=7ae"),
        ] {
            assert!(!validate_cursor(bad), "{bad:?}");
            assert!(!pattern.is_match(bad), "{bad:?}");
        }
    }

    fn filter() -> LogFilter {
        LogFilter {
            units: vec!["foo.service".into()],
            priority: Some(4),
            grep: Some("a (b)".into()),
            invocation: Some("0fa83c77af2c48d2981d21c42034cc16".into()),
            since: Some("-1h".into()),
        }
    }

    #[test]
    fn text_filters_are_literal_patterns() {
        assert_eq!(literal_pattern("a.b"), "a\\.b");
        assert_eq!(
            literal_pattern(r"(x)|[y]{2}^$*+?\"),
            r"\(x\)\|\[y\]\{2\}\^\$\*\+\?\\"
        );
        assert_eq!(literal_pattern("Ünïcode ok"), "Ünïcode ok");
    }

    #[test]
    fn arguments_are_separate_argv_entries() {
        let args = build_args(&filter(), Mode::Tail(10));
        let tail: Vec<&str> = args.iter().skip(5).map(String::as_str).collect();
        assert_eq!(
            tail,
            [
                "--unit=foo.service",
                "--priority=4",
                "--grep=a \\(b\\)",
                "--since=-1h",
                "--reverse",
                "--lines=10",
                "_SYSTEMD_INVOCATION_ID=0fa83c77af2c48d2981d21c42034cc16",
                "+",
                "INVOCATION_ID=0fa83c77af2c48d2981d21c42034cc16",
            ]
        );
        assert!(args.contains(&"--all".to_string()) && args.contains(&"--output=json".to_string()));
        let two = LogFilter {
            units: vec!["a.service".into(), "b.service".into()],
            ..filter()
        };
        let args = build_args(&two, Mode::Follow(None));
        assert!(args.contains(&"--unit=a.service".to_string()));
        assert!(args.contains(&"--unit=b.service".to_string()));
        let args = build_args(&filter(), Mode::From("s=1;i=2", Some(5)));
        assert!(args.contains(&"--cursor=s=1;i=2".to_string()));
        assert!(
            !args.iter().any(|a| a.starts_with("--since")),
            "journalctl refuses both"
        );
        assert!(args.contains(&"--lines=5".to_string()));
        let args = build_args(&filter(), Mode::Follow(Some("s=1;i=2")));
        assert!(args.contains(&"--follow".to_string()));
        assert!(
            !args
                .iter()
                .any(|a| a.starts_with("--since") || a.starts_with("--lines"))
        );
        let args = build_args(&filter(), Mode::Follow(None));
        assert!(args.contains(&"--no-tail".to_string()));
        let plain = LogFilter {
            grep: Some(String::new()),
            priority: None,
            invocation: None,
            since: None,
            ..filter()
        };
        let args = build_args(&plain, Mode::Tail(1));
        assert!(
            !args
                .iter()
                .any(|a| a.starts_with("--grep") || a.starts_with("--priority") || a == "+")
        );
    }

    #[test]
    fn filters_are_checked() {
        assert!(check_filter(&filter()).is_ok());
        assert!(
            check_filter(&LogFilter {
                units: vec!["-.slice".into()],
                ..filter()
            })
            .is_ok()
        );
        assert!(
            check_filter(&LogFilter {
                priority: Some(8),
                ..filter()
            })
            .is_err()
        );
        assert!(
            check_filter(&LogFilter {
                invocation: Some("xyz".into()),
                ..filter()
            })
            .is_err()
        );
        assert!(
            check_filter(&LogFilter {
                units: vec!["--all".into()],
                ..filter()
            })
            .is_err()
        );
        assert!(
            check_filter(&LogFilter {
                units: vec![String::new()],
                ..filter()
            })
            .is_err()
        );
    }

    #[tokio::test]
    async fn line_reader_handles_partial_and_oversized_lines() {
        let data = b"one\ntwo-is-too-long\nthree\nfour".to_vec();
        let mut r = LineReader::new(BufReader::with_capacity(4, &data[..]));
        r.max = 8;
        assert!(matches!(r.next_line().await.unwrap(), Some(Line::Complete)));
        assert_eq!(r.buf, b"one");
        assert!(matches!(
            r.next_line().await.unwrap(),
            Some(Line::Oversized(15))
        ));
        assert!(matches!(r.next_line().await.unwrap(), Some(Line::Complete)));
        assert_eq!(r.buf, b"three");
        assert!(matches!(r.next_line().await.unwrap(), Some(Line::Complete)));
        assert_eq!(r.buf, b"four", "last line without a newline");
        assert!(r.next_line().await.unwrap().is_none());
    }

    #[tokio::test]
    async fn invalid_filters_end_the_stream_without_a_follower() {
        use futures_util::StreamExt;
        let hub = JournalHub::new();
        let bad = LogFilter {
            priority: Some(9),
            ..filter()
        };
        let items: Vec<_> = hub.subscribe(bad, 10, None).collect().await;
        assert!(items.is_empty());
        assert_eq!(hub.follower_count(), 0);
        assert!(hub.inner.lock().is_empty());
    }
}
