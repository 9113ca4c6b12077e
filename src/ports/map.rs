//! The port map of the API and the ports page: who listens on each watched port and on
//! every other port a service holds, who should, and what is wrong.

use super::Listener;

/// One row of `GET /api/v1/ports`.
#[derive(Debug, Clone, serde::Serialize, utoipa::ToSchema)]
pub struct PortInfo {
    pub port: u16,
    /// Listed in UNITDECK_PORTS.
    pub watched: bool,
    /// `listening` or `free`.
    pub state: &'static str,
    pub pid: Option<u32>,
    pub process: Option<String>,
    /// The unit holding the port.
    pub unit: Option<String>,
    /// The managed unit whose spec names this port.
    pub expected_unit: Option<String>,
    /// Where to open it: the panel's host, this port.
    pub url: Option<String>,
    /// What is wrong, if anything: expected but not listening, held by a stray
    /// process or another unit, claimed by two units.
    pub problem: Option<String>,
}

/// Builds the port map from listeners, the watched list and the managed units'
/// expected ports (`(port, unit)` pairs; two units may claim one port).
pub fn port_map(
    listeners: &[Listener],
    watched: &[u16],
    expected: &[(u16, String)],
    host: &str,
) -> Vec<PortInfo> {
    use std::collections::BTreeMap;
    let mut by_port: BTreeMap<u16, Option<&Listener>> = BTreeMap::new();
    for &port in watched {
        by_port.insert(port, None);
    }
    for (port, _) in expected {
        by_port.entry(*port).or_insert(None);
    }
    for l in listeners {
        let owned_by_service = l.unit.as_deref().is_some_and(|u| u.ends_with(".service"));
        match by_port.get_mut(&l.port) {
            // Prefer the listener that names its owner.
            Some(slot) if slot.is_none_or(|s| s.pid.is_none() && l.pid.is_some()) => {
                *slot = Some(l);
            }
            Some(_) => {}
            None if owned_by_service => {
                by_port.insert(l.port, Some(l));
            }
            None => {}
        }
    }
    let host = host.rsplit_once(':').map(|(h, _)| h).unwrap_or(host);
    by_port
        .into_iter()
        .map(|(port, listener)| {
            let claims: Vec<&str> = expected
                .iter()
                .filter(|(p, _)| *p == port)
                .map(|(_, u)| u.as_str())
                .collect();
            let expected_unit = claims.first().map(|u| u.to_string());
            let unit = listener.and_then(|l| l.unit.clone());
            let problem = if claims.len() > 1 {
                Some(format!("claimed by {}", claims.join(" and ")))
            } else {
                match (listener, &expected_unit) {
                    (None, Some(e)) => Some(format!("{e} should listen here but nothing does")),
                    (Some(l), Some(e)) if l.unit.as_deref() != Some(e) => Some(format!(
                        "held by {}, not {e}",
                        l.unit
                            .clone()
                            .or_else(|| l.process.clone())
                            .unwrap_or("an unknown process".into())
                    )),
                    (Some(l), None)
                        if !l.unit.as_deref().is_some_and(|u| u.ends_with(".service")) =>
                    {
                        Some(format!(
                            "held by {}, outside any service",
                            l.process.clone().unwrap_or("an unknown process".into())
                        ))
                    }
                    _ => None,
                }
            };
            PortInfo {
                port,
                watched: watched.contains(&port),
                state: if listener.is_some() {
                    "listening"
                } else {
                    "free"
                },
                pid: listener.and_then(|l| l.pid),
                process: listener.and_then(|l| l.process.clone()),
                unit,
                expected_unit,
                url: listener.map(|_| format!("http://{host}:{port}/")),
                problem,
            }
        })
        .collect()
}

#[cfg(test)]
mod port_map_tests {
    use super::*;

    fn listener(port: u16, unit: Option<&str>, process: &str) -> Listener {
        Listener {
            port,
            addr: "127.0.0.1".parse().unwrap(),
            inode: port as u64,
            pid: Some(100 + port as u32),
            process: Some(process.into()),
            unit: unit.map(String::from),
        }
    }

    #[test]
    fn watched_expected_and_stray_ports_are_told_apart() {
        let listeners = vec![
            listener(8035, Some("unitdeck.service"), "unitdeck"),
            listener(8037, Some("session-1.scope"), "python3"),
            listener(8038, Some("shop.service"), "node"),
            listener(9000, Some("other.service"), "x"),
            listener(9999, None, "stray"),
        ];
        let expected = vec![
            (8036, "api.service".to_string()),
            (8038, "shop.service".to_string()),
            (8039, "a.service".to_string()),
            (8039, "b.service".to_string()),
        ];
        let map = port_map(
            &listeners,
            &[4035, 8035, 8036, 8037, 8038],
            &expected,
            "box:8035",
        );
        let row = |p: u16| map.iter().find(|r| r.port == p).unwrap();
        assert_eq!(row(4035).state, "free");
        assert!(row(4035).problem.is_none() && row(4035).url.is_none());
        assert_eq!(row(8035).unit.as_deref(), Some("unitdeck.service"));
        assert_eq!(row(8035).url.as_deref(), Some("http://box:8035/"));
        assert!(
            row(8036)
                .problem
                .as_deref()
                .unwrap()
                .contains("nothing does")
        );
        assert!(
            row(8037)
                .problem
                .as_deref()
                .unwrap()
                .contains("outside any service")
        );
        assert_eq!(row(8037).pid, Some(8137));
        assert_eq!(row(8038).expected_unit.as_deref(), Some("shop.service"));
        assert!(row(8038).problem.is_none());
        assert!(
            row(8039)
                .problem
                .as_deref()
                .unwrap()
                .contains("a.service and b.service")
        );
        assert!(!row(9000).watched && row(9000).state == "listening");
        assert!(
            map.iter().all(|r| r.port != 9999),
            "strays only on watched ports"
        );
    }
}
