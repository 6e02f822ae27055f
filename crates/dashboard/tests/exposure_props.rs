//! Property tests of the exposure-list decoder: arbitrary bytes never panic it, every list
//! round-trips through signing, and an accepted encoding is the only encoding of its list.

use hotspot_dashboard::exposure::{
    ExposureCell, ExposureLevel, ExposureList, SIGNING_CONTEXT, SigningKey,
};
use proptest::prelude::*;

fn key() -> SigningKey {
    SigningKey::from_bytes(&[0x21; 32])
}

fn cell() -> impl Strategy<Value = ExposureCell> {
    (0u64..64, 0u64..48, 1u32..=86_400, any::<bool>()).prop_map(|(venue, hour, secs, red)| {
        ExposureCell {
            venue_code: venue,
            window_start: hour * 3600,
            window_secs: secs,
            level: if red {
                ExposureLevel::Red
            } else {
                ExposureLevel::Orange
            },
        }
    })
}

proptest! {
    #[test]
    fn arbitrary_bytes_are_rejected_without_panicking(bytes in proptest::collection::vec(any::<u8>(), 0..400)) {
        prop_assert!(ExposureList::verify(&bytes, &key().verifying_key()).is_err());
    }

    #[test]
    fn every_list_round_trips_through_signing(
        version in any::<u64>(),
        issued in any::<u64>(),
        cells in proptest::collection::vec(cell(), 0..40),
    ) {
        let list = ExposureList::new(version, issued, cells.clone());
        let bytes = list.sign(&key());
        let back = ExposureList::verify(&bytes, &key().verifying_key()).expect("verifies");
        prop_assert_eq!(&back, &list);
        // Every input cell is found (at its level or a higher one merged into it).
        for c in cells {
            prop_assert!(back.lookup(c.venue_code, c.window_start) >= Some(c.level));
        }
    }

    #[test]
    fn mutated_lists_never_verify_or_reencode_differently(
        cells in proptest::collection::vec(cell(), 1..20),
        index in any::<prop::sample::Index>(),
        flip in 1u8..=255,
    ) {
        let bytes = ExposureList::new(3, 4, cells).sign(&key());
        let mut bad = bytes.clone();
        let at = index.index(bad.len());
        bad[at] ^= flip;
        prop_assert!(ExposureList::verify(&bad, &key().verifying_key()).is_err());

        // Re-signing the mutated body: if it decodes, it must re-encode to the same bytes.
        let body = &bad[..bad.len() - 64];
        let mut resigned = body.to_vec();
        resigned.extend_from_slice(&ed25519_sign(&[SIGNING_CONTEXT, body].concat()));
        if let Ok(list) = ExposureList::verify(&resigned, &key().verifying_key()) {
            prop_assert_eq!(list.sign(&key()), resigned);
        }
    }
}

fn ed25519_sign(message: &[u8]) -> [u8; 64] {
    use ed25519_dalek::Signer;
    key().sign(message).to_bytes()
}
