//! The checks of a spec before anything is written: validation, the calendar, the
//! program, directory and user on this machine, `systemd-analyze verify`, the units it
//! pulls in, and whether its name belongs to someone else.

use std::collections::BTreeMap;

use super::Preview;
use crate::error::{AppError, AppResult, FieldError};
use crate::service::Services;
use crate::systemd::SystemdError;
use crate::unitfile::base_name;
use crate::unitfile::install::{self, OnDisk, VerifyReport};
use crate::unitfile::render::render;
use crate::unitfile::spec::{UnitKind, UnitSpec};
use crate::unitfile::validate::validate;

/// Checked and rendered, not yet installed.
pub(super) struct Prepared {
    pub(super) files: BTreeMap<String, String>,
    pub(super) verify: VerifyReport,
    pub(super) next_runs: Option<Vec<String>>,
}

impl Services {
    /// Why `name` belongs to someone else (a file without our marker in the unit
    /// directory, a marked file unitdeck has no record of, drop-ins, or a unit systemd
    /// knows from elsewhere), or None when it is free or ours.
    pub(super) async fn foreign_unit(&self, name: &str) -> AppResult<Option<String>> {
        let dir = self.unit_dir();
        let path = dir.join(name);
        let (disk, drop_ins) = {
            let dir = dir.clone();
            let name = name.to_string();
            tokio::task::spawn_blocking(move || {
                let drop_ins = install::drop_in_dirs(&dir, &name);
                install::on_disk(&dir, &name).map(|disk| (disk, drop_ins))
            })
            .await
            .map_err(AppError::internal)?
            .map_err(|e| AppError::Internal(format!("cannot read {}: {e}", path.display())))?
        };
        if disk == OnDisk::Foreign {
            return Ok(Some(format!(
                "{} exists and was not created by unitdeck",
                path.display()
            )));
        }
        // The marker alone proves nothing: a copy of one of ours, edited by hand, has it.
        if matches!(disk, OnDisk::Ours(_))
            && self
                .db
                .unit_file(&format!("{}.service", base_name(name)?))
                .await?
                .is_none()
        {
            return Ok(Some(format!(
                "{} carries unitdeck's marker but unitdeck has no record of it (a copy made by hand?)",
                path.display()
            )));
        }
        // `systemctl edit` leaves NAME.d/ behind, also after the file goes: a new unit of
        // that name would run with those settings (User=root, say) without showing them.
        if let Some(drop_in) = drop_ins.first() {
            return Ok(Some(format!(
                "{} holds drop-ins unitdeck did not create; they would apply to a new {name}",
                drop_in.display()
            )));
        }
        match self.systemd.detail(name).await {
            Err(SystemdError::NoSuchUnit(_)) => Ok(None),
            Err(e) => Err(e.into()),
            Ok(detail) => {
                let fragment = detail.fragment_path.unwrap_or_default();
                if matches!(disk, OnDisk::Ours(_)) && std::path::Path::new(&fragment) == path {
                    return Ok(None);
                }
                let load_state = detail.summary.load_state.unwrap_or_default();
                let origin = if fragment.is_empty() {
                    format!("load state {load_state}")
                } else {
                    fragment
                };
                Ok(Some(format!(
                    "{name} already exists ({origin}) and was not created by unitdeck"
                )))
            }
        }
    }

    /// Validation, schedule, render, existence checks and verify. `Err` = the spec itself
    /// is invalid (422 even for a preview); problems of the machine go to `verify.errors`.
    async fn prepare(&self, spec: &UnitSpec) -> Result<Prepared, Vec<FieldError>> {
        validate(spec)?;
        self.check_pulled_in(spec).await?;
        let next_runs = match (spec.kind, spec.schedule_str()) {
            (UnitKind::Job, Some(schedule)) => Some(
                install::next_runs(schedule)
                    .await
                    .map_err(|m| vec![FieldError::new("schedule", m)])?,
            ),
            _ => None,
        };
        let files = render(spec);
        let primary = spec.primary_unit();
        let (mut verify, missing) =
            tokio::join!(install::verify(&files, &primary), install::preflight(spec));
        let hard = std::mem::take(&mut verify.errors);
        verify.errors = missing;
        for e in hard {
            if !verify.errors.iter().any(|x| x.field == e.field) {
                verify.errors.push(e);
            }
        }
        verify.ok = verify.ok && verify.errors.is_empty();
        Ok(Prepared {
            files,
            verify,
            next_runs,
        })
    }

    /// The units a spec's start pulls in (`requires`, `wants`), judged as systemd resolves
    /// them: an alias of `poweroff.target`, or a unit that pulls one in, is refused like a
    /// start of it (the validator saw only the names as typed).
    async fn check_pulled_in(&self, spec: &UnitSpec) -> Result<(), Vec<FieldError>> {
        let mut errors = Vec::new();
        for (field, names) in [("requires", &spec.requires), ("wants", &spec.wants)] {
            for (i, name) in names.iter().enumerate() {
                let problem = match self.systemd.start_danger(name).await {
                    Ok(None) => continue,
                    Ok(Some(why)) => format!("item {i} ({name}): {why}"),
                    Err(e) => format!("item {i} ({name}) could not be checked with systemd: {e}"),
                };
                errors.push(FieldError::new(field, problem));
                break;
            }
        }
        if errors.is_empty() {
            Ok(())
        } else {
            Err(errors)
        }
    }

    /// Renders and checks a spec without changing anything. A name taken by a unit
    /// unitdeck did not create is reported on `name` in `verify.errors`.
    pub async fn preview_unit_file(&self, spec: &UnitSpec) -> AppResult<Preview> {
        let mut prepared = self.prepare(spec).await.map_err(AppError::Validation)?;
        let ours = self.db.unit_file(&spec.unit_name()).await?.is_some();
        if !ours {
            for name in [spec.unit_name(), format!("{}.timer", spec.name)] {
                if let Some(reason) = self.foreign_unit(&name).await? {
                    prepared
                        .verify
                        .errors
                        .insert(0, FieldError::new("name", reason));
                    prepared.verify.ok = false;
                    break;
                }
            }
        }
        let drop_ins = {
            let dir = self.unit_dir();
            let names: Vec<String> = prepared.files.keys().cloned().collect();
            tokio::task::spawn_blocking(move || {
                names
                    .iter()
                    .flat_map(|name| install::applicable_drop_ins(&dir, name))
                    .map(|path| path.display().to_string())
                    .collect()
            })
            .await
            .map_err(AppError::internal)?
        };
        Ok(Preview {
            files: prepared.files,
            verify: prepared.verify,
            next_runs: prepared.next_runs,
            drop_ins,
        })
    }

    /// `prepare` for a change: any problem is a 422.
    pub(super) async fn prepare_for_change(&self, spec: &UnitSpec) -> AppResult<Prepared> {
        let prepared = self.prepare(spec).await.map_err(AppError::Validation)?;
        if !prepared.verify.errors.is_empty() {
            return Err(AppError::Validation(prepared.verify.errors.clone()));
        }
        Ok(prepared)
    }
}
