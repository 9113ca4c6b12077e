//! Notifications leaving unitdeck: one HTTP POST a message to a URL an admin configured
//! (a generic JSON webhook, ntfy or Slack, each with its own body), and what keeps that
//! safe whatever the URL says:
//!
//! - http and https only; no redirect is followed (a 3xx is a failed delivery), no proxy
//!   from the environment is used, nothing but the message is sent (no credentials);
//! - never to unitdeck's own listener: a URL whose address is one of this machine's
//!   (or `localhost`) on unitdeck's port is refused, and for a host name on that port
//!   only addresses that are not this machine's are connected to (checked on the
//!   addresses the name resolves to, so DNS cannot point it back);
//! - 5 s for the whole exchange; at most 512 bytes of an answer are read;
//! - error texts never carry the URL (for Slack and ntfy it is the secret).
//!
//! Retries, cooldowns and records are the domain's (`service::notifications`).

use std::collections::HashSet;
use std::net::{IpAddr, SocketAddr};
use std::sync::Arc;
use std::time::Duration;

use reqwest::Url;
use reqwest::dns::{Addrs, Name, Resolve, Resolving};
use reqwest::header::{CONTENT_TYPE, HeaderMap, HeaderName, HeaderValue};
use serde::{Deserialize, Serialize};
use utoipa::ToSchema;

/// How long one attempt may take, connecting included.
pub const ATTEMPT_TIMEOUT: Duration = Duration::from_secs(5);
/// The longest URL a channel may have.
pub const MAX_URL_LEN: usize = 2048;
/// How much of a refusing answer's body is kept for the error text.
const ANSWER_SNIPPET: usize = 512;

/// Where a channel posts, and so what its body looks like.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
#[serde(rename_all = "lowercase")]
#[schema(as = ChannelKind)]
pub enum Kind {
    /// The message as JSON ([`Notice`]).
    Webhook,
    /// An ntfy topic URL: the sentence as the body, title, priority, tags and the link
    /// as headers.
    Ntfy,
    /// A Slack incoming webhook: `{"text": ...}` with the link.
    Slack,
}

impl Kind {
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Webhook => "webhook",
            Self::Ntfy => "ntfy",
            Self::Slack => "slack",
        }
    }

    pub fn parse(s: &str) -> Option<Self> {
        [Self::Webhook, Self::Ntfy, Self::Slack]
            .into_iter()
            .find(|k| k.as_str() == s)
    }
}

/// A notification: the generic webhook's body, and what the other bodies are made of.
#[derive(Debug, Clone, PartialEq, Serialize, ToSchema)]
pub struct Notice {
    /// `unit_failed`, `restart_loop`, `unhealthy`, `job_failed`, `recovered` (or `test`).
    pub event: String,
    pub unit: Option<String>,
    /// When it happened (systemd's state-change time where there is one), RFC 3339.
    pub time: String,
    pub active_state: Option<String>,
    pub sub_state: Option<String>,
    /// systemd's result of the run (`exit-code`, `signal`, ...).
    pub result: Option<String>,
    pub invocation_id: Option<String>,
    /// One sentence for people.
    pub message: String,
    /// The unit's page, its log view filtered to this run.
    pub url: String,
    /// The machine it happened on.
    pub host: String,
}

impl Notice {
    /// Good news: shown as such by ntfy.
    fn is_good(&self) -> bool {
        matches!(self.event.as_str(), "recovered" | "test")
    }

    fn title(&self) -> String {
        let what = match self.event.as_str() {
            "unit_failed" => "failed",
            "restart_loop" => "is restart-looping",
            "unhealthy" => "is unhealthy",
            "job_failed" => "job failed",
            "recovered" => "recovered",
            "test" => "test notification",
            other => other,
        };
        match &self.unit {
            Some(unit) => format!("{}: {unit} {what}", self.host),
            None => format!("{}: unitdeck {what}", self.host),
        }
    }
}

/// How one attempt went.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Attempt {
    pub delivered: bool,
    pub http_status: Option<u16>,
    pub error: Option<String>,
    /// Whether trying again may help (no answer, 5xx, 408, 429).
    pub retry: bool,
}

impl Attempt {
    fn failed(error: impl Into<String>, retry: bool) -> Self {
        Self {
            delivered: false,
            http_status: None,
            error: Some(error.into()),
            retry,
        }
    }
}

/// Posts notifications (cheap to clone: the clients share their connection pools).
#[derive(Clone)]
pub struct Poster {
    /// Any destination but this machine on unitdeck's port.
    any: reqwest::Client,
    /// For URLs on unitdeck's port: resolves names to other machines' addresses only.
    elsewhere: reqwest::Client,
    own_port: u16,
}

impl Poster {
    /// `own`: the address unitdeck listens on.
    pub fn new(own: SocketAddr) -> Self {
        let client = |resolver: Option<Arc<NotThisMachine>>| {
            let mut builder = reqwest::Client::builder()
                .redirect(reqwest::redirect::Policy::none())
                .no_proxy()
                .timeout(ATTEMPT_TIMEOUT)
                .connect_timeout(ATTEMPT_TIMEOUT)
                .user_agent(concat!("unitdeck/", env!("CARGO_PKG_VERSION")));
            if let Some(resolver) = resolver {
                builder = builder.dns_resolver(resolver);
            }
            // Only fails without a TLS backend or on a broken system CA store; then
            // https URLs fail one by one, with that error.
            builder.build().unwrap_or_else(|e| {
                tracing::error!(error = %e, "cannot set up the notification client");
                reqwest::Client::new()
            })
        };
        Self {
            any: client(None),
            elsewhere: client(Some(Arc::new(NotThisMachine))),
            own_port: own.port(),
        }
    }

    /// Whether `url` may be a channel's: an absolute http(s) URL with a host, not
    /// unitdeck itself. The reason when not.
    pub fn check_url(&self, url: &str) -> Result<(), String> {
        self.target(url).map(|_| ())
    }

    fn target(&self, text: &str) -> Result<(Url, u16), String> {
        if text.len() > MAX_URL_LEN {
            return Err(format!("at most {MAX_URL_LEN} characters"));
        }
        let url = Url::parse(text.trim()).map_err(|e| format!("not a URL: {e}"))?;
        if !matches!(url.scheme(), "http" | "https") {
            return Err("must be an http:// or https:// URL".into());
        }
        let host = url
            .host_str()
            .filter(|h| !h.is_empty())
            .ok_or("names no host")?;
        let port = url.port_or_known_default().ok_or("names no port")?;
        let own = port == self.own_port
            && match host
                .trim_start_matches('[')
                .trim_end_matches(']')
                .parse::<IpAddr>()
            {
                Ok(ip) => is_this_machine(ip),
                Err(_) => {
                    let name = host.trim_end_matches('.').to_ascii_lowercase();
                    name == "localhost" || name.ends_with(".localhost")
                }
            };
        if own {
            return Err("that is unitdeck itself".into());
        }
        Ok((url, port))
    }

    /// One attempt to post `notice` to `url` as a `kind` channel does.
    pub async fn post(&self, kind: Kind, url: &str, notice: &Notice) -> Attempt {
        let (url, port) = match self.target(url) {
            Ok(target) => target,
            Err(e) => return Attempt::failed(format!("refused URL: {e}"), false),
        };
        let client = if port == self.own_port {
            &self.elsewhere
        } else {
            &self.any
        };
        let (content_type, headers, body) = match render(kind, notice) {
            Ok(rendered) => rendered,
            Err(e) => return Attempt::failed(e, false),
        };
        let sent = client
            .post(url)
            .header(CONTENT_TYPE, content_type)
            .headers(headers)
            .body(body)
            .send()
            .await;
        let mut answer = match sent {
            Ok(answer) => answer,
            Err(e) => return Attempt::failed(describe(e), true),
        };
        let status = answer.status();
        let code = status.as_u16();
        if status.is_success() {
            return Attempt {
                delivered: true,
                http_status: Some(code),
                error: None,
                retry: false,
            };
        }
        let error = if status.is_redirection() {
            "answered with a redirect, which is not followed".to_string()
        } else {
            let mut text = Vec::new();
            while text.len() < ANSWER_SNIPPET {
                match tokio::time::timeout(Duration::from_secs(1), answer.chunk()).await {
                    Ok(Ok(Some(chunk))) => text.extend_from_slice(&chunk),
                    _ => break,
                }
            }
            text.truncate(ANSWER_SNIPPET);
            let text: String = String::from_utf8_lossy(&text)
                .chars()
                .map(|c| if c.is_control() { ' ' } else { c })
                .collect();
            match text.trim() {
                "" => format!("HTTP {code}"),
                text => format!("HTTP {code}: {text}"),
            }
        };
        Attempt {
            delivered: false,
            http_status: Some(code),
            error: Some(error),
            retry: status.is_server_error() || matches!(code, 408 | 429),
        }
    }
}

/// The content type, extra headers and body of a message for `kind`.
fn render(kind: Kind, notice: &Notice) -> Result<(&'static str, HeaderMap, Vec<u8>), String> {
    let mut headers = HeaderMap::new();
    match kind {
        Kind::Webhook => Ok((
            "application/json",
            headers,
            serde_json::to_vec(notice).map_err(|e| e.to_string())?,
        )),
        Kind::Ntfy => {
            let (priority, tags) = if notice.is_good() {
                ("3", "white_check_mark")
            } else {
                ("4", "rotating_light")
            };
            for (name, value) in [
                ("title", notice.title()),
                ("priority", priority.to_string()),
                ("tags", tags.to_string()),
                ("click", notice.url.clone()),
            ] {
                headers.insert(HeaderName::from_static(name), header_text(&value));
            }
            Ok((
                "text/plain; charset=utf-8",
                headers,
                notice.message.clone().into_bytes(),
            ))
        }
        Kind::Slack => {
            let text = format!(
                "*{}*\n{} <{}|Open in unitdeck>",
                slack_escape(&notice.title()),
                slack_escape(&notice.message),
                slack_escape(&notice.url)
            );
            Ok((
                "application/json",
                headers,
                serde_json::to_vec(&serde_json::json!({ "text": text }))
                    .map_err(|e| e.to_string())?,
            ))
        }
    }
}

/// A header value from text: printable ASCII kept, anything else a `?`.
fn header_text(text: &str) -> HeaderValue {
    let ascii: String = text
        .chars()
        .map(|c| {
            if c == ' ' || c.is_ascii_graphic() {
                c
            } else {
                '?'
            }
        })
        .collect();
    HeaderValue::from_str(&ascii).unwrap_or_else(|_| HeaderValue::from_static("?"))
}

/// Slack's mrkdwn reserves `&`, `<` and `>`.
fn slack_escape(text: &str) -> String {
    text.replace('&', "&amp;")
        .replace('<', "&lt;")
        .replace('>', "&gt;")
}

/// An error and its causes, without the URL.
fn describe(e: reqwest::Error) -> String {
    let timed_out = e.is_timeout();
    let e = e.without_url();
    let mut text = e.to_string();
    let mut source = std::error::Error::source(&e);
    while let Some(cause) = source {
        let cause_text = cause.to_string();
        if !text.contains(&cause_text) {
            text.push_str(": ");
            text.push_str(&cause_text);
        }
        source = cause.source();
    }
    if timed_out && !text.contains("timed out") {
        text.push_str(&format!(
            " (no answer within {} s)",
            ATTEMPT_TIMEOUT.as_secs()
        ));
    }
    text
}

/// This machine: loopback, unspecified, or an address of one of its interfaces.
fn is_this_machine(ip: IpAddr) -> bool {
    let ip = ip.to_canonical();
    ip.is_loopback() || ip.is_unspecified() || local_addresses().contains(&ip)
}

fn local_addresses() -> HashSet<IpAddr> {
    crate::machine::interface_addresses()
        .into_iter()
        .map(|ip| ip.to_canonical())
        .collect()
}

/// Resolves host names to the addresses that are not this machine's (for URLs on
/// unitdeck's own port).
struct NotThisMachine;

impl Resolve for NotThisMachine {
    fn resolve(&self, name: Name) -> Resolving {
        let host = name.as_str().to_string();
        Box::pin(async move {
            let found: Vec<SocketAddr> = tokio::net::lookup_host((host.as_str(), 0))
                .await?
                .filter(|a| !is_this_machine(a.ip()))
                .collect();
            if found.is_empty() {
                return Err(format!(
                    "{host} resolves to this machine: on unitdeck's port that is unitdeck itself"
                )
                .into());
            }
            Ok(Box::new(found.into_iter()) as Addrs)
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use tokio::io::{AsyncReadExt, AsyncWriteExt};

    fn notice(event: &str) -> Notice {
        Notice {
            event: event.into(),
            unit: Some("shop<api>.service".into()),
            time: "2026-11-28T09:13:20.123456Z".into(),
            active_state: Some("failed".into()),
            sub_state: Some("failed".into()),
            result: Some("exit-code".into()),
            invocation_id: Some("0123456789abcdef0123456789abcdef".into()),
            message: "shop<api>.service failed: exit-code (status 3).".into(),
            url: "http://devbox:8035/units/shop-api.service?invocation=0123#logs".into(),
            host: "devbox".into(),
        }
    }

    #[test]
    fn urls_are_checked_and_unitdeck_itself_is_refused() {
        let poster = Poster::new("0.0.0.0:8035".parse().unwrap());
        for good in [
            "https://ntfy.sh/my-topic",
            "http://127.0.0.1:9000/hook",
            "https://hooks.slack.com/services/T/B/x",
            "http://localhost:8036/",
            "http://[::1]:8080/x",
        ] {
            assert_eq!(poster.check_url(good), Ok(()), "{good}");
        }
        for bad in [
            "ftp://example.com/",
            "file:///etc/passwd",
            "example.com/hook",
            "http://",
            "http://127.0.0.1:8035/api/v1/units",
            "http://localhost:8035/",
            "http://LOCALHOST.:8035/",
            "http://[::1]:8035/",
            "http://[::ffff:127.0.0.1]:8035/",
            "http://0.0.0.0:8035/",
        ] {
            assert!(poster.check_url(bad).is_err(), "{bad}");
        }
        assert!(
            poster
                .check_url(&format!("http://x/{}", "a".repeat(2100)))
                .is_err()
        );
        // Another port of this machine is another program.
        let on_80 = Poster::new("127.0.0.1:80".parse().unwrap());
        assert!(on_80.check_url("http://localhost/").is_err());
        assert!(on_80.check_url("http://localhost:81/").is_ok());
    }

    #[test]
    fn bodies_per_kind() {
        let n = notice("unit_failed");
        let (ct, _, body) = render(Kind::Webhook, &n).unwrap();
        assert_eq!(ct, "application/json");
        let json: serde_json::Value = serde_json::from_slice(&body).unwrap();
        let keys: Vec<&str> = json
            .as_object()
            .unwrap()
            .keys()
            .map(|k| k.as_str())
            .collect();
        let mut expected = [
            "event",
            "unit",
            "time",
            "active_state",
            "sub_state",
            "result",
            "invocation_id",
            "message",
            "url",
            "host",
        ];
        expected.sort();
        let mut keys = keys;
        keys.sort();
        assert_eq!(keys, expected);
        let (ct, headers, body) = render(Kind::Ntfy, &n).unwrap();
        assert!(ct.starts_with("text/plain"));
        assert_eq!(body, n.message.as_bytes());
        assert_eq!(headers["title"], "devbox: shop<api>.service failed");
        assert_eq!(headers["click"], n.url.as_str());
        assert_eq!(headers["priority"], "4");
        let (_, _, body) = render(Kind::Slack, &notice("recovered")).unwrap();
        let json: serde_json::Value = serde_json::from_slice(&body).unwrap();
        let text = json["text"].as_str().unwrap();
        assert!(
            text.starts_with("*devbox: shop&lt;api&gt;.service recovered*"),
            "{text}"
        );
        assert!(text.ends_with("|Open in unitdeck>"), "{text}");
        assert_eq!(header_text("é\nx").to_str().unwrap(), "??x");
    }

    /// A server on 127.0.0.1 that answers every request with `answer`.
    async fn server(answer: &'static str) -> u16 {
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let port = listener.local_addr().unwrap().port();
        tokio::spawn(async move {
            while let Ok((mut s, _)) = listener.accept().await {
                let mut buf = [0u8; 4096];
                let _ = s.read(&mut buf).await;
                let _ = s.write_all(answer.as_bytes()).await;
            }
        });
        port
    }

    #[tokio::test]
    async fn attempts_report_status_retry_and_no_url() {
        let poster = Poster::new("127.0.0.1:8035".parse().unwrap());
        let n = notice("unit_failed");
        let ok = server("HTTP/1.1 204 No Content\r\ncontent-length: 0\r\n\r\n").await;
        let a = poster
            .post(
                Kind::Webhook,
                &format!("http://127.0.0.1:{ok}/secret-path"),
                &n,
            )
            .await;
        assert!(a.delivered && a.http_status == Some(204), "{a:?}");
        let down = server("HTTP/1.1 503 Busy\r\ncontent-length: 5\r\n\r\nlater").await;
        let a = poster
            .post(
                Kind::Ntfy,
                &format!("http://127.0.0.1:{down}/secret-path"),
                &n,
            )
            .await;
        assert_eq!(a.http_status, Some(503));
        assert_eq!(a.error.as_deref(), Some("HTTP 503: later"));
        assert!(a.retry && !a.delivered);
        let moved = server(
            "HTTP/1.1 302 Found\r\nlocation: http://127.0.0.1:8035/\r\ncontent-length: 0\r\n\r\n",
        )
        .await;
        let a = poster
            .post(Kind::Slack, &format!("http://127.0.0.1:{moved}/x"), &n)
            .await;
        assert_eq!(a.http_status, Some(302));
        assert!(!a.delivered && !a.retry, "{a:?}");
        // Nobody listens: an error to retry, which does not name the URL.
        let closed = std::net::TcpListener::bind("127.0.0.1:0")
            .unwrap()
            .local_addr()
            .unwrap()
            .port();
        let a = poster
            .post(
                Kind::Webhook,
                &format!("http://127.0.0.1:{closed}/secret-path"),
                &n,
            )
            .await;
        let error = a.error.unwrap();
        assert!(a.retry && !error.contains("secret-path"), "{error}");
        // unitdeck's own port: refused without a connection.
        let a = poster
            .post(Kind::Webhook, "http://localhost:8035/api/v1/session", &n)
            .await;
        assert!(!a.retry && a.error.unwrap().contains("unitdeck itself"));
    }
}
