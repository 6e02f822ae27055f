//! The visitor's side end to end, through `hotspot visitor` processes against real leader,
//! helper, collector and issuer processes on loopback:
//!
//! - outbreak: a venue registers with the collector's registry; two visitors scan its payload;
//!   one is diagnosed, exchanges the diagnosis code for an outbreak credential and uploads the
//!   spread, padded diary; the batch seals and is searched; the other visitor downloads the
//!   signed exposure list and finds the alert for the venue and the hour, on the device;
//! - crowding: a check-in's report goes out as the visitor scans; with the leader down it
//!   waits in the outbox, and `visitor sync` sends it once the leader is back, counted once.

#![allow(clippy::unwrap_used, clippy::expect_used)]

mod common;

use std::path::Path;
use std::process::{Command, Output};

use hotspot_cli::cluster::Cluster;
use hotspot_core::task::TaskKind;

use common::*;

/// Runs the test binary with `args`; panics with its stderr unless it succeeds.
fn hotspot(args: &[&str]) -> String {
    let out = run(args);
    assert!(
        out.status.success(),
        "hotspot {args:?}: {}{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    String::from_utf8(out.stdout).unwrap()
}

fn run(args: &[&str]) -> Output {
    Command::new(exe()).args(args).output().unwrap()
}

fn path(p: &Path) -> &str {
    p.to_str().unwrap()
}

/// `hotspot venue register` with the collector's token; returns the payload URL.
fn register(cluster: &Cluster, name: &str, category: &str) -> String {
    let token = cluster.dashboard_token_file();
    hotspot(&[
        "venue",
        "register",
        "--collector",
        &cluster.url("collector"),
        "--token-file",
        path(&token),
        "--name",
        name,
        "--coordinates",
        "48.85,2.35",
        "--category",
        category,
        "--capacity",
        "30",
    ])
    .trim()
    .to_owned()
}

#[tokio::test(flavor = "multi_thread")]
async fn a_contact_finds_the_outbreak_alert_of_a_venue_it_visited() {
    let mut cluster =
        Cluster::prepare(&test_dir("visitor-outbreak"), exe(), &spec(6, vec![], 50)).unwrap();
    cluster
        .rewrite_task(|t| {
            t.kind = TaskKind::Outbreak;
            t.rules = hotspot_core::rules::Rules::default_for(TaskKind::Outbreak);
            // Outbreak windows stay open a while: a diary is uploaded after the visit.
            t.grace_seconds = 12;
        })
        .unwrap();
    let _procs = Procs::start_all(&cluster);
    let dir = &cluster.dir;
    let (diagnosed, contact) = (dir.join("diagnosed.json"), dir.join("contact.json"));
    let task_file = dir.join("task.toml");
    let registry_pub = cluster.registry_key().unwrap().public().to_hex();

    // 1. The venue registers; both visitors scan its poster's payload during one window.
    let url = register(&cluster, "Bistro Central", "restaurant");
    let window = current_window(&cluster);
    let arrival = (cluster.task.window_start(window) + 1).to_string();
    for diary in [&diagnosed, &contact] {
        let out = hotspot(&[
            "visitor",
            "--diary",
            path(diary),
            "scan",
            &url,
            "--registry-pub",
            &registry_pub,
            "--arrival",
            &arrival,
        ]);
        assert!(out.contains("checked in at Bistro Central"), "{out}");
    }

    // 2. One is diagnosed: the health authority mints a code, the app uploads the diary.
    let code = hotspot(&[
        "collect",
        "diagnosis-code",
        "--issuer",
        &cluster.url("issuer"),
        "--token-file",
        path(&dir.join(hotspot_cli::cluster::ISSUER_TOKEN_FILE)),
    ]);
    let out = hotspot(&[
        "visitor",
        "--diary",
        path(&diagnosed),
        "report-positive",
        "--code",
        code.trim(),
        "--task",
        path(&task_file),
        "--leader",
        &cluster.url("leader"),
        "--issuer",
        &cluster.url("issuer"),
    ]);
    assert!(out.contains("1 real presences"), "{out}");
    assert!(out.contains("0 rejected"), "{out}");
    assert!(out.contains("0 report(s) left"), "{out}");
    let uploaded = stored_reports(&cluster);
    assert!(uploaded >= 1, "padded upload stored: {uploaded}");

    // 3. The batch seals and the collector searches it: the venue-hour alerts.
    wait_sealed(&cluster, window).await;
    let result = search(&cluster, window).await.unwrap();
    assert_eq!(result.alerts.len(), 1, "{result:?}");

    // 4. The contact downloads the signed list and matches it on the device.
    let exposure_pub = cluster.exposure_public_key().unwrap();
    let check = [
        "visitor",
        "--diary",
        path(&contact),
        "check-exposure",
        "--url",
        &cluster.exposure_list_url(),
        "--collector-pub",
        &exposure_pub,
    ];
    let out = hotspot(&check);
    assert!(out.contains("MATCH"), "{out}");
    assert!(out.contains("Bistro Central"), "{out}");
    // The same list again is refused as not newer (no rollback to an older list either).
    let again = run(&check);
    assert!(!again.status.success());
    assert!(String::from_utf8_lossy(&again.stderr).contains("not newer"));
    // A list checked under another key is refused.
    let other = hotspot_client::registry::RegistryKey::from_secret(&[9; 32]);
    let forged = run(&[
        "visitor",
        "--diary",
        path(&dir.join("third.json")),
        "check-exposure",
        "--url",
        &cluster.exposure_list_url(),
        "--collector-pub",
        &other.public().to_hex(),
    ]);
    assert!(!forged.status.success());
    assert!(String::from_utf8_lossy(&forged.stderr).contains("signature"));
}

#[tokio::test(flavor = "multi_thread")]
async fn crowding_reports_go_out_on_scan_and_wait_for_sync_while_the_leader_is_down() {
    let mut cluster =
        Cluster::prepare(&test_dir("visitor-crowding"), exe(), &spec(60, vec![], 50)).unwrap();
    // Two check-ins in one window: the credential allows up to 4 presentations per window.
    cluster
        .rewrite_task(|t| t.presentations_per_window = 4)
        .unwrap();
    let mut procs = Procs::start_all(&cluster);
    let dir = &cluster.dir;
    let diary = dir.join("visitor.json");
    let task_file = dir.join("task.toml");
    let registry_pub = cluster.registry_key().unwrap().public().to_hex();
    let enrolment = "visitor-e2e-0001".to_owned();
    cluster.enrol(std::slice::from_ref(&enrolment)).unwrap();
    let url = register(&cluster, "Gym East", "sports");
    let scan = |attempts: &str| {
        hotspot(&[
            "visitor",
            "--diary",
            path(&diary),
            "--attempts",
            attempts,
            "scan",
            &url,
            "--registry-pub",
            &registry_pub,
            "--crowding-task",
            path(&task_file),
            "--leader",
            &cluster.url("leader"),
            "--issuer",
            &cluster.url("issuer"),
            "--enrolment-id",
            &enrolment,
        ])
    };

    // 1. Online: the report is stored as the visitor checks in.
    let out = scan("6");
    assert!(out.contains("1 acknowledged"), "{out}");
    assert_eq!(stored_reports(&cluster), 1);

    // 2. Leader down: the second check-in's report waits in the outbox.
    procs.kill9("leader");
    let out = scan("1");
    assert!(out.contains("not sent yet"), "{out}");
    assert!(out.contains("1 report(s) wait"), "{out}");

    // 3. Leader back: `sync` sends it, once.
    procs.restart(&cluster, "leader");
    let out = hotspot(&[
        "visitor",
        "--diary",
        path(&diary),
        "sync",
        "--task",
        path(&task_file),
        "--leader",
        &cluster.url("leader"),
    ]);
    assert!(out.contains("1 acknowledged"), "{out}");
    assert!(out.contains("0 report(s) left"), "{out}");
    assert_eq!(stored_reports(&cluster), 2);
    let listed = hotspot(&["visitor", "--diary", path(&diary), "diary"]);
    assert!(
        listed.contains("Gym East") && listed.contains("outbox: 0"),
        "{listed}"
    );
}
