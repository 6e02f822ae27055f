//! End-to-end issuance, presentation and verification through the wire encodings, with a
//! negative test for every rejection rule of issuance and verification.

use std::collections::BTreeSet;

use hotspot_credentials::encoding::EncodingError;
use hotspot_credentials::issuance::{self, CredentialRequest, CredentialResponse, IssuanceError};
use hotspot_credentials::keys::{Day, IssuerKey, KeySet};
use hotspot_credentials::labels::{REQUEST_CONTEXT_CROWDING, REQUEST_CONTEXT_OUTBREAK};
use hotspot_credentials::presentation::{
    self, Credential, CredentialError, Presentation, PresentationContext, Tag,
};

const LIMIT: u32 = 4;
const KIND: &[u8] = REQUEST_CONTEXT_CROWDING;

fn key() -> IssuerKey {
    IssuerKey::from_seed(&[1; 32])
}

fn context(window: u64) -> PresentationContext {
    PresentationContext::new(b"task-crowding-1", window).expect("short task id")
}

/// Request and response bytes of one issuance, and the resulting credential.
struct Issued {
    request: Vec<u8>,
    response: Vec<u8>,
    credential: Credential,
}

/// Issues a credential for `KIND` under `key`, through the wire encodings, with seed `seed`.
fn issue(key: &IssuerKey, seed: u8) -> Issued {
    let (pending, request) =
        CredentialRequest::new_with_randomness(key.public(), KIND, &[seed; 32]);
    let request_bytes = request.to_bytes();
    let request = CredentialRequest::from_bytes(&request_bytes).expect("request decodes");
    let response = issuance::issue_with_randomness(key, KIND, &request, &[seed ^ 0x55; 32])
        .expect("issuer accepts");
    let response_bytes = response.to_bytes();
    let response = CredentialResponse::from_bytes(&response_bytes).expect("response decodes");
    let credential = pending.finalize(&response).expect("client accepts");
    Issued {
        request: request_bytes,
        response: response_bytes,
        credential,
    }
}

fn present(credential: &Credential, window: u64, nonce: u32, seed: u8) -> Presentation {
    let presentation = credential
        .present_with_randomness(&context(window), LIMIT, nonce, &[seed; 32])
        .expect("nonce in range");
    Presentation::from_bytes(&presentation.to_bytes()).expect("presentation decodes")
}

fn verify(
    key: &IssuerKey,
    window: u64,
    presentation: &Presentation,
) -> Result<Tag, CredentialError> {
    presentation::verify(key, KIND, &context(window), LIMIT, presentation)
}

// ---- Honest runs ----------------------------------------------------------------------------

#[test]
fn issued_credential_presents_and_verifies_for_every_nonce() {
    let key = key();
    let credential = issue(&key, 7).credential;
    let tags: BTreeSet<Tag> = (0..LIMIT)
        .map(|nonce| {
            verify(&key, 100, &present(&credential, 100, nonce, nonce as u8)).expect("valid")
        })
        .collect();
    assert_eq!(tags.len(), LIMIT as usize, "each nonce gives its own tag");
}

#[test]
fn every_limit_from_one_to_seventeen_verifies_at_its_largest_nonce() {
    let key = key();
    let credential = issue(&key, 7).credential;
    for limit in 1..=17u32 {
        let presentation = credential
            .present_with_randomness(&context(5), limit, limit - 1, &[3; 32])
            .expect("in range");
        let bytes = presentation.to_bytes();
        assert_eq!(bytes.len(), Presentation::encoded_len(limit));
        let decoded = Presentation::from_bytes(&bytes).expect("decodes");
        presentation::verify(&key, KIND, &context(5), limit, &decoded).expect("valid");
    }
}

#[test]
fn presentation_generation_is_deterministic_in_its_seed() {
    let credential = issue(&key(), 7).credential;
    let a = present(&credential, 100, 1, 9).to_bytes();
    assert_eq!(a, present(&credential, 100, 1, 9).to_bytes());
    assert_ne!(a, present(&credential, 100, 1, 10).to_bytes());
}

#[test]
fn stored_credential_round_trips_and_still_presents() {
    let key = key();
    let credential = issue(&key, 7).credential;
    let restored = Credential::from_bytes(&credential.to_bytes()).expect("decodes");
    assert_eq!(*restored.to_bytes(), *credential.to_bytes());
    assert!(verify(&key, 100, &present(&restored, 100, 0, 1)).is_ok());
}

#[test]
fn secrets_never_reach_debug_output() {
    let key = key();
    let credential = issue(&key, 7).credential;
    let secret_prefix = hex::encode(&key.to_secret_bytes()[..8]);
    let m1_prefix = hex::encode(&credential.to_bytes()[96..104]);
    for printed in [format!("{key:?}"), format!("{credential:?}")] {
        assert!(
            !printed.contains(&secret_prefix) && !printed.contains(&m1_prefix),
            "{printed}"
        );
    }
}

// ---- The tag: replays are equal tags ------------------------------------------------------

#[test]
fn reused_nonce_gives_an_equal_tag() {
    let key = key();
    let credential = issue(&key, 7).credential;
    let first = verify(&key, 100, &present(&credential, 100, 2, 1)).expect("valid");
    let again = verify(&key, 100, &present(&credential, 100, 2, 9)).expect("valid");
    assert_eq!(first, again, "same credential, context and nonce: same tag");
    let other_window = verify(&key, 101, &present(&credential, 101, 2, 1)).expect("valid");
    assert_ne!(first, other_window, "another context gives another tag");
    let other = verify(&key, 100, &present(&issue(&key, 8).credential, 100, 2, 1)).expect("valid");
    assert_ne!(first, other, "another credential gives another tag");
}

// ---- Verification rejections --------------------------------------------------------------

#[test]
fn forged_presentation_is_rejected_whatever_byte_changes() {
    let key = key();
    let bytes = present(&issue(&key, 7).credential, 100, 1, 1).to_bytes();
    for i in 0..bytes.len() {
        let mut forged = bytes.clone();
        forged[i] ^= 0x04;
        let outcome = Presentation::from_bytes(&forged)
            .map_err(CredentialError::from)
            .and_then(|p| verify(&key, 100, &p));
        assert!(outcome.is_err(), "flipping byte {i} went unnoticed");
    }
}

#[test]
fn presentation_for_another_window_is_rejected_as_wrong_context() {
    let key = key();
    let presentation = present(&issue(&key, 7).credential, 100, 1, 1);
    assert_eq!(
        verify(&key, 101, &presentation),
        Err(CredentialError::WrongContext)
    );
    let other_task = PresentationContext::new(b"task-crowding-2", 100).expect("context");
    assert_eq!(
        presentation::verify(&key, KIND, &other_task, LIMIT, &presentation),
        Err(CredentialError::WrongContext)
    );
}

#[test]
fn relabelled_context_digest_does_not_move_a_presentation_to_another_window() {
    let key = key();
    let credential = issue(&key, 7).credential;
    let mut bytes = present(&credential, 100, 1, 1).to_bytes();
    let digest_of_101 = &present(&credential, 101, 1, 1).to_bytes()[8..16];
    bytes[8..16].copy_from_slice(digest_of_101);
    let moved = Presentation::from_bytes(&bytes).expect("decodes");
    assert_eq!(
        verify(&key, 101, &moved),
        Err(CredentialError::InvalidProof)
    );
}

#[test]
fn presentation_of_another_credential_kind_is_rejected() {
    let key = key();
    let presentation = present(&issue(&key, 7).credential, 100, 1, 1);
    assert_eq!(
        presentation::verify(
            &key,
            REQUEST_CONTEXT_OUTBREAK,
            &context(100),
            LIMIT,
            &presentation
        ),
        Err(CredentialError::InvalidProof)
    );
}

#[test]
fn presentation_for_another_limit_is_rejected() {
    let key = key();
    let presentation = present(&issue(&key, 7).credential, 100, 1, 1);
    assert_eq!(
        presentation::verify(&key, KIND, &context(100), 8, &presentation),
        Err(CredentialError::LimitMismatch {
            presented: LIMIT,
            expected: 8
        })
    );
    // Relabelling the limit to one of the same bit length does not help: the proof binds it.
    let mut bytes = presentation.to_bytes();
    bytes[16..20].copy_from_slice(&3u32.to_be_bytes());
    let relabelled = Presentation::from_bytes(&bytes).expect("same shape");
    assert_eq!(
        presentation::verify(&key, KIND, &context(100), 3, &relabelled),
        Err(CredentialError::InvalidProof)
    );
}

#[test]
fn presentation_under_another_key_is_rejected() {
    let (key, other) = (key(), IssuerKey::from_seed(&[2; 32]));
    let presentation = present(&issue(&key, 7).credential, 100, 1, 1);
    assert_eq!(
        verify(&other, 100, &presentation),
        Err(CredentialError::WrongKey {
            found: key.key_id(),
            expected: other.key_id()
        })
    );
    // A credential of another issuer, relabelled with this key's id, fails the proof.
    let mut bytes = present(&issue(&other, 7).credential, 100, 1, 1).to_bytes();
    bytes[..8].copy_from_slice(&key.key_id().0);
    let relabelled = Presentation::from_bytes(&bytes).expect("decodes");
    assert_eq!(
        verify(&key, 100, &relabelled),
        Err(CredentialError::InvalidProof)
    );
}

#[test]
fn unknown_key_id_is_rejected() {
    let set = KeySet::derive_daily(&[9; 32], Day(20)..=Day(22));
    let presentation = present(&issue(&key(), 7).credential, 100, 1, 1);
    assert_eq!(
        set.verify(Day(20)..=Day(22), KIND, &context(100), LIMIT, &presentation),
        Err(CredentialError::UnknownKeyId(key().key_id()))
    );
}

#[test]
fn stale_key_is_rejected_and_a_current_one_accepted() {
    let set = KeySet::derive_daily(&[9; 32], Day(20)..=Day(22));
    let key_21 = set.for_day(Day(21)).expect("present");
    let presentation = present(&issue(key_21, 7).credential, 100, 1, 1);
    assert_eq!(
        set.verify(Day(22)..=Day(22), KIND, &context(100), LIMIT, &presentation),
        Err(CredentialError::StaleKey {
            key_id: key_21.key_id(),
            day: 21
        })
    );
    assert!(
        set.verify(Day(21)..=Day(22), KIND, &context(100), LIMIT, &presentation)
            .is_ok()
    );
}

// ---- Issuance rejections ------------------------------------------------------------------

#[test]
fn forged_request_proof_is_rejected() {
    let key = key();
    let bytes = issue(&key, 7).request;
    for i in 8..bytes.len() {
        let mut forged = bytes.clone();
        forged[i] ^= 0x04;
        if let Ok(request) = CredentialRequest::from_bytes(&forged) {
            assert!(
                matches!(
                    issuance::issue_with_randomness(&key, KIND, &request, &[0; 32]),
                    Err(IssuanceError::InvalidRequestProof(_))
                ),
                "byte {i}"
            );
        }
    }
}

#[test]
fn request_for_another_kind_or_key_is_rejected() {
    let key = key();
    let request = CredentialRequest::from_bytes(&issue(&key, 7).request).expect("decodes");
    assert!(matches!(
        issuance::issue_with_randomness(&key, REQUEST_CONTEXT_OUTBREAK, &request, &[0; 32]),
        Err(IssuanceError::InvalidRequestProof(_))
    ));
    let other = IssuerKey::from_seed(&[2; 32]);
    assert_eq!(
        issuance::issue_with_randomness(&other, KIND, &request, &[0; 32]).err(),
        Some(IssuanceError::WrongKey {
            found: key.key_id(),
            expected: other.key_id()
        })
    );
}

#[test]
fn forged_response_proof_is_rejected() {
    let key = key();
    let response_bytes = issue(&key, 7).response;
    for i in (8..response_bytes.len()).step_by(7) {
        let (pending, _) = CredentialRequest::new_with_randomness(key.public(), KIND, &[7; 32]);
        let mut forged = response_bytes.clone();
        forged[i] ^= 0x04;
        if let Ok(response) = CredentialResponse::from_bytes(&forged) {
            assert!(
                matches!(
                    pending.finalize(&response),
                    Err(IssuanceError::InvalidResponseProof(_))
                ),
                "byte {i}"
            );
        }
    }
}

/// An issuer that answers one client with a secret key other than the published one (to
/// recognise that client's presentations later) is caught at finalisation.
#[test]
fn response_under_an_unpublished_key_is_rejected() {
    let (key, shadow) = (key(), IssuerKey::from_seed(&[2; 32]));
    let (pending, request) = CredentialRequest::new_with_randomness(key.public(), KIND, &[7; 32]);
    let mut request_bytes = request.to_bytes();
    request_bytes[..8].copy_from_slice(&shadow.key_id().0);
    let relabelled = CredentialRequest::from_bytes(&request_bytes).expect("decodes");
    // The shadow key cannot even accept the request: its proof binds the published key.
    assert!(issuance::issue_with_randomness(&shadow, KIND, &relabelled, &[0; 32]).is_err());
    // Nor does a response made under the shadow key pass as one of the published key.
    let (_, shadow_request) =
        CredentialRequest::new_with_randomness(shadow.public(), KIND, &[7; 32]);
    let response =
        issuance::issue_with_randomness(&shadow, KIND, &shadow_request, &[0; 32]).expect("ok");
    let mut response_bytes = response.to_bytes();
    response_bytes[..8].copy_from_slice(&key.key_id().0);
    let relabelled = CredentialResponse::from_bytes(&response_bytes).expect("decodes");
    assert!(matches!(
        pending.finalize(&relabelled),
        Err(IssuanceError::InvalidResponseProof(_))
    ));
}

#[test]
fn response_for_another_key_id_is_rejected() {
    let (key, other) = (key(), IssuerKey::from_seed(&[2; 32]));
    let (pending, _) = CredentialRequest::new_with_randomness(key.public(), KIND, &[7; 32]);
    let response = CredentialResponse::from_bytes(&issue(&other, 7).response).expect("decodes");
    assert_eq!(
        pending.finalize(&response).err(),
        Some(IssuanceError::WrongKey {
            found: other.key_id(),
            expected: key.key_id()
        })
    );
}

// ---- Unlinkability ------------------------------------------------------------------------

/// Every 8-byte window of `bytes`.
fn windows(bytes: &[u8]) -> BTreeSet<[u8; 8]> {
    bytes
        .windows(8)
        .map(|w| w.try_into().expect("8 bytes"))
        .collect()
}

/// The presentation minus its public header (key id, context digest, limit), which every
/// presentation under the same key, context and limit shares.
fn body(presentation: &Presentation) -> Vec<u8> {
    presentation.to_bytes()[20..].to_vec()
}

/// What the issuer saw (request and response) and what a verifier sees (the presentation
/// body) share no 8-byte substring, so no value of issuance is carried into a presentation;
/// two presentations of one credential share none either.
#[test]
fn presentation_carries_no_value_from_issuance() {
    let key = key();
    let issued = issue(&key, 7);
    let issuer_view: BTreeSet<[u8; 8]> = windows(&issued.request)
        .union(&windows(&issued.response))
        .copied()
        .collect();
    let first = body(&present(&issued.credential, 100, 0, 1));
    let second = body(&present(&issued.credential, 100, 1, 2));
    let later = body(&present(&issued.credential, 101, 0, 3));
    for view in [&first, &second, &later] {
        assert!(windows(view).is_disjoint(&issuer_view));
    }
    assert!(windows(&first).is_disjoint(&windows(&second)));
    assert!(windows(&first).is_disjoint(&windows(&later)));
}

/// The issuer's own secret state for a request (its key and the request it answered) does
/// not let it tell which of two credentials a presentation came from: the verification
/// equation holds for both, and nothing but the tag depends on the credential.
#[test]
fn issuer_cannot_tell_which_credential_presented() {
    let key = key();
    let (a, b) = (issue(&key, 7), issue(&key, 8));
    let from_a = present(&a.credential, 100, 0, 1);
    let from_b = present(&b.credential, 100, 0, 1);
    assert!(verify(&key, 100, &from_a).is_ok() && verify(&key, 100, &from_b).is_ok());
    let issuer_view: BTreeSet<[u8; 8]> = [&a.request, &a.response, &b.request, &b.response]
        .iter()
        .flat_map(|bytes| windows(bytes))
        .collect();
    assert!(windows(&body(&from_a)).is_disjoint(&issuer_view));
    assert!(windows(&body(&from_b)).is_disjoint(&issuer_view));
}

// ---- Encodings: every point and scalar, truncation, trailing bytes ------------------------

/// Three ways to break a 32-byte element: the identity, a negative field element (s = 1),
/// and a canonical encoding with the unused top bit set.
fn broken_points(valid: &[u8]) -> [[u8; 32]; 3] {
    let mut negative = [0u8; 32];
    negative[0] = 1;
    let mut high_bit: [u8; 32] = valid.try_into().expect("32 bytes");
    high_bit[31] |= 0x80;
    [[0; 32], negative, high_bit]
}

/// The group order, little-endian: the smallest unreduced scalar.
const ORDER: [u8; 32] = [
    0xed, 0xd3, 0xf5, 0x5c, 0x1a, 0x63, 0x12, 0x58, 0xd6, 0x9c, 0xf7, 0xa2, 0xde, 0xf9, 0xde, 0x14,
    0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0x10,
];

/// Breaks every point field at `points` and every scalar field at `scalars` of `bytes`, and
/// checks that `decode` rejects each with the right kind of error; then every truncation
/// and one trailing byte.
fn check_encoding_rejections<T>(
    bytes: &[u8],
    points: impl IntoIterator<Item = usize>,
    scalars: impl IntoIterator<Item = usize>,
    decode: impl Fn(&[u8]) -> Result<T, EncodingError>,
) {
    assert!(decode(bytes).is_ok());
    for at in points {
        for broken in broken_points(&bytes[at..at + 32]) {
            let mut bad = bytes.to_vec();
            bad[at..at + 32].copy_from_slice(&broken);
            assert!(
                matches!(
                    decode(&bad).err(),
                    Some(
                        EncodingError::NonCanonicalPoint { .. }
                            | EncodingError::IdentityPoint { .. }
                    )
                ),
                "point at {at}"
            );
        }
    }
    for at in scalars {
        let mut bad = bytes.to_vec();
        bad[at..at + 32].copy_from_slice(&ORDER);
        assert!(
            matches!(
                decode(&bad).err(),
                Some(EncodingError::NonCanonicalScalar { .. })
            ),
            "scalar at {at}"
        );
    }
    for len in 0..bytes.len() {
        assert!(
            matches!(
                decode(&bytes[..len]).err(),
                Some(EncodingError::Truncated { .. })
            ),
            "truncated to {len}"
        );
    }
    let mut long = bytes.to_vec();
    long.push(0);
    assert_eq!(
        decode(&long).err(),
        Some(EncodingError::TrailingBytes { count: 1 })
    );
}

#[test]
fn request_rejects_every_non_canonical_field_and_bad_length() {
    let bytes = issue(&key(), 7).request;
    // keyId (8) | m1Enc | commitment | 2 responses.
    check_encoding_rejections(&bytes, [8, 40], [72, 104], |b| {
        CredentialRequest::from_bytes(b)
    });
}

#[test]
fn response_rejects_every_non_canonical_field_and_bad_length() {
    let bytes = issue(&key(), 7).response;
    // keyId (8) | 5 elements | 9 commitments | 6 responses.
    let points = (0..14).map(|i| 8 + 32 * i);
    let scalars = (14..20).map(|i| 8 + 32 * i);
    check_encoding_rejections(&bytes, points, scalars, |b| {
        CredentialResponse::from_bytes(b)
    });
}

#[test]
fn presentation_rejects_every_non_canonical_field_and_bad_length() {
    let bytes = present(&issue(&key(), 7).credential, 100, 1, 1).to_bytes();
    // keyId | digest | limit (20) | 4 elements | k = 2 bit commitments | 7 commitments | 9 responses.
    let points = (0..13).map(|i| 20 + 32 * i);
    let scalars = (13..22).map(|i| 20 + 32 * i);
    assert_eq!(bytes.len(), 20 + 32 * 22);
    check_encoding_rejections(&bytes, points, scalars, Presentation::from_bytes);
}

#[test]
fn presentation_with_zero_limit_is_rejected() {
    let mut bytes = present(&issue(&key(), 7).credential, 100, 1, 1).to_bytes();
    bytes[16..20].copy_from_slice(&0u32.to_be_bytes());
    assert_eq!(
        Presentation::from_bytes(&bytes).err(),
        Some(EncodingError::OutOfRange {
            field: "presentation.limit",
            value: 0
        })
    );
}

#[test]
fn stored_credential_rejects_every_non_canonical_field_and_bad_length() {
    let bytes = issue(&key(), 7).credential.to_bytes();
    // X0 X1 X2 | m1 | U | UPrime | len | context.
    check_encoding_rejections(&bytes, [0, 32, 64, 128, 160], [96], |b| {
        Credential::from_bytes(b)
    });
}

#[test]
fn keys_reject_every_non_canonical_field_and_bad_length() {
    let key = key();
    let public = key.public().to_bytes();
    check_encoding_rejections(&public, [0, 32, 64], [], |b| {
        hotspot_credentials::keys::IssuerPublicKey::from_bytes(b)
    });
    let secret = key.to_secret_bytes();
    check_encoding_rejections(&secret[..], [], [0, 32, 64, 96], |b| {
        IssuerKey::from_secret_bytes(b)
    });
}
