//! Verification of the signed list (every rejection) and matching against the diary.
#![allow(clippy::unwrap_used, reason = "a failing test should panic")]

use super::*;
use crate::diary::tests::venue;
use crate::registry::{RegistryKey, TrustedKeys};

const HOUR: u64 = 3600;
const NOW: UnixSeconds = 1_796_000_000;

fn key() -> RegistryKey {
    RegistryKey::from_secret(&[11; 32])
}

fn keys() -> TrustedKeys {
    TrustedKeys::new([key().public()])
}

fn cell(venue_code: u64, hour: u64, level: u32) -> ExposureCell {
    ExposureCell {
        venue_code,
        window_start: hour * HOUR,
        level,
    }
}

fn list(cells: Vec<ExposureCell>) -> ExposureList {
    ExposureList {
        version: EXPOSURE_VERSION,
        task_id: "outbreak".into(),
        issued_at: NOW,
        window_secs: 3600,
        cells,
        key_id: Vec::new(),
        signature: Vec::new(),
    }
}

fn signed(cells: Vec<ExposureCell>) -> Vec<u8> {
    list(cells).sign(&key()).encode_to_vec()
}

/// Signs without sorting, to build lists that break a field rule but carry a good signature.
fn signed_as_is(list: ExposureList) -> Vec<u8> {
    let mut list = ExposureList {
        key_id: key().key_id().to_vec(),
        ..list
    };
    list.signature = key().sign(&signing_input(&list)).to_vec();
    list.encode_to_vec()
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
    let bytes = signed(vec![cell(7, 11, 2), cell(7, 14, 1), cell(8, 11, 1)]);
    let list = verify_list(&bytes, &keys(), NOW).unwrap();
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
        (1, 11 * HOUR, 2)
    );
    assert_eq!(matches[0].venue_name, "Venue 7");
}

#[test]
fn bad_signature_is_rejected() {
    let mut list = list(vec![cell(7, 11, 1)]).sign(&key());
    list.cells[0].level = 2;
    assert_eq!(
        verify_list(&list.encode_to_vec(), &keys(), NOW),
        Err(ExposureError::BadSignature)
    );
}

#[test]
fn untrusted_key_is_rejected() {
    let bytes = list(vec![cell(7, 11, 1)])
        .sign(&RegistryKey::from_secret(&[12; 32]))
        .encode_to_vec();
    assert_eq!(
        verify_list(&bytes, &keys(), NOW),
        Err(ExposureError::UnknownKey)
    );
}

#[test]
fn malformed_oversize_version_and_non_canonical_lists_are_rejected() {
    let bytes = signed(vec![cell(7, 11, 1)]);
    assert_eq!(
        verify_list(&bytes[..bytes.len() - 3], &keys(), NOW),
        Err(ExposureError::Malformed)
    );
    assert!(matches!(
        verify_list(&vec![0; MAX_LIST_BYTES + 1], &keys(), NOW),
        Err(ExposureError::Oversize(_))
    ));
    let v2 = signed_as_is(ExposureList {
        version: 2,
        ..list(vec![])
    });
    assert_eq!(
        verify_list(&v2, &keys(), NOW),
        Err(ExposureError::UnknownVersion(2))
    );
    let mut extra = bytes.clone();
    extra.extend_from_slice(&[0x40, 0x01]); // field 8
    assert_eq!(
        verify_list(&extra, &keys(), NOW),
        Err(ExposureError::NonCanonical)
    );
}

#[test]
fn unsorted_duplicate_unaligned_or_dummy_cells_are_rejected() {
    for cells in [
        vec![cell(8, 1, 1), cell(7, 1, 1)],
        vec![cell(7, 1, 1), cell(7, 1, 2)],
        vec![ExposureCell {
            venue_code: 7,
            window_start: 5,
            level: 1,
        }],
        vec![cell(0, 1, 1)],
    ] {
        let bytes = signed_as_is(list(cells.clone()));
        assert_eq!(
            verify_list(&bytes, &keys(), NOW),
            Err(ExposureError::InvalidField("cells")),
            "{cells:?}"
        );
    }
    let bytes = signed_as_is(ExposureList {
        window_secs: 0,
        ..list(vec![])
    });
    assert_eq!(
        verify_list(&bytes, &keys(), NOW),
        Err(ExposureError::InvalidField("window_secs"))
    );
}

#[test]
fn list_from_the_future_is_rejected() {
    let bytes = signed_as_is(ExposureList {
        issued_at: NOW + MAX_SKEW_SECS + 1,
        ..list(vec![])
    });
    assert_eq!(
        verify_list(&bytes, &keys(), NOW),
        Err(ExposureError::FromTheFuture)
    );
}

proptest::proptest! {
    #[test]
    fn verifier_never_panics(bytes in proptest::collection::vec(proptest::prelude::any::<u8>(), 0..300)) {
        let _ = verify_list(&bytes, &keys(), NOW);
    }
}
