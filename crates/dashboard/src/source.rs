//! Where the dashboard's data comes from: the [`DashboardSource`] trait, which the collector's
//! store implements, and [`InMemorySource`], a vector-backed implementation for tests and
//! demos that run before (or without) the collector's SQLite store.
//!
//! The trait is synchronous on purpose: the collector's store is rusqlite, which blocks. The
//! router calls it from `tokio::task::spawn_blocking`, so an implementation may block on
//! disk I/O but must not block on the async runtime.

use std::sync::{Arc, RwLock};

use crate::view::{
    AlertCursor, AlertFilter, AlertSummary, AlertView, BatchView, UnixSeconds, VenueView,
};

/// Why a source could not answer.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum SourceError {
    /// The backing store failed (I/O, SQL, corrupt row). The message is logged, never shown
    /// to the browser, and must not carry secrets.
    #[error("store unavailable: {0}")]
    Unavailable(String),
}

/// The data the collector feeds the dashboard, webhooks and the exposure list.
///
/// Ordering contract: cursors are strictly increasing in storage order; `alerts_after(c, n)`
/// returns the first `n` alerts with cursor `> c`, in increasing cursor order. The gRPC alert
/// stream and the webhook dispatcher both page through the log with this one method.
pub trait DashboardSource: Send + Sync + 'static {
    /// Alerts selected by `filter` (exactly those [`AlertFilter::matches`] accepts), ordered by
    /// window start, then venue code, then cursor; at most `limit`.
    fn alerts(&self, filter: &AlertFilter, limit: usize) -> Result<Vec<AlertView>, SourceError>;

    /// Up to `limit` alerts with cursor strictly greater than `cursor`, in cursor order.
    fn alerts_after(
        &self,
        cursor: AlertCursor,
        limit: usize,
    ) -> Result<Vec<AlertView>, SourceError>;

    /// Counts and bounds of the whole alert log.
    fn alert_summary(&self) -> Result<AlertSummary, SourceError>;

    /// The most recent `limit` batches, newest window first.
    fn batches(&self, limit: usize) -> Result<Vec<BatchView>, SourceError>;

    /// Every registered venue (for the map's background and the category filter).
    fn venues(&self) -> Result<Vec<VenueView>, SourceError>;
}

/// An in-memory [`DashboardSource`] for tests and demos: nothing survives a restart.
///
/// The collector's SQLite store replaces it in production. Cursors are assigned on
/// [`InMemorySource::push_alert`], in call order.
#[derive(Clone, Default)]
pub struct InMemorySource {
    inner: Arc<RwLock<Inner>>,
}

#[derive(Default)]
struct Inner {
    alerts: Vec<AlertView>,
    batches: Vec<BatchView>,
    venues: Vec<VenueView>,
}

impl InMemorySource {
    /// An empty source.
    pub fn new() -> Self {
        Self::default()
    }

    /// Appends an alert, assigning it the next cursor (its `cursor` field is overwritten), and
    /// returns that cursor.
    pub fn push_alert(&self, mut alert: AlertView) -> AlertCursor {
        let mut inner = self.write();
        let cursor = AlertCursor(inner.alerts.len() as u64 + 1);
        alert.cursor = cursor;
        inner.alerts.push(alert);
        cursor
    }

    /// Records a batch.
    pub fn push_batch(&self, batch: BatchView) {
        self.write().batches.push(batch);
    }

    /// Registers a venue.
    pub fn push_venue(&self, venue: VenueView) {
        self.write().venues.push(venue);
    }

    fn read(&self) -> std::sync::RwLockReadGuard<'_, Inner> {
        // A poisoned lock means a writer panicked mid-push; the vectors are still valid.
        self.inner
            .read()
            .unwrap_or_else(|poisoned| poisoned.into_inner())
    }

    fn write(&self) -> std::sync::RwLockWriteGuard<'_, Inner> {
        self.inner
            .write()
            .unwrap_or_else(|poisoned| poisoned.into_inner())
    }
}

impl DashboardSource for InMemorySource {
    fn alerts(&self, filter: &AlertFilter, limit: usize) -> Result<Vec<AlertView>, SourceError> {
        let mut out: Vec<AlertView> = self
            .read()
            .alerts
            .iter()
            .filter(|a| filter.matches(a))
            .cloned()
            .collect();
        out.sort_by_key(|a| (a.window_start, a.venue_code, a.cursor));
        out.truncate(limit);
        Ok(out)
    }

    fn alerts_after(
        &self,
        cursor: AlertCursor,
        limit: usize,
    ) -> Result<Vec<AlertView>, SourceError> {
        let inner = self.read();
        // Cursors are 1-based positions in the vector, so the slice starts at index `cursor`.
        let start = usize::try_from(cursor.0)
            .unwrap_or(usize::MAX)
            .min(inner.alerts.len());
        Ok(inner.alerts[start..].iter().take(limit).cloned().collect())
    }

    fn alert_summary(&self) -> Result<AlertSummary, SourceError> {
        let inner = self.read();
        let windows = inner.alerts.iter().map(|a| a.window_start);
        Ok(AlertSummary {
            count: inner.alerts.len() as u64,
            first_window: windows.clone().min(),
            last_window: windows.max(),
            last_cursor: inner.alerts.last().map_or(AlertCursor::START, |a| a.cursor),
        })
    }

    fn batches(&self, limit: usize) -> Result<Vec<BatchView>, SourceError> {
        let mut out = self.read().batches.clone();
        out.sort_by_key(|b| std::cmp::Reverse((b.window_start, b.task.clone())));
        out.truncate(limit);
        Ok(out)
    }

    fn venues(&self) -> Result<Vec<VenueView>, SourceError> {
        Ok(self.read().venues.clone())
    }
}

/// Start of the UTC day containing `t`.
pub(crate) fn day_start(t: UnixSeconds) -> UnixSeconds {
    t - t % 86_400
}
