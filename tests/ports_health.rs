//! Ports and health checks against a real systemd: who listens where, what
//! should, stray processes, probes that restart through systemd with back-off.

mod common;

use std::time::Duration;

use common::{Sandbox, eventually};
use serde_json::{Value, json};

fn row(ports: &Value, port: u16) -> Value {
    ports
        .as_array()
        .unwrap()
        .iter()
        .find(|p| p["port"] == port)
        .cloned()
        .unwrap_or_else(|| panic!("port {port} missing from {ports}"))
}

#[tokio::test(flavor = "multi_thread")]
async fn ports_show_owner_expected_unit_and_strays() {
    let sb = Sandbox::start();
    let api = sb.login().await;
    let (app_port, stray_port, free_port) =
        (sb.spare_ports[0], sb.spare_ports[1], sb.spare_ports[2]);

    let ports = api.get_json("/api/v1/ports").await;
    let me = row(&ports, sb.port);
    assert_eq!(me["state"], "listening");
    assert_eq!(me["unit"], "unitdeck.service");
    assert_eq!(me["process"], "unitdeck");
    assert_eq!(me["watched"], true);
    assert_eq!(me["url"], format!("http://127.0.0.1:{}/", sb.port));
    let free = row(&ports, free_port);
    assert_eq!(free["state"], "free");
    assert_eq!(free["pid"], Value::Null);

    // A managed app that declares its port.
    let spec = json!({
        "name": "port-app", "kind": "service", "description": "port test app",
        "exec_start": ["/usr/bin/python3", "-m", "http.server", app_port.to_string(), "--bind", "127.0.0.1"],
        "working_directory": "/", "port": app_port, "enable": false, "start": true
    });
    let res = api.post_json("/api/v1/unit-files", &spec).await;
    assert_eq!(res.status(), 201, "{}", res.text().await.unwrap());
    let app = eventually("the app listens", Duration::from_secs(15), async || {
        let ports = api.get_json("/api/v1/ports").await;
        let r = row(&ports, app_port);
        (r["state"] == "listening").then_some(r)
    })
    .await;
    assert_eq!(app["unit"], "port-app.service");
    assert_eq!(app["expected_unit"], "port-app.service");
    assert_eq!(app["problem"], Value::Null);
    assert_eq!(app["process"], "python3");
    let detail = api.get_json("/api/v1/units/port-app.service").await;
    assert_eq!(detail["listen_ports"], json!([app_port]));

    // Stopped: expected but not listening.
    sb.sh("systemctl stop port-app.service");
    let ports = api.get_json("/api/v1/ports").await;
    let r = row(&ports, app_port);
    assert_eq!(r["state"], "free");
    assert!(r["problem"].as_str().unwrap().contains("port-app.service"));

    // A stray process outside any service on a watched port.
    sb.sh(&format!(
        "setsid -f systemd-run --quiet --scope --unit=stray-http /usr/bin/python3 -m http.server {stray_port} --bind 127.0.0.1 >/dev/null 2>&1"
    ));
    let stray = eventually("the stray listens", Duration::from_secs(15), async || {
        let ports = api.get_json("/api/v1/ports").await;
        let r = row(&ports, stray_port);
        (r["state"] == "listening").then_some(r)
    })
    .await;
    assert_eq!(stray["process"], "python3");
    assert!(stray["pid"].as_u64().unwrap() > 1);
    assert_eq!(stray["unit"], "stray-http.scope");
    assert!(
        stray["problem"]
            .as_str()
            .unwrap()
            .contains("outside any service")
    );

    let page = api.get("/ports").await.text().await.unwrap();
    assert!(page.contains("port-app.service") && page.contains("python3"));
    let dash = api.get("/").await.text().await.unwrap();
    assert!(dash.contains("port-strip"));
}

#[tokio::test(flavor = "multi_thread")]
async fn failing_health_check_restarts_through_systemd_with_back_off() {
    let sb = Sandbox::start();
    let api = sb.login().await;
    let port = sb.spare_ports[0];
    sb.sh("mkdir -p /var/lib/hc && echo ok > /var/lib/hc/ok");
    let spec = json!({
        "name": "hc-app", "kind": "service",
        "exec_start": ["/usr/bin/python3", "-m", "http.server", port.to_string(), "--bind", "127.0.0.1"],
        "working_directory": "/var/lib/hc", "port": port,
        "health": {"http": format!("http://127.0.0.1:{port}/ok"), "interval_s": 1, "timeout_s": 1, "failures": 2, "restart": true},
        "enable": false, "start": true
    });
    let res = api.post_json("/api/v1/unit-files", &spec).await;
    assert_eq!(res.status(), 201, "{}", res.text().await.unwrap());

    let health = async |api: &common::Api| -> Option<Value> {
        let checks = api.get_json("/api/v1/health-checks").await;
        checks
            .as_array()?
            .iter()
            .find(|c| c["unit"] == "hc-app.service")
            .cloned()
    };
    eventually("healthy", Duration::from_secs(60), async || {
        health(&api).await.filter(|c| c["status"] == "healthy")
    })
    .await;
    let summary = api.get_json("/api/v1/units/hc-app.service").await;
    assert_eq!(summary["health"], "healthy");
    let pid_before = sb.show("hc-app.service", "MainPID");

    // The check starts failing (404): unhealthy, then restarted by systemd.
    sb.sh("rm /var/lib/hc/ok");
    let restarted = eventually("a health restart", Duration::from_secs(60), async || {
        health(&api)
            .await
            .filter(|c| c["restarts"].as_u64() >= Some(1))
    })
    .await;
    assert_eq!(restarted["target"], format!("http://127.0.0.1:{port}/ok"));
    eventually("a new MainPID", Duration::from_secs(10), async || {
        let pid = sb.show("hc-app.service", "MainPID");
        (pid != pid_before && pid != "0").then_some(())
    })
    .await;
    eventually(
        "the health restart audited",
        Duration::from_secs(10),
        async || {
            let audit = api.get_json("/api/v1/audit?limit=50").await;
            audit
                .as_array()
                .unwrap()
                .iter()
                .any(|a| {
                    a["actor"] == "health-check"
                        && a["action"] == "unit.restart"
                        && a["target"] == "hc-app.service"
                        && a["result"] == "done"
                })
                .then_some(())
        },
    )
    .await;

    // Still failing: the back-off stops restarting after 3 in the window.
    let stopped = eventually("back-off reached", Duration::from_secs(40), async || {
        health(&api).await.filter(|c| {
            c["last_error"]
                .as_str()
                .is_some_and(|e| e.contains("not restarting"))
        })
    })
    .await;
    assert_eq!(stopped["restarts"], 3);
    assert_eq!(stopped["status"], "unhealthy");
    tokio::time::sleep(Duration::from_secs(4)).await;
    assert_eq!(
        health(&api).await.unwrap()["restarts"],
        3,
        "no restart past the back-off"
    );

    // Fixed: healthy again.
    sb.sh("echo ok > /var/lib/hc/ok");
    eventually("healthy again", Duration::from_secs(60), async || {
        health(&api).await.filter(|c| c["status"] == "healthy")
    })
    .await;
}
