//! The foundation against a real systemd: login, the auth gate, the units list
//! and detail, errors, the dashboard, the bus outage.

mod common;

use std::time::Duration;

use common::{PASSWORD, Sandbox, eventually};
use serde_json::{Value, json};

const SUMMARY_FIELDS: &[&str] = &[
    "name",
    "description",
    "type",
    "load_state",
    "active_state",
    "sub_state",
    "unit_file_state",
    "main_pid",
    "memory_bytes",
    "cpu_usage_ns",
    "active_since",
    "n_restarts",
    "managed",
    "protected",
    "health",
];

#[tokio::test(flavor = "multi_thread")]
async fn unauthenticated_requests_see_nothing() {
    let sb = Sandbox::start();
    let anon = sb.anonymous();
    for path in [
        "/api/v1/units",
        "/api/v1/units/dbus.service",
        "/api/v1/tokens",
        "/api/v1/audit",
        "/api/v1/events",
    ] {
        let res = anon.get(path).await;
        assert_eq!(res.status(), 401, "{path}");
        assert_eq!(
            res.headers()["content-type"],
            "application/problem+json",
            "{path}"
        );
        let body: Value = res.json().await.unwrap();
        assert_eq!(body["status"], 401);
        assert!(
            body["title"].is_string() && body["type"].is_string() && body["detail"].is_string()
        );
    }
    // Relative to the page asked for: it may be under a proxy's prefix.
    for (path, login) in [
        ("/", "login"),
        ("/units/dbus.service", "../login?next=/units/dbus.service"),
        ("/settings", "login?next=/settings"),
    ] {
        let res = anon.get(path).await;
        assert_eq!(res.status(), 303, "{path}");
        assert_eq!(res.headers()["location"], login, "{path}");
    }
    // A bogus token is refused, not treated as anonymous.
    let res = sb.with_token("ud_bogus").get("/api/v1/units").await;
    assert_eq!(res.status(), 401);
    // Public routes stay public.
    assert_eq!(anon.get("/healthz").await.status(), 200);
    assert_eq!(anon.get("/login").await.status(), 200);
    assert_eq!(anon.get("/api/openapi.json").await.status(), 200);
    // Wrong password.
    let res = anon
        .post_json("/api/v1/session", &json!({"password": "wrong"}))
        .await;
    assert_eq!(res.status(), 401);
    assert_eq!(anon.get("/api/v1/units").await.status(), 401);
}

#[tokio::test(flavor = "multi_thread")]
async fn login_lists_real_units_and_logout_ends_the_session() {
    let sb = Sandbox::start();
    let api = sb.login().await;

    let units = api.get_json("/api/v1/units").await;
    let units = units.as_array().unwrap();
    assert!(
        units.len() > 5,
        "a booted systemd has more services: {units:?}"
    );
    for u in units {
        for field in SUMMARY_FIELDS {
            assert!(u.get(*field).is_some(), "field {field} missing in {u}");
        }
        assert_eq!(u["type"], "service");
    }
    let dbus = units
        .iter()
        .find(|u| u["name"] == "dbus.service")
        .expect("dbus.service listed");
    assert_eq!(dbus["active_state"], "active");
    assert_eq!(dbus["sub_state"], "running");
    assert_eq!(dbus["protected"], true);
    assert!(dbus["main_pid"].as_u64().unwrap() > 1);
    let me = units
        .iter()
        .find(|u| u["name"] == "unitdeck.service")
        .expect("itself listed");
    assert_eq!(me["protected"], true);
    assert!(me["active_since"].as_str().unwrap().ends_with('Z'));

    // Filters.
    let all = api.get_json("/api/v1/units?type=all").await;
    assert!(
        all.as_array()
            .unwrap()
            .iter()
            .any(|u| u["name"] == "init.scope")
    );
    assert!(all.as_array().unwrap().len() > units.len());
    let q = api.get_json("/api/v1/units?q=D-Bus").await;
    assert!(
        q.as_array()
            .unwrap()
            .iter()
            .any(|u| u["name"] == "dbus.service")
    );
    assert!(
        q.as_array()
            .unwrap()
            .iter()
            .all(|u| u["name"] != "unitdeck.service")
    );
    let running = api.get_json("/api/v1/units?state=running").await;
    assert!(
        running
            .as_array()
            .unwrap()
            .iter()
            .all(|u| u["sub_state"] == "running")
    );
    let timers = api.get_json("/api/v1/units?type=timer").await;
    assert!(
        timers
            .as_array()
            .unwrap()
            .iter()
            .all(|u| u["type"] == "timer")
    );
    assert_eq!(api.get("/api/v1/units?type=bogus").await.status(), 400);

    // Logout kills the session server-side: the old cookie no longer works.
    let res = api.delete("/api/v1/session").await;
    assert_eq!(res.status(), 204);
    assert_eq!(api.get("/api/v1/units").await.status(), 401);
}

#[tokio::test(flavor = "multi_thread")]
async fn session_cookie_is_strict_and_rotates() {
    let sb = Sandbox::start();
    let anon = reqwest::Client::builder()
        .redirect(reqwest::redirect::Policy::none())
        .build()
        .unwrap();
    let login = || async {
        anon.post(format!("{}/api/v1/session", sb.base_url()))
            .json(&json!({"password": PASSWORD}))
            .send()
            .await
            .unwrap()
    };
    let res = login().await;
    assert_eq!(res.status(), 200);
    let cookie = res.headers()["set-cookie"].to_str().unwrap().to_string();
    assert!(cookie.starts_with("unitdeck_session="), "{cookie}");
    for attr in ["HttpOnly", "SameSite=Strict", "Path=/"] {
        assert!(cookie.contains(attr), "{attr} in {cookie}");
    }
    let first = cookie.split(';').next().unwrap().to_string();
    // Logging in again with the first cookie rotates it: the old id dies.
    let res = anon
        .post(format!("{}/api/v1/session", sb.base_url()))
        .header("cookie", &first)
        .json(&json!({"password": PASSWORD}))
        .send()
        .await
        .unwrap();
    let second = res.headers()["set-cookie"]
        .to_str()
        .unwrap()
        .split(';')
        .next()
        .unwrap()
        .to_string();
    assert_ne!(first, second);
    let with = |c: &str| {
        anon.get(format!("{}/api/v1/units", sb.base_url()))
            .header("cookie", c.to_string())
            .send()
    };
    assert_eq!(with(&first).await.unwrap().status(), 401);
    assert_eq!(with(&second).await.unwrap().status(), 200);

    // The HTML form works without JavaScript: a plain urlencoded POST.
    let res = anon
        .post(format!("{}/login", sb.base_url()))
        .form(&[("password", PASSWORD), ("next", "/units/dbus.service")])
        .send()
        .await
        .unwrap();
    assert_eq!(res.status(), 303);
    assert_eq!(res.headers()["location"], "units/dbus.service");
    let res = anon
        .post(format!("{}/login", sb.base_url()))
        .form(&[("password", "nope")])
        .send()
        .await
        .unwrap();
    assert_eq!(res.status(), 401);
    assert!(res.text().await.unwrap().contains("Wrong password"));
}

#[tokio::test(flavor = "multi_thread")]
async fn unit_detail_and_errors_match_the_contract() {
    let sb = Sandbox::start();
    sb.add_unit(
        "demo.service",
        "[Unit]\nDescription=Demo app\nWants=network.target\nAfter=network.target\n\
         [Service]\nExecStart=/bin/sleep infinity\nExecStartPost=/bin/true\n\
         [Install]\nWantedBy=multi-user.target\n",
    );
    sb.add_unit(
        "demo-job.timer",
        "[Unit]\nDescription=Demo timer\n[Timer]\nOnCalendar=*-*-* 03:00:00\nUnit=demo.service\n\
         [Install]\nWantedBy=timers.target\n",
    );
    sb.sh("systemctl start demo.service demo-job.timer");
    let api = sb.login().await;

    let d = api.get_json("/api/v1/units/demo.service").await;
    for field in SUMMARY_FIELDS {
        assert!(d.get(*field).is_some(), "{field} missing");
    }
    assert_eq!(d["description"], "Demo app");
    assert_eq!(d["active_state"], "active");
    assert_eq!(d["unit_file_state"], "disabled");
    assert_eq!(d["fragment_path"], "/etc/systemd/system/demo.service");
    assert_eq!(d["exec_start"], json!([["/bin/sleep", "infinity"]]));
    assert!(
        d["wants"]
            .as_array()
            .unwrap()
            .contains(&json!("network.target"))
    );
    assert!(
        d["after"]
            .as_array()
            .unwrap()
            .contains(&json!("network.target"))
    );
    assert!(d["requires"].is_array() && d["before"].is_array());
    assert!(d["required_by"].is_array() && d["wanted_by"].is_array());
    assert!(d["listen_ports"].is_array());
    let invocation = d["invocation_id"].as_str().unwrap();
    assert_eq!(invocation, sb.show("demo.service", "InvocationID"));
    assert_eq!(
        d["main_pid"].as_u64().unwrap().to_string(),
        sb.show("demo.service", "MainPID")
    );
    assert_eq!(d["timer"], Value::Null);

    let t = api.get_json("/api/v1/units/demo-job.timer").await;
    assert_eq!(t["type"], "timer");
    assert_eq!(t["timer"]["schedule"], "*-*-* 03:00:00");
    assert!(t["timer"]["next_elapse"].as_str().unwrap().ends_with('Z'));

    // A disabled, stopped unit that systemd has unloaded is still found and listed.
    sb.add_unit(
        "idle.service",
        "[Service]\nExecStart=/bin/true\n[Install]\nWantedBy=multi-user.target\n",
    );
    let idle = api.get_json("/api/v1/units/idle.service").await;
    assert_eq!(idle["active_state"], "inactive");

    let res = api.get("/api/v1/units/nope.service").await;
    assert_eq!(res.status(), 404);
    assert_eq!(res.headers()["content-type"], "application/problem+json");
    for bad in ["not-a-unit", "a%20b.service", "..%2Fetc%2Fpasswd"] {
        let res = api.get(&format!("/api/v1/units/{bad}")).await;
        assert_eq!(res.status(), 400, "{bad}");
        let body: Value = res.json().await.unwrap();
        assert_eq!(body["status"], 400);
    }
    assert_eq!(api.get("/api/v1/nothing-here").await.status(), 404);
}

#[tokio::test(flavor = "multi_thread")]
async fn the_cache_follows_changes_made_outside() {
    let sb = Sandbox::start();
    sb.add_unit(
        "outside.service",
        "[Service]\nExecStart=/bin/sleep infinity\n",
    );
    let api = sb.login().await;
    sb.sh("systemctl start outside.service");
    async fn state(api: &common::Api) -> Option<String> {
        let units: Value = api
            .get("/api/v1/units?q=outside")
            .await
            .json()
            .await
            .unwrap();
        units
            .as_array()
            .unwrap()
            .iter()
            .find(|u| u["name"] == "outside.service")
            .map(|u| u["active_state"].as_str().unwrap().to_string())
    }
    eventually(
        "outside.service active in the list",
        Duration::from_secs(15),
        async || state(&api).await.filter(|s| s == "active"),
    )
    .await;
    sb.sh("systemctl stop outside.service");
    eventually(
        "outside.service inactive in the list",
        Duration::from_secs(15),
        async || state(&api).await.filter(|s| s == "inactive"),
    )
    .await;
    // daemon-reload with a new unit: it shows up.
    sb.add_unit(
        "later.service",
        "[Service]\nExecStart=/bin/sleep infinity\n",
    );
    sb.sh("systemctl start later.service");
    eventually(
        "later.service listed",
        Duration::from_secs(15),
        async || {
            let units: Value = api.get("/api/v1/units?q=later").await.json().await.unwrap();
            units
                .as_array()
                .unwrap()
                .iter()
                .any(|u| u["name"] == "later.service")
                .then_some(())
        },
    )
    .await;
}

#[tokio::test(flavor = "multi_thread")]
async fn healthz_reports_the_bus_and_recovers() {
    let sb = Sandbox::start();
    let anon = sb.anonymous();
    let body: Value = anon.get("/healthz").await.json().await.unwrap();
    assert_eq!(body["status"], "ok");
    assert!(["running", "degraded", "starting"].contains(&body["systemd"].as_str().unwrap()));
    assert_eq!(body["version"], env!("CARGO_PKG_VERSION"));

    // Take the bus away: healthz says 503 and names the socket.
    sb.sh("systemctl stop dbus.socket dbus.service");
    let detail = eventually("healthz 503", Duration::from_secs(10), async || {
        let res = anon.get("/healthz").await;
        if res.status() == 503 {
            let body: Value = res.json().await.unwrap();
            Some(body["detail"].as_str().unwrap().to_string())
        } else {
            None
        }
    })
    .await;
    assert!(detail.contains("/run/dbus/system_bus_socket"), "{detail}");
    sb.sh("systemctl start dbus.socket dbus.service");
    eventually("healthz 200 again", Duration::from_secs(15), async || {
        (anon.get("/healthz").await.status() == 200).then_some(())
    })
    .await;
    let api = sb.login().await;
    let units = api.get_json("/api/v1/units").await;
    assert!(
        units
            .as_array()
            .unwrap()
            .iter()
            .any(|u| u["name"] == "dbus.service")
    );
}

/// No password configured: one is generated on first start, shown only in a root-only
/// file, stored only as a hash. `unitdeck hash-password` makes a hash that
/// `UNITDECK_PASSWORD_HASH` accepts.
#[tokio::test(flavor = "multi_thread")]
async fn passwords_generated_at_first_start_or_given_as_a_hash() {
    let sb = Sandbox::start_with(&[("UNITDECK_PASSWORD", "")]);
    let file = "/var/lib/unitdeck/initial-password";
    let generated = sb.sh(&format!("cat {file}")).trim().to_string();
    assert!(generated.len() >= 16, "{generated:?}");
    assert_eq!(sb.sh(&format!("stat -c %a {file}")).trim(), "600");
    let login = |password: String| {
        let api = sb.anonymous();
        async move {
            api.post_json("/api/v1/session", &json!({ "password": password }))
                .await
                .status()
        }
    };
    assert_eq!(login(generated.clone()).await, 200);
    assert_eq!(login(PASSWORD.to_string()).await, 401);
    assert!(
        !sb.sh("cat /var/lib/unitdeck/unitdeck.db*")
            .contains(&generated),
        "the plain password is not in the database"
    );

    // A hash from the CLI, given in the environment, replaces it.
    let hash = sb
        .sh("echo 'a chosen passphrase' | /opt/unitdeck/unitdeck hash-password")
        .trim()
        .to_string();
    assert!(hash.starts_with("$argon2"), "{hash}");
    sb.write(
        "/etc/systemd/system/unitdeck.service.d/zz-hash.conf",
        &format!(
            "[Service]\nEnvironment=\"UNITDECK_PASSWORD_HASH={}\"\n",
            hash
        ),
    );
    sb.sh("systemctl daemon-reload && systemctl restart unitdeck.service");
    sb.wait_healthy();
    assert_eq!(login("a chosen passphrase".to_string()).await, 200);
    assert_eq!(login(generated).await, 401);
}

/// `/healthz` says 200 as soon as every loaded unit's state is known (one ListUnits);
/// the details and the unit files that are not loaded come after. Requests made the
/// moment it is healthy still get the complete list, never the half-filled one.
#[tokio::test(flavor = "multi_thread")]
async fn first_answers_after_a_start_are_complete() {
    let sb = Sandbox::start();
    sb.add_unit(
        "idle.service",
        "[Unit]\nDescription=Idle one\n[Service]\nExecStart=/bin/true\n\
         [Install]\nWantedBy=multi-user.target\n",
    );
    sb.add_unit("busy.service", "[Service]\nExecStart=/bin/sleep infinity\n");
    sb.sh("systemctl start busy.service");
    let api = sb.login().await;
    for round in 0..3 {
        sb.sh("systemctl restart unitdeck.service");
        sb.wait_healthy();
        let units = api.get_json("/api/v1/units").await;
        let unit = |name: &str| {
            units
                .as_array()
                .unwrap()
                .iter()
                .find(|u| u["name"] == name)
                .unwrap_or_else(|| panic!("round {round}: {name} not listed"))
                .clone()
        };
        let idle = unit("idle.service");
        assert_eq!(idle["unit_file_state"], "disabled", "round {round}: {idle}");
        assert_eq!(idle["description"], "Idle one", "round {round}: {idle}");
        let busy = unit("busy.service");
        assert_eq!(busy["active_state"], "active", "round {round}: {busy}");
        assert!(
            busy["main_pid"].as_u64().unwrap() > 1,
            "round {round}: {busy}"
        );
        assert!(busy["active_since"].is_string(), "round {round}: {busy}");
        assert_eq!(unit("dbus.service")["protected"], true, "round {round}");
    }
}

#[tokio::test(flavor = "multi_thread")]
async fn dashboard_and_unit_page_render_real_units() {
    let sb = Sandbox::start();
    let api = sb.login().await;
    let res = api.get("/").await;
    assert_eq!(res.status(), 200);
    let html = res.text().await.unwrap();
    assert!(html.contains("dbus.service"));
    assert!(html.contains("data-state=\"active\""));
    assert!(html.contains("name=\"viewport\""));
    assert!(html.contains("sse-connect=\"ui/events?type=service\""));
    // Assets only from unitdeck; the only absolute links are to other ports of this host.
    assert!(
        !html.contains("src=\"http") && !html.contains("https://"),
        "no external assets"
    );
    for (i, _) in html.match_indices("http://") {
        assert!(
            html[i..].starts_with("http://127.0.0.1:"),
            "external link at {}",
            &html[i..i + 40]
        );
    }
    let page = api.get("/units/dbus.service").await.text().await.unwrap();
    assert!(page.contains("D-Bus System Message Bus"));
    assert!(
        page.contains("href=\"units/dbus.socket\""),
        "relationships are links"
    );
    let css = api.get("/static/app.css").await;
    assert_eq!(css.status(), 200);
    assert!(
        css.headers()["cache-control"]
            .to_str()
            .unwrap()
            .contains("max-age=31536000")
    );
    let htmx = api.get("/static/vendor/htmx.min.js").await;
    assert_eq!(htmx.status(), 200);
    assert_eq!(api.get("/units/nope.service").await.status(), 404);
}

#[tokio::test(flavor = "multi_thread")]
async fn openapi_covers_every_route() {
    let sb = Sandbox::start();
    let doc: Value = sb
        .anonymous()
        .get("/api/openapi.json")
        .await
        .json()
        .await
        .unwrap();
    assert!(doc["openapi"].as_str().unwrap().starts_with("3.1"));
    let paths = doc["paths"].as_object().unwrap();
    for p in [
        "/api/v1/session",
        "/api/v1/units",
        "/api/v1/units/{name}",
        "/api/v1/units/{name}/{action}",
        "/api/v1/events",
        "/api/v1/tokens",
        "/api/v1/tokens/{id}",
        "/api/v1/audit",
        "/healthz",
    ] {
        assert!(paths.contains_key(p), "{p} missing from OpenAPI");
    }
}
