//! Event QR codes of the Corona-Warn-App and NotifyMe, so that existing posters keep working.
//!
//! Both apps print CrowdNotifier-style posters: a URL whose fragment is a base64url protobuf.
//! The message definitions below are written from the published field layout:
//!
//! * CWA, `https://e.coronawarn.app?v=1#...`, and NotifyMe from its version 3,
//!   `https://qr.notify-me.ch?v=3#...`: `QRCodePayload { version = 1; TraceLocation
//!   locationData = 2; CrowdNotifierData crowdNotifierData = 3; bytes countryData = 4 }`, with
//!   `TraceLocation { version = 1; description = 2; address = 3; startTimestamp = 5;
//!   endTimestamp = 6 }` and, for CWA, `countryData` holding `CWALocationData { version = 1;
//!   TraceLocationType type = 2; defaultCheckInLengthInMinutes = 3 }` (corona-warn-app/
//!   cwa-documentation, `event_registration.md`, section "QR Code Structure"). NotifyMe's
//!   `countryData` is `NotifyMeLocationData { version = 1; VenueType type = 2; room = 3 }`.
//! * NotifyMe version 2, `https://qr.notify-me.ch?v=2#...` (CrowdNotifier SDK before the CWA
//!   alignment): `QRCodeEntry { version = 1; QRCodeContent data = 2; masterPublicKey = 3;
//!   entryProof = 4 }` with `QRCodeContent { name = 1; location = 2; room = 3; venueType = 4;
//!   notificationKey = 5; validFrom = 6; validTo = 7 }` (CrowdNotifier/techspec and the
//!   CrowdNotifier SDKs).
//!
//! These codes carry no venue code of ours and no registry signature (CrowdNotifier's keys
//! serve its own encrypted check-ins, which we do not use). The venue code is derived from the
//! payload bytes: SHA-256 over [`VENUE_CODE_DST`] and the decoded protobuf, read big-endian,
//! its first `bits` bits (the task's width), rehashed with a counter in the (2^-32) case it comes out 0.
//! Like CWA's own location id (SHA-256 of `CWA-GUID` and the payload), any change to the
//! poster gives a new code. Such venues are unregistered, so they take part in open-mode tasks.

use base64::Engine;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use prost::Message;
use sha2::{Digest, Sha256};

use crate::payload::VenueCategory;

/// Domain separator of venue codes derived from foreign payloads.
pub const VENUE_CODE_DST: &[u8] = b"hotspot/v1/crowdnotifier-venue-code";
/// Longest foreign URL accepted (real CWA codes are about 250 characters).
pub const MAX_LEGACY_URL_LEN: usize = 1200;
/// CWA's default check-in length when the poster gives none (the app's own default).
const DEFAULT_MINUTES: u32 = 120;

/// Which app printed the poster.
#[derive(Clone, Copy, Debug, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum LegacySource {
    /// Corona-Warn-App (Germany).
    CoronaWarnApp,
    /// NotifyMe (Switzerland), CrowdNotifier version 2.
    NotifyMeV2,
    /// NotifyMe (Switzerland), CrowdNotifier version 3 (the CWA-aligned payload).
    NotifyMeV3,
}

/// What we read from a foreign poster.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct LegacyVenue {
    /// Which app.
    pub source: LegacySource,
    /// Venue code derived from the payload.
    pub venue_code: u64,
    /// The width `venue_code` was truncated to.
    pub bits: u32,
    /// Description (event or venue name).
    pub description: String,
    /// Address (NotifyMe v2: location, and room if any).
    pub address: String,
    /// The poster's type code, as printed (CWA `TraceLocationType`, NotifyMe `VenueType`).
    pub type_code: u32,
    /// Our category for it.
    pub category: VenueCategory,
    /// Default check-in length in minutes.
    pub default_minutes: u32,
    /// Start and end (Unix seconds) of a temporary event, when the poster gives them.
    pub event_window: Option<(u64, u64)>,
}

/// Why a foreign code was rejected.
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum LegacyError {
    /// Longer than [`MAX_LEGACY_URL_LEN`].
    #[error("event QR code too large: {0} bytes")]
    Oversize(usize),
    /// Not one of the known hosts and versions.
    #[error("not a Corona-Warn-App or NotifyMe event QR code")]
    UnknownFormat,
    /// The fragment is not base64url.
    #[error("event QR code payload is not base64url")]
    BadBase64,
    /// The protobuf does not decode, or lacks the location data.
    #[error("event QR code payload is malformed: {0}")]
    Malformed(&'static str),
    /// The protobuf carries a version we do not know.
    #[error("event QR code has unknown payload version {0}")]
    UnknownVersion(u32),
    /// The description is empty or longer than the format allows.
    #[error("event QR code field `{0}` is empty or longer than 100 characters")]
    BadText(&'static str),
    /// `bits` is neither 32 nor 64.
    #[error("venue code width must be 32 or 64, not {0}")]
    BadBits(u32),
}

/// `QRCodePayload` (CWA, NotifyMe v3).
#[derive(Clone, PartialEq, Message)]
struct QrCodePayload {
    #[prost(uint32, tag = "1")]
    version: u32,
    #[prost(message, optional, tag = "2")]
    location_data: Option<TraceLocation>,
    #[prost(bytes = "vec", tag = "4")]
    country_data: Vec<u8>,
}

/// `TraceLocation`.
#[derive(Clone, PartialEq, Message)]
struct TraceLocation {
    #[prost(string, tag = "2")]
    description: String,
    #[prost(string, tag = "3")]
    address: String,
    #[prost(uint64, tag = "5")]
    start_timestamp: u64,
    #[prost(uint64, tag = "6")]
    end_timestamp: u64,
}

/// `CWALocationData` and `NotifyMeLocationData` share their first two fields.
#[derive(Clone, PartialEq, Message)]
struct CountryData {
    #[prost(uint32, tag = "2")]
    r#type: u32,
    #[prost(uint32, tag = "3")]
    default_check_in_length_in_minutes: u32,
}

/// `QRCodeEntry` (NotifyMe v2).
#[derive(Clone, PartialEq, Message)]
struct QrCodeEntry {
    #[prost(uint32, tag = "1")]
    version: u32,
    #[prost(message, optional, tag = "2")]
    data: Option<QrCodeContent>,
}

/// `QRCodeContent` (NotifyMe v2).
#[derive(Clone, PartialEq, Message)]
struct QrCodeContent {
    #[prost(string, tag = "1")]
    name: String,
    #[prost(string, tag = "2")]
    location: String,
    #[prost(string, tag = "3")]
    room: String,
    #[prost(uint32, tag = "4")]
    venue_type: u32,
    #[prost(uint64, tag = "6")]
    valid_from: u64,
    #[prost(uint64, tag = "7")]
    valid_to: u64,
}

/// Whether `text` looks like one of the foreign formats (by host), before any decoding.
pub fn is_legacy_url(text: &str) -> bool {
    split_url(text).is_some()
}

/// Parses a CWA or NotifyMe event URL, deriving a `bits`-wide venue code.
pub fn parse_legacy_url(text: &str, bits: u32) -> Result<LegacyVenue, LegacyError> {
    if text.len() > MAX_LEGACY_URL_LEN {
        return Err(LegacyError::Oversize(text.len()));
    }
    if bits != 32 && bits != 64 {
        return Err(LegacyError::BadBits(bits));
    }
    let (source, fragment) = split_url(text).ok_or(LegacyError::UnknownFormat)?;
    // Some generators pad their base64url; the padding carries nothing, so accept it.
    let bytes = URL_SAFE_NO_PAD
        .decode(fragment.trim_end_matches('='))
        .map_err(|_| LegacyError::BadBase64)?;
    let mut venue = match source {
        LegacySource::NotifyMeV2 => parse_entry(&bytes)?,
        _ => parse_payload(&bytes, source)?,
    };
    check_text("description", &venue.description, true)?;
    check_text("address", &venue.address, false)?;
    venue.venue_code = derive_venue_code(&bytes, bits);
    venue.bits = bits;
    Ok(venue)
}

/// The known prefixes, each with its source.
fn split_url(text: &str) -> Option<(LegacySource, &str)> {
    const PREFIXES: [(&str, LegacySource); 5] = [
        ("https://e.coronawarn.app?v=1#", LegacySource::CoronaWarnApp),
        (
            "https://e.coronawarn.app/?v=1#",
            LegacySource::CoronaWarnApp,
        ),
        ("https://qr.notify-me.ch?v=2#", LegacySource::NotifyMeV2),
        ("https://qr-dev.notify-me.ch?v=2#", LegacySource::NotifyMeV2),
        ("https://qr.notify-me.ch?v=3#", LegacySource::NotifyMeV3),
    ];
    PREFIXES
        .iter()
        .find_map(|(prefix, source)| Some((*source, text.strip_prefix(prefix)?)))
}

fn parse_payload(bytes: &[u8], source: LegacySource) -> Result<LegacyVenue, LegacyError> {
    let payload = QrCodePayload::decode(bytes).map_err(|_| LegacyError::Malformed("protobuf"))?;
    if payload.version != 1 {
        return Err(LegacyError::UnknownVersion(payload.version));
    }
    let location = payload
        .location_data
        .ok_or(LegacyError::Malformed("no locationData"))?;
    let country = CountryData::decode(payload.country_data.as_slice())
        .map_err(|_| LegacyError::Malformed("countryData"))?;
    let category = match source {
        LegacySource::CoronaWarnApp => cwa_category(country.r#type),
        _ => notifyme_category(country.r#type),
    };
    let minutes = match (source, country.default_check_in_length_in_minutes) {
        (LegacySource::CoronaWarnApp, 1..=1440) => country.default_check_in_length_in_minutes,
        _ => DEFAULT_MINUTES,
    };
    let window = (location.start_timestamp != 0 || location.end_timestamp != 0)
        .then_some((location.start_timestamp, location.end_timestamp));
    Ok(LegacyVenue {
        source,
        venue_code: 0,
        bits: 0,
        description: location.description,
        address: location.address,
        type_code: country.r#type,
        category,
        default_minutes: minutes,
        event_window: window,
    })
}

fn parse_entry(bytes: &[u8]) -> Result<LegacyVenue, LegacyError> {
    let entry = QrCodeEntry::decode(bytes).map_err(|_| LegacyError::Malformed("protobuf"))?;
    if entry.version != 2 {
        return Err(LegacyError::UnknownVersion(entry.version));
    }
    let content = entry.data.ok_or(LegacyError::Malformed("no data"))?;
    let address = match content.room.is_empty() {
        true => content.location,
        false => format!("{}, {}", content.location, content.room),
    };
    let window = (content.valid_from != 0 || content.valid_to != 0)
        .then_some((content.valid_from / 1000, content.valid_to / 1000));
    Ok(LegacyVenue {
        source: LegacySource::NotifyMeV2,
        venue_code: 0,
        bits: 0,
        description: content.name,
        address,
        type_code: content.venue_type,
        category: notifyme_category(content.venue_type),
        default_minutes: DEFAULT_MINUTES,
        event_window: window,
    })
}

fn check_text(field: &'static str, text: &str, required: bool) -> Result<(), LegacyError> {
    let chars = text.chars().count();
    let bad = chars > 200 || (required && chars == 0) || text.chars().any(char::is_control);
    if bad {
        Err(LegacyError::BadText(field))
    } else {
        Ok(())
    }
}

/// The venue code of a foreign payload: domain-separated SHA-256, its first `bits` bits read
/// big-endian (`bits` is clamped to 1..=64), rehashed with a counter while that is 0.
pub fn derive_venue_code(payload: &[u8], bits: u32) -> u64 {
    let shift = 64 - bits.clamp(1, 64);
    (0u32..)
        .map(|counter| {
            let digest = Sha256::new()
                .chain_update(VENUE_CODE_DST)
                .chain_update(counter.to_be_bytes())
                .chain_update(payload)
                .finalize();
            let mut first = [0u8; 8];
            first.copy_from_slice(&digest[..8]);
            u64::from_be_bytes(first) >> shift
        })
        .find(|&code| code != 0)
        .unwrap_or_else(|| unreachable!("SHA-256 outputs are not all zero forever"))
}

/// CWA `TraceLocationType` to our category.
fn cwa_category(code: u32) -> VenueCategory {
    match code {
        3 => VenueCategory::Retail,
        4 => VenueCategory::Restaurant,
        5 => VenueCategory::PersonalCare,
        6 => VenueCategory::Workplace,
        7 => VenueCategory::Education,
        8 => VenueCategory::PublicBuilding,
        9 => VenueCategory::Culture,
        10 => VenueCategory::Sports,
        11 => VenueCategory::PrivateEvent,
        12 => VenueCategory::Worship,
        _ => VenueCategory::Other,
    }
}

/// NotifyMe `VenueType` to our category.
fn notifyme_category(code: u32) -> VenueCategory {
    match code {
        1 | 10 => VenueCategory::Workplace,
        2 | 4 | 9 => VenueCategory::Restaurant,
        3 => VenueCategory::PrivateEvent,
        5 | 6 => VenueCategory::Education,
        7 => VenueCategory::Retail,
        8 => VenueCategory::Sports,
        _ => VenueCategory::Other,
    }
}

#[cfg(test)]
mod tests;
