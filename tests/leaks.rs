//! Load and leaks against a real systemd: 100 SSE viewers (the events stream and the log
//! streams of three units) connect and disconnect for 15 s (60 s with
//! `UNITDECK_LONG_TESTS=1`); afterwards no journalctl is left, and unitdeck's file
//! descriptors, threads, cgroup tasks and memory are back where they were after warm-up.
//!
//! The figures are printed (run with `--nocapture`); bench/README.md records them.

mod common;

use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::{Duration, Instant};

use common::sse::SseReader;
use common::{PASSWORD, Sandbox};

const VIEWERS: usize = 100;
/// Units whose logs are streamed: a line every 50 ms each.
const TALKERS: [&str; 3] = ["talk-a.service", "talk-b.service", "talk-c.service"];
const TALK: &str = "[Service]\nExecStart=/bin/sh -c 'i=0; while :; do echo talk-$$i; i=$$((i+1)); sleep 0.05; done'\n";

fn churn_time() -> Duration {
    if std::env::var("UNITDECK_LONG_TESTS").is_ok_and(|v| v == "1") {
        Duration::from_secs(60)
    } else {
        Duration::from_secs(15)
    }
}

/// unitdeck's resource use, read inside the container.
#[derive(Debug, Clone, Copy, Default)]
struct Figures {
    /// Open file descriptors of the main process.
    fds: u64,
    /// Threads of the main process.
    threads: u64,
    /// Tasks in unitdeck's cgroup (its threads plus journalctl children): TasksCurrent,
    /// or the cgroup's `tasks` file where systemd does no task accounting.
    tasks: u64,
    /// Memory of the whole cgroup, bytes: MemoryCurrent, or where systemd has no memory
    /// controller (a cgroup v1 host, as in these containers) the sum of the RSS of the
    /// cgroup's processes.
    memory: u64,
    /// VmRSS of the main process, bytes.
    rss: u64,
    /// RssAnon of the main process (its heap and stacks, without mapped files), bytes.
    anon: u64,
    /// journalctl processes in the container.
    journalctl: u64,
}

/// Prints: fds threads tasks memory main-RSS main-RssAnon journalctl (memory in bytes).
const READ_FIGURES: &str = r#"
pid=$(systemctl show -P MainPID unitdeck.service)
cg=$(systemctl show -P ControlGroup unitdeck.service)
if [ -d /sys/fs/cgroup/systemd ]; then cg=/sys/fs/cgroup/systemd$cg; else cg=/sys/fs/cgroup$cg; fi
kib() { sed -n "s/^$1:[[:space:]]*\([0-9]*\).*/\1/p" "$2"; }
tasks=$(systemctl show -P TasksCurrent unitdeck.service)
case $tasks in ''|*[!0-9]*) tasks=$(cat "$cg/tasks" 2>/dev/null | wc -l) ;; esac
memory=$(systemctl show -P MemoryCurrent unitdeck.service)
case $memory in ''|*[!0-9]*)
    memory=0
    for p in $(cat "$cg/cgroup.procs"); do
        r=$(kib VmRSS /proc/$p/status 2>/dev/null)
        memory=$((memory + ${r:-0} * 1024))
    done ;;
esac
echo $(ls /proc/$pid/fd | wc -l) $(kib Threads /proc/$pid/status) $tasks $memory     $(($(kib VmRSS /proc/$pid/status) * 1024)) $(($(kib RssAnon /proc/$pid/status) * 1024)) \
    $(pgrep -c -x journalctl || true)
"#;

impl Figures {
    fn read(sb: &Sandbox) -> Self {
        let out = sb.sh(READ_FIGURES);
        let v: Vec<u64> = out
            .split_whitespace()
            .map(|s| s.parse().unwrap_or_else(|_| panic!("a number: {out:?}")))
            .collect();
        assert_eq!(v.len(), 7, "{out:?}");
        Self {
            fds: v[0],
            threads: v[1],
            tasks: v[2],
            memory: v[3],
            rss: v[4],
            anon: v[5],
            journalctl: v[6],
        }
    }

    fn max(self, o: Self) -> Self {
        Self {
            fds: self.fds.max(o.fds),
            threads: self.threads.max(o.threads),
            tasks: self.tasks.max(o.tasks),
            memory: self.memory.max(o.memory),
            rss: self.rss.max(o.rss),
            anon: self.anon.max(o.anon),
            journalctl: self.journalctl.max(o.journalctl),
        }
    }

    fn row(&self, what: &str) -> String {
        format!(
            "| {what:<24} | {:>4} | {:>7} | {:>5} | {:>10.1} | {:>7.1} | {:>8.1} | {:>10} |",
            self.fds,
            self.threads,
            self.tasks,
            mib(self.memory),
            mib(self.rss),
            mib(self.anon),
            self.journalctl
        )
    }
}

fn mib(bytes: u64) -> f64 {
    bytes as f64 / (1024.0 * 1024.0)
}

/// A small deterministic generator (no randomness needed beyond a spread of timings).
struct Lcg(u64);

impl Lcg {
    fn next(&mut self, below: u64) -> u64 {
        self.0 = self
            .0
            .wrapping_mul(6364136223846793005)
            .wrapping_add(1442695040888963407);
        (self.0 >> 33) % below
    }
}

#[derive(Default)]
struct Counts {
    connects: AtomicU64,
    events: AtomicU64,
    /// Requests dropped before the answer arrived.
    aborted: AtomicU64,
    failed: AtomicU64,
    /// The first few failures, for the report.
    reasons: std::sync::Mutex<Vec<String>>,
}

/// `VIEWERS` clients connecting and disconnecting until `until`: a quarter on the events
/// stream, the rest on log streams of the three units (with different backlogs). Each
/// holds a stream for 0.2-2.5 s while reading it, or leaves at once after the headers,
/// or gives up before the answer.
async fn churn(client: &reqwest::Client, base: &str, until: Instant, counts: &Arc<Counts>) {
    let mut clients = Vec::new();
    for i in 0..VIEWERS {
        let path = match i % 4 {
            0 => "/api/v1/events".to_string(),
            k => format!(
                "/api/v1/units/{}/logs/stream?lines={}",
                TALKERS[k - 1],
                [1, 5, 50][i % 3]
            ),
        };
        let (client, url, counts) = (client.clone(), format!("{base}{path}"), counts.clone());
        clients.push(tokio::spawn(async move {
            let mut rng = Lcg(i as u64 + 1);
            while Instant::now() < until {
                let mode = rng.next(10);
                let hold = Duration::from_millis(200 + rng.next(2300));
                if mode == 0 {
                    // Leave before the answer.
                    let send = client.get(&url).send();
                    let wait = Duration::from_millis(rng.next(30));
                    if tokio::time::timeout(wait, send).await.is_err() {
                        counts.aborted.fetch_add(1, Ordering::Relaxed);
                    }
                    continue;
                }
                let res = match client.get(&url).send().await {
                    Ok(r) if r.status() == 200 => r,
                    other => {
                        let why = match other {
                            Ok(r) => {
                                format!("{} {}", r.status(), r.text().await.unwrap_or_default())
                            }
                            Err(e) => format!("{e:?}"),
                        };
                        {
                            let mut reasons = counts.reasons.lock().unwrap();
                            if reasons.len() < 5 {
                                reasons.push(why);
                            }
                        }
                        counts.failed.fetch_add(1, Ordering::Relaxed);
                        tokio::time::sleep(Duration::from_millis(100)).await;
                        continue;
                    }
                };
                counts.connects.fetch_add(1, Ordering::Relaxed);
                if mode == 1 {
                    continue; // leave right after the headers
                }
                let mut sse = SseReader::new(res);
                let end = Instant::now() + hold;
                while let Some(left) = end.checked_duration_since(Instant::now()) {
                    match sse.next(left).await {
                        Some(_) => counts.events.fetch_add(1, Ordering::Relaxed),
                        None => break,
                    };
                }
            }
        }));
    }
    for c in clients {
        c.await.unwrap();
    }
}

/// Reads the figures every 2 s until `until`; returns the peak.
async fn sample_peak(sb: &Sandbox, until: Instant) -> Figures {
    let mut peak = Figures::default();
    while Instant::now() < until {
        peak = peak.max(Figures::read(sb));
        tokio::time::sleep(Duration::from_secs(2)).await;
    }
    peak
}

/// Polls until the figures satisfy `ok`; panics with the last reading.
async fn settle(sb: &Sandbox, what: &str, ok: impl Fn(&Figures) -> bool) -> Figures {
    let deadline = Instant::now() + Duration::from_secs(45);
    loop {
        let f = Figures::read(sb);
        if ok(&f) {
            return f;
        }
        assert!(Instant::now() < deadline, "{what}: still {f:?}");
        tokio::time::sleep(Duration::from_millis(500)).await;
    }
}

#[tokio::test(flavor = "multi_thread")]
async fn hundred_viewers_connecting_and_leaving_leak_nothing() {
    let sb = Sandbox::start();
    for unit in TALKERS {
        sb.add_unit(unit, TALK);
    }
    sb.sh(&format!("systemctl start {}", TALKERS.join(" ")));
    let client = reqwest::Client::builder()
        .cookie_store(true)
        .connect_timeout(Duration::from_secs(10))
        .pool_max_idle_per_host(0)
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
    let idle = Figures::read(&sb);

    // Warm-up: the same load for a few seconds fills the allocator, the database pool and
    // the runtime's threads; what they hold afterwards is the baseline.
    let warm_counts = Arc::new(Counts::default());
    churn(
        &client,
        &base,
        Instant::now() + Duration::from_secs(5),
        &warm_counts,
    )
    .await;
    settle(&sb, "warm-up followers gone", |f| f.journalctl == 0).await;
    // Idle blocking-pool threads exit after 10 s: wait for them before the baseline.
    tokio::time::sleep(Duration::from_secs(11)).await;
    let warm = Figures::read(&sb);

    let counts = Arc::new(Counts::default());
    let run = churn_time();
    let started = Instant::now();
    let until = started + run;
    let (_, peak) = tokio::join!(
        churn(&client, &base, until, &counts),
        sample_peak(&sb, until)
    );
    let churned = started.elapsed();

    // Afterwards: no follower, descriptors and tasks back, memory flat.
    let memory_limit = (warm.memory + warm.memory / 5).max(warm.memory + 8 * 1024 * 1024);
    let after = settle(&sb, "back to the baseline", |f| {
        f.journalctl == 0
            && f.fds <= warm.fds + 10
            && f.threads <= warm.threads + 2
            && f.tasks <= warm.tasks + 2
            && f.memory <= memory_limit
    })
    .await;

    let connects = counts.connects.load(Ordering::Relaxed);
    eprintln!(
        "\n{VIEWERS} viewers for {churned:.1?}: {connects} streams opened ({:.0}/s), {} events \
         read, {} requests abandoned before the answer, {} failed",
        connects as f64 / churned.as_secs_f64(),
        counts.events.load(Ordering::Relaxed),
        counts.aborted.load(Ordering::Relaxed),
        counts.failed.load(Ordering::Relaxed),
    );
    eprintln!(
        "| {:<24} | {:>4} | {:>7} | {:>5} | {:>10} | {:>7} | {:>8} | {:>10} |",
        "unitdeck", "fds", "threads", "tasks", "cgroup MiB", "RSS MiB", "anon MiB", "journalctl"
    );
    eprintln!("|{}|", ["---"; 8].join("|"));
    eprintln!("{}", idle.row("idle, before any viewer"));
    eprintln!("{}", warm.row("after warm-up (baseline)"));
    eprintln!("{}", peak.row("peak during the churn"));
    eprintln!("{}", after.row("after the churn"));

    assert_eq!(
        counts.failed.load(Ordering::Relaxed),
        0,
        "every stream request was answered 200: {:?}",
        counts.reasons.lock().unwrap()
    );
    assert!(
        connects as f64 >= VIEWERS as f64 * run.as_secs_f64() / 6.0,
        "the viewers really churned: {connects} streams"
    );
    assert_eq!(after.journalctl, 0);
}
