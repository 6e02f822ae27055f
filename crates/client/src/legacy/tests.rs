//! Real event QR codes from public documentation and code, and the rejection rules.
#![allow(clippy::unwrap_used, reason = "a failing test should panic")]

use super::*;

/// corona-warn-app/cwa-documentation, `event_registration.md`, section "QR Code Structure",
/// the worked example ("Friseur", Berlin, vendor data type 5, 120 minutes).
const CWA_DOC: &str = "https://e.coronawarn.app?v=1#CAESEwgBEgdGcmlzZXVyGgZCZXJsaW4adggBEmCDAszMTXne1DAA5_YxmhRdd_NZN2VKl9L32Jl9-ZybE4b2eNIrhFOKYU4XAOHq3RPLDxdHTW6ANiO24rCOO4rj06HzcVZy3pel58-L1KSPG-_PneL2BoyZQRz3qlu2hoAaEATXwzyyIshzBHREtsdmc6kiBggBEAUYeA";

/// corona-warn-app/cwa-app-android, unit tests of the QR code validator and of
/// `TraceLocation.locationUrl` ("My Birthday Party", a temporary private event).
const CWA_ANDROID: &str = "https://e.coronawarn.app?v=1#CAESLAgBEhFNeSBCaXJ0aGRheSBQYXJ0eRoLYXQgbXkgcGxhY2Uo04ekATD3h6QBGmoIARJgOMTa6eYSiaDv8lW13xdYEvGHOZ1EYTiFSxt51HEoPCD7CNnvCUiIYPhax1MpkN0UfNClCm9ZWYy0JH01CDVD9eq-voxQ1EcFJQkEIujVwoCNK0MNGuDK1ayjGxeDc4UDGgQxMjM0IgQIARAC";

/// A public Rails check-in service's specs for its CWA link ("Example Inc", a public
/// building, 240 minutes; base64url with a trailing `=`).
const CWA_RAILS: &str = "https://e.coronawarn.app?v=1#CAESLQgBEgtFeGFtcGxlIEluYxocRXhhbXBsZSBTdHIuIDIsIDEwMjIzIEJlcmxpbhqXAQgBEoABZ3dMTXpFMTUzdFF3QU9mMk1ab1VYWGZ6V1RkbFNwZlM5OWlaZmZtY214T0c5bmpTSzRSVGltRk9Gd0RoNnQwVHl3OFhSMDF1Z0RZanR1S3dqanVLNDlPaDgzRldjdDZYcGVmUGk5U2tqeHZ2ejUzaTlnYU1tVUVjOTZwYnRvYUEaEJ4chd1xIFdMfUPY2j-3aWgiBwgBEAgY8AE=";

/// CrowdNotifier/crowdnotifier-sdk-ios, the SDK's benchmark (a NotifyMe version-2 entry code
/// on the development host: "Titel", "Untertitel", room "Zusatz", venue type 5).
const NOTIFYME_V2: &str = "https://qr-dev.notify-me.ch?v=2#CAISTQoFVGl0ZWwSClVudGVydGl0ZWwaBlp1c2F0eiAFKiBiPSNR7TaJ9WWDLLKAIKR8gkmwBIo8MdhCE8rMHumafzCAm_nygS84gNOSnIIvGmCNeKNngX8ez_jL225AyPOPUa-3Zgo4gkd-z8dgL6mHuYT0aKVsVtsPBk6AWHyTLQSKfbT-Wb287xE-LIyTjdBsBje_6gbVxB7eLPSlyGFoWtmFliOR7Lk70X8P6J7SNoMiRAogylUYLr1fD2-Jqwxt4BFVoCUWWA_-Z8Li6Bsk1wKluCQSIN_YkcDN-xA5ZJhPJaNKZ7tWjJL2CRYOeiOuqlPWoLCN";

#[test]
fn cwa_documentation_example_reads_description_address_type_and_length() {
    let venue = parse_legacy_url(CWA_DOC, 32).unwrap();
    assert_eq!(venue.source, LegacySource::CoronaWarnApp);
    assert_eq!(
        (venue.description.as_str(), venue.address.as_str()),
        ("Friseur", "Berlin")
    );
    assert_eq!(
        (venue.type_code, venue.category),
        (5, VenueCategory::PersonalCare)
    );
    assert_eq!(venue.default_minutes, 120);
    assert_eq!(venue.event_window, None);
}

#[test]
fn cwa_android_test_code_reads_a_temporary_event() {
    let venue = parse_legacy_url(CWA_ANDROID, 64).unwrap();
    assert_eq!(venue.description, "My Birthday Party");
    assert_eq!(venue.address, "at my place");
    assert_eq!((venue.type_code, venue.category), (2, VenueCategory::Other));
    assert_eq!(venue.default_minutes, DEFAULT_MINUTES);
    assert_eq!(venue.event_window, Some((2_687_955, 2_687_991)));
}

#[test]
fn cwa_code_with_padding_from_a_third_party_generator_is_read() {
    let venue = parse_legacy_url(CWA_RAILS, 32).unwrap();
    assert_eq!(venue.description, "Example Inc");
    assert_eq!(venue.address, "Example Str. 2, 10223 Berlin");
    assert_eq!(
        (venue.type_code, venue.category),
        (8, VenueCategory::PublicBuilding)
    );
    assert_eq!(venue.default_minutes, 240);
}

#[test]
fn notifyme_v2_entry_code_is_read() {
    let venue = parse_legacy_url(NOTIFYME_V2, 32).unwrap();
    assert_eq!(venue.source, LegacySource::NotifyMeV2);
    assert_eq!(venue.description, "Titel");
    assert_eq!(venue.address, "Untertitel, Zusatz");
    assert_eq!(venue.type_code, 5);
}

#[test]
fn notifyme_v3_code_uses_the_cwa_layout() {
    // No public v3 poster was found; build one from the published layout, NotifyMe's
    // countryData (`NotifyMeLocationData`) included.
    let country = CountryData {
        r#type: 7,
        default_check_in_length_in_minutes: 0,
    };
    let payload = QrCodePayload {
        version: 1,
        location_data: Some(TraceLocation {
            description: "Bäckerei".into(),
            address: "Bern".into(),
            start_timestamp: 0,
            end_timestamp: 0,
        }),
        country_data: country.encode_to_vec(),
    };
    let url = format!(
        "https://qr.notify-me.ch?v=3#{}",
        URL_SAFE_NO_PAD.encode(payload.encode_to_vec())
    );
    let venue = parse_legacy_url(&url, 32).unwrap();
    assert_eq!(
        (venue.source, venue.category),
        (LegacySource::NotifyMeV3, VenueCategory::Retail)
    );
    assert_eq!(venue.description, "Bäckerei");
}

#[test]
fn venue_codes_are_stable_fit_their_width_and_differ_per_poster() {
    let a32 = parse_legacy_url(CWA_DOC, 32).unwrap().venue_code;
    let a64 = parse_legacy_url(CWA_DOC, 64).unwrap().venue_code;
    let b32 = parse_legacy_url(CWA_ANDROID, 32).unwrap().venue_code;
    assert_eq!(a32, parse_legacy_url(CWA_DOC, 32).unwrap().venue_code);
    assert!(a32 <= u64::from(u32::MAX) && a32 != 0);
    assert_eq!(
        a64 >> 32,
        a32,
        "the 32-bit code is the prefix of the 64-bit code"
    );
    assert_ne!(a32, b32);
}

#[test]
fn derived_code_is_never_zero_even_for_one_bit() {
    for i in 0..200u32 {
        assert_ne!(derive_venue_code(&i.to_be_bytes(), 1), 0);
    }
}

#[test]
fn unknown_hosts_and_versions_are_rejected() {
    for bad in [
        CWA_DOC.replacen("?v=1", "?v=2", 1),
        CWA_DOC.replacen("e.coronawarn.app", "e.coronawarn.app.evil", 1),
        CWA_DOC.replacen("https", "http", 1),
    ] {
        assert_eq!(
            parse_legacy_url(&bad, 32),
            Err(LegacyError::UnknownFormat),
            "{bad}"
        );
    }
}

#[test]
fn oversize_bad_base64_and_bad_bits_are_rejected() {
    let long = format!("{CWA_DOC}{}", "A".repeat(MAX_LEGACY_URL_LEN));
    assert!(matches!(
        parse_legacy_url(&long, 32),
        Err(LegacyError::Oversize(_))
    ));
    assert_eq!(
        parse_legacy_url(&format!("{CWA_DOC}*"), 32),
        Err(LegacyError::BadBase64)
    );
    assert_eq!(parse_legacy_url(CWA_DOC, 48), Err(LegacyError::BadBits(48)));
}

#[test]
fn malformed_and_wrong_version_payloads_are_rejected() {
    let encode = |bytes: &[u8]| {
        format!(
            "https://e.coronawarn.app?v=1#{}",
            URL_SAFE_NO_PAD.encode(bytes)
        )
    };
    assert!(matches!(
        parse_legacy_url(&encode(&[0x12, 0x05, 0x01]), 32),
        Err(LegacyError::Malformed(_))
    ));
    assert!(matches!(
        parse_legacy_url(&encode(&[0x08, 0x01]), 32),
        Err(LegacyError::Malformed(_))
    ));
    assert_eq!(
        parse_legacy_url(&encode(&[0x08, 0x07]), 32),
        Err(LegacyError::UnknownVersion(7))
    );
}

#[test]
fn empty_description_is_rejected() {
    let payload = QrCodePayload {
        version: 1,
        location_data: Some(TraceLocation {
            description: String::new(),
            address: "x".into(),
            start_timestamp: 0,
            end_timestamp: 0,
        }),
        country_data: Vec::new(),
    };
    let url = format!(
        "https://e.coronawarn.app?v=1#{}",
        URL_SAFE_NO_PAD.encode(payload.encode_to_vec())
    );
    assert_eq!(
        parse_legacy_url(&url, 32),
        Err(LegacyError::BadText("description"))
    );
}

proptest::proptest! {
    #[test]
    fn legacy_parser_never_panics(bytes in proptest::collection::vec(proptest::prelude::any::<u8>(), 0..600)) {
        for prefix in ["https://e.coronawarn.app?v=1#", "https://qr.notify-me.ch?v=2#"] {
            let _ = parse_legacy_url(&format!("{prefix}{}", URL_SAFE_NO_PAD.encode(&bytes)), 32);
        }
    }
}
