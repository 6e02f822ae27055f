//! The heavy-hitter search the collector drives over a sealed batch (DESIGN.md section 3,
//! step 6; Poplar1 in draft-irtf-cfrg-vdaf-18, section 8, for the aggregation parameter).
//!
//! A search is a sequence of *releases*: each asks the aggregators for the noisy counts of a
//! set of candidate prefixes at one level of the binary tree over `bits`-bit venue codes (the
//! prefix of a code at level `l` is its top `l + 1` bits). Two modes:
//!
//! - [`SearchMode::Registry`]: one release at the leaf level whose candidates are the
//!   registered venue codes. One round of verification, and no prefix tree is revealed.
//! - [`SearchMode::Open`]: the prefix walk. Each step descends `stride` levels (one by default:
//!   the two children of every kept prefix) and keeps the prefixes whose noisy count reaches
//!   the threshold `t`; the last step releases venue codes.
//!
//! Both skip the reserved dummy code 0 at the leaf level (dummy reports pad outbreak uploads).
//!
//! The driver is written against the narrow [`LevelAggregator`] trait: the collector
//! implements it over gRPC (the leader runs the aggregation with the helper, each adds its
//! noise), [`PlaintextAggregator`] implements it over plaintext counts with the same noise for
//! the planner's tests and the accuracy bench, and [`engine::VdafAggregator`] runs the real
//! Poplar1 engine in process. Before every release the driver charges the
//! release's privacy cost to the [`Accountant`]; a refused charge stops the search before
//! anything is released.

pub mod engine;

use std::collections::HashMap;

use rand::CryptoRng;
use tracing::{debug, info_span};

use crate::dp::accountant::AGGREGATORS;
use crate::dp::{Accountant, DiscreteGaussian, DpConfig, DpError, ReleaseNoise};
use crate::rules::{AlertLevel, Rules, VenueInfo};
use crate::task::{DUMMY_VENUE_CODE, SearchMode};

/// One release the search asks for.
#[derive(Clone, Debug, PartialEq)]
pub struct LevelQuery {
    /// The batch (window index).
    pub window: u64,
    /// The tree level, `0..bits`; a prefix at level `l` has `l + 1` bits.
    pub level: u32,
    /// The candidate prefixes: sorted, distinct, each below `2^(level + 1)` (the rules of a
    /// Poplar1 aggregation parameter).
    pub prefixes: Vec<u64>,
    /// The noise each aggregator must add to every entry, or `None` when the task has noise
    /// switched off (tests only).
    pub noise: Option<ReleaseNoise>,
}

/// What the search needs from the aggregators: noisy combined counts, one per candidate, in
/// the order of `query.prefixes`.
pub trait LevelAggregator {
    /// The transport's or engine's error.
    type Error: std::error::Error + Send + Sync + 'static;

    /// Runs one aggregation and returns the combined noisy counts.
    fn aggregate(&mut self, query: &LevelQuery) -> Result<Vec<i64>, Self::Error>;
}

/// Errors of a search.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum SearchError<E: std::error::Error + 'static> {
    /// The search configuration is invalid.
    #[error("invalid search configuration: {0}")]
    InvalidConfig(&'static str),
    /// A registered venue code does not fit the task's bits.
    #[error("registered venue code {code} does not fit in {bits} bits")]
    CodeOutOfRange {
        /// The code.
        code: u64,
        /// The task's bits.
        bits: u32,
    },
    /// The privacy budget refused a release (nothing was released for it).
    #[error("privacy budget: {0}")]
    Budget(#[from] DpError),
    /// The open walk would ask for more candidates than allowed.
    #[error("open search at level {level} would need {candidates} candidates (limit {limit})")]
    TooManyCandidates {
        /// The level.
        level: u32,
        /// Candidates needed.
        candidates: usize,
        /// The configured limit.
        limit: usize,
    },
    /// The aggregator answered with the wrong number of counts.
    #[error("aggregator returned {got} counts for {expected} candidates")]
    CountMismatch {
        /// Candidates asked for.
        expected: usize,
        /// Counts returned.
        got: usize,
    },
    /// The aggregator failed.
    #[error("aggregation failed: {0}")]
    Aggregator(#[source] E),
}

/// How a task searches its batches.
#[derive(Clone, Debug, PartialEq)]
pub struct SearchConfig {
    /// Registry or open.
    pub mode: SearchMode,
    /// Bits of a venue code (1 to 64).
    pub bits: u32,
    /// Open mode: a prefix is kept when its noisy count reaches this threshold.
    pub threshold: u64,
    /// Open mode: levels descended per step (1 = both children of each kept prefix).
    pub stride: u32,
    /// Open mode: share of the batch budget spent on the leaf release (the rest is split
    /// evenly over the prefix releases), in `(0, 1]`.
    pub leaf_share: f64,
    /// Open mode: the most candidates one release may have.
    pub max_candidates: usize,
    /// Open mode: a prefix is kept only if its noisy count also reaches this many standard
    /// deviations of the release's noise. Without such a floor, a threshold small against
    /// the noise keeps many empty prefixes, each of which brings `2^stride` new candidates,
    /// and the walk grows without bound. `None` (the default) picks
    /// `sqrt(2 (stride + 2) ln 2)`, for which the Gaussian tail bound gives each empty
    /// candidate a chance below `2^-(stride + 2)` to be kept, so that an empty prefix's
    /// `2^stride` children keep fewer than a quarter of a prefix on average. `Some(0.0)`
    /// disables the floor.
    pub noise_floor_sds: Option<f64>,
}

impl SearchConfig {
    /// Registry mode over `bits`-bit codes.
    pub fn registry(bits: u32) -> Self {
        Self {
            mode: SearchMode::Registry,
            bits,
            threshold: 1,
            stride: 1,
            leaf_share: 1.0,
            max_candidates: 1 << 20,
            noise_floor_sds: None,
        }
    }

    /// Open mode over `bits`-bit codes with pruning threshold `threshold`.
    pub fn open(bits: u32, threshold: u64) -> Self {
        Self {
            mode: SearchMode::Open,
            threshold,
            leaf_share: 0.5,
            ..Self::registry(bits)
        }
    }

    fn validate<E: std::error::Error>(&self) -> Result<(), SearchError<E>> {
        if !(1..=64).contains(&self.bits) {
            return Err(SearchError::InvalidConfig("bits must lie in 1..=64"));
        }
        if self.stride == 0 || self.stride > 16 {
            return Err(SearchError::InvalidConfig("stride must lie in 1..=16"));
        }
        if !(self.leaf_share > 0.0 && self.leaf_share <= 1.0) {
            return Err(SearchError::InvalidConfig("leaf_share must lie in (0, 1]"));
        }
        if self
            .noise_floor_sds
            .is_some_and(|z| !(z.is_finite() && z >= 0.0))
        {
            return Err(SearchError::InvalidConfig(
                "noise_floor_sds must be finite and >= 0",
            ));
        }
        if self.max_candidates == 0 {
            return Err(SearchError::InvalidConfig(
                "max_candidates must be positive",
            ));
        }
        Ok(())
    }

    /// The levels the search releases, in order; the last is the leaf level `bits - 1`.
    pub fn levels(&self) -> Vec<u32> {
        match self.mode {
            SearchMode::Registry => vec![self.bits - 1],
            SearchMode::Open => {
                let steps = self.bits.div_ceil(self.stride);
                (1..=steps)
                    .map(|i| (i * self.stride).min(self.bits) - 1)
                    .collect()
            }
        }
    }

    /// The budget share of each release in [`levels`](Self::levels); they sum to one.
    pub fn level_shares(&self) -> Vec<f64> {
        let levels = self.levels().len();
        if levels == 1 {
            return vec![1.0];
        }
        let inner = (1.0 - self.leaf_share) / (levels - 1) as f64;
        let mut shares = vec![inner; levels - 1];
        shares.push(self.leaf_share);
        shares
    }

    /// The noise of this search's release at `level` over `candidates` counts: what each
    /// aggregator adds and what the release costs. Aggregators compute it from their own copy
    /// of the task rather than trusting the scale in a collector's [`LevelQuery`]. `None` with
    /// noise off; an error for a level this search never releases.
    pub fn release_noise(
        &self,
        dp: &DpConfig,
        level: u32,
        candidates: usize,
    ) -> Result<Option<ReleaseNoise>, DpError> {
        let position = self.levels().iter().position(|&l| l == level);
        let share = position
            .and_then(|i| self.level_shares().get(i).copied())
            .ok_or(DpError::UnplannedRelease { level })?;
        if !dp.noise {
            return Ok(None);
        }
        ReleaseNoise::for_rho(dp.sensitivity, dp.rho_batch * share, candidates).map(Some)
    }
}

/// One release of a finished search.
#[derive(Clone, Debug, PartialEq)]
pub struct LevelSummary {
    /// Tree level.
    pub level: u32,
    /// Candidates released.
    pub candidates: usize,
    /// Candidates whose noisy count reached the threshold (open mode prefix levels).
    pub kept: usize,
    /// Privacy cost charged (0 with noise off).
    pub rho: f64,
    /// The noise each aggregator added (`None` with noise off).
    pub noise: Option<ReleaseNoise>,
}

/// The result of a search over one batch.
#[derive(Clone, Debug, PartialEq)]
pub struct SearchOutcome {
    /// The mode that ran.
    pub mode: SearchMode,
    /// The batch.
    pub window: u64,
    /// Every release, in order.
    pub levels: Vec<LevelSummary>,
    /// Noisy counts of the leaf candidates (venue codes), code 0 excluded, sorted by code.
    pub counts: Vec<(u64, i64)>,
    /// Total privacy cost charged to the batch.
    pub rho: f64,
}

/// An alert: a venue-hour whose noisy count reached a rule's level.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct Alert {
    /// The venue code.
    pub code: u64,
    /// The window.
    pub window: u64,
    /// The level reached.
    pub level: AlertLevel,
    /// The noisy count.
    pub count: i64,
}

impl SearchOutcome {
    /// The standard deviation of the noise in every leaf count: that of the sum of both
    /// aggregators' discrete Gaussians, `sqrt(2 sigma^2)` (0 with noise off).
    pub fn leaf_stddev(&self) -> f64 {
        self.levels
            .last()
            .and_then(|l| l.noise)
            .map_or(0.0, |n| (f64::from(AGGREGATORS) * n.sigma2.to_f64()).sqrt())
    }

    /// The alerts the outcome raises under `rules`, given what the collector knows of venues.
    pub fn alerts(&self, rules: &Rules, venues: &HashMap<u64, VenueInfo>) -> Vec<Alert> {
        self.counts
            .iter()
            .filter_map(|&(code, count)| {
                let level = rules.evaluate(code, venues.get(&code), count)?;
                Some(Alert {
                    code,
                    window: self.window,
                    level,
                    count,
                })
            })
            .collect()
    }
}

/// Runs the search of `config` over the batch of `window`, asking `aggregator` for every
/// release and charging each to `accountant` first. `registry` holds the registered venue
/// codes (registry mode; ignored in open mode).
pub fn run<A: LevelAggregator>(
    config: &SearchConfig,
    dp: &DpConfig,
    aggregator: &mut A,
    accountant: &mut Accountant,
    window: u64,
    registry: &[u64],
) -> Result<SearchOutcome, SearchError<A::Error>> {
    config.validate()?;
    dp.validate()?;
    let span = info_span!("search", batch.window = window, search.mode = ?config.mode);
    let _entered = span.enter();

    // The whole plan must fit the budget before the first release.
    if dp.noise {
        accountant.check(window, dp.rho_batch)?;
    }

    let mut walk = Walk {
        config,
        dp,
        aggregator,
        accountant,
        window,
        levels: Vec::new(),
    };
    let counts = match config.mode {
        SearchMode::Registry => walk.registry(registry)?,
        SearchMode::Open => walk.open()?,
    };
    let rho = walk.levels.iter().map(|l| l.rho).sum();
    Ok(SearchOutcome {
        mode: config.mode,
        window,
        levels: walk.levels,
        counts,
        rho,
    })
}

/// The counts of one release and the noise they carry.
type Released = (Vec<i64>, Option<ReleaseNoise>);

/// The state of one search.
struct Walk<'a, A> {
    config: &'a SearchConfig,
    dp: &'a DpConfig,
    aggregator: &'a mut A,
    accountant: &'a mut Accountant,
    window: u64,
    levels: Vec<LevelSummary>,
}

impl<A: LevelAggregator> Walk<'_, A> {
    /// Registry mode: one leaf release over the registered codes.
    fn registry(&mut self, registry: &[u64]) -> Result<Vec<(u64, i64)>, SearchError<A::Error>> {
        let bits = self.config.bits;
        let mut codes: Vec<u64> = Vec::with_capacity(registry.len());
        for &code in registry {
            if bits < 64 && code >> bits != 0 {
                return Err(SearchError::CodeOutOfRange { code, bits });
            }
            if code != DUMMY_VENUE_CODE {
                codes.push(code);
            }
        }
        codes.sort_unstable();
        codes.dedup();
        let (counts, _) = self.release(bits - 1, codes.clone())?;
        Ok(codes.into_iter().zip(counts).collect())
    }

    /// Open mode: the prefix walk.
    fn open(&mut self) -> Result<Vec<(u64, i64)>, SearchError<A::Error>> {
        let levels = self.config.levels();
        let leaf = self.config.bits - 1;
        let threshold = i64::try_from(self.config.threshold).unwrap_or(i64::MAX);
        let mut kept: Vec<u64> = vec![0];

        let mut previous_bits = 0u32;

        for &level in &levels {
            // Candidates: every extension of every kept prefix down to this level.
            let step = level + 1 - previous_bits;
            let mut candidates = self.extend(&kept, level, step)?;
            if level == leaf {
                candidates.retain(|&c| c != DUMMY_VENUE_CODE);
            }
            if candidates.is_empty() {
                return Ok(Vec::new());
            }

            let (counts, noise) = self.release(level, candidates.clone())?;
            if level == leaf {
                return Ok(candidates.into_iter().zip(counts).collect());
            }

            // Keep the prefixes whose noisy count reaches the threshold and the noise floor.
            let threshold = threshold.max(self.noise_floor(noise));
            kept = candidates
                .into_iter()
                .zip(counts)
                .filter(|&(_, c)| c >= threshold)
                .map(|(p, _)| p)
                .collect();
            if let Some(last) = self.levels.last_mut() {
                last.kept = kept.len();
            }
            previous_bits = level + 1;
        }
        // The last entry of `levels` is the leaf, which returns above.
        Ok(Vec::new())
    }

    /// The noise floor in standard deviations of a release's noise (two aggregators' worth:
    /// `sqrt(2 sigma^2)`), rounded up; 0 without noise.
    fn noise_floor(&self, noise: Option<ReleaseNoise>) -> i64 {
        let z = self.config.noise_floor_sds.unwrap_or_else(|| {
            (2.0 * f64::from(self.config.stride + 2) * std::f64::consts::LN_2).sqrt()
        });
        noise.map_or(0, |n| {
            let sd = (2.0 * n.sigma2.to_f64()).sqrt();
            // A float-to-int `as` saturates; the floor is a pruning heuristic, not privacy.
            (z * sd).ceil() as i64
        })
    }

    /// All `2^step` extensions of each prefix, sorted (prefixes are sorted and distinct).
    fn extend(
        &self,
        prefixes: &[u64],
        level: u32,
        step: u32,
    ) -> Result<Vec<u64>, SearchError<A::Error>> {
        let per = 1usize << step;
        let needed = prefixes.len().saturating_mul(per);
        if needed > self.config.max_candidates {
            return Err(SearchError::TooManyCandidates {
                level,
                candidates: needed,
                limit: self.config.max_candidates,
            });
        }
        Ok(prefixes
            .iter()
            .flat_map(|&p| (0..per as u64).map(move |s| (p << step) | s))
            .collect())
    }

    /// Charges and runs one release; `share` is its part of the batch budget.
    fn release(
        &mut self,
        level: u32,
        prefixes: Vec<u64>,
    ) -> Result<Released, SearchError<A::Error>> {
        // The noise for this release, charged before anything is asked for.
        let candidates = prefixes.len();
        let noise = self.config.release_noise(self.dp, level, candidates)?;
        if let Some(noise) = noise {
            self.accountant.charge(self.window, noise.rho)?;
        }

        // The aggregation itself.
        let query = LevelQuery {
            window: self.window,
            level,
            prefixes,
            noise,
        };
        let counts = self
            .aggregator
            .aggregate(&query)
            .map_err(SearchError::Aggregator)?;
        if counts.len() != candidates {
            return Err(SearchError::CountMismatch {
                expected: candidates,
                got: counts.len(),
            });
        }
        let rho = noise.map_or(0.0, |n| n.rho);
        debug!(
            search.level = level,
            search.candidates = candidates,
            dp.rho = rho,
            "released"
        );
        self.levels.push(LevelSummary {
            level,
            candidates,
            kept: candidates,
            rho,
            noise,
        });
        Ok((counts, noise))
    }
}

/// A [`LevelAggregator`] over **plaintext** venue codes: it counts the codes directly and
/// adds the noise of two simulated aggregators, each an independent discrete Gaussian, exactly
/// as the real aggregators do. No cryptography runs here: it exists to test the planner and to
/// measure the search's accuracy, whose only randomness is the noise.
pub struct PlaintextAggregator<R> {
    bits: u32,
    codes: Vec<u64>,
    rng: R,
}

impl<R: CryptoRng> PlaintextAggregator<R> {
    /// An aggregator over the batch's reports (`bits`-bit venue codes), drawing noise from `rng`.
    pub fn new(bits: u32, mut codes: Vec<u64>, rng: R) -> Self {
        codes.sort_unstable();
        Self { bits, codes, rng }
    }

    /// The exact count of reports under `prefix` at `level`.
    fn count(&self, level: u32, prefix: u64) -> i64 {
        let shift = self.bits - 1 - level;
        let low = prefix << shift;
        let high = low | ((1u64 << shift) - 1);
        let start = self.codes.partition_point(|&c| c < low);
        let end = self.codes.partition_point(|&c| c <= high);
        (end - start) as i64
    }
}

/// The plaintext aggregator's error (it has none; the type exists for the trait).
#[derive(Debug, thiserror::Error)]
#[error("plaintext aggregation failed: {0}")]
pub struct PlaintextError(&'static str);

impl<R: CryptoRng> LevelAggregator for PlaintextAggregator<R> {
    type Error = PlaintextError;

    fn aggregate(&mut self, query: &LevelQuery) -> Result<Vec<i64>, PlaintextError> {
        if query.level >= self.bits {
            return Err(PlaintextError("level beyond the codes' bits"));
        }
        let mut counts: Vec<i64> = query
            .prefixes
            .iter()
            .map(|&p| self.count(query.level, p))
            .collect();
        if let Some(noise) = query.noise {
            let dg = DiscreteGaussian::new(noise.sigma2);
            for count in &mut counts {
                // The leader's noise and the helper's, drawn independently.
                *count += dg.vartime_sample(&mut self.rng) + dg.vartime_sample(&mut self.rng);
            }
        }
        Ok(counts)
    }
}

#[cfg(test)]
mod tests {
    use rand::SeedableRng;
    use rand::rngs::ChaCha20Rng;

    use super::*;

    fn dp(noise: bool) -> DpConfig {
        DpConfig {
            sensitivity: 1,
            rho_batch: 0.05,
            rho_day: 0.1,
            windows_per_day: 24,
            noise,
        }
    }

    /// Venue codes of 8 bits: 5 reports at 0x13, 3 at 0xa0, 1 at 0x7f, 4 dummies (code 0).
    fn reports() -> Vec<u64> {
        let mut r = vec![0x13; 5];
        r.extend([0xa0; 3]);
        r.push(0x7f);
        r.extend([0; 4]);
        r
    }

    fn plaintext(codes: Vec<u64>) -> PlaintextAggregator<ChaCha20Rng> {
        PlaintextAggregator::new(8, codes, ChaCha20Rng::seed_from_u64(1))
    }

    /// Counts the releases, to show that a refused search releases nothing.
    struct Counting<A>(A, usize);

    impl<A: LevelAggregator> LevelAggregator for Counting<A> {
        type Error = A::Error;
        fn aggregate(&mut self, query: &LevelQuery) -> Result<Vec<i64>, A::Error> {
            self.1 += 1;
            self.0.aggregate(query)
        }
    }

    #[test]
    fn registry_mode_releases_exact_counts_without_noise() {
        let mut acc = Accountant::new(&dp(false)).expect("valid");
        let out = run(
            &SearchConfig::registry(8),
            &dp(false),
            &mut plaintext(reports()),
            &mut acc,
            3,
            &[0xa0, 0x13, 0x55, 0, 0x13],
        )
        .expect("search");
        assert_eq!(out.mode, SearchMode::Registry);
        assert_eq!(out.counts, vec![(0x13, 5), (0x55, 0), (0xa0, 3)]);
        assert_eq!(out.levels.len(), 1);
        assert_eq!(out.rho, 0.0);
        assert_eq!(out.leaf_stddev(), 0.0);
    }

    #[test]
    fn open_mode_finds_every_code_reaching_the_threshold() {
        let mut acc = Accountant::new(&dp(false)).expect("valid");
        let config = SearchConfig::open(8, 3);
        let out = run(
            &config,
            &dp(false),
            &mut plaintext(reports()),
            &mut acc,
            3,
            &[],
        )
        .expect("search");
        assert_eq!(out.mode, SearchMode::Open);
        // 0x7f (1 report) falls under the threshold; code 0 is never a leaf candidate.
        let found: Vec<_> = out
            .counts
            .iter()
            .filter(|(_, c)| *c >= 3)
            .copied()
            .collect();
        assert_eq!(found, vec![(0x13, 5), (0xa0, 3)]);
        assert!(out.counts.iter().all(|(code, _)| *code != 0));
        assert_eq!(out.levels.len(), 8);
    }

    #[test]
    fn open_mode_with_a_stride_finds_the_same_codes() {
        let mut acc = Accountant::new(&dp(false)).expect("valid");
        let config = SearchConfig {
            stride: 3,
            ..SearchConfig::open(8, 3)
        };
        assert_eq!(config.levels(), vec![2, 5, 7]);
        let out = run(
            &config,
            &dp(false),
            &mut plaintext(reports()),
            &mut acc,
            3,
            &[],
        )
        .expect("search");
        let found: Vec<_> = out
            .counts
            .iter()
            .filter(|(_, c)| *c >= 3)
            .copied()
            .collect();
        assert_eq!(found, vec![(0x13, 5), (0xa0, 3)]);
    }

    #[test]
    fn every_release_is_charged_and_the_total_is_the_batch_budget() {
        let mut acc = Accountant::new(&dp(true)).expect("valid");
        let out = run(
            &SearchConfig::open(8, 3),
            &dp(true),
            &mut plaintext(reports()),
            &mut acc,
            3,
            &[],
        )
        .expect("search");
        assert!(out.levels.iter().all(|l| l.rho > 0.0));
        assert!((acc.spent_batch(3) - out.rho).abs() < 1e-15);
        // A walk may stop early when no prefix is kept; it never spends more than the budget.
        assert!(out.rho <= 0.05 && out.rho > 0.0);
    }

    #[test]
    fn a_second_search_of_a_batch_is_refused_before_any_release() {
        let mut acc = Accountant::new(&dp(true)).expect("valid");
        let config = SearchConfig::registry(8);
        run(
            &config,
            &dp(true),
            &mut plaintext(reports()),
            &mut acc,
            3,
            &[0x13],
        )
        .expect("first");
        let mut counting = Counting(plaintext(reports()), 0);
        let err = run(&config, &dp(true), &mut counting, &mut acc, 3, &[0x13]).expect_err("spent");
        assert!(matches!(
            err,
            SearchError::Budget(DpError::BatchBudgetExceeded { .. })
        ));
        assert_eq!(counting.1, 0);
    }

    #[test]
    fn the_daily_budget_stops_the_third_batch_of_a_day() {
        let mut acc = Accountant::new(&dp(true)).expect("valid");
        let config = SearchConfig::registry(8);
        for window in [0, 1] {
            run(
                &config,
                &dp(true),
                &mut plaintext(reports()),
                &mut acc,
                window,
                &[1],
            )
            .expect("fits");
        }
        let err = run(
            &config,
            &dp(true),
            &mut plaintext(reports()),
            &mut acc,
            2,
            &[1],
        )
        .expect_err("day spent");
        assert!(matches!(
            err,
            SearchError::Budget(DpError::DayBudgetExceeded { day: 0, .. })
        ));
    }

    #[test]
    fn noise_moves_counts_at_the_scale_charged() {
        let mut acc = Accountant::new(&dp(true)).expect("valid");
        let registry: Vec<u64> = (1..=255).collect();
        let out = run(
            &SearchConfig::registry(8),
            &dp(true),
            &mut plaintext(vec![]),
            &mut acc,
            0,
            &registry,
        )
        .expect("search");
        // Every true count is 0: the sample variance is that of two noises, 2 sigma^2.
        let sigma2 = f64::from(1u32) / (4.0 * 0.05);
        let var = out
            .counts
            .iter()
            .map(|(_, c)| (*c * *c) as f64)
            .sum::<f64>()
            / 255.0;
        assert!((var / (2.0 * sigma2) - 1.0).abs() < 0.3, "{var}");
        let sd = out.leaf_stddev();
        assert!((sd * sd / (2.0 * sigma2) - 1.0).abs() < 1e-3, "{sd}");
    }

    #[test]
    fn a_registered_code_too_wide_for_the_bits_is_rejected() {
        let mut acc = Accountant::new(&dp(false)).expect("valid");
        let err = run(
            &SearchConfig::registry(8),
            &dp(false),
            &mut plaintext(reports()),
            &mut acc,
            0,
            &[256],
        )
        .expect_err("9 bits");
        assert!(matches!(
            err,
            SearchError::CodeOutOfRange { code: 256, bits: 8 }
        ));
    }

    #[test]
    fn bad_configurations_are_rejected() {
        let mut acc = Accountant::new(&dp(false)).expect("valid");
        for config in [
            SearchConfig::registry(0),
            SearchConfig::registry(65),
            SearchConfig {
                stride: 0,
                ..SearchConfig::open(8, 1)
            },
            SearchConfig {
                leaf_share: 0.0,
                ..SearchConfig::open(8, 1)
            },
            SearchConfig {
                max_candidates: 0,
                ..SearchConfig::open(8, 1)
            },
            SearchConfig {
                noise_floor_sds: Some(f64::NAN),
                ..SearchConfig::open(8, 1)
            },
            SearchConfig {
                noise_floor_sds: Some(-1.0),
                ..SearchConfig::open(8, 1)
            },
        ] {
            let err = run(
                &config,
                &dp(false),
                &mut plaintext(vec![]),
                &mut acc,
                0,
                &[],
            );
            assert!(
                matches!(err, Err(SearchError::InvalidConfig(_))),
                "{config:?}"
            );
        }
    }

    #[test]
    fn the_candidate_limit_stops_a_runaway_walk() {
        let mut acc = Accountant::new(&dp(false)).expect("valid");
        let config = SearchConfig {
            max_candidates: 4,
            ..SearchConfig::open(8, 0)
        };
        let err = run(
            &config,
            &dp(false),
            &mut plaintext(reports()),
            &mut acc,
            0,
            &[],
        )
        .expect_err("threshold 0 keeps everything");
        assert!(matches!(err, SearchError::TooManyCandidates { .. }));
    }

    #[test]
    fn the_noise_floor_keeps_a_noisy_walk_small() {
        // Threshold 1 against noise of sd ~ 45: without the floor most empty prefixes survive.
        let noisy = DpConfig {
            rho_batch: 0.004,
            rho_day: 1.0,
            ..dp(true)
        };
        let config = SearchConfig {
            max_candidates: 4096,
            ..SearchConfig::open(8, 1)
        };
        let mut acc = Accountant::new(&noisy).expect("valid");
        let out =
            run(&config, &noisy, &mut plaintext(reports()), &mut acc, 0, &[]).expect("bounded");
        assert!(
            out.levels.iter().all(|l| l.candidates <= 16),
            "{:?}",
            out.levels
        );
    }

    #[test]
    fn aggregators_can_recompute_every_release_noise() {
        let mut acc = Accountant::new(&dp(true)).expect("valid");
        let config = SearchConfig {
            stride: 4,
            ..SearchConfig::open(8, 1)
        };
        struct Check<'a>(PlaintextAggregator<ChaCha20Rng>, &'a SearchConfig, DpConfig);
        impl LevelAggregator for Check<'_> {
            type Error = PlaintextError;
            fn aggregate(&mut self, q: &LevelQuery) -> Result<Vec<i64>, PlaintextError> {
                let own = self.1.release_noise(&self.2, q.level, q.prefixes.len());
                assert_eq!(own, Ok(q.noise));
                self.0.aggregate(q)
            }
        }
        let mut check = Check(plaintext(reports()), &config, dp(true));
        run(&config, &dp(true), &mut check, &mut acc, 0, &[]).expect("search");
        assert_eq!(
            config.release_noise(&dp(true), 2, 16),
            Err(DpError::UnplannedRelease { level: 2 })
        );
        assert_eq!(config.release_noise(&dp(false), 7, 16), Ok(None));
    }

    #[test]
    fn a_short_answer_from_the_aggregator_is_an_error() {
        struct Short;
        impl LevelAggregator for Short {
            type Error = PlaintextError;
            fn aggregate(&mut self, _: &LevelQuery) -> Result<Vec<i64>, PlaintextError> {
                Ok(vec![1])
            }
        }
        let mut acc = Accountant::new(&dp(false)).expect("valid");
        let err = run(
            &SearchConfig::registry(8),
            &dp(false),
            &mut Short,
            &mut acc,
            0,
            &[1, 2],
        )
        .expect_err("one count for two candidates");
        assert!(matches!(
            err,
            SearchError::CountMismatch {
                expected: 2,
                got: 1
            }
        ));
    }
}
