//! A throwaway real systemd for integration tests: `systemd-nspawn` boots the
//! host's own /usr in a volatile container, unitdeck is installed in it with the
//! project's `deploy/systemd/unitdeck.service` plus a test drop-in, and the tests
//! drive it over HTTP on the shared loopback. The container is powered off when
//! the `Sandbox` is dropped, and gets SIGTERM (an orderly shutdown) if the test
//! process dies first.

#![allow(dead_code)]

pub mod browser;
pub mod memory;
pub mod proxy;
pub mod receiver;
pub mod sse;

use serde_json::{Value, json};
use std::collections::BTreeMap;
use std::net::TcpListener;
use std::os::unix::process::CommandExt;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Output, Stdio};
use std::sync::atomic::{AtomicU32, Ordering};
use std::time::{Duration, Instant};

/// Services installed on the host's /usr that have no business in a test container.
const HOST_SERVICES: &[&str] = &[
    "postgresql.service",
    "docker.service",
    "docker.socket",
    "containerd.service",
    "avahi-daemon.service",
    "avahi-daemon.socket",
    "upower.service",
    "nginx.service",
];

pub const PASSWORD: &str = "test-password-1";
const BOOT_TIMEOUT: Duration = Duration::from_secs(60);

pub struct Sandbox {
    nspawn: Child,
    /// The extra `systemd-nspawn` options it was booted with (a reboot boots it again
    /// with them).
    extra: Vec<String>,
    /// unitdeck's extra settings, when it was installed.
    env: Option<Vec<(String, String)>>,
    /// The container's PID 1, as seen from the host.
    pub pid: u32,
    pub machine: String,
    /// unitdeck's port on 127.0.0.1.
    pub port: u16,
    /// `https` once unitdeck was installed with TLS.
    pub scheme: &'static str,
    /// `UNITDECK_BASE_PATH` as installed (empty: none); part of `base_url`.
    pub base_path: String,
    /// A free port the test may give to an app unit.
    pub spare_ports: Vec<u16>,
    /// Booted with a network namespace of its own (`--private-network`): the host
    /// cannot reach its 127.0.0.1.
    pub own_network: bool,
}

pub fn free_port() -> u16 {
    TcpListener::bind("127.0.0.1:0")
        .and_then(|l| l.local_addr())
        .map(|a| a.port())
        .expect("a free port")
}

pub fn project_root() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR"))
}

impl Sandbox {
    /// Boots a container with unitdeck running in it.
    pub fn start() -> Self {
        Self::start_with(&[])
    }

    /// Boots a container; `env` adds `Environment=` settings for unitdeck.
    pub fn start_with(env: &[(&str, &str)]) -> Self {
        Self::start_in(&[], env)
    }

    /// Boots a container with more `systemd-nspawn` options (`extra`, as for
    /// [`Sandbox::boot_with_args`]) and unitdeck running in it with `env`.
    pub fn start_in(extra: &[String], env: &[(&str, &str)]) -> Self {
        let mut sandbox = Self::boot_with_args(extra);
        sandbox.install_unitdeck(env);
        sandbox
    }

    /// Reboots the container (`systemctl reboot` inside) and boots it again with the
    /// same options, unitdeck installed again if it was: systemd-nspawn exits with status
    /// 133 on a reboot (what `systemd-nspawn@.service` restarts on) and does not boot
    /// again by itself. Everything outside bound host directories is new (`--volatile`),
    /// and so are the machine's name and unitdeck's port.
    pub fn reboot(&mut self) {
        let _ = self.exec(&["systemctl", "reboot", "--no-block"]);
        let deadline = Instant::now() + BOOT_TIMEOUT;
        let status = loop {
            if let Ok(Some(status)) = self.nspawn.try_wait() {
                break status;
            }
            assert!(Instant::now() < deadline, "the container did not reboot");
            std::thread::sleep(Duration::from_millis(50));
        };
        assert_eq!(
            status.code(),
            Some(133),
            "systemd-nspawn's status on a reboot"
        );
        let mut next = Self::boot_with_args(&self.extra);
        if let Some(env) = self.env.take() {
            let env: Vec<(&str, &str)> =
                env.iter().map(|(k, v)| (k.as_str(), v.as_str())).collect();
            next.install_unitdeck(&env);
        }
        // The old value's Drop finds its nspawn gone and returns at once.
        *self = next;
    }

    /// Boots a container without unitdeck.
    pub fn boot() -> Self {
        Self::boot_with_args(&[])
    }

    /// Boots a container without unitdeck; `extra` are more `systemd-nspawn` options
    /// (`--bind-ro=`, `--overlay-ro=`, `--setenv=`, `--private-network`, ...).
    pub fn boot_with_args(extra: &[String]) -> Self {
        // A boot is not what is tested (unitdeck is not there yet). One in some hundreds
        // of boots under a full suite's load never got dbus up within a minute: say what
        // systemd was doing, and boot once more.
        match Self::try_boot(extra) {
            Ok(sandbox) => sandbox,
            Err(why) => {
                eprintln!("container boot failed, booting again: {why}");
                Self::try_boot(extra).unwrap_or_else(|why| panic!("{why}"))
            }
        }
    }

    fn try_boot(extra: &[String]) -> Result<Self, String> {
        static COUNTER: AtomicU32 = AtomicU32::new(0);
        let machine = format!(
            "ud-test-{}-{}",
            std::process::id(),
            COUNTER.fetch_add(1, Ordering::Relaxed)
        );
        let binary = env!("CARGO_BIN_EXE_unitdeck");
        let mut cmd = Command::new("systemd-nspawn");
        cmd.args([
            "--directory=/",
            "--volatile=yes",
            &format!("--machine={machine}"),
            "--register=no",
            "--keep-unit",
            // read-only: the console output goes to our /dev/null. With "passive"
            // nobody reads it, and systemd blocks once its buffer is full.
            "--console=read-only",
            &format!("--bind-ro={binary}:/opt/unitdeck/unitdeck"),
        ])
        .args(extra)
        .args([
            "--boot",
            "systemd.firstboot=off",
            "systemd.mask=systemd-networkd-wait-online.service",
            "systemd.mask=console-getty.service",
        ])
        // The host's own services would start in every test container: keep boots
        // quick and the system state "running".
        .args(HOST_SERVICES.iter().map(|u| format!("systemd.mask={u}")))
        .stdin(Stdio::null())
        .stdout(Stdio::null())
        .stderr(Stdio::null());
        // If the test process dies, nspawn gets SIGTERM and shuts the container down.
        unsafe {
            cmd.pre_exec(|| {
                libc::prctl(libc::PR_SET_PDEATHSIG, libc::SIGTERM);
                Ok(())
            });
        }
        let nspawn = cmd
            .spawn()
            .expect("systemd-nspawn runs (apt-get install systemd-container)");
        let nspawn_pid = nspawn.id();
        let mut sandbox = Self {
            nspawn,
            extra: extra.to_vec(),
            env: None,
            pid: 0,
            machine,
            port: free_port(),
            scheme: "http",
            base_path: String::new(),
            spare_ports: (0..3).map(|_| free_port()).collect(),
            own_network: extra
                .iter()
                .any(|a| a == "--private-network" || a.starts_with("--network-")),
        };
        let deadline = Instant::now() + BOOT_TIMEOUT;
        sandbox.pid = loop {
            if let Some(pid) = find_container_init(nspawn_pid) {
                break pid;
            }
            if Instant::now() >= deadline {
                let _ = sandbox.nspawn.kill();
                return Err("container init did not appear".into());
            }
            std::thread::sleep(Duration::from_millis(50));
        };
        loop {
            let out = sandbox.exec(&["systemctl", "is-active", "dbus.service"]);
            if String::from_utf8_lossy(&out.stdout).trim() == "active" {
                break;
            }
            if Instant::now() >= deadline {
                let state = sandbox.exec(&[
                    "sh",
                    "-c",
                    "systemctl is-system-running; systemctl list-jobs --no-pager | head -20; \
                     systemctl status --no-pager dbus.socket dbus.service | head -30; \
                     journalctl -b --no-pager -n 40",
                ]);
                return Err(format!(
                    "dbus did not start in the container\n{}{}",
                    String::from_utf8_lossy(&state.stdout),
                    String::from_utf8_lossy(&state.stderr)
                ));
            }
            std::thread::sleep(Duration::from_millis(100));
        }
        Ok(sandbox)
    }

    /// The container's root as a host path.
    pub fn root(&self) -> PathBuf {
        PathBuf::from(format!("/proc/{}/root", self.pid))
    }

    /// The host's pid of the container's process `inner`.
    pub fn host_pid(&self, inner: u32) -> u32 {
        let ns = std::fs::read_link(format!("/proc/{}/ns/pid", self.pid)).unwrap();
        std::fs::read_dir("/proc")
            .unwrap()
            .filter_map(|e| e.ok()?.file_name().to_str()?.parse::<u32>().ok())
            .find(|pid| {
                std::fs::read_link(format!("/proc/{pid}/ns/pid")).is_ok_and(|n| n == ns)
                    && std::fs::read_to_string(format!("/proc/{pid}/status")).is_ok_and(|s| {
                        s.lines()
                            .find_map(|l| l.strip_prefix("NSpid:"))
                            .and_then(|ids| ids.split_whitespace().last())
                            == Some(inner.to_string().as_str())
                    })
            })
            .unwrap_or_else(|| panic!("no host pid for the container's pid {inner}"))
    }

    /// Runs a command inside the container.
    pub fn exec(&self, args: &[&str]) -> Output {
        Command::new("nsenter")
            .args(["-t", &self.pid.to_string(), "-a"])
            .args(args)
            .stdin(Stdio::null())
            .output()
            .expect("nsenter runs")
    }

    /// Runs a shell script inside; panics with its output when it fails.
    pub fn sh(&self, script: &str) -> String {
        let out = self.exec(&["/bin/sh", "-c", script]);
        if !out.status.success() {
            // What systemd said meanwhile: a failed start names its reason only there.
            let journal = self.exec(&["journalctl", "-n", "25", "--no-pager"]);
            panic!(
                "`{script}` failed: {}{}\n--- the journal's last lines ---\n{}",
                String::from_utf8_lossy(&out.stdout),
                String::from_utf8_lossy(&out.stderr),
                String::from_utf8_lossy(&journal.stdout)
            );
        }
        String::from_utf8_lossy(&out.stdout).into_owned()
    }

    /// `systemctl show -P <property> <unit>` inside.
    pub fn show(&self, unit: &str, property: &str) -> String {
        let out = self.exec(&["systemctl", "show", "-P", property, unit]);
        String::from_utf8_lossy(&out.stdout).trim().to_string()
    }

    /// Writes a file inside the container (parents created).
    pub fn write(&self, path: &str, contents: &str) {
        let host = self.root().join(path.trim_start_matches('/'));
        std::fs::create_dir_all(host.parent().unwrap()).unwrap();
        std::fs::write(&host, contents).unwrap();
    }

    /// Every entry under the container's unit directory (/etc/systemd/system): path →
    /// kind, mode and contents (files), target (symlinks), or mode (directories).
    pub fn unit_dir_snapshot(&self) -> BTreeMap<String, Vec<u8>> {
        fn walk(root: &Path, dir: &Path, out: &mut BTreeMap<String, Vec<u8>>) {
            let mut entries: Vec<_> = std::fs::read_dir(dir)
                .unwrap()
                .map(|e| e.unwrap())
                .collect();
            entries.sort_by_key(|e| e.file_name());
            for e in entries {
                let path = e.path();
                let rel = path
                    .strip_prefix(root)
                    .unwrap()
                    .to_string_lossy()
                    .into_owned();
                let meta = std::fs::symlink_metadata(&path).unwrap();
                let mode = {
                    use std::os::unix::fs::PermissionsExt;
                    meta.permissions().mode()
                };
                if meta.file_type().is_symlink() {
                    let target = std::fs::read_link(&path).unwrap();
                    out.insert(
                        rel,
                        format!("link {mode:o} -> {}", target.display()).into_bytes(),
                    );
                } else if meta.is_dir() {
                    out.insert(rel, format!("dir {mode:o}").into_bytes());
                    walk(root, &path, out);
                } else {
                    let mut bytes = format!("file {mode:o}\n").into_bytes();
                    bytes.extend(std::fs::read(&path).unwrap());
                    out.insert(rel, bytes);
                }
            }
        }
        let root = self.root().join("etc/systemd/system");
        let mut out = BTreeMap::new();
        walk(&root, &root, &mut out);
        out
    }

    /// The environment of the unit's running main process. A unit between its stop and
    /// its start (a restart in progress) has no main process, or one that is exiting: it
    /// is read again until one runs.
    pub fn process_environment(&self, unit: &str) -> Vec<String> {
        let raw = wait_until(
            &format!("a main process of {unit}"),
            Duration::from_secs(15),
            || {
                let pid = self.show(unit, "MainPID");
                if pid.is_empty() || pid == "0" {
                    return None;
                }
                std::fs::read(format!("/proc/{}/root/proc/{pid}/environ", self.pid))
                    .ok()
                    .or_else(|| {
                        let out = self.exec(&["cat", &format!("/proc/{pid}/environ")]);
                        out.status.success().then_some(out.stdout)
                    })
                    .filter(|raw| !raw.is_empty())
            },
        );
        raw.split(|b| *b == 0)
            .filter(|s| !s.is_empty())
            .map(|s| String::from_utf8_lossy(s).into_owned())
            .collect()
    }

    /// Installs a unit file and reloads systemd.
    pub fn add_unit(&self, name: &str, text: &str) {
        self.write(&format!("/etc/systemd/system/{name}"), text);
        self.sh("systemctl daemon-reload");
    }

    fn install_unitdeck(&mut self, env: &[(&str, &str)]) {
        self.env = Some(
            env.iter()
                .map(|(k, v)| (k.to_string(), v.to_string()))
                .collect(),
        );
        if env.iter().any(|(k, v)| {
            (*k == "UNITDECK_TLS" && *v == "self-signed") || *k == "UNITDECK_TLS_CERT"
        }) {
            self.scheme = "https";
        }
        let unit = std::fs::read_to_string(project_root().join("deploy/systemd/unitdeck.service"))
            .expect("deploy/systemd/unitdeck.service");
        self.write("/etc/systemd/system/unitdeck.service", &unit);
        let mut dropin =
            String::from("[Service]\nExecStart=\nExecStart=/opt/unitdeck/unitdeck serve\n");
        let ports = self
            .spare_ports
            .iter()
            .map(u16::to_string)
            .collect::<Vec<_>>()
            .join(",");
        let mut settings = vec![
            (
                "UNITDECK_LISTEN".to_string(),
                format!("127.0.0.1:{}", self.port),
            ),
            ("UNITDECK_PASSWORD".to_string(), PASSWORD.to_string()),
            (
                "UNITDECK_PORTS".to_string(),
                format!("{},{ports}", self.port),
            ),
            ("RUST_LOG".to_string(), "unitdeck=debug".to_string()),
        ];
        for (k, v) in env {
            if *k == "UNITDECK_BASE_PATH" {
                self.base_path = v.trim_end_matches('/').to_string();
            }
            settings.retain(|(key, _)| key != k);
            settings.push((k.to_string(), v.to_string()));
        }
        for (k, v) in settings {
            dropin.push_str(&format!("Environment=\"{k}={v}\"\n"));
        }
        self.write("/etc/systemd/system/unitdeck.service.d/test.conf", &dropin);
        self.sh("systemctl daemon-reload && systemctl start unitdeck.service");
        self.wait_healthy();
    }

    /// unitdeck's root: its address and base path.
    pub fn base_url(&self) -> String {
        format!(
            "{}://127.0.0.1:{}{}",
            self.scheme, self.port, self.base_path
        )
    }

    /// The certificate unitdeck made for itself (`UNITDECK_TLS=self-signed`), PEM.
    pub fn self_signed_certificate(&self) -> Vec<u8> {
        std::fs::read(self.root().join("var/lib/unitdeck/tls/self-signed.pem"))
            .expect("unitdeck made its certificate")
    }

    /// A client for this sandbox: over HTTPS it trusts unitdeck's own certificate, and
    /// nothing else.
    fn client(&self) -> reqwest::Client {
        self.client_from(None)
    }

    /// Like `client`, with connections from `from` (another loopback address: another
    /// client, as far as unitdeck can tell).
    fn client_from(&self, from: Option<std::net::IpAddr>) -> reqwest::Client {
        let mut builder = reqwest::Client::builder()
            .local_address(from)
            .cookie_store(true)
            .redirect(reqwest::redirect::Policy::none())
            .timeout(Duration::from_secs(60));
        if self.scheme == "https" {
            let cert = reqwest::Certificate::from_pem(&self.self_signed_certificate()).unwrap();
            builder = builder
                .add_root_certificate(cert)
                .tls_built_in_root_certs(false)
                .tls_info(true);
        }
        builder.build().unwrap()
    }

    /// Waits until `/healthz` answers 200 (unitdeck up and connected to systemd).
    pub fn wait_healthy(&self) {
        let deadline = Instant::now() + Duration::from_secs(30);
        let url = format!("{}/healthz", self.base_url());
        // -k: this only waits for it; the tests check the certificate themselves.
        let curl = [
            "curl",
            "-s",
            "-k",
            "-o",
            "/dev/null",
            "-w",
            "%{http_code}",
            &url,
        ];
        loop {
            // A container with its own network is reached from inside only.
            let out = if self.own_network {
                Ok(self.exec(&curl))
            } else {
                Command::new(curl[0]).args(&curl[1..]).output()
            };
            let ok = out.map(|o| o.stdout == b"200").unwrap_or(false);
            if ok {
                return;
            }
            if Instant::now() > deadline {
                let log = self.exec(&[
                    "journalctl",
                    "-u",
                    "unitdeck.service",
                    "--no-pager",
                    "-n",
                    "50",
                ]);
                panic!(
                    "unitdeck did not become healthy:\n{}",
                    String::from_utf8_lossy(&log.stdout)
                );
            }
            std::thread::sleep(Duration::from_millis(50));
        }
    }

    /// A client without credentials.
    pub fn anonymous(&self) -> Api {
        Api::with_client(self.base_url(), None, self.client())
    }

    /// A client logged in with the password (cookie session).
    pub async fn login(&self) -> Api {
        Self::logged_in(self.anonymous()).await
    }

    /// A client logged in with the password from another loopback address (another
    /// client, as far as unitdeck can tell).
    pub async fn login_from(&self, from: std::net::Ipv4Addr) -> Api {
        let api = Api::with_client(self.base_url(), None, self.client_from(Some(from.into())));
        Self::logged_in(api).await
    }

    async fn logged_in(api: Api) -> Api {
        let res = api
            .post_json("/api/v1/session", &json!({ "password": PASSWORD }))
            .await;
        assert_eq!(res.status(), 200, "login failed");
        api
    }

    /// A client using a bearer token.
    pub fn with_token(&self, token: &str) -> Api {
        Api::with_client(self.base_url(), Some(token.to_string()), self.client())
    }
}

impl Drop for Sandbox {
    fn drop(&mut self) {
        // Gone already (rebooted): its PID 1's number may belong to another process now.
        if let Ok(Some(_)) = self.nspawn.try_wait() {
            return;
        }
        let _ = Command::new("nsenter")
            .args([
                "-t",
                &self.pid.to_string(),
                "-a",
                "systemctl",
                "poweroff",
                "--no-block",
            ])
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .status();
        let deadline = Instant::now() + Duration::from_secs(15);
        while Instant::now() < deadline {
            if let Ok(Some(_)) = self.nspawn.try_wait() {
                return;
            }
            std::thread::sleep(Duration::from_millis(50));
        }
        let _ = self.nspawn.kill();
        let _ = self.nspawn.wait();
    }
}

/// The container's init: the `systemd` process among nspawn's descendants.
fn find_container_init(nspawn_pid: u32) -> Option<u32> {
    let mut frontier = vec![nspawn_pid];
    for _ in 0..3 {
        let mut next = Vec::new();
        for parent in &frontier {
            for child in children(*parent) {
                let comm =
                    std::fs::read_to_string(format!("/proc/{child}/comm")).unwrap_or_default();
                if comm.trim() == "systemd" {
                    return Some(child);
                }
                next.push(child);
            }
        }
        frontier = next;
    }
    None
}

fn children(pid: u32) -> Vec<u32> {
    let path = format!("/proc/{pid}/task/{pid}/children");
    std::fs::read_to_string(Path::new(&path))
        .unwrap_or_default()
        .split_whitespace()
        .filter_map(|s| s.parse().ok())
        .collect()
}

/// A small HTTP client for the API: keeps cookies, may carry a bearer token.
pub struct Api {
    pub base: String,
    pub client: reqwest::Client,
    token: Option<String>,
}

impl Api {
    pub fn with_client(base: String, token: Option<String>, client: reqwest::Client) -> Self {
        Self {
            base,
            client,
            token,
        }
    }

    pub fn request(&self, method: reqwest::Method, path: &str) -> reqwest::RequestBuilder {
        let mut req = self.client.request(method, format!("{}{path}", self.base));
        if let Some(token) = &self.token {
            req = req.bearer_auth(token);
        }
        req
    }

    pub async fn get(&self, path: &str) -> reqwest::Response {
        self.request(reqwest::Method::GET, path)
            .send()
            .await
            .unwrap()
    }

    pub async fn get_json(&self, path: &str) -> serde_json::Value {
        let res = self.get(path).await;
        assert_eq!(res.status(), 200, "GET {path}");
        res.json().await.unwrap()
    }

    pub async fn post_json(&self, path: &str, body: &serde_json::Value) -> reqwest::Response {
        self.request(reqwest::Method::POST, path)
            .json(body)
            .send()
            .await
            .unwrap()
    }

    pub async fn put_json(&self, path: &str, body: &serde_json::Value) -> reqwest::Response {
        self.request(reqwest::Method::PUT, path)
            .json(body)
            .send()
            .await
            .unwrap()
    }

    pub async fn post(&self, path: &str) -> reqwest::Response {
        self.request(reqwest::Method::POST, path)
            .send()
            .await
            .unwrap()
    }

    pub async fn delete(&self, path: &str) -> reqwest::Response {
        self.request(reqwest::Method::DELETE, path)
            .send()
            .await
            .unwrap()
    }
}

/// Polls `check` until it returns Some, or panics with `what` after `timeout`.
pub async fn eventually<T>(
    what: &str,
    timeout: Duration,
    mut check: impl AsyncFnMut() -> Option<T>,
) -> T {
    let deadline = Instant::now() + timeout;
    loop {
        if let Some(v) = check().await {
            return v;
        }
        assert!(Instant::now() < deadline, "timed out waiting for: {what}");
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
}

/// A command that runs until `file` is gone: for a state the test must see while it
/// lasts (a start job, a transient unit), which a fixed pause can end before a busy
/// machine looks. Create the file first; remove it to let the command end.
pub fn while_exists(file: &str) -> String {
    format!("/bin/sh -c 'while [ -e {file} ]; do sleep 0.1; done'")
}

/// Polls `check` (every 100 ms) until it returns Some, or panics with `what` after
/// `timeout`; the blocking twin of [`eventually`].
pub fn wait_until<T>(what: &str, timeout: Duration, mut check: impl FnMut() -> Option<T>) -> T {
    let deadline = Instant::now() + timeout;
    loop {
        if let Some(v) = check() {
            return v;
        }
        assert!(Instant::now() < deadline, "timed out waiting for: {what}");
        std::thread::sleep(Duration::from_millis(100));
    }
}

/// Whether a server answers `GET /` on 127.0.0.1:`port` with 200 within 2 s.
pub async fn answers(port: u16) -> bool {
    let client = reqwest::Client::builder()
        .timeout(Duration::from_secs(2))
        .build()
        .unwrap();
    matches!(client.get(format!("http://127.0.0.1:{port}/")).send().await, Ok(r) if r.status() == 200)
}

/// Percent-encodes a query value.
pub fn urlencode(s: &str) -> String {
    s.bytes()
        .map(|b| match b {
            b'A'..=b'Z' | b'a'..=b'z' | b'0'..=b'9' | b'-' | b'_' | b'.' | b'~' => {
                (b as char).to_string()
            }
            _ => format!("%{b:02X}"),
        })
        .collect()
}

/// Checks a problem+json answer with `status`; returns its body.
pub async fn problem(res: reqwest::Response, status: u16) -> Value {
    let url = res.url().path().to_string();
    assert_eq!(res.status().as_u16(), status, "{url}");
    assert_eq!(
        res.headers()["content-type"],
        "application/problem+json",
        "{url}"
    );
    let body: Value = res.json().await.unwrap();
    assert_eq!(body["status"], status, "{body}");
    assert!(body["title"].is_string() && body["type"].is_string() && body["detail"].is_string());
    body
}

/// Creates a token through the API; returns (id, secret).
pub async fn token(admin: &Api, name: &str, scope: &str) -> (i64, String) {
    let res = admin
        .post_json("/api/v1/tokens", &json!({"name": name, "scope": scope}))
        .await;
    assert_eq!(res.status(), 201, "create token {name}");
    let body: Value = res.json().await.unwrap();
    assert_eq!(body["name"], name);
    assert_eq!(body["scope"], scope);
    assert!(body["created_at"].as_str().unwrap().ends_with('Z'));
    let secret = body["token"].as_str().unwrap().to_string();
    (body["id"].as_i64().unwrap(), secret)
}

pub async fn audit(api: &Api) -> Vec<Value> {
    api.get_json("/api/v1/audit?limit=1000")
        .await
        .as_array()
        .unwrap()
        .clone()
}

/// The newest audit record matching action, target and result.
pub fn find_audit<'a>(
    records: &'a [Value],
    action: &str,
    target: Option<&str>,
    result: &str,
) -> &'a Value {
    records
        .iter()
        .find(|r| {
            r["action"] == action
                && target.is_none_or(|t| r["target"] == t)
                && r["result"] == result
        })
        .unwrap_or_else(|| panic!("no audit record {action} {target:?} {result} in {records:#?}"))
}
