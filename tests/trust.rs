//! Trust (issue 14), tried the way an attacker would, against a real systemd: aliases of
//! units that take the container down or that are protected, concurrent password
//! guessing, foreign `Host` names (DNS rebinding), the login's `next`, the headers every
//! answer carries, sessions that end (idle, everywhere, on a password change), secrets
//! below admin, drop-ins that apply unseen, and HTTPS with a certificate unitdeck made.

mod common;

use std::collections::BTreeSet;
use std::net::{IpAddr, Ipv4Addr};
use std::time::{Duration, Instant};

use common::{PASSWORD, Sandbox, audit, eventually, find_audit, problem, token};
use reqwest::Method;
use serde_json::{Value, json};
use unitdeck::systemd::names::SYSTEM_DOWN_UNITS;

/// Every name systemd knows `unit` by (`systemctl show -P Names`), the unit's own first.
fn names_of(sb: &Sandbox, unit: &str) -> Vec<String> {
    let mut names = vec![unit.to_string()];
    for name in sb.show(unit, "Names").split_whitespace() {
        if !names.iter().any(|n| n == name) {
            names.push(name.to_string());
        }
    }
    names
}

#[tokio::test(flavor = "multi_thread")]
async fn aliases_cannot_take_the_container_down_or_a_protected_unit_away() {
    let sb = Sandbox::start();
    // An alias made by hand, like the `messagebus.service` some systems ship for dbus.
    sb.sh(
        "ln -s /usr/lib/systemd/system/dbus.service /etc/systemd/system/messagebus.service && \
         ln -s /usr/lib/systemd/system/poweroff.target /etc/systemd/system/innocent.target && \
         printf '[Unit]\\nDescription=Looks harmless\\nWants=innocent.target\\n' \
           > /etc/systemd/system/harmless.target && \
         systemctl daemon-reload",
    );
    let admin = sb.login().await;
    let (_, operate) = token(&admin, "operator", "operate").await;
    let operator = sb.with_token(&operate);
    let started = Instant::now();

    // Starting (now or at boot) any name of a unit that shuts the container down.
    let mut tried = BTreeSet::new();
    for unit in SYSTEM_DOWN_UNITS {
        if sb.show(unit, "LoadState") != "loaded" {
            continue;
        }
        for name in names_of(&sb, unit) {
            for action in ["start", "restart", "enable"] {
                let res = operator
                    .post(&format!("/api/v1/units/{name}/{action}"))
                    .await;
                let body = problem(res, 409).await;
                assert!(
                    body["detail"]
                        .as_str()
                        .unwrap()
                        .contains("unitdeck will not"),
                    "{name} {action}: {body}"
                );
            }
            tried.insert(name);
        }
    }
    // The aliases this systemd ships are among them (read from it, not listed here).
    for alias in [
        "runlevel0.target",
        "runlevel6.target",
        "ctrl-alt-del.target",
    ] {
        assert!(tried.contains(alias), "{alias} not tried: {tried:?}");
    }
    // A unit that only pulls one in, through an alias made by hand, is refused too, and
    // the answer says how.
    for name in ["innocent.target", "harmless.target"] {
        let body = problem(
            operator.post(&format!("/api/v1/units/{name}/start")).await,
            409,
        )
        .await;
        assert!(
            body["detail"].as_str().unwrap().contains("poweroff.target"),
            "{body}"
        );
    }

    // Stopping or disabling any name of a protected unit, the hand-made alias included.
    let dbus_enablement = sb.show("dbus.service", "UnitFileState");
    let units = admin.get_json("/api/v1/units?type=all").await;
    let protected: Vec<String> = units
        .as_array()
        .unwrap()
        .iter()
        .filter(|u| u["protected"] == true)
        .map(|u| u["name"].as_str().unwrap().to_string())
        .collect();
    assert!(
        protected.contains(&"dbus.service".to_string()),
        "{protected:?}"
    );
    assert!(names_of(&sb, "dbus.service").contains(&"messagebus.service".to_string()));
    for unit in &protected {
        for name in names_of(&sb, unit) {
            for action in ["stop", "disable"] {
                let res = operator
                    .post(&format!("/api/v1/units/{name}/{action}"))
                    .await;
                problem(res, 409).await;
            }
        }
    }
    let elapsed = started.elapsed();

    // Nothing happened: the container runs, dbus and journald with it.
    assert_eq!(sb.sh("systemctl is-system-running").trim(), "running");
    for unit in [
        "dbus.service",
        "systemd-journald.service",
        "unitdeck.service",
    ] {
        assert_eq!(sb.show(unit, "ActiveState"), "active", "{unit}");
    }
    assert_eq!(sb.show("dbus.service", "UnitFileState"), dbus_enablement);
    assert!(
        sb.root()
            .join("etc/systemd/system/messagebus.service")
            .exists()
    );

    // Every refusal is audited, under the name the caller used.
    let records = audit(&admin).await;
    let refused = find_audit(&records, "unit.start", Some("runlevel0.target"), "refused");
    assert!(
        refused["detail"]
            .as_str()
            .unwrap()
            .contains("poweroff.target"),
        "{refused}"
    );
    find_audit(&records, "unit.stop", Some("messagebus.service"), "refused");

    // The guard does not refuse what is harmless: a start of the whole multi-user target
    // (every unit it pulls in is read) goes through.
    let res = operator.post("/api/v1/units/multi-user.target/start").await;
    assert_eq!(res.status(), 200);
    let body: Value = res.json().await.unwrap();
    assert_eq!(body["job"]["result"], "done", "{body}");
    println!(
        "{} refusals in {elapsed:?} ({} names of units that take the container down)",
        tried.len() * 3,
        tried.len()
    );

    // A unit spec that requires or wants one of them, by alias or through a unit that
    // pulls one in, is a 422 naming the field, in the preview and the create alike.
    for (field, dependency) in [
        ("wants", "runlevel0.target"),
        ("requires", "ctrl-alt-del.target"),
        ("wants", "innocent.target"),
        ("requires", "harmless.target"),
    ] {
        let spec = json!({"name": "sneaky", "kind": "service",
            "exec_start": ["/bin/sleep", "1000"], field: [dependency]});
        for path in ["/api/v1/unit-files/preview", "/api/v1/unit-files"] {
            let body = problem(admin.post_json(path, &spec).await, 422).await;
            let errors = body["errors"].as_array().unwrap();
            assert_eq!(errors.len(), 1, "{body}");
            assert_eq!(errors[0]["field"], field, "{body}");
            assert!(
                errors[0]["message"].as_str().unwrap().contains(dependency),
                "{body}"
            );
        }
    }
    assert!(!sb.root().join("etc/systemd/system/sneaky.service").exists());
}

/// A login attempt from `from` (a loopback address of its own).
async fn login_from(sb: &Sandbox, from: Ipv4Addr, password: &str) -> reqwest::Response {
    let client = reqwest::Client::builder()
        .local_address(IpAddr::V4(from))
        .timeout(Duration::from_secs(60))
        .build()
        .unwrap();
    client
        .post(format!("{}/api/v1/session", sb.base_url()))
        .json(&json!({ "password": password }))
        .send()
        .await
        .unwrap()
}

#[tokio::test(flavor = "multi_thread")]
async fn concurrent_guesses_get_five_checks_and_the_owner_still_gets_in() {
    let sb = Sandbox::start();
    let attacker = Ipv4Addr::new(127, 0, 0, 1);
    let owner = Ipv4Addr::new(127, 0, 0, 2);
    let guesses: Vec<_> = (0..60)
        .map(|i| {
            let sb = &sb;
            async move { login_from(sb, attacker, &format!("guess-{i}")).await }
        })
        .collect();
    // The owner logs in from another address while the guesses are in flight.
    let owner_login = async {
        tokio::time::sleep(Duration::from_millis(50)).await;
        let started = Instant::now();
        let res = login_from(&sb, owner, PASSWORD).await;
        (res.status().as_u16(), started.elapsed())
    };
    let (answers, (owner_status, owner_took)) =
        tokio::join!(futures_util::future::join_all(guesses), owner_login);
    let mut statuses = std::collections::BTreeMap::new();
    for res in answers {
        let status = res.status().as_u16();
        if status == 429 {
            assert!(res.headers().contains_key("retry-after"));
        }
        *statuses.entry(status).or_insert(0) += 1;
    }
    let checked = statuses.get(&401).copied().unwrap_or(0);
    assert!(checked <= 5, "{checked} guesses were checked: {statuses:?}");
    assert_eq!(
        checked + statuses.get(&429).copied().unwrap_or(0),
        60,
        "{statuses:?}"
    );
    assert_eq!(owner_status, 200, "the owner is locked out");
    assert!(
        owner_took < Duration::from_secs(3),
        "the owner waited {owner_took:?}"
    );
    // The attacker's address stays braked, even with the right password.
    assert_eq!(login_from(&sb, attacker, PASSWORD).await.status(), 429);

    // The audit has each checked guess once and the flood of refusals as one record.
    let admin = sb.login_from(owner).await;
    let records = audit(&admin).await;
    let failed = records
        .iter()
        .filter(|r| r["action"] == "login" && r["result"] == "failed")
        .count();
    assert_eq!(failed, checked);
    let limited = records
        .iter()
        .filter(|r| r["action"] == "login" && r["result"] == "rate-limited")
        .count();
    assert!((1..=2).contains(&limited), "{limited} rate-limited records");
}

/// GET `path` with `Host: host`, on unitdeck's own port.
async fn with_host(sb: &Sandbox, method: Method, path: &str, host: &str) -> reqwest::Response {
    let api = sb.anonymous();
    api.request(method, path)
        .header("host", host)
        .send()
        .await
        .unwrap()
}

#[tokio::test(flavor = "multi_thread")]
async fn foreign_hosts_are_misdirected_and_this_machines_names_answer() {
    let sb = Sandbox::start_with(&[("UNITDECK_ALLOWED_HOSTS", "box.example,*.dev.example")]);
    let port = sb.port;
    // DNS rebinding: the attacker's name, now resolving here. Refused before anything
    // else happens: no login is tried, nothing is audited.
    for host in [
        format!("evil.example:{port}"),
        "evil.example".to_string(),
        format!("localhost.evil.example:{port}"),
        format!("box.example.evil:{port}"),
        format!("192.0.2.1:{port}"),
    ] {
        problem(with_host(&sb, Method::GET, "/healthz", &host).await, 421).await;
        let res = sb
            .anonymous()
            .request(Method::POST, "/api/v1/session")
            .header("host", &host)
            .header("origin", format!("http://{host}"))
            .json(&json!({ "password": PASSWORD }))
            .send()
            .await
            .unwrap();
        let body = problem(res, 421).await;
        assert!(
            body["detail"]
                .as_str()
                .unwrap()
                .contains("UNITDECK_ALLOWED_HOSTS"),
            "{body}"
        );
        let page = with_host(&sb, Method::GET, "/login", &host).await;
        assert_eq!(page.status(), 421, "{host}");
    }
    // This machine under its own names and addresses, and the listed ones.
    let own: Vec<String> = sb
        .sh("ip -o addr show | awk '{print $4}' | cut -d/ -f1")
        .lines()
        .map(str::to_string)
        .collect();
    let lan = own
        .iter()
        .find(|a| !a.starts_with("127.") && !a.contains(':'))
        .cloned();
    let hostname = sb.sh("hostname").trim().to_string();
    let mut good = vec![
        format!("127.0.0.1:{port}"),
        format!("localhost:{port}"),
        format!("[::1]:{port}"),
        format!("{hostname}:{port}"),
        format!("box.example:{port}"),
        format!("phone.dev.example:{port}"),
    ];
    good.extend(lan.map(|ip| format!("{ip}:{port}")));
    for host in &good {
        let res = with_host(&sb, Method::GET, "/healthz", host).await;
        assert_eq!(res.status(), 200, "{host}");
    }
    let records = audit(&sb.login().await).await;
    assert!(
        !records
            .iter()
            .any(|r| r["action"] == "login" && r["result"] != "ok"),
        "a refused host reached the login"
    );
}

#[tokio::test(flavor = "multi_thread")]
async fn login_next_stays_on_this_site_and_headers_protect_every_answer() {
    let sb = Sandbox::start();
    let anon = sb.anonymous();
    for (next, expected) in [
        ("/units/dbus.service", "units/dbus.service"),
        ("/\t/evil.example", "./"),
        ("/%09/evil.example", "./"),
        ("/\n/evil.example", "./"),
        ("//evil.example", "./"),
        ("/\\evil.example", "./"),
        ("/%5Cevil.example", "./"),
        ("/%2F/evil.example", "./"),
        ("https://evil.example/", "./"),
    ] {
        let res = anon
            .request(Method::POST, "/login")
            .form(&[("password", PASSWORD), ("next", next)])
            .send()
            .await
            .unwrap();
        assert_eq!(res.status(), 303, "{next:?}");
        assert_eq!(res.headers()["location"], expected, "{next:?}");
    }
    let admin = sb.login().await;

    // Every HTML page: a policy that allows only this site's own scripts and styles.
    for path in [
        "/login",
        "/",
        "/units/dbus.service",
        "/settings",
        "/units/new",
    ] {
        let res = admin.get(path).await;
        assert_eq!(res.status(), 200, "{path}");
        let csp = res.headers()["content-security-policy"].to_str().unwrap();
        for directive in [
            "default-src 'self'",
            "script-src 'self'",
            "frame-ancestors 'none'",
            "base-uri 'self'",
            "form-action 'self'",
        ] {
            assert!(csp.contains(directive), "{path}: {csp}");
        }
        assert!(!csp.contains("unsafe"), "{path}: {csp}");
        assert_eq!(res.headers()["cache-control"], "no-store", "{path}");
        let html = res.text().await.unwrap();
        for inline in [
            "<script>",
            "<style",
            " style=",
            "hx-on",
            "onchange=",
            "onclick=",
        ] {
            assert!(!html.contains(inline), "{path} has {inline}");
        }
    }
    // Authenticated JSON is not cached; static files are, for good.
    let res = admin.get("/api/v1/units").await;
    assert_eq!(res.headers()["cache-control"], "no-store");
    let res = admin.get("/static/app.js").await;
    assert!(
        res.headers()["cache-control"]
            .to_str()
            .unwrap()
            .contains("immutable")
    );

    // A JSON body is taken only with a JSON media type, parsed, not looked for.
    for (content_type, status) in [
        ("application/json", 201),
        ("application/JSON; charset=utf-8", 201),
        ("application/vnd.unitdeck+json", 201),
        ("application/jsonp", 400),
        ("text/plain; x=+json", 400),
        ("application/json-seq", 400),
    ] {
        let res = admin
            .request(Method::POST, "/api/v1/tokens")
            .header("content-type", content_type)
            .body(r#"{"name": "ct", "scope": "read"}"#)
            .send()
            .await
            .unwrap();
        assert_eq!(res.status().as_u16(), status, "{content_type}");
    }
}

#[tokio::test(flavor = "multi_thread")]
async fn sessions_end_when_idle_everywhere_and_when_the_password_changes() {
    let sb = Sandbox::start_with(&[("UNITDECK_SESSION_IDLE", "3s")]);
    // Idle: a session in use stays (the timeout slides), one left alone ends.
    let busy = sb.login().await;
    // Every half second: last use is kept in whole seconds, so the session may end up to
    // a second before its 3 s (a busy machine's answer can take a moment too).
    for _ in 0..12 {
        tokio::time::sleep(Duration::from_millis(500)).await;
        assert_eq!(busy.get("/api/v1/units").await.status(), 200);
    }
    tokio::time::sleep(Duration::from_millis(4500)).await;
    problem(busy.get("/api/v1/units").await, 401).await;
    let res = busy.get("/settings").await;
    assert_eq!(res.headers()["location"], "login?next=/settings");

    // Log out everywhere: both browsers' sessions end, a token keeps working.
    let laptop = sb.login().await;
    let phone = sb.login().await;
    let (_, secret) = token(&laptop, "ci", "read").await;
    let ci = sb.with_token(&secret);
    let res = phone.delete("/api/v1/sessions").await;
    assert_eq!(res.status(), 204);
    assert!(
        res.headers()["set-cookie"]
            .to_str()
            .unwrap()
            .contains("Max-Age=0")
    );
    problem(laptop.get("/api/v1/units").await, 401).await;
    problem(phone.get("/api/v1/units").await, 401).await;
    assert_eq!(ci.get("/api/v1/units").await.status(), 200);
    let records = audit(&ci).await;
    assert_eq!(
        find_audit(&records, "session.end-all", None, "ok")["actor"],
        "admin"
    );

    // A restart with the same password keeps sessions; a new password ends them all.
    let kept = sb.login().await;
    sb.sh("systemctl restart unitdeck.service");
    sb.wait_healthy();
    assert_eq!(kept.get("/api/v1/units").await.status(), 200);
    sb.sh(
        "sed -i 's/UNITDECK_PASSWORD=.*\"/UNITDECK_PASSWORD=a-new-password\"/' \
           /etc/systemd/system/unitdeck.service.d/test.conf && \
         systemctl daemon-reload && systemctl restart unitdeck.service",
    );
    sb.wait_healthy();
    problem(kept.get("/api/v1/units").await, 401).await;
    let res = sb
        .anonymous()
        .post_json("/api/v1/session", &json!({ "password": "a-new-password" }))
        .await;
    assert_eq!(res.status(), 200);
    let records = audit(&ci).await;
    let ended = records
        .iter()
        .find(|r| r["action"] == "session.end-all" && r["actor"] == "unitdeck")
        .expect("the password change is audited");
    assert!(
        ended["detail"]
            .as_str()
            .unwrap()
            .contains("password changed"),
        "{ended}"
    );
}

#[tokio::test(flavor = "multi_thread")]
async fn environment_values_are_for_admins_only() {
    let sb = Sandbox::start();
    let admin = sb.login().await;
    let (read_id, read) = token(&admin, "reader", "read").await;
    let (_, operate) = token(&admin, "operator", "operate").await;
    let spec = json!({"name": "secretive", "kind": "service",
        "exec_start": ["/bin/sleep", "1000"],
        "environment": {"API_KEY": "s3cr3t-value", "MODE": "dev"}, "start": false});
    assert_eq!(
        admin.post_json("/api/v1/unit-files", &spec).await.status(),
        201
    );
    let full = admin.get_json("/api/v1/unit-files/secretive").await;
    assert_eq!(full["spec"]["environment"]["API_KEY"], "s3cr3t-value");
    for secret in [&read, &operate] {
        let viewer = sb.with_token(secret);
        let shown = viewer.get_json("/api/v1/unit-files/secretive").await;
        assert_eq!(shown["spec"]["environment"]["API_KEY"], "***");
        assert_eq!(shown["spec"]["environment"]["MODE"], "***");
        let text = shown.to_string();
        assert!(!text.contains("s3cr3t"), "{text}");
        assert!(text.contains("API_KEY"), "the keys stay visible");
        let page = viewer.get("/units/secretive.service/edit").await;
        assert_eq!(page.status(), 200);
        assert!(!page.text().await.unwrap().contains("s3cr3t"));
    }
    // The audit record of a delete holds the last spec, without the values.
    assert_eq!(
        admin.delete("/api/v1/unit-files/secretive").await.status(),
        204
    );
    let reader = sb.with_token(&read);
    let records = audit(&reader).await;
    assert!(!serde_json::to_string(&records).unwrap().contains("s3cr3t"));
    // A token's records name it by id: names repeat.
    let _ = reader.get("/api/v1/units").await;
    let refused = reader.post("/api/v1/units/dbus.service/stop").await;
    assert_eq!(refused.status(), 403);
    let records = audit(&admin).await;
    assert_eq!(
        find_audit(&records, "unit.stop", Some("dbus.service"), "forbidden")["actor"],
        format!("token:{read_id} (reader)")
    );
}

#[tokio::test(flavor = "multi_thread")]
async fn drop_ins_that_apply_are_shown_before_and_after_a_create() {
    let sb = Sandbox::start();
    sb.write(
        "/etc/systemd/system/service.d/10-everywhere.conf",
        "[Service]\nEnvironment=FROM_TYPE=1\n",
    );
    sb.write(
        "/etc/systemd/system/shop-.service.d/20-prefix.conf",
        "[Service]\nEnvironment=FROM_PREFIX=1\n",
    );
    sb.write(
        "/run/systemd/system/service.d/05-runtime.conf",
        "[Service]\nEnvironment=FROM_RUN=1\n",
    );
    sb.sh("systemctl daemon-reload");
    let admin = sb.login().await;
    let spec = json!({"name": "shop-api", "kind": "service",
        "exec_start": ["/bin/sleep", "1000"]});
    let preview = admin.post_json("/api/v1/unit-files/preview", &spec).await;
    assert_eq!(preview.status(), 200);
    let preview: Value = preview.json().await.unwrap();
    let shown: Vec<&str> = preview["drop_ins"]
        .as_array()
        .unwrap()
        .iter()
        .map(|d| d.as_str().unwrap())
        .collect();
    assert_eq!(
        shown,
        [
            "/run/systemd/system/service.d/05-runtime.conf",
            "/etc/systemd/system/service.d/10-everywhere.conf",
            "/etc/systemd/system/shop-.service.d/20-prefix.conf",
        ]
    );
    assert_eq!(
        admin.post_json("/api/v1/unit-files", &spec).await.status(),
        201
    );
    // What systemd says applies is what the preview said, in the same order.
    let detail = admin.get_json("/api/v1/units/shop-api.service").await;
    assert_eq!(detail["drop_in_paths"], json!(shown), "{detail}");
    let page = admin
        .get("/units/shop-api.service")
        .await
        .text()
        .await
        .unwrap();
    assert!(page.contains("/etc/systemd/system/shop-.service.d/20-prefix.conf"));
    // The process runs with them.
    let environment = sb.show("shop-api.service", "Environment");
    assert!(
        environment.contains("FROM_PREFIX=1") && environment.contains("FROM_TYPE=1"),
        "{environment}"
    );
}

#[tokio::test(flavor = "multi_thread")]
async fn https_with_a_self_signed_certificate() {
    let sb = Sandbox::start_with(&[("UNITDECK_TLS", "self-signed")]);
    assert!(sb.base_url().starts_with("https://"));
    // The client trusts exactly the certificate unitdeck made and logged.
    let api = sb.login().await;
    let res = api.get("/settings").await;
    assert_eq!(res.status(), 200);
    let presented = res
        .extensions()
        .get::<reqwest::tls::TlsInfo>()
        .and_then(|info| info.peer_certificate())
        .map(fingerprint)
        .expect("a TLS connection");
    let page = res.text().await.unwrap();
    assert!(
        page.contains(&presented),
        "the settings page shows {presented}"
    );
    let log = sb.sh("journalctl -u unitdeck.service --no-pager -o cat");
    assert!(log.contains(&presented), "the log names {presented}");
    // The session cookie is Secure over HTTPS.
    let res = sb
        .anonymous()
        .post_json("/api/v1/session", &json!({ "password": PASSWORD }))
        .await;
    let cookie = res.headers()["set-cookie"].to_str().unwrap().to_string();
    assert!(cookie.contains("; Secure"), "{cookie}");
    assert!(cookie.contains("HttpOnly") && cookie.contains("SameSite=Strict"));
    // Plain HTTP on the same port gets no answer it could use.
    let plain = reqwest::Client::new()
        .get(format!("http://127.0.0.1:{}/healthz", sb.port))
        .timeout(Duration::from_secs(10))
        .send()
        .await;
    assert!(plain.is_err() || plain.unwrap().status() != 200);
    // A restart keeps the certificate (a browser's exception stays valid).
    sb.sh("systemctl restart unitdeck.service");
    sb.wait_healthy();
    let res = sb.anonymous().get("/healthz").await;
    let again = res
        .extensions()
        .get::<reqwest::tls::TlsInfo>()
        .and_then(|info| info.peer_certificate())
        .map(fingerprint)
        .unwrap();
    assert_eq!(again, presented);
    eventually(
        "unitdeck answers over HTTPS after the restart",
        Duration::from_secs(10),
        async || (sb.anonymous().get("/healthz").await.status() == 200).then_some(()),
    )
    .await;
}

/// SHA-256 of a DER certificate as `AB:CD:…`.
fn fingerprint(der: &[u8]) -> String {
    use sha2::{Digest, Sha256};
    Sha256::digest(der)
        .iter()
        .map(|b| format!("{b:02X}"))
        .collect::<Vec<_>>()
        .join(":")
}
