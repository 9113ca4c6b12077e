//! SQLite through sqlx: the pool, migrations, and every query unitdeck runs.

use std::path::Path;
use std::str::FromStr;
use std::time::Duration;

use serde::Serialize;
use sqlx::sqlite::{SqliteConnectOptions, SqliteJournalMode, SqlitePoolOptions, SqliteSynchronous};
use sqlx::{Row, SqlitePool};
use utoipa::ToSchema;

use crate::auth::Scope;

#[derive(Clone)]
pub struct Db {
    pool: SqlitePool,
}

/// Current time as stored and served: RFC 3339, microseconds, UTC.
pub fn now_rfc3339() -> String {
    chrono::Utc::now().to_rfc3339_opts(chrono::SecondsFormat::Micros, true)
}

fn now_unix() -> i64 {
    chrono::Utc::now().timestamp()
}

#[derive(Debug, Clone, Serialize, ToSchema)]
pub struct TokenInfo {
    pub id: i64,
    pub name: String,
    pub scope: Scope,
    pub created_at: String,
    pub last_used_at: Option<String>,
}

#[derive(Debug, Clone, Serialize, ToSchema)]
pub struct AuditRecord {
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

    // --- sessions -------------------------------------------------------------

    pub async fn create_session(&self, id_hash: &str, ttl: Duration) -> sqlx::Result<()> {
        let now = now_rfc3339();
        sqlx::query(
            "INSERT INTO sessions (id_hash, created_at, last_seen_at, expires_at) VALUES (?, ?, ?, ?)",
        )
        .bind(id_hash)
        .bind(&now)
        .bind(&now)
        .bind(now_unix() + ttl.as_secs() as i64)
        .execute(&self.pool)
        .await?;
        Ok(())
    }

    /// True when the session exists and has not expired.
    pub async fn session_is_valid(&self, id_hash: &str) -> sqlx::Result<bool> {
        let found: Option<i64> =
            sqlx::query_scalar("SELECT 1 FROM sessions WHERE id_hash = ? AND expires_at > ?")
                .bind(id_hash)
                .bind(now_unix())
                .fetch_optional(&self.pool)
                .await?;
        Ok(found.is_some())
    }

    pub async fn delete_session(&self, id_hash: &str) -> sqlx::Result<bool> {
        let done = sqlx::query("DELETE FROM sessions WHERE id_hash = ?")
            .bind(id_hash)
            .execute(&self.pool)
            .await?;
        Ok(done.rows_affected() > 0)
    }

    pub async fn delete_expired_sessions(&self) -> sqlx::Result<u64> {
        let done = sqlx::query("DELETE FROM sessions WHERE expires_at <= ?")
            .bind(now_unix())
            .execute(&self.pool)
            .await?;
        Ok(done.rows_affected())
    }

    // --- tokens ---------------------------------------------------------------

    pub async fn create_token(
        &self,
        name: &str,
        scope: Scope,
        secret_hash: &str,
    ) -> sqlx::Result<TokenInfo> {
        let created_at = now_rfc3339();
        let id: i64 = sqlx::query_scalar(
            "INSERT INTO tokens (name, scope, secret_hash, created_at) VALUES (?, ?, ?, ?) RETURNING id",
        )
        .bind(name)
        .bind(scope.as_str())
        .bind(secret_hash)
        .bind(&created_at)
        .fetch_one(&self.pool)
        .await?;
        Ok(TokenInfo {
            id,
            name: name.to_string(),
            scope,
            created_at,
            last_used_at: None,
        })
    }

    pub async fn list_tokens(&self) -> sqlx::Result<Vec<TokenInfo>> {
        let rows = sqlx::query(
            "SELECT id, name, scope, created_at, last_used_at FROM tokens ORDER BY id",
        )
        .fetch_all(&self.pool)
        .await?;
        Ok(rows.iter().map(token_from_row).collect())
    }

    /// Finds a token by the hash of its secret and notes its use.
    pub async fn find_token(&self, secret_hash: &str) -> sqlx::Result<Option<TokenInfo>> {
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

    pub async fn delete_token(&self, id: i64) -> sqlx::Result<Option<TokenInfo>> {
        let row = sqlx::query(
            "DELETE FROM tokens WHERE id = ? RETURNING id, name, scope, created_at, last_used_at",
        )
        .bind(id)
        .fetch_optional(&self.pool)
        .await?;
        Ok(row.as_ref().map(token_from_row))
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

    /// Newest first, at most `limit`, only ids below `before` when given.
    pub async fn audit_page(&self, limit: u32, before: Option<i64>) -> sqlx::Result<Vec<AuditRecord>> {
        let rows = sqlx::query(
            "SELECT id, time, actor, action, target, result, detail FROM audit \
             WHERE id < ? ORDER BY id DESC LIMIT ?",
        )
        .bind(before.unwrap_or(i64::MAX))
        .bind(limit)
        .fetch_all(&self.pool)
        .await?;
        Ok(rows
            .iter()
            .map(|r| AuditRecord {
                id: r.get("id"),
                time: r.get("time"),
                actor: r.get("actor"),
                action: r.get("action"),
                target: r.get("target"),
                result: r.get("result"),
                detail: r.get("detail"),
            })
            .collect())
    }
}

fn token_from_row(r: &sqlx::sqlite::SqliteRow) -> TokenInfo {
    let scope: String = r.get("scope");
    TokenInfo {
        id: r.get("id"),
        name: r.get("name"),
        // The CHECK constraint keeps the column to the three known scopes.
        scope: scope.parse().unwrap_or(Scope::Read),
        created_at: r.get("created_at"),
        last_used_at: r.get("last_used_at"),
    }
}
