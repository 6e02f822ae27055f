//! Keccak-p[1600, 12], the permutation under TurboSHAKE128 (RFC 9861, section 2.2; FIPS 202,
//! section 3.3 for the step mappings), on one state or on four or eight states at once.
//!
//! The IDPF's leaf level and the verification randomness of Poplar1 cost, per report and
//! aggregator, about two permutations per candidate prefix, each of them independent of the
//! others. [`p1600_x4`] and [`p1600_x8`] run four or eight of them side by side: the states
//! are stored lane-interleaved ([`State4`], [`State8`]: `s[i][k]` is lane `i` of state `k`),
//! so that every step of the round function is one operation on all of them: one 256-bit
//! AVX2 instruction (three for a rotation, two for chi), or one AVX-512 instruction on 256-
//! or 512-bit registers (`vprolq` rotates, `vpternlogq` computes chi). The round function is
//! written once generic over the lane type, instantiated for `u64` ([`p1600`]) and for
//! `[u64; 4]` ([`p1600_x4_portable`], the fallback: SSE2 on x86-64, scalar elsewhere), and
//! once more as a macro over vector registers (`simd_rounds!`) for the AVX2 and AVX-512
//! paths, chosen at run time. (LLVM does not vectorise the generic `[u64; 4]` version well
//! under AVX2: its cost model turns the vector rotations back into scalar ones, about 11,000
//! instructions per 4-way permutation against about 2,700 with the intrinsics.)
//!
//! # Unsafe code
//!
//! One of the crate's three modules allowed `unsafe` (with [`crate::vaes`] and
//! [`crate::field512`]; the workspace denies it elsewhere), for one reason: calling a function
//! compiled with AVX2 or AVX-512 is `unsafe` because the compiler cannot know that the CPU
//! has them. Each `unsafe` block runs only after `is_x86_feature_detected!` confirmed the
//! features. Inside those functions the intrinsics are safe calls (register operations only:
//! no pointers, loads, stores or transmutes).
//!
//! The `keccak` crate's `p1600` is the reference: the tests below check every path against it
//! on random states, and the vectors of `XofTurboShake128` check the sponge built on them.
#![allow(unsafe_code)]

/// One Keccak-p\[1600\] state: 25 lanes, lane `x + 5 y` at index `x + 5 * y`.
pub type State = [u64; 25];

/// Four states, lane-interleaved: `s[i][k]` is lane `i` of state `k`.
pub type State4 = [[u64; 4]; 25];

/// Eight states, lane-interleaved: `s[i][k]` is lane `i` of state `k`.
pub type State8 = [[u64; 8]; 25];

/// Number of rounds of TurboSHAKE's permutation.
pub const ROUNDS: usize = 12;

/// The round constants of the last 12 rounds of Keccak-f[1600] (rounds 12 to 23), the ones
/// Keccak-p[1600, 12] uses.
const RC: [u64; ROUNDS] = [
    0x0000_0000_8000_808b,
    0x8000_0000_0000_008b,
    0x8000_0000_0000_8089,
    0x8000_0000_0000_8003,
    0x8000_0000_0000_8002,
    0x8000_0000_0000_0080,
    0x0000_0000_0000_800a,
    0x8000_0000_8000_000a,
    0x8000_0000_8000_8081,
    0x8000_0000_0000_8080,
    0x0000_0000_8000_0001,
    0x8000_0000_8000_8008,
];

/// What the round function needs of a lane: one `u64`, or the same lane of several states.
trait Lane: Copy {
    fn xor(self, other: Self) -> Self;
    /// `!self & other`.
    fn andn(self, other: Self) -> Self;
    fn rotl(self, n: u32) -> Self;
    fn xor_rc(self, rc: u64) -> Self;
}

impl Lane for u64 {
    #[inline(always)]
    fn xor(self, other: Self) -> Self {
        self ^ other
    }
    #[inline(always)]
    fn andn(self, other: Self) -> Self {
        !self & other
    }
    #[inline(always)]
    fn rotl(self, n: u32) -> Self {
        self.rotate_left(n)
    }
    #[inline(always)]
    fn xor_rc(self, rc: u64) -> Self {
        self ^ rc
    }
}

impl Lane for [u64; 4] {
    #[inline(always)]
    fn xor(self, o: Self) -> Self {
        [
            self[0] ^ o[0],
            self[1] ^ o[1],
            self[2] ^ o[2],
            self[3] ^ o[3],
        ]
    }
    #[inline(always)]
    fn andn(self, o: Self) -> Self {
        [
            !self[0] & o[0],
            !self[1] & o[1],
            !self[2] & o[2],
            !self[3] & o[3],
        ]
    }
    #[inline(always)]
    fn rotl(self, n: u32) -> Self {
        [
            self[0].rotate_left(n),
            self[1].rotate_left(n),
            self[2].rotate_left(n),
            self[3].rotate_left(n),
        ]
    }
    #[inline(always)]
    fn xor_rc(self, rc: u64) -> Self {
        [self[0] ^ rc, self[1] ^ rc, self[2] ^ rc, self[3] ^ rc]
    }
}

/// One round: theta, rho and pi (into `b`), chi (back into `a`), iota.
#[inline(always)]
fn round<L: Lane>(a: &mut [L; 25], rc: u64) {
    // Theta: column parities c[x], then d[x] = c[x - 1] ^ rotl(c[x + 1], 1).
    let c = [
        a[0].xor(a[5]).xor(a[10]).xor(a[15]).xor(a[20]),
        a[1].xor(a[6]).xor(a[11]).xor(a[16]).xor(a[21]),
        a[2].xor(a[7]).xor(a[12]).xor(a[17]).xor(a[22]),
        a[3].xor(a[8]).xor(a[13]).xor(a[18]).xor(a[23]),
        a[4].xor(a[9]).xor(a[14]).xor(a[19]).xor(a[24]),
    ];
    let d = [
        c[4].xor(c[1].rotl(1)),
        c[0].xor(c[2].rotl(1)),
        c[1].xor(c[3].rotl(1)),
        c[2].xor(c[4].rotl(1)),
        c[3].xor(c[0].rotl(1)),
    ];
    // Rho and pi: lane (x, y) moves to (y, 2x + 3y), rotated by its rho offset; listed by
    // destination, the source of (X, Y) is (X + 3Y, X) (indices mod 5).
    let b = [
        a[0].xor(d[0]),
        a[6].xor(d[1]).rotl(44),
        a[12].xor(d[2]).rotl(43),
        a[18].xor(d[3]).rotl(21),
        a[24].xor(d[4]).rotl(14),
        a[3].xor(d[3]).rotl(28),
        a[9].xor(d[4]).rotl(20),
        a[10].xor(d[0]).rotl(3),
        a[16].xor(d[1]).rotl(45),
        a[22].xor(d[2]).rotl(61),
        a[1].xor(d[1]).rotl(1),
        a[7].xor(d[2]).rotl(6),
        a[13].xor(d[3]).rotl(25),
        a[19].xor(d[4]).rotl(8),
        a[20].xor(d[0]).rotl(18),
        a[4].xor(d[4]).rotl(27),
        a[5].xor(d[0]).rotl(36),
        a[11].xor(d[1]).rotl(10),
        a[17].xor(d[2]).rotl(15),
        a[23].xor(d[3]).rotl(56),
        a[2].xor(d[2]).rotl(62),
        a[8].xor(d[3]).rotl(55),
        a[14].xor(d[4]).rotl(39),
        a[15].xor(d[0]).rotl(41),
        a[21].xor(d[1]).rotl(2),
    ];
    // Chi, row by row: a[x] = b[x] ^ (!b[x + 1] & b[x + 2]).
    for y in (0..25).step_by(5) {
        a[y] = b[y].xor(b[y + 1].andn(b[y + 2]));
        a[y + 1] = b[y + 1].xor(b[y + 2].andn(b[y + 3]));
        a[y + 2] = b[y + 2].xor(b[y + 3].andn(b[y + 4]));
        a[y + 3] = b[y + 3].xor(b[y + 4].andn(b[y]));
        a[y + 4] = b[y + 4].xor(b[y].andn(b[y + 1]));
    }
    // Iota.
    a[0] = a[0].xor_rc(rc);
}

#[inline(always)]
fn permute<L: Lane>(a: &mut [L; 25]) {
    for rc in RC {
        round(a, rc);
    }
}

/// Keccak-p[1600, 12] on one state.
pub fn p1600(state: &mut State) {
    permute(state);
}

/// Keccak-p[1600, 12] on four states, without SIMD beyond the target's baseline.
pub fn p1600_x4_portable(states: &mut State4) {
    permute(states);
}

/// `vprolq` and `vpternlogq` (truth table 0xd2 over (0xf0, 0xcc, 0xaa): `a ^ (!b & c)`) on
/// 256- and 512-bit registers, for [`simd_rounds`].
#[cfg(target_arch = "x86_64")]
macro_rules! rol256 {
    ($x:expr, $n:literal) => {
        std::arch::x86_64::_mm256_rol_epi64::<$n>($x)
    };
}
#[cfg(target_arch = "x86_64")]
macro_rules! chi256 {
    ($a:expr, $b:expr, $c:expr) => {
        std::arch::x86_64::_mm256_ternarylogic_epi64::<0xd2>($a, $b, $c)
    };
}
#[cfg(target_arch = "x86_64")]
macro_rules! rol512 {
    ($x:expr, $n:literal) => {
        std::arch::x86_64::_mm512_rol_epi64::<$n>($x)
    };
}
#[cfg(target_arch = "x86_64")]
macro_rules! chi512 {
    ($a:expr, $b:expr, $c:expr) => {
        std::arch::x86_64::_mm512_ternarylogic_epi64::<0xd2>($a, $b, $c)
    };
}
/// The AVX2 rotation (two shifts and an OR) and chi (`vpandn` and an XOR), for
/// [`simd_rounds`].
#[cfg(target_arch = "x86_64")]
macro_rules! rol_avx2 {
    ($x:expr, $n:literal) => {{
        use std::arch::x86_64::{_mm256_or_si256, _mm256_slli_epi64, _mm256_srli_epi64};
        let x = $x;
        _mm256_or_si256(
            _mm256_slli_epi64::<$n>(x),
            _mm256_srli_epi64::<{ 64 - $n }>(x),
        )
    }};
}
#[cfg(target_arch = "x86_64")]
macro_rules! chi_avx2 {
    ($a:expr, $b:expr, $c:expr) => {{
        use std::arch::x86_64::{_mm256_andnot_si256, _mm256_xor_si256};
        _mm256_xor_si256($a, _mm256_andnot_si256($b, $c))
    }};
}

/// The twelve rounds of [`round`] on states held in vector registers (`$regs`: a
/// `[__m256i; 25]` or `[__m512i; 25]` place), one register per lane of all the states, given
/// the width's XOR and broadcast intrinsics and two macros of the caller's: `$rotl!(x, n)`
/// and `$chi!(b0, b1, b2)` = `b0 ^ (!b1 & b2)` (three instructions and two with AVX2, one
/// each with AVX-512). One round goes from `a` into `e` output row by output row, so that
/// only the five `d` values, one row of `b` and temporaries are live at a time (sixteen
/// registers). Expanded into each SIMD function (a function would not be inlined across the
/// target-feature boundary, and its registers would go through memory).
#[cfg(target_arch = "x86_64")]
macro_rules! simd_rounds {
    ($regs:ident, $xor:ident, $rotl:ident, $chi:ident, $set1:ident) => {{
        macro_rules! xor {
            ($a:expr, $b:expr) => {
                $xor($a, $b)
            };
        }
        macro_rules! rotl {
            ($x:expr, $n:literal) => {
                $rotl!($x, $n)
            };
        }
        macro_rules! round {
            ($a:ident, $e:ident, $rc:expr) => {{
                let a = &$a;
                let c = [
                    xor!(xor!(xor!(xor!(a[0], a[5]), a[10]), a[15]), a[20]),
                    xor!(xor!(xor!(xor!(a[1], a[6]), a[11]), a[16]), a[21]),
                    xor!(xor!(xor!(xor!(a[2], a[7]), a[12]), a[17]), a[22]),
                    xor!(xor!(xor!(xor!(a[3], a[8]), a[13]), a[18]), a[23]),
                    xor!(xor!(xor!(xor!(a[4], a[9]), a[14]), a[19]), a[24]),
                ];
                let d = [
                    xor!(c[4], rotl!(c[1], 1)),
                    xor!(c[0], rotl!(c[2], 1)),
                    xor!(c[1], rotl!(c[3], 1)),
                    xor!(c[2], rotl!(c[4], 1)),
                    xor!(c[3], rotl!(c[0], 1)),
                ];
                macro_rules! row {
                    ($y:literal, $b:expr) => {{
                        let b = $b;
                        $e[5 * $y] = $chi!(b[0], b[1], b[2]);
                        $e[5 * $y + 1] = $chi!(b[1], b[2], b[3]);
                        $e[5 * $y + 2] = $chi!(b[2], b[3], b[4]);
                        $e[5 * $y + 3] = $chi!(b[3], b[4], b[0]);
                        $e[5 * $y + 4] = $chi!(b[4], b[0], b[1]);
                    }};
                }
                row!(
                    0,
                    [
                        xor!(a[0], d[0]),
                        rotl!(xor!(a[6], d[1]), 44),
                        rotl!(xor!(a[12], d[2]), 43),
                        rotl!(xor!(a[18], d[3]), 21),
                        rotl!(xor!(a[24], d[4]), 14),
                    ]
                );
                $e[0] = xor!($e[0], $set1($rc as i64));
                row!(
                    1,
                    [
                        rotl!(xor!(a[3], d[3]), 28),
                        rotl!(xor!(a[9], d[4]), 20),
                        rotl!(xor!(a[10], d[0]), 3),
                        rotl!(xor!(a[16], d[1]), 45),
                        rotl!(xor!(a[22], d[2]), 61),
                    ]
                );
                row!(
                    2,
                    [
                        rotl!(xor!(a[1], d[1]), 1),
                        rotl!(xor!(a[7], d[2]), 6),
                        rotl!(xor!(a[13], d[3]), 25),
                        rotl!(xor!(a[19], d[4]), 8),
                        rotl!(xor!(a[20], d[0]), 18),
                    ]
                );
                row!(
                    3,
                    [
                        rotl!(xor!(a[4], d[4]), 27),
                        rotl!(xor!(a[5], d[0]), 36),
                        rotl!(xor!(a[11], d[1]), 10),
                        rotl!(xor!(a[17], d[2]), 15),
                        rotl!(xor!(a[23], d[3]), 56),
                    ]
                );
                row!(
                    4,
                    [
                        rotl!(xor!(a[2], d[2]), 62),
                        rotl!(xor!(a[8], d[3]), 55),
                        rotl!(xor!(a[14], d[4]), 39),
                        rotl!(xor!(a[15], d[0]), 41),
                        rotl!(xor!(a[21], d[1]), 2),
                    ]
                );
            }};
        }
        let mut a = $regs;
        let mut e = a;
        for rc in RC.chunks_exact(2) {
            round!(a, e, rc[0]);
            round!(e, a, rc[1]);
        }
        $regs = a;
    }};
}

/// Keccak-p[1600, 12] on `$states` (a `&mut State4`), one 256-bit register per lane of the
/// four states (state 0 in the lowest element), with the caller's rotation and chi macros.
#[cfg(target_arch = "x86_64")]
macro_rules! permute_x4 {
    ($states:expr, $rotl:ident, $chi:ident) => {{
        use std::arch::x86_64::{
            __m256i, _mm256_extract_epi64, _mm256_set_epi64x, _mm256_set1_epi64x, _mm256_xor_si256,
        };
        let states: &mut State4 = $states;
        let mut a: [__m256i; 25] = core::array::from_fn(|i| {
            let l = states[i].map(|w| w as i64);
            _mm256_set_epi64x(l[3], l[2], l[1], l[0])
        });
        simd_rounds!(a, _mm256_xor_si256, $rotl, $chi, _mm256_set1_epi64x);
        for (lane, v) in states.iter_mut().zip(a) {
            *lane = [
                _mm256_extract_epi64::<0>(v) as u64,
                _mm256_extract_epi64::<1>(v) as u64,
                _mm256_extract_epi64::<2>(v) as u64,
                _mm256_extract_epi64::<3>(v) as u64,
            ];
        }
    }};
}

/// Keccak-p[1600, 12] on four states with AVX2: the same round function as [`round`], one
/// 256-bit register per lane of the four states. The intrinsics used are safe to call inside
/// a function compiled with AVX2 (they take no pointers); only calling this function is not.
#[cfg(target_arch = "x86_64")]
#[target_feature(enable = "avx2")]
fn p1600_x4_avx2(states: &mut State4) {
    permute_x4!(states, rol_avx2, chi_avx2);
}

/// Keccak-p[1600, 12] on four states with AVX-512F and AVX-512VL on 256-bit registers: the
/// same round as [`p1600_x4_avx2`], with the two instructions AVX-512 adds for it: a rotation
/// (`vprolq`, one instruction instead of three) and a three-input logic function
/// (`vpternlogq`), which computes each chi output `b0 ^ (!b1 & b2)` in one. (The column
/// parities stay two-input XORs: as three-input ones they measured slower on the AMD host,
/// where fewer ports take `vpternlogq`.) About 60 % of the instructions of the AVX2 round;
/// 32 vector registers instead of 16, so the whole state stays in registers. Like the AVX2
/// path, only calling it is `unsafe`.
#[cfg(target_arch = "x86_64")]
#[target_feature(enable = "avx2,avx512f,avx512vl")]
fn p1600_x4_avx512(states: &mut State4) {
    permute_x4!(states, rol256, chi256);
}

/// Keccak-p[1600, 12] on eight states with AVX-512F on 512-bit registers: the round of
/// [`p1600_x4_avx512`] on one register per lane of eight states. On the AMD host, which runs
/// 512-bit operations as two 256-bit halves, it still measured 10 to 20 % more permutations
/// per second than the four-way path (fewer instructions to decode and retire per state).
#[cfg(target_arch = "x86_64")]
#[target_feature(enable = "avx2,avx512f,avx512vl")]
fn p1600_x8_avx512(states: &mut State8) {
    use std::arch::x86_64::{__m512i, _mm512_set_epi64, _mm512_set1_epi64, _mm512_xor_si512};
    let mut a: [__m512i; 25] = core::array::from_fn(|i| {
        let l = states[i].map(|w| w as i64);
        _mm512_set_epi64(l[7], l[6], l[5], l[4], l[3], l[2], l[1], l[0])
    });
    simd_rounds!(a, _mm512_xor_si512, rol512, chi512, _mm512_set1_epi64);
    store8(&a, states);
}

/// The registers of eight states back into their lane-interleaved array.
#[cfg(target_arch = "x86_64")]
#[target_feature(enable = "avx2,avx512f,avx512vl")]
fn store8(a: &[core::arch::x86_64::__m512i; 25], states: &mut State8) {
    use std::arch::x86_64::{_mm256_extract_epi64, _mm512_extracti64x4_epi64};
    for (lane, &v) in states.iter_mut().zip(a) {
        let lo = _mm512_extracti64x4_epi64::<0>(v);
        let hi = _mm512_extracti64x4_epi64::<1>(v);
        *lane = [
            _mm256_extract_epi64::<0>(lo) as u64,
            _mm256_extract_epi64::<1>(lo) as u64,
            _mm256_extract_epi64::<2>(lo) as u64,
            _mm256_extract_epi64::<3>(lo) as u64,
            _mm256_extract_epi64::<0>(hi) as u64,
            _mm256_extract_epi64::<1>(hi) as u64,
            _mm256_extract_epi64::<2>(hi) as u64,
            _mm256_extract_epi64::<3>(hi) as u64,
        ];
    }
}

/// [`p1600_x8_seeded`] with AVX-512: the eight states are built in registers (a broadcast of
/// `base` per lane, the injected lanes XORed in), so no partial stores meet the 512-bit loads.
#[cfg(target_arch = "x86_64")]
#[target_feature(enable = "avx2,avx512f,avx512vl")]
fn p1600_x8_seeded_avx512(base: &State, at: usize, inject: &[[u64; 8]; 3], out: &mut State8) {
    use std::arch::x86_64::{__m512i, _mm512_set_epi64, _mm512_set1_epi64, _mm512_xor_si512};
    let mut a: [__m512i; 25] = core::array::from_fn(|i| _mm512_set1_epi64(base[i] as i64));
    for (j, l) in inject.iter().enumerate() {
        if let Some(reg) = a.get_mut(at + j) {
            let l = l.map(|w| w as i64);
            let v = _mm512_set_epi64(l[7], l[6], l[5], l[4], l[3], l[2], l[1], l[0]);
            *reg = _mm512_xor_si512(*reg, v);
        }
    }
    simd_rounds!(a, _mm512_xor_si512, rol512, chi512, _mm512_set1_epi64);
    store8(&a, out);
}

/// `true` when [`p1600_x4`] runs the AVX2 path on this CPU.
pub fn simd_available() -> bool {
    #[cfg(target_arch = "x86_64")]
    {
        std::arch::is_x86_feature_detected!("avx2")
    }
    #[cfg(not(target_arch = "x86_64"))]
    {
        false
    }
}

/// `true` when [`p1600_x4`] runs the AVX-512 path on this CPU.
pub fn avx512_available() -> bool {
    #[cfg(target_arch = "x86_64")]
    {
        std::arch::is_x86_feature_detected!("avx512f")
            && std::arch::is_x86_feature_detected!("avx512vl")
            && std::arch::is_x86_feature_detected!("avx2")
    }
    #[cfg(not(target_arch = "x86_64"))]
    {
        false
    }
}

/// Keccak-p[1600, 12] on four states: AVX-512 or AVX2 where the CPU has it (detected at run time, the
/// result cached by the standard library), [`p1600_x4_portable`] otherwise.
pub fn p1600_x4(states: &mut State4) {
    #[cfg(target_arch = "x86_64")]
    if avx512_available() {
        // SAFETY: `p1600_x4_avx512` is safe code whose only requirement is that the CPU
        // supports AVX2, AVX-512F and AVX-512VL, which `avx512_available` has just confirmed.
        unsafe { p1600_x4_avx512(states) };
        return;
    }
    #[cfg(target_arch = "x86_64")]
    if std::arch::is_x86_feature_detected!("avx2") {
        // SAFETY: `p1600_x4_avx2` is safe code whose only requirement is that the CPU
        // supports AVX2, which `is_x86_feature_detected!` has just confirmed.
        unsafe { p1600_x4_avx2(states) };
        return;
    }
    p1600_x4_portable(states);
}

/// Keccak-p[1600, 12] on eight states: one AVX-512 pass where the CPU has AVX-512F and
/// AVX-512VL, else [`p1600_x4`] on each half.
pub fn p1600_x8(states: &mut State8) {
    #[cfg(target_arch = "x86_64")]
    if avx512_available() {
        // SAFETY: `p1600_x8_avx512` is safe code whose only requirement is that the CPU
        // supports AVX2, AVX-512F and AVX-512VL, which `avx512_available` has just confirmed.
        unsafe { p1600_x8_avx512(states) };
        return;
    }
    p1600_x8_halves(states);
}

/// Keccak-p[1600, 12] on eight states that equal `base` except in lanes `at`, `at + 1` and
/// `at + 2`, where state `k` has `inject[j][k]` XORed into lane `at + j` (lanes past 24 are
/// ignored); the permuted states go to `out`. The absorption of one block of eight
/// messages that differ only in a 16-byte seed ([`crate::xof::SeededXof::hash_x8`]).
pub fn p1600_x8_seeded(base: &State, at: usize, inject: &[[u64; 8]; 3], out: &mut State8) {
    #[cfg(target_arch = "x86_64")]
    if avx512_available() {
        // SAFETY: as in `p1600_x8`: the CPU has AVX2, AVX-512F and AVX-512VL.
        unsafe { p1600_x8_seeded_avx512(base, at, inject, out) };
        return;
    }
    for (lane, &b) in out.iter_mut().zip(base) {
        *lane = [b; 8];
    }
    for (j, l) in inject.iter().enumerate() {
        if let Some(lane) = out.get_mut(at + j) {
            for (x, v) in lane.iter_mut().zip(l) {
                *x ^= v;
            }
        }
    }
    p1600_x8_halves(out);
}

/// [`p1600_x8`] as two calls of [`p1600_x4`].
fn p1600_x8_halves(states: &mut State8) {
    for half in 0..2 {
        let mut four: State4 =
            core::array::from_fn(|i| core::array::from_fn(|k| states[i][4 * half + k]));
        p1600_x4(&mut four);
        for (lane, l4) in states.iter_mut().zip(&four) {
            lane[4 * half..4 * half + 4].copy_from_slice(l4);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use rand::rngs::StdRng;
    use rand::{RngExt, SeedableRng};

    fn reference(mut s: State) -> State {
        keccak::Keccak::new().with_p1600::<ROUNDS>(|f| f(&mut s));
        s
    }

    fn random_states(rng: &mut StdRng) -> [State; 4] {
        let mut out = [[0u64; 25]; 4];
        for s in out.iter_mut() {
            for lane in s.iter_mut() {
                *lane = rng.random();
            }
        }
        out
    }

    fn interleave(states: &[State; 4]) -> State4 {
        let mut out = [[0u64; 4]; 25];
        for (i, lane) in out.iter_mut().enumerate() {
            for (k, s) in states.iter().enumerate() {
                lane[k] = s[i];
            }
        }
        out
    }

    fn lane_of(s4: &State4, k: usize) -> State {
        let mut out = [0u64; 25];
        for (i, lane) in out.iter_mut().enumerate() {
            *lane = s4[i][k];
        }
        out
    }

    #[test]
    fn p1600_matches_the_keccak_crate_on_random_states() {
        let mut rng = StdRng::seed_from_u64(1600);
        assert_eq!(reference([0; 25]), {
            let mut z = [0; 25];
            p1600(&mut z);
            z
        });
        for _ in 0..200 {
            let [s, ..] = random_states(&mut rng);
            let mut ours = s;
            p1600(&mut ours);
            assert_eq!(ours, reference(s));
        }
    }

    #[test]
    fn eight_way_permutation_matches_the_keccak_crate_lane_by_lane() {
        let mut rng = StdRng::seed_from_u64(8);
        for _ in 0..100 {
            let (a, b) = (random_states(&mut rng), random_states(&mut rng));
            let all: Vec<State> = a.iter().chain(&b).copied().collect();
            let st: State8 = core::array::from_fn(|i| core::array::from_fn(|k| all[k][i]));
            let (mut one_pass, mut halves) = (st, st);
            p1600_x8(&mut one_pass);
            p1600_x8_halves(&mut halves);
            for (k, s) in all.iter().enumerate() {
                let lane: State = core::array::from_fn(|i| one_pass[i][k]);
                assert_eq!(lane, reference(*s), "state {k}");
            }
            assert_eq!(one_pass, halves);
        }
    }

    #[test]
    fn seeded_eight_way_permutation_is_the_permutation_of_the_built_states() {
        let mut rng = StdRng::seed_from_u64(88);
        for at in [0usize, 1, 7, 18, 22, 23, 24] {
            let [base, ..] = random_states(&mut rng);
            let inject: [[u64; 8]; 3] = core::array::from_fn(|_| rng.random());
            let mut built: State8 = core::array::from_fn(|i| [base[i]; 8]);
            for (j, l) in inject.iter().enumerate() {
                if at + j < 25 {
                    for k in 0..8 {
                        built[at + j][k] ^= l[k];
                    }
                }
            }
            p1600_x8_halves(&mut built);
            let mut seeded = [[0u64; 8]; 25];
            p1600_x8_seeded(&base, at, &inject, &mut seeded);
            assert_eq!(seeded, built, "lanes from {at}");
        }
    }

    #[test]
    fn four_way_paths_match_the_keccak_crate_lane_by_lane() {
        let mut rng = StdRng::seed_from_u64(4);
        for _ in 0..100 {
            let states = random_states(&mut rng);
            let mut portable = interleave(&states);
            p1600_x4_portable(&mut portable);
            let mut dispatched = interleave(&states);
            p1600_x4(&mut dispatched);
            for (k, s) in states.iter().enumerate() {
                assert_eq!(lane_of(&portable, k), reference(*s), "portable lane {k}");
            }
            assert_eq!(dispatched, portable, "SIMD and portable paths");
            #[cfg(target_arch = "x86_64")]
            if simd_available() {
                let mut avx2 = interleave(&states);
                // SAFETY: the CPU has AVX2 (checked just above).
                unsafe { p1600_x4_avx2(&mut avx2) };
                assert_eq!(avx2, portable, "AVX2 and portable paths");
            }
            #[cfg(target_arch = "x86_64")]
            if avx512_available() {
                let mut avx512 = interleave(&states);
                // SAFETY: the CPU has AVX2, AVX-512F and AVX-512VL (checked just above).
                unsafe { p1600_x4_avx512(&mut avx512) };
                assert_eq!(avx512, portable, "AVX-512 and portable paths");
            }
        }
        if !simd_available() {
            eprintln!("no AVX2 on this CPU: p1600_x4 ran the portable path");
        }
        if !avx512_available() {
            eprintln!("no AVX-512VL on this CPU: its path was not checked");
        }
    }
}
