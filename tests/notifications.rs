//! Notifications against a real systemd and real HTTP receivers on 127.0.0.1 (in this
//! process; the containers share the host's network): a failed service, a failing
//! endpoint, a health check turning red, a timer's job exiting 3, a restart loop and its
//! recovery.

mod common;

use std::time::{Duration, SystemTime};

use common::receiver::Receiver;
use common::{Api, Sandbox, eventually};
use serde_json::{Value, json};

/// The base of the links in notifications; a name the test cannot reach, on purpose: the
/// link's path and query are checked against the sandbox itself.
const PUBLIC_URL: &str = "http://devbox.test:8035";

async fn channel(api: &Api, spec: Value) -> i64 {
    let res = api.post_json("/api/v1/notifications/channels", &spec).await;
    assert_eq!(res.status(), 201, "{}", res.text().await.unwrap());
    res.json::<Value>().await.unwrap()["id"].as_i64().unwrap()
}

/// The one notification `event` of `unit` at `receiver`, once it is there; a second
/// one within `settle` fails the test.
async fn one(receiver: &Receiver, event: &str, unit: &str, settle: Duration) -> Value {
    let first = eventually(
        &format!("a {event} notification for {unit}"),
        Duration::from_secs(30),
        async || receiver.events(event, unit).first().cloned(),
    )
    .await;
    tokio::time::sleep(settle).await;
    let all = receiver.events(event, unit);
    assert_eq!(all.len(), 1, "{event} of {unit}: {all:#?}");
    first.1
}

async fn deliveries(api: &Api) -> Vec<Value> {
    api.get_json("/api/v1/notifications/deliveries?limit=1000")
        .await
        .as_array()
        .unwrap()
        .clone()
}

#[tokio::test(flavor = "multi_thread")]
async fn failures_health_and_jobs_reach_the_receivers() {
    let sb = Sandbox::start_with(&[("UNITDECK_PUBLIC_URL", PUBLIC_URL)]);
    let api = sb.login().await;
    let ok = Receiver::start(200).await;
    let broken = Receiver::start(500).await;
    let all_events = json!([
        "unit_failed",
        "restart_loop",
        "unhealthy",
        "job_failed",
        "recovered"
    ]);
    channel(
        &api,
        json!({"name": "everything", "kind": "webhook", "url": ok.url("/hook"),
               "events": all_events, "cooldown_s": 5}),
    )
    .await;
    let down = channel(
        &api,
        json!({"name": "down", "kind": "webhook", "url": broken.url("/hook"),
               "events": ["unit_failed"], "units": ["fail-once.service"]}),
    )
    .await;

    // --- a service that fails: one unit_failed with its invocation and a working link --
    sb.add_unit(
        "fail-once.service",
        "[Service]\nExecStart=/bin/sh -c 'echo failing-run; sleep 0.2; exit 2'\n",
    );
    sb.sh("systemctl start fail-once.service");
    let failed = one(
        &ok,
        "unit_failed",
        "fail-once.service",
        Duration::from_secs(2),
    )
    .await;
    let invocation = sb.show("fail-once.service", "InvocationID");
    assert_eq!(failed["invocation_id"], invocation.as_str(), "{failed}");
    assert_eq!(failed["result"], "exit-code");
    assert_eq!(failed["active_state"], "failed");
    assert_eq!(failed["sub_state"], "failed");
    assert!(
        failed["message"]
            .as_str()
            .unwrap()
            .contains("exit status 2"),
        "{failed}"
    );
    assert!(failed["host"].as_str().is_some_and(|h| !h.is_empty()));
    assert!(failed["time"].as_str().unwrap().ends_with('Z'));
    let link = failed["url"].as_str().unwrap();
    let path = link.strip_prefix(PUBLIC_URL).expect("the public URL");
    assert_eq!(
        path,
        format!("/units/fail-once.service?invocation={invocation}#logs")
    );
    let page = api.get(path.trim_end_matches("#logs")).await;
    assert_eq!(page.status(), 200);
    let page = page.text().await.unwrap();
    assert!(
        page.contains(&format!("invocation={invocation}")),
        "the page's logs are that run's"
    );
    let lines = api
        .get_json(&format!(
            "/api/v1/units/fail-once.service/logs?invocation={invocation}"
        ))
        .await;
    assert!(lines.to_string().contains("failing-run"), "{lines}");

    // --- an endpoint answering 500: 3 attempts, then failed; nothing else held up -------
    let record = eventually("3 attempts recorded", Duration::from_secs(30), async || {
        deliveries(&api)
            .await
            .into_iter()
            .find(|d| d["channel_id"] == down && d["status"] == "failed")
    })
    .await;
    assert_eq!(record["attempts"], 3, "{record}");
    assert_eq!(record["http_status"], 500);
    assert_eq!(record["event"], "unit_failed");
    assert_eq!(record["invocation_id"], invocation.as_str());
    assert_eq!(broken.requests().len(), 3);
    let delivered = deliveries(&api)
        .await
        .into_iter()
        .find(|d| d["channel"] == "everything" && d["unit"] == "fail-once.service")
        .unwrap();
    assert_eq!(delivered["status"], "delivered");
    assert_eq!(delivered["attempts"], 1);

    // --- a health check turning red: unhealthy, then recovered ---------------------------
    let port = sb.spare_ports[0];
    sb.sh("mkdir -p /var/lib/hc && echo ok > /var/lib/hc/ok");
    let spec = json!({
        "name": "hc-app", "kind": "service",
        "exec_start": ["/usr/bin/python3", "-m", "http.server", port.to_string(), "--bind", "127.0.0.1"],
        "working_directory": "/var/lib/hc", "port": port,
        "health": {"http": format!("http://127.0.0.1:{port}/ok"), "interval_s": 1, "timeout_s": 1,
                   "failures": 2, "restart": false},
        "enable": false, "start": true
    });
    let res = api.post_json("/api/v1/unit-files", &spec).await;
    assert_eq!(res.status(), 201, "{}", res.text().await.unwrap());
    eventually("healthy", Duration::from_secs(60), async || {
        let unit = api.get_json("/api/v1/units/hc-app.service").await;
        (unit["health"] == "healthy").then_some(())
    })
    .await;
    sb.sh("rm /var/lib/hc/ok");
    let unhealthy = one(
        &ok,
        "unhealthy",
        "hc-app.service",
        Duration::from_millis(500),
    )
    .await;
    assert!(
        unhealthy["message"].as_str().unwrap().contains("404"),
        "{unhealthy}"
    );
    assert_eq!(unhealthy["active_state"], "active");
    sb.sh("echo ok > /var/lib/hc/ok");
    let recovered = one(&ok, "recovered", "hc-app.service", Duration::ZERO).await;
    assert!(recovered["message"].as_str().unwrap().contains("healthy"));

    // --- a timer's job exiting 3: job_failed, and the jobs page shows the failed run ----
    sb.write(
        "/etc/systemd/system/exit3.service",
        "[Unit]\nDescription=A job that fails\n[Service]\nType=oneshot\n\
         ExecStart=/bin/sh -c 'echo job-run; exit 3'\n",
    );
    sb.add_unit(
        "exit3.timer",
        "[Timer]\nOnActiveSec=1s\nAccuracySec=1ms\nPersistent=false\n",
    );
    sb.sh("systemctl start exit3.timer");
    let job = one(
        &ok,
        "job_failed",
        "exit3.service",
        Duration::from_millis(500),
    )
    .await;
    assert_eq!(job["result"], "exit-code");
    assert!(
        job["message"].as_str().unwrap().contains("exit status 3"),
        "{job}"
    );
    let timer_run = job["invocation_id"].as_str().unwrap().to_string();
    // The same failure is a unit_failed too.
    one(&ok, "unit_failed", "exit3.service", Duration::ZERO).await;
    let timers = api.get_json("/api/v1/timers").await;
    let row = timers
        .as_array()
        .unwrap()
        .iter()
        .find(|t| t["name"] == "exit3.timer")
        .unwrap_or_else(|| panic!("exit3.timer in {timers}"));
    assert_eq!(row["service"], "exit3.service");
    assert_eq!(
        row["schedules"],
        json!([{"setting": "OnActiveSec", "value": "1s"}])
    );
    assert_eq!(row["persistent"], false);
    let last = &row["last_runs"][0];
    assert_eq!(last["invocation_id"], timer_run.as_str());
    assert_eq!(last["result"], "exit-code");
    assert_eq!(last["exit_status"], 3);
    assert_eq!(last["trigger"], "timer");
    let page = api.get("/jobs").await.text().await.unwrap();
    assert!(
        page.contains("Last run failed: exit-code, exit status 3"),
        "{page}"
    );
    assert!(page.contains("data-last=\"failed\""));

    // "Run now" from the jobs page: the guarded, audited action path; a manual run.
    let res = api
        .request(reqwest::Method::POST, "/ui/jobs/exit3.service/start")
        .header("hx-request", "true")
        .send()
        .await
        .unwrap();
    assert_eq!(res.status(), 200);
    assert!(res.text().await.unwrap().contains("id=\"j-exit3_2etimer\""));
    let manual = eventually(
        "the manual run ended",
        Duration::from_secs(15),
        async || {
            let runs = api
                .get_json("/api/v1/units/exit3.service/runs?limit=5")
                .await;
            let newest = runs[0].clone();
            (newest["invocation_id"] != timer_run.as_str() && newest["result"] == "exit-code")
                .then_some(newest)
        },
    )
    .await;
    assert_eq!(manual["trigger"], "manual", "{manual}");
    let audit = common::audit(&api).await;
    common::find_audit(&audit, "unit.start", Some("exit3.service"), "queued");
    // A manual run that fails is no job_failed.
    tokio::time::sleep(Duration::from_millis(500)).await;
    assert_eq!(ok.events("job_failed", "exit3.service").len(), 1);
}

#[tokio::test(flavor = "multi_thread")]
async fn a_restart_loop_is_told_once_per_cooldown_then_its_recovery() {
    let sb = Sandbox::start();
    let api = sb.login().await;
    let receiver = Receiver::start(200).await;
    // A short cooldown (10 s) to see several in the 30 s loop; the default is 300 s.
    let cooldown = Duration::from_secs(10);
    channel(
        &api,
        json!({"name": "loops", "kind": "webhook", "url": receiver.url("/"),
               "events": ["restart_loop", "recovered", "unit_failed"],
               "units": ["loop.service"], "cooldown_s": cooldown.as_secs()}),
    )
    .await;
    // Restart= every 100 ms (systemd makes it ~250 ms); no start limit, or it would stop
    // the loop after 5 restarts.
    sb.add_unit(
        "loop.service",
        "[Unit]\nStartLimitIntervalSec=0\n[Service]\nRestart=always\nRestartSec=100ms\n\
         ExecStart=/bin/sh -c 'test -e /run/loop-fixed && exec sleep infinity; echo crash; exit 1'\n",
    );
    eventually(
        "unitdeck knows loop.service",
        Duration::from_secs(15),
        async || {
            let res = api.get("/api/v1/units/loop.service").await;
            (res.status() == 200).then_some(())
        },
    )
    .await;
    sb.sh("systemctl start loop.service");
    let started = SystemTime::now();
    tokio::time::sleep(Duration::from_secs(30)).await;
    // Taken before the fix: every restart after it is after the fix.
    let fixed = SystemTime::now();
    sb.sh("touch /run/loop-fixed");
    let restarts: u32 = sb.show("loop.service", "NRestarts").parse().unwrap();
    assert!(restarts >= 30, "only {restarts} restarts in 30 s");

    let loops = receiver.events("restart_loop", "loop.service");
    let times: Vec<Duration> = loops
        .iter()
        .map(|(at, _)| at.duration_since(started).unwrap())
        .collect();
    assert!(times[0] < Duration::from_secs(6), "first after {times:?}");
    // Times are when each message arrived: the delivery of one can be later than the
    // next one's by a moment.
    let jitter = Duration::from_millis(500);
    for pair in times.windows(2) {
        let gap = pair[1] - pair[0];
        assert!(
            gap + jitter >= cooldown && gap < cooldown + Duration::from_secs(3),
            "one per cooldown: {times:?}"
        );
    }
    // None missing: the loop went on until the fix, and the last message came less than
    // a cooldown (and a restart) before it.
    let until_fix = fixed.duration_since(started).unwrap();
    assert!(
        times.len() >= 2 && until_fix < *times.last().unwrap() + cooldown + Duration::from_secs(3),
        "one per cooldown until the fix after {until_fix:?}: {times:?}"
    );
    let body = &loops[0].1;
    assert!(
        body["message"]
            .as_str()
            .unwrap()
            .contains("restarted 3 times within 10 minutes"),
        "{body}"
    );
    assert_eq!(body["result"], "exit-code");
    // Each crash passes through `failed` for a moment: never reported as a failure.
    assert!(receiver.events("unit_failed", "loop.service").is_empty());

    // Fixed: active and without restarts for 10 s, it has recovered.
    let (at, recovered) = eventually("recovered", Duration::from_secs(30), async || {
        receiver
            .events("recovered", "loop.service")
            .first()
            .cloned()
    })
    .await;
    let after = at.duration_since(fixed).unwrap();
    assert!(
        after >= Duration::from_secs(10) && after < Duration::from_secs(20),
        "recovered {after:?} after the fix"
    );
    assert_eq!(recovered["active_state"], "active");
    assert_eq!(
        receiver.events("restart_loop", "loop.service").len(),
        times.len()
    );
}
