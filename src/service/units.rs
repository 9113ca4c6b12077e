//! The unit operations behind both the JSON API and the HTML pages.

use std::time::Duration;

use super::logs::parse_time;
use crate::auth::Principal;
use crate::db::AuditEntry;
use crate::error::{AppError, AppResult};
use crate::service::Services;
use crate::systemd::journal::{self, LogEntry, LogFilter, Start};
use crate::systemd::names::{UNIT_TYPES, is_valid_unit_name};
use crate::systemd::{ActionOutcome, SystemdError, UnitAction, UnitDetail, UnitEvent, UnitSummary};
use crate::systemd::{Sample, UnitFilter};

/// An action named in a URL; an unknown one is a 404 (the route names no resource).
pub fn unit_action_named(action: &str) -> AppResult<UnitAction> {
    UnitAction::parse(action)
        .ok_or_else(|| AppError::NotFound(format!("unknown action {action:?}")))
}

/// A unit name from a URL, refused with 400 before it can reach D-Bus.
pub fn checked_unit_name(name: &str) -> AppResult<&str> {
    if is_valid_unit_name(name) {
        Ok(name)
    } else {
        Err(AppError::BadRequest(format!(
            "{name:?} is not a valid unit name (expected e.g. foo.service)"
        )))
    }
}

/// Builds a list filter from query parameters; `type` defaults to service, `all` means every type.
pub fn unit_filter(
    unit_type: Option<&str>,
    state: Option<&str>,
    text: Option<&str>,
) -> AppResult<UnitFilter> {
    let unit_type = match unit_type.unwrap_or("service") {
        "all" => None,
        t if UNIT_TYPES.contains(&t) => Some(t.to_string()),
        other => {
            return Err(AppError::BadRequest(format!(
                "unknown unit type {other:?}: use all or one of {}",
                UNIT_TYPES.join(", ")
            )));
        }
    };
    let non_empty = |s: Option<&str>| s.map(str::trim).filter(|s| !s.is_empty()).map(String::from);
    Ok(UnitFilter {
        unit_type,
        state: non_empty(state),
        text: non_empty(text),
    })
}

impl Services {
    pub fn list_units(&self, filter: &UnitFilter) -> AppResult<Vec<UnitSummary>> {
        self.require_bus_seen()?;
        Ok(self.systemd.list(filter))
    }

    /// Every unit in the cache (the events stream's snapshot: empty while systemd has
    /// not answered yet).
    pub fn all_units(&self) -> Vec<UnitSummary> {
        self.systemd.list(&UnitFilter::default())
    }

    /// Unit changes as they happen (and `Resync` when the cache was rebuilt); also keeps
    /// memory and CPU figures fresh while someone watches.
    pub fn subscribe_units(&self) -> tokio::sync::broadcast::Receiver<UnitEvent> {
        self.systemd.subscribe()
    }

    /// One unit's summary: from the cache, or loaded from systemd (a unit not loaded).
    /// Someone is looking: its memory and CPU figures are kept fresh for a while.
    pub async fn unit_summary(&self, name: &str) -> AppResult<UnitSummary> {
        let name = checked_unit_name(name)?;
        let summary = self.systemd.find(name).await?;
        self.systemd.note_interest();
        Ok(summary)
    }

    /// The unit's recent memory and CPU readings, oldest first (for the sparklines).
    pub fn unit_samples(&self, name: &str) -> Vec<Sample> {
        self.systemd.samples(name)
    }

    /// An empty cache because the bus never answered is an outage, not "no units".
    pub(super) fn require_bus_seen(&self) -> AppResult<()> {
        if !self.systemd.is_connected() && self.systemd.unit_count() == 0 {
            return Err(SystemdError::Disconnected(
                self.systemd
                    .last_error()
                    .unwrap_or_else(|| "not connected yet".into()),
            )
            .into());
        }
        Ok(())
    }

    pub async fn unit_detail(&self, name: &str) -> AppResult<UnitDetail> {
        let name = checked_unit_name(name)?;
        let mut detail = self.systemd.detail(name).await?;
        detail.listen_ports = self.listen_ports_of(name).await;
        Ok(detail)
    }

    /// TCP ports the unit's processes listen on (from /proc; empty when unreadable).
    async fn listen_ports_of(&self, name: &str) -> Vec<u16> {
        let mut ports: Vec<u16> = self
            .listeners()
            .await
            .unwrap_or_default()
            .into_iter()
            .filter(|l| l.unit.as_deref() == Some(name))
            .map(|l| l.port)
            .collect();
        ports.dedup();
        ports
    }

    /// The last `lines` journal entries of the unit's latest run (its current
    /// InvocationID): after a failed start, the lines that say why.
    pub async fn last_run_log(&self, name: &str, lines: usize) -> AppResult<Vec<LogEntry>> {
        let name = checked_unit_name(name)?;
        let Some(invocation) = self.systemd.detail(name).await?.invocation_id else {
            return Ok(Vec::new());
        };
        let filter = LogFilter {
            units: vec![name.to_string()],
            invocation: Some(invocation),
            ..LogFilter::default()
        };
        // PID 1's own messages ("Failed with result ...") and the service's output
        // reach journald through different sockets: right after the job fails the
        // output may still be in journald's queue. Have it written first; should that
        // fail, give it a moment when none is there yet (up to 2 s).
        if let Err(e) = journal::sync().await {
            tracing::warn!(error = %e, "journalctl --sync failed");
        }
        let own_output =
            |entries: &[LogEntry]| entries.iter().any(|e| e.pid.is_some_and(|p| p != 1));
        let mut entries = Vec::new();
        for settle_ms in [0, 100, 200, 300, 400, 500, 500] {
            tokio::time::sleep(Duration::from_millis(settle_ms)).await;
            entries = journal::read(&filter, lines, Start::Newest)
                .await
                .map_err(AppError::internal)?;
            if own_output(&entries) {
                break;
            }
            // A line written just before a short-lived process exits can reach the journal
            // without the invocation ID (journald reads it from the process, gone by
            // then): take the unit's entries since the run's first one instead.
            if let Some(start) = entries.first().and_then(|e| parse_time(&e.time, 0)) {
                let since = LogFilter {
                    invocation: None,
                    since: Some(start),
                    ..filter.clone()
                };
                let by_time = journal::read(&since, lines, Start::Newest)
                    .await
                    .map_err(AppError::internal)?;
                if own_output(&by_time) {
                    entries = by_time;
                    break;
                }
            }
        }
        Ok(entries)
    }

    /// Runs a unit action and audits it, refused or not, before answering.
    pub async fn unit_action(
        &self,
        principal: &Principal,
        name: &str,
        action: UnitAction,
        wait: bool,
    ) -> AppResult<ActionOutcome> {
        let name = checked_unit_name(name)?;
        Ok(self.audited_action(principal, name, action, wait).await??)
    }

    /// Runs a unit action with its audit record written first, as `pending`: unitdeck
    /// killed meanwhile leaves it (`interrupted` after the restart), never a change nobody
    /// recorded. Err only when that record cannot be written, and then nothing ran. Runs
    /// to the end in a task of its own: a client that goes away must not leave the record
    /// `pending` while the job finishes in systemd.
    pub async fn audited_action(
        &self,
        principal: &Principal,
        name: &str,
        action: UnitAction,
        wait: bool,
    ) -> AppResult<Result<ActionOutcome, SystemdError>> {
        let name = name.to_string();
        self.to_completion(principal, async move |state, principal| {
            let record = state
                .db
                .audit(AuditEntry {
                    actor: &principal.actor,
                    action: &format!("unit.{}", action.as_str()),
                    target: Some(&name),
                    result: "pending",
                    detail: None,
                })
                .await?;
            let outcome = state.systemd.run_action(&name, action, wait).await;
            let (result, detail) = match &outcome {
                Ok(o) => (
                    o.job.result.map_or("queued", |r| r.as_str()).to_string(),
                    o.job.id.map(|id| format!("job {id}")),
                ),
                Err(SystemdError::Refused(msg)) => ("refused".to_string(), Some(msg.clone())),
                Err(SystemdError::NoSuchUnit(_)) => ("not-found".to_string(), None),
                Err(e) => ("error".to_string(), Some(e.to_string())),
            };
            if let Err(e) = state
                .db
                .set_audit_result(record, &result, detail.as_deref())
                .await
            {
                // The record stays `pending`; the action's own answer still counts.
                tracing::error!(error = %e, record, "cannot record a unit action's outcome");
            }
            Ok(outcome)
        })
        .await
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn filters_default_to_services() {
        let f = unit_filter(None, None, None).unwrap();
        assert_eq!(f.unit_type.as_deref(), Some("service"));
        assert!(
            unit_filter(Some("all"), None, None)
                .unwrap()
                .unit_type
                .is_none()
        );
        assert!(unit_filter(Some("bogus"), None, None).is_err());
        assert!(
            unit_filter(None, Some(" "), Some(""))
                .unwrap()
                .state
                .is_none()
        );
    }

    #[test]
    fn invalid_names_are_bad_requests() {
        assert!(checked_unit_name("dbus.service").is_ok());
        assert!(matches!(
            checked_unit_name("../x"),
            Err(AppError::BadRequest(_))
        ));
    }
}
