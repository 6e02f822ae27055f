//! The OPRF and VOPRF protocols of RFC 9497 (modes 0 and 1) for ristretto255-SHA512.
//!
//! The credential does not run an OPRF, but it is built from the same pieces: the group,
//! its canonical encodings, HashToGroup and HashToScalar over `expand_message_xmd`. Running the
//! RFC's own protocols against its published vectors (`rfc9497/ristretto255-SHA512.json`)
//! pins those pieces byte for byte; the tests in `tests/rfc9497.rs` do exactly that.
//!
//! Implemented, with the RFC section each function follows:
//! - [`Suite`]: the context string of section 3.1 and the suite of section 4.1;
//! - [`Suite::derive_key_pair`]: section 3.2.1;
//! - [`Suite::blind`], [`ServerKey::blind_evaluate`], [`Suite::finalize`]: section 3.3.1;
//! - [`ServerKey::blind_evaluate_batch`], [`Suite::verifiable_finalize`]: section 3.3.2,
//!   with the DLEQ proof of section 2.2 ([`Suite::generate_proof`],
//!   [`Suite::vartime_verify_proof`], ComputeComposites and ComputeCompositesFast).
//!
//! Not implemented: the POPRF mode 2 (section 3.3.3), which hotspot does not use.
//! Randomness (blinds, the proof scalar `r`) is always an argument, as in the RFC's vectors.

use curve25519_dalek::constants::RISTRETTO_BASEPOINT_TABLE;
use curve25519_dalek::ristretto::RistrettoPoint;
use curve25519_dalek::scalar::Scalar;
use curve25519_dalek::traits::{IsIdentity, VartimeMultiscalarMul};
use sha2::{Digest, Sha512};
use subtle::ConstantTimeEq;
use zeroize::{Zeroize, ZeroizeOnDrop};

use crate::encoding::{self, EncodingError, SCALAR_LEN};
use crate::h2c;
use crate::labels;

/// Length of the OPRF output (SHA-512).
pub const OUTPUT_LEN: usize = 64;
/// Length of an encoded DLEQ proof (challenge and response scalars).
pub const PROOF_LEN: usize = 2 * SCALAR_LEN;

/// Why an OPRF operation failed.
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum OprfError {
    /// RFC 9497 InvalidInputError: the input hashes to the identity element.
    #[error("the input maps to the identity element")]
    InvalidInput,
    /// RFC 9497 DeriveKeyPairError: 256 candidate keys were all zero.
    #[error("key derivation failed")]
    DeriveKeyPair,
    /// RFC 9497 VerifyError: the DLEQ proof does not verify.
    #[error("the DLEQ proof does not verify")]
    Verify,
    /// The batch's lists have different lengths, or are empty or too long (more than 65535).
    #[error("batch lists have inconsistent or unsupported lengths")]
    BatchShape,
    /// A length-prefixed field (input, info) is longer than 65535 bytes.
    #[error("input or info longer than 65535 bytes")]
    TooLong,
    /// A proof or element failed to decode.
    #[error(transparent)]
    Encoding(#[from] EncodingError),
}

/// RFC 9497 section 3.1 protocol modes supported here.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
#[non_exhaustive]
pub enum Mode {
    /// modeOPRF (0x00).
    Oprf,
    /// modeVOPRF (0x01).
    Voprf,
}

/// The ristretto255-SHA512 suite in one mode, with its context string precomputed.
#[derive(Clone, Debug)]
pub struct Suite {
    /// `"OPRFV1-" || I2OSP(mode, 1) || "-" || "ristretto255-SHA512"` (section 3.1).
    context: [u8; 28],
}

/// A server key pair `(skS, pkS = skS * G)`. The secret zeroizes on drop and never prints.
#[derive(Clone, Zeroize, ZeroizeOnDrop)]
pub struct ServerKey {
    secret: Scalar,
    #[zeroize(skip)]
    public: RistrettoPoint,
}

/// A DLEQ proof `(c, s)` of RFC 9497 section 2.2.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct DleqProof {
    c: Scalar,
    s: Scalar,
}

impl std::fmt::Debug for ServerKey {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("ServerKey")
            .field("secret", &"<redacted>")
            .field("public", &self.public.compress())
            .finish()
    }
}

/// `I2OSP(len(x), 2) || x` as two parts, failing on inputs longer than 65535 bytes.
fn length_prefix(x: &[u8]) -> Result<[u8; 2], OprfError> {
    u16::try_from(x.len())
        .map(u16::to_be_bytes)
        .map_err(|_| OprfError::TooLong)
}

impl Suite {
    /// The suite in `mode`.
    pub fn new(mode: Mode) -> Self {
        let mode_byte = match mode {
            Mode::Oprf => 0u8,
            Mode::Voprf => 1u8,
        };
        let mut context = [0u8; 28];
        let parts: [&[u8]; 4] = [
            labels::OPRF_VERSION,
            &[mode_byte],
            b"-",
            labels::OPRF_SUITE_ID,
        ];
        let mut at = 0;
        for part in parts {
            context[at..at + part.len()].copy_from_slice(part);
            at += part.len();
        }
        Self { context }
    }

    /// The context string of section 3.1.
    pub fn context_string(&self) -> &[u8] {
        &self.context
    }

    /// HashToGroup with DST `"HashToGroup-" || contextString` (section 4.1).
    pub fn hash_to_group(&self, input: &[u8]) -> RistrettoPoint {
        h2c::hash_to_group(&[input], &[labels::OPRF_HASH_TO_GROUP, &self.context])
    }

    /// HashToScalar with DST `"HashToScalar-" || contextString` (section 4.1).
    pub fn hash_to_scalar(&self, input: &[&[u8]]) -> Scalar {
        h2c::hash_to_scalar(input, &[labels::OPRF_HASH_TO_SCALAR, &self.context])
    }

    /// DeriveKeyPair (section 3.2.1): a deterministic key from `seed` and `info`.
    pub fn derive_key_pair(&self, seed: &[u8; 32], info: &[u8]) -> Result<ServerKey, OprfError> {
        let info_len = length_prefix(info)?;
        let dst: [&[u8]; 2] = [labels::OPRF_DERIVE_KEY_PAIR, &self.context];
        for counter in 0..=255u8 {
            let secret = h2c::hash_to_scalar(&[seed, &info_len, info, &[counter]], &dst);
            if secret != Scalar::ZERO {
                return Ok(ServerKey::from_secret(secret));
            }
        }
        Err(OprfError::DeriveKeyPair)
    }

    /// Blind (section 3.3.1) with the caller's blind: `blind * HashToGroup(input)`.
    pub fn blind(&self, input: &[u8], blind: &Scalar) -> Result<RistrettoPoint, OprfError> {
        let element = self.hash_to_group(input);
        if element.is_identity() {
            return Err(OprfError::InvalidInput);
        }
        Ok(blind * element)
    }

    /// Finalize (section 3.3.1): `Hash(len || input || len || Ser(blind^-1 * E) || "Finalize")`.
    pub fn finalize(
        &self,
        input: &[u8],
        blind: &Scalar,
        evaluated: &RistrettoPoint,
    ) -> Result<[u8; OUTPUT_LEN], OprfError> {
        let unblinded = (blind.invert() * evaluated).compress();
        let digest = Sha512::new()
            .chain_update(length_prefix(input)?)
            .chain_update(input)
            .chain_update(length_prefix(unblinded.as_bytes())?)
            .chain_update(unblinded.as_bytes())
            .chain_update(labels::OPRF_FINALIZE)
            .finalize();
        Ok(digest.into())
    }

    /// Mode 1 Finalize (section 3.3.2): verify the batch proof, then finalize each element.
    pub fn verifiable_finalize(
        &self,
        public: &RistrettoPoint,
        inputs: &[&[u8]],
        blinds: &[Scalar],
        evaluated: &[RistrettoPoint],
        blinded: &[RistrettoPoint],
        proof: &DleqProof,
    ) -> Result<Vec<[u8; OUTPUT_LEN]>, OprfError> {
        if inputs.len() != blinds.len() || inputs.len() != evaluated.len() {
            return Err(OprfError::BatchShape);
        }
        let generator = curve25519_dalek::constants::RISTRETTO_BASEPOINT_POINT;
        self.vartime_verify_proof(&generator, public, blinded, evaluated, proof)?;
        (inputs.iter().zip(blinds).zip(evaluated))
            .map(|((input, blind), element)| self.finalize(input, blind, element))
            .collect()
    }

    /// The seed of ComputeComposites (section 2.2.1): `Hash(len || Ser(B) || len || seedDST)`.
    fn composite_seed(&self, b: &RistrettoPoint) -> [u8; OUTPUT_LEN] {
        let b_bytes = b.compress();
        let seed_dst_len = (labels::OPRF_SEED.len() + self.context.len()) as u16;
        Sha512::new()
            .chain_update(32u16.to_be_bytes())
            .chain_update(b_bytes.as_bytes())
            .chain_update(seed_dst_len.to_be_bytes())
            .chain_update(labels::OPRF_SEED)
            .chain_update(self.context)
            .finalize()
            .into()
    }

    /// The weights `d_i` of ComputeComposites (section 2.2.1), one per pair `(C[i], D[i])`.
    fn composite_weights(
        &self,
        b: &RistrettoPoint,
        c: &[RistrettoPoint],
        d: &[RistrettoPoint],
    ) -> Result<Vec<Scalar>, OprfError> {
        if c.len() != d.len() || c.is_empty() || c.len() > usize::from(u16::MAX) {
            return Err(OprfError::BatchShape);
        }
        let seed = self.composite_seed(b);
        let weights = (c.iter().zip(d).enumerate()).map(|(i, (ci, di))| {
            let (ci, di) = (ci.compress(), di.compress());
            self.hash_to_scalar(&[
                &(OUTPUT_LEN as u16).to_be_bytes(),
                &seed,
                &(i as u16).to_be_bytes(),
                &32u16.to_be_bytes(),
                ci.as_bytes(),
                &32u16.to_be_bytes(),
                di.as_bytes(),
                labels::OPRF_COMPOSITE,
            ])
        });
        Ok(weights.collect())
    }

    /// The challenge of section 2.2.1: HashToScalar over five length-prefixed elements.
    fn challenge(&self, elements: [&RistrettoPoint; 5]) -> Scalar {
        let encoded = elements.map(|element| element.compress().to_bytes());
        let len = 32u16.to_be_bytes();
        let mut parts: Vec<&[u8]> = Vec::with_capacity(11);
        for bytes in &encoded {
            parts.push(&len);
            parts.push(bytes);
        }
        parts.push(labels::OPRF_CHALLENGE);
        self.hash_to_scalar(&parts)
    }

    /// GenerateProof (section 2.2.1) that `B = k*A` and `D[i] = k*C[i]`, with randomness `r`.
    pub fn generate_proof(
        &self,
        key: &ServerKey,
        a: &RistrettoPoint,
        c: &[RistrettoPoint],
        d: &[RistrettoPoint],
        r: &Scalar,
    ) -> Result<DleqProof, OprfError> {
        // ComputeCompositesFast: M = sum d_i * C[i], Z = k * M.
        let weights = self.composite_weights(&key.public, c, d)?;
        let m = RistrettoPoint::vartime_multiscalar_mul(&weights, c);
        let z = key.secret * m;

        // Commit, challenge, respond: t2 = r*A, t3 = r*M, s = r - c*k.
        let (t2, t3) = (r * a, r * m);
        let challenge = self.challenge([&key.public, &m, &z, &t2, &t3]);
        Ok(DleqProof {
            c: challenge,
            s: r - challenge * key.secret,
        })
    }

    /// VerifyProof (section 2.2.2), in variable time: all its inputs are public.
    pub fn vartime_verify_proof(
        &self,
        a: &RistrettoPoint,
        b: &RistrettoPoint,
        c: &[RistrettoPoint],
        d: &[RistrettoPoint],
        proof: &DleqProof,
    ) -> Result<(), OprfError> {
        // ComputeComposites: M = sum d_i * C[i], Z = sum d_i * D[i].
        let weights = self.composite_weights(b, c, d)?;
        let m = RistrettoPoint::vartime_multiscalar_mul(&weights, c);
        let z = RistrettoPoint::vartime_multiscalar_mul(&weights, d);

        // t2 = s*A + c*B, t3 = s*M + c*Z; accept iff the challenge recomputes.
        let t2 = RistrettoPoint::vartime_multiscalar_mul([proof.s, proof.c], [a, b]);
        let t3 = RistrettoPoint::vartime_multiscalar_mul([proof.s, proof.c], [&m, &z]);
        let expected = self.challenge([b, &m, &z, &t2, &t3]);
        if bool::from(expected.ct_eq(&proof.c)) {
            Ok(())
        } else {
            Err(OprfError::Verify)
        }
    }
}

impl ServerKey {
    /// The key pair of a secret scalar.
    pub fn from_secret(secret: Scalar) -> Self {
        let public = RISTRETTO_BASEPOINT_TABLE * &secret;
        Self { secret, public }
    }

    /// The public key `pkS`.
    pub fn public(&self) -> RistrettoPoint {
        self.public
    }

    /// The secret scalar's canonical encoding (for comparison with published vectors).
    pub fn secret_bytes(&self) -> zeroize::Zeroizing<[u8; 32]> {
        zeroize::Zeroizing::new(self.secret.to_bytes())
    }

    /// Mode 0 BlindEvaluate (section 3.3.1): `skS * blindedElement`.
    pub fn blind_evaluate(&self, blinded: &RistrettoPoint) -> RistrettoPoint {
        self.secret * blinded
    }

    /// Mode 1 BlindEvaluate (section 3.3.2) over a batch, with proof randomness `r`.
    pub fn blind_evaluate_batch(
        &self,
        suite: &Suite,
        blinded: &[RistrettoPoint],
        r: &Scalar,
    ) -> Result<(Vec<RistrettoPoint>, DleqProof), OprfError> {
        let evaluated: Vec<_> = blinded
            .iter()
            .map(|element| self.secret * element)
            .collect();
        let generator = curve25519_dalek::constants::RISTRETTO_BASEPOINT_POINT;
        let proof = suite.generate_proof(self, &generator, blinded, &evaluated, r)?;
        Ok((evaluated, proof))
    }
}

impl DleqProof {
    /// `Ser(c) || Ser(s)`.
    pub fn to_bytes(&self) -> [u8; PROOF_LEN] {
        let mut out = [0u8; PROOF_LEN];
        out[..32].copy_from_slice(self.c.as_bytes());
        out[32..].copy_from_slice(self.s.as_bytes());
        out
    }

    /// Decodes `Ser(c) || Ser(s)`, rejecting unreduced scalars.
    pub fn from_bytes(bytes: &[u8; PROOF_LEN]) -> Result<Self, OprfError> {
        let mut reader = encoding::Reader::new(bytes);
        let c = reader.read_scalar("proof.c")?;
        let s = reader.read_scalar("proof.s")?;
        reader.finish()?;
        Ok(Self { c, s })
    }
}
