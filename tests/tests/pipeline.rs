//! The whole pipeline with real processes: uploads, sealing, aggregation between leader and
//! helper, the collector's search. Counts equal a plaintext count; killing the leader during
//! uploads and the helper during aggregation (kill -9, then restart) loses no acknowledged
//! report and counts none twice.

#![allow(clippy::unwrap_used, clippy::expect_used)]

mod common;

use std::collections::BTreeMap;
use std::time::Duration;

use hotspot_cli::cluster::Cluster;
use hotspot_proto::v1;

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

#[tokio::test(flavor = "multi_thread")]
async fn happy_path_counts_equal_plaintext_in_registry_and_open_mode() {
    let codes = workload();
    let truth = plaintext(&codes);
    for mode in [
        hotspot_core::task::SearchMode::Registry,
        hotspot_core::task::SearchMode::Open,
    ] {
        let mut spec = spec(4, truth.keys().copied().collect(), 10);
        spec.search_mode = mode;
        let cluster =
            Cluster::prepare(&test_dir(&format!("happy-{mode:?}")), exe(), &spec).unwrap();
        let _procs = Procs::start_all(&cluster);
        let window = current_window(&cluster);
        let mut client = upload_client(&cluster).await;
        for &v in &codes {
            client
                .upload(v1::UploadRequest {
                    report: Some(report(&cluster, v, window)),
                })
                .await
                .unwrap();
        }
        wait_sealed(&cluster, window).await;
        let reply = search(&cluster, window).await.unwrap();
        assert_eq!(reply.report_count, codes.len() as u64, "{mode:?}");
        assert_eq!(reply.rejected_count, 0);
        assert_eq!(alerts(&reply), expected_alerts(&truth, 3), "{mode:?}");
        if mode == hotspot_core::task::SearchMode::Registry {
            assert_eq!(cells(&reply), truth);
        }
        // A second search returns the stored alerts, not a second aggregation.
        assert_eq!(
            alerts(&search(&cluster, window).await.unwrap()),
            alerts(&reply)
        );
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
    let window = current_window(&cluster);

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
    let window = current_window(&cluster);
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
