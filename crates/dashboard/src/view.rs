//! The dashboard's view types: what the collector shows a health authority and sends on its
//! webhooks, decoupled from the collector's storage schema (DESIGN.md section 3, step 7).
//!
//! Every value here is already public output of the search: over-threshold cells with their
//! differentially private noisy counts. Nothing here is secret, so the types derive `Debug`
//! and serialise to JSON as they are (the JSON API and the webhook payload use these shapes).

use serde::{Deserialize, Serialize};

/// Seconds since the Unix epoch, UTC.
pub type UnixSeconds = u64;

/// A position in the collector's append-only alert log.
///
/// Cursors are assigned by the store in the order alerts are stored, strictly increasing and
/// never reused, so "every alert after cursor c" has one answer that the dashboard, the
/// webhook dispatcher and the gRPC alert stream all share. Cursor 0 is "before the first
/// alert".
#[derive(
    Clone, Copy, Debug, Default, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize,
)]
#[serde(transparent)]
pub struct AlertCursor(pub u64);

impl AlertCursor {
    /// The cursor before every alert.
    pub const START: AlertCursor = AlertCursor(0);
}

/// How serious an alert is.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum AlertLevel {
    /// Crowding task: a venue-hour's noisy occupancy reached the configured share of capacity.
    Crowding,
    /// Outbreak task: the category's lower threshold of positive presences was reached.
    Orange,
    /// Outbreak task: the category's upper threshold of positive presences was reached.
    Red,
}

impl AlertLevel {
    /// Every level, in increasing severity.
    pub const ALL: [AlertLevel; 3] = [AlertLevel::Crowding, AlertLevel::Orange, AlertLevel::Red];

    /// The lower-case name used in URLs, JSON and CSS classes.
    pub fn as_str(self) -> &'static str {
        match self {
            AlertLevel::Crowding => "crowding",
            AlertLevel::Orange => "orange",
            AlertLevel::Red => "red",
        }
    }

    /// Parses the name written by [`AlertLevel::as_str`].
    pub fn parse(name: &str) -> Option<AlertLevel> {
        AlertLevel::ALL
            .into_iter()
            .find(|level| level.as_str() == name)
    }

    /// Whether visitors who were present in the cell should be notified (outbreak levels).
    pub fn is_exposure(self) -> bool {
        matches!(self, AlertLevel::Orange | AlertLevel::Red)
    }
}

/// One alert: a (venue, window) cell that crossed a rule's threshold.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct AlertView {
    /// Stable, unique identifier chosen by the collector: 1 to 128 visible ASCII characters,
    /// the same for the same alert after a restart. Webhook receivers deduplicate on it.
    pub id: String,
    /// Position in the alert log (see [`AlertCursor`]).
    pub cursor: AlertCursor,
    /// Task identifier the alert comes from.
    pub task: String,
    /// The venue code (32 or 64 bits wide, per task).
    pub venue_code: u64,
    /// The venue's name from the registry (empty for unregistered codes in open mode).
    pub venue_name: String,
    /// The venue's category from the registry (for example "restaurant").
    pub category: String,
    /// Where the venue is, from the registry; `None` for a code nobody registered (open mode).
    /// Such alerts are listed in the table but not drawn on the map.
    pub location: Option<LatLon>,
    /// Start of the alerted window.
    pub window_start: UnixSeconds,
    /// Length of the window in seconds (3600 for hourly windows).
    pub window_secs: u32,
    /// Severity.
    pub level: AlertLevel,
    /// The released, differentially private count for the cell (may differ from the truth).
    pub noisy_count: i64,
    /// Standard deviation of the noise added to `noisy_count` (both aggregators together).
    pub stddev: f64,
    /// Human-readable rule that fired, e.g. "outbreak red: >= 3 positive presences".
    pub rule: String,
    /// When the collector first stored the alert.
    pub first_seen: UnixSeconds,
}

/// A point on the map, in degrees (WGS 84).
#[derive(Clone, Copy, Debug, PartialEq, Serialize, Deserialize)]
pub struct LatLon {
    /// Latitude, -90 to 90.
    pub lat: f64,
    /// Longitude, -180 to 180.
    pub lon: f64,
}

impl LatLon {
    /// Whether both coordinates are finite and in range.
    pub fn is_valid(&self) -> bool {
        (-90.0..=90.0).contains(&self.lat) && (-180.0..=180.0).contains(&self.lon)
    }
}

/// Search mode a batch was collected with (mirrors the task's mode).
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum SearchModeView {
    /// One leaf-level aggregation over the registered venue codes.
    Registry,
    /// The level-by-level prefix walk.
    Open,
}

impl SearchModeView {
    /// Lower-case name for display.
    pub fn as_str(self) -> &'static str {
        match self {
            SearchModeView::Registry => "registry",
            SearchModeView::Open => "open",
        }
    }
}

/// One collected (or collecting) batch: a (task, window) pair.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct BatchView {
    /// Task identifier.
    pub task: String,
    /// Start of the batch's window.
    pub window_start: UnixSeconds,
    /// Length of the window in seconds.
    pub window_secs: u32,
    /// Reports that passed verification at every searched level.
    pub accepted: u64,
    /// Reports rejected (verification failure, replay, exhausted credential, ...).
    pub rejected: u64,
    /// Search mode used.
    pub search_mode: SearchModeView,
    /// Per-person privacy loss charged to this batch (epsilon at the task's delta).
    pub epsilon_spent: f64,
    /// Per-person budget left for the day after this batch (epsilon at the same delta).
    pub epsilon_left: f64,
    /// The delta the epsilons are stated at.
    pub delta: f64,
    /// Alerts this batch produced.
    pub alerts: u32,
    /// When the collection finished; `None` while it is still running.
    pub collected_at: Option<UnixSeconds>,
}

/// A registered venue, placed on the map even when it has no alert.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct VenueView {
    /// The venue code.
    pub code: u64,
    /// Name from the registry.
    pub name: String,
    /// Category from the registry.
    pub category: String,
    /// Capacity from the registry (persons).
    pub capacity: u32,
    /// Latitude in degrees.
    pub lat: f64,
    /// Longitude in degrees.
    pub lon: f64,
}

/// Which alerts to list. Every field narrows the selection; the default selects everything.
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize)]
pub struct AlertFilter {
    /// Only windows starting at or after this time.
    pub from: Option<UnixSeconds>,
    /// Only windows starting strictly before this time.
    pub to: Option<UnixSeconds>,
    /// Only venues of this category.
    pub category: Option<String>,
    /// Only these levels; empty means every level.
    pub levels: Vec<AlertLevel>,
    /// Only this task.
    pub task: Option<String>,
}

impl AlertFilter {
    /// Whether `alert` is selected. A store may evaluate the filter in its own query language;
    /// the result must equal this function's.
    pub fn matches(&self, alert: &AlertView) -> bool {
        self.from.is_none_or(|from| alert.window_start >= from)
            && self.to.is_none_or(|to| alert.window_start < to)
            && self.category.as_ref().is_none_or(|c| &alert.category == c)
            && (self.levels.is_empty() || self.levels.contains(&alert.level))
            && self.task.as_ref().is_none_or(|t| &alert.task == t)
    }
}

/// A summary of the alert log, used to choose the dashboard's default day.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct AlertSummary {
    /// Number of alerts stored.
    pub count: u64,
    /// Earliest alerted window start, if any.
    pub first_window: Option<UnixSeconds>,
    /// Latest alerted window start, if any.
    pub last_window: Option<UnixSeconds>,
    /// Cursor of the most recent alert ([`AlertCursor::START`] when there is none).
    pub last_cursor: AlertCursor,
}
