//! SQLite through sqlx: the pool, migrations, and every query unitdeck runs.

use std::path::Path;
use std::str::FromStr;
use std::time::Duration;

use sqlx::sqlite::{SqliteConnectOptions, SqliteJournalMode, SqlitePoolOptions, SqliteSynchronous};
use sqlx::{Row, SqlitePool};

use crate::auth::Scope;

mod notifications;

pub use notifications::{ChannelRow, DeliveryRow, DeliveryState, NewChannel};

#[derive(Clone)]
pub struct Db {
    pool: SqlitePool,
}

/// Current time as stored and served: RFC 3339, microseconds, UTC.
pub fn now_rfc3339() -> String {
    chrono::Utc::now().to_rfc3339_opts(chrono::SecondsFormat::Micros, true)
}

/// How stale a session's `last_seen` may get before a use writes it again (seconds), at
/// most.
const SESSION_SEEN_GRANULARITY: i64 = 60;

fn now_unix() -> i64 {
    chrono::Utc::now().timestamp()
}

/// A row of `tokens`, without its secret's hash.
#[derive(Debug, Clone)]
pub struct TokenRow {
    pub id: i64,
    pub name: String,
    pub scope: Scope,
    pub created_at: String,
    pub last_used_at: Option<String>,
}

/// A row of `audit`.
#[derive(Debug, Clone, sqlx::FromRow)]
pub struct AuditRow {
    pub id: i64,
    pub time: String,
    pub actor: String,
    pub action: String,
    pub target: Option<String>,
    pub result: String,
    pub detail: Option<String>,
}

/// What an audit row says, before it has an id and a time.
#[derive(Debug, Clone)]
pub struct AuditEntry<'a> {
    pub actor: &'a str,
    pub action: &'a str,
    pub target: Option<&'a str>,
    pub result: &'a str,
    pub detail: Option<&'a str>,
}

impl Db {
    /// Opens (creating if needed) the database in WAL mode and applies migrations.
    pub async fn open(path: &Path) -> anyhow::Result<Self> {
        let options = SqliteConnectOptions::from_str(&format!("sqlite://{}", path.display()))?
            .create_if_missing(true)
            .journal_mode(SqliteJournalMode::Wal)
            // FULL: a committed audit or revision row survives power loss, not only a crash.
            .synchronous(SqliteSynchronous::Full)
            .foreign_keys(true)
            .busy_timeout(Duration::from_secs(5));
        let pool = SqlitePoolOptions::new()
            .max_connections(4)
            .connect_with(options)
            .await?;
        sqlx::migrate!("./migrations").run(&pool).await?;
        Ok(Self { pool })
    }

    /// A database in memory (one connection: each would see its own), for tests.
    #[cfg(test)]
    pub async fn in_memory() -> anyhow::Result<Self> {
        let options = SqliteConnectOptions::from_str("sqlite::memory:")?.foreign_keys(true);
        let pool = SqlitePoolOptions::new()
            .max_connections(1)
            .connect_with(options)
            .await?;
        sqlx::migrate!("./migrations").run(&pool).await?;
        Ok(Self { pool })
    }

    pub fn pool(&self) -> &SqlitePool {
        &self.pool
    }

    // --- settings -------------------------------------------------------------

    pub async fn setting(&self, key: &str) -> sqlx::Result<Option<String>> {
        sqlx::query_scalar("SELECT value FROM settings WHERE key = ?")
            .bind(key)
            .fetch_optional(&self.pool)
            .await
    }

    /// Stores `value` only if `key` has none yet; returns whether it was stored.
    pub async fn insert_setting_if_absent(&self, key: &str, value: &str) -> sqlx::Result<bool> {
        let done = sqlx::query("INSERT OR IGNORE INTO settings (key, value) VALUES (?, ?)")
            .bind(key)
            .bind(value)
            .execute(&self.pool)
            .await?;
        Ok(done.rows_affected() == 1)
    }

    /// Stores `value` under `key`, replacing what was there, in one transaction with its
    /// audit record when the setting is a change someone made.
    pub async fn set_setting(
        &self,
        key: &str,
        value: &str,
        audit: Option<&AuditEntry<'_>>,
    ) -> sqlx::Result<()> {
        let mut tx = self.pool.begin().await?;
        upsert_setting(&mut tx, key, value).await?;
        if let Some(entry) = audit {
            insert_audit(&mut tx, entry).await?;
        }
        tx.commit().await
    }

    // --- sessions -------------------------------------------------------------

    /// Starts a session in one transaction with its `login` audit row: the session it
    /// replaces (`previous`) and expired ones go, the new one is stored. A crash never
    /// leaves a session nobody audited, nor an audited login without its session.
    pub async fn create_session(
        &self,
        id_hash: &str,
        previous: Option<&str>,
        ttl: Duration,
        audit: &AuditEntry<'_>,
    ) -> sqlx::Result<()> {
        let now = now_rfc3339();
        let mut tx = self.pool.begin().await?;
        sqlx::query("DELETE FROM sessions WHERE id_hash = ? OR expires_at <= ?")
            .bind(previous)
            .bind(now_unix())
            .execute(&mut *tx)
            .await?;
        sqlx::query(
            "INSERT INTO sessions (id_hash, created_at, last_seen_at, last_seen, expires_at) \
             VALUES (?, ?, ?, ?, ?)",
        )
        .bind(id_hash)
        .bind(&now)
        .bind(&now)
        .bind(now_unix())
        .bind(now_unix() + ttl.as_secs() as i64)
        .execute(&mut *tx)
        .await?;
        insert_audit(&mut tx, audit).await?;
        tx.commit().await
    }

    /// Ends a session (when the caller has one) and writes the `logout` audit row, in
    /// one transaction.
    pub async fn end_session(
        &self,
        id_hash: Option<&str>,
        audit: &AuditEntry<'_>,
    ) -> sqlx::Result<()> {
        let mut tx = self.pool.begin().await?;
        if let Some(id_hash) = id_hash {
            sqlx::query("DELETE FROM sessions WHERE id_hash = ?")
                .bind(id_hash)
                .execute(&mut *tx)
                .await?;
        }
        insert_audit(&mut tx, audit).await?;
        tx.commit().await
    }

    /// True when the session exists, has not expired and was used within `idle`. A use
    /// moves its idle deadline on (written at most once a minute, not on every request).
    pub async fn session_is_valid(&self, id_hash: &str, idle: Duration) -> sqlx::Result<bool> {
        let now = now_unix();
        let last_seen: Option<i64> = sqlx::query_scalar(
            "SELECT last_seen FROM sessions WHERE id_hash = ? AND expires_at > ? AND last_seen > ?",
        )
        .bind(id_hash)
        .bind(now)
        .bind(now - idle.as_secs() as i64)
        .fetch_optional(&self.pool)
        .await?;
        let Some(last_seen) = last_seen else {
            return Ok(false);
        };
        // A tenth of the idle time, at most a minute: a short idle time still slides.
        let granularity = (idle.as_secs() as i64 / 10).min(SESSION_SEEN_GRANULARITY);
        if now - last_seen >= granularity {
            sqlx::query("UPDATE sessions SET last_seen = ?, last_seen_at = ? WHERE id_hash = ?")
                .bind(now)
                .bind(now_rfc3339())
                .bind(id_hash)
                .execute(&self.pool)
                .await?;
        }
        Ok(true)
    }

    /// Ends every session with one audit row, in one transaction; how many ended.
    /// `setting` is stored in the same transaction (the password that caused it).
    pub async fn end_all_sessions(
        &self,
        audit: &AuditEntry<'_>,
        setting: Option<(&str, &str)>,
    ) -> sqlx::Result<u64> {
        let mut tx = self.pool.begin().await?;
        let done = sqlx::query("DELETE FROM sessions")
            .execute(&mut *tx)
            .await?;
        if let Some((key, value)) = setting {
            upsert_setting(&mut tx, key, value).await?;
        }
        let detail = match audit.detail {
            Some(why) => format!("{why}; {} session(s) ended", done.rows_affected()),
            None => format!("{} session(s) ended", done.rows_affected()),
        };
        insert_audit(
            &mut tx,
            &AuditEntry {
                detail: Some(&detail),
                ..audit.clone()
            },
        )
        .await?;
        tx.commit().await?;
        Ok(done.rows_affected())
    }

    // --- tokens ---------------------------------------------------------------

    /// Creates a token and its `token.create` audit row (by `actor`) in one transaction:
    /// a crash never leaves a token that nobody audited.
    pub async fn create_token(
        &self,
        name: &str,
        scope: Scope,
        secret_hash: &str,
        actor: &str,
    ) -> sqlx::Result<TokenRow> {
        let created_at = now_rfc3339();
        let mut tx = self.pool.begin().await?;
        let id: i64 = sqlx::query_scalar(
            "INSERT INTO tokens (name, scope, secret_hash, created_at) VALUES (?, ?, ?, ?) RETURNING id",
        )
        .bind(name)
        .bind(scope.as_str())
        .bind(secret_hash)
        .bind(&created_at)
        .fetch_one(&mut *tx)
        .await?;
        let target = format!("token:{id}");
        let detail = format!("name={name} scope={scope}");
        let audit = AuditEntry {
            actor,
            action: "token.create",
            target: Some(&target),
            result: "ok",
            detail: Some(&detail),
        };
        insert_audit(&mut tx, &audit).await?;
        tx.commit().await?;
        Ok(TokenRow {
            id,
            name: name.to_string(),
            scope,
            created_at,
            last_used_at: None,
        })
    }

    pub async fn list_tokens(&self) -> sqlx::Result<Vec<TokenRow>> {
        let rows =
            sqlx::query("SELECT id, name, scope, created_at, last_used_at FROM tokens ORDER BY id")
                .fetch_all(&self.pool)
                .await?;
        Ok(rows.iter().map(token_from_row).collect())
    }

    /// Finds a token by the hash of its secret and notes its use.
    pub async fn find_token(&self, secret_hash: &str) -> sqlx::Result<Option<TokenRow>> {
        let row = sqlx::query(
            "UPDATE tokens SET last_used_at = ? WHERE secret_hash = ? \
             RETURNING id, name, scope, created_at, last_used_at",
        )
        .bind(now_rfc3339())
        .bind(secret_hash)
        .fetch_optional(&self.pool)
        .await?;
        Ok(row.as_ref().map(token_from_row))
    }

    /// Deletes a token and writes its `token.revoke` audit row (by `actor`; result
    /// `not-found` when there was none) in one transaction.
    pub async fn delete_token(&self, id: i64, actor: &str) -> sqlx::Result<Option<TokenRow>> {
        let mut tx = self.pool.begin().await?;
        let row = sqlx::query(
            "DELETE FROM tokens WHERE id = ? RETURNING id, name, scope, created_at, last_used_at",
        )
        .bind(id)
        .fetch_optional(&mut *tx)
        .await?;
        let removed = row.as_ref().map(token_from_row);
        let target = format!("token:{id}");
        let detail = removed.as_ref().map(|t| format!("name={}", t.name));
        let audit = AuditEntry {
            actor,
            action: "token.revoke",
            target: Some(&target),
            result: if removed.is_some() { "ok" } else { "not-found" },
            detail: detail.as_deref(),
        };
        insert_audit(&mut tx, &audit).await?;
        tx.commit().await?;
        Ok(removed)
    }

    // --- audit ----------------------------------------------------------------

    pub async fn audit(&self, entry: AuditEntry<'_>) -> sqlx::Result<i64> {
        sqlx::query_scalar(
            "INSERT INTO audit (time, actor, action, target, result, detail) \
             VALUES (?, ?, ?, ?, ?, ?) RETURNING id",
        )
        .bind(now_rfc3339())
        .bind(entry.actor)
        .bind(entry.action)
        .bind(entry.target)
        .bind(entry.result)
        .bind(entry.detail)
        .fetch_one(&self.pool)
        .await
    }

    /// Sets the outcome of an entry written before its action ran.
    pub async fn set_audit_result(
        &self,
        id: i64,
        result: &str,
        detail: Option<&str>,
    ) -> sqlx::Result<()> {
        sqlx::query("UPDATE audit SET result = ?, detail = ? WHERE id = ?")
            .bind(result)
            .bind(detail)
            .bind(id)
            .execute(&self.pool)
            .await?;
        Ok(())
    }

    /// Marks the actions a previous run recorded and never saw finish (it was killed or
    /// crashed meanwhile) as `interrupted`: at start nothing is pending. How many.
    pub async fn close_interrupted_actions(&self) -> sqlx::Result<u64> {
        let done = sqlx::query("UPDATE audit SET result = 'interrupted' WHERE result = 'pending'")
            .execute(&self.pool)
            .await?;
        Ok(done.rows_affected())
    }

    /// The newest of `actions` on `target` at or after `since` that systemd carried out
    /// (`done`): what unitdeck last knew of a unit's enablement or run state.
    pub async fn last_done_action(
        &self,
        target: &str,
        since: &str,
        actions: &[&str],
    ) -> sqlx::Result<Option<String>> {
        let actions = serde_json::to_string(actions).unwrap_or_default();
        sqlx::query_scalar(
            "SELECT action FROM audit WHERE target = ? AND time >= ? AND result = 'done' \
             AND action IN (SELECT value FROM json_each(?)) ORDER BY id DESC LIMIT 1",
        )
        .bind(target)
        .bind(since)
        .bind(actions)
        .fetch_optional(&self.pool)
        .await
    }

    /// The newest audit row about `target`: its action and detail.
    pub async fn last_audit_of(
        &self,
        target: &str,
    ) -> sqlx::Result<Option<(String, Option<String>)>> {
        let row = sqlx::query(
            "SELECT action, detail FROM audit WHERE target = ? ORDER BY id DESC LIMIT 1",
        )
        .bind(target)
        .fetch_optional(&self.pool)
        .await?;
        Ok(row.map(|r| (r.get("action"), r.get("detail"))))
    }

    /// Newest first, at most `limit`, only ids below `before` when given.
    pub async fn audit_page(&self, limit: u32, before: Option<i64>) -> sqlx::Result<Vec<AuditRow>> {
        sqlx::query_as(
            "SELECT id, time, actor, action, target, result, detail FROM audit \
             WHERE id < ? ORDER BY id DESC LIMIT ?",
        )
        .bind(before.unwrap_or(i64::MAX))
        .bind(limit)
        .fetch_all(&self.pool)
        .await
    }
}

fn token_from_row(r: &sqlx::sqlite::SqliteRow) -> TokenRow {
    let scope: String = r.get("scope");
    TokenRow {
        id: r.get("id"),
        name: r.get("name"),
        // The CHECK constraint keeps the column to the three known scopes.
        scope: scope.parse().unwrap_or(Scope::Read),
        created_at: r.get("created_at"),
        last_used_at: r.get("last_used_at"),
    }
}

// --- unit files (created by unitdeck) ---------------------------------------------

/// A unit file unitdeck created: the current state of `unit_files`.
#[derive(Debug, Clone, sqlx::FromRow)]
pub struct UnitFileRow {
    /// The service file, e.g. `shop-api.service` (also for a job).
    pub name: String,
    /// `service` or `job`.
    pub kind: String,
    /// The revision currently installed.
    pub revision: i64,
    pub created_at: String,
    pub updated_at: String,
}

/// One entry of a unit file's history (without its contents).
#[derive(Debug, Clone, sqlx::FromRow)]
pub struct RevisionRow {
    pub revision: i64,
    pub created_at: String,
    pub actor: String,
}

/// One stored revision with its spec and files, as JSON text.
#[derive(Debug, Clone, sqlx::FromRow)]
pub struct StoredRevision {
    pub revision: i64,
    pub spec: String,
    pub files: String,
    pub created_at: String,
    pub actor: String,
}

/// A revision to commit: a new unit (`previous` = None) or the next revision of one.
#[derive(Debug, Clone)]
pub struct NewRevision<'a> {
    pub name: &'a str,
    pub kind: &'a str,
    pub spec: &'a str,
    pub files: &'a str,
    pub actor: &'a str,
    /// The revision the change was based on; the commit fails if it moved meanwhile.
    pub previous: Option<i64>,
}

impl Db {
    pub async fn list_unit_files(&self) -> sqlx::Result<Vec<UnitFileRow>> {
        sqlx::query_as(
            "SELECT name, kind, revision, created_at, updated_at FROM unit_files ORDER BY name",
        )
        .fetch_all(&self.pool)
        .await
    }

    pub async fn unit_file(&self, name: &str) -> sqlx::Result<Option<UnitFileRow>> {
        sqlx::query_as(
            "SELECT name, kind, revision, created_at, updated_at FROM unit_files WHERE name = ?",
        )
        .bind(name)
        .fetch_optional(&self.pool)
        .await
    }

    /// The history of a unit file, newest first.
    pub async fn unit_file_revisions(&self, name: &str) -> sqlx::Result<Vec<RevisionRow>> {
        sqlx::query_as(
            "SELECT revision, created_at, actor FROM unit_file_revisions \
             WHERE name = ? ORDER BY revision DESC",
        )
        .bind(name)
        .fetch_all(&self.pool)
        .await
    }

    pub async fn unit_file_revision(
        &self,
        name: &str,
        revision: i64,
    ) -> sqlx::Result<Option<StoredRevision>> {
        sqlx::query_as(
            "SELECT revision, spec, files, created_at, actor FROM unit_file_revisions \
             WHERE name = ? AND revision = ?",
        )
        .bind(name)
        .bind(revision)
        .fetch_optional(&self.pool)
        .await
    }

    /// Records a new revision and its audit row in one transaction; returns the revision
    /// number, or None when the unit already exists (create) or moved on (update).
    pub async fn commit_unit_file_revision(
        &self,
        rev: NewRevision<'_>,
        audit: AuditEntry<'_>,
    ) -> sqlx::Result<Option<i64>> {
        let now = now_rfc3339();
        let mut tx = self.pool.begin().await?;
        let revision: Option<i64> = match rev.previous {
            None => {
                sqlx::query_scalar(
                    "INSERT INTO unit_files (name, kind, revision, created_at, updated_at) \
                     VALUES (?, ?, 1, ?, ?) ON CONFLICT (name) DO NOTHING RETURNING revision",
                )
                .bind(rev.name)
                .bind(rev.kind)
                .bind(&now)
                .bind(&now)
                .fetch_optional(&mut *tx)
                .await?
            }
            Some(previous) => {
                sqlx::query_scalar(
                    "UPDATE unit_files SET revision = revision + 1, kind = ?, updated_at = ? \
                     WHERE name = ? AND revision = ? RETURNING revision",
                )
                .bind(rev.kind)
                .bind(&now)
                .bind(rev.name)
                .bind(previous)
                .fetch_optional(&mut *tx)
                .await?
            }
        };
        let Some(revision) = revision else {
            tx.rollback().await?;
            return Ok(None);
        };
        sqlx::query(
            "INSERT INTO unit_file_revisions (name, revision, spec, files, created_at, actor) \
             VALUES (?, ?, ?, ?, ?, ?)",
        )
        .bind(rev.name)
        .bind(revision)
        .bind(rev.spec)
        .bind(rev.files)
        .bind(&now)
        .bind(rev.actor)
        .execute(&mut *tx)
        .await?;
        insert_audit(&mut tx, &audit).await?;
        tx.commit().await?;
        Ok(Some(revision))
    }

    /// Removes a unit file and its history, with its audit row, in one transaction;
    /// false when it did not exist.
    pub async fn delete_unit_file(&self, name: &str, audit: AuditEntry<'_>) -> sqlx::Result<bool> {
        let mut tx = self.pool.begin().await?;
        let done = sqlx::query("DELETE FROM unit_files WHERE name = ?")
            .bind(name)
            .execute(&mut *tx)
            .await?;
        if done.rows_affected() == 0 {
            tx.rollback().await?;
            return Ok(false);
        }
        insert_audit(&mut tx, &audit).await?;
        tx.commit().await?;
        Ok(true)
    }
}

// --- overrides (drop-ins of units unitdeck did not create) ---------------------------

/// A unit unitdeck has overridden (or did): the current state of `overrides`.
#[derive(Debug, Clone, sqlx::FromRow)]
pub struct OverrideRow {
    /// The unit's own name, e.g. `code-server.service`.
    pub unit: String,
    /// The revision currently installed.
    pub revision: i64,
    pub created_at: String,
    pub updated_at: String,
}

/// One revision of an override; `settings` and `text` are None for a removal.
#[derive(Debug, Clone, sqlx::FromRow)]
pub struct OverrideRevisionRow {
    pub revision: i64,
    /// The override spec as JSON.
    pub settings: Option<String>,
    /// The drop-in as written.
    pub text: Option<String>,
    /// A running unit needed a restart to apply it.
    pub restart: bool,
    pub created_at: String,
    pub actor: String,
}

/// An override revision to commit: the first of a unit (`previous` = None) or the next.
#[derive(Debug, Clone)]
pub struct NewOverrideRevision<'a> {
    pub unit: &'a str,
    /// The spec and the drop-in; None for a removal.
    pub settings: Option<&'a str>,
    pub text: Option<&'a str>,
    pub restart: bool,
    pub actor: &'a str,
    /// The revision the change was based on; the commit fails if it moved meanwhile.
    pub previous: Option<i64>,
}

impl Db {
    pub async fn list_overrides(&self) -> sqlx::Result<Vec<OverrideRow>> {
        sqlx::query_as("SELECT unit, revision, created_at, updated_at FROM overrides ORDER BY unit")
            .fetch_all(&self.pool)
            .await
    }

    pub async fn override_row(&self, unit: &str) -> sqlx::Result<Option<OverrideRow>> {
        sqlx::query_as(
            "SELECT unit, revision, created_at, updated_at FROM overrides WHERE unit = ?",
        )
        .bind(unit)
        .fetch_optional(&self.pool)
        .await
    }

    /// The history of an override, newest first.
    pub async fn override_revisions(&self, unit: &str) -> sqlx::Result<Vec<OverrideRevisionRow>> {
        sqlx::query_as(
            "SELECT revision, settings, text, restart, created_at, actor FROM override_revisions \
             WHERE unit = ? ORDER BY revision DESC",
        )
        .bind(unit)
        .fetch_all(&self.pool)
        .await
    }

    pub async fn override_revision(
        &self,
        unit: &str,
        revision: i64,
    ) -> sqlx::Result<Option<OverrideRevisionRow>> {
        sqlx::query_as(
            "SELECT revision, settings, text, restart, created_at, actor FROM override_revisions \
             WHERE unit = ? AND revision = ?",
        )
        .bind(unit)
        .bind(revision)
        .fetch_optional(&self.pool)
        .await
    }

    /// Records an override revision and its audit row in one transaction; the revision
    /// number, or None when the override moved on meanwhile (or was first made by another
    /// change).
    pub async fn commit_override_revision(
        &self,
        rev: NewOverrideRevision<'_>,
        audit: AuditEntry<'_>,
    ) -> sqlx::Result<Option<i64>> {
        let now = now_rfc3339();
        let mut tx = self.pool.begin().await?;
        let revision: Option<i64> = match rev.previous {
            None => {
                sqlx::query_scalar(
                    "INSERT INTO overrides (unit, revision, created_at, updated_at) \
                     VALUES (?, 1, ?, ?) ON CONFLICT (unit) DO NOTHING RETURNING revision",
                )
                .bind(rev.unit)
                .bind(&now)
                .bind(&now)
                .fetch_optional(&mut *tx)
                .await?
            }
            Some(previous) => {
                sqlx::query_scalar(
                    "UPDATE overrides SET revision = revision + 1, updated_at = ? \
                     WHERE unit = ? AND revision = ? RETURNING revision",
                )
                .bind(&now)
                .bind(rev.unit)
                .bind(previous)
                .fetch_optional(&mut *tx)
                .await?
            }
        };
        let Some(revision) = revision else {
            tx.rollback().await?;
            return Ok(None);
        };
        sqlx::query(
            "INSERT INTO override_revisions \
             (unit, revision, settings, text, restart, created_at, actor) \
             VALUES (?, ?, ?, ?, ?, ?, ?)",
        )
        .bind(rev.unit)
        .bind(revision)
        .bind(rev.settings)
        .bind(rev.text)
        .bind(rev.restart)
        .bind(&now)
        .bind(rev.actor)
        .execute(&mut *tx)
        .await?;
        insert_audit(&mut tx, &audit).await?;
        tx.commit().await?;
        Ok(Some(revision))
    }
}

async fn upsert_setting(
    tx: &mut sqlx::Transaction<'_, sqlx::Sqlite>,
    key: &str,
    value: &str,
) -> sqlx::Result<()> {
    sqlx::query(
        "INSERT INTO settings (key, value) VALUES (?, ?) \
         ON CONFLICT (key) DO UPDATE SET value = excluded.value",
    )
    .bind(key)
    .bind(value)
    .execute(&mut **tx)
    .await?;
    Ok(())
}

async fn insert_audit(
    tx: &mut sqlx::Transaction<'_, sqlx::Sqlite>,
    entry: &AuditEntry<'_>,
) -> sqlx::Result<()> {
    sqlx::query(
        "INSERT INTO audit (time, actor, action, target, result, detail) VALUES (?, ?, ?, ?, ?, ?)",
    )
    .bind(now_rfc3339())
    .bind(entry.actor)
    .bind(entry.action)
    .bind(entry.target)
    .bind(entry.result)
    .bind(entry.detail)
    .execute(&mut **tx)
    .await?;
    Ok(())
}

#[cfg(test)]
mod tests;
