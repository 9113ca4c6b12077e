//! An HTTP receiver for notifications, on 127.0.0.1 in the test process (the test
//! containers share the host's network): it records every request with the wall-clock
//! time it arrived and answers with a status the test sets.

use std::sync::atomic::{AtomicU16, Ordering};
use std::sync::{Arc, Mutex};
use std::time::SystemTime;

use axum::body::Bytes;
use axum::extract::State;
use axum::http::{HeaderMap, StatusCode, Uri};
use serde_json::Value;

/// One request as it arrived.
#[derive(Debug, Clone)]
pub struct Received {
    pub at: SystemTime,
    pub path: String,
    pub headers: HeaderMap,
    pub body: Bytes,
}

impl Received {
    pub fn json(&self) -> Value {
        serde_json::from_slice(&self.body).unwrap_or(Value::Null)
    }
}

#[derive(Clone)]
struct Inner {
    got: Arc<Mutex<Vec<Received>>>,
    status: Arc<AtomicU16>,
}

pub struct Receiver {
    pub port: u16,
    inner: Inner,
}

impl Receiver {
    /// Starts a receiver answering `status` to every request.
    pub async fn start(status: u16) -> Self {
        let inner = Inner {
            got: Arc::default(),
            status: Arc::new(AtomicU16::new(status)),
        };
        let app = axum::Router::new()
            .fallback(record)
            .with_state(inner.clone());
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let port = listener.local_addr().unwrap().port();
        tokio::spawn(async move { axum::serve(listener, app).await });
        Self { port, inner }
    }

    /// Its URL with `path`.
    pub fn url(&self, path: &str) -> String {
        format!("http://127.0.0.1:{}{path}", self.port)
    }

    pub fn requests(&self) -> Vec<Received> {
        self.inner.got.lock().unwrap().clone()
    }

    /// The JSON bodies of the requests whose `event` is `event` and `unit` is `unit`.
    pub fn events(&self, event: &str, unit: &str) -> Vec<(SystemTime, Value)> {
        self.requests()
            .into_iter()
            .map(|r| (r.at, r.json()))
            .filter(|(_, v)| v["event"] == event && v["unit"] == unit)
            .collect()
    }
}

async fn record(
    State(inner): State<Inner>,
    uri: Uri,
    headers: HeaderMap,
    body: Bytes,
) -> StatusCode {
    let at = SystemTime::now();
    inner.got.lock().unwrap().push(Received {
        at,
        path: uri.to_string(),
        headers,
        body,
    });
    StatusCode::from_u16(inner.status.load(Ordering::Relaxed)).unwrap_or(StatusCode::OK)
}
