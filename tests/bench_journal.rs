//! The journal explorer's counts on a big journal (issue 18): 1,000,000 entries over 24 h
//! from 50 units, written with their own timestamps through `systemd-journal-remote` into
//! the persistent journal of a test container. Histogram + facets of the whole range and
//! of one unit, through unitdeck (the explorer's one-scan summary, and the two API calls
//! side by side), timed, with unitdeck's memory while they run; next to them, in the same
//! run, `journalctl -o json` of the same range read and counted by a simple program (this
//! one), and `journalctl -F` of the four fields.
//!
//! A benchmark, not a test (bench/README.md records the figures); root, and
//! systemd-journal-remote (installed with apt-get if missing):
//!
//! ```sh
//! cargo test --release --test bench_journal -- --ignored --nocapture
//! ```

mod common;

use std::borrow::Cow;
use std::collections::HashMap;
use std::io::{BufRead, BufReader, BufWriter, Write};
use std::process::{Command, Stdio};
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::{Duration, Instant};

use common::memory::UnitMemory;
use common::{Api, Sandbox, urlencode};
use serde_json::Value;

const ENTRIES: usize = 1_000_000;
const UNITS: usize = 50;
const SPAN_US: u64 = 24 * 3_600_000_000;
/// The unit of the one-unit runs: about 6 % of the entries.
const ONE_UNIT: &str = "redis-server.service";
const FIELDS: [&str; 4] = ["_SYSTEMD_UNIT", "PRIORITY", "SYSLOG_IDENTIFIER", "_COMM"];
const RUNS: usize = 3;
const JOURNAL_REMOTE: &str = "/lib/systemd/systemd-journal-remote";

const WELL_KNOWN: [(&str, &[&str], &str); 10] = [
    ("nginx.service", &["nginx"], "/usr/sbin/nginx"),
    (
        "postgresql@15-main.service",
        &["postgres"],
        "/usr/lib/postgresql/15/bin/postgres",
    ),
    (
        "redis-server.service",
        &["redis-server"],
        "/usr/bin/redis-server",
    ),
    ("cron.service", &["CRON", "cron"], "/usr/sbin/cron"),
    ("ssh.service", &["sshd"], "/usr/sbin/sshd"),
    ("dbus.service", &["dbus-daemon"], "/usr/bin/dbus-daemon"),
    (
        "systemd-logind.service",
        &["systemd-logind"],
        "/lib/systemd/systemd-logind",
    ),
    (
        "shop-api.service",
        &["shop-api", "gunicorn"],
        "/usr/bin/python3",
    ),
    ("shop-web.service", &["shop-web", "node"], "/usr/bin/node"),
    (
        "shop-worker.service",
        &["shop-worker", "celery"],
        "/usr/bin/python3",
    ),
];
const MESSAGES: [&str; 12] = [
    "GET /api/items/{n} 200 {ms}ms",
    "POST /api/orders {n} 201 {ms}ms",
    "connection from 10.0.{a}.{b} port {n}",
    "query took {ms} ms: SELECT * FROM items WHERE id = {n}",
    "worker {a} processed job {n} in {ms}ms",
    "cache miss for key user:{n}",
    "timeout after {ms}ms talking to upstream 10.0.{a}.{b}:{n}",
    "ERROR: could not serialize access due to concurrent update (xid {n})",
    "Started session {n} of user dev.",
    "pam_unix(sshd:session): session opened for user dev(uid=1000) by (uid=0) [{n}]",
    "heartbeat ok seq={n}",
    "retrying request {n} (attempt {a})",
];
/// Priorities 0..7 as journald sees them from services: mostly info and debug.
const PRIORITY_WEIGHTS: [f64; 8] = [0.0005, 0.001, 0.005, 0.03, 0.06, 0.10, 0.60, 0.2035];

/// xorshift64*: deterministic, no dependency.
struct Rng(u64);

impl Rng {
    fn next(&mut self) -> u64 {
        self.0 ^= self.0 >> 12;
        self.0 ^= self.0 << 25;
        self.0 ^= self.0 >> 27;
        self.0.wrapping_mul(0x2545_f491_4f6c_dd1d)
    }

    fn below(&mut self, n: u64) -> u64 {
        self.next() % n
    }

    fn unit(&mut self) -> f64 {
        (self.next() >> 11) as f64 / (1u64 << 53) as f64
    }

    /// An index drawn by `cumulative` weights (ending at 1).
    fn pick(&mut self, cumulative: &[f64]) -> usize {
        let x = self.unit();
        cumulative
            .iter()
            .position(|c| x < *c)
            .unwrap_or(cumulative.len() - 1)
    }
}

fn cumulative(weights: &[f64]) -> Vec<f64> {
    let total: f64 = weights.iter().sum();
    let mut acc = 0.0;
    weights
        .iter()
        .map(|w| {
            acc += w / total;
            acc
        })
        .collect()
}

struct Unit {
    name: String,
    idents: Vec<String>,
    exe: String,
    pid: u64,
    invocation: String,
}

/// Writes `ENTRIES` entries in journal export format ending at `end` (µs): 50 units of
/// Zipf-like sizes, journald-like fields, and an "incident" (a tenth of the entries, half
/// of them errors) in a 20-minute window at 70 % of the range.
fn write_export(out: &mut impl Write, end: u64, machine_id: &str) -> std::io::Result<()> {
    let mut rng = Rng(0x5eed_0018);
    let start = end - SPAN_US;
    let boot_realtime = start - 60_000_000;
    let units: Vec<Unit> = (0..UNITS)
        .map(|i| {
            let (name, idents, exe) = match WELL_KNOWN.get(i) {
                Some((n, ids, exe)) => (
                    n.to_string(),
                    ids.iter().map(|s| s.to_string()).collect(),
                    exe.to_string(),
                ),
                None => {
                    let mut ids = vec![format!("dev-svc-{i:02}")];
                    if i % 5 == 0 {
                        ids.push(format!("helper-{i:02}"));
                    }
                    (
                        format!("dev-svc-{i:02}.service"),
                        ids,
                        format!("/opt/dev/bin/dev-svc-{i:02}"),
                    )
                }
            };
            Unit {
                name,
                idents,
                exe,
                pid: 100 + rng.below(60_000),
                invocation: format!("{:016x}{:016x}", rng.next(), rng.next()),
            }
        })
        .collect();
    let unit_weights = cumulative(
        &(0..UNITS)
            .map(|i| 1.0 / ((i + 1) as f64).powf(0.9))
            .collect::<Vec<_>>(),
    );
    let priority_weights = cumulative(&PRIORITY_WEIGHTS);
    let incident = start + SPAN_US * 7 / 10;
    let incident_end = incident + 20 * 60_000_000;
    let mut times: Vec<u64> = Vec::with_capacity(ENTRIES);
    for i in 0..ENTRIES {
        times.push(if i < ENTRIES / 10 {
            incident + rng.below(incident_end - incident)
        } else {
            start + rng.below(SPAN_US)
        });
    }
    times.sort_unstable();
    let common = format!(
        "_BOOT_ID=b0075eedb0075eedb0075eedb0075eed\n_MACHINE_ID={machine_id}\n_HOSTNAME=bench\n\
         _TRANSPORT=stdout\n_UID=1000\n_GID=1000\n_CAP_EFFECTIVE=0\nSYSLOG_FACILITY=3\n"
    );
    for (k, t) in times.into_iter().enumerate() {
        let ui = rng.pick(&unit_weights);
        let u = &units[ui];
        let mut p = rng.pick(&priority_weights);
        if (incident..incident_end).contains(&t) && rng.unit() < 0.5 {
            p = 3;
        }
        let ident = &u.idents[k % u.idents.len()];
        let message = MESSAGES[(k * 7 + ui) % MESSAGES.len()]
            .replace("{n}", &rng.below(1_000_000).to_string())
            .replace("{ms}", &(1 + rng.below(5000)).to_string())
            .replace("{a}", &rng.below(256).to_string())
            .replace("{b}", &rng.below(256).to_string());
        let comm: String = ident.chars().take(15).collect();
        write!(
            out,
            "__REALTIME_TIMESTAMP={t}\n__MONOTONIC_TIMESTAMP={}\n{common}_PID={}\n_COMM={comm}\n\
             _EXE={exe}\n_CMDLINE={exe} --config /etc/{ident}.conf\n_SYSTEMD_CGROUP=/system.slice/{name}\n\
             _SYSTEMD_UNIT={name}\n_SYSTEMD_SLICE=system.slice\n_SYSTEMD_INVOCATION_ID={inv}\n\
             _STREAM_ID={inv}\nSYSLOG_IDENTIFIER={ident}\nPRIORITY={p}\nMESSAGE={message}\n\n",
            t - boot_realtime,
            u.pid,
            exe = u.exe,
            name = u.name,
            inv = u.invocation,
        )?;
    }
    out.flush()
}

/// What a count found: per bucket per priority, per field the top 50 (value, count).
#[derive(Debug, PartialEq)]
struct Counts {
    total: u64,
    buckets: Vec<[u64; 8]>,
    facets: Vec<Vec<(String, u64)>>,
}

fn top(map: HashMap<String, u64>) -> Vec<(String, u64)> {
    let mut v: Vec<(String, u64)> = map.into_iter().collect();
    v.sort_by(|a, b| b.1.cmp(&a.1).then_with(|| a.0.cmp(&b.0)));
    v.truncate(50);
    v
}

#[derive(serde::Deserialize)]
struct JsonEntry<'a> {
    #[serde(rename = "__REALTIME_TIMESTAMP", borrow)]
    time: Cow<'a, str>,
    #[serde(rename = "PRIORITY", borrow)]
    priority: Option<Cow<'a, str>>,
    #[serde(rename = "_SYSTEMD_UNIT", borrow)]
    unit: Option<Cow<'a, str>>,
    #[serde(rename = "SYSLOG_IDENTIFIER", borrow)]
    identifier: Option<Cow<'a, str>>,
    #[serde(rename = "_COMM", borrow)]
    comm: Option<Cow<'a, str>>,
}

/// `journalctl -o json` of the range, read and counted here: the wall time, and the counts.
fn json_read(
    sb: &Sandbox,
    args: &[String],
    since: u64,
    width: u64,
    n: usize,
) -> (Duration, Counts) {
    let started = Instant::now();
    let mut child = Command::new("nsenter")
        .args([
            "-t",
            &sb.pid.to_string(),
            "-a",
            "journalctl",
            "--no-pager",
            "-q",
            "-o",
            "json",
        ])
        .args(args)
        .stdout(Stdio::piped())
        .spawn()
        .unwrap();
    let mut reader = BufReader::with_capacity(1 << 20, child.stdout.take().unwrap());
    let mut counts = Counts {
        total: 0,
        buckets: vec![[0; 8]; n],
        facets: Vec::new(),
    };
    let mut maps: Vec<HashMap<String, u64>> = vec![HashMap::new(); FIELDS.len()];
    let mut line = Vec::new();
    while reader.read_until(b'\n', &mut line).unwrap() > 0 {
        let e: JsonEntry = serde_json::from_slice(&line).expect("a JSON entry");
        let t: u64 = e.time.parse().unwrap();
        let p = e
            .priority
            .as_deref()
            .and_then(|p| p.parse::<u64>().ok())
            .map_or(6, |p| p.min(7) as usize);
        counts.buckets[((t.saturating_sub(since) / width) as usize).min(n - 1)][p] += 1;
        counts.total += 1;
        for (map, value) in maps
            .iter_mut()
            .zip([&e.unit, &e.priority, &e.identifier, &e.comm])
        {
            if let Some(v) = value {
                *map.entry(v.to_string()).or_default() += 1;
            }
        }
        line.clear();
    }
    assert!(child.wait().unwrap().success());
    counts.facets = maps.into_iter().map(top).collect();
    (started.elapsed(), counts)
}

/// unitdeck's histogram and facets as `Counts`.
fn api_counts(histogram: &Value, facets: &Value) -> Counts {
    Counts {
        total: histogram["total"].as_u64().unwrap(),
        buckets: histogram["buckets"]
            .as_array()
            .unwrap()
            .iter()
            .map(|b| serde_json::from_value(b["counts"].clone()).unwrap())
            .collect(),
        facets: FIELDS
            .iter()
            .map(|f| {
                facets["fields"][f]
                    .as_array()
                    .unwrap()
                    .iter()
                    .map(|v| {
                        (
                            v["value"].as_str().unwrap().to_string(),
                            v["count"].as_u64().unwrap(),
                        )
                    })
                    .collect()
            })
            .collect(),
    }
}

fn median(mut v: Vec<Duration>) -> Duration {
    v.sort();
    v[v.len() / 2]
}

fn secs(d: Duration) -> String {
    format!("{:.2} s", d.as_secs_f64())
}

/// `VmRSS`, `RssAnon`, `RssFile` (KiB) of a host process.
fn rss(pid: u32) -> Option<[u64; 3]> {
    let status = std::fs::read_to_string(format!("/proc/{pid}/status")).ok()?;
    let get = |key: &str| {
        status
            .lines()
            .find_map(|l| l.strip_prefix(key))
            .and_then(|v| v.trim().trim_end_matches("kB").trim().parse().ok())
    };
    Some([get("VmRSS:")?, get("RssAnon:")?, get("RssFile:")?])
}

/// The highest RSS figures of unitdeck (`server`) and of any of its children (the scan)
/// while `work` runs, sampled every 10 ms from the host.
struct Peaks {
    server: [u64; 3],
    child: [u64; 3],
    /// The most scan children alive at once.
    children: usize,
}

async fn sampled<T>(server_pid: u32, work: impl Future<Output = T>) -> (T, Peaks) {
    let stop = Arc::new(AtomicBool::new(false));
    let sampler = {
        let stop = stop.clone();
        std::thread::spawn(move || {
            let mut peaks = Peaks {
                server: [0; 3],
                child: [0; 3],
                children: 0,
            };
            let max = |into: &mut [u64; 3], v: [u64; 3]| {
                for i in 0..3 {
                    into[i] = into[i].max(v[i]);
                }
            };
            while !stop.load(Ordering::Relaxed) {
                if let Some(v) = rss(server_pid) {
                    max(&mut peaks.server, v);
                }
                let children = children_of(server_pid);
                peaks.children = peaks.children.max(children.len());
                for child in children {
                    if let Some(v) = rss(child) {
                        max(&mut peaks.child, v);
                    }
                }
                std::thread::sleep(Duration::from_millis(10));
            }
            peaks
        })
    };
    let out = work.await;
    stop.store(true, Ordering::Relaxed);
    (out, sampler.join().unwrap())
}

/// The children of a host process, started from any of its threads.
fn children_of(pid: u32) -> Vec<u32> {
    std::fs::read_dir(format!("/proc/{pid}/task"))
        .map(|tasks| {
            tasks
                .filter_map(|t| std::fs::read_to_string(t.ok()?.path().join("children")).ok())
                .flat_map(|c| {
                    c.split_whitespace()
                        .filter_map(|p| p.parse().ok())
                        .collect::<Vec<u32>>()
                })
                .collect()
        })
        .unwrap_or_default()
}

fn mib(kib: u64) -> String {
    format!("{:.1} MiB", kib as f64 / 1024.0)
}

/// The scans unitdeck logged (at debug level), newest last: `peak_rss_kib` and `reopens`.
fn scan_log(sb: &Sandbox) -> Vec<String> {
    sb.sh("journalctl -u unitdeck.service -o cat --no-pager --grep 'journal scan' | tail -4")
        .lines()
        .map(String::from)
        .collect()
}

async fn get_timed(api: &Api, path: &str) -> (Duration, Value) {
    let started = Instant::now();
    let v = api.get_json(path).await;
    (started.elapsed(), v)
}

#[tokio::test(flavor = "multi_thread")]
#[ignore = "a benchmark: cargo test --release --test bench_journal -- --ignored --nocapture"]
async fn bench_journal() {
    if !std::path::Path::new(JOURNAL_REMOTE).exists() {
        let ok = Command::new("apt-get")
            .args([
                "install",
                "-y",
                "-qq",
                "--no-install-recommends",
                "systemd-journal-remote",
            ])
            .env("DEBIAN_FRONTEND", "noninteractive")
            .status()
            .is_ok_and(|s| s.success());
        assert!(
            ok,
            "{JOURNAL_REMOTE} is needed: apt-get install systemd-journal-remote"
        );
    }
    let load = || std::fs::read_to_string("/proc/loadavg").unwrap_or_default();
    println!("load average at the start: {}", load().trim());
    // A persistent journal in a host directory with a fixed machine ID: the generated
    // files sit where journald and sd-journal read them.
    let machine_id = format!("{:032x}", now_micros() ^ 0x18);
    let dir = std::env::temp_dir().join(format!("unitdeck-bench-journal-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    let _cleanup = Cleanup(dir.clone());
    let args = [
        format!("--uuid={machine_id}"),
        format!("--bind={}:/var/log/journal", dir.display()),
    ];
    let sb = Sandbox::start_in(&args, &[]);
    // Nothing vacuums the generated files (journald deletes the oldest archived files of
    // the directory past 100 files or its size limit).
    sb.write(
        "/etc/systemd/journald.conf.d/90-bench.conf",
        "[Journal]\nStorage=persistent\nSystemMaxUse=4G\nSystemMaxFiles=1000\nRateLimitIntervalSec=0\n",
    );
    sb.sh("systemctl restart systemd-journald");

    // --- 1,000,000 entries over the 24 h before this boot --------------------------------------
    // They end before the container's boot: journalctl's boot list is confused by boots
    // that overlap in time.
    let boots: Value = serde_json::from_str(&sb.sh("journalctl --list-boots -o json")).unwrap();
    let boot_start = boots[0]["first_entry"].as_u64().unwrap();
    let end = boot_start - 60_000_000;
    let start = end - SPAN_US;
    let started = Instant::now();
    let mut remote = Command::new("nsenter")
        .args([
            "-t",
            &sb.pid.to_string(),
            "-a",
            JOURNAL_REMOTE,
            "--split-mode=none",
        ])
        .arg(format!(
            "--output=/var/log/journal/{machine_id}/bench.journal"
        ))
        .arg("-")
        .stdin(Stdio::piped())
        .stderr(Stdio::null())
        .spawn()
        .unwrap();
    let mut stdin = BufWriter::with_capacity(1 << 20, remote.stdin.take().unwrap());
    write_export(&mut stdin, end, &machine_id).unwrap();
    drop(stdin);
    assert!(remote.wait().unwrap().success());
    let files = sb.sh(&format!("ls /var/log/journal/{machine_id} | grep -c bench"));
    let size = sb.sh(&format!("du -sm /var/log/journal/{machine_id} | cut -f1"));
    println!(
        "generated {ENTRIES} entries in {} ({} files, {} MiB in the journal directory)",
        secs(started.elapsed()),
        files.trim(),
        size.trim()
    );

    // --- unitdeck, measured from a restart after the generation ---------------------------------
    // The journal's pages are charged to the generator, which wrote them (as journald does).
    let memory = UnitMemory::restart_measured(&sb);
    let api = sb.login().await;
    let inner: u32 = sb.show("unitdeck.service", "MainPID").parse().unwrap();
    let server_pid = sb.host_pid(inner);
    let range = format!(
        "since={}&until={}",
        urlencode(&rfc3339(start)),
        urlencode(&rfc3339(end))
    );
    let base_memory = memory.current(&sb);
    memory.take_peak();
    let mut rows: Vec<String> = Vec::new();
    for (scope, filter, journalctl_filter) in [
        ("whole range", String::new(), Vec::new()),
        // The explorer's filter for a unit (a facet value): the unit need not be loaded.
        (
            "one unit",
            format!("&match=_SYSTEMD_UNIT%3D{ONE_UNIT}"),
            vec![format!("_SYSTEMD_UNIT={ONE_UNIT}")],
        ),
    ] {
        let query = format!("{range}{filter}");
        // Warm-up (and the correctness check below).
        let (_, histogram) = get_timed(&api, &format!("/api/v1/logs/histogram?{query}")).await;
        let (_, facets) = get_timed(&api, &format!("/api/v1/logs/facets?{query}")).await;
        let mut summary = Vec::new();
        let mut both = Vec::new();
        let mut peaks = Vec::new();
        for _ in 0..RUNS {
            let (t, p) = sampled(server_pid, async {
                let started = Instant::now();
                let res = api.get(&format!("/ui/logs/summary?{query}")).await;
                assert_eq!(res.status(), 200);
                res.bytes().await.unwrap();
                started.elapsed()
            })
            .await;
            summary.push(t);
            peaks.push(p);
            let (t, p) = sampled(server_pid, async {
                let (h_path, f_path) = (
                    format!("/api/v1/logs/histogram?{query}"),
                    format!("/api/v1/logs/facets?{query}"),
                );
                let started = Instant::now();
                let (h, f) = tokio::join!(api.get_json(&h_path), api.get_json(&f_path));
                assert_eq!(h["total"], f["total"]);
                started.elapsed()
            })
            .await;
            both.push(t);
            peaks.push(p);
        }
        let cgroup_peak = memory.take_peak();
        let logged = scan_log(&sb);
        // The same through journalctl's JSON, counted here.
        let since = start;
        let width = (histogram["bucket_s"].as_f64().unwrap() * 1e6).round() as u64;
        let mut jargs = journalctl_filter.clone();
        jargs.push(format!(
            "--since=@{}.{:06}",
            start / 1_000_000,
            start % 1_000_000
        ));
        jargs.push(format!(
            "--until=@{}.{:06}",
            end / 1_000_000,
            end % 1_000_000
        ));
        let json_runs = if journalctl_filter.is_empty() {
            1
        } else {
            RUNS
        };
        let mut json = Vec::new();
        let mut counted = None;
        for _ in 0..json_runs {
            let (t, c) = json_read(&sb, &jargs, since, width, 60);
            json.push(t);
            counted = Some(c);
        }
        let counted = counted.unwrap();
        // Correctness at scale: unitdeck's counts are journalctl's.
        assert_eq!(api_counts(&histogram, &facets), counted, "{scope}");
        if filter.is_empty() {
            assert_eq!(
                counted.total, ENTRIES as u64,
                "every generated entry in the range"
            );
        }
        let summary = median(summary);
        let both = median(both);
        let json = median(json);
        let server = peaks.iter().map(|p| p.server[0]).max().unwrap();
        let child = peaks.iter().map(|p| p.child[0]).max().unwrap();
        let child_anon = peaks.iter().map(|p| p.child[1]).max().unwrap();
        // The scans' own CPU time, as unitdeck logged it.
        let mut cpu: Vec<u64> = logged
            .iter()
            .filter_map(|l| {
                l.split("cpu_ms=")
                    .nth(1)?
                    .split_whitespace()
                    .next()?
                    .parse()
                    .ok()
            })
            .collect();
        cpu.sort_unstable();
        rows.push(format!(
            "| {scope} ({} entries) | {} | {:.2} s | {} | {} | {:.3}× | {} | {} (anon {}) | {} |",
            counted.total,
            secs(summary),
            cpu.get(cpu.len() / 2).copied().unwrap_or(0) as f64 / 1000.0,
            secs(both),
            secs(json),
            summary.as_secs_f64() / json.as_secs_f64(),
            mib(server),
            mib(child),
            mib(child_anon),
            cgroup_peak.map_or("—".to_string(), |b| mib(b / 1024)),
        ));
        println!(
            "{scope}: scans logged by unitdeck:\n  {}",
            logged.join("\n  ")
        );
    }
    // At most two scans at once; the others wait their turn and are answered.
    let (statuses, peaks) = sampled(server_pid, async {
        let path = format!("/ui/logs/summary?{range}&match=_SYSTEMD_UNIT%3D{ONE_UNIT}");
        let requests = (0..5).map(|_| api.get(&path));
        futures_util::future::join_all(requests).await
    })
    .await;
    assert!(statuses.iter().all(|r| r.status() == 200));
    assert!(peaks.children <= 2, "{} scans at once", peaks.children);
    println!(
        "5 summaries at once: all answered, at most {} scans at a time",
        peaks.children
    );
    // A client that goes away takes its scan with it.
    let res = tokio::time::timeout(
        Duration::from_millis(300),
        api.get(&format!("/api/v1/logs/histogram?{range}")),
    )
    .await;
    assert!(res.is_err(), "the scan took less than 300 ms");
    let gone = Instant::now();
    assert!(!children_of(server_pid).is_empty(), "the scan runs");
    while !children_of(server_pid).is_empty() {
        assert!(
            gone.elapsed() < Duration::from_secs(2),
            "the scan outlived its client"
        );
        std::thread::sleep(Duration::from_millis(10));
    }
    println!(
        "a client gone after 300 ms: its scan ended {} later",
        secs(gone.elapsed())
    );

    // journalctl -F: values only, from every file, whatever the range.
    let mut unique = Vec::new();
    for _ in 0..RUNS {
        let started = Instant::now();
        for f in FIELDS {
            sb.sh(&format!("journalctl -F {f} > /dev/null"));
        }
        unique.push(started.elapsed());
    }
    println!("\nload average at the end: {}", load().trim());
    println!(
        "unitdeck's memory before the runs: {}",
        mib(base_memory / 1024)
    );
    println!(
        "\n| scope | unitdeck summary (1 scan, median of {RUNS}) | its scan's CPU (median) | histogram + facets API in parallel | journalctl -o json read and counted | summary ÷ JSON | unitdeck server RSS peak | scan child RSS peak | unitdeck cgroup peak |"
    );
    println!("|---|---|---|---|---|---|---|---|---|");
    for r in rows {
        println!("{r}");
    }
    println!(
        "\n`journalctl -F` × 4 fields (values, no counts, all files): {} (median of {RUNS}, through nsenter)",
        secs(median(unique))
    );
}

struct Cleanup(std::path::PathBuf);

impl Drop for Cleanup {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.0);
    }
}

fn now_micros() -> u64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap()
        .as_micros() as u64
}

fn rfc3339(micros: u64) -> String {
    chrono::DateTime::from_timestamp_micros(micros as i64)
        .unwrap()
        .to_rfc3339_opts(chrono::SecondsFormat::Micros, true)
}
