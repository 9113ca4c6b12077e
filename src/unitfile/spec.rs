//! The unit spec: what a person (or a script) asks unitdeck to create.
//!
//! This is the request body of `POST /api/v1/unit-files` and friends (API.md,
//! "Unit files created by unitdeck"). The field names are part of the HTTP contract.
//!
//! Deserialising only checks JSON *types*; every other rule lives in
//! [`super::validate::validate`], which must pass before [`super::render::render`] is
//! called. Integer fields with a range (`port`, `restart_sec`, the health numbers) are
//! deserialised as `i64` on purpose, so that `70000` or `-1` reach the validator and get a
//! clear "1-65535" style message instead of a serde type error.
//!
//! Defaults (applied when a field is absent):
//! - `description`: `""` (systemd then shows the unit name);
//! - `environment`, `after`, `requires`, `wants`: empty (`null` is accepted as empty too);
//! - `restart`: `on-failure` for `kind = service`, `no` for `kind = job`
//!   (see [`UnitSpec::restart_policy`]);
//! - `restart_sec`: 2 seconds ([`DEFAULT_RESTART_SEC`]; systemd's own default of 100 ms
//!   makes a crashing dev server spin);
//! - `health.interval_s` 10, `health.timeout_s` 2, `health.failures` 3,
//!   `health.restart` true;
//! - `enable`, `start`: true.

use std::collections::BTreeMap;

use serde::{Deserialize, Deserializer, Serialize};
use utoipa::ToSchema;

/// Version of the spec format and of the rendered files (`# X-Unitdeck-Spec-Version:`).
pub const SPEC_VERSION: u32 = 1;
/// `RestartSec=` when the spec leaves `restart_sec` out.
pub const DEFAULT_RESTART_SEC: u32 = 2;
/// Default seconds between two health checks.
pub const DEFAULT_HEALTH_INTERVAL_S: i64 = 10;
/// Default seconds a health check may take.
pub const DEFAULT_HEALTH_TIMEOUT_S: i64 = 2;
/// Default consecutive failures before the unit counts as unhealthy.
pub const DEFAULT_HEALTH_FAILURES: i64 = 3;

/// What kind of unit the spec creates.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Hash, Serialize, Deserialize, ToSchema)]
#[serde(rename_all = "lowercase")]
pub enum UnitKind {
    /// A long-running `NAME.service` (`Type=simple`), wanted by `multi-user.target`.
    #[default]
    Service,
    /// A `NAME.service` of `Type=oneshot` started by `NAME.timer` on `schedule`.
    Job,
}

impl UnitKind {
    /// `"service"` or `"job"`, as in JSON.
    pub fn as_str(self) -> &'static str {
        match self {
            UnitKind::Service => "service",
            UnitKind::Job => "job",
        }
    }
}

/// `Restart=` policy.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize, ToSchema)]
#[serde(rename_all = "kebab-case")]
pub enum RestartPolicy {
    /// `Restart=no`.
    No,
    /// `Restart=on-failure`.
    OnFailure,
    /// `Restart=always` (not allowed for jobs: systemd refuses it for `Type=oneshot`).
    Always,
}

impl RestartPolicy {
    /// The value written after `Restart=` (same spelling as in JSON).
    pub fn as_systemd(self) -> &'static str {
        match self {
            RestartPolicy::No => "no",
            RestartPolicy::OnFailure => "on-failure",
            RestartPolicy::Always => "always",
        }
    }
}

/// A health check: exactly one of `http` or `tcp`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
#[schema(example = json!({"http": "http://127.0.0.1:8036/health", "interval_s": 10,
    "timeout_s": 2, "failures": 3, "restart": true}))]
pub struct HealthSpec {
    /// `http://` URL on the loopback interface (`localhost`, `127.0.0.0/8`, `[::1]`);
    /// healthy when it answers 2xx/3xx.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schema(example = "http://127.0.0.1:8036/health")]
    pub http: Option<String>,
    /// TCP port on 127.0.0.1; healthy when a connection is accepted.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schema(minimum = 1, maximum = 65535)]
    pub tcp: Option<i64>,
    /// Seconds between checks, 1-3600.
    #[serde(default = "default_interval_s")]
    #[schema(minimum = 1, maximum = 3600, default = 10)]
    pub interval_s: i64,
    /// Seconds one check may take, 1-60.
    #[serde(default = "default_timeout_s")]
    #[schema(minimum = 1, maximum = 60, default = 2)]
    pub timeout_s: i64,
    /// Consecutive failures before the unit is unhealthy, 1-100.
    #[serde(default = "default_failures")]
    #[schema(minimum = 1, maximum = 100, default = 3)]
    pub failures: i64,
    /// Restart the unit when it becomes unhealthy.
    #[serde(default = "default_true")]
    #[schema(default = true)]
    pub restart: bool,
}

/// What a validated [`HealthSpec`] checks.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum HealthTarget {
    /// GET this URL.
    Http(LoopbackUrl),
    /// Connect to this port on 127.0.0.1.
    Tcp(u16),
}

/// An `http://` URL on this machine, parsed once: the validator and the prober read the
/// same address (they once cut the host differently: `http://localhost#.evil:8080/`), and
/// the prober connects to `ip` without a name lookup.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct LoopbackUrl {
    pub ip: std::net::IpAddr,
    pub port: u16,
    /// The `Host` header: the host and port as written.
    pub host: String,
    /// Path and query (`/` when empty); a fragment is not part of a request.
    pub target: String,
}

impl LoopbackUrl {
    /// `http://HOST[:PORT][/PATH][?QUERY][#FRAGMENT]` with HOST `localhost` (127.0.0.1), an
    /// IPv4 address in 127.0.0.0/8 written plainly, or `[::1]`; no user information.
    pub fn parse(url: &str) -> Result<Self, String> {
        let rest = url
            .strip_prefix("http://")
            .ok_or_else(|| "must start with http://".to_string())?;
        let end = rest.find(['/', '?', '#']).unwrap_or(rest.len());
        let (authority, after) = rest.split_at(end);
        if authority.contains('@') {
            return Err("must not contain user information".into());
        }
        let (host, port) = match authority.strip_prefix('[') {
            Some(v6) => {
                let (inside, port) = v6
                    .split_once(']')
                    .ok_or_else(|| "has an unclosed [".to_string())?;
                (&authority[..inside.len() + 2], port)
            }
            None => match authority.find(':') {
                Some(i) => authority.split_at(i),
                None => (authority, ""),
            },
        };
        let port = match port.strip_prefix(':') {
            None if port.is_empty() => 80,
            Some(digits)
                if (1..=5).contains(&digits.len())
                    && digits.bytes().all(|b| b.is_ascii_digit()) =>
            {
                digits
                    .parse::<u16>()
                    .ok()
                    .filter(|p| *p != 0)
                    .ok_or_else(|| "has an invalid port (1-65535)".to_string())?
            }
            _ => return Err("has an invalid port (1-65535)".into()),
        };
        let ip = if host.eq_ignore_ascii_case("localhost") {
            std::net::IpAddr::from([127, 0, 0, 1])
        } else if host == "[::1]" {
            std::net::Ipv6Addr::LOCALHOST.into()
        } else {
            loopback_v4(host).ok_or_else(|| {
                "must point at this machine: localhost, 127.0.0.1 (127.0.0.0/8) or [::1]"
                    .to_string()
            })?
        };
        let target = after.split('#').next().unwrap_or("");
        let target = match target {
            "" => "/".to_string(),
            t if t.starts_with('?') => format!("/{t}"),
            t => t.to_string(),
        };
        Ok(Self {
            ip,
            port,
            host: authority.to_string(),
            target,
        })
    }
}

/// A dotted quad in 127.0.0.0/8 with no leading zeros (`127.1` and `127.0.0.01` are
/// read differently by different parsers).
fn loopback_v4(host: &str) -> Option<std::net::IpAddr> {
    let parts: Vec<&str> = host.split('.').collect();
    let plain = parts.len() == 4
        && parts[0] == "127"
        && parts.iter().all(|p| {
            (1..=3).contains(&p.len())
                && p.bytes().all(|b| b.is_ascii_digit())
                && !(p.len() > 1 && p.starts_with('0'))
        });
    plain.then(|| host.parse().ok()).flatten()
}

impl UnitSpec {
    /// The spec with every environment value replaced by `***` (for callers below admin).
    pub fn redacted(mut self) -> Self {
        for value in self.environment.values_mut() {
            *value = super::render::REDACTED.to_string();
        }
        self
    }
}

impl HealthSpec {
    /// The check target; `None` only for a spec that did not pass validation.
    pub fn target(&self) -> Option<HealthTarget> {
        match (&self.http, self.tcp) {
            (Some(url), None) => LoopbackUrl::parse(url).ok().map(HealthTarget::Http),
            (None, Some(port)) => u16::try_from(port)
                .ok()
                .filter(|p| *p != 0)
                .map(HealthTarget::Tcp),
            _ => None,
        }
    }
}

/// A unit spec (request body of `POST /api/v1/unit-files`, `PUT /api/v1/unit-files/{name}`,
/// `POST /api/v1/unit-files/preview`). `Default` is the empty spec, every field unset
/// (not what a JSON body that leaves fields out gets: that is serde's defaults below).
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
#[schema(example = json!({
    "name": "shop-api", "kind": "service", "description": "Shop API (dev)",
    "exec_start": ["/usr/bin/node", "server.js", "--port", "8036"],
    "working_directory": "/home/dev/repos/shop", "user": "dev", "group": null,
    "environment": {"NODE_ENV": "development"},
    "after": ["network.target"], "requires": [], "wants": [],
    "restart": "on-failure", "restart_sec": 2, "memory_max": "512M", "cpu_quota": null,
    "port": 8036,
    "health": {"http": "http://127.0.0.1:8036/health", "interval_s": 10, "failures": 3,
               "restart": true},
    "schedule": null, "enable": true, "start": true}))]
pub struct UnitSpec {
    /// Base name, without suffix: `[A-Za-z0-9:_.-]`, 1-200 characters, not starting with
    /// `-` or `.`, not ending in a unit suffix such as `.service`. The files are
    /// `NAME.service` (and `NAME.timer` for a job).
    #[schema(example = "shop-api", min_length = 1, max_length = 200)]
    pub name: String,
    /// `service` (long-running) or `job` (a oneshot service plus a timer).
    pub kind: UnitKind,
    /// Free text, up to 256 printable characters, no leading or trailing whitespace.
    #[serde(default, deserialize_with = "null_as_default")]
    #[schema(max_length = 256)]
    pub description: String,
    /// The command as an argument vector: `[0]` is an absolute path. Passed to the process
    /// exactly as given: no shell, no `$VARIABLE` expansion, no `%` specifiers.
    #[schema(min_items = 1, max_items = 64)]
    pub exec_start: Vec<String>,
    /// Absolute, normalised directory, or null for `/`.
    #[serde(default)]
    pub working_directory: Option<String>,
    /// User name or numeric UID to run as, or null for root.
    #[serde(default)]
    pub user: Option<String>,
    /// Group name or numeric GID, or null for the user's primary group.
    #[serde(default)]
    pub group: Option<String>,
    /// Environment variables, `NAME` → value (passed exactly, `$` is not expanded).
    #[serde(default, deserialize_with = "null_as_default")]
    pub environment: BTreeMap<String, String>,
    /// Full unit names to order after (`After=`).
    #[serde(default, deserialize_with = "null_as_default")]
    pub after: Vec<String>,
    /// Full unit names this unit requires (`Requires=`).
    #[serde(default, deserialize_with = "null_as_default")]
    pub requires: Vec<String>,
    /// Full unit names this unit wants (`Wants=`).
    #[serde(default, deserialize_with = "null_as_default")]
    pub wants: Vec<String>,
    /// Restart policy; default `on-failure` for a service, `no` for a job (which may not use
    /// `always`).
    #[serde(default)]
    pub restart: Option<RestartPolicy>,
    /// Seconds to wait before a restart, 0-3600; default 2.
    #[serde(default)]
    #[schema(minimum = 0, maximum = 3600, default = 2)]
    pub restart_sec: Option<i64>,
    /// `MemoryMax=`: the most memory the unit may use; beyond it the kernel ends the
    /// process (and `restart` decides whether systemd starts it again). Bytes with an
    /// optional K, M, G, T, P or E suffix (`512M`), a percentage of the machine's memory
    /// (`50%`), or `infinity`; null for no limit.
    #[serde(default)]
    #[schema(example = "512M", max_length = 32)]
    pub memory_max: Option<String>,
    /// `CPUQuota=`: CPU time as a percentage of one CPU (`50%`; `200%` is two CPUs), or
    /// null for no limit.
    #[serde(default)]
    #[schema(example = "50%", max_length = 32)]
    pub cpu_quota: Option<String>,
    /// TCP port the service should listen on (1-65535), or null. Not for jobs.
    #[serde(default)]
    #[schema(minimum = 1, maximum = 65535)]
    pub port: Option<i64>,
    /// Health check, or null. Not for jobs.
    #[serde(default)]
    pub health: Option<HealthSpec>,
    /// `OnCalendar=` expression (see `systemd.time(7)`); required for a job, must be absent
    /// (or null or "") for a service.
    #[serde(default)]
    #[schema(example = "*-*-* 03:00:00")]
    pub schedule: Option<String>,
    /// Enable the unit (the timer, for a job) so that it starts at boot.
    #[serde(default = "default_true")]
    #[schema(default = true)]
    pub enable: bool,
    /// Start the unit (the timer, for a job) now.
    #[serde(default = "default_true")]
    #[schema(default = true)]
    pub start: bool,
}

impl UnitSpec {
    /// `NAME.service`: the service file, for both kinds.
    pub fn unit_name(&self) -> String {
        format!("{}.service", self.name)
    }

    /// `NAME.timer` for a job, `None` for a service.
    pub fn timer_name(&self) -> Option<String> {
        match self.kind {
            UnitKind::Service => None,
            UnitKind::Job => Some(format!("{}.timer", self.name)),
        }
    }

    /// Every file the spec renders to, service first.
    pub fn file_names(&self) -> Vec<String> {
        let mut names = vec![self.unit_name()];
        names.extend(self.timer_name());
        names
    }

    /// The unit that is enabled and started: the timer for a job, the service otherwise.
    pub fn primary_unit(&self) -> String {
        self.timer_name().unwrap_or_else(|| self.unit_name())
    }

    /// The effective restart policy (the kind's default when `restart` is null).
    pub fn restart_policy(&self) -> RestartPolicy {
        self.restart.unwrap_or(match self.kind {
            UnitKind::Service => RestartPolicy::OnFailure,
            UnitKind::Job => RestartPolicy::No,
        })
    }

    /// The effective `RestartSec=` in seconds (clamped into 0..=3600 for an unvalidated spec).
    pub fn restart_sec_value(&self) -> u32 {
        self.restart_sec
            .map_or(DEFAULT_RESTART_SEC, |s| s.clamp(0, 3600) as u32)
    }

    /// `port` as a TCP port number; `None` when absent or out of range.
    pub fn port_number(&self) -> Option<u16> {
        self.port
            .and_then(|p| u16::try_from(p).ok())
            .filter(|p| *p != 0)
    }

    /// `schedule`, with `""` treated as absent.
    pub fn schedule_str(&self) -> Option<&str> {
        self.schedule.as_deref().filter(|s| !s.is_empty())
    }
}

fn default_true() -> bool {
    true
}

fn default_interval_s() -> i64 {
    DEFAULT_HEALTH_INTERVAL_S
}

fn default_timeout_s() -> i64 {
    DEFAULT_HEALTH_TIMEOUT_S
}

fn default_failures() -> i64 {
    DEFAULT_HEALTH_FAILURES
}

/// Accept JSON `null` where a collection or string is expected, as its empty value.
fn null_as_default<'de, D, T>(deserializer: D) -> Result<T, D::Error>
where
    D: Deserializer<'de>,
    T: Default + Deserialize<'de>,
{
    Ok(Option::<T>::deserialize(deserializer)?.unwrap_or_default())
}

/// Specs the unit tests of this module's neighbours start from.
#[cfg(test)]
pub(crate) mod examples {
    use std::collections::BTreeMap;

    use super::{HealthSpec, RestartPolicy, UnitKind, UnitSpec};

    /// The app server of API.md's example.
    pub fn service() -> UnitSpec {
        UnitSpec {
            name: "shop-api".into(),
            kind: UnitKind::Service,
            description: "Shop API (dev)".into(),
            exec_start: vec![
                "/usr/bin/node".into(),
                "server.js".into(),
                "--port".into(),
                "8036".into(),
            ],
            working_directory: Some("/home/dev/repos/shop".into()),
            user: Some("dev".into()),
            group: None,
            environment: BTreeMap::from([("NODE_ENV".into(), "development".into())]),
            after: vec!["network.target".into()],
            requires: vec![],
            wants: vec![],
            restart: Some(RestartPolicy::OnFailure),
            restart_sec: Some(2),
            memory_max: Some("512M".into()),
            cpu_quota: None,
            port: Some(8036),
            health: Some(health_http("http://127.0.0.1:8036/health")),
            schedule: None,
            enable: true,
            start: true,
        }
    }

    pub fn job() -> UnitSpec {
        UnitSpec {
            name: "nightly-backup".into(),
            kind: UnitKind::Job,
            description: "Nightly backup".into(),
            exec_start: vec!["/usr/local/bin/backup".into(), "--all".into()],
            working_directory: None,
            user: None,
            group: None,
            environment: BTreeMap::new(),
            after: vec![],
            requires: vec![],
            wants: vec![],
            restart: None,
            restart_sec: None,
            memory_max: None,
            cpu_quota: None,
            port: None,
            health: None,
            schedule: Some("*-*-* 03:00:00".into()),
            enable: true,
            start: true,
        }
    }

    pub fn health_http(url: &str) -> HealthSpec {
        HealthSpec {
            http: Some(url.into()),
            tcp: None,
            interval_s: 10,
            timeout_s: 2,
            failures: 3,
            restart: true,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn parse(v: serde_json::Value) -> Result<UnitSpec, serde_json::Error> {
        serde_json::from_value(v)
    }

    #[test]
    fn api_example_parses_with_defaults() {
        let spec = parse(json!({
            "name": "shop-api", "kind": "service", "description": "Shop API (dev)",
            "exec_start": ["/usr/bin/node", "server.js", "--port", "8036"],
            "working_directory": "/home/dev/repos/shop",
            "user": "dev", "group": null,
            "environment": {"NODE_ENV": "development"},
            "after": ["network.target"], "requires": [], "wants": [],
            "restart": "on-failure", "restart_sec": 2, "memory_max": "512M",
            "cpu_quota": null, "port": 8036,
            "health": {"http": "http://127.0.0.1:8036/health", "interval_s": 10,
                       "failures": 3, "restart": true},
            "schedule": "*-*-* 03:00:00",
            "enable": true, "start": true
        }))
        .unwrap();
        assert_eq!(spec.kind, UnitKind::Service);
        assert_eq!(spec.restart, Some(RestartPolicy::OnFailure));
        assert_eq!(spec.port_number(), Some(8036));
        let health = spec.health.as_ref().unwrap();
        assert_eq!(health.timeout_s, DEFAULT_HEALTH_TIMEOUT_S);
        assert_eq!(
            health.target(),
            Some(HealthTarget::Http(LoopbackUrl {
                ip: [127, 0, 0, 1].into(),
                port: 8036,
                host: "127.0.0.1:8036".into(),
                target: "/health".into(),
            }))
        );
        assert_eq!(spec.unit_name(), "shop-api.service");
        assert_eq!(spec.file_names(), vec!["shop-api.service"]);
        assert_eq!(spec.primary_unit(), "shop-api.service");
    }

    #[test]
    fn minimal_service_gets_defaults() {
        let spec =
            parse(json!({"name": "a", "kind": "service", "exec_start": ["/bin/true"]})).unwrap();
        assert_eq!(spec.description, "");
        assert!(spec.environment.is_empty() && spec.after.is_empty());
        assert_eq!(spec.restart, None);
        assert_eq!(spec.restart_policy(), RestartPolicy::OnFailure);
        assert_eq!(spec.restart_sec_value(), 2);
        assert!(spec.enable && spec.start);
        assert_eq!(spec.schedule_str(), None);
    }

    #[test]
    fn job_helpers() {
        let spec = parse(
            json!({"name": "backup", "kind": "job", "exec_start": ["/bin/true"],
                                "schedule": "daily"}),
        )
        .unwrap();
        assert_eq!(spec.restart_policy(), RestartPolicy::No);
        assert_eq!(spec.file_names(), vec!["backup.service", "backup.timer"]);
        assert_eq!(spec.primary_unit(), "backup.timer");
        assert_eq!(spec.timer_name().as_deref(), Some("backup.timer"));
    }

    #[test]
    fn nulls_are_empty_collections() {
        let spec = parse(
            json!({"name": "a", "kind": "service", "exec_start": ["/bin/true"],
            "description": null, "environment": null, "after": null, "requires": null,
            "wants": null, "restart": null, "restart_sec": null, "port": null,
            "health": null, "schedule": null}),
        )
        .unwrap();
        assert_eq!(spec.description, "");
        assert!(spec.environment.is_empty());
    }

    #[test]
    fn unknown_fields_and_bad_types_are_rejected() {
        assert!(
            parse(
                json!({"name": "a", "kind": "service", "exec_start": ["/bin/true"],
                         "ExecStartPre": "/bin/sh"})
            )
            .is_err()
        );
        assert!(
            parse(json!({"name": "a", "kind": "daemon", "exec_start": ["/bin/true"]})).is_err()
        );
        assert!(
            parse(
                json!({"name": "a", "kind": "service", "exec_start": ["/bin/true"],
                         "restart": "sometimes"})
            )
            .is_err()
        );
        assert!(parse(json!({"name": "a", "kind": "service", "exec_start": "/bin/true"})).is_err());
        assert!(
            parse(
                json!({"name": "a", "kind": "service", "exec_start": ["/bin/true"],
                         "health": {"tcp": 1, "script": "x"}})
            )
            .is_err()
        );
        assert!(parse(json!({"kind": "service", "exec_start": ["/bin/true"]})).is_err());
    }

    #[test]
    fn wide_integers_reach_the_validator() {
        let spec = parse(
            json!({"name": "a", "kind": "service", "exec_start": ["/bin/true"],
            "port": 70000, "restart_sec": -5, "health": {"tcp": 0, "interval_s": 0}}),
        )
        .unwrap();
        assert_eq!(spec.port, Some(70000));
        assert_eq!(spec.port_number(), None);
        assert_eq!(spec.restart_sec_value(), 0);
        assert_eq!(spec.health.unwrap().target(), None);
    }

    #[test]
    fn round_trips_through_json() {
        let spec = parse(
            json!({"name": "a", "kind": "job", "exec_start": ["/bin/true", "x"],
            "schedule": "hourly", "restart": "on-failure",
            "health": {"tcp": 80}}),
        )
        .unwrap();
        let text = serde_json::to_string(&spec).unwrap();
        let back: UnitSpec = serde_json::from_str(&text).unwrap();
        assert_eq!(spec, back);
        // Absent health target is not serialised as null.
        assert!(!text.contains("\"http\""));
    }

    #[test]
    fn schema_is_generated() {
        use utoipa::PartialSchema;
        let schema = serde_json::to_value(UnitSpec::schema()).unwrap();
        let props = schema["properties"].as_object().unwrap();
        for key in [
            "name",
            "kind",
            "description",
            "exec_start",
            "working_directory",
            "user",
            "group",
            "environment",
            "after",
            "requires",
            "wants",
            "restart",
            "restart_sec",
            "port",
            "health",
            "schedule",
            "enable",
            "start",
        ] {
            assert!(props.contains_key(key), "schema lacks {key}");
        }
    }
}
