//! What every handler can reach.

use std::sync::{Arc, Mutex};

use crate::auth::{LoginLimiter, PasswordVerifier};
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
    pub health: HealthChecks,
    /// Remembers socket holders between port scans (see `ports::PortScanner`).
    pub port_scanner: Arc<Mutex<PortScanner>>,
    /// Messages for the page after a redirect (`web::notice`).
    pub notices: crate::web::Notices,
}
