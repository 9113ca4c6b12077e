//! Pinned units: the ones the dashboard shows first. unitdeck has one login user, so the
//! pins are stored once, on the server (the `settings` table), and every browser and
//! phone that logs in sees the same ones. Read on every rendered row: kept in memory.

use std::sync::{Arc, RwLock};

use crate::auth::Principal;
use crate::db::{AuditEntry, Db};
use crate::error::{AppError, AppResult};
use crate::service::Services;
use crate::service::units::checked_unit_name;

const SETTING: &str = "pinned_units";
/// A dashboard's worth; more is a mistake or abuse.
pub const MAX_PINS: usize = 50;

/// The pinned unit names in the order they were pinned.
#[derive(Clone, Default)]
pub(super) struct Pins {
    names: Arc<RwLock<Vec<String>>>,
    /// One change at a time: read, change, store and publish as a whole.
    writing: Arc<tokio::sync::Mutex<()>>,
}

impl Pins {
    pub(super) async fn load(db: &Db) -> anyhow::Result<Self> {
        let names = match db.setting(SETTING).await? {
            Some(json) => serde_json::from_str(&json).unwrap_or_else(|e| {
                tracing::warn!(error = %e, "the pinned units setting is unreadable: none pinned");
                Vec::new()
            }),
            None => Vec::new(),
        };
        Ok(Self {
            names: Arc::new(RwLock::new(names)),
            writing: Default::default(),
        })
    }

    fn read(&self) -> std::sync::RwLockReadGuard<'_, Vec<String>> {
        self.names.read().unwrap_or_else(|e| e.into_inner())
    }
}

impl Services {
    pub fn pinned_units(&self) -> Vec<String> {
        self.pins.read().clone()
    }

    pub fn is_pinned(&self, name: &str) -> bool {
        self.pins.read().iter().any(|n| n == name)
    }

    /// Pins or unpins a unit (by name: it need not be loaded now); audited. Answers the pins.
    pub async fn set_pinned(
        &self,
        principal: &Principal,
        name: &str,
        pinned: bool,
    ) -> AppResult<Vec<String>> {
        let name = checked_unit_name(name)?;
        let _one_at_a_time = self.pins.writing.lock().await;
        let mut names = self.pinned_units();
        let was = names.iter().any(|n| n == name);
        if was == pinned {
            return Ok(names);
        }
        if pinned {
            if names.len() >= MAX_PINS {
                return Err(AppError::Conflict(format!(
                    "{MAX_PINS} units are pinned already: unpin one first"
                )));
            }
            names.push(name.to_string());
        } else {
            names.retain(|n| n != name);
        }
        let json = serde_json::to_string(&names).map_err(AppError::internal)?;
        self.db
            .set_setting(
                SETTING,
                &json,
                Some(&AuditEntry {
                    actor: &principal.actor,
                    action: if pinned { "unit.pin" } else { "unit.unpin" },
                    target: Some(name),
                    result: "done",
                    detail: None,
                }),
            )
            .await?;
        *self.pins.names.write().unwrap_or_else(|e| e.into_inner()) = names.clone();
        Ok(names)
    }
}
