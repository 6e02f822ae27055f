//! Task parameters shared by every party. A task is one long-running collection with fixed
//! parameters, provisioned identically on both aggregators and the collector (DESIGN.md
//! section 2).
//!
//! This module holds only public parameters: ids, windows, sizes, public HPKE keys. Private
//! keys never appear in a task file; the server reads them from the environment or from files
//! (see `hotspot-server`'s config module).
//!
//! Time is cut into windows: window `w` covers `[start + w * window_seconds, start + (w + 1) *
//! window_seconds)` in Unix seconds. A window accepts uploads from its start (less a small
//! clock-skew allowance) until it is *sealed*, at its end plus the task's grace period; from
//! then on its batch is fixed and can be collected.
//!
//! Besides ids, windows and keys, a task fixes what every party must agree on for the search
//! and its privacy: the differential-privacy budget (`[privacy]`), the open walk's plan of
//! releases (`[search]`) and the alert rules (`[rules.crowding]` or `[rules.outbreak]`). The
//! aggregators compute each release's noise and cost from their own copy of these, never
//! from what a collector asks for.
//!
//! ```toml
//! [privacy]                 # every field optional; the defaults are shown
//! noise = true              # off only for tests: releases then carry no guarantee
//! epsilon_batch = 1.0       # or rho_batch (zCDP): the budget of one batch
//! rho_day = 0.359           # or epsilon_day; default: every batch of the day once
//! delta = 1e-9              # the delta epsilons are stated at
//! windows_per_day = 24      # default: 86400 / window_seconds
//!
//! [search]                  # open mode's walk
//! stride = 8                # levels per step
//! leaf_share = 0.5          # share of the batch budget spent on the last step
//! max_candidates = 1048576  # most candidates in one release
//!
//! [rules.crowding]          # crowding tasks
//! share_permille = 800      # alert at 80 % of capacity ...
//! min_count = 40            # ... and at least 40 people
//! unknown_venue_count = 60  # optional: threshold of codes nobody registered
//!
//! [rules.outbreak]          # outbreak tasks; categories not listed keep their defaults
//! unknown = { orange = 1, red = 3, customer_minutes = 120, staff_minutes = 720 }
//! [rules.outbreak.categories.restaurant]
//! orange = 1
//! red = 3
//! customer_minutes = 120
//! staff_minutes = 720
//! ```

use std::collections::BTreeMap;

use serde::{Deserialize, Serialize};

use crate::dp::{DpConfig, rho_for_epsilon};
use crate::envelope::HpkePublicKey;
use crate::rules::{CategoryRule, CrowdingRule, OutbreakRule, Rules};
use crate::search::SearchConfig;
use crate::venue::VenueCategory;

/// What a task counts.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum TaskKind {
    /// Every check-in is reported as it happens; the output is occupancy per venue-hour.
    Crowding,
    /// Visitors who test positive upload their diary; the output is positive presences.
    Outbreak,
}

/// How the collector searches a sealed batch.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum SearchMode {
    /// One leaf-level aggregation over the registered venue codes.
    Registry,
    /// The level-by-level prefix walk, for venue codes nobody registered.
    Open,
}

impl SearchMode {
    /// The mode's name, as in the config and on the wire: `registry` or `open`.
    pub fn name(self) -> &'static str {
        match self {
            SearchMode::Registry => "registry",
            SearchMode::Open => "open",
        }
    }

    /// The mode named `name` ([`SearchMode::name`]); `None` for any other string.
    pub fn parse(name: &str) -> Option<Self> {
        match name {
            "registry" => Some(SearchMode::Registry),
            "open" => Some(SearchMode::Open),
            _ => None,
        }
    }
}

/// The reserved venue code carried by dummy (padding) reports. It never alerts.
pub const DUMMY_VENUE_CODE: u64 = 0;

/// How far ahead of a window's start an upload may arrive (client clock skew), in seconds.
pub const CLOCK_SKEW_SECONDS: u64 = 60;

/// Errors in task parameters.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum TaskError {
    /// The TOML did not parse or a field has the wrong type.
    #[error("task file: {0}")]
    Toml(String),
    /// A field holds a value outside its allowed range; names the field.
    #[error("task field `{field}`: {reason}")]
    Field {
        /// The offending field, as written in the task file (dotted for nested tables).
        field: String,
        /// What is wrong with it.
        reason: String,
    },
}

/// A 32-byte task identifier, written as 64 hex digits in task files.
#[derive(Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct TaskId(pub [u8; 32]);

impl TaskId {
    /// Parses 64 hex digits.
    pub fn from_hex(text: &str) -> Option<Self> {
        decode_hex(text)?.try_into().ok().map(TaskId)
    }

    /// The id from its 32 raw bytes; `None` for any other length.
    pub fn from_slice(bytes: &[u8]) -> Option<Self> {
        bytes.try_into().ok().map(TaskId)
    }

    /// Lower-case hex.
    pub fn to_hex(&self) -> String {
        encode_hex(&self.0)
    }
}

impl std::fmt::Debug for TaskId {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "TaskId({})", self.to_hex())
    }
}

impl std::fmt::Display for TaskId {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(&self.to_hex())
    }
}

/// The differential-privacy parameters of a task (see docs/privacy.md).
#[derive(Clone, Debug, PartialEq)]
pub struct PrivacyParams {
    /// Whether the aggregators add noise. Off only for tests: releases then carry no
    /// guarantee and nothing is charged.
    pub noise: bool,
    /// zCDP budget of one batch (all its releases together).
    pub rho_batch: f64,
    /// zCDP budget per person per day (all batches of a day together).
    pub rho_day: f64,
    /// The delta at which budgets are stated as epsilon.
    pub delta: f64,
    /// Windows per day: window `w` belongs to day `w / windows_per_day`.
    pub windows_per_day: u32,
}

impl PrivacyParams {
    /// The defaults of a task with windows of `window_seconds`: noise on, epsilon 1 per batch
    /// at delta 10^-9, and a day budget that lets every batch of the day be searched once.
    pub fn default_for(window_seconds: u64) -> Self {
        let windows_per_day = default_windows_per_day(window_seconds);
        // The default epsilon and delta are valid: the conversion cannot fail.
        let rho_batch = rho_for_epsilon(DEFAULT_EPSILON_BATCH, DEFAULT_DELTA).unwrap_or(0.0);
        Self {
            noise: true,
            rho_batch,
            rho_day: rho_batch * f64::from(windows_per_day),
            delta: DEFAULT_DELTA,
            windows_per_day,
        }
    }
}

fn default_windows_per_day(window_seconds: u64) -> u32 {
    u32::try_from((86_400 / window_seconds.max(1)).max(1)).unwrap_or(u32::MAX)
}

/// The open walk's plan, which fixes every release's share of the batch budget.
#[derive(Clone, Debug, PartialEq)]
pub struct SearchParams {
    /// Levels descended per step, 1 to 16.
    pub stride: u32,
    /// Share of the batch budget spent on the leaf release, in `(0, 1]`.
    pub leaf_share: f64,
    /// The most candidates one release may have.
    pub max_candidates: usize,
}

impl Default for SearchParams {
    fn default() -> Self {
        Self {
            stride: 8,
            leaf_share: 0.5,
            max_candidates: 1 << 20,
        }
    }
}

/// The public parameters of one task.
#[derive(Clone, Debug, PartialEq)]
pub struct TaskConfig {
    /// The task id; also the Poplar1 application context.
    pub id: TaskId,
    /// What the task counts.
    pub kind: TaskKind,
    /// Width of a venue code in bits (Poplar1's `BITS`): 32 or 64.
    pub bits: u32,
    /// Unix time at which window 0 starts.
    pub start_unix: u64,
    /// Length of a window in seconds.
    pub window_seconds: u64,
    /// How long after a window's end late reports are still accepted; then the batch is sealed.
    pub grace_seconds: u64,
    /// A batch with fewer accepted reports is never released to the collector.
    pub min_batch_size: u64,
    /// Search threshold: a prefix (or venue) is kept when its count reaches it.
    pub threshold: u64,
    /// How the collector searches.
    pub search_mode: SearchMode,
    /// Credential presentations a visitor may make per window (the credential limit N).
    pub presentations_per_window: u32,
    /// The leader's HPKE public keys, current first.
    pub leader_keys: Vec<HpkePublicKey>,
    /// The helper's HPKE public keys, current first.
    pub helper_keys: Vec<HpkePublicKey>,
    /// The collector's HPKE public key: aggregate shares are sealed to it.
    pub collector_key: HpkePublicKey,
    /// The differential-privacy budget.
    pub privacy: PrivacyParams,
    /// The open walk's plan.
    pub search: SearchParams,
    /// The alert rules (of the task's kind).
    pub rules: Rules,
}

/// The TOML shape of a task (hex strings for ids and keys).
#[derive(Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
struct TaskToml {
    id: String,
    kind: TaskKind,
    bits: u32,
    start_unix: u64,
    window_seconds: u64,
    grace_seconds: u64,
    min_batch_size: u64,
    threshold: u64,
    search_mode: SearchMode,
    presentations_per_window: u32,
    leader_keys: Vec<KeyToml>,
    helper_keys: Vec<KeyToml>,
    collector_key: KeyToml,
    #[serde(default)]
    privacy: PrivacyToml,
    #[serde(default)]
    search: SearchToml,
    #[serde(default)]
    rules: RulesToml,
}

#[derive(Default, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
struct PrivacyToml {
    #[serde(skip_serializing_if = "Option::is_none")]
    noise: Option<bool>,
    #[serde(skip_serializing_if = "Option::is_none")]
    rho_batch: Option<f64>,
    #[serde(skip_serializing_if = "Option::is_none")]
    epsilon_batch: Option<f64>,
    #[serde(skip_serializing_if = "Option::is_none")]
    rho_day: Option<f64>,
    #[serde(skip_serializing_if = "Option::is_none")]
    epsilon_day: Option<f64>,
    #[serde(skip_serializing_if = "Option::is_none")]
    delta: Option<f64>,
    #[serde(skip_serializing_if = "Option::is_none")]
    windows_per_day: Option<u32>,
}

#[derive(Default, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
struct SearchToml {
    #[serde(skip_serializing_if = "Option::is_none")]
    stride: Option<u32>,
    #[serde(skip_serializing_if = "Option::is_none")]
    leaf_share: Option<f64>,
    #[serde(skip_serializing_if = "Option::is_none")]
    max_candidates: Option<usize>,
}

#[derive(Default, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
struct RulesToml {
    #[serde(skip_serializing_if = "Option::is_none")]
    crowding: Option<CrowdingToml>,
    #[serde(skip_serializing_if = "Option::is_none")]
    outbreak: Option<OutbreakToml>,
}

#[derive(Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
struct CrowdingToml {
    share_permille: u32,
    min_count: u32,
    #[serde(skip_serializing_if = "Option::is_none")]
    unknown_venue_count: Option<u32>,
}

#[derive(Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
struct OutbreakToml {
    #[serde(skip_serializing_if = "Option::is_none")]
    unknown: Option<CategoryToml>,
    #[serde(default)]
    categories: BTreeMap<String, CategoryToml>,
}

#[derive(Clone, Copy, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
struct CategoryToml {
    orange: u32,
    red: u32,
    customer_minutes: u64,
    staff_minutes: u64,
}

#[derive(Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
struct KeyToml {
    key_id: u32,
    public_key: String,
}

impl TaskConfig {
    /// A well-formed task of `kind` for tests and examples: id `[7; 32]`, 32-bit codes, hourly
    /// windows from the Unix epoch with a minute of grace, registry mode, thresholds and the
    /// credential limit at 1, placeholder HPKE keys (ids 1, 2 and 3 for leader, helper and
    /// collector, each key the id's byte repeated), and the default privacy, search and rules.
    /// Change what a test needs with struct update syntax.
    pub fn example(kind: TaskKind) -> TaskConfig {
        let key = |key_id: u32| HpkePublicKey {
            key_id,
            public_key: [key_id as u8; 32],
        };
        TaskConfig {
            id: TaskId([7; 32]),
            kind,
            bits: 32,
            start_unix: 0,
            window_seconds: 3_600,
            grace_seconds: 60,
            min_batch_size: 1,
            threshold: 1,
            search_mode: SearchMode::Registry,
            presentations_per_window: 1,
            leader_keys: vec![key(1)],
            helper_keys: vec![key(2)],
            collector_key: key(3),
            privacy: PrivacyParams::default_for(3_600),
            search: SearchParams::default(),
            rules: Rules::default_for(kind),
        }
    }

    /// Parses one task from TOML and checks every field.
    pub fn from_toml(text: &str) -> Result<Self, TaskError> {
        let raw: TaskToml = toml::from_str(text).map_err(|e| TaskError::Toml(e.to_string()))?;
        Self::from_raw(raw)
    }

    /// Renders the task as TOML (public values only: there are no secrets in a task).
    pub fn to_toml(&self) -> String {
        let key = |k: &HpkePublicKey| KeyToml {
            key_id: k.key_id,
            public_key: encode_hex(&k.public_key),
        };
        let raw = TaskToml {
            id: self.id.to_hex(),
            kind: self.kind,
            bits: self.bits,
            start_unix: self.start_unix,
            window_seconds: self.window_seconds,
            grace_seconds: self.grace_seconds,
            min_batch_size: self.min_batch_size,
            threshold: self.threshold,
            search_mode: self.search_mode,
            presentations_per_window: self.presentations_per_window,
            leader_keys: self.leader_keys.iter().map(key).collect(),
            helper_keys: self.helper_keys.iter().map(key).collect(),
            collector_key: key(&self.collector_key),
            privacy: PrivacyToml {
                noise: Some(self.privacy.noise),
                rho_batch: Some(self.privacy.rho_batch),
                rho_day: Some(self.privacy.rho_day),
                delta: Some(self.privacy.delta),
                windows_per_day: Some(self.privacy.windows_per_day),
                ..PrivacyToml::default()
            },
            search: SearchToml {
                stride: Some(self.search.stride),
                leaf_share: Some(self.search.leaf_share),
                max_candidates: Some(self.search.max_candidates),
            },
            rules: rules_toml(&self.rules),
        };
        // A struct of strings and integers always serialises.
        toml::to_string(&raw).unwrap_or_default()
    }

    fn from_raw(raw: TaskToml) -> Result<Self, TaskError> {
        let id = TaskId::from_hex(&raw.id).ok_or_else(|| bad("id", "expected 64 hex digits"))?;
        if raw.bits != 32 && raw.bits != 64 {
            return Err(bad("bits", "must be 32 or 64"));
        }
        if raw.window_seconds == 0 {
            return Err(bad("window_seconds", "must be positive"));
        }
        if raw.threshold == 0 {
            return Err(bad("threshold", "must be positive"));
        }
        if raw.presentations_per_window == 0 {
            return Err(bad("presentations_per_window", "must be positive"));
        }
        let keys =
            |name: &'static str, list: &[KeyToml]| -> Result<Vec<HpkePublicKey>, TaskError> {
                if list.is_empty() {
                    return Err(bad(name, "needs at least one key"));
                }
                list.iter().map(|k| parse_key(name, k)).collect()
            };
        let privacy = parse_privacy(&raw.privacy, raw.window_seconds)?;
        let search = parse_search(&raw.search)?;
        let rules = parse_rules(raw.kind, &raw.rules)?;
        Ok(TaskConfig {
            id,
            kind: raw.kind,
            bits: raw.bits,
            start_unix: raw.start_unix,
            window_seconds: raw.window_seconds,
            grace_seconds: raw.grace_seconds,
            min_batch_size: raw.min_batch_size,
            threshold: raw.threshold,
            search_mode: raw.search_mode,
            presentations_per_window: raw.presentations_per_window,
            leader_keys: keys("leader_keys", &raw.leader_keys)?,
            helper_keys: keys("helper_keys", &raw.helper_keys)?,
            collector_key: parse_key("collector_key", &raw.collector_key)?,
            privacy,
            search,
            rules,
        })
    }

    /// The differential-privacy configuration of the task's searches: its budgets, with the
    /// credential limit `presentations_per_window` as the sensitivity.
    pub fn dp(&self) -> DpConfig {
        DpConfig {
            sensitivity: self.presentations_per_window,
            rho_batch: self.privacy.rho_batch,
            rho_day: self.privacy.rho_day,
            windows_per_day: self.privacy.windows_per_day,
            noise: self.privacy.noise,
        }
    }

    /// The task's search: its mode and bits, the open walk's plan, and `threshold` as the
    /// open walk's pruning threshold. Every party derives the same plan of releases from it.
    pub fn search_config(&self, threshold: u64) -> SearchConfig {
        let base = match self.search_mode {
            SearchMode::Registry => SearchConfig::registry(self.bits),
            SearchMode::Open => SearchConfig::open(self.bits, threshold),
        };
        SearchConfig {
            stride: self.search.stride,
            leaf_share: if self.search_mode == SearchMode::Open {
                self.search.leaf_share
            } else {
                base.leaf_share
            },
            max_candidates: self.search.max_candidates,
            ..base
        }
    }

    /// The window that contains the Unix time `unix`, or `None` before the task starts.
    pub fn window_at(&self, unix: u64) -> Option<u64> {
        unix.checked_sub(self.start_unix)
            .map(|d| d / self.window_seconds)
    }

    /// Unix time at which window `window` starts (saturating).
    pub fn window_start(&self, window: u64) -> u64 {
        self.start_unix
            .saturating_add(window.saturating_mul(self.window_seconds))
    }

    /// Unix time at which window `window`'s batch is sealed: its end plus the grace period.
    pub fn seal_time(&self, window: u64) -> u64 {
        self.window_start(window.saturating_add(1))
            .saturating_add(self.grace_seconds)
    }

    /// Whether window `window`'s batch is sealed at `now`.
    pub fn is_sealed(&self, window: u64, now: u64) -> bool {
        now >= self.seal_time(window)
    }

    /// Why an upload for `window` at `now` is refused, if it is.
    pub fn check_upload_window(&self, window: u64, now: u64) -> Result<(), WindowRefusal> {
        if self.is_sealed(window, now) {
            return Err(WindowRefusal::Sealed);
        }
        if self.window_start(window) > now.saturating_add(CLOCK_SKEW_SECONDS) {
            return Err(WindowRefusal::NotYetOpen);
        }
        Ok(())
    }
}

/// Why a window does not take uploads.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum WindowRefusal {
    /// The window's batch is sealed.
    Sealed,
    /// The window starts in the future (beyond the clock-skew allowance).
    NotYetOpen,
}

fn parse_key(name: &'static str, key: &KeyToml) -> Result<HpkePublicKey, TaskError> {
    let bytes = decode_hex(&key.public_key)
        .and_then(|b| <[u8; 32]>::try_from(b).ok())
        .ok_or_else(|| bad(name, "public_key must be 64 hex digits (an X25519 key)"))?;
    Ok(HpkePublicKey {
        key_id: key.key_id,
        public_key: bytes,
    })
}

fn bad(field: impl Into<String>, reason: impl Into<String>) -> TaskError {
    TaskError::Field {
        field: field.into(),
        reason: reason.into(),
    }
}

/// The default epsilon of one batch, and the delta it is stated at (docs/privacy.md).
const DEFAULT_EPSILON_BATCH: f64 = 1.0;
const DEFAULT_DELTA: f64 = 1e-9;

/// One budget given as rho or as epsilon (at `delta`), or `None` if neither is.
fn budget(
    rho: Option<f64>,
    epsilon: Option<f64>,
    delta: f64,
    names: [&str; 2],
) -> Result<Option<f64>, TaskError> {
    let positive = |name: &str, v: f64| {
        if v.is_finite() && v > 0.0 {
            Ok(v)
        } else {
            Err(bad(name, "must be a positive number"))
        }
    };
    match (rho, epsilon) {
        (Some(_), Some(_)) => Err(bad(
            names[1],
            format!("give {} or {}, not both", names[0], names[1]),
        )),
        (Some(r), None) => positive(names[0], r).map(Some),
        (None, Some(e)) => {
            let e = positive(names[1], e)?;
            rho_for_epsilon(e, delta)
                .map(Some)
                .map_err(|err| bad(names[1], err.to_string()))
        }
        (None, None) => Ok(None),
    }
}

fn parse_privacy(raw: &PrivacyToml, window_seconds: u64) -> Result<PrivacyParams, TaskError> {
    let delta = raw.delta.unwrap_or(DEFAULT_DELTA);
    if !(delta > 0.0 && delta < 1.0) {
        return Err(bad("privacy.delta", "must lie strictly between 0 and 1"));
    }
    let windows_per_day = match raw.windows_per_day {
        Some(0) => return Err(bad("privacy.windows_per_day", "must be positive")),
        Some(n) => n,
        None => default_windows_per_day(window_seconds),
    };
    let names = ["privacy.rho_batch", "privacy.epsilon_batch"];
    let rho_batch = match budget(raw.rho_batch, raw.epsilon_batch, delta, names)? {
        Some(r) => r,
        None => rho_for_epsilon(DEFAULT_EPSILON_BATCH, delta)
            .map_err(|e| bad("privacy.delta", e.to_string()))?,
    };
    let names = ["privacy.rho_day", "privacy.epsilon_day"];
    let rho_day = budget(raw.rho_day, raw.epsilon_day, delta, names)?
        .unwrap_or(rho_batch * f64::from(windows_per_day));
    if rho_day < rho_batch {
        let name = if raw.epsilon_day.is_some() {
            "privacy.epsilon_day"
        } else {
            "privacy.rho_day"
        };
        return Err(bad(
            name,
            "is below the batch budget: no batch could be searched",
        ));
    }
    Ok(PrivacyParams {
        noise: raw.noise.unwrap_or(true),
        rho_batch,
        rho_day,
        delta,
        windows_per_day,
    })
}

fn parse_search(raw: &SearchToml) -> Result<SearchParams, TaskError> {
    let default = SearchParams::default();
    let params = SearchParams {
        stride: raw.stride.unwrap_or(default.stride),
        leaf_share: raw.leaf_share.unwrap_or(default.leaf_share),
        max_candidates: raw.max_candidates.unwrap_or(default.max_candidates),
    };
    if !(1..=16).contains(&params.stride) {
        return Err(bad("search.stride", "must lie in 1..=16"));
    }
    if !(params.leaf_share > 0.0 && params.leaf_share <= 1.0) {
        return Err(bad("search.leaf_share", "must lie in (0, 1]"));
    }
    if params.max_candidates == 0 {
        return Err(bad("search.max_candidates", "must be positive"));
    }
    Ok(params)
}

fn parse_rules(kind: TaskKind, raw: &RulesToml) -> Result<Rules, TaskError> {
    match (kind, &raw.crowding, &raw.outbreak) {
        (TaskKind::Crowding, _, Some(_)) => Err(bad("rules.outbreak", "this is a crowding task")),
        (TaskKind::Outbreak, Some(_), _) => Err(bad("rules.crowding", "this is an outbreak task")),
        (TaskKind::Crowding, None, None) | (TaskKind::Outbreak, None, None) => {
            Ok(Rules::default_for(kind))
        }
        (TaskKind::Crowding, Some(c), None) => {
            let rule = CrowdingRule::new(c.share_permille, c.min_count)
                .and_then(|r| r.with_unknown_venue_count(c.unknown_venue_count))
                .map_err(|e| rule_error("rules.crowding", e))?;
            Ok(Rules::Crowding(rule))
        }
        (TaskKind::Outbreak, None, Some(o)) => parse_outbreak(o).map(Rules::Outbreak),
    }
}

fn parse_outbreak(raw: &OutbreakToml) -> Result<OutbreakRule, TaskError> {
    let defaults = OutbreakRule::default_rules();
    let category = |name: &str, c: &CategoryToml| {
        let secs = |minutes: u64| minutes.saturating_mul(60);
        CategoryRule::new(
            c.orange,
            c.red,
            secs(c.customer_minutes),
            secs(c.staff_minutes),
        )
        .map_err(|e| rule_error(name, e))
    };
    let mut categories = defaults.categories().clone();
    for (name, entry) in &raw.categories {
        let path = format!("rules.outbreak.categories.{name}");
        let c =
            VenueCategory::from_name(name).ok_or_else(|| bad(&path, "unknown venue category"))?;
        categories.insert(c, category(&path, entry)?);
    }
    let unknown = match &raw.unknown {
        Some(u) => category("rules.outbreak.unknown", u)?,
        None => *defaults.unknown(),
    };
    Ok(OutbreakRule::new(categories, unknown))
}

/// A rule error with its parameter's path under `table`.
fn rule_error(table: &str, e: crate::rules::RulesError) -> TaskError {
    match e {
        crate::rules::RulesError::InvalidParameter { name, reason } => {
            let name = match name {
                "exposure_secs" => "customer_minutes, staff_minutes",
                other => other,
            };
            bad(format!("{table}.{name}"), reason)
        }
        other => bad(table, other.to_string()),
    }
}

fn rules_toml(rules: &Rules) -> RulesToml {
    let category = |r: &CategoryRule| CategoryToml {
        orange: r.orange(),
        red: r.red(),
        customer_minutes: r.customer_exposure_secs() / 60,
        staff_minutes: r.staff_exposure_secs() / 60,
    };
    match rules {
        Rules::Crowding(c) => RulesToml {
            crowding: Some(CrowdingToml {
                share_permille: c.share_permille(),
                min_count: c.min_count(),
                unknown_venue_count: c.unknown_venue_count(),
            }),
            outbreak: None,
        },
        Rules::Outbreak(o) => RulesToml {
            crowding: None,
            outbreak: Some(OutbreakToml {
                unknown: Some(category(o.unknown())),
                categories: o
                    .categories()
                    .iter()
                    .map(|(c, r)| (c.name().to_string(), category(r)))
                    .collect(),
            }),
        },
    }
}

/// Lower-case hex of `bytes`.
pub fn encode_hex(bytes: &[u8]) -> String {
    const DIGITS: &[u8; 16] = b"0123456789abcdef";
    let mut out = String::with_capacity(bytes.len() * 2);
    for b in bytes {
        out.push(DIGITS[usize::from(b >> 4)] as char);
        out.push(DIGITS[usize::from(b & 15)] as char);
    }
    out
}

/// Bytes from hex (either case); `None` on odd length or a non-hex digit.
pub fn decode_hex(text: &str) -> Option<Vec<u8>> {
    let digit = |c: u8| (c as char).to_digit(16).map(|d| d as u8);
    let bytes = text.as_bytes();
    if !bytes.len().is_multiple_of(2) {
        return None;
    }
    bytes
        .chunks(2)
        .map(|pair| Some(digit(pair[0])? << 4 | digit(pair[1])?))
        .collect()
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;

    fn sample() -> TaskConfig {
        TaskConfig {
            start_unix: 1_000,
            grace_seconds: 600,
            min_batch_size: 10,
            threshold: 5,
            presentations_per_window: 4,
            privacy: PrivacyParams {
                noise: true,
                rho_batch: 0.015,
                rho_day: 0.2,
                delta: 1e-9,
                windows_per_day: 24,
            },
            ..TaskConfig::example(TaskKind::Crowding)
        }
    }

    /// The sample's TOML without its `[privacy]`, `[search]` and `[rules]` tables, then `extra`.
    fn with_tables(extra: &str) -> String {
        let text = sample().to_toml();
        let cut = text.find("\n[privacy]").unwrap();
        format!("{}\n{extra}\n", &text[..cut])
    }

    fn field_of(text: &str) -> String {
        match TaskConfig::from_toml(text) {
            Err(TaskError::Field { field, .. }) => field,
            other => panic!("expected a field error, got {other:?}"),
        }
    }

    #[test]
    fn toml_round_trips() {
        let task = sample();
        assert_eq!(TaskConfig::from_toml(&task.to_toml()).unwrap(), task);
        let outbreak = TaskConfig {
            kind: TaskKind::Outbreak,
            rules: Rules::default_for(TaskKind::Outbreak),
            ..sample()
        };
        assert_eq!(
            TaskConfig::from_toml(&outbreak.to_toml()).unwrap(),
            outbreak
        );
    }

    #[test]
    fn missing_tables_take_the_documented_defaults() {
        let task = TaskConfig::from_toml(&with_tables("")).unwrap();
        assert!(task.privacy.noise);
        assert_eq!(task.privacy.delta, 1e-9);
        assert_eq!(task.privacy.windows_per_day, 24);
        let rho = rho_for_epsilon(1.0, 1e-9).unwrap();
        assert_eq!(task.privacy.rho_batch, rho);
        assert_eq!(task.privacy.rho_day, 24.0 * rho);
        assert_eq!(task.search, SearchParams::default());
        assert_eq!(task.rules, Rules::default_for(TaskKind::Crowding));
        let dp = task.dp();
        assert_eq!((dp.sensitivity, dp.noise), (4, true));
        assert_eq!(task.search_config(7).levels(), vec![31]);
        assert_eq!(task.privacy, PrivacyParams::default_for(3_600));
    }

    #[test]
    fn budgets_can_be_given_as_epsilon() {
        let task = TaskConfig::from_toml(&with_tables(
            "[privacy]\nepsilon_batch = 0.5\nepsilon_day = 2.0\ndelta = 1e-6\nnoise = false\n",
        ))
        .unwrap();
        assert_eq!(task.privacy.rho_batch, rho_for_epsilon(0.5, 1e-6).unwrap());
        assert_eq!(task.privacy.rho_day, rho_for_epsilon(2.0, 1e-6).unwrap());
        assert!(!task.privacy.noise);
    }

    #[test]
    fn every_privacy_rule_names_its_field() {
        for (table, field) in [
            (
                "rho_batch = 0.1\nepsilon_batch = 1.0",
                "privacy.epsilon_batch",
            ),
            ("rho_batch = 0.0", "privacy.rho_batch"),
            ("rho_batch = -1.0", "privacy.rho_batch"),
            ("epsilon_batch = nan", "privacy.epsilon_batch"),
            ("rho_day = 0.1\nepsilon_day = 1.0", "privacy.epsilon_day"),
            ("rho_day = inf", "privacy.rho_day"),
            ("rho_batch = 0.1\nrho_day = 0.05", "privacy.rho_day"),
            (
                "epsilon_batch = 2.0\nepsilon_day = 1.0",
                "privacy.epsilon_day",
            ),
            ("delta = 0.0", "privacy.delta"),
            ("delta = 1.0", "privacy.delta"),
            ("windows_per_day = 0", "privacy.windows_per_day"),
        ] {
            let text = with_tables(&format!("[privacy]\n{table}"));
            assert_eq!(field_of(&text), field, "{table}");
        }
    }

    #[test]
    fn every_search_rule_names_its_field() {
        for (table, field) in [
            ("stride = 0", "search.stride"),
            ("stride = 17", "search.stride"),
            ("leaf_share = 0.0", "search.leaf_share"),
            ("leaf_share = 1.5", "search.leaf_share"),
            ("max_candidates = 0", "search.max_candidates"),
        ] {
            let text = with_tables(&format!("[search]\n{table}"));
            assert_eq!(field_of(&text), field, "{table}");
        }
    }

    #[test]
    fn every_rule_parameter_names_its_field() {
        let crowding = |body: &str| with_tables(&format!("[rules.crowding]\n{body}"));
        assert_eq!(
            field_of(&crowding("share_permille = 0\nmin_count = 1")),
            "rules.crowding.share_permille"
        );
        assert_eq!(
            field_of(&crowding("share_permille = 10001\nmin_count = 1")),
            "rules.crowding.share_permille"
        );
        assert_eq!(
            field_of(&crowding("share_permille = 800\nmin_count = 0")),
            "rules.crowding.min_count"
        );
        assert_eq!(
            field_of(&crowding(
                "share_permille = 800\nmin_count = 10\nunknown_venue_count = 9"
            )),
            "rules.crowding.unknown_venue_count"
        );
        let ok = TaskConfig::from_toml(&crowding(
            "share_permille = 500\nmin_count = 2\nunknown_venue_count = 9",
        ))
        .unwrap();
        assert_eq!(ok.rules.min_threshold([]), 9);

        // A crowding task takes no outbreak rules, and the other way round.
        let wrong = with_tables("[rules.outbreak]\n");
        assert_eq!(field_of(&wrong), "rules.outbreak");
        let outbreak = |body: &str| {
            with_tables(&format!("[rules.outbreak]\n{body}"))
                .replace("kind = \"crowding\"", "kind = \"outbreak\"")
        };
        let wrong = outbreak("").replace(
            "[rules.outbreak]",
            "[rules.crowding]\nshare_permille = 1\nmin_count = 1",
        );
        assert_eq!(field_of(&wrong), "rules.crowding");

        let entry =
            |c: &str, body: &str| outbreak(&format!("[rules.outbreak.categories.{c}]\n{body}"));
        assert_eq!(
            field_of(&entry(
                "bar",
                "orange = 0\nred = 3\ncustomer_minutes = 60\nstaff_minutes = 60"
            )),
            "rules.outbreak.categories.bar.orange"
        );
        assert_eq!(
            field_of(&entry(
                "bar",
                "orange = 4\nred = 3\ncustomer_minutes = 60\nstaff_minutes = 60"
            )),
            "rules.outbreak.categories.bar.orange"
        );
        assert_eq!(
            field_of(&entry(
                "bar",
                "orange = 1\nred = 3\ncustomer_minutes = 0\nstaff_minutes = 60"
            )),
            "rules.outbreak.categories.bar.customer_minutes, staff_minutes"
        );
        assert_eq!(
            field_of(&entry(
                "disco",
                "orange = 1\nred = 3\ncustomer_minutes = 60\nstaff_minutes = 60"
            )),
            "rules.outbreak.categories.disco"
        );
        assert_eq!(
            field_of(&outbreak(
                "unknown = { orange = 2, red = 1, customer_minutes = 60, staff_minutes = 60 }"
            )),
            "rules.outbreak.unknown.orange"
        );

        // A listed category replaces its default; the others keep theirs.
        let task = TaskConfig::from_toml(&entry(
            "retail",
            "orange = 1\nred = 2\ncustomer_minutes = 30\nstaff_minutes = 480",
        ))
        .unwrap();
        let Rules::Outbreak(rule) = &task.rules else {
            panic!("outbreak rules")
        };
        let retail = rule.categories()[&VenueCategory::Retail];
        assert_eq!((retail.orange(), retail.red()), (1, 2));
        assert_eq!(retail.customer_exposure_secs(), 1800);
        let defaults = OutbreakRule::default_rules();
        assert_eq!(
            rule.categories()[&VenueCategory::Bar],
            defaults.categories()[&VenueCategory::Bar]
        );
    }

    #[test]
    fn bad_bits_names_the_field() {
        let text = sample().to_toml().replace("bits = 32", "bits = 31");
        let err = TaskConfig::from_toml(&text).unwrap_err();
        assert!(err.to_string().contains("`bits`"), "{err}");
    }

    #[test]
    fn unknown_field_is_refused() {
        let text = format!("{}\nsurprise = 1\n", sample().to_toml());
        assert!(TaskConfig::from_toml(&text).is_err());
    }

    #[test]
    fn window_seals_after_end_plus_grace() {
        let task = sample();
        assert_eq!(task.window_at(999), None);
        assert_eq!(task.window_at(1_000 + 3_600), Some(1));
        let seal = 1_000 + 3_600 + 600;
        assert!(!task.is_sealed(0, seal - 1));
        assert!(task.is_sealed(0, seal));
        assert_eq!(task.check_upload_window(0, seal - 1), Ok(()));
        assert_eq!(
            task.check_upload_window(0, seal),
            Err(WindowRefusal::Sealed)
        );
        assert_eq!(
            task.check_upload_window(5, 1_000),
            Err(WindowRefusal::NotYetOpen)
        );
    }

    #[test]
    fn hex_rejects_odd_and_non_hex() {
        assert_eq!(decode_hex("abc"), None);
        assert_eq!(decode_hex("zz"), None);
        assert_eq!(decode_hex("0aFF"), Some(vec![10, 255]));
    }
}
