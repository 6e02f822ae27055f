//! `hotspot bench accuracy --expected`: precision and recall averaged over the noise instead
//! of drawn once, for registry mode, so that a figure does not depend on the luck of one
//! seed; and the same for the best mechanism any epsilon-DP release could use.
//!
//! For every registered venue and searched hour the released count is `c + Z`, with `c` the
//! true count and `Z` the noise; the hour alerts when `c + Z` reaches the venue's threshold
//! `T` (the smallest count the task's rules alert at). So the hour alerts with probability
//! `P(Z >= T - c)`, and the expected number of true and false alerts is a sum of such tails
//! over the hours that truly alert and those that do not. Precision and recall are printed as
//! the ratios of those expectations.
//!
//! Three rows per epsilon:
//!
//! - `gaussian`: the task's mechanism, the sum of both aggregators' discrete Gaussians at the
//!   scale the search charges (docs/privacy.md section 4);
//! - `gaussian+k`: the same release with the alert rule moved `k` people up (or down), which
//!   is post-processing and costs no privacy: the margin `k` that balances precision and
//!   recall best;
//! - `laplace`: one discrete Laplace variable of scale `N / epsilon` (pure epsilon-DP for a
//!   batch in which one person holds at most `N` reports). For one count released under
//!   epsilon-DP this is the mechanism no other beats for any post-processed use (Ghosh,
//!   Roughgarden and Sundararajan, "Universally Utility-Maximizing Privacy Mechanisms",
//!   STOC 2009), so its row is a ceiling for every alert rule that judges an hour by its count.
//!   It is not what the aggregators add: its daily cost composes to `24 * epsilon`, against
//!   the Gaussian's much smaller daily epsilon at the same delta (docs/privacy.md section 6).

use std::collections::HashMap;

use hotspot_core::city::Batches;
use hotspot_core::rules::{Rules, VenueInfo};

/// Precision and recall in expectation over the noise.
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct Expected {
    /// Expected true alerts over expected released alerts.
    pub precision: f64,
    /// Expected true alerts over true alerts.
    pub recall: f64,
}

/// A symmetric noise distribution on the integers, kept as its tail `P(Z >= v)` over a range
/// outside which it is negligible (below `1e-15` in total).
#[derive(Clone, Debug)]
pub struct Noise {
    /// `tail[i] = P(Z >= i - radius)`.
    tail: Vec<f64>,
    radius: i64,
}

impl Noise {
    /// From unnormalised weights at `-radius ..= radius`.
    fn from_weights(weights: Vec<f64>, radius: i64) -> Self {
        let total: f64 = weights.iter().sum();
        let mut tail = vec![0.0; weights.len()];
        let mut acc = 0.0;
        for (i, w) in weights.iter().enumerate().rev() {
            acc += w / total;
            tail[i] = acc;
        }
        Self { tail, radius }
    }

    /// The sum of two independent discrete Gaussians `N_Z(0, sigma2)` (one per aggregator).
    pub fn two_gaussians(sigma2: f64) -> Self {
        let r = (12.0 * sigma2.sqrt()).ceil() as i64 + 4;
        let one: Vec<f64> = (-r..=r)
            .map(|x| (-((x * x) as f64) / (2.0 * sigma2)).exp())
            .collect();
        let mut sum = vec![0.0; one.len() * 2 - 1];
        for (i, a) in one.iter().enumerate() {
            for (j, b) in one.iter().enumerate() {
                sum[i + j] += a * b;
            }
        }
        Self::from_weights(sum, 2 * r)
    }

    /// The discrete Laplace with mass proportional to `exp(-epsilon |x| / sensitivity)`.
    pub fn laplace(epsilon: f64, sensitivity: u32) -> Self {
        let rate = epsilon / f64::from(sensitivity);
        let r = (40.0 / rate).ceil() as i64 + 4;
        let weights = (-r..=r).map(|x| (-rate * x.abs() as f64).exp()).collect();
        Self::from_weights(weights, r)
    }

    /// `P(Z >= v)`.
    pub fn at_least(&self, v: i64) -> f64 {
        let i = v + self.radius;
        if i <= 0 {
            1.0
        } else {
            usize::try_from(i)
                .ok()
                .and_then(|i| self.tail.get(i))
                .copied()
                .unwrap_or(0.0)
        }
    }
}

/// One searched venue-hour: its true count, the count from which it alerts (`None`: never),
/// and whether it truly alerts.
#[derive(Clone, Copy, Debug)]
pub struct Cell {
    count: i64,
    threshold: Option<i64>,
    alerts: bool,
}

/// Every registered venue in every window of `windows`: the cells a registry search releases.
pub fn cells(
    rules: &Rules,
    directory: &HashMap<u64, VenueInfo>,
    registry: &[u64],
    batches: &Batches,
    windows: &[u64],
) -> Vec<Cell> {
    let thresholds: Vec<(u64, Option<i64>)> = registry
        .iter()
        .map(|&code| {
            let threshold = rules.alert_threshold(code, directory.get(&code));
            (
                code,
                threshold.map(|t| i64::try_from(t).unwrap_or(i64::MAX)),
            )
        })
        .collect();
    let mut out = Vec::with_capacity(thresholds.len() * windows.len());
    for &window in windows {
        for &(code, threshold) in &thresholds {
            out.push(Cell {
                count: i64::try_from(batches.count(code, window)).unwrap_or(i64::MAX),
                threshold,
                alerts: batches.alerts.contains_key(&(code, window)),
            });
        }
    }
    out
}

/// Expected precision and recall when an hour alerts at `threshold + margin`.
pub fn expected(cells: &[Cell], noise: &Noise, margin: i64) -> Expected {
    let (mut hits, mut false_alerts, mut truth) = (0.0, 0.0, 0usize);
    for cell in cells {
        let p = cell
            .threshold
            .map_or(0.0, |t| noise.at_least(t + margin - cell.count));
        if cell.alerts {
            hits += p;
            truth += 1;
        } else {
            false_alerts += p;
        }
    }
    let ratio = |num: f64, den: f64| if den > 0.0 { num / den } else { 1.0 };
    Expected {
        precision: ratio(hits, hits + false_alerts),
        recall: ratio(hits, truth as f64),
    }
}

/// The margin in `-radius ..= radius` that maximises the smaller of precision and recall.
pub fn best_margin(cells: &[Cell], noise: &Noise, radius: i64) -> (i64, Expected) {
    (-radius..=radius)
        .map(|k| (k, expected(cells, noise, k)))
        .max_by(|a, b| {
            let worst = |e: &Expected| e.precision.min(e.recall);
            worst(&a.1).total_cmp(&worst(&b.1))
        })
        .unwrap_or((0, expected(cells, noise, 0)))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn tails_run_from_one_to_zero_and_are_symmetric() {
        for noise in [Noise::two_gaussians(16.7), Noise::laplace(1.0, 3)] {
            assert!((noise.at_least(-10_000) - 1.0).abs() < 1e-12);
            assert!(noise.at_least(10_000) < 1e-15);
            for v in 1..20 {
                // P(Z >= v) = P(Z <= -v) = 1 - P(Z >= -v + 1).
                let lhs = noise.at_least(v);
                let rhs = 1.0 - noise.at_least(-v + 1);
                assert!((lhs - rhs).abs() < 1e-12, "{v}: {lhs} vs {rhs}");
            }
        }
    }

    #[test]
    fn laplace_tail_matches_its_closed_form() {
        // P(Z >= v) for v >= 1 is q^v / (1 + q) with q = exp(-rate).
        let q: f64 = (-0.5f64).exp();
        let noise = Noise::laplace(1.0, 2);
        for v in 1..10 {
            let exact = q.powi(v as i32) / (1.0 + q);
            assert!((noise.at_least(v) - exact).abs() < 1e-12, "{v}");
        }
    }

    #[test]
    fn two_gaussians_have_twice_the_variance() {
        let noise = Noise::two_gaussians(9.0);
        let var: f64 = (-200i64..=200)
            .map(|x| {
                let mass = noise.at_least(x) - noise.at_least(x + 1);
                mass * (x * x) as f64
            })
            .sum();
        assert!((var - 18.0).abs() < 1e-6, "{var}");
    }

    fn cell(count: i64, threshold: i64) -> Cell {
        Cell {
            count,
            threshold: Some(threshold),
            alerts: count >= threshold,
        }
    }

    #[test]
    fn noise_that_vanishes_gives_the_ground_truth() {
        let cells = [cell(10, 10), cell(9, 10), cell(50, 40), cell(0, 40)];
        let e = expected(&cells, &Noise::laplace(60.0, 1), 0);
        assert!(e.precision > 1.0 - 1e-9 && e.recall > 1.0 - 1e-9, "{e:?}");
    }

    #[test]
    fn a_cell_at_its_threshold_alerts_about_half_the_time_or_more() {
        // P(Z >= 0) = 1/2 + P(Z = 0)/2 for a symmetric Z.
        let noise = Noise::two_gaussians(16.7);
        let e = expected(&[cell(40, 40)], &noise, 0);
        assert!(e.recall > 0.5 && e.recall < 0.6, "{e:?}");
        // A raised margin lowers recall and never raises it.
        let raised = expected(&[cell(40, 40)], &noise, 3);
        assert!(raised.recall < e.recall);
    }

    #[test]
    fn best_margin_balances_a_crowd_below_the_threshold() {
        // Many hours just below the threshold and a few at it: raising the bar helps precision.
        let mut cells: Vec<Cell> = (0..50).map(|_| cell(37, 40)).collect();
        cells.extend((0..10).map(|_| cell(46, 40)));
        let noise = Noise::two_gaussians(16.7);
        let (k, best) = best_margin(&cells, &noise, 15);
        let plain = expected(&cells, &noise, 0);
        assert!(k > 0, "{k}");
        assert!(best.precision.min(best.recall) >= plain.precision.min(plain.recall));
    }

    #[test]
    fn thresholds_come_from_the_rules() {
        let rules = Rules::default_for(hotspot_core::task::TaskKind::Crowding);
        let venue = VenueInfo {
            category: hotspot_core::rules::VenueCategory::Bar,
            capacity: 100,
        };
        let cells = cells(
            &rules,
            &HashMap::from([(5, venue), (0, venue)]),
            &[5, 0],
            &Batches {
                reports: Vec::new(),
                counts: Default::default(),
                alerts: Default::default(),
            },
            &[0],
        );
        assert_eq!(cells[0].threshold, Some(80));
        // The dummy code never alerts.
        assert_eq!(cells[1].threshold, None);
    }
}
