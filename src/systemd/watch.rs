//! The unit cache. At (re)connect: Subscribe, ListUnits (every loaded unit's state:
//! connected from here on), then one GetAll per unit (+ unit files not loaded). Afterwards systemd's signals keep it current:
//! PropertiesChanged for state, UnitNew/UnitRemoved for the set, Reloading for a
//! full resync, UnitFilesChanged for enablement. Requests only read the cache.
//! MemoryCurrent and CPUUsageNSec send no signals: a timer refreshes them while
//! someone is looking.

use std::collections::{BTreeMap, HashMap, HashSet, VecDeque};
use std::sync::atomic::{AtomicBool, AtomicI64, AtomicU64, Ordering};
use std::sync::{Arc, Mutex, RwLock};
use std::time::{Duration, Instant};

use futures_util::{StreamExt, stream};
use tokio::sync::{broadcast, mpsc};
use zbus::MessageStream;
use zbus::message::Type as MessageType;

use super::manager::{Bus, SERVICE_FIELDS, UnitAction};
use super::names::{is_template, unit_name_from_object_path, unit_object_path, unit_type};
use super::props::{
    PropertyMap, Stamp, UnitRecord, calendar_specs, exec_argv, string, strings, u64_of,
};
use super::{ActionOutcome, Health, SystemdError, TimerInfo, UnitDetail, UnitSummary, format_usec};
use crate::task::AbortOnDrop;

/// A change the events stream and the dashboard push to viewers.
#[derive(Debug, Clone)]
pub enum UnitEvent {
    Changed(Box<UnitSummary>),
    Removed(String),
    /// The cache was rebuilt (reconnect, daemon-reload): viewers should re-read it all.
    Resync,
}

/// Units unitdeck must never take away, before adding what they require.
const PROTECTED_BASE: &[&str] = &[
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

/// How often memory/CPU are refreshed, and for how long after the last look.
const STATS_PERIOD: Duration = Duration::from_secs(3);
const INTEREST_WINDOW_SECS: i64 = 30;
/// Parallel D-Bus calls while (re)loading the cache.
const LOAD_CONCURRENCY: usize = 16;
/// The longest a daemon-reload is trusted to take: a reload that fails half-way never
/// sends its Reloading(false), and UnitRemoved must not be ignored for ever after.
const RELOAD_LIMIT: Duration = Duration::from_secs(60);
/// How long a removal is remembered: far longer than any read takes.
const TOMBSTONE_TTL: Duration = Duration::from_secs(300);
/// How long a SystemState answer serves `/healthz`.
const STATE_MAX_AGE: Duration = Duration::from_secs(2);

#[derive(Clone)]
pub struct Systemd {
    inner: Arc<Inner>,
}

struct Inner {
    address: String,
    own_unit: Option<String>,
    bus: RwLock<Option<Bus>>,
    connected: AtomicBool,
    last_error: RwLock<Option<String>>,
    units: RwLock<BTreeMap<String, UnitRecord>>,
    protected: RwLock<HashSet<String>>,
    managed: RwLock<HashSet<String>>,
    health: RwLock<HashMap<String, Health>>,
    events: broadcast::Sender<UnitEvent>,
    /// Unix seconds of the last request that showed unit state.
    last_interest: AtomicI64,
    /// JobRemoved signals, for actions waiting on their job.
    jobs: broadcast::Sender<(String, String)>,
    /// The last SystemState read, and when.
    system_state: RwLock<Option<(Instant, String)>>,
    /// True once the cache has been filled the first time.
    filled: tokio::sync::watch::Sender<bool>,
    /// Recent memory/CPU readings per unit, for the sparklines.
    samples: RwLock<HashMap<String, VecDeque<Sample>>>,
    /// Bumped when a fill starts: records it stored nothing into are gone from systemd.
    generation: AtomicU64,
    /// What happened to units while a fill runs (None between fills).
    filling: Mutex<Option<FillNotes>>,
    /// Units taken out of the cache lately, with the removal's stamp and when: a read
    /// answered before the removal (a fill's, a detail page's) must not bring one back.
    removed: Mutex<HashMap<String, (Stamp, Instant)>>,
}

/// Units systemd unloaded while a fill ran.
#[derive(Default)]
struct FillNotes {
    /// Unloaded before a read told whether they have a unit file: kept as inactive
    /// until the fill's end, which knows the unit files.
    undecided: HashSet<String>,
    /// Read by the fill and unknown to systemd by then.
    not_found: HashSet<String>,
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
const MAX_SAMPLES: usize = 200;

/// A systemd signal, queued for the watcher.
enum Signal {
    Properties(zbus::Message),
    UnitNew(String),
    UnitRemoved(String, Option<Stamp>),
    /// systemd started (true) or finished (false) a daemon-reload or re-exec.
    Reloading(bool),
    UnitFilesChanged,
    /// A stream ended: the connection is gone.
    Closed,
}

fn forward(
    mut stream: futures_util::stream::BoxStream<'static, Signal>,
    tx: mpsc::UnboundedSender<Signal>,
) -> AbortOnDrop {
    AbortOnDrop(tokio::spawn(async move {
        while let Some(signal) = stream.next().await {
            if tx.send(signal).is_err() {
                return;
            }
        }
        let _ = tx.send(Signal::Closed);
    }))
}

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
        let (events, _) = broadcast::channel(1024);
        let systemd = Self {
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
            }),
        };
        tokio::spawn(systemd.clone().watch_forever());
        tokio::spawn(systemd.clone().refresh_stats_forever());
        systemd
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

    pub fn bus(&self) -> Result<Bus, SystemdError> {
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

    fn summary_of(&self, record: &UnitRecord) -> UnitSummary {
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
        let bus = self.bus()?;
        let path = bus.load_unit(name).await?;
        let (unit_props, type_props, stamp) = bus.unit_properties(path.as_str(), name).await?;
        if string_prop(&unit_props, "LoadState").as_deref() == Some("not-found") {
            return Err(SystemdError::NoSuchUnit(name.to_string()));
        }
        // An alias shows (and is cached as) the unit it stands for.
        let id = string_prop(&unit_props, "Id").unwrap_or_else(|| name.to_string());
        let name = id.as_str();
        let record = self
            .store(name, &unit_props, &type_props, stamp.as_ref())
            .ok_or_else(|| SystemdError::NoSuchUnit(name.to_string()))?;
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

    /// Refuses what would take a protected unit away or the container down (judged on the
    /// unit systemd resolves `name` to, `guard.rs`), runs the action on that unit, and
    /// answers with the job's result and the unit as systemd reports it afterwards.
    pub async fn run_action(
        &self,
        name: &str,
        action: UnitAction,
        wait: bool,
    ) -> Result<ActionOutcome, SystemdError> {
        // Resolve first: an unknown unit is a 404 whatever the action.
        let unit = self.resolve(name).await?;
        self.guard_action(name, &unit, action).await?;
        // The action goes to the unit that was judged, not to a name that could be
        // pointed elsewhere meanwhile.
        let id = unit.id.as_str();
        // unitdeck cannot wait for a job on its own unit: a restart finishes only
        // after this process has exited, and this process lets its open requests
        // finish before it exits. Answer with the queued job instead.
        let wait = wait && self.own_unit() != Some(id);
        let job = self
            .bus()?
            .run_action(id, action, wait, self.job_results())
            .await?;
        self.refresh_unit(id).await?;
        let unit = self
            .summary(id)
            .ok_or_else(|| SystemdError::NoSuchUnit(id.to_string()))?;
        Ok(ActionOutcome { job, unit })
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
    fn removed_after(&self, name: &str, at: &Stamp) -> bool {
        let removed = self.inner.removed.lock().unwrap();
        removed
            .get(name)
            .is_some_and(|(gone, _)| at.is_before(gone))
    }

    /// Applies property maps to a unit's record, emitting a change when it shows.
    /// A field holding data newer than `stamp` keeps it. None: the data was read before
    /// systemd removed the unit, which stays out.
    fn store(
        &self,
        name: &str,
        a: &PropertyMap,
        b: &PropertyMap,
        stamp: Option<&Stamp>,
    ) -> Option<UnitRecord> {
        let (record, changed) = {
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
            (record.clone(), shown)
        };
        if changed {
            let _ = self
                .inner
                .events
                .send(UnitEvent::Changed(Box::new(self.summary_of(&record))));
        }
        Some(record)
    }

    // --- the watcher ----------------------------------------------------------

    async fn watch_forever(self) {
        let mut delay = Duration::from_millis(250);
        loop {
            let error = match self.watch_once().await {
                Ok(()) => "the system bus closed the connection".to_string(),
                Err(e) => e.to_string(),
            };
            let was_connected = self.inner.connected.swap(false, Ordering::AcqRel);
            *self.inner.bus.write().unwrap() = None;
            *self.inner.last_error.write().unwrap() = Some(error.clone());
            if was_connected {
                delay = Duration::from_millis(250);
            }
            tracing::error!(
                "cannot talk to systemd over the system bus at {} ({error}); \
                 is dbus running and the socket reachable? retrying in {:?}",
                self.inner.address,
                delay
            );
            tokio::time::sleep(delay).await;
            delay = (delay * 2).min(Duration::from_secs(5));
        }
    }

    async fn watch_once(&self) -> Result<(), SystemdError> {
        let bus = Bus::connect(&self.inner.address).await?;
        // Stamps of an earlier connection say nothing about this one: a restarted bus
        // gives systemd the same unique name again with serials starting over, so the
        // resync below would keep the old records as "newer" (measured: dbus.service
        // stayed `inactive` after `systemctl restart dbus`).
        for record in self.inner.units.write().unwrap().values_mut() {
            record.forget_stamps();
        }
        self.inner.removed.lock().unwrap().clear();
        // Every signal stream is drained at once by its own task into one
        // unbounded queue: zbus stops reading the socket (method replies too)
        // while any stream's buffer is full, so nothing may wait on a slow consumer.
        let (tx, mut signals) = mpsc::unbounded_channel();
        let _forwarders = self.forward_signals(&bus, tx).await?;
        bus.manager().subscribe().await?;
        *self.inner.bus.write().unwrap() = Some(bus.clone());
        // Connected (and /healthz 200) once every loaded unit's state is in the cache
        // (one ListUnits): a healthy unitdeck lists every unit as it is now (after a dbus
        // restart the list once missed dbus.service when health came before the cache).
        // The details (unit-file state, pid, ...) follow; the first requests wait for them.
        let listed = self.seed(&bus).await?;
        let state = bus.system_state().await?;
        *self.inner.system_state.write().unwrap() = Some((Instant::now(), state));
        self.inner.connected.store(true, Ordering::Release);
        *self.inner.last_error.write().unwrap() = None;
        tracing::info!(
            units = listed.len(),
            address = %self.inner.address,
            "connected to systemd"
        );
        // Signals are handled while a fill reads (a daemon-reload must not hold back
        // events): each field keeps the newest data, whichever came first. A reload
        // during a fill starts another fill once it is done.
        let mut fill = Some(self.spawn_fill(&bus, Some(listed)));
        let mut reloaded_meanwhile = false;
        // A reload frees and reloads every unit, sending UnitRemoved for each: those
        // say nothing (the fill after the reload drops what is really gone). Taken at
        // their word they showed every running unit inactive for a moment.
        let mut reloading: Option<Instant> = None;
        loop {
            tokio::select! {
                done = async { (&mut fill.as_mut().unwrap().0).await }, if fill.is_some() => {
                    done.map_err(|e| SystemdError::Disconnected(format!("unit cache fill: {e}")))??;
                    if !*self.inner.filled.borrow() {
                        self.inner.filled.send_replace(true);
                        tracing::debug!(units = self.unit_count(), "unit cache filled");
                    }
                    fill = reloaded_meanwhile.then(|| self.spawn_fill(&bus, None));
                    reloaded_meanwhile = false;
                }
                signal = signals.recv() => match signal {
                    Some(Signal::Properties(msg)) => self.on_properties_changed(&msg),
                    Some(Signal::UnitNew(name)) => self.on_unit_new(&bus, name).await,
                    Some(Signal::UnitRemoved(_, _))
                        if reloading.is_some_and(|at| at.elapsed() < RELOAD_LIMIT) => {}
                    Some(Signal::UnitRemoved(name, stamp)) => self.on_unit_removed(&name, stamp),
                    Some(Signal::Reloading(true)) => reloading = Some(Instant::now()),
                    Some(Signal::Reloading(false)) => {
                        reloading = None;
                        if fill.is_some() {
                            reloaded_meanwhile = true;
                        } else {
                            fill = Some(self.spawn_fill(&bus, None));
                        }
                    }
                    Some(Signal::UnitFilesChanged) => self.refresh_unit_file_states(&bus).await,
                    Some(Signal::Closed) | None => break,
                },
            }
        }
        Ok(())
    }

    /// Starts one task per signal stream; they end when the returned guards drop.
    async fn forward_signals(
        &self,
        bus: &Bus,
        tx: mpsc::UnboundedSender<Signal>,
    ) -> Result<Vec<AbortOnDrop>, SystemdError> {
        let manager = bus.manager();
        let rule = zbus::MatchRule::builder()
            .msg_type(MessageType::Signal)
            .sender("org.freedesktop.systemd1")
            .interface("org.freedesktop.DBus.Properties")
            .member("PropertiesChanged")
            .path_namespace("/org/freedesktop/systemd1/unit")
            .build()?;
        let changes = MessageStream::for_match_rule(rule, bus.connection(), None)
            .await?
            .filter_map(|m| async move { m.ok().map(Signal::Properties) });
        // One stream for the Manager's signals keeps them in order: a reload's UnitRemoved
        // signals must come between its Reloading(true) and Reloading(false), which
        // separate streams forwarded by separate tasks did not guarantee.
        let rule = zbus::MatchRule::builder()
            .msg_type(MessageType::Signal)
            .sender("org.freedesktop.systemd1")
            .interface("org.freedesktop.systemd1.Manager")
            .path("/org/freedesktop/systemd1")
            .build()?;
        let manager_signals = MessageStream::for_match_rule(rule, bus.connection(), None)
            .await?
            .filter_map(|m| async move { manager_signal(&m.ok()?) });
        // Job results skip the queue: an action waiting for its job must not wait
        // behind a resync of the whole cache after a daemon-reload.
        let mut jobs = manager.receive_job_removed().await?;
        let results = self.inner.jobs.clone();
        let job_tx = tx.clone();
        let job_forwarder = AbortOnDrop(tokio::spawn(async move {
            while let Some(signal) = jobs.next().await {
                if let Ok(args) = signal.args() {
                    let _ = results.send((args.job.to_string(), args.result.clone()));
                }
            }
            let _ = job_tx.send(Signal::Closed);
        }));
        Ok(vec![
            forward(changes.boxed(), tx.clone()),
            forward(manager_signals.boxed(), tx),
            job_forwarder,
        ])
    }

    /// Job results as they finish (`(job object path, result)`); subscribe before queuing a job.
    pub fn job_results(&self) -> broadcast::Receiver<(String, String)> {
        self.inner.jobs.subscribe()
    }

    fn on_properties_changed(&self, msg: &zbus::Message) {
        let header = msg.header();
        let Some(name) = header
            .path()
            .and_then(|p| unit_name_from_object_path(p.as_str()))
        else {
            return;
        };
        let Ok((_interface, changed, _invalidated)) = msg
            .body()
            .deserialize::<(String, PropertyMap, Vec<String>)>()
        else {
            return;
        };
        if self.inner.units.read().unwrap().contains_key(&name) {
            self.store(
                &name,
                &changed,
                &PropertyMap::new(),
                Stamp::of(msg).as_ref(),
            );
        }
    }

    async fn on_unit_new(&self, bus: &Bus, name: String) {
        let exists = self.inner.units.read().unwrap().contains_key(&name);
        // Unloaded during a fill before it was read, kept as inactive until the fill's end
        // decides; loaded again (a transient unit made anew), it is read now instead.
        let undecided = self
            .inner
            .filling
            .lock()
            .unwrap()
            .as_mut()
            .is_some_and(|notes| notes.undecided.remove(&name));
        if exists && !undecided {
            return;
        }
        let stored = self.load_into_cache(bus, &name).await;
        if undecided
            && !stored
            && let Some(notes) = self.inner.filling.lock().unwrap().as_mut()
        {
            notes.undecided.insert(name);
        }
    }

    /// systemd unloads inactive units it no longer needs. One with a unit file
    /// still exists for the user (it can be started again), so it stays listed
    /// as inactive; anything else (transient units too) leaves the list.
    fn on_unit_removed(&self, name: &str, stamp: Option<Stamp>) {
        // None: not in the cache (a fill may still be about to store it).
        let has_file = {
            let units = self.inner.units.read().unwrap();
            units.get(name).map(|r| {
                r.fragment_known
                    .then(|| has_unit_file(r.fragment_path.as_deref()))
            })
        };
        let keep = match has_file {
            Some(Some(keep)) => keep,
            // Not read yet (the first fill loads what it reads; systemd unloads it again).
            Some(None) => match self.inner.filling.lock().unwrap().as_mut() {
                Some(notes) => {
                    notes.undecided.insert(name.to_string());
                    true
                }
                None => false,
            },
            None => false,
        };
        if keep {
            let at_rest = PropertyMap::from([
                (
                    "ActiveState".to_string(),
                    zbus::Str::from("inactive").into(),
                ),
                ("SubState".to_string(), zbus::Str::from("dead").into()),
            ]);
            self.store(name, &at_rest, &no_process(), stamp.as_ref());
            return;
        }
        let removed = {
            // The tombstone goes in under the cache lock, which `store` checks it under.
            let mut units = self.inner.units.write().unwrap();
            if let Some(stamp) = stamp {
                let mut removed = self.inner.removed.lock().unwrap();
                removed.retain(|_, (_, at)| at.elapsed() < TOMBSTONE_TTL);
                removed.insert(name.to_string(), (stamp, Instant::now()));
            }
            units.remove(name)
        };
        if removed.is_some_and(|r| r.is_read()) {
            let _ = self.inner.events.send(UnitEvent::Removed(name.to_string()));
        }
    }

    /// Reads a unit systemd just loaded into the cache; whether it was stored.
    async fn load_into_cache(&self, bus: &Bus, name: &str) -> bool {
        // Reading a unit systemd has unloaded again loads it, which sends another
        // UnitNew; systemd then unloads it again (UnitRemoved). For units that never
        // make it into the cache (seen: not-found mounts such as var-tmp.mount, and
        // sys-devices-virtual-misc-rfkill.device) that was an endless loop of ~200
        // signals a second, delaying every real change by up to a second (see
        // bench/README.md). Read only what is still loaded.
        match bus.is_loaded(name).await {
            Ok(true) => {}
            Ok(false) => return false,
            Err(e) => {
                tracing::debug!(unit = name, error = %e, "could not look up a new unit");
                return false;
            }
        }
        match fetch_unit(bus, name).await {
            Ok(Some(read)) => self
                .store(name, &read.unit, &read.service, read.stamp.as_ref())
                .is_some(),
            Ok(None) => false,
            Err(e) => {
                tracing::debug!(unit = name, error = %e, "could not read a new unit");
                false
            }
        }
    }

    /// Rebuilds the cache from ListUnits (unless `listed` already came from [`Self::seed`])
    /// plus unit files that are not loaded, in a task of its own: zbus stops reading the
    /// socket while any reply stream waits unpolled, so the fill's calls must never wait
    /// on the signal loop (they did: a deadlock once a handler awaited a call meanwhile).
    fn spawn_fill(
        &self,
        bus: &Bus,
        listed: Option<Vec<String>>,
    ) -> AbortOnDrop<Result<(), SystemdError>> {
        let (me, bus) = (self.clone(), bus.clone());
        AbortOnDrop(tokio::spawn(async move {
            let listed = match listed {
                Some(listed) => listed,
                None => me.seed(&bus).await?,
            };
            me.fill(&bus, listed).await
        }))
    }

    /// Starts a fill: stores the state of every loaded unit from one ListUnits call and
    /// returns their names for [`Self::fill`].
    async fn seed(&self, bus: &Bus) -> Result<Vec<String>, SystemdError> {
        self.inner.generation.fetch_add(1, Ordering::AcqRel);
        *self.inner.filling.lock().unwrap() = Some(FillNotes::default());
        let (listed, stamp) = bus.list_units().await?;
        let mut names = Vec::with_capacity(listed.len());
        for (name, props) in listed {
            // Referenced but without a unit file: never listed (as in `fetch_unit`).
            if string_prop(&props, "LoadState").as_deref() == Some("not-found") {
                continue;
            }
            self.store(&name, &props, &PropertyMap::new(), stamp.as_ref());
            names.push(name);
        }
        Ok(names)
    }

    /// Reads every unit in full, then the unit files that are not loaded; at the end
    /// drops the records this fill stored nothing into (gone from systemd).
    async fn fill(&self, bus: &Bus, names: Vec<String>) -> Result<(), SystemdError> {
        let generation = self.inner.generation.load(Ordering::Acquire);
        let loaded: HashSet<String> = names.iter().cloned().collect();
        // ListUnitFiles walks every unit directory (~0.4 s with a full /usr): read the
        // loaded units meanwhile.
        let (files, ()) = tokio::join!(bus.list_unit_files(), self.read_units(bus, names));
        let files = files?;
        let unloaded: Vec<String> = unloaded_files(&files, &loaded).into_iter().collect();
        // Records first (shown only once read), so that signals about these units
        // while they are read are kept rather than dropped as unknown.
        for name in &unloaded {
            self.store(name, &PropertyMap::new(), &PropertyMap::new(), None);
        }
        self.read_units(bus, unloaded).await;
        *self.inner.protected.write().unwrap() = self.compute_protected(bus).await;
        let notes = self
            .inner
            .filling
            .lock()
            .unwrap()
            .take()
            .unwrap_or_default();
        // A transient unit's file goes with it: not one to start again.
        let file_names: HashSet<&str> = files
            .iter()
            .filter(|(_, state)| state != "transient")
            .map(|(name, _)| name.as_str())
            .collect();
        let mut gone = Vec::new();
        self.inner.units.write().unwrap().retain(|name, record| {
            let has_file = || {
                file_names.contains(name.as_str())
                    || (record.fragment_known && has_unit_file(record.fragment_path.as_deref()))
            };
            let keep = record.seen == generation
                && record.is_read()
                && (!notes.undecided.contains(name)
                    || (has_file() && !notes.not_found.contains(name)));
            if !keep && record.is_read() {
                gone.push(name.clone());
            }
            keep
        });
        for name in gone {
            let _ = self.inner.events.send(UnitEvent::Removed(name));
        }
        let _ = self.inner.events.send(UnitEvent::Resync);
        Ok(())
    }

    /// Reads units in full into the cache, `LOAD_CONCURRENCY` at a time. A read answered
    /// before systemd removed the unit is dropped (by `store`).
    async fn read_units(&self, bus: &Bus, names: Vec<String>) {
        stream::iter(names)
            .map(|name| async move {
                let read = fetch_unit(bus, &name).await;
                (name, read)
            })
            .buffer_unordered(LOAD_CONCURRENCY)
            .for_each(|(name, read)| async move {
                let read = match read {
                    Ok(Some(read)) => read,
                    Ok(None) => {
                        if let Some(notes) = self.inner.filling.lock().unwrap().as_mut() {
                            notes.not_found.insert(name);
                        }
                        return;
                    }
                    Err(_) => return,
                };
                self.store(&name, &read.unit, &read.service, read.stamp.as_ref());
            })
            .await;
    }

    /// The protected base units plus everything whose stop would stop them, transitively,
    /// each under every name it has (an alias must not slip past the check).
    async fn compute_protected(&self, bus: &Bus) -> HashSet<String> {
        let mut todo: Vec<String> = PROTECTED_BASE.iter().map(|s| s.to_string()).collect();
        todo.extend(self.inner.own_unit.clone());
        let mut seen = HashSet::new();
        while let Some(name) = todo.pop() {
            if !seen.insert(name.clone()) {
                continue;
            }
            let path = unit_object_path(&name);
            if let Ok(props) = bus.get_all(&path, "org.freedesktop.systemd1.Unit").await {
                for key in [
                    "Names",
                    "Requires",
                    "BindsTo",
                    "Requisite",
                    "PartOf",
                    "StopPropagatedFrom",
                ] {
                    todo.extend(props.get(key).map(strings).unwrap_or_default());
                }
            }
        }
        seen
    }

    async fn refresh_unit_file_states(&self, bus: &Bus) {
        let names: Vec<String> = {
            let units = self.inner.units.read().unwrap();
            units
                .values()
                .filter(|r| r.is_read())
                .map(|r| r.name.clone())
                .collect()
        };
        let updates: Vec<(String, PropertyMap, Option<Stamp>)> = stream::iter(names)
            .map(|name| async move {
                let (value, stamp) = bus
                    .get_stamped(
                        &unit_object_path(&name),
                        "org.freedesktop.systemd1.Unit",
                        "UnitFileState",
                    )
                    .await
                    .ok()?;
                let props = PropertyMap::from([("UnitFileState".to_string(), value)]);
                Some((name, props, stamp))
            })
            .buffer_unordered(LOAD_CONCURRENCY)
            .filter_map(|r| async move { r })
            .collect()
            .await;
        for (name, props, stamp) in updates {
            if self.inner.units.read().unwrap().contains_key(&name) {
                self.store(&name, &props, &PropertyMap::new(), stamp.as_ref());
            }
        }
    }

    async fn refresh_stats_forever(self) {
        let mut tick = tokio::time::interval(STATS_PERIOD);
        tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
        loop {
            tick.tick().await;
            let idle = chrono::Utc::now().timestamp()
                - self.inner.last_interest.load(Ordering::Relaxed)
                > INTEREST_WINDOW_SECS;
            let Ok(bus) = self.bus() else { continue };
            if idle && self.inner.events.receiver_count() == 0 {
                continue;
            }
            self.refresh_stats(&bus).await;
        }
    }

    /// Memory and CPU of running services; stored without an event (they change constantly).
    async fn refresh_stats(&self, bus: &Bus) {
        let running: Vec<String> = {
            let units = self.inner.units.read().unwrap();
            units
                .values()
                .filter(|r| unit_type(&r.name) == "service")
                .filter(|r| r.is_read() && !is_at_rest(r.active_state.as_deref()))
                .map(|r| r.name.clone())
                .collect()
        };
        let stats: Vec<(String, PropertyMap)> = stream::iter(running)
            .map(|name| async move {
                let path = unit_object_path(&name);
                let mut map = PropertyMap::new();
                for key in ["MemoryCurrent", "CPUUsageNSec"] {
                    if let Ok(v) = bus
                        .get(&path, "org.freedesktop.systemd1.Service", key)
                        .await
                    {
                        map.insert(key.to_string(), v);
                    }
                }
                (name, map)
            })
            .buffer_unordered(LOAD_CONCURRENCY)
            .collect()
            .await;
        let at_ms = chrono::Utc::now().timestamp_millis();
        let mut units = self.inner.units.write().unwrap();
        let mut samples = self.inner.samples.write().unwrap();
        for (name, map) in stats {
            if let Some(record) = units.get_mut(&name) {
                record.apply(&map);
                let series = samples.entry(name).or_default();
                if series.len() == MAX_SAMPLES {
                    series.pop_front();
                }
                series.push_back(Sample {
                    at_ms,
                    memory_bytes: record.memory_bytes,
                    cpu_usage_ns: record.cpu_usage_ns,
                });
            }
        }
        // Units that stopped keep no history.
        samples.retain(|name, _| units.contains_key(name));
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

/// Unit files that ListUnits did not list (not loaded: e.g. disabled services), except
/// templates, masks and aliases.
fn unloaded_files(files: &[(String, String)], loaded: &HashSet<String>) -> HashSet<String> {
    files
        .iter()
        .filter(|(name, state)| {
            !loaded.contains(name)
                && !is_template(name)
                && !matches!(
                    state.as_str(),
                    "masked" | "masked-runtime" | "alias" | "transient"
                )
        })
        .map(|(name, _)| name.clone())
        .collect()
}

/// The Manager signals the watcher follows (JobRemoved has a forwarder of its own).
fn manager_signal(msg: &zbus::Message) -> Option<Signal> {
    let header = msg.header();
    let body = msg.body();
    match header.member()?.as_str() {
        "UnitNew" => {
            let (id, _path) = body.deserialize::<(String, zbus::OwnedObjectPath)>().ok()?;
            Some(Signal::UnitNew(id))
        }
        "UnitRemoved" => {
            let (id, _path) = body.deserialize::<(String, zbus::OwnedObjectPath)>().ok()?;
            Some(Signal::UnitRemoved(id, Stamp::of(msg)))
        }
        "Reloading" => Some(Signal::Reloading(body.deserialize::<bool>().ok()?)),
        "UnitFilesChanged" => Some(Signal::UnitFilesChanged),
        _ => None,
    }
}

/// A unit that systemd unloads stays listed (as inactive) when it has a unit file to
/// start it from again; transient units' files go with them.
fn has_unit_file(fragment_path: Option<&str>) -> bool {
    fragment_path.is_some_and(|p| {
        !p.starts_with("/run/systemd/transient/") && std::path::Path::new(p).exists()
    })
}

/// A unit without processes (inactive or failed) has no pid, memory or CPU figure.
pub fn is_at_rest(active_state: Option<&str>) -> bool {
    matches!(active_state, Some("inactive" | "failed"))
}

/// What systemd reports for a service at rest: no pid, and "not set" memory and CPU.
fn no_process() -> PropertyMap {
    PropertyMap::from([
        ("MainPID".to_string(), 0u32.into()),
        ("MemoryCurrent".to_string(), u64::MAX.into()),
        ("CPUUsageNSec".to_string(), u64::MAX.into()),
    ])
}

/// What one read of a unit returned: its Unit and Service properties, and the stamp.
struct UnitRead {
    unit: PropertyMap,
    service: PropertyMap,
    stamp: Option<Stamp>,
}

/// Reads a unit's properties; None for names systemd does not know.
async fn fetch_unit(bus: &Bus, name: &str) -> Result<Option<UnitRead>, SystemdError> {
    let path = unit_object_path(name);
    let (unit, stamp) = match bus
        .get_all_stamped(&path, "org.freedesktop.systemd1.Unit")
        .await
    {
        Ok(p) => p,
        // Not loaded: load it (unit files that are installed but idle).
        Err(_) => {
            let loaded = bus.load_unit(name).await?;
            bus.get_all_stamped(loaded.as_str(), "org.freedesktop.systemd1.Unit")
                .await?
        }
    };
    if string_prop(&unit, "LoadState").as_deref() == Some("not-found") {
        return Ok(None);
    }
    let service = if unit_type(name) != "service" {
        PropertyMap::new()
    } else if is_at_rest(string_prop(&unit, "ActiveState").as_deref()) {
        // Most services: a third of the calls of a running one.
        let mut fields = bus.service_fields(&path, &["NRestarts"]).await;
        fields.extend(no_process());
        fields
    } else {
        bus.service_fields(&path, SERVICE_FIELDS).await
    };
    Ok(Some(UnitRead {
        unit,
        service,
        stamp,
    }))
}

fn string_prop(props: &PropertyMap, key: &str) -> Option<String> {
    props.get(key).and_then(string)
}

/// True when a change is one the events stream reports (not memory/CPU).
fn visible_change(before: &UnitRecord, after: &UnitRecord) -> bool {
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
