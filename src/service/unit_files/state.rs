//! The unit around a change: stopped and disabled before its files change, enabled and
//! (re)started after as its spec says, put back when the change fails; every action
//! audited like a unit action.

use crate::auth::Principal;
use crate::service::Services;
use crate::systemd::{JobInfo, UnitAction, UnitSummary, is_at_rest};
use crate::unitfile::spec::UnitSpec;

/// What a change stopped and disabled before touching the files, to put back if it fails.
#[derive(Default)]
pub(super) struct Paused {
    pub(super) stopped: Vec<String>,
    pub(super) disabled: Vec<String>,
}

pub(in crate::service) fn is_running(summary: &UnitSummary) -> bool {
    matches!(
        summary.active_state.as_deref(),
        Some("active" | "activating" | "reloading")
    )
}

impl Services {
    /// Runs a unit action for a unit-file change, audited like `unit_action`.
    pub(super) async fn act(
        &self,
        principal: &Principal,
        name: &str,
        action: UnitAction,
    ) -> Result<JobInfo, String> {
        let failed = |e: &dyn std::fmt::Display| format!("{} {name}: {e}", action.as_str());
        match self.audited_action(principal, name, action, true).await {
            Ok(outcome) => outcome.map(|o| o.job).map_err(|e| failed(&e)),
            Err(e) => Err(failed(&e)),
        }
    }

    pub(super) async fn stop(&self, principal: &Principal, name: &str, paused: &mut Paused) {
        // Decide on systemd's answer, not the cache: a stop skipped on a stale "inactive"
        // would leave the old process running once its unit file is gone.
        let _ = self.systemd.refresh_unit(name).await;
        if let Ok(summary) = self.systemd.find(name).await
            && is_running(&summary)
        {
            match self.act(principal, name, UnitAction::Stop).await {
                Ok(_) => paused.stopped.push(name.to_string()),
                Err(e) => {
                    tracing::warn!(unit = name, error = %e, "stopping before a unit-file change failed");
                }
            }
        }
    }

    pub(super) async fn stop_and_disable(
        &self,
        principal: &Principal,
        name: &str,
        paused: &mut Paused,
    ) {
        self.stop(principal, name, paused).await;
        self.disable(principal, name, paused).await;
    }

    pub(super) async fn disable(&self, principal: &Principal, name: &str, paused: &mut Paused) {
        if let Ok(summary) = self.systemd.find(name).await
            && summary.unit_file_state.as_deref() == Some("enabled")
        {
            match self.act(principal, name, UnitAction::Disable).await {
                Ok(_) => paused.disabled.push(name.to_string()),
                Err(e) => {
                    tracing::warn!(unit = name, error = %e, "disabling before a unit-file change failed");
                }
            }
        }
    }

    /// Puts back what a change that then failed stopped and disabled: enabled again, and
    /// `primary` started again if it was stopped and is at rest (a job's run that was cut
    /// is not re-run; a start would cancel a stop job still running).
    pub(super) async fn restore(&self, principal: &Principal, paused: Paused, primary: &str) {
        for name in &paused.disabled {
            if let Err(e) = self.act(principal, name, UnitAction::Enable).await {
                tracing::warn!(unit = name, error = %e, "enabling again after a failed change failed");
            }
        }
        if !paused.stopped.iter().any(|n| n == primary) {
            return;
        }
        let _ = self.systemd.refresh_unit(primary).await;
        let at_rest = self
            .systemd
            .summary(primary)
            .is_some_and(|s| is_at_rest(s.active_state.as_deref()));
        if at_rest && let Err(e) = self.act(principal, primary, UnitAction::Start).await {
            tracing::warn!(unit = primary, error = %e, "starting again after a failed change failed");
        }
    }

    /// Enable/disable and start/restart the primary unit as the spec asks. `was_running` is
    /// None for a new unit. Problems are returned as warnings: the change itself is kept.
    pub(super) async fn apply_state(
        &self,
        principal: &Principal,
        spec: &UnitSpec,
        was_running: Option<bool>,
    ) -> (Option<JobInfo>, Vec<String>) {
        let primary = spec.primary_unit();
        let mut warnings = Vec::new();
        let enabled = self
            .systemd
            .find(&primary)
            .await
            .ok()
            .and_then(|s| s.unit_file_state)
            .is_some_and(|s| s == "enabled");
        let toggle = match (spec.enable, enabled) {
            (true, false) => Some(UnitAction::Enable),
            (false, true) if was_running.is_some() => Some(UnitAction::Disable),
            _ => None,
        };
        if let Some(action) = toggle
            && let Err(e) = self.act(principal, &primary, action).await
        {
            warnings.push(e);
        }
        let action = match was_running {
            Some(true) => Some(UnitAction::Restart),
            _ if spec.start => Some(UnitAction::Start),
            _ => None,
        };
        let mut job = None;
        if let Some(action) = action {
            match self.act(principal, &primary, action).await {
                Ok(j) => {
                    if j.result.is_some_and(|r| r.as_str() != "done") {
                        warnings.push(format!(
                            "{} {primary}: {}; see its log",
                            action.as_str(),
                            j.result.map_or("queued", |r| r.as_str())
                        ));
                    }
                    job = Some(j);
                }
                Err(e) => warnings.push(e),
            }
        }
        (job, warnings)
    }
}
