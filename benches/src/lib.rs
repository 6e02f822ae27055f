//! Benchmarks: criterion benches (`benches/poplar1.rs`) and the side-by-side comparison
//! binary (`src/bin/compare.rs`) that runs our Poplar1 engine and the `prio` crate's on the
//! same reports in one process.
//!
//! This library holds the workloads both use: Zipf-distributed venue ids, a venue registry,
//! and sharded reports (sharded once by our engine; prio decodes the same bytes).

use hotspot_vdaf::{LocalReport, Poplar1};
use rand::rngs::StdRng;
use rand::{RngExt, SeedableRng};

/// Application context used by every benchmark.
pub const CTX: &[u8] = b"hotspot bench task";

/// One encoded report.
pub struct Report {
    /// Nonce (report id).
    pub nonce: [u8; 16],
    /// Encoded public share.
    pub public_share: Vec<u8>,
    /// Encoded input shares (leader, helper).
    pub input_shares: [Vec<u8>; 2],
}

impl Report {
    /// Borrowed form for [`Poplar1::prepare_batch_local`].
    pub fn local(&self) -> LocalReport<'_> {
        LocalReport {
            nonce: self.nonce,
            public_share: &self.public_share,
            input_shares: [&self.input_shares[0], &self.input_shares[1]],
        }
    }

    /// Bytes a client uploads for this report (public share plus both input shares).
    pub fn upload_bytes(&self) -> usize {
        self.public_share.len() + self.input_shares[0].len() + self.input_shares[1].len()
    }
}

/// Sampler of Zipf(s = 1) over `1..=n` by inverse CDF (binary search on the harmonic sums).
pub struct Zipf {
    cdf: Vec<f64>,
}

impl Zipf {
    /// Precomputes the CDF for `n` ids.
    pub fn new(n: usize) -> Self {
        let mut cdf = Vec::with_capacity(n);
        let mut acc = 0.0;
        for k in 1..=n {
            acc += 1.0 / k as f64;
            cdf.push(acc);
        }
        let total = acc;
        cdf.iter_mut().for_each(|c| *c /= total);
        Self { cdf }
    }

    /// A sample in `0..n` (0 is the most frequent id).
    pub fn sample(&self, rng: &mut StdRng) -> usize {
        let u: f64 = rng.random();
        self.cdf.partition_point(|c| *c < u).min(self.cdf.len() - 1)
    }
}

/// Maps a venue id to a 32-bit venue code (a bijection on `u32`, so distinct ids get
/// distinct codes spread over the whole tree).
pub fn venue_code(id: usize) -> u64 {
    u64::from((id as u32).wrapping_mul(0x9E37_79B1).rotate_left(13) ^ 0x5bd1_e995)
}

/// Shards one report per measurement with our engine (deterministic from `seed`).
pub fn shard_all(poplar: &Poplar1, measurements: &[u64], seed: u64) -> Vec<Report> {
    let mut rng = StdRng::seed_from_u64(seed);
    measurements
        .iter()
        .map(|m| {
            let nonce: [u8; 16] = rng.random();
            let mut rand = [0u8; hotspot_vdaf::RAND_SIZE];
            rng.fill(&mut rand[..]);
            let (public, shares) = poplar
                .shard_with_rand(CTX, *m, &nonce, &rand)
                .expect("measurement fits");
            Report {
                nonce,
                public_share: public.encode(),
                input_shares: [shares[0].encode(), shares[1].encode()],
            }
        })
        .collect()
}

/// Zipf(s = 1) venue codes over `venues` ids.
pub fn zipf_measurements(reports: usize, venues: usize, seed: u64) -> Vec<u64> {
    let zipf = Zipf::new(venues);
    let mut rng = StdRng::seed_from_u64(seed);
    (0..reports)
        .map(|_| venue_code(zipf.sample(&mut rng)))
        .collect()
}

/// A registry of `venues` distinct codes (sorted) and `reports` check-ins drawn uniformly
/// from it.
pub fn registry_workload(venues: usize, reports: usize, seed: u64) -> (Vec<u64>, Vec<u64>) {
    let mut registry: Vec<u64> = (0..venues).map(venue_code).collect();
    registry.sort_unstable();
    let mut rng = StdRng::seed_from_u64(seed);
    let ms = (0..reports)
        .map(|_| registry[rng.random_range(0..venues)])
        .collect();
    (registry, ms)
}
