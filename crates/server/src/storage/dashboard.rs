//! The collector's storage for what leaves it for people and apps: the dashboard's queries over
//! the alert log, and the durable webhook outbox (tables `webhook_cursors` and
//! `webhook_deliveries`). `crate::dashboard` adapts this trait to the `hotspot-dashboard`
//! crate's `DashboardSource` and `webhook::Outbox`.
//!
//! It extends [`Store`] rather than joining it so that only the collector's backend needs it;
//! like [`Store`], it is synchronous and every change is one transaction.

use std::ops::Range;

use hotspot_core::task::TaskId;

use super::{AlertRow, Store, StoreError};

/// Counts and bounds of one task's part of the alert log.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct TaskAlertStats {
    /// The task.
    pub task: TaskId,
    /// Alerts stored for it.
    pub count: u64,
    /// Smallest alerted window index.
    pub first_window: u64,
    /// Largest alerted window index.
    pub last_window: u64,
}

/// A summary of the whole alert log.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct AlertLogStats {
    /// Per task with at least one alert.
    pub tasks: Vec<TaskAlertStats>,
    /// The largest cursor stored (0 for an empty log).
    pub last_cursor: u64,
}

/// One webhook delivery, as the outbox holds it.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct DeliveryRow {
    /// The alert's id (the delivery's key together with the endpoint).
    pub alert_id: String,
    /// The alert's cursor (deliveries are attempted in cursor order).
    pub cursor: u64,
    /// The alert as it was enqueued, serialised by the caller (JSON).
    pub payload: Vec<u8>,
    /// Attempts made so far.
    pub attempts: u32,
    /// Earliest time of the next attempt, Unix milliseconds.
    pub next_attempt_ms: u64,
}

/// The collector's dashboard queries and webhook outbox.
pub trait DashboardStore: Store {
    /// Alerts of `task` whose window index is in `windows`, ordered by window, venue code and
    /// cursor, at most `limit`.
    fn alerts_in_windows(
        &self,
        task: TaskId,
        windows: Range<u64>,
        limit: usize,
    ) -> Result<Vec<AlertRow>, StoreError>;

    /// Counts and window bounds per task, and the last cursor.
    fn alert_log_stats(&self) -> Result<AlertLogStats, StoreError>;

    /// The cursor up to which alerts were enqueued for `endpoint` (0 if never).
    fn outbox_through(&self, endpoint: &str) -> Result<u64, StoreError>;

    /// In one transaction: adds a pending delivery (no attempt yet, due now) for every row whose
    /// alert id `endpoint` does not know yet, and raises the endpoint's cursor to `through`.
    /// Only `alert_id`, `cursor` and `payload` of `rows` are read.
    fn outbox_enqueue(
        &self,
        endpoint: &str,
        rows: &[DeliveryRow],
        through: u64,
    ) -> Result<(), StoreError>;

    /// Up to `limit` pending deliveries of `endpoint` due at or before `now_ms`, in cursor order.
    fn outbox_due(
        &self,
        endpoint: &str,
        now_ms: u64,
        limit: usize,
    ) -> Result<Vec<DeliveryRow>, StoreError>;

    /// Marks a delivery done at `now_ms` (it stays known, so it is never enqueued again).
    fn outbox_delivered(
        &self,
        endpoint: &str,
        alert_id: &str,
        now_ms: u64,
    ) -> Result<(), StoreError>;

    /// Records a failed attempt and when to try again.
    fn outbox_failed(
        &self,
        endpoint: &str,
        alert_id: &str,
        attempts: u32,
        next_attempt_ms: u64,
    ) -> Result<(), StoreError>;

    /// Deliveries of `endpoint` not yet done.
    fn outbox_pending(&self, endpoint: &str) -> Result<u64, StoreError>;
}
