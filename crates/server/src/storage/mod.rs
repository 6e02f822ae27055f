//! Storage: what each role keeps durably, behind one trait so that a PostgreSQL backend can
//! follow without touching the roles (DESIGN.md section 6).
//!
//! The trait is synchronous: the SQLite backend runs on blocking threads (`spawn_blocking`, or
//! the upload committer's own thread), and a PostgreSQL backend would do the same with a pool.
//! Every method that changes state does so in one transaction and returns only after the
//! commit; callers acknowledge nothing before that.
//!
//! | table | role | holds |
//! |---|---|---|
//! | `reports` | leader | uploaded reports (public share, both sealed input shares, presentation) |
//! | `level_params` | leader, helper | the aggregation parameter of each (batch, level) |
//! | `jobs` | leader, helper | finished aggregation jobs: request digest, helper message, aggregate share |
//! | `report_levels` | leader, helper | which job aggregated a report at a level, and its verdict |
//! | `rejected` | leader, helper | reports out of their batch for good, with the level and reason |
//! | `alerts` | collector | the alert log; its rowid is the stream cursor |
//! | `presentation_tags` | leader, helper | the credential tag of every report, per (task, window) |
//! | `enrolments` | issuer | keyed hashes of the enrolment ids the operator provisioned |
//! | `crowding_issuances` | issuer | one crowding credential per (enrolment, day): request digest, response |
//! | `diagnosis_codes` | issuer | keyed hashes of diagnosis codes, expiry, the one use |
//! | `searches` | collector | finished searches per batch, with their summary |
//! | `releases` | every role | each release of noisy counts and its privacy cost; the aggregators keep the noisy share they released |
//! | `venues` | collector | the venue registry: code, name, place, category, capacity |
//! | `webhook_cursors`, `webhook_deliveries` | collector | the webhook outbox ([`dashboard`]) |

pub mod dashboard;
pub mod sqlite;

use hotspot_core::envelope::{ReportEnvelope, ReportId};
use hotspot_core::task::{SearchMode, TaskId};
use hotspot_core::venue::VenueCategory;

/// Errors of a storage backend.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum StoreError {
    /// The database reported an error.
    #[error("database: {0}")]
    Database(String),
    /// The database was written by a newer (or unknown) schema version.
    #[error("database schema version {found} is not supported (this build knows up to {known})")]
    SchemaVersion {
        /// Version found in the file.
        found: i64,
        /// Highest version this build knows.
        known: i64,
    },
    /// A stored row does not decode (the file was tampered with or corrupted).
    #[error("corrupt row in `{0}`")]
    Corrupt(&'static str),
    /// A job or level was stored before with a different body.
    #[error("conflict: {0}")]
    Conflict(&'static str),
}

/// The outcome of storing one uploaded report.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum PutOutcome {
    /// Stored now, with its tag.
    Stored,
    /// The same report id was already stored for this task; nothing written.
    Duplicate,
    /// Another report of the window carries the same credential tag; nothing written.
    TagReused,
}

/// A credential presentation's tag (32 bytes), unique per (task, window).
pub type Tag = [u8; 32];

/// An uploaded report with the tag of its verified presentation.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct TaggedReport {
    /// The report.
    pub report: ReportEnvelope,
    /// The tag its presentation verified to.
    pub tag: Tag,
}

/// What the issuer's store says about an issuance.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Issuance {
    /// Nothing was issued for this enrolment and day, or this code, yet (and, when a response
    /// was given, it is now recorded).
    Fresh,
    /// The same request was answered before: here is the stored response.
    Repeat(Vec<u8>),
    /// Refused.
    Refused(IssuanceRefusal),
}

/// Why the issuer's store refuses an issuance.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum IssuanceRefusal {
    /// The enrolment id was never provisioned.
    NotEnrolled,
    /// The enrolment obtained another crowding credential that day.
    AlreadyIssued,
    /// No such diagnosis code.
    UnknownCode,
    /// The diagnosis code expired.
    Expired,
    /// The diagnosis code was used by another request.
    Used,
}

/// A batch: one task, one window.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub struct BatchKey {
    /// The task.
    pub task: TaskId,
    /// The window index.
    pub window: u64,
}

/// An aggregation job: batch, level and job number.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub struct JobKey {
    /// The batch.
    pub batch: BatchKey,
    /// The tree level.
    pub level: u32,
    /// The job number within (batch, level).
    pub job: u64,
}

/// One report's verdict in a finished job: `None` when accepted, else the rejection reason
/// code (the proto's `RejectReason` number).
pub type ReportVerdict = (ReportId, Option<i32>);

/// A finished job, as stored.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct FinishedJob {
    /// Digest of the job's init request (a retry must match it).
    pub request_digest: Vec<u8>,
    /// The helper's round message (helper side; empty on the leader).
    pub helper_message: Vec<u8>,
    /// This aggregator's encoded aggregate share over the job's accepted reports.
    pub aggregate: Vec<u8>,
}

/// The per-level aggregate material of a batch.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct LevelAggregates {
    /// Encoded aggregate shares, one per finished job.
    pub shares: Vec<Vec<u8>>,
    /// Reports accepted at this level.
    pub accepted: u64,
    /// XOR of the accepted report ids.
    pub checksum: [u8; 16],
}

/// A stored alert.
#[derive(Clone, Debug, PartialEq)]
pub struct AlertRow {
    /// Position in the alert log (assigned on insert).
    pub cursor: u64,
    /// The batch.
    pub batch: BatchKey,
    /// The venue code.
    pub venue_code: u64,
    /// The noisy count.
    pub count: i64,
    /// Standard deviation of the noise in `count` (both aggregators together; 0 without
    /// noise): the count's uncertainty.
    pub stddev: f64,
    /// The rule that fired, in words.
    pub rule: String,
    /// The alert level (`crowding`, `orange`, `red`).
    pub level: String,
    /// Unix time it was stored: when the collector first saw the alert.
    pub created_unix: i64,
}

/// What one finished search of a batch released and cost.
#[derive(Clone, Debug, PartialEq)]
pub struct BatchSummary {
    /// The batch.
    pub batch: BatchKey,
    /// The search mode that ran.
    pub mode: SearchMode,
    /// Whether the releases carried noise (off only in tests).
    pub noise: bool,
    /// Reports aggregated at the last level.
    pub accepted: u64,
    /// Reports of the batch rejected at any level.
    pub rejected: u64,
    /// Alerts raised.
    pub alerts: u64,
    /// zCDP cost charged to the batch.
    pub rho_spent: f64,
    /// zCDP budget left to the batch's day after this search.
    pub rho_left: f64,
    /// `rho_spent` as epsilon per person, at `delta`.
    pub epsilon_spent: f64,
    /// `rho_left` as epsilon per person, at `delta`.
    pub epsilon_left: f64,
    /// The delta the epsilons are stated at.
    pub delta: f64,
    /// Unix time the search finished (set by the store).
    pub finished_unix: i64,
}

/// One release of noisy counts: a (batch, level) aggregation given to the collector.
///
/// The aggregators record the noisy aggregate share they released, with the report set it
/// covers, so that asking again gets the very same share (fresh noise on the same counts
/// would let the asker average it away) and asking over another report set is refused. The
/// collector records its charges only (`checksum`, `share` empty).
#[derive(Clone, PartialEq)]
pub struct ReleaseRecord {
    /// The batch.
    pub batch: BatchKey,
    /// The tree level.
    pub level: u32,
    /// Its zCDP cost.
    pub rho: f64,
    /// Reports aggregated.
    pub accepted: u64,
    /// XOR of the aggregated report ids.
    pub checksum: Vec<u8>,
    /// The encoded noisy aggregate share this aggregator released.
    pub share: Vec<u8>,
}

impl std::fmt::Debug for ReleaseRecord {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        // The share is this aggregator's secret-shared half of the counts: never logged.
        f.debug_struct("ReleaseRecord")
            .field("batch", &self.batch)
            .field("level", &self.level)
            .field("rho", &self.rho)
            .field("accepted", &self.accepted)
            .finish_non_exhaustive()
    }
}

/// A registered venue, as the collector's registry keeps it.
#[derive(Clone, Debug, PartialEq)]
pub struct VenueRecord {
    /// The venue code (never 0, the dummy code).
    pub code: u64,
    /// Name, as on the poster.
    pub name: String,
    /// Street address (may be empty).
    pub address: String,
    /// Latitude in degrees (WGS 84).
    pub lat: f64,
    /// Longitude in degrees (WGS 84).
    pub lon: f64,
    /// Category: the outbreak rules' levels and exposure times depend on it.
    pub category: VenueCategory,
    /// Capacity in persons: the crowding rule's denominator.
    pub capacity: u32,
    /// Default check-in duration in minutes.
    pub default_minutes: u32,
    /// Unix time of the first registration (kept when the entry is updated).
    pub registered_unix: u64,
}

/// Durable state of every role.
pub trait Store: Send + Sync + 'static {
    // --- leader: uploads ---

    /// Stores reports with their tags in one transaction; a report whose id the task already
    /// holds is a duplicate, one whose tag the window already holds (from another report, or
    /// from an earlier report of the same call) is a reused tag, and neither is written.
    /// Returns after the commit.
    fn put_reports(&self, reports: &[TaggedReport]) -> Result<Vec<PutOutcome>, StoreError>;

    /// Number of reports stored for the batch.
    fn report_count(&self, batch: BatchKey) -> Result<u64, StoreError>;

    /// Windows of the task that hold reports, with their report counts.
    fn batches(&self, task: TaskId) -> Result<Vec<(u64, u64)>, StoreError>;

    /// Reports of the batch not rejected at any level below `level`, ordered by report id.
    fn eligible_reports(
        &self,
        batch: BatchKey,
        level: u32,
    ) -> Result<Vec<ReportEnvelope>, StoreError>;

    // --- leader and helper: aggregation ---

    /// Records the aggregation parameter of (batch, level), or checks it equals the stored
    /// one; returns the parameters of the lower levels already recorded, in level order.
    fn bind_level_param(
        &self,
        batch: BatchKey,
        level: u32,
        agg_param: &[u8],
    ) -> Result<Vec<Vec<u8>>, StoreError>;

    /// The finished job, if any.
    fn finished_job(&self, job: JobKey) -> Result<Option<FinishedJob>, StoreError>;

    /// Of `ids`, those aggregated at `job.level` by another job, and those rejected for good
    /// at a lower level.
    fn report_status(
        &self,
        job: JobKey,
        ids: &[ReportId],
    ) -> Result<(Vec<ReportId>, Vec<ReportId>), StoreError>;

    /// Commits a finished job: its record, every report's verdict at the level, the
    /// rejections, and the tags of the reports whose presentations the job verified first
    /// (helper; the leader records tags on upload and passes none). One transaction.
    fn commit_job(
        &self,
        job: JobKey,
        finished: &FinishedJob,
        verdicts: &[ReportVerdict],
        new_tags: &[(ReportId, Tag)],
    ) -> Result<(), StoreError>;

    /// Of `ids`, which already have a recorded tag in the batch (their presentation was
    /// verified before), in order.
    fn tagged_reports(&self, batch: BatchKey, ids: &[ReportId]) -> Result<Vec<bool>, StoreError>;

    /// The report each of `tags` is recorded for in the batch, in order.
    fn tag_owners(
        &self,
        batch: BatchKey,
        tags: &[Tag],
    ) -> Result<Vec<Option<ReportId>>, StoreError>;

    /// The aggregate shares of every finished job of (batch, level).
    fn level_aggregates(&self, batch: BatchKey, level: u32) -> Result<LevelAggregates, StoreError>;

    /// Reports of the batch rejected for good.
    fn rejected_count(&self, batch: BatchKey) -> Result<u64, StoreError>;

    // --- every role: the privacy accountant's record ---

    /// Records a release unless (batch, level) has one; returns the stored record (the new
    /// one, or the earlier one, unchanged). One transaction.
    fn record_release(&self, release: &ReleaseRecord) -> Result<ReleaseRecord, StoreError>;

    /// The release of (batch, level), if any.
    fn release(&self, batch: BatchKey, level: u32) -> Result<Option<ReleaseRecord>, StoreError>;

    /// The task's releases of windows in `windows` as (window, rho), ordered by window and
    /// level: what the accountant is rebuilt from (callers ask for one day's windows, so the
    /// cost does not grow with the task's history).
    fn release_charges(
        &self,
        task: TaskId,
        windows: std::ops::Range<u64>,
    ) -> Result<Vec<(u64, f64)>, StoreError>;

    // --- collector ---

    /// Appends alerts to the log (cursors are assigned) and records the batch's search with
    /// its summary, in one transaction. A batch searched before keeps its first summary and
    /// alerts; returns the stored alerts.
    fn record_search(
        &self,
        summary: &BatchSummary,
        alerts: &[AlertRow],
    ) -> Result<Vec<AlertRow>, StoreError>;

    /// Whether the batch was searched.
    fn searched(&self, batch: BatchKey) -> Result<bool, StoreError>;

    /// The summary and alerts of the batch's search, if it was searched.
    fn search_record(
        &self,
        batch: BatchKey,
    ) -> Result<Option<(BatchSummary, Vec<AlertRow>)>, StoreError>;

    /// Every finished search, most recent first.
    fn batch_summaries(&self) -> Result<Vec<BatchSummary>, StoreError>;

    /// Alerts with a cursor after `cursor`, oldest first, at most `limit`.
    fn alerts_after(&self, cursor: u64, limit: usize) -> Result<Vec<AlertRow>, StoreError>;

    /// Registers a venue, or updates the registered one with the same code (its first
    /// `registered_unix` is kept).
    fn put_venue(&self, venue: &VenueRecord) -> Result<(), StoreError>;

    /// Every registered venue, by code.
    fn venues(&self) -> Result<Vec<VenueRecord>, StoreError>;

    /// The venue registered under `code`, if any.
    fn venue(&self, code: u64) -> Result<Option<VenueRecord>, StoreError>;
}

/// The issuer's durable state. Identifiers arrive here already hashed with the deployment's
/// key (crates/server `issuer`); nothing in these tables names a device or a person.
pub trait IssuerStore: Send + Sync + 'static {
    /// Provisions enrolment ids (by hash); returns how many were new.
    fn enrol(&self, id_hashes: &[[u8; 32]], now_unix: i64) -> Result<usize, StoreError>;

    /// The state of a crowding issuance for (enrolment, day), in one transaction: not
    /// enrolled, answered before (the same request digest gets its stored response), refused
    /// (another request that day), or fresh; a fresh one with `response` is recorded.
    fn crowding_issuance(
        &self,
        id_hash: &[u8; 32],
        day: u32,
        request_digest: &[u8; 32],
        response: Option<&[u8]>,
    ) -> Result<Issuance, StoreError>;

    /// Registers a diagnosis code (by hash) valid until `expires_unix`; `false` when it was
    /// registered before (nothing changes).
    fn register_code(
        &self,
        code_hash: &[u8; 32],
        now_unix: i64,
        expires_unix: i64,
    ) -> Result<bool, StoreError>;

    /// The state of an outbreak issuance against a code at `now_unix`, in one transaction:
    /// unknown, expired, used by another request, answered before, or fresh; a fresh one
    /// with `response` marks the code used.
    fn outbreak_issuance(
        &self,
        code_hash: &[u8; 32],
        now_unix: i64,
        request_digest: &[u8; 32],
        response: Option<&[u8]>,
    ) -> Result<Issuance, StoreError>;

    /// Forgets crowding issuances of days before `before_day` and codes that expired before
    /// `before_unix`.
    fn prune_issuer(&self, before_day: u32, before_unix: i64) -> Result<(), StoreError>;
}
