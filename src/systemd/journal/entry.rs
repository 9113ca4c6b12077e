//! journalctl's JSON lines: parsing entries, ordering cursors, reading bounded lines.

use serde::Deserialize;
use serde_json::Value;
use tokio::io::{AsyncBufRead, AsyncBufReadExt, AsyncRead, AsyncReadExt};

use super::{FieldMatch, LogEntry, MAX_MESSAGE_BYTES, MAX_RAW_LINE};

#[derive(Deserialize)]
pub(super) struct RawEntry {
    #[serde(rename = "__CURSOR")]
    pub(super) cursor: Option<Value>,
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

pub(super) fn first_text(v: Option<Value>) -> Option<String> {
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

/// A time as RFC 3339 with microseconds, UTC.
pub fn format_time(micros: u64) -> String {
    i64::try_from(micros)
        .ok()
        .and_then(chrono::DateTime::from_timestamp_micros)
        .unwrap_or_default()
        .to_rfc3339_opts(chrono::SecondsFormat::Micros, true)
}

/// One line of `journalctl --output=json` → an entry (`None`: not an entry, e.g. no cursor).
pub(super) fn parse_entry(line: &[u8]) -> Option<LogEntry> {
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

/// Does the JSON line have one of `excludes` among its values (any value of a field that
/// appears several times)?
pub(super) fn is_excluded(line: &[u8], excludes: &[FieldMatch]) -> bool {
    if excludes.is_empty() {
        return false;
    }
    let Ok(fields) = serde_json::from_slice::<serde_json::Map<String, Value>>(line) else {
        return false;
    };
    excludes.iter().any(|m| {
        field_values(fields.get(&m.field).cloned())
            .iter()
            .any(|v| v == m.value.as_bytes())
    })
}

/// Where an entry sits in the journal, from its cursor
/// `s=<seqnum id>;i=<seqnum hex>;b=<boot>;m=<monotonic hex>;t=<realtime hex>;x=<hash>`.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub(super) struct CursorPos {
    seqnum_id: Option<u128>,
    seqnum: Option<u64>,
    pub(super) realtime: Option<u64>,
}

impl CursorPos {
    pub(super) fn parse(cursor: &str) -> Self {
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
    pub(super) fn is_after(&self, other: &CursorPos) -> bool {
        match (self.seqnum_id, other.seqnum_id, self.seqnum, other.seqnum) {
            (Some(a), Some(b), Some(x), Some(y)) if a == b => x > y,
            _ => match (self.realtime, other.realtime) {
                (Some(x), Some(y)) => x >= y,
                _ => true,
            },
        }
    }
}

/// Reads newline-separated lines of bounded size into a reused buffer.
pub(super) struct LineReader<R> {
    inner: R,
    buf: Vec<u8>,
    max: usize,
    excludes: Vec<FieldMatch>,
}

pub(super) enum Line {
    /// A line is in `buf`.
    Complete,
    /// A line longer than the limit ([`MAX_RAW_LINE`]) was skipped; its length.
    Oversized(usize),
}

impl<R: AsyncBufRead + Unpin> LineReader<R> {
    pub(super) fn new(inner: R) -> Self {
        LineReader {
            inner,
            buf: Vec::new(),
            max: MAX_RAW_LINE,
            excludes: Vec::new(),
        }
    }

    /// Skips entries that have one of these `FIELD=VALUE`s.
    pub(super) fn excluding(mut self, excludes: &[FieldMatch]) -> Self {
        self.excludes = excludes.to_vec();
        self
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

    /// The next entry; `None` at end of output. Unparsable or oversized lines, and
    /// excluded entries, are skipped.
    pub(super) async fn next_entry(&mut self) -> std::io::Result<Option<LogEntry>> {
        loop {
            match self.next_line().await? {
                None => return Ok(None),
                Some(Line::Oversized(n)) => {
                    tracing::warn!(bytes = n, "skipping an oversized journal entry");
                }
                Some(Line::Complete) => {
                    if is_excluded(&self.buf, &self.excludes) {
                        continue;
                    }
                    if let Some(entry) = parse_entry(&self.buf) {
                        return Ok(Some(entry));
                    }
                }
            }
        }
    }
}

/// The first 4 KiB of a child's stderr (the rest is drained and dropped).
pub(super) async fn drain_stderr(stderr: Option<impl AsyncRead + Unpin>) -> String {
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

#[cfg(test)]
mod tests {
    use tokio::io::BufReader;

    use super::*;
    use crate::systemd::journal::tests::CURSOR;
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
}
