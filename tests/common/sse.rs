//! Reading server-sent events in tests.

use std::time::Duration;

use futures_util::StreamExt;

#[derive(Debug, Clone, Default)]
pub struct SseEvent {
    pub id: Option<String>,
    pub event: String,
    pub data: String,
}

pub struct SseReader {
    stream: futures_util::stream::BoxStream<'static, reqwest::Result<bytes::Bytes>>,
    buffer: String,
    /// Keep-alive comments read so far.
    pub comments: usize,
    /// The last `retry:` (reconnection delay, ms) the server sent.
    pub retry: Option<u64>,
    /// The server ended the stream cleanly (not a timeout, not an error).
    pub ended: bool,
}

impl SseReader {
    pub fn new(response: reqwest::Response) -> Self {
        assert_eq!(response.status(), 200, "SSE request failed");
        let ct = response.headers()["content-type"]
            .to_str()
            .unwrap()
            .to_string();
        assert!(ct.starts_with("text/event-stream"), "{ct}");
        Self {
            stream: response.bytes_stream().boxed(),
            buffer: String::new(),
            comments: 0,
            retry: None,
            ended: false,
        }
    }

    /// The next event (comments skipped), or None on timeout or end of stream.
    pub async fn next(&mut self, timeout: Duration) -> Option<SseEvent> {
        let deadline = tokio::time::Instant::now() + timeout;
        loop {
            if let Some(pos) = self.buffer.find("\n\n") {
                let block: String = self.buffer.drain(..pos + 2).collect();
                let mut event = SseEvent {
                    event: "message".into(),
                    ..Default::default()
                };
                let mut data = Vec::new();
                for line in block.lines() {
                    if let Some(v) = line.strip_prefix("data:") {
                        data.push(v.strip_prefix(' ').unwrap_or(v).to_string());
                    } else if let Some(v) = line.strip_prefix("event:") {
                        event.event = v.trim().to_string();
                    } else if let Some(v) = line.strip_prefix("id:") {
                        event.id = Some(v.trim().to_string());
                    } else if let Some(v) = line.strip_prefix("retry:") {
                        self.retry = v.trim().parse().ok();
                    }
                }
                if data.is_empty() && event.id.is_none() {
                    self.comments += usize::from(block.starts_with(':'));
                    continue; // a keep-alive comment
                }
                event.data = data.join("\n");
                return Some(event);
            }
            let chunk = tokio::time::timeout_at(deadline, self.stream.next()).await;
            match chunk.ok()? {
                Some(Ok(bytes)) => self.buffer.push_str(&String::from_utf8_lossy(&bytes)),
                Some(Err(_)) => return None,
                None => {
                    self.ended = true;
                    return None;
                }
            }
        }
    }
}
