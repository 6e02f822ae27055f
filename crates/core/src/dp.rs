//! Differential privacy for released counts: an exact discrete Gaussian sampler and a zCDP
//! accountant (DESIGN.md sections 3, step 6, and 4).
//!
//! Every number the collector learns is the sum of the true count and the noise of *both*
//! aggregators, each drawing independently from the discrete Gaussian `N_Z(0, sigma^2)` and
//! adding it to its aggregate share before encrypting that share to the collector.
//!
//! - [`sampler`]: exact sampling after Canonne, Kamath and Steinke, "The Discrete Gaussian for
//!   Differential Privacy" (NeurIPS 2020, arXiv:2004.00010), algorithms 1 to 3. The sampling
//!   path uses integer and rational arithmetic only, so no floating-point rounding can leak the
//!   noiseless value (the attack of Mironov, CCS 2012).
//! - [`accountant`]: the privacy cost of one release (zero-concentrated DP, `rho`), the noise
//!   scale that meets a per-release `rho`, the budget kept per batch and per person-day, and the
//!   conversion of `rho` to `(epsilon, delta)`.
//!
//! Floating point appears in accounting only (how much noise, how much budget), never in
//! drawing a sample; where accounting rounds, it rounds towards more noise.

pub mod accountant;
pub mod sampler;

pub use accountant::{
    Accountant, DpConfig, ReleaseNoise, epsilon_for_rho, release_rho, rho_for_epsilon,
};
pub use sampler::{DiscreteGaussian, LaplaceShare, Sigma2};

/// Errors of the differential-privacy module.
#[derive(Debug, Clone, PartialEq, thiserror::Error)]
#[non_exhaustive]
pub enum DpError {
    /// A noise scale was zero or had a zero denominator.
    #[error("invalid noise scale sigma^2 = {num}/{den}: both must be positive")]
    InvalidSigma2 {
        /// Numerator.
        num: u64,
        /// Denominator.
        den: u64,
    },
    /// A privacy parameter was not a finite positive number (or delta not in (0, 1)).
    #[error("invalid privacy parameter {name} = {value}")]
    InvalidParameter {
        /// The parameter's name (`rho_batch`, `delta`, ...).
        name: &'static str,
        /// Its value.
        value: f64,
    },
    /// The noise scale needed for the requested `rho` does not fit the sampler's range.
    #[error("no representable noise scale meets rho = {rho} at sensitivity {sensitivity}")]
    NoiseOutOfRange {
        /// The requested cost.
        rho: f64,
        /// The sensitivity.
        sensitivity: u32,
    },
    /// A release was asked for at a level the task's search plan never releases.
    #[error("no release is planned at level {level}")]
    UnplannedRelease {
        /// The level asked for.
        level: u32,
    },
    /// Releasing would exceed the batch's budget.
    #[error(
        "batch budget exhausted for window {window}: spent {spent}, requested {requested}, budget {budget} (rho)"
    )]
    BatchBudgetExceeded {
        /// The batch's window index.
        window: u64,
        /// Already spent on this batch.
        spent: f64,
        /// The refused release's cost.
        requested: f64,
        /// The batch budget.
        budget: f64,
    },
    /// Releasing would exceed the person-level budget of the day the batch belongs to.
    #[error(
        "daily budget exhausted for day {day}: spent {spent}, requested {requested}, budget {budget} (rho)"
    )]
    DayBudgetExceeded {
        /// The day index (window index divided by windows per day).
        day: u64,
        /// Already spent on that day.
        spent: f64,
        /// The refused release's cost.
        requested: f64,
        /// The daily budget.
        budget: f64,
    },
}
