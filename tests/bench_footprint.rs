//! unitdeck's footprint in a real systemd: the release binary's size, the time from its
//! start to the first 200 on `/healthz`, and the memory of its cgroup idle, after a
//! login, with a dashboard and a log stream open, and with 100 viewers.
//!
//! A benchmark, not a test: it prints figures (bench/README.md records them).
//!
//! ```sh
//! cargo test --release --test bench_footprint -- --ignored --nocapture
//! ```

mod common;

use std::time::{Duration, Instant};

use common::memory::UnitMemory;
use common::sse::SseReader;
use common::{PASSWORD, Sandbox};

const STARTS: usize = 10;
const VIEWERS: usize = 100;
/// Units whose logs are streamed: a line every 50 ms each.
const TALKERS: [&str; 3] = ["talk-a.service", "talk-b.service", "talk-c.service"];
const TALK: &str = "[Service]\nExecStart=/bin/sh -c 'i=0; while :; do echo talk-$$i; i=$$((i+1)); sleep 0.05; done'\n";

#[tokio::test(flavor = "multi_thread")]
#[ignore = "benchmark: cargo test --release --test bench_footprint -- --ignored --nocapture"]
async fn footprint() {
    let binary = env!("CARGO_BIN_EXE_unitdeck");
    let size = std::fs::metadata(binary).unwrap().len();
    // Built by `cargo test`, with the features dev-dependencies add to shared crates: the
    // shipped binary (`cargo build --release`) is ~0.5 MiB smaller.
    eprintln!(
        "binary {binary}: {size} bytes ({:.2} MiB, test build)",
        mib(size)
    );

    let sb = Sandbox::start_with(&[("RUST_LOG", "unitdeck=info")]);
    for unit in TALKERS {
        sb.add_unit(unit, TALK);
    }
    sb.sh(&format!("systemctl start {}", TALKERS.join(" ")));
    let units = sb.sh("systemctl list-units --all --no-legend | wc -l");
    eprintln!("{} units loaded in the container", units.trim());

    start_times(&sb).await;
    restart_times(&sb).await;
    memory(&sb).await;
}

/// `systemctl restart unitdeck` (stop, then start) with no client, and with live streams
/// open (the dashboard's rows, the events API, a log): the stop used to wait for them.
async fn restart_times(sb: &Sandbox) {
    const RESTARTS: usize = 5;
    let api = sb.login().await;
    let mut rows = Vec::new();
    for streams in [false, true] {
        let mut took = Vec::new();
        for _ in 0..RESTARTS {
            sb.sh("systemctl reset-failed unitdeck.service 2>/dev/null; true");
            let mut open = Vec::new();
            if streams {
                for path in [
                    "/ui/events?type=service",
                    "/api/v1/events",
                    "/api/v1/units/talk-a.service/logs/stream",
                ] {
                    let res = api.get(path).await;
                    assert_eq!(res.status(), 200, "{path}");
                    open.push(res);
                }
            }
            let started = Instant::now();
            sb.sh("systemctl restart unitdeck.service");
            took.push(started.elapsed());
            drop(open);
            sb.wait_healthy();
        }
        took.sort_unstable();
        rows.push((streams, took[RESTARTS / 2], took[RESTARTS - 1]));
    }
    for (streams, median, max) in &rows {
        eprintln!(
            "`systemctl restart unitdeck`, {RESTARTS} times, {}: median {:.1} ms, max {:.1} ms",
            if *streams {
                "3 live streams open"
            } else {
                "no client"
            },
            median.as_secs_f64() * 1000.0,
            max.as_secs_f64() * 1000.0
        );
    }
    eprintln!(
        "restart with streams open / without: {:.2}x",
        rows[1].1.as_secs_f64() / rows[0].1.as_secs_f64()
    );
}

/// `systemctl start unitdeck` → first 200 on `/healthz`, and → the first full answer of
/// `GET /api/v1/units` (which waits for the cache's first fill), `STARTS` times.
async fn start_times(sb: &Sandbox) {
    let client = reqwest::Client::builder()
        .pool_max_idle_per_host(0)
        .cookie_store(true)
        .timeout(Duration::from_secs(15))
        .build()
        .unwrap();
    let base = sb.base_url();
    let login = client
        .post(format!("{base}/api/v1/session"))
        .json(&serde_json::json!({ "password": PASSWORD }))
        .send()
        .await
        .unwrap();
    assert_eq!(login.status(), 200);
    let (mut healthy, mut listed, mut from_command) = (Vec::new(), Vec::new(), Vec::new());
    let mut count = 0;
    for _ in 0..STARTS {
        // Ten starts in a row would hit the unit's start rate limit.
        // A stopped unit may already be unloaded, and then has nothing to reset.
        sb.sh("systemctl stop unitdeck.service; systemctl reset-failed unitdeck.service 2>/dev/null; true");
        let issued = monotonic_us();
        sb.sh("systemctl start --no-block unitdeck.service");
        let deadline = Instant::now() + Duration::from_secs(30);
        let ready = loop {
            assert!(
                Instant::now() < deadline,
                "unitdeck did not answer /healthz"
            );
            if let Ok(res) = client.get(format!("{base}/healthz")).send().await
                && res.status() == 200
            {
                break monotonic_us();
            }
            tokio::time::sleep(Duration::from_millis(1)).await;
        };
        let units = client
            .get(format!("{base}/api/v1/units"))
            .send()
            .await
            .unwrap();
        assert_eq!(units.status(), 200);
        count = units.json::<Vec<serde_json::Value>>().await.unwrap().len();
        let full = monotonic_us();
        // nspawn gives the container no time namespace: systemd's monotonic clock is ours.
        let exec: u64 = sb
            .show("unitdeck.service", "ExecMainStartTimestampMonotonic")
            .parse()
            .unwrap();
        healthy.push(ready.saturating_sub(exec));
        listed.push(full.saturating_sub(exec));
        from_command.push(ready - issued);
    }
    let ms = |us: u64| us as f64 / 1000.0;
    for (what, mut v) in [
        ("exec → first /healthz 200", healthy),
        ("`systemctl start` → first /healthz 200", from_command),
        ("exec → first full GET /api/v1/units", listed),
    ] {
        v.sort_unstable();
        eprintln!(
            "{what}, {STARTS} starts: median {:.1} ms, max {:.1} ms",
            ms(v[STARTS / 2]),
            ms(v[STARTS - 1])
        );
    }
    eprintln!("(GET /api/v1/units listed {count} units)");
}

fn monotonic_us() -> u64 {
    let mut ts = libc::timespec {
        tv_sec: 0,
        tv_nsec: 0,
    };
    // SAFETY: clock_gettime writes into the timespec we own.
    assert_eq!(
        unsafe { libc::clock_gettime(libc::CLOCK_MONOTONIC, &mut ts) },
        0
    );
    ts.tv_sec as u64 * 1_000_000 + ts.tv_nsec as u64 / 1000
}

async fn memory(sb: &Sandbox) {
    // A fresh process, measured from its first moment.
    let meter = UnitMemory::restart_measured(sb);
    tokio::time::sleep(Duration::from_secs(3)).await;
    let mut rows = vec![("idle, just started".to_string(), reading(sb, &meter))];

    let client = reqwest::Client::builder()
        .cookie_store(true)
        .build()
        .unwrap();
    let base = sb.base_url();
    let res = client
        .post(format!("{base}/api/v1/session"))
        .json(&serde_json::json!({ "password": PASSWORD }))
        .send()
        .await
        .unwrap();
    assert_eq!(res.status(), 200);
    tokio::time::sleep(Duration::from_secs(2)).await;
    rows.push(("idle, after a login".into(), reading(sb, &meter)));

    // What one person at the panel keeps open: the dashboard page and its live rows, and
    // a unit page's log stream.
    let page = client.get(format!("{base}/")).send().await.unwrap();
    assert_eq!(page.status(), 200);
    page.text().await.unwrap();
    let one = vec![
        open(&client, &format!("{base}/ui/events?type=service")).await,
        open(
            &client,
            &format!("{base}/api/v1/units/{}/logs/stream?lines=50", TALKERS[0]),
        )
        .await,
    ];
    tokio::time::sleep(Duration::from_secs(5)).await;
    rows.push(("a dashboard and a log stream".into(), reading(sb, &meter)));
    drop(one);

    // 100 viewers held open: a quarter on the events stream, the rest on the three units'
    // log streams (three shared followers).
    meter.take_peak();
    let mut viewers = Vec::new();
    for i in 0..VIEWERS {
        let path = match i % 4 {
            0 => "/api/v1/events".to_string(),
            k => format!("/api/v1/units/{}/logs/stream?lines=50", TALKERS[k - 1]),
        };
        viewers.push(open(&client, &format!("{base}{path}")).await);
    }
    let mut sampled_peak = 0;
    for _ in 0..10 {
        tokio::time::sleep(Duration::from_secs(1)).await;
        sampled_peak = sampled_peak.max(meter.current(sb));
    }
    let mut held = reading(sb, &meter);
    held.peak = meter.take_peak().unwrap_or(sampled_peak).max(sampled_peak);
    rows.push((format!("{VIEWERS} viewers, 10 s"), held));
    let received: u64 = viewers.iter().map(|v| v.events()).sum();
    drop(viewers);
    tokio::time::sleep(Duration::from_secs(5)).await;
    rows.push(("after they left".into(), reading(sb, &meter)));

    eprintln!("{VIEWERS} viewers received {received} events in all");
    eprintln!(
        "| unitdeck | cgroup MiB | peak MiB | main RSS MiB | main RssAnon MiB | journalctl |"
    );
    eprintln!("|---|---|---|---|---|---|");
    for (what, r) in rows {
        eprintln!(
            "| {what} | {:.1} | {} | {:.1} | {:.1} | {} |",
            mib(r.cgroup),
            if r.peak > 0 {
                format!("{:.1}", mib(r.peak))
            } else {
                "".into()
            },
            mib(r.rss),
            mib(r.anon),
            r.journalctl
        );
    }
}

struct Reading {
    cgroup: u64,
    peak: u64,
    rss: u64,
    anon: u64,
    journalctl: u64,
}

fn reading(sb: &Sandbox, meter: &UnitMemory) -> Reading {
    let out = sb.sh("pid=$(systemctl show -P MainPID unitdeck.service); \
         kib() { sed -n \"s/^$1:[[:space:]]*\\([0-9]*\\).*/\\1/p\" /proc/$pid/status; }; \
         echo $(kib VmRSS) $(kib RssAnon) $(pgrep -c -x journalctl || true)");
    let v: Vec<u64> = out.split_whitespace().map(|s| s.parse().unwrap()).collect();
    Reading {
        cgroup: meter.current(sb),
        peak: 0,
        rss: v[0] * 1024,
        anon: v[1] * 1024,
        journalctl: v[2],
    }
}

/// An open SSE stream drained by a task (a viewer reads what it is sent).
struct Viewer {
    task: tokio::task::JoinHandle<()>,
    events: std::sync::Arc<std::sync::atomic::AtomicU64>,
}

impl Viewer {
    fn events(&self) -> u64 {
        self.events.load(std::sync::atomic::Ordering::Relaxed)
    }
}

impl Drop for Viewer {
    fn drop(&mut self) {
        self.task.abort();
    }
}

async fn open(client: &reqwest::Client, url: &str) -> Viewer {
    let res = client.get(url).send().await.unwrap();
    assert_eq!(res.status(), 200, "{url}");
    let events = std::sync::Arc::new(std::sync::atomic::AtomicU64::new(0));
    let counter = events.clone();
    let task = tokio::spawn(async move {
        let mut sse = SseReader::new(res);
        while sse.next(Duration::from_secs(60)).await.is_some() {
            counter.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
        }
    });
    Viewer { task, events }
}

fn mib(bytes: u64) -> f64 {
    bytes as f64 / (1024.0 * 1024.0)
}
