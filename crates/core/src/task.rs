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

use serde::{Deserialize, Serialize};

use crate::envelope::HpkePublicKey;

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
        /// The offending field, as written in the task file.
        field: &'static str,
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

/// The public parameters of one task.
#[derive(Clone, Debug, PartialEq, Eq)]
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
}

#[derive(Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
struct KeyToml {
    key_id: u32,
    public_key: String,
}

impl TaskConfig {
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
        };
        // A struct of strings and integers always serialises.
        toml::to_string(&raw).unwrap_or_default()
    }

    fn from_raw(raw: TaskToml) -> Result<Self, TaskError> {
        let field = |field: &'static str, reason: &str| TaskError::Field {
            field,
            reason: reason.to_string(),
        };
        let id = TaskId::from_hex(&raw.id).ok_or_else(|| field("id", "expected 64 hex digits"))?;
        if raw.bits != 32 && raw.bits != 64 {
            return Err(field("bits", "must be 32 or 64"));
        }
        if raw.window_seconds == 0 {
            return Err(field("window_seconds", "must be positive"));
        }
        if raw.threshold == 0 {
            return Err(field("threshold", "must be positive"));
        }
        if raw.presentations_per_window == 0 {
            return Err(field("presentations_per_window", "must be positive"));
        }
        let keys =
            |name: &'static str, list: &[KeyToml]| -> Result<Vec<HpkePublicKey>, TaskError> {
                if list.is_empty() {
                    return Err(field(name, "needs at least one key"));
                }
                list.iter().map(|k| parse_key(name, k)).collect()
            };
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
        })
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
        .ok_or_else(|| TaskError::Field {
            field: name,
            reason: "public_key must be 64 hex digits (an X25519 key)".to_string(),
        })?;
    Ok(HpkePublicKey {
        key_id: key.key_id,
        public_key: bytes,
    })
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
        let key = |id| HpkePublicKey {
            key_id: id,
            public_key: [id as u8; 32],
        };
        TaskConfig {
            id: TaskId([7; 32]),
            kind: TaskKind::Crowding,
            bits: 32,
            start_unix: 1_000,
            window_seconds: 3_600,
            grace_seconds: 600,
            min_batch_size: 10,
            threshold: 5,
            search_mode: SearchMode::Registry,
            presentations_per_window: 4,
            leader_keys: vec![key(1)],
            helper_keys: vec![key(2)],
            collector_key: key(3),
        }
    }

    #[test]
    fn toml_round_trips() {
        let task = sample();
        assert_eq!(TaskConfig::from_toml(&task.to_toml()).unwrap(), task);
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
