//! Ports: which process and unit listens on each port, which unit should.

use super::Services;
use crate::error::{AppError, AppResult};
use crate::ports::{Listener, PortInfo, port_map};
use crate::unitfile::spec::UnitSpec;

impl Services {
    /// The specs of the units unitdeck created (for ports and health checks).
    pub async fn managed_specs(&self) -> AppResult<Vec<UnitSpec>> {
        let mut specs = Vec::new();
        for file in self.list_unit_files().await? {
            specs.push(self.unit_file(&file.name).await?.spec);
        }
        Ok(specs)
    }

    pub async fn port_map(&self, host: &str) -> AppResult<Vec<PortInfo>> {
        let expected: Vec<(u16, String)> = self
            .managed_specs()
            .await?
            .iter()
            .filter_map(|s| Some((s.port_number()?, s.unit_name())))
            .collect();
        let listeners = self.listeners().await?;
        Ok(port_map(
            &listeners,
            &self.config.watched_ports,
            &expected,
            host,
        ))
    }

    /// Every TCP listener of the machine, from the shared [`PortScanner`].
    pub async fn listeners(&self) -> AppResult<Vec<Listener>> {
        let scanner = self.port_scanner.clone();
        tokio::task::spawn_blocking(move || {
            // A panic mid-scan leaves at worst a stale holder, which the next scan re-checks.
            let mut scanner = scanner.lock().unwrap_or_else(|e| e.into_inner());
            scanner.scan()
        })
        .await
        .map_err(AppError::internal)?
        .map_err(|e| AppError::internal(format!("reading /proc/net/tcp: {e}")))
    }
}
