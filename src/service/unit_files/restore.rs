//! At start the database is the source of truth for the units unitdeck created:
//!
//! - a change a crash interrupted (its intent is still in the unit directory, see
//!   [`install::begin_change`]) is settled: the files of a unit the database has no row
//!   for go (a create never committed, a delete that was), the others get their recorded
//!   revision back;
//! - a file that is missing is written again from its revision. That is what a recreated
//!   dev container looks like: the unit directory (and the `[Install]` symlinks in it) is
//!   the image's again, while the database lives on a volume. systemd reloads, and the
//!   unit is enabled and started as unitdeck last knew it;
//! - a file that differs from its revision (edited or replaced by hand) is never
//!   overwritten: it is reported in the log, in the audit log (`unitfile.modified`) and
//!   in `GET /api/v1/unit-files/{name}` (`on_disk`).
//!
//! Every restore is audited (`unitfile.restore`, written `pending` before its files) and
//! runs under the change lock, so no request's change interleaves with it.

use std::collections::BTreeMap;
use std::path::Path;
use std::time::Duration;

use serde::Serialize;
use sha2::{Digest, Sha256};
use utoipa::ToSchema;

use super::CHANGES;
use crate::auth::{Credential, Principal, Scope};
use crate::db::AuditEntry;
use crate::service::Services;
use crate::systemd::UnitAction;
use crate::systemd::is_at_rest;
use crate::unitfile::install::{self, Interrupted, OnDisk};
use crate::unitfile::spec::UnitSpec;

/// Who the audit log names for what unitdeck does by itself at start.
pub(in crate::service) const ACTOR: &str = "unitdeck";

/// One of a unit file's files in the unit directory, against its installed revision.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, ToSchema)]
#[serde(rename_all = "lowercase")]
pub enum FileState {
    /// Exactly the revision's text.
    Installed,
    /// Still marked as unitdeck's, but the text differs (edited by hand). unitdeck leaves
    /// it alone; the next update or rollback replaces it.
    Modified,
    /// Replaced by a file without unitdeck's marker, a symlink or a directory.
    Replaced,
    /// Not there (unitdeck writes it again at its next start).
    Missing,
}

impl FileState {
    /// What is on disk against the text unitdeck last wrote there.
    pub fn of(disk: &OnDisk, text: &str) -> Self {
        match disk {
            OnDisk::Ours(on_disk) if on_disk == text => Self::Installed,
            OnDisk::Ours(_) => Self::Modified,
            OnDisk::Foreign => Self::Replaced,
            OnDisk::Absent => Self::Missing,
        }
    }
}

fn file_state(dir: &Path, name: &str, text: &str) -> std::io::Result<FileState> {
    Ok(FileState::of(&install::on_disk(dir, name)?, text))
}

/// The state of each file of a revision (a file that cannot be read counts as replaced).
pub fn file_states(dir: &Path, files: &BTreeMap<String, String>) -> BTreeMap<String, FileState> {
    files
        .iter()
        .map(|(name, text)| {
            let state = file_state(dir, name, text).unwrap_or_else(|e| {
                tracing::warn!(file = name, error = %e, "cannot read a unit file");
                FileState::Replaced
            });
            (name.clone(), state)
        })
        .collect()
}

/// A unit whose files were written again; it still needs a reload, and its state back.
struct Restored {
    spec: UnitSpec,
    /// When the unit file was created: older audit records are of another unit.
    created_at: String,
    audit: i64,
    detail: String,
}

/// Settles interrupted changes, writes missing files again and reports modified ones;
/// then (in the background, once the bus is up) reloads systemd and brings the restored
/// units back to the state unitdeck last knew.
pub async fn reconcile_on_start(state: &Services) -> anyhow::Result<()> {
    let guard = CHANGES.lock().await;
    let dir = state.config.unit_dir.clone();
    match blocking(&dir, install::remove_stale_temps).await {
        Ok(removed) if !removed.is_empty() => {
            tracing::warn!(files = ?removed, "removed temporary files of an interrupted change");
        }
        Ok(_) => {}
        Err(e) => tracing::error!(error = %e, "cannot remove stale temporary files"),
    }
    let interrupted = blocking(&dir, install::interrupted_changes)
        .await
        .unwrap_or_else(|e| {
            tracing::error!(error = %e, "cannot look for interrupted changes");
            Vec::new()
        });
    let mut settle: BTreeMap<String, Interrupted> = BTreeMap::new();
    let mut reload = false;
    for change in interrupted {
        if state
            .db
            .unit_file(&format!("{}.service", change.base))
            .await?
            .is_some()
        {
            settle.insert(change.base.clone(), change);
            continue;
        }
        let files = change.files.clone();
        let owned = dir.clone();
        match tokio::task::spawn_blocking(move || change.undo(&owned)).await? {
            Ok(removed) if !removed.is_empty() => {
                tracing::warn!(files = ?removed, "removed the files of an interrupted change");
                reload = true;
            }
            Ok(_) => {}
            Err(e) => {
                tracing::error!(files = ?files, error = %e, "cannot undo an interrupted change")
            }
        }
    }

    let mut restored = Vec::new();
    for row in state.db.list_unit_files().await? {
        let Some(stored) = state.db.unit_file_revision(&row.name, row.revision).await? else {
            continue;
        };
        let files: BTreeMap<String, String> = serde_json::from_str(&stored.files)?;
        let spec: UnitSpec = serde_json::from_str(&stored.spec)?;
        let intent = settle.remove(&spec.name);
        let mut write = BTreeMap::new();
        for (name, file) in file_states(&dir, &files) {
            match file {
                FileState::Installed => {}
                FileState::Missing => {
                    write.insert(name.clone(), files[&name].clone());
                }
                // The text of a change that was never committed: the revision goes back.
                FileState::Modified if intent.is_some() => {
                    write.insert(name.clone(), files[&name].clone());
                }
                FileState::Modified | FileState::Replaced => {
                    report_modified(state, &row.name, row.revision, &name, file).await
                }
            }
        }
        // A file the interrupted change added (a job's timer) that the revision lacks.
        let remove: Vec<String> = intent.as_ref().map_or_else(Vec::new, |change| {
            change
                .files
                .iter()
                .filter(|n| !files.contains_key(*n))
                .filter(|n| matches!(install::on_disk(&dir, n), Ok(OnDisk::Ours(_))))
                .cloned()
                .collect()
        });
        if write.is_empty() && remove.is_empty() {
            forget(intent);
            continue;
        }
        let why = if intent.is_some() {
            "a change was interrupted before its revision was recorded"
        } else {
            "missing: the container was recreated, or they were deleted by hand"
        };
        let names: Vec<&String> = write.keys().chain(&remove).collect();
        let detail = format!("revision {}: {names:?} put back ({why})", row.revision);
        // Recorded before the files change, like every change.
        let audit = state
            .db
            .audit(AuditEntry {
                actor: ACTOR,
                action: "unitfile.restore",
                target: Some(&row.name),
                result: "pending",
                detail: Some(&detail),
            })
            .await?;
        let owned = dir.clone();
        match tokio::task::spawn_blocking(move || install::install_files(&owned, &write, &remove))
            .await?
        {
            Ok(installed) => {
                drop(installed);
                forget(intent);
                tracing::warn!(unit = %row.name, revision = row.revision, "{detail}");
                restored.push(Restored {
                    spec,
                    created_at: row.created_at,
                    audit,
                    detail,
                });
            }
            Err(e) => {
                tracing::error!(unit = %row.name, error = %e, "cannot restore unit files");
                let detail = format!("{detail}; cannot write them: {e}");
                let _ = state
                    .db
                    .set_audit_result(audit, "failed", Some(&detail))
                    .await;
            }
        }
    }
    // An intent whose unit has no revision to go back to: nothing to settle.
    settle.into_values().for_each(|c| forget(Some(c)));

    if restored.is_empty() && !reload {
        return Ok(());
    }
    let state = state.clone();
    tokio::spawn(async move {
        let _guard = guard;
        bring_back(&state, restored).await;
    });
    Ok(())
}

async fn blocking<T: Send + 'static>(
    dir: &Path,
    f: fn(&Path) -> std::io::Result<T>,
) -> std::io::Result<T> {
    let dir = dir.to_path_buf();
    tokio::task::spawn_blocking(move || f(&dir))
        .await
        .map_err(std::io::Error::other)?
}

fn forget(intent: Option<Interrupted>) {
    if let Some(change) = intent
        && let Err(e) = change.forget()
    {
        tracing::error!(unit = %change.base, error = %e, "cannot remove the change intent");
    }
}

/// Logs and audits a file that differs from its revision, once per distinct content.
async fn report_modified(
    state: &Services,
    unit: &str,
    revision: i64,
    file: &str,
    found: FileState,
) {
    let path = state.config.unit_dir.join(file);
    let what = match std::fs::read(&path) {
        Ok(bytes) if found == FileState::Modified => {
            format!(
                "edited by hand, sha256 {}",
                &hex::encode(Sha256::digest(bytes))[..16]
            )
        }
        _ => "replaced by something unitdeck did not write".to_string(),
    };
    let detail = format!(
        "{} differs from revision {revision} ({what}); left as it is",
        path.display()
    );
    left_alone(state, "unitfile.modified", unit, &detail).await;
}

/// Logs and audits (`action`, result `left-alone`) a file unitdeck leaves as it found it,
/// once per distinct finding: every start finds it again.
pub(in crate::service) async fn left_alone(
    state: &Services,
    action: &str,
    unit: &str,
    detail: &str,
) {
    tracing::warn!(unit, "{detail}");
    let known = matches!(
        state.db.last_audit_of(unit).await,
        Ok(Some((last_action, Some(last)))) if last_action == action && last == detail
    );
    if known {
        return;
    }
    let entry = AuditEntry {
        actor: ACTOR,
        action,
        target: Some(unit),
        result: "left-alone",
        detail: Some(detail),
    };
    if let Err(e) = state.db.audit(entry).await {
        tracing::error!(error = %e, action, "cannot audit a file left alone");
    }
}

/// Once the bus is up: reloads systemd, then enables and starts each restored unit as
/// unitdeck last knew it, and records the outcome on its `unitfile.restore` record.
async fn bring_back(state: &Services, restored: Vec<Restored>) {
    let reloaded = if state.systemd.wait_connected(Duration::from_secs(60)).await {
        state
            .systemd
            .daemon_reload()
            .await
            .map_err(|e| e.to_string())
    } else {
        Err("the system bus did not come up within 60 s".to_string())
    };
    if let Err(e) = &reloaded {
        tracing::error!(error = %e, "reload after restoring unit files failed");
    }
    let principal = Principal {
        actor: ACTOR.to_string(),
        scope: Scope::Admin,
        credential: Credential::Internal,
    };
    for unit in restored {
        let (result, outcome) = match &reloaded {
            Ok(()) => match resume(state, &principal, &unit).await {
                Ok(done) => ("ok", done),
                Err(e) => ("failed", e),
            },
            Err(e) => ("failed", format!("systemd did not reload: {e}")),
        };
        let detail = format!("{}; {outcome}", unit.detail);
        if let Err(e) = state
            .db
            .set_audit_result(unit.audit, result, Some(&detail))
            .await
        {
            tracing::error!(error = %e, "cannot record a restore's outcome");
        }
    }
}

/// Enables and starts a restored unit as the audit log last saw it (what the spec asked
/// for when it holds nothing since the unit was created): enabled if its last enable or
/// disable was an enable; started if it is enabled (a boot would have started it) or
/// its last start, restart or stop was not a stop.
async fn resume(
    state: &Services,
    principal: &Principal,
    unit: &Restored,
) -> Result<String, String> {
    let primary = unit.spec.primary_unit();
    let last = async |actions: &[&str]| {
        state
            .db
            .last_done_action(&primary, &unit.created_at, actions)
            .await
            .map_err(|e| format!("cannot read the audit log: {e}"))
    };
    let enable = last(&["unit.enable", "unit.disable"])
        .await?
        .map_or(unit.spec.enable, |a| a == "unit.enable");
    let running = last(&["unit.start", "unit.restart", "unit.stop"])
        .await?
        .map_or(unit.spec.start, |a| a != "unit.stop");
    state
        .systemd
        .refresh_unit(&primary)
        .await
        .map_err(|e| format!("{primary}: {e}"))?;
    let summary = state.systemd.summary(&primary);
    let mut done = Vec::new();
    let enabled = summary
        .as_ref()
        .and_then(|s| s.unit_file_state.as_deref())
        .is_some_and(|s| s == "enabled");
    if enable && !enabled {
        state.act(principal, &primary, UnitAction::Enable).await?;
        done.push(format!("{primary} enabled"));
    }
    let at_rest = summary.is_some_and(|s| is_at_rest(s.active_state.as_deref()));
    if (enable || running) && at_rest {
        let job = state.act(principal, &primary, UnitAction::Start).await?;
        let result = job.result.map_or("queued", |r| r.as_str());
        if result != "done" {
            return Err(format!("start {primary}: {result}; see its log"));
        }
        done.push(format!("{primary} started"));
    }
    Ok(if done.is_empty() {
        format!("{primary} left as it was (enable={enable}, running={running})")
    } else {
        done.join(", ")
    })
}
