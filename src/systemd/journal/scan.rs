//! Histogram and facet counts over a time range, read from the journal files with
//! sd-journal in a child process: the unitdeck binary itself, run as the hidden
//! `unitdeck journal-scan` (the request as JSON on its standard input, the counts as JSON
//! on its standard output).
//!
//! Why a child: libsystemd maps the journal files; on systemd 252 journald truncates a
//! file it archives, and a reader touching it dies of SIGBUS — the child, not the server.
//! The mapped pages stay out of the server's memory; the blocking loop off its threads;
//! a child can be killed when the client goes away or the scan takes too long. Why
//! sd-journal and not journalctl: one pass over 1,000,000 entries takes 1.7 s this way and
//! 26 s through `journalctl -o json` (bench/README.md).
//!
//! The counts equal journalctl's for the same filter: the matches are built in
//! journalctl 252's order (`match_steps`), the range is walked as journalctl walks
//! `--since`/`--until` (seek to `since`, stop at the first entry after `until`), the text
//! filter is the same PCRE2 pattern on the first MESSAGE field (`Pattern`).

use std::collections::HashMap;
use std::io::{Read, Write};
use std::process::Stdio;
use std::sync::Arc;
use std::time::{Duration, Instant};

use serde::{Deserialize, Serialize};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::process::Command;
use tokio::sync::Semaphore;

use super::args::positional_matches;
use super::entry::drain_stderr;
use super::sdjournal::{Journal, MatchStep};
use super::{FieldMatch, LogFilter, Pattern, check_filter};

/// The most frequent values reported per field.
pub const TOP_VALUES: usize = 50;
/// Distinct values counted per field; past it, new values are not counted (the field is
/// reported `capped`). Bounds the child's memory when a field is nearly unique per entry.
pub const MAX_DISTINCT: usize = 10_000;
/// Bytes of distinct values kept per field, for the same reason.
const MAX_DISTINCT_BYTES: usize = 8 * 1024 * 1024;
/// Scans running at once (the machine's cores are shared with the services it watches).
pub const MAX_SCANS: usize = 2;
/// How long a request may wait for a free scan before it is refused.
const QUEUE_WAIT: Duration = Duration::from_secs(10);
/// How long one scan may take before it is killed.
pub const SCAN_TIMEOUT: Duration = Duration::from_secs(60);
/// Close and reopen the journal when the mapped journal pages resident in the child pass
/// this: the pages of the files already read are released (17 instead of 290 MiB for
/// 1,000,000 entries, for 3 % more time; bench/README.md).
const REOPEN_RSS_BYTES: u64 = 16 * 1024 * 1024;
/// Entries between two looks at the resident memory (and the deadline).
const CHECK_EVERY: u64 = 1000;
/// The largest answer the server reads from the child.
const MAX_OUTPUT: u64 = 64 * 1024 * 1024;

/// What to count.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct ScanRequest {
    pub filter: LogFilter,
    /// µs since the epoch, both inclusive.
    pub since: u64,
    pub until: u64,
    /// Histogram buckets over [since, until]; 0 for none.
    pub buckets: usize,
    /// Fields to count values of.
    pub fields: Vec<String>,
}

/// The counts of a scan.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct ScanResult {
    /// Entries that passed the filter.
    pub total: u64,
    /// Per bucket, entries per priority 0..=7 (no or an unreadable PRIORITY counts as 6,
    /// above 7 as 7).
    pub buckets: Vec<[u64; 8]>,
    /// Bucket width in µs.
    pub bucket_us: u64,
    pub facets: Vec<FacetCount>,
    pub stats: ScanStats,
}

/// One field's most frequent values.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct FacetCount {
    pub field: String,
    /// (value, entries that have it), most frequent first, at most [`TOP_VALUES`].
    pub values: Vec<(String, u64)>,
    /// Distinct values counted.
    pub distinct: usize,
    /// More than [`MAX_DISTINCT`] values: later ones were not counted.
    pub capped: bool,
}

/// How the scan went, for the log and the benchmark.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct ScanStats {
    /// Entries read (matching the journal matches, before the text filter and exclusions).
    pub read: u64,
    /// Times the journal was closed and reopened to release mapped pages.
    pub reopens: u32,
    /// The child's peak resident memory (VmHWM), KiB.
    pub peak_rss_kib: u64,
    /// The child's CPU time (user + system), ms: on a shared machine the wall time also
    /// counts the waits for a core.
    pub cpu_ms: u64,
}

#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error, Serialize, Deserialize)]
pub enum ScanError {
    #[error("{MAX_SCANS} journal scans are running and none finished within {} s; try again", QUEUE_WAIT.as_secs())]
    Busy,
    #[error("the journal scan took longer than {} s; narrow the time range or the filter", SCAN_TIMEOUT.as_secs())]
    TimedOut,
    /// PCRE2 gave up matching the text filter (its match limit), as journalctl would.
    #[error("the text pattern: {0}")]
    Pattern(String),
    #[error("journal scan failed: {0}")]
    Failed(String),
}

/// The sd-journal matches of `filter`, step by step as journalctl 252 adds them: the boot
/// (`add_boot`), the units (`add_units`, each unit as `add_matches_for_unit` does), the
/// identifier (`add_syslog_identifier`), the priorities (`add_priorities`: none for 7),
/// then the positional matches, where `+` is a disjunction.
pub(super) fn match_steps(filter: &LogFilter) -> Vec<MatchStep> {
    use MatchStep::{Conjunction, Disjunction, Match};
    let mut steps = Vec::new();
    if let Some(boot) = &filter.boot {
        steps.extend([Match(format!("_BOOT_ID={boot}")), Conjunction]);
    }
    for unit in &filter.units {
        steps.extend([
            // the unit's own processes
            Match(format!("_SYSTEMD_UNIT={unit}")),
            Disjunction,
            // its core dumps
            Match("MESSAGE_ID=fc2e22bc6ee647b6b90729ab34a250b1".into()),
            Match("_UID=0".into()),
            Match(format!("COREDUMP_UNIT={unit}")),
            Disjunction,
            // PID 1 about it
            Match("_PID=1".into()),
            Match(format!("UNIT={unit}")),
            Disjunction,
            // other privileged daemons about it
            Match("_UID=0".into()),
            Match(format!("OBJECT_SYSTEMD_UNIT={unit}")),
        ]);
        if unit.ends_with(".slice") {
            steps.extend([Disjunction, Match(format!("_SYSTEMD_SLICE={unit}"))]);
        }
        steps.push(Disjunction);
    }
    if !filter.units.is_empty() {
        steps.push(Conjunction);
    }
    if let Some(id) = &filter.identifier {
        steps.extend([
            Match(format!("SYSLOG_IDENTIFIER={id}")),
            Disjunction,
            Conjunction,
        ]);
    }
    if let Some(p) = filter.priority.filter(|p| *p < 7) {
        steps.extend((0..=p).map(|p| Match(format!("PRIORITY={p}"))));
        steps.push(Conjunction);
    }
    steps.extend(
        positional_matches(filter)
            .into_iter()
            .map(|m| if m == "+" { Disjunction } else { Match(m) }),
    );
    steps
}

/// The histogram and facet counts, fed one entry at a time.
struct Counts {
    since: u64,
    bucket_us: u64,
    buckets: Vec<[u64; 8]>,
    fields: Vec<Vec<u8>>,
    facets: Vec<FacetMap>,
    total: u64,
}

#[derive(Default)]
struct FacetMap {
    counts: HashMap<Vec<u8>, u64>,
    bytes: usize,
    capped: bool,
}

/// Syslog priority of a PRIORITY value: unreadable → 6 (what journald assumes), above 7
/// → 7.
fn priority_of(value: Option<&[u8]>) -> usize {
    value
        .and_then(|v| std::str::from_utf8(v).ok())
        .and_then(|v| v.trim().parse::<u64>().ok())
        .map_or(6, |p| p.min(7) as usize)
}

impl Counts {
    fn new(req: &ScanRequest) -> Self {
        let span = req.until.saturating_sub(req.since).max(1);
        let n = req.buckets as u64;
        Self {
            since: req.since,
            bucket_us: if n == 0 { 0 } else { span.div_ceil(n).max(1) },
            buckets: vec![[0; 8]; req.buckets],
            fields: req.fields.iter().map(|f| f.as_bytes().to_vec()).collect(),
            facets: req.fields.iter().map(|_| FacetMap::default()).collect(),
            total: 0,
        }
    }

    /// Counts one entry at `t` with its PRIORITY and the values of the counted fields
    /// (`(field index, value)`, a field possibly more than once).
    fn add(&mut self, t: u64, priority: Option<&[u8]>, values: &[(usize, &[u8])]) {
        self.total += 1;
        if !self.buckets.is_empty() {
            // journalctl keeps an entry before `since` that the walk meets after seeking
            // (clocks that went back): it counts in the first bucket.
            let index = (t.saturating_sub(self.since) / self.bucket_us) as usize;
            let last = self.buckets.len() - 1;
            self.buckets[index.min(last)][priority_of(priority)] += 1;
        }
        for (n, &(field, value)) in values.iter().enumerate() {
            // A value the entry has twice counts once: the entry matches FIELD=VALUE once.
            if values[..n].iter().any(|&(f, v)| f == field && v == value) {
                continue;
            }
            let facet = &mut self.facets[field];
            if let Some(count) = facet.counts.get_mut(value) {
                *count += 1;
            } else if facet.counts.len() < MAX_DISTINCT
                && facet.bytes + value.len() <= MAX_DISTINCT_BYTES
            {
                facet.bytes += value.len();
                facet.counts.insert(value.to_vec(), 1);
            } else {
                facet.capped = true;
            }
        }
    }

    fn finish(self, stats: ScanStats) -> ScanResult {
        let facets = self
            .fields
            .iter()
            .zip(self.facets)
            .map(|(field, map)| {
                let distinct = map.counts.len();
                let mut values: Vec<(Vec<u8>, u64)> = map.counts.into_iter().collect();
                values.sort_unstable_by(|a, b| b.1.cmp(&a.1).then_with(|| a.0.cmp(&b.0)));
                values.truncate(TOP_VALUES);
                FacetCount {
                    field: String::from_utf8_lossy(field).into_owned(),
                    values: values
                        .into_iter()
                        .map(|(v, c)| (String::from_utf8_lossy(&v).into_owned(), c))
                        .collect(),
                    distinct,
                    capped: map.capped,
                }
            })
            .collect();
        ScanResult {
            total: self.total,
            buckets: self.buckets,
            bucket_us: self.bucket_us,
            facets,
            stats,
        }
    }
}

/// What one entry's fields say, gathered while sd-journal enumerates them (its data
/// pointers do not outlive the next call, so counted values are copied into `arena`).
struct Entry<'p> {
    pattern: Option<&'p Pattern>,
    excludes: Vec<Vec<u8>>,
    fields: Vec<Vec<u8>>,
    priority: Option<(usize, usize)>,
    /// The first MESSAGE matched the pattern (`None`: no MESSAGE yet).
    message: Option<bool>,
    excluded: bool,
    values: Vec<(usize, usize, usize)>,
    arena: Vec<u8>,
    error: Option<ScanError>,
}

impl<'p> Entry<'p> {
    fn new(pattern: Option<&'p Pattern>, excludes: &[FieldMatch], fields: &[String]) -> Self {
        Self {
            pattern,
            excludes: excludes.iter().map(|m| m.to_arg().into_bytes()).collect(),
            fields: fields
                .iter()
                .map(|f| format!("{f}=").into_bytes())
                .collect(),
            priority: None,
            message: None,
            excluded: false,
            values: Vec::new(),
            arena: Vec::new(),
            error: None,
        }
    }

    fn clear(&mut self) {
        self.priority = None;
        self.message = None;
        self.excluded = false;
        self.values.clear();
        self.arena.clear();
    }

    fn keep(&mut self, value: &[u8]) -> (usize, usize) {
        let start = self.arena.len();
        self.arena.extend_from_slice(value);
        (start, self.arena.len())
    }

    /// One `FIELD=VALUE` of the entry.
    fn field(&mut self, data: &[u8]) {
        if self.priority.is_none()
            && let Some(value) = data.strip_prefix(b"PRIORITY=")
        {
            self.priority = Some(self.keep(value));
        }
        if let Some(pattern) = self.pattern
            && self.message.is_none()
            && let Some(message) = data.strip_prefix(b"MESSAGE=")
        {
            match pattern.is_match(message) {
                Ok(matched) => self.message = Some(matched),
                Err(e) => {
                    self.message = Some(false);
                    self.error.get_or_insert(ScanError::Pattern(e.to_string()));
                }
            }
        }
        if self.excludes.iter().any(|e| e == data) {
            self.excluded = true;
        }
        for i in 0..self.fields.len() {
            if let Some(value) = data.strip_prefix(self.fields[i].as_slice()) {
                let (start, end) = self.keep(value);
                self.values.push((i, start, end));
            }
        }
    }

    /// Does the entry pass the text filter and the exclusions?
    fn passes(&self) -> bool {
        !self.excluded && (self.pattern.is_none() || self.message == Some(true))
    }

    fn count_into(&self, counts: &mut Counts, t: u64) {
        // On the stack for the usual few values: a million entries, no allocation each.
        let mut inline: [(usize, &[u8]); 16] = [(0, &[]); 16];
        let spilled: Vec<(usize, &[u8])>;
        let values = if self.values.len() <= inline.len() {
            for (slot, &(i, s, e)) in inline.iter_mut().zip(&self.values) {
                *slot = (i, &self.arena[s..e]);
            }
            &inline[..self.values.len()]
        } else {
            spilled = self
                .values
                .iter()
                .map(|&(i, s, e)| (i, &self.arena[s..e]))
                .collect();
            &spilled[..]
        };
        let priority = self.priority.map(|(s, e)| &self.arena[s..e]);
        counts.add(t, priority, values);
    }
}

/// Resident pages of mapped files (and shared memory), in bytes: `/proc/self/statm`'s
/// third field.
fn mapped_rss() -> u64 {
    let statm = std::fs::read_to_string("/proc/self/statm").unwrap_or_default();
    let pages: u64 = statm
        .split_whitespace()
        .nth(2)
        .and_then(|v| v.parse().ok())
        .unwrap_or(0);
    // SAFETY: sysconf has no preconditions.
    let page = unsafe { libc::sysconf(libc::_SC_PAGESIZE) };
    pages * u64::try_from(page).unwrap_or(4096)
}

fn cpu_ms() -> u64 {
    // SAFETY: getrusage fills the struct it is given.
    let usage = unsafe {
        let mut usage: libc::rusage = std::mem::zeroed();
        libc::getrusage(libc::RUSAGE_SELF, &mut usage);
        usage
    };
    let ms = |t: libc::timeval| t.tv_sec as u64 * 1000 + t.tv_usec as u64 / 1000;
    ms(usage.ru_utime) + ms(usage.ru_stime)
}

fn peak_rss_kib() -> u64 {
    std::fs::read_to_string("/proc/self/status")
        .unwrap_or_default()
        .lines()
        .find_map(|l| l.strip_prefix("VmHWM:"))
        .and_then(|v| v.trim().trim_end_matches("kB").trim().parse().ok())
        .unwrap_or(0)
}

/// The scan itself, in the child.
fn count(req: &ScanRequest, deadline: Instant) -> Result<ScanResult, ScanError> {
    let failed = |what: &str, e: std::io::Error| ScanError::Failed(format!("{what}: {e}"));
    check_filter(&req.filter).map_err(|e| ScanError::Failed(e.to_string()))?;
    let pattern = match req.filter.grep.as_ref().filter(|g| !g.text.is_empty()) {
        Some(g) => Some(Pattern::new(g).map_err(|e| ScanError::Pattern(e.to_string()))?),
        None => None,
    };
    let steps = match_steps(&req.filter);
    let mut counts = Counts::new(req);
    let mut entry = Entry::new(pattern.as_ref(), &req.filter.excludes, &req.fields);
    let mut stats = ScanStats::default();
    // The binary's and libraries' own pages are mapped too: only what the journal adds
    // counts.
    let baseline = mapped_rss();
    let mut journal = Journal::open(&steps).map_err(|e| failed("opening the journal", e))?;
    journal
        .seek_realtime(req.since)
        .map_err(|e| failed("seeking", e))?;
    // After a reopen the journal may already stand on the next entry to count.
    let mut positioned = false;
    loop {
        if !positioned && !journal.next().map_err(|e| failed("reading", e))? {
            break;
        }
        positioned = false;
        let t = journal.realtime().map_err(|e| failed("reading", e))?;
        if t > req.until {
            break;
        }
        stats.read += 1;
        entry.clear();
        journal
            .for_each_field(|data| entry.field(data))
            .map_err(|e| failed("reading", e))?;
        if let Some(e) = entry.error.take() {
            return Err(e);
        }
        if entry.passes() {
            entry.count_into(&mut counts, t);
        }
        if stats.read % CHECK_EVERY == 0 {
            if Instant::now() > deadline {
                return Err(ScanError::TimedOut);
            }
            if mapped_rss().saturating_sub(baseline) > REOPEN_RSS_BYTES {
                let cursor = journal.cursor().map_err(|e| failed("cursor", e))?;
                drop(journal);
                journal = Journal::open(&steps).map_err(|e| failed("reopening", e))?;
                journal
                    .seek_cursor(&cursor)
                    .map_err(|e| failed("seeking", e))?;
                stats.reopens += 1;
                if !journal.next().map_err(|e| failed("reading", e))? {
                    break;
                }
                // The entry itself (counted), or the next one if it went meanwhile.
                positioned = !journal.is_at(&cursor).map_err(|e| failed("cursor", e))?;
            }
        }
    }
    drop(journal);
    stats.peak_rss_kib = peak_rss_kib();
    stats.cpu_ms = cpu_ms();
    Ok(counts.finish(stats))
}

/// The child's side: `unitdeck journal-scan` reads a [`ScanRequest`] from standard input
/// and writes `{"Ok": ScanResult}` or `{"Err": ScanError}` to standard output.
pub fn run_child() -> std::io::Result<()> {
    let started = Instant::now();
    let mut input = Vec::new();
    let result = match std::io::stdin().take(MAX_OUTPUT).read_to_end(&mut input) {
        Err(e) => Err(ScanError::Failed(format!("reading the request: {e}"))),
        Ok(_) => match serde_json::from_slice::<ScanRequest>(&input) {
            Err(e) => Err(ScanError::Failed(format!("the request: {e}"))),
            Ok(req) => count(&req, started + SCAN_TIMEOUT),
        },
    };
    let out = serde_json::to_vec(&result).map_err(std::io::Error::other)?;
    let mut stdout = std::io::stdout().lock();
    stdout.write_all(&out)?;
    stdout.flush()
}

/// Runs scans in child processes, [`MAX_SCANS`] at a time. Cheap to clone.
#[derive(Clone)]
pub struct Scanner {
    permits: Arc<Semaphore>,
}

impl Default for Scanner {
    fn default() -> Self {
        Self {
            permits: Arc::new(Semaphore::new(MAX_SCANS)),
        }
    }
}

impl Scanner {
    /// Counts what `req` asks for. Dropping the future kills the child.
    pub async fn scan(&self, req: &ScanRequest) -> Result<ScanResult, ScanError> {
        check_filter(&req.filter).map_err(|e| ScanError::Failed(e.to_string()))?;
        let _permit = tokio::time::timeout(QUEUE_WAIT, self.permits.acquire())
            .await
            .map_err(|_| ScanError::Busy)?
            .map_err(|_| ScanError::Busy)?;
        let started = Instant::now();
        let result = tokio::time::timeout(SCAN_TIMEOUT, run_scan_child(req))
            .await
            .unwrap_or(Err(ScanError::TimedOut));
        if let Ok(r) = &result {
            tracing::debug!(
                total = r.total,
                read = r.stats.read,
                reopens = r.stats.reopens,
                peak_rss_kib = r.stats.peak_rss_kib,
                cpu_ms = r.stats.cpu_ms,
                ms = started.elapsed().as_millis() as u64,
                "journal scan"
            );
        }
        result
    }
}

async fn run_scan_child(req: &ScanRequest) -> Result<ScanResult, ScanError> {
    let failed = |e: std::io::Error| ScanError::Failed(e.to_string());
    let request = serde_json::to_vec(req).map_err(|e| ScanError::Failed(e.to_string()))?;
    // The running binary, whatever its path (and even if it was replaced on disk).
    let mut child = Command::new("/proc/self/exe")
        .arg("journal-scan")
        .env("RUST_LOG", "off")
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .kill_on_drop(true)
        .spawn()
        .map_err(failed)?;
    let mut stdin = child
        .stdin
        .take()
        .ok_or_else(|| failed(std::io::Error::other("no stdin")))?;
    let stdout = child
        .stdout
        .take()
        .ok_or_else(|| failed(std::io::Error::other("no stdout")))?;
    let stderr = child.stderr.take();
    let write = async move {
        stdin.write_all(&request).await?;
        stdin.shutdown().await
    };
    let mut output = Vec::new();
    let mut stdout = stdout.take(MAX_OUTPUT);
    let read = stdout.read_to_end(&mut output);
    let (written, read, stderr) = tokio::join!(write, read, drain_stderr(stderr));
    let status = child.wait().await.map_err(failed)?;
    if !status.success() {
        use std::os::unix::process::ExitStatusExt;
        let why = match status.signal() {
            Some(libc::SIGBUS) => "killed by SIGBUS (a journal file was cut short while it \
                was read, which journald 252 does when it archives one); try again"
                .to_string(),
            _ => format!("{status} {stderr}"),
        };
        return Err(ScanError::Failed(why));
    }
    written.and(read).map_err(failed)?;
    serde_json::from_slice::<Result<ScanResult, ScanError>>(&output)
        .map_err(|e| ScanError::Failed(format!("unreadable answer: {e}")))?
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::systemd::journal::{Case, TextFilter};

    fn request(buckets: usize, fields: &[&str]) -> ScanRequest {
        ScanRequest {
            filter: LogFilter::default(),
            since: 1_000_000,
            until: 61_000_000,
            buckets,
            fields: fields.iter().map(|f| f.to_string()).collect(),
        }
    }

    #[test]
    fn buckets_split_the_range_and_clamp_its_ends() {
        let mut c = Counts::new(&request(60, &[]));
        assert_eq!(c.bucket_us, 1_000_000);
        c.add(1_000_000, Some(b"3"), &[]);
        c.add(1_999_999, None, &[]);
        c.add(2_000_000, Some(b"9"), &[]);
        c.add(61_000_000, Some(b"junk"), &[]);
        c.add(500, Some(b"0"), &[]);
        let r = c.finish(ScanStats::default());
        assert_eq!(r.total, 5);
        assert_eq!(r.buckets[0], [1, 0, 0, 1, 0, 0, 1, 0]);
        assert_eq!(r.buckets[1][7], 1);
        assert_eq!(r.buckets[59][6], 1, "`until` itself is in the last bucket");
        // A range that does not divide evenly: the last bucket is shorter, none is lost.
        let c = Counts::new(&ScanRequest {
            until: 1_000_006,
            buckets: 4,
            ..request(4, &[])
        });
        assert_eq!(c.bucket_us, 2);
    }

    #[test]
    fn facets_count_entries_per_value_most_frequent_first() {
        let mut c = Counts::new(&request(0, &["A", "B"]));
        c.add(1, None, &[(0, b"x"), (1, b"q")]);
        c.add(1, None, &[(0, b"y"), (0, b"y"), (0, b"z")]);
        c.add(1, None, &[(0, b"y")]);
        let r = c.finish(ScanStats::default());
        assert!(r.buckets.is_empty());
        assert_eq!(r.facets[0].field, "A");
        assert_eq!(
            r.facets[0].values,
            [("y".into(), 2), ("x".into(), 1), ("z".into(), 1)]
        );
        assert_eq!(r.facets[1].values, [("q".into(), 1)]);
        assert_eq!(r.facets[0].distinct, 3);
        assert!(!r.facets[0].capped);
    }

    #[test]
    fn a_field_with_too_many_values_is_capped() {
        let mut c = Counts::new(&request(0, &["MESSAGE"]));
        for i in 0..MAX_DISTINCT + 5 {
            c.add(1, None, &[(0, format!("m{i}").as_bytes())]);
        }
        c.add(1, None, &[(0, b"m0")]);
        let r = c.finish(ScanStats::default());
        assert!(r.facets[0].capped);
        assert_eq!(r.facets[0].distinct, MAX_DISTINCT);
        assert_eq!(r.facets[0].values[0], ("m0".into(), 2));
        assert_eq!(r.facets[0].values.len(), TOP_VALUES);
    }

    #[test]
    fn entries_are_judged_on_all_their_fields() {
        let pattern = Pattern::new(&TextFilter {
            text: "boom".into(),
            regex: false,
            case: Case::Auto,
        })
        .unwrap();
        let excludes = [FieldMatch {
            field: "_COMM".into(),
            value: "sh".into(),
        }];
        let fields = ["_COMM".to_string()];
        let mut e = Entry::new(Some(&pattern), &excludes, &fields);
        let feed = |e: &mut Entry, data: &[&[u8]]| {
            e.clear();
            data.iter().for_each(|d| e.field(d));
            e.passes()
        };
        assert!(feed(
            &mut e,
            &[b"MESSAGE=a BOOM", b"_COMM=bash", b"PRIORITY=3"]
        ));
        assert_eq!(e.priority.map(|(s, t)| &e.arena[s..t]), Some(&b"3"[..]));
        assert_eq!(e.values.len(), 1);
        assert!(!feed(&mut e, &[b"MESSAGE=boom", b"_COMM=sh"]), "excluded");
        assert!(!feed(&mut e, &[b"_COMM=bash"]), "no MESSAGE: no match");
        assert!(
            !feed(&mut e, &[b"MESSAGE=quiet", b"MESSAGE=boom"]),
            "only the first MESSAGE counts"
        );
        assert!(!feed(&mut e, &[b"MESSAGE=x", b"_COMM=shell"]));
        let mut plain = Entry::new(None, &[], &[]);
        assert!(feed(&mut plain, &[b"_COMM=bash"]));
    }

    #[test]
    fn matches_are_built_like_journalctls() {
        use MatchStep::{Conjunction as C, Disjunction as D, Match as M};
        let m = |s: &str| M(s.to_string());
        let filter = LogFilter {
            units: vec!["a.service".into()],
            identifier: Some("tag".into()),
            priority: Some(1),
            boot: Some("0123456789abcdef0123456789abcdef".into()),
            invocation: Some("fedcba9876543210fedcba9876543210".into()),
            matches: vec![FieldMatch {
                field: "_COMM".into(),
                value: "sh".into(),
            }],
            ..LogFilter::default()
        };
        assert_eq!(
            match_steps(&filter),
            [
                m("_BOOT_ID=0123456789abcdef0123456789abcdef"),
                C,
                m("_SYSTEMD_UNIT=a.service"),
                D,
                m("MESSAGE_ID=fc2e22bc6ee647b6b90729ab34a250b1"),
                m("_UID=0"),
                m("COREDUMP_UNIT=a.service"),
                D,
                m("_PID=1"),
                m("UNIT=a.service"),
                D,
                m("_UID=0"),
                m("OBJECT_SYSTEMD_UNIT=a.service"),
                D,
                C,
                m("SYSLOG_IDENTIFIER=tag"),
                D,
                C,
                m("PRIORITY=0"),
                m("PRIORITY=1"),
                C,
                m("_COMM=sh"),
                m("_SYSTEMD_INVOCATION_ID=fedcba9876543210fedcba9876543210"),
                D,
                m("_COMM=sh"),
                m("INVOCATION_ID=fedcba9876543210fedcba9876543210"),
            ]
        );
        // Priority 7 is every entry: journalctl adds no match for it.
        let all = LogFilter {
            priority: Some(7),
            ..LogFilter::default()
        };
        assert!(match_steps(&all).is_empty());
        let slice = LogFilter {
            units: vec!["user.slice".into()],
            ..LogFilter::default()
        };
        assert!(match_steps(&slice).contains(&m("_SYSTEMD_SLICE=user.slice")));
    }
}
