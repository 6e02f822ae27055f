//! The gRPC uploader: what turns a [`PreparedReport`] into a report the leader stores
//! (DESIGN.md section 3, step 3).
//!
//! For each report, [`GrpcUploader`]:
//!
//! 1. maps its window start onto the task's window index (refusing one off the task's grid);
//! 2. shards the venue code with Poplar1 and seals both input shares
//!    ([`hotspot_core::envelope::seal_report`]: nonce = report id, context = task id, the
//!    report's binding as associated data);
//! 3. attaches the credential presentation reserved for the report ([`reserve_tickets`],
//!    [`WalletPresenter`]);
//! 4. uploads to the leader and classifies the answer ([`classify`]) for the retry loop of
//!    [`crate::upload::drain_outbox`].
//!
//! A sealed report is kept until the leader has answered it for good, so a retry resends the
//! very same bytes (same shares, same presentation) under the same report id: the leader
//! acknowledges a known id without storing it twice, and no presentation is spent twice on one
//! report. Only a process restart reseals (fresh shares, fresh presentation, same id).
//!
//! Keys. The leader's current HPKE key is fetched from the leader (`GetHpkeConfig`) and fetched
//! again when the leader says it no longer knows the key id used (rotation). The helper's key
//! comes from the task file shipped with the app, never from the leader: a leader that could
//! name the helper's key could have both shares sealed to itself.
//!
//! [`RegistryClient`] is the venue side: it registers a venue with the collector's registry and
//! fetches the registry's public key.
//!
//! Transport: plain `http://` on loopback and in tests; `https://` uses the platform's root
//! certificates (rustls). Operators put an anonymising relay in front of the leader
//! (docs/client.md).

use std::collections::HashMap;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use tonic::transport::{Channel, ClientTlsConfig, Endpoint};
use tonic::{Code, Status};

use hotspot_core::envelope::{
    HpkeCiphertext, HpkePublicKey, Measurement, ReportEnvelope, ReportId, ShareKeys, seal_report,
};
use hotspot_core::task::{TaskConfig, TaskId};
use hotspot_proto::v1;
use hotspot_proto::v1::upload_client::UploadClient;
use hotspot_vdaf::Poplar1;

use hotspot_credentials::KeyId;

use crate::credential::{Ticket, Wallet, WalletError};
use crate::upload::{PreparedReport, PresentationTicket, UploadError, Uploader};

/// How long one upload call may take before it counts as a transient failure.
pub(crate) const CALL_TIMEOUT: Duration = Duration::from_secs(30);
/// How long connecting may take.
const CONNECT_TIMEOUT: Duration = Duration::from_secs(10);

/// Why the uploader could not be set up.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum GrpcError {
    /// The leader URL is not a valid `http://` or `https://` URL.
    #[error("leader URL `{url}`: {reason}")]
    BadUrl {
        /// The URL given.
        url: String,
        /// What is wrong.
        reason: String,
    },
    /// The leader did not answer `GetHpkeConfig`.
    #[error("fetching the leader's HPKE configuration: {0}")]
    HpkeConfig(Status),
    /// The leader's HPKE configuration holds no usable key.
    #[error("the leader published no usable HPKE key ({0})")]
    NoLeaderKey(&'static str),
    /// The task's `bits` is not supported by the engine.
    #[error("task {0}: {1}")]
    Task(TaskId, hotspot_vdaf::VdafError),
    /// A prepared report does not fit the task (another task, a window off its grid).
    #[error("{0}")]
    Report(UploadError),
    /// The wallet holds no credential for a report's window, or its limit is spent.
    #[error(transparent)]
    Wallet(#[from] WalletError),
}

/// Where a report's credential presentation comes from. [`WalletPresenter`] presents the
/// ticket reserved for the report in the visitor's wallet; tests may plug in their own.
pub trait Presenter: Send + Sync + 'static {
    /// One presentation for `report`, in `window` of `task`. A report that cannot be presented
    /// for good (no ticket, a credential of another kind) is an [`UploadError::Rejected`].
    fn present(
        &self,
        task: &TaskConfig,
        window: u64,
        report: &PreparedReport,
    ) -> Result<Vec<u8>, UploadError>;
}

/// Presents the ticket each report carries ([`reserve_tickets`]) with the wallet's credential.
/// Presenting a ticket again (a retry after a restart) gives the same tag, which the leader
/// acknowledges as the report it already holds.
#[derive(Debug)]
pub struct WalletPresenter(pub Wallet);

impl Presenter for WalletPresenter {
    fn present(
        &self,
        task: &TaskConfig,
        window: u64,
        report: &PreparedReport,
    ) -> Result<Vec<u8>, UploadError> {
        present_ticket(&self.0, task, window, report)
    }
}

/// The presentation of `report`'s ticket with `wallet`'s credential (what [`WalletPresenter`]
/// does, for presenters that hold many wallets).
pub fn present_ticket(
    wallet: &Wallet,
    task: &TaskConfig,
    window: u64,
    report: &PreparedReport,
) -> Result<Vec<u8>, UploadError> {
    let ticket = report.ticket.ok_or_else(|| {
        UploadError::Rejected("no credential presentation was reserved for the report".into())
    })?;
    let ticket = Ticket {
        key_id: KeyId(ticket.key_id),
        nonce: ticket.nonce,
    };
    wallet
        .present(task, window, ticket, &mut rand::rng())
        .map_err(|e| UploadError::Rejected(format!("credential: {e}")))
}

/// Reserves one presentation in `wallet` for each report (its credential and nonce go into the
/// report's ticket). Persist the wallet and enqueue the reports before uploading any: a nonce
/// is spent from the moment it is reserved. Reports that already hold a ticket keep it.
pub fn reserve_tickets(
    wallet: &mut Wallet,
    task: &TaskConfig,
    reports: &mut [PreparedReport],
) -> Result<(), GrpcError> {
    let task_hex = task.id.to_hex();
    for report in reports.iter_mut().filter(|r| r.ticket.is_none()) {
        if report.task_id != task_hex {
            return Err(GrpcError::Report(UploadError::Rejected(format!(
                "report.task_id: the report belongs to task {}, not {task_hex}",
                report.task_id
            ))));
        }
        let window = window_index(task, report.window_start).map_err(GrpcError::Report)?;
        let ticket = wallet.reserve(task, window)?;
        report.ticket = Some(PresentationTicket {
            key_id: ticket.key_id.0,
            nonce: ticket.nonce,
        });
    }
    Ok(())
}

/// Uploads prepared reports of one task to the leader over gRPC. Cheap to clone: clones share
/// one connection and one set of sealed reports, so many uploads can run concurrently.
pub struct GrpcUploader<P = WalletPresenter> {
    inner: Arc<Inner<P>>,
}

impl<P> Clone for GrpcUploader<P> {
    fn clone(&self) -> Self {
        Self {
            inner: Arc::clone(&self.inner),
        }
    }
}

impl<P> std::fmt::Debug for GrpcUploader<P> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("GrpcUploader")
            .field("task", &self.inner.task.id)
            .finish_non_exhaustive()
    }
}

struct Inner<P> {
    client: UploadClient<Channel>,
    task: TaskConfig,
    task_hex: String,
    poplar: Poplar1,
    leader_key: Mutex<HpkePublicKey>,
    /// Sealed reports not yet answered for good, by report id.
    sealed: Mutex<HashMap<[u8; 16], v1::Report>>,
    presenter: P,
}

impl<P: Presenter> GrpcUploader<P> {
    /// An uploader for `task` to the leader at `leader_url`; fetches the leader's HPKE key.
    pub async fn connect(
        leader_url: &str,
        task: TaskConfig,
        presenter: P,
    ) -> Result<Self, GrpcError> {
        let client = UploadClient::new(channel(leader_url)?);
        let leader_key = fetch_leader_key(client.clone()).await?;
        Self::with_client(client, task, leader_key, presenter)
    }

    /// An uploader that seals to `leader_key` (the task file's current leader key, say) without
    /// asking the leader first: reports can be sealed before the leader is reachable. The
    /// channel connects on the first upload; call this inside a Tokio runtime.
    pub fn with_leader_key(
        leader_url: &str,
        task: TaskConfig,
        leader_key: HpkePublicKey,
        presenter: P,
    ) -> Result<Self, GrpcError> {
        Self::with_client(
            UploadClient::new(channel(leader_url)?),
            task,
            leader_key,
            presenter,
        )
    }

    fn with_client(
        client: UploadClient<Channel>,
        task: TaskConfig,
        leader_key: HpkePublicKey,
        presenter: P,
    ) -> Result<Self, GrpcError> {
        let poplar = Poplar1::new(task.bits as usize).map_err(|e| GrpcError::Task(task.id, e))?;
        Ok(Self {
            inner: Arc::new(Inner {
                client,
                task_hex: task.id.to_hex(),
                task,
                poplar,
                leader_key: Mutex::new(leader_key),
                sealed: Mutex::new(HashMap::new()),
                presenter,
            }),
        })
    }

    /// The report as it goes on the wire, sealed now (and kept for the upload and its retries)
    /// or taken from an earlier call. Sealing ahead of uploading lets a caller spread the
    /// Poplar1 work over threads; [`Uploader::upload`] seals what was not sealed before.
    pub fn seal(&self, report: &PreparedReport) -> Result<v1::Report, UploadError> {
        if let Some(sealed) = lock(&self.inner.sealed).get(&report.report_id) {
            return Ok(sealed.clone());
        }
        let inner = &self.inner;
        if report.task_id != inner.task_hex {
            return Err(UploadError::Rejected(format!(
                "report.task_id: this uploader serves task {}",
                inner.task_hex
            )));
        }
        let window = window_index(&inner.task, report.window_start)?;
        let keys = ShareKeys {
            leader: *lock(&inner.leader_key),
            // `TaskConfig` guarantees at least one helper key; the first is the current one.
            helper: *inner
                .task
                .helper_keys
                .first()
                .ok_or_else(|| UploadError::Rejected("task has no helper key".into()))?,
        };
        let measurement = Measurement {
            task_id: inner.task.id,
            window,
            report_id: ReportId(report.report_id),
            venue_code: report.venue_code,
        };
        let mut envelope = seal_report(&inner.poplar, &measurement, &keys, &mut rand::rng())
            .map_err(|e| UploadError::Rejected(format!("sealing: {e}")))?;
        envelope.presentation = inner.presenter.present(&inner.task, window, report)?;
        let wire = to_proto(&envelope);
        lock(&inner.sealed).insert(report.report_id, wire.clone());
        Ok(wire)
    }

    /// Forgets the sealed copy of a report answered for good.
    fn settle(&self, report_id: &[u8; 16]) {
        lock(&self.inner.sealed).remove(report_id);
    }

    async fn send(&self, report: &PreparedReport) -> Result<(), UploadError> {
        let wire = match self.seal(report) {
            Ok(wire) => wire,
            Err(err) => {
                self.settle(&report.report_id);
                return Err(err);
            }
        };
        let mut request = tonic::Request::new(v1::UploadRequest { report: Some(wire) });
        request.set_timeout(CALL_TIMEOUT);
        let answer = self.inner.client.clone().upload(request).await;
        match answer {
            Ok(reply) => {
                self.settle(&report.report_id);
                if reply.get_ref().duplicate {
                    tracing::debug!("leader already held the report");
                }
                Ok(())
            }
            Err(status) if is_unknown_leader_key(&status) => {
                // The leader rotated its key: fetch the new one, reseal on the next attempt.
                self.settle(&report.report_id);
                if let Ok(key) = fetch_leader_key(self.inner.client.clone()).await {
                    *lock(&self.inner.leader_key) = key;
                }
                Err(UploadError::Transient(status.message().to_owned()))
            }
            Err(status) => {
                let err = classify(&status);
                if matches!(err, UploadError::Rejected(_)) {
                    self.settle(&report.report_id);
                }
                Err(err)
            }
        }
    }
}

impl<P: Presenter> Uploader for GrpcUploader<P> {
    fn serves(&self, report: &PreparedReport) -> bool {
        report.task_id == self.inner.task_hex
    }

    fn upload(
        &self,
        report: &PreparedReport,
    ) -> impl std::future::Future<Output = Result<(), UploadError>> + Send {
        self.send(report)
    }
}

/// Whether a failed upload is worth retrying. Statuses the leader gives for a report it will
/// never take (malformed, unknown task, closed window, oversize field, refused credential) are
/// [`UploadError::Rejected`]; the network, timeouts, overload and a storage hiccup are
/// [`UploadError::Transient`].
pub fn classify(status: &Status) -> UploadError {
    let message = format!("{:?}: {}", status.code(), status.message());
    match status.code() {
        Code::Unavailable
        | Code::DeadlineExceeded
        | Code::Aborted
        | Code::Cancelled
        | Code::Unknown
        | Code::Internal => UploadError::Transient(message),
        Code::InvalidArgument
        | Code::NotFound
        | Code::FailedPrecondition
        | Code::ResourceExhausted
        | Code::AlreadyExists
        | Code::PermissionDenied
        | Code::Unauthenticated
        | Code::OutOfRange
        | Code::Unimplemented
        | Code::DataLoss
        | Code::Ok => UploadError::Rejected(message),
    }
}

fn is_unknown_leader_key(status: &Status) -> bool {
    status.code() == Code::NotFound && status.message().starts_with("report.leader_share.key_id")
}

/// The task's window index of a window start, refusing a start that is not on its grid.
fn window_index(task: &TaskConfig, window_start: u64) -> Result<u64, UploadError> {
    task.window_at(window_start)
        .filter(|&w| task.window_start(w) == window_start)
        .ok_or_else(|| {
            UploadError::Rejected(format!(
                "report.window_start {window_start} is not a window start of the task \
                 (start {}, {} s windows)",
                task.start_unix, task.window_seconds
            ))
        })
}

/// One sealed report for `venue_code` in `window`, to the task file's current keys, with a
/// report id from `rng` and no presentation: for load tests, end-to-end tests and tools that
/// build reports without a diary. Apps go through [`GrpcUploader`].
pub fn seal_for_task<R: rand::CryptoRng>(
    task: &TaskConfig,
    poplar: &Poplar1,
    venue_code: u64,
    window: u64,
    rng: &mut R,
) -> Result<v1::Report, hotspot_core::envelope::EnvelopeError> {
    let (Some(leader), Some(helper)) = (task.leader_keys.first(), task.helper_keys.first()) else {
        return Err(hotspot_core::envelope::EnvelopeError::MalformedKey);
    };
    let mut report_id = [0u8; 16];
    rng.fill_bytes(&mut report_id);
    let measurement = Measurement {
        task_id: task.id,
        window,
        report_id: ReportId(report_id),
        venue_code,
    };
    let keys = ShareKeys {
        leader: *leader,
        helper: *helper,
    };
    seal_report(poplar, &measurement, &keys, rng).map(|e| to_proto(&e))
}

/// A client of the collector's `Registry` service (venue registration), holding the
/// collector's bearer token. `Debug` never shows the token.
#[derive(Clone)]
pub struct RegistryClient {
    client: v1::registry_client::RegistryClient<Channel>,
    token: Option<zeroize::Zeroizing<String>>,
}

impl std::fmt::Debug for RegistryClient {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("RegistryClient")
            .field("token", &self.token.as_ref().map(|_| "<redacted>"))
            .finish_non_exhaustive()
    }
}

/// A registration the registry accepted.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Registered {
    /// The venue code.
    pub venue_code: u64,
    /// The signed payload URL for the poster.
    pub payload_url: String,
    /// The typed fallback code.
    pub fallback_code: String,
    /// Last valid day of the payload (Unix days).
    pub valid_until_day: u32,
}

impl RegistryClient {
    /// A client of the registry at `url` (the collector's gRPC URL); `token` is needed to
    /// register, not to read the public key.
    pub fn new(url: &str, token: Option<&str>) -> Result<Self, GrpcError> {
        Ok(Self {
            client: v1::registry_client::RegistryClient::new(channel(url)?),
            token: token.map(|t| zeroize::Zeroizing::new(t.trim().to_owned())),
        })
    }

    /// Registers a venue. The registry's status names the field it refused.
    pub async fn register(&self, venue: v1::RegisterVenueRequest) -> Result<Registered, Status> {
        let mut request = tonic::Request::new(venue);
        request.set_timeout(CALL_TIMEOUT);
        if let Some(token) = &self.token {
            let value = format!("Bearer {}", token.as_str())
                .parse()
                .map_err(|_| Status::invalid_argument("the token is not valid header text"))?;
            request.metadata_mut().insert("authorization", value);
        }
        let reply = self
            .client
            .clone()
            .register_venue(request)
            .await?
            .into_inner();
        Ok(Registered {
            venue_code: reply.venue_code,
            payload_url: reply.payload_url,
            fallback_code: reply.fallback_code,
            valid_until_day: reply.valid_until_day,
        })
    }

    /// The registry's public key (for the apps to trust), its payload host and code width.
    pub async fn public_key(&self) -> Result<(crate::registry::TrustedKey, String, u32), Status> {
        let mut request = tonic::Request::new(v1::GetRegistryKeyRequest {});
        request.set_timeout(CALL_TIMEOUT);
        let reply = self
            .client
            .clone()
            .get_registry_key(request)
            .await?
            .into_inner();
        let bytes: [u8; 32] = reply
            .public_key
            .as_slice()
            .try_into()
            .map_err(|_| Status::data_loss("public_key: not 32 bytes"))?;
        let key = crate::registry::TrustedKey::from_bytes(&bytes)
            .map_err(|_| Status::data_loss("public_key: not an Ed25519 key"))?;
        if key.key_id()[..] != reply.key_id[..] {
            return Err(Status::data_loss("key_id: does not match the public key"));
        }
        Ok((key, reply.payload_host, reply.bits))
    }
}

/// The wire form of a sealed report.
pub fn to_proto(envelope: &ReportEnvelope) -> v1::Report {
    let ct = |c: &HpkeCiphertext| v1::HpkeCiphertext {
        key_id: c.key_id,
        enc: c.enc.clone(),
        payload: c.payload.clone(),
    };
    v1::Report {
        task_id: envelope.task_id.0.to_vec(),
        window: envelope.window,
        report_id: envelope.report_id.0.to_vec(),
        public_share: envelope.public_share.clone(),
        leader_share: Some(ct(&envelope.leader_share)),
        helper_share: Some(ct(&envelope.helper_share)),
        presentation: envelope.presentation.clone(),
    }
}

/// A lazily connected channel to `url`, with TLS (platform roots) for `https://`.
pub fn channel(url: &str) -> Result<Channel, GrpcError> {
    let endpoint = endpoint(url).map_err(|reason| GrpcError::BadUrl {
        url: url.to_owned(),
        reason,
    })?;
    Ok(endpoint.connect_lazy())
}

/// The endpoint every client of this crate dials: `http://` or `https://` only, a connect
/// timeout, no Nagle delay, and TLS with the system's roots for `https://`. The error is the
/// reason the URL is refused.
pub(crate) fn endpoint(url: &str) -> Result<Endpoint, String> {
    if !(url.starts_with("http://") || url.starts_with("https://")) {
        return Err("must start with http:// or https://".into());
    }
    let mut endpoint = Endpoint::from_shared(url.to_owned())
        .map_err(|e| e.to_string())?
        .connect_timeout(CONNECT_TIMEOUT)
        .tcp_nodelay(true);
    if url.starts_with("https://") {
        endpoint = endpoint
            .tls_config(ClientTlsConfig::new().with_native_roots())
            .map_err(|e| e.to_string())?;
    }
    Ok(endpoint)
}

async fn fetch_leader_key(mut client: UploadClient<Channel>) -> Result<HpkePublicKey, GrpcError> {
    let mut request = tonic::Request::new(v1::GetHpkeConfigRequest {});
    request.set_timeout(CALL_TIMEOUT);
    let configs = client
        .get_hpke_config(request)
        .await
        .map_err(GrpcError::HpkeConfig)?
        .into_inner()
        .configs;
    let current = configs
        .first()
        .ok_or(GrpcError::NoLeaderKey("empty configuration"))?;
    let public_key = current
        .public_key
        .as_slice()
        .try_into()
        .map_err(|_| GrpcError::NoLeaderKey("public key is not 32 bytes"))?;
    Ok(HpkePublicKey {
        key_id: current.key_id,
        public_key,
    })
}

fn lock<T>(mutex: &Mutex<T>) -> std::sync::MutexGuard<'_, T> {
    // A panic while holding the lock leaves a map of sealed reports that is still consistent
    // (each entry is inserted or removed whole), so a poisoned lock is safe to reuse.
    mutex
        .lock()
        .unwrap_or_else(std::sync::PoisonError::into_inner)
}

#[cfg(test)]
#[allow(clippy::unwrap_used, reason = "a failing test should panic")]
mod tests {
    use super::*;

    #[test]
    fn statuses_split_into_retry_and_give_up() {
        for code in [Code::Unavailable, Code::DeadlineExceeded, Code::Internal] {
            assert!(matches!(
                classify(&Status::new(code, "x")),
                UploadError::Transient(_)
            ));
        }
        for code in [
            Code::InvalidArgument,
            Code::NotFound,
            Code::FailedPrecondition,
            Code::ResourceExhausted,
            Code::PermissionDenied,
        ] {
            assert!(matches!(
                classify(&Status::new(code, "report.window: closed")),
                UploadError::Rejected(m) if m.contains("report.window")
            ));
        }
    }

    #[test]
    fn only_the_leader_key_id_status_triggers_a_key_refresh() {
        let rotated = Status::not_found("report.leader_share.key_id: unknown HPKE key id 4");
        assert!(is_unknown_leader_key(&rotated));
        assert!(!is_unknown_leader_key(&Status::not_found(
            "report.task_id: unknown task"
        )));
        assert!(!is_unknown_leader_key(&Status::not_found(
            "report.helper_share.key_id: unknown HPKE key id 2"
        )));
    }

    fn task() -> TaskConfig {
        TaskConfig {
            id: TaskId([1; 32]),
            start_unix: 1_000,
            window_seconds: 60,
            grace_seconds: 0,
            privacy: hotspot_core::task::PrivacyParams::default_for(60),
            ..TaskConfig::example(hotspot_core::task::TaskKind::Outbreak)
        }
    }

    fn report(task: &TaskConfig, window_start: u64) -> PreparedReport {
        PreparedReport {
            report_id: [3; 16],
            task_id: task.id.to_hex(),
            window_start,
            venue_code: 5,
            ticket: None,
        }
    }

    #[test]
    fn window_starts_off_the_task_grid_are_refused() {
        let task = task();
        assert_eq!(window_index(&task, 1_120).unwrap(), 2);
        assert!(window_index(&task, 1_121).is_err());
        assert!(window_index(&task, 940).is_err());
    }

    #[test]
    fn tickets_need_a_credential_the_task_and_its_grid() {
        let task = task();
        let mut wallet = Wallet::new();
        let mut off_grid = [report(&task, 1_121)];
        assert!(matches!(
            reserve_tickets(&mut wallet, &task, &mut off_grid),
            Err(GrpcError::Report(_))
        ));
        let mut other_task = [PreparedReport {
            task_id: "00".repeat(32),
            ..report(&task, 1_120)
        }];
        assert!(matches!(
            reserve_tickets(&mut wallet, &task, &mut other_task),
            Err(GrpcError::Report(_))
        ));
        let mut fine = [report(&task, 1_120)];
        assert!(matches!(
            reserve_tickets(&mut wallet, &task, &mut fine),
            Err(GrpcError::Wallet(WalletError::NoCredential { .. }))
        ));
        assert_eq!(fine[0].ticket, None);
    }

    #[test]
    fn a_report_without_a_ticket_is_not_presented() {
        let task = task();
        let presented = WalletPresenter(Wallet::new()).present(&task, 2, &report(&task, 1_120));
        assert!(matches!(presented, Err(UploadError::Rejected(_))));
    }

    #[tokio::test]
    async fn urls_other_than_http_are_refused() {
        assert!(matches!(
            channel("ftp://leader"),
            Err(GrpcError::BadUrl { .. })
        ));
        assert!(channel("http://127.0.0.1:1").is_ok());
    }

    #[tokio::test]
    async fn the_issuer_client_dials_the_same_checked_endpoint() {
        let refused = crate::credential::IssuerClient::connect("ftp://issuer").await;
        let Err(WalletError::Transport(reason)) = refused else {
            panic!("an ftp:// issuer must be refused");
        };
        assert!(reason.contains("issuer URL `ftp://issuer`"), "{reason}");
        // Nothing listens on port 1: the connect fails (within the connect timeout).
        let closed = crate::credential::IssuerClient::connect("http://127.0.0.1:1").await;
        assert!(matches!(closed, Err(WalletError::Transport(_))));
    }
}
