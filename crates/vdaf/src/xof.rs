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
//!   call ([`FixedKeyAes128::hash_u128s`]).
//!
//! TurboSHAKE128 (RFC 9861) is the sponge here ([`Sponge`], rate 168 bytes) over the
//! permutation of [`crate::keccak`], so that the hot paths can run four sponges per
//! permutation call: [`SeededXof`] hashes the leaf nodes of an IDPF four seeds at a time
//! (one permutation each when the message fits one block), and [`StreamsX4`] reads four
//! output streams in lockstep (the verification randomness of four reports). The sponge is
//! tested against the `turboshake` crate, the permutations against the `keccak` crate, and
//! both XOFs against the draft's vectors (crates/vdaf/tests/vectors.rs).
//!
//! [`XofStream`] turns either output into field vectors by rejection sampling (section 6.2,
//! `next_vec`): `ENCODED_SIZE` bytes per attempt, rejected when the value is not below p.

use aes::Aes128;
use aes::cipher::{BlockCipherEncrypt, KeyInit};
use zeroize::Zeroize;

use crate::field::FieldElement;
use crate::keccak::{self, State, State4, State8};
use crate::vaes;

/// Domain separation byte of XofTurboShake128 (draft section 6.2.1).
const DS_TURBOSHAKE: u8 = 1;
/// Domain separation byte of the key derivation of XofFixedKeyAes128 (draft section 6.2.2).
const DS_FIXED_KEY_AES: u8 = 2;

/// TurboSHAKE128's rate in bytes (capacity 256 bits).
pub const RATE: usize = 168;
/// The rate in 64-bit lanes.
const RATE_LANES: usize = RATE / 8;

/// A TurboSHAKE128 sponge while it absorbs (RFC 9861, section 2.2): Keccak-p[1600, 12],
/// rate 168 bytes; [`Sponge::finish`] appends the domain byte and the final padding bit.
#[derive(Clone, Default)]
pub struct Sponge {
    state: State,
    /// Bytes absorbed into the current block.
    pos: usize,
}

impl Drop for Sponge {
    fn drop(&mut self) {
        self.state.zeroize();
    }
}

#[inline(always)]
fn xor_byte(state: &mut State, pos: usize, byte: u8) {
    state[pos / 8] ^= u64::from(byte) << (8 * (pos % 8));
}

impl Sponge {
    /// Absorbs `data`.
    pub fn absorb(&mut self, data: &[u8]) {
        for &b in data {
            xor_byte(&mut self.state, self.pos, b);
            self.pos += 1;
            if self.pos == RATE {
                keccak::p1600(&mut self.state);
                self.pos = 0;
            }
        }
    }

    /// Pads with the domain byte (`0x01` to `0x7f`) and returns the output stream.
    pub fn finish(mut self, domain: u8) -> TurboShakeReader {
        xor_byte(&mut self.state, self.pos, domain);
        xor_byte(&mut self.state, RATE - 1, 0x80);
        keccak::p1600(&mut self.state);
        TurboShakeReader::at(self.state, 0)
    }
}

/// `len(dst) (2 bytes LE) || dst`, with the dst given in parts. The draft bounds the dst to
/// 2^16 - 1 bytes; callers pass at most a 65,000-byte context (checked where the context
/// enters the crate), so the length cast saturates only on misuse inside the crate.
fn absorb_dst(sponge: &mut Sponge, dst_parts: &[&[u8]]) {
    let dst_len: usize = dst_parts.iter().map(|p| p.len()).sum();
    let dst_len = u16::try_from(dst_len).unwrap_or(u16::MAX);
    sponge.absorb(&dst_len.to_le_bytes());
    for part in dst_parts {
        sponge.absorb(part);
    }
}

/// A running XofTurboShake128 instance (seed and dst absorbed, binder may still be added).
#[derive(Clone)]
pub struct XofTurboShake128(Sponge);

impl XofTurboShake128 {
    /// Starts the XOF: absorbs `len(dst) || dst || len(seed) || seed`. The dst is given in
    /// parts (domain-separation tag, then application context) to avoid a copy. Seeds are 16
    /// or 32 bytes here (the draft bounds them to 255).
    pub fn new(seed: &[u8], dst_parts: &[&[u8]]) -> Self {
        let mut sponge = Sponge::default();
        absorb_dst(&mut sponge, dst_parts);
        sponge.absorb(&[u8::try_from(seed.len()).unwrap_or(u8::MAX)]);
        sponge.absorb(seed);
        Self(sponge)
    }

    /// Absorbs part of the binder string.
    pub fn update(&mut self, binder_part: &[u8]) {
        self.0.absorb(binder_part);
    }

    /// Finishes absorbing and returns the output stream.
    pub fn into_stream(self) -> XofStream<TurboShakeReader> {
        XofStream::new(self.into_reader())
    }

    /// Finishes absorbing and returns the raw output reader.
    pub fn into_reader(self) -> TurboShakeReader {
        self.0.finish(DS_TURBOSHAKE)
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

/// Output reader of TurboSHAKE128: the state after the permutation that produced the current
/// block, that block's bytes, and how many of them were read.
pub struct TurboShakeReader {
    state: State,
    block: [u8; RATE],
    pos: usize,
}

impl TurboShakeReader {
    /// A reader at byte `pos` of the output block held by `state` (a permuted state).
    pub(crate) fn at(state: State, pos: usize) -> Self {
        let mut r = Self {
            state,
            block: [0; RATE],
            pos: pos.min(RATE),
        };
        r.serialize();
        r
    }

    fn serialize(&mut self) {
        for (chunk, lane) in self.block.chunks_exact_mut(8).zip(&self.state) {
            chunk.copy_from_slice(&lane.to_le_bytes());
        }
    }
}

impl ByteSource for TurboShakeReader {
    fn fill(&mut self, out: &mut [u8]) {
        let mut written = 0;
        while written < out.len() {
            if self.pos == RATE {
                keccak::p1600(&mut self.state);
                self.serialize();
                self.pos = 0;
            }
            let take = (RATE - self.pos).min(out.len() - written);
            out[written..written + take].copy_from_slice(&self.block[self.pos..self.pos + take]);
            written += take;
            self.pos += take;
        }
    }
}

impl Drop for TurboShakeReader {
    fn drop(&mut self) {
        self.state.zeroize();
        self.block.zeroize();
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
        let mut used = 0;
        while n > 0 {
            let take = n.min(buf.len() / F::ENCODED_SIZE);
            let chunk = &mut buf[..take * F::ENCODED_SIZE];
            self.source.fill(chunk);
            let size = F::ENCODED_SIZE;
            n -= chunk
                .chunks_exact(size)
                .filter(|c| F::from_random(c).is_some())
                .count();
            used = used.max(chunk.len());
        }
        // Wipe only what was written (zeroize writes byte by byte).
        buf[..used].zeroize();
    }

    /// The draft's `next_vec(field, out.len())` into `out`, reading the output in large
    /// chunks (same result as [`Self::next_vec`]). The buffer is wiped where it was written.
    pub fn fill_vec<F: FieldElement>(&mut self, out: &mut [F]) {
        const CHUNK: usize = 64;
        let mut buf = [0u8; CHUNK * 32];
        let mut used = 0;
        let mut done = 0;
        while done < out.len() {
            let want = (out.len() - done).min(CHUNK);
            let chunk = &mut buf[..want * F::ENCODED_SIZE];
            self.source.fill(chunk);
            used = used.max(chunk.len());
            for c in chunk.chunks_exact(F::ENCODED_SIZE) {
                if let Some(x) = F::from_random(c) {
                    out[done] = x;
                    done += 1;
                }
            }
        }
        buf[..used].zeroize();
    }

    /// The draft's `next_vec(field, length)`.
    pub fn next_vec<F: FieldElement>(&mut self, length: usize) -> Vec<F> {
        (0..length).map(|_| self.next_elem()).collect()
    }
}

/// Most blocks one AES call of [`FixedKeyAes128::hash_u128s`] gets: a multiple of the batches
/// of the `aes` crate's backends (30 blocks with VAES, 8 with AES-NI).
pub const HASH_CHUNK: usize = 120;

/// The fixed AES-128 key of XofFixedKeyAes128 for one (dst, binder), section 6.2.2.
///
/// Holding the expanded key is enough to compute any block of any seed's stream, so
/// the IDPF evaluator derives it once per report and usage (extend, convert).
#[derive(Clone)]
pub struct FixedKeyAes128 {
    cipher: Aes128,
    /// The same key's schedule for [`crate::vaes`], where the CPU has VAES and AVX-512F.
    vaes: Option<vaes::RoundKeys>,
}

impl FixedKeyAes128 {
    /// Derives the key: TurboSHAKE128 (domain byte 2) of `len(dst) || dst || binder`.
    pub fn new(dst_parts: &[&[u8]], binder: &[u8]) -> Self {
        let mut sponge = Sponge::default();
        absorb_dst(&mut sponge, dst_parts);
        sponge.absorb(binder);
        let mut key = [0u8; 16];
        sponge.finish(DS_FIXED_KEY_AES).fill(&mut key);
        let cipher = Aes128::new(&key.into());
        let vaes = vaes::RoundKeys::new(&key);
        key.zeroize();
        Self { cipher, vaes }
    }

    /// Replaces each input block `x` by `AES(k, sigma(x)) XOR sigma(x)` (the hash of
    /// section 6.2.2). For the few blocks of one seed's stream; wide batches go through
    /// [`Self::hash_u128s_with`].
    pub fn hash_blocks(&self, blocks: &mut [aes::Block]) {
        // Eight blocks fill the AES-NI pipeline; the sigmas wait on the stack meanwhile.
        let mut sigmas = [0u128; 8];
        for chunk in blocks.chunks_mut(sigmas.len()) {
            for (s, b) in sigmas.iter_mut().zip(chunk.iter_mut()) {
                *s = sigma128(u128::from_le_bytes((*b).into()));
                *b = aes::Block::from(s.to_le_bytes());
            }
            self.cipher.encrypt_blocks(chunk);
            for (s, b) in sigmas.iter().zip(chunk.iter_mut()) {
                *b = aes::Block::from((s ^ u128::from_le_bytes((*b).into())).to_le_bytes());
            }
        }
        sigmas.zeroize();
    }

    /// Hashes 128-bit inputs (blocks read as little-endian integers) in place:
    /// `x -> AES(k, sigma(x)) XOR sigma(x)`, [`HASH_CHUNK`] blocks per pipelined AES call.
    pub fn hash_u128s(&self, xs: &mut [u128]) {
        if let Some(keys) = &self.vaes {
            return vaes::hash_u128s(keys, xs);
        }
        let mut blocks = [aes::Block::default(); HASH_CHUNK];
        self.hash_u128s_portable(xs, &mut blocks);
        wipe_blocks(&mut blocks[..xs.len().min(HASH_CHUNK)]);
    }

    /// [`Self::hash_u128s`] through the caller's AES buffer, which is left holding cipher
    /// output: a caller that hashes many batches wipes it once, at the end
    /// ([`wipe_blocks`]).
    pub fn hash_u128s_with(&self, xs: &mut [u128], blocks: &mut [aes::Block; HASH_CHUNK]) {
        if let Some(keys) = &self.vaes {
            return vaes::hash_u128s(keys, xs);
        }
        self.hash_u128s_portable(xs, blocks);
    }

    /// [`Self::hash_u128s_with`] through the `aes` crate (AES-NI, or its software AES).
    #[inline(always)]
    fn hash_u128s_portable(&self, xs: &mut [u128], blocks: &mut [aes::Block; HASH_CHUNK]) {
        for chunk in xs.chunks_mut(HASH_CHUNK) {
            let blocks = &mut blocks[..chunk.len()];
            for (b, x) in blocks.iter_mut().zip(chunk.iter_mut()) {
                let s = sigma128(*x);
                *x = s;
                *b = aes::Block::from(s.to_le_bytes());
            }
            self.cipher.encrypt_blocks(blocks);
            for (x, b) in chunk.iter_mut().zip(blocks.iter()) {
                *x ^= u128::from_le_bytes((*b).into());
            }
        }
    }

    /// The key schedule for [`crate::vaes`], where this CPU runs it.
    pub fn vaes_keys(&self) -> Option<&vaes::RoundKeys> {
        self.vaes.as_ref()
    }

    /// This key without its VAES schedule, so that tests run the `aes` crate's path on a CPU
    /// that has VAES.
    #[cfg(test)]
    pub(crate) fn without_vaes(mut self) -> Self {
        self.vaes = None;
        self
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

/// Overwrites AES blocks that held secret-derived values.
pub fn wipe_blocks(blocks: &mut [aes::Block]) {
    for b in blocks {
        b.as_mut_slice().zeroize();
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

/// XofTurboShake128 at many 16-byte seeds under one (dst, binder): the leaf-level `extend` and
/// `convert` of one report's IDPF (draft section 8.3.2).
///
/// The messages `len(dst) || dst || 16 || seed || binder` differ only in the seed, so the whole
/// blocks before the seed are absorbed once ([`SeededXof::new`]), the rest of the message with
/// the padding is kept as lanes, and a call only XORs the seed in and permutes: one
/// permutation per seed when the message fits one block (contexts up to 124 bytes), four seeds
/// per 4-way permutation ([`SeededXof::hash_x4`]). The first output block (168 bytes) of each
/// seed is the permuted state's first 21 lanes; [`SeededXof::reader`] continues a stream past
/// it.
#[derive(Clone)]
pub struct SeededXof {
    /// The state after absorbing the whole blocks before the seed's block.
    start: State,
    /// The rest of the message with a zero seed, padded: 21 lanes per block.
    tail: Vec<u64>,
    /// The tail lane where the seed begins.
    seed_lane: usize,
    /// The seed's bit offset in that lane (a multiple of 8).
    seed_shift: u32,
    /// When the tail is one block: `start` XOR that block (the seed zero); hashing N seeds is
    /// then a broadcast, 2N or 3N XORs and one N-way permutation.
    one_block: Option<State>,
}

impl SeededXof {
    /// Seed length this type handles.
    pub const SEED_SIZE: usize = 16;

    /// Precomputes the XOF for `dst_parts` (concatenated) and `binder`.
    pub fn new(dst_parts: &[&[u8]], binder: &[u8]) -> Self {
        let dst_len: usize = dst_parts.iter().map(|p| p.len()).sum();
        let mut prefix = Vec::with_capacity(3 + dst_len);
        prefix.extend_from_slice(&u16::try_from(dst_len).unwrap_or(u16::MAX).to_le_bytes());
        for part in dst_parts {
            prefix.extend_from_slice(part);
        }
        prefix.push(Self::SEED_SIZE as u8);

        // Absorb the whole blocks before the seed's block once.
        let whole = prefix.len() / RATE * RATE;
        let mut start = [0u64; 25];
        for block in prefix[..whole].chunks_exact(RATE) {
            for (lane, bytes) in start.iter_mut().zip(block.chunks_exact(8)) {
                *lane ^= u64::from_le_bytes(bytes.try_into().unwrap_or_default());
            }
            keccak::p1600(&mut start);
        }

        // The tail: rest of the prefix, a zero seed, the binder, the domain byte, then zeros
        // and the final bit 0x80 in the last byte of the last block.
        let mut tail = prefix[whole..].to_vec();
        let seed_at = tail.len();
        tail.resize(seed_at + Self::SEED_SIZE, 0);
        tail.extend_from_slice(binder);
        tail.push(DS_TURBOSHAKE);
        let blocks = tail.len().div_ceil(RATE);
        tail.resize(blocks * RATE, 0);
        tail[blocks * RATE - 1] ^= 0x80;
        let lanes: Vec<u64> = tail
            .chunks_exact(8)
            .map(|b| u64::from_le_bytes(b.try_into().unwrap_or_default()))
            .collect();
        let one_block = (blocks == 1 && seed_at / 8 + 2 < RATE_LANES)
            .then(|| core::array::from_fn(|i| start[i] ^ lanes.get(i).copied().unwrap_or(0)));
        Self {
            start,
            tail: lanes,
            seed_lane: seed_at / 8,
            seed_shift: 8 * (seed_at % 8) as u32,
            one_block,
        }
    }

    /// The seed's contribution to tail lanes `seed_lane`, `seed_lane + 1`, `seed_lane + 2`.
    #[inline(always)]
    fn seed_lanes(&self, seed: u128) -> [u64; 3] {
        let lo = seed as u64;
        let hi = (seed >> 64) as u64;
        let k = self.seed_shift;
        if k == 0 {
            [lo, hi, 0]
        } else {
            [lo << k, (lo >> (64 - k)) | (hi << k), hi >> (64 - k)]
        }
    }

    /// Hashes four seeds (little-endian `u128`s) into `st`: the four permuted states after
    /// the last message block, lane-interleaved; lanes 0 to 20 of state `k` are the first 168
    /// output bytes for `seeds[k]`.
    pub fn hash_x4(&self, seeds: &[u128; 4], st: &mut State4) {
        self.hash_lanes(seeds, st, keccak::p1600_x4);
    }

    /// [`Self::hash_x4`] for eight seeds ([`keccak::p1600_x8`]).
    pub fn hash_x8(&self, seeds: &[u128; 8], st: &mut State8) {
        if let Some(first) = &self.one_block {
            let mut inject = [[0u64; 8]; 3];
            for (k, &seed) in seeds.iter().enumerate() {
                for (j, c) in self.seed_lanes(seed).into_iter().enumerate() {
                    inject[j][k] = c;
                }
            }
            keccak::p1600_x8_seeded(first, self.seed_lane, &inject, st);
            inject.zeroize();
            return;
        }
        self.hash_lanes(seeds, st, keccak::p1600_x8);
    }

    fn hash_lanes<const N: usize>(
        &self,
        seeds: &[u128; N],
        st: &mut [[u64; N]; 25],
        permute: fn(&mut [[u64; N]; 25]),
    ) {
        if let Some(first) = &self.one_block {
            for (lane, &s) in st.iter_mut().zip(first) {
                *lane = [s; N];
            }
            for (k, &seed) in seeds.iter().enumerate() {
                for (j, c) in self.seed_lanes(seed).into_iter().enumerate() {
                    st[self.seed_lane + j][k] ^= c;
                }
            }
            permute(st);
            return;
        }
        for (lane, &s) in st.iter_mut().zip(&self.start) {
            *lane = [s; N];
        }
        let contrib = seeds.map(|s| self.seed_lanes(s));
        for (b, block) in self.tail.chunks_exact(RATE_LANES).enumerate() {
            for (lane, &t) in st.iter_mut().zip(block) {
                for x in lane.iter_mut() {
                    *x ^= t;
                }
            }
            for j in 0..3 {
                let at = self.seed_lane + j;
                if at / RATE_LANES == b {
                    for (k, c) in contrib.iter().enumerate() {
                        st[at % RATE_LANES][k] ^= c[j];
                    }
                }
            }
            permute(st);
        }
    }

    /// Hashes one seed: the permuted state after the last message block.
    pub fn hash(&self, seed: u128) -> State {
        let mut st = self.start;
        let contrib = self.seed_lanes(seed);
        for (b, block) in self.tail.chunks_exact(RATE_LANES).enumerate() {
            for (lane, &t) in st.iter_mut().zip(block) {
                *lane ^= t;
            }
            for (j, c) in contrib.iter().enumerate() {
                let at = self.seed_lane + j;
                if at / RATE_LANES == b {
                    st[at % RATE_LANES] ^= c;
                }
            }
            keccak::p1600(&mut st);
        }
        st
    }

    /// The output stream of a state returned by [`Self::hash`], from byte `pos` on.
    pub fn reader(state: State, pos: usize) -> XofStream<TurboShakeReader> {
        XofStream::new(TurboShakeReader::at(state, pos))
    }
}

/// One of the four byte queues of [`StreamsX4`]: output bytes produced but not yet read.
#[derive(Default)]
struct Pending {
    bytes: Vec<u8>,
    read: usize,
}

impl Pending {
    fn available(&self) -> usize {
        self.bytes.len() - self.read
    }

    fn push_lanes(&mut self, lanes: impl Iterator<Item = u64>) {
        if self.read > 0 {
            self.bytes.drain(..self.read);
            self.read = 0;
        }
        for lane in lanes {
            self.bytes.extend_from_slice(&lane.to_le_bytes());
        }
    }
}

impl Drop for Pending {
    fn drop(&mut self) {
        self.bytes.zeroize();
    }
}

/// Up to four TurboSHAKE128 output streams read in lockstep: each 4-way permutation produces
/// the next 168 bytes of every stream. Reading is exactly that of four separate streams; only
/// the production is shared.
pub struct StreamsX4 {
    state: State4,
    pending: [Pending; 4],
    active: usize,
}

impl StreamsX4 {
    /// Takes over up to four readers (their unread bytes come first).
    pub fn new(readers: Vec<TurboShakeReader>) -> Self {
        let active = readers.len().min(4);
        let mut state = [[0u64; 4]; 25];
        let mut pending: [Pending; 4] = Default::default();
        for (k, r) in readers.iter().take(4).enumerate() {
            for (i, lane) in state.iter_mut().enumerate() {
                lane[k] = r.state[i];
            }
            pending[k].bytes.extend_from_slice(&r.block[r.pos..]);
        }
        Self {
            state,
            pending,
            active,
        }
    }

    fn produce(&mut self) {
        keccak::p1600_x4(&mut self.state);
        for (k, p) in self.pending.iter_mut().enumerate().take(self.active) {
            p.push_lanes(self.state[..RATE_LANES].iter().map(|lane| lane[k]));
        }
    }

    /// Fills `outs[k]` with the next elements of stream `k` (the draft's `next_vec`,
    /// rejection sampling included), for `k < self.len()`; other slices are ignored.
    pub fn next_vecs<F: FieldElement>(&mut self, outs: &mut [&mut [F]]) {
        debug_assert!(F::ENCODED_SIZE <= 32);
        let mut done = [0usize; 4];
        loop {
            let mut short = false;
            for (k, out) in outs.iter_mut().enumerate().take(self.active) {
                let p = &mut self.pending[k];
                while done[k] < out.len() && p.available() >= F::ENCODED_SIZE {
                    let bytes = &p.bytes[p.read..p.read + F::ENCODED_SIZE];
                    p.read += F::ENCODED_SIZE;
                    if let Some(x) = F::from_random(bytes) {
                        out[done[k]] = x;
                        done[k] += 1;
                    }
                }
                short |= done[k] < out.len();
            }
            if !short {
                return;
            }
            self.produce();
        }
    }
}

impl Drop for StreamsX4 {
    fn drop(&mut self) {
        for lane in self.state.iter_mut() {
            lane.zeroize();
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use turboshake::digest::{ExtendableOutput, Update, XofReader};

    #[test]
    fn four_streams_in_lockstep_read_as_four_separate_streams() {
        use crate::field::{Field64, Field255};
        // Readers part way into their first block, at lane boundaries and between them.
        for skip in [0usize, 1, 7, 8, 13, 32, 100, 167] {
            let readers = || {
                (0..4u8).map(|k| {
                    let mut x = XofTurboShake128::new(&[k; 32], &[b"lockstep"]);
                    x.update(&[skip as u8]);
                    let mut r = x.into_reader();
                    let mut head = vec![0u8; skip];
                    r.fill(&mut head);
                    r
                })
            };
            let mut lockstep = StreamsX4::new(readers().collect());
            let mut a = vec![[Field255::ZERO; 300]; 4];
            let mut outs: Vec<&mut [Field255]> = a.iter_mut().map(|v| &mut v[..]).collect();
            lockstep.next_vecs(&mut outs);
            let mut b = vec![[Field64::ZERO; 50]; 4];
            let mut outs: Vec<&mut [Field64]> = b.iter_mut().map(|v| &mut v[..]).collect();
            lockstep.next_vecs(&mut outs);
            for (k, r) in readers().enumerate() {
                let mut alone = XofStream::new(r);
                let want255: Vec<Field255> = alone.next_vec(300);
                let want64: Vec<Field64> = alone.next_vec(50);
                assert_eq!(a[k].to_vec(), want255, "skip {skip}, stream {k}");
                assert_eq!(b[k].to_vec(), want64, "skip {skip}, stream {k}");
            }
        }
    }

    #[test]
    fn four_seeds_hash_as_one_seed_does_for_every_prefix_length() {
        let seeds = [
            1u128,
            u128::MAX,
            0x0123_4567_89ab_cdef_fedc_ba98_7654_3210,
            0,
        ];
        // Tails of one block (the precomputed path) and of two, the seed at every byte offset.
        for dst_len in 0..200usize {
            let dst: Vec<u8> = (0..dst_len).map(|i| i as u8).collect();
            let xof = SeededXof::new(&[&dst], b"binder of sixteen");
            let mut st = [[0u64; 4]; 25];
            xof.hash_x4(&seeds, &mut st);
            let eight: [u128; 8] = core::array::from_fn(|k| seeds[k % 4] ^ (k as u128));
            let mut st8 = [[0u64; 8]; 25];
            xof.hash_x8(&eight, &mut st8);
            for (k, &seed) in seeds.iter().enumerate() {
                let one = xof.hash(seed);
                let lanes: State = core::array::from_fn(|i| st[i][k]);
                assert_eq!(lanes, one, "dst of {dst_len} bytes, seed {k}");
            }
            for (k, &seed) in eight.iter().enumerate() {
                let lanes: State = core::array::from_fn(|i| st8[i][k]);
                assert_eq!(
                    lanes,
                    xof.hash(seed),
                    "dst of {dst_len} bytes, seed {k} of 8"
                );
            }
        }
    }

    #[test]
    fn fixed_key_hash_paths_agree() {
        let key = FixedKeyAes128::new(&[b"paths"], b"binder");
        let xs: Vec<u128> = (0..300u128)
            .map(|i| i.wrapping_mul(0x9e37_79b9_7f4a_7c15_f39c_c060_5ced_c835))
            .collect();
        let mut portable = xs.clone();
        let mut blocks = [aes::Block::default(); HASH_CHUNK];
        key.hash_u128s_portable(&mut portable, &mut blocks);
        let mut dispatched = xs.clone();
        key.hash_u128s(&mut dispatched);
        assert_eq!(dispatched, portable);
        let mut one_by_one: Vec<aes::Block> = xs
            .iter()
            .map(|x| aes::Block::from(x.to_le_bytes()))
            .collect();
        key.hash_blocks(&mut one_by_one);
        let one_by_one: Vec<u128> = one_by_one
            .iter()
            .map(|b| u128::from_le_bytes((*b).into()))
            .collect();
        assert_eq!(one_by_one, portable);
        if key.vaes.is_none() {
            eprintln!("no VAES and AVX-512F on this CPU: both calls ran the aes crate");
        }
    }

    #[test]
    fn sponge_matches_the_turboshake_crate_across_block_boundaries() {
        for len in [0usize, 1, 167, 168, 169, 335, 336, 337, 600] {
            let message: Vec<u8> = (0..len).map(|i| (i * 7 + 3) as u8).collect();
            let mut ours = Sponge::default();
            // Absorbed in two pieces, so a split inside a block is covered too.
            let (a, b) = message.split_at(len / 3);
            ours.absorb(a);
            ours.absorb(b);
            let mut got = vec![0u8; 400];
            ours.finish(1).fill(&mut got);

            let mut theirs = turboshake::CTurboShake128::<1>::default();
            theirs.update(&message);
            let mut want = vec![0u8; 400];
            theirs.finalize_xof().read(&mut want);
            assert_eq!(got, want, "message of {len} bytes");
        }
    }
}
