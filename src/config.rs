//! Configuration: flags > `UNITDECK_*` environment variables > optional TOML file > defaults.
//!
//! clap resolves flag-over-variable; the TOML file only fills what neither set, so
//! the precedence in API.md ("the variable wins over the default, the flag over the
//! variable") holds for every key.

use std::net::SocketAddr;
use std::path::{Path, PathBuf};

use clap::Args;
use serde::Deserialize;

use crate::ports::parse_port_list;

pub const DEFAULT_LISTEN: &str = "0.0.0.0:8035";
pub const DEFAULT_STATE_DIR: &str = "/var/lib/unitdeck";
pub const DEFAULT_UNIT_DIR: &str = "/etc/systemd/system";
pub const DEFAULT_PORTS: &str = "4035,8035-8038";
pub const DEFAULT_BUS: &str = "unix:path=/run/dbus/system_bus_socket";

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
}

/// Where the login password comes from.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum PasswordSource {
    Plain(String),
    Hash(String),
    /// Generate one on first start, keep only its hash in the database.
    Generated,
}

#[derive(Debug, Clone)]
pub struct Config {
    pub listen: SocketAddr,
    pub state_dir: PathBuf,
    pub unit_dir: PathBuf,
    pub watched_ports: Vec<u16>,
    pub password: PasswordSource,
    pub bus_address: String,
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
        Ok(Self {
            listen,
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
