//! `hotspot bench upload --seconds S --concurrency C`: real uploads into a leader process on
//! loopback for S seconds from C concurrent clients, then a count of what the leader's
//! database holds against what was acknowledged. Ends with
//! `uploads_per_s=<n> p50_ms=<x> p99_ms=<y> lost=<k>`.
//!
//! To measure the leader rather than the client's Poplar1 sharding, a pool of 256 reports is
//! sharded once and re-sent with fresh report ids. The leader does not open shares on upload,
//! so it stores them all; they would be rejected at aggregation (the report id is bound into
//! each share's associated data), which this benchmark does not run.

use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::{Duration, Instant};

use anyhow::{Result, anyhow};
use clap::Args;
use rand::{Rng, SeedableRng};

use hotspot_core::task::SearchMode;
use hotspot_proto::v1;
use hotspot_vdaf::Poplar1;

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
    /// Folder for the leader's files (default: a fresh temporary one).
    #[arg(long)]
    pub dir: Option<std::path::PathBuf>,
}

/// Runs the benchmark.
pub fn run_upload(args: UploadArgs) -> Result<()> {
    let dir = args.dir.clone().unwrap_or_else(|| {
        std::env::temp_dir().join(format!("hotspot-bench-{}", hotspot_server::now_unix()))
    });
    let spec = ClusterSpec {
        window_seconds: 3_600,
        grace_seconds: 60,
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
    let cluster = Cluster::prepare(&dir, &std::env::current_exe()?, &spec)?;
    let leader = cluster.start("leader")?;
    let outcome = drive(&args, &cluster);
    stop(leader);
    let (acked, mut latencies, elapsed) = outcome?;
    let stored = count_rows(&dir.join("leader.sqlite"))?;
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

type Drive = (u64, Vec<Duration>, f64);

fn drive(args: &UploadArgs, cluster: &Cluster) -> Result<Drive> {
    let task = cluster.task.clone();
    let poplar = Poplar1::new(32).map_err(|e| anyhow!("{e}"))?;
    let mut rng = rand::rng();
    let pool: Vec<v1::Report> = (0..256)
        .map(|i| hotspot_client::grpc::seal_for_task(&task, &poplar, i + 1, 0, &mut rng))
        .collect::<Result<_, _>>()?;
    let pool = Arc::new(pool);
    let runtime = tokio::runtime::Runtime::new()?;
    runtime.block_on(async {
        let channel = tonic::transport::Endpoint::from_shared(cluster.url("leader"))?
            .tcp_nodelay(true)
            .connect()
            .await?;
        let done = Arc::new(AtomicBool::new(false));
        let start = Instant::now();
        let mut workers = Vec::new();
        for w in 0..args.concurrency {
            let (pool, done) = (Arc::clone(&pool), Arc::clone(&done));
            let mut client = v1::upload_client::UploadClient::new(channel.clone());
            workers.push(tokio::spawn(async move {
                let mut rng = rand::rngs::StdRng::from_rng(&mut rand::rng());
                let mut lat = Vec::new();
                let mut i = w;
                while !done.load(Ordering::Relaxed) {
                    let mut report = pool[i % pool.len()].clone();
                    i += 1;
                    rng.fill_bytes(&mut report.report_id);
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
        tokio::time::sleep(Duration::from_secs(args.seconds)).await;
        done.store(true, Ordering::Relaxed);
        let mut all = Vec::new();
        for w in workers {
            all.extend(w.await??);
        }
        Ok((all.len() as u64, all, start.elapsed().as_secs_f64()))
    })
}

fn count_rows(path: &std::path::Path) -> Result<u64> {
    let conn = rusqlite::Connection::open(path)?;
    let n: i64 = conn.query_row("SELECT COUNT(*) FROM reports", [], |r| r.get(0))?;
    Ok(n as u64)
}
