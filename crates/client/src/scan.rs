//! One entry point for whatever a camera or a keyboard hands the app: our signed payload URL,
//! a Corona-Warn-App or NotifyMe event URL, or a typed fallback code.

use serde::{Deserialize, Serialize};

use crate::UnixSeconds;
use crate::fallback::{self, FallbackError};
use crate::legacy::{self, LegacyError, LegacySource};
use crate::payload::{self, PayloadError, UrlConfig, VenueCategory};
use crate::registry::{TrustedKeys, hex};

/// What the app needs to check in somewhere.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct ScannedVenue {
    /// Venue code (never 0).
    pub venue_code: u64,
    /// Its width, 32 or 64.
    pub bits: u32,
    /// Name to show; empty for typed codes.
    pub name: String,
    /// Address to show; empty for typed codes.
    pub address: String,
    /// Category; [`VenueCategory::Other`] when unknown.
    pub category: VenueCategory,
    /// Capacity, when the registry gave one.
    pub capacity: Option<u32>,
    /// Default check-in duration in minutes.
    pub default_minutes: u32,
    /// Where the venue description came from.
    pub source: VenueSource,
}

/// Where a venue description came from, and so how far it can be trusted.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case", tag = "kind")]
pub enum VenueSource {
    /// Our payload, signed by the registry key with this id (hex).
    Registry {
        /// Key id, hex.
        key_id: String,
    },
    /// A foreign event code (unsigned; venue code derived from its bytes).
    Legacy {
        /// Which app.
        app: LegacySource,
    },
    /// A typed fallback code (no name, no signature).
    Typed,
}

/// What the scanner accepts.
#[derive(Clone, Debug)]
pub struct ScanConfig {
    /// Our URL host.
    pub url: UrlConfig,
    /// Registry keys this app trusts.
    pub keys: TrustedKeys,
    /// Width of venue codes derived from foreign codes (the open-mode task's `bits`).
    pub legacy_bits: u32,
    /// Default duration for typed codes, in minutes.
    pub typed_default_minutes: u32,
}

/// Why a scan was rejected; each variant wraps the precise cause.
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum ScanError {
    /// Our payload, rejected.
    #[error(transparent)]
    Payload(#[from] PayloadError),
    /// A foreign event code, rejected.
    #[error(transparent)]
    Legacy(#[from] LegacyError),
    /// A typed code, rejected.
    #[error(transparent)]
    Typed(#[from] FallbackError),
}

/// Reads `text` (trimmed) as whichever format it is in.
pub fn scan(text: &str, config: &ScanConfig, now: UnixSeconds) -> Result<ScannedVenue, ScanError> {
    let text = text.trim();
    if legacy::is_legacy_url(text) {
        return Ok(from_legacy(legacy::parse_legacy_url(
            text,
            config.legacy_bits,
        )?));
    }
    if text.contains("://") {
        let signed = payload::parse_url(text, &config.url, &config.keys, now)?;
        let key_id = payload_key_id(text).unwrap_or_default();
        return Ok(ScannedVenue {
            venue_code: signed.venue_code,
            bits: signed.bits,
            name: signed.name,
            address: signed.address,
            category: signed.category,
            capacity: Some(signed.capacity),
            default_minutes: signed.default_minutes,
            source: VenueSource::Registry { key_id },
        });
    }
    let (venue_code, bits) = fallback::decode(text)?;
    Ok(ScannedVenue {
        venue_code,
        bits,
        name: String::new(),
        address: String::new(),
        category: VenueCategory::Other,
        capacity: None,
        default_minutes: config.typed_default_minutes,
        source: VenueSource::Typed,
    })
}

fn from_legacy(venue: legacy::LegacyVenue) -> ScannedVenue {
    ScannedVenue {
        venue_code: venue.venue_code,
        bits: venue.bits,
        name: venue.description,
        address: venue.address,
        category: venue.category,
        capacity: None,
        default_minutes: venue.default_minutes,
        source: VenueSource::Legacy { app: venue.source },
    }
}

/// The key id of an already verified URL, for the diary's record.
fn payload_key_id(text: &str) -> Option<String> {
    use base64::Engine;
    use prost::Message;

    let fragment = text.split_once("/c#")?.1;
    let bytes = base64::engine::general_purpose::URL_SAFE_NO_PAD
        .decode(fragment)
        .ok()?;
    Some(hex(&payload::VenuePayload::decode(bytes.as_slice())
        .ok()?
        .key_id))
}

#[cfg(test)]
#[allow(clippy::unwrap_used, reason = "a failing test should panic")]
mod tests {
    use super::*;
    use crate::payload::VenueInfo;
    use crate::registry::RegistryKey;

    fn config() -> ScanConfig {
        ScanConfig {
            url: UrlConfig {
                host: "checkin.example.org".into(),
            },
            keys: TrustedKeys::new([RegistryKey::from_secret(&[42; 32]).public()]),
            legacy_bits: 32,
            typed_default_minutes: 60,
        }
    }

    #[test]
    fn each_format_is_recognised() {
        let key = RegistryKey::from_secret(&[42; 32]);
        let venue = VenueInfo {
            venue_code: 77,
            bits: 32,
            name: "Gym".into(),
            address: "Main St".into(),
            category: VenueCategory::Sports,
            capacity: 30,
            default_minutes: 75,
            valid_until_day: 30_000,
        };
        let url = venue.sign(&key).unwrap().to_url(&config().url);
        let ours = scan(&format!(" {url}\n"), &config(), 0).unwrap();
        assert_eq!((ours.venue_code, ours.capacity), (77, Some(30)));
        assert_eq!(
            ours.source,
            VenueSource::Registry {
                key_id: hex(&key.key_id())
            }
        );

        let typed = scan(&fallback::encode(77, 32), &config(), 0).unwrap();
        assert_eq!(
            (typed.venue_code, typed.source, typed.default_minutes),
            (77, VenueSource::Typed, 60)
        );

        let cwa = "https://e.coronawarn.app?v=1#CAESEwgBEgdGcmlzZXVyGgZCZXJsaW4adggBEmCDAszMTXne1DAA5_YxmhRdd_NZN2VKl9L32Jl9-ZybE4b2eNIrhFOKYU4XAOHq3RPLDxdHTW6ANiO24rCOO4rj06HzcVZy3pel58-L1KSPG-_PneL2BoyZQRz3qlu2hoAaEATXwzyyIshzBHREtsdmc6kiBggBEAUYeA";
        assert_eq!(scan(cwa, &config(), 0).unwrap().name, "Friseur");
    }

    #[test]
    fn rejections_keep_their_precise_cause() {
        assert!(matches!(
            scan("https://other.example/c#AA", &config(), 0),
            Err(ScanError::Payload(_))
        ));
        assert!(matches!(
            scan("hello", &config(), 0),
            Err(ScanError::Typed(_))
        ));
        assert!(matches!(
            scan("https://e.coronawarn.app?v=1#***", &config(), 0),
            Err(ScanError::Legacy(_))
        ));
    }
}
