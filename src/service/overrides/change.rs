//! Changes of an override — save, remove, roll back — each under the change lock, its
//! intent recorded in the drop-in directory, the file written atomically, systemd
//! reloaded and seen to apply it, the revision committed with its audit row; any failed
//! step puts the old file back (and reloads again).

use super::OverrideApplied;
use super::checks::Target;
use crate::auth::Principal;
use crate::db::{AuditEntry, NewOverrideRevision};
use crate::error::{AppError, AppResult, FieldError};
use crate::service::unit_files::CHANGES;
use crate::service::{Services, checked_unit_name};
use crate::unitfile::VerifyReport;
use crate::unitfile::directives::directives;
use crate::unitfile::dropin::OverrideSpec;
use crate::unitfile::install::{self, OnDisk};

/// What a change writes: the drop-in and the spec it comes from, or nothing (a removal).
struct Wanted {
    spec: Option<OverrideSpec>,
    text: Option<String>,
    verify: Option<VerifyReport>,
    changed: Vec<String>,
    restart_needed: bool,
}

impl Services {
    /// `PUT /api/v1/units/{name}/override`: a new revision of the override.
    pub async fn save_override(
        &self,
        principal: &Principal,
        name: &str,
        spec: OverrideSpec,
    ) -> AppResult<OverrideApplied> {
        let name = name.to_string();
        self.to_completion(principal, async move |state, principal| {
            let _guard = CHANGES.lock().await;
            state
                .change_override(&principal, "override.save", &name, Some(spec), "")
                .await
        })
        .await
    }

    /// `DELETE /api/v1/units/{name}/override`: back to the unit's own settings (a revision
    /// too, so that a rollback can bring the override back).
    pub async fn remove_override(
        &self,
        principal: &Principal,
        name: &str,
    ) -> AppResult<OverrideApplied> {
        let name = name.to_string();
        self.to_completion(principal, async move |state, principal| {
            let _guard = CHANGES.lock().await;
            state
                .change_override(&principal, "override.remove", &name, None, "")
                .await
        })
        .await
    }

    /// `POST /api/v1/units/{name}/override/rollback`: a new revision that applies revision
    /// N's spec, or its removal.
    pub async fn rollback_override(
        &self,
        principal: &Principal,
        name: &str,
        revision: i64,
    ) -> AppResult<OverrideApplied> {
        const ACTION: &str = "override.rollback";
        let name = name.to_string();
        self.to_completion(principal, async move |state, principal| {
            let _guard = CHANGES.lock().await;
            let spec = async {
                let unit = state.systemd.resolve(checked_unit_name(&name)?).await?.id;
                let stored = state
                    .db
                    .override_revision(&unit, revision)
                    .await?
                    .ok_or_else(|| {
                        AppError::Validation(vec![FieldError::new(
                            "revision",
                            format!("{unit} has no override revision {revision}"),
                        )])
                    })?;
                stored
                    .settings
                    .as_deref()
                    .map(serde_json::from_str::<OverrideSpec>)
                    .transpose()
                    .map_err(AppError::internal)
            }
            .await;
            match spec {
                Ok(spec) => {
                    let note = format!(" (rollback to revision {revision})");
                    state
                        .change_override(&principal, ACTION, &name, spec, &note)
                        .await
                }
                Err(e) => Err(state.refuse(&principal, ACTION, &name, e).await),
            }
        })
        .await
    }

    /// A save (`spec`) or a removal (None), with the change lock held.
    async fn change_override(
        &self,
        principal: &Principal,
        action: &str,
        raw: &str,
        spec: Option<OverrideSpec>,
        note: &str,
    ) -> AppResult<OverrideApplied> {
        let checked = async {
            let target = self.override_target(raw).await?;
            let wanted = self.wanted(&target, spec).await?;
            Ok((target, wanted))
        }
        .await;
        let (target, wanted) = match checked {
            Ok(c) => c,
            Err(e) => return Err(self.refuse(principal, action, raw, e).await),
        };
        let (unit_dir, unit) = (self.unit_dir(), target.unit.clone());
        let begun =
            tokio::task::spawn_blocking(move || install::begin_drop_in_change(&unit_dir, &unit))
                .await
                .map_err(AppError::internal)?;
        let intent = match begun {
            Ok(intent) => intent,
            Err(e) => {
                let err =
                    AppError::Internal(format!("cannot write into {}: {e}", target.path.display()));
                return Err(self.refuse(principal, action, &target.unit, err).await);
            }
        };
        let revision = self
            .write_override(principal, action, &target, &wanted, note)
            .await;
        match tokio::task::spawn_blocking(move || intent.finish()).await {
            Ok(Ok(())) => {}
            Ok(Err(e)) => tracing::error!(error = %e, "cannot remove the change intent"),
            Err(e) => tracing::error!(error = %e, "cannot remove the change intent"),
        }
        let revision = revision?;
        if wanted.text.is_none() {
            let (unit_dir, unit) = (self.unit_dir(), target.unit.clone());
            let tidied = tokio::task::spawn_blocking(move || {
                install::remove_empty_drop_in_dir(&unit_dir, &unit)
            })
            .await;
            if let Ok(Err(e)) = tidied {
                tracing::warn!(unit = %target.unit, error = %e, "cannot remove an empty drop-in directory");
            }
        }
        let summary = match self.systemd.refresh_unit(&target.unit).await {
            Ok(_) => self.systemd.summary(&target.unit),
            Err(_) => None,
        };
        Ok(OverrideApplied {
            path: target.path.display().to_string(),
            unit: target.unit,
            revision,
            text: wanted.text,
            changed: wanted.changed,
            restart_needed: wanted.restart_needed,
            summary,
            verify: wanted.verify,
        })
    }

    /// What a save or removal writes, checked (any problem is a 4xx).
    async fn wanted(&self, target: &Target, spec: Option<OverrideSpec>) -> AppResult<Wanted> {
        let Some(spec) = spec else {
            let in_place = target.current.as_ref().is_some_and(|c| c.text.is_some())
                || matches!(target.on_disk, OnDisk::Ours(_));
            if !in_place {
                return Err(AppError::NotFound(format!(
                    "{} has no override to remove",
                    target.unit
                )));
            }
            let directives = directives().await;
            let (effective, restart_needed) =
                target.effective_change(None, directives.as_deref().ok());
            return Ok(Wanted {
                spec: None,
                text: None,
                verify: None,
                changed: effective.changed,
                restart_needed,
            });
        };
        let prepared = self
            .prepare_override(target, &spec)
            .await
            .map_err(AppError::Validation)?;
        if !prepared.verify.errors.is_empty() {
            return Err(AppError::Validation(prepared.verify.errors.clone()));
        }
        Ok(Wanted {
            spec: Some(spec),
            text: Some(prepared.text),
            verify: Some(prepared.verify),
            changed: prepared.effective.changed,
            restart_needed: prepared.restart_needed,
        })
    }

    /// Drop-in → reload → systemd applies it (or no longer) → revision + audit in one
    /// transaction; the old file back (and a reload) when a step fails.
    async fn write_override(
        &self,
        principal: &Principal,
        action: &str,
        target: &Target,
        wanted: &Wanted,
        note: &str,
    ) -> AppResult<i64> {
        let unit = target.unit.as_str();
        let (unit_dir, owned, text) = (self.unit_dir(), unit.to_string(), wanted.text.clone());
        let written = tokio::task::spawn_blocking(move || {
            install::install_drop_in(&unit_dir, &owned, text.as_deref())
        })
        .await
        .map_err(AppError::internal)?;
        let installed = match written {
            Ok(installed) => installed,
            Err(e) => {
                let err =
                    AppError::Internal(format!("cannot write {}: {e}", target.path.display()));
                return Err(self.refuse(principal, action, unit, err).await);
            }
        };
        if let Err(e) = self.reload().await {
            return Err(self.undo(principal, action, unit, installed, e).await);
        }
        let applied = self.systemd.detail(unit).await.map(|d| {
            d.drop_in_paths
                .iter()
                .any(|p| std::path::Path::new(p) == target.path)
        });
        match applied {
            Ok(applied) if applied == wanted.text.is_some() => {}
            Ok(_) => {
                let err = AppError::Conflict(format!(
                    "after the reload systemd {} {}; the change is undone",
                    if wanted.text.is_some() {
                        "does not apply"
                    } else {
                        "still applies"
                    },
                    target.path.display()
                ));
                return Err(self.undo(principal, action, unit, installed, err).await);
            }
            Err(e) => {
                return Err(self
                    .undo(principal, action, unit, installed, e.into())
                    .await);
            }
        }
        let settings = wanted
            .spec
            .as_ref()
            .map(serde_json::to_string)
            .transpose()
            .map_err(AppError::internal)?;
        let next = target.row.as_ref().map_or(1, |r| r.revision + 1);
        // Names of settings only: every reader of the audit log sees it.
        let what = wanted
            .spec
            .as_ref()
            .map_or_else(|| "removed".to_string(), OverrideSpec::describe);
        let detail = format!(
            "revision {next}{note}: {what}; changes {}; restart needed: {}",
            if wanted.changed.is_empty() {
                "nothing".to_string()
            } else {
                wanted.changed.join(", ")
            },
            if wanted.restart_needed { "yes" } else { "no" }
        );
        let committed = self
            .db
            .commit_override_revision(
                NewOverrideRevision {
                    unit,
                    settings: settings.as_deref(),
                    text: wanted.text.as_deref(),
                    restart: wanted.restart_needed,
                    actor: &principal.actor,
                    previous: target.row.as_ref().map(|r| r.revision),
                },
                AuditEntry {
                    actor: &principal.actor,
                    action,
                    target: Some(unit),
                    result: "ok",
                    detail: Some(&detail),
                },
            )
            .await;
        match committed {
            Ok(Some(revision)) => {
                drop(installed);
                Ok(revision)
            }
            Ok(None) => {
                let err =
                    AppError::Conflict(format!("{unit}'s override changed meanwhile; try again"));
                Err(self.undo(principal, action, unit, installed, err).await)
            }
            Err(e) => Err(self
                .undo(principal, action, unit, installed, e.into())
                .await),
        }
    }
}
