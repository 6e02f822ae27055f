//! Task parameters shared by every party. A task is one long-running collection with fixed
//! parameters, provisioned identically on both aggregators (DESIGN.md section 2).

/// What a task counts.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum TaskKind {
    /// Every check-in is reported as it happens; the output is occupancy per venue-hour.
    Crowding,
    /// Visitors who test positive upload their diary; the output is positive presences.
    Outbreak,
}

/// How the collector searches a sealed batch.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum SearchMode {
    /// One leaf-level aggregation over the registered venue codes.
    Registry,
    /// The level-by-level prefix walk, for venue codes nobody registered.
    Open,
}

/// The reserved venue code carried by dummy (padding) reports. It never alerts.
pub const DUMMY_VENUE_CODE: u64 = 0;
