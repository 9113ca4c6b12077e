//! Display forms of domain values for the templates.

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
    pub health: Option<&'static str>,
    pub buttons: Vec<ActionButton>,
}

pub struct ActionButton {
    pub action: &'static str,
    pub label: &'static str,
    pub class: &'static str,
    /// A question asked before acting (stopping things people rely on).
    pub confirm: Option<String>,
}

impl UnitView {
    pub fn new(u: &UnitSummary) -> Self {
        let state = u.active_state.clone().unwrap_or_else(|| "unknown".into());
        Self {
            dom_id: dom_id(&u.name),
            href: format!("/units/{}", crate::auth::urlencode(&u.name)),
            name: u.name.clone(),
            description: u.description.clone().unwrap_or_default(),
            sub_state: u.sub_state.clone().unwrap_or_default(),
            enabled: u.unit_file_state.clone().unwrap_or_else(|| "—".into()),
            since: u.active_since.clone(),
            pid: u.main_pid.map(|p| p.to_string()).unwrap_or_else(|| "—".into()),
            memory: u.memory_bytes.map(human_bytes).unwrap_or_else(|| "—".into()),
            restarts: u.n_restarts.map(|n| n.to_string()).unwrap_or_else(|| "—".into()),
            managed: u.managed,
            protected: u.protected,
            health: u.health.map(Health::as_str),
            buttons: buttons(u, &state),
            state,
        }
    }
}

fn buttons(u: &UnitSummary, state: &str) -> Vec<ActionButton> {
    let running = matches!(state, "active" | "activating" | "reloading" | "deactivating");
    let confirm = |verb: &str| Some(format!("{verb} {}? Anything using it will lose it.", u.name));
    let mut out = Vec::new();
    if running {
        if !u.protected {
            out.push(ActionButton { action: "stop", label: "Stop", class: "danger", confirm: confirm("Stop") });
        }
        out.push(ActionButton { action: "restart", label: "Restart", class: "", confirm: None });
    } else {
        out.push(ActionButton { action: "start", label: "Start", class: "primary", confirm: None });
    }
    if state == "failed" {
        out.push(ActionButton { action: "reset-failed", label: "Reset", class: "", confirm: None });
    }
    match u.unit_file_state.as_deref() {
        Some("enabled") if !u.protected => out.push(ActionButton {
            action: "disable",
            label: "Disable",
            class: "",
            confirm: confirm("Disable"),
        }),
        Some("disabled") => {
            out.push(ActionButton { action: "enable", label: "Enable", class: "", confirm: None })
        }
        _ => {}
    }
    out
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
    fn ids_and_sizes() {
        assert_eq!(dom_id("getty@tty1.service"), "u-getty_40tty1_2eservice");
        assert_eq!(human_bytes(512), "512 B");
        assert_eq!(human_bytes(3 * 1024 * 1024 + 512 * 1024), "3.5 MiB");
    }
}
