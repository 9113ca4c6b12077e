//! The domain: everything unitdeck does, behind one struct both the JSON API and the HTML
//! pages call, so the two can never disagree. It holds the database, the systemd handle
//! (the unit cache and the one guarded path to actions), the journal followers, the login
//! and the health checks; its fields are private to this module, so no handler reaches the
//! database or the cache around it. Nothing here knows HTTP: errors are `AppError`s.
//!
//! - `units`: list, detail, actions (audited), the last run's log;
//! - `access`: login, sessions, API tokens, the audit log;
//! - `logs`: log filters, reads and live follows;
//! - `pins`: the units the dashboard shows first;
//! - `ports`: which process and unit holds each port;
//! - `health`: HTTP/TCP probes of the units unitdeck created, restarts after failures;
//! - `unit_files`: creating, changing, rolling back and deleting unit files, and putting
//!   them back after a crash or a recreated container;
//! - `runs`: a unit's runs (journal, systemd and what unitdeck saw start them), and the
//!   jobs (timers) with their last runs;
//! - `notifications`: channels, the events they get (failures, restart loops,
//!   unhealthy units, failed jobs, recoveries) and their delivery.
//! - `overrides`: every unit's files as systemd reads them, and overrides (one drop-in
//!   unitdeck owns) of the units it did not create, with revisions, put back the same way.

mod access;
pub mod health;
pub mod logs;
pub mod notifications;
pub mod overrides;
mod pins;
mod ports;
pub mod runs;
pub mod unit_files;
mod units;

use std::future::Future;
use std::sync::{Arc, Mutex};
use std::time::Duration;

/// What an audit record says (`Services::audit`).
pub use crate::db::AuditEntry;
pub use access::{AuditRecord, NewToken, SESSION_TTL, Token, issue_token};
pub use logs::{LogQuery, LogSelection, UnitsParam};
pub use units::{checked_unit_name, unit_action_named, unit_filter};

use crate::auth::{LoginLimiter, PasswordVerifier, Principal};
use crate::config::Config;
use crate::db::Db;
use crate::error::{AppError, AppResult};
use crate::notify::Poster;
use crate::ports::PortScanner;
use crate::systemd::Systemd;
use crate::systemd::journal::JournalHub;
use crate::systemd::journal::scan::Scanner;

/// unitdeck's domain, shared by every request (cheap to clone).
#[derive(Clone)]
pub struct Services {
    config: Arc<Config>,
    db: Db,
    systemd: Systemd,
    journal: Arc<JournalHub>,
    /// Histogram and facet scans, a few at a time.
    scanner: Scanner,
    password: PasswordVerifier,
    login_limiter: Arc<LoginLimiter>,
    health: health::HealthChecks,
    /// Remembers socket holders between port scans (see `ports::PortScanner`).
    port_scanner: Arc<Mutex<PortScanner>>,
    notifier: Arc<notifications::Notifier>,
    pins: pins::Pins,
}

impl Services {
    /// Opens the database, resolves the password, starts the systemd watcher and puts the
    /// unit directory in agreement with the database (files a recreated container lost
    /// are written back, changes a crash cut are settled).
    pub async fn start(config: Config) -> anyhow::Result<Self> {
        std::fs::create_dir_all(&config.state_dir).map_err(|e| {
            anyhow::anyhow!(
                "cannot create the state directory {}: {e}",
                config.state_dir.display()
            )
        })?;
        let db = Db::open(&config.database_path()).await?;
        match db.close_interrupted_actions().await {
            Ok(0) => {}
            Ok(n) => tracing::warn!(actions = n, "unit actions interrupted by the last stop"),
            Err(e) => tracing::error!(error = %e, "cannot mark interrupted unit actions"),
        }
        let password =
            PasswordVerifier::from_source(&config.password, &db, &config.initial_password_path())
                .await?;
        // The comparison with the password sessions were opened under (an argon2 check
        // for a plain-text one) runs now, in the background: the first login need not wait.
        let settling = password.clone();
        tokio::spawn(async move {
            if let Err(e) = settling.ready().await {
                tracing::error!(error = %e, "cannot settle the login password");
            }
        });
        let pins = pins::Pins::load(&db).await?;
        let systemd = Systemd::start(config.bus_address.clone(), own_unit());
        systemd.set_managed(unit_files::managed_names(&db).await?);
        let services = Self {
            notifier: Arc::new(notifications::Notifier::new(Poster::new(config.listen))),
            config: Arc::new(config),
            db,
            systemd,
            journal: Arc::new(JournalHub::new()),
            scanner: Scanner::default(),
            password,
            login_limiter: Arc::new(LoginLimiter::default()),
            health: Default::default(),
            port_scanner: Arc::new(Mutex::new(PortScanner::new("/proc"))),
            pins,
        };
        if let Err(e) = unit_files::reconcile_on_start(&services).await {
            tracing::error!(error = %e, "cannot check the unit files unitdeck created");
        }
        if let Err(e) = overrides::reconcile_on_start(&services).await {
            tracing::error!(error = %e, "cannot check the drop-ins unitdeck wrote");
        }
        Ok(services)
    }

    /// The domain over an in-memory database and a systemd stand-in (`Systemd::stand_in`),
    /// with the login password `password`, served under `base_path`: for tests of the
    /// HTTP layer, without root, a bus or a container.
    #[cfg(test)]
    pub async fn stand_in(password: &str, units: &[(&str, &str, &str)], base_path: &str) -> Self {
        let config = Config {
            base_path: base_path.into(),
            password: crate::config::PasswordSource::Plain(password.to_string()),
            state_dir: std::env::temp_dir().join("unitdeck-stand-in"),
            unit_dir: std::env::temp_dir().join("unitdeck-stand-in/units"),
            ..Config::resolve(Default::default()).expect("the default configuration")
        };
        let db = Db::in_memory().await.expect("an in-memory database");
        let password =
            PasswordVerifier::from_source(&config.password, &db, &config.initial_password_path())
                .await
                .expect("a password");
        Self {
            notifier: Arc::new(notifications::Notifier::new(Poster::new(config.listen))),
            config: Arc::new(config),
            db,
            systemd: Systemd::stand_in(units),
            journal: Arc::new(JournalHub::new()),
            scanner: Scanner::default(),
            password,
            login_limiter: Arc::new(LoginLimiter::default()),
            health: Default::default(),
            port_scanner: Arc::new(Mutex::new(PortScanner::new("/nonexistent"))),
            pins: Default::default(),
        }
    }

    /// The background work of a serving unitdeck: health probes, notifications, and a
    /// first port scan (~30 ms at 1,000 listeners) so the first page that shows ports gets
    /// a cheap one.
    pub fn spawn_background(&self) {
        health::spawn(self.clone());
        self.spawn_notifications();
        let warm = self.clone();
        tokio::spawn(async move {
            let _ = warm.listeners().await;
        });
    }

    pub fn config(&self) -> &Config {
        &self.config
    }

    /// Waits until systemd's units are in the cache (at most `limit`; then what is there
    /// is served, and a bus that never answered is reported by the requests themselves).
    pub async fn units_ready(&self, limit: Duration) {
        self.systemd.filled(limit).await;
    }

    /// systemd's SystemState (`/healthz`).
    pub async fn system_state(&self) -> AppResult<String> {
        Ok(self.systemd.system_state().await?)
    }

    /// Marks which units unitdeck created (from the database), for the lists' `managed`:
    /// at start and after every change.
    async fn refresh_managed(&self) {
        match unit_files::managed_names(&self.db).await {
            Ok(names) => self.systemd.set_managed(names),
            Err(e) => tracing::error!(error = %e, "cannot read the managed unit names"),
        }
    }

    /// Runs a change (a unit-file change, a unit action and its audit record) in a task
    /// of its own, so that it finishes (or is undone) even when the request that asked for
    /// it goes away: a client that disconnects drops the handler's future, and a change
    /// dropped between installing its files and committing its revision would leave files
    /// that no revision describes (tests/faults.rs measured it).
    async fn to_completion<T, F>(
        &self,
        principal: &Principal,
        change: impl FnOnce(Services, Principal) -> F,
    ) -> AppResult<T>
    where
        T: Send + 'static,
        F: Future<Output = AppResult<T>> + Send + 'static,
    {
        tokio::spawn(change(self.clone(), principal.clone()))
            .await
            .map_err(AppError::internal)?
    }
}

/// The unit unitdeck itself runs in, from its cgroup (None when started by hand).
fn own_unit() -> Option<String> {
    let cgroup = std::fs::read_to_string("/proc/self/cgroup").ok()?;
    crate::ports::unit_from_cgroup(&cgroup).filter(|u| u.ends_with(".service"))
}
