//! Health checks of managed units: HTTP GET (2xx/3xx) or TCP connect probes on
//! the loopback, a status per unit, and a restart through systemd after N
//! consecutive failures — with a back-off so a crash-looping app is not
//! restarted forever. Every restart is audited.

use std::collections::HashMap;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use serde::Serialize;
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpStream;
use utoipa::ToSchema;

use crate::auth::{Credential, Principal, Scope};
use crate::service::Services;
use crate::systemd::{Health, UnitAction};
use crate::unitfile::spec::{HealthSpec, HealthTarget, LoopbackUrl};

/// At most this many health restarts of one unit within `RESTART_WINDOW`.
const MAX_RESTARTS: usize = 3;
const RESTART_WINDOW: Duration = Duration::from_secs(600);
/// How often the scheduler looks at what is due, and re-reads the specs.
const TICK: Duration = Duration::from_secs(1);
const SPEC_REFRESH: Duration = Duration::from_secs(5);

/// `GET /api/v1/health-checks` rows.
#[derive(Debug, Clone, Serialize, ToSchema)]
pub struct HealthCheckInfo {
    pub unit: String,
    /// The URL or `tcp:PORT` probed.
    pub target: String,
    pub status: Health,
    pub last_checked: Option<String>,
    pub consecutive_failures: u32,
    /// Restarts made by the health check since unitdeck started.
    pub restarts: u32,
    pub last_error: Option<String>,
}

struct Check {
    spec: HealthSpec,
    info: HealthCheckInfo,
    next_due: Instant,
    restart_times: Vec<Instant>,
    running: bool,
}

/// The checks, shared by the scheduler and the API.
#[derive(Clone, Default)]
pub struct HealthChecks {
    checks: Arc<Mutex<HashMap<String, Check>>>,
}

impl HealthChecks {
    pub fn list(&self) -> Vec<HealthCheckInfo> {
        let checks = self.checks.lock().unwrap();
        let mut out: Vec<_> = checks.values().map(|c| c.info.clone()).collect();
        out.sort_by(|a, b| a.unit.cmp(&b.unit));
        out
    }

    /// Replaces the set of checked units, keeping the state of unchanged ones.
    fn set_specs(&self, specs: Vec<(String, HealthSpec)>) -> Vec<String> {
        let mut checks = self.checks.lock().unwrap();
        let wanted: HashMap<String, HealthSpec> = specs.into_iter().collect();
        let removed: Vec<String> = checks
            .keys()
            .filter(|k| !wanted.contains_key(*k))
            .cloned()
            .collect();
        for name in &removed {
            checks.remove(name);
        }
        for (unit, spec) in wanted {
            let target = match (spec.target(), &spec.http) {
                (Some(HealthTarget::Http(_)), Some(url)) => url.clone(),
                (Some(HealthTarget::Tcp(port)), _) => format!("tcp:{port}"),
                _ => continue,
            };
            match checks.get_mut(&unit) {
                Some(check) if check.spec == spec => {}
                _ => {
                    checks.insert(
                        unit.clone(),
                        Check {
                            info: HealthCheckInfo {
                                unit,
                                target,
                                status: Health::Unknown,
                                last_checked: None,
                                consecutive_failures: 0,
                                restarts: 0,
                                last_error: None,
                            },
                            spec,
                            next_due: Instant::now(),
                            restart_times: Vec::new(),
                            running: false,
                        },
                    );
                }
            }
        }
        removed
    }
}

/// Runs the scheduler for the life of the process.
pub fn spawn(state: Services) {
    tokio::spawn(async move {
        let mut last_refresh: Option<Instant> = None;
        loop {
            if last_refresh.is_none_or(|t| t.elapsed() >= SPEC_REFRESH) {
                match state.health_specs().await {
                    Ok(specs) => {
                        for gone in state.health.set_specs(specs) {
                            state.systemd.set_health(&gone, None);
                        }
                    }
                    Err(e) => tracing::warn!(error = %e, "cannot read health check specs"),
                }
                last_refresh = Some(Instant::now());
            }
            run_due(&state);
            tokio::time::sleep(TICK).await;
        }
    });
}

/// Starts the probes that are due, each in its own task.
fn run_due(state: &Services) {
    let now = Instant::now();
    let mut checks = state.health.checks.lock().unwrap();
    for (unit, check) in checks.iter_mut() {
        if check.running || check.next_due > now {
            continue;
        }
        check.running = true;
        let (unit, spec, state) = (unit.clone(), check.spec.clone(), state.clone());
        tokio::spawn(async move {
            // A fresh read, not the cache: a restart decision must rest on what systemd says now.
            let active = state.systemd.refresh_unit(&unit).await.is_ok()
                && state
                    .systemd
                    .summary(&unit)
                    .and_then(|s| s.active_state)
                    .is_some_and(|s| s == "active");
            if active {
                let result = probe(&spec).await;
                finish(&state, &unit, result).await;
            } else {
                idle(&state, &unit);
            }
        });
    }
}

/// Not running (or still starting): nothing to probe, nothing to judge.
fn idle(state: &Services, unit: &str) {
    if let Some(check) = state.health.checks.lock().unwrap().get_mut(unit) {
        check.running = false;
        check.info.status = Health::Unknown;
        check.info.consecutive_failures = 0;
        check.next_due = Instant::now() + interval(&check.spec);
    }
    state.systemd.set_health(unit, Some(Health::Unknown));
}

fn interval(spec: &HealthSpec) -> Duration {
    Duration::from_secs(spec.interval_s.clamp(1, 3600) as u64)
}

/// Records a probe result; restarts the unit when it crossed the failure threshold.
async fn finish(state: &Services, unit: &str, result: Result<(), String>) {
    let before;
    let restart = {
        let mut checks = state.health.checks.lock().unwrap();
        let Some(check) = checks.get_mut(unit) else {
            return;
        };
        before = Some(check.info.status);
        check.running = false;
        check.next_due = Instant::now() + interval(&check.spec);
        check.info.last_checked = Some(crate::db::now_rfc3339());
        match result {
            Ok(()) => {
                check.info.consecutive_failures = 0;
                check.info.status = Health::Healthy;
                check.info.last_error = None;
                false
            }
            Err(e) => {
                check.info.consecutive_failures += 1;
                check.info.last_error = Some(e);
                let threshold = check.spec.failures.max(1) as u32;
                if check.info.consecutive_failures < threshold {
                    false
                } else {
                    check.info.status = Health::Unhealthy;
                    check.restart_times.retain(|t| t.elapsed() < RESTART_WINDOW);
                    let allowed = check.spec.restart && check.restart_times.len() < MAX_RESTARTS;
                    if allowed {
                        check.restart_times.push(Instant::now());
                        check.info.restarts += 1;
                        check.info.consecutive_failures = 0;
                    } else if check.spec.restart {
                        check.info.last_error = Some(format!(
                            "{}; not restarting: {MAX_RESTARTS} health restarts in the last {} min",
                            check.info.last_error.as_deref().unwrap_or(""),
                            RESTART_WINDOW.as_secs() / 60
                        ));
                    }
                    allowed
                }
            }
        }
    };
    let (status, error) = state
        .health
        .checks
        .lock()
        .unwrap()
        .get(unit)
        .map(|c| (Some(c.info.status), c.info.last_error.clone()))
        .unwrap_or_default();
    // Each turn of a check's verdict is a notification event (unhealthy, recovered).
    if status != before
        && let Some(status) = status
    {
        state.health_changed(unit, status, error.as_deref());
    }
    state.systemd.set_health(unit, status);
    if restart {
        let principal = Principal {
            actor: "health-check".to_string(),
            scope: Scope::Admin,
            credential: Credential::Internal,
        };
        tracing::warn!(unit, "unhealthy: restarting it through systemd");
        if let Err(e) = state
            .unit_action(&principal, unit, UnitAction::Restart, true)
            .await
        {
            tracing::error!(unit, error = %e, "health restart failed");
        }
    }
}

/// One probe: HTTP GET expecting 2xx/3xx, or a TCP connect.
pub async fn probe(spec: &HealthSpec) -> Result<(), String> {
    let timeout = Duration::from_secs(spec.timeout_s.clamp(1, 60) as u64);
    let attempt = async {
        match spec.target() {
            Some(HealthTarget::Tcp(port)) => TcpStream::connect(("127.0.0.1", port))
                .await
                .map(|_| ())
                .map_err(|e| format!("tcp:{port}: {e}")),
            Some(HealthTarget::Http(url)) => http_get(&url).await,
            None => Err("no target".to_string()),
        }
    };
    tokio::time::timeout(timeout, attempt)
        .await
        .unwrap_or_else(|_| Err(format!("no answer within {} s", timeout.as_secs())))
}

/// A minimal HTTP/1.0 GET, to the address the URL was parsed to (no name lookup).
async fn http_get(url: &LoopbackUrl) -> Result<(), String> {
    let address = std::net::SocketAddr::new(url.ip, url.port);
    let mut stream = TcpStream::connect(address)
        .await
        .map_err(|e| format!("{address}: {e}"))?;
    let request = format!(
        "GET {} HTTP/1.0\r\nHost: {}\r\nUser-Agent: unitdeck-health\r\nConnection: close\r\n\r\n",
        url.target, url.host
    );
    stream
        .write_all(request.as_bytes())
        .await
        .map_err(|e| e.to_string())?;
    let mut head = [0u8; 64];
    let mut read = 0;
    while read < 12 {
        let n = stream
            .read(&mut head[read..])
            .await
            .map_err(|e| e.to_string())?;
        if n == 0 {
            break;
        }
        read += n;
    }
    let line = String::from_utf8_lossy(&head[..read]);
    let status: u16 = line
        .split_whitespace()
        .nth(1)
        .and_then(|s| s.parse().ok())
        .ok_or_else(|| {
            format!(
                "not an HTTP answer: {:?}",
                line.lines().next().unwrap_or("")
            )
        })?;
    if (200..400).contains(&status) {
        Ok(())
    } else {
        Err(format!("HTTP {status}"))
    }
}

impl Services {
    /// Every health check and its last result.
    pub fn health_checks(&self) -> Vec<HealthCheckInfo> {
        self.health.list()
    }

    /// Managed units that have a health check, with its spec.
    pub async fn health_specs(&self) -> crate::error::AppResult<Vec<(String, HealthSpec)>> {
        Ok(self
            .managed_specs()
            .await?
            .into_iter()
            .filter_map(|s| Some((s.unit_name(), s.health.clone()?)))
            .collect())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn urls_are_parsed_once_to_an_address() {
        let parse =
            |u: &str| LoopbackUrl::parse(u).map(|p| (p.ip.to_string(), p.port, p.host, p.target));
        assert_eq!(
            parse("http://127.0.0.1:8036/health"),
            Ok((
                "127.0.0.1".into(),
                8036,
                "127.0.0.1:8036".into(),
                "/health".into()
            ))
        );
        assert_eq!(
            parse("http://localhost"),
            Ok(("127.0.0.1".into(), 80, "localhost".into(), "/".into()))
        );
        assert_eq!(
            parse("http://[::1]:9/x?y#z"),
            Ok(("::1".into(), 9, "[::1]:9".into(), "/x?y".into()))
        );
        assert_eq!(
            parse("http://localhost?x"),
            Ok(("127.0.0.1".into(), 80, "localhost".into(), "/?x".into()))
        );
        // The host ends at the fragment: this one is localhost, port 80, whatever follows.
        assert_eq!(
            parse("http://localhost#.attacker.example:8080/"),
            Ok(("127.0.0.1".into(), 80, "localhost".into(), "/".into()))
        );
        for bad in [
            "https://x/",
            "http://attacker.example#@localhost/",
            "http://localhost.attacker.example/",
            "http://127.0.0.1@attacker.example/",
            "http://[::1/",
            "http://[::2]/",
            "http://127.1/",
            "http://localhost:0/",
            "http://localhost:99999/",
            "http://localhost:/",
        ] {
            assert!(parse(bad).is_err(), "{bad}");
        }
    }

    fn spec(http: Option<String>, tcp: Option<i64>) -> HealthSpec {
        serde_json::from_value(serde_json::json!({"http": http, "tcp": tcp, "timeout_s": 1}))
            .unwrap()
    }

    #[tokio::test]
    async fn probes_see_real_listeners() {
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let port = listener.local_addr().unwrap().port();
        tokio::spawn(async move {
            for answer in [
                "HTTP/1.0 204 No Content\r\n\r\n",
                "HTTP/1.1 500 Oops\r\n\r\n",
            ] {
                let (mut s, _) = listener.accept().await.unwrap();
                let mut buf = [0u8; 512];
                let _ = s.read(&mut buf).await;
                s.write_all(answer.as_bytes()).await.unwrap();
            }
        });
        let url = format!("http://127.0.0.1:{port}/health");
        assert_eq!(probe(&spec(Some(url.clone()), None)).await, Ok(()));
        assert_eq!(probe(&spec(Some(url), None)).await, Err("HTTP 500".into()));
        let closed = std::net::TcpListener::bind("127.0.0.1:0")
            .unwrap()
            .local_addr()
            .unwrap()
            .port();
        assert!(probe(&spec(None, Some(closed as i64))).await.is_err());
    }
}
