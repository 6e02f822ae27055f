//! Expanding one caller-supplied seed into the scalars a protocol step needs.
//!
//! Every core function of the crate takes its randomness as a 32-byte seed argument (the
//! public entry points draw the seed from a `CryptoRng` and call the core), so a test can pin
//! every byte of every message. A seed is expanded with a merlin transcript keyed by the
//! seed and a purpose label (`labels::PURPOSE_*`), so the scalars of different protocol steps
//! are independent even if a caller were to reuse a seed across steps.

use curve25519_dalek::scalar::Scalar;
use merlin::Transcript;
use rand_core::CryptoRng;
use zeroize::Zeroize;

use crate::labels;

/// A 32-byte seed drawn from the caller's RNG.
pub(crate) fn draw_seed<R: CryptoRng + ?Sized>(rng: &mut R) -> zeroize::Zeroizing<[u8; 32]> {
    let mut seed = zeroize::Zeroizing::new([0u8; 32]);
    rng.fill_bytes(seed.as_mut());
    seed
}

/// A deterministic stream of scalars and bytes derived from `(seed, purpose)`.
pub(crate) struct Expander {
    transcript: Transcript,
}

impl Expander {
    /// Keys the stream with the caller's seed and the step's purpose label.
    pub(crate) fn new(seed: &[u8; 32], purpose: &'static [u8]) -> Self {
        let mut transcript = Transcript::new(labels::RANDOMNESS_PROTOCOL);
        transcript.append_message(labels::RANDOMNESS_PURPOSE, purpose);
        transcript.append_message(labels::RANDOMNESS_SEED, seed);
        Self { transcript }
    }

    /// The next uniformly distributed scalar (64 bytes reduced modulo the order).
    pub(crate) fn scalar(&mut self) -> Scalar {
        let mut wide = [0u8; 64];
        self.transcript
            .challenge_bytes(labels::RANDOMNESS_SCALAR, &mut wide);
        let scalar = Scalar::from_bytes_mod_order_wide(&wide);
        wide.zeroize();
        scalar
    }

    /// The next uniformly distributed non-zero scalar (zero has probability 2^-252).
    pub(crate) fn nonzero_scalar(&mut self) -> Scalar {
        loop {
            let scalar = self.scalar();
            if scalar != Scalar::ZERO {
                return scalar;
            }
        }
    }

    /// The next 32 bytes, handed on as the randomness of a sigma proof.
    pub(crate) fn bytes(&mut self) -> zeroize::Zeroizing<[u8; 32]> {
        let mut out = zeroize::Zeroizing::new([0u8; 32]);
        self.transcript
            .challenge_bytes(labels::RANDOMNESS_BYTES, out.as_mut());
        out
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn same_seed_and_purpose_give_the_same_stream() {
        let (mut a, mut b) = (Expander::new(&[1; 32], b"p"), Expander::new(&[1; 32], b"p"));
        assert_eq!(a.scalar(), b.scalar());
        assert_eq!(*a.bytes(), *b.bytes());
    }

    #[test]
    fn purposes_separate_streams_of_one_seed() {
        let (mut a, mut b) = (Expander::new(&[1; 32], b"p"), Expander::new(&[1; 32], b"q"));
        assert_ne!(a.scalar(), b.scalar());
    }
}
