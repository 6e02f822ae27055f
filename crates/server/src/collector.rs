//! The collector (health authority): drives the heavy-hitter search over a sealed batch,
//! combines the two aggregate shares of each level, stores the alerts and serves them on a
//! resumable stream (DESIGN.md section 3, steps 6 and 7).
//!
//! The search itself sits behind [`Search`], a narrow interface: given the counts of one level,
//! say what to aggregate next, and at the end which cells alert. The planners here are the
//! interim ones ([`RegistryWalk`]: one leaf-level aggregation over the registered venue codes;
//! [`ThresholdWalk`]: the open prefix walk keeping children of prefixes at or over the task's
//! threshold), with a plain threshold rule and no noise. The search issue's planner,
//! differential privacy and category rules (crates/core `search`, `dp`, `rules`) replace them
//! behind the same trait.

use std::sync::Arc;
use std::time::Duration;

use tokio::sync::watch;
use tokio_stream::wrappers::ReceiverStream;
use tonic::transport::Channel;
use tonic::{Request, Response, Status};

use hotspot_core::envelope::{HpkeCiphertext, Role, aggregate_share_aad, aggregate_share_info};
use hotspot_core::task::{DUMMY_VENUE_CODE, SearchMode, TaskConfig};
use hotspot_proto::v1::{self, collection_client::CollectionClient};
use hotspot_vdaf::AggregationParam;

use crate::node::{Node, TaskCtx};
use crate::storage::{AlertRow, BatchKey};
use crate::{batch_key, blocking};

/// One step of a search: the level and candidate prefixes to aggregate next.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Step {
    /// Tree level (0 = first bit; `bits - 1` = full venue codes).
    pub level: u16,
    /// Candidate prefixes at that level, sorted and distinct.
    pub prefixes: Vec<u64>,
}

/// A cell the search released: a venue code and its (noisy) count.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Finding {
    /// The venue code.
    pub venue_code: u64,
    /// Its count in the batch.
    pub count: i64,
}

/// A search planner: the collector asks for steps, reports each step's counts, and ends with
/// the findings. Implementations are pure.
pub trait Search: Send {
    /// The next aggregation, or `None` when the search is done.
    fn next_step(&mut self) -> Option<Step>;
    /// The counts of the step last returned, one per prefix.
    fn observe(&mut self, step: &Step, counts: &[i64]);
    /// The leaf cells found, with their counts.
    fn findings(&self) -> Vec<Finding>;
}

/// Registry mode: one leaf-level aggregation over the registered codes.
#[derive(Debug)]
pub struct RegistryWalk {
    pending: Option<Step>,
    found: Vec<Finding>,
}

impl RegistryWalk {
    /// A walk over `registry` (sorted, distinct) for `bits`-bit codes; the dummy code is left
    /// out.
    pub fn new(bits: u32, registry: &[u64]) -> Self {
        let prefixes: Vec<u64> = registry
            .iter()
            .copied()
            .filter(|&c| c != DUMMY_VENUE_CODE)
            .collect();
        let pending = (!prefixes.is_empty()).then(|| Step {
            level: (bits - 1) as u16,
            prefixes,
        });
        RegistryWalk {
            pending,
            found: Vec::new(),
        }
    }
}

impl Search for RegistryWalk {
    fn next_step(&mut self) -> Option<Step> {
        self.pending.take()
    }

    fn observe(&mut self, step: &Step, counts: &[i64]) {
        self.found = step
            .prefixes
            .iter()
            .zip(counts)
            .map(|(&venue_code, &count)| Finding { venue_code, count })
            .collect();
    }

    fn findings(&self) -> Vec<Finding> {
        self.found.clone()
    }
}

/// Open mode: the prefix walk, keeping both children of every prefix at or over the threshold.
#[derive(Debug)]
pub struct ThresholdWalk {
    bits: u32,
    threshold: i64,
    next: Option<Step>,
    found: Vec<Finding>,
}

impl ThresholdWalk {
    /// A walk for `bits`-bit codes with `threshold`.
    pub fn new(bits: u32, threshold: u64) -> Self {
        ThresholdWalk {
            bits,
            threshold: threshold as i64,
            next: Some(Step {
                level: 0,
                prefixes: vec![0, 1],
            }),
            found: Vec::new(),
        }
    }
}

impl Search for ThresholdWalk {
    fn next_step(&mut self) -> Option<Step> {
        self.next.take()
    }

    fn observe(&mut self, step: &Step, counts: &[i64]) {
        let kept = step
            .prefixes
            .iter()
            .zip(counts)
            .filter(|(_, c)| **c >= self.threshold);
        if u32::from(step.level) + 1 == self.bits {
            self.found = kept
                .filter(|(p, _)| **p != DUMMY_VENUE_CODE)
                .map(|(&venue_code, &count)| Finding { venue_code, count })
                .collect();
            return;
        }
        let prefixes: Vec<u64> = kept.flat_map(|(p, _)| [p << 1, (p << 1) | 1]).collect();
        if !prefixes.is_empty() {
            self.next = Some(Step {
                level: step.level + 1,
                prefixes,
            });
        }
    }

    fn findings(&self) -> Vec<Finding> {
        self.found.clone()
    }
}

/// The interim alert rule: a finding at or over the task's threshold alerts.
pub fn threshold_alerts(task: &TaskConfig, batch: BatchKey, findings: &[Finding]) -> Vec<AlertRow> {
    findings
        .iter()
        .filter(|f| f.count >= task.threshold as i64 && f.venue_code != DUMMY_VENUE_CODE)
        .map(|f| AlertRow {
            cursor: 0,
            batch,
            venue_code: f.venue_code,
            count: f.count,
            rule: "threshold".into(),
            level: format!("{:?}", task.kind).to_lowercase(),
            created_unix: 0,
        })
        .collect()
}

/// The `Collector` gRPC service and the search driver.
#[derive(Clone, Debug)]
pub struct CollectorService {
    node: Arc<Node>,
    leader: CollectionClient<Channel>,
    latest: watch::Sender<u64>,
    gate: Arc<tokio::sync::Mutex<()>>,
}

impl CollectorService {
    /// A collector asking `leader`.
    pub fn new(node: Arc<Node>, leader: CollectionClient<Channel>) -> Self {
        let (latest, _) = watch::channel(0);
        CollectorService {
            node,
            leader,
            latest,
            gate: Arc::default(),
        }
    }

    /// Searches `batch` (once: a searched batch returns its stored alerts).
    #[tracing::instrument(name = "search", skip_all, fields(batch.window = batch.window))]
    pub async fn search(&self, batch: BatchKey) -> Result<v1::RunSearchResponse, Status> {
        let _one = self.gate.lock().await;
        let task = self
            .node
            .task(&batch.task)
            .ok_or_else(|| Status::not_found("batch.task_id: unknown task"))?;
        let mut search: Box<dyn Search> = match task.config.search_mode {
            SearchMode::Registry => {
                let store = Arc::clone(&self.node.store);
                let venues = blocking(move || store.venues()).await?;
                let codes: Vec<u64> = venues.iter().map(|v| v.code).collect();
                Box::new(RegistryWalk::new(task.config.bits, &codes))
            }
            SearchMode::Open => {
                Box::new(ThresholdWalk::new(task.config.bits, task.config.threshold))
            }
        };
        let (mut report_count, mut rejected_count) = (0, 0);
        while let Some(step) = search.next_step() {
            let (counts, n, rejected) = self.collect_level(task, batch, &step).await?;
            (report_count, rejected_count) = (n, rejected);
            search.observe(&step, &counts);
        }
        let findings = search.findings();
        let alerts = threshold_alerts(&task.config, batch, &findings);
        let store = Arc::clone(&self.node.store);
        let stored = blocking(move || store.record_search(batch, &alerts)).await?;
        if let Some(last) = stored.last() {
            self.latest.send_replace(last.cursor);
        }
        tracing::info!(
            alerts = stored.len(),
            reports = report_count,
            "search finished"
        );
        Ok(v1::RunSearchResponse {
            report_count,
            rejected_count,
            alerts: stored.iter().map(proto_alert).collect(),
            cells: findings
                .iter()
                .map(|f| v1::Cell {
                    venue_code: f.venue_code,
                    count: f.count,
                })
                .collect(),
        })
    }

    /// One level: ask the leader, open both shares, unshard.
    async fn collect_level(
        &self,
        task: &TaskCtx,
        batch: BatchKey,
        step: &Step,
    ) -> Result<(Vec<i64>, u64, u64), Status> {
        let param = AggregationParam::new(step.level, step.prefixes.clone())
            .map_err(|e| Status::internal(format!("search step: {e}")))?;
        let param_bytes = param.encode();
        let level = u32::from(step.level);
        let mut leader = self.leader.clone();
        let reply = leader
            .collect(v1::CollectRequest {
                batch: Some(v1::BatchId {
                    task_id: batch.task.0.to_vec(),
                    window: batch.window,
                }),
                level,
                agg_param: param_bytes.clone(),
            })
            .await?
            .into_inner();
        let aad = aggregate_share_aad(&batch.task, batch.window, level, &param_bytes);
        let open = |ct: Option<&v1::HpkeCiphertext>,
                    role: Role|
         -> Result<hotspot_vdaf::AggregateShare, Status> {
            let ct = ct.ok_or_else(|| Status::internal("collect reply without a share"))?;
            let ct = HpkeCiphertext {
                key_id: ct.key_id,
                enc: ct.enc.clone(),
                payload: ct.payload.clone(),
            };
            let plain = self
                .node
                .keyring
                .open(&ct, &aggregate_share_info(role), &aad)
                .map_err(|e| Status::internal(format!("{role:?} aggregate share: {e}")))?;
            task.poplar
                .decode_aggregate_share(&param, &plain)
                .map_err(|e| Status::internal(format!("{role:?} aggregate share: {e}")))
        };
        let l = open(reply.leader_share.as_ref(), Role::Leader)?;
        let h = open(reply.helper_share.as_ref(), Role::Helper)?;
        let counts = task
            .poplar
            .unshard_signed(&param, [&l, &h], reply.report_count as usize)
            .map_err(|e| Status::internal(format!("unshard: {e}")))?;
        Ok((counts, reply.report_count, reply.rejected_count))
    }

    /// Searches every sealed batch not searched yet, every `period`, until the process ends.
    pub async fn poll_sealed(self, period: Duration) {
        loop {
            tokio::time::sleep(period).await;
            for task_id in self.node.tasks.keys().copied().collect::<Vec<_>>() {
                let mut leader = self.leader.clone();
                let Ok(list) = leader
                    .list_batches(v1::ListBatchesRequest {
                        task_id: task_id.0.to_vec(),
                    })
                    .await
                else {
                    continue;
                };
                for info in list.into_inner().batches.into_iter().filter(|b| b.sealed) {
                    let batch = BatchKey {
                        task: task_id,
                        window: info.batch.map(|b| b.window).unwrap_or_default(),
                    };
                    let store = Arc::clone(&self.node.store);
                    if matches!(blocking(move || store.searched(batch)).await, Ok(false))
                        && let Err(e) = self.search(batch).await
                    {
                        tracing::warn!(error = %e.message(), "background search failed; will retry");
                    }
                }
            }
        }
    }
}

fn proto_alert(a: &AlertRow) -> v1::Alert {
    v1::Alert {
        cursor: a.cursor,
        batch: Some(v1::BatchId {
            task_id: a.batch.task.0.to_vec(),
            window: a.batch.window,
        }),
        venue_code: a.venue_code,
        count: a.count,
        rule: a.rule.clone(),
        level: a.level.clone(),
        created_unix: a.created_unix,
    }
}

#[tonic::async_trait]
impl v1::collector_server::Collector for CollectorService {
    async fn run_search(
        &self,
        request: Request<v1::RunSearchRequest>,
    ) -> Result<Response<v1::RunSearchResponse>, Status> {
        let batch = batch_key(request.get_ref().batch.as_ref(), "batch")?;
        self.search(batch).await.map(Response::new)
    }

    type SubscribeStream = ReceiverStream<Result<v1::Alert, Status>>;

    async fn subscribe(
        &self,
        request: Request<v1::SubscribeRequest>,
    ) -> Result<Response<Self::SubscribeStream>, Status> {
        let mut cursor = request.get_ref().after_cursor;
        let (tx, rx) = tokio::sync::mpsc::channel(256);
        let store = Arc::clone(&self.node.store);
        let mut latest = self.latest.subscribe();
        tokio::spawn(async move {
            loop {
                let s = Arc::clone(&store);
                let rows = match blocking(move || s.alerts_after(cursor, 256)).await {
                    Ok(rows) => rows,
                    Err(e) => {
                        let _ = tx.send(Err(e)).await;
                        return;
                    }
                };
                for row in &rows {
                    cursor = row.cursor;
                    if tx.send(Ok(proto_alert(row))).await.is_err() {
                        return;
                    }
                }
                if rows.is_empty() {
                    // Wait for a new alert (or re-check every few seconds).
                    let _ = tokio::time::timeout(Duration::from_secs(5), latest.changed()).await;
                    if tx.is_closed() {
                        return;
                    }
                }
            }
        });
        Ok(Response::new(ReceiverStream::new(rx)))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn threshold_walk_finds_heavy_leaves_only() {
        // 3-bit codes: 5 (101) counted 4 times, 2 (010) once; threshold 2.
        let counts = |step: &Step| -> Vec<i64> {
            let shift = 2 - u32::from(step.level);
            step.prefixes
                .iter()
                .map(|p| 4 * i64::from(5 >> shift == *p) + i64::from(2 >> shift == *p))
                .collect()
        };
        let mut walk = ThresholdWalk::new(3, 2);
        while let Some(step) = walk.next_step() {
            let c = counts(&step);
            walk.observe(&step, &c);
        }
        assert_eq!(
            walk.findings(),
            vec![Finding {
                venue_code: 5,
                count: 4
            }]
        );
    }

    #[test]
    fn registry_walk_skips_the_dummy_code() {
        let mut walk = RegistryWalk::new(32, &[0, 7, 9]);
        let step = walk.next_step().unwrap_or_else(|| Step {
            level: 0,
            prefixes: vec![],
        });
        assert_eq!(
            step,
            Step {
                level: 31,
                prefixes: vec![7, 9]
            }
        );
        assert!(walk.next_step().is_none());
    }
}
