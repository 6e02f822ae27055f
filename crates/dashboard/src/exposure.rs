//! The signed exposure list: the (venue code, window) cells of outbreak alerts that visitor
//! apps download and match against their local diary (DESIGN.md section 3, steps 7 and 8).
//!
//! The list is public; what must hold is that it comes from the health authority and that an
//! app never goes back to an older list. So it is signed with the authority's Ed25519 key
//! (RFC 8032, `ed25519-dalek`, verified with `verify_strict`) under a domain-separating
//! context, and carries a version that only grows.
//!
//! # Wire format, version 1 (all integers big-endian)
//!
//! ```text
//! list      = body || signature
//! body      = magic || version || issued_at || count || cell * count
//! magic     = "HSEXPL01"                      8 bytes
//! version   = u64   list version; strictly larger for every new cell set
//! issued_at = u64   Unix seconds when the list was signed
//! count     = u32   number of cells (at most MAX_CELLS)
//! cell      = venue_code u64 || window_start u64 || window_secs u32 || level u8
//!             level: 1 = orange, 2 = red; window_secs in 1..=86400
//!             cells strictly increasing by (venue_code, window_start): no duplicates
//! signature = Ed25519(key, CONTEXT || body)      64 bytes
//! CONTEXT   = "hotspot/exposure-list/v1" || 0x00
//! ```
//!
//! Decoding is canonical: one list has exactly one encoding, and any other byte string
//! (trailing bytes, unsorted or repeated cells, unknown level, bad magic) is rejected before
//! the signature is checked. The version is the collector's cursor of the newest alert in the
//! list, so it grows with every new alert and survives restarts without extra state.

use ed25519_dalek::{Signature, Signer};
use serde::{Deserialize, Serialize};

use crate::view::{AlertLevel, AlertView, UnixSeconds};

/// The Ed25519 key types (re-exported so that users need no direct `ed25519-dalek` dependency).
pub use ed25519_dalek::{SigningKey, VerifyingKey};

/// First bytes of every version-1 list.
pub const MAGIC: &[u8; 8] = b"HSEXPL01";
/// Prefix of the signed message; separates exposure-list signatures from any other use of the
/// same key (poster signatures, for instance).
pub const SIGNING_CONTEXT: &[u8] = b"hotspot/exposure-list/v1\0";
/// Largest number of cells a list may hold (about 21 MB); bounds a decoder's allocation.
pub const MAX_CELLS: u32 = 1_000_000;

const HEADER_LEN: usize = 8 + 8 + 8 + 4;
const CELL_LEN: usize = 8 + 8 + 4 + 1;
const SIGNATURE_LEN: usize = 64;
/// Largest encoded list: [`MAX_CELLS`] cells with the header and the signature (what a
/// downloader may bound its read by).
pub const MAX_LIST_BYTES: usize = HEADER_LEN + CELL_LEN * MAX_CELLS as usize + SIGNATURE_LEN;

/// Why an exposure list was rejected.
#[derive(Debug, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum ExposureError {
    /// Shorter than a header plus a signature.
    #[error("exposure list truncated")]
    Truncated,
    /// Not a version-1 list.
    #[error("exposure list has an unknown magic or format version")]
    BadMagic,
    /// `count` disagrees with the length, or exceeds [`MAX_CELLS`].
    #[error("exposure list length does not match its cell count")]
    BadLength,
    /// A cell's level byte is neither 1 nor 2.
    #[error("exposure cell {index} has an unknown level")]
    BadLevel {
        /// Position of the cell.
        index: usize,
    },
    /// A cell's window length is 0 or longer than a day.
    #[error("exposure cell {index} has an invalid window length")]
    BadWindow {
        /// Position of the cell.
        index: usize,
    },
    /// Cells are not strictly increasing by (venue code, window start).
    #[error("exposure cell {index} is out of order or repeated")]
    NotCanonical {
        /// Position of the cell.
        index: usize,
    },
    /// The signature does not verify under the given key.
    #[error("exposure list signature is invalid")]
    BadSignature,
    /// The list verifies but is not newer than one the app already holds.
    #[error("exposure list version {got} is not newer than {held}")]
    Rollback {
        /// Version of the list offered.
        got: u64,
        /// Version the app already holds.
        held: u64,
    },
}

/// Severity of an exposure cell.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum ExposureLevel {
    /// The category's lower threshold was reached.
    Orange,
    /// The category's upper threshold was reached.
    Red,
}

impl ExposureLevel {
    fn to_byte(self) -> u8 {
        match self {
            ExposureLevel::Orange => 1,
            ExposureLevel::Red => 2,
        }
    }

    fn from_byte(byte: u8) -> Option<Self> {
        match byte {
            1 => Some(ExposureLevel::Orange),
            2 => Some(ExposureLevel::Red),
            _ => None,
        }
    }
}

/// One published cell: everyone present at `venue_code` during the window may be exposed.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, Serialize, Deserialize)]
pub struct ExposureCell {
    /// The venue code.
    pub venue_code: u64,
    /// Window start, Unix seconds.
    pub window_start: UnixSeconds,
    /// Window length in seconds (1..=86400).
    pub window_secs: u32,
    /// Severity.
    pub level: ExposureLevel,
}

impl ExposureCell {
    /// Whether an instant `t` falls inside the cell's window.
    pub fn covers(&self, t: UnixSeconds) -> bool {
        t >= self.window_start && t - self.window_start < u64::from(self.window_secs)
    }
}

/// A decoded (and, when it came from [`ExposureList::verify`], authenticated) exposure list.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct ExposureList {
    version: u64,
    issued_at: UnixSeconds,
    cells: Vec<ExposureCell>,
}

impl ExposureList {
    /// Builds a list from cells in any order: sorts them and merges repeats of one
    /// (venue, window start), keeping the higher level and the longer window.
    pub fn new(version: u64, issued_at: UnixSeconds, mut cells: Vec<ExposureCell>) -> Self {
        cells.sort_by_key(|c| (c.venue_code, c.window_start));
        cells.dedup_by(|later, kept| {
            let same =
                (later.venue_code, later.window_start) == (kept.venue_code, kept.window_start);
            if same {
                kept.level = kept.level.max(later.level);
                kept.window_secs = kept.window_secs.max(later.window_secs);
            }
            same
        });
        Self {
            version,
            issued_at,
            cells,
        }
    }

    /// The list of every outbreak (orange or red) alert in `alerts`; crowding alerts are not
    /// exposures. The version is the largest cursor among all `alerts` given (pass the whole
    /// log so the version moves with every stored alert).
    pub fn from_alerts<'a>(
        alerts: impl IntoIterator<Item = &'a AlertView>,
        issued_at: UnixSeconds,
    ) -> Self {
        let mut version = 0;
        let mut cells = Vec::new();
        for alert in alerts {
            version = version.max(alert.cursor.0);
            let level = match alert.level {
                AlertLevel::Crowding => continue,
                AlertLevel::Orange => ExposureLevel::Orange,
                AlertLevel::Red => ExposureLevel::Red,
            };
            let window_secs = alert.window_secs.clamp(1, 86_400);
            cells.push(ExposureCell {
                venue_code: alert.venue_code,
                window_start: alert.window_start,
                window_secs,
                level,
            });
        }
        Self::new(version, issued_at, cells)
    }

    /// The list version.
    pub fn version(&self) -> u64 {
        self.version
    }

    /// When the list was signed.
    pub fn issued_at(&self) -> UnixSeconds {
        self.issued_at
    }

    /// The cells, sorted by (venue code, window start).
    pub fn cells(&self) -> &[ExposureCell] {
        &self.cells
    }

    /// The highest level of any cell of `venue_code` whose window covers instant `t`.
    pub fn lookup(&self, venue_code: u64, t: UnixSeconds) -> Option<ExposureLevel> {
        let first = self.cells.partition_point(|c| c.venue_code < venue_code);
        self.cells[first..]
            .iter()
            .take_while(|c| c.venue_code == venue_code)
            .filter(|c| c.covers(t))
            .map(|c| c.level)
            .max()
    }

    /// Encodes the body and appends the signature under `key`.
    pub fn sign(&self, key: &SigningKey) -> Vec<u8> {
        let mut out = self.encode_body();
        let signature = key.sign(&signed_message(&out));
        out.extend_from_slice(&signature.to_bytes());
        out
    }

    /// Decodes `bytes` canonically and verifies its signature under `key`.
    pub fn verify(bytes: &[u8], key: &VerifyingKey) -> Result<Self, ExposureError> {
        Self::verify_any(bytes, [key])
    }

    /// Decodes `bytes` canonically, once, and accepts a signature by any of `keys` (an app
    /// that trusts the old and the new key across a rotation). Format errors come before
    /// signature errors; no keys at all is a bad signature.
    pub fn verify_any<'a>(
        bytes: &[u8],
        keys: impl IntoIterator<Item = &'a VerifyingKey>,
    ) -> Result<Self, ExposureError> {
        // 1. Split body and signature, decode the body canonically.
        let split = bytes
            .len()
            .checked_sub(SIGNATURE_LEN)
            .ok_or(ExposureError::Truncated)?;
        let (body, signature) = bytes.split_at(split);
        let list = Self::decode_body(body)?;

        // 2. Check the signature over the context-prefixed body.
        let signature =
            Signature::from_slice(signature).map_err(|_| ExposureError::BadSignature)?;
        let message = signed_message(body);
        keys.into_iter()
            .any(|key| key.verify_strict(&message, &signature).is_ok())
            .then_some(list)
            .ok_or(ExposureError::BadSignature)
    }

    /// [`ExposureList::verify`], then [`ExposureList::check_newer`].
    pub fn verify_newer(
        bytes: &[u8],
        key: &VerifyingKey,
        held_version: u64,
    ) -> Result<Self, ExposureError> {
        let list = Self::verify(bytes, key)?;
        list.check_newer(held_version)?;
        Ok(list)
    }

    /// Refuses this list unless its version is strictly greater than `held_version` (the
    /// version the app stored last; 0 if none): an app never goes back to an older list.
    pub fn check_newer(&self, held_version: u64) -> Result<(), ExposureError> {
        if self.version <= held_version && held_version != 0 {
            return Err(ExposureError::Rollback {
                got: self.version,
                held: held_version,
            });
        }
        Ok(())
    }

    fn encode_body(&self) -> Vec<u8> {
        let mut out = Vec::with_capacity(HEADER_LEN + CELL_LEN * self.cells.len() + SIGNATURE_LEN);
        out.extend_from_slice(MAGIC);
        out.extend_from_slice(&self.version.to_be_bytes());
        out.extend_from_slice(&self.issued_at.to_be_bytes());
        // `new` and `decode_body` are the only constructors; lists beyond u32 cells cannot be
        // produced by a collector in practice, and saturating keeps the encoding rejectable.
        out.extend_from_slice(
            &u32::try_from(self.cells.len())
                .unwrap_or(u32::MAX)
                .to_be_bytes(),
        );
        for cell in &self.cells {
            out.extend_from_slice(&cell.venue_code.to_be_bytes());
            out.extend_from_slice(&cell.window_start.to_be_bytes());
            out.extend_from_slice(&cell.window_secs.to_be_bytes());
            out.push(cell.level.to_byte());
        }
        out
    }

    fn decode_body(body: &[u8]) -> Result<Self, ExposureError> {
        // 1. Header.
        if body.len() < HEADER_LEN {
            return Err(ExposureError::Truncated);
        }
        if &body[..8] != MAGIC {
            return Err(ExposureError::BadMagic);
        }
        let version = be_u64(&body[8..16]);
        let issued_at = be_u64(&body[16..24]);
        let count = be_u32(&body[24..28]);

        // 2. Length agrees with the count.
        let cells_bytes = &body[HEADER_LEN..];
        if count > MAX_CELLS || cells_bytes.len() != count as usize * CELL_LEN {
            return Err(ExposureError::BadLength);
        }

        // 3. Cells, each valid and strictly after the previous one.
        let mut cells = Vec::with_capacity(count as usize);
        for (index, raw) in cells_bytes.chunks_exact(CELL_LEN).enumerate() {
            let cell = decode_cell(index, raw)?;
            if let Some(prev) = cells
                .last()
                .map(|p: &ExposureCell| (p.venue_code, p.window_start))
                && prev >= (cell.venue_code, cell.window_start)
            {
                return Err(ExposureError::NotCanonical { index });
            }
            cells.push(cell);
        }
        Ok(Self {
            version,
            issued_at,
            cells,
        })
    }
}

fn decode_cell(index: usize, raw: &[u8]) -> Result<ExposureCell, ExposureError> {
    let window_secs = be_u32(&raw[16..20]);
    if window_secs == 0 || window_secs > 86_400 {
        return Err(ExposureError::BadWindow { index });
    }
    let level = ExposureLevel::from_byte(raw[20]).ok_or(ExposureError::BadLevel { index })?;
    Ok(ExposureCell {
        venue_code: be_u64(&raw[0..8]),
        window_start: be_u64(&raw[8..16]),
        window_secs,
        level,
    })
}

fn signed_message(body: &[u8]) -> Vec<u8> {
    [SIGNING_CONTEXT, body].concat()
}

fn be_u64(bytes: &[u8]) -> u64 {
    let mut buf = [0u8; 8];
    buf.copy_from_slice(&bytes[..8]);
    u64::from_be_bytes(buf)
}

fn be_u32(bytes: &[u8]) -> u32 {
    let mut buf = [0u8; 4];
    buf.copy_from_slice(&bytes[..4]);
    u32::from_be_bytes(buf)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn key() -> SigningKey {
        SigningKey::from_bytes(&[7u8; 32])
    }

    fn cell(venue_code: u64, window_start: u64, level: ExposureLevel) -> ExposureCell {
        ExposureCell {
            venue_code,
            window_start,
            window_secs: 3600,
            level,
        }
    }

    fn sample() -> ExposureList {
        ExposureList::new(
            9,
            1_800_000_000,
            vec![
                cell(42, 7200, ExposureLevel::Red),
                cell(5, 3600, ExposureLevel::Orange),
                cell(42, 3600, ExposureLevel::Orange),
            ],
        )
    }

    #[test]
    fn signed_list_round_trips_and_has_documented_length() {
        let list = sample();
        let bytes = list.sign(&key());
        assert_eq!(bytes.len(), HEADER_LEN + 3 * CELL_LEN + SIGNATURE_LEN);
        assert_eq!(&bytes[..8], MAGIC);
        let back = ExposureList::verify(&bytes, &key().verifying_key()).expect("verifies");
        assert_eq!(back, list);
        assert_eq!(back.cells()[0].venue_code, 5);
    }

    #[test]
    fn repeated_cells_merge_to_highest_level() {
        let list = ExposureList::new(
            1,
            0,
            vec![
                cell(1, 0, ExposureLevel::Red),
                cell(1, 0, ExposureLevel::Orange),
            ],
        );
        assert_eq!(list.cells(), &[cell(1, 0, ExposureLevel::Red)]);
    }

    #[test]
    fn lookup_matches_only_inside_the_window() {
        let list = sample();
        assert_eq!(list.lookup(42, 3600), Some(ExposureLevel::Orange));
        assert_eq!(list.lookup(42, 7200 + 3599), Some(ExposureLevel::Red));
        assert_eq!(list.lookup(42, 7200 + 3600), None);
        assert_eq!(list.lookup(42, 3599), None);
        assert_eq!(list.lookup(6, 3600), None);
    }

    #[test]
    fn wrong_key_is_rejected() {
        let bytes = sample().sign(&key());
        let other = SigningKey::from_bytes(&[8u8; 32]).verifying_key();
        assert_eq!(
            ExposureList::verify(&bytes, &other),
            Err(ExposureError::BadSignature)
        );
    }

    #[test]
    fn any_flipped_byte_is_rejected() {
        let bytes = sample().sign(&key());
        for i in 0..bytes.len() {
            let mut bad = bytes.clone();
            bad[i] ^= 0x01;
            assert!(
                ExposureList::verify(&bad, &key().verifying_key()).is_err(),
                "byte {i}"
            );
        }
    }

    #[test]
    fn signature_without_context_is_rejected() {
        let list = sample();
        let body = list.encode_body();
        let mut bytes = body.clone();
        bytes.extend_from_slice(&key().sign(&body).to_bytes());
        assert_eq!(
            ExposureList::verify(&bytes, &key().verifying_key()),
            Err(ExposureError::BadSignature)
        );
    }

    /// Re-signs a hand-edited body so that only the canonical-form checks can reject it.
    fn resign(body: &[u8]) -> Vec<u8> {
        let mut bytes = body.to_vec();
        bytes.extend_from_slice(&key().sign(&signed_message(body)).to_bytes());
        bytes
    }

    #[test]
    fn non_canonical_encodings_are_rejected_even_when_signed() {
        let vk = key().verifying_key();
        let body = sample().encode_body();

        let mut trailing = body.clone();
        trailing.push(0);
        assert_eq!(
            ExposureList::verify(&resign(&trailing), &vk),
            Err(ExposureError::BadLength)
        );

        let mut magic = body.clone();
        magic[7] = b'2';
        assert_eq!(
            ExposureList::verify(&resign(&magic), &vk),
            Err(ExposureError::BadMagic)
        );

        let mut swapped = body.clone();
        let (a, b) = (HEADER_LEN, HEADER_LEN + CELL_LEN);
        let first: Vec<u8> = swapped[a..b].to_vec();
        swapped.copy_within(b..b + CELL_LEN, a);
        swapped[b..b + CELL_LEN].copy_from_slice(&first);
        assert_eq!(
            ExposureList::verify(&resign(&swapped), &vk),
            Err(ExposureError::NotCanonical { index: 1 })
        );

        let mut repeated = body.clone();
        repeated.copy_within(HEADER_LEN..HEADER_LEN + CELL_LEN, HEADER_LEN + CELL_LEN);
        assert!(matches!(
            ExposureList::verify(&resign(&repeated), &vk),
            Err(ExposureError::NotCanonical { .. })
        ));

        let mut level = body.clone();
        level[HEADER_LEN + CELL_LEN - 1] = 3;
        assert_eq!(
            ExposureList::verify(&resign(&level), &vk),
            Err(ExposureError::BadLevel { index: 0 })
        );

        let mut window = body.clone();
        window[HEADER_LEN + 16..HEADER_LEN + 20].copy_from_slice(&0u32.to_be_bytes());
        assert_eq!(
            ExposureList::verify(&resign(&window), &vk),
            Err(ExposureError::BadWindow { index: 0 })
        );

        let mut count = body;
        count[24..28].copy_from_slice(&(MAX_CELLS + 1).to_be_bytes());
        assert_eq!(
            ExposureList::verify(&resign(&count), &vk),
            Err(ExposureError::BadLength)
        );
        assert_eq!(
            ExposureList::verify(&[0u8; 10], &vk),
            Err(ExposureError::Truncated)
        );
    }

    #[test]
    fn older_or_equal_version_is_refused_as_rollback() {
        let bytes = sample().sign(&key());
        let vk = key().verifying_key();
        assert!(ExposureList::verify_newer(&bytes, &vk, 8).is_ok());
        assert!(ExposureList::verify_newer(&bytes, &vk, 0).is_ok());
        assert_eq!(
            ExposureList::verify_newer(&bytes, &vk, 9),
            Err(ExposureError::Rollback { got: 9, held: 9 })
        );
    }
}
