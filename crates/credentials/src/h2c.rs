//! Hashing to ristretto255 and to its scalars, as RFC 9497 and the ARC draft use them.
//!
//! - [`expand_message_xmd`]: RFC 9380 section 5.3.1 with SHA-512 (b = 64, s = 128 bytes),
//!   including the oversize-DST rule of section 5.3.3.
//! - [`hash_to_group`]: RFC 9380 appendix B / RFC 9496 section 4.3.4: 64 uniform bytes from
//!   `expand_message_xmd`, mapped by the ristretto255 one-way map (`from_uniform_bytes`). This
//!   is `hash_to_ristretto255`, the HashToGroup of RFC 9497 section 4.1.
//! - [`hash_to_scalar`]: RFC 9497 section 4.1: 64 uniform bytes read little-endian and reduced
//!   modulo the group order.
//!
//! Messages and DSTs are given as lists of parts that are concatenated, so callers build
//! `"HashToGroup-" || contextString || info` without allocating.

use curve25519_dalek::ristretto::RistrettoPoint;
use curve25519_dalek::scalar::Scalar;
use sha2::{Digest, Sha512};

/// SHA-512 output length (RFC 9380's `b_in_bytes`).
const B_IN_BYTES: usize = 64;
/// SHA-512 block length (RFC 9380's `s_in_bytes`).
const S_IN_BYTES: usize = 128;
/// RFC 9380 section 5.3.3: prefix for hashing a DST longer than 255 bytes.
const OVERSIZE_DST_PREFIX: &[u8] = b"H2C-OVERSIZE-DST-";

/// `expand_message_xmd` (RFC 9380 section 5.3.1) with SHA-512, writing `out.len()` bytes.
///
/// # Panics
///
/// If `out` is longer than 255 * 64 bytes, which RFC 9380 forbids; every caller in the crate
/// asks for 64 bytes.
pub fn expand_message_xmd(msg: &[&[u8]], dst: &[&[u8]], out: &mut [u8]) {
    let ell = out.len().div_ceil(B_IN_BYTES);
    assert!(
        ell <= 255 && !out.is_empty(),
        "expand_message_xmd: bad output length"
    );

    // Section 5.3.3: a DST longer than 255 bytes is replaced by its hash.
    let dst_len: usize = dst.iter().map(|part| part.len()).sum();
    let hashed_dst;
    let dst_parts: &[&[u8]] = if dst_len > 255 {
        let mut h = Sha512::new().chain_update(OVERSIZE_DST_PREFIX);
        dst.iter().for_each(|part| h.update(part));
        hashed_dst = h.finalize();
        &[hashed_dst.as_slice()]
    } else {
        dst
    };
    let dst_prime_len = [dst_parts.iter().map(|part| part.len()).sum::<usize>() as u8];
    let with_dst_prime = |mut h: Sha512| {
        dst_parts.iter().for_each(|part| h.update(part));
        h.chain_update(dst_prime_len)
    };

    // Steps 6-7: b_0 = H(Z_pad || msg || l_i_b_str || I2OSP(0, 1) || DST_prime).
    let mut h = Sha512::new().chain_update([0u8; S_IN_BYTES]);
    msg.iter().for_each(|part| h.update(part));
    h.update((out.len() as u16).to_be_bytes());
    h.update([0u8]);
    let b0 = with_dst_prime(h).finalize();

    // Steps 8-10: b_1 = H(b_0 || 1 || DST_prime), b_i = H(strxor(b_0, b_(i-1)) || i || DST_prime).
    let mut prev = with_dst_prime(Sha512::new().chain_update(b0).chain_update([1u8])).finalize();
    for (i, chunk) in out.chunks_mut(B_IN_BYTES).enumerate() {
        if i > 0 {
            let mut xored = [0u8; B_IN_BYTES];
            xored
                .iter_mut()
                .zip(b0.iter().zip(prev.iter()))
                .for_each(|(x, (a, b))| *x = a ^ b);
            let h = Sha512::new()
                .chain_update(xored)
                .chain_update([(i + 1) as u8]);
            prev = with_dst_prime(h).finalize();
        }
        chunk.copy_from_slice(&prev[..chunk.len()]);
    }
}

/// `hash_to_ristretto255` (RFC 9380 appendix B) with `expand_message_xmd`/SHA-512.
pub fn hash_to_group(msg: &[&[u8]], dst: &[&[u8]]) -> RistrettoPoint {
    let mut uniform = [0u8; 64];
    expand_message_xmd(msg, dst, &mut uniform);
    RistrettoPoint::from_uniform_bytes(&uniform)
}

/// RFC 9497 section 4.1 HashToScalar for ristretto255: 64 bytes reduced modulo the order.
pub fn hash_to_scalar(msg: &[&[u8]], dst: &[&[u8]]) -> Scalar {
    let mut uniform = [0u8; 64];
    expand_message_xmd(msg, dst, &mut uniform);
    Scalar::from_bytes_mod_order_wide(&uniform)
}

#[cfg(test)]
mod tests {
    use super::*;

    /// RFC 9380 appendix K.3 (expand_message_xmd, SHA-512), DST
    /// "QUUX-V01-CS02-with-expander-SHA512-256", msg "", len_in_bytes 0x20.
    #[test]
    fn expand_message_xmd_matches_rfc9380_k3_empty_message() {
        let mut out = [0u8; 32];
        expand_message_xmd(
            &[b""],
            &[b"QUUX-V01-CS02-with-expander-SHA512-256"],
            &mut out,
        );
        assert_eq!(
            hex::encode(out),
            "6b9a7312411d92f921c6f68ca0b6380730a1a4d982c507211a90964c394179ba"
        );
    }

    /// RFC 9380 appendix K.3, msg "abc", len_in_bytes 0x20.
    #[test]
    fn expand_message_xmd_matches_rfc9380_k3_abc() {
        let mut out = [0u8; 32];
        expand_message_xmd(
            &[b"abc"],
            &[b"QUUX-V01-CS02-with-expander-SHA512-256"],
            &mut out,
        );
        assert_eq!(
            hex::encode(out),
            "0da749f12fbe5483eb066a5f595055679b976e93abe9be6f0f6318bce7aca8dc"
        );
    }

    /// RFC 9380 appendix K.3, msg "", len_in_bytes 0x80 (two SHA-512 blocks chained).
    #[test]
    fn expand_message_xmd_matches_rfc9380_k3_long_output() {
        let mut out = [0u8; 128];
        expand_message_xmd(
            &[b""],
            &[b"QUUX-V01-CS02-with-expander-SHA512-256"],
            &mut out,
        );
        assert!(
            hex::encode(out)
                .starts_with("41b037d1734a5f8df225dd8c7de38f851efdb45c372887be655212d07251")
        );
    }

    #[test]
    fn split_message_and_dst_hash_like_their_concatenation() {
        let (mut a, mut b) = ([0u8; 64], [0u8; 64]);
        expand_message_xmd(&[b"ab", b"c"], &[b"DST-", b"X"], &mut a);
        expand_message_xmd(&[b"abc"], &[b"DST-X"], &mut b);
        assert_eq!(a, b);
    }

    #[test]
    fn oversize_dst_is_hashed_first() {
        let long = [b'x'; 300];
        let hashed = Sha512::new()
            .chain_update(OVERSIZE_DST_PREFIX)
            .chain_update(long)
            .finalize();
        let (mut a, mut b) = ([0u8; 64], [0u8; 64]);
        expand_message_xmd(&[b"m"], &[&long], &mut a);
        expand_message_xmd(&[b"m"], &[hashed.as_slice()], &mut b);
        assert_eq!(a, b);
    }
}
