//! At start the database is the source of truth for unitdeck's drop-ins, as for its unit
//! files (`unit_files::restore`):
//!
//! - a drop-in change a crash interrupted (its intent is still in `UNIT.d/`) is settled:
//!   the file goes back to the committed revision (removed when that is a removal or
//!   there is none), so it is always the old or the new drop-in, never a part;
//! - a drop-in that is missing (a recreated container: `/etc` is the image's again) is
//!   written again from its revision;
//! - one that differs from its revision (edited or replaced by hand) is never overwritten:
//!   it is reported in the log and the audit log (`override.modified`).
//!
//! Each write is audited (`override.restore`, `pending` until systemd has reloaded). This
//! runs before unitdeck serves, so no request's change interleaves with it.

use std::collections::{BTreeMap, BTreeSet};
use std::time::Duration;

use crate::db::AuditEntry;
use crate::service::Services;
use crate::service::unit_files::{ACTOR, left_alone};

const MODIFIED: &str = "override.modified";
use crate::unitfile::install::{self, Interrupted, OnDisk};

/// Settles interrupted drop-in changes, writes missing drop-ins again and reports
/// modified ones; then (in the background, once the bus is up) reloads systemd.
pub async fn reconcile_on_start(state: &Services) -> anyhow::Result<()> {
    let dir = state.config.unit_dir.clone();
    let scan = dir.clone();
    let mut settle: BTreeMap<String, Interrupted> =
        match tokio::task::spawn_blocking(move || install::interrupted_drop_ins(&scan)).await? {
            Ok(found) => found.into_iter().collect(),
            Err(e) => {
                tracing::error!(error = %e, "cannot look for interrupted drop-in changes");
                BTreeMap::new()
            }
        };
    let mut units: BTreeSet<String> = settle.keys().cloned().collect();
    let mut current: BTreeMap<String, (i64, Option<String>)> = BTreeMap::new();
    for row in state.db.list_overrides().await? {
        let text = state
            .db
            .override_revision(&row.unit, row.revision)
            .await?
            .and_then(|r| r.text);
        units.insert(row.unit.clone());
        current.insert(row.unit, (row.revision, text));
    }
    let mut written: Vec<(i64, String)> = Vec::new();
    for unit in units {
        let intent = settle.remove(&unit);
        let (revision, text) = current.remove(&unit).unwrap_or((0, None));
        let disk = match install::drop_in_on_disk(&dir, &unit) {
            Ok(Ok(disk)) => disk,
            Ok(Err(why)) => {
                left_alone(state, MODIFIED, &unit, &format!("{why}; left as it is")).await;
                forget(intent);
                continue;
            }
            Err(e) => {
                tracing::error!(unit, error = %e, "cannot read a drop-in directory");
                continue;
            }
        };
        let path = install::drop_in_path(&dir, &unit);
        let interrupted = intent.is_some();
        let put_back: Option<(Option<&str>, &str)> = match (&text, &disk) {
            (Some(t), OnDisk::Ours(on_disk)) if on_disk == t => None,
            (Some(t), OnDisk::Absent) if interrupted => Some((
                Some(t),
                "a change was interrupted before its revision was recorded",
            )),
            (Some(t), OnDisk::Absent) => Some((
                Some(t),
                "missing: the container was recreated, or it was deleted by hand",
            )),
            (Some(t), OnDisk::Ours(_)) if interrupted => Some((
                Some(t),
                "a change was interrupted before its revision was recorded",
            )),
            (None, OnDisk::Ours(_)) if interrupted => Some((
                None,
                "a change was interrupted before its revision was recorded; there is no override",
            )),
            (Some(_), _) => {
                let detail = format!(
                    "{} differs from revision {revision} (edited or replaced by hand); left as it is",
                    path.display()
                );
                left_alone(state, MODIFIED, &unit, &detail).await;
                None
            }
            (None, _) => None,
        };
        let Some((write, why)) = put_back else {
            forget(intent);
            continue;
        };
        let detail = format!("revision {revision}: {} put back ({why})", path.display());
        // Recorded before the file changes, like every change.
        let audit = state
            .db
            .audit(AuditEntry {
                actor: ACTOR,
                action: "override.restore",
                target: Some(&unit),
                result: "pending",
                detail: Some(&detail),
            })
            .await?;
        let (owned_dir, owned_unit, owned) = (dir.clone(), unit.clone(), write.map(String::from));
        let done = tokio::task::spawn_blocking(move || {
            let installed = install::install_drop_in(&owned_dir, &owned_unit, owned.as_deref())?;
            drop(installed);
            if owned.is_none() {
                install::remove_empty_drop_in_dir(&owned_dir, &owned_unit)?;
            }
            Ok::<_, std::io::Error>(())
        })
        .await?;
        match done {
            Ok(()) => {
                forget(intent);
                tracing::warn!(unit, "{detail}");
                written.push((audit, detail));
            }
            Err(e) => {
                tracing::error!(unit, error = %e, "cannot restore a drop-in");
                let detail = format!("{detail}; cannot write it: {e}");
                let _ = state
                    .db
                    .set_audit_result(audit, "failed", Some(&detail))
                    .await;
            }
        }
    }
    // Intents of units the database knows nothing of and whose file is gone.
    settle.into_values().for_each(|c| forget(Some(c)));
    if written.is_empty() {
        return Ok(());
    }
    let state = state.clone();
    tokio::spawn(async move {
        let reloaded = if state.systemd.wait_connected(Duration::from_secs(60)).await {
            state
                .systemd
                .daemon_reload()
                .await
                .map_err(|e| e.to_string())
        } else {
            Err("the system bus did not come up within 60 s".to_string())
        };
        for (audit, detail) in written {
            let (result, detail) = match &reloaded {
                Ok(()) => (
                    "ok",
                    format!("{detail}; systemd reloaded (restart the unit to apply it)"),
                ),
                Err(e) => ("failed", format!("{detail}; systemd did not reload: {e}")),
            };
            if let Err(e) = state
                .db
                .set_audit_result(audit, result, Some(&detail))
                .await
            {
                tracing::error!(error = %e, "cannot record a drop-in restore's outcome");
            }
        }
    });
    Ok(())
}

fn forget(intent: Option<Interrupted>) {
    if let Some(change) = intent
        && let Err(e) = change.forget()
    {
        tracing::error!(error = %e, "cannot remove a drop-in change's intent");
    }
}
