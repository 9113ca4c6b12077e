//! `GET /api/v1/events`: unit changes as server-sent events.

use std::convert::Infallible;
use std::time::Duration;

use axum::extract::State;
use axum::response::sse::{Event, KeepAlive, Sse};
use futures_util::Stream;
use tokio::sync::broadcast::error::RecvError;

use crate::state::AppState;
use crate::systemd::UnitEvent;
use crate::systemd::watch::UnitFilter;
use crate::task::AbortOnDrop;

/// How often a comment line keeps proxies from closing an idle stream.
pub const KEEP_ALIVE: Duration = Duration::from_secs(15);

/// Unit state changes: `event: unit` with a unit summary, `event: removed` with
/// `{"name"}`. The stream opens with a snapshot of every unit (as `unit`
/// events), and sends a fresh one whenever unitdeck had to resync with systemd
/// or the client fell behind, so a reconnecting client is always current.
#[utoipa::path(get, path = "/api/v1/events", tag = "units",
    responses((status = 200, content_type = "text/event-stream",
        description = "event: unit / data: unit summary; event: removed / data: {\"name\"}")))]
pub async fn events(
    State(state): State<AppState>,
) -> Sse<impl Stream<Item = Result<Event, Infallible>>> {
    let mut rx = state.systemd.subscribe();
    let systemd = state.systemd.clone();
    let stream = async_stream(move |tx| async move {
        let snapshot = |systemd: &crate::systemd::Systemd| {
            systemd
                .list(&UnitFilter::default())
                .into_iter()
                .map(|u| unit_event(&u))
                .collect::<Vec<_>>()
        };
        for event in snapshot(&systemd) {
            if tx.send(event).await.is_err() {
                return;
            }
        }
        loop {
            let events = match rx.recv().await {
                Ok(UnitEvent::Changed(summary)) => vec![unit_event(&summary)],
                Ok(UnitEvent::Removed(name)) => vec![
                    Event::default()
                        .event("removed")
                        .data(serde_json::json!({ "name": name }).to_string()),
                ],
                Ok(UnitEvent::Resync) | Err(RecvError::Lagged(_)) => snapshot(&systemd),
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

/// A stream fed by a task through a small channel; the task ends when the
/// client goes away (its sends fail), so no subscriber outlives its viewer.
pub fn async_stream<T, F, Fut>(produce: F) -> impl Stream<Item = Result<T, Infallible>>
where
    T: Send + 'static,
    F: FnOnce(tokio::sync::mpsc::Sender<T>) -> Fut,
    Fut: std::future::Future<Output = ()> + Send + 'static,
{
    let (tx, rx) = tokio::sync::mpsc::channel(64);
    let task = tokio::spawn(produce(tx));
    let guard = AbortOnDrop(task);
    futures_util::stream::unfold((rx, guard), |(mut rx, guard)| async move {
        rx.recv().await.map(|item| (Ok(item), (rx, guard)))
    })
}
