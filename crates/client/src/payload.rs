//! Our venue QR payload: a versioned, compact, registry-signed description of a venue.
//!
//! The QR code holds a URL, `https://<host>/c#<base64url protobuf>`, so that a phone without
//! the app lands on a web page, and the payload after `#` never reaches that page's server
//! (DESIGN.md section 3, step 1). The protobuf message [`VenuePayload`] is written by hand
//! with `prost`'s derive; its field numbers are the wire format and never change meaning:
//!
//! | field | tag | type | rule |
//! |---|---|---|---|
//! | version | 1 | uint32 | [`PAYLOAD_VERSION`]; anything else is [`PayloadError::UnknownVersion`] |
//! | venue_code | 2 | fixed64 | not 0 (reserved for dummy reports), below `2^bits` |
//! | bits | 3 | uint32 | 32 or 64: the task's venue-code width |
//! | name | 4 | string | 1 to [`MAX_NAME_CHARS`] characters |
//! | address | 5 | string | at most [`MAX_ADDRESS_CHARS`] characters |
//! | category | 6 | uint32 | a known [`VenueCategory`] |
//! | capacity | 7 | uint32 | at least 1 |
//! | default_minutes | 8 | uint32 | 1 to [`MAX_DEFAULT_MINUTES`] |
//! | valid_until_day | 9 | uint32 | last valid day, in days since the Unix epoch (UTC) |
//! | key_id | 10 | bytes | 8 bytes, names the registry key (see [`crate::registry`]) |
//! | signature | 11 | bytes | 64 bytes of Ed25519 |
//!
//! The signature covers `SIGNING_DST || encode(payload without signature)`. prost encodes
//! fields in tag order and omits default values, so that encoding is canonical; the parser
//! re-encodes what it decoded and rejects any input that differs (unknown fields, reordered
//! fields, long varints, explicit defaults), so exactly one byte string stands for a venue.

use base64::Engine;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use prost::Message;

use crate::UnixSeconds;
use crate::registry::{KEY_ID_LEN, RegistryKey, TrustedKeys};

/// The payload version this crate writes and reads.
pub const PAYLOAD_VERSION: u32 = 1;
/// Domain separator of the registry's signature over a payload.
const SIGNING_DST: &[u8] = b"hotspot/v1/venue-payload-signature";
/// Path and fragment marker of our URLs.
const URL_PATH: &str = "/c#";
/// Longest URL accepted; a version-40 QR code at level M holds 2,331 bytes, we stay far below.
pub const MAX_URL_LEN: usize = 600;
/// Longest venue name, in characters.
pub const MAX_NAME_CHARS: usize = 80;
/// Longest address, in characters.
pub const MAX_ADDRESS_CHARS: usize = 120;
/// Longest default check-in duration, in minutes (one day).
pub const MAX_DEFAULT_MINUTES: u32 = 24 * 60;

/// The wire message. Build one with [`VenueInfo::sign`]; read one with [`parse_url`].
#[derive(Clone, PartialEq, Message)]
pub struct VenuePayload {
    /// Format version.
    #[prost(uint32, tag = "1")]
    pub version: u32,
    /// Venue code.
    #[prost(fixed64, tag = "2")]
    pub venue_code: u64,
    /// Width of the venue code, 32 or 64.
    #[prost(uint32, tag = "3")]
    pub bits: u32,
    /// Venue name.
    #[prost(string, tag = "4")]
    pub name: String,
    /// Street address.
    #[prost(string, tag = "5")]
    pub address: String,
    /// [`VenueCategory`] code.
    #[prost(uint32, tag = "6")]
    pub category: u32,
    /// Capacity in persons.
    #[prost(uint32, tag = "7")]
    pub capacity: u32,
    /// Default check-in duration in minutes.
    #[prost(uint32, tag = "8")]
    pub default_minutes: u32,
    /// Last valid day (Unix days, UTC).
    #[prost(uint32, tag = "9")]
    pub valid_until_day: u32,
    /// Registry key id.
    #[prost(bytes = "vec", tag = "10")]
    pub key_id: Vec<u8>,
    /// Ed25519 signature.
    #[prost(bytes = "vec", tag = "11")]
    pub signature: Vec<u8>,
}

/// Venue categories and their wire codes: the one list in crates/core, shared with the
/// registry, the collector and the alert rules.
pub use hotspot_core::venue::VenueCategory;

/// A venue as the registry describes it, before signing or after verification.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct VenueInfo {
    /// Venue code, `bits` wide, never 0.
    pub venue_code: u64,
    /// 32 or 64.
    pub bits: u32,
    /// Name, shown to the visitor to confirm the check-in.
    pub name: String,
    /// Street address.
    pub address: String,
    /// Category.
    pub category: VenueCategory,
    /// Capacity in persons (the crowding rule's denominator).
    pub capacity: u32,
    /// Default check-in duration in minutes.
    pub default_minutes: u32,
    /// Last valid day (Unix days, UTC).
    pub valid_until_day: u32,
}

/// Why a payload was rejected. Each variant names the problem; none carries secrets.
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum PayloadError {
    /// The text is longer than [`MAX_URL_LEN`].
    #[error("payload too large: {len} bytes, at most {max}")]
    Oversize {
        /// Length seen.
        len: usize,
        /// Limit.
        max: usize,
    },
    /// Not an `https://<host>/c#...` URL of an accepted host.
    #[error("not a hotspot venue URL: {0}")]
    NotOurUrl(&'static str),
    /// The fragment is not unpadded base64url (or has non-zero trailing bits).
    #[error("payload is not canonical base64url")]
    BadBase64,
    /// The bytes are not a protobuf `VenuePayload`.
    #[error("payload is not a well-formed protobuf message")]
    Malformed,
    /// The message has a version this build does not know.
    #[error("unknown payload version {0} (this build reads version {PAYLOAD_VERSION})")]
    UnknownVersion(u32),
    /// The message decodes but is not the one canonical encoding of its contents.
    #[error("payload encoding is not canonical")]
    NonCanonical,
    /// A field is out of range; the string names it.
    #[error("invalid field `{field}`: {reason}")]
    InvalidField {
        /// The field.
        field: &'static str,
        /// The rule it breaks.
        reason: &'static str,
    },
    /// The key id names no key this app trusts.
    #[error("payload signed by an unknown registry key")]
    UnknownKey,
    /// The signature does not verify.
    #[error("bad registry signature")]
    BadSignature,
    /// The payload's validity date has passed.
    #[error("payload expired at the end of Unix day {valid_until_day}")]
    Expired {
        /// Last valid day.
        valid_until_day: u32,
    },
}

/// Where our URLs point; `host` is the landing page for phones without the app.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct UrlConfig {
    /// Host name, e.g. `checkin.example.org`.
    pub host: String,
}

/// A random venue code `bits` wide, never 0 (0 is reserved for dummy reports): a random `u64`
/// shifted right to `bits` (any width outside 1..=63 keeps all 64 bits; the payload refuses
/// widths other than 32 and 64), drawn again while it is 0.
pub fn random_venue_code<R: rand::Rng + ?Sized>(bits: u32, rng: &mut R) -> u64 {
    use rand::RngExt;
    loop {
        let mut code: u64 = rng.random();
        if (1..64).contains(&bits) {
            code >>= 64 - bits;
        }
        if code != 0 {
            return code;
        }
    }
}

impl VenueInfo {
    /// Checks every field rule of the module table.
    pub fn validate(&self) -> Result<(), PayloadError> {
        let invalid = |field, reason| Err(PayloadError::InvalidField { field, reason });
        if self.bits != 32 && self.bits != 64 {
            return invalid("bits", "must be 32 or 64");
        }
        if self.venue_code == 0 {
            return invalid("venue_code", "0 is reserved for dummy reports");
        }
        if self.bits == 32 && self.venue_code > u64::from(u32::MAX) {
            return invalid("venue_code", "does not fit in `bits`");
        }
        let name_chars = self.name.chars().count();
        if name_chars == 0 || name_chars > MAX_NAME_CHARS {
            return invalid("name", "must be 1 to 80 characters");
        }
        if self.address.chars().count() > MAX_ADDRESS_CHARS {
            return invalid("address", "must be at most 120 characters");
        }
        if self.name.chars().any(char::is_control) {
            return invalid("name", "control characters are not allowed");
        }
        if self.address.chars().any(char::is_control) {
            return invalid("address", "control characters are not allowed");
        }
        if self.capacity == 0 {
            return invalid("capacity", "must be at least 1");
        }
        if self.default_minutes == 0 || self.default_minutes > MAX_DEFAULT_MINUTES {
            return invalid("default_minutes", "must be 1 to 1440");
        }
        Ok(())
    }

    /// Signs the venue with the registry's key and returns the wire message.
    pub fn sign(&self, key: &RegistryKey) -> Result<VenuePayload, PayloadError> {
        self.validate()?;
        let mut payload = self.unsigned(key.key_id().to_vec());
        payload.signature = key.sign(&signing_input(&payload)).to_vec();
        Ok(payload)
    }

    fn unsigned(&self, key_id: Vec<u8>) -> VenuePayload {
        VenuePayload {
            version: PAYLOAD_VERSION,
            venue_code: self.venue_code,
            bits: self.bits,
            name: self.name.clone(),
            address: self.address.clone(),
            category: self.category.code(),
            capacity: self.capacity,
            default_minutes: self.default_minutes,
            valid_until_day: self.valid_until_day,
            key_id,
            signature: Vec::new(),
        }
    }
}

impl VenuePayload {
    /// The QR code's URL for this payload.
    pub fn to_url(&self, config: &UrlConfig) -> String {
        format!(
            "https://{}{URL_PATH}{}",
            config.host,
            URL_SAFE_NO_PAD.encode(self.encode_to_vec())
        )
    }
}

/// The bytes the signature covers: the domain separator, then the payload without signature.
fn signing_input(payload: &VenuePayload) -> Vec<u8> {
    let unsigned = VenuePayload {
        signature: Vec::new(),
        ..payload.clone()
    };
    let mut input = SIGNING_DST.to_vec();
    unsigned
        .encode(&mut input)
        .unwrap_or_else(|_| unreachable!("a Vec grows as needed"));
    input
}

/// Parses and verifies a scanned URL; `now` decides expiry. The one entry point for our codes.
pub fn parse_url(
    text: &str,
    config: &UrlConfig,
    keys: &TrustedKeys,
    now: UnixSeconds,
) -> Result<VenueInfo, PayloadError> {
    // 1. Bound the work before looking at the content.
    if text.len() > MAX_URL_LEN {
        return Err(PayloadError::Oversize {
            len: text.len(),
            max: MAX_URL_LEN,
        });
    }

    // 2. Split off the fragment of an accepted host.
    let rest = text
        .strip_prefix("https://")
        .ok_or(PayloadError::NotOurUrl("scheme is not https"))?;
    let fragment = rest
        .strip_prefix(config.host.as_str())
        .and_then(|r| r.strip_prefix(URL_PATH))
        .ok_or(PayloadError::NotOurUrl("host or path differs"))?;

    // 3. Decode base64url and the protobuf message.
    let bytes = URL_SAFE_NO_PAD
        .decode(fragment)
        .map_err(|_| PayloadError::BadBase64)?;
    parse_bytes(&bytes, keys, now)
}

/// Parses and verifies the protobuf bytes of a payload (the part after `#`, decoded).
pub fn parse_bytes(
    bytes: &[u8],
    keys: &TrustedKeys,
    now: UnixSeconds,
) -> Result<VenueInfo, PayloadError> {
    // 1. Decode; check the version before anything else so old apps say "update me".
    let payload = VenuePayload::decode(bytes).map_err(|_| PayloadError::Malformed)?;
    if payload.version != PAYLOAD_VERSION {
        return Err(PayloadError::UnknownVersion(payload.version));
    }

    // 2. Exactly one encoding per payload.
    if payload.encode_to_vec() != bytes {
        return Err(PayloadError::NonCanonical);
    }

    // 3. Field rules.
    let info = info_of(&payload)?;

    // 4. Signature by a trusted registry key.
    let key = keys.get(&payload.key_id).ok_or(PayloadError::UnknownKey)?;
    let signature: [u8; 64] =
        payload
            .signature
            .as_slice()
            .try_into()
            .map_err(|_| PayloadError::InvalidField {
                field: "signature",
                reason: "must be 64 bytes",
            })?;
    if !key.verify(&signing_input(&payload), &signature) {
        return Err(PayloadError::BadSignature);
    }

    // 5. Expiry, last: an expired but genuine poster is worth a precise message.
    if now / crate::DAY_SECS > u64::from(info.valid_until_day) {
        return Err(PayloadError::Expired {
            valid_until_day: info.valid_until_day,
        });
    }
    Ok(info)
}

fn info_of(payload: &VenuePayload) -> Result<VenueInfo, PayloadError> {
    if payload.key_id.len() != KEY_ID_LEN {
        return Err(PayloadError::InvalidField {
            field: "key_id",
            reason: "must be 8 bytes",
        });
    }
    let category =
        VenueCategory::from_code(payload.category).ok_or(PayloadError::InvalidField {
            field: "category",
            reason: "unknown category",
        })?;
    let info = VenueInfo {
        venue_code: payload.venue_code,
        bits: payload.bits,
        name: payload.name.clone(),
        address: payload.address.clone(),
        category,
        capacity: payload.capacity,
        default_minutes: payload.default_minutes,
        valid_until_day: payload.valid_until_day,
    };
    info.validate()?;
    Ok(info)
}

#[cfg(test)]
mod tests;
