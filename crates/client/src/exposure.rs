//! The signed exposure list and matching it against the diary, on the device.
//!
//! DESIGN.md section 3, steps 7 and 8: the collector publishes the alerted (venue code,
//! window) cells as a list signed with the health authority's Ed25519 key; each phone
//! downloads the whole list (so the server learns nothing about who matched), checks the
//! signature, and looks for cells its own diary touches. A match is shown to the visitor and
//! never leaves the phone.
//!
//! The wire format, its canonical decoding and the signature are crates/dashboard's
//! [`hotspot_dashboard::exposure`] (the collector serves exactly that); this module adds what
//! only a phone decides:
//!
//! * which keys it trusts ([`TrustedKeys`]; the list names no key, so each trusted key is
//!   tried, and there are only ever one or two during a rotation);
//! * that a list is never older than the one it holds (`held_version`, kept in the diary);
//! * that a list does not claim to come from the future (beyond [`MAX_SKEW_SECS`]);
//! * the match of cells against check-ins.

use crate::UnixSeconds;
use crate::diary::CheckIn;
use crate::registry::TrustedKeys;

pub use hotspot_dashboard::exposure::{
    ExposureCell, ExposureError as FormatError, ExposureLevel, ExposureList, MAX_CELLS,
    MAX_LIST_BYTES,
};

/// Clock skew tolerated on `issued_at`, in seconds.
pub const MAX_SKEW_SECS: u64 = 300;

/// Why a downloaded list was refused.
#[derive(Debug, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum ExposureError {
    /// The bytes are not a canonical list (truncated, bad magic, bad length, unknown level,
    /// bad window, unsorted or repeated cells).
    #[error("exposure list is malformed: {0}")]
    Format(FormatError),
    /// The app trusts no key at all.
    #[error("no trusted key to verify the exposure list with")]
    NoTrustedKey,
    /// No trusted key verifies the signature.
    #[error("exposure list signature does not verify under any trusted key")]
    BadSignature,
    /// The list is not newer than the one the app holds.
    #[error("exposure list version {got} is not newer than the held version {held}")]
    Rollback {
        /// Version offered.
        got: u64,
        /// Version held.
        held: u64,
    },
    /// `issued_at` lies in the future.
    #[error("exposure list is dated {issued_at}, in the future")]
    FromTheFuture {
        /// The claimed signing time.
        issued_at: UnixSeconds,
    },
}

/// Decodes `bytes`, checks the signature under one of `keys`, and refuses a list older than
/// `held_version` (0: none held) or dated after `now` plus the allowed skew.
pub fn verify_list(
    bytes: &[u8],
    keys: &TrustedKeys,
    held_version: u64,
    now: UnixSeconds,
) -> Result<ExposureList, ExposureError> {
    // 1. Canonical decoding (once) and the signature under any trusted key.
    if keys.is_empty() {
        return Err(ExposureError::NoTrustedKey);
    }
    let trusted: Vec<_> = keys.iter().map(|key| key.verifying_key()).collect();
    let list = ExposureList::verify_any(bytes, &trusted).map_err(|e| match e {
        FormatError::BadSignature => ExposureError::BadSignature,
        other => ExposureError::Format(other),
    })?;

    // 2. Never go back to an older list.
    list.check_newer(held_version).map_err(|e| match e {
        FormatError::Rollback { got, held } => ExposureError::Rollback { got, held },
        other => ExposureError::Format(other),
    })?;

    // 3. Freshness.
    if list.issued_at() > now.saturating_add(MAX_SKEW_SECS) {
        return Err(ExposureError::FromTheFuture {
            issued_at: list.issued_at(),
        });
    }
    Ok(list)
}

/// A diary check-in that overlapped an alerted cell.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ExposureMatch {
    /// The diary's check-in id.
    pub checkin_id: u64,
    /// Venue code.
    pub venue_code: u64,
    /// Venue name as scanned (empty for typed codes).
    pub venue_name: String,
    /// Alerted window start.
    pub window_start: UnixSeconds,
    /// Alerted window length in seconds.
    pub window_secs: u32,
    /// Alert level.
    pub level: ExposureLevel,
}

/// Every (check-in, alerted cell) pair where the visitor was present during the cell's
/// window: `[arrival, departure)` overlaps `[window_start, window_start + window_secs)`.
pub fn match_diary(list: &ExposureList, checkins: &[CheckIn]) -> Vec<ExposureMatch> {
    let cells = list.cells();
    let mut matches = Vec::new();
    for checkin in checkins {
        let code = checkin.venue.venue_code;
        // Cells are sorted by (venue, window start): jump to this venue's run.
        let first = cells.partition_point(|c| c.venue_code < code);
        for cell in cells[first..].iter().take_while(|c| c.venue_code == code) {
            let end = cell
                .window_start
                .saturating_add(u64::from(cell.window_secs));
            if checkin.arrival < end && cell.window_start < checkin.departure {
                matches.push(ExposureMatch {
                    checkin_id: checkin.id,
                    venue_code: code,
                    venue_name: checkin.venue.name.clone(),
                    window_start: cell.window_start,
                    window_secs: cell.window_secs,
                    level: cell.level,
                });
            }
        }
    }
    matches
}

#[cfg(test)]
mod tests;
