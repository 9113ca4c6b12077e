//! Server-sent events shared by the API and the pages: streams fed by a task, the SSE
//! response with keep-alives, and the `Last-Event-ID` a reconnect sends.

use std::convert::Infallible;
use std::time::Duration;

use axum::http::{HeaderMap, HeaderValue};
use axum::response::sse::{Event, KeepAlive, Sse};
use axum::response::{IntoResponse, Response};
use futures_util::Stream;

use crate::task::AbortOnDrop;

/// How often a comment line keeps proxies from closing an idle stream.
pub const KEEP_ALIVE: Duration = Duration::from_secs(15);

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

/// The SSE response of a live stream, with keep-alive comments; proxies are told not to
/// buffer. A log stream's `id:` is the journal cursor, so a reconnect with
/// `Last-Event-ID` resumes exactly.
pub fn sse_response<S>(stream: S) -> Response
where
    S: Stream<Item = Result<Event, Infallible>> + Send + 'static,
{
    let mut response = Sse::new(stream)
        .keep_alive(KeepAlive::new().interval(KEEP_ALIVE))
        .into_response();
    response
        .headers_mut()
        .insert("x-accel-buffering", HeaderValue::from_static("no"));
    response
}

/// The `Last-Event-ID` header; one that is not text still counts (and is refused as a
/// cursor), rather than passing for no header.
pub fn last_event_id(headers: &HeaderMap) -> Option<String> {
    headers
        .get("last-event-id")
        .map(|v| String::from_utf8_lossy(v.as_bytes()).into_owned())
}
