//! `hotspot bench upload --seconds S --concurrency C`: real uploads into a leader process on
//! loopback for S seconds from C concurrent clients, then a count of what the leader's
//! database holds against what was acknowledged. Ends with
//! `uploads_per_s=<n> p50_ms=<x> p99_ms=<y> lost=<k>`.
//!
//! To measure the leader rather than the client's Poplar1 sharding, a pool of 256 reports is
//! sharded once and re-sent with fresh report ids. The leader does not open shares on upload,
//! so it stores them all; they would be rejected at aggregation (the report id is bound into
//! each share's associated data), which this benchmark does not run.
//!
//! Every upload carries a real, fresh credential presentation, which the leader verifies (the
//! dominant cost of an upload, about 0.1 to 0.2 ms of one core) and whose tag it stores with
//! the report. Presentations are made before the timed part: simulated visitors obtain
//! crowding credentials from a real issuer process over gRPC, and each presents for many
//! windows. To need few credentials the task has one-second windows and starts an hour ago
//! (with a two-hour grace period, so every window of that hour takes uploads), and the pool
//! is spread over [`WINDOWS`] of them; the limit stays the crowding one, `N = 1`, so the
//! verification cost is the real one. The pool holds `--presentations` of them (by default
//! 6,000 per second of upload); a run that exhausts it stops early, and says so.

use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::time::{Duration, Instant};

use anyhow::{Result, anyhow};
use clap::Args;
use rand::{Rng, SeedableRng};

use hotspot_core::task::SearchMode;
use hotspot_proto::v1;
use hotspot_vdaf::Poplar1;

use hotspot_client::credential::Wallet;

use crate::cluster::{Cluster, ClusterSpec, stop};

/// `hotspot bench upload` options.
#[derive(Debug, Args)]
pub struct UploadArgs {
    /// How long to upload.
    #[arg(long, default_value_t = 10)]
    pub seconds: u64,
    /// Concurrent clients.
    #[arg(long, default_value_t = 64)]
    pub concurrency: usize,
    /// HTTP/2 connections the clients spread over (at most one per client).
    #[arg(long, default_value_t = 16)]
    pub connections: usize,
    /// Folder for the leader's files, kept afterwards (default: a fresh temporary one,
    /// removed at the end).
    #[arg(long)]
    pub dir: Option<std::path::PathBuf>,
    /// Credential presentations to prepare before the timed part (default: 6,000 per second).
    #[arg(long)]
    pub presentations: Option<usize>,
}

/// Windows the prepared presentations are spread over.
const WINDOWS: u64 = 1_000;
/// Presentations prepared per second of upload, by default (above the 5,000/s target).
const PRESENTATIONS_PER_SECOND: usize = 6_000;

/// One prepared upload: the window and a presentation for it.
type Prepared = (u64, Vec<u8>);

/// Runs the benchmark.
pub fn run_upload(args: UploadArgs) -> Result<()> {
    let dir = args.dir.clone().unwrap_or_else(|| {
        std::env::temp_dir().join(format!("hotspot-bench-{}", hotspot_server::now_unix()))
    });
    let spec = ClusterSpec {
        window_seconds: 1,
        grace_seconds: 7_200,
        threshold: 1,
        rules: hotspot_core::rules::Rules::default_for(hotspot_core::task::TaskKind::Crowding),
        privacy: hotspot_core::task::PrivacyParams::default_for(3_600),
        search: hotspot_core::task::SearchParams::default(),
        presentations_per_window: 1,
        search_mode: SearchMode::Registry,
        bits: 32,
        venues: Vec::new(),
        job_size: 1_000,
        search_poll_seconds: 0,
    };
    let mut cluster = Cluster::prepare(&dir, &std::env::current_exe()?, &spec)?;
    cluster.rewrite_task(|t| t.start_unix -= 3_600)?;
    let issuer = cluster.start("issuer")?;
    let prepared = prepare(&args, &cluster);
    stop(issuer);
    let prepared = prepared?;
    let leader = cluster.start("leader")?;
    let outcome = drive(&args, &cluster, prepared);
    stop(leader);
    let (acked, mut latencies, elapsed) = outcome?;
    let stored = count_rows(&dir.join("leader.sqlite"));
    if args.dir.is_none() {
        // A fresh temporary folder is the benchmark's own: hundreds of MB of reports.
        if let Err(e) = std::fs::remove_dir_all(&dir) {
            eprintln!("bench: could not remove {}: {e}", dir.display());
        }
    }
    let stored = stored?;
    latencies.sort_unstable();
    let pct = |p: f64| {
        latencies
            .get(((latencies.len() as f64 * p) as usize).min(latencies.len().saturating_sub(1)))
            .copied()
            .unwrap_or_default()
    };
    println!(
        "uploads_per_s={:.0} p50_ms={:.2} p99_ms={:.2} lost={}",
        acked as f64 / elapsed,
        pct(0.50).as_secs_f64() * 1e3,
        pct(0.99).as_secs_f64() * 1e3,
        acked.saturating_sub(stored)
    );
    Ok(())
}

/// Obtains credentials from the issuer and makes the pool of presentations, on every core.
fn prepare(args: &UploadArgs, cluster: &Cluster) -> Result<Arc<Vec<Prepared>>> {
    let t = Instant::now();
    let wanted = (args.presentations)
        .unwrap_or(args.seconds as usize * PRESENTATIONS_PER_SECOND)
        .max(1);
    let visitors = wanted.div_ceil(WINDOWS as usize);
    let runtime = tokio::runtime::Runtime::new()?;
    let mut wallets: Vec<Wallet> = runtime.block_on(cluster.wallets(visitors, None))?;
    let task = &cluster.task;
    let threads = std::thread::available_parallelism().map_or(2, |n| n.get());
    let per_thread = visitors.div_ceil(threads);
    let made: Vec<Vec<Prepared>> = std::thread::scope(|scope| {
        let handles: Vec<_> = wallets
            .chunks_mut(per_thread)
            .map(|chunk| {
                scope.spawn(move || {
                    let mut rng = rand::rngs::StdRng::from_rng(&mut rand::rng());
                    let mut out = Vec::with_capacity(chunk.len() * WINDOWS as usize);
                    for wallet in chunk {
                        for window in 0..WINDOWS {
                            out.push((window, wallet.next_presentation(task, window, &mut rng)?));
                        }
                    }
                    anyhow::Ok(out)
                })
            })
            .collect();
        handles
            .into_iter()
            .map(|h| {
                h.join()
                    .map_err(|_| anyhow!("a presentation thread panicked"))?
            })
            .collect::<Result<_>>()
    })?;
    // Interleave the threads' pools so that consecutive uploads hit different windows.
    let mut pool: Vec<Prepared> = made.into_iter().flatten().collect();
    pool.sort_by_key(|(window, _)| *window);
    pool.truncate(wanted);
    println!(
        "bench: {} presentations from {visitors} credentials over {WINDOWS} windows, prepared in {:.1} s",
        pool.len(),
        t.elapsed().as_secs_f64()
    );
    Ok(Arc::new(pool))
}

type Drive = (u64, Vec<Duration>, f64);

fn drive(args: &UploadArgs, cluster: &Cluster, prepared: Arc<Vec<Prepared>>) -> Result<Drive> {
    let task = cluster.task.clone();
    let poplar = Poplar1::new(32).map_err(|e| anyhow!("{e}"))?;
    let mut rng = rand::rng();
    let pool: Vec<v1::Report> = (0..256)
        .map(|i| hotspot_client::grpc::seal_for_task(&task, &poplar, i + 1, 0, &mut rng))
        .collect::<Result<_, _>>()?;
    let pool = Arc::new(pool);
    let runtime = tokio::runtime::Runtime::new()?;
    runtime.block_on(async {
        // Phones do not share one HTTP/2 connection: the workers spread over `connections`
        // of them, round robin.
        let mut channels = Vec::new();
        for _ in 0..args.connections.clamp(1, args.concurrency.max(1)) {
            let channel = tonic::transport::Endpoint::from_shared(cluster.url("leader"))?
                .tcp_nodelay(true)
                .connect()
                .await?;
            channels.push(channel);
        }
        let done = Arc::new(AtomicBool::new(false));
        let next = Arc::new(AtomicUsize::new(0));
        let start = Instant::now();
        let mut workers = Vec::new();
        for w in 0..args.concurrency {
            let channel = &channels[w % channels.len()];
            let (pool, done) = (Arc::clone(&pool), Arc::clone(&done));
            let (prepared, next) = (Arc::clone(&prepared), Arc::clone(&next));
            let mut client = v1::upload_client::UploadClient::new(channel.clone());
            workers.push(tokio::spawn(async move {
                let mut rng = rand::rngs::StdRng::from_rng(&mut rand::rng());
                let mut lat = Vec::new();
                while !done.load(Ordering::Relaxed) {
                    let i = next.fetch_add(1, Ordering::Relaxed);
                    let Some((window, presentation)) = prepared.get(i) else {
                        break;
                    };
                    let mut report = pool[i % pool.len()].clone();
                    rng.fill_bytes(&mut report.report_id);
                    report.window = *window;
                    report.presentation = presentation.clone();
                    let t = Instant::now();
                    client
                        .upload(v1::UploadRequest {
                            report: Some(report),
                        })
                        .await?;
                    lat.push(t.elapsed());
                }
                anyhow::Ok(lat)
            }));
        }
        let deadline = start + Duration::from_secs(args.seconds);
        while Instant::now() < deadline && next.load(Ordering::Relaxed) < prepared.len() {
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
        done.store(true, Ordering::Relaxed);
        let elapsed = start.elapsed().as_secs_f64();
        let mut all = Vec::new();
        for w in workers {
            all.extend(w.await??);
        }
        if next.load(Ordering::Relaxed) >= prepared.len() {
            println!(
                "bench: the {} prepared presentations ran out after {elapsed:.1} s",
                prepared.len()
            );
        }
        Ok((all.len() as u64, all, elapsed))
    })
}

fn count_rows(path: &std::path::Path) -> Result<u64> {
    let conn = rusqlite::Connection::open(path)?;
    let n: i64 = conn.query_row("SELECT COUNT(*) FROM reports", [], |r| r.get(0))?;
    Ok(n as u64)
}
