//! What leaves a real collector process for people and apps: its dashboard in headless
//! Chromium, the JSON API and exposure list, the gRPC alert stream across a kill -9 of the
//! collector, and webhooks to a receiver that refuses the first attempts.
//!
//! The collector's data comes from the real pipeline (leader, helper and collector processes,
//! uploads, a sealed batch, a search), kept small: six venues, a few dozen reports.
//! Screenshots land in `target/tmp/dashboard-screenshots/` (paths printed). Without Chromium
//! the browser part is skipped with a loud message, unless `$CI` is set: then it fails.

#![allow(clippy::unwrap_used, clippy::expect_used)]

mod common;
#[path = "common/web.rs"]
mod web;

use std::collections::{BTreeMap, BTreeSet};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use axum::body::Bytes;
use axum::extract::State;
use axum::http::{HeaderMap, StatusCode};
use hotspot_cli::cluster::{Cluster, ClusterSpec};
use hotspot_core::venue::VenueCategory;
use hotspot_dashboard::exposure::{ExposureList, VerifyingKey};
use hotspot_dashboard::view::{AlertView, BatchView, SearchModeView, VenueView};
use hotspot_dashboard::webhook::{
    ATTEMPT_HEADER, SIGNATURE_HEADER, TIMESTAMP_HEADER, WebhookKey, WebhookPayload,
    verify_signature,
};
use hotspot_proto::v1;
use hotspot_server::storage::VenueRecord;
use serde_json::Value;

use common::*;
use web::{Browser, get};

/// Six venues around a made-up centre: three restaurants, two bars, a gym.
const VENUES: [(u64, &str, VenueCategory, f64, f64); 6] = [
    (
        0x1001,
        "Chez Anna",
        VenueCategory::Restaurant,
        48.852,
        2.347,
    ),
    (
        0x1002,
        "Le Bistro",
        VenueCategory::Restaurant,
        48.857,
        2.352,
    ),
    (0x1003, "Pho 13", VenueCategory::Restaurant, 48.861, 2.341),
    (0x2001, "Bar Central", VenueCategory::Bar, 48.848, 2.356),
    (0x2002, "Night Owl", VenueCategory::Bar, 48.865, 2.360),
    (0x3001, "City Gym", VenueCategory::Sports, 48.855, 2.338),
];

fn venues() -> Vec<VenueRecord> {
    VENUES
        .iter()
        .map(|&(code, name, category, lat, lon)| VenueRecord {
            code,
            name: name.into(),
            address: String::new(),
            lat,
            lon,
            category,
            capacity: CAPACITY,
            default_minutes: 60,
            registered_unix: 0,
        })
        .collect()
}

/// Short windows, the six venues, the crowding rule of [`spec`] (3 people); with `noise` the
/// task's default privacy budget, so that counts carry their real uncertainty.
fn dashboard_spec(window_seconds: u64, noise: bool) -> ClusterSpec {
    let mut spec = spec(window_seconds, Vec::new(), 100);
    spec.venues = venues();
    spec.privacy.noise = noise;
    spec
}

/// Uploads `n` check-ins for each `(venue, n)` into `window`; the visitors' credentials are
/// obtained first, in one go, so that the uploads fit in a short window.
async fn upload(cluster: &Cluster, window: u64, counts: &[(u64, usize)]) {
    let codes: Vec<u64> = counts
        .iter()
        .flat_map(|&(venue, n)| std::iter::repeat_n(venue, n))
        .collect();
    let reports = reports_for(cluster, &codes, window);
    let mut client = upload_client(cluster).await;
    for report in reports {
        client
            .upload(v1::UploadRequest {
                report: Some(report),
            })
            .await
            .unwrap();
    }
}

/// Uploads into the next window (open to uploads within the clock-skew allowance, and so
/// still open when the credentials have been obtained), waits for its seal and searches it.
async fn collect(cluster: &Cluster, counts: &[(u64, usize)]) -> v1::RunSearchResponse {
    let window = current_window(cluster) + 1;
    upload(cluster, window, counts).await;
    wait_sealed(cluster, window).await;
    search(cluster, window).await.unwrap()
}

fn admin(cluster: &Cluster) -> String {
    format!("http://127.0.0.1:{}", cluster.admin_ports[2])
}

fn token(cluster: &Cluster) -> String {
    std::fs::read_to_string(cluster.dashboard_token_file())
        .unwrap()
        .trim()
        .to_owned()
}

/// Every alert of the collector's log, through its JSON API, in cursor order.
async fn api_alerts(cluster: &Cluster) -> Vec<AlertView> {
    let bearer = format!("Bearer {}", token(cluster));
    let reply = get(
        &format!("{}/dashboard/api/alerts/after?cursor=0", admin(cluster)),
        &[("authorization", &bearer)],
    )
    .await;
    assert_eq!(reply.status, StatusCode::OK);
    serde_json::from_slice(&reply.body).unwrap()
}

/// Polls `check` every 50 ms until it holds, for at most `limit`.
async fn eventually(limit: Duration, what: &str, mut check: impl FnMut() -> bool) {
    let deadline = Instant::now() + limit;
    while !check() {
        assert!(Instant::now() < deadline, "timed out waiting for {what}");
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
}

const ALERTED: &str =
    "[...document.querySelectorAll('#map circle.alerted')].map(c => c.dataset.venue)";
const ROWS: &str = "[...document.querySelectorAll('#alerts tr.alert')].map(r => r.dataset.venue + ':' + (r.classList.contains('new') ? 'new' : 'old'))";

fn strings(value: &Value) -> Vec<String> {
    value
        .as_array()
        .expect("array")
        .iter()
        .map(|v| v.as_str().expect("string").to_owned())
        .collect()
}

fn hex_codes<'a>(codes: impl IntoIterator<Item = &'a u64>) -> BTreeSet<String> {
    codes.into_iter().map(|c| format!("{c:x}")).collect()
}

/// The dashboard of a collector holding the results of two searched batches: the API and the
/// exposure list agree with the stored alerts, unauthorised requests get 401 and no data, and
/// in Chromium the map shows the alerted venues, the category filter and the hour strip change
/// what is shown, and the second batch's alerts are the ones marked new.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn dashboard_of_a_real_collector_in_headless_chromium() {
    // Noise on: a quiet venue may alert by chance, so the checks compare with what the
    // collector stored, and the crowded venues are far above the rule (20 against 3, the noise's standard deviation is about 6).
    let cluster =
        Cluster::prepare(&test_dir("dashboard"), exe(), &dashboard_spec(6, true)).unwrap();
    let _procs = Procs::start_all(&cluster);
    let base = admin(&cluster);

    // 1. One batch: two restaurants and a bar crowded, the others quiet.
    let first = collect(&cluster, &[(0x1001, 20), (0x1002, 16), (0x2001, 20)]).await;
    let alerted: BTreeSet<u64> = first.alerts.iter().map(|a| a.venue_code).collect();
    assert!(
        alerted.contains(&0x1001) && alerted.contains(&0x2001),
        "crowded venues alert: {alerted:x?}"
    );

    // 2. Unauthorised: 401 and nothing about the alerts, for every way of asking wrongly.
    let wrong = "Bearer not-the-dashboard-token-000";
    let raw_cookie = format!("hotspot_session={}", token(&cluster));
    for path in [
        "/dashboard",
        "/dashboard/api/alerts",
        "/dashboard/api/alerts/after?cursor=0",
        "/dashboard/api/venues",
        "/dashboard/api/batches",
    ] {
        for headers in [
            vec![],
            vec![("authorization", wrong)],
            vec![("cookie", raw_cookie.as_str())],
        ] {
            let reply = get(&format!("{base}{path}"), &headers).await;
            assert_eq!(reply.status, StatusCode::UNAUTHORIZED, "{path} {headers:?}");
            let text = reply.text();
            for (_, name, ..) in VENUES {
                assert!(!text.contains(name), "{path} leaks {name}");
            }
            assert!(!text.contains("1001") && !text.contains("noisy"), "{path}");
        }
    }

    // 3. With the token: the API shows the stored alerts with the registry's names and places.
    let alerts = api_alerts(&cluster).await;
    let by_cursor: Vec<(u64, u64, i64)> = alerts
        .iter()
        .map(|a| (a.cursor.0, a.venue_code, a.noisy_count))
        .collect();
    let stored: Vec<(u64, u64, i64)> = first
        .alerts
        .iter()
        .map(|a| (a.cursor, a.venue_code, a.count))
        .collect();
    assert_eq!(by_cursor, stored);
    for a in &alerts {
        let (_, name, category, lat, lon) = VENUES.iter().find(|v| v.0 == a.venue_code).unwrap();
        assert_eq!(a.venue_name, *name);
        assert_eq!(a.category, category.to_string());
        let at = a.location.expect("registered venues are placed");
        assert_eq!((at.lat, at.lon), (*lat, *lon));
    }
    let bearer = format!("Bearer {}", token(&cluster));
    let listed: Vec<VenueView> = serde_json::from_slice(
        &get(
            &format!("{base}/dashboard/api/venues"),
            &[("authorization", &bearer)],
        )
        .await
        .body,
    )
    .unwrap();
    assert_eq!(listed.len(), VENUES.len());
    assert!(
        alerts.iter().all(|a| a.stddev > 0.0),
        "noisy counts carry their uncertainty"
    );

    // The batch: its reports, search mode and the privacy budget it spent.
    let batches: Vec<BatchView> = serde_json::from_slice(
        &get(
            &format!("{base}/dashboard/api/batches"),
            &[("authorization", &bearer)],
        )
        .await
        .body,
    )
    .unwrap();
    assert_eq!(batches.len(), 1);
    let batch = &batches[0];
    assert_eq!((batch.accepted, batch.rejected), (56, 0));
    assert_eq!(batch.search_mode, SearchModeView::Registry);
    assert_eq!(batch.alerts as usize, alerts.len());
    assert!(batch.epsilon_spent > 0.0 && batch.epsilon_left > 0.0);
    assert_eq!(batch.window_start, alerts[0].window_start);

    // 4. The exposure list verifies under the published key (a crowding task has no exposure
    //    cells) and its version is the newest alert's cursor.
    let key_hex = get(&format!("{base}/exposure-list/key"), &[]).await.text();
    let key_bytes: [u8; 32] = hotspot_core::task::decode_hex(key_hex.trim())
        .unwrap()
        .try_into()
        .unwrap();
    let key = VerifyingKey::from_bytes(&key_bytes).unwrap();
    let list = get(&format!("{base}/exposure-list"), &[]).await;
    assert_eq!(list.status, StatusCode::OK);
    let list = ExposureList::verify(&list.body, &key).unwrap();
    assert_eq!(list.version(), alerts.last().unwrap().cursor.0);
    assert!(list.cells().is_empty());

    // 5. The page in Chromium.
    let Some(chromium) =
        web::chromium_or_skip("dashboard_of_a_real_collector_in_headless_chromium")
    else {
        return;
    };
    let mut browser = Browser::launch(&chromium).await;
    browser.navigate(&format!("{base}/dashboard")).await;
    assert_eq!(
        browser
            .eval("document.querySelectorAll('input[name=token]').length")
            .await,
        1,
        "the login form"
    );
    let submit = format!(
        "document.querySelector('input[name=token]').value = '{}'; document.querySelector('form').submit()",
        token(&cluster)
    );
    browser.eval_and_wait(&submit).await;
    assert_eq!(browser.eval("location.pathname").await, "/dashboard");

    // The map shows exactly the alerted venues; every row is new on the first visit.
    let markers: BTreeSet<String> = strings(&browser.eval(ALERTED).await).into_iter().collect();
    assert_eq!(markers, hex_codes(&alerted));
    let rows = strings(&browser.eval(ROWS).await);
    assert_eq!(rows.len(), alerts.len());
    assert!(rows.iter().all(|r| r.ends_with(":new")), "{rows:?}");
    let batch_rows = browser
        .eval("document.querySelectorAll('#batches tbody tr').length")
        .await;
    assert_eq!(batch_rows.as_u64(), Some(1));
    let venue_dots = browser
        .eval("document.querySelectorAll('#map circle').length")
        .await;
    assert_eq!(venue_dots.as_u64(), Some(VENUES.len() as u64));

    // The category filter, through the form: only the bars remain, on the map and in the table.
    browser
        .eval_and_wait(
            "document.querySelector('select[name=category]').value = 'bar'; document.querySelector('form.filters').submit()",
        )
        .await;
    assert!(
        browser
            .eval("location.search")
            .await
            .as_str()
            .unwrap()
            .contains("category=bar")
    );
    let bars: BTreeSet<u64> = alerts
        .iter()
        .filter(|a| a.category == "bar")
        .map(|a| a.venue_code)
        .collect();
    let markers: BTreeSet<String> = strings(&browser.eval(ALERTED).await).into_iter().collect();
    assert_eq!(markers, hex_codes(&bars));
    assert!(markers.len() < alerted.len());
    assert_eq!(strings(&browser.eval(ROWS).await).len(), bars.len());
    browser
        .screenshot("collector-dashboard-bars.png", true)
        .await;

    // The hour strip (the time slider): the alerts' hour shows them all, another hour none.
    let hour = (alerts[0].window_start % 86_400) / 3600;
    browser.navigate(&format!("{base}/dashboard")).await;
    browser
        .eval_and_wait(&format!(
            "document.querySelectorAll('a.hour')[{hour}].click()"
        ))
        .await;
    assert_eq!(strings(&browser.eval(ROWS).await).len(), alerts.len());
    let other = (hour + 12) % 24;
    browser
        .eval_and_wait(&format!(
            "document.querySelectorAll('a.hour')[{other}].click()"
        ))
        .await;
    assert!(strings(&browser.eval(ROWS).await).is_empty());

    // 6. A second batch: on the next visit only its alerts are marked new.
    let second = collect(&cluster, &[(0x2002, 20), (0x1003, 20)]).await;
    let fresh: BTreeSet<u64> = second.alerts.iter().map(|a| a.venue_code).collect();
    assert!(!fresh.is_empty());
    browser.navigate(&format!("{base}/dashboard")).await;
    let new_rows: BTreeSet<String> = strings(&browser.eval(ROWS).await)
        .into_iter()
        .filter_map(|r| r.strip_suffix(":new").map(str::to_owned))
        .collect();
    assert_eq!(new_rows, hex_codes(&fresh));
    let markers: BTreeSet<String> = strings(&browser.eval(ALERTED).await).into_iter().collect();
    assert_eq!(markers, hex_codes(alerted.union(&fresh)));
    let shot = browser.screenshot("collector-dashboard.png", true).await;
    println!("collector dashboard screenshot: {}", shot.display());
    browser.close().await;
}

/// Attempts the receiver refuses (503) for each alert before it accepts one.
const REFUSALS: u32 = 2;
/// The receiver's HMAC key, as the collector's `key_file` holds it (hex).
const HOOK_KEY_HEX: &str = "5ca1ab1e5ca1ab1e5ca1ab1e5ca1ab1e5ca1ab1e5ca1ab1e5ca1ab1e5ca1ab1e";

#[derive(Default)]
struct Receiver {
    /// Closed: every request is refused.
    open: bool,
    attempts: BTreeMap<String, u32>,
    /// Accepted deliveries: id, the attempt number the collector sent, the alert.
    accepted: Vec<(String, u32, AlertView)>,
    bad_signatures: usize,
}

async fn receive(
    State(seen): State<Arc<Mutex<Receiver>>>,
    headers: HeaderMap,
    body: Bytes,
) -> StatusCode {
    let key = WebhookKey::new(&hotspot_core::task::decode_hex(HOOK_KEY_HEX).unwrap()).unwrap();
    let header = |name: &str| {
        headers
            .get(name)
            .and_then(|v| v.to_str().ok())
            .unwrap_or("")
            .to_owned()
    };
    let mut seen = seen.lock().unwrap();
    let signed = verify_signature(
        &key,
        &header(TIMESTAMP_HEADER),
        &header(SIGNATURE_HEADER),
        &body,
        hotspot_server::now_unix(),
        300,
    );
    if signed.is_err() {
        seen.bad_signatures += 1;
        return StatusCode::UNAUTHORIZED;
    }
    let payload: WebhookPayload = serde_json::from_slice(&body).unwrap();
    let attempts = seen.attempts.entry(payload.id.clone()).or_default();
    *attempts += 1;
    let refused = *attempts <= REFUSALS;
    if !seen.open || refused {
        return StatusCode::SERVICE_UNAVAILABLE;
    }
    let attempt = header(ATTEMPT_HEADER).parse().unwrap_or(0);
    seen.accepted.push((payload.id, attempt, payload.alert));
    StatusCode::OK
}

async fn start_receiver(state: Arc<Mutex<Receiver>>) -> std::net::SocketAddr {
    let app = axum::Router::new()
        .route("/hook", axum::routing::post(receive))
        .with_state(state);
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    tokio::spawn(async move { axum::serve(listener, app).await });
    addr
}

/// Reads `n` alerts from a subscription, each within 30 s.
async fn read_alerts(stream: &mut tonic::Streaming<v1::Alert>, n: usize) -> Vec<v1::Alert> {
    let mut out = Vec::new();
    for _ in 0..n {
        let next = tokio::time::timeout(Duration::from_secs(30), stream.message())
            .await
            .expect("an alert within 30 s")
            .expect("stream open")
            .expect("stream not ended");
        out.push(next);
    }
    out
}

async fn subscribe(cluster: &Cluster, after_cursor: u64) -> tonic::Streaming<v1::Alert> {
    let mut c = v1::collector_client::CollectorClient::connect(cluster.url("collector"))
        .await
        .unwrap();
    c.subscribe(v1::SubscribeRequest { after_cursor })
        .await
        .unwrap()
        .into_inner()
}

/// The collector is killed (-9) with webhook deliveries pending and a subscriber half way
/// through the log, then restarted: the subscriber resumes from its cursor and, with a second
/// batch arriving live, sees every alert exactly once in cursor order; the receiver, which
/// refused every attempt before the kill and the first two of each alert after, gets every
/// alert, signed, with its id.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn alert_stream_and_webhooks_survive_a_collector_kill() {
    let receiver = Arc::new(Mutex::new(Receiver::default()));
    let hook = start_receiver(Arc::clone(&receiver)).await;
    let cluster =
        Cluster::prepare(&test_dir("dash-stream"), exe(), &dashboard_spec(3, false)).unwrap();
    std::fs::write(cluster.dir.join("hook.hmac"), HOOK_KEY_HEX).unwrap();
    let mut config = std::fs::read_to_string(cluster.dir.join("collector.toml")).unwrap();
    config += &format!(
        "\n[[webhooks]]\nname = \"health-office\"\nurl = \"http://{hook}/hook\"\n\
         key_file = \"hook.hmac\"\ninitial_backoff_ms = 100\nmax_backoff_ms = 400\n"
    );
    std::fs::write(cluster.dir.join("collector.toml"), config).unwrap();
    let mut procs = Procs::start_all(&cluster);

    // 1. A first batch; a subscriber reads its first alert and goes away.
    let first = collect(&cluster, &[(0x1001, 9), (0x1002, 8), (0x2001, 9)]).await;
    assert!(first.alerts.len() >= 2, "{:?}", first.alerts);
    let mut streamed = read_alerts(&mut subscribe(&cluster, 0).await, 1).await;

    // 2. The dispatcher tries every alert while the receiver is closed; then kill -9.
    let ids: Vec<String> = api_alerts(&cluster)
        .await
        .into_iter()
        .map(|a| a.id)
        .collect();
    eventually(Duration::from_secs(30), "first attempts", || {
        let r = receiver.lock().unwrap();
        ids.iter()
            .all(|id| r.attempts.get(id).is_some_and(|n| *n >= 1))
    })
    .await;
    assert!(receiver.lock().unwrap().accepted.is_empty());
    procs.kill9("collector");
    procs.restart(&cluster, "collector");
    receiver.lock().unwrap().open = true;

    // 3. Resume after the last cursor seen; the rest of the first batch, then a second batch
    //    arriving while subscribed.
    let mut stream = subscribe(&cluster, streamed[0].cursor).await;
    streamed.extend(read_alerts(&mut stream, first.alerts.len() - 1).await);
    let second = collect(&cluster, &[(0x2002, 9), (0x3001, 9)]).await;
    assert!(!second.alerts.is_empty());
    streamed.extend(read_alerts(&mut stream, second.alerts.len()).await);
    let expected: Vec<u64> = first
        .alerts
        .iter()
        .chain(&second.alerts)
        .map(|a| a.cursor)
        .collect();
    let got: Vec<u64> = streamed.iter().map(|a| a.cursor).collect();
    assert_eq!(got, expected, "no gap, no repeat, in cursor order");
    let venues: Vec<u64> = streamed.iter().map(|a| a.venue_code).collect();
    let stored: Vec<u64> = first
        .alerts
        .iter()
        .chain(&second.alerts)
        .map(|a| a.venue_code)
        .collect();
    assert_eq!(venues, stored);

    // 4. Every alert reaches the receiver, after its refusals, exactly as the API shows it.
    let all = api_alerts(&cluster).await;
    assert_eq!(all.len(), expected.len());
    eventually(Duration::from_secs(60), "every delivery", || {
        let r = receiver.lock().unwrap();
        let done: BTreeSet<&String> = r.accepted.iter().map(|(id, ..)| id).collect();
        all.iter().all(|a| done.contains(&a.id))
    })
    .await;
    let r = receiver.lock().unwrap();
    assert_eq!(r.bad_signatures, 0);
    for alert in &all {
        let (_, attempt, delivered) = r.accepted.iter().find(|(id, ..)| *id == alert.id).unwrap();
        assert_eq!(delivered, alert);
        assert!(r.attempts[&alert.id] > REFUSALS);
        // The attempt number is the stored count plus one: it went on across the restart (an
        // attempt in flight at the kill may be counted once less).
        assert!(*attempt >= REFUSALS, "attempt {attempt}");
    }
}
