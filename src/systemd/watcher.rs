//! Keeps the unit cache current. At (re)connect: Subscribe, ListUnits (every loaded unit's
//! state: connected from here on), then one GetAll per unit (+ unit files not loaded).
//! Afterwards systemd's signals: PropertiesChanged for state, UnitNew/UnitRemoved for the
//! set, Reloading for a full resync, UnitFilesChanged for enablement.

use std::collections::HashSet;
use std::sync::atomic::Ordering;
use std::time::{Duration, Instant};

use futures_util::{StreamExt, stream};
use tokio::sync::mpsc;
use zbus::MessageStream;
use zbus::message::Type as MessageType;

use super::SystemdError;
use super::cache::{
    PROTECTED_BASE, Systemd, TOMBSTONE_TTL, UnitEvent, has_unit_file, is_at_rest, string_prop,
};
use super::manager::{Bus, SERVICE_FIELDS};
use super::names::{is_template, unit_name_from_object_path, unit_object_path, unit_type};
use super::props::{PropertyMap, Stamp, strings};
use crate::task::AbortOnDrop;

/// Parallel D-Bus calls while (re)loading the cache.
pub(super) const LOAD_CONCURRENCY: usize = 16;
/// The longest a daemon-reload is trusted to take: a reload that fails half-way never
/// sends its Reloading(false), and UnitRemoved must not be ignored for ever after.
const RELOAD_LIMIT: Duration = Duration::from_secs(60);

/// Units systemd unloaded while a fill ran.
#[derive(Default)]
pub(super) struct FillNotes {
    /// Unloaded before a read told whether they have a unit file: kept as inactive
    /// until the fill's end, which knows the unit files.
    undecided: HashSet<String>,
    /// Read by the fill and unknown to systemd by then.
    not_found: HashSet<String>,
}

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

impl Systemd {
    pub(super) async fn watch_forever(self) {
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
            // A local socket is cheap to try: at most 2 s between tries keeps the panel
            // back within moments of the bus (a restart of dbus or a daemon-reexec).
            delay = (delay * 2).min(Duration::from_secs(2));
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
        if !exists {
            self.inner.new_units.lock().unwrap().insert(name.clone());
        }
        let stored = self.load_into_cache(bus, &name).await;
        self.inner.new_units.lock().unwrap().remove(&name);
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
    pub(super) fn on_unit_removed(&self, name: &str, stamp: Option<Stamp>) {
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

/// What systemd reports for a service at rest: no pid, and "not set" memory and CPU.
pub(super) fn no_process() -> PropertyMap {
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
    let service = if unit_type(name) == "timer" {
        // Which run of its service a trigger started (`transitions`), also for a
        // trigger from before unitdeck started.
        bus.fields(
            &path,
            "org.freedesktop.systemd1.Timer",
            &["LastTriggerUSec"],
        )
        .await
    } else if unit_type(name) != "service" {
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
