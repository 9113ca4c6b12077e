//! Unit files created by unitdeck, against a real systemd: an app server and a job
//! created, updated, rolled back and deleted through the API; values that need escaping
//! read back over D-Bus and from the running process; hostile specs refused with the
//! unit directory left byte for byte as it was; a creation through the HTML form.

mod common;

use std::collections::BTreeMap;
use std::time::Duration;

use common::{Api, Sandbox, answers, eventually};
use serde_json::{Value, json};
use sha2::{Digest, Sha256};

const UNIT_DIR: &str = "etc/systemd/system";

fn fingerprint(snapshot: &BTreeMap<String, Vec<u8>>) -> String {
    let mut h = Sha256::new();
    for (path, bytes) in snapshot {
        h.update(path.as_bytes());
        h.update([0]);
        h.update(bytes);
        h.update([0]);
    }
    hex::encode(h.finalize())
}

/// A property over D-Bus, exactly as systemd holds it (`busctl --json=short`).
fn dbus_property(sb: &Sandbox, unit: &str, interface: &str, property: &str) -> Value {
    let path = unit_object_path(unit);
    let out = sb.sh(&format!(
        "busctl --json=short get-property org.freedesktop.systemd1 {path} \
         org.freedesktop.systemd1.{interface} {property}"
    ));
    let v: Value = serde_json::from_str(out.trim()).unwrap();
    v["data"].clone()
}

fn unit_object_path(name: &str) -> String {
    let mut path = String::from("/org/freedesktop/systemd1/unit/");
    for (i, b) in name.bytes().enumerate() {
        if b.is_ascii_alphabetic() || (b.is_ascii_digit() && i > 0) {
            path.push(b as char);
        } else {
            path.push_str(&format!("_{b:02x}"));
        }
    }
    path
}

fn app_spec(port: u16) -> Value {
    json!({
        "name": "shop-api",
        "kind": "service",
        "description": "Shop API (dev) 100% ready",
        "exec_start": ["/usr/bin/python3", "-m", "http.server", port.to_string(), "--bind", "127.0.0.1"],
        "working_directory": "/tmp",
        "environment": {
            "GREETING": "hello  world with spaces",
            "PERCENT": "100% %n %i %%",
            "DOLLAR": "$HOME ${USER} $$ $(id)",
            "QUOTES": "it's \"quoted\" back\\slash \\",
            "EMPTY": ""
        },
        "after": ["network.target"],
        "wants": [],
        "restart": "on-failure",
        "restart_sec": 1,
        "port": port,
        "health": {"tcp": port, "interval_s": 5},
        "enable": true,
        "start": true
    })
}

fn expected_env(spec: &Value) -> Vec<String> {
    spec["environment"]
        .as_object()
        .unwrap()
        .iter()
        .map(|(k, v)| format!("{k}={}", v.as_str().unwrap()))
        .collect()
}

#[tokio::test(flavor = "multi_thread")]
async fn app_server_is_created_updated_rolled_back_and_deleted() {
    let sb = Sandbox::start();
    let api = sb.login().await;
    let (port1, port2) = (sb.spare_ports[0], sb.spare_ports[1]);
    let spec = app_spec(port1);

    // Preview: the text and a clean verify, and nothing written.
    let before = sb.unit_dir_snapshot();
    let res = api.post_json("/api/v1/unit-files/preview", &spec).await;
    assert_eq!(res.status(), 200);
    let preview: Value = res.json().await.unwrap();
    let text = preview["files"]["shop-api.service"].as_str().unwrap();
    assert!(text.starts_with("# Managed by unitdeck"), "{text}");
    assert!(
        text.contains("Description=Shop API (dev) 100%% ready"),
        "{text}"
    );
    assert_eq!(preview["verify"]["ok"], true, "{preview}");
    assert!(preview.get("next_runs").is_none());
    assert_eq!(sb.unit_dir_snapshot(), before, "preview wrote nothing");

    // Create.
    let started = std::time::Instant::now();
    let res = api.post_json("/api/v1/unit-files", &spec).await;
    let create_ms = started.elapsed().as_millis();
    assert_eq!(res.status(), 201);
    let created: Value = res.json().await.unwrap();
    assert_eq!(created["name"], "shop-api.service");
    assert_eq!(created["revision"], 1);
    assert_eq!(created["files"]["shop-api.service"].as_str().unwrap(), text);
    assert_eq!(created["unit"]["name"], "shop-api.service");
    assert_eq!(created["unit"]["active_state"], "active");
    assert_eq!(created["unit"]["managed"], true);
    assert_eq!(created["job"]["result"], "done");
    eprintln!("create (write, reload, commit, enable, start): {create_ms} ms");

    assert_eq!(sb.show("shop-api.service", "ActiveState"), "active");
    assert_eq!(sb.show("shop-api.service", "UnitFileState"), "enabled");
    eventually(
        "the app answers on its port",
        Duration::from_secs(15),
        async || answers(port1).await.then_some(()),
    )
    .await;

    // On disk: our marker, mode 0644, and no temporary file left behind.
    let file = sb.root().join(UNIT_DIR).join("shop-api.service");
    assert_eq!(std::fs::read_to_string(&file).unwrap(), text);
    {
        use std::os::unix::fs::PermissionsExt;
        assert_eq!(
            std::fs::metadata(&file).unwrap().permissions().mode() & 0o777,
            0o644
        );
    }
    let leftovers: Vec<String> = sb
        .unit_dir_snapshot()
        .into_keys()
        .filter(|p| p.contains("unitdeck-") || p.ends_with(".tmp"))
        .collect();
    assert!(leftovers.is_empty(), "{leftovers:?}");

    // The values arrive exactly: over D-Bus and in the running process.
    let mut want_env = expected_env(&spec);
    want_env.sort();
    let mut got_env: Vec<String> = dbus_property(&sb, "shop-api.service", "Service", "Environment")
        .as_array()
        .unwrap()
        .iter()
        .map(|v| v.as_str().unwrap().to_string())
        .collect();
    got_env.sort();
    assert_eq!(got_env, want_env);
    let process_env = sb.process_environment("shop-api.service");
    for var in &want_env {
        assert!(process_env.contains(var), "{var:?} not in {process_env:?}");
    }
    let exec = dbus_property(&sb, "shop-api.service", "Service", "ExecStart");
    assert_eq!(exec[0][1], spec["exec_start"], "{exec}");
    assert_eq!(
        dbus_property(&sb, "shop-api.service", "Unit", "Description"),
        spec["description"]
    );

    // Listed, and managed in the units API.
    let list = api.get_json("/api/v1/unit-files").await;
    assert_eq!(list.as_array().unwrap().len(), 1);
    assert_eq!(list[0]["name"], "shop-api.service");
    assert_eq!(list[0]["kind"], "service");
    assert_eq!(list[0]["revision"], 1);
    assert!(list[0]["updated_at"].as_str().unwrap().ends_with('Z'));
    let unit = api.get_json("/api/v1/units/shop-api.service").await;
    assert_eq!(unit["managed"], true);

    // A second create of the same name is a conflict.
    assert_eq!(
        api.post_json("/api/v1/unit-files", &spec).await.status(),
        409
    );

    // Update: a new port; it was running, so it restarts on the new one.
    let pid1 = sb.show("shop-api.service", "MainPID");
    let mut spec2 = app_spec(port2);
    spec2["environment"]["GREETING"] = json!("second revision");
    let res = api.put_json("/api/v1/unit-files/shop-api", &spec2).await;
    assert_eq!(res.status(), 200);
    let updated: Value = res.json().await.unwrap();
    assert_eq!(updated["revision"], 2);
    assert_eq!(updated["job"]["result"], "done");
    assert_ne!(sb.show("shop-api.service", "MainPID"), pid1, "restarted");
    eventually(
        "the app answers on the new port",
        Duration::from_secs(45),
        async || answers(port2).await.then_some(()),
    )
    .await;
    eventually(
        "the old port is closed",
        Duration::from_secs(15),
        async || (!answers(port1).await).then_some(()),
    )
    .await;
    assert!(
        sb.process_environment("shop-api.service")
            .contains(&"GREETING=second revision".to_string())
    );

    // The full name works as the route parameter too; the name in the body must match.
    let mut renamed = spec2.clone();
    renamed["name"] = json!("other");
    let res = api
        .put_json("/api/v1/unit-files/shop-api.service", &renamed)
        .await;
    assert_eq!(res.status(), 422);
    let problem: Value = res.json().await.unwrap();
    assert_eq!(problem["errors"][0]["field"], "name");
    let detail = api.get_json("/api/v1/unit-files/shop-api.service").await;
    assert_eq!(detail["spec"]["port"], port2);
    assert_eq!(detail["revisions"].as_array().unwrap().len(), 2);
    assert_eq!(detail["revisions"][0]["revision"], 2);
    assert_eq!(detail["revisions"][0]["actor"], "admin");

    // Rollback to revision 1: a new revision 3 with revision 1's spec.
    let res = api
        .post_json(
            "/api/v1/unit-files/shop-api/rollback",
            &json!({"revision": 1}),
        )
        .await;
    assert_eq!(res.status(), 200);
    let rolled: Value = res.json().await.unwrap();
    assert_eq!(rolled["revision"], 3);
    assert_eq!(rolled["files"]["shop-api.service"].as_str().unwrap(), text);
    eventually(
        "the app answers on the first port again",
        Duration::from_secs(45),
        async || answers(port1).await.then_some(()),
    )
    .await;
    let detail = api.get_json("/api/v1/unit-files/shop-api").await;
    assert_eq!(detail["revision"], 3);
    assert_eq!(detail["spec"]["environment"], spec["environment"]);
    assert_eq!(detail["spec"]["port"], port1);
    assert_eq!(detail["revisions"].as_array().unwrap().len(), 3);
    let res = api
        .post_json(
            "/api/v1/unit-files/shop-api/rollback",
            &json!({"revision": 9}),
        )
        .await;
    assert_eq!(res.status(), 422);
    let problem: Value = res.json().await.unwrap();
    assert_eq!(problem["errors"][0]["field"], "revision");

    // Every change is in the audit log, by whom.
    let audit = api.get_json("/api/v1/audit?limit=100").await;
    for action in [
        "unitfile.create",
        "unitfile.update",
        "unitfile.rollback",
        "unit.start",
        "unit.restart",
    ] {
        assert!(
            audit
                .as_array()
                .unwrap()
                .iter()
                .any(|a| a["action"] == action
                    && a["actor"] == "admin"
                    && a["target"].as_str().unwrap_or("").starts_with("shop-api")),
            "{action} not audited: {audit}"
        );
    }

    // A service that does not stop is not deleted from under its process: 409, nothing
    // changed (still enabled, files in place).
    let keep = "/etc/systemd/system/shop-api.service.d/zz-refuse-stop.conf";
    sb.write(keep, "[Unit]\nRefuseManualStop=yes\n");
    sb.sh("systemctl daemon-reload");
    let res = api.delete("/api/v1/unit-files/shop-api").await;
    assert_eq!(res.status(), 409);
    let body: Value = res.json().await.unwrap();
    assert!(
        body["detail"].as_str().unwrap().contains("did not stop"),
        "{body}"
    );
    assert!(file.exists());
    assert_eq!(sb.show("shop-api.service", "ActiveState"), "active");
    assert_eq!(sb.show("shop-api.service", "UnitFileState"), "enabled");
    sb.sh(&format!("rm {keep} && systemctl daemon-reload"));

    // Delete: stopped, disabled, files gone, systemd no longer knows it.
    let res = api.delete("/api/v1/unit-files/shop-api").await;
    assert_eq!(res.status(), 204);
    assert!(!file.exists());
    assert!(
        !sb.root()
            .join(UNIT_DIR)
            .join("multi-user.target.wants/shop-api.service")
            .exists()
    );
    assert_eq!(sb.show("shop-api.service", "LoadState"), "not-found");
    eventually("the port is closed", Duration::from_secs(15), async || {
        (!answers(port1).await).then_some(())
    })
    .await;
    assert_eq!(api.get("/api/v1/unit-files/shop-api").await.status(), 404);
    assert_eq!(api.get_json("/api/v1/unit-files").await, json!([]));
    eventually(
        "the unit leaves the list",
        Duration::from_secs(10),
        async || (api.get("/api/v1/units/shop-api.service").await.status() == 404).then_some(()),
    )
    .await;
    let audit = api.get_json("/api/v1/audit?limit=5").await;
    assert!(
        audit
            .as_array()
            .unwrap()
            .iter()
            .any(|a| a["action"] == "unitfile.delete"
                && a["result"] == "ok"
                && a["detail"].as_str().unwrap().contains("http.server"))
    );
    assert_eq!(
        api.delete("/api/v1/unit-files/shop-api").await.status(),
        404
    );
}

#[tokio::test(flavor = "multi_thread")]
async fn a_job_gets_an_active_timer_with_a_next_elapse() {
    let sb = Sandbox::start();
    let api = sb.login().await;
    let spec = json!({
        "name": "nightly-report",
        "kind": "job",
        "description": "Nightly report",
        "exec_start": ["/bin/sh", "-c", "echo \"ran as $0 with 100%\" > /run/nightly-report.out"],
        "schedule": "*-*-* 03:00:00"
    });
    let preview: Value = api
        .post_json("/api/v1/unit-files/preview", &spec)
        .await
        .json()
        .await
        .unwrap();
    let runs = preview["next_runs"].as_array().unwrap();
    assert_eq!(runs.len(), 5, "{preview}");
    assert!(
        runs.iter()
            .all(|r| r.as_str().unwrap().ends_with("T03:00:00.000000Z")),
        "{runs:?}"
    );
    assert!(
        preview["files"]["nightly-report.timer"]
            .as_str()
            .unwrap()
            .contains("OnCalendar=*-*-* 03:00:00")
    );

    let res = api.post_json("/api/v1/unit-files", &spec).await;
    assert_eq!(res.status(), 201);
    let created: Value = res.json().await.unwrap();
    assert_eq!(created["name"], "nightly-report.service");
    assert_eq!(created["unit"]["name"], "nightly-report.timer");
    assert_eq!(created["unit"]["active_state"], "active");
    assert_eq!(sb.show("nightly-report.timer", "UnitFileState"), "enabled");
    assert_eq!(sb.show("nightly-report.timer", "ActiveState"), "active");
    assert_eq!(sb.show("nightly-report.service", "Type"), "oneshot");
    let timer = api.get_json("/api/v1/units/nightly-report.timer").await;
    assert_eq!(timer["timer"]["schedule"], "*-*-* 03:00:00");
    let next = timer["timer"]["next_elapse"].as_str().unwrap();
    assert_eq!(
        next,
        runs[0].as_str().unwrap(),
        "systemd agrees with the preview"
    );
    assert_eq!(
        api.get_json("/api/v1/unit-files/nightly-report.timer")
            .await["kind"],
        "job"
    );

    // The job itself runs, with its argument passed exactly ($0 is the shell's, not systemd's).
    sb.sh("systemctl start nightly-report.service");
    assert_eq!(
        sb.sh("cat /run/nightly-report.out").trim(),
        "ran as /bin/sh with 100%"
    );

    // A schedule systemd cannot parse is a 422 on that field.
    let mut bad = spec.clone();
    bad["schedule"] = json!("every other tuesday");
    let res = api
        .put_json("/api/v1/unit-files/nightly-report", &bad)
        .await;
    assert_eq!(res.status(), 422);
    let problem: Value = res.json().await.unwrap();
    assert_eq!(problem["errors"][0]["field"], "schedule");

    // A new schedule: the timer is restarted with it.
    let mut hourly = spec.clone();
    hourly["schedule"] = json!("hourly");
    assert_eq!(
        api.put_json("/api/v1/unit-files/nightly-report", &hourly)
            .await
            .status(),
        200
    );
    let timer = api.get_json("/api/v1/units/nightly-report.timer").await;
    assert_eq!(timer["timer"]["schedule"], "*-*-* *:00:00");

    // A change interrupted between writing the files and recording the revision (a crash
    // leaves its intent behind): the next start puts the recorded revision back.
    // (A file changed without an intent was edited by hand: tests/restore_on_start.rs.)
    let timer_file = sb.root().join(UNIT_DIR).join("nightly-report.timer");
    let recorded = std::fs::read_to_string(&timer_file).unwrap();
    std::fs::write(&timer_file, recorded.replace("hourly", "minutely")).unwrap();
    std::fs::write(
        sb.root()
            .join(UNIT_DIR)
            .join(".nightly-report.unitdeck-change"),
        "nightly-report.service\nnightly-report.timer\n",
    )
    .unwrap();
    sb.sh("systemctl restart unitdeck.service");
    sb.wait_healthy();
    let api = sb.login().await;
    eventually(
        "the recorded revision back",
        Duration::from_secs(10),
        async || {
            let audit = api.get_json("/api/v1/audit?limit=5").await;
            let settled = audit
                .as_array()
                .unwrap()
                .iter()
                .any(|r| r["action"] == "unitfile.restore" && r["result"] == "ok");
            settled.then_some(())
        },
    )
    .await;
    assert_eq!(std::fs::read_to_string(&timer_file).unwrap(), recorded);
    assert!(
        !sb.root()
            .join(UNIT_DIR)
            .join(".nightly-report.unitdeck-change")
            .exists()
    );
    assert_eq!(
        api.get_json("/api/v1/units/nightly-report.timer").await["managed"],
        true
    );

    assert_eq!(
        api.delete("/api/v1/unit-files/nightly-report.timer")
            .await
            .status(),
        204
    );
    for f in ["nightly-report.service", "nightly-report.timer"] {
        assert!(!sb.root().join(UNIT_DIR).join(f).exists(), "{f}");
        assert_eq!(sb.show(f, "LoadState"), "not-found", "{f}");
    }
}

/// What a hostile request must get: a status and the field named in the problem.
enum Expect {
    /// 422 with this field in `errors`.
    Field(&'static str),
    /// This status, with this text in `detail`.
    Status(u16, &'static str),
    /// 422 with this text in an error message.
    Message(&'static str),
}

#[tokio::test(flavor = "multi_thread")]
async fn hostile_specs_are_refused_and_change_nothing() {
    let sb = Sandbox::start();
    // A unit in the unit directory that unitdeck did not write.
    sb.add_unit(
        "handmade.service",
        "[Service]\nExecStart=/bin/sleep infinity\n",
    );
    // What `systemctl edit` leaves behind after its unit file went.
    sb.write(
        "/etc/systemd/system/dropped.service.d/override.conf",
        "[Service]\nUser=root\n",
    );
    // A copy of one of unitdeck's files, edited by hand: it carries the marker.
    sb.write(
        "/etc/systemd/system/copied.service",
        &format!(
            "{}\n[Service]\nExecStart=/bin/sleep infinity\n",
            unitdeck::unitfile::MANAGED_HEADER
        ),
    );
    sb.sh("systemctl daemon-reload");
    let api = sb.login().await;
    let before = sb.unit_dir_snapshot();

    let base = || {
        json!({"name": "ok-app", "kind": "service", "exec_start": ["/bin/sleep", "1000"],
               "enable": false, "start": false})
    };
    let with = |f: &dyn Fn(&mut Value)| {
        let mut v = base();
        f(&mut v);
        v
    };
    let job = |schedule: &str| json!({"name": "ok-job", "kind": "job", "exec_start": ["/bin/true"], "schedule": schedule});
    let inj = "x\n[Service]\nExecStartPre=/bin/sh -c 'touch /pwned'";
    let cases: Vec<(&str, Value, Expect)> = vec![
        (
            "traversal in name",
            with(&|v| v["name"] = json!("../../etc/passwd")),
            Expect::Field("name"),
        ),
        (
            "slash in name",
            with(&|v| v["name"] = json!("a/b")),
            Expect::Field("name"),
        ),
        (
            "newline in name",
            with(&|v| v["name"] = json!("x\nExecStartPre=/bin/sh")),
            Expect::Field("name"),
        ),
        (
            "NUL in name",
            with(&|v| v["name"] = json!("x\u{0}y")),
            Expect::Field("name"),
        ),
        (
            "suffix game",
            with(&|v| v["name"] = json!("x.service")),
            Expect::Field("name"),
        ),
        (
            "% in name",
            with(&|v| v["name"] = json!("%n")),
            Expect::Field("name"),
        ),
        (
            "template name",
            with(&|v| v["name"] = json!("getty@tty1")),
            Expect::Field("name"),
        ),
        (
            "a reserved name without a unit",
            with(&|v| v["name"] = json!("systemd-made-up")),
            Expect::Field("name"),
        ),
        (
            "vendor dbus",
            with(&|v| v["name"] = json!("dbus")),
            Expect::Status(409, "dbus.service"),
        ),
        (
            "vendor journald",
            with(&|v| v["name"] = json!("systemd-journald")),
            Expect::Status(409, "systemd-journald.service"),
        ),
        (
            "unitdeck itself",
            with(&|v| v["name"] = json!("unitdeck")),
            Expect::Status(409, "unitdeck.service"),
        ),
        (
            "a unit in /lib",
            with(&|v| v["name"] = json!("rescue")),
            Expect::Status(409, "rescue.service"),
        ),
        (
            "a unit in /lib (2)",
            with(&|v| v["name"] = json!("emergency")),
            Expect::Status(409, "emergency.service"),
        ),
        (
            "a hand-made unit",
            with(&|v| v["name"] = json!("handmade")),
            Expect::Status(409, "handmade.service"),
        ),
        (
            "drop-ins left behind",
            with(&|v| v["name"] = json!("dropped")),
            Expect::Status(409, "dropped.service.d"),
        ),
        (
            "a marked copy unitdeck has no record of",
            with(&|v| v["name"] = json!("copied")),
            Expect::Status(409, "no record"),
        ),
        (
            "requires poweroff.target",
            with(&|v| v["requires"] = json!(["poweroff.target"])),
            Expect::Field("requires"),
        ),
        (
            "wants reboot.target",
            with(&|v| v["wants"] = json!(["reboot.target"])),
            Expect::Field("wants"),
        ),
        (
            "newline in description",
            with(&|v| v["description"] = json!(inj)),
            Expect::Field("description"),
        ),
        (
            "CR in description",
            with(&|v| v["description"] = json!("a\rExecStartPre=/bin/sh")),
            Expect::Field("description"),
        ),
        (
            "NUL in description",
            with(&|v| v["description"] = json!("a\u{0}b")),
            Expect::Field("description"),
        ),
        (
            "continuation in description",
            with(&|v| v["description"] = json!("joins \\")),
            Expect::Field("description"),
        ),
        (
            "newline in an argument",
            with(&|v| v["exec_start"] = json!(["/bin/echo", inj])),
            Expect::Field("exec_start"),
        ),
        (
            "NUL in an argument",
            with(&|v| v["exec_start"] = json!(["/bin/echo", "a\u{0}b"])),
            Expect::Field("exec_start"),
        ),
        (
            "relative program",
            with(&|v| v["exec_start"] = json!(["sh", "-c", "id"])),
            Expect::Field("exec_start"),
        ),
        (
            "missing program",
            with(&|v| v["exec_start"] = json!(["/usr/bin/no-such-program"])),
            Expect::Field("exec_start"),
        ),
        (
            "empty argv",
            with(&|v| v["exec_start"] = json!([])),
            Expect::Field("exec_start"),
        ),
        (
            "traversal in working_directory",
            with(&|v| v["working_directory"] = json!("/tmp/../etc")),
            Expect::Field("working_directory"),
        ),
        (
            "newline in working_directory",
            with(&|v| v["working_directory"] = json!("/tmp\nUser=root")),
            Expect::Field("working_directory"),
        ),
        (
            "newline in user",
            with(&|v| v["user"] = json!("root\nExecStartPre=/bin/sh")),
            Expect::Field("user"),
        ),
        (
            "% in user",
            with(&|v| v["user"] = json!("%u")),
            Expect::Field("user"),
        ),
        (
            "unknown user",
            with(&|v| v["user"] = json!("nosuchuser")),
            Expect::Field("user"),
        ),
        (
            "newline in group",
            with(&|v| v["group"] = json!("x\ny")),
            Expect::Field("group"),
        ),
        (
            "newline in an env name",
            with(&|v| v["environment"] = json!({"A\nB": "x"})),
            Expect::Field("environment"),
        ),
        (
            "newline in an env value",
            with(&|v| v["environment"] = json!({"OK": inj})),
            Expect::Field("environment"),
        ),
        (
            "NUL in an env value",
            with(&|v| v["environment"] = json!({"OK": "a\u{0}"})),
            Expect::Field("environment"),
        ),
        (
            "= in an env name",
            with(&|v| v["environment"] = json!({"A=B": "x"})),
            Expect::Field("environment"),
        ),
        (
            "newline in after",
            with(&|v| v["after"] = json!(["network.target\nExecStartPre=/bin/sh"])),
            Expect::Field("after"),
        ),
        (
            "traversal in requires",
            with(&|v| v["requires"] = json!(["../x.service"])),
            Expect::Field("requires"),
        ),
        (
            "% in wants",
            with(&|v| v["wants"] = json!(["%i.service"])),
            Expect::Field("wants"),
        ),
        (
            "port out of range",
            with(&|v| v["port"] = json!(70000)),
            Expect::Field("port"),
        ),
        (
            "remote health URL",
            with(&|v| v["health"] = json!({"http": "http://evil.example/"})),
            Expect::Field("health.http"),
        ),
        (
            "newline in health URL",
            with(&|v| v["health"] = json!({"http": "http://127.0.0.1/\nX=1"})),
            Expect::Field("health.http"),
        ),
        (
            "negative restart_sec",
            with(&|v| v["restart_sec"] = json!(-1)),
            Expect::Field("restart_sec"),
        ),
        (
            "newline in schedule",
            job("daily\nExecStartPre=/bin/sh"),
            Expect::Field("schedule"),
        ),
        (
            "% in schedule",
            job("*-*-* %H:00:00"),
            Expect::Field("schedule"),
        ),
        (
            "nonsense schedule",
            job("whenever you like"),
            Expect::Field("schedule"),
        ),
        (
            "option as schedule",
            job("--help"),
            Expect::Field("schedule"),
        ),
        (
            "wrong type: argv as string",
            with(&|v| v["exec_start"] = json!("/bin/sh -c id")),
            Expect::Field("exec_start"),
        ),
        (
            "wrong type: port as string",
            with(&|v| v["port"] = json!("8036")),
            Expect::Field("port"),
        ),
        (
            "wrong type: env value",
            with(&|v| v["environment"] = json!({"A": 1})),
            Expect::Field("environment.A"),
        ),
        (
            "wrong type: kind",
            with(&|v| v["kind"] = json!("daemon")),
            Expect::Field("kind"),
        ),
        (
            "wrong type: name",
            with(&|v| v["name"] = json!(["a"])),
            Expect::Field("name"),
        ),
        (
            "extra directive field",
            with(&|v| v["ExecStartPre"] = json!("/bin/sh")),
            Expect::Message("ExecStartPre"),
        ),
        (
            "huge body",
            with(&|v| v["description"] = json!("x".repeat(100_000))),
            Expect::Status(413, ""),
        ),
    ];
    assert!(cases.len() >= 20);
    let mut refused = 0;
    for (what, body, expect) in &cases {
        let res = api.post_json("/api/v1/unit-files", body).await;
        let status = res.status().as_u16();
        assert_eq!(
            res.headers()["content-type"],
            "application/problem+json",
            "{what}"
        );
        let problem: Value = res.json().await.unwrap();
        match expect {
            Expect::Field(field) => {
                assert_eq!(status, 422, "{what}: {problem}");
                let fields: Vec<&str> = problem["errors"]
                    .as_array()
                    .unwrap()
                    .iter()
                    .map(|e| e["field"].as_str().unwrap())
                    .collect();
                assert!(fields.contains(field), "{what}: {field} not in {fields:?}");
                for e in problem["errors"].as_array().unwrap() {
                    let m = e["message"].as_str().unwrap();
                    assert!(!m.contains('\n') && !m.contains('\0'), "{what}: {m:?}");
                }
            }
            Expect::Message(text) => {
                assert_eq!(status, 422, "{what}: {problem}");
                assert!(
                    problem["errors"][0]["message"]
                        .as_str()
                        .unwrap()
                        .contains(text),
                    "{what}: {problem}"
                );
            }
            Expect::Status(want, text) => {
                assert_eq!(status, *want, "{what}: {problem}");
                assert!(
                    problem["detail"].as_str().unwrap().contains(text),
                    "{what}: {problem}"
                );
            }
        }
        // The preview refuses the same specs (or reports the conflict), writing nothing.
        let res = api.post_json("/api/v1/unit-files/preview", body).await;
        assert!(
            res.status().is_client_error() || res.status() == 200,
            "{what}"
        );
        refused += 1;
    }
    eprintln!("{refused} hostile specs refused");

    // Not JSON at all.
    let res = api
        .request(reqwest::Method::POST, "/api/v1/unit-files")
        .header("content-type", "application/json")
        .body("{\"name\": ")
        .send()
        .await
        .unwrap();
    assert_eq!(res.status(), 400);

    // Changing or deleting units unitdeck did not create.
    let dbus_spec = with(&|v| v["name"] = json!("dbus"));
    for (method, path, body) in [
        (
            "PUT",
            "/api/v1/unit-files/dbus.service",
            Some(dbus_spec.clone()),
        ),
        ("PUT", "/api/v1/unit-files/dbus", Some(dbus_spec.clone())),
        (
            "DELETE",
            "/api/v1/unit-files/systemd-journald.service",
            None,
        ),
        ("DELETE", "/api/v1/unit-files/rescue", None),
        ("DELETE", "/api/v1/unit-files/handmade.service", None),
        ("DELETE", "/api/v1/unit-files/dbus.socket", None),
        (
            "POST",
            "/api/v1/unit-files/unitdeck/rollback",
            Some(json!({"revision": 1})),
        ),
    ] {
        let mut req = api.request(method.parse().unwrap(), path);
        if let Some(body) = body {
            req = req.json(&body);
        }
        let res = req.send().await.unwrap();
        assert_eq!(res.status(), 409, "{method} {path}");
    }
    for path in [
        "/api/v1/unit-files/..%2F..%2Fetc%2Fpasswd",
        "/api/v1/unit-files/a%20b",
    ] {
        assert_eq!(api.delete(path).await.status(), 400, "{path}");
    }
    assert_eq!(
        api.delete("/api/v1/unit-files/never-made").await.status(),
        404
    );

    // The routes are documented.
    let doc: Value = sb
        .anonymous()
        .get("/api/openapi.json")
        .await
        .json()
        .await
        .unwrap();
    for (path, methods) in [
        ("/api/v1/unit-files/preview", &["post"][..]),
        ("/api/v1/unit-files", &["get", "post"][..]),
        ("/api/v1/unit-files/{name}", &["get", "put", "delete"][..]),
        ("/api/v1/unit-files/{name}/rollback", &["post"][..]),
    ] {
        for m in methods {
            assert!(
                doc["paths"][path][m].is_object(),
                "{m} {path} missing from OpenAPI"
            );
        }
    }
    assert!(doc["components"]["schemas"]["UnitSpec"].is_object());

    let after = sb.unit_dir_snapshot();
    assert_eq!(
        fingerprint(&before),
        fingerprint(&after),
        "unit directory changed: {:?}",
        after
            .keys()
            .filter(|k| !before.contains_key(*k))
            .collect::<Vec<_>>()
    );
    assert_eq!(before, after);
    assert_eq!(api.get_json("/api/v1/unit-files").await, json!([]));
    // Refusals are audited too.
    let audit = api.get_json("/api/v1/audit?limit=200").await;
    assert!(
        audit
            .as_array()
            .unwrap()
            .iter()
            .any(|a| a["action"] == "unitfile.create" && a["result"] == "refused")
    );
    assert!(
        audit
            .as_array()
            .unwrap()
            .iter()
            .any(|a| a["action"] == "unitfile.create" && a["result"] == "invalid")
    );
}

/// A browser's same-origin form post.
fn browser_post(sb: &Sandbox, api: &Api, path: &str) -> reqwest::RequestBuilder {
    api.request(reqwest::Method::POST, path)
        .header("origin", sb.base_url())
        .header("sec-fetch-site", "same-origin")
}

#[tokio::test(flavor = "multi_thread")]
async fn the_html_form_creates_a_running_unit() {
    let sb = Sandbox::start();
    let api = sb.login().await;
    let port = sb.spare_ports[2];

    // /units/new is the form, not a unit called "new"; it offers the free watched ports.
    let res = api.get("/units/new").await;
    assert_eq!(res.status(), 200);
    let html = res.text().await.unwrap();
    assert!(html.contains("name=\"command\""), "the form");
    assert!(html.contains("id=\"free-ports\""));
    for p in &sb.spare_ports {
        assert!(
            html.contains(&format!("<option value=\"{p}\">")),
            "port {p} offered"
        );
    }
    assert!(
        html.contains("<option value=\"dbus.service\">"),
        "units offered as dependencies"
    );
    assert!(html.contains("hx-post=\"ui/unit-form/preview\""));
    // htmx validates a form before its requests; the server does that here, so the live
    // preview must not be halted by the browser's checks.
    assert!(html.contains("action=\"units/new\" novalidate"));

    let command = format!("/usr/bin/python3 -m http.server {port} --bind 127.0.0.1");
    let fields = |name: &str| -> Vec<(String, String)> {
        let port = port.to_string();
        let health = format!("http://127.0.0.1:{port}/");
        [
            ("kind", "service"),
            ("name", name),
            ("description", "Made in the form"),
            ("command", command.as_str()),
            ("working_directory", "/tmp"),
            ("user", ""),
            ("env_key", "MESSAGE"),
            ("env_value", "hi there 50% $USER"),
            ("env_key", ""),
            ("env_value", ""),
            ("port", port.as_str()),
            ("after", "network.target"),
            ("wants", ""),
            ("requires", ""),
            ("restart", ""),
            ("restart_sec", ""),
            ("health_kind", "http"),
            ("health_target", health.as_str()),
            ("health_interval_s", "10"),
            ("health_failures", "3"),
            ("health_restart", "1"),
            ("schedule", ""),
            ("enable", "1"),
            ("start", "1"),
        ]
        .iter()
        .map(|(k, v)| (k.to_string(), v.to_string()))
        .collect()
    };

    // The live preview: argv, unit text, field errors out of band.
    let res = browser_post(&sb, &api, "/ui/unit-form/preview")
        .header("hx-request", "true")
        .form(&fields("web-app"))
        .send()
        .await
        .unwrap();
    assert_eq!(res.status(), 200);
    let pane = res.text().await.unwrap();
    assert!(pane.contains("<li><code>http.server</code></li>"), "{pane}");
    assert!(pane.contains("web-app.service"));
    assert!(pane.contains("MESSAGE=hi there 50%% $USER"), "{pane}");
    assert!(
        pane.contains("id=\"err-name\" hx-swap-oob=\"true\" hidden"),
        "{pane}"
    );
    let mut bad = fields("a/b");
    bad.retain(|(k, _)| k != "command");
    bad.push(("command".into(), "python3 'unterminated".into()));
    let pane = browser_post(&sb, &api, "/ui/unit-form/preview")
        .form(&bad)
        .send()
        .await
        .unwrap()
        .text()
        .await
        .unwrap();
    assert!(
        pane.contains("id=\"err-command\" hx-swap-oob=\"true\">"),
        "{pane}"
    );

    // A bad submit re-renders the form with the error next to its field.
    let mut bad = fields("web-app");
    bad.retain(|(k, _)| k != "working_directory");
    bad.push(("working_directory".into(), "relative/dir".into()));
    let res = browser_post(&sb, &api, "/units/new")
        .form(&bad)
        .send()
        .await
        .unwrap();
    assert_eq!(res.status(), 422);
    let html = res.text().await.unwrap();
    assert!(html.contains("class=\"field invalid\""), "{html}");
    assert!(
        html.contains("id=\"err-working_directory\">must be an absolute path"),
        "{html}"
    );
    assert!(
        html.contains("value=\"hi there 50% $USER\""),
        "values are kept"
    );

    // A cross-site post is refused.
    let res = api
        .request(reqwest::Method::POST, "/units/new")
        .header("origin", "http://evil.example")
        .header("sec-fetch-site", "cross-site")
        .form(&fields("web-app"))
        .send()
        .await
        .unwrap();
    assert_eq!(res.status(), 403);
    assert!(!sb.root().join(UNIT_DIR).join("web-app.service").exists());

    // "Create and start": redirected to the unit, which runs and answers.
    let mut create = fields("web-app");
    create.push(("action".into(), "save".into()));
    let res = browser_post(&sb, &api, "/units/new")
        .form(&create)
        .send()
        .await
        .unwrap();
    assert_eq!(res.status(), 303);
    assert_eq!(res.headers()["location"], "../units/web-app.service");
    assert_eq!(sb.show("web-app.service", "ActiveState"), "active");
    assert_eq!(sb.show("web-app.service", "UnitFileState"), "enabled");
    eventually(
        "the form-made app answers",
        Duration::from_secs(15),
        async || answers(port).await.then_some(()),
    )
    .await;
    assert!(
        sb.process_environment("web-app.service")
            .contains(&"MESSAGE=hi there 50% $USER".to_string())
    );
    assert_eq!(api.get("/units/web-app.service").await.status(), 200);

    // Saved, but its start failed (a dependency that does not exist): not a silent
    // success, the unit page says so, once.
    let notice_set = |res: &reqwest::Response| {
        res.headers()
            .get_all("set-cookie")
            .iter()
            .any(|c| c.to_str().unwrap().starts_with("unitdeck_notice="))
    };
    assert!(!notice_set(&res), "nothing to tell after a clean start");
    let mut broken = fields("broken-app");
    broken.retain(|(k, _)| {
        !matches!(
            k.as_str(),
            "requires" | "port" | "health_kind" | "health_target"
        )
    });
    broken.push(("requires".into(), "missing-dependency.service".into()));
    broken.push(("action".into(), "save".into()));
    let res = browser_post(&sb, &api, "/units/new")
        .form(&broken)
        .send()
        .await
        .unwrap();
    assert_eq!(res.status(), 303);
    assert!(
        notice_set(&res),
        "the start's failure goes to the next page"
    );
    let html = api
        .get("/units/broken-app.service")
        .await
        .text()
        .await
        .unwrap();
    let notice = html
        .split_once("<p class=\"field-error\">Saved as revision 1, but: ")
        .and_then(|(_, rest)| rest.split_once("</p>"))
        .map(|(notice, _)| notice)
        .unwrap_or_else(|| panic!("no notice: {html}"));
    assert!(notice.contains("start"), "{notice}");
    let html = api
        .get("/units/broken-app.service")
        .await
        .text()
        .await
        .unwrap();
    assert!(!html.contains("Saved as revision"), "said once");

    // Edit: a new revision; the page shows the history with a diff and a rollback button.
    let res = api.get("/units/web-app.service/edit").await;
    assert_eq!(res.status(), 200);
    let html = res.text().await.unwrap();
    assert!(html.contains("value=\"web-app\""));
    let mut edit = fields("web-app");
    edit.retain(|(k, _)| k != "description");
    edit.push(("description".into(), "Edited in the form".into()));
    edit.push(("action".into(), "save".into()));
    let res = browser_post(&sb, &api, "/units/web-app.service/edit")
        .form(&edit)
        .send()
        .await
        .unwrap();
    assert_eq!(res.status(), 303);
    assert_eq!(
        sb.show("web-app.service", "Description"),
        "Edited in the form"
    );
    let html = api.get("/units/web-app/edit").await.text().await.unwrap();
    assert!(
        html.contains("<span class=\"del\">- Description=Made in the form</span>"),
        "{html}"
    );
    assert!(
        html.contains("<span class=\"add\">+ Description=Edited in the form</span>"),
        "{html}"
    );
    assert!(html.contains("Roll back to 1"));
    let res = browser_post(&sb, &api, "/units/web-app.service/rollback")
        .form(&[("revision", "1")])
        .send()
        .await
        .unwrap();
    assert_eq!(res.status(), 303);
    assert_eq!(
        sb.show("web-app.service", "Description"),
        "Made in the form"
    );
    assert_eq!(
        api.get_json("/api/v1/unit-files/web-app").await["revision"],
        3
    );
    // The form never treats a unit called "new" as one.
    assert_eq!(api.get("/units/new/edit").await.status(), 404);
}
