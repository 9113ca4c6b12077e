//! What every handler can reach.

use std::sync::{Arc, Mutex};

use crate::auth::{HostAllowlist, LoginLimiter, PasswordVerifier};
use crate::config::Config;
use crate::db::Db;
use crate::health::HealthChecks;
use crate::ports::PortScanner;
use crate::systemd::Systemd;
use crate::systemd::journal::JournalHub;

#[derive(Clone)]
pub struct AppState {
    pub config: Arc<Config>,
    pub db: Db,
    pub systemd: Systemd,
    pub journal: Arc<JournalHub>,
    pub password: PasswordVerifier,
    pub login_limiter: Arc<LoginLimiter>,
    /// Which `Host` names requests may use (DNS rebinding).
    pub hosts: Arc<HostAllowlist>,
    /// SHA-256 of the TLS certificate, when unitdeck serves HTTPS.
    pub tls_fingerprint: Option<Arc<str>>,
    pub health: HealthChecks,
    /// Remembers socket holders between port scans (see `ports::PortScanner`).
    pub port_scanner: Arc<Mutex<PortScanner>>,
    /// Messages for the page after a redirect (`web::notice`).
    pub notices: crate::web::Notices,
}
