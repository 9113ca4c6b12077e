//! Overrides (issue 19) against a real systemd: the shipped code-server and difit units
//! (deploy/systemd, verbatim, with stand-in programs and another tool's drop-in) are
//! overridden, previewed, saved, restarted, rolled back and removed through the API; the
//! process's environment, `systemctl show` and the files on disk say what systemd made
//! of it, and removal gives back exactly the vendor's configuration. Hostile overrides
//! (raw lines, values systemd rejects, units that may not be overridden, a drop-in
//! directory that is a symlink) are refused with the unit directory left byte for byte
//! as it was.

mod common;

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

use common::{Api, Sandbox, audit, find_audit, problem, project_root, token};
use serde_json::{Value, json};

const UNIT_DIR: &str = "/etc/systemd/system";
/// What the test puts in code-server's EnvironmentFile (the entrypoint's job in the
/// image): an override can take it away.
const PASSWORD: &str = "PASSWORD=from-the-env-file";

/// Stand-ins for the programs the shipped units run, which are not installed here: an
/// overlay on /usr (the container runs the host's, read-only).
struct StandIns {
    dir: PathBuf,
}

impl StandIns {
    fn create() -> Self {
        let dir = Path::new(env!("CARGO_TARGET_TMPDIR"))
            .join(format!("overrides-{}", std::process::id()));
        let _ = std::fs::remove_dir_all(&dir);
        for program in ["usr/bin/code-server", "usr/local/bin/difit"] {
            let path = dir.join(program);
            std::fs::create_dir_all(path.parent().unwrap()).unwrap();
            // The unit's main process keeps the environment systemd gave it.
            std::fs::write(&path, "#!/bin/sh\nexec /bin/sleep infinity\n").unwrap();
            use std::os::unix::fs::PermissionsExt;
            std::fs::set_permissions(&path, std::fs::Permissions::from_mode(0o755)).unwrap();
        }
        Self { dir }
    }

    fn nspawn_args(&self) -> Vec<String> {
        vec![format!(
            "--overlay-ro=/usr:{}:/usr",
            self.dir.join("usr").display()
        )]
    }
}

impl Drop for StandIns {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.dir);
    }
}

/// The container's sandbox is dropped (powered off) before the stand-ins go.
struct Booted {
    sb: Sandbox,
    _stand_ins: StandIns,
}

/// code-server and difit as deploy/Dockerfile installs them: the units verbatim, the
/// account drop-in it writes (another tool's drop-in, as far as unitdeck is concerned),
/// the developer account, the entrypoint's files, both started.
fn boot_dev_container() -> Booted {
    let stand_ins = StandIns::create();
    let sb = Sandbox::start_in(&stand_ins.nspawn_args(), &[]);
    let deploy = project_root().join("deploy/systemd");
    for unit in ["code-server.service", "difit.service"] {
        let text = std::fs::read_to_string(deploy.join(unit)).unwrap();
        sb.write(&format!("{UNIT_DIR}/{unit}"), &text);
        sb.write(
            &format!("{UNIT_DIR}/{unit}.d/10-account.conf"),
            "[Service]\nUser=dev\nGroup=dev\n",
        );
    }
    // The entrypoint's part (tested in tests/deploy_boot.rs): done before they start.
    sb.write(
        &format!("{UNIT_DIR}/docker-entrypoint.service"),
        "[Unit]\nDescription=entrypoint stand-in\n[Service]\nType=oneshot\n\
         RemainAfterExit=yes\nExecStart=/bin/true\n",
    );
    sb.write("/etc/code-server/env", &format!("{PASSWORD}\n"));
    sb.sh(
        "systemd-sysusers --inline 'u dev 1000 \"Developer\" /home/dev /bin/bash' && \
         for repo in unitdeck other; do mkdir -p /home/dev/$repo && git init -q /home/dev/$repo; done && \
         chown -R dev:dev /home/dev && \
         systemctl daemon-reload && systemctl start code-server.service difit.service",
    );
    Booted {
        sb,
        _stand_ins: stand_ins,
    }
}

/// Dependency properties: sets of unit names, listed in no stable order.
const UNIT_SETS: &[&str] = &[
    "Requires",
    "Requisite",
    "Wants",
    "BindsTo",
    "PartOf",
    "Upholds",
    "RequiredBy",
    "RequisiteOf",
    "WantedBy",
    "BoundBy",
    "UpheldBy",
    "ConsistsOf",
    "Conflicts",
    "ConflictedBy",
    "Before",
    "After",
    "OnFailure",
    "OnFailureOf",
    "OnSuccess",
    "OnSuccessOf",
    "Triggers",
    "TriggeredBy",
    "PropagatesReloadTo",
    "ReloadPropagatedFrom",
    "PropagatesStopTo",
    "StopPropagatedFrom",
    "JoinsNamespaceOf",
    "References",
    "ReferencedBy",
    "Names",
];

/// `systemctl show` of `unit` without what changes from run to run (times, PIDs,
/// counters, state): the unit's configuration as systemd holds it.
fn configuration(sb: &Sandbox, unit: &str) -> BTreeMap<String, String> {
    let volatile = regex::Regex::new(r" ; (start_time|stop_time|pid|code|status)=[^;}]*").unwrap();
    sb.sh(&format!("systemctl show {unit}"))
        .lines()
        .filter_map(|line| line.split_once('='))
        .filter(|(key, _)| {
            !(key.contains("Timestamp")
                || key.ends_with("PID")
                || key.starts_with("Memory") && key.ends_with("Current")
                || key.starts_with("IP") && (key.ends_with("Bytes") || key.ends_with("Packets"))
                || key.starts_with("IO") && (key.ends_with("Bytes") || key.ends_with("Operations"))
                || [
                    "InvocationID",
                    "NRestarts",
                    "CPUUsageNSec",
                    "TasksCurrent",
                    "MemoryAvailable",
                    "ActiveState",
                    "SubState",
                    "Result",
                    "ExecMainCode",
                    "ExecMainStatus",
                    "StatusErrno",
                    "Job",
                    "StateChangeTimestamp",
                    "ControlGroupId",
                ]
                .contains(key))
        })
        .map(|(key, value)| {
            let value = if UNIT_SETS.contains(&key) {
                let mut names: Vec<&str> = value.split_whitespace().collect();
                names.sort();
                names.join(" ")
            } else {
                volatile.replace_all(value, "").into_owned()
            };
            (key.to_string(), value)
        })
        .collect()
}

/// What differs between two configurations, for a failure message.
fn differences(a: &BTreeMap<String, String>, b: &BTreeMap<String, String>) -> Vec<String> {
    let keys: std::collections::BTreeSet<&String> = a.keys().chain(b.keys()).collect();
    keys.into_iter()
        .filter(|k| a.get(*k) != b.get(*k))
        .map(|k| format!("{k}: {:?} -> {:?}", a.get(k), b.get(k)))
        .collect()
}

async fn restart(api: &Api, unit: &str) {
    let res = api.post(&format!("/api/v1/units/{unit}/restart")).await;
    assert_eq!(res.status(), 200, "restart {unit}");
    let body: Value = res.json().await.unwrap();
    assert_eq!(body["job"]["result"], "done", "restart {unit}: {body}");
}

async fn ok_json(res: reqwest::Response, what: &str) -> Value {
    let status = res.status();
    let body: Value = res.json().await.unwrap();
    assert_eq!(status, 200, "{what}: {body}");
    body
}

#[tokio::test(flavor = "multi_thread")]
async fn code_server_and_difit_are_overridden_rolled_back_and_restored_exactly() {
    let booted = boot_dev_container();
    let sb = &booted.sb;
    let api = sb.login().await;
    let cs = "code-server.service";
    let vendor = configuration(sb, cs);
    assert!(sb.process_environment(cs).contains(&PASSWORD.to_string()));
    let account_path = sb
        .root()
        .join("etc/systemd/system/code-server.service.d/10-account.conf");
    let account = std::fs::read(&account_path).unwrap();

    // Everything systemd reads for it, in its order, another tool's drop-in included.
    let files = api.get_json(&format!("/api/v1/units/{cs}/files")).await;
    let shipped = std::fs::read_to_string(project_root().join("deploy/systemd").join(cs)).unwrap();
    assert_eq!(files[0]["path"], format!("{UNIT_DIR}/{cs}"));
    assert_eq!(files[0]["kind"], "fragment");
    assert_eq!(files[0]["text"], shipped.as_str());
    assert_eq!(files[0]["managed"], false);
    assert_eq!(
        files[1]["path"],
        format!("{UNIT_DIR}/{cs}.d/10-account.conf")
    );
    assert_eq!(files[1]["kind"], "drop-in");
    assert_eq!(
        files[1]["changes"],
        json!(["Service.User", "Service.Group"])
    );
    assert_eq!(files.as_array().unwrap().len(), 2);
    let state = api.get_json(&format!("/api/v1/units/{cs}/override")).await;
    assert_eq!(state["revision"], Value::Null);
    assert_eq!(state["path"], format!("{UNIT_DIR}/{cs}.d/50-unitdeck.conf"));

    // Preview: the drop-in, a clean verify, the settings it changes; nothing written.
    let spec = json!({
        "environment": {"CS_GREETING": "hello  world 100% $HOME \"q\"", "PASSWORD": null},
        "memory_max": "256M", "restart": "on-failure", "nice": 5
    });
    let before = sb.unit_dir_snapshot();
    let preview = ok_json(
        api.post_json(&format!("/api/v1/units/{cs}/override/preview"), &spec)
            .await,
        "preview",
    )
    .await;
    assert!(
        preview["text"]
            .as_str()
            .unwrap()
            .contains("Environment=\"CS_GREETING=hello  world 100%% $HOME \\\"q\\\"\"\nUnsetEnvironment=PASSWORD\n"),
        "{preview}"
    );
    assert_eq!(preview["verify"]["errors"], json!([]), "{preview}");
    let changed: Vec<&str> = preview["effective"]["changed"]
        .as_array()
        .unwrap()
        .iter()
        .map(|c| c.as_str().unwrap())
        .collect();
    for key in [
        "Service.Environment",
        "Service.UnsetEnvironment",
        "Service.MemoryMax",
        "Service.Restart",
        "Service.Nice",
    ] {
        assert!(changed.contains(&key), "{key} not in {changed:?}");
    }
    assert!(
        preview["effective"]["before"]
            .as_str()
            .unwrap()
            .contains("Restart=always")
    );
    assert!(
        preview["effective"]["after"]
            .as_str()
            .unwrap()
            .contains("Restart=on-failure")
    );
    assert_eq!(preview["restart_needed"], true);
    assert_eq!(sb.unit_dir_snapshot(), before, "a preview writes nothing");

    // Save: the file, systemd reloaded; what applies on the reload shows at once.
    let saved = ok_json(
        api.put_json(&format!("/api/v1/units/{cs}/override"), &spec)
            .await,
        "save",
    )
    .await;
    assert_eq!(saved["revision"], 1);
    assert_eq!(saved["restart_needed"], true);
    let drop_in = sb
        .root()
        .join("etc/systemd/system/code-server.service.d/50-unitdeck.conf");
    assert_eq!(
        std::fs::read_to_string(&drop_in).unwrap(),
        preview["text"].as_str().unwrap()
    );
    assert_eq!(
        std::fs::read(&account_path).unwrap(),
        account,
        "the other drop-in is untouched"
    );
    assert_eq!(sb.show(cs, "MemoryMax"), (256u64 << 20).to_string());
    assert_eq!(sb.show(cs, "Restart"), "on-failure");
    assert!(
        sb.process_environment(cs).contains(&PASSWORD.to_string()),
        "not restarted yet"
    );
    let state = api.get_json(&format!("/api/v1/units/{cs}/override")).await;
    assert_eq!(state["restart_needed"], true);
    assert_eq!(state["on_disk"], "installed");

    // After the restart the process has the new environment, without the removed one.
    restart(&api, cs).await;
    let env = sb.process_environment(cs);
    assert!(
        env.contains(&"CS_GREETING=hello  world 100% $HOME \"q\"".to_string()),
        "{env:?}"
    );
    assert!(!env.iter().any(|v| v.starts_with("PASSWORD=")), "{env:?}");
    assert_eq!(sb.show(cs, "Nice"), "5");
    let state = api.get_json(&format!("/api/v1/units/{cs}/override")).await;
    assert_eq!(state["restart_needed"], false);

    // The files view shows ours after the other one, marked as unitdeck's.
    let files = api.get_json(&format!("/api/v1/units/{cs}/files")).await;
    let paths: Vec<&str> = files
        .as_array()
        .unwrap()
        .iter()
        .map(|f| f["path"].as_str().unwrap())
        .collect();
    assert_eq!(
        paths,
        [
            format!("{UNIT_DIR}/{cs}"),
            format!("{UNIT_DIR}/{cs}.d/10-account.conf"),
            format!("{UNIT_DIR}/{cs}.d/50-unitdeck.conf"),
        ]
    );
    assert_eq!(files[2]["managed"], true);
    // Below admin, environment values are hidden everywhere; the audit log never has them.
    let (_, secret) = token(&api, "reader", "read").await;
    let reader = sb.with_token(&secret);
    for path in ["files", "override", "override/revisions"] {
        let text = reader
            .get(&format!("/api/v1/units/{cs}/{path}"))
            .await
            .text()
            .await
            .unwrap();
        assert!(!text.contains("hello"), "{path}: {text}");
        assert!(text.contains("CS_GREETING=***"), "{path}: {text}");
    }
    let records = audit(&api).await;
    let save = find_audit(&records, "override.save", Some(cs), "ok");
    assert!(
        save["detail"]
            .as_str()
            .unwrap()
            .contains("Environment (CS_GREETING)"),
        "{save}"
    );
    assert!(!records.iter().any(|r| r.to_string().contains("hello")));

    // A second revision: a new command (reset line + argv) and a raw setting.
    let second = json!({
        "environment": {"CS_GREETING": "second"},
        "exec_start": ["/usr/bin/code-server", "--bind-addr", "127.0.0.1:4035", "--auth", "none"],
        "raw": "[Service]\nLimitNOFILE=4096\n"
    });
    let saved = ok_json(
        api.put_json(&format!("/api/v1/units/{cs}/override"), &second)
            .await,
        "second",
    )
    .await;
    assert_eq!(saved["revision"], 2);
    restart(&api, cs).await;
    assert!(
        sb.process_environment(cs)
            .contains(&"CS_GREETING=second".to_string())
    );
    assert!(
        sb.show(cs, "ExecStart")
            .contains("argv[]=/usr/bin/code-server --bind-addr 127.0.0.1:4035 --auth none")
    );
    assert_eq!(sb.show(cs, "LimitNOFILE"), "4096");
    assert!(sb.process_environment(cs).contains(&PASSWORD.to_string()));

    // History and rollback: revision 3 is revision 1 again.
    let revisions = api
        .get_json(&format!("/api/v1/units/{cs}/override/revisions"))
        .await;
    let numbers: Vec<i64> = revisions
        .as_array()
        .unwrap()
        .iter()
        .map(|r| r["revision"].as_i64().unwrap())
        .collect();
    assert_eq!(numbers, [2, 1]);
    let rolled = ok_json(
        api.post_json(
            &format!("/api/v1/units/{cs}/override/rollback"),
            &json!({"revision": 1}),
        )
        .await,
        "rollback",
    )
    .await;
    assert_eq!(rolled["revision"], 3);
    assert_eq!(
        std::fs::read_to_string(&drop_in).unwrap(),
        preview["text"].as_str().unwrap()
    );

    // Removal: the file goes, the other drop-in and its directory stay, and after a restart
    // systemd holds exactly the vendor's configuration again.
    let removed = ok_json(
        api.delete(&format!("/api/v1/units/{cs}/override")).await,
        "remove",
    )
    .await;
    assert_eq!(removed["revision"], 4);
    assert_eq!(removed["text"], Value::Null);
    assert!(!drop_in.exists());
    assert_eq!(std::fs::read(&account_path).unwrap(), account);
    restart(&api, cs).await;
    let restored = configuration(sb, cs);
    assert!(
        restored == vendor,
        "differs from the vendor's: {:#?}",
        differences(&vendor, &restored)
    );
    assert!(sb.process_environment(cs).contains(&PASSWORD.to_string()));
    problem(
        api.delete(&format!("/api/v1/units/{cs}/override")).await,
        404,
    )
    .await;
    // A rollback to a removal of nothing to remove, and to a revision that is not there.
    let body = problem(
        api.post_json(
            &format!("/api/v1/units/{cs}/override/rollback"),
            &json!({"revision": 9}),
        )
        .await,
        422,
    )
    .await;
    assert_eq!(body["errors"][0]["field"], "revision");
    // Rolling back to revision 2 brings that override back.
    let back = ok_json(
        api.post_json(
            &format!("/api/v1/units/{cs}/override/rollback"),
            &json!({"revision": 2}),
        )
        .await,
        "rollback to 2",
    )
    .await;
    assert_eq!(back["revision"], 5);
    assert_eq!(sb.show(cs, "LimitNOFILE"), "4096");

    // difit: its repository and port through the environment, a stop time-out, ordering.
    let difit = "difit.service";
    let vendor = configuration(sb, difit);
    let port = sb.spare_ports[0].to_string();
    let spec = json!({
        "environment": {"DIFIT_REPO": "other", "DIFIT_PORT": port},
        "timeout_stop_sec": "7s", "after": ["network-online.target"]
    });
    let saved = ok_json(
        api.put_json(&format!("/api/v1/units/{difit}/override"), &spec)
            .await,
        "difit",
    )
    .await;
    assert_eq!(saved["restart_needed"], true);
    assert_eq!(sb.show(difit, "TimeoutStopUSec"), "7s");
    assert!(sb.show(difit, "After").contains("network-online.target"));
    restart(&api, difit).await;
    let env = sb.process_environment(difit);
    assert!(env.contains(&"DIFIT_REPO=other".to_string()), "{env:?}");
    assert!(env.contains(&format!("DIFIT_PORT={port}")), "{env:?}");
    ok_json(
        api.delete(&format!("/api/v1/units/{difit}/override")).await,
        "difit removal",
    )
    .await;
    restart(&api, difit).await;
    let restored = configuration(sb, difit);
    assert!(
        restored == vendor,
        "differs from the vendor's: {:#?}",
        differences(&vendor, &restored)
    );
    assert!(
        sb.process_environment(difit)
            .contains(&"DIFIT_REPO=unitdeck".to_string())
    );
}

/// A valid override, for the units that may not have one.
fn harmless() -> Value {
    json!({"environment": {"HARMLESS": "1"}})
}

#[tokio::test(flavor = "multi_thread")]
async fn hostile_overrides_are_refused_and_change_nothing() {
    let sb = Sandbox::start();
    let api = sb.login().await;
    let unit = "[Unit]\nDescription=a victim\n[Service]\nExecStart=/bin/sleep infinity\n";
    sb.write("/run/elsewhere/keep.conf", "[Service]\nNice=1\n");
    for name in ["victim", "linked", "foreign", "symconf", "web-"] {
        sb.write(&format!("{UNIT_DIR}/{name}.service"), unit);
    }
    sb.write(
        &format!("{UNIT_DIR}/foreign.service.d/50-unitdeck.conf"),
        "[Service]\nNice=2\n",
    );
    sb.sh(&format!(
        "ln -s /run/elsewhere {UNIT_DIR}/linked.service.d && \
         mkdir {UNIT_DIR}/symconf.service.d && \
         ln -s /run/elsewhere/keep.conf {UNIT_DIR}/symconf.service.d/50-unitdeck.conf && \
         ln -s /dev/null {UNIT_DIR}/masked.service && \
         ln -s /usr/lib/systemd/system/dbus.service {UNIT_DIR}/messagebus.service && \
         ln -s /usr/lib/systemd/system/poweroff.target {UNIT_DIR}/innocent.target && \
         systemctl daemon-reload && systemctl start victim.service"
    ));
    let made =
        json!({"name": "made-here", "kind": "service", "exec_start": ["/bin/sleep", "infinity"]});
    assert_eq!(
        api.post_json("/api/v1/unit-files", &made).await.status(),
        201
    );
    let elsewhere = || {
        std::fs::read_dir(sb.root().join("run/elsewhere"))
            .unwrap()
            .count()
    };
    let before = sb.unit_dir_snapshot();

    // Raw lines an attacker would try, then structured values: 422 on their field.
    let fixture: Value = serde_json::from_str(
        &std::fs::read_to_string(project_root().join("tests/fixtures/hostile_raw.json")).unwrap(),
    )
    .unwrap();
    let mut hostile: Vec<(Value, &str)> = fixture["raw"]
        .as_array()
        .unwrap()
        .iter()
        .map(|raw| (json!({"raw": raw}), "raw"))
        .collect();
    assert!(hostile.len() >= 30);
    hostile.extend([
        (json!({"environment": {"A\nB": "x"}}), "environment"),
        (
            json!({"environment": {"A": "x\n[Service]\nExecStartPre=/bin/sh"}}),
            "environment",
        ),
        (json!({"exec_start": ["sleep", "1"]}), "exec_start"),
        (json!({"exec_start": ["-/bin/true"]}), "exec_start"),
        (
            json!({"exec_start": ["/nonexistent/program"]}),
            "exec_start",
        ),
        (json!({"restart_sec": "5 parsecs"}), "restart_sec"),
        (
            json!({"timeout_stop_sec": "1\nExecStartPre=/bin/sh"}),
            "timeout_stop_sec",
        ),
        (json!({"memory_max": "1Q"}), "memory_max"),
        (json!({"cpu_quota": "50%%"}), "cpu_quota"),
        (json!({"nice": 99}), "nice"),
        (json!({"restart": "sometimes"}), "restart"),
        (json!({"wants": ["poweroff.target"]}), "wants"),
        (json!({"wants": ["runlevel0.target"]}), "wants"),
        (json!({"wants": ["innocent.target"]}), "wants"),
        (
            json!({"after": ["x.service\nExecStartPre=/bin/sh"]}),
            "after",
        ),
        (json!({"raw": "[Unit]\nRequires=innocent.target"}), "raw"),
        (
            json!({"raw": "[Unit]\nConflicts=messagebus.service"}),
            "raw",
        ),
        (
            json!({"raw": "[Unit]\nPropagatesStopTo=dbus.service"}),
            "raw",
        ),
        (json!({"raw": "[Service]\nLimitNOFILE=lots"}), "raw"),
        (json!({"bogus": 1}), "bogus"),
        (json!({}), "override"),
    ]);
    for (spec, field) in &hostile {
        // A preview shows what systemd or this machine object to (200, `verify.errors`);
        // a rule broken is a 422 there too. A save refuses both.
        let res = api
            .post_json("/api/v1/units/victim.service/override/preview", spec)
            .await;
        if res.status() == 200 {
            let preview: Value = res.json().await.unwrap();
            assert_eq!(
                preview["verify"]["errors"][0]["field"], *field,
                "{spec}: {preview}"
            );
        } else {
            let body = problem(res, 422).await;
            assert_eq!(body["errors"][0]["field"], *field, "{spec} preview: {body}");
        }
        let res = api
            .put_json("/api/v1/units/victim.service/override", spec)
            .await;
        let body = problem(res, 422).await;
        assert_eq!(body["errors"][0]["field"], *field, "{spec}: {body}");
        let message = body["errors"][0]["message"].as_str().unwrap();
        assert!(!message.chars().any(char::is_control), "{message:?}");
    }
    eprintln!("{} hostile override specs refused", hostile.len());

    // Units that may not be overridden: nothing written, whatever the spec.
    for (name, status) in [
        ("linked.service", 409),
        ("foreign.service", 409),
        ("symconf.service", 409),
        ("web-.service", 409),
        ("masked.service", 409),
        ("made-here.service", 409),
        ("dbus.service", 409),
        ("messagebus.service", 409),
        ("unitdeck.service", 409),
        ("systemd-journald.service", 409),
        ("runlevel0.target", 409),
        ("innocent.target", 409),
        ("nope.service", 404),
        ("a%20b.service", 400),
    ] {
        let url = format!("/api/v1/units/{name}/override");
        let body = problem(api.put_json(&url, &harmless()).await, status).await;
        eprintln!("{name}: {}", body["detail"]);
        problem(api.get(&url).await, status).await;
        problem(api.delete(&url).await, status).await;
        problem(
            api.post_json(&format!("{url}/preview"), &harmless()).await,
            status,
        )
        .await;
    }
    let body = problem(
        api.put_json("/api/v1/units/linked.service/override", &harmless())
            .await,
        409,
    )
    .await;
    assert!(
        body["detail"].as_str().unwrap().contains("symbolic link"),
        "{body}"
    );
    let body = problem(
        api.put_json("/api/v1/units/messagebus.service/override", &harmless())
            .await,
        409,
    )
    .await;
    assert!(
        body["detail"].as_str().unwrap().contains("protected"),
        "{body}"
    );
    problem(
        api.delete("/api/v1/units/victim.service/override").await,
        404,
    )
    .await;

    assert_eq!(
        sb.unit_dir_snapshot(),
        before,
        "a refused override wrote something"
    );
    assert_eq!(elsewhere(), 1, "something was written through the symlink");
    let records = audit(&api).await;
    find_audit(&records, "override.save", Some("victim.service"), "invalid");
    find_audit(&records, "override.save", Some("dbus.service"), "refused");
}
