//! A [`LevelAggregator`] that runs the real Poplar1 engine in process: the batch's reports are
//! sharded as clients would shard them, and every release is a two-party preparation
//! ([`Poplar1::prepare_batch_local`]) in which both aggregators evaluate and verify every
//! report, add their own discrete Gaussian noise to their aggregate share, and the collector
//! unshards the sum. Tests, benches and the accuracy bench use it; the service runs the same
//! steps across gRPC.
//!
//! As in the service, a report that fails verification at one level leaves the batch for good,
//! and no report is aggregated twice at one level (the aggregation parameters of a batch must
//! pass [`is_valid`] against the earlier ones).

use hotspot_vdaf::{
    AggregationParam, LocalReport, NONCE_SIZE, Poplar1, VERIFY_KEY_SIZE, VdafError, Verdict,
    is_valid,
};
use rand::CryptoRng;

use super::{LevelAggregator, LevelQuery};
use crate::dp::DiscreteGaussian;

/// Errors of the in-process engine aggregator.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum EngineError {
    /// The VDAF refused an input or a step.
    #[error("vdaf: {0}")]
    Vdaf(#[from] VdafError),
    /// The query's aggregation parameter is not valid after the batch's earlier ones.
    #[error("aggregation parameter at level {level} is not valid after the earlier ones")]
    InvalidSequence {
        /// The refused level.
        level: u32,
    },
    /// The level does not fit a Poplar1 aggregation parameter.
    #[error("level {0} is out of range")]
    LevelOutOfRange(u32),
}

/// One sharded report, as the leader stores it.
struct StoredReport {
    nonce: [u8; NONCE_SIZE],
    public_share: Vec<u8>,
    input_shares: [Vec<u8>; 2],
}

/// Both aggregators and the collector of one batch, in one process.
pub struct VdafAggregator<R> {
    vdaf: Poplar1,
    verify_key: [u8; VERIFY_KEY_SIZE],
    ctx: Vec<u8>,
    reports: Vec<StoredReport>,
    /// Reports still in the batch (not rejected at an earlier level).
    live: Vec<bool>,
    previous: Vec<AggregationParam>,
    noise_rng: [R; 2],
}

impl<R: CryptoRng> VdafAggregator<R> {
    /// Shards `codes` (`bits`-bit venue codes) as clients would, with fresh nonces from
    /// `client_rng`, under application context `ctx`; `noise_rng` are the leader's and the
    /// helper's noise sources.
    pub fn shard<C: CryptoRng + ?Sized>(
        bits: u32,
        ctx: &[u8],
        verify_key: [u8; VERIFY_KEY_SIZE],
        codes: &[u64],
        client_rng: &mut C,
        noise_rng: [R; 2],
    ) -> Result<Self, EngineError> {
        let vdaf = Poplar1::new(bits as usize)?;
        let mut reports = Vec::with_capacity(codes.len());
        for &code in codes {
            let mut nonce = [0u8; NONCE_SIZE];
            client_rng.fill_bytes(&mut nonce);
            let (public_share, [leader, helper]) = vdaf.shard(ctx, code, &nonce, client_rng)?;
            reports.push(StoredReport {
                nonce,
                public_share: public_share.encode(),
                input_shares: [leader.encode(), helper.encode()],
            });
        }
        let live = vec![true; reports.len()];
        Ok(Self {
            vdaf,
            verify_key,
            ctx: ctx.to_vec(),
            reports,
            live,
            previous: Vec::new(),
            noise_rng,
        })
    }

    /// Reports still in the batch.
    pub fn live_reports(&self) -> usize {
        self.live.iter().filter(|&&l| l).count()
    }
}

impl<R: CryptoRng> LevelAggregator for VdafAggregator<R> {
    type Error = EngineError;

    fn aggregate(&mut self, query: &LevelQuery) -> Result<Vec<i64>, EngineError> {
        // The aggregation parameter, checked against the batch's earlier ones.
        let level =
            u16::try_from(query.level).map_err(|_| EngineError::LevelOutOfRange(query.level))?;
        let param = AggregationParam::new(level, query.prefixes.clone())?;
        if !is_valid(&param, &self.previous) {
            return Err(EngineError::InvalidSequence { level: query.level });
        }

        // Both aggregators prepare the live reports.
        let index: Vec<usize> = (0..self.reports.len()).filter(|&i| self.live[i]).collect();
        let local: Vec<LocalReport<'_>> = index
            .iter()
            .map(|&i| {
                let r = &self.reports[i];
                LocalReport {
                    nonce: r.nonce,
                    public_share: &r.public_share,
                    input_shares: [&r.input_shares[0], &r.input_shares[1]],
                }
            })
            .collect();
        let mut outcome =
            self.vdaf
                .prepare_batch_local(&self.verify_key, &self.ctx, &param, &local)?;
        for (&i, verdict) in index.iter().zip(&outcome.verdicts) {
            if !matches!(verdict, Verdict::Accepted) {
                self.live[i] = false;
            }
        }

        // Each aggregator adds its own noise to its share; the collector unshards the sum.
        if let Some(noise) = query.noise {
            let dg = DiscreteGaussian::new(noise.sigma2);
            for (share, rng) in outcome.aggregates.iter_mut().zip(&mut self.noise_rng) {
                share.add_noise(&dg.vartime_sample_vec(query.prefixes.len(), rng))?;
            }
        }
        let [leader, helper] = &outcome.aggregates;
        let counts = self
            .vdaf
            .unshard_signed(&param, [leader, helper], outcome.accepted)?;
        self.previous.push(param);
        Ok(counts)
    }
}

#[cfg(test)]
mod tests {
    use rand::SeedableRng;
    use rand::rngs::ChaCha20Rng;

    use super::*;
    use crate::dp::{Accountant, DpConfig};
    use crate::search::{PlaintextAggregator, SearchConfig, run};

    fn engine(codes: &[u64]) -> VdafAggregator<ChaCha20Rng> {
        let noise = [ChaCha20Rng::seed_from_u64(2), ChaCha20Rng::seed_from_u64(3)];
        VdafAggregator::shard(
            8,
            b"task",
            [7; VERIFY_KEY_SIZE],
            codes,
            &mut ChaCha20Rng::seed_from_u64(1),
            noise,
        )
        .expect("shard")
    }

    fn dp() -> DpConfig {
        DpConfig {
            sensitivity: 1,
            rho_batch: 0.1,
            rho_day: 1.0,
            windows_per_day: 24,
            noise: false,
        }
    }

    fn codes() -> Vec<u64> {
        let mut codes = vec![0x13; 5];
        codes.extend([0xa0; 3]);
        codes.extend([0x7f, 0, 0, 0x14]);
        codes
    }

    #[test]
    fn engine_and_plaintext_agree_in_both_modes_without_noise() {
        for config in [
            SearchConfig::registry(8),
            SearchConfig::open(8, 2),
            SearchConfig {
                stride: 3,
                ..SearchConfig::open(8, 2)
            },
        ] {
            let mut acc = Accountant::new(&dp()).expect("valid");
            let registry = [0x13, 0x14, 0x7f, 0xa0, 0xff];
            let real = run(
                &config,
                &dp(),
                &mut engine(&codes()),
                &mut acc,
                0,
                &registry,
            )
            .expect("engine");
            let mut plain = PlaintextAggregator::new(8, codes(), ChaCha20Rng::seed_from_u64(4));
            let expected =
                run(&config, &dp(), &mut plain, &mut acc, 1, &registry).expect("plaintext");
            assert_eq!(real.counts, expected.counts, "{config:?}");
            assert_eq!(real.levels, expected.levels);
        }
    }

    #[test]
    fn engine_adds_both_aggregators_noise() {
        let mut noisy = DpConfig {
            noise: true,
            ..dp()
        };
        noisy.rho_batch = 0.001;
        let mut acc = Accountant::new(&noisy).expect("valid");
        let registry: Vec<u64> = (1..=255).collect();
        let out = run(
            &SearchConfig::registry(8),
            &noisy,
            &mut engine(&codes()),
            &mut acc,
            0,
            &registry,
        )
        .expect("engine");
        // sigma^2 = 1 / (4 * 0.001) = 250 per aggregator, 500 in the sum.
        let var = out
            .counts
            .iter()
            .filter(|(c, _)| ![0x13, 0x14, 0x7f, 0xa0].contains(c))
            .map(|(_, n)| (*n * *n) as f64)
            .sum::<f64>()
            / 251.0;
        assert!(var > 300.0 && var < 750.0, "{var}");
    }

    #[test]
    fn a_level_repeated_for_a_batch_is_refused() {
        let mut agg = engine(&codes());
        let query = LevelQuery {
            window: 0,
            level: 7,
            prefixes: vec![0x13],
            noise: None,
        };
        agg.aggregate(&query).expect("first");
        assert!(matches!(
            agg.aggregate(&query),
            Err(EngineError::InvalidSequence { level: 7 })
        ));
    }

    #[test]
    fn a_corrupted_report_leaves_the_batch() {
        let mut agg = engine(&codes());
        agg.reports[0].input_shares[1][20] ^= 1;
        let query = LevelQuery {
            window: 0,
            level: 7,
            prefixes: vec![0x13],
            noise: None,
        };
        let counts = agg.aggregate(&query).expect("batch survives");
        assert_eq!(counts, vec![4]);
        assert_eq!(agg.live_reports(), codes().len() - 1);
    }
}
