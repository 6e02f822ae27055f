//! The leader's side of aggregation and collection (DESIGN.md section 3, steps 5 and 6).
//!
//! A collection request names a sealed batch, a level and an aggregation parameter. The leader
//! binds the parameter to (batch, level) (a different one later is refused, and levels only go
//! up for a report: the engine's `is_valid`), takes the batch's reports not rejected at a lower
//! level, cuts them into jobs of `job_size` in report-id order, and runs each job not finished
//! before with the helper:
//!
//! 1. open its own input shares, `batch_init` as aggregator 0, send `InitJob` (the reports and
//!    the leader's round-1 shares);
//! 2. `leader_finish` with the helper's message, send `ContinueJob` with the verdicts;
//! 3. commit the job (aggregate share, every report's verdict at the level, rejections).
//!
//! Because the eligible set of a level is fixed once the lower levels are done, the cut into
//! jobs is the same after a restart, so finished jobs are skipped and unfinished ones are run
//! again from step 1; the helper answers a repeated step from its own record. Each report is
//! therefore counted at most once per level, and the aggregate over a level does not depend on
//! crashes. The leader then sums its jobs' shares, seals the sum to the collector and fetches
//! the helper's sealed sum.
//!
//! Before any job runs, the leader checks with its own privacy books that it may release the
//! level at all ([`crate::noise::admit`]); the sum it seals carries its own noise
//! ([`crate::noise::release`]), and the helper adds and accounts for its own.
//!
//! Known gap: jobs run one after another (the engine already spreads each job over all
//! cores).

use std::sync::Arc;
use std::time::Duration;

use sha2::{Digest, Sha256};
use tonic::transport::Channel;
use tonic::{Request, Response, Status};

use hotspot_core::envelope::{
    self, ReportEnvelope, Role, aggregate_share_aad, aggregate_share_info, input_share_info,
};
use hotspot_proto::v1::{self, aggregation_client::AggregationClient};
use hotspot_vdaf::{
    AggregateShare, AggregationParam, HelperMessage, RejectReason as EngineReject, ReportShare,
    Verdict,
};

use crate::node::{Node, TaskCtx};
use crate::storage::{BatchKey, FinishedJob, JobKey, ReportVerdict};
use crate::{batch_key, blocking, proto_ct, store_status};

/// Seconds after the seal time before a batch is collected, so that an upload accepted just
/// before the seal has committed.
pub const SEAL_SETTLE_SECONDS: u64 = 2;
/// Attempts per job before the collection fails (the collector retries later).
const JOB_ATTEMPTS: u32 = 5;

/// The `Collection` gRPC service (collector → leader).
#[derive(Debug, Clone)]
pub struct CollectionService {
    node: Arc<Node>,
    helper: AggregationClient<Channel>,
    /// One collection at a time: jobs of two requests for the same level must not interleave.
    gate: Arc<tokio::sync::Mutex<()>>,
}

impl CollectionService {
    /// A service driving jobs with `helper`.
    pub fn new(node: Arc<Node>, helper: AggregationClient<Channel>) -> Self {
        CollectionService {
            node,
            helper,
            gate: Arc::default(),
        }
    }
}

#[tonic::async_trait]
impl v1::collection_server::Collection for CollectionService {
    async fn list_batches(
        &self,
        request: Request<v1::ListBatchesRequest>,
    ) -> Result<Response<v1::ListBatchesResponse>, Status> {
        let task_id = hotspot_core::task::TaskId::from_slice(&request.get_ref().task_id)
            .ok_or_else(|| Status::invalid_argument("task_id: must be 32 bytes"))?;
        let task = self
            .node
            .task(&task_id)
            .ok_or_else(|| Status::not_found("task_id: unknown task"))?;
        let store = Arc::clone(&self.node.store);
        let rows = blocking(move || store.batches(task_id)).await?;
        let now = crate::now_unix();
        let batches = rows
            .into_iter()
            .map(|(window, count)| v1::BatchInfo {
                batch: Some(v1::BatchId {
                    task_id: task_id.0.to_vec(),
                    window,
                }),
                report_count: count,
                sealed: task
                    .config
                    .is_sealed(window, now.saturating_sub(SEAL_SETTLE_SECONDS)),
            })
            .collect();
        Ok(Response::new(v1::ListBatchesResponse { batches }))
    }

    #[tracing::instrument(name = "collect", skip_all, fields(batch.window, level = request.get_ref().level))]
    async fn collect(
        &self,
        request: Request<v1::CollectRequest>,
    ) -> Result<Response<v1::CollectResponse>, Status> {
        let req = request.into_inner();
        let batch = batch_key(req.batch.as_ref(), "batch")?;
        tracing::Span::current().record("batch.window", batch.window);
        let _one_at_a_time = self.gate.lock().await;
        let task = self
            .node
            .task(&batch.task)
            .ok_or_else(|| Status::not_found("batch.task_id: unknown task"))?;
        let param = check_collect(&self.node, task, batch, &req).await?;
        run_level(
            &self.node,
            &self.helper,
            task,
            batch,
            &param,
            &req.agg_param,
        )
        .await?;
        finish_collect(
            &self.node,
            &self.helper,
            task,
            batch,
            &param,
            &req.agg_param,
        )
        .await
    }
}

/// Checks a collection request: sealed, big enough, a valid parameter for this level.
async fn check_collect(
    node: &Arc<Node>,
    task: &TaskCtx,
    batch: BatchKey,
    req: &v1::CollectRequest,
) -> Result<AggregationParam, Status> {
    let now = crate::now_unix();
    if !task
        .config
        .is_sealed(batch.window, now.saturating_sub(SEAL_SETTLE_SECONDS))
    {
        return Err(Status::failed_precondition(format!(
            "batch.window: not sealed before {}",
            task.config.seal_time(batch.window) + SEAL_SETTLE_SECONDS
        )));
    }
    let store = Arc::clone(&node.store);
    let count = blocking(move || store.report_count(batch)).await?;
    if count < task.config.min_batch_size {
        return Err(Status::failed_precondition(format!(
            "batch: {count} reports, fewer than the task's minimum batch size"
        )));
    }
    let param = decode_param(task, req.level, &req.agg_param)?;
    // The privacy books first: a refused release leaves nothing behind, not even a binding.
    let (admitting, owned) = (Arc::clone(node), param.clone());
    blocking(move || crate::noise::admit(&admitting, batch, &owned)).await?;
    bind_param(node, task, batch, req.level, &req.agg_param, &param).await?;
    Ok(param)
}

/// Decodes and checks an aggregation parameter for `level`.
pub(crate) fn decode_param(
    task: &TaskCtx,
    level: u32,
    bytes: &[u8],
) -> Result<AggregationParam, Status> {
    let param = AggregationParam::decode(bytes)
        .map_err(|e| Status::invalid_argument(format!("agg_param: {e}")))?;
    task.poplar
        .check_agg_param(&param)
        .map_err(|e| Status::invalid_argument(format!("agg_param: {e}")))?;
    if u32::from(param.level()) != level {
        return Err(Status::invalid_argument(
            "level: differs from the parameter's level",
        ));
    }
    Ok(param)
}

/// Binds the parameter to (batch, level) and checks it against the lower levels' parameters.
pub(crate) async fn bind_param(
    node: &Arc<Node>,
    task: &TaskCtx,
    batch: BatchKey,
    level: u32,
    bytes: &[u8],
    param: &AggregationParam,
) -> Result<(), Status> {
    let store = Arc::clone(&node.store);
    let owned = bytes.to_vec();
    let lower = blocking(move || store.bind_level_param(batch, level, &owned)).await?;
    let lower: Vec<AggregationParam> = lower
        .iter()
        .map(|b| AggregationParam::decode(b))
        .collect::<Result<_, _>>()
        .map_err(|_| Status::internal("stored aggregation parameter does not decode"))?;
    if !hotspot_vdaf::is_valid(param, &lower) {
        return Err(Status::failed_precondition(
            "agg_param: not valid after this batch's earlier levels",
        ));
    }
    let _ = task;
    Ok(())
}

/// Runs every unfinished job of (batch, level).
async fn run_level(
    node: &Arc<Node>,
    helper: &AggregationClient<Channel>,
    task: &TaskCtx,
    batch: BatchKey,
    param: &AggregationParam,
    param_bytes: &[u8],
) -> Result<(), Status> {
    let store = Arc::clone(&node.store);
    let level = u32::from(param.level());
    let reports = blocking(move || store.eligible_reports(batch, level)).await?;
    for (n, chunk) in reports.chunks(node.job_size).enumerate() {
        let job = JobKey {
            batch,
            level,
            job: n as u64,
        };
        let store = Arc::clone(&node.store);
        if blocking(move || store.finished_job(job)).await?.is_some() {
            continue;
        }
        let mut attempt = 0;
        loop {
            attempt += 1;
            match run_job(node, helper.clone(), task, job, param, param_bytes, chunk).await {
                Ok(()) => break,
                Err(status) if attempt < JOB_ATTEMPTS && retryable(&status) => {
                    tracing::warn!(job = job.job, attempt, error = %status.message(), "job failed; retrying");
                    tokio::time::sleep(Duration::from_millis(200 * u64::from(attempt))).await;
                }
                Err(status) => return Err(status),
            }
        }
    }
    Ok(())
}

fn retryable(status: &Status) -> bool {
    matches!(
        status.code(),
        tonic::Code::Unavailable
            | tonic::Code::Aborted
            | tonic::Code::DeadlineExceeded
            | tonic::Code::Unknown
            | tonic::Code::Cancelled
    )
}

/// One job: both rounds with the helper, then the durable commit.
#[tracing::instrument(name = "job", skip_all, fields(job = job.job, reports = reports.len()))]
async fn run_job(
    node: &Arc<Node>,
    mut helper: AggregationClient<Channel>,
    task: &TaskCtx,
    job: JobKey,
    param: &AggregationParam,
    param_bytes: &[u8],
    reports: &[ReportEnvelope],
) -> Result<(), Status> {
    // Round 1: open our shares and initialise the batch.
    let (state, round1, own_reasons) = {
        let node = Arc::clone(node);
        let reports = reports.to_vec();
        let param = param.clone();
        let task_id = job.batch.task;
        blocking(move || leader_init(&node, task_id, &param, &reports)).await?
    };
    let init = v1::InitJobRequest {
        job: Some(proto_job(job)),
        agg_param: param_bytes.to_vec(),
        reports: reports.iter().map(report_share).collect(),
        leader_round1: round1,
    };
    let digest = Sha256::digest(prost::Message::encode_to_vec(&init)).to_vec();
    let reply = helper.init_job(init).await?.into_inner();

    // Round 2: the helper's message gives the verdicts.
    let helper_msg = HelperMessage::decode(&task.poplar, param, &reply.helper_message)
        .map_err(|e| Status::internal(format!("helper message: {e}")))?;
    let poplar = task.poplar;
    let (outcome, verdicts) = blocking(move || {
        poplar
            .leader_finish(state, &helper_msg)
            .map_err(|e| Status::internal(format!("leader_finish: {e}")))
    })
    .await?;
    helper
        .continue_job(v1::ContinueJobRequest {
            job: Some(proto_job(job)),
            verdicts: verdicts.encode(),
        })
        .await?;

    // Commit.
    let list = verdict_list(
        reports,
        &outcome.verdicts,
        &own_reasons,
        &reply.helper_reasons,
    );
    let finished = FinishedJob {
        request_digest: digest,
        helper_message: Vec::new(),
        aggregate: outcome.aggregate.encode(),
    };
    let store = Arc::clone(&node.store);
    blocking(move || store.commit_job(job, &finished, &list, &[])).await?;
    metrics::counter!("hotspot_jobs_total", "role" => "leader").increment(1);
    metrics::counter!("hotspot_reports_aggregated_total", "verdict" => "accepted")
        .increment(outcome.accepted as u64);
    metrics::counter!("hotspot_reports_aggregated_total", "verdict" => "rejected")
        .increment((reports.len() - outcome.accepted) as u64);
    Ok(())
}

type LeaderInit = (hotspot_vdaf::BatchState, Vec<u8>, Vec<i32>);

/// Opens the leader's shares (a share that does not open is passed as empty, so the engine
/// rejects it as undecodable) and runs `batch_init` as aggregator 0.
fn leader_init(
    node: &Node,
    task_id: hotspot_core::task::TaskId,
    param: &AggregationParam,
    reports: &[ReportEnvelope],
) -> Result<LeaderInit, Status> {
    let task = node
        .task(&task_id)
        .ok_or_else(|| Status::not_found("unknown task"))?;
    let info = input_share_info(Role::Leader);
    let mut reasons = vec![0; reports.len()];
    let opened: Vec<_> = reports
        .iter()
        .zip(reasons.iter_mut())
        .map(|(r, reason)| {
            node.keyring
                .open(&r.leader_share, &info, &r.aad())
                .unwrap_or_else(|_| {
                    *reason = v1::RejectReason::HpkeDecrypt as i32;
                    zeroize::Zeroizing::new(Vec::new())
                })
        })
        .collect();
    let shares: Vec<ReportShare<'_>> = reports
        .iter()
        .zip(&opened)
        .map(|(r, s)| ReportShare {
            nonce: r.report_id.0,
            public_share: &r.public_share,
            input_share: s,
        })
        .collect();
    let key = node
        .verify_key
        .as_ref()
        .ok_or_else(|| Status::internal("no verify key"))?;
    let (state, round1) = task
        .poplar
        .batch_init(&key.0, &task_id.0, 0, param, &shares)
        .map_err(|e| Status::internal(format!("batch_init: {e}")))?;
    Ok((state, round1.encode(), reasons))
}

/// Each report's final verdict with the most precise reason either side gave.
fn verdict_list(
    reports: &[ReportEnvelope],
    verdicts: &[Verdict],
    own: &[i32],
    helper: &[i32],
) -> Vec<ReportVerdict> {
    reports
        .iter()
        .enumerate()
        .map(|(i, r)| {
            let reason = match verdicts.get(i) {
                Some(Verdict::Accepted) => None,
                Some(Verdict::Rejected(why)) => Some(match (own.get(i), helper.get(i), why) {
                    (Some(&o), _, _) if o != 0 => o,
                    (_, Some(&h), _) if h != 0 => h,
                    (_, _, EngineReject::VerifyFailed) => v1::RejectReason::Verify as i32,
                    (_, _, EngineReject::HelperDecode) => v1::RejectReason::Peer as i32,
                    _ => v1::RejectReason::Decode as i32,
                }),
                None => Some(v1::RejectReason::Unspecified as i32),
            };
            (r.report_id, reason)
        })
        .collect()
}

fn report_share(r: &ReportEnvelope) -> v1::ReportShare {
    v1::ReportShare {
        report_id: r.report_id.0.to_vec(),
        public_share: r.public_share.clone(),
        helper_share: Some(proto_ct(&r.helper_share)),
        presentation: r.presentation.clone(),
    }
}

/// The wire form of a job key.
pub fn proto_job(job: JobKey) -> v1::JobId {
    v1::JobId {
        batch: Some(v1::BatchId {
            task_id: job.batch.task.0.to_vec(),
            window: job.batch.window,
        }),
        level: job.level,
        job: job.job,
    }
}

/// Sums the leader's jobs, seals the sum to the collector, and fetches the helper's.
async fn finish_collect(
    node: &Arc<Node>,
    helper: &AggregationClient<Channel>,
    task: &TaskCtx,
    batch: BatchKey,
    param: &AggregationParam,
    param_bytes: &[u8],
) -> Result<Response<v1::CollectResponse>, Status> {
    let level = u32::from(param.level());
    let store = Arc::clone(&node.store);
    let aggs = blocking(move || store.level_aggregates(batch, level)).await?;
    let sum = sum_shares(task, param, &aggs.shares)?;
    let (accepted, checksum) = (aggs.accepted, aggs.checksum);
    let noisy = release(node, batch, param, aggs, sum).await?;
    let leader_share = seal_aggregate(task, batch, level, param_bytes, Role::Leader, noisy)?;

    let mut helper = helper.clone();
    let reply = helper
        .aggregate_share(v1::AggregateShareRequest {
            batch: Some(v1::BatchId {
                task_id: batch.task.0.to_vec(),
                window: batch.window,
            }),
            level,
            agg_param: param_bytes.to_vec(),
            report_count: accepted,
            checksum: checksum.to_vec(),
        })
        .await?
        .into_inner();
    let store = Arc::clone(&node.store);
    let rejected = blocking(move || store.rejected_count(batch)).await?;
    Ok(Response::new(v1::CollectResponse {
        report_count: accepted,
        rejected_count: rejected,
        leader_share: Some(leader_share),
        helper_share: reply.encrypted_share,
    }))
}

/// Sums encoded aggregate shares of one level (an empty level sums to the engine's zero).
pub(crate) fn sum_shares(
    task: &TaskCtx,
    param: &AggregationParam,
    shares: &[Vec<u8>],
) -> Result<AggregateShare, Status> {
    let corrupt = |_| Status::internal("stored aggregate share does not decode");
    let mut iter = shares.iter();
    let mut sum = match iter.next() {
        Some(first) => task
            .poplar
            .decode_aggregate_share(param, first)
            .map_err(corrupt)?,
        None => zero_share(task, param)?,
    };
    for s in iter {
        let share = task
            .poplar
            .decode_aggregate_share(param, s)
            .map_err(corrupt)?;
        sum.merge(&share)
            .map_err(|_| Status::internal("aggregate shares of different shapes"))?;
    }
    Ok(sum)
}

/// The aggregate share of no reports. The engine has no constructor for it yet, so it is
/// decoded from the canonical encoding of zeros (8-byte inner-level and 32-byte leaf-level
/// elements, draft-irtf-cfrg-vdaf-18 section 6.1), which the engine checks.
fn zero_share(task: &TaskCtx, param: &AggregationParam) -> Result<AggregateShare, Status> {
    let width = if task.poplar.is_leaf(param.level()) {
        32
    } else {
        8
    };
    let zeros = vec![0u8; width * param.prefixes().len()];
    task.poplar
        .decode_aggregate_share(param, &zeros)
        .map_err(|e| Status::internal(format!("zero aggregate share: {e}")))
}

/// This aggregator's noisy release of a level's sum ([`crate::noise::release`]), on a
/// blocking thread.
pub(crate) async fn release(
    node: &Arc<Node>,
    batch: BatchKey,
    param: &AggregationParam,
    aggs: crate::storage::LevelAggregates,
    sum: AggregateShare,
) -> Result<AggregateShare, Status> {
    let (node, param) = (Arc::clone(node), param.clone());
    blocking(move || crate::noise::release(&node, batch, &param, &aggs, sum, &mut rand::rng()))
        .await
}

/// Seals a (noisy) aggregate share to the collector.
pub(crate) fn seal_aggregate(
    task: &TaskCtx,
    batch: BatchKey,
    level: u32,
    param_bytes: &[u8],
    role: Role,
    share: AggregateShare,
) -> Result<v1::HpkeCiphertext, Status> {
    let aad = aggregate_share_aad(&batch.task, batch.window, level, param_bytes);
    let ct = envelope::seal(
        &task.config.collector_key,
        &aggregate_share_info(role),
        &aad,
        &share.encode(),
    )
    .map_err(|e| Status::internal(format!("sealing the aggregate share: {e}")))?;
    Ok(proto_ct(&ct))
}

impl From<crate::storage::StoreError> for Status {
    fn from(e: crate::storage::StoreError) -> Self {
        store_status(e)
    }
}
