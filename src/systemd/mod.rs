//! Everything that speaks to systemd. Only this module imports zbus.
//!
//! - `manager`: the bus connection and the Manager calls (list, load, actions, reload).
//! - `cache`, `watcher`, `stats`: the signal-driven unit cache that requests read.
//! - `transitions`: typed changes found in what the signals store (failures, restarts,
//!   runs and their triggers).
//! - `jobs`: timers (schedule, next and last elapse) and how a unit's runs began and ended.
//! - `journal`: the journalctl readers and followers behind the log streams, and the
//!   runs of a unit as PID 1 logged them.

mod actions;
mod cache;
mod guard;
mod jobs;
pub mod journal;
mod manager;
pub mod names;
mod props;
mod stats;
mod transitions;
mod watcher;

use serde::Serialize;
use utoipa::ToSchema;

pub use cache::{Sample, Systemd, UnitEvent, UnitFilter, is_at_rest};
pub use guard::Resolved;
pub use jobs::{EndedRun, Starter, TimerState};
pub use manager::{ActionOutcome, JOB_WAIT, JobInfo, JobResult, UnitAction};
pub use transitions::{FAILURE_DEBOUNCE, Trigger, UnitChange, UnitMoment};

/// Health of a managed unit as the probes see it.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, ToSchema)]
#[serde(rename_all = "lowercase")]
pub enum Health {
    Healthy,
    Unhealthy,
    Unknown,
}

impl Health {
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Healthy => "healthy",
            Self::Unhealthy => "unhealthy",
            Self::Unknown => "unknown",
        }
    }
}

/// What lists, the events stream and the dashboard show of a unit (API.md "unit summary").
#[derive(Debug, Clone, PartialEq, Serialize, ToSchema)]
pub struct UnitSummary {
    pub name: String,
    pub description: Option<String>,
    #[serde(rename = "type")]
    pub unit_type: String,
    pub load_state: Option<String>,
    pub active_state: Option<String>,
    pub sub_state: Option<String>,
    pub unit_file_state: Option<String>,
    pub main_pid: Option<u32>,
    pub memory_bytes: Option<u64>,
    pub cpu_usage_ns: Option<u64>,
    /// When the unit last entered the active state (RFC 3339, µs, UTC).
    pub active_since: Option<String>,
    pub n_restarts: Option<u32>,
    /// Created by unitdeck.
    pub managed: bool,
    /// unitdeck refuses stop/disable/mask on it.
    pub protected: bool,
    pub health: Option<Health>,
}

/// Timer fields of a `.timer` unit.
#[derive(Debug, Clone, PartialEq, Serialize, ToSchema)]
pub struct TimerInfo {
    /// The OnCalendar= expressions, joined by "; ".
    pub schedule: Option<String>,
    pub next_elapse: Option<String>,
    pub last_trigger: Option<String>,
}

/// `GET /api/v1/units/{name}`: the summary plus what a detail view needs.
#[derive(Debug, Clone, PartialEq, Serialize, ToSchema)]
pub struct UnitDetail {
    #[serde(flatten)]
    pub summary: UnitSummary,
    pub fragment_path: Option<String>,
    /// Every drop-in file systemd applies to the unit, in the order it applies them
    /// (`DropInPaths`): also those of `service.d/` and prefix directories.
    pub drop_in_paths: Vec<String>,
    /// Each ExecStart= command as its argv.
    pub exec_start: Vec<Vec<String>>,
    pub requires: Vec<String>,
    pub wants: Vec<String>,
    pub after: Vec<String>,
    pub before: Vec<String>,
    pub required_by: Vec<String>,
    pub wanted_by: Vec<String>,
    /// TCP ports its processes listen on.
    pub listen_ports: Vec<u16>,
    pub invocation_id: Option<String>,
    pub timer: Option<TimerInfo>,
}

/// Errors from talking to systemd, mapped onto the HTTP error type.
#[derive(Debug, thiserror::Error)]
pub enum SystemdError {
    #[error("the system bus is not connected: {0}")]
    Disconnected(String),
    #[error("unit {0} not found")]
    NoSuchUnit(String),
    #[error("{0}")]
    Refused(String),
    #[error("D-Bus call failed: {0}")]
    Bus(String),
}

impl From<zbus::Error> for SystemdError {
    fn from(err: zbus::Error) -> Self {
        if let zbus::Error::MethodError(name, message, _) = &err {
            let detail = message.clone().unwrap_or_default();
            return match name.as_str() {
                // UnknownObject: a unit object path for a name systemd cannot load.
                "org.freedesktop.systemd1.NoSuchUnit"
                | "org.freedesktop.systemd1.LoadFailed"
                | "org.freedesktop.DBus.Error.UnknownObject" => Self::NoSuchUnit(detail),
                "org.freedesktop.DBus.Error.ServiceUnknown"
                | "org.freedesktop.DBus.Error.NoReply"
                | "org.freedesktop.DBus.Error.Disconnected" => Self::Disconnected(detail),
                _ if name.starts_with("org.freedesktop.systemd1.") => {
                    Self::Refused(format!("{}: {detail}", name.as_str()))
                }
                _ => Self::Bus(format!("{}: {detail}", name.as_str())),
            };
        }
        match err {
            zbus::Error::InputOutput(e) => Self::Disconnected(e.to_string()),
            other => Self::Bus(other.to_string()),
        }
    }
}

impl From<zbus::fdo::Error> for SystemdError {
    fn from(err: zbus::fdo::Error) -> Self {
        Self::from(zbus::Error::from(err))
    }
}

/// Formats a systemd realtime timestamp (µs since the epoch; 0 = never) as RFC 3339.
pub fn format_usec(usec: u64) -> Option<String> {
    if usec == 0 || usec == u64::MAX {
        return None;
    }
    let secs = (usec / 1_000_000) as i64;
    let nanos = ((usec % 1_000_000) * 1000) as u32;
    chrono::DateTime::from_timestamp(secs, nanos)
        .map(|t| t.to_rfc3339_opts(chrono::SecondsFormat::Micros, true))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn timestamps_format_with_microseconds_in_utc() {
        assert_eq!(
            format_usec(1_795_857_200_123_456).as_deref(),
            Some("2026-11-28T09:13:20.123456Z")
        );
        assert_eq!(format_usec(0), None);
        assert_eq!(format_usec(u64::MAX), None);
    }
}
