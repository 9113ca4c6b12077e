//! Typed unit changes, detected where systemd's signals arrive (every store into the
//! cache): a unit entering `failed` and staying there, Restart= scheduling a restart, a
//! run starting (with what started it) and ending, a unit becoming active. The domain
//! turns them into notifications; this module knows nothing of channels.

use std::collections::{BTreeMap, HashMap, VecDeque};
use std::time::{Duration, Instant};

use serde::Serialize;
use utoipa::ToSchema;

use super::cache::Systemd;
use super::names::unit_object_path;
use super::props::{PropertyMap, UnitRecord};

/// How long a unit must stay `failed` to count as failed: every crash of a Restart= unit
/// passes through `failed` for about 0.5 ms (at most 1.8 ms measured) on its way to
/// `auto-restart`.
pub const FAILURE_DEBOUNCE: Duration = Duration::from_millis(25);
/// A service started this long after a timer that starts it fired counts as started by
/// it. systemd sets the timer's LastTriggerUSec about 1 ms before it queues the start.
const TIMER_WINDOW_USEC: u64 = 2_000_000;
/// How long unitdeck remembers the start jobs it queued itself.
const OWN_START_TTL: Duration = Duration::from_secs(600);

/// What started a run of a unit.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, ToSchema)]
#[serde(rename_all = "lowercase")]
pub enum Trigger {
    /// A timer that starts the unit fired.
    Timer,
    /// Someone started it: through unitdeck, or (for a unit no timer, socket or path
    /// starts) `systemctl start`, a dependency or D-Bus activation.
    Manual,
    /// Restart= restarted it after the previous run ended.
    Restart,
    /// It started while the system booted.
    Boot,
}

impl Trigger {
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Timer => "timer",
            Self::Manual => "manual",
            Self::Restart => "restart",
            Self::Boot => "boot",
        }
    }

    pub fn parse(s: &str) -> Option<Self> {
        [Self::Timer, Self::Manual, Self::Restart, Self::Boot]
            .into_iter()
            .find(|t| t.as_str() == s)
    }
}

/// A unit's state at a change.
#[derive(Debug, Clone, PartialEq)]
pub struct UnitMoment {
    pub unit: String,
    pub invocation_id: Option<String>,
    pub active_state: Option<String>,
    pub sub_state: Option<String>,
    /// The service's Result (`success`, `exit-code`, `signal`, ...).
    pub result: Option<String>,
    /// The main process's exit code, when it exited (not when it was killed).
    pub exit_status: Option<i32>,
    /// systemd's StateChangeTimestamp of this state (µs since the epoch).
    pub at_usec: u64,
}

/// A change of a unit worth telling someone about.
#[derive(Debug, Clone, PartialEq)]
pub enum UnitChange {
    /// The unit entered `failed` and stayed there ([`FAILURE_DEBOUNCE`]).
    Failed(UnitMoment),
    /// Restart= scheduled a restart (NRestarts went up; it resets on a manual start).
    /// The moment is the unit's as it waits to restart (the run that ended).
    Restarted { unit: UnitMoment, n_restarts: u32 },
    /// A run began (a new InvocationID).
    RunStarted {
        unit: String,
        invocation_id: String,
        trigger: Option<Trigger>,
    },
    /// A run ended: the unit left activating/active/deactivating for inactive or failed.
    RunEnded {
        run: UnitMoment,
        trigger: Option<Trigger>,
    },
    /// The unit became active.
    Active(UnitMoment),
}

/// Starts unitdeck asked for itself: units it is starting (until systemd's reply names
/// the job) and the start jobs it queued.
#[derive(Default)]
pub(super) struct OwnStarts {
    pending: HashMap<String, Instant>,
    jobs: VecDeque<(u32, Instant)>,
}

/// What a store found: a change to tell now, or a failure to confirm after the debounce.
pub(super) enum Found {
    Now(UnitChange),
    ConfirmFailure(String),
}

fn is_running(state: Option<&str>) -> bool {
    matches!(
        state,
        Some("activating" | "active" | "deactivating" | "reloading")
    )
}

fn is_at_rest(state: Option<&str>) -> bool {
    matches!(state, Some("inactive" | "failed"))
}

pub(super) fn now_usec() -> u64 {
    chrono::Utc::now().timestamp_micros().max(0) as u64
}

pub(super) fn moment_of(r: &UnitRecord) -> UnitMoment {
    UnitMoment {
        unit: r.name.clone(),
        invocation_id: r.invocation_id.clone(),
        active_state: r.active_state.clone(),
        sub_state: r.sub_state.clone(),
        result: r.result.clone(),
        // ExecMainCode 1 is CLD_EXITED: the status is an exit code, not a signal.
        exit_status: r.exec_main_status.filter(|_| r.exec_main_code == Some(1)),
        at_usec: r.state_change_usec.unwrap_or_else(now_usec),
    }
}

impl Systemd {
    /// Typed unit changes as they happen (see [`UnitChange`]).
    pub fn subscribe_changes(&self) -> tokio::sync::broadcast::Receiver<UnitChange> {
        self.inner.changes.subscribe()
    }

    /// The unit's state now, as the cache has it.
    pub fn moment(&self, name: &str) -> Option<UnitMoment> {
        let units = self.inner.units.read().unwrap();
        units.get(name).filter(|r| r.is_read()).map(moment_of)
    }

    /// unitdeck is about to start `unit`: its next run is a manual one.
    pub(super) fn note_own_start(&self, unit: &str) {
        let mut own = self.inner.own_starts.lock().unwrap();
        own.pending.insert(unit.to_string(), Instant::now());
    }

    /// systemd queued `job` for unitdeck's start of `unit` (None: it queued none).
    pub(super) fn note_own_job(&self, unit: &str, job: Option<u32>) {
        let mut own = self.inner.own_starts.lock().unwrap();
        own.pending.remove(unit);
        own.jobs.retain(|(_, at)| at.elapsed() < OWN_START_TTL);
        own.pending.retain(|_, at| at.elapsed() < OWN_START_TTL);
        if let Some(job) = job {
            own.jobs.push_back((job, Instant::now()));
        }
    }

    fn is_own_start(&self, unit: &str, job: Option<u32>) -> bool {
        let own = self.inner.own_starts.lock().unwrap();
        own.pending.contains_key(unit)
            || job.is_some_and(|job| own.jobs.iter().any(|(j, _)| *j == job))
    }

    /// What a store into `name`'s record changed that matters beyond the display; called
    /// under the cache lock with the record as it was before.
    pub(super) fn detect(
        &self,
        units: &mut BTreeMap<String, UnitRecord>,
        name: &str,
        before: &UnitRecord,
    ) -> Vec<Found> {
        let mut found = Vec::new();
        let Some(after) = units.get(name) else {
            return found;
        };
        // Each comparison needs the field's past: a unit seen for the first time (or read
        // in full for the first time, after ListUnits) has none. One systemd just loaded
        // was not running before: what it is now, it became after loading (a new unit
        // that failed at once is a failure).
        let new_unit =
            before.active_state.is_none() && self.inner.new_units.lock().unwrap().contains(name);
        let is = after.active_state.clone();
        let (was, is) = match before.active_state.as_deref() {
            Some(was) => (Some(was), is.as_deref()),
            None if new_unit => (Some("inactive"), is.as_deref()),
            None => (None, None),
        };
        if let (Some(a), Some(b)) = (before.n_restarts, after.n_restarts)
            && b > a
        {
            found.push(Found::Now(UnitChange::Restarted {
                unit: moment_of(after),
                n_restarts: b,
            }));
        }
        let new_run = after
            .invocation_id
            .as_ref()
            .filter(|id| {
                (before.invocation_known || new_unit) && before.invocation_id.as_ref() != Some(*id)
            })
            .cloned();
        // A run so short that systemd merged its start and end into one change: a new
        // InvocationID at rest with no job left (a starting unit shows its job).
        let ended_at_once = new_run.is_some() && is_at_rest(is) && after.job_id.is_none();
        let ended = (is_running(was) && is_at_rest(is)) || ended_at_once;
        let job = after.job_id;
        if let Some(invocation_id) = new_run {
            let trigger = self.trigger_of(units, name, before, job);
            if let Some(record) = units.get_mut(name) {
                record.run.trigger = trigger;
            }
            found.push(Found::Now(UnitChange::RunStarted {
                unit: name.to_string(),
                invocation_id,
                trigger,
            }));
        }
        let Some(after) = units.get(name) else {
            return found;
        };
        if ended {
            found.push(Found::Now(UnitChange::RunEnded {
                run: moment_of(after),
                trigger: after.run.trigger,
            }));
        }
        if was.is_some_and(|w| w != "active") && is == Some("active") {
            found.push(Found::Now(UnitChange::Active(moment_of(after))));
        }
        if was.is_some_and(|w| w != "failed") && is == Some("failed") {
            found.push(Found::ConfirmFailure(name.to_string()));
        }
        found
    }

    /// What started the run that just began: Restart= (the unit waited in
    /// `auto-restart`), unitdeck (its own start job), or a timer that fired just now
    /// (each trigger starts one run). Anything else is not known here.
    fn trigger_of(
        &self,
        units: &mut BTreeMap<String, UnitRecord>,
        name: &str,
        before: &UnitRecord,
        job: Option<u32>,
    ) -> Option<super::Trigger> {
        if before.sub_state.as_deref() == Some("auto-restart") {
            return Some(Trigger::Restart);
        }
        if self.is_own_start(name, job) {
            return Some(Trigger::Manual);
        }
        let now = now_usec();
        let (timer, at) = units.iter().find_map(|(timer, t)| {
            let at = t.last_trigger_usec?;
            (t.triggers.iter().any(|u| u == name)
                && now.saturating_sub(at) < TIMER_WINDOW_USEC
                && t.run.trigger_claimed != Some(at))
            .then(|| (timer.clone(), at))
        })?;
        if let Some(t) = units.get_mut(&timer) {
            t.run.trigger_claimed = Some(at);
        }
        Some(Trigger::Timer)
    }

    /// Tells what a store found: changes at once, failures after [`FAILURE_DEBOUNCE`] if
    /// the unit is still failed then, as systemd says at that moment.
    pub(super) fn announce(&self, found: Vec<Found>) {
        for f in found {
            match f {
                Found::Now(change) => {
                    let _ = self.inner.changes.send(change);
                }
                Found::ConfirmFailure(name) => {
                    let Ok(runtime) = tokio::runtime::Handle::try_current() else {
                        continue;
                    };
                    let me = self.clone();
                    runtime.spawn(async move {
                        tokio::time::sleep(FAILURE_DEBOUNCE).await;
                        // A fresh read, not the cache: the watcher may be behind on the
                        // signal that took the unit on to auto-restart.
                        me.read_state(&name).await;
                        me.report_failure(&name);
                    });
                }
            }
        }
    }

    /// Reads the unit's state and result from systemd into the cache (best effort).
    async fn read_state(&self, name: &str) {
        let Ok(bus) = self.bus() else { return };
        let path = unit_object_path(name);
        let Ok((unit, stamp)) = bus
            .get_all_stamped(&path, "org.freedesktop.systemd1.Unit")
            .await
        else {
            return;
        };
        let service = if super::names::unit_type(name) == "service" {
            bus.service_fields(&path, &["Result", "ExecMainCode", "ExecMainStatus"])
                .await
        } else {
            PropertyMap::new()
        };
        self.store(name, &unit, &service, stamp.as_ref());
    }

    /// Announces the unit's failure if it is failed now and this failure (its
    /// StateChangeTimestamp) was not announced yet.
    fn report_failure(&self, name: &str) {
        let moment = {
            let mut units = self.inner.units.write().unwrap();
            let Some(r) = units.get_mut(name) else { return };
            let reported =
                r.state_change_usec.is_some() && r.run.failure_reported == r.state_change_usec;
            if r.active_state.as_deref() != Some("failed") || reported {
                return;
            }
            r.run.failure_reported = r.state_change_usec;
            moment_of(r)
        };
        let _ = self.inner.changes.send(UnitChange::Failed(moment));
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn record(name: &str, state: &str, sub: &str) -> UnitRecord {
        let mut r = UnitRecord::new(name.to_string());
        r.load_state = Some("loaded".into());
        r.active_state = Some(state.into());
        r.sub_state = Some(sub.into());
        r.invocation_known = true;
        r
    }

    fn changes(found: &[Found]) -> Vec<String> {
        found
            .iter()
            .map(|f| match f {
                Found::Now(UnitChange::Failed(_)) => "failed".to_string(),
                Found::Now(UnitChange::Restarted { n_restarts, .. }) => {
                    format!("restarted {n_restarts}")
                }
                Found::Now(UnitChange::RunStarted { trigger, .. }) => {
                    format!("started {}", trigger.map_or("?", Trigger::as_str))
                }
                Found::Now(UnitChange::RunEnded { run, trigger }) => format!(
                    "ended {} {}",
                    run.result.as_deref().unwrap_or("?"),
                    trigger.map_or("?", Trigger::as_str)
                ),
                Found::Now(UnitChange::Active(_)) => "active".to_string(),
                Found::ConfirmFailure(_) => "confirm failure".to_string(),
            })
            .collect()
    }

    /// Stores `after` over `before` in a cache that also holds `others`; what was found.
    fn step(
        systemd: &Systemd,
        units: &mut BTreeMap<String, UnitRecord>,
        mut after: UnitRecord,
    ) -> Vec<String> {
        let name = after.name.clone();
        let before = units.get(&name).cloned().unwrap_or_default();
        // What the watcher noted stays with the record, as in `store`.
        after.run = before.run.clone();
        units.insert(name.clone(), after);
        changes(&systemd.detect(units, &name, &before))
    }

    #[test]
    fn runs_restarts_and_failures_are_found() {
        let systemd = Systemd::stand_in(&[]);
        let mut units = BTreeMap::new();
        let mut r = record("job.service", "inactive", "dead");
        r.n_restarts = Some(0);
        assert!(
            step(&systemd, &mut units, r.clone()).is_empty(),
            "first sight"
        );
        // A start: the new invocation appears (with its job), then activating, then failed.
        r.invocation_id = Some("a".repeat(32));
        r.job_id = Some(153);
        assert_eq!(step(&systemd, &mut units, r.clone()), ["started ?"]);
        r.active_state = Some("activating".into());
        assert!(step(&systemd, &mut units, r.clone()).is_empty());
        r.active_state = Some("failed".into());
        r.result = Some("exit-code".into());
        r.exec_main_code = Some(1);
        r.exec_main_status = Some(3);
        assert_eq!(
            step(&systemd, &mut units, r.clone()),
            ["ended exit-code ?", "confirm failure"]
        );
        // Restart=: NRestarts goes up in auto-restart; the next run is a restart.
        r.active_state = Some("activating".into());
        r.sub_state = Some("auto-restart".into());
        r.n_restarts = Some(1);
        assert_eq!(step(&systemd, &mut units, r.clone()), ["restarted 1"]);
        r.invocation_id = Some("b".repeat(32));
        r.sub_state = Some("running".into());
        r.active_state = Some("active".into());
        assert_eq!(
            step(&systemd, &mut units, r.clone()),
            ["started restart", "active"]
        );
        // A manual start resets NRestarts: not a restart.
        r.n_restarts = Some(0);
        assert!(step(&systemd, &mut units, r.clone()).is_empty());
        // A run merged into one change: new invocation, at rest, no job.
        r.active_state = Some("inactive".into());
        r.sub_state = Some("dead".into());
        r.result = Some("success".into());
        assert_eq!(
            step(&systemd, &mut units, r.clone()),
            ["ended success restart"]
        );
        r.invocation_id = Some("c".repeat(32));
        r.job_id = None;
        assert_eq!(
            step(&systemd, &mut units, r.clone()),
            ["started ?", "ended success ?"]
        );
    }

    #[test]
    fn a_unit_just_loaded_that_failed_at_once_failed() {
        let systemd = Systemd::stand_in(&[]);
        let mut units = BTreeMap::new();
        let mut r = record("new.service", "failed", "failed");
        r.invocation_id = Some("a".repeat(32));
        systemd
            .inner
            .new_units
            .lock()
            .unwrap()
            .insert("new.service".into());
        assert_eq!(
            step(&systemd, &mut units, r),
            ["started ?", "ended ? ?", "confirm failure"]
        );
        // Seen first in a fill: its past is unknown.
        let mut r = record("old.service", "failed", "failed");
        r.invocation_id = Some("b".repeat(32));
        assert!(step(&systemd, &mut units, r).is_empty());
    }

    #[test]
    fn timers_and_unitdecks_own_starts_name_the_trigger() {
        let systemd = Systemd::stand_in(&[]);
        let mut units = BTreeMap::new();
        let mut timer = record("job.timer", "active", "waiting");
        timer.triggers = vec!["job.service".into()];
        timer.last_trigger_usec = Some(now_usec() - 500_000);
        units.insert(timer.name.clone(), timer);
        let mut r = record("job.service", "inactive", "dead");
        step(&systemd, &mut units, r.clone());
        r.invocation_id = Some("a".repeat(32));
        r.job_id = Some(70);
        assert_eq!(step(&systemd, &mut units, r.clone()), ["started timer"]);
        // The same trigger starts one run only.
        r.invocation_id = Some("b".repeat(32));
        assert_eq!(step(&systemd, &mut units, r.clone()), ["started ?"]);
        // unitdeck's own start, by job id once systemd named it.
        systemd.note_own_start("job.service");
        r.invocation_id = Some("c".repeat(32));
        r.job_id = Some(76);
        assert_eq!(step(&systemd, &mut units, r.clone()), ["started manual"]);
        systemd.note_own_job("job.service", Some(77));
        r.invocation_id = Some("d".repeat(32));
        r.job_id = Some(77);
        assert_eq!(step(&systemd, &mut units, r.clone()), ["started manual"]);
        r.invocation_id = Some("e".repeat(32));
        r.job_id = Some(78);
        assert_eq!(step(&systemd, &mut units, r), ["started ?"]);
    }
}
