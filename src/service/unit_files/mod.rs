//! The unit-file operations behind both the JSON API and the form: preview, create,
//! update, rollback, delete, list, read. Every change is audited before the answer.
//!
//! The order of a change, so that a crash never leaves a half-written file nor a revision
//! the caller was told about but the database lost:
//! 1. checks (validation, calendar, program/directory/user exist, ownership, verify);
//! 2. the files are written atomically, then systemd reloads;
//! 3. the revision and its audit row are committed in one transaction; if that fails, the
//!    files are put back and systemd reloads again;
//! 4. enable/disable and start/restart, each audited like a unit action.
//!
//! Every change is recorded in the unit directory before step 2 (`.NAME.unitdeck-change`,
//! removed after step 3): a crash between 2 and 3 leaves files that no revision
//! describes, and [`restore::reconcile_on_start`] settles them at the next start
//! (the change was never confirmed: the database's revision goes back, or the files of a
//! create go).

mod restore;

pub use restore::{FileState, reconcile_on_start};

use std::collections::BTreeMap;
use std::path::PathBuf;

use serde::Serialize;
use utoipa::ToSchema;

use restore::file_states;

use crate::auth::Principal;
use crate::db::{AuditEntry, Db, NewRevision, RevisionRow, UnitFileRow};
use crate::error::{AppError, AppResult, FieldError};
use crate::service::Services;
use crate::systemd::JobInfo;
use crate::systemd::is_at_rest;
use crate::systemd::names::is_valid_unit_name;
use crate::systemd::{SystemdError, UnitAction, UnitSummary};
use crate::unitfile::base_name;
use crate::unitfile::install::{self, Installed, OnDisk, VerifyReport};
use crate::unitfile::render::{redact_environment, render};
use crate::unitfile::spec::{UnitKind, UnitSpec};
use crate::unitfile::validate::{is_well_formed_name, validate};

/// A unit file unitdeck created (`GET /api/v1/unit-files`).
#[derive(Debug, Clone, Serialize, ToSchema)]
pub struct UnitFileInfo {
    /// The service file, e.g. `shop-api.service` (also for a job).
    pub name: String,
    /// `service` or `job`.
    pub kind: String,
    /// The revision currently installed.
    pub revision: i64,
    pub created_at: String,
    pub updated_at: String,
}

impl From<UnitFileRow> for UnitFileInfo {
    fn from(row: UnitFileRow) -> Self {
        Self {
            name: row.name,
            kind: row.kind,
            revision: row.revision,
            created_at: row.created_at,
            updated_at: row.updated_at,
        }
    }
}

/// One entry of a unit file's history (without its contents).
#[derive(Debug, Clone, Serialize, ToSchema)]
pub struct RevisionInfo {
    pub revision: i64,
    pub created_at: String,
    /// Who made it (`admin`, `token:ID (NAME)`, `unitdeck`).
    pub actor: String,
}

impl From<RevisionRow> for RevisionInfo {
    fn from(row: RevisionRow) -> Self {
        Self {
            revision: row.revision,
            created_at: row.created_at,
            actor: row.actor,
        }
    }
}

/// One change at a time: the ownership checks, the files and the revision number must
/// not interleave between two requests.
pub(super) static CHANGES: tokio::sync::Mutex<()> = tokio::sync::Mutex::const_new(());

/// `POST /api/v1/unit-files/preview`.
#[derive(Debug, Clone, Serialize, ToSchema)]
pub struct Preview {
    /// File name → contents, exactly as they would be written.
    pub files: BTreeMap<String, String>,
    pub verify: VerifyReport,
    /// For a job: the next run times (RFC 3339, UTC) from `systemd-analyze calendar`.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub next_runs: Option<Vec<String>>,
    /// Drop-in files unitdeck did not write that systemd would apply on top of these
    /// files (type-wide `service.d/`, prefixes such as `shop-.service.d/`), in the order it
    /// applies them: nothing applies unseen.
    pub drop_ins: Vec<String>,
}

/// The answer of a create, update or rollback.
#[derive(Debug, Clone, Serialize, ToSchema)]
pub struct Applied {
    /// The service file, e.g. `shop-api.service` (also for a job).
    pub name: String,
    pub revision: i64,
    pub files: BTreeMap<String, String>,
    /// The primary unit after the change (the timer, for a job); null if systemd did not
    /// report it.
    pub unit: Option<UnitSummary>,
    /// The start or restart job of the primary unit, when one ran.
    pub job: Option<JobInfo>,
    /// What failed after the files were installed and the revision recorded (enable,
    /// start): the change itself is kept.
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub warnings: Vec<String>,
    pub verify: VerifyReport,
}

/// `GET /api/v1/unit-files/{name}`.
#[derive(Debug, Clone, Serialize, ToSchema)]
pub struct UnitFileDetail {
    /// The service file, e.g. `shop-api.service`.
    pub name: String,
    /// `service` or `job`.
    pub kind: String,
    /// The revision currently installed.
    pub revision: i64,
    pub spec: UnitSpec,
    pub files: BTreeMap<String, String>,
    /// Newest first.
    pub revisions: Vec<RevisionInfo>,
    pub created_at: String,
    pub updated_at: String,
    /// Each file in the unit directory against the installed revision. unitdeck never
    /// overwrites a `modified` or `replaced` file by itself (the next update or rollback
    /// does); a `missing` one is written again at its next start.
    pub on_disk: BTreeMap<String, FileState>,
}

impl UnitFileDetail {
    /// As shown to a caller below admin: environment values replaced by `***`, in the
    /// spec and in the files.
    pub fn redacted(mut self) -> Self {
        self.spec = self.spec.redacted();
        redact_files(&mut self.files);
        self
    }
}

fn redact_files(files: &mut BTreeMap<String, String>) {
    for text in files.values_mut() {
        *text = redact_environment(text);
    }
}

/// A past revision with its files, for the history view.
#[derive(Debug, Clone)]
pub struct RevisionFiles {
    pub info: RevisionInfo,
    pub files: BTreeMap<String, String>,
}

impl RevisionFiles {
    /// See [`UnitFileDetail::redacted`].
    pub fn redacted(mut self) -> Self {
        redact_files(&mut self.files);
        self
    }
}

/// What the form offers to pick from.
#[derive(Debug, Clone, Default)]
pub struct FormChoices {
    /// Watched ports nobody listens on and no unit-file spec names.
    pub free_ports: Vec<u16>,
    /// Every unit systemd knows, for the dependency lists.
    pub units: Vec<String>,
}

/// Checked and rendered, not yet installed.
struct Prepared {
    files: BTreeMap<String, String>,
    verify: VerifyReport,
    next_runs: Option<Vec<String>>,
}

/// The current revision of a unit file.
struct Current {
    row: UnitFileRow,
    spec: UnitSpec,
    files: BTreeMap<String, String>,
}

/// Every unit name of the unit files in the database (`X.service`, and `X.timer` for jobs).
pub(super) async fn managed_names(db: &Db) -> sqlx::Result<Vec<String>> {
    Ok(db
        .list_unit_files()
        .await?
        .into_iter()
        .flat_map(|row| {
            // The key is always NAME.service; a job also has NAME.timer.
            let timer = (row.kind == UnitKind::Job.as_str())
                .then(|| {
                    row.name
                        .strip_suffix(".service")
                        .map(|b| format!("{b}.timer"))
                })
                .flatten();
            std::iter::once(row.name).chain(timer)
        })
        .collect())
}

/// What a change stopped and disabled before touching the files, to put back if it fails.
#[derive(Default)]
struct Paused {
    stopped: Vec<String>,
    disabled: Vec<String>,
}

fn is_running(summary: &UnitSummary) -> bool {
    matches!(
        summary.active_state.as_deref(),
        Some("active" | "activating" | "reloading")
    )
}

impl Services {
    fn unit_dir(&self) -> PathBuf {
        self.config.unit_dir.clone()
    }

    // --- reading ---------------------------------------------------------------------

    pub async fn list_unit_files(&self) -> AppResult<Vec<UnitFileInfo>> {
        Ok(self
            .db
            .list_unit_files()
            .await?
            .into_iter()
            .map(UnitFileInfo::from)
            .collect())
    }

    pub async fn unit_file(&self, raw: &str) -> AppResult<UnitFileDetail> {
        let current = self.current(raw).await?;
        let revisions = self
            .db
            .unit_file_revisions(&current.row.name)
            .await?
            .into_iter()
            .map(RevisionInfo::from)
            .collect();
        let (dir, files) = (self.unit_dir(), current.files.clone());
        let on_disk = tokio::task::spawn_blocking(move || file_states(&dir, &files))
            .await
            .map_err(AppError::internal)?;
        Ok(UnitFileDetail {
            name: current.row.name,
            kind: current.row.kind,
            revision: current.row.revision,
            spec: current.spec,
            files: current.files,
            revisions,
            created_at: current.row.created_at,
            updated_at: current.row.updated_at,
            on_disk,
        })
    }

    /// The unit file with the files of its latest `limit` revisions (for the diff view).
    pub async fn unit_file_history(
        &self,
        raw: &str,
        limit: usize,
    ) -> AppResult<(UnitFileDetail, Vec<RevisionFiles>)> {
        let detail = self.unit_file(raw).await?;
        let mut history = Vec::new();
        for info in detail.revisions.iter().take(limit) {
            if let Some(stored) = self
                .db
                .unit_file_revision(&detail.name, info.revision)
                .await?
            {
                history.push(RevisionFiles {
                    info: info.clone(),
                    files: serde_json::from_str(&stored.files).map_err(AppError::internal)?,
                });
            }
        }
        Ok((detail, history))
    }

    /// Free watched ports and known unit names, for the form's pickers.
    pub async fn unit_form_choices(&self) -> AppResult<FormChoices> {
        let mut claimed: Vec<u16> = Vec::new();
        for row in self.db.list_unit_files().await? {
            if let Some(stored) = self.db.unit_file_revision(&row.name, row.revision).await?
                && let Ok(spec) = serde_json::from_str::<UnitSpec>(&stored.spec)
            {
                claimed.extend(spec.port_number());
            }
        }
        let listening: Vec<u16> = self
            .listeners()
            .await
            .map(|ls| ls.into_iter().map(|l| l.port).collect())
            .unwrap_or_default();
        let free_ports = self
            .config
            .watched_ports
            .iter()
            .copied()
            .filter(|p| !listening.contains(p) && !claimed.contains(p))
            .collect();
        let units = self
            .systemd
            .list(&crate::systemd::UnitFilter::default())
            .into_iter()
            .map(|u| u.name)
            .collect();
        Ok(FormChoices { free_ports, units })
    }

    async fn current(&self, raw: &str) -> AppResult<Current> {
        let base = base_name(raw)?;
        let key = format!("{base}.service");
        let Some(row) = self.db.unit_file(&key).await? else {
            return Err(AppError::NotFound(format!(
                "unitdeck created no unit file named {raw}"
            )));
        };
        let stored = self
            .db
            .unit_file_revision(&key, row.revision)
            .await?
            .ok_or_else(|| {
                AppError::Internal(format!("revision {} of {key} is missing", row.revision))
            })?;
        Ok(Current {
            spec: serde_json::from_str(&stored.spec).map_err(AppError::internal)?,
            files: serde_json::from_str(&stored.files).map_err(AppError::internal)?,
            row,
        })
    }

    /// Like `current`, for a change: a unit unitdeck did not create is a 409, not a 404.
    async fn current_for_change(&self, raw: &str) -> AppResult<Current> {
        match self.current(raw).await {
            Err(AppError::NotFound(not_found)) => {
                let base = base_name(raw)?;
                let mut names = vec![format!("{base}.service"), format!("{base}.timer")];
                if is_valid_unit_name(raw) && !names.iter().any(|n| n == raw) {
                    names.insert(0, raw.to_string());
                }
                for name in names {
                    if let Some(reason) = self.foreign_unit(&name).await? {
                        return Err(AppError::Conflict(format!(
                            "{reason}; unitdeck only changes or deletes units it created"
                        )));
                    }
                }
                Err(AppError::NotFound(not_found))
            }
            other => other,
        }
    }

    /// Why `name` belongs to someone else (a file without our marker in the unit
    /// directory, a marked file unitdeck has no record of, drop-ins, or a unit systemd
    /// knows from elsewhere), or None when it is free or ours.
    async fn foreign_unit(&self, name: &str) -> AppResult<Option<String>> {
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

    // --- checks ------------------------------------------------------------------------

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
    async fn refuse(
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

    /// `prepare` for a change: any problem is a 422.
    async fn prepare_for_change(&self, spec: &UnitSpec) -> AppResult<Prepared> {
        let prepared = self.prepare(spec).await.map_err(AppError::Validation)?;
        if !prepared.verify.errors.is_empty() {
            return Err(AppError::Validation(prepared.verify.errors.clone()));
        }
        Ok(prepared)
    }

    // --- changes -------------------------------------------------------------------------

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

    async fn reload(&self) -> AppResult<()> {
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
    async fn undo(
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

    async fn stop(&self, principal: &Principal, name: &str, paused: &mut Paused) {
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

    async fn stop_and_disable(&self, principal: &Principal, name: &str, paused: &mut Paused) {
        self.stop(principal, name, paused).await;
        self.disable(principal, name, paused).await;
    }

    async fn disable(&self, principal: &Principal, name: &str, paused: &mut Paused) {
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
    async fn restore(&self, principal: &Principal, paused: Paused, primary: &str) {
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
    async fn apply_state(
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
