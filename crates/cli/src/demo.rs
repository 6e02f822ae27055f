//! `hotspot demo`: the whole pipeline on a small synthetic city, for real: the leader, helper,
//! collector and issuer start as separate processes on loopback ports with SQLite files in a
//! fresh folder; every simulated visitor is enrolled and obtains a crowding credential from
//! the issuer over gRPC and presents it for the window; the city's check-ins are sharded,
//! sealed, given their visitor's presentation and uploaded (both aggregators verify it); the batch seals; the
//! collector searches it; the alerts are compared with the plaintext ground truth and written
//! to `report.html` with a heat map. The last line is
//! `demo: alerts=<n> precision=<p> recall=<r>`.

use std::collections::HashSet;
use std::path::PathBuf;
use std::sync::Arc;
use std::time::{Duration, Instant};

use anyhow::{Context, Result, anyhow};
use clap::Args;
use indicatif::{ProgressBar, ProgressStyle};

use hotspot_core::task::SearchMode;
use hotspot_proto::v1;
use hotspot_vdaf::Poplar1;

use crate::city::City;
use crate::cluster::{Cluster, ClusterSpec, stop};
use crate::report::make_report;

/// `hotspot demo` options.
#[derive(Debug, Args)]
pub struct DemoArgs {
    /// Folder for the databases, configs, logs and report (default: a fresh one under the
    /// system's temporary folder).
    #[arg(long)]
    pub dir: Option<PathBuf>,
    /// City seed.
    #[arg(long, default_value_t = 7)]
    pub seed: u64,
    /// Number of venues.
    #[arg(long, default_value_t = 200)]
    pub venues: usize,
    /// Ordinary check-ins in the hour.
    #[arg(long, default_value_t = 3_000)]
    pub checkins: usize,
    /// Alert threshold (check-ins per venue-hour).
    #[arg(long, default_value_t = 60)]
    pub threshold: u64,
}

fn bar(len: u64, what: &str) -> ProgressBar {
    let pb = ProgressBar::new(len);
    pb.set_style(
        ProgressStyle::with_template("{msg:>10} [{bar:40}] {pos}/{len} {elapsed}")
            .unwrap_or_else(|_| ProgressStyle::default_bar())
            .progress_chars("=> "),
    );
    pb.set_message(what.to_string());
    pb
}

/// Runs the demo.
pub fn run(args: DemoArgs) -> Result<()> {
    let dir = match &args.dir {
        Some(d) => d.clone(),
        None => std::env::temp_dir().join(format!("hotspot-demo-{}", hotspot_server::now_unix())),
    };
    println!("demo: folder {}", dir.display());
    let city = City::generate(
        args.seed,
        args.venues,
        args.checkins,
        5,
        args.threshold as usize + 20,
    );
    let truth = city.counts();
    let expected: HashSet<u64> = truth
        .iter()
        .filter(|(_, n)| **n >= args.threshold)
        .map(|(c, _)| *c)
        .collect();
    println!(
        "demo: city of {} venues, {} check-ins, {} venues over the threshold {}",
        city.venues.len(),
        city.checkins.len(),
        expected.len(),
        args.threshold
    );

    // Set up and start the three roles.
    let t0 = Instant::now();
    let spec = ClusterSpec {
        window_seconds: 12,
        grace_seconds: 1,
        threshold: args.threshold,
        search_mode: SearchMode::Registry,
        bits: 32,
        registry: city.venues.iter().map(|v| v.code).collect(),
        job_size: 2_000,
        search_poll_seconds: 0,
    };
    let exe = std::env::current_exe().context("locating the hotspot binary")?;
    let mut cluster = Cluster::prepare(&dir, &exe, &spec)?;
    let mut children = vec![cluster.start("issuer")?];
    let result = credentials(&mut cluster, &city).and_then(|presentations| {
        // The window starts once every visitor holds a credential.
        cluster.rewrite_task(|t| t.start_unix = hotspot_server::now_unix())?;
        for role in ["helper", "leader", "collector"] {
            children.push(cluster.start(role)?);
        }
        println!(
            "demo: leader, helper, collector and issuer up on ports {:?} ({:.1} s)",
            cluster.ports,
            t0.elapsed().as_secs_f64()
        );
        run_pipeline(&cluster, &city, &expected, presentations)
    });
    for c in children {
        stop(c);
    }
    result
}

/// Every visitor (here: one per check-in) enrols, obtains a crowding credential from the
/// issuer over gRPC and presents it for window 0 (on every core), before the window opens.
fn credentials(cluster: &mut Cluster, city: &City) -> Result<Vec<Vec<u8>>> {
    let t = Instant::now();
    let runtime = tokio::runtime::Runtime::new()?;
    let pb = bar(city.checkins.len() as u64, "credential");
    let mut wallets = runtime.block_on(cluster.wallets(city.checkins.len(), Some(pb.clone())))?;
    pb.finish();
    let task = &cluster.task;
    let threads = std::thread::available_parallelism().map_or(2, |n| n.get());
    let chunk = wallets.len().div_ceil(threads).max(1);
    let presentations = std::thread::scope(|scope| {
        let handles: Vec<_> = wallets
            .chunks_mut(chunk)
            .map(|wallets| {
                scope.spawn(move || {
                    let mut rng = rand::rng();
                    (wallets.iter_mut())
                        .map(|w| w.next_presentation(task, 0, &mut rng))
                        .collect::<Result<Vec<_>, _>>()
                })
            })
            .collect();
        handles
            .into_iter()
            .map(|h| {
                h.join()
                    .map_err(|_| anyhow!("a presentation thread panicked"))?
                    .map_err(anyhow::Error::from)
            })
            .collect::<Result<Vec<_>>>()
    })?;
    println!(
        "demo: {} visitors enrolled, each holding a credential and a presentation ({:.1} s)",
        wallets.len(),
        t.elapsed().as_secs_f64()
    );
    Ok(presentations.into_iter().flatten().collect())
}

fn run_pipeline(
    cluster: &Cluster,
    city: &City,
    expected: &HashSet<u64>,
    presentations: Vec<Vec<u8>>,
) -> Result<()> {
    let runtime = tokio::runtime::Runtime::new()?;
    let task = cluster.task.clone();
    let poplar = Poplar1::new(task.bits as usize).map_err(|e| anyhow!("{e}"))?;

    // Shard and seal every check-in, with a presentation of its visitor's credential.
    let t = Instant::now();
    let pb = bar(city.checkins.len() as u64, "shard");
    let mut rng = rand::rng();
    let mut reports = Vec::with_capacity(city.checkins.len());
    for (&venue, presentation) in city.checkins.iter().zip(presentations) {
        let mut report = make_report(&task, &poplar, venue, 0, &mut rng)?;
        report.presentation = presentation;
        reports.push(report);
        pb.inc(1);
    }
    pb.finish();
    let bytes = prost::Message::encoded_len(&reports[0]);
    let shard_s = t.elapsed().as_secs_f64();

    // Upload.
    let t = Instant::now();
    let pb = bar(reports.len() as u64, "upload");
    let url = cluster.url("leader");
    let acked = runtime.block_on(upload_all(url, reports, 16, pb.clone()))?;
    pb.finish();
    let upload_s = t.elapsed().as_secs_f64();

    // Wait for the seal.
    let seal_at = task.seal_time(0) + hotspot_server::leader::SEAL_SETTLE_SECONDS;
    let wait = seal_at.saturating_sub(hotspot_server::now_unix());
    let pb = bar(wait, "seal");
    for _ in 0..wait {
        std::thread::sleep(Duration::from_secs(1));
        pb.inc(1);
    }
    pb.finish();

    // Search.
    let t = Instant::now();
    let collector_url = cluster.url("collector");
    let result = runtime.block_on(async move {
        let mut c = v1::collector_client::CollectorClient::connect(collector_url).await?;
        let reply = c
            .run_search(v1::RunSearchRequest {
                batch: Some(v1::BatchId {
                    task_id: task.id.0.to_vec(),
                    window: 0,
                }),
            })
            .await?
            .into_inner();
        anyhow::Ok(reply)
    })?;
    let search_s = t.elapsed().as_secs_f64();

    // Compare with the ground truth.
    let found: HashSet<u64> = result.alerts.iter().map(|a| a.venue_code).collect();
    let tp = found.intersection(expected).count() as f64;
    let precision = if found.is_empty() {
        1.0
    } else {
        tp / found.len() as f64
    };
    let recall = if expected.is_empty() {
        1.0
    } else {
        tp / expected.len() as f64
    };
    let truth = city.counts();
    println!("\n{:>12} {:>8} {:>8}", "venue", "count", "truth");
    for a in &result.alerts {
        println!(
            "{:>12} {:>8} {:>8}",
            a.venue_code,
            a.count,
            truth.get(&a.venue_code).copied().unwrap_or(0)
        );
    }
    println!(
        "\ndemo: acknowledged={acked} aggregated={} rejected={} bytes_per_report={bytes}",
        result.report_count, result.rejected_count
    );
    println!("demo: phases shard={shard_s:.1}s upload={upload_s:.1}s search={search_s:.1}s");
    let html = cluster.dir.join("report.html");
    std::fs::write(&html, render_html(city, &result, precision, recall))?;
    println!("demo: report {}", html.display());
    println!(
        "demo: alerts={} precision={precision:.3} recall={recall:.3}",
        found.len()
    );
    Ok(())
}

/// Uploads every report with `concurrency` workers; returns how many were acknowledged.
pub async fn upload_all(
    url: String,
    reports: Vec<v1::Report>,
    concurrency: usize,
    pb: ProgressBar,
) -> Result<u64> {
    let channel = tonic::transport::Endpoint::from_shared(url)?
        .connect()
        .await?;
    let queue = Arc::new(std::sync::Mutex::new(reports));
    let mut workers = Vec::new();
    for _ in 0..concurrency {
        let (queue, pb) = (Arc::clone(&queue), pb.clone());
        let mut client = v1::upload_client::UploadClient::new(channel.clone());
        workers.push(tokio::spawn(async move {
            let mut acked = 0u64;
            loop {
                let next = queue.lock().map_err(|_| anyhow!("queue poisoned"))?.pop();
                let Some(report) = next else {
                    return anyhow::Ok(acked);
                };
                client
                    .upload(v1::UploadRequest {
                        report: Some(report),
                    })
                    .await?;
                acked += 1;
                pb.inc(1);
            }
        }));
    }
    let mut total = 0;
    for w in workers {
        total += w.await??;
    }
    Ok(total)
}

fn render_html(city: &City, result: &v1::RunSearchResponse, precision: f64, recall: f64) -> String {
    let alerted: std::collections::HashMap<u64, i64> = result
        .alerts
        .iter()
        .map(|a| (a.venue_code, a.count))
        .collect();
    let max = alerted.values().copied().max().unwrap_or(1).max(1) as f64;
    let mut svg = String::from(
        "<svg xmlns='http://www.w3.org/2000/svg' width='600' height='600' style='background:#f4f4f4'>",
    );
    for v in &city.venues {
        let (x, y) = (v.x * 580.0 + 10.0, v.y * 580.0 + 10.0);
        match alerted.get(&v.code) {
            Some(&n) => {
                let heat = n as f64 / max;
                svg += &format!(
                    "<circle cx='{x:.1}' cy='{y:.1}' r='{:.1}' fill='rgb(220,{},30)' fill-opacity='0.8'><title>venue {} : {n}</title></circle>",
                    8.0 + 12.0 * heat,
                    (160.0 * (1.0 - heat)) as u8,
                    v.code
                )
            }
            None => svg += &format!("<circle cx='{x:.1}' cy='{y:.1}' r='2' fill='#999'/>"),
        }
    }
    svg += "</svg>";
    let rows: String = result
        .alerts
        .iter()
        .map(|a| {
            format!(
                "<tr><td>{}</td><td>{}</td><td>{}</td><td>{}</td></tr>",
                a.venue_code, a.count, a.rule, a.level
            )
        })
        .collect();
    format!(
        "<!doctype html><html><head><meta charset='utf-8'><title>hotspot demo</title>\
         <style>body{{font-family:sans-serif;margin:2em}}td,th{{padding:4px 12px;text-align:right}}</style></head><body>\
         <h1>hotspot demo</h1><p>{} reports aggregated, {} rejected; precision {precision:.3}, recall {recall:.3}.</p>\
         <h2>Heat map of alerted venues</h2>{svg}<h2>Alerts</h2><table><tr><th>venue</th><th>count</th><th>rule</th><th>level</th></tr>{rows}</table>\
         </body></html>",
        result.report_count, result.rejected_count
    )
}
