//! Property tests of the wire encodings: every encoder's output decodes to an equal value,
//! decoders accept exactly the canonical encodings, and no input makes a decoder panic.

use curve25519_dalek::ristretto::CompressedRistretto;
use curve25519_dalek::scalar::Scalar;
use curve25519_dalek::traits::IsIdentity;
use hotspot_credentials::encoding::{decode_point, decode_scalar};
use hotspot_credentials::issuance::{self, CredentialRequest, CredentialResponse};
use hotspot_credentials::keys::{IssuerKey, IssuerPublicKey};
use hotspot_credentials::labels::{DOMAIN_VENUE_POSTER, REQUEST_CONTEXT_OUTBREAK as KIND};
use hotspot_credentials::oprf::DleqProof;
use hotspot_credentials::presentation::{self, Credential, Presentation, PresentationContext};
use hotspot_credentials::signature::{Signature, SigningKey, VerifyingKey};
use proptest::prelude::*;

fn issued(key: &IssuerKey, seed: [u8; 32]) -> (Vec<u8>, Vec<u8>, Credential) {
    let (pending, request) = CredentialRequest::new_with_randomness(key.public(), KIND, &seed);
    let response = issuance::issue_with_randomness(key, KIND, &request, &seed).expect("issued");
    let credential = pending.finalize(&response).expect("finalized");
    (request.to_bytes(), response.to_bytes(), credential)
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(24))]

    #[test]
    fn presentations_round_trip_and_verify(
        seed in any::<[u8; 32]>(),
        limit in 1u32..=40,
        nonce_fraction in 0.0f64..1.0,
        task in proptest::collection::vec(any::<u8>(), 0..=255),
        window in any::<u64>(),
    ) {
        let key = IssuerKey::from_seed(&seed);
        let (request, response, credential) = issued(&key, seed);
        prop_assert_eq!(CredentialRequest::from_bytes(&request).expect("decodes").to_bytes(), request);
        prop_assert_eq!(CredentialResponse::from_bytes(&response).expect("decodes").to_bytes(), response);
        let stored = credential.to_bytes();
        prop_assert_eq!(&*Credential::from_bytes(&stored).expect("decodes").to_bytes(), &*stored);

        let nonce = ((f64::from(limit) * nonce_fraction) as u32).min(limit - 1);
        let context = PresentationContext::new(&task, window).expect("short task id");
        let bytes = credential.present_with_randomness(&context, limit, nonce, &seed).expect("ok").to_bytes();
        let decoded = Presentation::from_bytes(&bytes).expect("decodes");
        prop_assert_eq!(decoded.to_bytes(), bytes);
        prop_assert!(presentation::verify(&key, KIND, &context, limit, &decoded).is_ok());
    }

    #[test]
    fn a_flipped_presentation_bit_never_verifies(seed in any::<[u8; 32]>(), bit in 0usize..724 * 8) {
        let key = IssuerKey::from_seed(&[1; 32]);
        let credential = issued(&key, [2; 32]).2;
        let context = PresentationContext::new(b"t", 1).expect("context");
        let mut bytes = credential.present_with_randomness(&context, 4, 3, &seed).expect("ok").to_bytes();
        bytes[bit / 8] ^= 1 << (bit % 8);
        if let Ok(forged) = Presentation::from_bytes(&bytes) {
            prop_assert!(presentation::verify(&key, KIND, &context, 4, &forged).is_err());
        }
    }
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(256))]

    #[test]
    fn decoders_never_panic_on_arbitrary_bytes(bytes in proptest::collection::vec(any::<u8>(), 0..1200)) {
        let _ = Presentation::from_bytes(&bytes);
        let _ = CredentialRequest::from_bytes(&bytes);
        let _ = CredentialResponse::from_bytes(&bytes);
        let _ = Credential::from_bytes(&bytes);
        let _ = IssuerPublicKey::from_bytes(&bytes);
        let _ = IssuerKey::from_secret_bytes(&bytes);
        let _ = Signature::from_bytes(&bytes);
        let _ = VerifyingKey::from_bytes(&bytes);
        let _ = SigningKey::from_bytes(&bytes);
    }

    #[test]
    fn decoders_never_panic_on_well_sized_noise(header in any::<[u8; 20]>(), rest in any::<[u8; 32]>()) {
        // A plausible header (key id, digest, limit) followed by noise of the right length.
        let mut bytes = header.to_vec();
        let limit = u32::from_be_bytes([0, 0, 0, header[19] % 32 + 1]);
        bytes[16..20].copy_from_slice(&limit.to_be_bytes());
        while bytes.len() < Presentation::encoded_len(limit) {
            bytes.extend_from_slice(&rest);
        }
        bytes.truncate(Presentation::encoded_len(limit));
        let _ = Presentation::from_bytes(&bytes);
    }

    #[test]
    fn points_decode_exactly_when_canonical(bytes in any::<[u8; 32]>()) {
        let expected = CompressedRistretto(bytes).decompress().filter(|p| !p.is_identity());
        match decode_point(&bytes, "p") {
            Ok(point) => {
                prop_assert_eq!(point.compress().to_bytes(), bytes);
                prop_assert_eq!(Some(point), expected);
            }
            Err(_) => prop_assert!(expected.is_none()),
        }
    }

    #[test]
    fn scalars_decode_exactly_when_reduced(bytes in any::<[u8; 32]>()) {
        let reduced = Scalar::from_bytes_mod_order(bytes);
        match decode_scalar(&bytes, "s") {
            Ok(scalar) => prop_assert_eq!(scalar.to_bytes(), bytes),
            Err(_) => prop_assert_ne!(reduced.to_bytes(), bytes),
        }
        let mut proof = [0u8; 64];
        proof[..32].copy_from_slice(&bytes);
        prop_assert_eq!(DleqProof::from_bytes(&proof).is_ok(), reduced.to_bytes() == bytes);
    }

    #[test]
    fn keys_and_signatures_round_trip(seed in any::<[u8; 32]>(), message in proptest::collection::vec(any::<u8>(), 0..64)) {
        let key = IssuerKey::from_seed(&seed);
        let public = IssuerPublicKey::from_bytes(&key.public().to_bytes()).expect("decodes");
        prop_assert_eq!(&public, key.public());
        let restored = IssuerKey::from_secret_bytes(&*key.to_secret_bytes()).expect("decodes");
        prop_assert_eq!(restored.key_id(), key.key_id());

        let signer = SigningKey::from_seed(&seed);
        let signature = signer.sign_with_randomness(DOMAIN_VENUE_POSTER, &message, &seed);
        let decoded = Signature::from_bytes(&signature.to_bytes()).expect("decodes");
        prop_assert_eq!(decoded, signature);
        let verifying = VerifyingKey::from_bytes(&signer.verifying_key().to_bytes()).expect("decodes");
        prop_assert!(verifying.verify(DOMAIN_VENUE_POSTER, &message, &decoded).is_ok());
        let signer_again = SigningKey::from_bytes(signer.to_bytes().as_ref()).expect("decodes");
        prop_assert_eq!(signer_again.verifying_key(), signer.verifying_key());
    }
}
