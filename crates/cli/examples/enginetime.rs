use hotspot_cli::accuracy::{TaskSetup, dp_config, search_config};
use hotspot_core::city::{City, CityConfig};
use hotspot_core::dp::Accountant;
use hotspot_core::search::engine::VdafAggregator;
use hotspot_core::search::{LevelAggregator, LevelQuery, PlaintextAggregator, run};
use hotspot_core::task::SearchMode;
use rand::SeedableRng;
use rand::rngs::ChaCha20Rng;
use std::time::Instant;

struct Capture<A>(A, Vec<LevelQuery>);
impl<A: LevelAggregator> LevelAggregator for Capture<A> {
    type Error = A::Error;
    fn aggregate(&mut self, q: &LevelQuery) -> Result<Vec<i64>, A::Error> { self.1.push(q.clone()); self.0.aggregate(q) }
}

fn main() -> anyhow::Result<()> {
    let args: Vec<String> = std::env::args().collect();
    let size = &args[1]; let window: u64 = args[2].parse()?; let sample: usize = args[3].parse()?;
    let config = if size == "large" { CityConfig::large(1) } else { CityConfig::ordinary(1) };
    let city = City::generate(&config);
    let setup = TaskSetup::crowding()?;
    let batches = city.reports(setup.kind, &setup.rules, 1);
    let reports = batches.reports[window as usize].clone();
    let threshold = setup.rules.min_threshold(city.directory().values());
    let dp = dp_config(1, 1.0, 1e-9, true)?;
    let total_reports: usize = batches.reports.iter().map(Vec::len).sum();
    for mode in [SearchMode::Registry, SearchMode::Open] {
        let search = search_config(mode, 32, threshold, 8);
        let mut acc = Accountant::new(&dp)?;
        let mut cap = Capture(PlaintextAggregator::new(32, reports.clone(), ChaCha20Rng::seed_from_u64(1)), Vec::new());
        let t = Instant::now();
        run(&search, &dp, &mut cap, &mut acc, window, &city.registry())?;
        let plain = t.elapsed();
        let sampled: Vec<u64> = reports.iter().copied().take(sample).collect();
        let mut engine = VdafAggregator::shard(32, b"t", [7; 32], &sampled, &mut ChaCha20Rng::seed_from_u64(2), [ChaCha20Rng::seed_from_u64(3), ChaCha20Rng::seed_from_u64(4)])?;
        let t = Instant::now();
        for q in &cap.1 { engine.aggregate(q)?; }
        let e = t.elapsed();
        let per_report = e.as_secs_f64() / sampled.len() as f64;
        let cands: Vec<usize> = cap.1.iter().map(|q| q.prefixes.len()).collect();
        println!("{size} window={window} mode={mode:?} reports_in_window={} candidates_per_level={cands:?} plaintext_ms={} engine_sample={} engine_s={:.2} per_report_ms={:.3} extrapolated_window_s={:.0} extrapolated_day_s(all windows, same per-report cost)={:.0}",
            reports.len(), plain.as_millis(), sampled.len(), e.as_secs_f64(), per_report*1e3, per_report*reports.len() as f64, per_report*total_reports as f64);
    }
    Ok(())
}
