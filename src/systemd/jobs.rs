//! Timers and the runs of what they start, as systemd reports them now: a timer's
//! schedule, next and last elapse; which units start a unit; how a unit's last run ended;
//! when PID 1 started and finished booting.

use super::cache::{Systemd, string_prop};
use super::names::{unit_object_path, unit_type};
use super::props::{
    PropertyMap, UnitRecord, bool_of, calendar_specs, i32_of, monotonic_specs, string, u64_of,
};
use super::{SystemdError, UnitSummary};

/// A timer as the jobs page shows it.
#[derive(Debug, Clone)]
pub struct TimerState {
    pub summary: UnitSummary,
    /// The unit it starts (`Unit=`, by default the service of the same name).
    pub unit: Option<String>,
    pub persistent: bool,
    /// OnCalendar= expressions as systemd normalised them (`daily` reads
    /// `*-*-* 00:00:00`).
    pub calendar: Vec<String>,
    /// Monotonic settings as systemd reports them: (`OnBootUSec`, µs).
    pub monotonic: Vec<(String, u64)>,
    /// The next elapse (µs since the epoch); None while its unit runs or when none is due.
    pub next_elapse_usec: Option<u64>,
    pub last_trigger_usec: Option<u64>,
    pub fragment_path: Option<String>,
    pub drop_in_paths: Vec<String>,
}

/// How a unit's last run ended, as systemd says now.
#[derive(Debug, Clone, PartialEq)]
pub struct EndedRun {
    pub invocation_id: String,
    pub result: Option<String>,
    /// The main process's exit code, when it exited (not when killed).
    pub exit_status: Option<i32>,
    /// When the unit came to rest (µs since the epoch).
    pub ended_usec: Option<u64>,
}

/// A unit that starts another (a timer, socket or path unit), and when it last did, if
/// it is a timer.
#[derive(Debug, Clone, PartialEq)]
pub struct Starter {
    pub name: String,
    pub last_trigger_usec: Option<u64>,
}

impl Systemd {
    /// Names of the timers in the cache.
    pub fn timer_names(&self) -> Vec<String> {
        let units = self.inner.units.read().unwrap();
        units
            .values()
            .filter(|r| r.is_read() && unit_type(&r.name) == "timer")
            .map(|r| r.name.clone())
            .collect()
    }

    /// The units that start `name` (its TriggeredBy: timers, sockets, paths).
    pub fn starters_of(&self, name: &str) -> Vec<Starter> {
        let units = self.inner.units.read().unwrap();
        units
            .values()
            .filter(|r| r.triggers.iter().any(|t| t == name))
            .map(|r| Starter {
                name: r.name.clone(),
                last_trigger_usec: r.last_trigger_usec,
            })
            .collect()
    }

    /// One timer read fresh from systemd (Unit and Timer interfaces), cached on the way.
    pub async fn timer(&self, name: &str) -> Result<TimerState, SystemdError> {
        if unit_type(name) != "timer" {
            return Err(SystemdError::NoSuchUnit(format!("{name} is not a timer")));
        }
        let (record, unit_props, timer) = self.read_full(name).await?;
        let usec = |key: &str| {
            timer
                .get(key)
                .and_then(u64_of)
                .filter(|v| *v != 0 && *v != u64::MAX)
        };
        // A monotonic-only timer has no realtime elapse: its monotonic one, placed on the
        // wall clock. u64::MAX while its unit runs: nothing is due.
        let running = timer
            .get("NextElapseUSecRealtime")
            .and_then(u64_of)
            .is_some_and(|v| v == u64::MAX);
        let next_elapse_usec = usec("NextElapseUSecRealtime")
            .or_else(|| usec("NextElapseUSecMonotonic").map(monotonic_to_realtime))
            .filter(|_| !running);
        Ok(TimerState {
            summary: self.summary_of(&record),
            unit: timer.get("Unit").and_then(string),
            persistent: timer.get("Persistent").and_then(bool_of).unwrap_or(false),
            calendar: timer
                .get("TimersCalendar")
                .map(calendar_specs)
                .unwrap_or_default(),
            monotonic: timer
                .get("TimersMonotonic")
                .map(monotonic_specs)
                .unwrap_or_default(),
            next_elapse_usec,
            last_trigger_usec: usec("LastTriggerUSec"),
            fragment_path: record.fragment_path.clone(),
            drop_in_paths: unit_props
                .get("DropInPaths")
                .map(super::props::strings)
                .unwrap_or_default(),
        })
    }

    /// A unit's Unit and type-specific properties, read fresh and stored in the cache; its
    /// record (an alias's is the unit it stands for).
    pub(super) async fn read_full(
        &self,
        name: &str,
    ) -> Result<(UnitRecord, PropertyMap, PropertyMap), SystemdError> {
        let bus = self.bus()?;
        let path = bus.load_unit(name).await?;
        let (unit_props, type_props, stamp) = bus.unit_properties(path.as_str(), name).await?;
        if string_prop(&unit_props, "LoadState").as_deref() == Some("not-found") {
            return Err(SystemdError::NoSuchUnit(name.to_string()));
        }
        let id = string_prop(&unit_props, "Id").unwrap_or_else(|| name.to_string());
        let record = self
            .store(&id, &unit_props, &type_props, stamp.as_ref())
            .ok_or_else(|| SystemdError::NoSuchUnit(id.clone()))?;
        Ok((record, unit_props, type_props))
    }

    /// How the unit's current invocation ended, when it is at rest; None while it runs
    /// or when systemd has no invocation for it (never started, or unloaded since).
    pub async fn ended_run(&self, name: &str) -> Result<Option<EndedRun>, SystemdError> {
        let bus = self.bus()?;
        let path = unit_object_path(name);
        let unit = bus
            .fields(
                &path,
                "org.freedesktop.systemd1.Unit",
                &["InvocationID", "ActiveState", "InactiveEnterTimestamp"],
            )
            .await;
        let mut record = UnitRecord::new(name.to_string());
        record.apply(&unit);
        let Some(invocation_id) = record.invocation_id.clone() else {
            return Ok(None);
        };
        if !super::is_at_rest(record.active_state.as_deref()) {
            return Ok(None);
        }
        let service = bus
            .service_fields(&path, &["Result", "ExecMainCode", "ExecMainStatus"])
            .await;
        let code = service.get("ExecMainCode").and_then(i32_of);
        Ok(Some(EndedRun {
            invocation_id,
            result: service.get("Result").and_then(string),
            exit_status: service
                .get("ExecMainStatus")
                .and_then(i32_of)
                .filter(|_| code == Some(1)),
            ended_usec: unit
                .get("InactiveEnterTimestamp")
                .and_then(u64_of)
                .filter(|v| *v != 0),
        }))
    }

    /// When this systemd started (UserspaceTimestamp) and finished booting
    /// (FinishTimestamp, None while it boots), µs since the epoch.
    pub async fn lifetime(&self) -> Result<(u64, Option<u64>), SystemdError> {
        let bus = self.bus()?;
        let manager = bus.manager();
        let started = manager.userspace_timestamp().await?;
        let finished = manager.finish_timestamp().await?;
        Ok((started, (finished != 0).then_some(finished)))
    }
}

/// A CLOCK_MONOTONIC time (µs) as a wall-clock time (µs since the epoch).
fn monotonic_to_realtime(monotonic_usec: u64) -> u64 {
    let mut now = libc::timespec {
        tv_sec: 0,
        tv_nsec: 0,
    };
    // SAFETY: clock_gettime writes one timespec into the valid pointer it is given.
    unsafe { libc::clock_gettime(libc::CLOCK_MONOTONIC, &mut now) };
    let mono_now = now.tv_sec as u64 * 1_000_000 + now.tv_nsec as u64 / 1000;
    let real_now = super::transitions::now_usec();
    (real_now + monotonic_usec).saturating_sub(mono_now)
}
