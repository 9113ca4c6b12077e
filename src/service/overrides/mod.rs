//! Every unit's whole configuration, and overrides of the units unitdeck did not create,
//! behind both the JSON API and the pages.
//!
//! - [`Services::unit_sources`]: the fragment and every drop-in systemd applies, in its
//!   order (what `systemctl cat` prints), read from the paths systemd reports and nowhere
//!   else, each with the settings it assigns.
//! - an override is one drop-in unitdeck owns, `UNIT.d/50-unitdeck.conf` in the unit
//!   directory (`checks`: the unit resolved as systemd does, refused when protected or
//!   when its start would take the container down; the spec checked, verified with the
//!   unit's other files, its effective settings before and after). A change (`change`)
//!   records its intent in the drop-in directory, writes the file atomically, reloads
//!   systemd, confirms systemd applies it, then commits the revision with its audit row
//!   (a removal is a revision too); any failure puts the old file back. A crash between
//!   write and commit is settled at the next start (`restore`): the file goes back to
//!   the committed revision, so it is always the old or the new one, never a part.
//! - revisions keep the spec and the text; a rollback applies revision N's spec (or its
//!   removal) as a new revision.

mod change;
mod checks;
mod restore;

pub use restore::reconcile_on_start;

use serde::Serialize;
use utoipa::ToSchema;

use super::unit_files::FileState;
use crate::db::OverrideRevisionRow;
use crate::error::{AppError, AppResult};
use crate::service::{Services, checked_unit_name};
use crate::systemd::UnitSummary;
use crate::unitfile::VerifyReport;
use crate::unitfile::dropin::OverrideSpec;
use crate::unitfile::install::{self, MAX_SOURCE_BYTES};
use crate::unitfile::render::is_managed;
use crate::unitfile::syntax::{keys_set, redact_secrets};

/// Whether a source file is the unit's own file or a drop-in.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, ToSchema)]
#[serde(rename_all = "kebab-case")]
pub enum SourceKind {
    Fragment,
    DropIn,
}

/// One file systemd reads for a unit (`GET /api/v1/units/{name}/files`).
#[derive(Debug, Clone, Serialize, ToSchema)]
pub struct UnitSource {
    pub path: String,
    pub kind: SourceKind,
    /// The file's text (at most 1 MiB). Environment values read `***` unless the caller is
    /// an admin.
    pub text: String,
    /// Written by unitdeck: the unit file of a unit it created, or its override drop-in.
    pub managed: bool,
    /// The settings this file assigns, as `Section.Key` (for a drop-in: what it changes).
    pub changes: Vec<String>,
    /// Why the text is incomplete or missing (cut at 1 MiB, not a regular file), if it is.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub note: Option<String>,
}

impl UnitSource {
    /// As shown to a caller below admin: secret values replaced by `***`.
    pub fn redacted(mut self) -> Self {
        self.text = redact_secrets(&self.text);
        self
    }
}

/// One revision of an override, for the history (`GET .../override/revisions`).
#[derive(Debug, Clone, Serialize, ToSchema)]
pub struct OverrideRevision {
    pub revision: i64,
    pub created_at: String,
    /// Who made it (`admin`, `token:ID (NAME)`, `unitdeck`).
    pub actor: String,
    /// True for a removal (back to the unit's own settings).
    pub removed: bool,
    /// The spec it applied; null for a removal.
    pub settings: Option<OverrideSpec>,
    /// The drop-in it wrote; null for a removal.
    pub text: Option<String>,
}

impl OverrideRevision {
    fn of(row: OverrideRevisionRow) -> AppResult<Self> {
        Ok(Self {
            revision: row.revision,
            created_at: row.created_at,
            actor: row.actor,
            removed: row.text.is_none(),
            settings: row
                .settings
                .as_deref()
                .map(serde_json::from_str)
                .transpose()
                .map_err(AppError::internal)?,
            text: row.text,
        })
    }

    /// Environment values replaced by `***` (callers below admin).
    pub fn redacted(mut self) -> Self {
        self.settings = self.settings.map(OverrideSpec::redacted);
        self.text = self.text.as_deref().map(redact_secrets);
        self
    }
}

/// A unit's override (`GET /api/v1/units/{name}/override`).
#[derive(Debug, Clone, Serialize, ToSchema)]
pub struct OverrideState {
    /// The unit's own name (an alias resolves to it).
    pub unit: String,
    /// Where the drop-in is (or would be) written.
    pub path: String,
    /// The current revision; null when the unit was never overridden.
    pub revision: Option<i64>,
    /// The override in place; null when there is none (never made, or removed).
    pub settings: Option<OverrideSpec>,
    pub text: Option<String>,
    /// The drop-in on disk against the current revision; null without an override.
    pub on_disk: Option<FileState>,
    /// The unit runs since before the latest revision (a removal too), which takes a
    /// restart to apply.
    pub restart_needed: bool,
    /// Newest first.
    pub revisions: Vec<OverrideRevision>,
}

impl OverrideState {
    /// Environment values replaced by `***` (callers below admin).
    pub fn redacted(mut self) -> Self {
        self.settings = self.settings.map(OverrideSpec::redacted);
        self.text = self.text.as_deref().map(redact_secrets);
        self.revisions = self
            .revisions
            .into_iter()
            .map(OverrideRevision::redacted)
            .collect();
        self
    }
}

/// The unit's settings before and after a change, as one `Key=value` a line.
#[derive(Debug, Clone, Serialize, ToSchema)]
pub struct EffectiveChange {
    pub before: String,
    pub after: String,
    /// The settings whose values differ, as `Section.Key`.
    pub changed: Vec<String>,
}

/// `POST /api/v1/units/{name}/override/preview`: nothing is written.
#[derive(Debug, Clone, Serialize, ToSchema)]
pub struct OverridePreview {
    pub unit: String,
    pub path: String,
    /// The drop-in, exactly as it would be written.
    pub text: String,
    /// `systemd-analyze verify` of the unit with the drop-in applied. `errors` (a value
    /// systemd rejects, a program that is not there) make a save answer 422.
    pub verify: VerifyReport,
    pub effective: EffectiveChange,
    /// Drop-ins applied after the override that set some of the same settings: their
    /// values win.
    pub later_drop_ins: Vec<String>,
    /// A running unit needs a restart to apply it (the others apply on the reload).
    pub restart_needed: bool,
}

/// The answer of a save, removal or rollback.
#[derive(Debug, Clone, Serialize, ToSchema)]
pub struct OverrideApplied {
    pub unit: String,
    pub path: String,
    pub revision: i64,
    /// The drop-in now in place; null after a removal.
    pub text: Option<String>,
    /// The settings whose values changed, as `Section.Key`.
    pub changed: Vec<String>,
    /// The unit runs with the old settings until it restarts
    /// (`POST /api/v1/units/{name}/restart`); false when everything applied on the reload.
    pub restart_needed: bool,
    /// The unit after the change, as systemd reports it.
    pub summary: Option<UnitSummary>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub verify: Option<VerifyReport>,
}

impl Services {
    /// The files systemd reads for `name`, in its order: the fragment, then each drop-in
    /// (`FragmentPath`, `DropInPaths`; no other path is read).
    pub async fn unit_sources(&self, name: &str) -> AppResult<Vec<UnitSource>> {
        let name = checked_unit_name(name)?;
        let detail = self.systemd.detail(name).await?;
        let ours = install::drop_in_path(&self.unit_dir(), &detail.summary.name);
        let own_file = self.unit_dir().join(&detail.summary.name);
        let managed_unit = detail.summary.managed;
        let mut paths: Vec<(String, SourceKind)> = Vec::new();
        if let Some(fragment) = detail.fragment_path {
            paths.push((fragment, SourceKind::Fragment));
        }
        paths.extend(
            detail
                .drop_in_paths
                .into_iter()
                .map(|p| (p, SourceKind::DropIn)),
        );
        tokio::task::spawn_blocking(move || {
            paths
                .into_iter()
                .map(|(path, kind)| {
                    let (text, note) = match install::read_source(std::path::Path::new(&path)) {
                        Ok((text, false)) => (text, None),
                        Ok((text, true)) => (
                            text,
                            Some(format!("cut at {} KiB", MAX_SOURCE_BYTES / 1024)),
                        ),
                        Err(e) => (String::new(), Some(format!("not shown: {e}"))),
                    };
                    let managed = match kind {
                        SourceKind::Fragment => {
                            managed_unit && own_file.as_os_str() == path.as_str()
                        }
                        SourceKind::DropIn => {
                            ours.as_os_str() == path.as_str() && is_managed(&text)
                        }
                    };
                    UnitSource {
                        changes: keys_set(&text),
                        path,
                        kind,
                        text,
                        managed,
                        note,
                    }
                })
                .collect()
        })
        .await
        .map_err(AppError::internal)
    }

    /// The override of `name` and its history. A protected unit, or one whose start would
    /// take the container down, is a 409 (it gets no form).
    pub async fn override_state(&self, name: &str) -> AppResult<OverrideState> {
        let target = self.override_target(name).await?;
        let revisions: Vec<OverrideRevision> = self
            .db
            .override_revisions(&target.unit)
            .await?
            .into_iter()
            .map(OverrideRevision::of)
            .collect::<AppResult<_>>()?;
        let latest = revisions.first();
        let current = latest.filter(|r| !r.removed);
        // A removal too: the unit runs with the override until it restarts.
        let restart_needed = match latest {
            Some(rev) => {
                let row = self
                    .db
                    .override_revision(&target.unit, rev.revision)
                    .await?;
                row.is_some_and(|r| r.restart)
                    && super::unit_files::is_running(&target.summary)
                    && target
                        .summary
                        .active_since
                        .as_deref()
                        .is_some_and(|since| since < rev.created_at.as_str())
            }
            None => false,
        };
        Ok(OverrideState {
            path: target.path.display().to_string(),
            revision: revisions.first().map(|r| r.revision),
            settings: current.and_then(|r| r.settings.clone()),
            text: current.and_then(|r| r.text.clone()),
            on_disk: current.map(|r| target.file_state(r.text.as_deref().unwrap_or_default())),
            restart_needed,
            unit: target.unit,
            revisions,
        })
    }

    /// An override's history, newest first (404 for a unit never overridden).
    pub async fn override_revisions(&self, name: &str) -> AppResult<Vec<OverrideRevision>> {
        let name = checked_unit_name(name)?;
        let unit = self.systemd.resolve(name).await?.id;
        let rows = self.db.override_revisions(&unit).await?;
        if rows.is_empty() {
            return Err(AppError::NotFound(format!("{unit} was never overridden")));
        }
        rows.into_iter().map(OverrideRevision::of).collect()
    }
}
