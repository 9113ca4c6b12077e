//! A unit's runs against a real systemd: 20 runs of a job with mixed results (success,
//! exit codes, a kill) read back in order, checked run by run against what `systemctl
//! show` said right after each and against `journalctl`; what started them; a run in
//! progress.

mod common;

use std::collections::HashMap;
use std::time::Duration;

use common::{Sandbox, eventually};
use serde_json::{Value, json};

/// A oneshot that does what /run/mixed-plan says: `EXIT PAUSE` (exit code or `kill`;
/// seconds to sleep first, or `hold`: until /run/mixed-hold is gone). No start limit: it
/// fails often and quickly.
const JOB: &str = "[Unit]\nStartLimitIntervalSec=0\n[Service]\nType=oneshot\n\
    ExecStart=/bin/sh -c 'read code pause < /run/mixed-plan; echo run $code; \
    case $pause in hold) while [ -e /run/mixed-hold ]; do sleep 0.05; done;; *) sleep $pause;; esac; \
    case $code in kill) kill -9 $$$$;; *) exit $code;; esac'\n";

/// What systemd said of a run right after it.
#[derive(Debug)]
struct Shown {
    invocation: String,
    result: String,
    exit_status: Value,
    duration_ms: u64,
}

fn shown(sb: &Sandbox) -> Shown {
    let text = sb.sh(
        "systemctl show mixed.service -p InvocationID -p Result -p ExecMainCode -p ExecMainStatus \
         -p ExecMainStartTimestampMonotonic -p ExecMainExitTimestampMonotonic",
    );
    let p: HashMap<&str, &str> = text.lines().filter_map(|l| l.split_once('=')).collect();
    let us = |k: &str| p[k].parse::<u64>().unwrap();
    Shown {
        invocation: p["InvocationID"].to_string(),
        result: p["Result"].to_string(),
        // 1 is CLD_EXITED: a status that is an exit code; and 0 is no failure.
        exit_status: match (p["ExecMainCode"], p["ExecMainStatus"]) {
            ("1", "0") => Value::Null,
            ("1", status) => json!(status.parse::<i64>().unwrap()),
            _ => Value::Null,
        },
        duration_ms: (us("ExecMainExitTimestampMonotonic") - us("ExecMainStartTimestampMonotonic"))
            / 1000,
    }
}

#[tokio::test(flavor = "multi_thread")]
async fn twenty_runs_read_back_as_systemd_recorded_them() {
    let sb = Sandbox::start();
    let api = sb.login().await;
    // The timer (never due) keeps the job loaded: a successful oneshot that nothing
    // references is unloaded at once, and `systemctl show` forgets its run.
    sb.write("/etc/systemd/system/mixed.service", JOB);
    sb.add_unit("mixed.timer", "[Timer]\nOnCalendar=2099-01-01\n");
    sb.sh("systemctl start mixed.timer");
    eventually(
        "unitdeck knows the job",
        Duration::from_secs(15),
        async || (api.get("/api/v1/units/mixed.service").await.status() == 200).then_some(()),
    )
    .await;

    let codes = ["0", "3", "0", "kill", "2"];
    let pauses = ["0.05", "0.1", "0.2", "0.15"];
    let mut runs = Vec::new();
    for i in 0..20 {
        let code = codes[i % codes.len()];
        sb.write(
            "/run/mixed-plan",
            &format!("{code} {}\n", pauses[i % pauses.len()]),
        );
        // Every fourth through unitdeck (a manual run), the others by systemctl.
        let by_unitdeck = i % 4 == 1;
        if by_unitdeck {
            let res = api.post("/api/v1/units/mixed.service/start").await;
            assert_eq!(res.status(), 200);
        } else {
            let _ = sb.exec(&["systemctl", "start", "mixed.service"]);
        }
        let s = shown(&sb);
        let expected = match code {
            "0" => "success",
            "kill" => "signal",
            _ => "exit-code",
        };
        assert_eq!(s.result, expected, "run {i}: {s:?}");
        runs.push((s, by_unitdeck));
    }

    let api_runs = api
        .get_json("/api/v1/units/mixed.service/runs?limit=20")
        .await;
    let api_runs = api_runs.as_array().unwrap();
    assert_eq!(api_runs.len(), 20);
    // Newest first: the reverse of the order they ran in.
    for (r, (s, by_unitdeck)) in api_runs.iter().zip(runs.iter().rev()) {
        assert_eq!(r["invocation_id"], s.invocation.as_str(), "{r}");
        assert_eq!(r["result"], s.result.as_str(), "{r}");
        assert_eq!(r["exit_status"], s.exit_status, "{r}");
        let ms = r["duration_ms"].as_u64().unwrap();
        // The journal's "Starting" comes just before the process, its end just after
        // (both by the monotonic clock, as systemd's); journald stamps an entry when it
        // reads it, late on a busy machine. Still tight enough to catch a wrong unit (µs,
        // s) or the wall clock.
        assert!(
            ms + 100 >= s.duration_ms && ms <= s.duration_ms + 500,
            "{ms} ms against systemd's {} ms: {r}",
            s.duration_ms
        );
        let trigger = if *by_unitdeck {
            json!("manual")
        } else {
            Value::Null
        };
        assert_eq!(r["trigger"], trigger, "{r}");
        assert!(r["ended_at"].as_str().unwrap() > r["started_at"].as_str().unwrap());
        assert_eq!(r["refused_starts"], 0);
    }
    // The same invocations, in the same order, as journalctl lists PID 1's entries.
    let journal = sb.sh(
        "journalctl _PID=1 UNIT=mixed.service -o json --output-fields=INVOCATION_ID,UNIT_RESULT",
    );
    let mut ids: Vec<String> = Vec::new();
    let mut results: HashMap<String, String> = HashMap::new();
    for line in journal.lines() {
        let e: Value = serde_json::from_str(line).unwrap();
        let Some(id) = e["INVOCATION_ID"].as_str().filter(|i| !i.is_empty()) else {
            continue;
        };
        if !ids.iter().any(|x| x == id) {
            ids.push(id.to_string());
        }
        if let Some(result) = e["UNIT_RESULT"].as_str() {
            results.entry(id.to_string()).or_insert(result.to_string());
        }
    }
    let newest_first: Vec<&str> = api_runs
        .iter()
        .map(|r| r["invocation_id"].as_str().unwrap())
        .collect();
    let mut journal_newest_first: Vec<&str> = ids.iter().map(String::as_str).collect();
    journal_newest_first.reverse();
    assert_eq!(newest_first, journal_newest_first);
    for r in api_runs {
        let id = r["invocation_id"].as_str().unwrap();
        match results.get(id) {
            Some(result) => assert_eq!(r["result"], result.as_str()),
            None => assert_eq!(r["result"], "success"),
        }
    }
    // A smaller limit: the newest.
    let five = api
        .get_json("/api/v1/units/mixed.service/runs?limit=5")
        .await;
    assert_eq!(five.as_array().unwrap().as_slice(), &api_runs[..5]);
    // The unit page's strip: every run, oldest first, each linking to its logs.
    let strip = api
        .get("/ui/units/mixed.service/runs")
        .await
        .text()
        .await
        .unwrap();
    assert_eq!(strip.matches("class=\"run\"").count(), 20, "{strip}");
    let oldest = &runs[0].0.invocation;
    let newest = &runs[19].0.invocation;
    assert!(strip.find(oldest.as_str()) < strip.find(newest.as_str()));
    assert!(strip.contains(&format!(
        "href=\"units/mixed.service?invocation={newest}#logs\""
    )));

    // A unit the container started while it booted.
    let boot = api
        .get_json("/api/v1/units/systemd-tmpfiles-setup.service/runs")
        .await;
    assert_eq!(boot[0]["trigger"], "boot", "{boot}");
    assert_eq!(
        boot[0]["result"], "running",
        "a oneshot that remains after exit: {boot}"
    );

    // A run in progress: `running`, no end, its duration so far. It lasts until the
    // test has seen it (a fixed pause was over before a busy machine's first look).
    sb.write("/run/mixed-plan", "0 hold\n");
    sb.write("/run/mixed-hold", "");
    sb.sh("systemctl start --no-block mixed.service");
    let running = eventually(
        "the run shows running",
        Duration::from_secs(30),
        async || {
            let runs = api
                .get_json("/api/v1/units/mixed.service/runs?limit=1")
                .await;
            (runs[0]["result"] == "running").then(|| runs[0].clone())
        },
    )
    .await;
    assert_eq!(running["ended_at"], Value::Null);
    let so_far = running["duration_ms"].as_u64().unwrap();
    tokio::time::sleep(Duration::from_secs(1)).await;
    let later = api
        .get_json("/api/v1/units/mixed.service/runs?limit=1")
        .await;
    assert_eq!(later[0]["result"], "running", "{later}");
    assert!(
        later[0]["duration_ms"].as_u64().unwrap() >= so_far + 1000,
        "the duration so far grows: {so_far} ms, then {later}"
    );
    std::fs::remove_file(sb.root().join("run/mixed-hold")).unwrap();
    let done = eventually("the run ends", Duration::from_secs(15), async || {
        let runs = api
            .get_json("/api/v1/units/mixed.service/runs?limit=1")
            .await;
        (runs[0]["result"] == "success").then(|| runs[0].clone())
    })
    .await;
    assert_eq!(done["invocation_id"], running["invocation_id"]);
    assert!(
        done["duration_ms"].as_u64().unwrap() >= so_far + 1000,
        "{done}"
    );
}
