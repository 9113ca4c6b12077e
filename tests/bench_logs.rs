//! Log streaming under a flood: a unit writes `RATE` lines a second for `SECONDS` s; one
//! viewer of `GET /api/v1/units/flood.service/logs/stream` and, side by side,
//! `journalctl -f -o json -u flood.service` (the reference) read them. Printed: lines
//! delivered per second by each, lines lost, and the lag from the entry's journal timestamp
//! to its arrival.
//!
//! A benchmark, not a test (bench/README.md records the figures):
//!
//! ```sh
//! cargo test --release --test bench_logs -- --ignored --nocapture
//! ```

mod common;

use std::process::Stdio;
use std::time::{Duration, Instant};

use common::Sandbox;
use common::sse::SseReader;
use tokio::io::{AsyncBufReadExt, BufReader};

const RATE: u64 = 20_000;
const SECONDS: u64 = 10;
const LINES: u64 = RATE * SECONDS;

/// Writes `flood-N` lines at `RATE`/s, one millisecond's batch at a time.
fn flood_script() -> String {
    let per_ms = RATE / 1000;
    format!(
        "import sys, time\n\
         t0 = time.monotonic()\n\
         for ms in range({}):\n\
         \x20   sys.stdout.write(''.join('flood-%d\\n' % (ms * {per_ms} + k) for k in range({per_ms})))\n\
         \x20   sys.stdout.flush()\n\
         \x20   d = t0 + (ms + 1) / 1000 - time.monotonic()\n\
         \x20   if d > 0: time.sleep(d)\n",
        LINES / per_ms
    )
}

const FLOOD_UNIT: &str = "[Service]\nExecStart=/usr/bin/python3 -u /etc/flood.py\n";

/// What one reader saw.
#[derive(Default)]
struct Seen {
    numbers: Vec<u64>,
    lags_us: Vec<u64>,
    first: Option<Instant>,
    last: Option<Instant>,
}

impl Seen {
    fn note(&mut self, message: &str, journal_us: u64) {
        let Some(n) = message.strip_prefix("flood-").and_then(|n| n.parse().ok()) else {
            return;
        };
        let now = Instant::now();
        self.first.get_or_insert(now);
        self.last = Some(now);
        self.numbers.push(n);
        self.lags_us.push(realtime_us().saturating_sub(journal_us));
    }

    fn report(mut self, who: &str) -> f64 {
        let received = self.numbers.len() as u64;
        self.numbers.sort_unstable();
        self.numbers.dedup();
        let unique = self.numbers.len() as u64;
        let span = match (self.first, self.last) {
            (Some(a), Some(b)) => (b - a).as_secs_f64(),
            _ => 0.0,
        };
        let rate = if span > 0.0 {
            received as f64 / span
        } else {
            0.0
        };
        self.lags_us.sort_unstable();
        let pct = |p: usize| {
            self.lags_us
                .get((self.lags_us.len() * p).div_ceil(100).saturating_sub(1))
                .map_or(0.0, |us| *us as f64 / 1000.0)
        };
        eprintln!(
            "{who}: {received} lines ({} lost, {} repeated) in {span:.2} s = {rate:.0} lines/s; \
             lag p50 {:.1} ms, p99 {:.1} ms, max {:.1} ms",
            LINES - unique,
            received - unique,
            pct(50),
            pct(99),
            pct(100)
        );
        rate
    }
}

fn realtime_us() -> u64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap()
        .as_micros() as u64
}

#[tokio::test(flavor = "multi_thread")]
#[ignore = "benchmark: cargo test --release --test bench_logs -- --ignored --nocapture"]
async fn log_streaming_under_a_flood() {
    let sb = Sandbox::start_with(&[("RUST_LOG", "unitdeck=info")]);
    // journald would keep ~32,500 lines of the flood (its burst limit, scaled by free
    // space) and drop the rest. A unit's LogRateLimitIntervalSec= reaches journald through
    // cgroup extended attributes, which this cgroup v1 container lacks: lift it globally.
    sb.write(
        "/etc/systemd/journald.conf.d/bench.conf",
        "[Journal]\nRateLimitIntervalSec=0\n",
    );
    sb.sh("systemctl restart systemd-journald");
    sb.write("/etc/flood.py", &flood_script());
    sb.add_unit("flood.service", FLOOD_UNIT);
    let api = sb.login().await;
    let until = Duration::from_secs(SECONDS + 20);

    // unitdeck: one SSE viewer, started before the flood.
    let res = api
        .get("/api/v1/units/flood.service/logs/stream?lines=1")
        .await;
    let viewer = tokio::spawn(async move {
        let mut sse = SseReader::new(res);
        let mut seen = Seen::default();
        let mut skipped = 0u64;
        let end = Instant::now() + until;
        while seen.numbers.len() < LINES as usize && Instant::now() < end {
            let Some(event) = sse.next(Duration::from_secs(15)).await else {
                break;
            };
            let v: serde_json::Value = serde_json::from_str(&event.data).unwrap();
            if event.event == "skipped" {
                skipped += v["skipped"].as_u64().unwrap_or(0);
                continue;
            }
            let time = chrono::DateTime::parse_from_rfc3339(v["time"].as_str().unwrap())
                .unwrap()
                .timestamp_micros() as u64;
            seen.note(v["message"].as_str().unwrap_or(""), time);
        }
        (seen, skipped)
    });

    // The reference: journalctl following the same unit in the container.
    let mut reference = tokio::process::Command::new("nsenter")
        .args(["-t", &sb.pid.to_string(), "-a"])
        .args([
            "journalctl",
            "-f",
            "--no-tail",
            "-o",
            "json",
            "-u",
            "flood.service",
        ])
        .stdout(Stdio::piped())
        .stderr(Stdio::null())
        .kill_on_drop(true)
        .spawn()
        .unwrap();
    let stdout = reference.stdout.take().unwrap();
    let follower = tokio::spawn(async move {
        let mut lines = BufReader::new(stdout).lines();
        let mut seen = Seen::default();
        let end = Instant::now() + until;
        while seen.numbers.len() < LINES as usize && Instant::now() < end {
            let Ok(Ok(Some(line))) =
                tokio::time::timeout(Duration::from_secs(15), lines.next_line()).await
            else {
                break;
            };
            let v: serde_json::Value = serde_json::from_str(&line).unwrap();
            let time = v["__REALTIME_TIMESTAMP"]
                .as_str()
                .and_then(|t| t.parse().ok())
                .unwrap_or(0);
            seen.note(v["MESSAGE"].as_str().unwrap_or(""), time);
        }
        seen
    });
    // Both are connected: let journalctl settle, then flood.
    tokio::time::sleep(Duration::from_secs(1)).await;
    let started = Instant::now();
    sb.sh("systemctl start flood.service");

    let (seen, skipped) = viewer.await.unwrap();
    let reference_seen = follower.await.unwrap();
    eprintln!(
        "flood: {LINES} lines at {RATE}/s for {SECONDS} s (the writer ran {:.1} s)",
        started.elapsed().as_secs_f64()
    );
    let ours = seen.report("unitdeck SSE");
    eprintln!("unitdeck told the viewer it skipped {skipped} entries (then re-read them)");
    let theirs = reference_seen.report("journalctl -f -o json");
    eprintln!(
        "in the journal afterwards: {} flood lines",
        sb.sh("journalctl -u flood.service -o cat | grep -c '^flood-' || true")
            .trim(),
    );
    eprintln!("ratio unitdeck / journalctl: {:.2}x", ours / theirs);
}
