//! Persistence across reopen, retention, atomic writes and the rejection rules.
#![allow(clippy::unwrap_used, reason = "a failing test should panic")]

use super::*;
use crate::payload::VenueCategory;
use crate::scan::VenueSource;

const NOW: UnixSeconds = 1_796_000_000;

pub(crate) fn venue(code: u64) -> ScannedVenue {
    ScannedVenue {
        venue_code: code,
        bits: 32,
        name: format!("Venue {code}"),
        address: String::new(),
        category: VenueCategory::Restaurant,
        capacity: Some(50),
        default_minutes: 90,
        source: VenueSource::Typed,
    }
}

#[test]
fn diary_survives_reopen() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("diary.json");
    let mut diary = Diary::open(&path, NOW).unwrap();
    let a = diary.check_in(venue(1), NOW - 3600, None).unwrap();
    let b = diary.check_in(venue(2), NOW - 600, Some(NOW)).unwrap();
    diary.check_out(a, NOW - 1800).unwrap();
    diary.mark_crowding_reported(b).unwrap();
    drop(diary);

    let diary = Diary::open(&path, NOW).unwrap();
    let stored: Vec<_> = diary
        .checkins()
        .iter()
        .map(|c| (c.id, c.departure, c.crowding_reported))
        .collect();
    assert_eq!(stored, vec![(a, NOW - 1800, false), (b, NOW, true)]);
    assert!(
        !path.with_extension("tmp").exists(),
        "temporary file left behind"
    );
}

#[test]
fn default_duration_applies_when_no_departure_is_given() {
    let dir = tempfile::tempdir().unwrap();
    let mut diary = Diary::open(&dir.path().join("d.json"), NOW).unwrap();
    diary.check_in(venue(1), NOW, None).unwrap();
    assert_eq!(diary.checkins()[0].departure, NOW + 90 * 60);
}

#[test]
fn check_ins_older_than_fourteen_days_are_forgotten() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("d.json");
    let mut diary = Diary::open(&path, NOW).unwrap();
    diary.check_in(venue(1), NOW - 15 * DAY_SECS, None).unwrap();
    diary.check_in(venue(2), NOW - 13 * DAY_SECS, None).unwrap();
    drop(diary);
    let diary = Diary::open(&path, NOW).unwrap();
    assert_eq!(diary.checkins().len(), 1);
    assert_eq!(diary.checkins()[0].venue.venue_code, 2);
    // The purge was written back: the file no longer holds the old visit.
    assert!(
        !std::fs::read_to_string(&path)
            .unwrap()
            .contains("Venue 1\"")
    );
}

#[test]
fn impossible_stays_are_rejected_and_nothing_is_written() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("d.json");
    let mut diary = Diary::open(&path, NOW).unwrap();
    let before = std::fs::read(&path).unwrap();
    assert!(matches!(
        diary.check_in(venue(1), NOW, Some(NOW)),
        Err(DiaryError::InvalidStay(_))
    ));
    assert!(matches!(
        diary.check_in(venue(1), NOW, Some(NOW + DAY_SECS + 1)),
        Err(DiaryError::InvalidStay(_))
    ));
    assert!(matches!(
        diary.check_out(99, NOW),
        Err(DiaryError::NoSuchCheckIn(99))
    ));
    assert_eq!(std::fs::read(&path).unwrap(), before);
}

#[test]
fn unknown_version_or_garbage_is_refused_and_left_untouched() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("d.json");
    for content in [
        r#"{"version":9,"next_id":1,"checkins":[],"outbox":[]}"#,
        "{not json",
    ] {
        std::fs::write(&path, content).unwrap();
        assert!(matches!(
            Diary::open(&path, NOW),
            Err(DiaryError::Corrupt { .. })
        ));
        assert_eq!(std::fs::read_to_string(&path).unwrap(), content);
    }
}

#[test]
fn outbox_survives_reopen_until_removed() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("d.json");
    let mut diary = Diary::open(&path, NOW).unwrap();
    let report = |id: u8| PreparedReport {
        report_id: [id; 16],
        task_id: "t".into(),
        window_start: 0,
        venue_code: 5,
        ticket: (id == 2).then_some(crate::upload::PresentationTicket {
            key_id: [7; 8],
            nonce: 3,
        }),
    };
    diary.enqueue([report(1), report(2)]).unwrap();
    drop(diary);
    let mut diary = Diary::open(&path, NOW).unwrap();
    assert_eq!(diary.outbox(), &[report(1), report(2)]);
    diary.remove_from_outbox(&[[1; 16]]).unwrap();
    assert_eq!(Diary::open(&path, NOW).unwrap().outbox(), &[report(2)]);
}
