//! Changes: create, update, rollback, delete, each written, reloaded, committed and
//! audited in the order the module documentation gives, and undone when a step fails.

use std::collections::BTreeMap;

use super::checks::Prepared;
use super::state::{Paused, is_running};
use super::{Applied, CHANGES, Current};
use crate::auth::Principal;
use crate::db::{AuditEntry, NewRevision};
use crate::error::{AppError, AppResult, FieldError};
use crate::service::Services;
use crate::systemd::{JobInfo, UnitAction, is_at_rest};
use crate::unitfile::base_name;
use crate::unitfile::install::{self, Installed};
use crate::unitfile::spec::UnitSpec;
use crate::unitfile::validate::{is_well_formed_name, validate};

impl Services {
    /// `POST /api/v1/unit-files`.
    pub async fn create_unit_file(
        &self,
        principal: &Principal,
        spec: UnitSpec,
    ) -> AppResult<Applied> {
        self.to_completion(principal, async move |state, principal| {
            state.create_now(&principal, spec).await
        })
        .await
    }

    /// `PUT /api/v1/unit-files/{name}`: a new revision; restarts the unit if it was running.
    pub async fn update_unit_file(
        &self,
        principal: &Principal,
        raw: &str,
        spec: UnitSpec,
    ) -> AppResult<Applied> {
        let raw = raw.to_string();
        self.to_completion(principal, async move |state, principal| {
            let _guard = CHANGES.lock().await;
            state
                .change(&principal, "unitfile.update", &raw, spec, String::new())
                .await
        })
        .await
    }

    /// `POST /api/v1/unit-files/{name}/rollback`: a new revision with revision N's spec.
    pub async fn rollback_unit_file(
        &self,
        principal: &Principal,
        raw: &str,
        revision: i64,
    ) -> AppResult<Applied> {
        let raw = raw.to_string();
        self.to_completion(principal, async move |state, principal| {
            state.rollback_now(&principal, &raw, revision).await
        })
        .await
    }

    /// `DELETE /api/v1/unit-files/{name}`: stop, disable, remove the files, reload. The
    /// history goes with it; the audit log keeps who did what, and the delete's audit row
    /// holds the last spec.
    pub async fn delete_unit_file(&self, principal: &Principal, raw: &str) -> AppResult<()> {
        let raw = raw.to_string();
        self.to_completion(principal, async move |state, principal| {
            state.delete_now(&principal, &raw).await
        })
        .await
    }

    async fn create_now(&self, principal: &Principal, spec: UnitSpec) -> AppResult<Applied> {
        const ACTION: &str = "unitfile.create";
        let _guard = CHANGES.lock().await;
        let target = spec.unit_name();
        let checked = async {
            // A unit unitdeck did not create is a conflict (409) whatever else the spec
            // says (dbus, unitdeck's own unit); the name becomes a path, so only a
            // well-formed one is looked up.
            if is_well_formed_name(&spec.name) {
                for name in [spec.unit_name(), format!("{}.timer", spec.name)] {
                    if let Some(reason) = self.foreign_unit(&name).await? {
                        return Err(AppError::Conflict(reason));
                    }
                }
            }
            validate(&spec).map_err(AppError::Validation)?;
            if self.db.unit_file(&target).await?.is_some() {
                return Err(AppError::Conflict(format!(
                    "{target} already exists; change it with PUT /api/v1/unit-files/{}",
                    spec.name
                )));
            }
            self.prepare_for_change(&spec).await
        }
        .await;
        let prepared = match checked {
            Ok(p) => p,
            Err(e) => return Err(self.refuse(principal, ACTION, &target, e).await),
        };
        let revision = self
            .install_and_commit(principal, ACTION, &spec, &prepared, None, "")
            .await?;
        let (job, warnings) = self.apply_state(principal, &spec, None).await;
        Ok(self.applied(&spec, revision, prepared, job, warnings).await)
    }

    async fn rollback_now(
        &self,
        principal: &Principal,
        raw: &str,
        revision: i64,
    ) -> AppResult<Applied> {
        const ACTION: &str = "unitfile.rollback";
        let _guard = CHANGES.lock().await;
        let target = base_name(raw).map_or_else(|_| raw.to_string(), |b| format!("{b}.service"));
        let spec = async {
            let current = self.current_for_change(raw).await?;
            let stored = self
                .db
                .unit_file_revision(&current.row.name, revision)
                .await?
                .ok_or_else(|| {
                    AppError::Validation(vec![FieldError::new(
                        "revision",
                        format!(
                            "{} has no revision {revision} (revisions 1 to {})",
                            current.row.name, current.row.revision
                        ),
                    )])
                })?;
            serde_json::from_str::<UnitSpec>(&stored.spec).map_err(AppError::internal)
        }
        .await;
        let spec = match spec {
            Ok(s) => s,
            Err(e) => return Err(self.refuse(principal, ACTION, &target, e).await),
        };
        self.change(
            principal,
            ACTION,
            raw,
            spec,
            format!(" (rollback to revision {revision})"),
        )
        .await
    }

    /// An update or rollback, with the change lock held.
    async fn change(
        &self,
        principal: &Principal,
        action: &str,
        raw: &str,
        spec: UnitSpec,
        note: String,
    ) -> AppResult<Applied> {
        let target = base_name(raw).map_or_else(|_| raw.to_string(), |b| format!("{b}.service"));
        let checked = async {
            let current = self.current_for_change(raw).await?;
            let base = base_name(raw)?;
            if spec.name != base {
                return Err(AppError::Validation(vec![FieldError::new(
                    "name",
                    format!("must be {base:?}, the unit in the URL; renaming is not supported"),
                )]));
            }
            validate(&spec).map_err(AppError::Validation)?;
            // A file this spec adds (a job's timer) must not belong to someone else.
            for name in spec.file_names() {
                if !current.files.contains_key(&name)
                    && let Some(reason) = self.foreign_unit(&name).await?
                {
                    return Err(AppError::Conflict(reason));
                }
            }
            let prepared = self.prepare_for_change(&spec).await?;
            Ok((current, prepared))
        }
        .await;
        let (current, prepared) = match checked {
            Ok(c) => c,
            Err(e) => return Err(self.refuse(principal, action, &target, e).await),
        };
        let old_primary = current.spec.primary_unit();
        // Ask systemd, not the cache: a resync after the last reload may still be running.
        let was_running = match self.systemd.refresh_unit(&old_primary).await {
            Ok(_) => self
                .systemd
                .summary(&old_primary)
                .is_some_and(|s| is_running(&s)),
            Err(_) => false,
        };
        let mut paused = Paused::default();
        if old_primary != spec.primary_unit() {
            // The kind changed: the old primary unit goes away or changes role.
            self.stop_and_disable(principal, &old_primary, &mut paused)
                .await;
        }
        let committed = self
            .install_and_commit(
                principal,
                action,
                &spec,
                &prepared,
                Some((
                    current.row.revision,
                    current.files.keys().cloned().collect(),
                )),
                &note,
            )
            .await;
        let revision = match committed {
            Ok(revision) => revision,
            Err(e) => {
                self.restore(principal, paused, &old_primary).await;
                return Err(e);
            }
        };
        let (job, warnings) = self.apply_state(principal, &spec, Some(was_running)).await;
        Ok(self.applied(&spec, revision, prepared, job, warnings).await)
    }

    async fn delete_now(&self, principal: &Principal, raw: &str) -> AppResult<()> {
        const ACTION: &str = "unitfile.delete";
        let _guard = CHANGES.lock().await;
        let target = base_name(raw).map_or_else(|_| raw.to_string(), |b| format!("{b}.service"));
        let current = match self.current_for_change(raw).await {
            Ok(c) => c,
            Err(e) => return Err(self.refuse(principal, ACTION, &target, e).await),
        };
        let primary = current.spec.primary_unit();
        let service = current.spec.unit_name();
        let mut paused = Paused::default();
        self.stop(principal, &primary, &mut paused).await;
        if primary != service {
            self.stop(principal, &service, &mut paused).await;
        }
        // Files gone under a process that did not stop would leave it running unmanaged.
        let _ = self.systemd.refresh_unit(&service).await;
        if let Ok(summary) = self.systemd.find(&service).await
            && let Some(state) = summary.active_state.as_deref()
            && !is_at_rest(Some(state))
        {
            let e = AppError::Conflict(format!(
                "{service} did not stop (it is {state}); nothing was deleted"
            ));
            // A job's schedule goes on as before; a service still stopping is left to it.
            self.restore(principal, paused, &primary).await;
            return Err(self.refuse(principal, ACTION, &target, e).await);
        }
        self.disable(principal, &primary, &mut paused).await;
        let base = base_name(&current.row.name)?;
        let names = current.files.keys().cloned().collect();
        let removed = self
            .with_intent(
                principal,
                ACTION,
                &base,
                names,
                self.remove_files(principal, ACTION, &current),
            )
            .await;
        if removed.is_err() {
            // The files are back; so are the unit's state and a job's schedule.
            self.restore(principal, paused, &primary).await;
        }
        removed
    }

    /// A delete's second half: the files go, systemd reloads, the row goes with its audit
    /// record in one transaction; the files are put back if any step fails.
    async fn remove_files(
        &self,
        principal: &Principal,
        action: &str,
        current: &Current,
    ) -> AppResult<()> {
        // Without environment values: every reader of the audit log sees it.
        let spec_json =
            serde_json::to_string(&current.spec.clone().redacted()).map_err(AppError::internal)?;
        let detail = format!(
            "revision {} removed; last spec: {spec_json}",
            current.row.revision
        );
        let names: Vec<String> = current.files.keys().cloned().collect();
        let installed = self
            .write_files(principal, action, &current.row.name, BTreeMap::new(), names)
            .await?;
        if let Err(e) = self.reload().await {
            return Err(self
                .undo(principal, action, &current.row.name, installed, e)
                .await);
        }
        let deleted = self
            .db
            .delete_unit_file(
                &current.row.name,
                AuditEntry {
                    actor: &principal.actor,
                    action,
                    target: Some(&current.row.name),
                    result: "ok",
                    detail: Some(&detail),
                },
            )
            .await;
        let err = match deleted {
            Ok(true) => {
                drop(installed);
                self.refresh_managed().await;
                // Forget a failed state so the unit disappears from the lists.
                for name in current.files.keys() {
                    let _ = self.act(principal, name, UnitAction::ResetFailed).await;
                }
                return Ok(());
            }
            Ok(false) => AppError::Conflict("the unit file was deleted meanwhile".into()),
            Err(e) => e.into(),
        };
        Err(self
            .undo(principal, action, &current.row.name, installed, err)
            .await)
    }

    pub(in crate::service) async fn reload(&self) -> AppResult<()> {
        Ok(self.systemd.daemon_reload().await?)
    }

    /// Writes and removes files in the unit directory (atomically, see `install_files`).
    async fn write_files(
        &self,
        principal: &Principal,
        action: &str,
        target: &str,
        write: BTreeMap<String, String>,
        remove: Vec<String>,
    ) -> AppResult<Installed> {
        let dir = self.unit_dir();
        let shown = dir.display().to_string();
        let written =
            tokio::task::spawn_blocking(move || install::install_files(&dir, &write, &remove))
                .await
                .map_err(AppError::internal)?;
        match written {
            Ok(installed) => Ok(installed),
            Err(e) => {
                let err = AppError::Internal(format!("cannot write unit files in {shown}: {e}"));
                Err(self.refuse(principal, action, target, err).await)
            }
        }
    }

    /// Puts the files back after a failure, reloads, audits the failure; returns `err`.
    pub(in crate::service) async fn undo(
        &self,
        principal: &Principal,
        action: &str,
        target: &str,
        installed: Installed,
        err: AppError,
    ) -> AppError {
        match tokio::task::spawn_blocking(move || installed.rollback()).await {
            Ok(Ok(())) => {}
            Ok(Err(e)) => tracing::error!(error = %e, "could not put unit files back"),
            Err(e) => tracing::error!(error = %e, "could not put unit files back"),
        }
        if let Err(e) = self.reload().await {
            tracing::error!(error = %e, "reload after putting unit files back failed");
        }
        self.refuse(principal, action, target, err).await
    }

    /// Files → reload → revision + audit in one transaction; undone on failure.
    async fn install_and_commit(
        &self,
        principal: &Principal,
        action: &str,
        spec: &UnitSpec,
        prepared: &Prepared,
        previous: Option<(i64, Vec<String>)>,
        note: &str,
    ) -> AppResult<i64> {
        let mut names: Vec<String> = prepared.files.keys().cloned().collect();
        if let Some((_, old)) = &previous {
            names.extend(
                old.iter()
                    .filter(|n| !prepared.files.contains_key(*n))
                    .cloned(),
            );
        }
        let change =
            self.install_files_and_commit(principal, action, spec, prepared, previous, note);
        self.with_intent(principal, action, &spec.name, names, change)
            .await
    }

    /// Runs a change of the files `names` with its intent recorded in the unit directory
    /// first, so that a crash before its commit is settled at the next start
    /// ([`super::restore::reconcile_on_start`]).
    async fn with_intent<T>(
        &self,
        principal: &Principal,
        action: &str,
        base: &str,
        names: Vec<String>,
        change: impl std::future::Future<Output = AppResult<T>>,
    ) -> AppResult<T> {
        let (dir, owned) = (self.unit_dir(), base.to_string());
        let begun =
            tokio::task::spawn_blocking(move || install::begin_change(&dir, &owned, &names))
                .await
                .map_err(AppError::internal)?;
        let intent = match begun {
            Ok(intent) => intent,
            Err(e) => {
                let err = AppError::Internal(format!(
                    "cannot write unit files in {}: {e}",
                    self.unit_dir().display()
                ));
                return Err(self
                    .refuse(principal, action, &format!("{base}.service"), err)
                    .await);
            }
        };
        let result = change.await;
        match tokio::task::spawn_blocking(move || intent.finish()).await {
            Ok(Ok(())) => {}
            Ok(Err(e)) => tracing::error!(error = %e, "cannot remove the change intent"),
            Err(e) => tracing::error!(error = %e, "cannot remove the change intent"),
        }
        result
    }

    async fn install_files_and_commit(
        &self,
        principal: &Principal,
        action: &str,
        spec: &UnitSpec,
        prepared: &Prepared,
        previous: Option<(i64, Vec<String>)>,
        note: &str,
    ) -> AppResult<i64> {
        let target = spec.unit_name();
        let remove: Vec<String> = previous
            .as_ref()
            .map(|(_, old)| {
                old.iter()
                    .filter(|n| !prepared.files.contains_key(*n))
                    .cloned()
                    .collect()
            })
            .unwrap_or_default();
        let installed = self
            .write_files(principal, action, &target, prepared.files.clone(), remove)
            .await?;
        if let Err(e) = self.reload().await {
            return Err(self.undo(principal, action, &target, installed, e).await);
        }
        let spec_json = serde_json::to_string(spec).map_err(AppError::internal)?;
        let files_json = serde_json::to_string(&prepared.files).map_err(AppError::internal)?;
        let next = previous.as_ref().map_or(1, |(rev, _)| rev + 1);
        let detail = format!(
            "revision {next}{note}; enable={} start={}",
            spec.enable, spec.start
        );
        let committed = self
            .db
            .commit_unit_file_revision(
                NewRevision {
                    name: &target,
                    kind: spec.kind.as_str(),
                    spec: &spec_json,
                    files: &files_json,
                    actor: &principal.actor,
                    previous: previous.as_ref().map(|(rev, _)| *rev),
                },
                AuditEntry {
                    actor: &principal.actor,
                    action,
                    target: Some(&target),
                    result: "ok",
                    detail: Some(&detail),
                },
            )
            .await;
        match committed {
            Ok(Some(revision)) => {
                drop(installed);
                self.refresh_managed().await;
                Ok(revision)
            }
            Ok(None) => {
                let err = AppError::Conflict(format!("{target} was changed meanwhile; try again"));
                Err(self.undo(principal, action, &target, installed, err).await)
            }
            Err(e) => Err(self
                .undo(principal, action, &target, installed, e.into())
                .await),
        }
    }

    async fn audit_change(
        &self,
        principal: &Principal,
        action: &str,
        target: &str,
        result: &str,
        detail: Option<&str>,
    ) -> AppResult<()> {
        self.audit(AuditEntry {
            actor: &principal.actor,
            action,
            target: Some(target),
            result,
            detail,
        })
        .await
    }

    /// Audits a refused change and returns the error.
    pub(in crate::service) async fn refuse(
        &self,
        principal: &Principal,
        action: &str,
        target: &str,
        err: AppError,
    ) -> AppError {
        let (result, detail) = match &err {
            AppError::Validation(errors) => (
                "invalid",
                errors
                    .iter()
                    .map(|e| e.field.as_str())
                    .collect::<Vec<_>>()
                    .join(", "),
            ),
            AppError::Conflict(m) => ("refused", m.clone()),
            AppError::NotFound(m) => ("not-found", m.clone()),
            other => ("failed", other.to_string()),
        };
        if let Err(e) = self
            .audit_change(principal, action, target, result, Some(&detail))
            .await
        {
            tracing::error!(error = %e, "could not audit a refused unit-file change");
        }
        err
    }

    async fn applied(
        &self,
        spec: &UnitSpec,
        revision: i64,
        prepared: Prepared,
        job: Option<JobInfo>,
        warnings: Vec<String>,
    ) -> Applied {
        let primary = spec.primary_unit();
        let unit = match self.systemd.refresh_unit(&primary).await {
            Ok(_) => self.systemd.summary(&primary),
            Err(_) => None,
        };
        Applied {
            name: spec.unit_name(),
            revision,
            files: prepared.files,
            unit,
            job,
            warnings,
            verify: prepared.verify,
        }
    }
}
