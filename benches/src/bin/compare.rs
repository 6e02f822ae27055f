//! Side-by-side comparison of our Poplar1 engine with the `prio` crate's, on identical reports
//! in one process, single-threaded (plus our multi-core figure with `--threads K`).
//!
//! ```text
//! cargo run --release -p hotspot-benches --bin compare -- poplar1 --walk --reports 10000
//! cargo run --release -p hotspot-benches --bin compare -- poplar1 --registry 65536 --reports 200
//! ```
//!
//! Both engines must give the same result (the same hotspots as a plaintext count for the
//! walk; the same counts for the registry). The last line is `ratio_vs_prio=<float>`: prio's
//! time per report over ours, both aggregators, one thread each.

use std::time::{Duration, Instant};

use anyhow::{Context, Result, bail, ensure};
use hotspot_benches::{CTX, Report, registry_workload, shard_all, zipf_measurements};
use hotspot_vdaf::idpf::PrefixTree;
use hotspot_vdaf::keccak;
use hotspot_vdaf::xof::FixedKeyAes128;
use hotspot_vdaf::{AggregationParam, BatchCache, LocalReport, Poplar1, Verdict};
use prio::codec::{Decode, ParameterizedDecode};
use prio::vdaf::poplar1::{
    Poplar1 as PrioPoplar1, Poplar1AggregationParam, Poplar1InputShare, Poplar1PublicShare,
};
use prio::vdaf::xof::XofTurboShake128;
use prio::vdaf::{Aggregator, Collector, VerifyTransition};

type Prio = PrioPoplar1<XofTurboShake128, 32>;

const BITS: usize = 32;
const VERIFY_KEY: [u8; 32] = [0x5a; 32];

/// Command-line options.
struct Options {
    walk: bool,
    registry: Option<usize>,
    reports: Option<usize>,
    threads: Option<usize>,
    prio_reports: Option<usize>,
    threshold: u64,
    skip_uncached: bool,
}

/// What `--help` prints, and what a wrong first argument is told.
const USAGE: &str = "usage: compare poplar1 (--walk | --registry V) [--reports N] \
                     [--threads K] [--prio-reports M] [--threshold T] [--skip-uncached]";

/// The options, or `None` when help was asked for (and printed).
fn parse_args() -> Result<Option<Options>> {
    let mut args = std::env::args().skip(1).peekable();
    if args.peek().is_some_and(|a| a == "--help" || a == "-h") {
        println!("{USAGE}");
        return Ok(None);
    }
    match args.next().as_deref() {
        Some("poplar1") => {}
        other => bail!("{USAGE} (got {other:?})"),
    }
    let mut o = Options {
        walk: false,
        registry: None,
        reports: None,
        threads: None,
        prio_reports: None,
        threshold: 50,
        skip_uncached: false,
    };
    while let Some(flag) = args.next() {
        let mut value = |name: &str| -> Result<usize> {
            let v = args
                .next()
                .with_context(|| format!("{name} needs a value"))?;
            v.parse()
                .with_context(|| format!("{name}: not a number: {v}"))
        };
        match flag.as_str() {
            "--walk" => o.walk = true,
            "--skip-uncached" => o.skip_uncached = true,
            "--registry" => o.registry = Some(value("--registry")?),
            "--reports" => o.reports = Some(value("--reports")?),
            "--threads" => o.threads = Some(value("--threads")?),
            "--prio-reports" => o.prio_reports = Some(value("--prio-reports")?),
            "--threshold" => o.threshold = value("--threshold")? as u64,
            "--help" | "-h" => {
                println!("{USAGE}");
                return Ok(None);
            }
            other => bail!("unknown flag {other}; {USAGE}"),
        }
    }
    ensure!(
        o.walk != o.registry.is_some(),
        "choose exactly one of --walk and --registry V"
    );
    Ok(Some(o))
}

fn main() -> Result<()> {
    let Some(o) = parse_args()? else {
        return Ok(());
    };
    if o.walk { walk(&o) } else { registry(&o) }
}

/// CPU time used by this process so far (user + system, from `/proc/self/stat`). The
/// machines these comparisons run on are shared, so single-thread figures use CPU time,
/// which other processes do not inflate; the multi-thread figure is wall time.
fn cpu_now() -> Duration {
    let stat = std::fs::read_to_string("/proc/self/stat").unwrap_or_default();
    let after = stat.rsplit_once(')').map_or("", |(_, rest)| rest);
    let fields: Vec<&str> = after.split_whitespace().collect();
    let ticks = |i: usize| {
        fields
            .get(i)
            .and_then(|f| f.parse::<u64>().ok())
            .unwrap_or(0)
    };
    // utime and stime are fields 14 and 15 of the line (11 and 12 after the command name);
    // the kernel's USER_HZ is 100 on Linux.
    Duration::from_millis(10 * (ticks(11) + ticks(12)))
}

/// Runs `f` on a rayon pool of `threads` threads.
fn on_pool<T: Send>(threads: usize, f: impl FnOnce() -> T + Send) -> Result<T> {
    let pool = rayon::ThreadPoolBuilder::new()
        .num_threads(threads)
        .build()?;
    Ok(pool.install(f))
}

/// One aggregation with our engine (both aggregators); returns the counts. With `caches`,
/// the walk carries per-report state from level to level ([`BatchCache`]).
fn ours_level(
    poplar: &Poplar1,
    param: &AggregationParam,
    reports: &[LocalReport<'_>],
    caches: Option<&mut [BatchCache; 2]>,
) -> Result<Vec<u64>> {
    let out = match caches {
        Some(c) => poplar.prepare_batch_local_cached(&VERIFY_KEY, CTX, param, reports, c)?,
        None => poplar.prepare_batch_local(&VERIFY_KEY, CTX, param, reports)?,
    };
    ensure!(
        out.verdicts.iter().all(|v| *v == Verdict::Accepted),
        "honest report rejected"
    );
    Ok(poplar.unshard(
        param,
        [&out.aggregates[0], &out.aggregates[1]],
        reports.len(),
    )?)
}

/// One aggregation with prio (both aggregators, every report through all rounds).
fn prio_level(prio: &Prio, param: &AggregationParam, reports: &[Report]) -> Result<Vec<u64>> {
    let param = Poplar1AggregationParam::get_decoded(&param.encode())?;
    let mut outs: [Vec<_>; 2] = [Vec::new(), Vec::new()];
    for r in reports {
        let public = Poplar1PublicShare::get_decoded_with_param(prio, &r.public_share)?;
        let mut states = Vec::new();
        let mut shares = Vec::new();
        for agg in 0..2 {
            let input =
                Poplar1InputShare::get_decoded_with_param(&(prio, agg), &r.input_shares[agg])?;
            let (st, sh) =
                prio.verify_init(&VERIFY_KEY, CTX, agg, &param, &r.nonce, &public, &input)?;
            states.push(st);
            shares.push(sh);
        }
        let msg = prio.verifier_shares_to_message(CTX, &param, shares)?;
        let mut next = Vec::new();
        let mut round2 = Vec::new();
        for st in states {
            let VerifyTransition::Continue(st, sh) = prio.verify_next(CTX, st, msg.clone())? else {
                bail!("prio finished early");
            };
            next.push(st);
            round2.push(sh);
        }
        let msg = prio.verifier_shares_to_message(CTX, &param, round2)?;
        for (agg, st) in next.into_iter().enumerate() {
            let VerifyTransition::Finish(out) = prio.verify_next(CTX, st, msg.clone())? else {
                bail!("prio did not finish");
            };
            outs[agg].push(out);
        }
    }
    let [o0, o1] = outs;
    let shares = [prio.aggregate(&param, o0)?, prio.aggregate(&param, o1)?];
    Ok(prio.unshard(&param, shares, reports.len())?)
}

/// The heavy-hitter walk: level by level, candidates are both children of every prefix whose
/// count reaches the threshold. Returns the hotspots (leaf prefixes over the threshold).
fn run_walk(
    threshold: u64,
    mut level: impl FnMut(&AggregationParam) -> Result<Vec<u64>>,
) -> Result<Vec<u64>> {
    let mut candidates = vec![0u64, 1];
    for l in 0..BITS as u16 {
        let param = AggregationParam::new(l, candidates.clone())?;
        let counts = level(&param)?;
        let survivors: Vec<u64> = candidates
            .iter()
            .zip(&counts)
            .filter(|(_, c)| **c >= threshold)
            .map(|(p, _)| *p)
            .collect();
        if l as usize == BITS - 1 || survivors.is_empty() {
            return Ok(survivors);
        }
        candidates = survivors.iter().flat_map(|p| [2 * p, 2 * p + 1]).collect();
    }
    Ok(Vec::new())
}

fn plaintext_hotspots(ms: &[u64], threshold: u64) -> Vec<u64> {
    let mut sorted = ms.to_vec();
    sorted.sort_unstable();
    let mut out = Vec::new();
    for chunk in sorted.chunk_by(|a, b| a == b) {
        if chunk.len() as u64 >= threshold {
            out.push(chunk[0]);
        }
    }
    out
}

fn per_report_ms(d: Duration, n: usize) -> f64 {
    d.as_secs_f64() * 1e3 / n as f64
}

/// Operations per CPU second of one thread: `batch` (which does `per_batch` operations) run
/// for half a second of CPU time. The clock (a read of `/proc/self/stat`, some microseconds)
/// is read once per batch, so a batch should take a millisecond or more.
fn per_cpu_second(per_batch: u64, mut batch: impl FnMut()) -> f64 {
    let start = cpu_now();
    let mut done = 0u64;
    while cpu_now() - start < Duration::from_millis(500) {
        batch();
        done += per_batch;
    }
    done as f64 / (cpu_now() - start).as_secs_f64()
}

/// Fixed-key AES-128 throughput of this machine (blocks per CPU second, one thread), batched
/// 4,096 blocks per call as the engine does at wide tree depths.
fn aes_blocks_per_second() -> f64 {
    let key = FixedKeyAes128::new(&[b"aes bound"], b"");
    let mut xs: Vec<u128> = (0..4096u128).collect();
    per_cpu_second(100 * 4096, || {
        for _ in 0..100 {
            key.hash_u128s(&mut xs);
        }
    })
}

/// Keccak-p[1600, 12] throughput of this machine (permutations per CPU second, one thread):
/// the 8-way path the leaf level uses, the 4-way path of the verification randomness, and
/// the one-state path.
fn keccak_permutations_per_second() -> (f64, f64, f64) {
    const CALLS: u64 = 16_384;
    let mut states8 = [[0u64; 8]; 25];
    let x8 = per_cpu_second(8 * CALLS / 2, || {
        for _ in 0..CALLS / 2 {
            keccak::p1600_x8(&mut states8);
        }
    });
    let mut states = [[0u64; 4]; 25];
    let x4 = per_cpu_second(4 * CALLS, || {
        for _ in 0..CALLS {
            keccak::p1600_x4(&mut states);
        }
    });
    let mut state = [0u64; 25];
    let one = per_cpu_second(CALLS, || {
        for _ in 0..CALLS {
            keccak::p1600(&mut state);
        }
    });
    std::hint::black_box((states8, states, state));
    (x8, x4, one)
}

/// AES blocks one report costs over the whole walk (both aggregators; the leaf level uses
/// TurboSHAKE and is not counted).
fn walk_aes_blocks(params: &[AggregationParam]) -> usize {
    params
        .iter()
        .filter(|p| usize::from(p.level()) < BITS - 1)
        .map(|p| 2 * PrefixTree::new(usize::from(p.level()), p.prefixes()).vartime_aes_blocks())
        .sum()
}

fn walk(o: &Options) -> Result<()> {
    let n = o.reports.unwrap_or(10_000);
    let poplar = Poplar1::new(BITS)?;
    let ms = zipf_measurements(n, 1_000_000, 7);
    let reports = shard_all(&poplar, &ms, 8);
    let local: Vec<LocalReport<'_>> = reports.iter().map(Report::local).collect();
    let expected = plaintext_hotspots(&ms, o.threshold);

    // Ours, one thread, with the per-report walk cache.
    let start = cpu_now();
    let mut params = Vec::new();
    let mut caches = [BatchCache::new(), BatchCache::new()];
    let ours = on_pool(1, || {
        run_walk(o.threshold, |p| {
            params.push(p.clone());
            ours_level(&poplar, p, &local, Some(&mut caches))
        })
    })??;
    let ours_time = cpu_now() - start;
    drop(caches);

    // The same walk without the cache (every level from the root).
    let uncached_time = if o.skip_uncached {
        None
    } else {
        let start = cpu_now();
        let uncached = on_pool(1, || {
            run_walk(o.threshold, |p| ours_level(&poplar, p, &local, None))
        })??;
        ensure!(uncached == ours, "uncached walk disagrees");
        Some(cpu_now() - start)
    };

    // Ours on K threads.
    let multi = match o.threads {
        Some(k) => {
            let start = Instant::now();
            let mut caches = [BatchCache::new(), BatchCache::new()];
            let hot = on_pool(k, || {
                run_walk(o.threshold, |p| {
                    ours_level(&poplar, p, &local, Some(&mut caches))
                })
            })??;
            ensure!(hot == ours, "multi-threaded walk disagrees");
            Some((k, start.elapsed()))
        }
        None => None,
    };

    // prio on the same reports (or a subset, replaying our walk's parameters).
    let prio = Prio::new_turboshake128(BITS);
    let prio_n = o.prio_reports.unwrap_or(n).min(n);
    let prio_reports = &reports[..prio_n];
    let start = cpu_now();
    let theirs = if prio_n == n {
        run_walk(o.threshold, |p| prio_level(&prio, p, prio_reports))?
    } else {
        for p in &params {
            prio_level(&prio, p, prio_reports)?;
        }
        Vec::new()
    };
    let prio_time = cpu_now() - start;

    ensure!(
        ours == expected,
        "our hotspots differ from the plaintext count"
    );
    if prio_n == n {
        ensure!(theirs == ours, "prio's hotspots differ from ours");
    }
    println!(
        "workload: walk, {n} reports, Zipf(s=1) over 1,000,000 venues, bits {BITS}, threshold {}",
        o.threshold
    );
    let same = if prio_n == n { " == prio" } else { "" };
    println!("hotspots found: {} (ours == plaintext{same})", ours.len());
    let ours_ms = per_report_ms(ours_time, n);
    let prio_ms = per_report_ms(prio_time, prio_n);
    print_table(
        &reports[0],
        ours_ms,
        multi.map(|(k, d)| (k, per_report_ms(d, n))),
        prio_ms,
        prio_n,
    );
    if let Some(t) = uncached_time {
        let uncached_ms = per_report_ms(t, n);
        println!(
            "hotspot without the walk cache: {uncached_ms:.3} ms/report (ratio {:.2})",
            prio_ms / uncached_ms
        );
    }
    let blocks = walk_aes_blocks(&params);
    let rate = aes_blocks_per_second();
    println!(
        "AES bound (walk from the root, inner levels, both aggregators): {blocks} blocks/report \
         at {:.0} M blocks/s = {:.4} ms/report",
        rate / 1e6,
        blocks as f64 / rate * 1e3
    );
    println!("ratio_vs_prio={:.2}", prio_ms / ours_ms);
    Ok(())
}

fn registry(o: &Options) -> Result<()> {
    let venues = o.registry.unwrap_or(65_536);
    let n = o.reports.unwrap_or(200);
    let poplar = Poplar1::new(BITS)?;
    let (registry, ms) = registry_workload(venues, n, 11);
    let reports = shard_all(&poplar, &ms, 12);
    let local: Vec<LocalReport<'_>> = reports.iter().map(Report::local).collect();
    let param = AggregationParam::new(BITS as u16 - 1, registry.clone())?;

    let start = cpu_now();
    let ours = on_pool(1, || ours_level(&poplar, &param, &local, None))??;
    let ours_time = cpu_now() - start;
    let expected: Vec<u64> = registry
        .iter()
        .map(|v| ms.iter().filter(|m| *m == v).count() as u64)
        .collect();
    ensure!(
        ours == expected,
        "our counts differ from the plaintext count"
    );
    let multi = match o.threads {
        Some(k) => {
            let start = Instant::now();
            let again = on_pool(k, || ours_level(&poplar, &param, &local, None))??;
            ensure!(again == ours, "multi-threaded run disagrees");
            Some((k, start.elapsed()))
        }
        None => None,
    };

    // prio is slow here (seconds per report): run it on the first few reports only, and
    // check both engines agree on those. `--prio-reports 0` skips it.
    let prio_n = o.prio_reports.unwrap_or(2).min(n);
    let prio_ms = if prio_n == 0 {
        f64::NAN
    } else {
        let prio = Prio::new_turboshake128(BITS);
        let start = cpu_now();
        let theirs = prio_level(&prio, &param, &reports[..prio_n])?;
        let prio_time = cpu_now() - start;
        let ours_subset = ours_level(&poplar, &param, &local[..prio_n], None)?;
        ensure!(theirs == ours_subset, "prio's counts differ from ours");
        per_report_ms(prio_time, prio_n)
    };

    println!(
        "workload: registry, {venues} venues as candidates at the leaf level, {n} reports \
         (prio: first {prio_n}), bits {BITS}"
    );
    let ours_ms = per_report_ms(ours_time, n);
    let multi = multi.map(|(k, d)| (k, per_report_ms(d, n)));
    print_table(&reports[0], ours_ms, multi, prio_ms, prio_n);
    print_registry_bounds(&param, ours_ms);
    println!("ms_per_report={ours_ms:.3}");
    println!("ratio_vs_prio={:.2}", prio_ms / ours_ms);
    Ok(())
}

/// The registry workload's two lower bounds on this machine, per report and both aggregators:
/// Keccak-p[1600, 12] permutations of the leaf level (leaf nodes and the verification
/// randomness) at the faster measured many-way rate, and AES blocks of the inner depths at the measured
/// batched rate.
fn print_registry_bounds(param: &AggregationParam, ours_ms: f64) {
    let tree = PrefixTree::new(usize::from(param.level()), param.prefixes());
    let v = param.prefixes().len();
    // Leaf depth: 1 per parent (extend) and 1 per leaf (convert); verification randomness:
    // 32 bytes per candidate at RATE bytes per permutation, plus the one absorbing it.
    let per_agg = tree.vartime_leaf_permutations() + (32 * v).div_ceil(hotspot_vdaf::xof::RATE) + 1;
    let perms = 2 * per_agg;
    let (x8_rate, x4_rate, one_rate) = keccak_permutations_per_second();
    let rate = x8_rate.max(x4_rate);
    let keccak_ms = perms as f64 / rate * 1e3;
    println!(
        "Keccak bound (leaf level, both aggregators): {perms} permutations/report at {:.2} M/s \
         (8-way {:.2}, 4-way {:.2}, one state {:.2} M/s) = {keccak_ms:.3} ms/report",
        rate / 1e6,
        x8_rate / 1e6,
        x4_rate / 1e6,
        one_rate / 1e6
    );
    // Inner depths: 1 block to extend into each node, 1 to convert it.
    let blocks = 2 * 2 * (tree.num_nodes() - v);
    let rate = aes_blocks_per_second();
    let aes_ms = blocks as f64 / rate * 1e3;
    println!(
        "AES bound (inner depths, both aggregators): {blocks} blocks/report at {:.0} M blocks/s \
         = {aes_ms:.3} ms/report",
        rate / 1e6
    );
    println!(
        "bounds together: {:.3} ms/report; ours {ours_ms:.3} ms/report ({:.0}% of it in the bounds)",
        keccak_ms + aes_ms,
        100.0 * (keccak_ms + aes_ms) / ours_ms
    );
}

fn print_table(sample: &Report, ours: f64, multi: Option<(usize, f64)>, prio: f64, prio_n: usize) {
    println!(
        "{:<10} {:>8} {:>14} {:>16}",
        "engine", "threads", "ms/report", "bytes/report"
    );
    let bytes = sample.upload_bytes();
    println!("{:<10} {:>8} {:>14.3} {:>16}", "hotspot", 1, ours, bytes);
    if let Some((k, ms)) = multi {
        println!("{:<10} {:>8} {:>14.3} {:>16}", "hotspot", k, ms, bytes);
    }
    println!(
        "{:<10} {:>8} {:>14.3} {:>16}   ({prio_n} reports)",
        "prio", 1, prio, bytes
    );
    println!(
        "(ms/report: both aggregators, all rounds, per report; one thread: CPU time, K threads: wall time)"
    );
}
