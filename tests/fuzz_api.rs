//! Fuzzing the API (issue 9): schemathesis generates requests from
//! `/api/openapi.json` (valid and invalid ones) and sends them with an admin token to
//! unitdeck running against a real systemd. Every answer must be one the document
//! describes (status, content type, body schema, headers), none may be a 5xx, invalid
//! requests must be refused and valid ones accepted.
//!
//! The run is short by default (90 s of schemathesis, for CI); `UNITDECK_FUZZ_LONG=1`
//! makes it 10 minutes and at least 2,000 requests:
//!
//! ```text
//! UNITDECK_FUZZ_LONG=1 cargo nextest run --test fuzz_api --no-capture
//! ```
//!
//! `UNITDECK_FUZZ_SEED=N` replays a run (schemathesis prints its seed). The hooks in
//! `tests/fuzz/hooks.py` keep the fuzzer from restarting unitdeck or powering the
//! container off; `tests/fuzz/schemathesis.toml` holds the per-operation settings.

mod common;

use std::path::{Path, PathBuf};
use std::process::Command;
use std::time::Instant;

use common::{Sandbox, project_root};
use serde_json::{Value, json};

/// The version scripts/test installs.
const SCHEMATHESIS: &str = "4.32.5";
const VENV_ST: &str = "/opt/unitdeck-venv/bin/st";

/// How hard to fuzz.
struct Budget {
    /// Test cases per operation in each round of a phase (`--max-examples`).
    examples: u32,
    /// Seconds for the whole schemathesis run (`--max-time`): after the examples and
    /// coverage phases, fuzzing and stateful rounds repeat until it is spent.
    seconds: u32,
    /// The run fails below this many requests: a budget that no longer buys them
    /// must not pass silently.
    min_requests: usize,
}

const SHORT: Budget = Budget {
    examples: 10,
    seconds: 90,
    min_requests: 300,
};
const LONG: Budget = Budget {
    examples: 100,
    seconds: 600,
    min_requests: 2000,
};

/// A fixed seed in CI: a failure there can be replayed.
const CI_SEED: &str = "20261128";

/// Units for the fuzzer to act on (the hooks spare the container's own).
const FUZZ_UNITS: &[(&str, &str)] = &[
    (
        "fuzz-sleep.service",
        "[Unit]\nDescription=Sleeps\n[Service]\nExecStart=/bin/sleep infinity\n\
         ExecReload=/bin/true\n[Install]\nWantedBy=multi-user.target\n",
    ),
    (
        "fuzz-fail.service",
        "[Unit]\nDescription=Fails\n[Service]\nType=oneshot\n\
         ExecStart=/bin/sh -c 'echo failing on purpose; exit 3'\n",
    ),
];

/// The schemathesis CLI: the venv scripts/test makes, else `st` on PATH.
fn schemathesis() -> PathBuf {
    let on_path = std::env::var_os("PATH")
        .map(|p| std::env::split_paths(&p).collect::<Vec<_>>())
        .unwrap_or_default()
        .into_iter()
        .map(|dir| dir.join("st"));
    for st in std::iter::once(PathBuf::from(VENV_ST)).chain(on_path) {
        let Ok(out) = Command::new(&st).arg("--version").output() else {
            continue;
        };
        if String::from_utf8_lossy(&out.stdout).starts_with("st, version 4.") {
            return st;
        }
    }
    panic!(
        "schemathesis 4 is not installed (neither {VENV_ST} nor `st` on PATH): run \
         scripts/test, which installs it, or by hand: python3 -m venv /opt/unitdeck-venv && \
         /opt/unitdeck-venv/bin/pip install schemathesis=={SCHEMATHESIS}"
    );
}

#[tokio::test(flavor = "multi_thread")]
async fn api_answers_as_its_openapi_document_says() {
    let st = schemathesis();
    let long = std::env::var("UNITDECK_FUZZ_LONG").is_ok_and(|v| v == "1");
    let budget = if long { LONG } else { SHORT };
    let seed = std::env::var("UNITDECK_FUZZ_SEED")
        .ok()
        .or_else(|| (!long).then(|| CI_SEED.to_string()));

    let sb = Sandbox::start();
    for (name, text) in FUZZ_UNITS {
        sb.add_unit(name, text);
    }
    sb.sh("systemctl start fuzz-sleep.service");
    let admin = sb.login().await;
    let res = admin
        .post_json("/api/v1/tokens", &json!({"name": "fuzz", "scope": "admin"}))
        .await;
    assert_eq!(res.status(), 201);
    let token: Value = res.json().await.unwrap();
    let secret = token["token"].as_str().unwrap().to_string();

    let dir = std::env::temp_dir().join(format!("unitdeck-fuzz-{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&dir);
    std::fs::create_dir_all(&dir).unwrap();
    // The container's own units, for the hooks: {"name": protected}.
    let units = admin.get_json("/api/v1/units?type=all").await;
    let system: serde_json::Map<String, Value> = units
        .as_array()
        .unwrap()
        .iter()
        .map(|u| (u["name"].as_str().unwrap(), u["protected"].clone()))
        .filter(|(name, _)| !FUZZ_UNITS.iter().any(|(fuzz, _)| fuzz == name))
        .map(|(name, protected)| (name.to_string(), protected))
        .collect();
    assert!(system.contains_key("unitdeck.service") && system.contains_key("dbus.service"));
    let units_file = dir.join("system-units.json");
    std::fs::write(&units_file, Value::Object(system).to_string()).unwrap();
    // Every name of every unit whose start unitdeck refuses (it would take the container
    // down): the hooks let the fuzzer try those for real, against the guard.
    let mut down: Vec<String> = Vec::new();
    for unit in unitdeck::systemd::names::SYSTEM_DOWN_UNITS {
        down.extend(
            sb.show(unit, "Names")
                .split_whitespace()
                .map(str::to_string),
        );
    }
    let down_file = dir.join("down-units.json");
    std::fs::write(&down_file, json!(down).to_string()).unwrap();

    let fuzz_dir = project_root().join("tests/fuzz");
    let mut cmd = Command::new(&st);
    cmd.current_dir(&dir)
        .env("SCHEMATHESIS_HOOKS", fuzz_dir.join("hooks.py"))
        .env("UNITDECK_FUZZ_UNITS", &units_file)
        .env("UNITDECK_FUZZ_DOWN", &down_file)
        .env("UNITDECK_FUZZ_TOKEN_ID", token["id"].to_string())
        .arg("--config-file")
        .arg(fuzz_dir.join("schemathesis.toml"))
        .args(["run", &format!("{}/api/openapi.json", sb.base_url())])
        .args(["--header", &format!("Authorization: Bearer {secret}")])
        // Every check schemathesis has is on by default (no `--checks` here: on the
        // command line it would also override the per-route settings of
        // schemathesis.toml). object_level_authorization compares several configured
        // identities; unitdeck has one owner (tokens are scopes of it), so it finds
        // nothing to compare and passes.
        .args(["--max-examples", &budget.examples.to_string()])
        .args(["--max-time", &budget.seconds.to_string()])
        // Two at a time: the machine has two cores, and unitdeck and systemd in the
        // container need them too.
        .args(["--workers", "2"])
        .args(["--report", "har", "--report-har-path"])
        .arg(dir.join("requests.har"))
        .args(["--generation-database", "none", "--no-color"]);
    if let Some(seed) = &seed {
        cmd.args(["--seed", seed]);
    }
    let started = Instant::now();
    let out = cmd.output().expect("schemathesis runs");
    let took = started.elapsed();
    let stdout = String::from_utf8_lossy(&out.stdout);
    println!("{stdout}");
    eprintln!("{}", String::from_utf8_lossy(&out.stderr));

    let har = HarStats::read(&dir.join("requests.har"));
    let test_cases = stdout
        .lines()
        .skip_while(|l| l.trim() != "Test cases:")
        .nth(1)
        .unwrap_or("?")
        .trim();
    println!(
        "fuzz_api: schemathesis {}: {} requests ({test_cases}) in {:.0} s, {} answered 5xx, \
         by status: {:?}",
        if long { "long run" } else { "short run" },
        har.requests,
        took.as_secs_f64(),
        har.server_errors,
        har.by_status,
    );
    assert!(
        out.status.success(),
        "schemathesis found problems (exit {:?}): see its report above",
        out.status.code()
    );
    assert_eq!(har.server_errors, 0, "5xx answers");
    assert!(
        har.requests >= budget.min_requests,
        "only {} requests, expected at least {}",
        har.requests,
        budget.min_requests
    );
    // The fuzzer's token survived (the hooks spare it) and unitdeck still answers.
    let fuzzer = sb.with_token(&secret);
    assert_eq!(fuzzer.get("/api/v1/units").await.status(), 200);
    // Every channel the fuzzer made posts to this machine only (the hooks' sink).
    let channels = fuzzer.get_json("/api/v1/notifications/channels").await;
    let channels = channels.as_array().unwrap();
    for c in channels {
        let url = c["url"].as_str().unwrap();
        let rest = url.strip_prefix("http://127.0.0.1:9");
        assert!(
            rest.is_some_and(|r| r.is_empty() || r.starts_with(['/', '?', '#'])),
            "a channel to {url}"
        );
    }
    println!(
        "fuzz_api: {} notification channels, all to 127.0.0.1:9",
        channels.len()
    );
    let _ = std::fs::remove_dir_all(&dir);
}

/// What the HAR report says was sent and answered.
struct HarStats {
    requests: usize,
    server_errors: usize,
    by_status: std::collections::BTreeMap<u64, usize>,
}

impl HarStats {
    fn read(path: &Path) -> Self {
        let text = std::fs::read(path)
            .unwrap_or_else(|e| panic!("schemathesis wrote no report {}: {e}", path.display()));
        let har: Value = serde_json::from_slice(&text).unwrap();
        let entries = har["log"]["entries"].as_array().unwrap();
        let mut by_status = std::collections::BTreeMap::new();
        for e in entries {
            *by_status
                .entry(e["response"]["status"].as_u64().unwrap_or(0))
                .or_default() += 1;
        }
        Self {
            requests: entries.len(),
            server_errors: by_status.range(500..).map(|(_, n)| n).sum(),
            by_status,
        }
    }
}
