//! Operating services against a real systemd (issue 3): actions and their job
//! results, failing starts, protected units, live events, token scopes, the
//! cross-site refusal, the login brake, the audit log, bad input, the offline
//! token CLI, and the settings and audit pages.

mod common;

use std::time::{Duration, Instant};

use common::sse::SseReader;
use common::{Api, PASSWORD, Sandbox, audit, eventually, find_audit, problem, token, while_exists};
use reqwest::Method;
use serde_json::{Value, json};

/// A long-running service with a reload command that leaves a trace, installable.
/// How long a live event may take: on a busy machine it can wait behind the cache refill
/// of a daemon-reload (bench_events measures the real delay).
const EVENT_WAIT: Duration = Duration::from_secs(15);

const OP_UNIT: &str = "[Unit]\nDescription=Operate me\n\
    [Service]\nExecStart=/bin/sleep infinity\n\
    ExecReload=/bin/sh -c 'echo reloaded >> /run/op-reloads'\n\
    [Install]\nWantedBy=multi-user.target\n";

/// A oneshot that explains itself on stdout and fails.
const BOOM_UNIT: &str = "[Unit]\nDescription=Fails on purpose\n\
    [Service]\nType=oneshot\nExecStart=/bin/sh -c 'echo \"boom <b>&amp; why\"; exit 3'\n";

fn path_of(unit: &str, action: &str) -> String {
    format!("/api/v1/units/{unit}/{action}")
}

/// POSTs an action; returns the status and the JSON body.
async fn act(api: &Api, unit: &str, action: &str) -> (u16, Value) {
    let res = api.post(&path_of(unit, action)).await;
    let status = res.status().as_u16();
    (status, res.json().await.unwrap_or(Value::Null))
}

/// Reads events until one matches; panics after `timeout`.
async fn wait_event(
    events: &mut SseReader,
    what: &str,
    timeout: Duration,
    matches: impl Fn(&str, &Value) -> bool,
) -> Value {
    let deadline = Instant::now() + timeout;
    loop {
        let left = deadline.saturating_duration_since(Instant::now());
        let event = events
            .next(left)
            .await
            .unwrap_or_else(|| panic!("no event for: {what}"));
        let data: Value = serde_json::from_str(&event.data).unwrap_or(Value::Null);
        if matches(&event.event, &data) {
            return data;
        }
    }
}

fn unit_event(name: &'static str, active_state: &'static str) -> impl Fn(&str, &Value) -> bool {
    move |event, data| {
        event == "unit" && data["name"] == name && data["active_state"] == active_state
    }
}

// --- actions ---------------------------------------------------------------------

#[tokio::test(flavor = "multi_thread")]
async fn each_action_changes_what_systemctl_reports() {
    let sb = Sandbox::start();
    sb.add_unit("op.service", OP_UNIT);
    sb.add_unit(
        "noreload.service",
        "[Service]\nExecStart=/bin/sleep infinity\n",
    );
    let api = sb.login().await;

    let (status, body) = act(&api, "op.service", "start").await;
    assert_eq!(status, 200, "{body}");
    assert_eq!(body["job"]["result"], "done");
    assert!(body["job"]["id"].as_u64().unwrap() > 0);
    assert_eq!(body["unit"]["name"], "op.service");
    assert_eq!(body["unit"]["active_state"], "active");
    assert_eq!(sb.show("op.service", "ActiveState"), "active");
    assert_eq!(sb.show("op.service", "SubState"), "running");
    let pid = sb.show("op.service", "MainPID");
    assert_eq!(body["unit"]["main_pid"].as_u64().unwrap().to_string(), pid);

    let (status, body) = act(&api, "op.service", "restart").await;
    assert_eq!(status, 200, "{body}");
    assert_eq!(body["job"]["result"], "done");
    let new_pid = sb.show("op.service", "MainPID");
    assert_ne!(new_pid, pid, "restart gives a new main process");
    assert_ne!(new_pid, "0");
    assert_eq!(
        body["unit"]["main_pid"].as_u64().unwrap().to_string(),
        new_pid
    );
    assert_eq!(sb.show("op.service", "ActiveState"), "active");

    let (status, body) = act(&api, "op.service", "reload").await;
    assert_eq!(status, 200, "{body}");
    assert_eq!(body["job"]["result"], "done");
    assert_eq!(
        sb.sh("cat /run/op-reloads").trim(),
        "reloaded",
        "ExecReload= ran once"
    );
    assert_eq!(
        sb.show("op.service", "MainPID"),
        new_pid,
        "reload keeps the process"
    );

    assert_eq!(sb.show("op.service", "UnitFileState"), "disabled");
    let (status, body) = act(&api, "op.service", "enable").await;
    assert_eq!(status, 200, "{body}");
    assert_eq!(body["job"], json!({"id": null, "result": "done"}));
    assert_eq!(body["unit"]["unit_file_state"], "enabled");
    assert_eq!(sb.show("op.service", "UnitFileState"), "enabled");
    assert!(
        sb.sh("ls /etc/systemd/system/multi-user.target.wants/")
            .contains("op.service")
    );

    let (status, body) = act(&api, "op.service", "disable").await;
    assert_eq!(status, 200, "{body}");
    assert_eq!(body["job"], json!({"id": null, "result": "done"}));
    assert_eq!(body["unit"]["unit_file_state"], "disabled");
    assert_eq!(sb.show("op.service", "UnitFileState"), "disabled");

    let (status, body) = act(&api, "op.service", "stop").await;
    assert_eq!(status, 200, "{body}");
    assert_eq!(body["job"]["result"], "done");
    assert_eq!(body["unit"]["active_state"], "inactive");
    assert_eq!(body["unit"]["main_pid"], Value::Null);
    assert_eq!(sb.show("op.service", "ActiveState"), "inactive");

    // reset-failed: a failed unit goes back to inactive.
    sb.add_unit("boom.service", BOOM_UNIT);
    let (_, body) = act(&api, "boom.service", "start").await;
    assert_eq!(body["job"]["result"], "failed");
    assert_eq!(sb.show("boom.service", "ActiveState"), "failed");
    let (status, body) = act(&api, "boom.service", "reset-failed").await;
    assert_eq!(status, 200, "{body}");
    assert_eq!(body["job"]["result"], "done");
    assert_eq!(body["unit"]["active_state"], "inactive");
    assert_eq!(sb.show("boom.service", "ActiveState"), "inactive");

    // systemd's own refusals come back as 409 (a reload without ExecReload=).
    act(&api, "noreload.service", "start").await;
    let res = api.post(&path_of("noreload.service", "reload")).await;
    let body = problem(res, 409).await;
    assert!(
        body["detail"]
            .as_str()
            .unwrap()
            .contains("JobTypeNotApplicable"),
        "{body}"
    );

    // Every one of them is in the audit log, newest first.
    let records = audit(&api).await;
    for (action, unit, result) in [
        ("unit.start", "op.service", "done"),
        ("unit.restart", "op.service", "done"),
        ("unit.reload", "op.service", "done"),
        ("unit.enable", "op.service", "done"),
        ("unit.disable", "op.service", "done"),
        ("unit.stop", "op.service", "done"),
        ("unit.start", "boom.service", "failed"),
        ("unit.reset-failed", "boom.service", "done"),
        ("unit.reload", "noreload.service", "refused"),
    ] {
        let r = find_audit(&records, action, Some(unit), result);
        assert_eq!(r["actor"], "admin");
    }
    let ids: Vec<i64> = records.iter().map(|r| r["id"].as_i64().unwrap()).collect();
    assert!(ids.windows(2).all(|w| w[0] > w[1]), "newest first: {ids:?}");
}

#[tokio::test(flavor = "multi_thread")]
async fn failing_starts_are_reported_as_failed_with_their_log() {
    let sb = Sandbox::start();
    sb.add_unit("boom.service", BOOM_UNIT);
    sb.add_unit(
        "missing.service",
        "[Service]\nType=exec\nExecStart=/nonexistent/server --port 1\n",
    );
    let api = sb.login().await;

    let (status, body) = act(&api, "boom.service", "start").await;
    assert_eq!(status, 200, "{body}");
    assert_eq!(body["job"]["result"], "failed");
    assert!(body["job"]["id"].as_u64().is_some());
    assert_eq!(body["unit"]["active_state"], "failed");
    assert_eq!(sb.show("boom.service", "ActiveState"), "failed");
    let listed = api.get_json("/api/v1/units?state=failed").await;
    assert!(
        listed
            .as_array()
            .unwrap()
            .iter()
            .any(|u| u["name"] == "boom.service")
    );

    let (status, body) = act(&api, "missing.service", "start").await;
    assert_eq!(status, 200, "{body}");
    assert_eq!(body["job"]["result"], "failed");
    assert_eq!(body["unit"]["active_state"], "failed");

    let records = audit(&api).await;
    find_audit(&records, "unit.start", Some("boom.service"), "failed");
    find_audit(&records, "unit.start", Some("missing.service"), "failed");

    // The pages have an empty box for an action's log.
    assert!(
        api.get("/")
            .await
            .text()
            .await
            .unwrap()
            .contains("<div id=\"action-log\"></div>")
    );
    let page = api.get("/units/boom.service").await.text().await.unwrap();
    assert!(page.contains("<div id=\"action-log\"></div>"));

    // From a button: the toast says it failed, and the run's last log lines come
    // along out of band, HTML-escaped.
    let res = api
        .request(Method::POST, "/ui/units/boom.service/start")
        .header("hx-request", "true")
        .send()
        .await
        .unwrap();
    assert_eq!(res.status(), 200);
    let trigger: Value =
        serde_json::from_str(res.headers()["hx-trigger"].to_str().unwrap()).unwrap();
    assert_eq!(trigger["toast"]["kind"], "err");
    let message = trigger["toast"]["message"].as_str().unwrap();
    assert!(message.contains("failed"), "{message}");
    let html = res.text().await.unwrap();
    assert!(html.contains("class=\"unit-row\""), "the fresh row: {html}");
    assert!(html.contains("data-state=\"failed\""));
    let oob = html
        .split("id=\"action-log\"")
        .nth(1)
        .expect("an #action-log box");
    assert!(oob.contains("hx-swap-oob=\"true\""), "{html}");
    assert!(
        oob.contains("boom &#60;b&#62;&#38;amp; why")
            || oob.contains("boom &lt;b&gt;&amp;amp; why"),
        "{html}"
    );
    assert!(
        !html.contains("<b>&amp; why"),
        "log text is escaped: {html}"
    );
    assert!(oob.matches("class=\"log-line\"").count() <= 20);
    // unitdeck had journald write its queue first (PID 1's messages and the service's
    // output come through different sockets), from within its sandbox.
    let log = sb.sh("journalctl -u unitdeck.service -o cat --no-pager");
    assert!(!log.contains("journalctl --sync failed"), "{log}");

    // A later success clears the box.
    let res = api.post("/ui/units/boom.service/reset-failed").await;
    assert_eq!(res.status(), 200);
    let trigger: Value =
        serde_json::from_str(res.headers()["hx-trigger"].to_str().unwrap()).unwrap();
    assert_eq!(trigger["toast"]["kind"], "ok");
    let html = res.text().await.unwrap();
    assert!(
        html.contains("<div id=\"action-log\" hx-swap-oob=\"true\"></div>"),
        "{html}"
    );

    // A refused action from a button keeps the row and says why.
    let res = api.post("/ui/units/dbus.service/stop").await;
    assert_eq!(res.status(), 204);
    assert_eq!(res.headers()["hx-reswap"], "none");
    assert!(
        res.headers()["hx-trigger"]
            .to_str()
            .unwrap()
            .contains("protected")
    );
}

#[tokio::test(flavor = "multi_thread")]
async fn actions_wait_for_their_job_unless_told_not_to() {
    let sb = Sandbox::start();
    sb.add_unit(
        "slow.service",
        "[Service]\nExecStartPre=/bin/sleep 8\nExecStart=/bin/sleep infinity\n",
    );
    let api = sb.login().await;

    let started = Instant::now();
    let res = api
        .post("/api/v1/units/slow.service/start?wait=false")
        .await;
    let elapsed = started.elapsed();
    assert_eq!(res.status(), 200);
    let body: Value = res.json().await.unwrap();
    assert!(
        elapsed < Duration::from_secs(6),
        "wait=false answered in {elapsed:?}"
    );
    assert!(body["job"]["id"].as_u64().unwrap() > 0, "{body}");
    assert_eq!(body["job"]["result"], Value::Null);
    // The summary is read right after the job was queued: systemd may not have begun it.
    let state = body["unit"]["active_state"].as_str().unwrap();
    assert!(["inactive", "activating"].contains(&state), "{state}");
    eventually(
        "slow.service activating",
        Duration::from_secs(5),
        async || (sb.show("slow.service", "ActiveState") == "activating").then_some(()),
    )
    .await;
    eventually("slow.service active", Duration::from_secs(20), async || {
        (sb.show("slow.service", "ActiveState") == "active").then_some(())
    })
    .await;
    find_audit(
        &audit(&api).await,
        "unit.start",
        Some("slow.service"),
        "queued",
    );

    // Without wait=false the answer comes when the job is done.
    let started = Instant::now();
    let (status, body) = act(&api, "slow.service", "restart").await;
    let elapsed = started.elapsed();
    assert_eq!(status, 200, "{body}");
    assert!(
        elapsed >= Duration::from_secs(8),
        "restart waited only {elapsed:?}"
    );
    assert_eq!(body["job"]["result"], "done");
    assert_eq!(body["unit"]["active_state"], "active");
    assert_eq!(sb.show("slow.service", "ActiveState"), "active");
}

#[tokio::test(flavor = "multi_thread")]
async fn protected_units_stay_up_and_unitdeck_restarts_itself() {
    let sb = Sandbox::start();
    let api = sb.login().await;
    for unit in [
        "dbus.service",
        "systemd-journald.service",
        "unitdeck.service",
        "dbus.socket",
    ] {
        for action in ["stop", "disable"] {
            let body = problem(api.post(&path_of(unit, action)).await, 409).await;
            assert!(
                body["detail"].as_str().unwrap().contains("protected"),
                "{body}"
            );
        }
        assert_eq!(sb.show(unit, "ActiveState"), "active", "{unit} still up");
        let summary = api.get_json(&format!("/api/v1/units/{unit}")).await;
        assert_eq!(summary["protected"], true, "{unit}");
    }
    // Nothing that powers the container off, reboots it or isolates it is started.
    for unit in [
        "reboot.target",
        "poweroff.target",
        "systemd-halt.service",
        "rescue.target",
    ] {
        for action in ["start", "restart"] {
            let body = problem(api.post(&path_of(unit, action)).await, 409).await;
            assert!(
                body["detail"]
                    .as_str()
                    .unwrap()
                    .contains("shut the container down"),
                "{unit} {action}: {body}"
            );
        }
        assert_eq!(sb.show(unit, "ActiveState"), "inactive", "{unit}");
    }
    let dashboard = api.get("/?type=target").await.text().await.unwrap();
    assert!(
        dashboard.contains("reboot.target"),
        "the dashboard lists it"
    );
    assert!(
        !dashboard.contains("/ui/units/reboot.target/start"),
        "no start button for reboot.target"
    );
    assert_eq!(sb.show("multi-user.target", "ActiveState"), "active");

    // What they require is protected too.
    let requires = api.get_json("/api/v1/units/dbus.service").await["requires"].clone();
    for dep in requires.as_array().unwrap() {
        let dep = dep.as_str().unwrap();
        if sb.show(dep, "LoadState") == "loaded" {
            let res = api.post(&path_of(dep, "stop")).await;
            assert_eq!(res.status(), 409, "{dep}, required by dbus.service");
        }
    }
    let records = audit(&api).await;
    for unit in [
        "dbus.service",
        "systemd-journald.service",
        "unitdeck.service",
    ] {
        find_audit(&records, "unit.stop", Some(unit), "refused");
        find_audit(&records, "unit.disable", Some(unit), "refused");
    }

    // Restarting unitdeck itself is allowed: it answers, goes, and comes back. Its live
    // streams end when it stops (the stop does not wait for them) and ask clients to come
    // back after a second.
    let mut events = SseReader::new(api.get("/api/v1/events").await);
    let log = SseReader::new(api.get("/api/v1/units/dbus.service/logs/stream").await);
    assert!(
        events.next(Duration::from_secs(10)).await.is_some(),
        "a snapshot"
    );
    assert_eq!(events.retry, Some(1000));
    // Read on while unitdeck restarts: a stream left unread could fill the socket and
    // keep its end from being written.
    let drain = |what: &'static str, mut stream: SseReader| {
        tokio::spawn(async move {
            while stream.next(Duration::from_secs(30)).await.is_some() {}
            assert!(stream.ended, "the {what} stream ended cleanly");
        })
    };
    let (events, log) = (drain("events", events), drain("log", log));
    let pid = sb.show("unitdeck.service", "MainPID");
    let started = Instant::now();
    let (status, body) = act(&api, "unitdeck.service", "restart").await;
    assert_eq!(status, 200, "{body}");
    assert!(body["job"]["id"].as_u64().is_some(), "{body}");
    assert!(
        started.elapsed() < Duration::from_secs(10),
        "the answer took {:?}",
        started.elapsed()
    );
    eventually(
        "a new unitdeck process",
        Duration::from_secs(20),
        async || {
            let now = sb.show("unitdeck.service", "MainPID");
            (now != pid && now != "0").then_some(())
        },
    )
    .await;
    sb.wait_healthy();
    assert_eq!(sb.show("unitdeck.service", "ActiveState"), "active");
    events.await.unwrap();
    log.await.unwrap();
    let journal = eventually(
        "the old unitdeck's journal",
        Duration::from_secs(10),
        async || {
            let journal = sb.sh(&format!("journalctl _PID={pid} -o cat --no-pager"));
            journal.contains("shutting down").then_some(journal)
        },
    )
    .await;
    assert!(
        !journal.contains("closing their connections"),
        "the stop waited for live streams: {journal}"
    );
    // The session lives in the database: the same cookie still works.
    eventually("units listed again", Duration::from_secs(10), async || {
        (api.get("/api/v1/units").await.status() == 200).then_some(())
    })
    .await;
    find_audit(
        &audit(&api).await,
        "unit.restart",
        Some("unitdeck.service"),
        "queued",
    );
}

// --- live events -------------------------------------------------------------------

#[tokio::test(flavor = "multi_thread")]
async fn outside_changes_arrive_on_the_events_stream() {
    let sb = Sandbox::start();
    sb.add_unit(
        "watched.service",
        "[Service]\nExecStart=/bin/sleep infinity\n",
    );
    // It stays activating until the test removes /run/slowstart-hold: a fixed pause
    // can be over before a busy machine's watcher looks.
    sb.add_unit(
        "slowstart.service",
        &format!(
            "[Service]\nExecStartPre={}\nExecStart=/bin/sleep infinity\n",
            while_exists("/run/slowstart-hold")
        ),
    );
    sb.sh("systemctl start watched.service");
    let api = sb.login().await;
    let mut events = SseReader::new(api.get("/api/v1/events").await);
    // The stream opens with a snapshot that includes the running unit.
    let snap = wait_event(
        &mut events,
        "snapshot",
        EVENT_WAIT,
        unit_event("watched.service", "active"),
    )
    .await;
    assert_eq!(snap["type"], "service");
    assert!(snap.get("protected").is_some() && snap.get("main_pid").is_some());

    // Waits are generous (a daemon-reload refills the cache, and the machine may be
    // busy); bench_events measures the real delay.
    sb.sh("systemctl stop watched.service");
    let data = wait_event(
        &mut events,
        "outside stop",
        EVENT_WAIT,
        unit_event("watched.service", "inactive"),
    )
    .await;
    assert_eq!(data["sub_state"], "dead");

    sb.sh("systemctl start watched.service");
    let pid: u64 = sb.show("watched.service", "MainPID").parse().unwrap();
    wait_event(&mut events, "outside start", EVENT_WAIT, |event, data| {
        unit_event("watched.service", "active")(event, data) && data["main_pid"] == pid
    })
    .await;

    // A daemon-reload frees and reloads every unit (UnitRemoved for each): running
    // units must not flicker to inactive on the stream meanwhile.
    sb.sh("systemctl daemon-reload");
    let quiet_until = Instant::now() + Duration::from_secs(2);
    while let Some(event) = events
        .next(quiet_until.saturating_duration_since(Instant::now()))
        .await
    {
        let data: Value = serde_json::from_str(&event.data).unwrap_or(Value::Null);
        assert!(
            !(data["name"] == "watched.service" && data["active_state"] != "active"),
            "after a daemon-reload: {} {data}",
            event.event
        );
    }

    // A job in progress shows as such until it finishes.
    sb.sh("touch /run/slowstart-hold && systemctl start --no-block slowstart.service");
    wait_event(
        &mut events,
        "activating",
        EVENT_WAIT,
        unit_event("slowstart.service", "activating"),
    )
    .await;
    sb.sh("rm /run/slowstart-hold");
    wait_event(
        &mut events,
        "then active",
        EVENT_WAIT,
        unit_event("slowstart.service", "active"),
    )
    .await;

    // Enablement changes are events too.
    sb.add_unit("enable-me.service", OP_UNIT);
    sb.sh("systemctl enable enable-me.service");
    wait_event(&mut events, "enabled", EVENT_WAIT, |event, data| {
        event == "unit"
            && data["name"] == "enable-me.service"
            && data["unit_file_state"] == "enabled"
    })
    .await;

    // Units that go away are announced: a transient unit once it has ended, and a unit
    // whose file was deleted before a daemon-reload. The transient one runs until the
    // test has seen it: once ended it is gone, and a late watcher would never see it.
    sb.sh(&format!(
        "touch /run/blip-hold && systemd-run --unit=blip.service {}",
        while_exists("/run/blip-hold")
    ));
    let named = |kind: &'static str, name: &'static str| {
        move |event: &str, data: &Value| event == kind && data["name"] == name
    };
    wait_event(
        &mut events,
        "a transient unit appears",
        EVENT_WAIT,
        named("unit", "blip.service"),
    )
    .await;
    sb.sh("rm /run/blip-hold");
    wait_event(
        &mut events,
        "the transient unit removed",
        EVENT_WAIT,
        named("removed", "blip.service"),
    )
    .await;
    sb.sh(
        "systemctl disable enable-me.service && rm /etc/systemd/system/enable-me.service \
         && systemctl daemon-reload",
    );
    wait_event(
        &mut events,
        "a deleted unit removed",
        Duration::from_secs(10),
        named("removed", "enable-me.service"),
    )
    .await;
    let listed = api.get_json("/api/v1/units?type=service").await;
    let names: Vec<&str> = listed
        .as_array()
        .unwrap()
        .iter()
        .map(|u| u["name"].as_str().unwrap())
        .collect();
    assert!(!names.contains(&"blip.service") && !names.contains(&"enable-me.service"));
}

// --- credentials -------------------------------------------------------------------

#[tokio::test(flavor = "multi_thread")]
async fn token_scopes_hold_on_every_route() {
    let sb = Sandbox::start();
    sb.add_unit("op.service", OP_UNIT);
    let admin = sb.login().await;
    let (read_id, read) = token(&admin, "reader", "read").await;
    let (operate_id, operate) = token(&admin, "operator", "operate").await;
    let (admin_id, admin_token) = token(&admin, "root-ish", "admin").await;
    let reader = sb.with_token(&read);
    let operator = sb.with_token(&operate);
    let boss = sb.with_token(&admin_token);

    // The list never shows secrets.
    let list = admin.get_json("/api/v1/tokens").await;
    assert_eq!(list.as_array().unwrap().len(), 3);
    let text = list.to_string();
    for secret in [&read, &operate, &admin_token] {
        assert!(!text.contains(secret.as_str()));
    }
    assert!(list[0].get("token").is_none() && list[0].get("secret_hash").is_none());

    // read: every GET, nothing else.
    for path in [
        "/api/v1/units",
        "/api/v1/units/op.service",
        "/api/v1/tokens",
        "/api/v1/audit",
        "/",
        "/units/op.service",
        "/settings",
        "/audit",
    ] {
        assert_eq!(reader.get(path).await.status(), 200, "read GET {path}");
    }
    let res = reader.get("/api/v1/events").await;
    assert_eq!(res.status(), 200);
    drop(res);
    problem(reader.post(&path_of("op.service", "start")).await, 403).await;
    assert_eq!(
        reader.post("/ui/units/op.service/start").await.status(),
        403
    );
    assert_eq!(
        sb.show("op.service", "ActiveState"),
        "inactive",
        "nothing started"
    );
    problem(
        reader
            .post_json("/api/v1/tokens", &json!({"name": "x", "scope": "read"}))
            .await,
        403,
    )
    .await;
    problem(
        reader.delete(&format!("/api/v1/tokens/{operate_id}")).await,
        403,
    )
    .await;

    // operate: read plus unit actions.
    let (status, body) = act(&operator, "op.service", "start").await;
    assert_eq!(status, 200, "{body}");
    assert_eq!(sb.show("op.service", "ActiveState"), "active");
    assert_eq!(
        operator.post("/ui/units/op.service/restart").await.status(),
        200
    );
    assert_eq!(operator.get("/api/v1/audit").await.status(), 200);
    problem(
        operator
            .post_json("/api/v1/tokens", &json!({"name": "x", "scope": "admin"}))
            .await,
        403,
    )
    .await;
    problem(
        operator.delete(&format!("/api/v1/tokens/{read_id}")).await,
        403,
    )
    .await;
    assert_eq!(
        operator
            .request(Method::POST, "/ui/tokens")
            .form(&[("name", "x"), ("scope", "admin")])
            .send()
            .await
            .unwrap()
            .status(),
        403
    );

    // admin: everything.
    let (status, _) = act(&boss, "op.service", "stop").await;
    assert_eq!(status, 200);
    let (extra_id, _) = token(&boss, "made-by-token", "read").await;
    assert_eq!(
        boss.delete(&format!("/api/v1/tokens/{extra_id}"))
            .await
            .status(),
        204
    );
    assert_eq!(
        admin
            .get_json("/api/v1/tokens")
            .await
            .as_array()
            .unwrap()
            .len(),
        3
    );

    // A revoked token is dead at once; a bogus one never worked.
    assert_eq!(
        admin
            .delete(&format!("/api/v1/tokens/{read_id}"))
            .await
            .status(),
        204
    );
    problem(reader.get("/api/v1/units").await, 401).await;
    problem(
        admin.delete(&format!("/api/v1/tokens/{read_id}")).await,
        404,
    )
    .await;
    let bogus = sb.with_token("ud_AAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA");
    problem(bogus.get("/api/v1/units").await, 401).await;
    problem(bogus.post(&path_of("op.service", "start")).await, 401).await;
    let res = sb
        .anonymous()
        .request(Method::GET, "/api/v1/units")
        .header("authorization", "Basic YWRtaW46YWRtaW4=")
        .send()
        .await
        .unwrap();
    problem(res, 401).await;
    assert_eq!(sb.show("op.service", "ActiveState"), "inactive");

    // Who did what is recorded under the token's name, refusals included.
    let records = audit(&admin).await;
    assert_eq!(
        find_audit(&records, "unit.start", Some("op.service"), "done")["actor"],
        format!("token:{operate_id} (operator)")
    );
    assert_eq!(
        find_audit(&records, "unit.stop", Some("op.service"), "done")["actor"],
        format!("token:{admin_id} (root-ish)")
    );
    assert_eq!(
        find_audit(&records, "unit.start", Some("op.service"), "forbidden")["actor"],
        format!("token:{read_id} (reader)")
    );
    let created = find_audit(
        &records,
        "token.create",
        Some(&format!("token:{extra_id}")),
        "ok",
    );
    assert_eq!(created["actor"], format!("token:{admin_id} (root-ish)"));
    find_audit(
        &records,
        "token.revoke",
        Some(&format!("token:{read_id}")),
        "ok",
    );
}

/// A client holding the session cookie that adds headers a cross-site page would send.
async fn send_with(
    api: &Api,
    method: Method,
    path: &str,
    headers: &[(&str, &str)],
    body: Option<Value>,
) -> reqwest::Response {
    let mut req = api.request(method, path);
    for (k, v) in headers {
        req = req.header(*k, *v);
    }
    if let Some(body) = body {
        req = req.json(&body);
    }
    req.send().await.unwrap()
}

#[tokio::test(flavor = "multi_thread")]
async fn cross_site_requests_with_the_cookie_are_refused() {
    let sb = Sandbox::start();
    sb.add_unit("op.service", OP_UNIT);
    sb.sh("systemctl start op.service");
    let api = sb.login().await;
    let cross = [("sec-fetch-site", "cross-site")];
    let evil = [("origin", "http://evil.example")];

    for headers in [&cross[..], &evil[..]] {
        let res = send_with(
            &api,
            Method::POST,
            &path_of("op.service", "stop"),
            headers,
            None,
        )
        .await;
        problem(res, 403).await;
        let res = send_with(&api, Method::DELETE, "/api/v1/session", headers, None).await;
        problem(res, 403).await;
        let res = send_with(
            &api,
            Method::POST,
            "/api/v1/tokens",
            headers,
            Some(json!({"name": "csrf", "scope": "admin"})),
        )
        .await;
        problem(res, 403).await;
        let res = send_with(
            &api,
            Method::POST,
            "/ui/units/op.service/stop",
            headers,
            None,
        )
        .await;
        assert_eq!(res.status(), 403);
        let res = send_with(&api, Method::POST, "/logout", headers, None).await;
        assert_eq!(res.status(), 403);
        let res = api
            .request(Method::POST, "/ui/tokens")
            .header(headers[0].0, headers[0].1)
            .form(&[("name", "csrf"), ("scope", "admin")])
            .send()
            .await
            .unwrap();
        assert_eq!(res.status(), 403);
    }
    // Nothing changed: the unit runs, the session lives, no token was made.
    assert_eq!(sb.show("op.service", "ActiveState"), "active");
    assert_eq!(api.get("/api/v1/units").await.status(), 200);
    assert_eq!(api.get_json("/api/v1/tokens").await, json!([]));

    // Same-origin requests with the cookie go through; so does a GET from anywhere.
    let same = [
        ("sec-fetch-site", "same-origin"),
        ("origin", &sb.base_url()),
    ];
    let res = send_with(
        &api,
        Method::POST,
        &path_of("op.service", "restart"),
        &same,
        None,
    )
    .await;
    assert_eq!(res.status(), 200);
    let res = send_with(&api, Method::GET, "/api/v1/units", &cross, None).await;
    assert_eq!(res.status(), 200);

    // Bearer requests are not subject to the check.
    let (_, secret) = token(&api, "automation", "admin").await;
    let bearer = sb.with_token(&secret);
    let res = send_with(
        &bearer,
        Method::POST,
        &path_of("op.service", "stop"),
        &[cross[0], evil[0]],
        None,
    )
    .await;
    assert_eq!(res.status(), 200);
    assert_eq!(sb.show("op.service", "ActiveState"), "inactive");
    let res = send_with(
        &bearer,
        Method::POST,
        "/api/v1/tokens",
        &cross,
        Some(json!({"name": "ok", "scope": "read"})),
    )
    .await;
    assert_eq!(res.status(), 201);

    // The refused attempts are audited.
    let records = audit(&api).await;
    let refused = find_audit(&records, "unit.stop", Some("op.service"), "forbidden");
    assert_eq!(refused["actor"], "admin");
    assert!(
        refused["detail"].as_str().unwrap().contains("cross-site"),
        "{refused}"
    );
}

#[tokio::test(flavor = "multi_thread")]
async fn repeated_wrong_passwords_are_braked() {
    let sb = Sandbox::start();
    let admin = sb.login().await;
    let anon = sb.anonymous();
    let mut failures = 0;
    let retry_after = loop {
        let res = anon
            .post_json("/api/v1/session", &json!({"password": "guess"}))
            .await;
        if res.status() == 429 {
            let retry: u64 = res.headers()["retry-after"]
                .to_str()
                .unwrap()
                .parse()
                .unwrap();
            problem(res, 429).await;
            break retry;
        }
        problem(res, 401).await;
        failures += 1;
        assert!(failures <= 20, "no brake after {failures} failures");
    };
    assert!(failures >= 3, "the brake should not hit a typo: {failures}");
    assert!(retry_after > 0 && retry_after <= 3600, "{retry_after}");
    // While braked, even the right password is refused, in the API and the form.
    let res = anon
        .post_json("/api/v1/session", &json!({"password": PASSWORD}))
        .await;
    assert!(res.headers().contains_key("retry-after"));
    problem(res, 429).await;
    let res = anon
        .request(Method::POST, "/login")
        .form(&[("password", PASSWORD)])
        .send()
        .await
        .unwrap();
    assert_eq!(res.status(), 429);
    assert!(res.headers().contains_key("retry-after"));
    assert!(res.headers().get("set-cookie").is_none());
    assert_eq!(anon.get("/api/v1/units").await.status(), 401);

    // An existing session is unaffected, and the audit has the story.
    let records = audit(&admin).await;
    let failed = records
        .iter()
        .filter(|r| r["action"] == "login" && r["result"] == "failed")
        .count();
    assert_eq!(failed, failures);
    let limited = find_audit(&records, "login", None, "rate-limited");
    assert_eq!(limited["actor"], "127.0.0.1");
    find_audit(&records, "login", None, "ok");
}

#[tokio::test(flavor = "multi_thread")]
async fn the_audit_log_records_logins_logouts_and_token_changes() {
    let sb = Sandbox::start();
    let anon = sb.anonymous();
    assert_eq!(
        anon.post_json("/api/v1/session", &json!({"password": "nope"}))
            .await
            .status(),
        401
    );
    let api = sb.login().await;
    let (id, _) = token(&api, "ci", "operate").await;
    assert_eq!(
        api.delete(&format!("/api/v1/tokens/{id}")).await.status(),
        204
    );
    let (status, _) = act(&api, "nope.service", "start").await;
    assert_eq!(status, 404);
    let second = sb.login().await;
    assert_eq!(api.delete("/api/v1/session").await.status(), 204);

    let records = audit(&second).await;
    let login_failed = find_audit(&records, "login", None, "failed");
    assert_eq!(login_failed["actor"], "127.0.0.1");
    let login_ok = find_audit(&records, "login", None, "ok");
    assert_eq!(login_ok["actor"], "admin");
    let target = format!("token:{id}");
    let created = find_audit(&records, "token.create", Some(&target), "ok");
    assert_eq!(created["actor"], "admin");
    assert!(
        created["detail"]
            .as_str()
            .unwrap()
            .contains("scope=operate")
    );
    assert_eq!(
        find_audit(&records, "token.revoke", Some(&target), "ok")["actor"],
        "admin"
    );
    find_audit(&records, "unit.start", Some("nope.service"), "not-found");
    assert_eq!(find_audit(&records, "logout", None, "ok")["actor"], "admin");
    for r in &records {
        for field in [
            "id", "time", "actor", "action", "target", "result", "detail",
        ] {
            assert!(r.get(field).is_some(), "{field} in {r}");
        }
        assert!(r["time"].as_str().unwrap().ends_with('Z'));
    }

    // Paging: limit and before.
    let page = second.get_json("/api/v1/audit?limit=2").await;
    let page = page.as_array().unwrap();
    assert_eq!(page.len(), 2);
    let last = page[1]["id"].as_i64().unwrap();
    let older = second
        .get_json(&format!("/api/v1/audit?limit=100&before={last}"))
        .await;
    let older = older.as_array().unwrap();
    assert!(!older.is_empty());
    assert!(older.iter().all(|r| r["id"].as_i64().unwrap() < last));
    assert_eq!(older.len() + 2, records.len());
    problem(second.get("/api/v1/audit?before=x").await, 400).await;
}

#[tokio::test(flavor = "multi_thread")]
async fn bad_input_changes_nothing_and_is_problem_json() {
    let sb = Sandbox::start();
    sb.add_unit("op.service", OP_UNIT);
    let api = sb.login().await;
    let before = audit(&api).await.len();

    problem(api.post(&path_of("op.service", "explode")).await, 404).await;
    problem(api.post(&path_of("op.service", "mask")).await, 404).await;
    problem(api.post(&path_of("nope.service", "start")).await, 404).await;
    problem(api.post(&path_of("not-a-unit", "start")).await, 400).await;
    problem(api.post("/api/v1/units/a%20b.service/start").await, 400).await;
    problem(
        api.post("/api/v1/units/op.service/start?wait=perhaps")
            .await,
        400,
    )
    .await;

    let bad_tokens = [
        (json!({"name": "ci", "scope": "root"}), "scope"),
        (json!({"name": 5, "scope": "read"}), "name"),
        (json!({"name": "", "scope": "read"}), "name"),
        (json!({"name": "x".repeat(101), "scope": "read"}), "name"),
    ];
    for (body, field) in bad_tokens {
        let res = api.post_json("/api/v1/tokens", &body).await;
        let p = problem(res, 422).await;
        let errors = p["errors"]
            .as_array()
            .unwrap_or_else(|| panic!("errors in {p}"));
        assert!(
            errors
                .iter()
                .any(|e| e["field"] == field && e["message"].is_string()),
            "{body}: {p}"
        );
    }
    for body in [
        json!({"name": "ci"}),
        json!({"name": "ci", "scope": "read", "admin": true}),
        json!([]),
    ] {
        let p = problem(api.post_json("/api/v1/tokens", &body).await, 422).await;
        assert!(p["errors"].is_array(), "{p}");
    }
    let res = api
        .request(Method::POST, "/api/v1/tokens")
        .header("content-type", "application/json")
        .body("{\"name\": ")
        .send()
        .await
        .unwrap();
    problem(res, 400).await;
    let res = api
        .request(Method::POST, "/api/v1/tokens")
        .header("content-type", "text/plain")
        .body("name=ci")
        .send()
        .await
        .unwrap();
    let status = res.status().as_u16();
    assert!((400..500).contains(&status));
    problem(res, status).await;
    problem(api.delete("/api/v1/tokens/abc").await, 400).await;
    problem(api.delete("/api/v1/tokens/999999").await, 404).await;
    let res = api
        .post_json("/api/v1/session", &json!({"pass": PASSWORD}))
        .await;
    problem(res, 422).await;

    // Nothing changed.
    assert_eq!(api.get_json("/api/v1/tokens").await, json!([]));
    assert_eq!(sb.show("op.service", "ActiveState"), "inactive");
    assert_eq!(sb.show("op.service", "UnitFileState"), "disabled");
    let records = audit(&api).await;
    let new: Vec<&Value> = records.iter().take(records.len() - before).collect();
    assert!(
        new.iter()
            .all(|r| r["result"] != "done" && r["result"] != "ok" || r["action"] == "login"),
        "{new:#?}"
    );
    // The unknown unit is recorded as a failed attempt.
    find_audit(&records, "unit.start", Some("nope.service"), "not-found");
}

#[tokio::test(flavor = "multi_thread")]
async fn token_create_cli_works_offline() {
    let sb = Sandbox::start();
    sb.add_unit("op.service", OP_UNIT);
    let cli = "UNITDECK_STATE_DIR=/var/lib/unitdeck /opt/unitdeck/unitdeck token create";
    // Next to the running server...
    let read = sb
        .sh(&format!("{cli} --name ci --scope read"))
        .trim()
        .to_string();
    assert!(read.starts_with("ud_"), "{read}");
    // ...and with it stopped: it only needs the database.
    sb.sh("systemctl stop unitdeck.service");
    let operate = sb
        .sh(&format!("{cli} --name deploy --scope operate 2>/dev/null"))
        .trim()
        .to_string();
    let out = sb.exec(&["/bin/sh", "-c", &format!("{cli} --name bad --scope root")]);
    assert!(!out.status.success(), "an unknown scope is refused");
    sb.sh("systemctl start unitdeck.service");
    sb.wait_healthy();

    let reader = sb.with_token(&read);
    let units = eventually(
        "the units with the CLI token",
        Duration::from_secs(10),
        async || {
            let res = reader.get("/api/v1/units").await;
            (res.status() == 200).then_some(())
        },
    );
    units.await;
    problem(reader.post(&path_of("op.service", "start")).await, 403).await;
    let operator = sb.with_token(&operate);
    let (status, body) = act(&operator, "op.service", "start").await;
    assert_eq!(status, 200, "{body}");
    assert_eq!(sb.show("op.service", "ActiveState"), "active");

    // Only a hash is stored, and the creation is audited.
    let db = sb.sh(
        "cat /var/lib/unitdeck/unitdeck.db /var/lib/unitdeck/unitdeck.db-wal 2>/dev/null || true",
    );
    assert!(
        !db.contains(&read) && !db.contains(&operate),
        "secrets in the database"
    );
    let admin = sb.login().await;
    let tokens = admin.get_json("/api/v1/tokens").await;
    let names: Vec<&str> = tokens
        .as_array()
        .unwrap()
        .iter()
        .map(|t| t["name"].as_str().unwrap())
        .collect();
    assert_eq!(names, ["ci", "deploy"]);
    let records = audit(&admin).await;
    let created = records
        .iter()
        .filter(|r| r["action"] == "token.create" && r["actor"] == "cli")
        .count();
    assert_eq!(created, 2);
}

// --- pages -------------------------------------------------------------------------

/// The secret shown in the settings page's copy field.
fn shown_secret(html: &str) -> Option<String> {
    let rest = html.split("id=\"new-token\"").nth(1)?;
    let value = rest.split("value=\"").nth(1)?;
    Some(value.split('"').next()?.to_string())
}

#[tokio::test(flavor = "multi_thread")]
async fn settings_page_creates_shows_once_and_revokes_tokens() {
    let sb = Sandbox::start();
    sb.add_unit("op.service", OP_UNIT);
    let api = sb.login().await;
    let page = api.get("/settings").await.text().await.unwrap();
    assert!(page.contains("action=\"logout\""), "a logout button");
    assert!(page.contains("action=\"ui/tokens\""));
    for scope in ["read", "operate", "admin"] {
        assert!(
            page.contains(&format!("<option value=\"{scope}\"")),
            "{scope}"
        );
    }
    assert!(page.contains("No tokens yet"));

    // Create from the form (as htmx sends it): the secret is shown once.
    let res = api
        .request(Method::POST, "/ui/tokens")
        .header("hx-request", "true")
        .form(&[("name", "phone <script>"), ("scope", "operate")])
        .send()
        .await
        .unwrap();
    assert_eq!(res.status(), 200);
    assert!(
        res.headers()["hx-trigger"]
            .to_str()
            .unwrap()
            .contains("created")
    );
    let html = res.text().await.unwrap();
    assert!(html.contains("id=\"tokens\""), "the part htmx swaps");
    let secret = shown_secret(&html).expect("the secret in a copy field");
    assert!(secret.starts_with("ud_"));
    assert!(!html.contains("<script>"), "names are escaped");
    assert!(html.contains("phone &#60;script&#62;") || html.contains("phone &lt;script&gt;"));
    let operator = sb.with_token(&secret);
    assert_eq!(act(&operator, "op.service", "start").await.0, 200);
    problem(
        operator
            .post_json("/api/v1/tokens", &json!({"name": "x", "scope": "read"}))
            .await,
        403,
    )
    .await;

    let page = api.get("/settings").await.text().await.unwrap();
    assert!(!page.contains(&secret), "shown only once");
    assert!(shown_secret(&page).is_none());
    let list = api.get_json("/api/v1/tokens").await;
    let id = list[0]["id"].as_i64().unwrap();
    assert_eq!(list[0]["scope"], "operate");
    assert!(page.contains(&format!("action=\"ui/tokens/{id}/revoke\"")));
    assert!(page.contains("hx-confirm=\"Revoke token"));

    // Bad input re-shows the form with the error, and creates nothing.
    for (name, scope, field) in [("", "read", "name"), ("ok", "root", "scope")] {
        let res = api
            .request(Method::POST, "/ui/tokens")
            .form(&[("name", name), ("scope", scope)])
            .send()
            .await
            .unwrap();
        assert_eq!(res.status(), 422, "{field}");
        let html = res.text().await.unwrap();
        assert!(html.contains("class=\"field-error\""), "{field}: {html}");
    }
    assert_eq!(
        api.get_json("/api/v1/tokens")
            .await
            .as_array()
            .unwrap()
            .len(),
        1
    );

    // Revoke: a plain form post goes back to the page; the token is dead.
    let res = api.post(&format!("/ui/tokens/{id}/revoke")).await;
    assert_eq!(res.status(), 303);
    // Relative to the form's own URL, so it holds under any path prefix.
    assert_eq!(res.headers()["location"], "../../../settings");
    problem(operator.get("/api/v1/units").await, 401).await;
    assert!(
        api.get("/settings")
            .await
            .text()
            .await
            .unwrap()
            .contains("No tokens yet")
    );
    // With htmx: the page part comes back with a toast.
    let (id2, _) = token(&api, "second", "read").await;
    let res = api
        .request(Method::POST, &format!("/ui/tokens/{id2}/revoke"))
        .header("hx-request", "true")
        .send()
        .await
        .unwrap();
    assert_eq!(res.status(), 200);
    assert!(
        res.headers()["hx-trigger"]
            .to_str()
            .unwrap()
            .contains("revoked")
    );
    assert_eq!(
        api.post(&format!("/ui/tokens/{id2}/revoke")).await.status(),
        404
    );

    let records = audit(&api).await;
    find_audit(&records, "token.create", Some(&format!("token:{id}")), "ok");
    find_audit(&records, "token.revoke", Some(&format!("token:{id}")), "ok");

    // The logout button ends the session.
    let res = api.post("/logout").await;
    assert_eq!(res.status(), 303);
    assert_eq!(res.headers()["location"], "login");
    assert_eq!(api.get("/settings").await.status(), 303);
}

#[tokio::test(flavor = "multi_thread")]
async fn audit_page_lists_newest_first_and_pages_back() {
    let sb = Sandbox::start();
    sb.add_unit("op.service", OP_UNIT);
    let api = sb.login().await;
    for _ in 0..60 {
        assert_eq!(act(&api, "op.service", "reset-failed").await.0, 200);
    }
    token(&api, "<b>bold</b>", "read").await;
    let records = audit(&api).await;
    let newest = records[0]["id"].as_i64().unwrap();

    let page = api.get("/audit").await.text().await.unwrap();
    assert!(page.contains("<table class=\"data\">"));
    assert!(page.contains("aria-current=\"page\">Audit"));
    let rows: Vec<i64> = page
        .split("<tr id=\"audit-")
        .skip(1)
        .map(|s| s.split('"').next().unwrap().parse().unwrap())
        .collect();
    assert_eq!(rows.len(), 50);
    assert_eq!(rows[0], newest, "newest first");
    assert!(rows.windows(2).all(|w| w[0] > w[1]));
    for label in ["Time", "Actor", "Action", "Target", "Result", "Detail"] {
        assert_eq!(
            page.matches(&format!("data-label=\"{label}\"")).count(),
            50,
            "every cell is labelled for the stacked phone layout"
        );
    }
    assert!(!page.contains("<b>bold</b>"), "escaped");
    assert!(page.contains("unit.reset-failed") && page.contains("op.service"));
    let oldest_shown = *rows.last().unwrap();
    let older_link = format!("href=\"audit?before={oldest_shown}\"");
    assert!(page.contains(&older_link), "an older link");

    let page2 = api
        .get(&format!("/audit?before={oldest_shown}"))
        .await
        .text()
        .await
        .unwrap();
    let rows2: Vec<i64> = page2
        .split("<tr id=\"audit-")
        .skip(1)
        .map(|s| s.split('"').next().unwrap().parse().unwrap())
        .collect();
    assert_eq!(rows2.len(), records.len() - 50);
    assert!(rows2.iter().all(|id| *id < oldest_shown));
    assert!(
        !page2.contains("rel=\"next\""),
        "no older page after the last"
    );
    assert!(page2.contains("href=\"audit\""), "a way back to the newest");

    // Read-only tokens can look; anonymous visitors are sent to log in.
    let (_, read) = token(&api, "viewer", "read").await;
    assert_eq!(sb.with_token(&read).get("/audit").await.status(), 200);
    assert_eq!(sb.anonymous().get("/audit").await.status(), 303);
}

/// Pins are stored on the server: they survive a restart of unitdeck and every browser
/// sees them first on the dashboard; an operate token may pin, a read token may not.
#[tokio::test(flavor = "multi_thread")]
async fn pins_survive_a_restart_and_lead_the_dashboard() {
    let sb = Sandbox::start();
    sb.add_unit("op.service", OP_UNIT);
    let admin = sb.login().await;
    let (_, read) = token(&admin, "reader", "read").await;
    let (_, operate) = token(&admin, "operator", "operate").await;
    let pin = |api: &Api, name: &str| {
        api.request(Method::PUT, &format!("/api/v1/pins/{name}"))
            .send()
    };
    problem(pin(&sb.with_token(&read), "op.service").await.unwrap(), 403).await;
    let res = pin(&sb.with_token(&operate), "op.service").await.unwrap();
    assert_eq!(res.status(), 200);
    assert_eq!(res.json::<Value>().await.unwrap(), json!(["op.service"]));

    sb.sh("systemctl restart unitdeck.service");
    sb.wait_healthy();
    let admin = sb.login().await;
    assert_eq!(admin.get_json("/api/v1/pins").await, json!(["op.service"]));
    let rows = admin.get("/ui/units").await.text().await.unwrap();
    let first = rows.find("<article").expect("rows");
    assert!(
        rows[first..].starts_with("<article class=\"unit-row\" id=\"u-op_2eservice\""),
        "op.service leads: {}",
        &rows[first..first + 200]
    );
    let records = audit(&admin).await;
    find_audit(&records, "unit.pin", Some("op.service"), "done");
    let res = admin
        .request(Method::DELETE, "/api/v1/pins/op.service")
        .send()
        .await
        .unwrap();
    assert_eq!(res.json::<Value>().await.unwrap(), json!([]));
}
