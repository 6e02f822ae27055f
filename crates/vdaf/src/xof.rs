//! The two XOFs of draft-irtf-cfrg-vdaf-18, section 6.2.
//!
//! - [`XofTurboShake128`] (section 6.2.1): TurboSHAKE128 with domain byte 1 over
//!   `len(dst) (2 bytes LE) || dst || len(seed) (1 byte) || seed || binder`. Poplar1 uses it with
//!   32-byte seeds for the correlated and verification randomness, and the IDPF uses it with
//!   16-byte seeds at the leaf level.
//! - [`XofFixedKeyAes128`] (section 6.2.2): an AES-128 key derived once per (dst, binder) by
//!   TurboSHAKE128 with domain byte 2 over `len(dst) (2 bytes LE) || dst || binder`; block `i`
//!   of the stream for a 16-byte seed is `hash(seed XOR le128(i))` with the circular
//!   correlation-robust hash `hash(x) = AES(k, sigma(x)) XOR sigma(x)`,
//!   `sigma(x_L || x_R) = x_R || (x_L XOR x_R)`. Because the key depends on the nonce only, one
//!   key serves every node of one report's IDPF tree, and many blocks go through AES-NI in one
//!   call ([`FixedKeyAes128::hash_blocks`]).
//!
//! [`XofStream`] turns either output into field vectors by rejection sampling (section 6.2,
//! `next_vec`): `ENCODED_SIZE` bytes per attempt, rejected when the value is not below p.

use aes::Aes128;
use aes::cipher::{BlockCipherEncrypt, KeyInit};
use turboshake::CTurboShake128;
use turboshake::digest::{ExtendableOutput, Update, XofReader};
use zeroize::Zeroize;

use crate::field::FieldElement;

/// Domain separation byte of XofTurboShake128 (draft section 6.2.1).
const DS_TURBOSHAKE: u8 = 1;
/// Domain separation byte of the key derivation of XofFixedKeyAes128 (draft section 6.2.2).
const DS_FIXED_KEY_AES: u8 = 2;

/// A running XofTurboShake128 instance (seed and dst absorbed, binder may still be added).
#[derive(Clone)]
pub struct XofTurboShake128(CTurboShake128<DS_TURBOSHAKE>);

impl XofTurboShake128 {
    /// Starts the XOF: absorbs `len(dst) || dst || len(seed) || seed`. The dst is given in
    /// parts (domain-separation tag, then application context) to avoid a copy.
    ///
    /// The draft bounds the dst to 2^16 - 1 bytes and the seed to 255 bytes; callers pass
    /// at most a 65,535-byte context (checked where the context enters the crate) and 16- or
    /// 32-byte seeds, so the length casts below saturate only on misuse inside the crate.
    pub fn new(seed: &[u8], dst_parts: &[&[u8]]) -> Self {
        let mut h = CTurboShake128::<DS_TURBOSHAKE>::default();
        let dst_len: usize = dst_parts.iter().map(|p| p.len()).sum();
        let dst_len = u16::try_from(dst_len).unwrap_or(u16::MAX);
        h.update(&dst_len.to_le_bytes());
        for part in dst_parts {
            h.update(part);
        }
        h.update(&[u8::try_from(seed.len()).unwrap_or(u8::MAX)]);
        h.update(seed);
        Self(h)
    }

    /// Absorbs part of the binder string.
    pub fn update(&mut self, binder_part: &[u8]) {
        self.0.update(binder_part);
    }

    /// Finishes absorbing and returns the output stream.
    pub fn into_stream(self) -> XofStream<TurboShakeReader> {
        XofStream::new(TurboShakeReader(self.0.finalize_xof()))
    }

    /// The draft's `derive_seed`: the first `N` output bytes.
    pub fn derive_seed<const N: usize>(self) -> [u8; N] {
        let mut out = [0u8; N];
        self.into_stream().fill(&mut out);
        out
    }
}

/// A source of XOF output bytes.
pub trait ByteSource {
    /// Writes the next `out.len()` bytes of output.
    fn fill(&mut self, out: &mut [u8]);
}

/// Output reader of [`XofTurboShake128`].
pub struct TurboShakeReader(turboshake::TurboShake128Reader);

impl ByteSource for TurboShakeReader {
    fn fill(&mut self, out: &mut [u8]) {
        self.0.read(out);
    }
}

/// A byte stream with the draft's `next`/`next_vec` interface over it.
pub struct XofStream<S: ByteSource> {
    source: S,
}

impl<S: ByteSource> XofStream<S> {
    fn new(source: S) -> Self {
        Self { source }
    }

    /// The draft's `next(length)`.
    pub fn fill(&mut self, out: &mut [u8]) {
        self.source.fill(out);
    }

    /// One field element by rejection sampling (one step of `next_vec`).
    pub fn next_elem<F: FieldElement>(&mut self) -> F {
        let mut buf = [0u8; 32];
        let buf = &mut buf[..F::ENCODED_SIZE];
        loop {
            self.source.fill(buf);
            if let Some(x) = F::from_random(buf) {
                buf.zeroize();
                return x;
            }
        }
    }

    /// Discards the next `n` field elements (same rejection sampling as [`Self::next_elem`]),
    /// reading the output in bulk.
    pub fn skip_elems<F: FieldElement>(&mut self, mut n: usize) {
        let mut buf = [0u8; 512];
        while n > 0 {
            let take = n.min(buf.len() / F::ENCODED_SIZE);
            let chunk = &mut buf[..take * F::ENCODED_SIZE];
            self.source.fill(chunk);
            let accepted = chunk
                .chunks_exact(F::ENCODED_SIZE)
                .filter(|c| F::from_random(c).is_some())
                .count();
            n -= accepted;
        }
        buf.zeroize();
    }

    /// The draft's `next_vec(field, length)`.
    pub fn next_vec<F: FieldElement>(&mut self, length: usize) -> Vec<F> {
        (0..length).map(|_| self.next_elem()).collect()
    }
}

/// The fixed AES-128 key of XofFixedKeyAes128 for one (dst, binder), section 6.2.2.
///
/// Holding the expanded key is enough to compute any block of any seed's stream, so
/// the IDPF evaluator derives it once per report and usage (extend, convert).
#[derive(Clone)]
pub struct FixedKeyAes128 {
    cipher: Aes128,
}

impl FixedKeyAes128 {
    /// Derives the key: TurboSHAKE128 (domain byte 2) of `len(dst) || dst || binder`.
    pub fn new(dst_parts: &[&[u8]], binder: &[u8]) -> Self {
        let mut h = CTurboShake128::<DS_FIXED_KEY_AES>::default();
        let dst_len: usize = dst_parts.iter().map(|p| p.len()).sum();
        let dst_len = u16::try_from(dst_len).unwrap_or(u16::MAX);
        h.update(&dst_len.to_le_bytes());
        for part in dst_parts {
            h.update(part);
        }
        h.update(binder);
        let mut key = [0u8; 16];
        h.finalize_xof().read(&mut key);
        let cipher = Aes128::new(&key.into());
        key.zeroize();
        Self { cipher }
    }

    /// Replaces each input block `x` by `AES(k, sigma(x)) XOR sigma(x)` (the hash of
    /// section 6.2.2), all blocks in one pipelined AES call.
    pub fn hash_blocks(&self, blocks: &mut [aes::Block]) {
        let mut sigmas: Vec<aes::Block> = Vec::with_capacity(blocks.len());
        for b in blocks.iter_mut() {
            sigma_in_place(b);
            sigmas.push(*b);
        }
        self.cipher.encrypt_blocks(blocks);
        for (b, s) in blocks.iter_mut().zip(sigmas.iter()) {
            for i in 0..16 {
                b[i] ^= s[i];
            }
        }
    }

    /// Like [`Self::hash_blocks`], reusing `scratch` for the sigma values (no allocation).
    pub fn hash_blocks_with(&self, blocks: &mut [aes::Block], scratch: &mut Vec<aes::Block>) {
        scratch.clear();
        for b in blocks.iter_mut() {
            sigma_in_place(b);
            scratch.push(*b);
        }
        self.cipher.encrypt_blocks(blocks);
        for (b, s) in blocks.iter_mut().zip(scratch.iter()) {
            let x = u128::from_ne_bytes((*b).into()) ^ u128::from_ne_bytes((*s).into());
            *b = x.to_ne_bytes().into();
        }
    }

    /// Hashes 128-bit inputs (blocks read as little-endian integers) in place:
    /// `x -> AES(k, sigma(x)) XOR sigma(x)`, all through one pipelined AES call. `blocks` is
    /// reusable scratch space.
    pub fn hash_u128s(&self, xs: &mut [u128], blocks: &mut Vec<aes::Block>) {
        blocks.clear();
        for x in xs.iter_mut() {
            let s = sigma128(*x);
            *x = s;
            blocks.push(aes::Block::from(s.to_le_bytes()));
        }
        self.cipher.encrypt_blocks(blocks);
        for (x, b) in xs.iter_mut().zip(blocks.iter()) {
            *x ^= u128::from_le_bytes((*b).into());
        }
    }

    /// The output stream for one seed (the draft's XofFixedKeyAes128 with this key).
    pub fn stream(&self, seed: &[u8; 16]) -> XofStream<FixedKeyStream<'_>> {
        XofStream::new(FixedKeyStream {
            key: self,
            seed: *seed,
            consumed: 0,
        })
    }
}

/// `sigma(x_L || x_R) = x_R || (x_L XOR x_R)` on a 16-byte block.
#[inline(always)]
fn sigma_in_place(b: &mut aes::Block) {
    for i in 0..8 {
        let l = b[i];
        let r = b[i + 8];
        b[i] = r;
        b[i + 8] = l ^ r;
    }
}

/// `sigma` on a block read as a little-endian integer: low half R, high half L XOR R.
#[inline(always)]
fn sigma128(x: u128) -> u128 {
    let l = x as u64;
    let r = (x >> 64) as u64;
    u128::from(r) | (u128::from(l ^ r) << 64)
}

/// The input block for block index `i` of the stream of `seed`: `seed XOR le128(i)`.
#[inline(always)]
pub fn counter_block(seed: &[u8; 16], i: u64) -> aes::Block {
    let mut b = aes::Block::from(*seed);
    for (j, c) in i.to_le_bytes().iter().enumerate() {
        b[j] ^= c;
    }
    b
}

/// Sequential reader over one seed's XofFixedKeyAes128 stream.
pub struct FixedKeyStream<'a> {
    key: &'a FixedKeyAes128,
    seed: [u8; 16],
    consumed: u64,
}

impl ByteSource for FixedKeyStream<'_> {
    fn fill(&mut self, out: &mut [u8]) {
        let mut written = 0;
        while written < out.len() {
            let block_index = self.consumed / 16;
            let offset = (self.consumed % 16) as usize;
            let mut block = [counter_block(&self.seed, block_index)];
            self.key.hash_blocks(&mut block);
            let take = (16 - offset).min(out.len() - written);
            out[written..written + take].copy_from_slice(&block[0][offset..offset + take]);
            written += take;
            self.consumed += take as u64;
        }
    }
}

impl Drop for FixedKeyStream<'_> {
    fn drop(&mut self) {
        self.seed.zeroize();
    }
}

/// XofFixedKeyAes128 as the draft's generic XOF interface (seed, dst, binder), for the test
/// vectors and for one-off use; the IDPF uses [`FixedKeyAes128`] directly.
pub struct XofFixedKeyAes128 {
    key: FixedKeyAes128,
    seed: [u8; 16],
}

impl XofFixedKeyAes128 {
    /// Derives the key from `dst_parts` and `binder`, remembering the seed.
    pub fn new(seed: &[u8; 16], dst_parts: &[&[u8]], binder: &[u8]) -> Self {
        Self {
            key: FixedKeyAes128::new(dst_parts, binder),
            seed: *seed,
        }
    }

    /// The output stream.
    pub fn stream(&self) -> XofStream<FixedKeyStream<'_>> {
        self.key.stream(&self.seed)
    }
}

impl Drop for XofFixedKeyAes128 {
    fn drop(&mut self) {
        self.seed.zeroize();
    }
}
