//! The helper's side of aggregation (DESIGN.md section 3, step 6): it opens and verifies its
//! own input shares and keeps its own books, so a leader that deviates cannot make it count a
//! report twice at a level or bring back a report rejected before.
//!
//! Jobs are keyed by (batch, level, job number) and idempotent:
//! - `InitJob` for a finished job with the same request digest returns the stored helper
//!   message (the leader crashed after the helper finished); a different body under the same
//!   key is refused with `ALREADY_EXISTS`;
//! - `ContinueJob` for a finished job answers from the record; for a job whose state this
//!   process no longer holds (it restarted between the two messages) it answers `ABORTED`, and
//!   the leader runs the job again from `InitJob`;
//! - a report already aggregated at this level by another job, or rejected at a lower level,
//!   is excluded (passed to the engine as undecodable, with the precise reason returned).
//!
//! Credentials: the helper does not take the leader's word for a report. The first time it
//! sees a report (no tag recorded for its id in the batch) it verifies the forwarded
//! presentation itself ([`crate::credential`]) and checks its tag: a presentation that does
//! not verify is dropped as `PRESENTATION_INVALID`, a tag already recorded for another report
//! of the batch, claimed by another report of a job in flight, or carried twice in one job, as
//! `TAG_REPLAYED`. New tags are recorded in the same transaction as the job. So a leader that
//! injects reports needs a fresh valid presentation for each, which only a credential holder
//! can make (and at most `N` per window per credential). Tags of jobs in flight are reserved
//! in memory (checked before the store and released after the commit), so two jobs run side
//! by side cannot both bring in one tag.
//!
//! Known gap: the state between `InitJob` and `ContinueJob` lives in memory only; so do the
//! tag reservations of jobs a leader starts and never continues (they are released when the
//! job is run again).

use std::collections::HashMap;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex, MutexGuard};

use sha2::{Digest, Sha256};
use tonic::{Request, Response, Status};

use hotspot_core::envelope::{HpkeCiphertext, ReportId, Role, input_share_info, report_aad};
use hotspot_proto::v1;
use hotspot_vdaf::{AggregationParam, BatchState, ReportShare, Round1Shares, Verdict, Verdicts};

use crate::leader::{bind_param, decode_param, release, seal_aggregate, sum_shares};
use crate::node::{Node, TaskCtx};
use crate::storage::{BatchKey, FinishedJob, JobKey, ReportVerdict, Tag};
use crate::{batch_key, blocking, job_key, lock};

/// A job between its two messages.
struct Pending {
    digest: Vec<u8>,
    helper_message: Vec<u8>,
    state: BatchState,
    ids: Vec<ReportId>,
    reasons: Vec<i32>,
    /// Tags of reports this job verified first, to record with the job.
    new_tags: Vec<(ReportId, Tag)>,
    /// Identifies this job's tag reservations.
    serial: u64,
}

/// Tags claimed by jobs in flight: (batch, tag) to the report and the job's serial.
type Reservations = HashMap<(BatchKey, Tag), (ReportId, u64)>;

/// The `Aggregation` gRPC service (leader → helper).
#[derive(Clone)]
pub struct AggregationService {
    node: Arc<Node>,
    pending: Arc<Mutex<HashMap<JobKey, Pending>>>,
    reserved: Arc<Mutex<Reservations>>,
    serial: Arc<AtomicU64>,
}

impl std::fmt::Debug for AggregationService {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("AggregationService")
    }
}

impl AggregationService {
    /// The service over `node`.
    pub fn new(node: Arc<Node>) -> Self {
        AggregationService {
            node,
            pending: Arc::default(),
            reserved: Arc::default(),
            serial: Arc::default(),
        }
    }

    fn pending(&self) -> MutexGuard<'_, HashMap<JobKey, Pending>> {
        // The map holds no invariant a panic could break mid-update.
        lock(&self.pending)
    }

    /// Releases the tag reservations of a job that was committed or replaced.
    fn release(&self, batch: BatchKey, tags: &[(ReportId, Tag)], serial: u64) {
        let mut reserved = lock(&self.reserved);
        for (_, tag) in tags {
            if reserved
                .get(&(batch, *tag))
                .is_some_and(|(_, s)| *s == serial)
            {
                reserved.remove(&(batch, *tag));
            }
        }
    }
}

impl AggregationService {
    /// Round 2 of a job: checks the leader's verdicts, finishes, commits the job with its new
    /// tags; returns how many reports the helper counted.
    async fn finish_job(
        &self,
        job: JobKey,
        pending: Pending,
        verdicts: &[u8],
    ) -> Result<u64, Status> {
        let task = self
            .node
            .task(&job.batch.task)
            .ok_or_else(|| Status::not_found("unknown task"))?;
        let verdicts = Verdicts::decode(verdicts)
            .map_err(|e| Status::invalid_argument(format!("verdicts: {e}")))?;
        if verdicts.as_slice().len() != pending.ids.len() {
            return Err(Status::invalid_argument(
                "verdicts: count differs from the job's reports",
            ));
        }
        let poplar = task.poplar;
        let Pending {
            digest,
            helper_message,
            state,
            ids,
            reasons,
            new_tags,
            ..
        } = pending;
        let outcome = blocking(move || {
            poplar
                .helper_finish(state, &verdicts)
                .map_err(|e| Status::invalid_argument(format!("verdicts: {e}")))
        })
        .await?;
        let list = verdicts_with_reasons(&ids, &outcome.verdicts, &reasons);
        let finished = FinishedJob {
            request_digest: digest,
            helper_message,
            aggregate: outcome.aggregate.encode(),
        };
        let store = Arc::clone(&self.node.store);
        blocking(move || store.commit_job(job, &finished, &list, &new_tags)).await?;
        Ok(outcome.accepted as u64)
    }
}

#[tonic::async_trait]
impl v1::aggregation_server::Aggregation for AggregationService {
    #[tracing::instrument(name = "init_job", skip_all, fields(job))]
    async fn init_job(
        &self,
        request: Request<v1::InitJobRequest>,
    ) -> Result<Response<v1::InitJobResponse>, Status> {
        let req = request.into_inner();
        let job = job_key(req.job.as_ref())?;
        tracing::Span::current().record("job", job.job);
        let task = self
            .node
            .task(&job.batch.task)
            .ok_or_else(|| Status::not_found("job.batch.task_id: unknown task"))?;
        let param = decode_param(task, job.level, &req.agg_param)?;
        let digest = Sha256::digest(prost::Message::encode_to_vec(&req)).to_vec();

        // A finished job answers from its record.
        let store = Arc::clone(&self.node.store);
        if let Some(done) = blocking(move || store.finished_job(job)).await? {
            if done.request_digest != digest {
                return Err(Status::already_exists(
                    "job: finished with a different request",
                ));
            }
            return Ok(Response::new(v1::InitJobResponse {
                helper_message: done.helper_message,
                helper_reasons: Vec::new(),
            }));
        }
        bind_param(
            &self.node,
            task,
            job.batch,
            job.level,
            &req.agg_param,
            &param,
        )
        .await?;

        // Initialise and answer round 1.
        let node = Arc::clone(&self.node);
        let reserved = Arc::clone(&self.reserved);
        let serial = self.serial.fetch_add(1, Ordering::Relaxed);
        let pending =
            blocking(move || helper_init(&node, &reserved, serial, job, &param, req, digest))
                .await?;
        let reply = v1::InitJobResponse {
            helper_message: pending.helper_message.clone(),
            helper_reasons: pending.reasons.clone(),
        };
        let replaced = self.pending().insert(job, pending);
        if let Some(old) = replaced {
            self.release(job.batch, &old.new_tags, old.serial);
        }
        Ok(Response::new(reply))
    }

    #[tracing::instrument(name = "continue_job", skip_all, fields(job))]
    async fn continue_job(
        &self,
        request: Request<v1::ContinueJobRequest>,
    ) -> Result<Response<v1::ContinueJobResponse>, Status> {
        let req = request.into_inner();
        let job = job_key(req.job.as_ref())?;
        tracing::Span::current().record("job", job.job);
        let store = Arc::clone(&self.node.store);
        if blocking(move || store.finished_job(job)).await?.is_some() {
            return Ok(Response::new(v1::ContinueJobResponse { accepted: 0 }));
        }
        let pending = self
            .pending()
            .remove(&job)
            .ok_or_else(|| Status::aborted("job: no state for it here; restart it from InitJob"))?;
        // The job's tag reservations end with this call, whatever its outcome: committed, the
        // tags are in the store; failed, the leader runs the job again from `InitJob`.
        let (reserved, serial) = (pending.new_tags.clone(), pending.serial);
        let finished = self.finish_job(job, pending, &req.verdicts).await;
        self.release(job.batch, &reserved, serial);
        let accepted = finished?;
        metrics::counter!("hotspot_jobs_total", "role" => "helper").increment(1);
        Ok(Response::new(v1::ContinueJobResponse { accepted }))
    }

    #[tracing::instrument(name = "aggregate_share", skip_all, fields(level = request.get_ref().level))]
    async fn aggregate_share(
        &self,
        request: Request<v1::AggregateShareRequest>,
    ) -> Result<Response<v1::AggregateShareResponse>, Status> {
        let req = request.into_inner();
        let batch = batch_key(req.batch.as_ref(), "batch")?;
        let task = self
            .node
            .task(&batch.task)
            .ok_or_else(|| Status::not_found("batch.task_id: unknown task"))?;
        let param = decode_param(task, req.level, &req.agg_param)?;
        let store = Arc::clone(&self.node.store);
        let level = req.level;
        let aggs = blocking(move || store.level_aggregates(batch, level)).await?;
        if aggs.accepted != req.report_count || aggs.checksum[..] != req.checksum[..] {
            return Err(Status::failed_precondition(format!(
                "report_count: the helper accepted {} reports at this level, the leader {}",
                aggs.accepted, req.report_count
            )));
        }
        let sum = sum_shares(task, &param, &aggs.shares)?;
        let noisy = release(&self.node, batch, &param, aggs, sum).await?;
        let sealed = seal_aggregate(task, batch, level, &req.agg_param, Role::Helper, noisy)?;
        Ok(Response::new(v1::AggregateShareResponse {
            encrypted_share: Some(sealed),
        }))
    }
}

/// Excludes replayed and previously rejected reports and those whose credential fails, opens
/// the helper's shares of the rest, runs `batch_init` as aggregator 1 and `helper_continue` on
/// the leader's round-1 shares.
fn helper_init(
    node: &Node,
    reserved: &Mutex<Reservations>,
    serial: u64,
    job: JobKey,
    param: &AggregationParam,
    req: v1::InitJobRequest,
    digest: Vec<u8>,
) -> Result<Pending, Status> {
    let task = node
        .task(&job.batch.task)
        .ok_or_else(|| Status::not_found("unknown task"))?;
    let ids = req
        .reports
        .iter()
        .map(|r| {
            ReportId::from_slice(&r.report_id)
                .ok_or_else(|| Status::invalid_argument("reports.report_id: must be 16 bytes"))
        })
        .collect::<Result<Vec<_>, _>>()?;
    let (replayed, gone) = node.store.report_status(job, &ids)?;
    let mut reasons = vec![0; ids.len()];
    for (i, id) in ids.iter().enumerate() {
        if gone.contains(id) {
            reasons[i] = v1::RejectReason::PreviouslyRejected as i32;
        } else if replayed.contains(id) {
            reasons[i] = v1::RejectReason::Replayed as i32;
        }
    }
    let new_tags = check_presentations(
        node,
        task,
        reserved,
        serial,
        job.batch,
        &req,
        &ids,
        &mut reasons,
    )?;
    let opened = open_shares(node, job, &req.reports, &mut reasons);
    let shares: Vec<ReportShare<'_>> = req
        .reports
        .iter()
        .zip(&ids)
        .zip(&opened)
        .zip(&reasons)
        .map(|(((r, id), s), &why)| ReportShare {
            nonce: id.0,
            public_share: &r.public_share,
            input_share: if why == 0 { s } else { &[] },
        })
        .collect();
    let key = node
        .verify_key
        .as_ref()
        .ok_or_else(|| Status::internal("no verify key"))?;
    let (mut state, _) = task
        .poplar
        .batch_init(&key.0, &job.batch.task.0, 1, param, &shares)
        .map_err(|e| Status::invalid_argument(format!("reports: {e}")))?;
    let round1 = Round1Shares::decode(&task.poplar, param, &req.leader_round1)
        .map_err(|e| Status::invalid_argument(format!("leader_round1: {e}")))?;
    let msg = task
        .poplar
        .helper_continue(&mut state, &round1)
        .map_err(|e| Status::invalid_argument(format!("leader_round1: {e}")))?;
    Ok(Pending {
        digest,
        helper_message: msg.encode(),
        state,
        ids,
        reasons,
        new_tags,
        serial,
    })
}

/// Verifies the presentation of every report still in (`reasons` 0) that this helper has not
/// verified before, and checks and reserves the new tags; returns them.
#[allow(clippy::too_many_arguments)]
fn check_presentations(
    node: &Node,
    task: &TaskCtx,
    reserved: &Mutex<Reservations>,
    serial: u64,
    batch: BatchKey,
    req: &v1::InitJobRequest,
    ids: &[ReportId],
    reasons: &mut [i32],
) -> Result<Vec<(ReportId, Tag)>, Status> {
    let verifier = node.verifier()?;
    let seen = node.store.tagged_reports(batch, ids)?;
    let todo: Vec<usize> = (0..req.reports.len())
        .filter(|&i| reasons[i] == 0 && !seen[i])
        .collect();
    let presentations: Vec<&[u8]> = (todo.iter())
        .map(|&i| &req.reports[i].presentation[..])
        .collect();
    let verdicts = verifier.verify_batch(&task.config, batch.window, &presentations);
    let mut fresh: Vec<(usize, Tag)> = Vec::new();
    for (i, verdict) in todo.into_iter().zip(verdicts) {
        match verdict {
            Ok(tag) => fresh.push((i, tag)),
            Err(e) => {
                tracing::debug!(error = %e, "forwarded presentation refused");
                reasons[i] = v1::RejectReason::PresentationInvalid as i32;
            }
        }
    }

    // Reservations first, then the store (a job commits before it releases), under the lock.
    let mut reserved = lock(reserved);
    let tags: Vec<Tag> = fresh.iter().map(|(_, t)| *t).collect();
    let owners = node.store.tag_owners(batch, &tags)?;
    let mut in_job: HashMap<Tag, ReportId> = HashMap::new();
    let mut new_tags = Vec::new();
    for ((i, tag), owner) in fresh.into_iter().zip(owners) {
        let id = ids[i];
        let clash = owner.is_some_and(|o| o != id)
            || reserved.get(&(batch, tag)).is_some_and(|(o, _)| *o != id)
            || in_job.get(&tag).is_some_and(|o| *o != id);
        if clash {
            reasons[i] = v1::RejectReason::TagReplayed as i32;
            continue;
        }
        in_job.insert(tag, id);
        if owner.is_none() {
            reserved.insert((batch, tag), (id, serial));
            new_tags.push((id, tag));
        }
    }
    Ok(new_tags)
}

fn open_shares(
    node: &Node,
    job: JobKey,
    reports: &[v1::ReportShare],
    reasons: &mut [i32],
) -> Vec<zeroize::Zeroizing<Vec<u8>>> {
    let info = input_share_info(Role::Helper);
    reports
        .iter()
        .zip(reasons.iter_mut())
        .map(|(r, reason)| {
            if *reason != 0 {
                return zeroize::Zeroizing::new(Vec::new());
            }
            let opened = r.helper_share.as_ref().and_then(|ct| {
                let ct = HpkeCiphertext {
                    key_id: ct.key_id,
                    enc: ct.enc.clone(),
                    payload: ct.payload.clone(),
                };
                let id = ReportId::from_slice(&r.report_id)?;
                let aad = report_aad(&job.batch.task, job.batch.window, &id, &r.public_share);
                node.keyring.open(&ct, &info, &aad).ok()
            });
            opened.unwrap_or_else(|| {
                *reason = v1::RejectReason::HpkeDecrypt as i32;
                zeroize::Zeroizing::new(Vec::new())
            })
        })
        .collect()
}

fn verdicts_with_reasons(
    ids: &[ReportId],
    verdicts: &[Verdict],
    own: &[i32],
) -> Vec<ReportVerdict> {
    ids.iter()
        .zip(verdicts)
        .zip(own)
        .map(|((id, v), &why)| {
            let reason = match v {
                Verdict::Accepted => None,
                Verdict::Rejected(_) if why != 0 => Some(why),
                Verdict::Rejected(hotspot_vdaf::RejectReason::VerifyFailed) => {
                    Some(v1::RejectReason::Verify as i32)
                }
                Verdict::Rejected(hotspot_vdaf::RejectReason::LeaderDecode) => {
                    Some(v1::RejectReason::Peer as i32)
                }
                Verdict::Rejected(_) => Some(v1::RejectReason::Decode as i32),
            };
            (*id, reason)
        })
        .collect()
}
