//! Faults against a real systemd: the system bus restarted and systemd re-executed while
//! viewers are connected, the journal follower killed mid-stream, unitdeck killed with
//! SIGKILL during unit-file creates, override writes and audit writes (and a client
//! leaving mid-create), and a full unit directory.
//!
//! The short versions run by default; `UNITDECK_LONG_TESTS=1` repeats each fault more
//! often.

mod common;

use std::collections::{BTreeMap, BTreeSet};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use common::sse::{SseEvent, SseReader};
use common::{PASSWORD, Sandbox, while_exists};
use serde_json::{Value, json};

/// A unit printing `line-N` every 20 ms.
const NUMBERS: &str = "[Service]\nExecStart=/bin/sh -c 'i=0; while [ $$i -lt 1000000 ]; do echo line-$$i; i=$$((i+1)); sleep 0.02; done'\n";
/// A unit that only runs, so that stopping it is a visible change.
const PROBE: &str = "[Service]\nExecStart=/bin/sleep infinity\n";
/// What unitdeck writes first in every unit file it creates.
const MARKER: &str = "# Managed by unitdeck";
const UNIT_DIR: &str = "/etc/systemd/system";
/// How long unitdeck may take to be back on the bus after a fault.
const RECONNECT_LIMIT: Duration = Duration::from_secs(5);

fn long_tests() -> bool {
    std::env::var("UNITDECK_LONG_TESTS").is_ok_and(|v| v == "1")
}

/// How often to repeat a fault: `short` in CI, `long` with UNITDECK_LONG_TESTS=1.
fn rounds(short: usize, long: usize) -> usize {
    if long_tests() { long } else { short }
}

// --- helpers -----------------------------------------------------------------------

/// The last lines of unitdeck's journal, for failure messages.
fn unitdeck_log(sb: &Sandbox) -> String {
    let out = sb.exec(&[
        "journalctl",
        "-u",
        "unitdeck.service",
        "--no-pager",
        "-n",
        "60",
    ]);
    String::from_utf8_lossy(&out.stdout).into_owned()
}

/// Polls `check` until it returns Some; on timeout panics with unitdeck's journal.
async fn wait_for<T>(
    sb: &Sandbox,
    what: &str,
    timeout: Duration,
    mut check: impl AsyncFnMut() -> Option<T>,
) -> T {
    let deadline = Instant::now() + timeout;
    loop {
        if let Some(v) = check().await {
            return v;
        }
        if Instant::now() > deadline {
            panic!(
                "timed out after {timeout:?} waiting for: {what}\n--- unitdeck log ---\n{}",
                unitdeck_log(sb)
            );
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
}

fn quick_client() -> reqwest::Client {
    reqwest::Client::builder()
        .timeout(Duration::from_secs(2))
        .build()
        .unwrap()
}

async fn healthz(client: &reqwest::Client, sb: &Sandbox) -> Option<u16> {
    client
        .get(format!("{}/healthz", sb.base_url()))
        .send()
        .await
        .ok()
        .map(|r| r.status().as_u16())
}

/// A logged-in client without a total timeout (streams outlive reqwest's default one).
async fn stream_client(sb: &Sandbox) -> reqwest::Client {
    let client = reqwest::Client::builder()
        .cookie_store(true)
        .connect_timeout(Duration::from_secs(10))
        .build()
        .unwrap();
    let res = client
        .post(format!("{}/api/v1/session", sb.base_url()))
        .json(&json!({ "password": PASSWORD }))
        .send()
        .await
        .unwrap();
    assert_eq!(res.status(), 200, "login");
    client
}

/// What one recorded SSE viewer saw.
#[derive(Default)]
struct Seen {
    /// Every event with its arrival time.
    events: Vec<(Instant, SseEvent)>,
    /// When each connection (the first and every reconnect) was answered.
    connects: Vec<Instant>,
}

/// An SSE viewer read by a background task that behaves like a browser's EventSource:
/// when the server ends the stream it reconnects, with `Last-Event-ID` when it has one.
struct Recorder {
    seen: Arc<Mutex<Seen>>,
    task: tokio::task::JoinHandle<()>,
}

impl Drop for Recorder {
    fn drop(&mut self) {
        self.task.abort();
    }
}

impl Recorder {
    fn start(client: &reqwest::Client, url: String) -> Self {
        let seen = Arc::new(Mutex::new(Seen::default()));
        let client = client.clone();
        let shared = seen.clone();
        let task = tokio::spawn(async move {
            let mut last_id: Option<String> = None;
            loop {
                let mut req = client.get(&url);
                if let Some(id) = &last_id {
                    req = req.header("last-event-id", id);
                }
                if let Ok(res) = req.send().await
                    && res.status() == 200
                {
                    shared.lock().unwrap().connects.push(Instant::now());
                    let mut sse = SseReader::new(res);
                    while let Some(ev) = sse.next(Duration::from_secs(3600)).await {
                        if ev.id.is_some() {
                            last_id = ev.id.clone();
                        }
                        shared.lock().unwrap().events.push((Instant::now(), ev));
                    }
                }
                tokio::time::sleep(Duration::from_millis(200)).await;
            }
        });
        Self { seen, task }
    }

    fn connects(&self) -> usize {
        self.seen.lock().unwrap().connects.len()
    }

    /// Events that arrived after `since`, in order.
    fn events_after(&self, since: Instant) -> Vec<SseEvent> {
        self.seen
            .lock()
            .unwrap()
            .events
            .iter()
            .filter(|(at, _)| *at > since)
            .map(|(_, e)| e.clone())
            .collect()
    }

    fn all_events(&self) -> Vec<SseEvent> {
        self.events_after(Instant::now() - Duration::from_secs(24 * 3600))
    }
}

fn number(message: &str) -> u64 {
    message
        .strip_prefix("line-")
        .and_then(|n| n.parse().ok())
        .unwrap_or_else(|| panic!("not a numbered line: {message:?}"))
}

/// The line numbers of a log stream's entries, in order of arrival.
fn numbers(events: &[SseEvent]) -> Vec<u64> {
    events
        .iter()
        .filter(|e| e.event == "entry")
        .map(|e| {
            let v: Value = serde_json::from_str(&e.data).unwrap();
            number(v["message"].as_str().unwrap())
        })
        .collect()
}

/// Panics unless the numbers go up by exactly one each time (nothing lost, nothing repeated).
fn assert_contiguous(numbers: &[u64], what: &str) {
    for pair in numbers.windows(2) {
        assert_eq!(
            pair[1],
            pair[0] + 1,
            "{what}: a gap or a repeat after line-{}: {numbers:?}",
            pair[0]
        );
    }
}

/// `event: unit` summaries of one unit.
fn unit_events<'a>(events: &'a [SseEvent], name: &'a str) -> impl Iterator<Item = Value> + 'a {
    events
        .iter()
        .filter(|e| e.event == "unit")
        .filter_map(|e| serde_json::from_str::<Value>(&e.data).ok())
        .filter(move |v| v["name"] == name)
}

fn distinct_units(events: &[SseEvent]) -> usize {
    events
        .iter()
        .filter(|e| e.event == "unit")
        .filter_map(|e| serde_json::from_str::<Value>(&e.data).ok())
        .filter_map(|v| v["name"].as_str().map(String::from))
        .collect::<BTreeSet<_>>()
        .len()
}

fn main_pid(sb: &Sandbox, unit: &str) -> u64 {
    sb.show(unit, "MainPID").parse().unwrap_or(0)
}

/// Viewers of the events stream and of a log stream, connected before a fault.
struct Viewers {
    events: Recorder,
    logs: Recorder,
    units: usize,
}

async fn connect_viewers(sb: &Sandbox) -> Viewers {
    sb.add_unit("numbers.service", NUMBERS);
    sb.add_unit("probe.service", PROBE);
    sb.sh("systemctl start numbers.service probe.service");
    let client = stream_client(sb).await;
    let units = client
        .get(format!("{}/api/v1/units?type=all", sb.base_url()))
        .send()
        .await
        .unwrap()
        .json::<Value>()
        .await
        .unwrap()
        .as_array()
        .unwrap()
        .len();
    let events = Recorder::start(&client, format!("{}/api/v1/events", sb.base_url()));
    let logs = Recorder::start(
        &client,
        format!(
            "{}/api/v1/units/numbers.service/logs/stream?lines=5",
            sb.base_url()
        ),
    );
    wait_for(
        sb,
        "the first snapshot",
        Duration::from_secs(20),
        async || (distinct_units(&events.all_events()) >= units).then_some(()),
    )
    .await;
    wait_for(sb, "log entries", Duration::from_secs(20), async || {
        (numbers(&logs.all_events()).len() >= 20).then_some(())
    })
    .await;
    Viewers {
        events,
        logs,
        units,
    }
}

/// After a fault that ended at `fault_done`: healthz is 200 again within the limit, the
/// events stream delivers a fresh snapshot and then live changes, and the log stream
/// went on without a gap.
async fn assert_recovered(sb: &Sandbox, v: &Viewers, fault_started: Instant, fault_done: Instant) {
    let client = quick_client();
    let back = wait_for(
        sb,
        "healthz 200 again",
        Duration::from_secs(30),
        async || (healthz(&client, sb).await == Some(200)).then(Instant::now),
    )
    .await;
    let reconnect = back.saturating_duration_since(fault_done);
    eprintln!("healthz 200 again {reconnect:?} after the fault");
    assert!(
        reconnect <= RECONNECT_LIMIT,
        "unitdeck took {reconnect:?} to be back on the bus (limit {RECONNECT_LIMIT:?})\n{}",
        unitdeck_log(sb)
    );

    // A fresh snapshot: the whole unit list again, with dbus as it is now.
    let dbus_pid = main_pid(sb, "dbus.service");
    let deadline = Instant::now() + Duration::from_secs(20);
    loop {
        let after = v.events.events_after(fault_started);
        let dbus_now =
            unit_events(&after, "dbus.service").any(|u| u["main_pid"] == json!(dbus_pid));
        let distinct = distinct_units(&after);
        if dbus_now && distinct >= v.units * 9 / 10 {
            eprintln!("fresh snapshot: {distinct} units");
            break;
        }
        if Instant::now() > deadline {
            let dbus: Vec<Value> = unit_events(&after, "dbus.service").collect();
            panic!(
                "no fresh snapshot: {} events since the fault, {distinct} distinct units of {}, \
                 dbus.service (MainPID {dbus_pid}) events: {dbus:?}\n{}",
                after.len(),
                v.units,
                unitdeck_log(sb)
            );
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }

    // Then live changes again.
    let before_stop = Instant::now();
    sb.sh("systemctl stop probe.service");
    wait_for(
        sb,
        "probe.service stopped, live",
        Duration::from_secs(10),
        async || {
            let after = v.events.events_after(before_stop);
            unit_events(&after, "probe.service")
                .any(|u| u["active_state"] == "inactive" || u["active_state"] == "failed")
                .then_some(())
        },
    )
    .await;
    sb.sh("systemctl start probe.service");

    // The log stream went on: new lines, and none lost or repeated over the whole run.
    let now = Instant::now();
    wait_for(sb, "new log lines", Duration::from_secs(20), async || {
        (numbers(&v.logs.events_after(now)).len() >= 20).then_some(())
    })
    .await;
    assert_contiguous(&numbers(&v.logs.all_events()), "log stream");
    eprintln!(
        "events stream connections: {}, log stream connections: {}",
        v.events.connects(),
        v.logs.connects()
    );
}

// --- 1. the system bus restarted ------------------------------------------------------

#[tokio::test(flavor = "multi_thread")]
async fn dbus_restart_with_viewers_connected() {
    survive_with_viewers("systemctl restart dbus.service", "dbus restarted").await;
}

// --- 2. systemd re-executed -----------------------------------------------------------

#[tokio::test(flavor = "multi_thread")]
async fn daemon_reexec_with_viewers_connected() {
    survive_with_viewers("systemctl daemon-reexec", "systemd re-executed").await;
}

/// Runs `command` (1 round, 3 with the long tests) while an events and a log viewer are
/// connected, and checks unitdeck recovers after each.
async fn survive_with_viewers(command: &str, what: &str) {
    let sb = Sandbox::start();
    let viewers = connect_viewers(&sb).await;
    for round in 0..rounds(1, 3) {
        let started = Instant::now();
        sb.sh(command);
        let done = Instant::now();
        eprintln!("round {round}: {what} in {:?}", done - started);
        assert_recovered(&sb, &viewers, started, done).await;
    }
}

// --- 3. journalctl killed mid-stream --------------------------------------------------

async fn journalctl_count(sb: &Sandbox) -> usize {
    let out = sb.exec(&["pgrep", "-c", "-x", "journalctl"]);
    String::from_utf8_lossy(&out.stdout)
        .trim()
        .parse()
        .unwrap_or(0)
}

/// Reads `n` more events of a log stream into `seen` (their line numbers).
async fn read_entries(sse: &mut SseReader, seen: &mut Vec<u64>, n: usize) {
    for _ in 0..n {
        let ev = sse
            .next(Duration::from_secs(15))
            .await
            .unwrap_or_else(|| panic!("the stream stopped after line-{:?}", seen.last()));
        seen.extend(numbers(&[ev]));
    }
}

#[tokio::test(flavor = "multi_thread")]
async fn journalctl_killed_mid_stream() {
    let sb = Sandbox::start();
    sb.add_unit("numbers.service", NUMBERS);
    sb.sh("systemctl start numbers.service");
    let client = stream_client(&sb).await;
    let url = format!(
        "{}/api/v1/units/numbers.service/logs/stream?lines=5",
        sb.base_url()
    );
    // One stream read directly (so that an end of the stream is seen as a failure) and
    // one more viewer of the same follower.
    let mut sse = SseReader::new(client.get(&url).send().await.unwrap());
    let other = Recorder::start(&client, url.clone());
    let mut seen: Vec<u64> = Vec::new();
    read_entries(&mut sse, &mut seen, 30).await;
    wait_for(&sb, "one follower", Duration::from_secs(10), async || {
        (journalctl_count(&sb).await == 1).then_some(())
    })
    .await;
    for round in 0..rounds(2, 10) {
        let killed_at = seen.last().copied();
        sb.sh("pkill -9 -x journalctl");
        // The follower comes back (a new journalctl) and the stream goes on.
        read_entries(&mut sse, &mut seen, 60).await;
        wait_for(
            &sb,
            "the follower restarted",
            Duration::from_secs(10),
            async || (journalctl_count(&sb).await == 1).then_some(()),
        )
        .await;
        eprintln!(
            "round {round}: killed at line-{killed_at:?}, now at line-{:?}",
            seen.last()
        );
    }
    assert_contiguous(&seen, "stream across journalctl kills");
    let others = numbers(&other.all_events());
    assert!(others.len() > 60, "the second viewer kept receiving");
    assert_contiguous(&others, "second viewer");
    assert_eq!(
        other.connects(),
        1,
        "the server never ended the second stream"
    );
    drop(sse);
    drop(other);
    wait_for(
        &sb,
        "no journalctl left",
        Duration::from_secs(10),
        async || (journalctl_count(&sb).await == 0).then_some(()),
    )
    .await;
}

// --- 4. SIGKILL of unitdeck -----------------------------------------------------------

fn unitdeck_pid(sb: &Sandbox) -> u64 {
    main_pid(sb, "unitdeck.service")
}

/// unitdeck's main process as a host PID (for a SIGKILL without the delay of nsenter).
fn unitdeck_host_pid(sb: &Sandbox) -> i32 {
    let inside = u32::try_from(unitdeck_pid(sb)).expect("a pid");
    i32::try_from(sb.host_pid(inside)).expect("a pid")
}

/// Waits until systemd has restarted unitdeck (a MainPID other than `old`) and it answers.
async fn wait_restarted(sb: &Sandbox, old: u64) {
    let client = quick_client();
    wait_for(
        sb,
        "unitdeck restarted by systemd",
        Duration::from_secs(30),
        async || {
            let pid = unitdeck_pid(sb);
            (pid != 0 && pid != old && healthz(&client, sb).await == Some(200)).then_some(())
        },
    )
    .await;
}

/// SIGKILL to unitdeck, then waits until systemd has started a new one that answers.
async fn kill_unitdeck(sb: &Sandbox) {
    let old = unitdeck_pid(sb);
    // systemctl may report EIO for a child that was exiting anyway; the new MainPID below
    // is what proves the kill.
    let _ = sb.exec(&["systemctl", "kill", "-s", "KILL", "unitdeck.service"]);
    wait_restarted(sb, old).await;
}

/// A query on unitdeck's database, run inside with Python's sqlite3 module: rows as JSON.
fn sql(sb: &Sandbox, query: &str) -> Value {
    let script = format!(
        "import json, sqlite3\n\
         db = sqlite3.connect('file:/var/lib/unitdeck/unitdeck.db?mode=ro', uri=True)\n\
         print(json.dumps(db.execute({query:?}).fetchall()))\n"
    );
    let out = sb.exec(&["python3", "-c", &script]);
    assert!(
        out.status.success(),
        "python3 sqlite3 failed: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    serde_json::from_slice(&out.stdout).unwrap()
}

/// The database is sound: integrity_check ok, every unit file has its current revision
/// and its create audit row, every token its create audit row.
fn assert_database_sound(sb: &Sandbox) {
    assert_eq!(sql(sb, "PRAGMA integrity_check"), json!([["ok"]]));
    assert_eq!(sql(sb, "PRAGMA foreign_key_check"), json!([]));
    let orphans = sql(
        sb,
        "SELECT u.name, u.revision FROM unit_files u LEFT JOIN unit_file_revisions r \
         ON r.name = u.name AND r.revision = u.revision WHERE r.name IS NULL",
    );
    assert_eq!(orphans, json!([]), "unit files without their revision");
    let unaudited = sql(
        sb,
        "SELECT u.name FROM unit_files u WHERE NOT EXISTS (SELECT 1 FROM audit a \
         WHERE a.action = 'unitfile.create' AND a.target = u.name AND a.result = 'ok')",
    );
    assert_eq!(unaudited, json!([]), "unit files without their audit row");
    let unaudited = sql(
        sb,
        "SELECT t.id FROM tokens t WHERE NOT EXISTS (SELECT 1 FROM audit a \
         WHERE a.action = 'token.create' AND a.target = 'token:' || t.id)",
    );
    assert_eq!(unaudited, json!([]), "tokens without their audit row");
    let orphans = sql(
        sb,
        "SELECT o.unit, o.revision FROM overrides o LEFT JOIN override_revisions r \
         ON r.unit = o.unit AND r.revision = o.revision WHERE r.unit IS NULL",
    );
    assert_eq!(orphans, json!([]), "overrides without their revision");
}

/// Every file unitdeck wrote is complete (exactly the current revision's text), and no
/// temporary file is left. Returns the managed file names.
async fn assert_unit_dir_sound(sb: &Sandbox, api: &common::Api) -> Vec<String> {
    let dir = sb.root().join(UNIT_DIR.trim_start_matches('/'));
    let mut managed = Vec::new();
    for entry in std::fs::read_dir(&dir).unwrap() {
        let entry = entry.unwrap();
        let name = entry.file_name().to_string_lossy().into_owned();
        assert!(
            !name.contains(".unitdeck-") && !name.ends_with(".tmp"),
            "a temporary file is left: {name}"
        );
        if !entry.file_type().unwrap().is_file() {
            continue;
        }
        let text = std::fs::read_to_string(entry.path()).unwrap();
        if !text.starts_with(MARKER) {
            continue;
        }
        let base = name
            .strip_suffix(".service")
            .or_else(|| name.strip_suffix(".timer"))
            .unwrap();
        let res = api.get(&format!("/api/v1/unit-files/{base}")).await;
        assert_eq!(
            res.status(),
            200,
            "{name} carries unitdeck's marker but unitdeck does not know it"
        );
        let detail: Value = res.json().await.unwrap();
        assert_eq!(
            detail["files"][&name].as_str(),
            Some(text.as_str()),
            "{name} is not the text of its current revision"
        );
        managed.push(name);
    }
    managed.sort();
    managed
}

fn crash_spec(name: &str) -> Value {
    json!({
        "name": name,
        "kind": "service",
        "description": "created while unitdeck is killed",
        "exec_start": ["/bin/sleep", "infinity"],
        "enable": true,
        "start": true
    })
}

#[tokio::test(flavor = "multi_thread")]
async fn kill_9_during_unit_file_creates() {
    let sb = Sandbox::start();
    let api = sb.login().await;
    // How long one create takes here, to spread the kills over its steps.
    let res = api
        .post_json("/api/v1/unit-files", &crash_spec("warmup"))
        .await;
    assert_eq!(res.status(), 201);
    let started = Instant::now();
    let res = api
        .post_json("/api/v1/unit-files", &crash_spec("timing"))
        .await;
    assert_eq!(res.status(), 201);
    let create_time = started.elapsed();
    eprintln!("one create takes {create_time:?}");

    let n = rounds(4, 12);
    let mut answered = BTreeMap::new();
    for i in 0..n {
        let name = format!("crash-{i}");
        // Kill points from the start of the request to a little past its usual end.
        let delay = create_time.mul_f64(1.2 * i as f64 / (n - 1) as f64);
        let post = {
            let req = api
                .request(reqwest::Method::POST, "/api/v1/unit-files")
                .json(&crash_spec(&name));
            tokio::spawn(async move { req.send().await.map(|r| r.status().as_u16()) })
        };
        tokio::time::sleep(delay).await;
        kill_unitdeck(&sb).await;
        let status = post.await.unwrap().ok();
        let on_disk = sb
            .root()
            .join(UNIT_DIR.trim_start_matches('/'))
            .join(format!("{name}.service"))
            .exists();
        eprintln!("{name}: killed after {delay:?}; answer: {status:?}; file kept: {on_disk}");
        answered.insert(name, status);
        let managed = assert_unit_dir_sound(&sb, &api).await;
        assert_database_sound(&sb);
        // A create that was answered 201 is kept.
        for (name, status) in &answered {
            if *status == Some(201) {
                assert!(
                    managed.contains(&format!("{name}.service")),
                    "{name} was created (201) but is gone"
                );
            }
        }
    }
    // The narrowest window: the unit file is in place (renamed, systemd reloading) but
    // the revision is not committed yet. Kill the moment the file appears.
    for i in 0..rounds(2, 6) {
        let name = format!("window-{i}");
        let file = sb
            .root()
            .join(UNIT_DIR.trim_start_matches('/'))
            .join(format!("{name}.service"));
        let (old, host_pid) = (unitdeck_pid(&sb), unitdeck_host_pid(&sb));
        let post = {
            let req = api
                .request(reqwest::Method::POST, "/api/v1/unit-files")
                .json(&crash_spec(&name));
            tokio::spawn(async move { req.send().await.map(|r| r.status().as_u16()) })
        };
        let deadline = Instant::now() + Duration::from_secs(30);
        while !file.exists() {
            assert!(Instant::now() < deadline, "{name}.service never appeared");
            std::thread::sleep(Duration::from_micros(200));
        }
        unsafe { libc::kill(host_pid, libc::SIGKILL) };
        wait_restarted(&sb, old).await;
        let status = post.await.unwrap().ok();
        eprintln!(
            "{name}: killed as its file appeared; answer: {status:?}; file kept: {}",
            file.exists()
        );
        answered.insert(name, status);
        assert_unit_dir_sound(&sb, &api).await;
        assert_database_sound(&sb);
    }

    // A kill while a temporary file is being written (a window of microseconds, too
    // narrow to aim at) leaves it behind: the next start removes it.
    sb.write(
        &format!("{UNIT_DIR}/.torn.service.unitdeck-1-0-0123456789ab.tmp"),
        "# Managed by unitdeck\n[Unit]\nDescr",
    );
    kill_unitdeck(&sb).await;
    assert_unit_dir_sound(&sb, &api).await;

    // unitdeck is usable afterwards: a name whose create was interrupted can be created.
    for (name, _) in answered {
        let res = api.get(&format!("/api/v1/unit-files/{name}")).await;
        if res.status() == 404 {
            let res = api
                .post_json("/api/v1/unit-files", &crash_spec(&name))
                .await;
            assert_eq!(res.status(), 201, "{name} can be created after the crash");
        }
    }
    assert_unit_dir_sound(&sb, &api).await;
    assert_database_sound(&sb);
}

// --- SIGKILL during override writes ---------------------------------------------------

const CRASH_UNIT: &str = "crash.service";
/// Another tool's drop-in beside unitdeck's.
const OTHER_DROP_IN: &str = "[Service]\nNice=1\n";

/// Override `i`: each one changes the drop-in's text.
fn crash_override(i: usize) -> Value {
    json!({"environment": {"ROUND": i.to_string()}, "memory_max": format!("{}M", 64 + i)})
}

/// The drop-in is exactly the current revision's text (absent when the override was
/// removed), systemd applies that text, nothing temporary or half-written is left in its
/// directory, and the other drop-in is untouched. The current `ROUND`, if any.
async fn assert_drop_in_sound(sb: &Sandbox, api: &common::Api) -> Option<String> {
    let dir = sb
        .root()
        .join(UNIT_DIR.trim_start_matches('/'))
        .join(format!("{CRASH_UNIT}.d"));
    for entry in std::fs::read_dir(&dir).unwrap() {
        let name = entry.unwrap().file_name().to_string_lossy().into_owned();
        assert!(!name.contains(".unitdeck-"), "left behind: {name}");
    }
    assert_eq!(
        std::fs::read_to_string(dir.join("10-other.conf")).unwrap(),
        OTHER_DROP_IN
    );
    let state = api
        .get_json(&format!("/api/v1/units/{CRASH_UNIT}/override"))
        .await;
    let file = std::fs::read_to_string(dir.join("50-unitdeck.conf")).ok();
    assert_eq!(
        file.as_deref(),
        state["text"].as_str(),
        "the drop-in is not the current revision's: {state}"
    );
    let round = state["settings"]["environment"]["ROUND"]
        .as_str()
        .map(String::from);
    // The restore after a crash reloads systemd in the background.
    let expected = round.as_ref().map(|r| format!("ROUND={r}"));
    wait_for(
        sb,
        "systemd applies the current revision",
        Duration::from_secs(10),
        async || {
            let environment = sb.show(CRASH_UNIT, "Environment");
            let applied = match &expected {
                Some(e) => environment.split_whitespace().any(|v| v == e),
                None => !environment.contains("ROUND="),
            };
            (applied && sb.show(CRASH_UNIT, "NeedDaemonReload") == "no").then_some(())
        },
    )
    .await;
    round
}

#[tokio::test(flavor = "multi_thread")]
async fn kill_9_during_override_writes() {
    let sb = Sandbox::start();
    sb.write(
        &format!("{UNIT_DIR}/{CRASH_UNIT}.d/10-other.conf"),
        OTHER_DROP_IN,
    );
    sb.add_unit(CRASH_UNIT, PROBE);
    sb.sh(&format!("systemctl start {CRASH_UNIT}"));
    let api = sb.login().await;
    let url = format!("/api/v1/units/{CRASH_UNIT}/override");
    assert_eq!(api.put_json(&url, &crash_override(0)).await.status(), 200);
    let started = Instant::now();
    assert_eq!(api.put_json(&url, &crash_override(1)).await.status(), 200);
    let save_time = started.elapsed();
    eprintln!("one override save takes {save_time:?}");

    // Kill points spread from the request's start to a little past its usual end; every
    // third change is a removal.
    let n = rounds(5, 15);
    for i in 0..n {
        let delay = save_time.mul_f64(1.2 * i as f64 / (n - 1) as f64);
        let change = {
            let req = if i % 3 == 2 {
                api.request(reqwest::Method::DELETE, &url)
            } else {
                api.request(reqwest::Method::PUT, &url)
                    .json(&crash_override(i + 2))
            };
            tokio::spawn(async move { req.send().await.map(|r| r.status().as_u16()) })
        };
        tokio::time::sleep(delay).await;
        kill_unitdeck(&sb).await;
        let status = change.await.unwrap().ok();
        let round = assert_drop_in_sound(&sb, &api).await;
        assert_database_sound(&sb);
        eprintln!("change {i}: killed after {delay:?}; answer {status:?}; now ROUND={round:?}");
        if status == Some(200) && i % 3 != 2 {
            assert_eq!(
                round,
                Some((i + 2).to_string()),
                "a save answered 200 is kept"
            );
        }
    }
    // The narrowest window: the new drop-in is in place, the revision not committed yet.
    for i in 0..rounds(2, 6) {
        let round = 100 + i;
        let file = sb
            .root()
            .join(UNIT_DIR.trim_start_matches('/'))
            .join(format!("{CRASH_UNIT}.d/50-unitdeck.conf"));
        let (old, host_pid) = (unitdeck_pid(&sb), unitdeck_host_pid(&sb));
        let change = {
            let req = api
                .request(reqwest::Method::PUT, &url)
                .json(&crash_override(round));
            tokio::spawn(async move { req.send().await.map(|r| r.status().as_u16()) })
        };
        let written = format!("ROUND={round}\"");
        let deadline = Instant::now() + Duration::from_secs(30);
        while !std::fs::read_to_string(&file).is_ok_and(|t| t.contains(&written)) {
            assert!(
                Instant::now() < deadline,
                "the drop-in of round {round} never appeared"
            );
            std::thread::sleep(Duration::from_micros(200));
        }
        unsafe { libc::kill(host_pid, libc::SIGKILL) };
        wait_restarted(&sb, old).await;
        let status = change.await.unwrap().ok();
        let now = assert_drop_in_sound(&sb, &api).await;
        eprintln!(
            "round {round}: killed as its drop-in appeared; answer {status:?}; now ROUND={now:?}"
        );
        assert_database_sound(&sb);
    }
    // Each was put back by the next start, audited.
    let records = common::audit(&api).await;
    let restore = common::find_audit(&records, "override.restore", Some(CRASH_UNIT), "ok");
    assert!(
        restore["detail"].as_str().unwrap().contains("interrupted"),
        "{restore}"
    );
    // A temporary file torn by a kill (a window too narrow to aim at) goes at the next start.
    sb.write(
        &format!("{UNIT_DIR}/{CRASH_UNIT}.d/.50-unitdeck.conf.unitdeck-1-0-0123456789ab.tmp"),
        "# Managed by unitdeck\n[Serv",
    );
    kill_unitdeck(&sb).await;
    assert_drop_in_sound(&sb, &api).await;
    // And unitdeck goes on: a save after all that works.
    assert_eq!(api.put_json(&url, &crash_override(7)).await.status(), 200);
    assert_eq!(assert_drop_in_sound(&sb, &api).await.as_deref(), Some("7"));
}

/// Not a crash but the same window: the client gives up (a timeout, a closed tab) while
/// its create is between installing the file and committing the revision.
#[tokio::test(flavor = "multi_thread")]
async fn client_gone_during_a_unit_file_create() {
    let sb = Sandbox::start();
    let api = sb.login().await;
    for i in 0..rounds(2, 6) {
        let name = format!("gone-{i}");
        let file = sb
            .root()
            .join(UNIT_DIR.trim_start_matches('/'))
            .join(format!("{name}.service"));
        let post = {
            let req = api
                .request(reqwest::Method::POST, "/api/v1/unit-files")
                .json(&crash_spec(&name));
            tokio::spawn(async move { req.send().await.map(|r| r.status().as_u16()) })
        };
        let deadline = Instant::now() + Duration::from_secs(30);
        while !file.exists() {
            assert!(Instant::now() < deadline, "{name}.service never appeared");
            std::thread::sleep(Duration::from_micros(200));
        }
        post.abort();
        // The change completes or is undone, without a restart.
        wait_for(
            &sb,
            "the create settled",
            Duration::from_secs(30),
            async || {
                let known = api
                    .get(&format!("/api/v1/unit-files/{name}"))
                    .await
                    .status()
                    == 200;
                let leftovers = std::fs::read_dir(file.parent().unwrap())
                    .unwrap()
                    .flatten()
                    .any(|e| e.file_name().to_string_lossy().contains(".unitdeck-"));
                (known == file.exists() && !leftovers).then_some(())
            },
        )
        .await;
        eprintln!(
            "{name}: client left as its file appeared; file kept: {}",
            file.exists()
        );
        assert_unit_dir_sound(&sb, &api).await;
        assert_database_sound(&sb);
    }
}

/// A unit action is recorded before it runs: unitdeck killed while it waits for the job
/// leaves the record (`interrupted` once it is back), never an action nobody recorded.
#[tokio::test(flavor = "multi_thread")]
async fn kill_9_during_a_unit_action_keeps_its_audit_record() {
    let sb = Sandbox::start();
    // Its start job runs until /run/slow-hold is gone: the kill lands while it waits.
    sb.write("/run/slow-hold", "");
    sb.add_unit(
        "slow.service",
        &format!(
            "[Service]\nExecStartPre={}\nExecStart=/bin/sleep infinity\n",
            while_exists("/run/slow-hold")
        ),
    );
    let api = Arc::new(sb.login().await);
    let start = {
        let api = api.clone();
        tokio::spawn(async move {
            api.request(reqwest::Method::POST, "/api/v1/units/slow.service/start")
                .send()
                .await
        })
    };
    wait_for(
        &sb,
        "the start job running",
        Duration::from_secs(20),
        async || (sb.show("slow.service", "ActiveState") == "activating").then_some(()),
    )
    .await;
    kill_unitdeck(&sb).await;
    assert!(
        start.await.unwrap().is_err(),
        "the request was cut off with unitdeck"
    );
    assert_database_sound(&sb);
    let query = "SELECT actor, target, result FROM audit WHERE action = 'unit.start'";
    let want = json!([["admin", "slow.service", "interrupted"]]);
    wait_for(
        &sb,
        "the record marked interrupted",
        Duration::from_secs(10),
        async || (sql(&sb, query) == want).then_some(()),
    )
    .await;
}

#[tokio::test(flavor = "multi_thread")]
async fn kill_9_during_audit_writes() {
    let sb = Sandbox::start();
    let api = Arc::new(sb.login().await);
    for round in 0..rounds(2, 8) {
        let stop = Arc::new(std::sync::atomic::AtomicBool::new(false));
        let created = Arc::new(Mutex::new(Vec::<i64>::new()));
        let mut writers = Vec::new();
        // Token creates (a token row and an audit row each) ...
        for w in 0..4 {
            let (api, stop, created) = (api.clone(), stop.clone(), created.clone());
            writers.push(tokio::spawn(async move {
                let mut i = 0;
                while !stop.load(std::sync::atomic::Ordering::Relaxed) {
                    let body = json!({ "name": format!("burst-{round}-{w}-{i}"), "scope": "read" });
                    let Ok(res) = api
                        .request(reqwest::Method::POST, "/api/v1/tokens")
                        .json(&body)
                        .send()
                        .await
                    else {
                        break;
                    };
                    if res.status() == 201
                        && let Ok(v) = res.json::<Value>().await
                    {
                        created.lock().unwrap().push(v["id"].as_i64().unwrap());
                    }
                    i += 1;
                }
            }));
        }
        // ... and failed logins (an audit row each, "failed" then "rate-limited").
        for _ in 0..2 {
            let (base, stop) = (sb.base_url(), stop.clone());
            writers.push(tokio::spawn(async move {
                let client = reqwest::Client::builder()
                    .timeout(Duration::from_secs(30))
                    .build()
                    .unwrap();
                while !stop.load(std::sync::atomic::Ordering::Relaxed) {
                    let res = client
                        .post(format!("{base}/api/v1/session"))
                        .json(&json!({ "password": "wrong" }))
                        .send()
                        .await;
                    if res.is_err() {
                        break;
                    }
                }
            }));
        }
        // Let the burst run, then kill in the middle of it.
        let before = created.lock().unwrap().len();
        wait_for(
            &sb,
            "a burst of token creates",
            Duration::from_secs(30),
            async || (created.lock().unwrap().len() >= before + 20).then_some(()),
        )
        .await;
        kill_unitdeck(&sb).await;
        stop.store(true, std::sync::atomic::Ordering::Relaxed);
        for w in writers {
            w.await.unwrap();
        }
        let created = created.lock().unwrap().clone();
        eprintln!(
            "round {round}: {} tokens created before the kill",
            created.len()
        );
        assert_database_sound(&sb);
        // Every token whose create was answered is still there, with its audit row.
        let tokens: BTreeSet<i64> = sql(&sb, "SELECT id FROM tokens")
            .as_array()
            .unwrap()
            .iter()
            .map(|r| r[0].as_i64().unwrap())
            .collect();
        for id in &created {
            assert!(
                tokens.contains(id),
                "token {id} was created (201) but is gone"
            );
        }
    }
    // The audit log still reads through the API.
    let audit = api.get_json("/api/v1/audit?limit=1000").await;
    assert!(audit.as_array().unwrap().len() > 20);
}

// --- 5. a full unit directory ---------------------------------------------------------

/// A tmpfs of `size` over the unit directory, holding what was there; unitdeck restarts
/// so that its own mount namespace (ReadWritePaths=) sees it.
fn unit_dir_on_tmpfs(sb: &Sandbox, size: &str) {
    sb.sh(&format!(
        "cp -a {UNIT_DIR} /tmp/units && mount -t tmpfs -o size={size},mode=0755 tmpfs {UNIT_DIR} \
         && cp -a /tmp/units/. {UNIT_DIR}/ && systemctl daemon-reload \
         && systemctl restart unitdeck.service"
    ));
    sb.wait_healthy();
}

/// A delete that cannot remove the files (a read-only unit directory) leaves the unit as
/// it was: a 5xx with the reason, and the service it stopped first running again.
#[tokio::test(flavor = "multi_thread")]
async fn a_failed_delete_puts_the_unit_back() {
    let sb = Sandbox::start();
    unit_dir_on_tmpfs(&sb, "4m");
    let api = sb.login().await;
    let res = api
        .post_json("/api/v1/unit-files", &crash_spec("keep-me"))
        .await;
    assert_eq!(res.status(), 201, "{}", res.text().await.unwrap());
    let pid = sb.show("keep-me.service", "MainPID");
    sb.sh(&format!("mount -o remount,ro {UNIT_DIR}"));
    let res = api.delete("/api/v1/unit-files/keep-me").await;
    let status = res.status().as_u16();
    let body: Value = res.json().await.unwrap();
    assert!((500..600).contains(&status), "a 5xx: {status} {body}");
    assert!(
        body["detail"].as_str().unwrap().contains("ead-only"),
        "the reason: {body}"
    );
    assert_eq!(sb.show("keep-me.service", "ActiveState"), "active");
    assert_ne!(
        sb.show("keep-me.service", "MainPID"),
        pid,
        "stopped for the delete, then started again"
    );
    assert_eq!(sb.show("keep-me.service", "UnitFileState"), "enabled");
    sb.sh(&format!("mount -o remount,rw {UNIT_DIR}"));
    assert_eq!(api.get("/api/v1/unit-files/keep-me").await.status(), 200);
}

#[tokio::test(flavor = "multi_thread")]
async fn full_unit_directory_is_a_clean_5xx() {
    let sb = Sandbox::start();
    // A small one, then filled up.
    unit_dir_on_tmpfs(&sb, "256k");
    sb.sh(&format!(
        "dd if=/dev/zero of={UNIT_DIR}/.filler bs=4096 2>/dev/null || true"
    ));
    let api = sb.login().await;
    // No room at all, then room for one small file (the create's first write succeeds,
    // a later one fails).
    for free_pages in [0, 1] {
        if free_pages > 0 {
            sb.sh(&format!(
                "truncate -s -{} {UNIT_DIR}/.filler",
                4096 * free_pages
            ));
        }
        let df = sb.sh(&format!("df -k --output=avail {UNIT_DIR} | tail -1"));
        eprintln!("{free_pages} page(s) free: {} KiB available", df.trim());
        let before = sb.unit_dir_snapshot();
        let res = api
            .post_json("/api/v1/unit-files", &crash_spec("no-room"))
            .await;
        let status = res.status().as_u16();
        let content_type = res.headers()["content-type"].to_str().unwrap().to_string();
        let body: Value = res.json().await.unwrap();
        eprintln!("answer: {status} {body}");
        assert!((500..600).contains(&status), "a 5xx: {status} {body}");
        assert_eq!(content_type, "application/problem+json");
        assert_eq!(body["status"], status);
        let detail = body["detail"].as_str().unwrap().to_lowercase();
        assert!(detail.contains("no space left"), "the reason: {body}");

        // Nothing half-written, nothing recorded, systemd never saw it.
        assert_eq!(
            sb.unit_dir_snapshot(),
            before,
            "the unit directory is unchanged"
        );
        assert_eq!(api.get("/api/v1/unit-files/no-room").await.status(), 404);
        assert_eq!(sb.show("no-room.service", "LoadState"), "not-found");
        let audit = api.get_json("/api/v1/audit?limit=20").await;
        assert!(
            audit
                .as_array()
                .unwrap()
                .iter()
                .any(|a| a["action"] == "unitfile.create"
                    && a["target"] == "no-room.service"
                    && a["result"] != "ok"),
            "the failure is audited: {audit}"
        );
    }

    // With room again, the same create works.
    sb.sh(&format!("rm {UNIT_DIR}/.filler"));
    let res = api
        .post_json("/api/v1/unit-files", &crash_spec("no-room"))
        .await;
    assert_eq!(res.status(), 201);
    assert_unit_dir_sound(&sb, &api).await;
}
