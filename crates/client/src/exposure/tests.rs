//! Verification of the signed list (every rejection the phone adds to the format's own) and
//! matching against the diary.
#![allow(clippy::unwrap_used, reason = "a failing test should panic")]

use ed25519_dalek::SigningKey;

use super::*;
use crate::diary::tests::venue;
use crate::registry::{RegistryKey, TrustedKeys};

const HOUR: u64 = 3600;
const NOW: UnixSeconds = 1_796_000_000;

/// The collector's key: the same secret as a registry key file holds.
fn signing_key() -> SigningKey {
    SigningKey::from_bytes(&[11; 32])
}

fn keys() -> TrustedKeys {
    TrustedKeys::new([RegistryKey::from_secret(&[11; 32]).public()])
}

fn cell(venue_code: u64, hour: u64, level: ExposureLevel) -> ExposureCell {
    ExposureCell {
        venue_code,
        window_start: hour * HOUR,
        window_secs: 3600,
        level,
    }
}

fn signed(version: u64, issued_at: UnixSeconds, cells: Vec<ExposureCell>) -> Vec<u8> {
    ExposureList::new(version, issued_at, cells).sign(&signing_key())
}

fn checkin(id: u64, code: u64, arrival: u64, departure: u64) -> CheckIn {
    CheckIn {
        id,
        venue: venue(code),
        arrival,
        departure,
        crowding_reported: false,
    }
}

#[test]
fn matches_are_the_alerted_hours_the_visitor_was_present() {
    use ExposureLevel::{Orange, Red};
    let bytes = signed(
        3,
        NOW,
        vec![cell(7, 11, Red), cell(7, 14, Orange), cell(8, 11, Orange)],
    );
    let list = verify_list(&bytes, &keys(), 0, NOW).unwrap();
    let diary = [
        checkin(1, 7, 10 * HOUR + 1800, 11 * HOUR + 600), // touches 10:00 and 11:00
        checkin(2, 9, 11 * HOUR, 12 * HOUR),              // another venue
        checkin(3, 7, 12 * HOUR, 14 * HOUR),              // leaves exactly at 14:00
    ];
    let matches = match_diary(&list, &diary);
    assert_eq!(matches.len(), 1);
    assert_eq!(
        (
            matches[0].checkin_id,
            matches[0].window_start,
            matches[0].level
        ),
        (1, 11 * HOUR, Red)
    );
    assert_eq!(matches[0].venue_name, "Venue 7");
}

#[test]
fn a_long_stay_matches_every_alerted_hour_it_spans() {
    use ExposureLevel::Orange;
    let bytes = signed(1, NOW, (10..14).map(|h| cell(7, h, Orange)).collect());
    let list = verify_list(&bytes, &keys(), 0, NOW).unwrap();
    let matches = match_diary(&list, &[checkin(1, 7, 10 * HOUR + 1, 12 * HOUR + 1)]);
    let hours: Vec<_> = matches.iter().map(|m| m.window_start / HOUR).collect();
    assert_eq!(hours, vec![10, 11, 12]);
}

#[test]
fn tampered_list_is_rejected() {
    let mut bytes = signed(1, NOW, vec![cell(7, 11, ExposureLevel::Orange)]);
    let last_level = bytes.len() - 64 - 1;
    bytes[last_level] = 2; // orange -> red
    assert_eq!(
        verify_list(&bytes, &keys(), 0, NOW),
        Err(ExposureError::BadSignature)
    );
}

#[test]
fn untrusted_key_or_no_key_is_rejected() {
    let bytes = ExposureList::new(1, NOW, vec![cell(7, 11, ExposureLevel::Orange)])
        .sign(&SigningKey::from_bytes(&[12; 32]));
    assert_eq!(
        verify_list(&bytes, &keys(), 0, NOW),
        Err(ExposureError::BadSignature)
    );
    assert_eq!(
        verify_list(&bytes, &TrustedKeys::default(), 0, NOW),
        Err(ExposureError::NoTrustedKey)
    );
}

#[test]
fn second_trusted_key_verifies_during_a_rotation() {
    let both = TrustedKeys::new([
        RegistryKey::from_secret(&[12; 32]).public(),
        RegistryKey::from_secret(&[11; 32]).public(),
    ]);
    let bytes = signed(1, NOW, vec![]);
    assert!(verify_list(&bytes, &both, 0, NOW).is_ok());
}

#[test]
fn malformed_lists_name_the_format_error() {
    let bytes = signed(1, NOW, vec![cell(7, 11, ExposureLevel::Orange)]);
    assert_eq!(
        verify_list(&bytes[..20], &keys(), 0, NOW),
        Err(ExposureError::Format(FormatError::Truncated))
    );
    let mut magic = bytes.clone();
    magic[0] ^= 1;
    assert_eq!(
        verify_list(&magic, &keys(), 0, NOW),
        Err(ExposureError::Format(FormatError::BadMagic))
    );
}

#[test]
fn older_or_equal_version_is_refused() {
    let bytes = signed(5, NOW, vec![]);
    assert!(verify_list(&bytes, &keys(), 4, NOW).is_ok());
    assert_eq!(
        verify_list(&bytes, &keys(), 5, NOW),
        Err(ExposureError::Rollback { got: 5, held: 5 })
    );
    assert_eq!(
        verify_list(&bytes, &keys(), 9, NOW),
        Err(ExposureError::Rollback { got: 5, held: 9 })
    );
}

#[test]
fn list_from_the_future_is_rejected() {
    let issued_at = NOW + MAX_SKEW_SECS + 1;
    let bytes = signed(1, issued_at, vec![]);
    assert_eq!(
        verify_list(&bytes, &keys(), 0, NOW),
        Err(ExposureError::FromTheFuture { issued_at })
    );
    let skewed = signed(1, NOW + MAX_SKEW_SECS, vec![]);
    assert!(verify_list(&skewed, &keys(), 0, NOW).is_ok());
}

proptest::proptest! {
    #[test]
    fn verifier_never_panics(bytes in proptest::collection::vec(proptest::prelude::any::<u8>(), 0..300)) {
        let _ = verify_list(&bytes, &keys(), 0, NOW);
    }
}
