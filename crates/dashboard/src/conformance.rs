//! Contract checks for implementations of [`DashboardSource`] and [`Outbox`]: the collector's
//! SQLite store calls these from its own tests, so that the dashboard, the webhooks and the
//! gRPC alert stream can rely on the ordering and idempotence the traits document.
//!
//! Each function panics with a message naming the broken rule; the in-memory implementations
//! pass them in this crate's tests.

use crate::source::DashboardSource;
use crate::view::{AlertCursor, AlertFilter, AlertLevel, AlertView, LatLon};
use crate::webhook::Outbox;

/// An alert with the given id and window, for filling a store under test.
pub fn sample_alert(id: &str, venue_code: u64, window_start: u64, level: AlertLevel) -> AlertView {
    AlertView {
        id: id.to_owned(),
        cursor: AlertCursor::START,
        task: "conformance".into(),
        venue_code,
        venue_name: format!("venue {venue_code}"),
        category: if venue_code.is_multiple_of(2) {
            "bar".into()
        } else {
            "gym".into()
        },
        location: Some(LatLon {
            lat: 50.0,
            lon: 8.0,
        }),
        window_start,
        window_secs: 3600,
        level,
        noisy_count: 3,
        stddev: 1.0,
        rule: "conformance".into(),
        first_seen: window_start + 3600,
    }
}

/// Checks the alert-log contract. `store` must hold no alerts at first; `push` stores one
/// alert the way the collector does and returns it as stored (the store assigns the cursor and
/// may choose its own id). Every pushed alert has a window of its own, so a store that records
/// each batch's alerts once can take them one batch at a time.
pub fn check_source(store: &dyn DashboardSource, mut push: impl FnMut(AlertView) -> AlertView) {
    // 1. Empty log.
    let empty = store.alert_summary().expect("summary");
    assert_eq!(empty.count, 0, "source must start empty");
    assert!(
        store
            .alerts_after(AlertCursor::START, 10)
            .expect("after")
            .is_empty()
    );

    // 2. Store alerts out of window order (25 distinct hours); cursors follow storage order.
    let levels = [AlertLevel::Crowding, AlertLevel::Orange, AlertLevel::Red];
    let mut expected = Vec::new();
    for i in 0..25u64 {
        let window = 3600 * ((i * 7) % 25);
        let stored = push(sample_alert(
            &format!("c{i}"),
            i % 5,
            window,
            levels[(i % 3) as usize],
        ));
        assert_eq!(
            (stored.venue_code, stored.window_start, stored.level),
            (i % 5, window, levels[(i % 3) as usize]),
            "push returns the stored alert"
        );
        assert!(
            (1..=128).contains(&stored.id.len()) && stored.id.bytes().all(|b| b.is_ascii_graphic()),
            "alert ids are 1 to 128 visible ASCII characters"
        );
        expected.push(stored.id);
    }
    let all = store.alerts_after(AlertCursor::START, 1000).expect("after");
    let ids: Vec<&str> = all.iter().map(|a| a.id.as_str()).collect();
    assert_eq!(ids, expected, "alerts_after must return storage order");
    let distinct: std::collections::BTreeSet<&str> = ids.iter().copied().collect();
    assert_eq!(distinct.len(), ids.len(), "alert ids are unique");
    assert!(
        all.windows(2).all(|w| w[0].cursor < w[1].cursor),
        "cursors strictly increase"
    );

    // 3. Paging: limit respected, resumes strictly after the cursor, no gap or repeat.
    let mut cursor = AlertCursor::START;
    let mut paged = Vec::new();
    while let Some(last) = {
        let page = store.alerts_after(cursor, 4).expect("after");
        assert!(page.len() <= 4, "limit respected");
        paged.extend(page.iter().map(|a| a.id.clone()));
        page.last().map(|a| a.cursor)
    } {
        cursor = last;
    }
    assert_eq!(paged, expected, "paging has no gap or repeat");

    // 4. Summary and filters agree with AlertFilter::matches.
    let summary = store.alert_summary().expect("summary");
    assert_eq!(summary.count, 25);
    assert_eq!(summary.last_cursor, all[24].cursor);
    assert_eq!(
        summary.first_window,
        all.iter().map(|a| a.window_start).min()
    );
    assert_eq!(
        summary.last_window,
        all.iter().map(|a| a.window_start).max()
    );
    let filters = [
        AlertFilter {
            from: Some(3600 * 5),
            to: Some(3600 * 12),
            ..AlertFilter::default()
        },
        AlertFilter {
            category: Some("bar".into()),
            ..AlertFilter::default()
        },
        AlertFilter {
            levels: vec![AlertLevel::Orange, AlertLevel::Red],
            ..AlertFilter::default()
        },
        AlertFilter {
            task: Some("other".into()),
            ..AlertFilter::default()
        },
    ];
    for filter in filters {
        let got = store.alerts(&filter, 1000).expect("alerts");
        let mut want: Vec<&AlertView> = all.iter().filter(|a| filter.matches(a)).collect();
        want.sort_by_key(|a| (a.window_start, a.venue_code, a.cursor));
        let got_ids: Vec<&str> = got.iter().map(|a| a.id.as_str()).collect();
        let want_ids: Vec<&str> = want.iter().map(|a| a.id.as_str()).collect();
        assert_eq!(
            got_ids, want_ids,
            "alerts({filter:?}) must equal AlertFilter::matches, by window then venue"
        );
    }
    assert_eq!(
        store
            .alerts(&AlertFilter::default(), 3)
            .expect("alerts")
            .len(),
        3,
        "limit respected"
    );
}

/// Checks the outbox contract on an empty `outbox`.
pub fn check_outbox(outbox: &dyn Outbox) {
    let alerts: Vec<AlertView> = (1..=3u64)
        .map(|i| {
            let mut a = sample_alert(&format!("o{i}"), i, 0, AlertLevel::Red);
            a.cursor = AlertCursor(i);
            a
        })
        .collect();

    // 1. Enqueue records the cursor; enqueueing the same alerts again adds nothing.
    assert_eq!(
        outbox.enqueued_through("a").expect("through"),
        AlertCursor::START
    );
    outbox
        .enqueue("a", &alerts[..2], AlertCursor(2))
        .expect("enqueue");
    outbox
        .enqueue("a", &alerts, AlertCursor(3))
        .expect("enqueue");
    assert_eq!(
        outbox.enqueued_through("a").expect("through"),
        AlertCursor(3)
    );
    assert_eq!(
        outbox.pending("a").expect("pending"),
        3,
        "enqueue is idempotent per alert id"
    );

    // 2. Endpoints are independent.
    assert_eq!(outbox.pending("b").expect("pending"), 0);
    assert_eq!(
        outbox.enqueued_through("b").expect("through"),
        AlertCursor::START
    );

    // 3. Due deliveries come in cursor order; a failure postpones, a success removes.
    let due = outbox.due("a", 0, 10).expect("due");
    let ids: Vec<&str> = due.iter().map(|d| d.alert.id.as_str()).collect();
    assert_eq!(ids, ["o1", "o2", "o3"], "due in cursor order");
    assert!(due.iter().all(|d| d.attempts == 0));
    assert_eq!(
        outbox.due("a", 0, 2).expect("due").len(),
        2,
        "limit respected"
    );
    outbox.mark_failed("a", "o1", 1, 5_000).expect("failed");
    let ids: Vec<String> = outbox
        .due("a", 4_999, 10)
        .expect("due")
        .into_iter()
        .map(|d| d.alert.id)
        .collect();
    assert_eq!(
        ids,
        ["o2", "o3"],
        "a failed delivery waits for its next attempt"
    );
    let retry = outbox.due("a", 5_000, 10).expect("due");
    assert_eq!((retry[0].alert.id.as_str(), retry[0].attempts), ("o1", 1));
    outbox.mark_delivered("a", "o2").expect("delivered");
    assert_eq!(outbox.pending("a").expect("pending"), 2);

    // 4. A delivered alert offered again is not queued again.
    outbox
        .enqueue("a", &alerts[1..2], AlertCursor(3))
        .expect("enqueue");
    assert_eq!(
        outbox.pending("a").expect("pending"),
        2,
        "delivered ids stay known"
    );
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::source::InMemorySource;
    use crate::webhook::InMemoryOutbox;

    #[test]
    fn in_memory_source_meets_the_source_contract() {
        let source = InMemorySource::new();
        let pusher = source.clone();
        check_source(&source, move |mut a| {
            a.cursor = pusher.push_alert(a.clone());
            a
        });
    }

    #[test]
    fn in_memory_outbox_meets_the_outbox_contract() {
        check_outbox(&InMemoryOutbox::new());
    }
}
