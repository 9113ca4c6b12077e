//! nginx (Debian's) in front of a sandbox's unitdeck, set up the way code-server's port
//! proxy is: `/proxy/PORT/` strips its prefix, `/absproxy/PORT/` keeps it (unitdeck then
//! runs with `UNITDECK_BASE_PATH`). The browser's `Host` goes through unchanged, as
//! code-server passes it, and nothing is buffered (live streams). Every request is logged:
//! `outside_the_prefix` lists those for any other path, which nginx answers with 404.

use std::os::unix::process::CommandExt;
use std::path::PathBuf;
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

/// How a proxy puts unitdeck under a path.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Prefix {
    /// code-server's `/proxy/PORT/`: unitdeck sees `/`.
    Stripped,
    /// code-server's `/absproxy/PORT/`: unitdeck sees the whole path.
    Kept,
}

impl Prefix {
    /// The prefix, without the trailing slash: code-server names unitdeck's port, 8035,
    /// whichever port the test's unitdeck has.
    pub fn path(self) -> &'static str {
        match self {
            Prefix::Stripped => "/proxy/8035",
            Prefix::Kept => "/absproxy/8035",
        }
    }
}

pub struct Proxy {
    /// nginx's port on 127.0.0.1.
    pub port: u16,
    dir: PathBuf,
    nginx: Child,
}

impl Proxy {
    /// nginx on a free loopback port, in front of unitdeck on `upstream` (127.0.0.1).
    pub fn start(upstream: u16) -> Self {
        let port = super::free_port();
        let dir =
            std::env::temp_dir().join(format!("unitdeck-nginx-{}-{port}", std::process::id()));
        let _ = std::fs::remove_dir_all(&dir);
        std::fs::create_dir_all(&dir).expect("a directory for nginx");
        let d = dir.display();
        let stripped = Prefix::Stripped.path();
        let kept = Prefix::Kept.path();
        let config = format!(
            r#"daemon off;
master_process off;
worker_processes 1;
pid {d}/nginx.pid;
error_log {d}/error.log warn;
events {{ worker_connections 256; }}
http {{
    log_format path '$request_uri $status';
    access_log {d}/access.log path;
    client_body_temp_path {d}/body;
    proxy_temp_path {d}/proxy;
    fastcgi_temp_path {d}/fastcgi;
    uwsgi_temp_path {d}/uwsgi;
    scgi_temp_path {d}/scgi;
    proxy_http_version 1.1;
    proxy_set_header Host $http_host;
    proxy_set_header Connection "";
    proxy_buffering off;
    proxy_read_timeout 1h;
    server {{
        listen 127.0.0.1:{port};
        location {stripped}/ {{ proxy_pass http://127.0.0.1:{upstream}/; }}
        location {kept}/ {{ proxy_pass http://127.0.0.1:{upstream}; }}
        location / {{ return 404; }}
    }}
}}
"#
        );
        let conf = dir.join("nginx.conf");
        std::fs::write(&conf, config).expect("nginx.conf");
        let mut cmd = Command::new("/usr/sbin/nginx");
        cmd.args(["-e", &format!("{d}/error.log"), "-c"])
            .arg(&conf)
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(Stdio::null());
        unsafe {
            cmd.pre_exec(|| {
                libc::prctl(libc::PR_SET_PDEATHSIG, libc::SIGKILL);
                Ok(())
            });
        }
        let nginx = cmd
            .spawn()
            .expect("nginx runs (apt-get install nginx-light)");
        let deadline = Instant::now() + Duration::from_secs(10);
        while std::net::TcpStream::connect(("127.0.0.1", port)).is_err() {
            assert!(
                Instant::now() < deadline,
                "nginx did not listen: {}",
                std::fs::read_to_string(dir.join("error.log")).unwrap_or_default()
            );
            std::thread::sleep(Duration::from_millis(50));
        }
        Self { port, dir, nginx }
    }

    /// unitdeck's root through this proxy under `prefix` (no trailing slash).
    pub fn url(&self, prefix: Prefix) -> String {
        format!("http://127.0.0.1:{}{}", self.port, prefix.path())
    }

    /// Every request so far, as `URI STATUS`.
    pub fn requests(&self) -> Vec<String> {
        std::fs::read_to_string(self.dir.join("access.log"))
            .unwrap_or_default()
            .lines()
            .map(String::from)
            .collect()
    }

    /// The requests for a path outside `prefix`.
    pub fn outside_the_prefix(&self, prefix: Prefix) -> Vec<String> {
        let inside = format!("{}/", prefix.path());
        self.requests()
            .into_iter()
            .filter(|r| !r.starts_with(&inside))
            .collect()
    }
}

impl Drop for Proxy {
    fn drop(&mut self) {
        let _ = self.nginx.kill();
        let _ = self.nginx.wait();
        let _ = std::fs::remove_dir_all(&self.dir);
    }
}
