//! What an override is checked against before anything is written: the unit as systemd
//! resolves it (refused when protected, when its start would take the container down,
//! when unitdeck created it, when its drop-in directory is not its own), then the spec
//! (its rules, the units it pulls in or stops, its program, `systemd-analyze verify` with
//! every other file of the unit applied) and what it changes.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

use super::{EffectiveChange, OverridePreview};
use crate::db::{OverrideRevisionRow, OverrideRow};
use crate::error::{AppError, AppResult, FieldError};
use crate::service::unit_files::{FileState, is_running};
use crate::service::{Services, checked_unit_name};
use crate::systemd::UnitSummary;
use crate::unitfile::VerifyReport;
use crate::unitfile::directives::{Directives, directives};
use crate::unitfile::dropin::{self, DROP_IN_NAME, OverrideSpec, needs_restart};
use crate::unitfile::install::{self, OnDisk};
use crate::unitfile::syntax::{Effective, assignments, effective};

/// A unit that may be overridden, with what systemd reads for it now.
pub(super) struct Target {
    /// The unit's own name.
    pub(super) unit: String,
    /// unitdeck's drop-in: `UNIT_DIR/UNIT.d/50-unitdeck.conf`.
    pub(super) path: PathBuf,
    pub(super) summary: UnitSummary,
    /// The fragment's text ("" for a unit without one).
    fragment: String,
    /// Every drop-in systemd applies, in its order; ours too when it is in place.
    drop_ins: Vec<DropInFile>,
    /// What is at the drop-in's place.
    pub(super) on_disk: OnDisk,
    pub(super) row: Option<OverrideRow>,
    /// The current revision (its text is None after a removal).
    pub(super) current: Option<OverrideRevisionRow>,
}

impl Target {
    pub(super) fn file_state(&self, text: &str) -> FileState {
        FileState::of(&self.on_disk, text)
    }

    /// The texts systemd would apply with `ours` as unitdeck's drop-in (None: without
    /// one), in its order: the fragment, then the drop-ins by file name.
    fn texts<'a>(&'a self, ours: Option<&'a str>) -> Vec<&'a str> {
        let mut drop_ins: Vec<(&str, &str)> = self
            .drop_ins
            .iter()
            .filter(|d| !self.is_ours(d))
            .map(|d| (d.name.as_str(), d.text.as_str()))
            .collect();
        if let Some(ours) = ours {
            drop_ins.push((DROP_IN_NAME, ours));
            drop_ins.sort_by(|a, b| a.0.cmp(b.0));
        }
        std::iter::once(self.fragment.as_str())
            .chain(drop_ins.into_iter().map(|(_, text)| text))
            .collect()
    }

    fn is_ours(&self, file: &DropInFile) -> bool {
        file.name == DROP_IN_NAME && Path::new(&file.path) == self.path
    }

    /// The unit's settings now, and with `ours` as the drop-in.
    pub(super) fn effective_change(
        &self,
        ours: Option<&str>,
        directives: Option<&Directives>,
    ) -> (EffectiveChange, bool) {
        let before: Effective = effective(&self.texts(self.installed()), directives);
        let after: Effective = effective(&self.texts(ours), directives);
        let changed = before.changed(&after);
        let restart = is_running(&self.summary) && needs_restart(&changed);
        (
            EffectiveChange {
                before: before.text(),
                after: after.text(),
                changed: changed.iter().map(|(s, k)| format!("{s}.{k}")).collect(),
            },
            restart,
        )
    }

    /// unitdeck's drop-in as systemd applies it now.
    fn installed(&self) -> Option<&str> {
        self.drop_ins
            .iter()
            .find(|d| self.is_ours(d))
            .map(|d| d.text.as_str())
    }

    /// The drop-ins applied after `ours` that set a setting it sets: theirs win.
    fn later_drop_ins(&self, ours: &str) -> Vec<String> {
        let keys: Vec<(String, String)> = assignments(ours)
            .into_iter()
            .map(|a| (a.section, a.key))
            .collect();
        self.drop_ins
            .iter()
            .filter(|d| d.name.as_str() > DROP_IN_NAME)
            .filter_map(|d| {
                let mut shared: Vec<String> = Vec::new();
                for a in assignments(&d.text) {
                    let key = format!("{}=", a.key);
                    if keys.contains(&(a.section, a.key)) && !shared.contains(&key) {
                        shared.push(key);
                    }
                }
                (!shared.is_empty()).then(|| {
                    format!(
                        "{} is applied after the override and also sets {}: its values win",
                        d.path,
                        shared.join(", ")
                    )
                })
            })
            .collect()
    }

    /// The files `systemd-analyze verify` gets: the fragment as the unit, every other
    /// drop-in under its own name, and `ours`.
    fn verify_files(&self, ours: &str) -> BTreeMap<String, String> {
        let mut files = BTreeMap::from([(self.unit.clone(), self.fragment.clone())]);
        for d in &self.drop_ins {
            if !self.is_ours(d) {
                files.insert(format!("{}.d/{}", self.unit, d.name), d.text.clone());
            }
        }
        files.insert(format!("{}.d/{DROP_IN_NAME}", self.unit), ours.to_string());
        files
    }
}

/// A drop-in systemd applies to the unit.
struct DropInFile {
    name: String,
    path: String,
    text: String,
}

/// What is read from disk for a target.
struct Sources {
    fragment: String,
    drop_ins: Vec<DropInFile>,
    on_disk: OnDisk,
}

/// A spec checked for a target: the drop-in, what systemd says of it, what it changes.
pub(super) struct Prepared {
    pub(super) text: String,
    pub(super) verify: VerifyReport,
    pub(super) effective: EffectiveChange,
    pub(super) later_drop_ins: Vec<String>,
    pub(super) restart_needed: bool,
}

impl Services {
    /// The unit `raw` names, as systemd resolves it, if unitdeck may override it: not
    /// protected, its start does not take the container down, loaded, not created by
    /// unitdeck, its drop-in directory its own (and applied to it alone), and the drop-in's
    /// place free or unitdeck's.
    pub(super) async fn override_target(&self, raw: &str) -> AppResult<Target> {
        let name = checked_unit_name(raw)?;
        let resolved = self.systemd.resolve(name).await?;
        if let Some(why) = self.systemd.change_refusal(name, &resolved).await? {
            return Err(AppError::Conflict(why));
        }
        let unit = resolved.id;
        let detail = self.systemd.detail(&unit).await?;
        let load = detail.summary.load_state.as_deref().unwrap_or("unknown");
        if load != "loaded" {
            return Err(AppError::Conflict(format!(
                "{unit} is {load}: only a loaded unit can be overridden"
            )));
        }
        if detail.summary.managed {
            return Err(AppError::Conflict(format!(
                "unitdeck created {unit}: change its unit file instead (/units/{unit}/edit)"
            )));
        }
        // systemd applies `foo-.service.d/` to every unit named foo-*.service.
        if let Some((stem, _)) = unit.rsplit_once('.')
            && stem.ends_with('-')
        {
            return Err(AppError::Conflict(format!(
                "{unit}.d/ would apply to every unit whose name starts with {stem}"
            )));
        }
        let unit_dir = self.unit_dir();
        let path = install::drop_in_path(&unit_dir, &unit);
        if let Some(other) = detail.drop_in_paths.iter().find(|p| {
            Path::new(p).file_name() == Some(DROP_IN_NAME.as_ref()) && Path::new(p) != path
        }) {
            return Err(AppError::Conflict(format!(
                "{other} has the name of unitdeck's drop-in: one of the two would hide the other"
            )));
        }
        let sources = {
            let (unit, fragment) = (unit.clone(), detail.fragment_path.clone());
            let drop_ins = detail.drop_in_paths.clone();
            tokio::task::spawn_blocking(move || read_target(&unit_dir, &unit, fragment, drop_ins))
                .await
                .map_err(AppError::internal)??
        };
        let row = self.db.override_row(&unit).await?;
        let current = match &row {
            Some(row) => self.db.override_revision(&unit, row.revision).await?,
            None => None,
        };
        let ours = current.as_ref().is_some_and(|c| c.text.is_some());
        match &sources.on_disk {
            OnDisk::Foreign => {
                return Err(AppError::Conflict(format!(
                    "{} exists and was not written by unitdeck",
                    path.display()
                )));
            }
            OnDisk::Ours(_) if !ours => {
                return Err(AppError::Conflict(format!(
                    "{} carries unitdeck's marker but unitdeck has no record of it (a copy made by hand?)",
                    path.display()
                )));
            }
            _ => {}
        }
        Ok(Target {
            unit,
            path,
            summary: detail.summary,
            fragment: sources.fragment,
            drop_ins: sources.drop_ins,
            on_disk: sources.on_disk,
            row,
            current,
        })
    }

    /// Checks `spec` for `target`: its rules and the units it pulls in or stops (`Err`:
    /// one error per field), then its program and `systemd-analyze verify` (problems in
    /// `verify.errors`), and what it changes.
    pub(super) async fn prepare_override(
        &self,
        target: &Target,
        spec: &OverrideSpec,
    ) -> Result<Prepared, Vec<FieldError>> {
        let directives = directives().await;
        let drop_in = dropin::check(
            spec,
            &target.unit,
            directives.as_deref().map_err(String::as_str),
        )?;
        self.judge_dependencies(&drop_in).await?;
        let program = spec
            .exec_start
            .as_ref()
            .and_then(|argv| argv.first())
            .and_then(|p| install::check_program(Path::new(p)).err())
            .map(|message| FieldError::new("exec_start", message));
        let mut verify =
            install::verify_override(&target.unit, &target.verify_files(&drop_in.text)).await;
        if let Some(missing) = program {
            verify.errors.retain(|e| e.field != missing.field);
            verify.errors.insert(0, missing);
        }
        verify.ok = verify.ok && verify.errors.is_empty();
        let (effective, restart_needed) =
            target.effective_change(Some(&drop_in.text), directives.as_deref().ok());
        Ok(Prepared {
            later_drop_ins: target.later_drop_ins(&drop_in.text),
            text: drop_in.text,
            verify,
            effective,
            restart_needed,
        })
    }

    /// The units an override pulls in must not take the container down (judged like a
    /// start, as systemd resolves them), and those it would stop must not be protected.
    async fn judge_dependencies(&self, drop_in: &dropin::DropIn) -> Result<(), Vec<FieldError>> {
        let mut errors: Vec<FieldError> = Vec::new();
        for (field, unit) in drop_in.pulled_in() {
            if errors.iter().any(|e| e.field == field) {
                continue;
            }
            let problem = match self.systemd.start_danger(&unit).await {
                Ok(None) => continue,
                Ok(Some(why)) => format!("{unit}: {why}"),
                Err(e) => format!("{unit} could not be checked with systemd: {e}"),
            };
            errors.push(FieldError::new(field, problem));
        }
        for unit in drop_in.stops() {
            if errors.iter().any(|e| e.field == "raw") {
                break;
            }
            let problem = match self.systemd.protected_identity(&unit).await {
                Ok(None) => continue,
                Ok(Some(id)) => format!("{unit} is protected ({id}): the override would stop it"),
                Err(e) => format!("{unit} could not be checked with systemd: {e}"),
            };
            errors.push(FieldError::new("raw", problem));
        }
        if errors.is_empty() {
            Ok(())
        } else {
            Err(errors)
        }
    }

    /// `POST /api/v1/units/{name}/override/preview`: the drop-in, what systemd says of the
    /// unit with it, and what it changes; nothing is written.
    pub async fn preview_override(
        &self,
        name: &str,
        spec: &OverrideSpec,
    ) -> AppResult<OverridePreview> {
        let target = self.override_target(name).await?;
        let prepared = self
            .prepare_override(&target, spec)
            .await
            .map_err(AppError::Validation)?;
        Ok(OverridePreview {
            path: target.path.display().to_string(),
            unit: target.unit,
            text: prepared.text,
            verify: prepared.verify,
            effective: prepared.effective,
            later_drop_ins: prepared.later_drop_ins,
            restart_needed: prepared.restart_needed,
        })
    }
}

/// The fragment and drop-ins systemd reported, read (the paths it named, nothing else),
/// and what is at unitdeck's drop-in's place.
fn read_target(
    unit_dir: &Path,
    unit: &str,
    fragment: Option<String>,
    drop_ins: Vec<String>,
) -> AppResult<Sources> {
    let read = |path: &str| {
        install::read_source(Path::new(path))
            .map(|(text, _)| text)
            .map_err(|e| {
                AppError::Conflict(format!(
                    "cannot read {path} ({e}): an override is verified with every file of the unit"
                ))
            })
    };
    let fragment = match &fragment {
        Some(path) => read(path)?,
        None => String::new(),
    };
    let mut files = Vec::new();
    for path in drop_ins {
        let name = Path::new(&path)
            .file_name()
            .map(|n| n.to_string_lossy().into_owned())
            .unwrap_or_default();
        let text = read(&path)?;
        files.push(DropInFile { name, path, text });
    }
    let on_disk = install::drop_in_on_disk(unit_dir, unit)
        .map_err(|e| AppError::Internal(format!("cannot read {unit}.d: {e}")))?
        .map_err(AppError::Conflict)?;
    Ok(Sources {
        fragment,
        drop_ins: files,
        on_disk,
    })
}
