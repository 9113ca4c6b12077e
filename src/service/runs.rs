//! A unit's runs, and the jobs: every timer with its schedule as written, its next and
//! last elapse, and the last runs of what it starts.
//!
//! Runs come from PID 1's journal entries (`journal::unit_runs`); what started each one
//! is the first that applies of:
//! - `restart`: Restart= scheduled it (the journal says so);
//! - `timer` or `manual`: unitdeck saw it start (a timer fired just before it, or it was
//!   unitdeck's own start job) and recorded that;
//! - `manual`: a restart job (`systemctl restart`);
//! - `timer`: it started just after the last time a timer that starts it fired (only the
//!   last trigger of a timer is known to systemd);
//! - `boot`: it started while the system booted;
//! - `manual`: nothing (no timer, socket or path unit) starts it otherwise;
//! - null: not known.
//!
//! The current run's end comes from systemd when the journal has not written it yet.

use std::collections::HashMap;

use futures_util::{StreamExt, stream};
use serde::Serialize;
use utoipa::ToSchema;

use super::units::checked_unit_name;
use crate::error::{AppError, AppResult};
use crate::service::Services;
use crate::systemd::journal::{self, JournalRun, LogEntry, Restarted};
use crate::systemd::{Trigger, format_usec};
use crate::unitfile::timers::{schedule_settings, timespan};

/// The most runs one request returns.
pub const MAX_RUNS: usize = 200;
/// Runs shown per job.
pub const JOB_RUNS: usize = 5;
/// A run that began this long after its timer fired was started by it.
const TIMER_WINDOW_USEC: u64 = 2_000_000;
/// Timers read at once for the jobs list.
const PARALLEL: usize = 4;
/// Around a run's first and last entry of PID 1, the lines of its processes: one written
/// just before "Starting", or received by journald just after the end.
const RUN_MARGIN_BEFORE_USEC: u64 = 200_000;
const RUN_MARGIN_AFTER_USEC: u64 = 500_000;

/// One run of a unit.
#[derive(Debug, Clone, PartialEq, Serialize, ToSchema)]
pub struct Run {
    /// systemd's InvocationID (32 hex digits); null for refused starts.
    pub invocation_id: Option<String>,
    /// RFC 3339, µs, UTC.
    pub started_at: String,
    /// Null while it runs, and when its end is not known.
    pub ended_at: Option<String>,
    /// How long it ran (so far, while it runs); null when its end is not known.
    pub duration_ms: Option<u64>,
    /// systemd's result (`success`, `exit-code`, `signal`, `timeout`, `core-dump`,
    /// `watchdog`, `start-limit-hit`, ...), `running`, or `unknown` (the journal holds
    /// no end of it: rotated away, or unitdeck stopped watching it).
    pub result: String,
    /// The main process's exit code when it exited with one (null when it was killed,
    /// or succeeded).
    pub exit_status: Option<i32>,
    /// What started it; null when not known.
    pub trigger: Option<Trigger>,
    /// Refused starts (`start-limit-hit`) this entry stands for; 0 for a run.
    pub refused_starts: u32,
}

impl Run {
    /// Whether it ended other than well.
    pub fn failed(&self) -> bool {
        !matches!(self.result.as_str(), "success" | "running" | "unknown")
    }
}

/// One setting of a timer's schedule, as written.
#[derive(Debug, Clone, PartialEq, Serialize, ToSchema)]
pub struct Schedule {
    /// `OnCalendar`, `OnBootSec`, `OnUnitActiveSec`, ...
    pub setting: String,
    /// e.g. `daily`, `Mon *-*-* 09:00`, `15min`.
    pub value: String,
}

/// A timer and the runs of what it starts (`GET /api/v1/timers`).
#[derive(Debug, Clone, PartialEq, Serialize, ToSchema)]
pub struct TimerJob {
    /// The timer, e.g. `nightly.timer`.
    pub name: String,
    pub description: Option<String>,
    /// The timer's own state (`active` while it waits for its next elapse).
    pub active_state: Option<String>,
    pub sub_state: Option<String>,
    /// The timer's enablement.
    pub unit_file_state: Option<String>,
    /// Created by unitdeck.
    pub managed: bool,
    /// From its unit file and drop-ins; systemd's normalised form when they cannot
    /// be read.
    pub schedules: Vec<Schedule>,
    /// RFC 3339; null while its service runs or when nothing is due.
    pub next_elapse: Option<String>,
    pub last_trigger: Option<String>,
    /// `Persistent=`: a run missed while the machine was off is made up at boot.
    pub persistent: bool,
    /// The unit it starts.
    pub service: Option<String>,
    /// That unit's active state.
    pub service_state: Option<String>,
    /// That unit's last runs, newest first (at most 5).
    pub last_runs: Vec<Run>,
}

impl Services {
    /// The newest `limit` runs of a unit, newest first.
    pub async fn unit_runs(&self, name: &str, limit: usize) -> AppResult<Vec<Run>> {
        let name = checked_unit_name(name)?;
        // An alias answers for the unit it stands for.
        let name = self.systemd.find(name).await?.name;
        let found = journal::unit_runs(&name, limit)
            .await
            .map_err(AppError::internal)?;
        if found.is_empty() {
            return Ok(Vec::new());
        }
        let invocations: Vec<&str> = found
            .iter()
            .filter_map(|r| r.invocation_id.as_deref())
            .collect();
        let recorded: HashMap<String, Trigger> = self
            .db
            .run_triggers(&name, &invocations)
            .await?
            .into_iter()
            .filter_map(|(id, t)| Some((id, Trigger::parse(&t)?)))
            .collect();
        let starters = self.systemd.starters_of(&name);
        let timers: Vec<u64> = starters
            .iter()
            .filter_map(|s| s.last_trigger_usec)
            .collect();
        let lifetime = self.systemd.lifetime().await.ok();
        // Boots before this systemd's: only the journal knows when they finished.
        let earlier = lifetime.is_some_and(|(started, _)| {
            found
                .iter()
                .any(|r| r.started_usec < started && r.restarted.is_none())
        });
        let startups = if earlier {
            journal::startups().await.unwrap_or_default()
        } else {
            HashMap::new()
        };
        let now = self.systemd.moment(&name);
        let running = now.as_ref().is_some_and(|m| {
            matches!(
                m.active_state.as_deref(),
                Some("activating" | "active" | "deactivating" | "reloading")
            )
        });
        let current = now.and_then(|m| m.invocation_id);
        // The journal may not have the end of the run that just ended yet.
        let newest_open = found.first().is_some_and(|r| r.result.is_none());
        let ended = if newest_open && !running {
            self.systemd.ended_run(&name).await.ok().flatten()
        } else {
            None
        };
        let boot = |r: &JournalRun| match lifetime {
            Some((started, finished)) if r.started_usec >= started => {
                finished.is_none_or(|f| r.started_usec < f)
            }
            _ => r
                .boot_id
                .as_ref()
                .and_then(|b| startups.get(b).copied().flatten())
                .zip(r.started_monotonic)
                .is_some_and(|(finished, at)| at < finished),
        };
        let now_usec = chrono::Utc::now().timestamp_micros().max(0) as u64;
        Ok(found
            .into_iter()
            .map(|r| {
                let invocation = r.invocation_id.as_deref();
                let trigger = if r.refused_starts > 0 {
                    None
                } else if r.restarted == Some(Restarted::Automatically) {
                    Some(Trigger::Restart)
                } else if let Some(t) = invocation.and_then(|i| recorded.get(i)) {
                    Some(*t)
                } else if r.restarted == Some(Restarted::OnRequest) {
                    Some(Trigger::Manual)
                } else if timers
                    .iter()
                    .any(|t| r.started_usec >= *t && r.started_usec - t < TIMER_WINDOW_USEC)
                {
                    Some(Trigger::Timer)
                } else if boot(&r) {
                    Some(Trigger::Boot)
                } else if starters.is_empty() {
                    Some(Trigger::Manual)
                } else {
                    None
                };
                let (result, ended_usec, exit_status) = match &r.result {
                    Some(result) => (result.clone(), r.ended_usec, r.exit_status),
                    None if running && invocation.is_some() && invocation == current.as_deref() => {
                        ("running".to_string(), None, None)
                    }
                    None => match ended
                        .as_ref()
                        .filter(|e| Some(e.invocation_id.as_str()) == invocation)
                    {
                        Some(e) => (
                            e.result.clone().unwrap_or_else(|| "unknown".into()),
                            e.ended_usec,
                            e.exit_status,
                        ),
                        None => ("unknown".to_string(), None, None),
                    },
                };
                let until = match result.as_str() {
                    "running" => Some(now_usec),
                    _ => ended_usec,
                };
                // By the monotonic clock where the journal has it: a wall clock that is
                // set meanwhile (NTP) would stretch or shrink the run.
                let duration_ms = match (r.started_monotonic, r.ended_monotonic) {
                    (Some(a), Some(b)) if r.result.is_some() => Some(b.saturating_sub(a) / 1000),
                    _ => until.map(|u| u.saturating_sub(r.started_usec) / 1000),
                };
                Run {
                    invocation_id: r.invocation_id.clone(),
                    started_at: format_usec(r.started_usec).unwrap_or_default(),
                    ended_at: ended_usec.and_then(format_usec),
                    duration_ms,
                    result,
                    exit_status,
                    trigger,
                    refused_starts: r.refused_starts,
                }
            })
            .collect())
    }

    /// The last `lines` log lines of a run that has ended: its entries, and those of its
    /// unit in its time span that journald could not tie to any run (a process that exits
    /// right after writing is often gone before journald reads its cgroup, and its last
    /// lines, often the reason it failed, carry no invocation). None while the run goes
    /// on, or when the journal has no start of it: its invocation filter, followed live,
    /// shows what there is.
    pub async fn run_log(
        &self,
        name: &str,
        invocation: &str,
        lines: usize,
    ) -> AppResult<Option<Vec<LogEntry>>> {
        let name = checked_unit_name(name)?;
        let now = self.systemd.moment(name);
        let current = now
            .as_ref()
            .is_some_and(|m| m.invocation_id.as_deref() == Some(invocation));
        let running = now.as_ref().is_some_and(|m| {
            matches!(
                m.active_state.as_deref(),
                Some("activating" | "active" | "deactivating" | "reloading")
            )
        });
        if current && running {
            return Ok(None);
        }
        let Some(run) = journal::run_of(name, invocation)
            .await
            .map_err(AppError::internal)?
        else {
            return Ok(None);
        };
        // Ended, though the journal may not have its end yet: until now.
        let until = run
            .ended_usec
            .unwrap_or_else(|| chrono::Utc::now().timestamp_micros().max(0) as u64);
        let entries = journal::run_entries(
            name,
            invocation,
            run.started_usec.saturating_sub(RUN_MARGIN_BEFORE_USEC),
            until + RUN_MARGIN_AFTER_USEC,
            lines,
        )
        .await
        .map_err(AppError::internal)?;
        Ok(Some(entries))
    }

    /// The names of every timer, sorted.
    pub fn timer_names(&self) -> AppResult<Vec<String>> {
        self.require_bus_seen()?;
        let mut names = self.systemd.timer_names();
        names.sort();
        Ok(names)
    }

    /// Every timer with the last runs of what it starts, by name.
    pub async fn timer_jobs(&self) -> AppResult<Vec<TimerJob>> {
        let names = self.timer_names()?;
        let jobs: Vec<AppResult<TimerJob>> = stream::iter(names)
            .map(|name| async move { self.timer_job(&name).await })
            .buffered(PARALLEL)
            .collect()
            .await;
        // A timer gone between the list and its read is simply not listed.
        jobs.into_iter()
            .filter(|j| !matches!(j, Err(AppError::NotFound(_))))
            .collect()
    }

    /// One timer as the jobs page shows it.
    pub async fn timer_job(&self, name: &str) -> AppResult<TimerJob> {
        let name = checked_unit_name(name)?;
        let t = self.systemd.timer(name).await?;
        let mut texts = Vec::new();
        for path in t.fragment_path.iter().chain(&t.drop_in_paths) {
            if let Ok(text) = tokio::fs::read_to_string(path).await {
                texts.push(text);
            }
        }
        let mut schedules: Vec<Schedule> = schedule_settings(&texts)
            .into_iter()
            .map(|(setting, value)| Schedule { setting, value })
            .collect();
        if schedules.is_empty() {
            schedules = t
                .calendar
                .iter()
                .map(|c| Schedule {
                    setting: "OnCalendar".into(),
                    value: c.clone(),
                })
                .chain(t.monotonic.iter().map(|(base, usec)| Schedule {
                    setting: base.replace("USec", "Sec"),
                    value: timespan(*usec),
                }))
                .collect();
        }
        let service_state = t
            .unit
            .as_deref()
            .and_then(|s| self.systemd.summary(s))
            .and_then(|s| s.active_state);
        let last_runs = match &t.unit {
            Some(service) => match self.unit_runs(service, JOB_RUNS).await {
                Ok(runs) => runs,
                Err(AppError::NotFound(_)) => Vec::new(),
                Err(e) => return Err(e),
            },
            None => Vec::new(),
        };
        Ok(TimerJob {
            name: t.summary.name.clone(),
            description: t.summary.description.clone(),
            active_state: t.summary.active_state.clone(),
            sub_state: t.summary.sub_state.clone(),
            unit_file_state: t.summary.unit_file_state.clone(),
            managed: t.summary.managed,
            schedules,
            next_elapse: t.next_elapse_usec.and_then(format_usec),
            last_trigger: t.last_trigger_usec.and_then(format_usec),
            persistent: t.persistent,
            service: t.unit,
            service_state,
            last_runs,
        })
    }

    /// The timer whose job `unit` is: the timer itself, or a timer that starts it.
    pub fn timer_of(&self, unit: &str) -> Option<String> {
        if unit.ends_with(".timer") {
            return Some(unit.to_string());
        }
        self.systemd
            .starters_of(unit)
            .into_iter()
            .map(|s| s.name)
            .find(|n| n.ends_with(".timer"))
    }
}
