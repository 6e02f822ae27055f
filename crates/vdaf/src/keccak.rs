//! Keccak-p[1600, 12], the permutation under TurboSHAKE128 (RFC 9861, section 2.2; FIPS 202,
//! section 3.3 for the step mappings), on one state or on four states at once.
//!
//! The IDPF's leaf level and the verification randomness of Poplar1 cost, per report and
//! aggregator, about two permutations per candidate prefix, each of them independent of the
//! others. [`p1600_x4`] runs four of them side by side: the four states are stored
//! lane-interleaved ([`State4`]: `s[i][k]` is lane `i` of state `k`), so that every step of the
//! round function is one operation on a `[u64; 4]`, which LLVM compiles to one 256-bit AVX2
//! instruction (three for a rotation). The round function is written once, generic over the
//! lane type, and instantiated for `u64` ([`p1600`]), for `[u64; 4]` without any target
//! feature ([`p1600_x4_portable`], the fallback: SSE2 on x86-64, scalar elsewhere) and for
//! `[u64; 4]` inside a function compiled with AVX2 enabled, chosen at run time.
//!
//! # Unsafe code
//!
//! This is the crate's only module allowed `unsafe` (the workspace denies it elsewhere), for
//! one reason: calling the AVX2-compiled function is `unsafe` because the compiler cannot know
//! that the CPU has AVX2. The single `unsafe` block runs only after
//! `is_x86_feature_detected!("avx2")` returned true. No intrinsics, pointers or transmutes are
//! used: the AVX2 code is what LLVM makes of the safe generic round function.
//!
//! The `keccak` crate's `p1600` is the reference: the tests below check both paths against it
//! on random states, and the vectors of `XofTurboShake128` check the sponge built on them.
#![allow(unsafe_code)]

/// One Keccak-p[1600] state: 25 lanes, lane `x + 5 y` at index `x + 5 * y`.
pub type State = [u64; 25];

/// Four states, lane-interleaved: `s[i][k]` is lane `i` of state `k`.
pub type State4 = [[u64; 4]; 25];

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

/// The same code as [`p1600_x4_portable`], compiled with AVX2 enabled.
#[cfg(target_arch = "x86_64")]
#[target_feature(enable = "avx2")]
fn p1600_x4_avx2(states: &mut State4) {
    permute(states);
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

/// Keccak-p[1600, 12] on four states: AVX2 where the CPU has it (detected at run time, the
/// result cached by the standard library), [`p1600_x4_portable`] otherwise.
pub fn p1600_x4(states: &mut State4) {
    #[cfg(target_arch = "x86_64")]
    if std::arch::is_x86_feature_detected!("avx2") {
        // SAFETY: `p1600_x4_avx2` is safe code whose only requirement is that the CPU
        // supports AVX2, which `is_x86_feature_detected!` has just confirmed.
        unsafe { p1600_x4_avx2(states) };
        return;
    }
    p1600_x4_portable(states);
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
        }
        if !simd_available() {
            eprintln!("no AVX2 on this CPU: p1600_x4 ran the portable path");
        }
    }
}
