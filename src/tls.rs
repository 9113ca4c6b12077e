//! HTTPS with rustls: a certificate and key the operator gave (`UNITDECK_TLS_CERT`,
//! `UNITDECK_TLS_KEY`), or one unitdeck makes on first start in its state directory
//! (`UNITDECK_TLS=self-signed`). Connections are accepted, and their handshakes run, in a
//! task of their own: a slow or silent client never holds up the next one.

use std::io;
use std::net::SocketAddr;
use std::os::unix::fs::OpenOptionsExt;
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::Duration;

use chrono::Datelike;
use rustls::pki_types::pem::PemObject;
use rustls::pki_types::{CertificateDer, PrivateKeyDer};
use sha2::{Digest, Sha256};
use tokio::io::{AsyncRead, AsyncWrite};
use tokio::net::TcpListener;
use tokio::sync::mpsc;
use tokio_rustls::TlsAcceptor;

use crate::config::{Config, Tls};
use crate::task::AbortOnDrop;

/// How long a client may take over its handshake.
const HANDSHAKE_TIMEOUT: Duration = Duration::from_secs(10);
/// A made certificate is valid this long (Apple devices refuse more than 825 days)...
const SELF_SIGNED_DAYS: u64 = 800;
/// ...and is made again when it is older than this at a start.
const RENEW_AFTER_DAYS: u64 = 760;

/// What serving HTTPS needs, loaded at start.
pub struct TlsSetup {
    pub acceptor: TlsAcceptor,
    /// SHA-256 of the (first) certificate, `AB:CD:…`: what a browser shows to compare.
    pub fingerprint: String,
}

/// Loads (or, for `self-signed`, makes) the certificate; None for plain HTTP.
pub fn setup(config: &Config) -> anyhow::Result<Option<TlsSetup>> {
    let (cert, key) = match &config.tls {
        Tls::Off => return Ok(None),
        Tls::Files { cert, key } => (cert.clone(), key.clone()),
        Tls::SelfSigned => self_signed(&config.state_dir)?,
    };
    let chain: Vec<CertificateDer<'static>> = CertificateDer::pem_file_iter(&cert)
        .and_then(|certs| certs.collect())
        .map_err(|e| anyhow::anyhow!("cannot read the certificate {}: {e}", cert.display()))?;
    anyhow::ensure!(
        !chain.is_empty(),
        "{} holds no PEM certificate",
        cert.display()
    );
    let private_key = PrivateKeyDer::from_pem_file(&key)
        .map_err(|e| anyhow::anyhow!("cannot read the private key {}: {e}", key.display()))?;
    let fingerprint = fingerprint(&chain[0]);
    // ring, not aws-lc-rs: it builds with a C compiler alone (aws-lc needs cmake and minutes
    // more on a 2-core machine); rustls deprecated it for lacking post-quantum key
    // exchange, which a panel's session cookie on a LAN can do without.
    #[allow(deprecated)]
    let provider = Arc::new(rustls::crypto::ring::default_provider());
    let mut server = rustls::ServerConfig::builder_with_provider(provider)
        .with_safe_default_protocol_versions()?
        .with_no_client_auth()
        .with_single_cert(chain, private_key)
        .map_err(|e| anyhow::anyhow!("{} and {}: {e}", cert.display(), key.display()))?;
    server.alpn_protocols = vec![b"http/1.1".to_vec()];
    Ok(Some(TlsSetup {
        acceptor: TlsAcceptor::from(Arc::new(server)),
        fingerprint,
    }))
}

/// `AB:CD:…`, the way browsers show a certificate's SHA-256 fingerprint.
pub fn fingerprint(cert: &CertificateDer<'_>) -> String {
    Sha256::digest(cert.as_ref())
        .iter()
        .map(|b| format!("{b:02X}"))
        .collect::<Vec<_>>()
        .join(":")
}

/// The made certificate and key in `state_dir/tls/`, made (again) when missing or old.
/// Its names: localhost, this machine's hostname and every address it has.
fn self_signed(state_dir: &Path) -> anyhow::Result<(PathBuf, PathBuf)> {
    let dir = state_dir.join("tls");
    let (cert, key) = (dir.join("self-signed.pem"), dir.join("self-signed.key"));
    let age_days = std::fs::metadata(&cert)
        .and_then(|m| m.modified())
        .ok()
        .and_then(|t| t.elapsed().ok())
        .map(|age| age.as_secs() / 86_400);
    if age_days.is_some_and(|d| d < RENEW_AFTER_DAYS) && key.exists() {
        return Ok((cert, key));
    }
    std::fs::create_dir_all(&dir)
        .map_err(|e| anyhow::anyhow!("cannot create {}: {e}", dir.display()))?;
    let mut names = vec!["localhost".to_string()];
    names.extend(crate::machine::host_names());
    let mut params = rcgen::CertificateParams::new(names)?;
    params
        .distinguished_name
        .push(rcgen::DnType::CommonName, "unitdeck (self-signed)");
    let today = chrono::Utc::now().date_naive();
    let date =
        |d: chrono::NaiveDate| rcgen::date_time_ymd(d.year(), d.month() as u8, d.day() as u8);
    params.not_before = date(today - chrono::Days::new(1));
    params.not_after = date(today + chrono::Days::new(SELF_SIGNED_DAYS));
    let key_pair = rcgen::KeyPair::generate()?;
    let made = params.self_signed(&key_pair)?;
    // The key first, readable by root only; each file whole or not at all.
    write_atomically(&key, key_pair.serialize_pem().as_bytes(), 0o600)?;
    write_atomically(&cert, made.pem().as_bytes(), 0o644)?;
    tracing::warn!(
        certificate = %cert.display(),
        fingerprint = %fingerprint(made.der()),
        "made a self-signed TLS certificate: compare its fingerprint with the one your browser shows"
    );
    Ok((cert, key))
}

fn write_atomically(path: &Path, bytes: &[u8], mode: u32) -> anyhow::Result<()> {
    use std::io::Write;
    let tmp = path.with_extension("tmp");
    let mut file = std::fs::OpenOptions::new()
        .write(true)
        .create(true)
        .truncate(true)
        .mode(mode)
        .open(&tmp)
        .map_err(|e| anyhow::anyhow!("cannot write {}: {e}", tmp.display()))?;
    file.write_all(bytes)?;
    file.sync_all()?;
    std::fs::rename(&tmp, path)
        .map_err(|e| anyhow::anyhow!("cannot write {}: {e}", path.display()))?;
    Ok(())
}

/// Over HTTPS every cookie is `Secure`: a browser never sends it back over plain HTTP
/// (where anyone on the path could read it). Applied to every response of the TLS server.
pub async fn secure_cookies(
    request: axum::extract::Request,
    next: axum::middleware::Next,
) -> axum::response::Response {
    let mut response = next.run(request).await;
    let cookies: Vec<_> = response
        .headers_mut()
        .remove(axum::http::header::SET_COOKIE)
        .into_iter()
        .collect();
    let headers = response.headers_mut();
    for value in cookies {
        let secure = match value.to_str() {
            Ok(text) if !text.to_ascii_lowercase().contains("; secure") => {
                axum::http::HeaderValue::from_str(&format!("{text}; Secure")).unwrap_or(value)
            }
            _ => value,
        };
        headers.append(axum::http::header::SET_COOKIE, secure);
    }
    response
}

/// A connection as the server reads it: TLS over TCP.
pub trait Connection: AsyncRead + AsyncWrite + Unpin + Send {}
impl<T: AsyncRead + AsyncWrite + Unpin + Send> Connection for T {}

/// Connections whose handshake has finished, for `axum::serve`.
pub struct TlsListener {
    ready: mpsc::Receiver<(Box<dyn Connection>, SocketAddr)>,
    local: SocketAddr,
    _accepting: AbortOnDrop,
}

impl TlsListener {
    pub fn new(tcp: TcpListener, acceptor: TlsAcceptor) -> io::Result<Self> {
        let local = tcp.local_addr()?;
        let (tx, ready) = mpsc::channel(64);
        let accepting = tokio::spawn(async move {
            loop {
                let (stream, peer) = match tcp.accept().await {
                    Ok(accepted) => accepted,
                    Err(e) => {
                        // Out of file descriptors and the like: wait, as axum does.
                        tracing::warn!(error = %e, "accept failed");
                        tokio::time::sleep(Duration::from_millis(100)).await;
                        continue;
                    }
                };
                let (acceptor, tx) = (acceptor.clone(), tx.clone());
                tokio::spawn(async move {
                    match tokio::time::timeout(HANDSHAKE_TIMEOUT, acceptor.accept(stream)).await {
                        Ok(Ok(tls)) => {
                            let _ = tx.send((Box::new(tls) as Box<dyn Connection>, peer)).await;
                        }
                        Ok(Err(e)) => tracing::debug!(%peer, error = %e, "TLS handshake failed"),
                        Err(_) => tracing::debug!(%peer, "TLS handshake timed out"),
                    }
                });
            }
        });
        Ok(Self {
            ready,
            local,
            _accepting: AbortOnDrop(accepting),
        })
    }
}

impl axum::serve::Listener for TlsListener {
    type Io = Box<dyn Connection>;
    type Addr = SocketAddr;

    async fn accept(&mut self) -> (Self::Io, Self::Addr) {
        match self.ready.recv().await {
            Some(connection) => connection,
            // The accept task holds the sender for as long as the listener lives.
            None => std::future::pending().await,
        }
    }

    fn local_addr(&self) -> io::Result<Self::Addr> {
        Ok(self.local)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_self_signed_certificate_is_made_once_and_kept() {
        let dir = std::env::temp_dir().join(format!("unitdeck-tls-{}", std::process::id()));
        let _ = std::fs::remove_dir_all(&dir);
        let config = Config {
            tls: Tls::SelfSigned,
            state_dir: dir.clone(),
            ..Config::resolve(Default::default()).unwrap()
        };
        let first = setup(&config).unwrap().unwrap().fingerprint;
        assert_eq!(first.len(), 32 * 3 - 1);
        use std::os::unix::fs::PermissionsExt;
        let mode = std::fs::metadata(dir.join("tls/self-signed.key"))
            .unwrap()
            .permissions()
            .mode();
        assert_eq!(mode & 0o777, 0o600);
        // The next start uses the same certificate (a browser's exception stays valid).
        assert_eq!(setup(&config).unwrap().unwrap().fingerprint, first);
        let _ = std::fs::remove_dir_all(&dir);
    }

    #[test]
    fn missing_or_broken_files_are_explained() {
        let config = Config {
            tls: Tls::Files {
                cert: "/nonexistent/cert.pem".into(),
                key: "/nonexistent/key.pem".into(),
            },
            ..Config::resolve(Default::default()).unwrap()
        };
        let err = setup(&config).err().unwrap().to_string();
        assert!(err.contains("/nonexistent/cert.pem"), "{err}");
    }
}
