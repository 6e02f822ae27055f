//! Webhook delivery against a real receiver on a loopback port that refuses the first attempts
//! of every alert: each alert still arrives, signed, with its id, and the outbox drains.

mod common;

use std::collections::{BTreeMap, BTreeSet};
use std::sync::{Arc, Mutex};
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use axum::body::Bytes;
use axum::extract::State;
use axum::http::{HeaderMap, StatusCode};
use hotspot_dashboard::DashboardSource;
use hotspot_dashboard::view::{AlertCursor, AlertView};
use hotspot_dashboard::webhook::{
    InMemoryOutbox, Outbox, RetryPolicy, SIGNATURE_HEADER, TIMESTAMP_HEADER, WebhookDispatcher,
    WebhookEndpoint, WebhookKey, WebhookPayload, verify_signature,
};

/// Attempts the receiver refuses (500) for each alert before it accepts one.
const REFUSALS: usize = 2;

#[derive(Default)]
struct Receiver {
    attempts: BTreeMap<String, usize>,
    accepted: BTreeSet<String>,
    bad_signatures: usize,
}

fn key() -> WebhookKey {
    WebhookKey::new(b"webhook-test-key-0123456789abcdef").expect("32+ bytes")
}

async fn receive(
    State(seen): State<Arc<Mutex<Receiver>>>,
    headers: HeaderMap,
    body: Bytes,
) -> StatusCode {
    let now = SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .expect("clock")
        .as_secs();
    let header = |name: &str| {
        headers
            .get(name)
            .and_then(|v| v.to_str().ok())
            .unwrap_or("")
    };
    let verified = verify_signature(
        &key(),
        header(TIMESTAMP_HEADER),
        header(SIGNATURE_HEADER),
        &body,
        now,
        300,
    );
    let mut seen = seen.lock().expect("receiver lock");
    if verified.is_err() {
        seen.bad_signatures += 1;
        return StatusCode::UNAUTHORIZED;
    }
    let payload: WebhookPayload = serde_json::from_slice(&body).expect("json payload");
    assert_eq!(payload.id, payload.alert.id);
    assert_eq!(header("x-hotspot-delivery"), payload.id);
    let attempts = seen.attempts.entry(payload.id.clone()).or_default();
    *attempts += 1;
    if *attempts <= REFUSALS {
        return StatusCode::INTERNAL_SERVER_ERROR;
    }
    seen.accepted.insert(payload.id);
    StatusCode::OK
}

async fn start_receiver(state: Arc<Mutex<Receiver>>) -> std::net::SocketAddr {
    let app = axum::Router::new()
        .route("/hook", axum::routing::post(receive))
        .with_state(state);
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0")
        .await
        .expect("bind");
    let addr = listener.local_addr().expect("addr");
    tokio::spawn(async move { axum::serve(listener, app).await });
    addr
}

fn fast_policy() -> RetryPolicy {
    RetryPolicy {
        initial_backoff: Duration::from_millis(20),
        max_backoff: Duration::from_millis(80),
        request_timeout: Duration::from_secs(5),
        poll_interval: Duration::from_millis(10),
    }
}

/// Every alert reaches the receiver despite two refused attempts each, with a valid signature,
/// including alerts stored while delivery was under way.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn receiver_gets_every_alert_despite_failing_first_attempts() {
    let source = common::demo_source();
    let receiver = Arc::new(Mutex::new(Receiver::default()));
    let addr = start_receiver(Arc::clone(&receiver)).await;
    let outbox = Arc::new(InMemoryOutbox::new());
    let endpoint =
        WebhookEndpoint::new("test", &format!("http://{addr}/hook"), key()).expect("endpoint");
    let dispatcher = WebhookDispatcher::new(
        Arc::new(source.clone()),
        outbox.clone(),
        endpoint,
        fast_policy(),
    )
    .expect("dispatcher");

    // Run passes until the outbox drains; store one more alert half way through.
    let mut late: Option<AlertView> = None;
    for pass in 0..200 {
        dispatcher.run_once().await.expect("pass");
        if pass == 3 {
            let mut alert = source.alerts_after(AlertCursor::START, 1).expect("alerts")[0].clone();
            alert.id = "late-alert".into();
            source.push_alert(alert.clone());
            late = Some(alert);
        }
        if pass > 3 && dispatcher.pending().await.expect("pending") == 0 {
            break;
        }
        tokio::time::sleep(Duration::from_millis(25)).await;
    }

    let all: BTreeSet<String> = source
        .alerts_after(AlertCursor::START, 10_000)
        .expect("alerts")
        .into_iter()
        .map(|a| a.id)
        .collect();
    let seen = receiver.lock().expect("lock");
    assert!(late.is_some() && all.contains("late-alert"));
    assert_eq!(seen.accepted, all, "every alert delivered");
    assert!(
        seen.attempts.values().all(|n| *n == REFUSALS + 1),
        "retried, then stopped after success"
    );
    assert_eq!(seen.bad_signatures, 0);
    assert_eq!(outbox.pending("test").expect("pending"), 0);
}

/// An outbox cursor survives the dispatcher: a new dispatcher over the same outbox does not
/// enqueue or send delivered alerts again.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_restarted_dispatcher_does_not_resend_delivered_alerts() {
    let source = common::demo_source();
    let receiver = Arc::new(Mutex::new(Receiver::default()));
    let addr = start_receiver(Arc::clone(&receiver)).await;
    let outbox = Arc::new(InMemoryOutbox::new());
    let url = format!("http://{addr}/hook");
    let make = || {
        let endpoint = WebhookEndpoint::new("test", &url, key()).expect("endpoint");
        WebhookDispatcher::new(
            Arc::new(source.clone()),
            outbox.clone(),
            endpoint,
            fast_policy(),
        )
        .expect("dispatcher")
    };
    let first = make();
    while first.run_once().await.expect("pass").enqueued > 0
        || first.pending().await.expect("pending") > 0
    {
        tokio::time::sleep(Duration::from_millis(25)).await;
    }
    let total: usize = receiver.lock().expect("lock").attempts.values().sum();
    drop(first);

    let second = make();
    let stats = second.run_once().await.expect("pass");
    assert_eq!((stats.enqueued, stats.delivered, stats.failed), (0, 0, 0));
    assert_eq!(
        receiver
            .lock()
            .expect("lock")
            .attempts
            .values()
            .sum::<usize>(),
        total
    );
}

/// A receiver that checks with the wrong key refuses; the dispatcher keeps retrying, so the
/// alert stays pending rather than being dropped.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn refused_deliveries_stay_pending() {
    let source = hotspot_dashboard::InMemorySource::new();
    let receiver = Arc::new(Mutex::new(Receiver::default()));
    let addr = start_receiver(Arc::clone(&receiver)).await;
    let mut alert = common::demo_source()
        .alerts_after(AlertCursor::START, 1)
        .expect("alerts")[0]
        .clone();
    alert.id = "only".into();
    source.push_alert(alert);
    let outbox = Arc::new(InMemoryOutbox::new());
    let wrong = WebhookKey::new(&[9u8; 32]).expect("key");
    let endpoint =
        WebhookEndpoint::new("wrongkey", &format!("http://{addr}/hook"), wrong).expect("endpoint");
    let dispatcher =
        WebhookDispatcher::new(Arc::new(source), outbox.clone(), endpoint, fast_policy())
            .expect("dispatcher");
    for _ in 0..5 {
        dispatcher.run_once().await.expect("pass");
        tokio::time::sleep(Duration::from_millis(30)).await;
    }
    let seen = receiver.lock().expect("lock");
    assert!(seen.bad_signatures >= 2, "retried after refusal");
    assert!(seen.accepted.is_empty());
    let pending = outbox.due("wrongkey", u64::MAX, 10).expect("due");
    assert_eq!(pending.len(), 1);
    assert!(pending[0].attempts >= 2);
}
