//! Notification channels (each change with its audit row), the deliveries made, and the
//! triggers of runs the journal cannot tell (a timer's, unitdeck's own).

use super::{AuditEntry, Db, insert_audit, now_rfc3339};

/// Deliveries kept: older ones are dropped as new ones come.
const KEEP_DELIVERIES: i64 = 5000;
/// Run triggers kept (a timer firing every minute for a week).
const KEEP_TRIGGERS: i64 = 10_000;

/// A row of `notification_channels`.
#[derive(Debug, Clone, sqlx::FromRow)]
pub struct ChannelRow {
    pub id: i64,
    pub name: String,
    pub kind: String,
    pub url: String,
    pub enabled: bool,
    /// JSON array of event names.
    pub events: String,
    /// JSON array of unit names; empty: every unit.
    pub units: String,
    pub cooldown_s: i64,
    pub created_at: String,
    pub updated_at: String,
}

/// A channel as written (a new one, or the new contents of one).
#[derive(Debug, Clone)]
pub struct NewChannel<'a> {
    pub name: &'a str,
    pub kind: &'a str,
    pub url: &'a str,
    pub enabled: bool,
    pub events: &'a str,
    pub units: &'a str,
    pub cooldown_s: i64,
}

/// A query returning channel rows.
type ChannelQuery<'q> =
    sqlx::query::QueryAs<'q, sqlx::Sqlite, ChannelRow, sqlx::sqlite::SqliteArguments>;

impl<'a> NewChannel<'a> {
    /// Binds the columns a change writes, in the order the statements name them.
    fn bind<'q>(&self, query: ChannelQuery<'q>) -> ChannelQuery<'q>
    where
        'a: 'q,
    {
        query
            .bind(self.name)
            .bind(self.kind)
            .bind(self.url)
            .bind(self.enabled)
            .bind(self.events)
            .bind(self.units)
            .bind(self.cooldown_s)
    }

    /// What the audit log says of a channel: everything but its URL (a secret).
    fn audit_detail(&self) -> String {
        format!(
            "name={} kind={} enabled={} events={} units={} cooldown_s={}",
            self.name, self.kind, self.enabled, self.events, self.units, self.cooldown_s
        )
    }
}

/// A row of `notification_deliveries`.
#[derive(Debug, Clone, sqlx::FromRow)]
pub struct DeliveryRow {
    pub id: i64,
    pub channel_id: Option<i64>,
    pub channel_name: String,
    pub event: String,
    pub unit: Option<String>,
    pub invocation_id: Option<String>,
    pub time: String,
    pub status: String,
    pub http_status: Option<i64>,
    pub attempts: i64,
    pub error: Option<String>,
}

/// How a delivery stands after an attempt.
#[derive(Debug, Clone)]
pub struct DeliveryState<'a> {
    pub status: &'a str,
    pub http_status: Option<u16>,
    pub attempts: u32,
    pub error: Option<&'a str>,
}

/// The columns of a [`ChannelRow`], for `concat!` (sqlx takes only static SQL).
macro_rules! channel_columns {
    () => {
        "id, name, kind, url, enabled, events, units, cooldown_s, created_at, updated_at"
    };
}

impl Db {
    pub async fn list_channels(&self) -> sqlx::Result<Vec<ChannelRow>> {
        sqlx::query_as(concat!(
            "SELECT ",
            channel_columns!(),
            " FROM notification_channels ORDER BY id"
        ))
        .fetch_all(&self.pool)
        .await
    }

    /// Creates a channel and its `notification.channel.create` audit row together.
    pub async fn create_channel(
        &self,
        channel: &NewChannel<'_>,
        actor: &str,
    ) -> sqlx::Result<ChannelRow> {
        let now = now_rfc3339();
        let mut tx = self.pool.begin().await?;
        let row: ChannelRow = channel
            .bind(sqlx::query_as(concat!(
                "INSERT INTO notification_channels \
                 (name, kind, url, enabled, events, units, cooldown_s, created_at, updated_at) \
                 VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?) RETURNING ",
                channel_columns!()
            )))
            .bind(&now)
            .bind(&now)
            .fetch_one(&mut *tx)
            .await?;
        let detail = channel.audit_detail();
        audit_channel(&mut tx, actor, "create", row.id, &detail).await?;
        tx.commit().await?;
        Ok(row)
    }

    /// Replaces a channel's contents, with its `notification.channel.update` audit row;
    /// None (and nothing written) when there is no such channel.
    pub async fn update_channel(
        &self,
        id: i64,
        channel: &NewChannel<'_>,
        actor: &str,
    ) -> sqlx::Result<Option<ChannelRow>> {
        let mut tx = self.pool.begin().await?;
        let row: Option<ChannelRow> = channel
            .bind(sqlx::query_as(concat!(
                "UPDATE notification_channels SET name = ?, kind = ?, url = ?, enabled = ?, \
                 events = ?, units = ?, cooldown_s = ?, updated_at = ? WHERE id = ? RETURNING ",
                channel_columns!()
            )))
            .bind(now_rfc3339())
            .bind(id)
            .fetch_optional(&mut *tx)
            .await?;
        if row.is_none() {
            tx.rollback().await?;
            return Ok(None);
        }
        audit_channel(&mut tx, actor, "update", id, &channel.audit_detail()).await?;
        tx.commit().await?;
        Ok(row)
    }

    /// Deletes a channel with its `notification.channel.delete` audit row; None when
    /// there was none (nothing written). Its deliveries stay.
    pub async fn delete_channel(&self, id: i64, actor: &str) -> sqlx::Result<Option<ChannelRow>> {
        let mut tx = self.pool.begin().await?;
        let row: Option<ChannelRow> = sqlx::query_as(concat!(
            "DELETE FROM notification_channels WHERE id = ? RETURNING ",
            channel_columns!()
        ))
        .bind(id)
        .fetch_optional(&mut *tx)
        .await?;
        let Some(row) = row else {
            tx.rollback().await?;
            return Ok(None);
        };
        audit_channel(&mut tx, actor, "delete", id, &format!("name={}", row.name)).await?;
        tx.commit().await?;
        Ok(Some(row))
    }

    /// Records a delivery after its first attempt; its id. The oldest records beyond
    /// [`KEEP_DELIVERIES`] go.
    pub async fn insert_delivery(
        &self,
        channel: (i64, &str),
        event: &str,
        unit: Option<&str>,
        invocation_id: Option<&str>,
        state: &DeliveryState<'_>,
    ) -> sqlx::Result<i64> {
        let mut tx = self.pool.begin().await?;
        let id: i64 = sqlx::query_scalar(
            "INSERT INTO notification_deliveries (channel_id, channel_name, event, unit, \
             invocation_id, time, status, http_status, attempts, error) \
             VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?) RETURNING id",
        )
        .bind(channel.0)
        .bind(channel.1)
        .bind(event)
        .bind(unit)
        .bind(invocation_id)
        .bind(now_rfc3339())
        .bind(state.status)
        .bind(state.http_status)
        .bind(state.attempts)
        .bind(state.error)
        .fetch_one(&mut *tx)
        .await?;
        sqlx::query("DELETE FROM notification_deliveries WHERE id <= ?")
            .bind(id - KEEP_DELIVERIES)
            .execute(&mut *tx)
            .await?;
        tx.commit().await?;
        Ok(id)
    }

    /// The outcome of a delivery's later attempt.
    pub async fn update_delivery(&self, id: i64, state: &DeliveryState<'_>) -> sqlx::Result<()> {
        sqlx::query(
            "UPDATE notification_deliveries SET status = ?, http_status = ?, attempts = ?, \
             error = ? WHERE id = ?",
        )
        .bind(state.status)
        .bind(state.http_status)
        .bind(state.attempts)
        .bind(state.error)
        .bind(id)
        .execute(&self.pool)
        .await?;
        Ok(())
    }

    /// The newest deliveries first.
    pub async fn deliveries(&self, limit: u32) -> sqlx::Result<Vec<DeliveryRow>> {
        sqlx::query_as(
            "SELECT id, channel_id, channel_name, event, unit, invocation_id, time, status, \
             http_status, attempts, error FROM notification_deliveries ORDER BY id DESC LIMIT ?",
        )
        .bind(limit)
        .fetch_all(&self.pool)
        .await
    }

    /// Remembers what started a run (`timer` or `manual`); the oldest beyond
    /// [`KEEP_TRIGGERS`] go.
    pub async fn record_trigger(
        &self,
        invocation_id: &str,
        unit: &str,
        trigger: &str,
    ) -> sqlx::Result<()> {
        let mut tx = self.pool.begin().await?;
        let rowid: i64 = sqlx::query_scalar(
            "INSERT INTO run_triggers (invocation_id, unit, trigger, recorded_at) \
             VALUES (?, ?, ?, ?) ON CONFLICT (invocation_id) DO UPDATE SET trigger = excluded.trigger \
             RETURNING rowid",
        )
        .bind(invocation_id)
        .bind(unit)
        .bind(trigger)
        .bind(now_rfc3339())
        .fetch_one(&mut *tx)
        .await?;
        sqlx::query("DELETE FROM run_triggers WHERE rowid <= ?")
            .bind(rowid - KEEP_TRIGGERS)
            .execute(&mut *tx)
            .await?;
        tx.commit().await
    }

    /// The recorded triggers of `unit`'s runs among `invocations`: (invocation, trigger).
    pub async fn run_triggers(
        &self,
        unit: &str,
        invocations: &[&str],
    ) -> sqlx::Result<Vec<(String, String)>> {
        let ids = serde_json::to_string(invocations).unwrap_or_default();
        sqlx::query_as(
            "SELECT invocation_id, trigger FROM run_triggers WHERE unit = ? \
             AND invocation_id IN (SELECT value FROM json_each(?))",
        )
        .bind(unit)
        .bind(ids)
        .fetch_all(&self.pool)
        .await
    }
}

/// The audit row of a channel change (`notification.channel.<change>`), in its transaction.
async fn audit_channel(
    tx: &mut sqlx::Transaction<'_, sqlx::Sqlite>,
    actor: &str,
    change: &str,
    id: i64,
    detail: &str,
) -> sqlx::Result<()> {
    let action = format!("notification.channel.{change}");
    let target = format!("channel:{id}");
    insert_audit(
        tx,
        &AuditEntry {
            actor,
            action: &action,
            target: Some(&target),
            result: "ok",
            detail: Some(detail),
        },
    )
    .await
}
