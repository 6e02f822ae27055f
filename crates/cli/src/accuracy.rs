//! `hotspot bench accuracy`: runs the search over a synthetic city's day with noise on and
//! measures how well the released alerts match the ground truth.
//!
//! For every hour of the day the city's reports form one batch; the search (registry or open
//! mode) runs over it with the task's noise, the rules turn the noisy counts into alerts, and
//! the alert cells (venue, hour) are compared with the true ones: precision is the share of
//! released alerts that are true, recall the share of true alerts released. The last line is
//!
//! ```text
//! precision=<p> recall=<r> epsilon=<e> delta=<d> epsilon_day=<e'>
//! ```
//!
//! with `epsilon` per person for one batch and `epsilon_day` per person over the day's
//! batches, both at `delta`. `--sweep` prints precision and recall against epsilon instead of
//! one run, so that an authority can choose its trade-off.
//!
//! The aggregation runs in process, by default over **plaintext** counts
//! ([`hotspot_core::search::PlaintextAggregator`]) with exactly the noise the two aggregators
//! add: accuracy depends only on the noise and the search, not on the cryptography, which
//! computes the same counts. `--engine vdaf` runs the Poplar1 engine instead (every report
//! sharded, then prepared and verified by both aggregators at every level), which is what the
//! search time of a real deployment is made of.

use std::collections::{BTreeSet, HashMap};
use std::time::{Duration, Instant};

use anyhow::Context;
use clap::{Args, ValueEnum};
use hotspot_core::city::{Batches, City, CityConfig, WINDOWS};
use hotspot_core::dp::{Accountant, DpConfig, LaplaceShare, epsilon_for_rho, rho_for_epsilon};
use hotspot_core::rules::{Rules, VenueInfo};
use hotspot_core::search::engine::VdafAggregator;
use hotspot_core::search::{self, PlaintextAggregator, SearchConfig};
use hotspot_core::task::{SearchMode, TaskKind};
use hotspot_vdaf::VERIFY_KEY_SIZE;
use rand::SeedableRng;
use rand::rngs::ChaCha20Rng;

pub mod expected;

/// Arguments of `hotspot bench accuracy`.
#[derive(Debug, Clone, Args)]
pub struct AccuracyArgs {
    /// Seed of the city and of the noise.
    #[arg(long, default_value_t = 1)]
    pub seed: u64,
    /// Search mode.
    #[arg(long, value_enum, default_value_t = ModeArg::Registry)]
    pub mode: ModeArg,
    /// Task kind.
    #[arg(long, value_enum, default_value_t = TaskArg::Crowding)]
    pub task: TaskArg,
    /// City size.
    #[arg(long, value_enum, default_value_t = CitySize::Ordinary)]
    pub city: CitySize,
    /// Privacy loss per person per batch.
    #[arg(long, default_value_t = 1.0)]
    pub epsilon: f64,
    /// Failure probability of the (epsilon, delta) guarantee.
    #[arg(long, default_value_t = 1e-9)]
    pub delta: f64,
    /// Print precision and recall against epsilon instead of one run.
    #[arg(long)]
    pub sweep: bool,
    /// Switch the noise off (the alerts then equal the ground truth).
    #[arg(long)]
    pub no_noise: bool,
    /// What computes the counts: the Poplar1 engine (both aggregators in process) or plaintext
    /// counting with the same noise.
    #[arg(long, value_enum, default_value_t = Engine::Plaintext)]
    pub engine: Engine,
    /// Open mode: tree levels descended per step (1 = both children of every kept prefix).
    /// Fewer steps spend the budget on fewer releases (less noise in each) at the price of
    /// more candidates per release (2^stride per kept prefix).
    #[arg(long, default_value_t = 8)]
    pub stride: u32,
    /// Only search these windows (hours), e.g. `--windows 12,19`; all 24 by default.
    #[arg(long, value_delimiter = ',')]
    pub windows: Vec<u64>,
    /// Registry mode: also print precision and recall in expectation over the noise (no
    /// draw), with the alert margin that balances them, and the same for the discrete
    /// Laplace, the best any epsilon-DP release of a count allows (see `expected`).
    #[arg(long)]
    pub expected: bool,
    /// The noise: the aggregators' discrete Gaussian, or the discrete Laplace split between
    /// them (registry mode, plaintext counts), the alternative docs/privacy.md section 6
    /// weighs: pure epsilon per batch, epsilon times the batches per day.
    #[arg(long, value_enum, default_value_t = Mechanism::Gaussian)]
    pub mechanism: Mechanism,
}

/// `--mechanism`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
pub enum Mechanism {
    /// Each aggregator adds a discrete Gaussian (zCDP; what the service does).
    Gaussian,
    /// Each aggregator adds a difference of two Polya variables, so that the released count
    /// carries exactly one discrete Laplace (pure epsilon-DP per batch).
    Laplace,
}

/// `--engine`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
pub enum Engine {
    /// Plaintext counts with the aggregators' noise.
    Plaintext,
    /// The Poplar1 engine: reports sharded, prepared and verified by both aggregators.
    Vdaf,
}

/// `--mode`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
pub enum ModeArg {
    /// One leaf-level aggregation over the registered venue codes.
    Registry,
    /// The prefix walk.
    Open,
}

/// `--task`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
pub enum TaskArg {
    /// Occupancy against capacity.
    Crowding,
    /// Positive presences against category levels.
    Outbreak,
}

/// `--city`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
pub enum CitySize {
    /// 300 visitors, 40 venues.
    Tiny,
    /// 20,000 visitors, 2,000 venues.
    Ordinary,
    /// 100,000 visitors, 10,000 venues.
    Large,
}

/// The default task of a kind: its rules and credential limit (the sensitivity).
#[derive(Debug, Clone)]
pub struct TaskSetup {
    /// Crowding or outbreak.
    pub kind: TaskKind,
    /// Alert rules.
    pub rules: Rules,
    /// Credential limit per window (outbreak: also the padded reports per window).
    pub limit: u32,
}

impl TaskSetup {
    /// Crowding: the task's default rule (alert at 80 % of capacity and at least 40
    /// people); one report per person and hour.
    pub fn crowding() -> anyhow::Result<Self> {
        Ok(Self {
            kind: TaskKind::Crowding,
            rules: Rules::default_for(TaskKind::Crowding),
            limit: 1,
        })
    }

    /// Outbreak: the default category levels; uploads padded to 3 reports per hour.
    pub fn outbreak() -> Self {
        Self {
            kind: TaskKind::Outbreak,
            rules: Rules::default_for(TaskKind::Outbreak),
            limit: 3,
        }
    }
}

/// The outcome of one accuracy run.
#[derive(Debug, Clone, PartialEq)]
pub struct Score {
    /// Released alerts that are true, over released alerts (1 when none is released).
    pub precision: f64,
    /// True alerts released, over true alerts (1 when there is none).
    pub recall: f64,
    /// Number of true alert cells.
    pub true_alerts: usize,
    /// Number of released alert cells.
    pub released_alerts: usize,
    /// Largest zCDP cost charged to one batch.
    pub rho_batch: f64,
    /// zCDP cost charged to the day.
    pub rho_day: f64,
    /// Time spent in the searches.
    pub search_time: Duration,
    /// With the Laplace: pure epsilon per batch and per day (delta 0) instead of `rho`.
    pub pure: Option<(f64, f64)>,
}

/// The search configuration for a mode over a city (`stride` for open mode).
pub fn search_config(mode: SearchMode, bits: u32, threshold: u64, stride: u32) -> SearchConfig {
    match mode {
        SearchMode::Registry => SearchConfig::registry(bits),
        SearchMode::Open => SearchConfig {
            stride,
            ..SearchConfig::open(bits, threshold)
        },
    }
}

/// How a bench run computes and which windows it searches.
#[derive(Debug, Clone)]
pub struct RunOptions {
    /// Plaintext or the Poplar1 engine.
    pub engine: Engine,
    /// Windows to search (all when empty).
    pub windows: Vec<u64>,
    /// Seed of the noise (and of the clients' randomness with the engine).
    pub seed: u64,
}

/// Runs the search over every batch of `batches` and scores the alerts.
pub fn evaluate(
    city: &City,
    setup: &TaskSetup,
    batches: &Batches,
    search: &SearchConfig,
    dp: &DpConfig,
    options: &RunOptions,
) -> anyhow::Result<Score> {
    let directory: HashMap<u64, VenueInfo> = city.directory();
    let registry = city.registry();
    let mut accountant = Accountant::new(dp)?;
    let mut released = BTreeSet::new();
    let mut rho_batch: f64 = 0.0;
    let mut search_time = Duration::ZERO;

    let windows = searched(&options.windows);
    for &window in &windows {
        // One batch: the hour's reports, with randomness streams of its own.
        let reports = batches
            .reports
            .get(window as usize)
            .with_context(|| format!("window {window} is not in the day"))?
            .clone();
        let stream = |k: u64| window_stream(options.seed, window, k);
        let (outcome, elapsed) = match options.engine {
            Engine::Plaintext => {
                let mut aggregator = PlaintextAggregator::new(city.config.bits, reports, stream(0));
                timed(|| {
                    search::run(
                        search,
                        dp,
                        &mut aggregator,
                        &mut accountant,
                        window,
                        &registry,
                    )
                    .map_err(anyhow::Error::from)
                })
            }
            Engine::Vdaf => {
                let ctx = format!("accuracy/{window}");
                let mut aggregator = VdafAggregator::shard(
                    city.config.bits,
                    ctx.as_bytes(),
                    [7; VERIFY_KEY_SIZE],
                    &reports,
                    &mut stream(1),
                    [stream(2), stream(3)],
                )?;
                timed(|| {
                    search::run(
                        search,
                        dp,
                        &mut aggregator,
                        &mut accountant,
                        window,
                        &registry,
                    )
                    .map_err(anyhow::Error::from)
                })
            }
        };
        let outcome = outcome.with_context(|| format!("search of window {window}"))?;
        search_time += elapsed;

        rho_batch = rho_batch.max(outcome.rho);
        for alert in outcome.alerts(&setup.rules, &directory) {
            released.insert((alert.code, alert.window));
        }
    }

    let (precision, recall, true_alerts) = compare(&released, batches, &windows);
    Ok(Score {
        precision,
        recall,
        true_alerts,
        released_alerts: released.len(),
        rho_batch,
        rho_day: accountant.spent_day(0),
        search_time,
        pure: None,
    })
}

/// Precision and recall of the `released` alert cells against the true ones of `windows`,
/// and the number of true ones (each ratio is 1 when its denominator is 0).
fn compare(
    released: &BTreeSet<(u64, u64)>,
    batches: &Batches,
    windows: &[u64],
) -> (f64, f64, usize) {
    let truth: BTreeSet<(u64, u64)> = (batches.alerts.keys())
        .filter(|(_, w)| windows.contains(w))
        .copied()
        .collect();
    let hits = released.intersection(&truth).count();
    let ratio = |num: usize, den: usize| {
        if den == 0 {
            1.0
        } else {
            num as f64 / den as f64
        }
    };
    (
        ratio(hits, released.len()),
        ratio(hits, truth.len()),
        truth.len(),
    )
}

/// Randomness stream `k` of one window's batch, from the run's seed.
fn window_stream(seed: u64, window: u64, k: u64) -> ChaCha20Rng {
    let salt = window.wrapping_mul(0x9e37_79b9_7f4a_7c15) ^ k;
    ChaCha20Rng::seed_from_u64(seed ^ salt)
}

/// The windows to search: those listed, or every window of the day.
fn searched(listed: &[u64]) -> Vec<u64> {
    if listed.is_empty() {
        (0..WINDOWS).collect()
    } else {
        listed.to_vec()
    }
}

/// Runs `f` and measures how long it took.
fn timed<T>(f: impl FnOnce() -> T) -> (T, Duration) {
    let started = Instant::now();
    let out = f();
    (out, started.elapsed())
}

/// The DP configuration for `epsilon` per batch at `delta`, with a day budget covering every
/// batch of the day.
pub fn dp_config(limit: u32, epsilon: f64, delta: f64, noise: bool) -> anyhow::Result<DpConfig> {
    let rho_batch = rho_for_epsilon(epsilon, delta)?;
    Ok(DpConfig {
        sensitivity: limit,
        rho_batch,
        rho_day: rho_batch * WINDOWS as f64,
        windows_per_day: WINDOWS as u32,
        noise,
    })
}

/// One run at `epsilon`.
fn run_once(
    city: &City,
    setup: &TaskSetup,
    batches: &Batches,
    args: &AccuracyArgs,
    epsilon: f64,
) -> anyhow::Result<Score> {
    let mode = match args.mode {
        ModeArg::Registry => SearchMode::Registry,
        ModeArg::Open => SearchMode::Open,
    };
    let directory = city.directory();
    let threshold = setup.rules.min_threshold(directory.values());
    let search = search_config(mode, city.config.bits, threshold, args.stride);
    let dp = dp_config(setup.limit, epsilon, args.delta, !args.no_noise)?;
    let options = RunOptions {
        engine: args.engine,
        windows: args.windows.clone(),
        seed: args.seed,
    };
    if args.mechanism == Mechanism::Laplace {
        if mode != SearchMode::Registry || args.engine != Engine::Plaintext || args.no_noise {
            anyhow::bail!(
                "--mechanism laplace: registry mode, plaintext counts and noise on only \
                 (the aggregators add Gaussian noise)"
            );
        }
        return evaluate_laplace(city, setup, batches, epsilon, &options);
    }
    evaluate(city, setup, batches, &search, &dp, &options)
}

/// Registry mode with the discrete Laplace instead of the Gaussian: every registered venue's
/// count in every window plus two [`LaplaceShare`]s (one per aggregator), drawn for pure
/// `epsilon`-DP per batch at the task's credential limit. A day of batches costs their sum.
pub fn evaluate_laplace(
    city: &City,
    setup: &TaskSetup,
    batches: &Batches,
    epsilon: f64,
    options: &RunOptions,
) -> anyhow::Result<Score> {
    let share = LaplaceShare::for_epsilon(epsilon, setup.limit)?;
    let directory = city.directory();
    let registry = city.registry();
    let windows = searched(&options.windows);
    let started = Instant::now();
    let mut released = BTreeSet::new();
    for &window in &windows {
        let mut rng = window_stream(options.seed, window, 0);
        for &code in &registry {
            let noisy = i64::try_from(batches.count(code, window))?
                + share.vartime_sample(&mut rng)
                + share.vartime_sample(&mut rng);
            if setup
                .rules
                .evaluate(code, directory.get(&code), noisy)
                .is_some()
            {
                released.insert((code, window));
            }
        }
    }
    let (precision, recall, true_alerts) = compare(&released, batches, &windows);
    let spent = share.gamma() * f64::from(setup.limit);
    Ok(Score {
        precision,
        recall,
        true_alerts,
        released_alerts: released.len(),
        rho_batch: spent * spent / 2.0,
        rho_day: spent * spent / 2.0 * windows.len() as f64,
        search_time: started.elapsed(),
        pure: Some((spent, spent * windows.len() as f64)),
    })
}

/// Runs `hotspot bench accuracy`.
pub fn run(args: AccuracyArgs) -> anyhow::Result<()> {
    let config = match args.city {
        CitySize::Tiny => CityConfig::tiny(args.seed),
        CitySize::Ordinary => CityConfig::ordinary(args.seed),
        CitySize::Large => CityConfig::large(args.seed),
    };
    let city = City::generate(&config);
    let setup = match args.task {
        TaskArg::Crowding => TaskSetup::crowding()?,
        TaskArg::Outbreak => TaskSetup::outbreak(),
    };
    let batches = city.reports(setup.kind, &setup.rules, setup.limit as usize);
    let reports: usize = batches.reports.iter().map(Vec::len).sum();
    println!(
        "city: seed={} visitors={} venues={} check-ins={} reports={} true_alerts={} task={:?} mode={:?} noise={}",
        config.seed,
        config.visitors,
        config.venues,
        city.checkins.len(),
        reports,
        batches.alerts.len(),
        args.task,
        args.mode,
        !args.no_noise,
    );

    if args.sweep {
        println!(
            "{:>8} {:>10} {:>8} {:>12}",
            "epsilon", "precision", "recall", "epsilon_day"
        );
        for epsilon in SWEEP {
            let score = run_once(&city, &setup, &batches, &args, epsilon)?;
            let day = match score.pure {
                Some((_, day)) => day,
                None => epsilon_for_rho(score.rho_day, args.delta)?,
            };
            println!(
                "{epsilon:>8} {:>10.3} {:>8.3} {day:>12.3}",
                score.precision, score.recall
            );
        }
    }

    if args.expected {
        print_expected(&city, &setup, &batches, &args)?;
    }

    let score = run_once(&city, &setup, &batches, &args, args.epsilon)?;
    let (epsilon, epsilon_day) = if args.no_noise {
        (f64::INFINITY, f64::INFINITY)
    } else if let Some(pure) = score.pure {
        pure
    } else {
        (
            epsilon_for_rho(score.rho_batch, args.delta)?,
            epsilon_for_rho(score.rho_day, args.delta)?,
        )
    };
    println!(
        "alerts: true={} released={} rho_batch={:.6} rho_day={:.6} search_time_ms={}",
        score.true_alerts,
        score.released_alerts,
        score.rho_batch,
        score.rho_day,
        score.search_time.as_millis()
    );
    // Pure epsilon-DP holds with delta 0.
    let delta = if score.pure.is_some() {
        0.0
    } else {
        args.delta
    };
    println!(
        "precision={:.4} recall={:.4} epsilon={epsilon:.4} delta={delta:e} epsilon_day={epsilon_day:.4}",
        score.precision, score.recall
    );
    Ok(())
}

/// `--expected`: one row per epsilon (the sweep's, or `--epsilon`).
fn print_expected(
    city: &City,
    setup: &TaskSetup,
    batches: &Batches,
    args: &AccuracyArgs,
) -> anyhow::Result<()> {
    if args.mode != ModeArg::Registry {
        anyhow::bail!("--expected: only registry mode has a closed form (drop --mode open)");
    }
    let registry = city.registry();
    let windows = searched(&args.windows);
    let cells = expected::cells(
        &setup.rules,
        &city.directory(),
        &registry,
        batches,
        &windows,
    );
    let search = SearchConfig::registry(city.config.bits);
    let epsilons: Vec<f64> = if args.sweep {
        SWEEP.to_vec()
    } else {
        vec![args.epsilon]
    };
    println!(
        "expected over the noise (registry mode, {} venue-hours):",
        cells.len()
    );
    println!(
        "{:>8} {:>8} {:>14} {:>7} {:>14} {:>14}",
        "epsilon", "sd", "gaussian p/r", "margin", "gaussian+k p/r", "laplace p/r"
    );
    for epsilon in epsilons {
        let dp = dp_config(setup.limit, epsilon, args.delta, true)?;
        let noise = search
            .release_noise(&dp, city.config.bits - 1, registry.len())?
            .context("noise is on")?;
        let sigma2 = noise.sigma2.to_f64();
        let gaussian = expected::Noise::two_gaussians(sigma2);
        let plain = expected::expected(&cells, &gaussian, 0);
        let radius = (4.0 * (2.0 * sigma2).sqrt()).ceil() as i64;
        let (k, shifted) = expected::best_margin(&cells, &gaussian, radius);
        let laplace =
            expected::expected(&cells, &expected::Noise::laplace(epsilon, setup.limit), 0);
        println!(
            "{epsilon:>8} {:>8.2} {:>6.3} {:>6.3} {k:>+7} {:>6.3} {:>6.3} {:>6.3} {:>6.3}",
            (2.0 * sigma2).sqrt(),
            plain.precision,
            plain.recall,
            shifted.precision,
            shifted.recall,
            laplace.precision,
            laplace.recall
        );
    }
    Ok(())
}

/// The epsilons of `--sweep`.
const SWEEP: [f64; 7] = [0.25, 0.5, 1.0, 2.0, 4.0, 8.0, 16.0];

#[cfg(test)]
mod tests {
    use super::*;
    use hotspot_core::rules::CrowdingRule;

    fn score(kind: TaskArg, mode: SearchMode, noise: bool) -> Score {
        score_with(kind, mode, noise, Engine::Plaintext)
    }

    fn score_with(kind: TaskArg, mode: SearchMode, noise: bool, engine: Engine) -> Score {
        let city = City::generate(&CityConfig::tiny(11));
        // The tiny city's venues are small: crowding from 5 people on, so that it has alerts.
        let setup = match kind {
            TaskArg::Crowding => TaskSetup {
                rules: Rules::Crowding(CrowdingRule::new(800, 5).expect("valid")),
                ..TaskSetup::crowding().expect("valid")
            },
            TaskArg::Outbreak => TaskSetup::outbreak(),
        };
        let batches = city.reports(setup.kind, &setup.rules, setup.limit as usize);
        assert!(!batches.alerts.is_empty(), "the tiny city has alerts");
        let threshold = setup.rules.min_threshold(city.directory().values());
        let search = search_config(mode, city.config.bits, threshold, 8);
        let dp = dp_config(setup.limit, 1.0, 1e-9, noise).expect("valid");
        let options = RunOptions {
            engine,
            windows: Vec::new(),
            seed: 5,
        };
        evaluate(&city, &setup, &batches, &search, &dp, &options).expect("search")
    }

    #[test]
    fn registry_mode_without_noise_equals_the_ground_truth() {
        for kind in [TaskArg::Crowding, TaskArg::Outbreak] {
            let s = score(kind, SearchMode::Registry, false);
            assert_eq!((s.precision, s.recall), (1.0, 1.0), "{kind:?}");
        }
    }

    #[test]
    fn open_mode_without_noise_equals_the_ground_truth() {
        for kind in [TaskArg::Crowding, TaskArg::Outbreak] {
            let s = score(kind, SearchMode::Open, false);
            assert_eq!((s.precision, s.recall), (1.0, 1.0), "{kind:?}");
        }
    }

    #[test]
    fn the_engine_without_noise_equals_the_ground_truth_in_both_modes() {
        for mode in [SearchMode::Registry, SearchMode::Open] {
            let s = score_with(TaskArg::Crowding, mode, false, Engine::Vdaf);
            assert_eq!((s.precision, s.recall), (1.0, 1.0), "{mode:?}");
        }
    }

    #[derive(clap::Parser)]
    struct Wrap {
        #[command(flatten)]
        args: AccuracyArgs,
    }

    fn args(argv: &[&str]) -> AccuracyArgs {
        use clap::Parser;
        let argv = std::iter::once("accuracy").chain(argv.iter().copied());
        Wrap::try_parse_from(argv).expect("parses").args
    }

    #[test]
    fn expected_figures_run_in_registry_mode_and_are_refused_in_open_mode() {
        run(args(&["--city", "tiny", "--expected", "--sweep"])).expect("registry mode");
        let err = run(args(&["--city", "tiny", "--expected", "--mode", "open"]))
            .expect_err("open mode has no closed form");
        assert!(err.to_string().contains("--expected"), "{err}");
    }

    #[test]
    fn the_laplace_alternative_runs_in_registry_mode_only() {
        let s = run_once_for(&["--city", "tiny", "--mechanism", "laplace"]).expect("runs");
        let (batch, day) = s.pure.expect("pure epsilon");
        assert!(batch <= 1.0 && batch > 1.0 - 1e-5, "{batch}");
        assert!((day - 24.0 * batch).abs() < 1e-9);
        for refused in [
            &["--mechanism", "laplace", "--mode", "open"][..],
            &["--mechanism", "laplace", "--engine", "vdaf"],
            &["--mechanism", "laplace", "--no-noise"],
        ] {
            let argv: Vec<&str> = ["--city", "tiny"].iter().chain(refused).copied().collect();
            let err = run_once_for(&argv).expect_err("refused");
            assert!(err.to_string().contains("--mechanism laplace"), "{err}");
        }
    }

    /// One run of the tiny city with `argv`.
    fn run_once_for(argv: &[&str]) -> anyhow::Result<Score> {
        let a = args(argv);
        let city = City::generate(&CityConfig::tiny(a.seed));
        let setup = TaskSetup {
            rules: Rules::Crowding(CrowdingRule::new(800, 5).expect("valid")),
            ..TaskSetup::crowding().expect("valid")
        };
        let batches = city.reports(setup.kind, &setup.rules, setup.limit as usize);
        run_once(&city, &setup, &batches, &a, a.epsilon)
    }

    #[test]
    fn noisy_runs_stay_within_the_privacy_budget() {
        let s = score(TaskArg::Crowding, SearchMode::Registry, true);
        let eps = epsilon_for_rho(s.rho_batch, 1e-9).expect("valid");
        assert!(eps <= 1.0 + 1e-9, "{eps}");
        assert!(s.rho_day <= 24.0 * s.rho_batch * (1.0 + 1e-9));
    }
}
