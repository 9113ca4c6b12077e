//! Unit files unitdeck creates: preview, create, update, rollback, delete, list, read,
//! behind both the JSON API and the form. Every change is audited before the answer.
//!
//! A spec goes through `checks` (validation, the calendar for a job, the program,
//! directory and user on this machine, `systemd-analyze verify`, the units it pulls in,
//! the name's owner), then `change`, in an order that lets a crash never leave a
//! half-written file nor a revision the caller was told about but the database lost:
//! 1. the change's intent is recorded in the unit directory (`.NAME.unitdeck-change`);
//! 2. the files are written atomically, then systemd reloads;
//! 3. the revision and its audit row are committed in one transaction (if that fails,
//!    the files are put back and systemd reloads again); the intent goes;
//! 4. enable/disable and start/restart (`state`), each audited like a unit action.
//!
//! A crash between 2 and 3 leaves files that no revision describes: at the next start
//! [`restore::reconcile_on_start`] settles them (the change was never confirmed: the
//! database's revision goes back, or the files of a create go), and writes back the files
//! a recreated container lost.
//!
//! The route parameter `{name}` is the base name (`shop-api`) or a file name
//! (`shop-api.service`, `nightly.timer`); responses always name the service file
//! (`shop-api.service`), which is also the key in the database.

mod change;
mod checks;
mod restore;
mod state;

pub(in crate::service) use restore::{ACTOR, left_alone};
pub use restore::{FileState, reconcile_on_start};
pub(in crate::service) use state::is_running;

use std::collections::BTreeMap;
use std::path::PathBuf;

use serde::Serialize;
use utoipa::ToSchema;

use restore::file_states;

use crate::db::{Db, RevisionRow, UnitFileRow};
use crate::error::{AppError, AppResult};
use crate::service::Services;
use crate::systemd::names::is_valid_unit_name;
use crate::systemd::{JobInfo, UnitSummary};
use crate::unitfile::base_name;
use crate::unitfile::install::VerifyReport;
use crate::unitfile::spec::{UnitKind, UnitSpec};
use crate::unitfile::syntax::redact_secrets;

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
        *text = redact_secrets(text);
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

/// The current revision of a unit file.
pub(super) struct Current {
    pub(super) row: UnitFileRow,
    pub(super) spec: UnitSpec,
    pub(super) files: BTreeMap<String, String>,
}

/// Every unit name of the unit files in the database (`X.service`, and `X.timer` for jobs).
pub(super) async fn managed_names(db: &Db) -> AppResult<Vec<String>> {
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

impl Services {
    pub(super) fn unit_dir(&self) -> PathBuf {
        self.config.unit_dir.clone()
    }

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

    pub(super) async fn current(&self, raw: &str) -> AppResult<Current> {
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
    pub(super) async fn current_for_change(&self, raw: &str) -> AppResult<Current> {
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
}
