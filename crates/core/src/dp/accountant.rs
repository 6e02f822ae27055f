//! Privacy accounting in zero-concentrated differential privacy (zCDP; Bun and Steinke,
//! TCC 2016).
//!
//! **What one release costs.** A release is one aggregation level of one batch: a vector of
//! `d` counts (one per candidate prefix), each the true count plus the noise of the two
//! aggregators, each an independent `N_Z(0, sigma^2)`. One person holds at most `N` reports in
//! a batch (the credential limit per window), so adding or removing a person moves the count
//! vector by at most `N` in L2 norm (all `N` reports on one candidate; spread over several
//! candidates the L2 norm is smaller). By Kairouz, Liu and Steinke, "The Distributed Discrete
//! Gaussian Mechanism for Federated Learning" (ICML 2021, theorem 1) with `n = 2` summands, the
//! released vector is `rho`-zCDP with
//!
//! ```text
//! rho = N^2 / (2 * 2 * sigma^2) + tau * d / 4,   tau = 10 * exp(-pi^2 * sigma^2)
//! ```
//!
//! (the first term is that of one Gaussian of variance `2 sigma^2`, what is actually released;
//! the second is the price of the sum of two discrete Gaussians not being one, negligible for
//! `sigma >= 2`). This is [`release_rho`]. If the collector colluded with one aggregator and so
//! knew that aggregator's noise, only the other's would remain: the release would then be
//! `N^2 / (2 sigma^2)`-zCDP, twice the charged cost; docs/privacy.md says so.
//!
//! **Budgets.** zCDP composes additively. The [`Accountant`] charges every release to its batch
//! (window) and to the day the window belongs to, because one person may have reports in every
//! batch of a day; it refuses a release that would take either past its budget, with a typed
//! error, and records nothing for a refused release.
//!
//! **Conversion.** `rho`-zCDP implies `(epsilon, delta)`-DP for every `delta > 0`;
//! [`epsilon_for_rho`] uses the conversion of Canonne, Kamath and Steinke (arXiv:2004.00010,
//! corollary 13), which is tighter than `rho + 2 sqrt(rho ln(1/delta))` (Bun and Steinke,
//! proposition 1.3); it returns the smaller of the two, both being valid.

use std::collections::BTreeMap;
use std::f64::consts::PI;

use super::{DpError, Sigma2};

/// The number of aggregators adding independent noise to every release.
pub const AGGREGATORS: u32 = 2;

/// Denominator of the rational noise scales this module produces (`sigma^2 = k / 2^20`).
const SIGMA2_DEN: u64 = 1 << 20;

/// Relative slack allowed when comparing floating-point budget sums, so that a batch budget
/// split into level shares that sum to it up to rounding can be spent completely. It is many
/// orders of magnitude below any budget difference that matters.
const BUDGET_SLACK: f64 = 1e-12;

/// The differential-privacy parameters of a task.
#[derive(Clone, Debug, PartialEq)]
pub struct DpConfig {
    /// The credential limit `N`: the most reports one person can have in one batch, which is
    /// the L2 sensitivity of a released count vector.
    pub sensitivity: u32,
    /// zCDP budget of one batch (all its released levels together).
    pub rho_batch: f64,
    /// zCDP budget per person per day (all batches of a day together).
    pub rho_day: f64,
    /// Windows (batches) per day: window index `w` belongs to day `w / windows_per_day`.
    pub windows_per_day: u32,
    /// Whether noise is added at all. Off only for tests: releases then carry no guarantee.
    pub noise: bool,
}

impl DpConfig {
    /// The windows of the day that `window` belongs to: the part of a task's release record
    /// that decides whether a release of `window` fits its budgets.
    pub fn day_windows(&self, window: u64) -> std::ops::Range<u64> {
        let per_day = u64::from(self.windows_per_day.max(1));
        let start = window - window % per_day;
        start..start.saturating_add(per_day)
    }

    /// Checks every field.
    pub fn validate(&self) -> Result<(), DpError> {
        check_positive("rho_batch", self.rho_batch)?;
        check_positive("rho_day", self.rho_day)?;
        if self.sensitivity == 0 {
            return Err(DpError::InvalidParameter {
                name: "sensitivity",
                value: 0.0,
            });
        }
        if self.windows_per_day == 0 {
            return Err(DpError::InvalidParameter {
                name: "windows_per_day",
                value: 0.0,
            });
        }
        Ok(())
    }
}

/// The noise of one release: the scale each aggregator draws from, and what it costs.
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct ReleaseNoise {
    /// Each aggregator adds independent `N_Z(0, sigma2)` noise to every entry.
    pub sigma2: Sigma2,
    /// The zCDP cost of the release ([`release_rho`] at this scale).
    pub rho: f64,
}

impl ReleaseNoise {
    /// The smallest noise scale (a multiple of `2^-20`) whose release of `dims` counts at
    /// sensitivity `sensitivity` costs at most `rho`.
    pub fn for_rho(sensitivity: u32, rho: f64, dims: usize) -> Result<Self, DpError> {
        check_positive("rho", rho)?;
        let out_of_range = DpError::NoiseOutOfRange { rho, sensitivity };
        let n = f64::from(sensitivity);
        let mut sigma2 = n * n / (2.0 * f64::from(AGGREGATORS) * rho);

        // Grow the scale until the rounded rational meets the target including the tau term.
        for _ in 0..1000 {
            let scaled = (sigma2 * SIGMA2_DEN as f64).ceil();
            if !scaled.is_finite() || scaled >= 2f64.powi(62) {
                return Err(out_of_range);
            }
            let s2 = Sigma2::new((scaled as u64).max(1), SIGMA2_DEN)?;
            let cost = release_rho(sensitivity, s2, dims);
            if cost <= rho {
                return Ok(Self {
                    sigma2: s2,
                    rho: cost,
                });
            }
            sigma2 *= 1.02;
        }
        Err(out_of_range)
    }
}

/// The zCDP cost of releasing `dims` counts at sensitivity `sensitivity`, each carrying the
/// noise of two aggregators at scale `sigma2` (see the module docs).
pub fn release_rho(sensitivity: u32, sigma2: Sigma2, dims: usize) -> f64 {
    let s2 = sigma2.to_f64();
    let n = f64::from(sensitivity);
    let gaussian = n * n / (2.0 * f64::from(AGGREGATORS) * s2);
    // tau = 10 * sum_{k=1}^{n-1} exp(-2 pi^2 sigma^2 k / (k + 1)); one term for n = 2.
    let tau = 10.0 * (-PI * PI * s2).exp();
    gaussian + tau * dims as f64 / 4.0
}

/// The smallest `epsilon` such that `rho`-zCDP implies `(epsilon, delta)`-DP, by the better of
/// CKS20 corollary 13 (optimised over its order `alpha`) and Bun-Steinke proposition 1.3.
pub fn epsilon_for_rho(rho: f64, delta: f64) -> Result<f64, DpError> {
    if !(rho.is_finite() && rho >= 0.0) {
        return Err(DpError::InvalidParameter {
            name: "rho",
            value: rho,
        });
    }
    if !(delta > 0.0 && delta < 1.0) {
        return Err(DpError::InvalidParameter {
            name: "delta",
            value: delta,
        });
    }
    if rho == 0.0 {
        return Ok(0.0);
    }
    let log_inv_delta = -delta.ln();
    let classic = rho + 2.0 * (rho * log_inv_delta).sqrt();

    // epsilon(alpha) = alpha rho + (ln(1/delta) - ln(alpha - 1) + alpha ln(1 - 1/alpha)) / (alpha - 1)
    let eps_at = |alpha: f64| {
        alpha * rho
            + (log_inv_delta - (alpha - 1.0).ln() + alpha * (1.0 - 1.0 / alpha).ln())
                / (alpha - 1.0)
    };
    // A geometric grid over alpha - 1 in [1e-6, 1e7], then refinement around the best point.
    let mut best = (f64::INFINITY, 1.0);
    for i in 0..=1300 {
        let alpha = 1.0 + 10f64.powf(-6.0 + i as f64 * 0.01);
        let e = eps_at(alpha);
        if e < best.0 {
            best = (e, alpha);
        }
    }
    let (mut lo, mut hi) = (1.0 + (best.1 - 1.0) / 1.03, 1.0 + (best.1 - 1.0) * 1.03);
    for _ in 0..100 {
        let (m1, m2) = (lo + (hi - lo) / 3.0, hi - (hi - lo) / 3.0);
        if eps_at(m1) < eps_at(m2) {
            hi = m2
        } else {
            lo = m1
        }
    }
    let refined = eps_at((lo + hi) / 2.0);
    Ok(classic.min(best.0).min(refined))
}

/// The largest `rho` whose [`epsilon_for_rho`] at `delta` is at most `epsilon`.
pub fn rho_for_epsilon(epsilon: f64, delta: f64) -> Result<f64, DpError> {
    check_positive("epsilon", epsilon)?;
    // epsilon_for_rho is increasing in rho and at least rho: bisect on [0, epsilon].
    let (mut lo, mut hi) = (0.0f64, epsilon);
    for _ in 0..200 {
        let mid = (lo + hi) / 2.0;
        if epsilon_for_rho(mid, delta)? <= epsilon {
            lo = mid
        } else {
            hi = mid
        }
    }
    Ok(lo)
}

/// Keeps the privacy budget spent per batch and per day; see the module docs.
#[derive(Clone, Debug)]
pub struct Accountant {
    rho_batch: f64,
    rho_day: f64,
    windows_per_day: u32,
    batches: BTreeMap<u64, f64>,
    days: BTreeMap<u64, f64>,
}

impl Accountant {
    /// An accountant with nothing spent, for the budgets of `config`.
    pub fn new(config: &DpConfig) -> Result<Self, DpError> {
        config.validate()?;
        Ok(Self {
            rho_batch: config.rho_batch,
            rho_day: config.rho_day,
            windows_per_day: config.windows_per_day,
            batches: BTreeMap::new(),
            days: BTreeMap::new(),
        })
    }

    /// Restores an accountant from stored charges `(window, rho)` (a server keeps every charge
    /// durably and rebuilds the accountant on start).
    pub fn restore(
        config: &DpConfig,
        charges: impl IntoIterator<Item = (u64, f64)>,
    ) -> Result<Self, DpError> {
        let mut accountant = Self::new(config)?;
        for (window, rho) in charges {
            check_positive("rho", rho)?;
            *accountant.batches.entry(window).or_default() += rho;
            *accountant
                .days
                .entry(accountant.day_of(window))
                .or_default() += rho;
        }
        Ok(accountant)
    }

    /// The day a window belongs to.
    pub fn day_of(&self, window: u64) -> u64 {
        window / u64::from(self.windows_per_day)
    }

    /// Budget already spent on the batch of `window`.
    pub fn spent_batch(&self, window: u64) -> f64 {
        self.batches.get(&window).copied().unwrap_or(0.0)
    }

    /// Budget already spent on the day of `window`.
    pub fn spent_day(&self, window: u64) -> f64 {
        self.days.get(&self.day_of(window)).copied().unwrap_or(0.0)
    }

    /// Budget left to the batch of `window`, accounting for its day as well.
    pub fn remaining(&self, window: u64) -> f64 {
        let batch = self.rho_batch - self.spent_batch(window);
        let day = self.rho_day - self.spent_day(window);
        batch.min(day).max(0.0)
    }

    /// Charges a release of cost `rho` to the batch of `window` and to its day, or refuses it
    /// (recording nothing) if either budget would be exceeded.
    pub fn charge(&mut self, window: u64, rho: f64) -> Result<(), DpError> {
        self.check(window, rho)?;
        *self.batches.entry(window).or_default() += rho;
        let day = self.day_of(window);
        *self.days.entry(day).or_default() += rho;
        Ok(())
    }

    /// Whether a release of cost `rho` on the batch of `window` would be accepted, recording
    /// nothing.
    pub fn check(&self, window: u64, rho: f64) -> Result<(), DpError> {
        check_positive("rho", rho)?;
        let spent = self.spent_batch(window);
        if spent + rho > self.rho_batch * (1.0 + BUDGET_SLACK) {
            return Err(DpError::BatchBudgetExceeded {
                window,
                spent,
                requested: rho,
                budget: self.rho_batch,
            });
        }
        let day = self.day_of(window);
        let spent_day = self.spent_day(window);
        if spent_day + rho > self.rho_day * (1.0 + BUDGET_SLACK) {
            return Err(DpError::DayBudgetExceeded {
                day,
                spent: spent_day,
                requested: rho,
                budget: self.rho_day,
            });
        }
        Ok(())
    }
}

fn check_positive(name: &'static str, value: f64) -> Result<(), DpError> {
    if value.is_finite() && value > 0.0 {
        Ok(())
    } else {
        Err(DpError::InvalidParameter { name, value })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn config() -> DpConfig {
        DpConfig {
            sensitivity: 2,
            rho_batch: 0.01,
            rho_day: 0.025,
            windows_per_day: 24,
            noise: true,
        }
    }

    #[test]
    fn a_day_is_its_windows() {
        let dp = config();
        let accountant = Accountant::new(&dp).expect("valid");
        assert_eq!(dp.day_windows(0), 0..24);
        assert_eq!(dp.day_windows(23), 0..24);
        assert_eq!(dp.day_windows(24), 24..48);
        for window in [0, 23, 24, 1000, 1 << 62] {
            let day = dp.day_windows(window);
            assert!(day.contains(&window));
            assert_eq!(day.end - day.start, 24);
            assert!(
                day.clone()
                    .all(|w| accountant.day_of(w) == accountant.day_of(window))
            );
        }
        // The last day of the counter ends at the counter's end rather than wrapping.
        assert_eq!(dp.day_windows(u64::MAX).end, u64::MAX);
    }

    #[test]
    fn noise_scale_meets_the_requested_rho_and_is_tight() {
        for (n, rho) in [(1u32, 0.01f64), (2, 0.0139), (4, 0.5)] {
            let noise = ReleaseNoise::for_rho(n, rho, 10_000).expect("in range");
            assert!(noise.rho <= rho);
            // Rounding the scale up to a multiple of 2^-20 costs almost nothing.
            assert!(noise.rho > rho * 0.999, "n={n} rho={rho}: {}", noise.rho);
            let ideal = f64::from(n * n) / (4.0 * rho);
            assert!(noise.sigma2.to_f64() >= ideal);
        }
    }

    #[test]
    fn tiny_noise_pays_the_tau_term() {
        let s2 = Sigma2::new(1, 4).expect("positive");
        let one = release_rho(1, s2, 1);
        let many = release_rho(1, s2, 1000);
        assert!(many > one && one > 1.0);
    }

    #[test]
    fn noise_scale_for_a_large_rho_grows_until_tau_fits() {
        let noise = ReleaseNoise::for_rho(1, 3.0, 10_000).expect("in range");
        assert!(noise.rho <= 3.0);
        assert!(noise.sigma2.to_f64() > 1.0 / 12.0);
    }

    #[test]
    fn noise_scale_rejects_bad_rho() {
        assert!(ReleaseNoise::for_rho(1, 0.0, 1).is_err());
        assert!(ReleaseNoise::for_rho(1, f64::NAN, 1).is_err());
        assert!(ReleaseNoise::for_rho(1, -1.0, 1).is_err());
        assert!(matches!(
            ReleaseNoise::for_rho(u32::MAX, 1e-30, 1),
            Err(DpError::NoiseOutOfRange { .. })
        ));
    }

    #[test]
    fn conversion_beats_the_classic_bound_and_inverts() {
        let rho = 0.0125;
        let eps = epsilon_for_rho(rho, 1e-9).expect("valid");
        let classic = rho + 2.0 * (rho * (1e9f64).ln()).sqrt();
        assert!(eps < classic && eps > 0.85, "{eps} vs {classic}");
        let back = rho_for_epsilon(eps, 1e-9).expect("valid");
        assert!((back - rho).abs() < 1e-9);
        assert_eq!(epsilon_for_rho(0.0, 1e-9), Ok(0.0));
        assert!(epsilon_for_rho(0.1, 0.0).is_err());
        assert!(epsilon_for_rho(0.1, 1.0).is_err());
        assert!(epsilon_for_rho(-0.1, 0.5).is_err());
    }

    #[test]
    fn epsilon_grows_with_rho_and_shrinks_with_delta() {
        let a = epsilon_for_rho(0.01, 1e-9).expect("valid");
        let b = epsilon_for_rho(0.02, 1e-9).expect("valid");
        let c = epsilon_for_rho(0.01, 1e-6).expect("valid");
        assert!(a < b && c < a);
    }

    #[test]
    fn accountant_refuses_a_release_over_the_batch_budget() {
        let mut acc = Accountant::new(&config()).expect("valid");
        acc.charge(5, 0.006).expect("within budget");
        let err = acc.charge(5, 0.005).expect_err("over the batch budget");
        assert!(matches!(
            err,
            DpError::BatchBudgetExceeded { window: 5, .. }
        ));
        // Nothing was recorded for the refused release; the rest still fits.
        assert_eq!(acc.spent_batch(5), 0.006);
        acc.charge(5, 0.004).expect("exactly the rest");
        assert!(acc.remaining(5) < 1e-12);
    }

    #[test]
    fn accountant_refuses_a_release_over_the_daily_budget() {
        let mut acc = Accountant::new(&config()).expect("valid");
        acc.charge(0, 0.01).expect("fits");
        acc.charge(1, 0.01).expect("fits");
        let err = acc.charge(2, 0.01).expect_err("day 0 is spent");
        assert!(matches!(err, DpError::DayBudgetExceeded { day: 0, .. }));
        assert_eq!(acc.spent_batch(2), 0.0);
        // Window 24 starts day 1, which has its own budget.
        acc.charge(24, 0.01).expect("a new day");
    }

    #[test]
    fn accountant_restores_its_charges() {
        let acc =
            Accountant::restore(&config(), [(3, 0.004), (3, 0.004), (4, 0.01)]).expect("valid");
        assert!((acc.spent_batch(3) - 0.008).abs() < 1e-15);
        assert!((acc.spent_day(4) - 0.018).abs() < 1e-15);
        assert!(Accountant::restore(&config(), [(3, -1.0)]).is_err());
    }

    #[test]
    fn config_rejects_each_bad_field() {
        let bad = [
            DpConfig {
                sensitivity: 0,
                ..config()
            },
            DpConfig {
                rho_batch: 0.0,
                ..config()
            },
            DpConfig {
                rho_day: f64::INFINITY,
                ..config()
            },
            DpConfig {
                windows_per_day: 0,
                ..config()
            },
        ];
        for c in bad {
            assert!(Accountant::new(&c).is_err(), "{c:?}");
        }
    }
}
