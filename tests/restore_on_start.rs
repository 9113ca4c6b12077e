//! unitdeck's database is the source of truth for the units it created (issue 15). A
//! recreated dev container has its image's unit directory again (no unit file, no
//! `[Install]` symlink of what unitdeck created) while the database on its volume
//! remembers everything: at start unitdeck writes the files again from their latest
//! revision, reloads, and enables and starts each unit as it last knew it, audited as
//! `unitfile.restore`. A file edited by hand is reported and left alone.
//!
//! The recreate is played in a real systemd (tests/common): unitdeck is stopped, the
//! units are stopped, their files and symlinks deleted and systemd reloaded, then
//! unitdeck starts again.

mod common;

use std::time::Duration;

use common::{Api, Sandbox, answers, eventually};
use serde_json::{Value, json};

const UNIT_DIR: &str = "/etc/systemd/system";

fn spec(name: &str, exec: &[&str], enable: bool, start: bool) -> Value {
    json!({"name": name, "kind": "service", "exec_start": exec,
           "enable": enable, "start": start})
}

async fn create(api: &Api, spec: &Value) {
    let res = api.post_json("/api/v1/unit-files", spec).await;
    assert_eq!(res.status(), 201, "create {}", spec["name"]);
}

async fn audit(api: &Api) -> Vec<Value> {
    api.get_json("/api/v1/audit?limit=200")
        .await
        .as_array()
        .unwrap()
        .clone()
}

fn records<'a>(audit: &'a [Value], action: &str) -> Vec<&'a Value> {
    audit.iter().filter(|r| r["action"] == action).collect()
}

#[tokio::test(flavor = "multi_thread")]
async fn a_recreated_unit_directory_is_restored_and_hand_edits_are_left_alone() {
    let sb = Sandbox::start();
    let api = sb.login().await;
    let port = sb.spare_ports[0];
    let http = |port: u16| {
        vec![
            "/usr/bin/python3".to_string(),
            "-m".into(),
            "http.server".into(),
            port.to_string(),
            "--bind".into(),
            "127.0.0.1".into(),
        ]
    };

    // An app server with two revisions, enabled and running.
    let mut app = json!({"name": "shop-api", "kind": "service", "exec_start": http(port),
                         "description": "first", "enable": true, "start": true});
    create(&api, &app).await;
    app["description"] = json!("second");
    let res = api
        .request(reqwest::Method::PUT, "/api/v1/unit-files/shop-api")
        .json(&app)
        .send()
        .await
        .unwrap();
    assert_eq!(res.status(), 200);
    // A job: its timer enabled and waiting.
    create(
        &api,
        &json!({"name": "nightly", "kind": "job", "exec_start": ["/bin/true"],
                "schedule": "*-*-* 03:00:00", "enable": true, "start": true}),
    )
    .await;
    // Started but never enabled, and one neither started nor enabled: restored as they were.
    create(
        &api,
        &spec("manual", &["/bin/sleep", "infinity"], false, true),
    )
    .await;
    create(
        &api,
        &spec("idle", &["/bin/sleep", "infinity"], false, false),
    )
    .await;
    // One the developer then edits by hand (the marker stays): reported, never overwritten.
    create(
        &api,
        &spec("edited", &["/bin/sleep", "infinity"], true, true),
    )
    .await;
    assert!(answers(port).await);

    let files = [
        "shop-api.service",
        "nightly.service",
        "nightly.timer",
        "manual.service",
        "idle.service",
    ];
    let before: Vec<(String, String)> = files
        .iter()
        .map(|f| (f.to_string(), sb.sh(&format!("cat {UNIT_DIR}/{f}"))))
        .collect();
    let edited_text = sb
        .sh(&format!("cat {UNIT_DIR}/edited.service"))
        .replace("ExecStart=", "# changed by hand\nExecStart=");

    // The recreate: unitdeck stops, the container's processes and unit directory go.
    sb.sh("systemctl stop unitdeck.service shop-api.service nightly.timer manual.service");
    let links = sb.sh(&format!(
        "find {UNIT_DIR} -type l \\( -name 'shop-api.*' -o -name 'nightly.*' -o -name 'manual.*' -o -name 'idle.*' \\)"
    ));
    assert!(
        links.contains("multi-user.target.wants/shop-api.service")
            && links.contains("timers.target.wants/nightly.timer"),
        "the [Install] symlinks to delete: {links}"
    );
    for path in links.lines().chain(files.iter().map(|f| f.as_ref())) {
        let path = if path.starts_with('/') {
            path.to_string()
        } else {
            format!("{UNIT_DIR}/{path}")
        };
        sb.sh(&format!("rm {path}"));
    }
    sb.write(&format!("{UNIT_DIR}/edited.service"), &edited_text);
    sb.sh("systemctl daemon-reload");
    assert_eq!(sb.show("shop-api.service", "LoadState"), "not-found");
    assert!(!answers(port).await);

    sb.sh("systemctl start unitdeck.service");
    sb.wait_healthy();
    let api = sb.login().await;
    let restores = eventually(
        "every restore recorded with its outcome",
        Duration::from_secs(30),
        async || {
            let audit = audit(&api).await;
            let restores: Vec<Value> = records(&audit, "unitfile.restore")
                .into_iter()
                .cloned()
                .collect();
            (restores.len() == 4 && restores.iter().all(|r| r["result"] != "pending"))
                .then_some(restores)
        },
    )
    .await;
    for r in &restores {
        assert_eq!(r["result"], "ok", "{r}");
        assert_eq!(r["actor"], "unitdeck", "{r}");
        assert!(
            r["detail"].as_str().unwrap().contains("missing"),
            "says why: {r}"
        );
    }

    // Every file is back, byte for byte the latest revision.
    for (file, text) in &before {
        assert_eq!(&sb.sh(&format!("cat {UNIT_DIR}/{file}")), text, "{file}");
    }
    let detail = api.get_json("/api/v1/unit-files/shop-api").await;
    assert_eq!(detail["revision"], 2);
    assert_eq!(detail["revisions"].as_array().unwrap().len(), 2);
    assert_eq!(detail["on_disk"], json!({"shop-api.service": "installed"}));

    // ... enabled and running as before: the app server answers again, the timer waits.
    assert_eq!(sb.show("shop-api.service", "UnitFileState"), "enabled");
    assert_eq!(sb.show("shop-api.service", "ActiveState"), "active");
    sb.sh(&format!(
        "test -L {UNIT_DIR}/multi-user.target.wants/shop-api.service"
    ));
    eventually(
        "the app server answers",
        Duration::from_secs(10),
        async || answers(port).await.then_some(()),
    )
    .await;
    assert_eq!(sb.show("nightly.timer", "UnitFileState"), "enabled");
    assert_eq!(sb.show("nightly.timer", "ActiveState"), "active");
    let next = sb.show("nightly.timer", "NextElapseUSecRealtime");
    assert!(
        !next.is_empty() && next != "0" && next != "n/a",
        "the timer has its next run: {next:?}"
    );
    assert_eq!(sb.show("manual.service", "ActiveState"), "active");
    assert_eq!(sb.show("manual.service", "UnitFileState"), "disabled");
    assert_eq!(sb.show("idle.service", "ActiveState"), "inactive");
    assert_eq!(sb.show("idle.service", "UnitFileState"), "disabled");
    let audit_now = audit(&api).await;
    let by_unitdeck: Vec<(String, String)> = audit_now
        .iter()
        .filter(|r| r["actor"] == "unitdeck" && r["action"].as_str().unwrap().starts_with("unit."))
        .map(|r| {
            (
                r["action"].as_str().unwrap().to_string(),
                r["target"].as_str().unwrap().to_string(),
            )
        })
        .collect();
    for want in [
        ("unit.enable", "shop-api.service"),
        ("unit.start", "shop-api.service"),
        ("unit.enable", "nightly.timer"),
        ("unit.start", "nightly.timer"),
        ("unit.start", "manual.service"),
    ] {
        assert!(
            by_unitdeck
                .iter()
                .any(|(a, t)| (a.as_str(), t.as_str()) == want),
            "{want:?} audited: {by_unitdeck:?}"
        );
    }
    assert_eq!(
        by_unitdeck.len(),
        5,
        "nothing else was done: {by_unitdeck:?}"
    );

    // The hand edit: left exactly as written, reported once, visible on the unit file.
    assert_eq!(
        sb.sh(&format!("cat {UNIT_DIR}/edited.service")),
        edited_text
    );
    let modified = records(&audit_now, "unitfile.modified");
    assert_eq!(modified.len(), 1, "{modified:?}");
    assert_eq!(modified[0]["target"], "edited.service");
    assert_eq!(modified[0]["result"], "left-alone");
    let detail = api.get_json("/api/v1/unit-files/edited").await;
    assert_eq!(detail["on_disk"], json!({"edited.service": "modified"}));

    // Another start with nothing missing restores nothing and reports the edit no more.
    sb.sh("systemctl restart unitdeck.service");
    sb.wait_healthy();
    let api = sb.login().await;
    tokio::time::sleep(Duration::from_secs(1)).await;
    let audit_again = audit(&api).await;
    assert_eq!(records(&audit_again, "unitfile.restore").len(), 4);
    assert_eq!(records(&audit_again, "unitfile.modified").len(), 1);
    assert_eq!(
        sb.sh(&format!("cat {UNIT_DIR}/edited.service")),
        edited_text
    );
}
