//! The unit cache and the handle to it, `Systemd`: every loaded unit's state as systemd's
//! signals last told it (`watcher`), read by requests without a round trip to PID 1.
//! MemoryCurrent and CPUUsageNSec send no signals: `stats` refreshes them while someone
//! is looking.

use std::collections::{BTreeMap, HashMap, HashSet, VecDeque};
use std::sync::atomic::{AtomicBool, AtomicI64, AtomicU64, Ordering};
use std::sync::{Arc, Mutex, RwLock};
use std::time::{Duration, Instant};

use tokio::sync::broadcast;

use super::manager::{Bus, SERVICE_FIELDS};
use super::names::unit_type;
use super::props::{
    PropertyMap, Stamp, UnitRecord, calendar_specs, exec_argv, string, strings, u64_of,
};
use super::transitions::{OwnStarts, UnitChange};
use super::watcher::FillNotes;
use super::{Health, SystemdError, TimerInfo, UnitDetail, UnitSummary, format_usec};

/// A change the events stream and the dashboard push to viewers.
#[derive(Debug, Clone)]
pub enum UnitEvent {
    Changed(Box<UnitSummary>),
    Removed(String),
    /// The cache was rebuilt (reconnect, daemon-reload): viewers should re-read it all.
    Resync,
}

/// Units unitdeck must never take away, before adding what they require.
pub(super) const PROTECTED_BASE: &[&str] = &[
    "dbus.service",
    "dbus.socket",
    "dbus-broker.service",
    "systemd-journald.service",
    "systemd-journald.socket",
    "systemd-journald-dev-log.socket",
    "systemd-journald-audit.socket",
    "init.scope",
    "-.slice",
    "system.slice",
];

/// How long a removal is remembered: far longer than any read takes.
pub(super) const TOMBSTONE_TTL: Duration = Duration::from_secs(300);
/// How long a SystemState answer serves `/healthz`.
const STATE_MAX_AGE: Duration = Duration::from_secs(2);

#[derive(Clone)]
pub struct Systemd {
    pub(super) inner: Arc<Inner>,
}

pub(super) struct Inner {
    pub(super) address: String,
    pub(super) own_unit: Option<String>,
    pub(super) bus: RwLock<Option<Bus>>,
    pub(super) connected: AtomicBool,
    pub(super) last_error: RwLock<Option<String>>,
    pub(super) units: RwLock<BTreeMap<String, UnitRecord>>,
    pub(super) protected: RwLock<HashSet<String>>,
    pub(super) managed: RwLock<HashSet<String>>,
    pub(super) health: RwLock<HashMap<String, Health>>,
    pub(super) events: broadcast::Sender<UnitEvent>,
    /// Unix seconds of the last request that showed unit state.
    pub(super) last_interest: AtomicI64,
    /// JobRemoved signals, for actions waiting on their job.
    pub(super) jobs: broadcast::Sender<(String, String)>,
    /// The last SystemState read, and when.
    pub(super) system_state: RwLock<Option<(Instant, String)>>,
    /// True once the cache has been filled the first time.
    pub(super) filled: tokio::sync::watch::Sender<bool>,
    /// Recent memory/CPU readings per unit, for the sparklines.
    pub(super) samples: RwLock<HashMap<String, VecDeque<Sample>>>,
    /// Bumped when a fill starts: records it stored nothing into are gone from systemd.
    pub(super) generation: AtomicU64,
    /// What happened to units while a fill runs (None between fills).
    pub(super) filling: Mutex<Option<FillNotes>>,
    /// Units taken out of the cache lately, with the removal's stamp and when: a read
    /// answered before the removal (a fill's, a detail page's) must not bring one back.
    pub(super) removed: Mutex<HashMap<String, (Stamp, Instant)>>,
    /// Typed changes for the domain (`transitions`).
    pub(super) changes: broadcast::Sender<UnitChange>,
    /// Starts unitdeck asked for itself (their runs are manual).
    pub(super) own_starts: Mutex<OwnStarts>,
    /// Units systemd just loaded that the cache did not hold, while they are read: what
    /// the read finds happened after they were loaded (`transitions`).
    pub(super) new_units: Mutex<HashSet<String>>,
}

/// One memory/CPU reading of a unit.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Sample {
    /// Unix milliseconds.
    pub at_ms: i64,
    pub memory_bytes: Option<u64>,
    pub cpu_usage_ns: Option<u64>,
}

/// Readings kept per unit: ten minutes at one per `STATS_PERIOD`.
pub(super) const MAX_SAMPLES: usize = 200;

/// Filters of `GET /api/v1/units`.
#[derive(Debug, Default, Clone)]
pub struct UnitFilter {
    /// A unit type (`service`), or None for every type.
    pub unit_type: Option<String>,
    /// Matches the active, sub, load or unit-file state.
    pub state: Option<String>,
    /// Case-insensitive text in the name or description.
    pub text: Option<String>,
}

impl Systemd {
    /// Starts the watcher and returns at once; the cache fills when the bus answers.
    pub fn start(address: String, own_unit: Option<String>) -> Self {
        let systemd = Self::unconnected(address, own_unit);
        tokio::spawn(systemd.clone().watch_forever());
        tokio::spawn(systemd.clone().refresh_stats_forever());
        systemd
    }

    /// A stand-in for tests of what is not systemd (the HTTP layer): a cache holding
    /// `units` (name, active state, sub state) as if listed, and no bus, so anything that
    /// would ask systemd answers "disconnected".
    #[cfg(test)]
    pub fn stand_in(units: &[(&str, &str, &str)]) -> Self {
        let systemd = Self::unconnected("unix:path=/nonexistent".into(), None);
        {
            let mut cache = systemd.inner.units.write().unwrap();
            for (name, active, sub) in units {
                let mut record = UnitRecord::new(name.to_string());
                record.load_state = Some("loaded".into());
                record.active_state = Some(active.to_string());
                record.sub_state = Some(sub.to_string());
                cache.insert(name.to_string(), record);
            }
        }
        systemd.inner.filled.send_replace(true);
        systemd
    }

    fn unconnected(address: String, own_unit: Option<String>) -> Self {
        let (events, _) = broadcast::channel(1024);
        Self {
            inner: Arc::new(Inner {
                address,
                own_unit,
                bus: RwLock::new(None),
                connected: AtomicBool::new(false),
                last_error: RwLock::new(None),
                units: RwLock::new(BTreeMap::new()),
                protected: RwLock::new(HashSet::new()),
                managed: RwLock::new(HashSet::new()),
                health: RwLock::new(HashMap::new()),
                events,
                last_interest: AtomicI64::new(0),
                jobs: broadcast::channel(1024).0,
                filled: tokio::sync::watch::Sender::new(false),
                system_state: RwLock::new(None),
                samples: RwLock::new(HashMap::new()),
                generation: AtomicU64::new(0),
                filling: Mutex::new(None),
                removed: Mutex::new(HashMap::new()),
                changes: broadcast::channel(4096).0,
                own_starts: Mutex::new(OwnStarts::default()),
                new_units: Mutex::new(HashSet::new()),
            }),
        }
    }

    pub fn is_connected(&self) -> bool {
        self.inner.connected.load(Ordering::Acquire)
    }

    /// Waits until the cache has been filled once, at most `limit` (then what is there
    /// is served: a bus that never answers is reported by the requests themselves).
    pub async fn filled(&self, limit: Duration) {
        let mut filled = self.inner.filled.subscribe();
        let _ = tokio::time::timeout(limit, filled.wait_for(|f| *f)).await;
    }

    pub fn last_error(&self) -> Option<String> {
        self.inner.last_error.read().unwrap().clone()
    }

    pub fn own_unit(&self) -> Option<&str> {
        self.inner.own_unit.as_deref()
    }

    /// systemd's SystemState, read live at most every `STATE_MAX_AGE` (healthz must tell
    /// a dead bus from a stale cache, but probes in a loop must not queue behind a
    /// cache fill on PID 1, which answers one call at a time).
    pub async fn system_state(&self) -> Result<String, SystemdError> {
        if !self.is_connected() {
            return Err(SystemdError::Disconnected(
                self.last_error()
                    .unwrap_or_else(|| "not connected yet".to_string()),
            ));
        }
        if let Some((at, state)) = self.inner.system_state.read().unwrap().clone()
            && at.elapsed() < STATE_MAX_AGE
        {
            return Ok(state);
        }
        let bus = self.bus()?;
        let state = bus.system_state().await?;
        *self.inner.system_state.write().unwrap() = Some((Instant::now(), state.clone()));
        Ok(state)
    }

    pub(super) fn bus(&self) -> Result<Bus, SystemdError> {
        self.inner.bus.read().unwrap().clone().ok_or_else(|| {
            SystemdError::Disconnected(
                self.last_error()
                    .unwrap_or_else(|| "not connected yet".to_string()),
            )
        })
    }

    pub fn subscribe(&self) -> broadcast::Receiver<UnitEvent> {
        self.note_interest();
        self.inner.events.subscribe()
    }

    /// Someone is looking: keep memory/CPU fresh for a while.
    pub fn note_interest(&self) {
        self.inner
            .last_interest
            .store(chrono::Utc::now().timestamp(), Ordering::Relaxed);
    }

    pub(super) fn summary_of(&self, record: &UnitRecord) -> UnitSummary {
        let name = &record.name;
        let at_rest = is_at_rest(record.active_state.as_deref());
        UnitSummary {
            name: name.clone(),
            description: record.description.clone(),
            unit_type: unit_type(name).to_string(),
            load_state: record.load_state.clone(),
            active_state: record.active_state.clone(),
            sub_state: record.sub_state.clone(),
            unit_file_state: record.unit_file_state.clone(),
            main_pid: record.main_pid,
            // Not signalled: the last reading of a unit that has stopped since is void.
            memory_bytes: record.memory_bytes.filter(|_| !at_rest),
            cpu_usage_ns: record.cpu_usage_ns.filter(|_| !at_rest),
            active_since: record.active_since.clone(),
            n_restarts: record.n_restarts,
            managed: self.inner.managed.read().unwrap().contains(name),
            protected: self.is_protected(name),
            health: self.inner.health.read().unwrap().get(name).copied(),
        }
    }

    pub fn is_protected(&self, name: &str) -> bool {
        // The base list counts before the first fill has added what it requires.
        PROTECTED_BASE.contains(&name)
            || self.inner.protected.read().unwrap().contains(name)
            || self.inner.own_unit.as_deref() == Some(name)
    }

    /// Summaries from the cache, sorted by name.
    pub fn list(&self, filter: &UnitFilter) -> Vec<UnitSummary> {
        self.note_interest();
        let text = filter.text.as_ref().map(|t| t.to_lowercase());
        let units = self.inner.units.read().unwrap();
        units
            .values()
            .filter(|r| r.is_read())
            .filter(|r| {
                filter
                    .unit_type
                    .as_deref()
                    .is_none_or(|t| unit_type(&r.name) == t)
            })
            .filter(|r| {
                filter.state.as_deref().is_none_or(|s| {
                    [
                        &r.active_state,
                        &r.sub_state,
                        &r.load_state,
                        &r.unit_file_state,
                    ]
                    .iter()
                    .any(|v| v.as_deref() == Some(s))
                })
            })
            .filter(|r| {
                text.as_deref().is_none_or(|t| {
                    r.name.to_lowercase().contains(t)
                        || r.description
                            .as_deref()
                            .is_some_and(|d| d.to_lowercase().contains(t))
                })
            })
            .map(|r| self.summary_of(r))
            .collect()
    }

    pub fn summary(&self, name: &str) -> Option<UnitSummary> {
        let units = self.inner.units.read().unwrap();
        units
            .get(name)
            .filter(|r| r.is_read())
            .map(|r| self.summary_of(r))
    }

    pub fn unit_count(&self) -> usize {
        let units = self.inner.units.read().unwrap();
        units.values().filter(|r| r.is_read()).count()
    }

    /// The cached summary, or the unit loaded from disk when it is not in the cache.
    /// Unknown units are `NoSuchUnit`.
    pub async fn find(&self, name: &str) -> Result<UnitSummary, SystemdError> {
        if let Some(summary) = self.summary(name) {
            return Ok(summary);
        }
        let id = self.refresh_unit(name).await?;
        self.summary(&id)
            .ok_or_else(|| SystemdError::NoSuchUnit(name.to_string()))
    }

    /// Everything `GET /api/v1/units/{name}` shows; one GetAll per interface.
    pub async fn detail(&self, name: &str) -> Result<UnitDetail, SystemdError> {
        // An alias shows (and is cached as) the unit it stands for.
        let (record, unit_props, type_props) = self.read_full(name).await?;
        let name = record.name.as_str();
        let summary = self.summary_of(&record);
        let list = |key: &str| unit_props.get(key).map(strings).unwrap_or_default();
        let timer = (unit_type(name) == "timer").then(|| TimerInfo {
            schedule: type_props
                .get("TimersCalendar")
                .map(calendar_specs)
                .filter(|s| !s.is_empty())
                .map(|s| s.join("; ")),
            next_elapse: type_props
                .get("NextElapseUSecRealtime")
                .and_then(u64_of)
                .and_then(format_usec),
            last_trigger: type_props
                .get("LastTriggerUSec")
                .and_then(u64_of)
                .and_then(format_usec),
        });
        Ok(UnitDetail {
            fragment_path: record.fragment_path.clone(),
            drop_in_paths: list("DropInPaths"),
            exec_start: type_props
                .get("ExecStart")
                .map(exec_argv)
                .unwrap_or_default(),
            requires: list("Requires"),
            wants: list("Wants"),
            after: list("After"),
            before: list("Before"),
            required_by: list("RequiredBy"),
            wanted_by: list("WantedBy"),
            listen_ports: Vec::new(),
            invocation_id: record.invocation_id.clone(),
            timer,
            summary,
        })
    }

    /// Marks which units unitdeck created (from the database).
    pub fn set_managed(&self, names: impl IntoIterator<Item = String>) {
        *self.inner.managed.write().unwrap() = names.into_iter().collect();
    }

    /// Records a unit's health and tells viewers when it changed.
    pub fn set_health(&self, name: &str, health: Option<Health>) {
        let changed = {
            let mut map = self.inner.health.write().unwrap();
            match health {
                Some(h) => map.insert(name.to_string(), h) != Some(h),
                None => map.remove(name).is_some(),
            }
        };
        if changed && let Some(summary) = self.summary(name) {
            let _ = self
                .inner
                .events
                .send(UnitEvent::Changed(Box::new(summary)));
        }
    }

    /// Reads one unit fresh from systemd into the cache (and tells viewers); its name
    /// (an alias's is the unit it stands for).
    pub async fn refresh_unit(&self, name: &str) -> Result<String, SystemdError> {
        let bus = self.bus()?;
        let path = bus.load_unit(name).await?;
        let (unit_props, stamp) = bus
            .get_all_stamped(path.as_str(), "org.freedesktop.systemd1.Unit")
            .await?;
        if string_prop(&unit_props, "LoadState").as_deref() == Some("not-found") {
            return Err(SystemdError::NoSuchUnit(name.to_string()));
        }
        let id = string_prop(&unit_props, "Id").unwrap_or_else(|| name.to_string());
        let name = id.as_str();
        let service_props = if unit_type(name) == "service" {
            bus.service_fields(path.as_str(), SERVICE_FIELDS).await
        } else {
            PropertyMap::new()
        };
        self.store(name, &unit_props, &service_props, stamp.as_ref());
        Ok(id)
    }

    /// Whether systemd removed `name` after the read stamped `at`.
    pub(super) fn removed_after(&self, name: &str, at: &Stamp) -> bool {
        let removed = self.inner.removed.lock().unwrap();
        removed
            .get(name)
            .is_some_and(|(gone, _)| at.is_before(gone))
    }

    /// Applies property maps to a unit's record, emitting a change when it shows.
    /// A field holding data newer than `stamp` keeps it. None: the data was read before
    /// systemd removed the unit, which stays out.
    pub(super) fn store(
        &self,
        name: &str,
        a: &PropertyMap,
        b: &PropertyMap,
        stamp: Option<&Stamp>,
    ) -> Option<UnitRecord> {
        let (record, changed, found) = {
            let mut units = self.inner.units.write().unwrap();
            // Checked under the lock the removal takes (`on_unit_removed`): a read
            // answered before it and stored after it brought the unit back. Not for a unit
            // with a unit file: systemd unloading it (UnitRemoved) does not end it (a
            // not-found unit a page looked up, unloaded just after its file was written,
            // then refused the new unit's start as unknown).
            if !units.contains_key(name)
                && !has_unit_file(string_prop(a, "FragmentPath").as_deref())
                && stamp.is_some_and(|at| self.removed_after(name, at))
            {
                return None;
            }
            // Read under the lock: a store racing a new fill's seed must not write the
            // older generation over the newer one.
            let generation = self.inner.generation.load(Ordering::Acquire);
            let record = units
                .entry(name.to_string())
                .or_insert_with(|| UnitRecord::new(name.to_string()));
            let before = record.clone();
            let applied = record.apply_stamped(&[a, b], stamp);
            record.seen = generation;
            let shown = applied && record.is_read() && visible_change(&before, record);
            let found = if applied {
                self.detect(&mut units, name, &before)
            } else {
                Vec::new()
            };
            (units.get(name)?.clone(), shown, found)
        };
        self.announce(found);
        if changed {
            let _ = self
                .inner
                .events
                .send(UnitEvent::Changed(Box::new(self.summary_of(&record))));
        }
        Some(record)
    }

    /// The recent readings of a unit, oldest first (empty until someone looked).
    pub fn samples(&self, name: &str) -> Vec<Sample> {
        self.inner
            .samples
            .read()
            .unwrap()
            .get(name)
            .map(|s| s.iter().copied().collect())
            .unwrap_or_default()
    }
}

/// A unit that systemd unloads stays listed (as inactive) when it has a unit file to
/// start it from again; transient units' files go with them.
pub(super) fn has_unit_file(fragment_path: Option<&str>) -> bool {
    fragment_path.is_some_and(|p| {
        !p.starts_with("/run/systemd/transient/") && std::path::Path::new(p).exists()
    })
}

/// A unit without processes (inactive or failed) has no pid, memory or CPU figure.
pub fn is_at_rest(active_state: Option<&str>) -> bool {
    matches!(active_state, Some("inactive" | "failed"))
}

pub(super) fn string_prop(props: &PropertyMap, key: &str) -> Option<String> {
    props.get(key).and_then(string)
}

/// True when a change is one the events stream reports (not memory/CPU).
pub(super) fn visible_change(before: &UnitRecord, after: &UnitRecord) -> bool {
    before.description != after.description
        || before.load_state != after.load_state
        || before.active_state != after.active_state
        || before.sub_state != after.sub_state
        || before.unit_file_state != after.unit_file_state
        || before.main_pid != after.main_pid
        || before.n_restarts != after.n_restarts
        || before.active_since != after.active_since
}

#[cfg(test)]
mod tests {
    use super::*;

    fn stamp(serial: u32) -> Stamp {
        Stamp {
            sender: ":1.7".to_string(),
            serial,
        }
    }

    fn running() -> PropertyMap {
        PropertyMap::from([
            ("LoadState".to_string(), zbus::Str::from("loaded").into()),
            ("ActiveState".to_string(), zbus::Str::from("active").into()),
        ])
    }

    #[tokio::test]
    async fn a_read_answered_before_a_removal_does_not_bring_the_unit_back() {
        // No bus: the watcher keeps retrying in the background; only the cache is used.
        let systemd = Systemd::start("unix:path=/nonexistent/bus".to_string(), None);
        // A read (a fill's ListUnits, a detail page's GetAll) saw a transient unit (reply
        // serial 10); systemd removed it (signal serial 12) before the read was stored.
        systemd.on_unit_removed("run-u7.service", Some(stamp(12)));
        let none = PropertyMap::new();
        let stored = systemd.store("run-u7.service", &running(), &none, Some(&stamp(10)));
        assert!(stored.is_none());
        assert!(systemd.summary("run-u7.service").is_none());
        // Made again: what systemd says after the removal is stored.
        let stored = systemd.store("run-u7.service", &running(), &none, Some(&stamp(14)));
        assert!(stored.is_some());
        assert_eq!(
            systemd.summary("run-u7.service").unwrap().active_state,
            Some("active".to_string())
        );
        // A unit with a unit file outlives systemd unloading it: stored.
        let file = std::env::current_exe().unwrap().display().to_string();
        let mut with_file = running();
        with_file.insert("FragmentPath".to_string(), zbus::Str::from(file).into());
        systemd.on_unit_removed("web-app.service", Some(stamp(30)));
        assert!(
            systemd
                .store("web-app.service", &with_file, &none, Some(&stamp(25)))
                .is_some()
        );
        // Another connection's serials say nothing about this one's: stored.
        systemd.on_unit_removed("run-u8.service", Some(stamp(20)));
        let other = Stamp {
            sender: ":1.9".to_string(),
            serial: 3,
        };
        assert!(
            systemd
                .store("run-u8.service", &running(), &none, Some(&other))
                .is_some()
        );
    }
}
