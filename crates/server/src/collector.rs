//! The collector (health authority): drives the heavy-hitter search over a sealed batch,
//! combines the two aggregate shares of each level, turns the noisy counts into alerts with
//! the task's rules, stores them and serves them on a resumable stream (DESIGN.md section 3,
//! steps 6 and 7).
//!
//! The search is crates/core's [`search::run`]: registry mode releases one leaf level over the
//! venues in the collector's registry (its `venues` table); open mode walks the prefix tree,
//! pruning at the task's threshold (never above the rules' smallest alert threshold, so no
//! venue that could alert is cut off). The core search is synchronous and asks a
//! [`LevelAggregator`] for each release; here that is [`LeaderAggregator`], which runs on a
//! blocking thread and waits (`Handle::block_on`) for the async `Collect` call to the leader.
//! Keeping the core synchronous keeps it free of any runtime (DESIGN.md section 7).
//!
//! **Privacy budget.** The collector keeps its own accountant: its store records the cost of
//! every release it asks for (before asking), and each search rebuilds the accountant from
//! that record, so a search that would exceed the batch or the day budget is refused before
//! anything is asked. The aggregators keep their own books as well ([`crate::noise`]); they
//! answer a repeated release with the very share they released before, so the charges of an
//! interrupted search of the same batch are not counted twice when it runs again. A batch
//! searched to the end answers from its stored record and is never searched again.

use std::collections::HashMap;
use std::sync::Arc;
use std::time::Duration;

use tokio::runtime::Handle;
use tokio::sync::watch;
use tokio_stream::wrappers::ReceiverStream;
use tonic::transport::Channel;
use tonic::{Request, Response, Status};

use hotspot_core::dp::{Accountant, DpError, epsilon_for_rho};
use hotspot_core::envelope::{HpkeCiphertext, Role, aggregate_share_aad, aggregate_share_info};
use hotspot_core::rules::VenueInfo;
use hotspot_core::search::{self, LevelAggregator, LevelQuery, SearchError, SearchOutcome};
use hotspot_core::task::TaskConfig;
use hotspot_proto::v1::{self, collection_client::CollectionClient};
use hotspot_vdaf::AggregationParam;

use crate::node::{Node, TaskCtx};
use crate::storage::{AlertRow, BatchKey, BatchSummary, ReleaseRecord, StoreError, VenueRecord};
use crate::{batch_key, blocking};

/// The `Collector` gRPC service and the search driver.
#[derive(Clone, Debug)]
pub struct CollectorService {
    node: Arc<Node>,
    leader: CollectionClient<Channel>,
    latest: watch::Sender<u64>,
    gate: Arc<tokio::sync::Mutex<()>>,
}

/// What a finished search hands back from its blocking thread.
struct Finished {
    outcome: SearchOutcome,
    accountant: Accountant,
    accepted: u64,
    rejected: u64,
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

    /// Searches `batch` once; a batch searched before answers with its stored alerts and
    /// summary (searching it again would spend budget for nothing).
    #[tracing::instrument(name = "search", skip_all, fields(batch.window = batch.window))]
    pub async fn search(&self, batch: BatchKey) -> Result<v1::RunSearchResponse, Status> {
        let _one = self.gate.lock().await;
        let task = self
            .node
            .task(&batch.task)
            .ok_or_else(|| Status::not_found("batch.task_id: unknown task"))?;
        let store = Arc::clone(&self.node.store);
        if let Some((summary, alerts)) = blocking(move || store.search_record(batch)).await? {
            return Ok(response(&task.config, &summary, &alerts, Vec::new()));
        }

        // The registry and the accountant's record, then the search on a blocking thread.
        let store = Arc::clone(&self.node.store);
        let day = task.config.dp().day_windows(batch.window);
        let (venues, charges) = blocking(move || {
            Ok::<_, StoreError>((store.venues()?, store.release_charges(batch.task, day)?))
        })
        .await?;
        let directory: HashMap<u64, VenueInfo> = venues.iter().map(venue_info).collect();
        // Open mode prunes at the task's threshold, capped so that no alert is cut off.
        let threshold = task
            .config
            .threshold
            .min(task.config.rules.min_threshold(directory.values()))
            .max(1);
        let registry: Vec<u64> = venues.iter().map(|v| v.code).collect();
        let finished = {
            let (this, handle) = (self.clone(), Handle::current());
            tokio::task::spawn_blocking(move || {
                this.run_blocking(handle, batch, threshold, &registry, charges)
            })
            .await
            .map_err(|e| Status::internal(format!("search worker failed: {e}")))??
        };

        // Alerts and the summary, stored together.
        let config = &task.config;
        let alerts = alert_rows(config, batch, &finished.outcome, &directory);
        let summary = BatchSummary {
            alerts: alerts.len() as u64,
            ..summarise(config, batch, &finished)
        };
        let store = Arc::clone(&self.node.store);
        let stored = {
            let summary = summary.clone();
            blocking(move || store.record_search(&summary, &alerts)).await?
        };
        if let Some(last) = stored.last() {
            self.latest.send_replace(last.cursor);
        }
        tracing::info!(
            alerts = stored.len(),
            reports = finished.accepted,
            dp.rho = finished.outcome.rho,
            "search finished"
        );
        let cells = finished
            .outcome
            .counts
            .iter()
            .map(|&(venue_code, count)| v1::Cell { venue_code, count })
            .collect();
        Ok(response(config, &summary, &stored, cells))
    }

    /// The core search over `batch`, asking the leader through `handle`; runs on a blocking
    /// thread.
    fn run_blocking(
        &self,
        handle: Handle,
        batch: BatchKey,
        threshold: u64,
        registry: &[u64],
        charges: Vec<(u64, f64)>,
    ) -> Result<Finished, Status> {
        let task = self
            .node
            .task(&batch.task)
            .ok_or_else(|| Status::not_found("batch.task_id: unknown task"))?;
        let dp = task.config.dp();

        // This batch's own earlier charges belong to an interrupted search whose releases the
        // aggregators serve again unchanged: they are not counted twice.
        let others = charges.into_iter().filter(|&(w, _)| w != batch.window);
        let mut accountant = Accountant::restore(&dp, others).map_err(budget_status)?;

        let config = task.config.search_config(threshold);

        let mut aggregator = LeaderAggregator {
            service: self,
            task,
            batch,
            handle,
            accepted: 0,
            rejected: 0,
        };
        let outcome = search::run(
            &config,
            &dp,
            &mut aggregator,
            &mut accountant,
            batch.window,
            registry,
        )
        .map_err(search_status)?;
        Ok(Finished {
            outcome,
            accountant,
            accepted: aggregator.accepted,
            rejected: aggregator.rejected,
        })
    }

    /// One level: ask the leader, open both shares, unshard.
    async fn collect_level(
        &self,
        task: &TaskCtx,
        batch: BatchKey,
        query: &LevelQuery,
    ) -> Result<(Vec<i64>, u64, u64), Status> {
        let level = query.level;
        let level16 = u16::try_from(level)
            .map_err(|_| Status::internal(format!("search level {level} out of range")))?;
        let param = AggregationParam::new(level16, query.prefixes.clone())
            .map_err(|e| Status::internal(format!("search step: {e}")))?;
        let param_bytes = param.encode();
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

/// The core search's view of the leader: each release is one `Collect` call, made from the
/// search's blocking thread through the runtime `handle`.
struct LeaderAggregator<'a> {
    service: &'a CollectorService,
    task: &'a TaskCtx,
    batch: BatchKey,
    handle: Handle,
    /// Reports aggregated at the last level asked, and rejected so far.
    accepted: u64,
    rejected: u64,
}

impl LevelAggregator for LeaderAggregator<'_> {
    type Error = Status;

    fn aggregate(&mut self, query: &LevelQuery) -> Result<Vec<i64>, Status> {
        // The accountant admitted the release: record its cost before asking for it.
        if let Some(noise) = query.noise {
            self.service.node.store.record_release(&ReleaseRecord {
                batch: self.batch,
                level: query.level,
                rho: noise.rho,
                accepted: 0,
                checksum: Vec::new(),
                share: Vec::new(),
            })?;
        }
        let (counts, accepted, rejected) = self
            .handle
            .block_on(self.service.collect_level(self.task, self.batch, query))?;
        (self.accepted, self.rejected) = (accepted, rejected);
        Ok(counts)
    }
}

/// What the rules need of a registered venue.
fn venue_info(v: &VenueRecord) -> (u64, VenueInfo) {
    (
        v.code,
        VenueInfo {
            category: v.category,
            capacity: v.capacity,
        },
    )
}

/// The alerts of a search, as stored: the venue looked up in the registry (an unregistered
/// code gets the rule's unknown-venue default), the noisy count with its uncertainty.
fn alert_rows(
    task: &TaskConfig,
    batch: BatchKey,
    outcome: &SearchOutcome,
    directory: &HashMap<u64, VenueInfo>,
) -> Vec<AlertRow> {
    let stddev = outcome.leaf_stddev();
    outcome
        .alerts(&task.rules, directory)
        .into_iter()
        .map(|a| {
            let venue = directory.get(&a.code);
            AlertRow {
                cursor: 0,
                batch,
                venue_code: a.code,
                count: a.count,
                stddev,
                rule: task
                    .rules
                    .describe(venue, a.level)
                    .unwrap_or_else(|| a.level.name().to_string()),
                level: a.level.name().to_string(),
                created_unix: 0,
            }
        })
        .collect()
}

/// The summary of a finished search: mode, reports, what it cost and what the day has left.
fn summarise(task: &TaskConfig, batch: BatchKey, f: &Finished) -> BatchSummary {
    let (privacy, window) = (&task.privacy, batch.window);
    let rho_left = (privacy.rho_day - f.accountant.spent_day(window)).max(0.0);
    // Both values are finite and non-negative and delta was checked at load: the conversion
    // cannot fail; infinity would only overstate the loss.
    let epsilon = |rho| epsilon_for_rho(rho, privacy.delta).unwrap_or(f64::INFINITY);
    BatchSummary {
        batch,
        mode: f.outcome.mode,
        noise: privacy.noise,
        accepted: f.accepted,
        rejected: f.rejected,
        alerts: 0,
        rho_spent: f.outcome.rho,
        rho_left,
        epsilon_spent: epsilon(f.outcome.rho),
        epsilon_left: epsilon(rho_left),
        delta: privacy.delta,
        finished_unix: i64::try_from(crate::now_unix()).unwrap_or(i64::MAX),
    }
}

fn response(
    task: &TaskConfig,
    summary: &BatchSummary,
    alerts: &[AlertRow],
    cells: Vec<v1::Cell>,
) -> v1::RunSearchResponse {
    v1::RunSearchResponse {
        report_count: summary.accepted,
        rejected_count: summary.rejected,
        alerts: alerts.iter().map(|a| proto_alert(Some(task), a)).collect(),
        cells,
        summary: Some(v1::SearchSummary {
            search_mode: summary.mode.name().to_string(),
            noise: summary.noise,
            rho_spent: summary.rho_spent,
            rho_left: summary.rho_left,
            epsilon_spent: summary.epsilon_spent,
            epsilon_left: summary.epsilon_left,
            delta: summary.delta,
            finished_unix: summary.finished_unix,
        }),
    }
}

/// The status of a failed search: the aggregators' own statuses pass through.
fn search_status(e: SearchError<Status>) -> Status {
    match e {
        SearchError::Aggregator(status) => status,
        SearchError::Budget(e) => budget_status(e),
        e @ SearchError::TooManyCandidates { .. } => Status::resource_exhausted(e.to_string()),
        e @ (SearchError::InvalidConfig(_) | SearchError::CodeOutOfRange { .. }) => {
            Status::failed_precondition(e.to_string())
        }
        other => Status::internal(other.to_string()),
    }
}

/// A refusal of the collector's own accountant.
fn budget_status(e: DpError) -> Status {
    Status::failed_precondition(format!("privacy budget (collector): {e}"))
}

/// An alert on the wire; `task` gives the window's start (0 if the task is no longer known).
fn proto_alert(task: Option<&TaskConfig>, a: &AlertRow) -> v1::Alert {
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
        stddev: a.stddev,
        window_start_unix: task.map_or(0, |t| t.window_start(a.batch.window)),
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
        let node = Arc::clone(&self.node);
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
                    let task = node.task(&row.batch.task).map(|t| &t.config);
                    if tx.send(Ok(proto_alert(task, row))).await.is_err() {
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
