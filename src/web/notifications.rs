//! Notifications in the browser: the settings section (add, test, enable, remove
//! channels; the last deliveries), the deliveries page, and the stream of alerts that a
//! tab turns into desktop notifications when its user asked for them.

use std::convert::Infallible;

use askama::Template;
use askama_web::WebTemplate;
use axum::Form;
use axum::extract::{Path, State};
use axum::http::{HeaderMap, StatusCode};
use axum::response::sse::{Event as SseEvent, KeepAlive, Sse};
use axum::response::{IntoResponse, Response};
use futures_util::Stream;
use tokio::sync::broadcast::error::RecvError;

use super::admin::SettingsPage;
use super::pages::{Chrome, with_toast};
use crate::auth::{Principal, Scope};
use crate::error::{AppError, FieldError};
use crate::http::problem::PageError;
use crate::http::sse::{KEEP_ALIVE, async_stream};
use crate::notify::Kind;
use crate::service::notifications::{Channel, ChannelSpec, DEFAULT_COOLDOWN_S, Delivery, Event};
use crate::state::AppState;

/// Deliveries shown on the settings page, and on the deliveries page.
const RECENT: u32 = 10;
const PAGE: u32 = 200;

/// The notifications part of `/settings`.
pub struct NotificationsSection {
    pub channels: Vec<ChannelView>,
    /// The last deliveries (rendered table).
    pub deliveries: String,
    pub form: ChannelForm,
}

impl NotificationsSection {
    pub async fn load(state: &AppState, principal: &Principal) -> Result<Self, PageError> {
        let admin = principal.scope >= Scope::Admin;
        Ok(Self {
            channels: state
                .services
                .channels()
                .await?
                .into_iter()
                .map(|c| ChannelView::new(if admin { c } else { c.redacted() }))
                .collect(),
            deliveries: deliveries_table(state, RECENT).await?,
            form: ChannelForm::default(),
        })
    }

    pub fn events(&self) -> [(&'static str, &'static str); 5] {
        Event::ALL.map(|e| {
            (
                e.as_str(),
                match e {
                    Event::UnitFailed => "a unit failed",
                    Event::RestartLoop => "a restart loop",
                    Event::Unhealthy => "a health check failed",
                    Event::JobFailed => "a timer's run failed",
                    Event::Recovered => "recovered",
                },
            )
        })
    }

    pub fn kinds(&self) -> [(&'static str, &'static str); 3] {
        [
            ("webhook", "webhook: JSON to any URL"),
            ("ntfy", "ntfy: a topic URL"),
            ("slack", "Slack: an incoming webhook"),
        ]
    }
}

/// A channel as the settings page lists it.
pub struct ChannelView {
    pub c: Channel,
    pub events: String,
    pub units: String,
    /// (action, label, question asked first) of each button.
    pub buttons: Vec<(&'static str, &'static str, &'static str)>,
}

impl ChannelView {
    fn new(c: Channel) -> Self {
        Self {
            events: c
                .events
                .iter()
                .map(|e| e.as_str())
                .collect::<Vec<_>>()
                .join(", "),
            units: if c.units.is_empty() {
                "every unit".to_string()
            } else {
                c.units.join(", ")
            },
            buttons: vec![
                ("test", "Test", ""),
                ("toggle", if c.enabled { "Disable" } else { "Enable" }, ""),
                (
                    "delete",
                    "Remove",
                    "Remove this channel? Its deliveries stay listed.",
                ),
            ],
            c,
        }
    }
}

/// The add-a-channel form as typed, with the errors of its fields.
pub struct ChannelForm {
    pub name: String,
    pub kind: String,
    pub url: String,
    pub events: Vec<String>,
    pub units: String,
    pub cooldown_s: String,
    pub errors: Vec<FieldError>,
}

impl Default for ChannelForm {
    fn default() -> Self {
        Self {
            name: String::new(),
            kind: "webhook".into(),
            url: String::new(),
            events: vec![
                "unit_failed".into(),
                "job_failed".into(),
                "recovered".into(),
            ],
            units: String::new(),
            cooldown_s: DEFAULT_COOLDOWN_S.to_string(),
            errors: Vec::new(),
        }
    }
}

impl ChannelForm {
    /// The message for `field` (`units` also covers `units[2]`).
    pub fn error(&self, field: &str) -> Option<&str> {
        self.errors
            .iter()
            .find(|e| e.field == field || e.field.starts_with(&format!("{field}[")))
            .map(|e| e.message.as_str())
    }

    pub fn has_event(&self, event: &&str) -> bool {
        self.events.iter().any(|e| e == event)
    }

    fn from_pairs(pairs: Vec<(String, String)>) -> Self {
        let mut form = Self {
            events: Vec::new(),
            ..Self::default()
        };
        for (key, value) in pairs {
            match key.as_str() {
                "name" => form.name = value,
                "kind" => form.kind = value,
                "url" => form.url = value,
                "events" => form.events.push(value),
                "units" => form.units = value,
                "cooldown_s" => form.cooldown_s = value,
                _ => {}
            }
        }
        form
    }

    /// The spec it asks for, or the fields that cannot even be read.
    fn spec(&self) -> Result<ChannelSpec, Vec<FieldError>> {
        let mut errors = Vec::new();
        let kind = Kind::parse(&self.kind);
        if kind.is_none() {
            errors.push(FieldError::new("kind", "webhook, ntfy or slack"));
        }
        let mut events = Vec::new();
        for e in &self.events {
            match Event::parse(e) {
                Some(e) => events.push(e),
                None => errors.push(FieldError::new("events", format!("unknown event {e:?}"))),
            }
        }
        let cooldown_s = self.cooldown_s.trim().parse::<i64>();
        if cooldown_s.is_err() {
            errors.push(FieldError::new("cooldown_s", "a number of seconds"));
        }
        if !errors.is_empty() {
            return Err(errors);
        }
        Ok(ChannelSpec {
            name: self.name.clone(),
            kind: kind.unwrap_or(Kind::Webhook),
            url: self.url.clone(),
            enabled: true,
            events,
            units: self
                .units
                .split([',', ' ', '\n'])
                .map(str::trim)
                .filter(|u| !u.is_empty())
                .map(str::to_string)
                .collect(),
            cooldown_s: cooldown_s.unwrap_or(DEFAULT_COOLDOWN_S),
        })
    }
}

/// A delivery as a table row.
pub struct DeliveryView {
    pub d: Delivery,
    /// The badge colour: active (delivered), failed, inactive (other).
    pub tone: &'static str,
    pub unit_href: Option<String>,
}

#[derive(Template, WebTemplate)]
#[template(path = "deliveries_table.html")]
struct DeliveriesTable {
    deliveries: Vec<DeliveryView>,
}

async fn deliveries_table(state: &AppState, limit: u32) -> Result<String, PageError> {
    let deliveries = state
        .services
        .deliveries(limit)
        .await?
        .into_iter()
        .map(|d| DeliveryView {
            tone: match d.status.as_str() {
                "delivered" => "active",
                "failed" | "dropped" => "failed",
                _ => "inactive",
            },
            unit_href: d.unit.as_ref().map(|u| {
                let run = d
                    .invocation_id
                    .as_ref()
                    .map(|i| format!("?invocation={i}#logs"))
                    .unwrap_or_default();
                format!("units/{}{run}", crate::http::urlencode(u))
            }),
            d,
        })
        .collect();
    DeliveriesTable { deliveries }
        .render()
        .map_err(|e| PageError::from(AppError::internal(e)))
}

/// After a change: `/settings` again. htmx swaps the section in place (`hx-select`) and
/// shows `message`; a plain form post is sent back to the page.
async fn changed(
    state: &AppState,
    principal: &Principal,
    headers: &HeaderMap,
    ok: bool,
    message: &str,
) -> Result<Response, PageError> {
    if !headers.contains_key("hx-request") {
        return Ok(crate::http::base::redirect("/settings#notifications").into_response());
    }
    let page = SettingsPage::load(state, principal).await?;
    Ok(with_toast(page.into_response(), ok, message))
}

/// Adds a channel from the settings form; its errors come back next to its fields (422).
pub async fn create_channel(
    State(state): State<AppState>,
    principal: Principal,
    headers: HeaderMap,
    Form(pairs): Form<Vec<(String, String)>>,
) -> Result<Response, PageError> {
    let mut form = ChannelForm::from_pairs(pairs);
    let created = match form.spec() {
        Ok(spec) => state.services.create_channel(&principal, spec).await,
        Err(errors) => Err(AppError::Validation(errors)),
    };
    match created {
        Ok(channel) => {
            let message = format!("Channel {} added: try it with Test", channel.name);
            changed(&state, &principal, &headers, true, &message).await
        }
        Err(AppError::Validation(errors)) => {
            form.errors = errors;
            let mut page = SettingsPage::load(&state, &principal).await?;
            page.notifications.form = form;
            Ok((StatusCode::UNPROCESSABLE_ENTITY, page).into_response())
        }
        Err(other) => Err(other.into()),
    }
}

/// Sends a test message through a channel; the toast says how it went.
pub async fn test_channel(
    State(state): State<AppState>,
    principal: Principal,
    headers: HeaderMap,
    Path(id): Path<i64>,
) -> Result<Response, PageError> {
    let d = state.services.test_channel(&principal, id).await?;
    let message = match (&d.error, d.http_status) {
        (None, Some(status)) => format!("Test sent to {}: HTTP {status}", d.channel),
        (Some(e), _) => format!("Test to {} failed: {e}", d.channel),
        (None, None) => format!("Test to {}: {}", d.channel, d.status),
    };
    changed(
        &state,
        &principal,
        &headers,
        d.status == "delivered",
        &message,
    )
    .await
}

/// Turns a channel on or off.
pub async fn toggle_channel(
    State(state): State<AppState>,
    principal: Principal,
    headers: HeaderMap,
    Path(id): Path<i64>,
) -> Result<Response, PageError> {
    let c = state.services.toggle_channel(&principal, id).await?;
    let message = format!(
        "Channel {} {}",
        c.name,
        if c.enabled { "on" } else { "off" }
    );
    changed(&state, &principal, &headers, true, &message).await
}

pub async fn delete_channel(
    State(state): State<AppState>,
    principal: Principal,
    headers: HeaderMap,
    Path(id): Path<i64>,
) -> Result<Response, PageError> {
    state.services.delete_channel(&principal, id).await?;
    changed(&state, &principal, &headers, true, "Channel removed").await
}

#[derive(Template, WebTemplate)]
#[template(path = "deliveries.html")]
struct DeliveriesPage {
    chrome: Chrome,
    table: String,
}

/// `/notifications`: every recent delivery.
pub async fn deliveries_page(
    State(state): State<AppState>,
) -> Result<impl IntoResponse, PageError> {
    Ok(DeliveriesPage {
        chrome: Chrome::new("settings"),
        table: deliveries_table(&state, PAGE).await?,
    })
}

/// Alerts as they happen (`event: alert`, data: the notification as JSON), for tabs whose
/// user turned desktop notifications on.
pub async fn alerts(
    State(state): State<AppState>,
) -> Sse<impl Stream<Item = Result<SseEvent, Infallible>>> {
    let mut rx = state.services.subscribe_alerts();
    let stream = async_stream(move |tx| async move {
        loop {
            match rx.recv().await {
                Ok(notice) => {
                    let event = SseEvent::default()
                        .event("alert")
                        .data(serde_json::to_string(&notice).unwrap_or_default());
                    if tx.send(event).await.is_err() {
                        return;
                    }
                }
                Err(RecvError::Lagged(_)) => {}
                Err(RecvError::Closed) => return,
            }
        }
    });
    Sse::new(stream).keep_alive(KeepAlive::new().interval(KEEP_ALIVE))
}
