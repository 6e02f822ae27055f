//! The whole pipeline with real processes: uploads, sealing, aggregation between leader and
//! helper, the collector's search. Counts equal a plaintext count, and the alerts of an hour of
//! the synthetic city equal its ground truth, in both search modes (noise off); dummy reports
//! never alert; killing the leader during uploads and the helper during aggregation (kill -9,
//! then restart) loses no acknowledged report and counts none twice; with noise on, each
//! aggregator refuses releases beyond its own privacy budget, whatever the collector (or the
//! leader) asks.

#![allow(clippy::unwrap_used, clippy::expect_used)]

mod common;

use std::collections::BTreeMap;
use std::time::Duration;

use hotspot_cli::cluster::Cluster;
use hotspot_core::city::{City, CityConfig};
use hotspot_core::rules::{CrowdingRule, Rules};
use hotspot_core::task::{DUMMY_VENUE_CODE, SearchMode};
use hotspot_proto::v1;
use hotspot_server::storage::VenueRecord;
use hotspot_vdaf::AggregationParam;

use common::*;

/// Venue codes with distinct counts: venue `v` gets `v % 7 + 1` check-ins.
fn workload() -> Vec<u64> {
    let venues = [11u64, 12, 13, 14, 15, 16, 17, 1_000_003, 4_000_000_007];
    venues
        .iter()
        .flat_map(|&v| std::iter::repeat_n(v, (v % 7 + 1) as usize))
        .collect()
}

fn plaintext(codes: &[u64]) -> BTreeMap<u64, i64> {
    let mut m = BTreeMap::new();
    for c in codes {
        *m.entry(*c).or_insert(0) += 1;
    }
    m
}

fn cells(reply: &v1::RunSearchResponse) -> BTreeMap<u64, i64> {
    reply
        .cells
        .iter()
        .filter(|c| c.count != 0)
        .map(|c| (c.venue_code, c.count))
        .collect()
}

fn alerts(reply: &v1::RunSearchResponse) -> Vec<(u64, i64)> {
    let mut a: Vec<_> = reply
        .alerts
        .iter()
        .map(|a| (a.venue_code, a.count))
        .collect();
    a.sort_unstable();
    a
}

fn expected_alerts(truth: &BTreeMap<u64, i64>, threshold: i64) -> Vec<(u64, i64)> {
    truth
        .iter()
        .filter(|(_, n)| **n >= threshold)
        .map(|(v, n)| (*v, *n))
        .collect()
}

/// Uploads `reports`, every one acknowledged.
async fn upload(cluster: &Cluster, reports: Vec<v1::Report>) {
    let mut client = upload_client(cluster).await;
    for r in reports {
        client
            .upload(v1::UploadRequest { report: Some(r) })
            .await
            .unwrap();
    }
}

#[tokio::test(flavor = "multi_thread")]
async fn happy_path_counts_equal_plaintext_in_registry_and_open_mode() {
    let codes = workload();
    let truth = plaintext(&codes);
    // Six dummy reports (code 0), as outbreak uploads carry: counted, never a cell or an alert.
    let dummies = 6;
    for mode in [SearchMode::Registry, SearchMode::Open] {
        let mut spec = spec(4, truth.keys().copied().collect(), 10);
        spec.search_mode = mode;
        let cluster =
            Cluster::prepare(&test_dir(&format!("happy-{mode:?}")), exe(), &spec).unwrap();
        let _procs = Procs::start_all(&cluster);
        let window = window_open_for(&cluster, 6);
        let mut client = upload_client(&cluster).await;
        let all = codes
            .iter()
            .copied()
            .chain(std::iter::repeat_n(DUMMY_VENUE_CODE, dummies));
        for v in all {
            client
                .upload(v1::UploadRequest {
                    report: Some(report(&cluster, v, window)),
                })
                .await
                .unwrap();
        }
        wait_sealed(&cluster, window).await;
        let reply = search(&cluster, window).await.unwrap();
        assert_eq!(
            reply.report_count,
            (codes.len() + dummies) as u64,
            "{mode:?}"
        );
        assert_eq!(reply.rejected_count, 0);
        assert_eq!(alerts(&reply), expected_alerts(&truth, 3), "{mode:?}");
        assert!(reply.cells.iter().all(|c| c.venue_code != DUMMY_VENUE_CODE));
        if mode == SearchMode::Registry {
            assert_eq!(cells(&reply), truth);
        }
        let summary = reply.summary.clone().unwrap();
        let name = if mode == SearchMode::Registry {
            "registry"
        } else {
            "open"
        };
        assert_eq!((summary.search_mode.as_str(), summary.noise), (name, false));
        assert_eq!(summary.rho_spent, 0.0);
        // A second search returns the stored alerts and summary, not a second aggregation.
        let again = search(&cluster, window).await.unwrap();
        assert_eq!(alerts(&again), alerts(&reply));
        assert_eq!(again.summary, Some(summary));
    }
}

/// A tiny city's busiest hour: its reports and the true alerts under `rules`.
fn city_hour(rules: &Rules) -> (City, Vec<u64>, BTreeMap<u64, i64>) {
    let city = City::generate(&CityConfig::tiny(11));
    let batches = city.crowding(rules);
    let hour = (0..24u64)
        .max_by_key(|&h| batches.alerts.keys().filter(|(_, w)| *w == h).count())
        .unwrap();
    let alerts = batches
        .alerts
        .keys()
        .filter(|(_, w)| *w == hour)
        .map(|&(code, w)| (code, batches.counts[&(code, w)] as i64))
        .collect();
    let reports = batches.reports[hour as usize].clone();
    (city, reports, alerts)
}

#[tokio::test(flavor = "multi_thread")]
async fn alerts_of_a_city_hour_equal_the_ground_truth_in_both_modes() {
    // The tiny city's venues are small: crowding at 60 % of capacity from 4 people on.
    let rules = Rules::Crowding(CrowdingRule::new(600, 4).unwrap());
    let (city, reports, truth) = city_hour(&rules);
    assert!(truth.len() >= 2, "the hour has alerts: {truth:?}");
    for mode in [SearchMode::Registry, SearchMode::Open] {
        let mut spec = spec(8, Vec::new(), 50);
        spec.search_mode = mode;
        spec.rules = rules.clone();
        spec.threshold = 1_000;
        spec.venues = city
            .venues
            .iter()
            .map(|v| VenueRecord {
                category: v.info.category,
                ..venue(v.code, v.info.capacity)
            })
            .collect();
        let cluster = Cluster::prepare(&test_dir(&format!("city-{mode:?}")), exe(), &spec).unwrap();
        let _procs = Procs::start_all(&cluster);
        let window = window_open_for(&cluster, 10);
        upload(&cluster, reports_for(&cluster, &reports, window)).await;
        wait_sealed(&cluster, window).await;

        let reply = search(&cluster, window).await.unwrap();
        assert_eq!(reply.report_count, reports.len() as u64, "{mode:?}");
        assert_eq!(
            alerts(&reply),
            truth.clone().into_iter().collect::<Vec<_>>(),
            "{mode:?}"
        );
        for a in &reply.alerts {
            assert_eq!((a.level.as_str(), a.stddev), ("crowding", 0.0));
            assert!(a.rule.starts_with("crowding: >= "), "{}", a.rule);
            assert_eq!(a.window_start_unix, cluster.task.window_start(window));
        }
    }
}

#[tokio::test(flavor = "multi_thread")]
async fn kill_nine_of_leader_and_helper_loses_and_doubles_nothing() {
    let codes: Vec<u64> = [workload(), workload(), workload()].concat();
    let cluster = Cluster::prepare(
        &test_dir("crash"),
        exe(),
        &spec(10, plaintext(&codes).keys().copied().collect(), 2),
    )
    .unwrap();
    let mut procs = Procs::start_all(&cluster);
    // Room for the leader's kill and restart before the window seals.
    let window = window_open_for(&cluster, 12);

    // Upload; kill -9 the leader halfway, restart it, and retry what was not acknowledged.
    let reports: Vec<_> = codes
        .iter()
        .map(|&v| (v, report(&cluster, v, window)))
        .collect();
    let mut acked = Vec::new();
    let mut pending = Vec::new();
    let mut client = upload_client(&cluster).await;
    for (i, (v, r)) in reports.iter().enumerate() {
        if i == reports.len() / 2 {
            procs.kill9("leader");
        }
        match client
            .upload(v1::UploadRequest {
                report: Some(r.clone()),
            })
            .await
        {
            Ok(_) => acked.push(*v),
            Err(_) => pending.push((*v, r.clone())),
        }
    }
    assert!(
        !pending.is_empty(),
        "the kill should have interrupted uploads"
    );
    procs.restart(&cluster, "leader");
    let mut client = upload_client(&cluster).await;
    for (v, r) in pending {
        client
            .upload(v1::UploadRequest { report: Some(r) })
            .await
            .unwrap();
        acked.push(v);
    }
    assert_eq!(stored_reports(&cluster), acked.len() as u64);

    // Search; kill -9 the helper while the jobs (2 reports each) run, then restart it.
    wait_sealed(&cluster, window).await;
    let searching = {
        let cluster = cluster.clone();
        tokio::spawn(async move { search(&cluster, window).await })
    };
    let total_jobs = acked.len().div_ceil(2) as i64;
    let finished = wait_for_helper_jobs(&cluster, 2).await;
    procs.kill9("helper");
    assert!(
        finished < total_jobs,
        "the helper should die mid-aggregation ({finished} of {total_jobs} jobs)"
    );
    procs.restart(&cluster, "helper");
    let reply = match searching.await.unwrap() {
        Ok(reply) => reply,
        // The leader gave up on its retries: the collector runs the search again.
        Err(_) => search(&cluster, window).await.unwrap(),
    };
    let truth = plaintext(&acked);
    assert_eq!(reply.report_count, acked.len() as u64);
    assert_eq!(cells(&reply), truth);
    assert_eq!(alerts(&reply), expected_alerts(&truth, 3));
}

/// Waits until the helper has committed at least `n` jobs; returns how many it had.
async fn wait_for_helper_jobs(cluster: &Cluster, n: i64) -> i64 {
    let path = cluster.dir.join("helper.sqlite");
    loop {
        let count = rusqlite::Connection::open(&path)
            .and_then(|c| c.query_row("SELECT COUNT(*) FROM jobs", [], |r| r.get::<_, i64>(0)))
            .unwrap_or(0);
        if count >= n {
            return count;
        }
        tokio::time::sleep(Duration::from_millis(2)).await;
    }
}

#[tokio::test(flavor = "multi_thread")]
async fn alert_stream_resumes_after_its_cursor() {
    let cluster =
        Cluster::prepare(&test_dir("stream"), exe(), &spec(3, vec![21, 22], 100)).unwrap();
    let _procs = Procs::start_all(&cluster);
    let window = window_open_for(&cluster, 5);
    let mut client = upload_client(&cluster).await;
    for v in [21, 21, 21, 22, 22, 22, 22] {
        client
            .upload(v1::UploadRequest {
                report: Some(report(&cluster, v, window)),
            })
            .await
            .unwrap();
    }
    wait_sealed(&cluster, window).await;
    let reply = search(&cluster, window).await.unwrap();
    assert_eq!(reply.alerts.len(), 2);
    let mut c = v1::collector_client::CollectorClient::connect(cluster.url("collector"))
        .await
        .unwrap();
    let first = reply.alerts[0].cursor;
    let mut stream = c
        .subscribe(v1::SubscribeRequest {
            after_cursor: first,
        })
        .await
        .unwrap()
        .into_inner();
    let next = stream.message().await.unwrap().unwrap();
    assert_eq!(next.cursor, reply.alerts[1].cursor);
    assert_eq!(next.venue_code, reply.alerts[1].venue_code);
}

/// The leader's `Collect` for the registry-mode leaf level of `window` over `codes`, asked
/// directly, as a collector that ignores its own accountant would.
async fn collect_directly(
    cluster: &Cluster,
    window: u64,
    level: u16,
    codes: &[u64],
) -> Result<v1::CollectResponse, tonic::Status> {
    let param = AggregationParam::new(level, codes.to_vec()).unwrap();
    let mut c = v1::collection_client::CollectionClient::connect(cluster.url("leader"))
        .await
        .unwrap();
    c.collect(v1::CollectRequest {
        batch: Some(v1::BatchId {
            task_id: cluster.task.id.0.to_vec(),
            window,
        }),
        level: u32::from(level),
        agg_param: param.encode(),
    })
    .await
    .map(|r| r.into_inner())
}

fn assert_refused(result: Result<impl std::fmt::Debug, tonic::Status>, by: &str) {
    let status = result.expect_err("a release over the budget");
    assert_eq!(status.code(), tonic::Code::FailedPrecondition, "{status:?}");
    let prefix = format!("privacy budget ({by}): daily budget exhausted");
    assert!(status.message().starts_with(&prefix), "{status:?}");
}

#[tokio::test(flavor = "multi_thread")]
async fn aggregators_refuse_releases_over_their_own_budget() {
    // Noise on; the day's budget holds one and a half batches: one window can be searched.
    let codes = vec![31u64, 32, 33];
    let mut spec = spec(5, codes.clone(), 10);
    spec.privacy.noise = true;
    spec.privacy.windows_per_day = 24;
    spec.privacy.rho_day = 1.5 * spec.privacy.rho_batch;
    let cluster = Cluster::prepare(&test_dir("budget"), exe(), &spec).unwrap();
    let _procs = Procs::start_all(&cluster);

    // Reports in two windows of the same day (the next one accepts uploads within the clock
    // skew allowance): not the day's last window, whose next belongs to another day.
    let mut first = window_open_for(&cluster, 8);
    if (first + 1).is_multiple_of(u64::from(spec.privacy.windows_per_day)) {
        first += 1;
    }
    let reports = [first, first + 1]
        .into_iter()
        .flat_map(|w| reports_for(&cluster, &[31, 31, 32, 33], w))
        .collect();
    upload(&cluster, reports).await;
    wait_sealed(&cluster, first + 1).await;

    // The first window is searched, with noise and its cost charged.
    let reply = search(&cluster, first).await.unwrap();
    let summary = reply.summary.unwrap();
    assert!(summary.noise && summary.rho_spent > 0.0, "{summary:?}");
    assert_eq!(reply.report_count, 4);

    // The collector refuses the second before asking anyone.
    let refused = search(&cluster, first + 1).await;
    let status = refused.expect_err("the day's budget is spent");
    assert_eq!(status.code(), tonic::Code::FailedPrecondition);
    assert!(
        status
            .message()
            .starts_with("privacy budget (collector): daily budget exhausted"),
        "{status:?}"
    );

    // Asked directly, the leader refuses from its own books...
    assert_refused(
        collect_directly(&cluster, first + 1, 31, &codes).await,
        "leader",
    );
    // ...a level the task's plan never releases, too...
    let status = collect_directly(&cluster, first + 1, 5, &[1, 2])
        .await
        .unwrap_err();
    assert_eq!(status.code(), tonic::Code::FailedPrecondition);
    assert!(
        status.message().contains("releases no level 5"),
        "{status:?}"
    );
    // ...and the first window's release is served again unchanged, at no cost.
    collect_directly(&cluster, first, 31, &codes).await.unwrap();

    // A leader that forgets its books (its release record wiped) still gets nothing: the
    // helper refuses from its own.
    let leader_db = rusqlite::Connection::open(cluster.dir.join("leader.sqlite")).unwrap();
    leader_db.execute("DELETE FROM releases", []).unwrap();
    assert_refused(
        collect_directly(&cluster, first + 1, 31, &codes).await,
        "helper",
    );
}
