//! Report preparation and uploads: crowding reports as check-ins happen, outbreak uploads of
//! the whole diary after a diagnosis, and a retry loop that never double counts.
//!
//! DESIGN.md section 3, step 3, and the outbreak rule of issue 7:
//!
//! * a **crowding** report is one report for the window of a check-in's arrival;
//! * an **outbreak** upload spreads each check-in over every window its exposure interval
//!   touches, `[arrival, max(departure, arrival + exposure time of the category))`, one report
//!   per window, then pads every window of the last [`PaddingParams::days`] days to exactly
//!   [`PaddingParams::reports_per_window`] reports with dummies for the reserved venue code 0,
//!   and shuffles, so the upload's size and order say nothing about the diary.
//!
//! The parameters are inputs ([`SpreadParams`], [`PaddingParams`]): the task's rules
//! (crates/core `rules`) own the values; the CLI passes them in.
//!
//! A [`PreparedReport`] is the measurement before it is secret-shared: report id, task,
//! window and venue code. The [`Uploader`] implementation shards it with Poplar1, encrypts the
//! shares to the aggregators, attaches a credential presentation and sends it to the leader.
//! Report ids are drawn once, stored in the diary's outbox before the first attempt, and
//! resent unchanged on every retry; the leader acknowledges a known id without storing a
//! second copy, so a retry never double counts.

use std::collections::BTreeMap;
use std::future::Future;
use std::time::Duration;

use rand::{Rng, RngExt};
use serde::{Deserialize, Serialize};

use crate::diary::{CheckIn, Diary, DiaryError};
use crate::payload::VenueCategory;
use crate::{DAY_SECS, UnixSeconds};

/// The reserved venue code of dummy reports (matches crates/core `task::DUMMY_VENUE_CODE`).
pub const DUMMY_VENUE_CODE: u64 = 0;

/// One report before sharding. Its id is fixed when it is prepared.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct PreparedReport {
    /// 16-byte report id (the Poplar1 nonce), stable across retries.
    #[serde(with = "hex_id")]
    pub report_id: [u8; 16],
    /// Task id.
    pub task_id: String,
    /// Start of the report's window (Unix seconds, a multiple of the window length).
    pub window_start: UnixSeconds,
    /// Venue code, or [`DUMMY_VENUE_CODE`] for padding.
    pub venue_code: u64,
    /// The credential presentation reserved for this report (which credential, which nonce),
    /// kept with it so that every attempt presents the same nonce. `None` until reserved.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub ticket: Option<PresentationTicket>,
}

/// A reserved credential presentation: the credential's key id and the nonce, below the
/// task's limit per window (crates/client `credential::Ticket`, in a form the diary stores).
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct PresentationTicket {
    /// The credential's 8-byte key id.
    #[serde(with = "hex_key_id")]
    pub key_id: [u8; 8],
    /// The nonce.
    pub nonce: u32,
}

/// A task's windows: window `w` covers `[origin + w * secs, origin + (w + 1) * secs)`
/// (crates/core `TaskConfig::window_start`). Report windows are named by their start time.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct WindowGrid {
    /// Start of window 0 (the task's `start_unix`).
    pub origin: UnixSeconds,
    /// Window length in seconds, at least 1.
    pub secs: u64,
}

impl WindowGrid {
    /// Hourly windows aligned to the Unix epoch.
    pub const HOURLY: Self = Self {
        origin: 0,
        secs: 3600,
    };

    /// The grid of a task.
    pub fn of_task(task: &hotspot_core::task::TaskConfig) -> Self {
        Self {
            origin: task.start_unix,
            secs: task.window_seconds,
        }
    }

    /// The start of the window holding instant `t` (saturating at 0 before the origin).
    pub fn start_of(&self, t: UnixSeconds) -> UnixSeconds {
        let secs = self.secs.max(1);
        if t >= self.origin {
            t - (t - self.origin) % secs
        } else {
            let back = (self.origin - t).div_ceil(secs);
            self.origin.saturating_sub(back.saturating_mul(secs))
        }
    }
}

/// How check-ins are spread over windows for an outbreak upload.
#[derive(Clone, Debug)]
pub struct SpreadParams {
    /// The task's windows (hourly in production).
    pub grid: WindowGrid,
    /// Exposure time per category, in minutes.
    pub exposure_minutes: BTreeMap<VenueCategory, u32>,
    /// Exposure time of categories not in the map, in minutes.
    pub default_exposure_minutes: u32,
}

/// The fixed shape of an outbreak upload.
#[derive(Clone, Copy, Debug)]
pub struct PaddingParams {
    /// Reports per window, real and dummy together.
    pub reports_per_window: usize,
    /// Days of windows covered, ending with the window of `now`.
    pub days: u64,
    /// No window starting before this instant is covered: the first window the task still
    /// accepts (its earlier windows are sealed) or the task's start. 0 for no bound.
    pub not_before: UnixSeconds,
}

impl PaddingParams {
    /// The shape of an upload to `task` at `now`: `reports_per_window` reports in every window
    /// of the last [`RETENTION_DAYS`](crate::diary::RETENTION_DAYS) days that the task still
    /// accepts (windows from its start on, not yet sealed).
    pub fn for_task(
        task: &hotspot_core::task::TaskConfig,
        reports_per_window: usize,
        now: UnixSeconds,
    ) -> Self {
        // Window w is sealed once now >= start + (w + 1) * length + grace, so the first open
        // window is floor((now - start - grace) / length), or window 0.
        let secs = task.window_seconds.max(1);
        let first_open = now
            .checked_sub(task.start_unix.saturating_add(task.grace_seconds))
            .map_or(0, |d| d / secs);
        Self {
            reports_per_window,
            days: crate::diary::RETENTION_DAYS,
            not_before: task.window_start(first_open),
        }
    }
}

/// A padded outbreak upload.
#[derive(Clone, Debug)]
pub struct OutbreakUpload {
    /// Every report, shuffled; `windows × reports_per_window` of them.
    pub reports: Vec<PreparedReport>,
    /// Real reports among them.
    pub real: usize,
    /// Real presences left out because their window already had `reports_per_window`.
    pub over_limit: usize,
    /// Real presences left out because their window lies outside the padded period (exposure
    /// time reaching past `now`).
    pub out_of_period: usize,
}

/// The windows (their start times) that `[start, end)` touches.
pub fn windows_touched(start: UnixSeconds, end: UnixSeconds, grid: WindowGrid) -> Vec<UnixSeconds> {
    let secs = grid.secs.max(1);
    let first = grid.start_of(start);
    (0..)
        .map(|i| first + i * secs)
        .take_while(|&w| w < end.max(start + 1))
        .collect()
}

/// The crowding report for a check-in: one report for its arrival window.
pub fn crowding_report<R: Rng + ?Sized>(
    checkin: &CheckIn,
    task_id: &str,
    grid: WindowGrid,
    rng: &mut R,
) -> PreparedReport {
    PreparedReport {
        report_id: rng.random(),
        task_id: task_id.to_owned(),
        window_start: grid.start_of(checkin.arrival),
        venue_code: checkin.venue.venue_code,
        ticket: None,
    }
}

/// The (window, venue code) presences of a diary, spread per [`SpreadParams`], deduplicated.
pub fn spread(checkins: &[CheckIn], params: &SpreadParams) -> BTreeMap<UnixSeconds, Vec<u64>> {
    let mut cells: BTreeMap<UnixSeconds, Vec<u64>> = BTreeMap::new();
    for checkin in checkins {
        let minutes = params
            .exposure_minutes
            .get(&checkin.venue.category)
            .copied()
            .unwrap_or(params.default_exposure_minutes);
        let end = checkin
            .departure
            .max(checkin.arrival + u64::from(minutes) * 60);
        for window in windows_touched(checkin.arrival, end, params.grid) {
            let codes = cells.entry(window).or_default();
            // One person counts once per venue-hour, however many times they checked in.
            if !codes.contains(&checkin.venue.venue_code) {
                codes.push(checkin.venue.venue_code);
            }
        }
    }
    cells
}

/// Prepares a padded, shuffled outbreak upload of the diary's check-ins at `now`.
pub fn outbreak_upload<R: Rng + ?Sized>(
    checkins: &[CheckIn],
    task_id: &str,
    now: UnixSeconds,
    spread_params: &SpreadParams,
    padding: PaddingParams,
    rng: &mut R,
) -> OutbreakUpload {
    let window_secs = spread_params.grid.secs.max(1);
    let last = spread_params.grid.start_of(now);
    let earliest = spread_params.grid.start_of(padding.not_before);
    let earliest = if earliest < padding.not_before {
        earliest + window_secs
    } else {
        earliest
    };
    let first = (last.saturating_sub(padding.days * DAY_SECS) + window_secs).max(earliest);
    let cells = spread(checkins, spread_params);
    let (mut reports, mut real, mut over_limit) = (Vec::new(), 0, 0);

    // 1. Every window of the period gets exactly `reports_per_window` reports.
    for window in (first..=last).step_by(usize::try_from(window_secs).unwrap_or(usize::MAX)) {
        let codes = cells.get(&window).map(Vec::as_slice).unwrap_or_default();
        let kept = codes.len().min(padding.reports_per_window);
        real += kept;
        over_limit += codes.len() - kept;
        let padded = codes[..kept]
            .iter()
            .copied()
            .chain(std::iter::repeat(DUMMY_VENUE_CODE))
            .take(padding.reports_per_window);
        for venue_code in padded {
            let report_id = rng.random();
            reports.push(PreparedReport {
                report_id,
                task_id: task_id.to_owned(),
                window_start: window,
                venue_code,
                ticket: None,
            });
        }
    }

    // 2. Presences outside the period (exposure reaching past `now`) are not uploaded.
    let outside = cells.range(..first).chain(cells.range(last + 1..));
    let out_of_period = outside.map(|(_, codes)| codes.len()).sum();

    // 3. Shuffle (Fisher-Yates), so the order does not reveal which reports are real.
    for i in (1..reports.len()).rev() {
        reports.swap(i, rng.random_range(0..=i));
    }
    OutbreakUpload {
        reports,
        real,
        over_limit,
        out_of_period,
    }
}

/// Why one upload attempt failed.
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum UploadError {
    /// Worth retrying: unavailable, timed out, overloaded.
    #[error("transient upload failure: {0}")]
    Transient(String),
    /// The leader refused this report for good (closed window, unknown task, bad encoding).
    #[error("upload rejected: {0}")]
    Rejected(String),
}

/// Sends one prepared report to the leader. Implemented by [`crate::grpc::GrpcUploader`].
pub trait Uploader {
    /// Whether this uploader takes `report` (an uploader serves one task; the outbox may hold
    /// reports of several). [`drain_outbox`] leaves the others in the outbox.
    fn serves(&self, _report: &PreparedReport) -> bool {
        true
    }

    /// Uploads `report`; `Ok` means the leader has stored it durably (or already had it).
    fn upload(
        &self,
        report: &PreparedReport,
    ) -> impl Future<Output = Result<(), UploadError>> + Send;
}

/// Retry schedule: exponential backoff with full jitter.
#[derive(Clone, Copy, Debug)]
pub struct RetryPolicy {
    /// Attempts per report, at least 1.
    pub max_attempts: u32,
    /// First backoff ceiling.
    pub base_delay: Duration,
    /// Largest backoff ceiling.
    pub max_delay: Duration,
}

impl Default for RetryPolicy {
    fn default() -> Self {
        Self {
            max_attempts: 6,
            base_delay: Duration::from_millis(200),
            max_delay: Duration::from_secs(30),
        }
    }
}

impl RetryPolicy {
    /// The wait after failed attempt number `attempt` (0-based): uniform in
    /// `[0, min(max_delay, base_delay · 2^attempt)]` ("full jitter").
    pub fn backoff<R: Rng + ?Sized>(&self, attempt: u32, rng: &mut R) -> Duration {
        let ceiling = self
            .base_delay
            .saturating_mul(1u32 << attempt.min(20))
            .min(self.max_delay);
        let millis = u64::try_from(ceiling.as_millis()).unwrap_or(u64::MAX);
        Duration::from_millis(rng.random_range(0..=millis))
    }
}

/// How an outbox drain ended.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct UploadSummary {
    /// Reports acknowledged.
    pub acknowledged: usize,
    /// Reports the leader rejected for good (removed from the outbox).
    pub rejected: usize,
    /// Attempts in all, retries included.
    pub attempts: usize,
}

impl UploadSummary {
    /// Adds the counts of `other` (another worker's share of the same uploads).
    pub fn add(&mut self, other: &Self) {
        self.acknowledged += other.acknowledged;
        self.rejected += other.rejected;
        self.attempts += other.attempts;
    }
}

/// Why an outbox drain stopped early.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum DrainError {
    /// A report failed `max_attempts` times; it and the rest stay in the outbox.
    #[error("upload gave up after {attempts} attempts ({summary:?} so far): {last}")]
    GaveUp {
        /// Attempts on the failing report.
        attempts: u32,
        /// Progress before giving up.
        summary: UploadSummary,
        /// The last error.
        last: UploadError,
    },
    /// The diary could not be written.
    #[error(transparent)]
    Diary(#[from] DiaryError),
}

/// Acknowledgements persisted together; a crash resends at most this many known ids.
const ACK_BATCH: usize = 64;

/// Uploads every report in the diary's outbox that `uploader` serves, in order, retrying transient failures with
/// backoff; acknowledged and rejected reports leave the outbox, the rest stay for next time.
pub async fn drain_outbox<U: Uploader, R: Rng + ?Sized>(
    diary: &mut Diary,
    uploader: &U,
    policy: RetryPolicy,
    rng: &mut R,
) -> Result<UploadSummary, DrainError> {
    let pending: Vec<PreparedReport> = diary
        .outbox()
        .iter()
        .filter(|r| uploader.serves(r))
        .cloned()
        .collect();
    let mut summary = UploadSummary::default();
    let mut done: Vec<[u8; 16]> = Vec::new();
    for report in &pending {
        match upload_with_retries(uploader, report, policy, rng, &mut summary).await {
            Ok(()) => done.push(report.report_id),
            Err((attempts, last)) => {
                diary.remove_from_outbox(&done)?;
                return Err(DrainError::GaveUp {
                    attempts,
                    summary,
                    last,
                });
            }
        }
        if done.len() >= ACK_BATCH {
            diary.remove_from_outbox(&done)?;
            done.clear();
        }
    }
    diary.remove_from_outbox(&done)?;
    Ok(summary)
}

/// Uploads one report, retrying transient failures with backoff, and counts the outcome and
/// every attempt into `summary`: `Ok` once the leader stored it or refused it for good, `Err`
/// with the attempts made and the last error once `policy.max_attempts` are spent. For callers
/// that keep reports elsewhere than a diary (many visitors simulated in one process, say); a
/// phone uses [`drain_outbox`].
pub async fn upload_with_retries<U: Uploader, R: Rng + ?Sized>(
    uploader: &U,
    report: &PreparedReport,
    policy: RetryPolicy,
    rng: &mut R,
    summary: &mut UploadSummary,
) -> Result<(), (u32, UploadError)> {
    let mut attempt = 0;
    loop {
        summary.attempts += 1;
        match uploader.upload(report).await {
            Ok(()) => {
                summary.acknowledged += 1;
                return Ok(());
            }
            Err(UploadError::Rejected(reason)) => {
                tracing::warn!(report.window = report.window_start, %reason, "report rejected");
                summary.rejected += 1;
                return Ok(());
            }
            Err(err) if attempt + 1 >= policy.max_attempts.max(1) => {
                return Err((attempt + 1, err));
            }
            Err(err) => {
                let delay = policy.backoff(attempt, rng);
                tracing::debug!(attempt, delay_ms = delay.as_millis() as u64, error = %err, "retrying upload");
                tokio::time::sleep(delay).await;
                attempt += 1;
            }
        }
    }
}

mod hex_id {
    //! Report ids as hex strings in the diary file.
    use serde::{Deserialize, Deserializer, Serializer, de::Error};

    pub fn serialize<S: Serializer>(id: &[u8; 16], s: S) -> Result<S::Ok, S::Error> {
        s.serialize_str(&crate::registry::hex(id))
    }

    pub fn deserialize<'de, D: Deserializer<'de>>(d: D) -> Result<[u8; 16], D::Error> {
        let text = String::deserialize(d)?;
        crate::registry::unhex(&text)
            .and_then(|b| b.try_into().ok())
            .ok_or_else(|| D::Error::custom("report id must be 32 hex digits"))
    }
}

mod hex_key_id {
    //! Credential key ids as hex strings in the diary file.
    use serde::{Deserialize, Deserializer, Serializer, de::Error};

    pub fn serialize<S: Serializer>(id: &[u8; 8], s: S) -> Result<S::Ok, S::Error> {
        s.serialize_str(&crate::registry::hex(id))
    }

    pub fn deserialize<'de, D: Deserializer<'de>>(d: D) -> Result<[u8; 8], D::Error> {
        let text = String::deserialize(d)?;
        crate::registry::unhex(&text)
            .and_then(|b| b.try_into().ok())
            .ok_or_else(|| D::Error::custom("credential key id must be 16 hex digits"))
    }
}

#[cfg(test)]
mod tests;
