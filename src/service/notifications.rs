//! Notifications: channels, the events worth sending, and their delivery.
//!
//! - Events come from systemd's typed changes (`UnitChange`) and the health checks:
//!   `unit_failed` (a unit entered `failed` and stayed there), `restart_loop` (N
//!   restarts by Restart= within a window, `UNITDECK_RESTART_LOOP`), `unhealthy`,
//!   `job_failed` (a run a timer started ended other than `success`) and `recovered`
//!   (every problem reported of a unit is over: it is active again — after a restart
//!   loop, for a while without a restart —, a run of it succeeded, its health check
//!   passes).
//! - A channel gets an event when it is enabled, asks for the event and names the unit
//!   (or no unit): at most one per (channel, unit, event) per its cooldown, and
//!   `recovered` only when it was told of a problem of that unit.
//! - Delivery never holds up the watcher: each channel has a bounded queue and a worker
//!   of its own, so an endpoint that is down delays only its own channel's messages.
//!   Three tries (1 s, then 3 s apart), each recorded.
//! - Browser tabs that asked for them get the same events, once per problem, over
//!   [`Services::subscribe_alerts`].
//!
//! What is in memory (cooldowns, open problems, restart counts) starts empty with
//! unitdeck.

use std::collections::{BTreeSet, HashMap, HashSet, VecDeque};
use std::sync::{Mutex, RwLock};
use std::time::{Duration, Instant};

use serde::{Deserialize, Serialize};
use tokio::sync::{broadcast, mpsc};
use utoipa::ToSchema;

use crate::auth::Principal;
use crate::db::{ChannelRow, DeliveryRow, DeliveryState, NewChannel};
use crate::error::{AppError, AppResult, FieldError};
use crate::notify::{Kind, Notice, Poster};
use crate::service::Services;
use crate::systemd::names::is_valid_unit_name;
use crate::systemd::{Health, Trigger, UnitChange, UnitMoment, format_usec};

/// The default and the limits of a channel's cooldown (seconds).
pub const DEFAULT_COOLDOWN_S: i64 = 300;
pub const MAX_COOLDOWN_S: i64 = 86_400;
const MAX_NAME: usize = 100;
const MAX_UNITS: usize = 100;
/// Tries per delivery, and the waits between them.
const TRIES: u32 = 3;
const BACKOFF: [Duration; 2] = [Duration::from_secs(1), Duration::from_secs(3)];
/// Messages waiting per channel; more are dropped (and recorded as such).
const QUEUE: usize = 64;
/// After a restart loop, how long a unit must stay active without a restart to count as
/// recovered, at least (longer when its restarts were further apart).
const RECOVERY_HOLD: Duration = Duration::from_secs(10);
/// How often open restart loops are looked at.
const TICK: Duration = Duration::from_secs(1);

/// What a channel can be told.
#[derive(
    Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize, ToSchema,
)]
#[serde(rename_all = "snake_case")]
#[schema(as = NotificationEvent)]
pub enum Event {
    /// A unit entered `failed` and stayed there.
    UnitFailed,
    /// Restart= restarted a unit N times within M minutes (`UNITDECK_RESTART_LOOP`).
    RestartLoop,
    /// A health check turned unhealthy.
    Unhealthy,
    /// A run a timer started ended with a result other than `success`.
    JobFailed,
    /// A unit reported before is active, successful or healthy again.
    Recovered,
}

impl Event {
    pub const ALL: [Event; 5] = [
        Self::UnitFailed,
        Self::RestartLoop,
        Self::Unhealthy,
        Self::JobFailed,
        Self::Recovered,
    ];

    pub fn as_str(self) -> &'static str {
        match self {
            Self::UnitFailed => "unit_failed",
            Self::RestartLoop => "restart_loop",
            Self::Unhealthy => "unhealthy",
            Self::JobFailed => "job_failed",
            Self::Recovered => "recovered",
        }
    }

    pub fn parse(s: &str) -> Option<Self> {
        Self::ALL.into_iter().find(|e| e.as_str() == s)
    }
}

/// A notification channel (`url` reads `***` below admin).
#[derive(Debug, Clone, PartialEq, Serialize, ToSchema)]
pub struct Channel {
    pub id: i64,
    pub name: String,
    pub kind: Kind,
    /// Where it posts: a secret (Slack and ntfy URLs are credentials).
    pub url: String,
    pub enabled: bool,
    pub events: Vec<Event>,
    /// The units it is about; empty: every unit.
    pub units: Vec<String>,
    pub cooldown_s: i64,
    pub created_at: String,
    pub updated_at: String,
}

impl Channel {
    fn from_row(row: ChannelRow) -> Self {
        Self {
            kind: Kind::parse(&row.kind).unwrap_or(Kind::Webhook),
            events: serde_json::from_str::<Vec<String>>(&row.events)
                .unwrap_or_default()
                .iter()
                .filter_map(|e| Event::parse(e))
                .collect(),
            units: serde_json::from_str(&row.units).unwrap_or_default(),
            id: row.id,
            name: row.name,
            url: row.url,
            enabled: row.enabled,
            cooldown_s: row.cooldown_s,
            created_at: row.created_at,
            updated_at: row.updated_at,
        }
    }

    /// The channel as someone below admin sees it.
    pub fn redacted(mut self) -> Self {
        self.url = "***".to_string();
        self
    }

    fn wants(&self, event: Event, unit: Option<&str>) -> bool {
        self.enabled
            && self.events.contains(&event)
            && (self.units.is_empty() || unit.is_some_and(|u| self.units.iter().any(|x| x == u)))
    }
}

/// A channel as written by `POST` and `PUT`.
#[derive(Debug, Clone, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct ChannelSpec {
    /// 1 to 100 characters.
    #[schema(min_length = 1, max_length = 100)]
    pub name: String,
    pub kind: Kind,
    /// An http:// or https:// URL (at most 2048 characters), not unitdeck itself.
    #[schema(
        max_length = 2048,
        pattern = r"^[Hh][Tt][Tt][Pp][Ss]?://[^/?#\s]+",
        examples("https://ntfy.sh/my-devbox")
    )]
    pub url: String,
    #[serde(default = "enabled_by_default")]
    #[schema(default = true)]
    pub enabled: bool,
    /// At least one.
    #[schema(min_items = 1)]
    pub events: Vec<Event>,
    /// Full unit names (at most 100); empty or missing: every unit.
    #[serde(default)]
    #[schema(max_items = 100)]
    pub units: Vec<String>,
    /// 1 to 86400; at most one notification per unit and event this often.
    #[serde(default = "default_cooldown")]
    #[schema(minimum = 1, maximum = 86400, default = 300)]
    pub cooldown_s: i64,
}

fn enabled_by_default() -> bool {
    true
}

fn default_cooldown() -> i64 {
    DEFAULT_COOLDOWN_S
}

/// One delivery of a notification to a channel.
#[derive(Debug, Clone, Serialize, ToSchema)]
pub struct Delivery {
    pub id: i64,
    /// Null once the channel was deleted.
    pub channel_id: Option<i64>,
    pub channel: String,
    /// An event name, or `test`.
    pub event: String,
    pub unit: Option<String>,
    pub invocation_id: Option<String>,
    /// When the first attempt was made.
    pub time: String,
    /// `delivered`, `failed`, `sending` (a retry is due) or `dropped` (the channel's queue
    /// was full).
    pub status: String,
    /// The endpoint's last answer, if it answered.
    pub http_status: Option<u16>,
    pub attempts: u32,
    pub error: Option<String>,
}

impl From<DeliveryRow> for Delivery {
    fn from(row: DeliveryRow) -> Self {
        Self {
            id: row.id,
            channel_id: row.channel_id,
            channel: row.channel_name,
            event: row.event,
            unit: row.unit,
            invocation_id: row.invocation_id,
            time: row.time,
            status: row.status,
            http_status: row.http_status.and_then(|s| u16::try_from(s).ok()),
            attempts: u32::try_from(row.attempts).unwrap_or(0),
            error: row.error,
        }
    }
}

/// A message on its way to one channel.
struct Outgoing {
    channel: Channel,
    event: String,
    notice: Notice,
}

/// What the detection remembers.
#[derive(Default)]
struct Watch {
    /// Restarts by Restart= within the window, per unit.
    restarts: HashMap<String, VecDeque<Instant>>,
    /// Problems reported and not over yet, per unit.
    open: HashMap<String, BTreeSet<Event>>,
    /// When each (channel, unit, event) was last sent.
    sent: HashMap<(i64, String, Event), Instant>,
    /// (channel, unit) told of a problem since the unit last recovered.
    told: HashSet<(i64, String)>,
}

/// The notification machinery behind [`Services`].
pub struct Notifier {
    channels: RwLock<Vec<Channel>>,
    watch: Mutex<Watch>,
    queues: Mutex<HashMap<i64, mpsc::Sender<Outgoing>>>,
    alerts: broadcast::Sender<Notice>,
    poster: Poster,
}

impl Notifier {
    pub fn new(poster: Poster) -> Self {
        Self {
            channels: RwLock::new(Vec::new()),
            watch: Mutex::new(Watch::default()),
            queues: Mutex::new(HashMap::new()),
            alerts: broadcast::channel(64).0,
            poster,
        }
    }
}

impl Services {
    // --- channels -------------------------------------------------------------------

    pub async fn channels(&self) -> AppResult<Vec<Channel>> {
        Ok(self
            .db
            .list_channels()
            .await?
            .into_iter()
            .map(Channel::from_row)
            .collect())
    }

    pub async fn create_channel(
        &self,
        principal: &Principal,
        spec: ChannelSpec,
    ) -> AppResult<Channel> {
        let checked = self.checked_channel(spec)?;
        let row = self
            .db
            .create_channel(&checked.row(), &principal.actor)
            .await?;
        self.reload_channels().await;
        Ok(Channel::from_row(row))
    }

    pub async fn update_channel(
        &self,
        principal: &Principal,
        id: i64,
        spec: ChannelSpec,
    ) -> AppResult<Channel> {
        let checked = self.checked_channel(spec)?;
        let row = self
            .db
            .update_channel(id, &checked.row(), &principal.actor)
            .await?
            .ok_or_else(|| AppError::NotFound(format!("no channel with id {id}")))?;
        self.reload_channels().await;
        Ok(Channel::from_row(row))
    }

    pub async fn delete_channel(&self, principal: &Principal, id: i64) -> AppResult<()> {
        self.db
            .delete_channel(id, &principal.actor)
            .await?
            .ok_or_else(|| AppError::NotFound(format!("no channel with id {id}")))?;
        self.notifier.queues.lock().unwrap().remove(&id);
        self.reload_channels().await;
        Ok(())
    }

    /// Turns a channel on or off (audited as an update).
    pub async fn toggle_channel(&self, principal: &Principal, id: i64) -> AppResult<Channel> {
        let c = self.channel(id).await?;
        let spec = ChannelSpec {
            enabled: !c.enabled,
            name: c.name,
            kind: c.kind,
            url: c.url,
            events: c.events,
            units: c.units,
            cooldown_s: c.cooldown_s,
        };
        self.update_channel(principal, id, spec).await
    }

    async fn channel(&self, id: i64) -> AppResult<Channel> {
        self.channels()
            .await?
            .into_iter()
            .find(|c| c.id == id)
            .ok_or_else(|| AppError::NotFound(format!("no channel with id {id}")))
    }

    /// Sends a test message to a channel now (one try, recorded and audited): how it went.
    pub async fn test_channel(&self, principal: &Principal, id: i64) -> AppResult<Delivery> {
        let channel = self.channel(id).await?;
        let notice = Notice {
            event: "test".into(),
            unit: None,
            time: crate::db::now_rfc3339(),
            active_state: None,
            sub_state: None,
            result: None,
            invocation_id: None,
            message: format!(
                "A test of the channel {} from unitdeck on {}.",
                channel.name,
                host()
            ),
            url: format!("{}/settings", self.public_base()),
            host: host(),
        };
        let target = format!("channel:{id}");
        let delivery = self
            .deliver(Outgoing {
                event: "test".into(),
                channel,
                notice,
            })
            .await;
        let Some(delivery) = delivery else {
            return Err(AppError::Internal("the delivery was not recorded".into()));
        };
        self.audit(crate::db::AuditEntry {
            actor: &principal.actor,
            action: "notification.channel.test",
            target: Some(&target),
            result: &delivery.status,
            detail: delivery.error.as_deref(),
        })
        .await?;
        Ok(delivery)
    }

    /// The newest deliveries first.
    pub async fn deliveries(&self, limit: u32) -> AppResult<Vec<Delivery>> {
        Ok(self
            .db
            .deliveries(limit)
            .await?
            .into_iter()
            .map(Delivery::from)
            .collect())
    }

    /// The events as problems open and close, for browser tabs (`Notification` API).
    pub fn subscribe_alerts(&self) -> broadcast::Receiver<Notice> {
        self.notifier.alerts.subscribe()
    }

    /// A spec's fields checked (every bad one named); trimmed, with events and units
    /// de-duplicated in order.
    fn checked_channel(&self, mut spec: ChannelSpec) -> AppResult<CheckedChannel> {
        let mut errors = Vec::new();
        spec.name = spec.name.trim().to_string();
        if spec.name.is_empty()
            || spec.name.chars().count() > MAX_NAME
            || spec.name.chars().any(char::is_control)
        {
            errors.push(FieldError::new(
                "name",
                format!("1 to {MAX_NAME} printable characters"),
            ));
        }
        spec.url = spec.url.trim().to_string();
        if let Err(why) = self.notifier.poster.check_url(&spec.url) {
            errors.push(FieldError::new("url", why));
        }
        let mut events = Vec::new();
        for e in &spec.events {
            if !events.contains(e) {
                events.push(*e);
            }
        }
        if events.is_empty() {
            errors.push(FieldError::new(
                "events",
                format!(
                    "at least one of {}",
                    Event::ALL.map(Event::as_str).join(", ")
                ),
            ));
        }
        let mut units: Vec<String> = Vec::new();
        for (i, unit) in spec.units.iter().enumerate() {
            let unit = unit.trim();
            if !is_valid_unit_name(unit) {
                errors.push(FieldError::new(
                    format!("units[{i}]"),
                    "a full unit name, e.g. shop-api.service",
                ));
            } else if !units.iter().any(|u| u == unit) {
                units.push(unit.to_string());
            }
        }
        if units.len() > MAX_UNITS {
            errors.push(FieldError::new(
                "units",
                format!("at most {MAX_UNITS} units"),
            ));
        }
        if !(1..=MAX_COOLDOWN_S).contains(&spec.cooldown_s) {
            errors.push(FieldError::new(
                "cooldown_s",
                format!("1 to {MAX_COOLDOWN_S} seconds"),
            ));
        }
        if !errors.is_empty() {
            return Err(AppError::Validation(errors));
        }
        let events: Vec<&str> = events.iter().map(|e| e.as_str()).collect();
        Ok(CheckedChannel {
            events: serde_json::to_string(&events).map_err(AppError::internal)?,
            units: serde_json::to_string(&units).map_err(AppError::internal)?,
            spec,
        })
    }

    /// Reads the channels into memory, where events are matched against them.
    pub(super) async fn reload_channels(&self) {
        match self.channels().await {
            Ok(channels) => *self.notifier.channels.write().unwrap() = channels,
            Err(e) => tracing::error!(error = %e, "cannot read the notification channels"),
        }
    }

    // --- detection --------------------------------------------------------------------

    /// Turns systemd's changes into notifications, for the life of the process.
    pub(super) fn spawn_notifications(&self) {
        let me = self.clone();
        let mut changes = self.systemd.subscribe_changes();
        tokio::spawn(async move {
            me.reload_channels().await;
            let mut tick = tokio::time::interval(TICK);
            loop {
                tokio::select! {
                    change = changes.recv() => match change {
                        Ok(change) => me.on_change(change),
                        Err(broadcast::error::RecvError::Lagged(n)) => {
                            tracing::warn!(missed = n, "notifications fell behind systemd's changes");
                        }
                        Err(broadcast::error::RecvError::Closed) => return,
                    },
                    _ = tick.tick() => me.check_restart_loops(),
                }
            }
        });
    }

    fn on_change(&self, change: UnitChange) {
        match change {
            UnitChange::Failed(m) => {
                let why = outcome(&m).map(|o| format!(": {o}")).unwrap_or_default();
                let message = format!("{} failed{why}.", m.unit);
                self.problem(Event::UnitFailed, &m, message);
            }
            UnitChange::Restarted { unit: m, .. } => {
                let rule = self.config.restart_loop;
                let count = {
                    let mut watch = self.notifier.watch.lock().unwrap();
                    let times = watch.restarts.entry(m.unit.clone()).or_default();
                    times.push_back(Instant::now());
                    while times.front().is_some_and(|t| t.elapsed() > rule.within) {
                        times.pop_front();
                    }
                    times.len()
                };
                if count >= rule.restarts as usize {
                    let last = outcome(&m)
                        .map(|o| format!(" (last run: {o})"))
                        .unwrap_or_default();
                    let message = format!(
                        "{} was restarted {count} times within {}{last}.",
                        m.unit,
                        span(rule.within),
                    );
                    self.problem(Event::RestartLoop, &m, message);
                }
            }
            UnitChange::RunStarted {
                unit,
                invocation_id,
                trigger: Some(trigger @ (Trigger::Timer | Trigger::Manual)),
            } => {
                let db = self.db.clone();
                tokio::spawn(async move {
                    if let Err(e) = db
                        .record_trigger(&invocation_id, &unit, trigger.as_str())
                        .await
                    {
                        tracing::warn!(unit, error = %e, "cannot record what started a run");
                    }
                });
            }
            UnitChange::RunStarted { .. } => {}
            UnitChange::RunEnded { run, trigger } => {
                if run.result.as_deref() == Some("success") {
                    let message = format!("{} ran successfully again.", run.unit);
                    self.resolved(&run, &[Event::UnitFailed, Event::JobFailed], message);
                } else if trigger == Some(Trigger::Timer) {
                    let how = outcome(&run).map(|o| format!(": {o}")).unwrap_or_default();
                    let message = format!("{}, started by its timer, failed{how}.", run.unit);
                    self.problem(Event::JobFailed, &run, message);
                }
            }
            UnitChange::Active(m) => {
                let message = format!("{} is active again.", m.unit);
                self.resolved(&m, &[Event::UnitFailed], message);
            }
        }
    }

    /// A health check's verdict changed.
    pub(super) fn health_changed(&self, unit: &str, health: Health, error: Option<&str>) {
        let Some(m) = self.systemd.moment(unit) else {
            return;
        };
        match health {
            Health::Unhealthy => {
                let why = error.map(|e| format!(": {e}")).unwrap_or_default();
                let message = format!("{unit} is unhealthy{why}.");
                self.problem(Event::Unhealthy, &m, message);
            }
            Health::Healthy => {
                let message = format!("{unit} is healthy again.");
                self.resolved(&m, &[Event::Unhealthy], message);
            }
            Health::Unknown => {}
        }
    }

    /// Restart loops are over once their unit stayed active long enough without a
    /// restart: [`RECOVERY_HOLD`], or twice the last gap between its restarts.
    fn check_restart_loops(&self) {
        let over: Vec<String> = {
            let mut watch = self.notifier.watch.lock().unwrap();
            let within = self.config.restart_loop.within;
            watch.restarts.retain(|_, times| {
                times.retain(|t| t.elapsed() <= within);
                !times.is_empty()
            });
            watch
                .sent
                .retain(|_, at| at.elapsed() < Duration::from_secs(MAX_COOLDOWN_S as u64));
            let looping: Vec<String> = watch
                .open
                .iter()
                .filter(|(_, open)| open.contains(&Event::RestartLoop))
                .map(|(unit, _)| unit.clone())
                .collect();
            looping
                .into_iter()
                .filter(|unit| {
                    let times = watch.restarts.get(unit);
                    let last = times.and_then(|t| t.back());
                    let gap = times
                        .filter(|t| t.len() >= 2)
                        .map(|t| t[t.len() - 1].duration_since(t[t.len() - 2]) * 2)
                        .unwrap_or_default();
                    last.is_none_or(|at| at.elapsed() >= RECOVERY_HOLD.max(gap))
                })
                .collect()
        };
        for unit in over {
            let Some(m) = self.systemd.moment(&unit) else {
                continue;
            };
            if m.active_state.as_deref() == Some("active") {
                let message = format!("{unit} is active again, without restarts.");
                self.resolved(&m, &[Event::RestartLoop], message);
            }
        }
    }

    /// A problem: sent to the channels that want it (cooldowns permitting); told to the
    /// browser when it is new (a unit failing or a job failing again is new each time).
    fn problem(&self, event: Event, m: &UnitMoment, message: String) {
        let opened = {
            let mut watch = self.notifier.watch.lock().unwrap();
            watch.open.entry(m.unit.clone()).or_default().insert(event)
        };
        let notice = self.notice(event, m, message);
        if opened || matches!(event, Event::UnitFailed | Event::JobFailed) {
            let _ = self.notifier.alerts.send(notice.clone());
        }
        self.dispatch(event, &notice);
    }

    /// Problems of a unit that are over; `recovered` once none is left.
    fn resolved(&self, m: &UnitMoment, events: &[Event], message: String) {
        let recovered = {
            let mut watch = self.notifier.watch.lock().unwrap();
            match watch.open.get_mut(&m.unit) {
                Some(open) => {
                    let had = !open.is_empty();
                    for e in events {
                        open.remove(e);
                    }
                    let over = had && open.is_empty();
                    if over {
                        watch.open.remove(&m.unit);
                    }
                    over
                }
                None => false,
            }
        };
        if recovered {
            let notice = self.notice(Event::Recovered, m, message);
            let _ = self.notifier.alerts.send(notice.clone());
            self.dispatch(Event::Recovered, &notice);
        }
    }

    /// Queues `notice` for every channel that wants it now.
    fn dispatch(&self, event: Event, notice: &Notice) {
        let unit = notice.unit.clone().unwrap_or_default();
        let channels: Vec<Channel> = self
            .notifier
            .channels
            .read()
            .unwrap()
            .iter()
            .filter(|c| c.wants(event, notice.unit.as_deref()))
            .cloned()
            .collect();
        let mut due = Vec::new();
        {
            let mut watch = self.notifier.watch.lock().unwrap();
            for channel in channels {
                let told = (channel.id, unit.clone());
                if event == Event::Recovered && !watch.told.contains(&told) {
                    continue;
                }
                let key = (channel.id, unit.clone(), event);
                let cooldown = Duration::from_secs(channel.cooldown_s.max(0) as u64);
                if watch
                    .sent
                    .get(&key)
                    .is_some_and(|at| at.elapsed() < cooldown)
                {
                    continue;
                }
                watch.sent.insert(key, Instant::now());
                if event == Event::Recovered {
                    watch.told.remove(&told);
                } else {
                    watch.told.insert(told);
                }
                due.push(channel);
            }
        }
        for channel in due {
            self.enqueue(Outgoing {
                channel,
                event: event.as_str().to_string(),
                notice: notice.clone(),
            });
        }
    }

    // --- delivery -----------------------------------------------------------------------

    /// Hands a message to its channel's worker (started on first use); a full queue
    /// drops it, recorded as `dropped`.
    fn enqueue(&self, out: Outgoing) {
        let id = out.channel.id;
        let tx = {
            let mut queues = self.notifier.queues.lock().unwrap();
            let tx = queues.entry(id).or_insert_with(|| self.spawn_worker());
            if tx.is_closed() {
                *tx = self.spawn_worker();
            }
            tx.clone()
        };
        if let Err(mpsc::error::TrySendError::Full(out) | mpsc::error::TrySendError::Closed(out)) =
            tx.try_send(out)
        {
            tracing::warn!(channel = id, "notification queue full: message dropped");
            let db = self.db.clone();
            tokio::spawn(async move {
                let state = DeliveryState {
                    status: "dropped",
                    http_status: None,
                    attempts: 0,
                    error: Some("the channel's queue was full"),
                };
                let _ = db
                    .insert_delivery(
                        (out.channel.id, &out.channel.name),
                        &out.event,
                        out.notice.unit.as_deref(),
                        out.notice.invocation_id.as_deref(),
                        &state,
                    )
                    .await;
            });
        }
    }

    fn spawn_worker(&self) -> mpsc::Sender<Outgoing> {
        let (tx, mut rx) = mpsc::channel::<Outgoing>(QUEUE);
        let me = self.clone();
        tokio::spawn(async move {
            while let Some(out) = rx.recv().await {
                me.deliver(out).await;
            }
        });
        tx
    }

    /// Posts a message, trying again after failures that may pass (a test: once); each
    /// attempt is recorded. A channel deleted or disabled meanwhile gets no more tries.
    async fn deliver(&self, out: Outgoing) -> Option<Delivery> {
        let tries = if out.event == "test" { 1 } else { TRIES };
        let mut channel = out.channel;
        let mut record = None;
        let mut delivery = None;
        for attempt in 1..=tries {
            if attempt > 1 {
                tokio::time::sleep(BACKOFF[(attempt - 2) as usize]).await;
                // The channel as it is now: a new URL counts, a deleted one ends it.
                let now = self
                    .notifier
                    .channels
                    .read()
                    .unwrap()
                    .iter()
                    .find(|c| c.id == channel.id && c.enabled)
                    .cloned();
                match now {
                    Some(now) => channel = now,
                    None => break,
                }
            }
            let outcome = self
                .notifier
                .poster
                .post(channel.kind, &channel.url, &out.notice)
                .await;
            let last = outcome.delivered || !outcome.retry || attempt == tries;
            let status = match (outcome.delivered, last) {
                (true, _) => "delivered",
                (false, true) => "failed",
                (false, false) => "sending",
            };
            let state = DeliveryState {
                status,
                http_status: outcome.http_status,
                attempts: attempt,
                error: outcome.error.as_deref(),
            };
            let written = match record {
                None => self
                    .db
                    .insert_delivery(
                        (channel.id, &channel.name),
                        &out.event,
                        out.notice.unit.as_deref(),
                        out.notice.invocation_id.as_deref(),
                        &state,
                    )
                    .await
                    .map(|id| record = Some(id)),
                Some(id) => self.db.update_delivery(id, &state).await,
            };
            if let Err(e) = written {
                tracing::error!(channel = channel.id, error = %e, "cannot record a delivery");
            }
            delivery = Some(Delivery {
                id: record.unwrap_or(0),
                channel_id: Some(channel.id),
                channel: channel.name.clone(),
                event: out.event.clone(),
                unit: out.notice.unit.clone(),
                invocation_id: out.notice.invocation_id.clone(),
                time: crate::db::now_rfc3339(),
                status: status.to_string(),
                http_status: outcome.http_status,
                attempts: attempt,
                error: outcome.error.clone(),
            });
            if last {
                break;
            }
        }
        delivery
    }

    // --- messages -----------------------------------------------------------------------

    fn notice(&self, event: Event, m: &UnitMoment, message: String) -> Notice {
        Notice {
            event: event.as_str().to_string(),
            unit: Some(m.unit.clone()),
            time: format_usec(m.at_usec).unwrap_or_else(crate::db::now_rfc3339),
            active_state: m.active_state.clone(),
            sub_state: m.sub_state.clone(),
            result: m.result.clone(),
            invocation_id: m.invocation_id.clone(),
            message,
            url: self.unit_link(&m.unit, m.invocation_id.as_deref()),
            host: host(),
        }
    }

    /// The unit's page, its logs filtered to one run when `invocation` is given.
    pub fn unit_link(&self, unit: &str, invocation: Option<&str>) -> String {
        let run = invocation
            .map(|i| format!("?invocation={i}"))
            .unwrap_or_default();
        format!(
            "{}/units/{}{run}#logs",
            self.public_base(),
            path_segment(unit)
        )
    }

    /// `UNITDECK_PUBLIC_URL`, else this machine's hostname and unitdeck's port.
    fn public_base(&self) -> String {
        if let Some(url) = &self.config.public_url {
            return url.clone();
        }
        let scheme = match self.config.tls {
            crate::config::Tls::Off => "http",
            _ => "https",
        };
        format!(
            "{scheme}://{}:{}{}",
            host(),
            self.config.listen.port(),
            self.config.base_path
        )
    }
}

/// A spec that passed the checks, with its lists as stored (JSON).
struct CheckedChannel {
    spec: ChannelSpec,
    events: String,
    units: String,
}

impl CheckedChannel {
    fn row(&self) -> NewChannel<'_> {
        NewChannel {
            name: &self.spec.name,
            kind: self.spec.kind.as_str(),
            url: &self.spec.url,
            enabled: self.spec.enabled,
            events: &self.events,
            units: &self.units,
            cooldown_s: self.spec.cooldown_s,
        }
    }
}

/// This machine's name, for messages.
fn host() -> String {
    crate::machine::hostname().unwrap_or_else(|| "localhost".to_string())
}

/// "exit-code, exit status 3": how a run ended, for a sentence.
fn outcome(m: &UnitMoment) -> Option<String> {
    match (&m.result, m.exit_status) {
        (Some(result), Some(status)) => Some(format!("{result}, exit status {status}")),
        (Some(result), None) => Some(result.clone()),
        (None, Some(status)) => Some(format!("exit status {status}")),
        (None, None) => None,
    }
}

/// "10 minutes", "30 seconds".
fn span(d: Duration) -> String {
    let s = d.as_secs();
    match s {
        s if s % 3600 == 0 && s >= 3600 => plural(s / 3600, "hour"),
        s if s % 60 == 0 && s >= 60 => plural(s / 60, "minute"),
        s => plural(s, "second"),
    }
}

fn plural(n: u64, what: &str) -> String {
    if n == 1 {
        format!("1 {what}")
    } else {
        format!("{n} {what}s")
    }
}

/// A unit name as a URL path segment (`\` and anything unusual percent-encoded).
fn path_segment(name: &str) -> String {
    name.bytes()
        .map(|b| match b {
            b'A'..=b'Z' | b'a'..=b'z' | b'0'..=b'9' | b'-' | b'_' | b'.' | b'@' | b':' => {
                (b as char).to_string()
            }
            _ => format!("%{b:02X}"),
        })
        .collect()
}
