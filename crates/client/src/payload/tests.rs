//! Round trips and one negative test per rejection rule of the payload parser.
#![allow(clippy::unwrap_used, reason = "a failing test should panic")]

use proptest::prelude::*;

use super::*;
use crate::registry::{RegistryKey, TrustedKeys};

const NOW: UnixSeconds = 20_790 * 86_400 + 3_600; // 2026-12-03 01:00 UTC

fn key() -> RegistryKey {
    RegistryKey::from_secret(&[42; 32])
}

fn keys() -> TrustedKeys {
    TrustedKeys::new([key().public()])
}

fn config() -> UrlConfig {
    UrlConfig {
        host: "checkin.example.org".into(),
    }
}

pub(crate) fn venue() -> VenueInfo {
    VenueInfo {
        venue_code: 0xdead_beef,
        bits: 32,
        name: "Café Zürich".into(),
        address: "Bahnhofstrasse 1, 8001 Zürich".into(),
        category: VenueCategory::Restaurant,
        capacity: 40,
        default_minutes: 90,
        valid_until_day: 20_790 + 365,
    }
}

fn reject(bytes: &[u8]) -> PayloadError {
    parse_bytes(bytes, &keys(), NOW).unwrap_err()
}

/// Re-signs a tampered message so that only the rule under test fails.
fn resigned(mut payload: VenuePayload) -> Vec<u8> {
    payload.signature = key().sign(&signing_input(&payload)).to_vec();
    payload.encode_to_vec()
}

#[test]
fn signed_payload_round_trips_through_the_url() {
    for bits in [32, 64] {
        let venue = VenueInfo { bits, ..venue() };
        let url = venue.sign(&key()).unwrap().to_url(&config());
        assert!(url.starts_with("https://checkin.example.org/c#"));
        assert_eq!(parse_url(&url, &config(), &keys(), NOW).unwrap(), venue);
    }
}

#[test]
fn url_of_a_typical_venue_is_compact() {
    let url = venue().sign(&key()).unwrap().to_url(&config());
    // Reported in docs/client.md: keep it small enough for a QR code readable from a metre away.
    assert!(url.len() < 250, "{} bytes: {url}", url.len());
}

#[test]
fn oversize_input_is_rejected_before_decoding() {
    let url = format!("https://checkin.example.org/c#{}", "A".repeat(MAX_URL_LEN));
    assert!(matches!(
        parse_url(&url, &config(), &keys(), NOW),
        Err(PayloadError::Oversize { .. })
    ));
}

#[test]
fn other_schemes_hosts_and_paths_are_rejected() {
    let url = venue().sign(&key()).unwrap().to_url(&config());
    for bad in [
        url.replacen("https", "http", 1),
        url.replacen("checkin.example.org", "evil.example.org", 1),
        url.replacen("/c#", "/d#", 1),
        url.replacen("checkin.example.org", "checkin.example.org.evil", 1),
    ] {
        let err = parse_url(&bad, &config(), &keys(), NOW).unwrap_err();
        assert!(matches!(err, PayloadError::NotOurUrl(_)), "{bad}: {err}");
    }
}

#[test]
fn padded_or_non_url_safe_base64_is_rejected() {
    let url = venue().sign(&key()).unwrap().to_url(&config());
    for bad in [
        format!("{url}="),
        format!("{url}+"),
        format!("{url}/"),
        format!("{url} "),
    ] {
        let err = parse_url(&bad, &config(), &keys(), NOW).unwrap_err();
        assert_eq!(err, PayloadError::BadBase64, "{bad}");
    }
}

#[test]
fn base64_with_nonzero_trailing_bits_is_rejected() {
    // One byte encodes as two characters, of which the last carries 4 unused bits.
    let url = "https://checkin.example.org/c#AB";
    assert_eq!(
        parse_url(url, &config(), &keys(), NOW),
        Err(PayloadError::BadBase64)
    );
}

#[test]
fn truncated_protobuf_is_malformed() {
    let bytes = venue().sign(&key()).unwrap().encode_to_vec();
    assert_eq!(reject(&bytes[..bytes.len() - 1]), PayloadError::Malformed);
}

#[test]
fn unknown_version_is_named() {
    let payload = VenuePayload {
        version: 2,
        ..venue().sign(&key()).unwrap()
    };
    assert_eq!(reject(&resigned(payload)), PayloadError::UnknownVersion(2));
}

#[test]
fn unknown_fields_are_non_canonical() {
    let mut bytes = venue().sign(&key()).unwrap().encode_to_vec();
    bytes.extend_from_slice(&[0x60, 0x01]); // field 12, varint 1
    assert_eq!(reject(&bytes), PayloadError::NonCanonical);
}

#[test]
fn long_varints_and_explicit_defaults_are_non_canonical() {
    let bytes = venue().sign(&key()).unwrap().encode_to_vec();
    // The version field is `08 01`; spell it with a redundant continuation byte.
    assert_eq!(&bytes[..2], &[0x08, 0x01]);
    let mut long = vec![0x08, 0x81, 0x00];
    long.extend_from_slice(&bytes[2..]);
    assert_eq!(reject(&long), PayloadError::NonCanonical);
    // An explicit capacity of 0 followed by the real one decodes to the same message.
    let mut doubled = bytes.clone();
    doubled.extend_from_slice(&[0x38, 0x28]); // capacity = 40 again, out of order
    assert_eq!(reject(&doubled), PayloadError::NonCanonical);
}

#[test]
fn every_field_rule_is_enforced_and_named() {
    let cases: Vec<(VenuePayload, &str)> = {
        let base = venue().sign(&key()).unwrap();
        vec![
            (
                VenuePayload {
                    bits: 48,
                    ..base.clone()
                },
                "bits",
            ),
            (
                VenuePayload {
                    venue_code: 0,
                    ..base.clone()
                },
                "venue_code",
            ),
            (
                VenuePayload {
                    venue_code: 1 << 40,
                    ..base.clone()
                },
                "venue_code",
            ),
            (
                VenuePayload {
                    name: String::new(),
                    ..base.clone()
                },
                "name",
            ),
            (
                VenuePayload {
                    name: "x".repeat(81),
                    ..base.clone()
                },
                "name",
            ),
            (
                VenuePayload {
                    name: "a\u{7}b".into(),
                    ..base.clone()
                },
                "name",
            ),
            (
                VenuePayload {
                    address: "y".repeat(121),
                    ..base.clone()
                },
                "address",
            ),
            (
                VenuePayload {
                    address: "Main St\n12".into(),
                    ..base.clone()
                },
                "address",
            ),
            (
                VenuePayload {
                    category: 99,
                    ..base.clone()
                },
                "category",
            ),
            (
                VenuePayload {
                    capacity: 0,
                    ..base.clone()
                },
                "capacity",
            ),
            (
                VenuePayload {
                    default_minutes: 0,
                    ..base.clone()
                },
                "default_minutes",
            ),
            (
                VenuePayload {
                    default_minutes: 1441,
                    ..base.clone()
                },
                "default_minutes",
            ),
            (
                VenuePayload {
                    key_id: vec![1; 7],
                    ..base.clone()
                },
                "key_id",
            ),
        ]
    };
    for (payload, field) in cases {
        match reject(&resigned(payload)) {
            PayloadError::InvalidField { field: named, .. } => assert_eq!(named, field),
            other => panic!("{field}: {other}"),
        }
    }
}

#[test]
fn short_signature_is_an_invalid_field() {
    let payload = VenuePayload {
        signature: vec![0; 63],
        ..venue().sign(&key()).unwrap()
    };
    let err = reject(&payload.encode_to_vec());
    assert!(
        matches!(
            err,
            PayloadError::InvalidField {
                field: "signature",
                ..
            }
        ),
        "{err}"
    );
}

#[test]
fn tampered_payload_fails_the_signature() {
    let payload = VenuePayload {
        capacity: 41,
        ..venue().sign(&key()).unwrap()
    };
    assert_eq!(reject(&payload.encode_to_vec()), PayloadError::BadSignature);
}

#[test]
fn payload_from_an_untrusted_key_is_rejected() {
    let other = RegistryKey::from_secret(&[9; 32]);
    let bytes = venue().sign(&other).unwrap().encode_to_vec();
    assert_eq!(reject(&bytes), PayloadError::UnknownKey);
}

#[test]
fn signature_from_another_key_with_the_same_id_is_rejected() {
    let other = RegistryKey::from_secret(&[9; 32]);
    let mut payload = venue().sign(&other).unwrap();
    payload.key_id = key().key_id().to_vec();
    payload.signature = other.sign(&signing_input(&payload)).to_vec();
    assert_eq!(reject(&payload.encode_to_vec()), PayloadError::BadSignature);
}

#[test]
fn payload_is_valid_through_its_last_day_and_expired_after() {
    let bytes = venue().sign(&key()).unwrap().encode_to_vec();
    let last = u64::from(venue().valid_until_day);
    assert!(parse_bytes(&bytes, &keys(), last * 86_400 + 86_399).is_ok());
    let err = parse_bytes(&bytes, &keys(), (last + 1) * 86_400).unwrap_err();
    assert_eq!(
        err,
        PayloadError::Expired {
            valid_until_day: venue().valid_until_day
        }
    );
}

#[test]
fn signing_refuses_an_invalid_venue() {
    let venue = VenueInfo {
        capacity: 0,
        ..venue()
    };
    assert!(matches!(
        venue.sign(&key()),
        Err(PayloadError::InvalidField { .. })
    ));
}

#[test]
fn categories_round_trip_by_code_and_name() {
    for category in VenueCategory::ALL {
        assert_eq!(VenueCategory::from_code(category.code()), Some(category));
        assert_eq!(VenueCategory::from_name(category.name()), Some(category));
    }
    assert_eq!(VenueCategory::from_code(12), None);
}

proptest! {
    #[test]
    fn parser_never_panics_on_random_bytes(bytes in proptest::collection::vec(any::<u8>(), 0..400)) {
        let _ = parse_bytes(&bytes, &keys(), NOW);
    }

    #[test]
    fn parser_never_panics_on_random_urls(fragment in "[A-Za-z0-9_=+/-]{0,700}") {
        let url = format!("https://checkin.example.org/c#{fragment}");
        let _ = parse_url(&url, &config(), &keys(), NOW);
    }

    #[test]
    fn any_single_byte_flip_is_rejected(index in 0usize..1000, flip in 1u8..=255) {
        let mut bytes = venue().sign(&key()).unwrap().encode_to_vec();
        let index = index % bytes.len();
        bytes[index] ^= flip;
        prop_assert!(parse_bytes(&bytes, &keys(), NOW).is_err());
    }
}
