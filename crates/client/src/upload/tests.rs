//! Spreading, padding, backoff, and retries that never double count.
#![allow(clippy::unwrap_used, reason = "a failing test should panic")]

use std::collections::{BTreeMap, HashSet};
use std::sync::Mutex;

use rand::SeedableRng;
use rand::rngs::StdRng;

use super::*;
use crate::diary::tests::venue;

const HOUR: u64 = 3600;
const NOW: UnixSeconds = 1_796_000_000 - 1_796_000_000 % HOUR + 1800; // half past an hour

fn checkin(id: u64, code: u64, arrival: UnixSeconds, minutes: u64) -> CheckIn {
    CheckIn {
        id,
        venue: venue(code),
        arrival,
        departure: arrival + minutes * 60,
        crowding_reported: false,
    }
}

fn spread_params() -> SpreadParams {
    SpreadParams {
        grid: WindowGrid::HOURLY,
        exposure_minutes: BTreeMap::from([(VenueCategory::Restaurant, 120)]),
        default_exposure_minutes: 60,
    }
}

#[test]
fn windows_touched_covers_partial_hours_at_both_ends() {
    let start = 10 * HOUR + 50 * 60;
    assert_eq!(
        windows_touched(start, start + 20 * 60, WindowGrid::HOURLY),
        vec![10 * HOUR, 11 * HOUR]
    );
    assert_eq!(
        windows_touched(10 * HOUR, 11 * HOUR, WindowGrid::HOURLY),
        vec![10 * HOUR]
    );
    assert_eq!(
        windows_touched(10 * HOUR, 10 * HOUR, WindowGrid::HOURLY),
        vec![10 * HOUR]
    );
}

#[test]
fn a_task_grid_with_an_unaligned_origin_names_its_own_windows() {
    let grid = WindowGrid {
        origin: 1_000,
        secs: 60,
    };
    assert_eq!(grid.start_of(1_000), 1_000);
    assert_eq!(grid.start_of(1_059), 1_000);
    assert_eq!(grid.start_of(1_060), 1_060);
    assert_eq!(grid.start_of(999), 940);
    assert_eq!(grid.start_of(0), 0);
    assert_eq!(windows_touched(1_030, 1_100, grid), vec![1_000, 1_060]);
}

#[test]
fn check_in_is_spread_over_its_category_exposure_time() {
    // A 10-minute restaurant visit at 10:50 counts for 2 h of exposure: 10:00, 11:00, 12:00.
    let visit = checkin(1, 7, 10 * HOUR + 50 * 60, 10);
    let cells = spread(&[visit], &spread_params());
    assert_eq!(
        cells.keys().copied().collect::<Vec<_>>(),
        vec![10 * HOUR, 11 * HOUR, 12 * HOUR]
    );
}

#[test]
fn longer_stay_than_exposure_time_counts_every_hour_present() {
    let visit = checkin(1, 7, 9 * HOUR, 5 * 60);
    assert_eq!(spread(&[visit], &spread_params()).len(), 5);
}

#[test]
fn repeated_check_ins_count_once_per_venue_hour() {
    let visits = [
        checkin(1, 7, 9 * HOUR, 30),
        checkin(2, 7, 9 * HOUR + 40 * 60, 10),
    ];
    let cells = spread(&visits, &spread_params());
    assert!(cells.values().all(|codes| codes == &vec![7]));
}

#[test]
fn outbreak_upload_has_a_fixed_shape_whatever_the_diary() {
    let padding = PaddingParams {
        reports_per_window: 3,
        days: 14,
        not_before: 0,
    };
    let mut rng = StdRng::seed_from_u64(1);
    let empty = outbreak_upload(&[], "task", NOW, &spread_params(), padding, &mut rng);
    let visits = [
        checkin(1, 7, NOW - 5 * HOUR, 30),
        checkin(2, 8, NOW - 30 * HOUR, 200),
    ];
    let full = outbreak_upload(&visits, "task", NOW, &spread_params(), padding, &mut rng);
    assert_eq!(empty.reports.len(), 14 * 24 * 3);
    assert_eq!(full.reports.len(), empty.reports.len());
    // Visit 1: 30 min at a restaurant, 2 h exposure from hh:30, 3 windows; visit 2: 200 min, 4.
    assert_eq!(
        (empty.real, full.real, full.over_limit, full.out_of_period),
        (0, 3 + 4, 0, 0)
    );
    let real: Vec<_> = full
        .reports
        .iter()
        .filter(|r| r.venue_code != DUMMY_VENUE_CODE)
        .collect();
    assert_eq!(real.len(), 7);
    let ids: HashSet<_> = full.reports.iter().map(|r| r.report_id).collect();
    assert_eq!(ids.len(), full.reports.len(), "report ids are unique");
    // Every window holds exactly `reports_per_window` reports.
    let mut per_window: BTreeMap<u64, usize> = BTreeMap::new();
    for r in &full.reports {
        *per_window.entry(r.window_start).or_default() += 1;
    }
    assert!(per_window.values().all(|&n| n == 3) && per_window.len() == 14 * 24);
}

#[test]
fn padding_overflow_is_counted_not_hidden() {
    let padding = PaddingParams {
        reports_per_window: 1,
        days: 1,
        not_before: 0,
    };
    let visits = [checkin(1, 7, NOW - HOUR, 30), checkin(2, 8, NOW - HOUR, 30)];
    let upload = outbreak_upload(
        &visits,
        "t",
        NOW,
        &spread_params(),
        padding,
        &mut StdRng::seed_from_u64(2),
    );
    assert_eq!(upload.reports.len(), 24);
    assert_eq!(
        (upload.real, upload.over_limit, upload.out_of_period),
        (2, 2, 2)
    );
}

#[test]
fn exposure_reaching_past_now_is_counted_out_of_period() {
    let padding = PaddingParams {
        reports_per_window: 2,
        days: 1,
        not_before: 0,
    };
    let visit = [checkin(1, 7, NOW - 600, 5)]; // 2 h of exposure from 10 minutes ago
    let upload = outbreak_upload(
        &visit,
        "t",
        NOW,
        &spread_params(),
        padding,
        &mut StdRng::seed_from_u64(9),
    );
    assert_eq!((upload.real, upload.out_of_period), (1, 2));
}

#[test]
fn sealed_windows_before_not_before_are_left_out() {
    // The task still takes windows from just after 4 h ago, so from 3 h ago: 4 windows remain.
    let this_hour = NOW - NOW % HOUR;
    let padding = PaddingParams {
        reports_per_window: 2,
        days: 1,
        not_before: this_hour - 4 * HOUR + 1,
    };
    let visits = [
        checkin(1, 7, NOW - 6 * HOUR, 30),
        checkin(2, 8, NOW - HOUR, 30),
    ];
    let upload = outbreak_upload(
        &visits,
        "t",
        NOW,
        &spread_params(),
        padding,
        &mut StdRng::seed_from_u64(10),
    );
    assert_eq!(upload.reports.len(), 4 * 2);
    let first = upload.reports.iter().map(|r| r.window_start).min().unwrap();
    assert_eq!(first, this_hour - 3 * HOUR);
    // Visit 1 (3 windows, all sealed) is out of the period; visit 2 touches this hour, the
    // last and the next, which lies past now.
    assert_eq!((upload.real, upload.out_of_period), (2, 3 + 1));
}

#[test]
fn crowding_report_is_for_the_arrival_window() {
    let visit = checkin(1, 9, 10 * HOUR + 59 * 60, 30);
    let report = crowding_report(
        &visit,
        "crowd",
        WindowGrid::HOURLY,
        &mut StdRng::seed_from_u64(3),
    );
    assert_eq!((report.window_start, report.venue_code), (10 * HOUR, 9));
}

#[test]
fn backoff_grows_exponentially_within_its_cap_with_jitter() {
    let policy = RetryPolicy {
        max_attempts: 10,
        base_delay: Duration::from_millis(100),
        max_delay: Duration::from_secs(2),
    };
    let mut rng = StdRng::seed_from_u64(4);
    for attempt in 0..10 {
        let ceiling = Duration::from_millis(100 << attempt).min(Duration::from_secs(2));
        let delays: Vec<_> = (0..50).map(|_| policy.backoff(attempt, &mut rng)).collect();
        assert!(delays.iter().all(|d| *d <= ceiling));
        assert!(delays.iter().any(|d| *d != delays[0]), "no jitter");
    }
}

/// A leader stand-in with the one property the retry loop relies on: a known report id is
/// acknowledged without being stored twice. It drops the first `lose_acks` acknowledgements
/// after storing (the connection breaks on the way back), then fails `outages` calls outright.
struct FlakyLeader {
    stored: Mutex<Vec<[u8; 16]>>,
    calls: Mutex<usize>,
    lose_acks: usize,
    outages: usize,
}

impl Uploader for FlakyLeader {
    async fn upload(&self, report: &PreparedReport) -> Result<(), UploadError> {
        let call = {
            let mut calls = self.calls.lock().unwrap();
            *calls += 1;
            *calls
        };
        if call > self.lose_acks && call <= self.lose_acks + self.outages {
            return Err(UploadError::Transient("unavailable".into()));
        }
        let mut stored = self.stored.lock().unwrap();
        if !stored.contains(&report.report_id) {
            stored.push(report.report_id);
        }
        if call <= self.lose_acks {
            Err(UploadError::Transient("ack lost".into()))
        } else {
            Ok(())
        }
    }
}

fn diary_with_outbox(n: usize) -> (tempfile::TempDir, Diary) {
    let dir = tempfile::tempdir().unwrap();
    let mut diary = Diary::open(&dir.path().join("d.json"), NOW).unwrap();
    let mut rng = StdRng::seed_from_u64(5);
    let reports = (0..n).map(|i| PreparedReport {
        report_id: rng.random(),
        task_id: "t".into(),
        window_start: i as u64 * HOUR,
        venue_code: 1 + i as u64,
        ticket: None,
    });
    diary.enqueue(reports).unwrap();
    (dir, diary)
}

#[tokio::test(start_paused = true)]
async fn retries_resend_the_same_ids_and_never_double_count() {
    let (_dir, mut diary) = diary_with_outbox(100);
    let ids: Vec<_> = diary.outbox().iter().map(|r| r.report_id).collect();
    let leader = FlakyLeader {
        stored: Mutex::default(),
        calls: Mutex::default(),
        lose_acks: 2,
        outages: 3,
    };
    let summary = drain_outbox(
        &mut diary,
        &leader,
        RetryPolicy::default(),
        &mut StdRng::seed_from_u64(6),
    )
    .await
    .unwrap();
    assert_eq!(summary.acknowledged, 100);
    assert_eq!(summary.attempts, 105);
    assert_eq!(
        *leader.stored.lock().unwrap(),
        ids,
        "each report stored exactly once, in order"
    );
    assert!(diary.outbox().is_empty());
}

/// Serves `healthy_calls` uploads, then is down for good.
struct OutageAfter {
    served: Mutex<usize>,
    healthy_calls: usize,
}

impl Uploader for OutageAfter {
    async fn upload(&self, _: &PreparedReport) -> Result<(), UploadError> {
        let mut served = self.served.lock().unwrap();
        if *served < self.healthy_calls {
            *served += 1;
            return Ok(());
        }
        Err(UploadError::Transient("down".into()))
    }
}

#[tokio::test(start_paused = true)]
async fn giving_up_keeps_unacknowledged_reports_for_next_time() {
    let (dir, mut diary) = diary_with_outbox(10);
    let leader = OutageAfter {
        served: Mutex::default(),
        healthy_calls: 5,
    };
    let policy = RetryPolicy {
        max_attempts: 3,
        ..RetryPolicy::default()
    };
    let err = drain_outbox(&mut diary, &leader, policy, &mut StdRng::seed_from_u64(7))
        .await
        .unwrap_err();
    assert!(
        matches!(err, DrainError::GaveUp { attempts: 3, .. }),
        "{err}"
    );
    let reopened = Diary::open(&dir.path().join("d.json"), NOW).unwrap();
    assert_eq!(reopened.outbox().len(), 5);
}

#[tokio::test(start_paused = true)]
async fn reports_of_other_tasks_stay_in_the_outbox() {
    struct OnlyTaskU;
    impl Uploader for OnlyTaskU {
        fn serves(&self, report: &PreparedReport) -> bool {
            report.task_id == "u"
        }
        async fn upload(&self, _: &PreparedReport) -> Result<(), UploadError> {
            Ok(())
        }
    }
    let (_dir, mut diary) = diary_with_outbox(3);
    let other = PreparedReport {
        task_id: "u".into(),
        ..diary.outbox()[0].clone()
    };
    let other = PreparedReport {
        report_id: [0xee; 16],
        ..other
    };
    diary.enqueue([other]).unwrap();
    let summary = drain_outbox(
        &mut diary,
        &OnlyTaskU,
        RetryPolicy::default(),
        &mut StdRng::seed_from_u64(8),
    )
    .await
    .unwrap();
    assert_eq!(summary.acknowledged, 1);
    assert_eq!(diary.outbox().len(), 3);
    assert!(diary.outbox().iter().all(|r| r.task_id == "t"));
}

#[tokio::test(start_paused = true)]
async fn rejected_reports_are_counted_and_leave_the_outbox() {
    struct Refuses;
    impl Uploader for Refuses {
        async fn upload(&self, _: &PreparedReport) -> Result<(), UploadError> {
            Err(UploadError::Rejected("window closed".into()))
        }
    }
    let (_dir, mut diary) = diary_with_outbox(3);
    let summary = drain_outbox(
        &mut diary,
        &Refuses,
        RetryPolicy::default(),
        &mut StdRng::seed_from_u64(8),
    )
    .await
    .unwrap();
    assert_eq!((summary.rejected, summary.attempts), (3, 3));
    assert!(diary.outbox().is_empty());
}

#[test]
fn padding_for_a_task_starts_at_its_first_unsealed_window() {
    use hotspot_core::task::{TaskConfig, TaskId, TaskKind};
    let task = TaskConfig {
        id: TaskId([1; 32]),
        start_unix: 1_000,
        window_seconds: 60,
        grace_seconds: 120,
        presentations_per_window: 2,
        privacy: hotspot_core::task::PrivacyParams::default_for(60),
        ..TaskConfig::example(TaskKind::Outbreak)
    };
    // At 1_000 + 10 min, windows 0..=7 are sealed (window 7 seals at 1_000 + 8 min + 2 min).
    let padding = PaddingParams::for_task(&task, 2, 1_600);
    assert_eq!(padding.not_before, 1_000 + 8 * 60);
    assert!(task.is_sealed(7, 1_600) && !task.is_sealed(8, 1_600));
    // Before the grace period has passed once, the task's start bounds the upload.
    assert_eq!(PaddingParams::for_task(&task, 2, 1_030).not_before, 1_000);
}
