//! [`DashboardStore`] on SQLite: the dashboard's reads of the alert log and the webhook outbox.

use std::ops::Range;

use rusqlite::{OptionalExtension, params};

use hotspot_core::task::TaskId;

use super::{SqliteStore, db, select_alerts, task_of};
use crate::storage::dashboard::{AlertLogStats, DashboardStore, DeliveryRow, TaskAlertStats};
use crate::storage::{AlertRow, StoreError};

/// The webhook outbox's tables. A delivery is keyed by (endpoint, alert id) and kept after it
/// is done (`delivered_ms` set), so an alert offered again is not sent again; the per-endpoint
/// cursor says how far the alert log has been copied in.
pub(super) const MIGRATION: &str = r#"
CREATE TABLE webhook_cursors (
    endpoint TEXT PRIMARY KEY,
    through INTEGER NOT NULL
);
CREATE TABLE webhook_deliveries (
    endpoint TEXT NOT NULL,
    alert_id TEXT NOT NULL,
    cursor INTEGER NOT NULL,
    payload BLOB NOT NULL,
    attempts INTEGER NOT NULL,
    next_attempt_ms INTEGER NOT NULL,
    delivered_ms INTEGER,
    PRIMARY KEY (endpoint, alert_id)
) WITHOUT ROWID;
CREATE INDEX webhook_pending ON webhook_deliveries (endpoint, cursor) WHERE delivered_ms IS NULL;
CREATE INDEX alerts_by_window ON alerts (task, window, venue_code);
"#;

fn sql_u64(value: u64) -> i64 {
    // Cursors, windows and millisecond times stay far below 2^63.
    i64::try_from(value).unwrap_or(i64::MAX)
}

impl DashboardStore for SqliteStore {
    fn alerts_in_windows(
        &self,
        task: TaskId,
        windows: Range<u64>,
        limit: usize,
    ) -> Result<Vec<AlertRow>, StoreError> {
        let conn = self.lock();
        select_alerts(
            &conn,
            "WHERE task = ?1 AND window >= ?2 AND window < ?3 \
             ORDER BY window, venue_code, cursor LIMIT ?4",
            params![
                &task.0[..],
                sql_u64(windows.start),
                sql_u64(windows.end),
                sql_u64(limit as u64)
            ],
        )
    }

    fn alert_log_stats(&self) -> Result<AlertLogStats, StoreError> {
        let conn = self.lock();
        let mut stmt = conn
            .prepare("SELECT task, COUNT(*), MIN(window), MAX(window) FROM alerts GROUP BY task")
            .map_err(db)?;
        let rows = stmt
            .query_map([], |r| {
                Ok((
                    r.get::<_, Vec<u8>>(0)?,
                    r.get::<_, i64>(1)?,
                    r.get::<_, i64>(2)?,
                    r.get::<_, i64>(3)?,
                ))
            })
            .map_err(db)?;
        let mut tasks = Vec::new();
        for row in rows {
            let (task, count, first, last) = row.map_err(db)?;
            tasks.push(TaskAlertStats {
                task: task_of(task, "alerts")?,
                count: count as u64,
                first_window: first as u64,
                last_window: last as u64,
            });
        }
        let last_cursor: Option<i64> = conn
            .query_row("SELECT MAX(cursor) FROM alerts", [], |r| r.get(0))
            .map_err(db)?;
        Ok(AlertLogStats {
            tasks,
            last_cursor: last_cursor.unwrap_or(0) as u64,
        })
    }

    fn outbox_through(&self, endpoint: &str) -> Result<u64, StoreError> {
        let conn = self.lock();
        let through: Option<i64> = conn
            .query_row(
                "SELECT through FROM webhook_cursors WHERE endpoint = ?1",
                [endpoint],
                |r| r.get(0),
            )
            .optional()
            .map_err(db)?;
        Ok(through.unwrap_or(0) as u64)
    }

    fn outbox_enqueue(
        &self,
        endpoint: &str,
        rows: &[DeliveryRow],
        through: u64,
    ) -> Result<(), StoreError> {
        let mut conn = self.lock();
        let tx = conn.transaction().map_err(db)?;
        {
            let mut insert = tx
                .prepare_cached(
                    "INSERT OR IGNORE INTO webhook_deliveries \
                     (endpoint, alert_id, cursor, payload, attempts, next_attempt_ms) \
                     VALUES (?1, ?2, ?3, ?4, 0, 0)",
                )
                .map_err(db)?;
            for row in rows {
                insert
                    .execute(params![
                        endpoint,
                        row.alert_id,
                        sql_u64(row.cursor),
                        row.payload
                    ])
                    .map_err(db)?;
            }
        }
        tx.execute(
            "INSERT INTO webhook_cursors (endpoint, through) VALUES (?1, ?2) \
             ON CONFLICT (endpoint) DO UPDATE SET through = MAX(through, excluded.through)",
            params![endpoint, sql_u64(through)],
        )
        .map_err(db)?;
        tx.commit().map_err(db)
    }

    fn outbox_due(
        &self,
        endpoint: &str,
        now_ms: u64,
        limit: usize,
    ) -> Result<Vec<DeliveryRow>, StoreError> {
        let conn = self.lock();
        let mut stmt = conn
            .prepare_cached(
                "SELECT alert_id, cursor, payload, attempts, next_attempt_ms FROM webhook_deliveries \
                 WHERE endpoint = ?1 AND delivered_ms IS NULL AND next_attempt_ms <= ?2 \
                 ORDER BY cursor LIMIT ?3",
            )
            .map_err(db)?;
        let rows = stmt
            .query_map(
                params![endpoint, sql_u64(now_ms), sql_u64(limit as u64)],
                |r| {
                    Ok(DeliveryRow {
                        alert_id: r.get(0)?,
                        cursor: r.get::<_, i64>(1)? as u64,
                        payload: r.get(2)?,
                        attempts: r.get::<_, i64>(3)?.clamp(0, i64::from(u32::MAX)) as u32,
                        next_attempt_ms: r.get::<_, i64>(4)? as u64,
                    })
                },
            )
            .map_err(db)?;
        rows.collect::<Result<_, _>>().map_err(db)
    }

    fn outbox_delivered(
        &self,
        endpoint: &str,
        alert_id: &str,
        now_ms: u64,
    ) -> Result<(), StoreError> {
        let conn = self.lock();
        conn.execute(
            "UPDATE webhook_deliveries SET delivered_ms = ?3 \
             WHERE endpoint = ?1 AND alert_id = ?2 AND delivered_ms IS NULL",
            params![endpoint, alert_id, sql_u64(now_ms)],
        )
        .map_err(db)?;
        Ok(())
    }

    fn outbox_failed(
        &self,
        endpoint: &str,
        alert_id: &str,
        attempts: u32,
        next_attempt_ms: u64,
    ) -> Result<(), StoreError> {
        let conn = self.lock();
        conn.execute(
            "UPDATE webhook_deliveries SET attempts = ?3, next_attempt_ms = ?4 \
             WHERE endpoint = ?1 AND alert_id = ?2 AND delivered_ms IS NULL",
            params![endpoint, alert_id, attempts, sql_u64(next_attempt_ms)],
        )
        .map_err(db)?;
        Ok(())
    }

    fn outbox_pending(&self, endpoint: &str) -> Result<u64, StoreError> {
        let conn = self.lock();
        conn.query_row(
            "SELECT COUNT(*) FROM webhook_deliveries WHERE endpoint = ?1 AND delivered_ms IS NULL",
            [endpoint],
            |r| r.get::<_, i64>(0),
        )
        .map(|n| n as u64)
        .map_err(db)
    }
}
