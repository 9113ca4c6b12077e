//! Unit actions after the guard (`guard.rs`) let them through, on the unit it resolved,
//! waiting for systemd's job.

use tokio::sync::broadcast;

use super::cache::Systemd;
use super::manager::UnitAction;
use super::{ActionOutcome, SystemdError};

impl Systemd {
    /// Reloads systemd's unit files (`systemctl daemon-reload`), after unitdeck changed
    /// some of its own.
    pub async fn daemon_reload(&self) -> Result<(), SystemdError> {
        self.bus()?.reload().await
    }

    /// Waits until the bus is connected, at most `limit`; whether it is.
    pub async fn wait_connected(&self, limit: std::time::Duration) -> bool {
        let deadline = tokio::time::Instant::now() + limit;
        while !self.is_connected() {
            if tokio::time::Instant::now() >= deadline {
                return false;
            }
            tokio::time::sleep(std::time::Duration::from_millis(100)).await;
        }
        true
    }

    /// Refuses what would take a protected unit away or the container down (judged on the
    /// unit systemd resolves `name` to, `guard.rs`), runs the action on that unit, and
    /// answers with the job's result and the unit as systemd reports it afterwards.
    pub async fn run_action(
        &self,
        name: &str,
        action: UnitAction,
        wait: bool,
    ) -> Result<ActionOutcome, SystemdError> {
        // Resolve first: an unknown unit is a 404 whatever the action.
        let unit = self.resolve(name).await?;
        self.guard_action(name, &unit, action).await?;
        // The action goes to the unit that was judged, not to a name that could be
        // pointed elsewhere meanwhile.
        let id = unit.id.as_str();
        // unitdeck cannot wait for a job on its own unit: a restart finishes only
        // after this process has exited, and this process lets its open requests
        // finish before it exits. Answer with the queued job instead.
        let wait = wait && self.own_unit() != Some(id);
        // Its run is a manual one (`transitions`): noted before systemd can start it.
        let starts = matches!(action, UnitAction::Start | UnitAction::Restart);
        if starts {
            self.note_own_start(id);
        }
        let job = self
            .bus()?
            .run_action(id, action, wait, self.job_results())
            .await;
        if starts {
            self.note_own_job(id, job.as_ref().ok().and_then(|j| j.id));
        }
        let job = job?;
        match self.refresh_unit(id).await {
            Ok(_) => {}
            // A unit whose file is gone is unloaded once reset: its last known state.
            Err(SystemdError::NoSuchUnit(_)) if action == UnitAction::ResetFailed => {}
            Err(e) => return Err(e),
        }
        let unit = self
            .summary(id)
            .ok_or_else(|| SystemdError::NoSuchUnit(id.to_string()))?;
        Ok(ActionOutcome { job, unit })
    }

    /// Job results as they finish (`(job object path, result)`); subscribe before queuing a job.
    pub fn job_results(&self) -> broadcast::Receiver<(String, String)> {
        self.inner.jobs.subscribe()
    }
}
