//! The dev container in a real Docker Engine (issue 15): the image built from
//! deploy/Dockerfile, run with the shipped deploy/docker-compose.yml.
//!
//! - Docker: the daemon at /var/run/docker.sock when one answers there, else a `dockerd`
//!   of this test's own (data root /var/lib/unitdeck-test/docker, where the base image
//!   and BuildKit's cache stay between runs; `--bridge=none --iptables=false`), stopped
//!   at the end. The client is Debian's /usr/bin/docker, the one that matches Debian's
//!   daemon (another client may come first on PATH). No Docker at all fails the test.
//! - Base image: `debian:12` when the daemon has it, else made once with `debootstrap
//!   --variant=minbase bookworm` + `docker import` (no registry needed).
//! - Build stage: UNITDECK_BUILD=prebuilt, with this test's build of unitdeck as
//!   deploy/prebuilt/unitdeck; the runtime stage is the Dockerfile's, unchanged, with
//!   INSTALL_TOOLS=difit (difit from the npm registry by the image's own npm command).
//!   code-server's installer is not reachable here: a stand-in /usr/bin/code-server
//!   (node, serving HTTP on its --bind-addr) is added in a layer on top.
//! - Compose: the shipped compose file, copied unchanged beside a fresh git repository
//!   owned by another UID than the developer's (its bind mount), plus an override that
//!   sets only the image, the host network (every request stays on 127.0.0.1), no
//!   published ports and the passwords. CGROUP_MODE=private where the daemon supports
//!   it (cgroup v2, Docker 28+), else host.
//!
//! The container shares the host's network: ports 4035, 4966 and 8035-8036 must be free
//! (the nextest profile runs this test alone: `threads-required`).

mod common;

use std::path::{Path, PathBuf};
use std::process::{Child, Command, Output, Stdio};
use std::time::{Duration, Instant};

use common::{project_root, wait_until};
use serde_json::{Value, json};

/// Debian's docker.io client: the same version as its daemon.
const DOCKER: &str = "/usr/bin/docker";
const DEFAULT_SOCKET: &str = "/var/run/docker.sock";
const OWN_ROOT: &str = "/var/lib/unitdeck-test/docker";
const OWN_RUN: &str = "/run/unitdeck-test";
const UNITDECK_PASSWORD: &str = "devcontainer-test-pw";
const REPO_UID: u32 = 4242;
const PORTS: [u16; 4] = [4035, 4966, 8035, 8036];

fn text(out: &Output) -> String {
    format!(
        "{}{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    )
}

/// A Docker daemon to talk to; stops the one it started when dropped.
struct Docker {
    host: String,
    own: Option<Child>,
}

impl Docker {
    fn get() -> Self {
        assert!(
            Path::new(DOCKER).exists(),
            "{DOCKER} is missing: install Debian's docker.io (scripts/test does: apt-get install docker.io)"
        );
        let host = format!("unix://{DEFAULT_SOCKET}");
        if Path::new(DEFAULT_SOCKET).exists() && answers(&host) {
            eprintln!("devcontainer: using the Docker daemon at {DEFAULT_SOCKET}");
            return Self { host, own: None };
        }
        std::fs::create_dir_all(OWN_ROOT).unwrap();
        std::fs::create_dir_all(OWN_RUN).unwrap();
        let host = format!("unix://{OWN_RUN}/docker.sock");
        let log = std::fs::File::create(format!("{OWN_RUN}/dockerd.log")).unwrap();
        let child = Command::new("dockerd")
            .args([
                &format!("--data-root={OWN_ROOT}"),
                &format!("--exec-root={OWN_RUN}/exec"),
                &format!("--pidfile={OWN_RUN}/dockerd.pid"),
                &format!("--host={host}"),
                "--bridge=none",
                "--iptables=false",
                "--ip6tables=false",
            ])
            .stdin(Stdio::null())
            .stdout(log.try_clone().unwrap())
            .stderr(log)
            .spawn()
            .unwrap_or_else(|e| {
                panic!("no Docker daemon answers at {DEFAULT_SOCKET} and dockerd cannot start: {e} (apt-get install docker.io)")
            });
        let docker = Self {
            host: host.clone(),
            own: Some(child),
        };
        let deadline = Instant::now() + Duration::from_secs(60);
        while !answers(&host) {
            assert!(
                Instant::now() < deadline,
                "dockerd did not answer within 60 s:\n{}",
                std::fs::read_to_string(format!("{OWN_RUN}/dockerd.log")).unwrap_or_default()
            );
            std::thread::sleep(Duration::from_millis(200));
        }
        eprintln!("devcontainer: started dockerd (data root {OWN_ROOT})");
        docker
    }

    fn cmd(&self) -> Command {
        let mut cmd = Command::new(DOCKER);
        cmd.env("DOCKER_HOST", &self.host)
            .env("DOCKER_BUILDKIT", "1")
            .stdin(Stdio::null());
        cmd
    }

    fn run(&self, args: &[&str]) -> Output {
        self.cmd().args(args).output().expect("docker runs")
    }

    fn ok(&self, args: &[&str]) -> String {
        let out = self.run(args);
        assert!(
            out.status.success(),
            "docker {args:?} failed:\n{}",
            text(&out)
        );
        String::from_utf8_lossy(&out.stdout).trim().to_string()
    }
}

impl Drop for Docker {
    fn drop(&mut self) {
        if let Some(child) = &mut self.own {
            unsafe { libc::kill(child.id() as i32, libc::SIGTERM) };
            let deadline = Instant::now() + Duration::from_secs(30);
            while Instant::now() < deadline {
                if let Ok(Some(_)) = child.try_wait() {
                    return;
                }
                std::thread::sleep(Duration::from_millis(100));
            }
            let _ = child.kill();
            let _ = child.wait();
        }
    }
}

fn answers(host: &str) -> bool {
    Command::new(DOCKER)
        .args(["version", "--format", "{{.Server.Version}}"])
        .env("DOCKER_HOST", host)
        .stdin(Stdio::null())
        .stderr(Stdio::null())
        .output()
        .is_ok_and(|o| o.status.success())
}

/// `debian:12`, made without a registry when the daemon does not have it.
fn base_image(docker: &Docker) {
    if docker
        .run(&["image", "inspect", "debian:12"])
        .status
        .success()
    {
        return;
    }
    let started = Instant::now();
    let root = PathBuf::from(env!("CARGO_TARGET_TMPDIR")).join("debian-12-rootfs");
    let _ = std::fs::remove_dir_all(&root);
    let out = Command::new("debootstrap")
        .args(["--variant=minbase", "bookworm"])
        .arg(&root)
        .output()
        .expect("debootstrap runs (apt-get install debootstrap)");
    assert!(out.status.success(), "debootstrap:\n{}", text(&out));
    // What the registry's image leaves out too: downloaded packages and lists.
    for dir in ["var/cache/apt/archives", "var/lib/apt/lists"] {
        let _ = Command::new("find")
            .arg(root.join(dir))
            .args(["-type", "f", "-delete"])
            .status();
    }
    let mut tar = Command::new("tar")
        .arg("-C")
        .arg(&root)
        .args(["-c", "."])
        .stdout(Stdio::piped())
        .spawn()
        .unwrap();
    let out = docker
        .cmd()
        .args(["import", "--change", "CMD [\"bash\"]", "-", "debian:12"])
        .stdin(tar.stdout.take().unwrap())
        .output()
        .unwrap();
    assert!(tar.wait().unwrap().success(), "tar of the debootstrap root");
    assert!(out.status.success(), "docker import:\n{}", text(&out));
    let _ = std::fs::remove_dir_all(&root);
    eprintln!(
        "devcontainer: made debian:12 with debootstrap in {:?}",
        started.elapsed()
    );
}

/// /usr/bin/code-server in the image: its installer is not reachable from here.
const CODE_SERVER_STAND_IN: &str = r#"#!/bin/sh
# Stand-in for code-server (tests/devcontainer.rs): serves HTTP on --bind-addr like the
# real one, and refuses to start without the password the entrypoint passes on.
set -eu
[ "$1" = --bind-addr ] && [ "$3" = --auth ] && [ "$4" = password ] || { echo "unexpected arguments: $*" >&2; exit 2; }
[ -n "${PASSWORD:-}" ] || { echo "no PASSWORD" >&2; exit 2; }
exec node -e 'const [h, p] = process.argv[1].split(":"); require("http").createServer((q, s) => s.end("code-server stand-in\n")).listen(+p, h)' "$2"
"#;

/// The build context and compose project: deploy/ and what the Dockerfile copies, as a
/// git repository owned by another UID than the developer's.
fn project(dir: &Path) {
    let _ = std::fs::remove_dir_all(dir);
    let root = project_root();
    std::fs::create_dir_all(dir.join("docs")).unwrap();
    let copy = |from: &str, to: &str| {
        let out = Command::new("cp")
            .args(["-r", "--"])
            .arg(root.join(from))
            .arg(dir.join(to))
            .output()
            .unwrap();
        assert!(out.status.success(), "cp {from}: {}", text(&out));
    };
    copy("deploy", "deploy");
    copy("docs/onboarding-systemd.md", "docs/");
    copy(".dockerignore", ".dockerignore");
    let prebuilt = dir.join("deploy/prebuilt");
    let _ = std::fs::remove_dir_all(&prebuilt);
    std::fs::create_dir_all(&prebuilt).unwrap();
    std::fs::copy(env!("CARGO_BIN_EXE_unitdeck"), prebuilt.join("unitdeck")).unwrap();
    std::fs::create_dir_all(dir.join("standin")).unwrap();
    std::fs::write(dir.join("standin/code-server"), CODE_SERVER_STAND_IN).unwrap();
    std::fs::set_permissions(
        dir.join("standin/code-server"),
        std::os::unix::fs::PermissionsExt::from_mode(0o755),
    )
    .unwrap();
    // difit shows HEAD against HEAD^: two commits.
    let git = |args: &[&str]| {
        let out = Command::new("git")
            .args(["-c", "user.name=test", "-c", "user.email=test@localhost"])
            .args(args)
            .current_dir(dir)
            .output()
            .unwrap();
        assert!(out.status.success(), "git {args:?}: {}", text(&out));
    };
    git(&["init", "-q"]);
    git(&["add", "deploy", "docs"]);
    git(&["commit", "-qm", "the dev container"]);
    std::fs::write(dir.join("README"), "a second commit for difit\n").unwrap();
    git(&["add", "README"]);
    git(&["commit", "-qm", "readme"]);
    let out = Command::new("chown")
        .args(["-R", &format!("{REPO_UID}:{REPO_UID}")])
        .arg(dir)
        .output()
        .unwrap();
    assert!(out.status.success());
}

struct Compose<'a> {
    docker: &'a Docker,
    dir: PathBuf,
    name: String,
    cgroup_mode: &'static str,
}

impl Compose<'_> {
    fn cmd(&self, args: &[&str]) -> Command {
        let mut cmd = self.docker.cmd();
        cmd.arg("compose")
            .args(["-p", &self.name])
            .arg("-f")
            .arg(self.dir.join("deploy/docker-compose.yml"))
            .arg("-f")
            .arg(self.dir.join("override.yml"))
            .args(args)
            .env("CGROUP_MODE", self.cgroup_mode);
        cmd
    }

    fn ok(&self, args: &[&str]) -> String {
        let out = self.cmd(args).output().expect("docker compose runs");
        assert!(
            out.status.success(),
            "docker compose {args:?} failed:\n{}",
            text(&out)
        );
        String::from_utf8_lossy(&out.stdout).trim().to_string()
    }

    fn container(&self) -> String {
        self.ok(&["ps", "-q", "devcontainer"])
    }

    fn exec(&self, args: &[&str]) -> Output {
        let container = self.container();
        self.docker
            .cmd()
            .args(["exec", &container])
            .args(args)
            .output()
            .unwrap()
    }

    fn sh(&self, script: &str) -> String {
        let out = self.exec(&["sh", "-c", script]);
        assert!(out.status.success(), "`{script}` failed:\n{}", text(&out));
        String::from_utf8_lossy(&out.stdout).trim().to_string()
    }

    fn show(&self, unit: &str, property: &str) -> String {
        self.sh(&format!("systemctl show -P {property} {unit}"))
    }

    /// Until the boot transaction is over; what systemd then says. Right after `up`
    /// systemd may not answer on its bus yet (systemctl prints nothing).
    fn booted(&self) -> String {
        wait_until(
            "systemd answers in the container",
            Duration::from_secs(60),
            || {
                let out = self.exec(&["timeout", "60", "systemctl", "is-system-running", "--wait"]);
                let state = String::from_utf8_lossy(&out.stdout).trim().to_string();
                (!state.is_empty()).then_some(state)
            },
        )
    }
}

impl Drop for Compose<'_> {
    fn drop(&mut self) {
        let _ = self.cmd(&["down", "--volumes", "--timeout", "30"]).output();
    }
}

async fn http_status(client: &reqwest::Client, url: &str) -> Option<u16> {
    client
        .get(url)
        .send()
        .await
        .ok()
        .map(|r| r.status().as_u16())
}

/// A client that keeps unitdeck's session cookie.
fn new_client() -> reqwest::Client {
    reqwest::Client::builder()
        .cookie_store(true)
        .timeout(Duration::from_secs(30))
        .build()
        .unwrap()
}

async fn get_json(client: &reqwest::Client, url: &str) -> Value {
    let res = client.get(url).send().await.unwrap();
    assert_eq!(res.status(), 200, "GET {url}");
    res.json().await.unwrap()
}

fn port_free(port: u16) -> bool {
    std::net::TcpListener::bind(("127.0.0.1", port)).is_ok()
        && std::net::TcpListener::bind(("0.0.0.0", port)).is_ok()
}

#[tokio::test(flavor = "multi_thread")]
async fn the_dev_container_boots_in_docker_and_keeps_its_units_across_a_recreate() {
    let started = Instant::now();
    for port in PORTS {
        assert!(
            port_free(port),
            "port {port} is taken on this machine: the container shares the host's network"
        );
    }
    let docker = Docker::get();
    let engine = docker.ok(&["version", "--format", "{{.Server.Version}}"]);
    let compose_version = docker.ok(&["compose", "version", "--short"]);
    let info = docker.ok(&["info", "--format", "{{.CgroupVersion}}"]);
    let major: u32 = engine
        .split('.')
        .next()
        .and_then(|m| m.parse().ok())
        .unwrap_or(0);
    let cgroup_mode = if info == "2" && major >= 28 {
        "private"
    } else {
        "host"
    };
    eprintln!(
        "devcontainer: Docker Engine {engine}, Compose {compose_version}, cgroup v{info}: CGROUP_MODE={cgroup_mode}"
    );
    base_image(&docker);

    // --- the image ----------------------------------------------------------------------
    let dir = PathBuf::from(env!("CARGO_TARGET_TMPDIR"))
        .join(format!("devcontainer-{}", std::process::id()));
    project(&dir);
    let tag = format!("unitdeck-devcontainer:test-{}", std::process::id());
    let build_started = Instant::now();
    let context = dir.to_string_lossy().into_owned();
    let mut build: Vec<&str> = vec![
        "build",
        "--network=host",
        "-f",
        "deploy/Dockerfile",
        "--build-arg",
        "INSTALL_TOOLS=difit",
        "--build-arg",
        "UNITDECK_BUILD=prebuilt",
        "-t",
        &tag,
    ];
    // This machine reaches the npm registry through a TLS-inspecting proxy whose CA only
    // the host's bundle has: the Dockerfile's documented build secret.
    let bundle = "id=build-ca,src=/etc/ssl/certs/ca-certificates.crt";
    if Path::new("/etc/ssl/certs/ca-certificates.crt").exists() {
        build.extend(["--secret", bundle]);
    }
    build.push(&context);
    docker.ok(&build);
    let build_time = build_started.elapsed();
    let image_size: u64 = docker
        .ok(&["image", "inspect", "--format", "{{.Size}}", &tag])
        .parse()
        .unwrap();
    std::fs::write(
        dir.join("standin/Dockerfile"),
        format!("FROM {tag}\nCOPY code-server /usr/bin/code-server\n"),
    )
    .unwrap();
    let image = format!("{tag}-standin");
    docker.ok(&[
        "build",
        "-t",
        &image,
        &dir.join("standin").to_string_lossy(),
    ]);
    eprintln!(
        "devcontainer: built {tag} ({} MB) in {build_time:?}; build stage: prebuilt \
         (deploy/prebuilt/unitdeck = this test's debug build); code-server: stand-in",
        image_size / 1_000_000
    );

    std::fs::write(
        dir.join("override.yml"),
        format!(
            "services:\n  devcontainer:\n    image: {image}\n    network_mode: host\n    \
             ports: !reset []\n    environment:\n      UNITDECK_PASSWORD: {UNITDECK_PASSWORD}\n      \
             UNITDECK_ALLOWED_HOSTS: devbox.test\n      \
             CODE_SERVER_PASSWORD: code-server-test-pw\n"
        ),
    )
    .unwrap();
    let compose = Compose {
        docker: &docker,
        dir: dir.clone(),
        name: format!("udtest-{}", std::process::id()),
        cgroup_mode,
    };

    // --- boot ---------------------------------------------------------------------------
    compose.ok(&["up", "-d", "--no-build"]);
    assert_eq!(compose.booted(), "running", "systemctl is-system-running");
    let failed = compose.sh("systemctl list-units --failed --no-legend --plain");
    assert!(failed.is_empty(), "failed units: {failed}");
    let boot = compose.sh("systemd-analyze");
    // The boot order: the entrypoint exits before the others start.
    let ep_exit: u64 = compose
        .show(
            "docker-entrypoint.service",
            "ExecMainExitTimestampMonotonic",
        )
        .parse()
        .unwrap();
    for unit in ["code-server.service", "difit.service", "unitdeck.service"] {
        assert_eq!(compose.show(unit, "ActiveState"), "active", "{unit}");
        let start: u64 = compose
            .show(unit, "ExecMainStartTimestampMonotonic")
            .parse()
            .unwrap();
        assert!(
            start >= ep_exit,
            "{unit} started at {start} before the entrypoint exited at {ep_exit}"
        );
    }
    let memory: u64 = compose
        .show("unitdeck.service", "MemoryCurrent")
        .parse()
        .unwrap_or(0);

    // --- unitdeck, code-server, difit -----------------------------------------------------
    let client = new_client();
    let base = "http://127.0.0.1:8035";
    let login = |client: &reqwest::Client| {
        let client = client.clone();
        async move {
            client
                .post(format!("{base}/api/v1/session"))
                .json(&json!({"password": UNITDECK_PASSWORD}))
                .send()
                .await
                .map(|r| r.status().as_u16())
                .ok()
        }
    };
    assert_eq!(login(&client).await, Some(200), "unitdeck login");
    // The host names unitdeck answers to reach it through the entrypoint: a listed one
    // works, a foreign one (DNS rebinding) gets 421.
    for (host, status) in [("devbox.test:8035", 200), ("evil.example:8035", 421)] {
        let res = client
            .get(format!("{base}/healthz"))
            .header("host", host)
            .send()
            .await
            .unwrap();
        assert_eq!(res.status().as_u16(), status, "Host: {host}");
    }
    assert_eq!(
        http_status(&client, "http://127.0.0.1:4035/").await,
        Some(200),
        "code-server (stand-in)"
    );
    assert_eq!(
        http_status(&client, "http://127.0.0.1:4966/").await,
        Some(200),
        "difit"
    );
    // A browser tab: the heartbeat stream opens and closes; difit exits and comes back.
    {
        let mut heartbeat = client
            .get("http://127.0.0.1:4966/api/heartbeat")
            .send()
            .await
            .unwrap();
        let first = heartbeat.chunk().await.unwrap().unwrap_or_default();
        assert!(
            String::from_utf8_lossy(&first).contains("connected"),
            "{first:?}"
        );
    }
    let closed = Instant::now();
    wait_until("difit exits after its tab", Duration::from_secs(10), || {
        (compose.show("difit.service", "NRestarts") != "0").then_some(())
    });
    // Back on its port (RestartSec=1, then node's start-up; slower on a busy machine).
    let deadline = closed + Duration::from_secs(20);
    while http_status(&client, "http://127.0.0.1:4966/").await != Some(200) {
        assert!(
            Instant::now() < deadline,
            "difit does not answer 20 s after its heartbeat stream closed"
        );
        tokio::time::sleep(Duration::from_millis(250)).await;
    }
    eprintln!(
        "difit answers again {:?} after its tab closed",
        closed.elapsed()
    );

    // git on the bind-mounted repository of another UID, as the developer.
    let owner = compose.sh("stat -c %u /home/dev/unitdeck");
    assert_eq!(owner, REPO_UID.to_string());
    let out = compose.exec(&[
        "runuser",
        "-u",
        "dev",
        "--",
        "git",
        "-C",
        "/home/dev/unitdeck",
        "status",
        "--short",
    ]);
    assert!(out.status.success(), "git status as dev: {}", text(&out));

    // --- an app server and a job, through unitdeck's API ------------------------------------
    let app = json!({"name": "shop-api", "kind": "service", "user": "dev",
        "exec_start": ["/usr/bin/node", "-e",
            "require('http').createServer((q, s) => s.end('shop-api\\n')).listen(8036, '127.0.0.1')"],
        "port": 8036, "enable": true, "start": true});
    let job = json!({"name": "nightly", "kind": "job", "exec_start": ["/bin/true"],
        "schedule": "*-*-* 03:00:00", "enable": true, "start": true});
    for spec in [&app, &job] {
        let res = client
            .post(format!("{base}/api/v1/unit-files"))
            .json(spec)
            .send()
            .await
            .unwrap();
        assert_eq!(
            res.status(),
            201,
            "{}",
            res.text().await.unwrap_or_default()
        );
    }
    let serves = async |client: &reqwest::Client| {
        let deadline = Instant::now() + Duration::from_secs(15);
        loop {
            if let Ok(r) = client.get("http://127.0.0.1:8036/").send().await
                && r.text().await.unwrap_or_default() == "shop-api\n"
            {
                return true;
            }
            if Instant::now() > deadline {
                return false;
            }
            tokio::time::sleep(Duration::from_millis(200)).await;
        }
    };
    assert!(serves(&client).await, "the app server answers on 8036");
    let next = compose.show("nightly.timer", "NextElapseUSecRealtime");
    assert!(
        !next.is_empty() && next != "n/a",
        "the job's next run: {next:?}"
    );
    let audit_url = format!("{base}/api/v1/audit?limit=200");
    let audit_before = get_json(&client, &audit_url).await;

    // --- docker compose stop: systemd shuts down in order, well within the grace period ---
    let container = compose.container();
    let stopping = Instant::now();
    compose.ok(&["stop"]);
    let stop_time = stopping.elapsed();
    assert!(
        stop_time < Duration::from_secs(30),
        "docker compose stop took {stop_time:?} (grace period 2 min)"
    );
    let exit = docker.ok(&["inspect", "--format", "{{.State.ExitCode}}", &container]);
    assert_eq!(exit, "0", "systemd's exit status after docker compose stop");

    // --- recreate: the app server, the job, their history and the audit log come back -------
    compose.ok(&["up", "-d", "--no-build", "--force-recreate"]);
    let recreated = compose.container();
    assert_ne!(recreated, container, "a new container");
    assert_eq!(compose.booted(), "running", "after the recreate");
    let client = new_client();
    wait_until("unitdeck answers again", Duration::from_secs(30), || {
        compose
            .sh("systemctl is-active unitdeck.service || true")
            .eq("active")
            .then_some(())
    });
    let mut logged_in = None;
    for _ in 0..50 {
        logged_in = login(&client).await;
        if logged_in == Some(200) {
            break;
        }
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
    assert_eq!(logged_in, Some(200), "unitdeck login after the recreate");
    assert!(serves(&client).await, "the app server answers again");
    let restores = {
        let deadline = Instant::now() + Duration::from_secs(30);
        loop {
            let audit = get_json(&client, &audit_url).await;
            let restores: Vec<Value> = audit
                .as_array()
                .unwrap()
                .iter()
                .filter(|r| r["action"] == "unitfile.restore" && r["result"] != "pending")
                .cloned()
                .collect();
            if restores.len() == 2 || Instant::now() > deadline {
                // Everything recorded before the recreate is still there.
                for old in audit_before.as_array().unwrap() {
                    assert!(
                        audit
                            .as_array()
                            .unwrap()
                            .iter()
                            .any(|r| r["id"] == old["id"]),
                        "audit record kept: {old}"
                    );
                }
                break restores;
            }
            tokio::time::sleep(Duration::from_millis(200)).await;
        }
    };
    assert_eq!(restores.len(), 2, "{restores:?}");
    assert!(restores.iter().all(|r| r["result"] == "ok"), "{restores:?}");
    assert_eq!(compose.show("shop-api.service", "UnitFileState"), "enabled");
    assert_eq!(compose.show("nightly.timer", "UnitFileState"), "enabled");
    assert_eq!(compose.show("nightly.timer", "ActiveState"), "active");
    let next = compose.show("nightly.timer", "NextElapseUSecRealtime");
    assert!(
        !next.is_empty() && next != "n/a",
        "the job's next run: {next:?}"
    );
    let files = get_json(&client, &format!("{base}/api/v1/unit-files/shop-api")).await;
    assert_eq!(
        files["revisions"].as_array().map(Vec::len),
        Some(1),
        "{files}"
    );
    let failed = compose.sh("systemctl list-units --failed --no-legend --plain");
    assert!(
        failed.is_empty(),
        "failed units after the recreate: {failed}"
    );

    // --- systemctl poweroff inside: the container stops and stays stopped -----------------
    let _ = compose.exec(&["systemctl", "poweroff"]);
    wait_until("the container powered off", Duration::from_secs(60), || {
        (docker.ok(&["inspect", "--format", "{{.State.Status}}", &recreated]) == "exited")
            .then_some(())
    });
    std::thread::sleep(Duration::from_secs(3));
    let state = docker.ok(&[
        "inspect",
        "--format",
        "{{.State.Status}} {{.State.ExitCode}} {{.RestartCount}}",
        &recreated,
    ]);
    assert_eq!(
        state, "exited 0 0",
        "status, exit code, restarts after poweroff"
    );

    eprintln!(
        "devcontainer: Docker Engine {engine}, Compose {compose_version}; image {} MB \
         (build {build_time:?}); {boot}; unitdeck MemoryCurrent {:.1} MiB; compose stop \
         {stop_time:?}; total {:?}",
        image_size / 1_000_000,
        memory as f64 / 1_048_576.0,
        started.elapsed()
    );
    drop(compose);
    let _ = docker.run(&["rmi", &image, &tag]);
    let _ = std::fs::remove_dir_all(&dir);
}
