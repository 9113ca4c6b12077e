//! The dev container's units, booted by a real systemd (issue 7, item 4).
//!
//! A systemd-nspawn container (the harness of tests/common) boots with everything that
//! deploy/Dockerfile puts into the image, installed the same way and unchanged:
//!
//! - deploy/systemd/{docker-entrypoint,code-server,difit,unitdeck}.service, copied
//!   verbatim into /etc/systemd/system, the account drop-ins the Dockerfile writes
//!   (`User=dev`, `Group=dev`) and `systemctl enable` of all four (offline, as in
//!   `docker build`);
//! - deploy/journald/unitdeck-devcontainer.conf in /etc/systemd/journald.conf.d/;
//! - deploy/docker-entrypoint.sh at /usr/local/bin/docker-entrypoint.sh and the test
//!   build of unitdeck at /usr/local/bin/unitdeck (bind mounts onto a read-only overlay
//!   of the host's /usr, which the container cannot write);
//! - stand-ins for code-server (/usr/bin/code-server) and difit (/usr/local/bin/difit),
//!   which are not installed here: shell scripts that log their start time on
//!   CLOCK_MONOTONIC and serve HTTP on the port they are given, so the units'
//!   `ConditionFileIsExecutable=` holds and they run for real;
//! - the developer account `dev` (a sysusers.d entry: it exists before
//!   docker-entrypoint.service, which is ordered after systemd-sysusers.service),
//!   /etc/default/devcontainer, the repository bind-mounted at ~/$REPO_NAME, a
//!   root-owned `repos` volume and a bind-mounted Docker socket of an unknown group,
//!   as docker-compose.yml does (for the entrypoint to fix);
//! - compose's `environment:` (CODE_SERVER_PASSWORD, UNITDECK_PASSWORD, REPO_NAME) as
//!   PID 1's environment, and a private network namespace (Docker's): the units keep
//!   their fixed ports 4035, 4966 and 8035 and no test drop-in changes them.
//!
//! The boot transaction itself starts the units (nothing is started by hand). The test
//! then proves the start order, Restart=always, that unitdeck lists all four, and that
//! the journald drop-in is in effect. Two more tests run deploy/verify-units.sh
//! (`systemd-analyze verify` of every shipped unit), unprivileged and without network,
//! and check that it fails on a broken unit.

mod common;

use std::fs;
use std::path::{Path, PathBuf};
use std::process::{Command, Output};
use std::time::{Duration, Instant};

use common::{Sandbox, project_root, wait_until};

const UNITS: [&str; 4] = [
    "docker-entrypoint.service",
    "code-server.service",
    "difit.service",
    "unitdeck.service",
];
/// Passed as the container's environment; the quotes, `$`, backslash and backquote
/// must survive docker-entrypoint.sh's EnvironmentFile quoting unchanged.
const CODE_SERVER_PASSWORD: &str = r#"cs "pw" $HOME \z `t` 'q'"#;
const UNITDECK_PASSWORD: &str = r#"ud-pw $USER "q" \b"#;
const REPO_NAME: &str = "workspace";
const DEV_UID: u32 = 1000;
/// The group of the bind-mounted Docker socket.
const DOCKER_GID: u32 = 4242;
const UNITDECK_URL: &str = "http://127.0.0.1:8035";

/// /usr/bin/code-server in the container.
const CODE_SERVER_STAND_IN: &str = r#"#!/bin/sh
# Stand-in for code-server (tests/deploy_boot.rs): logs when (CLOCK_MONOTONIC in us, the
# clock of systemd's *TimestampMonotonic properties) and how it was started, then
# serves HTTP on the --bind-addr address like the real one.
set -eu
now=$(python3 -c 'import time; print(time.clock_gettime_ns(time.CLOCK_MONOTONIC) // 1000)')
printf 'stand-in code-server: start_monotonic_us=%s user=%s groups=%s cwd=%s args=%s\n' \
    "$now" "$(id -un)" "$(id -Gn | tr ' ' ,)" "$PWD" "$*"
printf 'stand-in code-server: PASSWORD=[%s]\n' "${PASSWORD-<unset>}"
if [ "$#" -ne 4 ] || [ "$1" != --bind-addr ] || [ "$3" != --auth ] || [ "$4" != password ]; then
    echo "stand-in code-server: unexpected arguments: $*" >&2
    exit 2
fi
exec python3 -m http.server --bind "${2%:*}" "${2##*:}"
"#;

/// /usr/local/bin/difit in the container (run by the unit through script(1)).
const DIFIT_STAND_IN: &str = r#"#!/bin/sh
# Stand-in for difit (tests/deploy_boot.rs): logs when and how it was started (and
# whether stdin is a terminal, which the real difit needs), then serves HTTP on
# --host/--port like the real one.
set -eu
now=$(python3 -c 'import time; print(time.clock_gettime_ns(time.CLOCK_MONOTONIC) // 1000)')
tty=no
if [ -t 0 ]; then tty=yes; fi
printf 'stand-in difit: start_monotonic_us=%s user=%s cwd=%s stdin_tty=%s args=%s\n' \
    "$now" "$(id -un)" "$PWD" "$tty" "$*"
host= port=
while [ "$#" -gt 0 ]; do
    case $1 in
        --host) host=$2; shift 2 ;;
        --port) port=$2; shift 2 ;;
        --no-open) shift ;;
        *) echo "stand-in difit: unexpected argument $1" >&2; exit 2 ;;
    esac
done
exec python3 -m http.server --bind "$host" "$port"
"#;

/// The files of the container that live on the host: stand-ins, the unit directory,
/// the account, the bind-mounted repository. Removed on drop.
struct Fixture {
    dir: PathBuf,
}

impl Fixture {
    fn create() -> Self {
        let dir = Path::new(env!("CARGO_TARGET_TMPDIR"))
            .join(format!("deploy-boot-{}", std::process::id()));
        let _ = fs::remove_dir_all(&dir);
        let fixture = Self { dir };
        let deploy = project_root().join("deploy");
        // The container runs the host's /usr: the stand-ins need python3, difit.service
        // runs script(1) (and git, which `git init` below needs on the host too).
        for tool in ["/usr/bin/python3", "/usr/bin/script"] {
            assert!(
                Path::new(tool).exists(),
                "{tool} is missing (apt-get install python3 util-linux)"
            );
        }

        // An overlay on /usr: the stand-ins, and empty files where unitdeck and the
        // entrypoint script are bind-mounted (a bind mount needs an existing target).
        fixture.file("usr/bin/code-server", CODE_SERVER_STAND_IN, 0o755);
        fixture.file("usr/local/bin/difit", DIFIT_STAND_IN, 0o755);
        fixture.file("usr/local/bin/unitdeck", "", 0o755);
        fixture.file("usr/local/bin/docker-entrypoint.sh", "", 0o755);

        // /etc/systemd/system as deploy/Dockerfile leaves it: the units verbatim, the
        // account drop-ins (the Dockerfile's printf with UNAME=dev, GNAME=dev), and
        // `systemctl enable`.
        for unit in UNITS {
            let unit_text = fs::read_to_string(deploy.join("systemd").join(unit)).unwrap();
            fixture.file(
                &format!("root/etc/systemd/system/{unit}"),
                &unit_text,
                0o644,
            );
        }
        for unit in ["code-server", "difit"] {
            fixture.file(
                &format!("root/etc/systemd/system/{unit}.service.d/10-account.conf"),
                "[Service]\nUser=dev\nGroup=dev\n",
                0o644,
            );
        }
        let out = Command::new("systemctl")
            .arg(format!("--root={}", fixture.path("root").display()))
            .arg("enable")
            .args(UNITS)
            .output()
            .expect("systemctl runs");
        assert!(out.status.success(), "systemctl enable: {}", text(&out));

        // The developer account (Dockerfile: useradd dev 1000:1000, usermod -aG
        // systemd-journal) and /etc/default/devcontainer.
        fixture.file(
            "sysusers.conf",
            &format!("u dev {DEV_UID} \"Developer\" /home/dev /bin/bash\nm dev systemd-journal\n"),
            0o644,
        );
        fixture.file("devcontainer", "DEV_USER=dev\n", 0o644);

        // The repository (a git work tree owned by the developer, as with compose's
        // bind mount of a checkout of the host user) and an empty, root-owned `repos`
        // volume for the entrypoint to chown.
        fs::create_dir_all(fixture.path("repos")).unwrap();

        // The host's Docker socket, bind-mounted (compose's commented-out volume): a
        // socket of a GID the container does not know, for the entrypoint to turn into
        // a group of the developer. The host's own docker.socket unit (the container
        // boots the host's /usr) is masked so that it cannot take the path.
        let socket = fixture.path("docker.sock");
        drop(std::os::unix::net::UnixListener::bind(&socket).unwrap());
        std::os::unix::fs::chown(&socket, None, Some(DOCKER_GID)).unwrap();
        std::os::unix::fs::symlink(
            "/dev/null",
            fixture.path("root/etc/systemd/system/docker.socket"),
        )
        .unwrap();
        let workspace = fixture.path("workspace");
        fs::create_dir_all(&workspace).unwrap();
        run_ok(Command::new("git").args(["init", "-q"]).arg(&workspace));
        run_ok(
            Command::new("chown")
                .args(["-R", &format!("{DEV_UID}:{DEV_UID}")])
                .arg(&workspace),
        );
        fixture
    }

    fn path(&self, rel: &str) -> PathBuf {
        self.dir.join(rel)
    }

    fn file(&self, rel: &str, contents: &str, mode: u32) {
        use std::os::unix::fs::PermissionsExt;
        let path = self.path(rel);
        fs::create_dir_all(path.parent().unwrap()).unwrap();
        fs::write(&path, contents).unwrap();
        fs::set_permissions(&path, fs::Permissions::from_mode(mode)).unwrap();
    }

    /// The systemd-nspawn options that put it all in place at boot.
    fn nspawn_args(&self) -> Vec<String> {
        let deploy = project_root().join("deploy");
        let p = |rel: &str| self.path(rel).display().to_string();
        let d = |rel: &str| deploy.join(rel).display().to_string();
        vec![
            // Overrides the harness's --console=passive: nothing reads a passive
            // console, and once its pty buffer is full PID 1 blocks writing status
            // lines to it. This container's boot and shutdown print enough for that
            // (measured: PID 1 stuck in n_tty_write after "Reached target final.target",
            // the container never powered off). read-only forwards the console to
            // nspawn's stdout, /dev/null.
            "--console=read-only".into(),
            "--private-network".into(),
            format!("--setenv=CODE_SERVER_PASSWORD={CODE_SERVER_PASSWORD}"),
            format!("--setenv=UNITDECK_PASSWORD={UNITDECK_PASSWORD}"),
            format!("--setenv=REPO_NAME={REPO_NAME}"),
            format!("--overlay-ro=/usr:{}:/usr", p("usr")),
            format!(
                "--bind-ro={}:/usr/local/bin/unitdeck",
                env!("CARGO_BIN_EXE_unitdeck")
            ),
            format!(
                "--bind-ro={}:/usr/local/bin/docker-entrypoint.sh",
                d("docker-entrypoint.sh")
            ),
            format!(
                "--bind={}:/etc/systemd/system",
                p("root/etc/systemd/system")
            ),
            format!(
                "--bind-ro={}:/etc/systemd/journald.conf.d/unitdeck-devcontainer.conf",
                d("journald/unitdeck-devcontainer.conf")
            ),
            format!(
                "--bind-ro={}:/etc/sysusers.d/devcontainer.conf",
                p("sysusers.conf")
            ),
            format!("--bind-ro={}:/etc/default/devcontainer", p("devcontainer")),
            format!("--bind={}:/home/dev/{REPO_NAME}", p("workspace")),
            format!("--bind={}:/home/dev/repos", p("repos")),
            format!("--bind={}:/run/docker.sock", p("docker.sock")),
        ]
    }
}

impl Drop for Fixture {
    fn drop(&mut self) {
        let _ = fs::remove_dir_all(&self.dir);
    }
}

/// The booted container; the container is powered off before the fixture is removed
/// (fields drop in declaration order).
struct Booted {
    sb: Sandbox,
    _fixture: Fixture,
}

fn text(out: &Output) -> String {
    format!(
        "{}{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    )
}

fn run_ok(cmd: &mut Command) -> String {
    let out = cmd.output().expect("command runs");
    assert!(out.status.success(), "{cmd:?} failed: {}", text(&out));
    String::from_utf8_lossy(&out.stdout).into_owned()
}

impl Booted {
    fn boot() -> Self {
        let fixture = Fixture::create();
        let sb = Sandbox::boot_with_args(&fixture.nspawn_args());
        // Until the boot transaction is done. "degraded" is fine: the host's /usr may
        // bring units of its own that fail in a container (the four are checked below).
        let out = sb.exec(&["timeout", "120", "systemctl", "is-system-running", "--wait"]);
        let state = String::from_utf8_lossy(&out.stdout).trim().to_string();
        assert!(
            state == "running" || state == "degraded",
            "boot did not finish: {state:?} {}",
            text(&out)
        );
        Self {
            sb,
            _fixture: fixture,
        }
    }

    fn show_u64(&self, unit: &str, property: &str) -> u64 {
        let v = self.sb.show(unit, property);
        v.parse()
            .unwrap_or_else(|_| panic!("{unit} {property}={v:?}"))
    }

    fn journal(&self, unit: &str) -> String {
        let out = self
            .sb
            .exec(&["journalctl", "-b", "-u", unit, "-o", "cat", "--no-pager"]);
        String::from_utf8_lossy(&out.stdout).replace('\r', "")
    }

    /// `curl` inside the container's network namespace: (HTTP status, body).
    fn curl(&self, args: &[&str]) -> (u16, String) {
        let mut argv = vec![
            "curl",
            "-sS",
            "--max-time",
            "10",
            "-b",
            "/run/deploy-boot.cookies",
            "-c",
            "/run/deploy-boot.cookies",
            "-w",
            "\n%{http_code}",
        ];
        argv.extend_from_slice(args);
        let out = self.sb.exec(&argv);
        let stdout = String::from_utf8_lossy(&out.stdout).into_owned();
        let (body, code) = stdout.rsplit_once('\n').unwrap_or(("", &stdout));
        (code.trim().parse().unwrap_or(0), body.to_string())
    }

    fn units_from_unitdeck(&self) -> serde_json::Value {
        let (status, body) = self.curl(&[&format!("{UNITDECK_URL}/api/v1/units")]);
        assert_eq!(status, 200, "GET /api/v1/units: {body}");
        serde_json::from_str(&body).unwrap()
    }

    /// Waits for ActiveState/SubState; on timeout, panics with the units' status and logs.
    fn expect_state(&self, unit: &str, active: &str, sub: &str) {
        let deadline = Instant::now() + Duration::from_secs(30);
        while self.sb.show(unit, "ActiveState") != active || self.sb.show(unit, "SubState") != sub {
            if Instant::now() > deadline {
                let out = self.sb.exec(&[
                    "sh",
                    "-c",
                    "systemctl status --no-pager docker-entrypoint.service code-server.service \
                     difit.service unitdeck.service; journalctl -b --no-pager -n 100 \
                     -u docker-entrypoint -u code-server -u difit -u unitdeck",
                ]);
                panic!("{unit} is not {active}/{sub}:\n{}", text(&out));
            }
            std::thread::sleep(Duration::from_millis(100));
        }
    }
}

/// The µs value after `key=` in the first line of `log` that has it.
fn logged_u64(log: &str, key: &str) -> Option<u64> {
    let rest = &log[log.find(key)? + key.len()..];
    rest.split(|c: char| !c.is_ascii_digit())
        .next()?
        .parse()
        .ok()
}

#[test]
fn the_dev_container_boots_its_units_in_order_and_keeps_them_running() {
    let started = Instant::now();
    let b = Booted::boot();
    let sb = &b.sb;
    let boot_time = started.elapsed();

    // --- The units are the shipped files, enabled, and nothing skipped them. -------
    for unit in UNITS {
        let installed =
            fs::read_to_string(sb.root().join("etc/systemd/system").join(unit)).unwrap();
        let shipped = fs::read_to_string(project_root().join("deploy/systemd").join(unit)).unwrap();
        assert_eq!(installed, shipped, "{unit} differs from the shipped file");
        assert_eq!(
            sb.show(unit, "FragmentPath"),
            format!("/etc/systemd/system/{unit}")
        );
        assert_eq!(sb.show(unit, "LoadState"), "loaded", "{unit}");
        assert_eq!(sb.show(unit, "UnitFileState"), "enabled", "{unit}");
        assert_eq!(sb.show(unit, "ConditionResult"), "yes", "{unit} skipped");
    }
    for unit in ["code-server.service", "difit.service"] {
        assert_eq!(
            sb.show(unit, "DropInPaths"),
            format!("/etc/systemd/system/{unit}.d/10-account.conf")
        );
    }
    assert_eq!(sb.show("unitdeck.service", "DropInPaths"), "");
    assert_eq!(sb.show("docker-entrypoint.service", "DropInPaths"), "");

    b.expect_state("docker-entrypoint.service", "active", "exited");
    b.expect_state("code-server.service", "active", "running");
    b.expect_state("difit.service", "active", "running");
    b.expect_state("unitdeck.service", "active", "running");

    // --- (1) Ordering: the oneshot entrypoint had exited before the others started. --
    let ep = "docker-entrypoint.service";
    assert_eq!(sb.show(ep, "Result"), "success");
    assert_eq!(sb.show(ep, "ExecMainStatus"), "0");
    let ep_start = b.show_u64(ep, "ExecMainStartTimestampMonotonic");
    let ep_exit = b.show_u64(ep, "ExecMainExitTimestampMonotonic");
    let ep_active = b.show_u64(ep, "ActiveEnterTimestampMonotonic");
    assert!(ep_start > 0 && ep_exit >= ep_start && ep_active >= ep_exit);
    // ... and it ran after the account existed (After=systemd-sysusers.service).
    let sysusers_done = b.show_u64("systemd-sysusers.service", "ActiveEnterTimestampMonotonic");
    assert!(
        sysusers_done > 0 && sysusers_done <= ep_start,
        "entrypoint started at {ep_start} before systemd-sysusers finished at {sysusers_done}"
    );
    let mut order = vec![format!(
        "sysusers done {sysusers_done}, entrypoint {ep_start}..{ep_exit} (active {ep_active})"
    )];
    for unit in ["code-server.service", "difit.service", "unitdeck.service"] {
        let start = b.show_u64(unit, "ExecMainStartTimestampMonotonic");
        assert!(
            start >= ep_exit && start >= ep_active,
            "{unit} started at {start}, before docker-entrypoint.service exited at {ep_exit}"
        );
        order.push(format!("{unit} +{}us", start - ep_exit));
    }
    // The stand-ins' own clocks agree: their processes began after the entrypoint exited.
    let cs_log = wait_until(
        "code-server stand-in logged",
        Duration::from_secs(10),
        || {
            let log = b.journal("code-server.service");
            log.contains("PASSWORD=[").then_some(log)
        },
    );
    let difit_log = wait_until("difit stand-in logged", Duration::from_secs(10), || {
        let log = b.journal("difit.service");
        log.contains("stand-in difit: start_monotonic_us=")
            .then_some(log)
    });
    let cs_began = logged_u64(&cs_log, "stand-in code-server: start_monotonic_us=").unwrap();
    let difit_began = logged_u64(&difit_log, "stand-in difit: start_monotonic_us=").unwrap();
    assert!(
        cs_began > ep_exit,
        "code-server ran at {cs_began} <= {ep_exit}"
    );
    assert!(
        difit_began > ep_exit,
        "difit ran at {difit_began} <= {ep_exit}"
    );

    // The entrypoint did its job before they started: the password reached code-server
    // through /etc/code-server/env (EnvironmentFile= is read at start), REPO_NAME
    // reached difit through /etc/default/difit, the home and the volume were chowned.
    assert!(
        cs_log.contains(&format!("PASSWORD=[{CODE_SERVER_PASSWORD}]")),
        "code-server did not get CODE_SERVER_PASSWORD unchanged:\n{cs_log}"
    );
    assert!(
        cs_log.contains(
            "user=dev groups=dev,systemd-journal,docker-host cwd=/home/dev \
             args=--bind-addr 0.0.0.0:4035 --auth password"
        ),
        "{cs_log}"
    );
    assert!(
        difit_log.contains(&format!(
            "user=dev cwd=/home/dev/{REPO_NAME} stdin_tty=yes args=--host 0.0.0.0 --port 4966 --no-open"
        )),
        "{difit_log}"
    );
    let ep_log = b.journal(ep);
    for line in [
        "docker-entrypoint: wrote /etc/code-server/env",
        "docker-entrypoint: wrote /etc/unitdeck/env",
        "docker-entrypoint: wrote /etc/default/difit",
        "docker-entrypoint: chown 1000:1000 /home/dev (was 0:0)",
        "docker-entrypoint: chown 1000:1000 /home/dev/repos (was 0:0)",
        "docker-entrypoint: created group docker-host with GID 4242 (the GID of /var/run/docker.sock)",
        "docker-entrypoint: added dev to group docker-host for /var/run/docker.sock",
        "docker-entrypoint: done",
    ] {
        assert!(ep_log.contains(line), "missing {line:?} in:\n{ep_log}");
    }
    assert!(!ep_log.contains("warning"), "{ep_log}");
    assert_eq!(
        sb.sh("stat -c '%a %U' /etc/code-server/env /etc/unitdeck/env /etc/default/difit"),
        "600 root\n600 root\n600 root\n"
    );

    // The services answer on their ports (inside the container's network namespace).
    for port in [4035, 4966] {
        let (status, _) = b.curl(&[&format!("http://127.0.0.1:{port}/")]);
        assert_eq!(status, 200, "port {port}");
    }

    // --- (3) unitdeck, logged in with the password the entrypoint passed on, lists
    // all four with their states. ---------------------------------------------------
    wait_until("unitdeck /healthz", Duration::from_secs(30), || {
        (b.curl(&[&format!("{UNITDECK_URL}/healthz")]).0 == 200).then_some(())
    });
    let login = serde_json::json!({ "password": UNITDECK_PASSWORD }).to_string();
    let (status, body) = b.curl(&[
        "-H",
        "content-type: application/json",
        "--data-binary",
        &login,
        &format!("{UNITDECK_URL}/api/v1/session"),
    ]);
    assert_eq!(status, 200, "login with UNITDECK_PASSWORD: {body}");
    let cs_pid = b.show_u64("code-server.service", "MainPID");
    let listed = b.units_from_unitdeck();
    let find = |units: &serde_json::Value, name: &str| {
        units
            .as_array()
            .unwrap()
            .iter()
            .find(|u| u["name"] == name)
            .unwrap_or_else(|| panic!("{name} not listed by unitdeck"))
            .clone()
    };
    for (unit, active, sub) in [
        ("docker-entrypoint.service", "active", "exited"),
        ("code-server.service", "active", "running"),
        ("difit.service", "active", "running"),
        ("unitdeck.service", "active", "running"),
    ] {
        let u = find(&listed, unit);
        assert_eq!(u["load_state"], "loaded", "{u}");
        assert_eq!(u["active_state"], active, "{u}");
        assert_eq!(u["sub_state"], sub, "{u}");
        assert_eq!(u["unit_file_state"], "enabled", "{u}");
    }
    assert_eq!(find(&listed, "code-server.service")["main_pid"], cs_pid);

    // --- (2) Restart=always: SIGKILL code-server's main process; it comes back. -----
    assert_eq!(sb.show("code-server.service", "NRestarts"), "0");
    let killed_at = Instant::now();
    sb.sh(&format!("kill -KILL {cs_pid}"));
    let new_pid = wait_until("code-server restarted", Duration::from_secs(30), || {
        let pid = b.show_u64("code-server.service", "MainPID");
        (sb.show("code-server.service", "NRestarts") == "1"
            && sb.show("code-server.service", "SubState") == "running"
            && pid != 0
            && pid != cs_pid)
            .then_some(pid)
    });
    let restart_time = killed_at.elapsed();
    assert!(
        restart_time >= Duration::from_millis(1500),
        "RestartSec=2 not honoured: back after {restart_time:?}"
    );
    assert!(
        b.journal("code-server.service")
            .contains("Main process exited, code=killed, status=9/KILL")
    );
    wait_until("code-server serves again", Duration::from_secs(10), || {
        (b.curl(&["http://127.0.0.1:4035/"]).0 == 200).then_some(())
    });
    // The entrypoint (RemainAfterExit=yes) did not run again for the restart.
    assert_eq!(b.show_u64(ep, "ExecMainStartTimestampMonotonic"), ep_start);
    assert_eq!(b.journal(ep).matches("docker-entrypoint: done").count(), 1);
    // unitdeck follows: the new main PID and one restart.
    wait_until("unitdeck sees the restart", Duration::from_secs(10), || {
        let u = find(&b.units_from_unitdeck(), "code-server.service");
        (u["main_pid"] == new_pid && u["n_restarts"] == 1 && u["sub_state"] == "running")
            .then_some(())
    });

    // --- (2b) difit exits cleanly whenever its browser tab goes (status 0): it is
    // restarted anyway (Restart=always; a SIGTERM is such a clean end for systemd too).
    // A taken port is refused (exit 78, not restarted), never swapped for another one.
    let difit_pid = b.show_u64("difit.service", "MainPID");
    sb.sh("systemctl kill --signal=SIGTERM difit.service");
    wait_until(
        "difit restarted after a clean exit",
        Duration::from_secs(15),
        || {
            let pid = b.show_u64("difit.service", "MainPID");
            (sb.show("difit.service", "NRestarts") == "1" && pid != 0 && pid != difit_pid)
                .then_some(())
        },
    );
    wait_until("difit serves again", Duration::from_secs(10), || {
        (b.curl(&["http://127.0.0.1:4966/"]).0 == 200).then_some(())
    });
    sb.sh("systemctl stop difit.service && \
         systemd-run --unit=squatter python3 -m http.server --bind 127.0.0.1 4966 && \
         for i in $(seq 300); do ss -Hltn 'sport = :4966' | grep -q . && break; sleep 0.1; done; \
         ss -Hltn 'sport = :4966' | grep -q . && systemctl start difit.service");
    wait_until(
        "difit refuses the taken port",
        Duration::from_secs(10),
        || (sb.show("difit.service", "ActiveState") == "failed").then_some(()),
    );
    assert_eq!(sb.show("difit.service", "ExecMainStatus"), "78");
    // RestartSec=1: a restart would have come by now.
    std::thread::sleep(Duration::from_secs(2));
    assert_eq!(sb.show("difit.service", "ActiveState"), "failed");
    assert_eq!(sb.show("difit.service", "NRestarts"), "0");
    assert!(
        b.journal("difit.service")
            .contains("difit: port 4966 is taken"),
        "{}",
        b.journal("difit.service")
    );
    sb.sh("systemctl stop squatter.service && systemctl start difit.service");
    assert_eq!(sb.show("difit.service", "ActiveState"), "active");

    // --- (5) The journald drop-in is in effect. ---------------------------------------
    let config = sb.sh("systemd-analyze cat-config systemd/journald.conf");
    assert!(
        config.contains("# /etc/systemd/journald.conf.d/unitdeck-devcontainer.conf")
            && config.contains("SystemMaxUse=500M"),
        "{config}"
    );
    // Storage=persistent: journald created /var/log/journal (nothing else does here).
    sb.sh("test -f /var/log/journal/$(cat /etc/machine-id)/system.journal");
    // SystemMaxUse=500M: journald's own report of the system journal's limit.
    let journald = wait_until(
        "journald reports the system journal",
        Duration::from_secs(10),
        || {
            let out = sb.exec(&["journalctl", "-b", "-t", "systemd-journald", "-o", "cat"]);
            String::from_utf8_lossy(&out.stdout)
                .lines()
                .find(|l| l.starts_with("System Journal (/var/log/journal/"))
                .map(str::to_string)
        },
    );
    assert!(journald.contains(", max 500.0M,"), "{journald}");

    println!(
        "deploy boot: booted in {boot_time:?}; order: {}; code-server back after \
         {restart_time:?} (pid {cs_pid} -> {new_pid}); {journald}; total {:?}",
        order.join(", "),
        started.elapsed()
    );
}

fn verify_units(script: &Path) -> Output {
    let mut cmd = if unsafe { libc::geteuid() } == 0 {
        // As root: drop to nobody in a network namespace of its own, to prove the
        // script needs neither root nor the network.
        let mut cmd = Command::new("unshare");
        cmd.args([
            "--net",
            "--",
            "setpriv",
            "--reuid=65534",
            "--regid=65534",
            "--clear-groups",
            "--",
        ])
        .arg(script);
        cmd
    } else {
        Command::new(script)
    };
    cmd.env("TMPDIR", "/tmp")
        .output()
        .expect("verify-units.sh runs")
}

#[test]
fn verify_units_passes_without_root_or_network() {
    let out = verify_units(&project_root().join("deploy/verify-units.sh"));
    let output = text(&out);
    assert!(
        out.status.success(),
        "deploy/verify-units.sh failed:\n{output}"
    );
    assert!(output.contains("verify-units: OK"), "{output}");
    for unit in UNITS {
        assert!(
            output.lines().next().unwrap().contains(unit),
            "{unit} not verified: {output}"
        );
    }
    println!("{output}");
}

#[test]
fn verify_units_fails_on_a_broken_unit() {
    let dir = Path::new(env!("CARGO_TARGET_TMPDIR"))
        .join(format!("verify-units-broken-{}", std::process::id()));
    let _ = fs::remove_dir_all(&dir);
    fs::create_dir_all(dir.join("systemd")).unwrap();
    let deploy = project_root().join("deploy");
    fs::copy(deploy.join("verify-units.sh"), dir.join("verify-units.sh")).unwrap();
    for unit in UNITS {
        let mut unit_text = fs::read_to_string(deploy.join("systemd").join(unit)).unwrap();
        if unit == "code-server.service" {
            unit_text = unit_text.replace("Restart=always", "Restart=sometimes");
        }
        fs::write(dir.join("systemd").join(unit), unit_text).unwrap();
    }
    let out = Command::new(dir.join("verify-units.sh"))
        .env("TMPDIR", "/tmp")
        .output()
        .unwrap();
    let _ = fs::remove_dir_all(&dir);
    let output = text(&out);
    assert!(!out.status.success(), "a broken unit passed:\n{output}");
    assert!(
        output.contains("code-server.service") && output.contains("verify-units: FAILED"),
        "{output}"
    );
}
