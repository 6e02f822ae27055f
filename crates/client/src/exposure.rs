//! The signed exposure list and matching it against the diary, on the device.
//!
//! DESIGN.md section 3, steps 7 and 8: the collector publishes the alerted (venue code,
//! window) cells as a list signed with its registry key; each phone downloads the whole list
//! (so the server learns nothing about who matched), checks the signature, and looks for
//! cells its own diary touches. A match is shown to the visitor and never leaves the phone.
//!
//! Wire format (protobuf, written with prost's derive; canonical like the venue payload):
//!
//! ```text
//! ExposureList { uint32 version = 1; string task_id = 2; uint64 issued_at = 3;
//!                uint32 window_secs = 4; repeated ExposureCell cells = 5;
//!                bytes key_id = 6; bytes signature = 7 }
//! ExposureCell { fixed64 venue_code = 1; uint64 window_start = 2; uint32 level = 3 }
//! ```
//!
//! The signature (Ed25519) covers [`SIGNING_DST`] and the encoding without the signature.
//! Cells are sorted by (venue code, window) without repeats, windows are aligned to
//! `window_secs`, and the list must not claim to come from the future.

use prost::Message;

use crate::diary::CheckIn;
use crate::registry::{KEY_ID_LEN, RegistryKey, TrustedKeys};
use crate::upload::windows_touched;
use crate::{DAY_SECS, UnixSeconds};

/// The list version this build reads and writes.
pub const EXPOSURE_VERSION: u32 = 1;
/// Domain separator of the collector's signature.
pub const SIGNING_DST: &[u8] = b"hotspot/v1/exposure-list-signature";
/// Largest list accepted, in bytes (about 180,000 cells).
pub const MAX_LIST_BYTES: usize = 4 << 20;
/// Clock skew tolerated on `issued_at`, in seconds.
pub const MAX_SKEW_SECS: u64 = 300;

/// The signed list.
#[derive(Clone, PartialEq, Message)]
pub struct ExposureList {
    /// Format version.
    #[prost(uint32, tag = "1")]
    pub version: u32,
    /// The outbreak task the cells belong to.
    #[prost(string, tag = "2")]
    pub task_id: String,
    /// Publication time (Unix seconds).
    #[prost(uint64, tag = "3")]
    pub issued_at: u64,
    /// Window length in seconds.
    #[prost(uint32, tag = "4")]
    pub window_secs: u32,
    /// Alerted cells.
    #[prost(message, repeated, tag = "5")]
    pub cells: Vec<ExposureCell>,
    /// Signing key id.
    #[prost(bytes = "vec", tag = "6")]
    pub key_id: Vec<u8>,
    /// Ed25519 signature.
    #[prost(bytes = "vec", tag = "7")]
    pub signature: Vec<u8>,
}

/// One alerted venue-window.
#[derive(Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Message)]
pub struct ExposureCell {
    /// Venue code.
    #[prost(fixed64, tag = "1")]
    pub venue_code: u64,
    /// Window start (Unix seconds).
    #[prost(uint64, tag = "2")]
    pub window_start: u64,
    /// Alert level (1 = orange, 2 = red, per the outbreak rule).
    #[prost(uint32, tag = "3")]
    pub level: u32,
}

/// Why a list was rejected.
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum ExposureError {
    /// Larger than [`MAX_LIST_BYTES`].
    #[error("exposure list too large: {0} bytes")]
    Oversize(usize),
    /// Not a protobuf `ExposureList`.
    #[error("exposure list is malformed")]
    Malformed,
    /// Unknown version.
    #[error("unknown exposure list version {0}")]
    UnknownVersion(u32),
    /// Not the canonical encoding.
    #[error("exposure list encoding is not canonical")]
    NonCanonical,
    /// A field breaks its rule.
    #[error("invalid exposure list field `{0}`")]
    InvalidField(&'static str),
    /// Signed by a key the app does not trust.
    #[error("exposure list signed by an unknown key")]
    UnknownKey,
    /// The signature does not verify.
    #[error("bad exposure list signature")]
    BadSignature,
    /// `issued_at` lies in the future.
    #[error("exposure list is dated in the future")]
    FromTheFuture,
}

impl ExposureList {
    /// Sorts the cells and signs the list (the collector's side).
    pub fn sign(mut self, key: &RegistryKey) -> Self {
        self.cells.sort();
        self.cells.dedup_by_key(|c| (c.venue_code, c.window_start));
        self.key_id = key.key_id().to_vec();
        self.signature = key.sign(&signing_input(&self)).to_vec();
        self
    }
}

fn signing_input(list: &ExposureList) -> Vec<u8> {
    let mut input = SIGNING_DST.to_vec();
    let unsigned = ExposureList {
        signature: Vec::new(),
        ..list.clone()
    };
    unsigned
        .encode(&mut input)
        .unwrap_or_else(|_| unreachable!("a Vec grows as needed"));
    input
}

/// Parses and verifies a downloaded list.
pub fn verify_list(
    bytes: &[u8],
    keys: &TrustedKeys,
    now: UnixSeconds,
) -> Result<ExposureList, ExposureError> {
    // 1. Size, decoding, version, canonical form.
    if bytes.len() > MAX_LIST_BYTES {
        return Err(ExposureError::Oversize(bytes.len()));
    }
    let list = ExposureList::decode(bytes).map_err(|_| ExposureError::Malformed)?;
    if list.version != EXPOSURE_VERSION {
        return Err(ExposureError::UnknownVersion(list.version));
    }
    if list.encode_to_vec() != bytes {
        return Err(ExposureError::NonCanonical);
    }

    // 2. Field rules.
    check_fields(&list)?;

    // 3. Signature.
    let key = keys.get(&list.key_id).ok_or(ExposureError::UnknownKey)?;
    let signature: [u8; 64] = list
        .signature
        .as_slice()
        .try_into()
        .map_err(|_| ExposureError::InvalidField("signature"))?;
    if !key.verify(&signing_input(&list), &signature) {
        return Err(ExposureError::BadSignature);
    }

    // 4. Freshness.
    if list.issued_at > now + MAX_SKEW_SECS {
        return Err(ExposureError::FromTheFuture);
    }
    Ok(list)
}

fn check_fields(list: &ExposureList) -> Result<(), ExposureError> {
    if list.key_id.len() != KEY_ID_LEN {
        return Err(ExposureError::InvalidField("key_id"));
    }
    if list.window_secs == 0 || u64::from(list.window_secs) > DAY_SECS {
        return Err(ExposureError::InvalidField("window_secs"));
    }
    let window = u64::from(list.window_secs);
    if list
        .cells
        .iter()
        .any(|c| c.venue_code == 0 || c.window_start % window != 0)
    {
        return Err(ExposureError::InvalidField("cells"));
    }
    let sorted = list
        .cells
        .windows(2)
        .all(|p| (p[0].venue_code, p[0].window_start) < (p[1].venue_code, p[1].window_start));
    if !sorted {
        return Err(ExposureError::InvalidField("cells"));
    }
    Ok(())
}

/// A diary check-in that touched an alerted cell.
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
    /// Alert level.
    pub level: u32,
}

/// Every (check-in, alerted window) pair where the visitor was present during the window.
pub fn match_diary(list: &ExposureList, checkins: &[CheckIn]) -> Vec<ExposureMatch> {
    let window = u64::from(list.window_secs.max(1));
    let mut matches = Vec::new();
    for checkin in checkins {
        for start in windows_touched(checkin.arrival, checkin.departure, window) {
            let key = (checkin.venue.venue_code, start);
            // Cells are sorted by (venue, window): binary search.
            if let Ok(i) = list
                .cells
                .binary_search_by_key(&key, |c| (c.venue_code, c.window_start))
            {
                matches.push(ExposureMatch {
                    checkin_id: checkin.id,
                    venue_code: checkin.venue.venue_code,
                    venue_name: checkin.venue.name.clone(),
                    window_start: start,
                    level: list.cells[i].level,
                });
            }
        }
    }
    matches
}

#[cfg(test)]
mod tests;
