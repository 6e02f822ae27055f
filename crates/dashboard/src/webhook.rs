//! Webhook delivery of alerts: HTTP POST of one JSON document per alert, signed with
//! HMAC-SHA256 under a key from the collector's configuration, retried with exponential
//! backoff until the receiver answers 2xx (DESIGN.md section 3, step 7).
//!
//! Delivery is *at least once*. The [`WebhookDispatcher`] copies new alerts from the
//! [`DashboardSource`] into a durable [`Outbox`] (the alerts and the cursor they were copied
//! up to, in one atomic step), then posts what is due and marks each delivery done only after
//! a 2xx answer. A crash between the answer and the mark re-sends that alert after restart;
//! receivers deduplicate on the alert id (body field `id`, header `X-Hotspot-Delivery`).
//!
//! # Signature
//!
//! ```text
//! X-Hotspot-Timestamp: <unix seconds>
//! X-Hotspot-Signature: v1=<lower-case hex of HMAC-SHA256(key, timestamp || "." || body)>
//! ```
//!
//! The receiver recomputes the MAC over the raw body, compares in constant time and refuses
//! timestamps too far from its clock ([`verify_signature`] does all three).
//!
//! # Metrics
//!
//! `hotspot_webhook_attempts_total{endpoint, outcome="delivered"|"failed"}` and the gauge
//! `hotspot_webhook_pending{endpoint}`, through the `metrics` facade (the collector's
//! Prometheus exporter publishes them). The endpoint label is its configured name.

use std::future::Future;
use std::sync::{Arc, Mutex};
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use http_body_util::{BodyExt, Full};
use hyper::body::Bytes;
use hyper_util::client::legacy::Client;
use hyper_util::client::legacy::connect::HttpConnector;
use hyper_util::rt::TokioExecutor;
use serde::Serialize;
use tracing::{Instrument, debug, info_span, warn};
use zeroize::Zeroizing;

use crate::auth::hmac_sha256;
use crate::source::{DashboardSource, SourceError};
use crate::view::{AlertCursor, AlertView};

/// Header carrying the signing time (Unix seconds).
pub const TIMESTAMP_HEADER: &str = "x-hotspot-timestamp";
/// Header carrying `v1=<hex MAC>`.
pub const SIGNATURE_HEADER: &str = "x-hotspot-signature";
/// Header carrying the alert id, for deduplication.
pub const DELIVERY_HEADER: &str = "x-hotspot-delivery";
/// Header carrying the attempt number (1 for the first POST).
pub const ATTEMPT_HEADER: &str = "x-hotspot-attempt";
/// Shortest HMAC key accepted (bytes).
pub const MIN_KEY_LEN: usize = 32;

/// Milliseconds since the Unix epoch.
pub type UnixMillis = u64;

/// Errors of webhook configuration, signing checks and the outbox.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum WebhookError {
    /// The HMAC key is shorter than [`MIN_KEY_LEN`] bytes.
    #[error("webhook key must be at least {MIN_KEY_LEN} bytes")]
    KeyTooShort,
    /// The endpoint URL is not an absolute http or https URL.
    #[error("webhook url must be an absolute http:// or https:// URL")]
    BadUrl,
    /// The endpoint name is empty or not `[A-Za-z0-9_-]{1,64}`.
    #[error("webhook endpoint name must be 1 to 64 of [A-Za-z0-9_-]")]
    BadName,
    /// The TLS client could not be built.
    #[error("webhook TLS setup failed: {0}")]
    Tls(String),
    /// The outbox failed.
    #[error(transparent)]
    Outbox(#[from] OutboxError),
    /// The alert source failed.
    #[error(transparent)]
    Source(#[from] SourceError),
}

/// Why a received webhook was refused by [`verify_signature`].
#[derive(Debug, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum SignatureError {
    /// A header is missing or not of the documented form.
    #[error("webhook signature headers missing or malformed")]
    Malformed,
    /// The timestamp is further from the receiver's clock than the tolerance.
    #[error("webhook timestamp outside the accepted window")]
    Stale,
    /// The MAC does not match.
    #[error("webhook signature does not match")]
    Mismatch,
}

/// A durable store's failure.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum OutboxError {
    /// The store failed; the message must not carry secrets.
    #[error("outbox unavailable: {0}")]
    Unavailable(String),
}

/// The HMAC-SHA256 key shared with one receiver. Zeroized on drop; `Debug` is redacted.
#[derive(Clone)]
pub struct WebhookKey(Zeroizing<Vec<u8>>);

impl std::fmt::Debug for WebhookKey {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("WebhookKey(<redacted>)")
    }
}

impl WebhookKey {
    /// Wraps raw key bytes (at least [`MIN_KEY_LEN`]).
    pub fn new(bytes: &[u8]) -> Result<Self, WebhookError> {
        if bytes.len() < MIN_KEY_LEN {
            return Err(WebhookError::KeyTooShort);
        }
        Ok(Self(Zeroizing::new(bytes.to_vec())))
    }

    /// The `X-Hotspot-Signature` value for `body` sent at `timestamp`.
    pub fn sign(&self, timestamp: u64, body: &[u8]) -> String {
        format!("v1={}", hex::encode(self.mac(timestamp, body)))
    }

    fn mac(&self, timestamp: u64, body: &[u8]) -> [u8; 32] {
        let message = [timestamp.to_string().as_bytes(), b".", body].concat();
        hmac_sha256(&self.0, &message)
    }
}

/// Checks a received webhook: the headers' form, the timestamp within `tolerance_secs` of
/// `now`, and the MAC over the raw `body` (constant-time comparison).
pub fn verify_signature(
    key: &WebhookKey,
    timestamp_header: &str,
    signature_header: &str,
    body: &[u8],
    now: u64,
    tolerance_secs: u64,
) -> Result<(), SignatureError> {
    use subtle::ConstantTimeEq;

    let timestamp: u64 = timestamp_header
        .parse()
        .map_err(|_| SignatureError::Malformed)?;
    let presented = signature_header
        .strip_prefix("v1=")
        .and_then(|h| hex::decode(h).ok())
        .filter(|mac| mac.len() == 32)
        .ok_or(SignatureError::Malformed)?;
    if now.abs_diff(timestamp) > tolerance_secs {
        return Err(SignatureError::Stale);
    }
    let expected = key.mac(timestamp, body);
    if bool::from(expected.ct_eq(presented.as_slice())) {
        Ok(())
    } else {
        Err(SignatureError::Mismatch)
    }
}

/// One receiver of webhooks.
#[derive(Clone, Debug)]
pub struct WebhookEndpoint {
    name: String,
    url: hyper::Uri,
    key: WebhookKey,
}

impl WebhookEndpoint {
    /// An endpoint named `name` (the outbox's key for it: keep it stable across restarts).
    pub fn new(name: &str, url: &str, key: WebhookKey) -> Result<Self, WebhookError> {
        let name_ok = (1..=64).contains(&name.len())
            && name
                .bytes()
                .all(|b| b.is_ascii_alphanumeric() || b == b'-' || b == b'_');
        if !name_ok {
            return Err(WebhookError::BadName);
        }
        let url: hyper::Uri = url.parse().map_err(|_| WebhookError::BadUrl)?;
        let scheme_ok = matches!(url.scheme_str(), Some("http" | "https"));
        if !scheme_ok || url.host().is_none() {
            return Err(WebhookError::BadUrl);
        }
        Ok(Self {
            name: name.to_owned(),
            url,
            key,
        })
    }

    /// The endpoint's name.
    pub fn name(&self) -> &str {
        &self.name
    }
}

/// When to retry a failed delivery.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct RetryPolicy {
    /// Wait after the first failure; doubled after each further failure.
    pub initial_backoff: Duration,
    /// Upper bound of the wait. Deliveries are retried forever at this pace.
    pub max_backoff: Duration,
    /// Time allowed for one POST, connection included.
    pub request_timeout: Duration,
    /// How often the dispatcher looks for new alerts and due retries.
    pub poll_interval: Duration,
}

impl Default for RetryPolicy {
    fn default() -> Self {
        Self {
            initial_backoff: Duration::from_secs(1),
            max_backoff: Duration::from_secs(300),
            request_timeout: Duration::from_secs(10),
            poll_interval: Duration::from_secs(1),
        }
    }
}

impl RetryPolicy {
    /// The wait before attempt `failed + 1`, after `failed >= 1` failures.
    pub fn backoff(&self, failed: u32) -> Duration {
        let factor = 1u32
            .checked_shl(failed.saturating_sub(1))
            .unwrap_or(u32::MAX);
        self.initial_backoff
            .saturating_mul(factor)
            .min(self.max_backoff)
    }
}

/// A delivery waiting in the outbox.
#[derive(Clone, Debug, PartialEq)]
pub struct PendingDelivery {
    /// The alert to send (its `id` is the delivery's key).
    pub alert: AlertView,
    /// Attempts made so far.
    pub attempts: u32,
    /// Earliest time of the next attempt.
    pub next_attempt_at: UnixMillis,
}

/// Durable delivery state, one queue per endpoint name. The collector's store implements it
/// (for SQLite: a table keyed by (endpoint, alert id) plus a per-endpoint cursor row, written
/// in one transaction by `enqueue`).
pub trait Outbox: Send + Sync + 'static {
    /// The cursor up to which alerts have been enqueued for `endpoint` (START if never).
    fn enqueued_through(&self, endpoint: &str) -> Result<AlertCursor, OutboxError>;

    /// Atomically adds a pending delivery (0 attempts, due now) for every alert not already
    /// known for `endpoint` (by id) and records `through` as the endpoint's cursor.
    fn enqueue(
        &self,
        endpoint: &str,
        alerts: &[AlertView],
        through: AlertCursor,
    ) -> Result<(), OutboxError>;

    /// Up to `limit` pending deliveries of `endpoint` due at or before `now`, in cursor order.
    fn due(
        &self,
        endpoint: &str,
        now: UnixMillis,
        limit: usize,
    ) -> Result<Vec<PendingDelivery>, OutboxError>;

    /// Records a 2xx answer: the delivery leaves the queue.
    fn mark_delivered(&self, endpoint: &str, alert_id: &str) -> Result<(), OutboxError>;

    /// Records a failed attempt and when to try again.
    fn mark_failed(
        &self,
        endpoint: &str,
        alert_id: &str,
        attempts: u32,
        next_attempt_at: UnixMillis,
    ) -> Result<(), OutboxError>;

    /// Number of deliveries still pending for `endpoint`.
    fn pending(&self, endpoint: &str) -> Result<usize, OutboxError>;
}

/// An in-memory [`Outbox`] for tests and demos: delivery state is lost on restart, so it
/// gives at-least-once only within one process. Production uses the collector's store.
#[derive(Default)]
pub struct InMemoryOutbox {
    inner: Mutex<std::collections::BTreeMap<String, EndpointQueue>>,
}

#[derive(Default)]
struct EndpointQueue {
    through: AlertCursor,
    known: std::collections::HashSet<String>,
    pending: Vec<PendingDelivery>,
}

impl InMemoryOutbox {
    /// An empty outbox.
    pub fn new() -> Self {
        Self::default()
    }

    fn with<T>(&self, endpoint: &str, f: impl FnOnce(&mut EndpointQueue) -> T) -> T {
        // A poisoned lock means a panic mid-update of plain collections; they stay usable.
        let mut map = self
            .inner
            .lock()
            .unwrap_or_else(|poisoned| poisoned.into_inner());
        f(map.entry(endpoint.to_owned()).or_default())
    }
}

impl Outbox for InMemoryOutbox {
    fn enqueued_through(&self, endpoint: &str) -> Result<AlertCursor, OutboxError> {
        Ok(self.with(endpoint, |q| q.through))
    }

    fn enqueue(
        &self,
        endpoint: &str,
        alerts: &[AlertView],
        through: AlertCursor,
    ) -> Result<(), OutboxError> {
        self.with(endpoint, |q| {
            for alert in alerts {
                if q.known.insert(alert.id.clone()) {
                    let pending = PendingDelivery {
                        alert: alert.clone(),
                        attempts: 0,
                        next_attempt_at: 0,
                    };
                    q.pending.push(pending);
                }
            }
            q.through = q.through.max(through);
        });
        Ok(())
    }

    fn due(
        &self,
        endpoint: &str,
        now: UnixMillis,
        limit: usize,
    ) -> Result<Vec<PendingDelivery>, OutboxError> {
        Ok(self.with(endpoint, |q| {
            let mut due: Vec<_> = q
                .pending
                .iter()
                .filter(|p| p.next_attempt_at <= now)
                .cloned()
                .collect();
            due.sort_by_key(|p| p.alert.cursor);
            due.truncate(limit);
            due
        }))
    }

    fn mark_delivered(&self, endpoint: &str, alert_id: &str) -> Result<(), OutboxError> {
        self.with(endpoint, |q| q.pending.retain(|p| p.alert.id != alert_id));
        Ok(())
    }

    fn mark_failed(
        &self,
        endpoint: &str,
        alert_id: &str,
        attempts: u32,
        next_attempt_at: UnixMillis,
    ) -> Result<(), OutboxError> {
        self.with(endpoint, |q| {
            for p in q.pending.iter_mut().filter(|p| p.alert.id == alert_id) {
                p.attempts = attempts;
                p.next_attempt_at = next_attempt_at;
            }
        });
        Ok(())
    }

    fn pending(&self, endpoint: &str) -> Result<usize, OutboxError> {
        Ok(self.with(endpoint, |q| q.pending.len()))
    }
}

/// The JSON body of one webhook POST.
#[derive(Debug, Serialize, serde::Deserialize, PartialEq)]
pub struct WebhookPayload {
    /// Always `"hotspot.alert.v1"`.
    pub event: String,
    /// The alert id: deduplicate on it.
    pub id: String,
    /// The alert.
    pub alert: AlertView,
}

/// What one dispatcher pass did.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct DispatchStats {
    /// Alerts newly copied into the outbox.
    pub enqueued: usize,
    /// Deliveries answered with 2xx.
    pub delivered: usize,
    /// Attempts that failed and were rescheduled.
    pub failed: usize,
}

type HttpsClient = Client<hyper_rustls::HttpsConnector<HttpConnector>, Full<Bytes>>;

/// Moves alerts from a source through an outbox to one endpoint.
pub struct WebhookDispatcher {
    source: Arc<dyn DashboardSource>,
    outbox: Arc<dyn Outbox>,
    endpoint: WebhookEndpoint,
    policy: RetryPolicy,
    client: HttpsClient,
}

/// Alerts copied from the source per pass, and deliveries attempted per pass.
const PAGE: usize = 256;

impl WebhookDispatcher {
    /// A dispatcher for `endpoint`. HTTPS uses the system's root certificates (ring provider).
    pub fn new(
        source: Arc<dyn DashboardSource>,
        outbox: Arc<dyn Outbox>,
        endpoint: WebhookEndpoint,
        policy: RetryPolicy,
    ) -> Result<Self, WebhookError> {
        let connector = https_connector()?;
        let client = Client::builder(TokioExecutor::new()).build(connector);
        Ok(Self {
            source,
            outbox,
            endpoint,
            policy,
            client,
        })
    }

    /// Runs passes every `poll_interval` until `shutdown` completes.
    pub async fn run(self, shutdown: impl Future<Output = ()>) {
        let span = info_span!("webhook_dispatcher", endpoint = %self.endpoint.name);
        let work = async {
            loop {
                if let Err(error) = self.run_once().await {
                    warn!(%error, "webhook pass failed; retrying next poll");
                }
                tokio::time::sleep(self.policy.poll_interval).await;
            }
        };
        tokio::select! {
            () = work.instrument(span) => {}
            () = shutdown => {}
        }
    }

    /// One pass: copy new alerts into the outbox, then attempt every due delivery once.
    pub async fn run_once(&self) -> Result<DispatchStats, WebhookError> {
        let mut stats = DispatchStats {
            enqueued: self.enqueue_new().await?,
            ..Default::default()
        };

        // Attempt what is due, in cursor order.
        let (outbox, name) = (Arc::clone(&self.outbox), self.endpoint.name.clone());
        let due = blocking(move || outbox.due(&name, now_millis(), PAGE)).await??;
        for delivery in due {
            if self.attempt(&delivery).await {
                stats.delivered += 1;
            } else {
                stats.failed += 1;
            }
        }
        let pending = self.pending().await?;
        metrics::gauge!("hotspot_webhook_pending", "endpoint" => self.endpoint.name.clone())
            .set(pending as f64);
        Ok(stats)
    }

    /// Deliveries still pending for this endpoint.
    pub async fn pending(&self) -> Result<usize, WebhookError> {
        let (outbox, name) = (Arc::clone(&self.outbox), self.endpoint.name.clone());
        Ok(blocking(move || outbox.pending(&name)).await??)
    }

    async fn enqueue_new(&self) -> Result<usize, WebhookError> {
        let (source, outbox) = (Arc::clone(&self.source), Arc::clone(&self.outbox));
        let name = self.endpoint.name.clone();
        blocking(move || {
            let mut total = 0;
            loop {
                let through = outbox.enqueued_through(&name)?;
                let page = source.alerts_after(through, PAGE)?;
                let Some(last) = page.last().map(|a| a.cursor) else {
                    return Ok(total);
                };
                outbox.enqueue(&name, &page, last)?;
                total += page.len();
            }
        })
        .await?
    }

    /// Posts one delivery and records the outcome; true on a 2xx answer.
    async fn attempt(&self, delivery: &PendingDelivery) -> bool {
        let attempt = delivery.attempts.saturating_add(1);
        let span = info_span!("webhook_delivery", alert.id = %delivery.alert.id, attempt);
        let outcome = self
            .post(&delivery.alert, attempt)
            .instrument(span.clone())
            .await;
        let _entered = span.enter();

        // Record the outcome; a failure to record only means a later duplicate.
        let (outbox, name, id) = (
            Arc::clone(&self.outbox),
            self.endpoint.name.clone(),
            delivery.alert.id.clone(),
        );
        let next = now_millis().saturating_add(self.policy.backoff(attempt).as_millis() as u64);
        let delivered = outcome.is_ok();
        let label = if delivered { "delivered" } else { "failed" };
        metrics::counter!("hotspot_webhook_attempts_total", "endpoint" => self.endpoint.name.clone(), "outcome" => label).increment(1);
        let record = blocking(move || match delivered {
            true => outbox.mark_delivered(&name, &id),
            false => outbox.mark_failed(&name, &id, attempt, next),
        });
        match (outcome, record.await.map(|r| r.map_err(WebhookError::from))) {
            (_, Err(e) | Ok(Err(e))) => warn!(error = %e, "could not record delivery"),
            (Err(reason), _) => debug!(%reason, "webhook attempt failed"),
            (Ok(()), _) => debug!("webhook delivered"),
        }
        delivered
    }

    async fn post(&self, alert: &AlertView, attempt: u32) -> Result<(), String> {
        let payload = WebhookPayload {
            event: "hotspot.alert.v1".into(),
            id: alert.id.clone(),
            alert: alert.clone(),
        };
        let body = serde_json::to_vec(&payload).map_err(|e| e.to_string())?;
        let timestamp = now_millis() / 1000;
        let request = hyper::Request::post(self.endpoint.url.clone())
            .header(hyper::header::CONTENT_TYPE, "application/json")
            .header(
                hyper::header::USER_AGENT,
                concat!("hotspot-webhook/", env!("CARGO_PKG_VERSION")),
            )
            .header(TIMESTAMP_HEADER, timestamp)
            .header(SIGNATURE_HEADER, self.endpoint.key.sign(timestamp, &body))
            .header(DELIVERY_HEADER, delivery_header(&alert.id))
            .header(ATTEMPT_HEADER, attempt)
            .body(Full::new(Bytes::from(body)))
            .map_err(|e| e.to_string())?;

        let send = async {
            let response = self
                .client
                .request(request)
                .await
                .map_err(|e| e.to_string())?;
            let status = response.status();
            // Drain the body so the connection can be reused.
            let _ = response.into_body().collect().await;
            if status.is_success() {
                Ok(())
            } else {
                Err(format!("status {status}"))
            }
        };
        tokio::time::timeout(self.policy.request_timeout, send)
            .await
            .map_err(|_| "timed out".to_owned())?
    }
}

/// The id as a header value; an id that is not visible ASCII (the source broke the
/// [`AlertView::id`] contract) is sent hex-encoded rather than blocking its delivery forever.
fn delivery_header(id: &str) -> String {
    let visible = !id.is_empty() && id.bytes().all(|b| b.is_ascii_graphic());
    if visible {
        id.to_owned()
    } else {
        format!("hex:{}", hex::encode(id))
    }
}

fn https_connector() -> Result<hyper_rustls::HttpsConnector<HttpConnector>, WebhookError> {
    let provider = Arc::new(rustls::crypto::ring::default_provider());
    let builder = hyper_rustls::HttpsConnectorBuilder::new();
    let builder = match builder.with_provider_and_native_roots(Arc::clone(&provider)) {
        Ok(builder) => builder,
        Err(error) => {
            // No system roots: plain http still works, https endpoints will fail to connect.
            warn!(%error, "no system root certificates; https webhooks will fail");
            let config = rustls::ClientConfig::builder_with_provider(provider)
                .with_safe_default_protocol_versions()
                .map_err(|e| WebhookError::Tls(e.to_string()))?
                .with_root_certificates(rustls::RootCertStore::empty())
                .with_no_client_auth();
            hyper_rustls::HttpsConnectorBuilder::new().with_tls_config(config)
        }
    };
    Ok(builder.https_or_http().enable_http1().build())
}

async fn blocking<T: Send + 'static>(
    f: impl FnOnce() -> T + Send + 'static,
) -> Result<T, WebhookError> {
    tokio::task::spawn_blocking(f)
        .await
        .map_err(|e| WebhookError::Outbox(OutboxError::Unavailable(e.to_string())))
}

fn now_millis() -> UnixMillis {
    // A clock before 1970 is a broken host; treat it as the epoch.
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map_or(0, |d| d.as_millis() as u64)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn key() -> WebhookKey {
        WebhookKey::new(&[0x42; 32]).expect("long enough")
    }

    #[test]
    fn signature_verifies_for_the_signed_body_only() {
        let body = br#"{"id":"a1"}"#;
        let header = key().sign(1_800_000_000, body);
        assert!(header.starts_with("v1=") && header.len() == 3 + 64);
        assert_eq!(
            verify_signature(&key(), "1800000000", &header, body, 1_800_000_010, 300),
            Ok(())
        );
        assert_eq!(
            verify_signature(
                &key(),
                "1800000000",
                &header,
                br#"{"id":"a2"}"#,
                1_800_000_000,
                300
            ),
            Err(SignatureError::Mismatch)
        );
        assert_eq!(
            verify_signature(&key(), "1800000001", &header, body, 1_800_000_000, 300),
            Err(SignatureError::Mismatch)
        );
        let other = WebhookKey::new(&[0x43; 32]).expect("long enough");
        assert_eq!(
            verify_signature(&other, "1800000000", &header, body, 1_800_000_000, 300),
            Err(SignatureError::Mismatch)
        );
    }

    #[test]
    fn signature_matches_an_independent_hmac_computation() {
        // HMAC-SHA256(key = 32 x 0x42, "1800000000.{}") computed with Python's hmac module.
        let header = key().sign(1_800_000_000, b"{}");
        let expected = "feca5357e83d6fc2263a8c9989b7b914f72a89108b302bcfc8bd0d07ba186c7b";
        assert_eq!(header, format!("v1={expected}"));
    }

    #[test]
    fn stale_or_malformed_signatures_are_refused() {
        let header = key().sign(1_000, b"x");
        assert_eq!(
            verify_signature(&key(), "1000", &header, b"x", 1_301, 300),
            Err(SignatureError::Stale)
        );
        assert_eq!(
            verify_signature(&key(), "ten", &header, b"x", 1_000, 300),
            Err(SignatureError::Malformed)
        );
        assert_eq!(
            verify_signature(&key(), "1000", &header[3..], b"x", 1_000, 300),
            Err(SignatureError::Malformed)
        );
        assert_eq!(
            verify_signature(&key(), "1000", "v1=abcd", b"x", 1_000, 300),
            Err(SignatureError::Malformed)
        );
    }

    #[test]
    fn short_keys_bad_urls_and_names_are_refused() {
        assert!(matches!(
            WebhookKey::new(&[1; 31]),
            Err(WebhookError::KeyTooShort)
        ));
        for url in ["ftp://x/", "/relative", "not a url", "http://"] {
            assert!(
                matches!(
                    WebhookEndpoint::new("ok", url, key()),
                    Err(WebhookError::BadUrl)
                ),
                "{url}"
            );
        }
        for name in ["", "has space", &"x".repeat(65)] {
            assert!(matches!(
                WebhookEndpoint::new(name, "http://127.0.0.1/", key()),
                Err(WebhookError::BadName)
            ));
        }
        assert!(!format!("{:?}", key()).contains("42"));
    }

    #[test]
    fn delivery_header_is_always_a_valid_header_value() {
        assert_eq!(delivery_header("alert-17"), "alert-17");
        assert_eq!(delivery_header("a b\n"), "hex:6120620a");
        assert!(hyper::header::HeaderValue::from_str(&delivery_header("ünï")).is_ok());
    }

    #[test]
    fn backoff_doubles_and_is_capped() {
        let policy = RetryPolicy {
            initial_backoff: Duration::from_millis(100),
            max_backoff: Duration::from_millis(1000),
            ..RetryPolicy::default()
        };
        let waits: Vec<u64> = (1..=6)
            .map(|n| policy.backoff(n).as_millis() as u64)
            .collect();
        assert_eq!(waits, [100, 200, 400, 800, 1000, 1000]);
        assert_eq!(policy.backoff(200), Duration::from_millis(1000));
    }
}
