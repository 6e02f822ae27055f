//! Shared set-up for the end-to-end tests: a cluster of real `hotspot-node` processes on
//! loopback, uploads, and reads of the leader's database.
//!
//! Every report carries a real credential presentation: [`report`] enrols a fresh simulated
//! visitor with the cluster's issuer, obtains its crowding credential over gRPC and presents
//! it for the report's window, as a phone would; [`visitor`] hands out the wallet itself for
//! tests that present more than once.

#![allow(dead_code, clippy::unwrap_used, clippy::expect_used)]

use std::path::{Path, PathBuf};
use std::process::Child;
use std::time::Duration;

use hotspot_cli::cluster::{Cluster, ClusterSpec};
use hotspot_client::credential::Wallet;
use hotspot_core::rules::{CrowdingRule, Rules};
use hotspot_core::task::{PrivacyParams, SearchMode, SearchParams};
use hotspot_core::venue::VenueCategory;
use hotspot_proto::v1;
use hotspot_server::storage::VenueRecord;
use hotspot_vdaf::Poplar1;

/// A fresh folder for one test.
pub fn test_dir(name: &str) -> PathBuf {
    let dir = std::env::temp_dir().join(format!("hotspot-e2e-{}-{name}", std::process::id()));
    let _ = std::fs::remove_dir_all(&dir);
    dir
}

/// The test binary.
pub fn exe() -> &'static Path {
    Path::new(env!("CARGO_BIN_EXE_hotspot-node"))
}

/// A registered venue with the code `code` and `capacity`.
pub fn venue(code: u64, capacity: u32) -> VenueRecord {
    VenueRecord {
        code,
        name: format!("Venue {code}"),
        address: String::new(),
        lat: 48.85,
        lon: 2.35,
        category: VenueCategory::Restaurant,
        capacity,
        default_minutes: 60,
        registered_unix: 0,
    }
}

/// Capacity of the test venues: the crowding rule of [`spec`] alerts at 3 people.
pub const CAPACITY: u32 = 10;

/// A cluster spec with short windows, the venues `registry` registered, noise off and a
/// crowding rule alerting at 3 people (30 % of [`CAPACITY`]).
pub fn spec(window_seconds: u64, registry: Vec<u64>, job_size: usize) -> ClusterSpec {
    let rule = CrowdingRule::new(300, 1).expect("valid rule");
    ClusterSpec {
        window_seconds,
        grace_seconds: 0,
        threshold: 3,
        rules: Rules::Crowding(rule),
        privacy: PrivacyParams {
            noise: false,
            ..PrivacyParams::default_for(window_seconds)
        },
        search: SearchParams::default(),
        presentations_per_window: 1,
        search_mode: SearchMode::Registry,
        bits: 32,
        venues: registry.into_iter().map(|c| venue(c, CAPACITY)).collect(),
        job_size,
        search_poll_seconds: 0,
    }
}

/// Processes stopped (killed) when dropped.
pub struct Procs(pub Vec<(String, Child)>);

impl Drop for Procs {
    fn drop(&mut self) {
        for (_, c) in &mut self.0 {
            let _ = c.kill();
            let _ = c.wait();
        }
    }
}

impl Procs {
    /// Starts every role.
    pub fn start_all(cluster: &Cluster) -> Self {
        let mut procs = Procs(Vec::new());
        for role in ["helper", "leader", "collector", "issuer"] {
            procs
                .0
                .push((role.to_string(), cluster.start(role).expect("start role")));
        }
        procs
    }

    /// kill -9 of `role`.
    pub fn kill9(&mut self, role: &str) {
        let (_, child) = self
            .0
            .iter_mut()
            .find(|(r, _)| r == role)
            .expect("role running");
        child.kill().expect("kill -9");
        child.wait().expect("reap");
    }

    /// Starts `role` again after a kill.
    pub fn restart(&mut self, cluster: &Cluster, role: &str) {
        let child = cluster.start(role).expect("restart role");
        let slot = self
            .0
            .iter_mut()
            .find(|(r, _)| r == role)
            .expect("role known");
        slot.1 = child;
    }
}

/// Runs `future` to completion from synchronous code, inside or outside a (multi-thread)
/// runtime.
pub fn block_on<F: std::future::Future>(future: F) -> F::Output {
    match tokio::runtime::Handle::try_current() {
        Ok(handle) => tokio::task::block_in_place(|| handle.block_on(future)),
        Err(_) => tokio::runtime::Runtime::new().unwrap().block_on(future),
    }
}

/// A fresh visitor: enrolled, holding today's crowding credential from the running issuer.
pub fn visitor(cluster: &Cluster) -> Wallet {
    block_on(cluster.wallets(1, None))
        .expect("a credential from the issuer")
        .pop()
        .unwrap()
}

/// A report for `venue` in `window` with no presentation yet.
pub fn unsigned_report(cluster: &Cluster, venue: u64, window: u64) -> v1::Report {
    let poplar = Poplar1::new(cluster.task.bits as usize).unwrap();
    hotspot_client::grpc::seal_for_task(&cluster.task, &poplar, venue, window, &mut rand::rng())
        .unwrap()
}

/// One valid report for `venue` in `window`, from a fresh visitor.
pub fn report(cluster: &Cluster, venue: u64, window: u64) -> v1::Report {
    let mut report = unsigned_report(cluster, venue, window);
    report.presentation = visitor(cluster)
        .next_presentation(&cluster.task, window, &mut rand::rng())
        .unwrap();
    report
}

/// One report per code for `window`, each from a fresh visitor; the credentials are obtained
/// in one go (faster than [`report`] for many reports).
pub fn reports_for(cluster: &Cluster, codes: &[u64], window: u64) -> Vec<v1::Report> {
    let wallets = block_on(cluster.wallets(codes.len(), None)).expect("credentials");
    codes
        .iter()
        .zip(wallets)
        .map(|(&code, mut wallet)| {
            let mut report = unsigned_report(cluster, code, window);
            report.presentation = wallet
                .next_presentation(&cluster.task, window, &mut rand::rng())
                .unwrap();
            report
        })
        .collect()
}

/// An upload client.
pub async fn upload_client(
    cluster: &Cluster,
) -> v1::upload_client::UploadClient<tonic::transport::Channel> {
    v1::upload_client::UploadClient::connect(cluster.url("leader"))
        .await
        .unwrap()
}

/// Reports stored in the leader's database.
pub fn stored_reports(cluster: &Cluster) -> u64 {
    let conn = rusqlite::Connection::open(cluster.dir.join("leader.sqlite")).unwrap();
    let n: i64 = conn
        .query_row("SELECT COUNT(*) FROM reports", [], |r| r.get(0))
        .unwrap();
    n as u64
}

/// The current window of the cluster's task.
pub fn current_window(cluster: &Cluster) -> u64 {
    cluster.task.window_at(hotspot_server::now_unix()).unwrap()
}

/// The current window of the cluster's task once at least `margin` seconds of it are left,
/// sleeping into the next window otherwise: for a test that must stay in one window (its
/// per-window limits, its presentations) while it runs, which on a loaded machine can take
/// tens of seconds.
pub async fn window_with_margin(cluster: &Cluster, margin: u64) -> u64 {
    let now = hotspot_server::now_unix();
    let window = current_window(cluster);
    let end = cluster.task.window_start(window + 1);
    if end.saturating_sub(now) >= margin {
        return window;
    }
    tokio::time::sleep(Duration::from_secs(end - now + 1)).await;
    current_window(cluster)
}

/// The first window, from the current one on, that takes uploads for at least `open_for`
/// more seconds: for the tests with windows of a few seconds, whose uploads can take several
/// of them on a loaded machine. A later window is open already: the leader takes uploads for
/// windows that start within the clock-skew allowance (`CLOCK_SKEW_SECONDS`, 60 s), so
/// `open_for` plus a window must stay below it. Unlike [`window_with_margin`] it does not
/// wait, and the window it returns need not be the current one.
pub fn window_open_for(cluster: &Cluster, open_for: u64) -> u64 {
    let now = hotspot_server::now_unix();
    let mut window = current_window(cluster);
    while cluster.task.seal_time(window) < now + open_for {
        window += 1;
    }
    window
}

/// Sleeps until `window` can be collected.
pub async fn wait_sealed(cluster: &Cluster, window: u64) {
    let at = cluster.task.seal_time(window) + hotspot_server::leader::SEAL_SETTLE_SECONDS;
    let now = hotspot_server::now_unix();
    tokio::time::sleep(Duration::from_secs(at.saturating_sub(now) + 1)).await;
}

/// Runs the collector's search over `window`.
pub async fn search(
    cluster: &Cluster,
    window: u64,
) -> Result<v1::RunSearchResponse, tonic::Status> {
    let mut c = v1::collector_client::CollectorClient::connect(cluster.url("collector"))
        .await
        .unwrap();
    c.run_search(v1::RunSearchRequest {
        batch: Some(v1::BatchId {
            task_id: cluster.task.id.0.to_vec(),
            window,
        }),
    })
    .await
    .map(|r| r.into_inner())
}
