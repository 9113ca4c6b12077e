//! `GET /api/v1/events`: unit changes as server-sent events.

use std::convert::Infallible;

use axum::extract::State;
use axum::response::sse::{Event, KeepAlive, Sse};
use futures_util::Stream;
use tokio::sync::broadcast::error::RecvError;

use crate::http::sse::{KEEP_ALIVE, async_stream};
use crate::service::Services;
use crate::systemd::UnitEvent;

/// Unit state changes: `event: unit` with a unit summary, `event: removed` with
/// `{"name"}`. The stream opens with a snapshot of every unit (as `unit`
/// events), and sends a fresh one whenever unitdeck had to resync with systemd
/// or the client fell behind, so a reconnecting client is always current. Problems and
/// recoveries come as `event: alert` with the body a webhook channel gets (`Notice`).
#[utoipa::path(get, path = "/api/v1/events", tag = "units",
    responses((status = 200, content_type = "text/event-stream",
        description = "event: unit / data: unit summary; event: removed / data: {\"name\"}; event: alert / data: Notice")))]
pub async fn events(
    State(services): State<Services>,
) -> Sse<impl Stream<Item = Result<Event, Infallible>>> {
    let mut rx = services.subscribe_units();
    let mut alerts = services.subscribe_alerts();
    let stream = async_stream(move |tx| async move {
        let snapshot = |services: &Services| {
            services
                .all_units()
                .into_iter()
                .map(|u| unit_event(&u))
                .collect::<Vec<_>>()
        };
        for event in snapshot(&services) {
            if tx.send(event).await.is_err() {
                return;
            }
        }
        loop {
            let received = tokio::select! {
                unit = rx.recv() => unit,
                alert = alerts.recv() => match alert {
                    Ok(notice) => {
                        let alert = Event::default()
                            .event("alert")
                            .data(serde_json::to_string(&notice).unwrap_or_default());
                        if tx.send(alert).await.is_err() {
                            return;
                        }
                        continue;
                    }
                    Err(RecvError::Lagged(_)) => continue,
                    Err(RecvError::Closed) => return,
                },
            };
            let events = match received {
                Ok(UnitEvent::Changed(summary)) => vec![unit_event(&summary)],
                Ok(UnitEvent::Removed(name)) => vec![
                    Event::default()
                        .event("removed")
                        .data(serde_json::json!({ "name": name }).to_string()),
                ],
                Ok(UnitEvent::Resync) | Err(RecvError::Lagged(_)) => snapshot(&services),
                Err(RecvError::Closed) => return,
            };
            for event in events {
                if tx.send(event).await.is_err() {
                    return;
                }
            }
        }
    });
    Sse::new(stream).keep_alive(KeepAlive::new().interval(KEEP_ALIVE))
}

fn unit_event(summary: &crate::systemd::UnitSummary) -> Event {
    Event::default()
        .event("unit")
        .data(serde_json::to_string(summary).unwrap_or_default())
}
