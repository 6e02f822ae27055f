//! `hotspot demo`: the whole pipeline on the synthetic city of crates/core, for real, with
//! differential-privacy noise on.
//!
//! The city (venues with category, capacity and coordinates; visitors with daily routines)
//! is generated from a seed, and the demo takes one crowding window of its day: the hour with
//! the most venues over their crowding threshold, unless `--hour` says otherwise. The leader,
//! helper, collector and issuer start as separate processes on loopback ports with SQLite files
//! in a fresh folder, the city's venues registered in the collector's registry. Every visitor
//! present in that hour is enrolled and obtains a crowding credential from the issuer over
//! gRPC; then, through the visitor client library as a phone does, it scans its venue's
//! poster payload (signed with the registry key), checks in, prepares its crowding report and
//! reserves a presentation for it; the client's uploader shards and seals every report (on all
//! cores) and uploads them concurrently with retries; the batch seals; the collector searches it (both aggregators add
//! their own noise and keep their own privacy books); and the alerts are printed beside the
//! plaintext ground truth, with precision, recall, the privacy spent, time per phase and bytes
//! per report, and written to `report.html` with a heat map. The first line gives the
//! collector's dashboard URL (log in with the token in the folder's `dashboard.token`);
//! `--keep` keeps the roles running after the demo so it stays up. The last line is
//! `demo: alerts=<n> precision=<p> recall=<r>`.
//!
//! The demo's window is short (seconds, not an hour) so that it seals quickly; its privacy
//! budget is that of an hourly task (24 windows a day). The outbreak task is not part of the
//! demo: `hotspot bench accuracy --task outbreak` runs it over the same city.

use std::collections::{BTreeMap, HashMap, HashSet};
use std::path::PathBuf;
use std::sync::Arc;
use std::time::{Duration, Instant};

use anyhow::{Context, Result, anyhow};
use clap::Args;
use indicatif::{ProgressBar, ProgressStyle};

use hotspot_client::credential::Wallet;
use hotspot_client::diary::CheckIn;
use hotspot_client::grpc::{GrpcUploader, Presenter, present_ticket, reserve_tickets};
use hotspot_client::payload::UrlConfig;
use hotspot_client::registry::TrustedKeys;
use hotspot_client::scan::{ScanConfig, scan};
use hotspot_client::upload::{
    PreparedReport, RetryPolicy, UploadError, UploadSummary, WindowGrid, crowding_report,
    upload_with_retries,
};
use hotspot_core::city::{Batches, City, CityConfig, Venue, WINDOWS};
use hotspot_core::dp::rho_for_epsilon;
use hotspot_core::rules::Rules;
use hotspot_core::task::{PrivacyParams, SearchMode, SearchParams, TaskConfig, TaskKind};
use hotspot_proto::v1;
use hotspot_server::config::DEFAULT_PAYLOAD_HOST;
use hotspot_server::storage::VenueRecord;
use rand::SeedableRng;
use rand::rngs::StdRng;

use crate::cluster::{Cluster, ClusterSpec, stop};

/// The demo's window length: long enough to upload one hour of the city, short enough to wait
/// for its seal.
const WINDOW_SECONDS: u64 = 15;
/// Uploads in flight at once (the phones of a city upload concurrently).
const UPLOADERS: usize = 16;
/// The delta the demo's epsilon is stated at.
const DELTA: f64 = 1e-9;
/// Where the city's square map is placed (degrees): its south-west corner.
const ORIGIN: (f64, f64) = (48.80, 2.25);
/// Metres per degree of latitude.
const METRES_PER_DEGREE: f64 = 111_320.0;

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
    /// Visitors in the city.
    #[arg(long, default_value_t = 8_000)]
    pub visitors: u32,
    /// Venues in the city.
    #[arg(long, default_value_t = 800)]
    pub venues: u32,
    /// The hour of the city's day to upload and search (0 to 23; default: the hour with the
    /// most venues over their crowding threshold).
    #[arg(long)]
    pub hour: Option<u64>,
    /// Privacy loss per person for the window, at delta 1e-9.
    #[arg(long, default_value_t = 1.0)]
    pub epsilon: f64,
    /// Switch the noise off (the alerts then equal the ground truth).
    #[arg(long)]
    pub no_noise: bool,
    /// Keep the leader, helper, collector and issuer running after the demo, until Ctrl-C, so
    /// that the dashboard stays up.
    #[arg(long)]
    pub keep: bool,
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

/// The window of the city the demo runs: its reports and the ground truth on them.
struct Hour {
    hour: u64,
    /// One venue code per visitor present.
    reports: Vec<u64>,
    /// Exact count per venue code.
    truth: HashMap<u64, u64>,
    /// The venues over their crowding threshold.
    expected: HashSet<u64>,
}

impl Hour {
    /// `hour` of `batches`, or the hour with the most true alerts (the earliest of equals).
    fn pick(batches: &Batches, hour: Option<u64>) -> Result<Self> {
        let alerts_in = |h: u64| batches.alerts.keys().filter(|(_, w)| *w == h).count();
        let hour = match hour {
            Some(h) if h < WINDOWS => h,
            Some(h) => anyhow::bail!("--hour {h}: the day has hours 0 to 23"),
            None => (0..WINDOWS)
                .max_by_key(|&h| (alerts_in(h), std::cmp::Reverse(h)))
                .unwrap_or(0),
        };
        Ok(Self {
            hour,
            reports: batches.reports[hour as usize].clone(),
            truth: batches
                .counts
                .iter()
                .filter(|((_, w), _)| *w == hour)
                .map(|(&(code, _), &n)| (code, n))
                .collect(),
            expected: batches
                .alerts
                .keys()
                .filter(|(_, w)| *w == hour)
                .map(|&(code, _)| code)
                .collect(),
        })
    }
}

/// Runs the demo.
pub fn run(args: DemoArgs) -> Result<()> {
    let dir = match &args.dir {
        Some(d) => d.clone(),
        None => std::env::temp_dir().join(format!("hotspot-demo-{}", hotspot_server::now_unix())),
    };

    // The city and the hour it uploads.
    let t0 = Instant::now();
    let venues = args.venues.max(1);
    let config = CityConfig::sized(args.seed, args.visitors, venues, (venues / 250).max(1));
    let city = City::generate(&config);
    let rules = Rules::default_for(TaskKind::Crowding);
    let hour = Hour::pick(&city.crowding(&rules), args.hour)?;
    let city_s = t0.elapsed().as_secs_f64();

    // The cluster: the city's venues in the collector's registry, an hourly privacy budget.
    let spec = cluster_spec(&city, rules, &args)?;
    let exe = std::env::current_exe().context("locating the hotspot binary")?;
    let mut cluster = Cluster::prepare(&dir, &exe, &spec)?;
    println!(
        "demo: dashboard {} (log in with the token in {})",
        cluster.dashboard_url(),
        cluster.dashboard_token_file().display()
    );
    println!("demo: folder {}", dir.display());
    println!(
        "demo: city seed={} visitors={} venues={} check-ins={}; hour {:02}:00 has {} reports and \
         {} venues over their crowding threshold ({city_s:.1} s)",
        config.seed,
        config.visitors,
        config.venues,
        city.checkins.len(),
        hour.hour,
        hour.reports.len(),
        hour.expected.len(),
    );
    print_task(&cluster.task, city.venues.len())?;

    let mut children = vec![cluster.start("issuer")?];
    let result = run_pipeline(&mut cluster, &city, &hour, &mut children);
    if args.keep && result.is_ok() {
        eprintln!(
            "demo: serving the dashboard at {} until Ctrl-C",
            cluster.dashboard_url()
        );
        let runtime = tokio::runtime::Runtime::new()?;
        runtime.block_on(tokio::signal::ctrl_c())?;
    }
    for c in children {
        stop(c);
    }
    result
}

/// The cluster of the demo: registry mode over the city's venues, the task's default crowding
/// rule, epsilon per window as asked with a day of 24 such windows.
fn cluster_spec(city: &City, rules: Rules, args: &DemoArgs) -> Result<ClusterSpec> {
    let rho_batch = rho_for_epsilon(args.epsilon, DELTA).context("--epsilon")?;
    let privacy = PrivacyParams {
        noise: !args.no_noise,
        rho_batch,
        rho_day: rho_batch * WINDOWS as f64,
        delta: DELTA,
        windows_per_day: WINDOWS as u32,
    };
    Ok(ClusterSpec {
        window_seconds: WINDOW_SECONDS,
        grace_seconds: 1,
        threshold: 1,
        rules,
        privacy,
        search: SearchParams::default(),
        presentations_per_window: 1,
        search_mode: SearchMode::Registry,
        bits: city.config.bits,
        venues: city
            .venues
            .iter()
            .enumerate()
            .map(|(i, v)| venue_record(i, v))
            .collect(),
        job_size: 2_000,
        search_poll_seconds: 0,
    })
}

/// A city venue as the registry holds it: named after its category, placed on the map.
fn venue_record(index: usize, v: &Venue) -> VenueRecord {
    let category = v.info.category;
    let mut name = category.name().replace('_', " ");
    if let Some(first) = name.get_mut(0..1) {
        first.make_ascii_uppercase();
    }
    let lat = ORIGIN.0 + v.y / METRES_PER_DEGREE;
    let lon = ORIGIN.1 + v.x / (METRES_PER_DEGREE * ORIGIN.0.to_radians().cos());
    VenueRecord {
        code: v.code,
        name: format!("{name} {}", index + 1),
        address: format!("{} Demo Street", index + 1),
        lat,
        lon,
        category,
        capacity: v.info.capacity,
        default_minutes: 60,
        registered_unix: 0,
    }
}

/// What the task releases: the noise of its one (registry mode) release over `candidates`.
fn print_task(task: &TaskConfig, candidates: usize) -> Result<()> {
    let dp = task.dp();
    let plan = task.search_config(task.threshold);
    let noise = plan.release_noise(&dp, task.bits - 1, candidates.max(1))?;
    match noise {
        Some(n) => println!(
            "demo: task crowding, {:?} mode, noise on: epsilon={:.2} per person per window at \
             delta={:e} (rho={:.5}), each aggregator adds N_Z(0, {:.1}), sd of a released \
             count {:.1}",
            task.search_mode,
            hotspot_core::dp::epsilon_for_rho(n.rho, task.privacy.delta)?,
            task.privacy.delta,
            n.rho,
            n.sigma2.to_f64(),
            (2.0 * n.sigma2.to_f64()).sqrt()
        ),
        None => println!(
            "demo: task crowding, {:?} mode, noise OFF: counts are exact",
            task.search_mode
        ),
    }
    Ok(())
}

/// Timings of the phases, in seconds.
#[derive(Default)]
struct Phases {
    credentials: f64,
    shard: f64,
    start: f64,
    upload: f64,
    seal: f64,
    search: f64,
}

fn run_pipeline(
    cluster: &mut Cluster,
    city: &City,
    hour: &Hour,
    children: &mut Vec<std::process::Child>,
) -> Result<()> {
    let runtime = tokio::runtime::Runtime::new()?;
    let mut phases = Phases::default();

    // The visitors' side, before the aggregators start: credentials, then sealed reports.
    let t = Instant::now();
    let wallets = obtain_credentials(&runtime, cluster, hour.reports.len())?;
    phases.credentials = t.elapsed().as_secs_f64();
    let t = Instant::now();
    let (uploader, reports) = {
        // The uploader's channel belongs to the runtime that later drives the uploads.
        let _runtime = runtime.enter();
        prepare_reports(cluster, city, &hour.reports, wallets)?
    };
    let bytes = seal_all(&uploader, &reports)?;
    phases.shard = t.elapsed().as_secs_f64();

    // Window 0 opens now, and the aggregators and the collector start on that task.
    let t = Instant::now();
    cluster.rewrite_task(|task| task.start_unix = hotspot_server::now_unix())?;
    for role in ["helper", "leader", "collector"] {
        children.push(cluster.start(role)?);
    }
    phases.start = t.elapsed().as_secs_f64();
    println!(
        "demo: leader, helper, collector and issuer up on ports {:?}",
        cluster.ports
    );

    // Upload, wait for the seal, search.
    let t = Instant::now();
    let pb = bar(reports.len() as u64, "upload");
    let summary = runtime.block_on(upload_all(uploader, reports, UPLOADERS, pb.clone()))?;
    let acked = summary.acknowledged;
    pb.finish();
    phases.upload = t.elapsed().as_secs_f64();
    let t = Instant::now();
    wait_for_seal(&cluster.task);
    phases.seal = t.elapsed().as_secs_f64();
    let t = Instant::now();
    let result = runtime.block_on(search(cluster.url("collector"), &cluster.task))?;
    phases.search = t.elapsed().as_secs_f64();

    // The alerts beside the ground truth.
    let score = Score::of(&result, &hour.expected);
    let table = Table::new(city, &cluster.task.rules, hour, &result);
    table.print();
    println!(
        "\ndemo: acknowledged={acked} aggregated={} rejected={} bytes_per_report={bytes}",
        result.report_count, result.rejected_count
    );
    if let Some(s) = &result.summary {
        println!(
            "demo: privacy noise={} epsilon_spent={:.3} epsilon_left_today={:.3} delta={:e} \
             rho_spent={:.5}",
            s.noise, s.epsilon_spent, s.epsilon_left, s.delta, s.rho_spent
        );
    }
    println!(
        "demo: phases credentials={:.1}s shard={:.1}s start={:.1}s upload={:.1}s seal={:.1}s \
         search={:.1}s",
        phases.credentials, phases.shard, phases.start, phases.upload, phases.seal, phases.search
    );
    let html = cluster.dir.join("report.html");
    let page = render_html(city, &table, &result, &score, &cluster.dashboard_url());
    std::fs::write(&html, page)?;
    println!("demo: report {}", html.display());
    println!(
        "demo: alerts={} precision={:.3} recall={:.3}",
        score.found, score.precision, score.recall
    );
    Ok(())
}

/// Every visitor (one per report) enrols and obtains a crowding credential over gRPC.
fn obtain_credentials(
    runtime: &tokio::runtime::Runtime,
    cluster: &Cluster,
    visitors: usize,
) -> Result<Vec<Wallet>> {
    let pb = bar(visitors as u64, "credential");
    let wallets = runtime.block_on(cluster.wallets(visitors, Some(pb.clone())))?;
    pb.finish();
    Ok(wallets)
}

/// Every visitor's phone, through the client library: it scans its venue's poster (the payload
/// the collector's registry key signs), checks in at the start of window 0, prepares the
/// check-in's crowding report and reserves a presentation of its credential for it. One
/// uploader then seals and sends the reports of all the phones; it seals to the task file's
/// leader key, so that the Poplar1 work happens before the window opens.
fn prepare_reports(
    cluster: &Cluster,
    city: &City,
    codes: &[u64],
    wallets: Vec<Wallet>,
) -> Result<(GrpcUploader<Phones>, Vec<PreparedReport>)> {
    let task = &cluster.task;
    let (key, host) = (cluster.registry_key()?, DEFAULT_PAYLOAD_HOST.to_owned());
    let now = hotspot_server::now_unix();
    let today = u32::try_from(now / hotspot_client::DAY_SECS).unwrap_or(u32::MAX);
    let url = UrlConfig { host };
    let mut posters = HashMap::new();
    for (i, v) in city.venues.iter().enumerate() {
        let record = venue_record(i, v);
        let payload = hotspot_server::registry::venue_payload(
            &record,
            city.config.bits,
            today.saturating_add(1),
        )
        .sign(&key)?;
        posters.insert(v.code, payload.to_url(&url));
    }
    let scanner = ScanConfig {
        url,
        keys: TrustedKeys::new([key.public()]),
        legacy_bits: city.config.bits,
        typed_default_minutes: 60,
    };

    let pb = bar(codes.len() as u64, "check in");
    let (grid, task_hex) = (WindowGrid::of_task(task), task.id.to_hex());
    let mut rng = rand::rng();
    let mut reports = Vec::with_capacity(codes.len());
    let mut phones = HashMap::with_capacity(codes.len());
    for (i, (code, mut wallet)) in codes.iter().zip(wallets).enumerate() {
        let poster = posters
            .get(code)
            .context("a report for an unregistered venue")?;
        let venue = scan(poster, &scanner, now)?;
        let checkin = CheckIn {
            id: i as u64 + 1,
            arrival: task.window_start(0),
            departure: task.window_start(0) + u64::from(venue.default_minutes) * 60,
            venue,
            crowding_reported: false,
        };
        let mut report = [crowding_report(&checkin, &task_hex, grid, &mut rng)];
        reserve_tickets(&mut wallet, task, &mut report)?;
        let [report] = report;
        phones.insert(report.report_id, wallet);
        reports.push(report);
        pb.inc(1);
    }
    pb.finish();
    let leader_key = *task
        .leader_keys
        .first()
        .context("the task has no leader key")?;
    let uploader = GrpcUploader::with_leader_key(
        &cluster.url("leader"),
        task.clone(),
        leader_key,
        Phones(phones),
    )?;
    Ok((uploader, reports))
}

/// The phones of the demo's visitors, one wallet per report.
struct Phones(HashMap<[u8; 16], Wallet>);

impl Presenter for Phones {
    fn present(
        &self,
        task: &TaskConfig,
        window: u64,
        report: &PreparedReport,
    ) -> Result<Vec<u8>, UploadError> {
        let wallet = self
            .0
            .get(&report.report_id)
            .ok_or_else(|| UploadError::Rejected("no phone holds this report".into()))?;
        present_ticket(wallet, task, window, report)
    }
}

/// Shards and seals every report (Poplar1, HPKE, presentation) on all cores; returns the size
/// of one sealed report in bytes.
fn seal_all(uploader: &GrpcUploader<Phones>, reports: &[PreparedReport]) -> Result<usize> {
    let pb = bar(reports.len() as u64, "shard");
    let threads = std::thread::available_parallelism().map_or(2, |n| n.get());
    let chunk = reports.len().div_ceil(threads).max(1);
    std::thread::scope(|scope| {
        let workers: Vec<_> = reports
            .chunks(chunk)
            .map(|part| {
                let pb = pb.clone();
                scope.spawn(move || {
                    for report in part {
                        uploader.seal(report)?;
                        pb.inc(1);
                    }
                    Ok::<(), UploadError>(())
                })
            })
            .collect();
        for worker in workers {
            worker
                .join()
                .map_err(|_| anyhow!("a sealing thread panicked"))??;
        }
        anyhow::Ok(())
    })?;
    pb.finish();
    let first = reports.first().map(|r| uploader.seal(r)).transpose()?;
    Ok(first.map_or(0, |r| prost::Message::encoded_len(&r)))
}

/// Sleeps, with a progress bar, until window 0 can be collected.
fn wait_for_seal(task: &TaskConfig) {
    let seal_at = task.seal_time(0) + hotspot_server::leader::SEAL_SETTLE_SECONDS;
    let wait = seal_at.saturating_sub(hotspot_server::now_unix());
    let pb = bar(wait, "seal");
    for _ in 0..wait {
        std::thread::sleep(Duration::from_secs(1));
        pb.inc(1);
    }
    pb.finish();
}

/// Asks the collector to search window 0.
async fn search(url: String, task: &TaskConfig) -> Result<v1::RunSearchResponse> {
    let mut c = v1::collector_client::CollectorClient::connect(url).await?;
    let reply = c
        .run_search(v1::RunSearchRequest {
            batch: Some(v1::BatchId {
                task_id: task.id.0.to_vec(),
                window: 0,
            }),
        })
        .await?
        .into_inner();
    Ok(reply)
}

/// Uploads every report with `concurrency` workers sharing one uploader (one connection), each
/// report retried on transient failures as a phone would.
async fn upload_all(
    uploader: GrpcUploader<Phones>,
    reports: Vec<PreparedReport>,
    concurrency: usize,
    pb: ProgressBar,
) -> Result<UploadSummary> {
    let queue = Arc::new(std::sync::Mutex::new(reports));
    let mut workers = Vec::new();
    for _ in 0..concurrency {
        let (queue, pb, uploader) = (Arc::clone(&queue), pb.clone(), uploader.clone());
        workers.push(tokio::spawn(async move {
            let mut rng = StdRng::from_rng(&mut rand::rng());
            let mut summary = UploadSummary::default();
            loop {
                let next = queue.lock().map_err(|_| anyhow!("queue poisoned"))?.pop();
                let Some(report) = next else {
                    return anyhow::Ok(summary);
                };
                upload_with_retries(
                    &uploader,
                    &report,
                    RetryPolicy::default(),
                    &mut rng,
                    &mut summary,
                )
                .await
                .map_err(|(attempts, e)| {
                    anyhow!("upload gave up after {attempts} attempts: {e}")
                })?;
                pb.inc(1);
            }
        }));
    }
    let mut total = UploadSummary::default();
    for w in workers {
        total.add(&w.await??);
    }
    Ok(total)
}

/// Precision and recall of the alerted venues against the true ones.
struct Score {
    found: usize,
    precision: f64,
    recall: f64,
}

impl Score {
    fn of(result: &v1::RunSearchResponse, expected: &HashSet<u64>) -> Self {
        let found: HashSet<u64> = result.alerts.iter().map(|a| a.venue_code).collect();
        let hits = found.intersection(expected).count() as f64;
        let ratio = |den: usize| if den == 0 { 1.0 } else { hits / den as f64 };
        Self {
            found: found.len(),
            precision: ratio(found.len()),
            recall: ratio(expected.len()),
        }
    }
}

/// One line of the comparison: a venue that alerted, should have, or both.
struct Row {
    code: u64,
    name: String,
    category: &'static str,
    capacity: u32,
    threshold: u64,
    noisy: Option<i64>,
    stddev: f64,
    truth: u64,
    alerted: bool,
    expected: bool,
    x: f64,
    y: f64,
}

impl Row {
    fn verdict(&self) -> &'static str {
        match (self.alerted, self.expected) {
            (true, true) => "true alert",
            (true, false) => "false alert",
            (false, true) => "missed",
            (false, false) => "",
        }
    }
}

/// The alerted and the truly crowded venues, most crowded first.
struct Table {
    rows: Vec<Row>,
}

impl Table {
    fn new(city: &City, rules: &Rules, hour: &Hour, result: &v1::RunSearchResponse) -> Self {
        let alerts: BTreeMap<u64, &v1::Alert> =
            result.alerts.iter().map(|a| (a.venue_code, a)).collect();
        let cells: HashMap<u64, i64> = result
            .cells
            .iter()
            .map(|c| (c.venue_code, c.count))
            .collect();
        let stddev = result.alerts.first().map_or(0.0, |a| a.stddev);
        let mut rows: Vec<Row> = city
            .venues
            .iter()
            .enumerate()
            .filter(|(_, v)| alerts.contains_key(&v.code) || hour.expected.contains(&v.code))
            .map(|(i, v)| {
                let record = venue_record(i, v);
                let threshold = match rules {
                    Rules::Crowding(r) => r.threshold(v.info.capacity),
                    Rules::Outbreak(_) => 0,
                };
                Row {
                    code: v.code,
                    name: record.name,
                    category: v.info.category.name(),
                    capacity: v.info.capacity,
                    threshold,
                    noisy: alerts
                        .get(&v.code)
                        .map(|a| a.count)
                        .or_else(|| cells.get(&v.code).copied()),
                    stddev,
                    truth: hour.truth.get(&v.code).copied().unwrap_or(0),
                    alerted: alerts.contains_key(&v.code),
                    expected: hour.expected.contains(&v.code),
                    x: v.x,
                    y: v.y,
                }
            })
            .collect();
        rows.sort_by_key(|r| std::cmp::Reverse((r.truth, r.code)));
        Self { rows }
    }

    fn print(&self) {
        println!(
            "\n{:>11} {:<16} {:<11} {:>8} {:>9} {:>14} {:>6}  verdict",
            "venue", "name", "category", "capacity", "threshold", "noisy ± sd", "truth"
        );
        for r in &self.rows {
            let noisy = r
                .noisy
                .map_or("-".to_string(), |n| format!("{n} ± {:.1}", r.stddev));
            println!(
                "{:>11} {:<16} {:<11} {:>8} {:>9} {:>14} {:>6}  {}",
                r.code,
                r.name,
                r.category,
                r.capacity,
                r.threshold,
                noisy,
                r.truth,
                r.verdict()
            );
        }
    }
}

fn render_html(
    city: &City,
    table: &Table,
    result: &v1::RunSearchResponse,
    score: &Score,
    dashboard: &str,
) -> String {
    let side = city.side_metres().max(1.0);
    let point = |x: f64, y: f64| (x / side * 580.0 + 10.0, (1.0 - y / side) * 580.0 + 10.0);
    let mut svg = String::from(
        "<svg xmlns='http://www.w3.org/2000/svg' width='600' height='600' style='background:#f4f4f4'>",
    );
    for v in &city.venues {
        let (x, y) = point(v.x, v.y);
        svg += &format!("<circle cx='{x:.1}' cy='{y:.1}' r='2' fill='#999'/>");
    }
    for r in &table.rows {
        let (x, y) = point(r.x, r.y);
        let heat = (r.noisy.unwrap_or(0) as f64 / r.threshold.max(1) as f64).clamp(0.0, 2.0) / 2.0;
        let (fill, stroke) = match (r.alerted, r.expected) {
            (true, true) => (
                format!("rgb(220,{},30)", (160.0 * (1.0 - heat)) as u8),
                "#600",
            ),
            (true, false) => ("rgb(240,180,40)".to_string(), "#a60"),
            _ => ("none".to_string(), "#06c"),
        };
        svg += &format!(
            "<circle cx='{x:.1}' cy='{y:.1}' r='{:.1}' fill='{fill}' stroke='{stroke}' \
             stroke-width='2' fill-opacity='0.8'><title>{} ({}): {} noisy, {} true, {}</title></circle>",
            7.0 + 10.0 * heat,
            r.name,
            r.code,
            r.noisy.map_or("-".to_string(), |n| n.to_string()),
            r.truth,
            r.verdict()
        );
    }
    svg += "</svg>";
    let rows: String = table
        .rows
        .iter()
        .map(|r| {
            format!(
                "<tr><td>{}</td><td style='text-align:left'>{}</td><td>{}</td><td>{}</td><td>{}</td>\
                 <td>{} ± {:.1}</td><td>{}</td><td>{}</td></tr>",
                r.code,
                r.name,
                r.category,
                r.capacity,
                r.threshold,
                r.noisy.map_or("-".to_string(), |n| n.to_string()),
                r.stddev,
                r.truth,
                r.verdict()
            )
        })
        .collect();
    let privacy = result.summary.as_ref().map_or(String::new(), |s| {
        if s.noise {
            format!(
                "Every released count carries the noise of both aggregators: this window cost \
                 epsilon = {:.2} per person (delta = {:e}); {:.2} is left for the day.",
                s.epsilon_spent, s.delta, s.epsilon_left
            )
        } else {
            "Noise was switched off: the counts are exact and carry no privacy guarantee."
                .to_string()
        }
    });
    format!(
        "<!doctype html><html><head><meta charset='utf-8'><title>hotspot demo</title>\
         <style>body{{font-family:sans-serif;margin:2em}}td,th{{padding:4px 12px;text-align:right}}</style></head><body>\
         <h1>hotspot demo</h1><p>{} reports aggregated, {} rejected; {} alerts, precision {:.3}, recall {:.3}.</p>\
         <p>{privacy}</p>\
         <p>The health authority's view: <a href='{dashboard}'>the collector's dashboard</a> (log in with the token in \
         <code>dashboard.token</code> beside this file). It is up while the demo's collector runs: pass <code>--keep</code> \
         to the demo, or start it again with <code>hotspot serve --role collector --config collector.toml</code> in this folder.</p>\
         <h2>Heat map</h2><p>Grey: registered venues. Red: true alerts (darker when further over the threshold); \
         orange: false alerts; blue rings: crowded venues the noisy search missed.</p>{svg}\
         <h2>Alerts and ground truth</h2><table><tr><th>venue</th><th>name</th><th>category</th><th>capacity</th>\
         <th>threshold</th><th>noisy ± sd</th><th>truth</th><th></th></tr>{rows}</table>\
         </body></html>",
        result.report_count, result.rejected_count, score.found, score.precision, score.recall
    )
}
