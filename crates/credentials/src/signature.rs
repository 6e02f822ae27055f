//! Schnorr signatures over ristretto255 with merlin transcripts, for registry-signed venue
//! posters and collector-signed exposure lists.
//!
//! The scheme is the textbook Schnorr signature with the challenge drawn from a merlin
//! transcript (as in schnorrkel, without its key derivation and context machinery):
//!
//! ```text
//! transcript = merlin("hotspot-schnorr-ristretto255-v1") <- domain, public key A, message
//! k = nonce from a private clone <- secret key, caller randomness
//! R = k*G;   c = challenge(transcript <- R);   s = k + c*a;   signature = Ser(R) || Ser(s)
//! verify:    R == s*G - c*A   (decoding rejects non-canonical R, identity R, unreduced s)
//! ```
//!
//! The `domain` separates kinds of signed documents ([`crate::labels::DOMAIN_VENUE_POSTER`],
//! [`crate::labels::DOMAIN_EXPOSURE_LIST`]), so a signature on one kind never verifies as
//! another. Nonces are hedged: derived from the key, the message and the caller's randomness,
//! so neither a bad RNG nor a repeated one leaks the key. Keys carry an 8-byte [`KeyId`] so
//! payloads can name the registry key that signed them and keys can rotate.

use curve25519_dalek::constants::RISTRETTO_BASEPOINT_TABLE;
use curve25519_dalek::ristretto::RistrettoPoint;
use curve25519_dalek::scalar::Scalar;
use merlin::Transcript;
use rand_core::CryptoRng;
use sha2::{Digest, Sha512};
use zeroize::{Zeroize, ZeroizeOnDrop, Zeroizing};

use crate::encoding::{EncodingError, Reader, decode_nonzero_scalar};
use crate::keys::KeyId;
use crate::labels;
use crate::randomness::{Expander, draw_seed};

/// Length of an encoded [`Signature`].
pub const SIGNATURE_LEN: usize = 64;
/// Length of an encoded [`VerifyingKey`] or signing key.
pub const KEY_LEN: usize = 32;

/// Why a signature was rejected.
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum SignatureError {
    /// The signature does not verify for this key, domain and message.
    #[error("the signature does not verify")]
    Invalid,
    /// The signature or key failed to decode.
    #[error(transparent)]
    Encoding(#[from] EncodingError),
}

/// A public key `A = a*G` with its encoding and key id.
#[derive(Clone, Copy, PartialEq, Eq)]
pub struct VerifyingKey {
    point: RistrettoPoint,
    encoded: [u8; KEY_LEN],
    id: KeyId,
}

impl std::fmt::Debug for VerifyingKey {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("VerifyingKey")
            .field("id", &self.id)
            .finish_non_exhaustive()
    }
}

/// A secret signing key. Zeroized on drop; `Debug` prints only the key id.
#[derive(Clone, Zeroize, ZeroizeOnDrop)]
pub struct SigningKey {
    secret: Scalar,
    #[zeroize(skip)]
    public: VerifyingKey,
}

impl std::fmt::Debug for SigningKey {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("SigningKey")
            .field("id", &self.public.id)
            .field("secret", &"<redacted>")
            .finish()
    }
}

/// A signature `Ser(R) || Ser(s)`.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Signature {
    r: (RistrettoPoint, [u8; 32]),
    s: Scalar,
}

impl VerifyingKey {
    fn from_point(point: RistrettoPoint) -> Self {
        let encoded = point.compress().to_bytes();
        let digest = Sha512::new()
            .chain_update(labels::SIGNING_KEY_ID)
            .chain_update(encoded)
            .finalize();
        let mut id = [0u8; 8];
        id.copy_from_slice(&digest[..8]);
        Self {
            point,
            encoded,
            id: KeyId(id),
        }
    }

    /// The canonical encoding of `A`.
    pub fn to_bytes(&self) -> [u8; KEY_LEN] {
        self.encoded
    }

    /// Decodes a key, rejecting non-canonical encodings, the identity and bad lengths.
    pub fn from_bytes(bytes: &[u8]) -> Result<Self, EncodingError> {
        let mut reader = Reader::new(bytes);
        let (point, _) = reader.read_point("verifying_key")?;
        reader.finish()?;
        Ok(Self::from_point(point))
    }

    /// The key id: the first 8 bytes of `SHA-512(SIGNING_KEY_ID || Ser(A))`.
    pub fn key_id(&self) -> KeyId {
        self.id
    }

    /// Verifies `signature` on `message` in `domain`.
    ///
    /// Runs in variable time, which is safe because every input is public.
    pub fn verify(
        &self,
        domain: &[u8],
        message: &[u8],
        signature: &Signature,
    ) -> Result<(), SignatureError> {
        let mut transcript = self.transcript(domain, message);
        transcript.append_message(labels::SIGNATURE_COMMITMENT, &signature.r.1);
        let challenge = challenge(&mut transcript);

        // R == s*G - c*A, compared on canonical encodings.
        let expected = RistrettoPoint::vartime_double_scalar_mul_basepoint(
            &-challenge,
            &self.point,
            &signature.s,
        );
        if expected.compress().to_bytes() == signature.r.1 {
            Ok(())
        } else {
            Err(SignatureError::Invalid)
        }
    }

    fn transcript(&self, domain: &[u8], message: &[u8]) -> Transcript {
        let mut transcript = Transcript::new(labels::SIGNATURE_PROTOCOL);
        transcript.append_message(labels::SIGNATURE_DOMAIN, domain);
        transcript.append_message(labels::SIGNATURE_PUBLIC_KEY, &self.encoded);
        transcript.append_message(labels::SIGNATURE_MESSAGE, message);
        transcript
    }
}

fn challenge(transcript: &mut Transcript) -> Scalar {
    let mut wide = [0u8; 64];
    transcript.challenge_bytes(labels::SIGNATURE_CHALLENGE, &mut wide);
    Scalar::from_bytes_mod_order_wide(&wide)
}

impl SigningKey {
    /// Draws a fresh key.
    pub fn generate<R: CryptoRng + ?Sized>(rng: &mut R) -> Self {
        Self::from_seed(&draw_seed(rng))
    }

    /// The key expanded from a 32-byte seed.
    pub fn from_seed(seed: &[u8; 32]) -> Self {
        Self::from_secret(Expander::new(seed, labels::PURPOSE_SIGNING_KEY).nonzero_scalar())
    }

    fn from_secret(secret: Scalar) -> Self {
        let public = VerifyingKey::from_point(RISTRETTO_BASEPOINT_TABLE * &secret);
        Self { secret, public }
    }

    /// The secret scalar's encoding, for storing the key (keep it secret).
    pub fn to_bytes(&self) -> Zeroizing<[u8; KEY_LEN]> {
        Zeroizing::new(self.secret.to_bytes())
    }

    /// Decodes a stored key, rejecting unreduced or zero scalars and bad lengths.
    pub fn from_bytes(bytes: &[u8]) -> Result<Self, EncodingError> {
        let mut reader = Reader::new(bytes);
        let raw = Zeroizing::new(reader.read_array::<KEY_LEN>("signing_key")?);
        reader.finish()?;
        Ok(Self::from_secret(decode_nonzero_scalar(
            &raw,
            "signing_key",
        )?))
    }

    /// The public key.
    pub fn verifying_key(&self) -> VerifyingKey {
        self.public
    }

    /// The key id.
    pub fn key_id(&self) -> KeyId {
        self.public.id
    }

    /// Signs `message` in `domain` (public entry point of [`SigningKey::sign_with_randomness`]).
    pub fn sign<R: CryptoRng + ?Sized>(
        &self,
        domain: &[u8],
        message: &[u8],
        rng: &mut R,
    ) -> Signature {
        self.sign_with_randomness(domain, message, &draw_seed(rng))
    }

    /// Signs with the caller's randomness; equal inputs give equal signatures.
    pub fn sign_with_randomness(
        &self,
        domain: &[u8],
        message: &[u8],
        randomness: &[u8; 32],
    ) -> Signature {
        let mut transcript = self.public.transcript(domain, message);

        // k from a private clone keyed by the secret and the randomness; R = k*G.
        let mut private = transcript.clone();
        let secret_bytes = Zeroizing::new(self.secret.to_bytes());
        private.append_message(labels::SIGNATURE_SECRET, secret_bytes.as_ref());
        private.append_message(labels::SIGNATURE_RANDOMNESS, randomness);
        let mut wide = Zeroizing::new([0u8; 64]);
        private.challenge_bytes(labels::SIGNATURE_NONCE, wide.as_mut());
        let mut k = Scalar::from_bytes_mod_order_wide(&wide);
        let r = RISTRETTO_BASEPOINT_TABLE * &k;
        let r_bytes = r.compress().to_bytes();

        // c from the public transcript; s = k + c*a.
        transcript.append_message(labels::SIGNATURE_COMMITMENT, &r_bytes);
        let s = k + challenge(&mut transcript) * self.secret;
        k.zeroize();
        Signature { r: (r, r_bytes), s }
    }
}

impl Signature {
    /// `Ser(R) || Ser(s)`.
    pub fn to_bytes(&self) -> [u8; SIGNATURE_LEN] {
        let mut out = [0u8; SIGNATURE_LEN];
        out[..32].copy_from_slice(&self.r.1);
        out[32..].copy_from_slice(self.s.as_bytes());
        out
    }

    /// Decodes a signature, rejecting a non-canonical or identity `R`, an unreduced `s` and
    /// bad lengths.
    pub fn from_bytes(bytes: &[u8]) -> Result<Self, EncodingError> {
        let mut reader = Reader::new(bytes);
        let r = reader.read_point("signature.R")?;
        let s = reader.read_scalar("signature.s")?;
        reader.finish()?;
        Ok(Self { r, s })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const DOMAIN: &[u8] = labels::DOMAIN_VENUE_POSTER;

    fn signed() -> (SigningKey, Signature) {
        let key = SigningKey::from_seed(&[5; 32]);
        let signature = key.sign_with_randomness(DOMAIN, b"venue 42", &[6; 32]);
        (key, signature)
    }

    #[test]
    fn signature_verifies_through_its_encoding() {
        let (key, signature) = signed();
        let public = VerifyingKey::from_bytes(&key.verifying_key().to_bytes()).expect("key");
        let decoded = Signature::from_bytes(&signature.to_bytes()).expect("signature");
        assert_eq!(public.verify(DOMAIN, b"venue 42", &decoded), Ok(()));
        assert_eq!(public.key_id(), key.key_id());
    }

    #[test]
    fn other_message_domain_or_key_is_rejected() {
        let (key, signature) = signed();
        let public = key.verifying_key();
        assert_eq!(
            public.verify(DOMAIN, b"venue 43", &signature),
            Err(SignatureError::Invalid)
        );
        let other_domain = labels::DOMAIN_EXPOSURE_LIST;
        assert_eq!(
            public.verify(other_domain, b"venue 42", &signature),
            Err(SignatureError::Invalid)
        );
        let other = SigningKey::from_seed(&[7; 32]).verifying_key();
        assert_eq!(
            other.verify(DOMAIN, b"venue 42", &signature),
            Err(SignatureError::Invalid)
        );
    }

    #[test]
    fn every_flipped_bit_is_rejected() {
        let (key, signature) = signed();
        let bytes = signature.to_bytes();
        for i in 0..bytes.len() * 8 {
            let mut forged = bytes;
            forged[i / 8] ^= 1 << (i % 8);
            if let Ok(forged) = Signature::from_bytes(&forged) {
                assert!(
                    key.verifying_key()
                        .verify(DOMAIN, b"venue 42", &forged)
                        .is_err(),
                    "bit {i}"
                );
            }
        }
    }

    #[test]
    fn non_canonical_and_badly_sized_encodings_are_rejected() {
        let (key, signature) = signed();
        let mut bytes = signature.to_bytes();
        bytes[32..].copy_from_slice(&[0xff; 32]);
        assert!(matches!(
            Signature::from_bytes(&bytes),
            Err(EncodingError::NonCanonicalScalar { .. })
        ));
        let mut bytes = signature.to_bytes();
        bytes[..32].fill(0);
        assert!(matches!(
            Signature::from_bytes(&bytes),
            Err(EncodingError::IdentityPoint { .. })
        ));
        let mut bytes = signature.to_bytes();
        bytes[31] |= 0x80;
        assert!(matches!(
            Signature::from_bytes(&bytes),
            Err(EncodingError::NonCanonicalPoint { .. })
        ));
        assert!(matches!(
            Signature::from_bytes(&signature.to_bytes()[..63]),
            Err(EncodingError::Truncated { .. })
        ));
        assert!(matches!(
            Signature::from_bytes(&[signature.to_bytes().as_slice(), &[0]].concat()),
            Err(EncodingError::TrailingBytes { count: 1 })
        ));
        assert!(matches!(
            VerifyingKey::from_bytes(&[0; 32]),
            Err(EncodingError::IdentityPoint { .. })
        ));
        assert!(matches!(
            SigningKey::from_bytes(&[0; 32]),
            Err(EncodingError::ZeroScalar { .. })
        ));
        assert!(SigningKey::from_bytes(&key.to_bytes()[..31]).is_err());
    }

    #[test]
    fn signing_key_round_trips_and_hides_its_secret() {
        let (key, _) = signed();
        let restored = SigningKey::from_bytes(key.to_bytes().as_ref()).expect("decodes");
        assert_eq!(restored.verifying_key(), key.verifying_key());
        let printed = format!("{key:?}");
        let secret_hex: String = key.to_bytes()[..8]
            .iter()
            .map(|b| format!("{b:02x}"))
            .collect();
        assert!(printed.contains("redacted") && !printed.contains(&secret_hex));
    }

    #[test]
    fn signatures_are_deterministic_in_their_randomness() {
        let key = SigningKey::from_seed(&[5; 32]);
        let a = key.sign_with_randomness(DOMAIN, b"m", &[1; 32]);
        assert_eq!(a, key.sign_with_randomness(DOMAIN, b"m", &[1; 32]));
        assert_ne!(a, key.sign_with_randomness(DOMAIN, b"m", &[2; 32]));
    }
}
