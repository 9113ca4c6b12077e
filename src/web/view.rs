//! Display forms of domain values for the templates.

use crate::service::Services;
use crate::systemd::Sample;
use crate::systemd::names::takes_the_system_down;
use crate::systemd::{Health, UnitSummary};

/// A unit as a dashboard row / card shows it.
pub struct UnitView {
    pub name: String,
    /// An HTML id derived from the name (ids with `@` or `\` are legal but awkward in selectors).
    pub dom_id: String,
    /// The URL path segment for the name.
    pub href: String,
    pub description: String,
    pub state: String,
    pub sub_state: String,
    pub enabled: String,
    pub since: Option<String>,
    pub pid: String,
    pub memory: String,
    pub restarts: String,
    pub managed: bool,
    pub protected: bool,
    /// Shown first on the dashboard (`Services::set_pinned`).
    pub pinned: bool,
    pub health: Option<&'static str>,
    pub buttons: Vec<ActionButton>,
    /// Memory over the last minutes as inline SVG (empty until sampled).
    pub memory_spark: String,
}

pub struct ActionButton {
    pub action: &'static str,
    pub label: &'static str,
    pub class: &'static str,
    /// A question asked before acting (stopping things people rely on).
    pub confirm: Option<String>,
}

impl UnitView {
    /// The view with its memory sparkline from the cache's samples.
    pub fn of(services: &Services, u: &UnitSummary) -> Self {
        let (memory, _) = resource_series(&services.unit_samples(&u.name));
        Self {
            memory_spark: sparkline(&memory, &format!("memory of {}", u.name)),
            pinned: services.is_pinned(&u.name),
            ..Self::new(u)
        }
    }

    pub fn new(u: &UnitSummary) -> Self {
        let state = u.active_state.clone().unwrap_or_else(|| "unknown".into());
        Self {
            dom_id: dom_id(&u.name),
            href: format!("units/{}", crate::http::urlencode(&u.name)),
            name: u.name.clone(),
            description: u.description.clone().unwrap_or_default(),
            sub_state: u.sub_state.clone().unwrap_or_default(),
            enabled: u.unit_file_state.clone().unwrap_or_else(|| "—".into()),
            since: u.active_since.clone(),
            pid: u
                .main_pid
                .map(|p| p.to_string())
                .unwrap_or_else(|| "—".into()),
            memory: u
                .memory_bytes
                .map(human_bytes)
                .unwrap_or_else(|| "—".into()),
            restarts: u
                .n_restarts
                .map(|n| n.to_string())
                .unwrap_or_else(|| "—".into()),
            managed: u.managed,
            protected: u.protected,
            pinned: false,
            health: u.health.map(Health::as_str),
            buttons: buttons(u, &state),
            memory_spark: String::new(),
            state,
        }
    }
}

/// Dashboard rows: the pinned units first, in the order they were pinned, then the rest
/// in the order given.
pub fn rows(services: &Services, units: &[UnitSummary]) -> Vec<UnitView> {
    let pins = services.pinned_units();
    let mut rows: Vec<UnitView> = units.iter().map(|u| UnitView::of(services, u)).collect();
    rows.sort_by_key(|r| pins.iter().position(|p| *p == r.name).unwrap_or(usize::MAX));
    rows
}

fn buttons(u: &UnitSummary, state: &str) -> Vec<ActionButton> {
    let running = matches!(
        state,
        "active" | "activating" | "reloading" | "deactivating"
    );
    let confirm = |verb: &str| {
        Some(format!(
            "{verb} {}? Anything using it will lose it.",
            u.name
        ))
    };
    // Starting these would power off, reboot or isolate the container: no button.
    let down = takes_the_system_down(&u.name);
    let mut out = Vec::new();
    if running {
        if !u.protected {
            out.push(ActionButton {
                action: "stop",
                label: "Stop",
                class: "danger",
                confirm: confirm("Stop"),
            });
        }
        if !down {
            out.push(ActionButton {
                action: "restart",
                label: "Restart",
                class: "",
                // dbus, journald, unitdeck itself: everything notices the gap.
                confirm: u.protected.then(|| {
                    format!(
                        "Restart {}? It is briefly down for everything using it.",
                        u.name
                    )
                }),
            });
        }
    } else if !down {
        out.push(ActionButton {
            action: "start",
            label: "Start",
            class: "primary",
            confirm: None,
        });
    }
    if state == "failed" {
        out.push(ActionButton {
            action: "reset-failed",
            label: "Reset",
            class: "",
            confirm: None,
        });
    }
    match u.unit_file_state.as_deref() {
        Some("enabled") if !u.protected => out.push(ActionButton {
            action: "disable",
            label: "Disable",
            class: "",
            confirm: confirm("Disable"),
        }),
        Some("disabled") => out.push(ActionButton {
            action: "enable",
            label: "Enable",
            class: "",
            confirm: None,
        }),
        _ => {}
    }
    out
}

/// An inline SVG polyline of `values` scaled to its own range (empty for < 2 points).
pub fn sparkline(values: &[f64], label: &str) -> String {
    if values.len() < 2 {
        return String::new();
    }
    let max = values.iter().cloned().fold(f64::MIN, f64::max);
    let min = values.iter().cloned().fold(f64::MAX, f64::min);
    let span = if max > min { max - min } else { 1.0 };
    let step = 100.0 / (values.len() - 1) as f64;
    let points: Vec<String> = values
        .iter()
        .enumerate()
        .map(|(i, v)| {
            format!(
                "{:.1},{:.1}",
                i as f64 * step,
                30.0 - (v - min) / span * 28.0
            )
        })
        .collect();
    format!(
        "<svg class=\"spark\" viewBox=\"0 0 100 32\" preserveAspectRatio=\"none\" role=\"img\" aria-label=\"{}\"><polyline fill=\"none\" stroke=\"currentColor\" stroke-width=\"1.5\" vector-effect=\"non-scaling-stroke\" points=\"{}\"/></svg>",
        askama::filters::escape(label, askama::filters::Html)
            .map(|e| e.to_string())
            .unwrap_or_default(),
        points.join(" ")
    )
}

/// Memory (bytes) and CPU (% of one core) series from the samples.
pub fn resource_series(samples: &[Sample]) -> (Vec<f64>, Vec<f64>) {
    let memory = samples
        .iter()
        .filter_map(|s| s.memory_bytes)
        .map(|m| m as f64)
        .collect();
    let cpu = samples
        .windows(2)
        .filter_map(|w| {
            let (a, b) = (w[0], w[1]);
            let used = b.cpu_usage_ns?.checked_sub(a.cpu_usage_ns?)? as f64;
            let elapsed_ns = (b.at_ms - a.at_ms) as f64 * 1e6;
            (elapsed_ns > 0.0).then(|| used / elapsed_ns * 100.0)
        })
        .collect();
    (memory, cpu)
}

/// `u-` plus the name with every byte outside `[A-Za-z0-9-]` hex-escaped.
pub fn dom_id(name: &str) -> String {
    let mut id = String::from("u-");
    for b in name.bytes() {
        if b.is_ascii_alphanumeric() || b == b'-' {
            id.push(b as char);
        } else {
            id.push_str(&format!("_{b:02x}"));
        }
    }
    id
}

pub fn human_bytes(bytes: u64) -> String {
    const UNITS: [&str; 5] = ["B", "KiB", "MiB", "GiB", "TiB"];
    let mut value = bytes as f64;
    let mut unit = 0;
    while value >= 1024.0 && unit < UNITS.len() - 1 {
        value /= 1024.0;
        unit += 1;
    }
    if unit == 0 {
        format!("{bytes} B")
    } else {
        format!("{value:.1} {}", UNITS[unit])
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn sparklines_scale_and_cpu_is_a_rate() {
        assert_eq!(sparkline(&[1.0], "x"), "");
        let svg = sparkline(&[0.0, 5.0, 10.0], "memory <x>");
        assert!(
            svg.contains("points=\"0.0,30.0 50.0,16.0 100.0,2.0\""),
            "{svg}"
        );
        assert!(
            svg.contains("memory &#60;x&#62;") || svg.contains("memory &lt;x&gt;"),
            "{svg}"
        );
        let s = |at_ms, cpu| Sample {
            at_ms,
            memory_bytes: Some(1),
            cpu_usage_ns: Some(cpu),
        };
        let (_, cpu) = resource_series(&[s(0, 0), s(1000, 500_000_000)]);
        assert_eq!(cpu, vec![50.0]);
    }

    #[test]
    fn ids_and_sizes() {
        assert_eq!(dom_id("getty@tty1.service"), "u-getty_40tty1_2eservice");
        assert_eq!(human_bytes(512), "512 B");
        assert_eq!(human_bytes(3 * 1024 * 1024 + 512 * 1024), "3.5 MiB");
    }
}
