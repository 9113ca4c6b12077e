//! Benchmark (not a timed test): `GET /api/v1/units` against
//! `systemctl list-units --type=service --all --output=json` in the same container,
//! with 200 and then 1,000 extra running services.
//!
//! ```text
//! cargo test --release --test bench_units -- --ignored --nocapture
//! ```
//!
//! Boots one sandbox (tests/common/mod.rs), writes the unit files in bulk, reloads
//! once, starts them all (`/bin/sleep infinity`), waits until unitdeck's cache shows
//! them, then for each size:
//!
//! - 50 sequential GETs with a logged-in client after 5 warm-ups, without compression
//!   and with `Accept-Encoding: gzip` / `br` (what a browser sends), interleaved with
//!   50 runs of `nsenter -t PID -a systemctl list-units ...` from the host and 50 of
//!   `nsenter -t PID -a true` (the cost of entering the namespaces and exec'ing, which
//!   a user at a shell inside the container does not pay);
//! - the same systemctl command timed from inside the container (a python3 loop:
//!   fork + exec + wait per run, 5 warm-ups + 50 runs);
//! - curl's own timings of the same GET (time to first byte = the server's share);
//! - 50 concurrent clients, 20 GETs each: throughput and latency percentiles.
//!
//! The figures go to bench/README.md. Client, server and systemd share this machine's
//! cores, so absolute numbers depend on it; the ratio is the point.

mod common;

use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use common::{PASSWORD, Sandbox};

const SIZES: [usize; 2] = [200, 1000];
const WARMUP: usize = 5;
const RUNS: usize = 50;
const CLIENTS: usize = 50;
const PER_CLIENT: usize = 20;
const TARGET_RATIO: f64 = 0.3;
const SYSTEMCTL: &[&str] = &[
    "systemctl",
    "list-units",
    "--type=service",
    "--all",
    "--output=json",
    "--no-pager",
];

struct Stats {
    median: Duration,
    p99: Duration,
    min: Duration,
}

fn stats(mut samples: Vec<Duration>) -> Stats {
    assert!(!samples.is_empty());
    samples.sort();
    let n = samples.len();
    // Nearest rank: with 50 samples the p99 is the slowest one.
    let p99 = samples[(n * 99).div_ceil(100) - 1];
    let median = if n % 2 == 1 {
        samples[n / 2]
    } else {
        (samples[n / 2 - 1] + samples[n / 2]) / 2
    };
    Stats {
        median,
        p99,
        min: samples[0],
    }
}

fn ms(d: Duration) -> f64 {
    d.as_secs_f64() * 1000.0
}

fn line(label: &str, s: &Stats) {
    println!(
        "  {label:<46} median {:>8.3} ms   p99 {:>8.3} ms   min {:>8.3} ms",
        ms(s.median),
        ms(s.p99),
        ms(s.min)
    );
}

/// Logs in and returns the session cookie (`unitdeck_session=...`).
async fn session_cookie(sb: &Sandbox) -> String {
    let res = reqwest::Client::new()
        .post(format!("{}/api/v1/session", sb.base_url()))
        .json(&serde_json::json!({ "password": PASSWORD }))
        .send()
        .await
        .unwrap();
    assert_eq!(res.status(), 200, "login");
    res.headers()["set-cookie"]
        .to_str()
        .unwrap()
        .split(';')
        .next()
        .unwrap()
        .to_string()
}

fn client(cookie: &str) -> reqwest::Client {
    let mut headers = reqwest::header::HeaderMap::new();
    headers.insert(reqwest::header::COOKIE, cookie.parse().unwrap());
    reqwest::Client::builder()
        .default_headers(headers)
        .timeout(Duration::from_secs(60))
        .build()
        .unwrap()
}

/// One GET of the units list, timed to the last byte of the body. Returns the time
/// and the body size on the wire.
async fn timed_get(
    client: &reqwest::Client,
    url: &str,
    encoding: Option<&str>,
) -> (Duration, usize) {
    let mut req = client.get(url);
    if let Some(enc) = encoding {
        req = req.header(reqwest::header::ACCEPT_ENCODING, enc);
    }
    let start = Instant::now();
    let res = req.send().await.unwrap();
    assert_eq!(res.status(), 200, "GET {url}");
    let body = res.bytes().await.unwrap();
    (start.elapsed(), body.len())
}

fn timed_exec(pid: u32, args: &[&str]) -> Duration {
    let start = Instant::now();
    let status = Command::new("nsenter")
        .args(["-t", &pid.to_string(), "-a"])
        .args(args)
        .stdin(Stdio::null())
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .status()
        .expect("nsenter runs");
    let elapsed = start.elapsed();
    assert!(status.success(), "{args:?} failed inside the container");
    elapsed
}

/// Times `SYSTEMCTL` from inside the container (no nsenter per run): a python3 loop
/// that forks, execs and waits, printing one duration in seconds per line.
fn systemctl_inside(sb: &Sandbox) -> Option<Vec<Duration>> {
    if !std::path::Path::new("/usr/bin/python3").exists() {
        return None;
    }
    let script = format!(
        "import subprocess, time\n\
         cmd = {cmd:?}\n\
         for i in range({total}):\n\
         \x20   t = time.perf_counter()\n\
         \x20   subprocess.run(cmd, stdout=subprocess.DEVNULL, check=True)\n\
         \x20   if i >= {WARMUP}: print(time.perf_counter() - t)\n",
        cmd = SYSTEMCTL,
        total = WARMUP + RUNS,
    );
    let out = sb.exec(&["/usr/bin/python3", "-c", &script]);
    assert!(
        out.status.success(),
        "python3 timing loop: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    Some(
        String::from_utf8_lossy(&out.stdout)
            .lines()
            .map(|l| Duration::from_secs_f64(l.trim().parse().unwrap()))
            .collect(),
    )
}

/// curl's own timings of the identity GET (no process start-up in them): the time to
/// the first byte is what the server spends (the handler serialises the whole array
/// before it answers), the rest is the transfer and the client.
fn curl_timings(url: &str, cookie: &str) -> (Stats, Stats) {
    let (mut first, mut total) = (Vec::new(), Vec::new());
    for round in 0..WARMUP + RUNS {
        let out = Command::new("curl")
            .args(["-s", "-o", "/dev/null", "-H"])
            .arg(format!("cookie: {cookie}"))
            .args(["-w", "%{time_starttransfer} %{time_total}", url])
            .output()
            .expect("curl runs");
        let text = String::from_utf8_lossy(&out.stdout);
        let mut it = text
            .split_whitespace()
            .map(|v| Duration::from_secs_f64(v.parse().unwrap()));
        if round >= WARMUP {
            first.push(it.next().unwrap());
            total.push(it.next().unwrap());
        }
    }
    (stats(first), stats(total))
}

/// Adds services bench-<from>..bench-<to> (running `/bin/sleep infinity`) with one
/// daemon-reload and one `systemctl start`.
fn add_services(sb: &Sandbox, from: usize, to: usize) {
    let names: Vec<String> = (from..to)
        .map(|i| format!("bench-{i:04}.service"))
        .collect();
    for (i, name) in (from..to).zip(&names) {
        sb.write(
            &format!("/etc/systemd/system/{name}"),
            &format!(
                "[Unit]\nDescription=Benchmark service {i}\n\n[Service]\nExecStart=/bin/sleep infinity\n"
            ),
        );
    }
    sb.sh("systemctl daemon-reload");
    let mut args = vec!["systemctl", "start", "--no-block"];
    args.extend(names.iter().map(String::as_str));
    let out = sb.exec(&args);
    assert!(
        out.status.success(),
        "starting the bench services: {}",
        String::from_utf8_lossy(&out.stderr)
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
#[ignore = "benchmark: cargo test --release --test bench_units -- --ignored --nocapture"]
async fn units_list_vs_systemctl() {
    let profile = if cfg!(debug_assertions) {
        "debug"
    } else {
        "release"
    };
    // Info-level logging, as in production (the harness default is debug).
    let sb = Sandbox::start_with(&[("RUST_LOG", "unitdeck=info")]);
    let cookie = session_cookie(&sb).await;
    let api = client(&cookie);
    let url = format!("{}/api/v1/units", sb.base_url());
    println!(
        "\nbench_units: unitdeck ({profile} build) in a systemd-nspawn container, systemd {}",
        String::from_utf8_lossy(&sb.exec(&["systemctl", "--version"]).stdout)
            .split_whitespace()
            .nth(1)
            .unwrap_or("?")
    );

    println!(
        "machine: {} CPUs, load average {}",
        std::thread::available_parallelism().map_or(0, |n| n.get()),
        std::fs::read_to_string("/proc/loadavg")
            .unwrap_or_default()
            .split_whitespace()
            .take(3)
            .collect::<Vec<_>>()
            .join(" ")
    );

    let mut added = 0;
    for size in SIZES {
        add_services(&sb, added, size);
        added = size;
        // Wait until the cache has every bench service running.
        let deadline = Instant::now() + Duration::from_secs(120);
        let total = loop {
            let units: Vec<serde_json::Value> =
                api.get(&url).send().await.unwrap().json().await.unwrap();
            let running = units
                .iter()
                .filter(|u| {
                    u["name"].as_str().is_some_and(|n| n.starts_with("bench-"))
                        && u["sub_state"] == "running"
                })
                .count();
            if running == size {
                break units.len();
            }
            assert!(
                Instant::now() < deadline,
                "only {running} of {size} bench services are running"
            );
            tokio::time::sleep(Duration::from_millis(200)).await;
        };
        // systemd 252 honours --output=json here: one JSON array on one line.
        let listed = String::from_utf8_lossy(&sb.exec(SYSTEMCTL).stdout).into_owned();
        let systemctl_count = serde_json::from_str::<Vec<serde_json::Value>>(&listed)
            .map(|v| format!("{} services as JSON", v.len()))
            .unwrap_or_else(|_| {
                let n = listed.lines().filter(|l| l.contains(".service")).count();
                format!("{n} services as a table")
            });
        println!(
            "\n{size} bench services running; GET /api/v1/units returns {total} services, \
             `systemctl list-units --type=service --all --output=json` prints {systemctl_count}"
        );

        // Interleaved, so that the load of this shared machine at any moment weighs on
        // every measurement alike: each round is one GET per encoding, one systemctl
        // run and one `nsenter true`. The first WARMUP rounds are not counted.
        const ENCODINGS: [Option<&str>; 3] = [None, Some("gzip"), Some("br")];
        let mut gets: [Vec<Duration>; 3] = Default::default();
        let mut wire = [0usize; 3];
        let (mut systemctl, mut baseline) = (Vec::new(), Vec::new());
        for round in 0..WARMUP + RUNS {
            let mut round_gets = [Duration::ZERO; 3];
            for (i, encoding) in ENCODINGS.iter().enumerate() {
                let (t, len) = timed_get(&api, &url, *encoding).await;
                round_gets[i] = t;
                wire[i] = len;
            }
            let s = timed_exec(sb.pid, SYSTEMCTL);
            let b = timed_exec(sb.pid, &["true"]);
            if round >= WARMUP {
                for (i, t) in round_gets.into_iter().enumerate() {
                    gets[i].push(t);
                }
                systemctl.push(s);
                baseline.push(b);
            }
        }
        let results: Vec<_> = ENCODINGS
            .iter()
            .zip(gets)
            .zip(wire)
            .map(|((encoding, times), len)| (*encoding, stats(times), len))
            .collect();
        let systemctl = stats(systemctl);
        let baseline = stats(baseline);
        let inside = systemctl_inside(&sb).map(stats);
        let (ttfb, curl_total) = curl_timings(&url, &cookie);

        for (encoding, s, len) in &results {
            let label = format!(
                "GET /api/v1/units ({}, {len} bytes)",
                encoding.unwrap_or("identity")
            );
            line(&label, s);
        }
        line("nsenter -a systemctl list-units (raw)", &systemctl);
        line("nsenter -a true (baseline)", &baseline);
        let net = systemctl.median.saturating_sub(baseline.median);
        println!(
            "  {:<46} median {:>8.3} ms",
            "systemctl minus the nsenter baseline",
            ms(net)
        );
        if let Some(inside) = &inside {
            line("systemctl list-units, timed inside", inside);
        }
        line("curl: time to first byte (server side)", &ttfb);
        line("curl: total", &curl_total);
        let get = results[0].1.median.as_secs_f64();
        let ratio = |d: Duration| get / d.as_secs_f64().max(f64::MIN_POSITIVE);
        println!(
            "  ratio GET / systemctl: {:.3}x raw, {:.3}x minus baseline{} (target <= {TARGET_RATIO}x)",
            ratio(systemctl.median),
            ratio(net),
            inside
                .as_ref()
                .map(|i| format!(", {:.3}x timed inside", ratio(i.median)))
                .unwrap_or_default()
        );

        // Concurrency: 50 clients with their own connections, 20 GETs each.
        let start = Instant::now();
        let tasks: Vec<_> = (0..CLIENTS)
            .map(|_| {
                let c = client(&cookie);
                let url = url.clone();
                tokio::spawn(async move {
                    let mut times = Vec::with_capacity(PER_CLIENT);
                    for _ in 0..PER_CLIENT {
                        times.push(timed_get(&c, &url, None).await.0);
                    }
                    times
                })
            })
            .collect();
        let mut all = Vec::with_capacity(CLIENTS * PER_CLIENT);
        for t in tasks {
            all.extend(t.await.unwrap());
        }
        let wall = start.elapsed();
        let n = all.len();
        let conc = stats(all);
        println!(
            "  {CLIENTS} concurrent clients x {PER_CLIENT} GETs: {:.0} req/s, median {:.3} ms, p99 {:.3} ms ({n} requests in {:.2} s)",
            n as f64 / wall.as_secs_f64(),
            ms(conc.median),
            ms(conc.p99),
            wall.as_secs_f64()
        );
    }
    println!();
}
