//! The HTTP layer in process (`tower::ServiceExt::oneshot` on the router), over an
//! in-memory database and a systemd stand-in: the auth gate, scopes, the cross-site
//! refusal, the Host allowlist, unknown routes and methods, problem+json, the security
//! headers, the unit form's 422, and the OpenAPI document against its snapshot. No root,
//! no bus, no container, a few seconds: the nspawn suite in `tests/` stays the proof of
//! behaviour against systemd.

use axum::Router;
use axum::body::Body;
use axum::http::{HeaderMap, Method, Request, StatusCode, header};
use serde_json::{Value, json};
use tower::ServiceExt;

use crate::auth::Scope;
use crate::service::Services;
use crate::state::AppState;

const PASSWORD: &str = "stand-in-password";

/// The router over a stand-in domain.
struct Harness {
    app: Router,
    services: Services,
    /// The base path it is served under (paths given to `get` etc. include it).
    base: String,
}

/// An answer, read whole.
struct Answer {
    status: StatusCode,
    headers: HeaderMap,
    body: Vec<u8>,
}

impl Answer {
    fn json(&self) -> Value {
        serde_json::from_slice(&self.body).unwrap_or(Value::Null)
    }

    fn text(&self) -> String {
        String::from_utf8_lossy(&self.body).into_owned()
    }

    fn header(&self, name: header::HeaderName) -> &str {
        self.headers
            .get(&name)
            .and_then(|v| v.to_str().ok())
            .unwrap_or("")
    }

    /// Checks a problem+json answer of `status`; its body.
    fn problem(&self, status: u16) -> Value {
        assert_eq!(self.status.as_u16(), status, "{}", self.text());
        assert_eq!(
            self.header(header::CONTENT_TYPE),
            "application/problem+json"
        );
        let body = self.json();
        assert_eq!(body["status"], status);
        for key in ["type", "title", "detail"] {
            assert!(body[key].is_string(), "{key} in {body}");
        }
        body
    }
}

impl Harness {
    async fn new() -> Self {
        Self::under("").await
    }

    /// Served under `base_path` (`UNITDECK_BASE_PATH`).
    async fn under(base_path: &str) -> Self {
        let services = Services::stand_in(
            PASSWORD,
            &[
                ("shop-api.service", "active", "running"),
                ("dbus.service", "active", "running"),
                ("nightly.service", "failed", "failed"),
            ],
            base_path,
        )
        .await;
        let app = crate::app(AppState::new(services.clone(), None));
        Self {
            app,
            services,
            base: base_path.into(),
        }
    }

    /// A request to this machine (`Host: localhost`).
    fn request(method: Method, path: &str) -> axum::http::request::Builder {
        Request::builder()
            .method(method)
            .uri(path)
            .header(header::HOST, "localhost:8035")
    }

    async fn send(&self, request: Request<Body>) -> Answer {
        let response = self.app.clone().oneshot(request).await.unwrap();
        let status = response.status();
        let headers = response.headers().clone();
        let body = axum::body::to_bytes(response.into_body(), 1 << 20)
            .await
            .unwrap()
            .to_vec();
        Answer {
            status,
            headers,
            body,
        }
    }

    async fn get(&self, path: &str, auth: &Auth) -> Answer {
        self.send(
            auth.apply(Self::request(Method::GET, path))
                .body(Body::empty())
                .unwrap(),
        )
        .await
    }

    async fn post_json(&self, path: &str, auth: &Auth, body: Value) -> Answer {
        let request = auth
            .apply(Self::request(Method::POST, path))
            .header(header::CONTENT_TYPE, "application/json")
            .body(Body::from(body.to_string()))
            .unwrap();
        self.send(request).await
    }

    /// A session cookie from the login route.
    async fn login(&self) -> Auth {
        let answer = self
            .post_json(
                &format!("{}/api/v1/session", self.base),
                &Auth::None,
                json!({ "password": PASSWORD }),
            )
            .await;
        assert_eq!(answer.status, StatusCode::OK, "{}", answer.text());
        let cookie = answer.header(header::SET_COOKIE);
        Auth::Cookie(cookie.split(';').next().unwrap().to_string())
    }

    /// A bearer token of `scope`.
    async fn token(&self, scope: Scope) -> Auth {
        let admin = self.login().await;
        let answer = self
            .post_json(
                "/api/v1/tokens",
                &admin,
                json!({ "name": scope.as_str(), "scope": scope }),
            )
            .await;
        assert_eq!(answer.status, StatusCode::CREATED, "{}", answer.text());
        Auth::Bearer(answer.json()["token"].as_str().unwrap().to_string())
    }
}

/// The credentials a request carries.
enum Auth {
    None,
    Cookie(String),
    Bearer(String),
}

impl Auth {
    fn apply(&self, builder: axum::http::request::Builder) -> axum::http::request::Builder {
        match self {
            Self::None => builder,
            Self::Cookie(pair) => builder.header(header::COOKIE, pair),
            Self::Bearer(token) => builder.header(header::AUTHORIZATION, format!("Bearer {token}")),
        }
    }
}

#[tokio::test]
async fn without_credentials_nothing_is_shown() {
    let h = Harness::new().await;
    for path in [
        "/api/v1/units",
        "/api/v1/tokens",
        "/api/v1/audit",
        "/api/v1/events",
    ] {
        let answer = h.get(path, &Auth::None).await;
        answer.problem(401);
        assert!(
            answer
                .header(header::WWW_AUTHENTICATE)
                .starts_with("Bearer")
        );
    }
    // To the login page, relative to the page asked for (it may be under a proxy's prefix).
    for (path, login) in [
        ("/", "login"),
        ("/settings", "login?next=/settings"),
        (
            "/units/shop-api.service",
            "../login?next=/units/shop-api.service",
        ),
    ] {
        let answer = h.get(path, &Auth::None).await;
        assert_eq!(answer.status, StatusCode::SEE_OTHER, "{path}");
        assert_eq!(answer.header(header::LOCATION), login, "{path}");
    }
    // The public routes.
    assert_eq!(h.get("/login", &Auth::None).await.status, StatusCode::OK);
    assert_eq!(
        h.get("/static/app.js", &Auth::None).await.status,
        StatusCode::OK
    );
    let openapi = h.get("/api/openapi.json", &Auth::None).await;
    assert_eq!(openapi.status, StatusCode::OK);
    // A token that is not one is refused even on a public route.
    h.get("/login", &Auth::Bearer("ud_nope".into()))
        .await
        .problem(401);
}

#[tokio::test]
async fn a_session_and_tokens_see_what_their_scope_allows() {
    let h = Harness::new().await;
    let session = h.login().await;
    let units = h.get("/api/v1/units", &session).await;
    assert_eq!(units.status, StatusCode::OK);
    let names: Vec<String> = units
        .json()
        .as_array()
        .unwrap()
        .iter()
        .map(|u| u["name"].as_str().unwrap().to_string())
        .collect();
    assert_eq!(
        names,
        ["dbus.service", "nightly.service", "shop-api.service"]
    );
    let failed = h.get("/api/v1/units?state=failed", &session).await.json();
    assert_eq!(failed.as_array().unwrap().len(), 1);

    let read = h.token(Scope::Read).await;
    let operate = h.token(Scope::Operate).await;
    let admin = h.token(Scope::Admin).await;
    let spec = json!({"name": "x", "kind": "service", "exec_start": ["/bin/true"]});
    // read: every GET, nothing else.
    assert_eq!(h.get("/api/v1/units", &read).await.status, StatusCode::OK);
    h.post_json("/api/v1/units/shop-api.service/restart", &read, json!({}))
        .await
        .problem(403);
    // operate: unit actions too (past the gate, systemd itself is not there: 503).
    h.post_json(
        "/api/v1/units/shop-api.service/restart",
        &operate,
        json!({}),
    )
    .await
    .problem(503);
    h.post_json("/api/v1/unit-files", &operate, spec.clone())
        .await
        .problem(403);
    h.post_json(
        "/api/v1/tokens",
        &operate,
        json!({"name": "t", "scope": "read"}),
    )
    .await
    .problem(403);
    // admin: everything.
    let created = h
        .post_json(
            "/api/v1/tokens",
            &admin,
            json!({"name": "t", "scope": "read"}),
        )
        .await;
    assert_eq!(created.status, StatusCode::CREATED);
    // Refusals by a known caller are audited, under the token's id.
    let audit = h.get("/api/v1/audit", &admin).await.json();
    let refused = audit
        .as_array()
        .unwrap()
        .iter()
        .find(|r| r["result"] == "forbidden" && r["action"] == "unit.restart")
        .expect("the refused restart is audited");
    assert!(refused["actor"].as_str().unwrap().starts_with("token:"));
    assert!(refused["actor"].as_str().unwrap().ends_with("(read)"));
}

#[tokio::test]
async fn overrides_are_read_by_every_scope_and_changed_by_admins_only() {
    let h = Harness::new().await;
    let read = h.token(Scope::Read).await;
    let operate = h.token(Scope::Operate).await;
    let admin = h.token(Scope::Admin).await;
    let unit = "/api/v1/units/shop-api.service";
    // Reads pass the gate for every scope (systemd itself is not there: 503).
    for path in ["/files", "/override", "/override/revisions"] {
        h.get(&format!("{unit}{path}"), &read).await.problem(503);
    }
    let spec = json!({"environment": {"A": "1"}});
    let put = |auth: &Auth| {
        auth.apply(Harness::request(Method::PUT, &format!("{unit}/override")))
            .header(header::CONTENT_TYPE, "application/json")
            .body(Body::from(spec.to_string()))
            .unwrap()
    };
    let delete = |auth: &Auth| {
        auth.apply(Harness::request(
            Method::DELETE,
            &format!("{unit}/override"),
        ))
        .body(Body::empty())
        .unwrap()
    };
    // Changes and previews are admin's, also for an operator whose unit actions share
    // the path's shape.
    for auth in [&read, &operate] {
        h.send(put(auth)).await.problem(403);
        h.send(delete(auth)).await.problem(403);
        for path in ["/override/preview", "/override/rollback"] {
            h.post_json(&format!("{unit}{path}"), auth, json!({"revision": 1}))
                .await
                .problem(403);
        }
    }
    h.send(put(&admin)).await.problem(503);
    h.post_json(&format!("{unit}/override/preview"), &admin, spec.clone())
        .await
        .problem(503);
    // A body that is not an override spec names its field; another method is a 405.
    let body = h
        .post_json(
            &format!("{unit}/override/preview"),
            &admin,
            json!({"nice": "high"}),
        )
        .await
        .problem(422);
    assert_eq!(body["errors"][0]["field"], "nice");
    let answer = h.post_json(&format!("{unit}/override"), &admin, spec).await;
    answer.problem(405);
    assert!(answer.header(header::ALLOW).contains("PUT"));
    h.get("/api/v1/units/a%20b.service/files", &read)
        .await
        .problem(400);
}

#[tokio::test]
async fn cross_site_changes_with_the_cookie_are_refused() {
    let h = Harness::new().await;
    let session = h.login().await;
    for (name, value) in [
        ("origin", "http://evil.example"),
        ("origin", "null"),
        ("sec-fetch-site", "cross-site"),
    ] {
        let request = session
            .apply(Harness::request(Method::POST, "/api/v1/tokens"))
            .header(header::CONTENT_TYPE, "application/json")
            .header(name, value)
            .body(Body::from(
                json!({"name": "x", "scope": "read"}).to_string(),
            ))
            .unwrap();
        let body = h.send(request).await.problem(403);
        assert!(body["detail"].as_str().unwrap().contains("cross-site"));
    }
    // The same origin is fine; a bearer token is not subject to the check.
    let request = session
        .apply(Harness::request(Method::POST, "/api/v1/tokens"))
        .header(header::CONTENT_TYPE, "application/json")
        .header("origin", "http://localhost:8035")
        .body(Body::from(
            json!({"name": "x", "scope": "read"}).to_string(),
        ))
        .unwrap();
    assert_eq!(h.send(request).await.status, StatusCode::CREATED);
    let token = h.token(Scope::Admin).await;
    let request = token
        .apply(Harness::request(Method::POST, "/api/v1/tokens"))
        .header(header::CONTENT_TYPE, "application/json")
        .header("sec-fetch-site", "cross-site")
        .body(Body::from(
            json!({"name": "y", "scope": "read"}).to_string(),
        ))
        .unwrap();
    assert_eq!(h.send(request).await.status, StatusCode::CREATED);
}

#[tokio::test]
async fn unknown_routes_methods_hosts_and_bodies_are_problems() {
    let h = Harness::new().await;
    let session = h.login().await;
    h.get("/api/v1/nothing-here", &session).await.problem(404);
    let page = h.get("/nothing-here", &session).await;
    assert_eq!(page.status, StatusCode::NOT_FOUND);
    assert!(page.header(header::CONTENT_TYPE).starts_with("text/html"));
    let delete = session
        .apply(Harness::request(Method::DELETE, "/api/v1/units"))
        .body(Body::empty())
        .unwrap();
    let answer = h.send(delete).await;
    answer.problem(405);
    assert!(answer.header(header::ALLOW).contains("GET"));
    h.get("/api/v1/units/not%20a%20unit", &session)
        .await
        .problem(400);
    h.get("/api/v1/units?type=bogus", &session)
        .await
        .problem(400);
    h.post_json(
        "/api/v1/units/shop-api.service/explode",
        &session,
        json!({}),
    )
    .await
    .problem(404);
    // A foreign Host (DNS rebinding) is answered 421 before anything else.
    let request = Request::builder()
        .uri("/healthz")
        .header(header::HOST, "evil.example:8035")
        .body(Body::empty())
        .unwrap();
    h.send(request).await.problem(421);
    // Bodies: a JSON media type, parsed; a type error names its field; too large is 413.
    for (content_type, status) in [("application/jsonp", 400), ("text/plain", 400)] {
        let request = session
            .apply(Harness::request(Method::POST, "/api/v1/tokens"))
            .header(header::CONTENT_TYPE, content_type)
            .body(Body::from(r#"{"name": "x", "scope": "read"}"#))
            .unwrap();
        h.send(request).await.problem(status);
    }
    let body = h
        .post_json(
            "/api/v1/tokens",
            &session,
            json!({"name": 7, "scope": "read"}),
        )
        .await
        .problem(422);
    assert_eq!(body["errors"][0]["field"], "name");
    let huge = json!({ "name": "x".repeat(100_000), "scope": "read" });
    h.post_json("/api/v1/tokens", &session, huge)
        .await
        .problem(413);
}

#[tokio::test]
async fn every_answer_carries_the_security_headers() {
    let h = Harness::new().await;
    let session = h.login().await;
    for path in ["/login", "/", "/settings", "/units/new"] {
        let answer = h.get(path, &session).await;
        assert_eq!(answer.status, StatusCode::OK, "{path}");
        assert_eq!(
            answer.header(header::CONTENT_SECURITY_POLICY),
            crate::http::layers::CONTENT_SECURITY_POLICY
        );
        assert_eq!(answer.header(header::CACHE_CONTROL), "no-store");
        assert_eq!(answer.header(header::X_FRAME_OPTIONS), "DENY");
    }
    let json = h.get("/api/v1/units", &session).await;
    assert_eq!(json.header(header::CACHE_CONTROL), "no-store");
    assert!(json.header(header::CONTENT_SECURITY_POLICY).is_empty());
    let asset = h.get("/static/app.css", &Auth::None).await;
    assert!(asset.header(header::CACHE_CONTROL).contains("immutable"));
}

#[tokio::test]
async fn the_unit_form_shows_unreadable_fields_with_422_and_changes_nothing() {
    let h = Harness::new().await;
    let session = h.login().await;
    let form = "kind=service&name=x&command=%2Fbin%2Fecho+%27open&port=80a&action=save";
    let request = session
        .apply(Harness::request(Method::POST, "/units/new"))
        .header(header::CONTENT_TYPE, "application/x-www-form-urlencoded")
        .body(Body::from(form))
        .unwrap();
    let answer = h.send(request).await;
    assert_eq!(answer.status, StatusCode::UNPROCESSABLE_ENTITY);
    let page = answer.text();
    assert!(
        page.contains("id=\"err-port\">&#34;80a&#34; is not a whole number"),
        "{page}"
    );
    assert!(
        page.contains("id=\"err-command\">cannot be split"),
        "{page}"
    );
    let files = h.get("/api/v1/unit-files", &session).await.json();
    assert_eq!(files, json!([]));
    assert!(h.services.list_unit_files().await.unwrap().is_empty());
}

/// Bad log parameters are refused before anything reaches journalctl or the journal: a
/// 400 naming the parameter.
#[tokio::test]
async fn bad_log_parameters_are_400s_naming_them() {
    let h = Harness::new().await;
    let session = h.login().await;
    for (path, param) in [
        ("/api/v1/logs?since=yesterday", "since"),
        ("/api/v1/logs?until=2026-02-30T00:00:00Z", "until"),
        ("/api/v1/logs?since=-1h&until=-2h", "since"),
        ("/api/v1/logs?since=2026-12-06T14:10:00", "since"),
        ("/api/v1/logs/histogram?buckets=0", "buckets"),
        ("/api/v1/logs/histogram?buckets=501", "buckets"),
        ("/api/v1/logs/histogram?since=now&until=-1min", "since"),
        ("/api/v1/logs/facets?fields=lower", "fields"),
        ("/api/v1/logs/facets?fields=__CURSOR", "fields"),
        ("/api/v1/logs/facets?fields=_COMM,", "fields"),
        ("/api/v1/logs?grep=a(&regex=true", "grep"),
        ("/api/v1/logs/facets?grep=%5Bz-a%5D&regex=true", "grep"),
        ("/api/v1/logs?match=nofield", "match"),
        ("/api/v1/logs?exclude=bad%3Dx", "exclude"),
        ("/api/v1/logs?boot=yesterday", "boot"),
        ("/api/v1/logs?boot=1", "boot"),
        ("/api/v1/logs?before=x", "before"),
        ("/api/v1/logs?lines=0", "lines"),
        ("/api/v1/logs?identifier=a%01b", "identifier"),
        ("/api/v1/logs?case=loud", "case"),
        ("/api/v1/logs?regex=maybe", "regex"),
        ("/api/v1/logs?units=", "units"),
        ("/api/v1/logs/stream?lines=10001", "lines"),
        ("/api/v1/units/shop-api.service/logs?since=-1y", "since"),
    ] {
        let body = h.get(path, &session).await.problem(400);
        let detail = body["detail"].as_str().unwrap();
        assert!(detail.contains(param), "{path}: {detail}");
    }
    // The explorer says what is wrong above its controls, which stay usable.
    let page = h.get("/logs?range=week", &session).await;
    assert_eq!(page.status, StatusCode::OK);
    assert!(
        page.text().contains("query parameter range"),
        "{}",
        page.text()
    );
    assert!(page.text().contains("data-explorer"));
}

#[tokio::test]
async fn pins_put_units_first_for_everyone_with_operate() {
    let h = Harness::new().await;
    let session = h.login().await;
    let read = h.token(Scope::Read).await;
    let operate = h.token(Scope::Operate).await;
    let put = |auth: &Auth, name: &str| {
        auth.apply(Harness::request(
            Method::PUT,
            &format!("/api/v1/pins/{name}"),
        ))
        .body(Body::empty())
        .unwrap()
    };
    h.send(put(&read, "shop-api.service")).await.problem(403);
    h.send(put(&operate, "no-suffix")).await.problem(400);
    let pinned = h.send(put(&operate, "shop-api.service")).await;
    assert_eq!(pinned.status, StatusCode::OK, "{}", pinned.text());
    assert_eq!(pinned.json(), json!(["shop-api.service"]));
    // Twice is the same.
    assert_eq!(
        h.send(put(&operate, "shop-api.service")).await.json(),
        json!(["shop-api.service"])
    );
    assert_eq!(
        h.get("/api/v1/pins", &read).await.json(),
        json!(["shop-api.service"])
    );
    // The dashboard's rows: the pinned one first, marked, with its unpin button.
    let rows = h.get("/ui/units", &session).await.text();
    let first = rows.find("class=\"unit-row\"").unwrap();
    assert!(
        rows[first..].starts_with("class=\"unit-row\" id=\"u-shop-api_2eservice\""),
        "{rows}"
    );
    assert!(rows.contains("data-post=\"ui/units/shop-api.service/unpin\""));
    assert!(rows.contains("data-post=\"ui/units/dbus.service/pin\""));
    let audit = h.get("/api/v1/audit", &session).await.json();
    assert!(
        audit
            .as_array()
            .unwrap()
            .iter()
            .any(|a| a["action"] == "unit.pin" && a["target"] == "shop-api.service"),
        "{audit}"
    );
    let unpin = operate
        .apply(Harness::request(
            Method::DELETE,
            "/api/v1/pins/shop-api.service",
        ))
        .body(Body::empty())
        .unwrap();
    assert_eq!(h.send(unpin).await.json(), json!([]));
}

/// `href="/..."`, `src="/..."`, ... in a page: a URL that escapes a proxy's prefix.
fn absolute_urls(page: &str) -> Vec<String> {
    let mut found = Vec::new();
    for attr in [
        "href",
        "src",
        "action",
        "hx-get",
        "hx-post",
        "sse-connect",
        "data-post",
    ] {
        let needle = format!(" {attr}=\"/");
        found.extend(
            page.match_indices(&needle)
                .map(|(i, _)| page[i..].chars().take(60).collect::<String>()),
        );
    }
    found
}

#[tokio::test]
async fn pages_emit_only_urls_relative_to_their_root() {
    let h = Harness::new().await;
    let session = h.login().await;
    for (path, root) in [
        ("/", "./"),
        ("/settings", "./"),
        ("/units/new", "../"),
        ("/logs?units=shop-api.service", "./"),
        ("/ports", "./"),
        ("/audit", "./"),
        ("/ui/units", ""),
        ("/no-such-page", "./"),
    ] {
        let answer = h.get(path, &session).await;
        let page = answer.text();
        if !root.is_empty() {
            assert!(
                page.contains(&format!("<base href=\"{root}\">")),
                "{path}: {page}"
            );
        }
        let absolute = absolute_urls(&page);
        assert!(absolute.is_empty(), "{path}: {absolute:#?}");
    }
    let login = h.get("/login", &Auth::None).await.text();
    assert!(absolute_urls(&login).is_empty(), "{login}");
    // The skip link stays on the page (a bare #main would resolve against the root).
    let form = h.get("/units/new?kind=job", &session).await.text();
    assert!(form.contains("href=\"units/new?kind=job#main\""), "{form}");
}

#[tokio::test]
async fn under_a_base_path_everything_is_below_it() {
    let h = Harness::under("/absproxy/8035").await;
    // The base itself sends the browser below it; anything outside is not unitdeck's.
    let bare = h.get("/absproxy/8035", &Auth::None).await;
    assert_eq!(bare.status, StatusCode::PERMANENT_REDIRECT);
    assert_eq!(bare.header(header::LOCATION), "8035/");
    for outside in ["/", "/login", "/api/v1/units", "/absproxy/80350/login"] {
        let answer = h.get(outside, &Auth::None).await;
        assert_eq!(answer.status, StatusCode::NOT_FOUND, "{outside}");
    }
    let first = h.get("/absproxy/8035/", &Auth::None).await;
    assert_eq!(first.status, StatusCode::SEE_OTHER);
    assert_eq!(first.header(header::LOCATION), "login");
    // The API's session cookie is scoped to the base path.
    let answer = h
        .post_json(
            "/absproxy/8035/api/v1/session",
            &Auth::None,
            json!({ "password": PASSWORD }),
        )
        .await;
    assert!(
        answer
            .header(header::SET_COOKIE)
            .contains("; Path=/absproxy/8035"),
        "{}",
        answer.header(header::SET_COOKIE)
    );
    let session = h.login().await;
    let unit = h.get("/absproxy/8035/units/new", &session).await;
    assert_eq!(unit.status, StatusCode::OK);
    assert!(unit.text().contains("<base href=\"../\">"));
    assert!(absolute_urls(&unit.text()).is_empty());
    // A page's login form: its cookie has no Path (the browser scopes it to the page's
    // directory, the base), and the redirect is relative.
    let request = Harness::request(Method::POST, "/absproxy/8035/login")
        .header(header::CONTENT_TYPE, "application/x-www-form-urlencoded")
        .body(Body::from(format!("password={PASSWORD}&next=%2Fsettings")))
        .unwrap();
    let login = h.send(request).await;
    assert_eq!(login.status, StatusCode::SEE_OTHER);
    assert_eq!(login.header(header::LOCATION), "settings");
    let cookie = login.header(header::SET_COOKIE);
    assert!(
        cookie.starts_with("unitdeck_session=") && !cookie.contains("Path"),
        "{cookie}"
    );
    let openapi = h
        .get("/absproxy/8035/api/openapi.json", &Auth::None)
        .await
        .json();
    assert_eq!(openapi["servers"][0]["url"], "/absproxy/8035");
}

#[tokio::test]
async fn the_openapi_document_matches_its_snapshot() {
    let h = Harness::new().await;
    let document = h.get("/api/openapi.json", &Auth::None).await.json();
    let pretty = serde_json::to_string_pretty(&document).unwrap() + "\n";
    let path = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("docs/openapi.json");
    if std::env::var_os("UNITDECK_UPDATE_SNAPSHOTS").is_some() {
        std::fs::write(&path, &pretty).unwrap();
    }
    let snapshot = std::fs::read_to_string(&path).unwrap_or_default();
    assert!(
        snapshot == pretty,
        "the OpenAPI document changed: look at the difference, then accept it with \
         UNITDECK_UPDATE_SNAPSHOTS=1 cargo test --lib the_openapi_document (rewrites {})",
        path.display()
    );
}

/// A receiver on 127.0.0.1 answering `status` to every request; the bodies it got.
async fn receiver(status: u16) -> (u16, std::sync::Arc<std::sync::Mutex<Vec<String>>>) {
    use tokio::io::{AsyncReadExt, AsyncWriteExt};
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let port = listener.local_addr().unwrap().port();
    let got = std::sync::Arc::new(std::sync::Mutex::new(Vec::new()));
    let seen = got.clone();
    tokio::spawn(async move {
        while let Ok((mut s, _)) = listener.accept().await {
            let mut request = Vec::new();
            let mut buf = [0u8; 4096];
            // Head and body (small, one or two reads).
            while let Ok(n @ 1..) = s.read(&mut buf).await {
                request.extend_from_slice(&buf[..n]);
                let text = String::from_utf8_lossy(&request);
                if let Some((head, body)) = text.split_once("\r\n\r\n") {
                    let length = head
                        .lines()
                        .find_map(|l| {
                            l.to_ascii_lowercase()
                                .strip_prefix("content-length:")
                                .map(|v| v.trim().parse::<usize>().unwrap_or(0))
                        })
                        .unwrap_or(0);
                    if body.len() >= length {
                        seen.lock().unwrap().push(body.to_string());
                        break;
                    }
                }
            }
            let answer =
                format!("HTTP/1.1 {status} X\r\ncontent-length: 0\r\nconnection: close\r\n\r\n");
            let _ = s.write_all(answer.as_bytes()).await;
        }
    });
    (port, got)
}

#[tokio::test]
async fn notification_channels_name_their_bad_fields_and_hide_urls_below_admin() {
    let h = Harness::new().await;
    let session = h.login().await;
    let (port, got) = receiver(200).await;
    let good = json!({"name": "hook", "kind": "webhook",
        "url": format!("http://127.0.0.1:{port}/hook?secret=s3"),
        "events": ["unit_failed", "recovered"]});
    let with = |change: Value| {
        let mut spec = good.clone();
        for (k, v) in change.as_object().unwrap() {
            spec[k] = v.clone();
        }
        spec
    };
    for (change, field) in [
        (json!({"url": "ftp://example.com/"}), "url"),
        (json!({"url": "not a url"}), "url"),
        // unitdeck itself (the stand-in's configured address is 0.0.0.0:8035)
        (
            json!({"url": "http://127.0.0.1:8035/api/v1/units/x/stop"}),
            "url",
        ),
        (json!({"url": "http://localhost:8035/"}), "url"),
        (json!({"events": []}), "events"),
        (json!({"events": ["unit_failed", "exploded"]}), "events[1]"),
        (json!({"cooldown_s": 0}), "cooldown_s"),
        (json!({"cooldown_s": 86_401}), "cooldown_s"),
        (json!({"kind": "email"}), "kind"),
        (json!({"name": "  "}), "name"),
        (json!({"units": ["ok.service", "../etc"]}), "units[1]"),
    ] {
        let body = h
            .post_json(
                "/api/v1/notifications/channels",
                &session,
                with(change.clone()),
            )
            .await
            .problem(422);
        assert_eq!(body["errors"][0]["field"], field, "{change}: {body}");
    }
    // Every bad field at once is named.
    let body = h
        .post_json(
            "/api/v1/notifications/channels",
            &session,
            with(json!({"url": "gopher://x", "events": [], "cooldown_s": -1})),
        )
        .await
        .problem(422);
    let fields: Vec<&str> = body["errors"]
        .as_array()
        .unwrap()
        .iter()
        .map(|e| e["field"].as_str().unwrap())
        .collect();
    assert_eq!(fields, ["url", "events", "cooldown_s"]);
    let list = h.get("/api/v1/notifications/channels", &session).await;
    assert_eq!(list.json(), json!([]), "nothing was stored");

    let created = h
        .post_json("/api/v1/notifications/channels", &session, good.clone())
        .await;
    assert_eq!(created.status, StatusCode::CREATED, "{}", created.text());
    let channel = created.json();
    assert_eq!(channel["enabled"], true);
    assert_eq!(channel["cooldown_s"], 300);
    assert_eq!(channel["units"], json!([]));
    let id = channel["id"].as_i64().unwrap();

    // Scopes: reading is for everyone (the URL is a secret), changing for admins.
    let read = h.token(Scope::Read).await;
    let operate = h.token(Scope::Operate).await;
    let listed = h.get("/api/v1/notifications/channels", &read).await.json();
    assert_eq!(listed[0]["url"], "***");
    let listed = h
        .get("/api/v1/notifications/channels", &session)
        .await
        .json();
    assert!(listed[0]["url"].as_str().unwrap().contains("secret=s3"));
    for auth in [&read, &operate] {
        h.post_json("/api/v1/notifications/channels", auth, good.clone())
            .await
            .problem(403);
        h.post_json(
            &format!("/api/v1/notifications/channels/{id}/test"),
            auth,
            json!({}),
        )
        .await
        .problem(403);
    }
    assert_eq!(
        h.get("/api/v1/notifications/deliveries", &read)
            .await
            .status,
        StatusCode::OK
    );
    h.get("/api/v1/notifications/deliveries?limit=0", &read)
        .await
        .problem(400);

    // A test goes out now, once, and is recorded.
    let test = h
        .post_json(
            &format!("/api/v1/notifications/channels/{id}/test"),
            &session,
            json!({}),
        )
        .await;
    assert_eq!(test.status, StatusCode::OK, "{}", test.text());
    let delivery = test.json();
    assert_eq!(delivery["status"], "delivered", "{delivery}");
    assert_eq!(delivery["http_status"], 200);
    assert_eq!(delivery["attempts"], 1);
    let body: Value = serde_json::from_str(&got.lock().unwrap()[0]).unwrap();
    assert_eq!(body["event"], "test");
    let deliveries = h
        .get("/api/v1/notifications/deliveries", &read)
        .await
        .json();
    assert_eq!(deliveries[0]["channel"], "hook");
    h.post_json(
        "/api/v1/notifications/channels/999/test",
        &session,
        json!({}),
    )
    .await
    .problem(404);

    // Replace, delete, and the audit log (without the URL).
    let put = session
        .apply(Harness::request(
            Method::PUT,
            &format!("/api/v1/notifications/channels/{id}"),
        ))
        .header(header::CONTENT_TYPE, "application/json")
        .body(Body::from(
            with(json!({"enabled": false, "cooldown_s": 5})).to_string(),
        ))
        .unwrap();
    let updated = h.send(put).await;
    assert_eq!(updated.status, StatusCode::OK, "{}", updated.text());
    assert_eq!(updated.json()["enabled"], false);
    let missing = session
        .apply(Harness::request(
            Method::PUT,
            "/api/v1/notifications/channels/999",
        ))
        .header(header::CONTENT_TYPE, "application/json")
        .body(Body::from(good.to_string()))
        .unwrap();
    h.send(missing).await.problem(404);
    let delete = |id: i64| {
        session
            .apply(Harness::request(
                Method::DELETE,
                &format!("/api/v1/notifications/channels/{id}"),
            ))
            .body(Body::empty())
            .unwrap()
    };
    assert_eq!(h.send(delete(id)).await.status, StatusCode::NO_CONTENT);
    h.send(delete(id)).await.problem(404);
    let audit = h.get("/api/v1/audit", &session).await.json();
    let actions: Vec<&str> = audit
        .as_array()
        .unwrap()
        .iter()
        .filter_map(|r| r["action"].as_str())
        .filter(|a| a.starts_with("notification."))
        .collect();
    assert_eq!(
        actions,
        [
            "notification.channel.delete",
            "notification.channel.update",
            "notification.channel.test",
            "notification.channel.create"
        ]
    );
    assert!(
        !audit.to_string().contains("secret=s3"),
        "no URL in the audit log"
    );
}

#[tokio::test]
async fn runs_timers_and_the_new_pages_answer() {
    let h = Harness::new().await;
    let session = h.login().await;
    for bad in [
        "/api/v1/units/shop-api.service/runs?limit=0",
        "/api/v1/units/shop-api.service/runs?limit=201",
        "/api/v1/units/shop-api.service/runs?limit=x",
        "/api/v1/units/not%20a%20unit/runs",
    ] {
        h.get(bad, &session).await.problem(400);
    }
    h.get("/api/v1/units/nothing.service/runs", &session)
        .await
        .problem(503);
    // The stand-in has no timers.
    assert_eq!(h.get("/api/v1/timers", &session).await.json(), json!([]));
    for page in ["/jobs", "/notifications", "/settings"] {
        let answer = h.get(page, &session).await;
        assert_eq!(answer.status, StatusCode::OK, "{page}");
    }
    let settings = h.get("/settings", &session).await.text();
    assert!(settings.contains("Add a channel") && settings.contains("data-notify-toggle"));
    // The jobs page's buttons are unit actions: operate, not read.
    let read = h.token(Scope::Read).await;
    h.post_json("/ui/jobs/nightly.service/start", &read, json!({}))
        .await
        .problem(403);
}
