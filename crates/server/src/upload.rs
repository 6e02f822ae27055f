//! The leader's upload path (DESIGN.md section 3, step 4): every check an uploaded report must
//! pass, as one pure function and the proof check of its presentation, then a durable commit
//! before the acknowledgement.
//!
//! Rejections name the field at fault and store nothing:
//!
//! | rule | status |
//! |---|---|
//! | `report` missing, a share missing, `task_id`/`report_id`/`enc` of the wrong length, a share payload of the wrong length, a public share that does not decode canonically | `INVALID_ARGUMENT` |
//! | unknown task, unknown HPKE key id | `NOT_FOUND` |
//! | window sealed, or not yet open | `FAILED_PRECONDITION` |
//! | public share, share payload or presentation over its size limit | `RESOURCE_EXHAUSTED` |
//!
//! The credential presentation is checked last, once everything cheap has passed
//! ([`crate::credential`]; one status per rule, each naming `report.presentation`):
//!
//! | presentation rule | status |
//! |---|---|
//! | missing; non-canonical point or scalar, truncated, trailing bytes; made for another task or window (context digest); made for another limit than the task's `presentations_per_window` | `INVALID_ARGUMENT` |
//! | key id of no key of the days around the window (`report.presentation.key_id`) | `NOT_FOUND` |
//! | a known key of a day the window does not accept: stale, or of the wrong day (`report.presentation.key_id`) | `FAILED_PRECONDITION` |
//! | the proof does not verify: forged or altered, a credential of the other kind, a hidden nonce at or above the limit | `PERMISSION_DENIED` |
//! | its tag was already used in the window by another report (the credential's limit is spent) | `ALREADY_EXISTS` |
//!
//! A report whose id the task already holds is acknowledged as a duplicate (`duplicate:
//! true`) and nothing is written, whatever its tag: the store looks at the report id first,
//! so a client's retry is never mistaken for a replayed credential.
//!
//! The sealed input shares are opened at aggregation time, not here (as in DAP): a share that
//! does not open then drops that one report from its batch.
//!
//! Commits are grouped: the [`Committer`] thread takes every upload waiting at that moment
//! and commits them, each with its tag, in one SQLite transaction, then answers each. An
//! acknowledgement is never sent before the commit that holds its report has returned.

use std::sync::Arc;

use tokio::sync::{mpsc, oneshot};
use tonic::{Request, Response, Status};

use hotspot_core::envelope::{
    ENC_LEN, HpkeCiphertext, MAX_PRESENTATION_LEN, MAX_PUBLIC_SHARE_LEN, MAX_SHARE_PAYLOAD_LEN,
    ReportEnvelope, ReportId,
};
use hotspot_core::task::{TaskId, WindowRefusal};
use hotspot_credentials::CredentialError;
use hotspot_proto::v1;

use crate::credential::{Decoded, verify_decoded};
use crate::node::{Node, TaskCtx};
use crate::storage::{PutOutcome, Store, StoreError, TaggedReport};

/// AES-128-GCM tag length: a sealed input share is the share plus this.
const AEAD_TAG_LEN: usize = 16;
/// Most uploads committed in one transaction.
const MAX_GROUP: usize = 2_048;

/// Checks one upload against the node's tasks at time `now`, all but the presentation's
/// proof: on success, the envelope to store and its presentation, decoded for the window,
/// whose proof the [`ProofChecker`] then checks (in a batch with other uploads).
pub fn check_upload(
    node: &Node,
    report: Option<v1::Report>,
    now: u64,
) -> Result<(ReportEnvelope, Decoded), Status> {
    let r = report.ok_or_else(|| invalid("report", "missing"))?;

    // Task and window.
    let task_id = TaskId::from_slice(&r.task_id)
        .ok_or_else(|| invalid("report.task_id", "must be 32 bytes"))?;
    let task = node
        .task(&task_id)
        .ok_or_else(|| Status::not_found("report.task_id: unknown task"))?;
    let report_id = ReportId::from_slice(&r.report_id)
        .ok_or_else(|| invalid("report.report_id", "must be 16 bytes"))?;
    match task.config.check_upload_window(r.window, now) {
        Ok(()) => {}
        Err(WindowRefusal::Sealed) => {
            return Err(Status::failed_precondition(
                "report.window: window is closed (sealed)",
            ));
        }
        Err(WindowRefusal::NotYetOpen) => {
            return Err(Status::failed_precondition(
                "report.window: window is not open yet",
            ));
        }
    }

    // Sizes, then encodings.
    if r.public_share.len() > MAX_PUBLIC_SHARE_LEN {
        return Err(too_big("report.public_share", MAX_PUBLIC_SHARE_LEN));
    }
    if r.presentation.len() > MAX_PRESENTATION_LEN {
        return Err(too_big("report.presentation", MAX_PRESENTATION_LEN));
    }
    let leader_share = check_share(node, task, r.leader_share, "report.leader_share", true)?;
    let helper_share = check_share(node, task, r.helper_share, "report.helper_share", false)?;
    task.poplar
        .decode_public_share(&r.public_share)
        .map_err(|_| {
            invalid(
                "report.public_share",
                "not a canonical Poplar1 public share",
            )
        })?;

    // The presentation, last: its proof is the one check that costs real time.
    if r.presentation.is_empty() {
        return Err(invalid("report.presentation", "missing"));
    }
    let decoded = (node.verifier()?)
        .decode(&task.config, r.window, &r.presentation)
        .map_err(presentation_status)?;

    let report = ReportEnvelope {
        task_id,
        window: r.window,
        report_id,
        public_share: r.public_share,
        leader_share,
        helper_share,
        presentation: r.presentation,
    };
    Ok((report, decoded))
}

/// The status of a presentation that does not verify (the table in the module doc).
pub fn presentation_status(e: CredentialError) -> Status {
    const FIELD: &str = "report.presentation";
    match e {
        CredentialError::Encoding(e) => invalid(FIELD, &e.to_string()),
        CredentialError::WrongContext => invalid(FIELD, "made for another task or window"),
        CredentialError::LimitMismatch {
            presented,
            expected,
        } => invalid(
            FIELD,
            &format!("made for the limit {presented}; this task allows {expected} per window"),
        ),
        CredentialError::UnknownKeyId(id) => {
            Status::not_found(format!("{FIELD}.key_id: unknown credential key {id}"))
        }
        CredentialError::StaleKey { key_id, day } => Status::failed_precondition(format!(
            "{FIELD}.key_id: key {key_id} of day {day} is not accepted for this window"
        )),
        CredentialError::InvalidProof => {
            Status::permission_denied(format!("{FIELD}: the proof does not verify"))
        }
        other => invalid(FIELD, &other.to_string()),
    }
}

/// The status of an upload whose tag another report of the window already carries.
fn tag_reused() -> Status {
    Status::already_exists(
        "report.presentation: its tag was already used in this window (the credential's \
         limit for the window is spent)",
    )
}

fn check_share(
    node: &Node,
    task: &TaskCtx,
    share: Option<v1::HpkeCiphertext>,
    name: &str,
    ours: bool,
) -> Result<HpkeCiphertext, Status> {
    let ct = share.ok_or_else(|| invalid(name, "missing"))?;
    if ct.payload.len() > MAX_SHARE_PAYLOAD_LEN {
        return Err(too_big(&format!("{name}.payload"), MAX_SHARE_PAYLOAD_LEN));
    }
    if ct.enc.len() != ENC_LEN {
        return Err(invalid(&format!("{name}.enc"), "must be 32 bytes"));
    }
    if ct.payload.len() != task.poplar.input_share_len() + AEAD_TAG_LEN {
        return Err(invalid(
            &format!("{name}.payload"),
            "wrong length for this task",
        ));
    }
    let known = if ours {
        node.keyring.get(ct.key_id).is_some()
    } else {
        task.config
            .helper_keys
            .iter()
            .any(|k| k.key_id == ct.key_id)
    };
    if !known {
        return Err(Status::not_found(format!(
            "{name}.key_id: unknown HPKE key id {}",
            ct.key_id
        )));
    }
    Ok(HpkeCiphertext {
        key_id: ct.key_id,
        enc: ct.enc,
        payload: ct.payload,
    })
}

fn invalid(field: &str, why: &str) -> Status {
    Status::invalid_argument(format!("{field}: {why}"))
}

fn too_big(field: &str, limit: usize) -> Status {
    Status::resource_exhausted(format!("{field}: larger than {limit} bytes"))
}

type ProofJob = (
    Decoded,
    oneshot::Sender<Result<crate::storage::Tag, CredentialError>>,
);

/// Checks the presentation proofs of concurrent uploads in batches, on threads of its own
/// (one per core): each thread takes every proof waiting when it is free, up to
/// [`MAX_PROOF_BATCH`], and checks them as one batch ([`verify_decoded`]). Under load this
/// shares the multiscalar multiplication among uploads; an upload alone is checked at once.
#[derive(Clone, Debug)]
pub struct ProofChecker {
    tx: mpsc::Sender<ProofJob>,
}

/// Most proofs checked as one batch.
const MAX_PROOF_BATCH: usize = 64;

impl ProofChecker {
    /// Starts `threads` checking threads. They end when every handle is dropped.
    pub fn spawn(threads: usize) -> Self {
        let (tx, rx) = mpsc::channel::<ProofJob>(4 * MAX_PROOF_BATCH * threads.max(1));
        let rx = Arc::new(std::sync::Mutex::new(rx));
        for i in 0..threads.max(1) {
            let rx = Arc::clone(&rx);
            std::thread::Builder::new()
                .name(format!("upload-proofs-{i}"))
                .spawn(move || {
                    loop {
                        // The receiver's lock is released at the end of this statement, so
                        // the other threads take their batches while this one checks.
                        let Some(jobs) = take_group(&mut crate::lock(&rx), MAX_PROOF_BATCH) else {
                            break;
                        };
                        let (decoded, waiters): (Vec<_>, Vec<_>) = jobs.into_iter().unzip();
                        metrics::histogram!("hotspot_upload_proof_batch_size")
                            .record(decoded.len() as f64);
                        let refs: Vec<&Decoded> = decoded.iter().collect();
                        for (waiter, verdict) in waiters.into_iter().zip(verify_decoded(&refs)) {
                            let _ = waiter.send(verdict);
                        }
                    }
                })
                // Spawning a thread fails only when the OS is out of resources at start-up.
                .map(drop)
                .unwrap_or_else(|e| tracing::error!(error = %e, "cannot start a proof thread"));
        }
        ProofChecker { tx }
    }

    /// Checks the proof of `presentation`; returns its tag, or why it does not verify.
    pub async fn check(
        &self,
        presentation: Decoded,
    ) -> Result<Result<crate::storage::Tag, CredentialError>, Status> {
        let (done, wait) = oneshot::channel();
        self.tx
            .send((presentation, done))
            .await
            .map_err(|_| Status::unavailable("shutting down"))?;
        wait.await.map_err(|_| Status::unavailable("shutting down"))
    }
}

/// The next group for a worker thread: one item, waited for, then whatever else is already
/// queued, up to `max`. `None` once every sender is gone.
fn take_group<T>(rx: &mut mpsc::Receiver<T>, max: usize) -> Option<Vec<T>> {
    let mut group = vec![rx.blocking_recv()?];
    while group.len() < max {
        match rx.try_recv() {
            Ok(item) => group.push(item),
            Err(_) => break,
        }
    }
    Some(group)
}

type Pending = (
    TaggedReport,
    oneshot::Sender<Result<PutOutcome, Arc<StoreError>>>,
);

/// Groups concurrent uploads into one transaction each (group commit).
#[derive(Clone, Debug)]
pub struct Committer {
    tx: mpsc::Sender<Pending>,
}

impl Committer {
    /// Starts the committer thread over `store`. It ends when every handle is dropped.
    pub fn spawn(store: Arc<dyn Store>) -> Self {
        let (tx, mut rx) = mpsc::channel::<Pending>(4 * MAX_GROUP);
        std::thread::Builder::new()
            .name("upload-commit".into())
            .spawn(move || {
                while let Some(group) = take_group(&mut rx, MAX_GROUP) {
                    commit_group(store.as_ref(), group);
                }
            })
            // Spawning a thread fails only when the OS is out of resources at start-up.
            .map(drop)
            .unwrap_or_else(|e| tracing::error!(error = %e, "cannot start the commit thread"));
        Committer { tx }
    }

    /// Stores `report` with its tag durably; returns once it is committed.
    pub async fn put(&self, report: TaggedReport) -> Result<PutOutcome, Status> {
        let (done, wait) = oneshot::channel();
        self.tx
            .send((report, done))
            .await
            .map_err(|_| Status::unavailable("shutting down"))?;
        match wait.await {
            Ok(Ok(outcome)) => Ok(outcome),
            Ok(Err(e)) => {
                tracing::error!(error = %e, "upload commit failed");
                Err(Status::unavailable("storage unavailable; retry"))
            }
            Err(_) => Err(Status::unavailable("shutting down")),
        }
    }
}

fn commit_group(store: &dyn Store, group: Vec<Pending>) {
    let (reports, waiters): (Vec<_>, Vec<_>) = group.into_iter().unzip();
    metrics::histogram!("hotspot_upload_commit_group_size").record(reports.len() as f64);
    match store.put_reports(&reports) {
        Ok(outcomes) => {
            for (w, o) in waiters.into_iter().zip(outcomes) {
                let _ = w.send(Ok(o));
            }
        }
        Err(e) => {
            let e = Arc::new(e);
            for w in waiters {
                let _ = w.send(Err(Arc::clone(&e)));
            }
        }
    }
}

/// The `Upload` gRPC service.
#[derive(Debug)]
pub struct UploadService {
    node: Arc<Node>,
    checker: ProofChecker,
    committer: Committer,
}

impl UploadService {
    /// A service checking proofs through `checker` and storing through `committer`.
    pub fn new(node: Arc<Node>, checker: ProofChecker, committer: Committer) -> Self {
        UploadService {
            node,
            checker,
            committer,
        }
    }
}

#[tonic::async_trait]
impl v1::upload_server::Upload for UploadService {
    #[tracing::instrument(name = "upload", skip_all)]
    async fn upload(
        &self,
        request: Request<v1::UploadRequest>,
    ) -> Result<Response<v1::UploadResponse>, Status> {
        let rejected = |status: Status| {
            tracing::debug!(code = ?status.code(), message = status.message(), "upload rejected");
            metrics::counter!("hotspot_uploads_total", "outcome" => "rejected", "code" => code_label(status.code())).increment(1);
            status
        };
        let (report, presentation) =
            check_upload(&self.node, request.into_inner().report, crate::now_unix())
                .map_err(rejected)?;
        let tag = (self.checker.check(presentation).await?)
            .map_err(|e| rejected(presentation_status(e)))?;
        let (duplicate, label) = match self.committer.put(TaggedReport { report, tag }).await? {
            PutOutcome::Stored => (false, "stored"),
            PutOutcome::Duplicate => (true, "duplicate"),
            PutOutcome::TagReused => return Err(rejected(tag_reused())),
        };
        metrics::counter!("hotspot_uploads_total", "outcome" => label, "code" => "ok").increment(1);
        Ok(Response::new(v1::UploadResponse { duplicate }))
    }

    async fn get_hpke_config(
        &self,
        _request: Request<v1::GetHpkeConfigRequest>,
    ) -> Result<Response<v1::GetHpkeConfigResponse>, Status> {
        let configs = self
            .node
            .keyring
            .public_keys()
            .into_iter()
            .map(|k| v1::HpkeConfig {
                key_id: k.key_id,
                public_key: k.public_key.to_vec(),
            })
            .collect();
        Ok(Response::new(v1::GetHpkeConfigResponse { configs }))
    }
}

/// A fixed, low-cardinality metric label for a status code.
pub fn code_label(code: tonic::Code) -> &'static str {
    match code {
        tonic::Code::InvalidArgument => "invalid_argument",
        tonic::Code::NotFound => "not_found",
        tonic::Code::FailedPrecondition => "failed_precondition",
        tonic::Code::ResourceExhausted => "resource_exhausted",
        tonic::Code::PermissionDenied => "permission_denied",
        tonic::Code::AlreadyExists => "already_exists",
        tonic::Code::Unavailable => "unavailable",
        _ => "other",
    }
}
