//! Configuration: flags > `UNITDECK_*` environment variables > optional TOML file > defaults.
//!
//! clap resolves flag-over-variable; the TOML file only fills what neither set, so
//! the precedence in API.md ("the variable wins over the default, the flag over the
//! variable") holds for every key.

use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::time::Duration;

use clap::Args;
use serde::Deserialize;

use crate::ports::parse_port_list;

pub const DEFAULT_LISTEN: &str = "0.0.0.0:8035";
pub const DEFAULT_STATE_DIR: &str = "/var/lib/unitdeck";
pub const DEFAULT_UNIT_DIR: &str = "/etc/systemd/system";
pub const DEFAULT_PORTS: &str = "4035,8035-8038";
pub const DEFAULT_BUS: &str = "unix:path=/run/dbus/system_bus_socket";
pub const DEFAULT_SESSION_IDLE: &str = "12h";
pub const DEFAULT_RESTART_LOOP: &str = "3/10m";

/// The settings of `unitdeck serve` as given on the command line or in the environment.
#[derive(Debug, Clone, Default, Args)]
pub struct ServeArgs {
    /// Address to listen on [default: 0.0.0.0:8035]
    #[arg(long, env = "UNITDECK_LISTEN")]
    pub listen: Option<String>,
    /// SQLite database and the generated password file [default: /var/lib/unitdeck]
    #[arg(long, env = "UNITDECK_STATE_DIR")]
    pub state_dir: Option<PathBuf>,
    /// Where unit files created by unitdeck are written [default: /etc/systemd/system]
    #[arg(long, env = "UNITDECK_UNIT_DIR")]
    pub unit_dir: Option<PathBuf>,
    /// Ports shown on the ports view even when free [default: 4035,8035-8038]
    #[arg(long, env = "UNITDECK_PORTS")]
    pub ports: Option<String>,
    /// Login password in plain text (development and tests)
    #[arg(long, env = "UNITDECK_PASSWORD", hide_env_values = true)]
    pub password: Option<String>,
    /// Login password as an argon2 PHC string
    #[arg(long, env = "UNITDECK_PASSWORD_HASH", hide_env_values = true)]
    pub password_hash: Option<String>,
    /// D-Bus address of the system bus [default: unix:path=/run/dbus/system_bus_socket]
    #[arg(long, env = "UNITDECK_BUS")]
    pub bus: Option<String>,
    /// More host names (or addresses) browsers may use to reach unitdeck, comma-separated,
    /// `*.example.com` for a domain's subdomains; besides this machine's own addresses,
    /// localhost and its hostname
    #[arg(long, env = "UNITDECK_ALLOWED_HOSTS")]
    pub allowed_hosts: Option<String>,
    /// Log a session out after this long without use: seconds, or 30m, 12h, 7d [default: 12h]
    #[arg(long, env = "UNITDECK_SESSION_IDLE")]
    pub session_idle: Option<String>,
    /// Serve HTTPS with this certificate chain (PEM); needs --tls-key
    #[arg(long, env = "UNITDECK_TLS_CERT")]
    pub tls_cert: Option<PathBuf>,
    /// The private key of --tls-cert (PEM)
    #[arg(long, env = "UNITDECK_TLS_KEY")]
    pub tls_key: Option<PathBuf>,
    /// `self-signed`: serve HTTPS with a certificate made on first start in the state
    /// directory; `off` [default: off, or on when --tls-cert is given]
    #[arg(long, env = "UNITDECK_TLS")]
    pub tls: Option<String>,
    /// unitdeck's address as people reach it, for the links in notifications, e.g.
    /// https://devbox.example.com:8035 [default: this machine's hostname and port]
    #[arg(long, env = "UNITDECK_PUBLIC_URL")]
    pub public_url: Option<String>,
    /// A restart loop is this many restarts by Restart= within this long: N/DURATION
    /// [default: 3/10m]
    #[arg(long, env = "UNITDECK_RESTART_LOOP")]
    pub restart_loop: Option<String>,
    /// Serve under this path, as a reverse proxy that keeps its prefix forwards it (e.g.
    /// `/absproxy/8035` behind code-server); not needed behind one that strips it
    /// (`/proxy/8035/`), where every URL unitdeck emits is relative anyway [default: none]
    #[arg(long, env = "UNITDECK_BASE_PATH")]
    pub base_path: Option<String>,
    /// Optional TOML file with the same keys (listen, state_dir, unit_dir, ports, ...)
    #[arg(long, env = "UNITDECK_CONFIG")]
    pub config: Option<PathBuf>,
}

/// Keys of the optional TOML file: the same names as the flags.
#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
struct FileConfig {
    listen: Option<String>,
    state_dir: Option<PathBuf>,
    unit_dir: Option<PathBuf>,
    ports: Option<String>,
    password: Option<String>,
    password_hash: Option<String>,
    bus: Option<String>,
    allowed_hosts: Option<String>,
    session_idle: Option<String>,
    tls_cert: Option<PathBuf>,
    tls_key: Option<PathBuf>,
    tls: Option<String>,
    public_url: Option<String>,
    restart_loop: Option<String>,
    base_path: Option<String>,
}

/// `/absproxy/8035/` → `/absproxy/8035`; empty or `/` → empty. Plain path segments only:
/// it is written into pages and cookies.
fn parse_base_path(s: &str) -> Result<String, String> {
    let trimmed = s.trim().trim_end_matches('/');
    if trimmed.is_empty() {
        return Ok(String::new());
    }
    if !trimmed.starts_with('/') {
        return Err("must start with /".into());
    }
    for segment in trimmed[1..].split('/') {
        if segment.is_empty() || segment == "." || segment == ".." {
            return Err(format!("{segment:?} is not a path segment"));
        }
        if let Some(c) = segment
            .chars()
            .find(|c| !(c.is_ascii_alphanumeric() || "-._~".contains(*c)))
        {
            return Err(format!(
                "{c:?} is not allowed (letters, digits, - . _ ~ and /)"
            ));
        }
    }
    Ok(trimmed.to_string())
}

/// Where the login password comes from.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum PasswordSource {
    Plain(String),
    Hash(String),
    /// Generate one on first start, keep only its hash in the database.
    Generated,
}

/// How unitdeck serves HTTPS.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Tls {
    /// Plain HTTP.
    Off,
    /// A certificate chain and key the operator gave.
    Files { cert: PathBuf, key: PathBuf },
    /// A certificate unitdeck made on first start (in the state directory).
    SelfSigned,
}

#[derive(Debug, Clone)]
pub struct Config {
    pub listen: SocketAddr,
    pub state_dir: PathBuf,
    pub unit_dir: PathBuf,
    pub watched_ports: Vec<u16>,
    pub password: PasswordSource,
    pub bus_address: String,
    /// Host names besides the machine's own (`UNITDECK_ALLOWED_HOSTS`), lower case.
    pub allowed_hosts: Vec<String>,
    /// A session ends after this long without use.
    pub session_idle: Duration,
    pub tls: Tls,
    /// The path prefix every route is under: empty, or `/a/b` (no trailing slash).
    pub base_path: String,
    /// The base of links to unitdeck's pages (no trailing `/`), when set.
    pub public_url: Option<String>,
    pub restart_loop: RestartLoop,
}

/// How many restarts by Restart= within how long make a restart loop.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct RestartLoop {
    pub restarts: u32,
    pub within: Duration,
}

impl Config {
    pub fn resolve(args: ServeArgs) -> anyhow::Result<Self> {
        let file = match &args.config {
            Some(path) => read_file_config(path)?,
            None => FileConfig::default(),
        };
        let listen = args
            .listen
            .or(file.listen)
            .unwrap_or_else(|| DEFAULT_LISTEN.into());
        let listen: SocketAddr = listen
            .parse()
            .map_err(|e| anyhow::anyhow!("listen address {listen:?} is not host:port: {e}"))?;
        let ports = args
            .ports
            .or(file.ports)
            .unwrap_or_else(|| DEFAULT_PORTS.into());
        let watched_ports =
            parse_port_list(&ports).map_err(|e| anyhow::anyhow!("ports {ports:?}: {e}"))?;
        let password = match (
            args.password.or(file.password),
            args.password_hash.or(file.password_hash),
        ) {
            (Some(plain), _) if !plain.is_empty() => PasswordSource::Plain(plain),
            (_, Some(hash)) if !hash.is_empty() => PasswordSource::Hash(hash),
            _ => PasswordSource::Generated,
        };
        let allowed_hosts = parse_allowed_hosts(
            args.allowed_hosts
                .or(file.allowed_hosts)
                .as_deref()
                .unwrap_or(""),
        )?;
        let idle = args
            .session_idle
            .or(file.session_idle)
            .unwrap_or_else(|| DEFAULT_SESSION_IDLE.into());
        let session_idle =
            parse_duration(&idle).map_err(|e| anyhow::anyhow!("session idle {idle:?}: {e}"))?;
        let tls = match (
            args.tls.or(file.tls).as_deref(),
            args.tls_cert.or(file.tls_cert),
            args.tls_key.or(file.tls_key),
        ) {
            (Some("self-signed"), None, None) => Tls::SelfSigned,
            (None | Some("off"), None, None) => Tls::Off,
            (None | Some("on"), Some(cert), Some(key)) => Tls::Files { cert, key },
            (_, Some(_), None) | (_, None, Some(_)) => {
                anyhow::bail!("TLS needs both a certificate (--tls-cert) and its key (--tls-key)")
            }
            (Some(mode), None, None) => {
                anyhow::bail!(
                    "tls {mode:?}: use self-signed or off (or give --tls-cert and --tls-key)"
                )
            }
            (Some(mode), Some(_), Some(_)) => {
                anyhow::bail!("tls {mode:?} with a certificate: leave --tls unset or say on")
            }
        };
        let public_url = args
            .public_url
            .or(file.public_url)
            .filter(|u| !u.trim().is_empty())
            .map(|u| parse_public_url(&u).map_err(|e| anyhow::anyhow!("public URL {u:?}: {e}")))
            .transpose()?;
        let restart_loop = args
            .restart_loop
            .or(file.restart_loop)
            .unwrap_or_else(|| DEFAULT_RESTART_LOOP.into());
        let restart_loop = parse_restart_loop(&restart_loop)
            .map_err(|e| anyhow::anyhow!("restart loop {restart_loop:?}: {e}"))?;
        let base = args.base_path.or(file.base_path).unwrap_or_default();
        let base_path =
            parse_base_path(&base).map_err(|e| anyhow::anyhow!("base path {base:?}: {e}"))?;
        Ok(Self {
            listen,
            allowed_hosts,
            public_url,
            restart_loop,
            base_path,
            session_idle,
            tls,
            state_dir: args
                .state_dir
                .or(file.state_dir)
                .unwrap_or_else(|| DEFAULT_STATE_DIR.into()),
            unit_dir: args
                .unit_dir
                .or(file.unit_dir)
                .unwrap_or_else(|| DEFAULT_UNIT_DIR.into()),
            watched_ports,
            password,
            bus_address: args.bus.or(file.bus).unwrap_or_else(|| DEFAULT_BUS.into()),
        })
    }

    pub fn database_path(&self) -> PathBuf {
        self.state_dir.join("unitdeck.db")
    }

    pub fn initial_password_path(&self) -> PathBuf {
        self.state_dir.join("initial-password")
    }

    /// The filesystem path of the bus socket, for messages that tell the user what to check.
    pub fn bus_socket_path(&self) -> &str {
        self.bus_address
            .strip_prefix("unix:path=")
            .map(|rest| rest.split(',').next().unwrap_or(rest))
            .unwrap_or(&self.bus_address)
    }
}

/// `UNITDECK_ALLOWED_HOSTS`: names, addresses, or `*.domain` patterns, comma-separated.
fn parse_allowed_hosts(list: &str) -> anyhow::Result<Vec<String>> {
    list.split(',')
        .map(str::trim)
        .filter(|h| !h.is_empty())
        .map(|h| {
            let name = h.strip_prefix("*.").unwrap_or(h);
            let ipv6 = name
                .trim_start_matches('[')
                .trim_end_matches(']')
                .parse::<std::net::Ipv6Addr>()
                .is_ok();
            let ok = ipv6
                || (!name.is_empty()
                    && name
                        .bytes()
                        .all(|b| b.is_ascii_alphanumeric() || matches!(b, b'.' | b'-')));
            anyhow::ensure!(
                ok,
                "allowed host {h:?}: a host name, an address or *.domain (no port, no scheme)"
            );
            Ok(h.to_ascii_lowercase())
        })
        .collect()
}

/// `UNITDECK_PUBLIC_URL`: `http(s)://host[:port][/path]`, without a query or fragment;
/// returned without a trailing `/`.
fn parse_public_url(url: &str) -> Result<String, String> {
    let url = url.trim().trim_end_matches('/');
    let rest = url
        .strip_prefix("https://")
        .or_else(|| url.strip_prefix("http://"))
        .ok_or("must start with http:// or https://")?;
    let host = rest.split('/').next().unwrap_or("");
    if host.is_empty() || host.contains('@') {
        return Err("names no host (or names a user)".into());
    }
    if url
        .chars()
        .any(|c| c.is_whitespace() || c.is_control() || matches!(c, '?' | '#' | '"' | '<' | '>'))
    {
        return Err("has spaces, a query, a fragment, quotes or angle brackets".into());
    }
    Ok(url.to_string())
}

/// `UNITDECK_RESTART_LOOP`: `N/DURATION`, e.g. `3/10m` (2 to 100 restarts).
fn parse_restart_loop(text: &str) -> Result<RestartLoop, String> {
    let (n, within) = text
        .split_once('/')
        .ok_or("restarts/duration, e.g. 3/10m")?;
    let restarts: u32 = n
        .trim()
        .parse()
        .ok()
        .filter(|n| (2..=100).contains(n))
        .ok_or("the number of restarts must be 2 to 100")?;
    Ok(RestartLoop {
        restarts,
        within: parse_duration(within)?,
    })
}

/// `90`, `90s`, `30m`, `12h`, `7d`.
pub fn parse_duration(text: &str) -> Result<Duration, String> {
    let text = text.trim();
    let (digits, unit) = match text.find(|c: char| !c.is_ascii_digit()) {
        Some(i) => text.split_at(i),
        None => (text, "s"),
    };
    let n: u64 = digits
        .parse()
        .map_err(|_| "a number of seconds, or one with s, m, h or d".to_string())?;
    let seconds = match unit {
        "s" => n,
        "m" | "min" => n * 60,
        "h" => n * 3600,
        "d" => n * 86_400,
        other => return Err(format!("unknown unit {other:?}: use s, m, h or d")),
    };
    if seconds == 0 {
        return Err("must be more than 0".into());
    }
    Ok(Duration::from_secs(seconds))
}

fn read_file_config(path: &Path) -> anyhow::Result<FileConfig> {
    let text = std::fs::read_to_string(path)
        .map_err(|e| anyhow::anyhow!("cannot read config file {}: {e}", path.display()))?;
    toml::from_str(&text).map_err(|e| anyhow::anyhow!("config file {}: {e}", path.display()))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn defaults_apply_when_nothing_is_set() {
        let c = Config::resolve(ServeArgs::default()).unwrap();
        assert_eq!(c.listen.to_string(), DEFAULT_LISTEN);
        assert_eq!(c.watched_ports, vec![4035, 8035, 8036, 8037, 8038]);
        assert_eq!(c.password, PasswordSource::Generated);
        assert_eq!(c.bus_socket_path(), "/run/dbus/system_bus_socket");
        assert_eq!(c.session_idle, Duration::from_secs(12 * 3600));
        assert_eq!(c.tls, Tls::Off);
        assert!(c.allowed_hosts.is_empty());
        assert_eq!(c.public_url, None);
        assert_eq!(
            c.restart_loop,
            RestartLoop {
                restarts: 3,
                within: Duration::from_secs(600)
            }
        );
    }

    #[test]
    fn public_url_and_restart_loop_are_checked() {
        let c = Config::resolve(ServeArgs {
            public_url: Some("https://devbox.example:8035/".into()),
            restart_loop: Some("5/2m".into()),
            ..Default::default()
        })
        .unwrap();
        assert_eq!(c.public_url.as_deref(), Some("https://devbox.example:8035"));
        assert_eq!(c.restart_loop.restarts, 5);
        assert_eq!(c.restart_loop.within, Duration::from_secs(120));
        for bad in [
            "devbox:8035",
            "ftp://x",
            "http://",
            "http://a b",
            "http://x/?q",
            "http://u@x",
        ] {
            let c = Config::resolve(ServeArgs {
                public_url: Some(bad.into()),
                ..Default::default()
            });
            assert!(c.is_err(), "{bad}");
        }
        for bad in ["3", "1/10m", "3/0", "x/1m", "101/1h"] {
            let c = Config::resolve(ServeArgs {
                restart_loop: Some(bad.into()),
                ..Default::default()
            });
            assert!(c.is_err(), "{bad}");
        }
    }

    #[test]
    fn base_paths_are_plain_segments() {
        assert_eq!(parse_base_path("").unwrap(), "");
        assert_eq!(parse_base_path("/").unwrap(), "");
        assert_eq!(
            parse_base_path("/absproxy/8035/").unwrap(),
            "/absproxy/8035"
        );
        for bad in [
            "absproxy", "/a//b", "/a/../b", "/a b", "/a\"/b", "/a?b", "/a#b",
        ] {
            assert!(parse_base_path(bad).is_err(), "{bad}");
        }
    }

    #[test]
    fn allowed_hosts_durations_and_tls_are_checked() {
        let c = Config::resolve(ServeArgs {
            allowed_hosts: Some(" Box.example , *.dev.example,10.0.0.5 ".into()),
            session_idle: Some("30m".into()),
            tls: Some("self-signed".into()),
            ..Default::default()
        })
        .unwrap();
        assert_eq!(
            c.allowed_hosts,
            vec!["box.example", "*.dev.example", "10.0.0.5"]
        );
        assert_eq!(c.session_idle, Duration::from_secs(1800));
        assert_eq!(c.tls, Tls::SelfSigned);
        for bad in ["http://x", "x:8035/", "a b"] {
            let err = Config::resolve(ServeArgs {
                allowed_hosts: Some(bad.into()),
                ..Default::default()
            });
            assert!(err.is_err(), "{bad}");
        }
        assert_eq!(parse_duration("90"), Ok(Duration::from_secs(90)));
        assert_eq!(parse_duration("7d"), Ok(Duration::from_secs(7 * 86_400)));
        assert!(parse_duration("0").is_err() && parse_duration("1w").is_err());
        let only_cert = Config::resolve(ServeArgs {
            tls_cert: Some("/c.pem".into()),
            ..Default::default()
        });
        assert!(only_cert.unwrap_err().to_string().contains("--tls-key"));
        let files = Config::resolve(ServeArgs {
            tls_cert: Some("/c.pem".into()),
            tls_key: Some("/k.pem".into()),
            ..Default::default()
        })
        .unwrap();
        assert!(matches!(files.tls, Tls::Files { .. }));
    }

    #[test]
    fn file_fills_only_what_flags_and_env_left_unset() {
        let dir = std::env::temp_dir().join(format!("unitdeck-cfg-{}", std::process::id()));
        std::fs::create_dir_all(&dir).unwrap();
        let path = dir.join("c.toml");
        std::fs::write(&path, "listen = \"127.0.0.1:9000\"\nports = \"9001\"\n").unwrap();
        let c = Config::resolve(ServeArgs {
            ports: Some("9002".into()),
            config: Some(path),
            ..Default::default()
        })
        .unwrap();
        assert_eq!(c.listen.to_string(), "127.0.0.1:9000");
        assert_eq!(c.watched_ports, vec![9002]);
    }

    #[test]
    fn bad_values_are_explained() {
        let err = Config::resolve(ServeArgs {
            listen: Some("nonsense".into()),
            ..Default::default()
        })
        .unwrap_err();
        assert!(err.to_string().contains("nonsense"));
        let unknown_key =
            std::env::temp_dir().join(format!("unitdeck-cfg2-{}.toml", std::process::id()));
        std::fs::write(&unknown_key, "lisen = \"x\"\n").unwrap();
        let err = Config::resolve(ServeArgs {
            config: Some(unknown_key),
            ..Default::default()
        })
        .unwrap_err();
        assert!(err.to_string().contains("lisen"));
    }
}
