//! Each aggregator's differential-privacy noise and its own privacy books (DESIGN.md
//! section 4; docs/privacy.md).
//!
//! Before sealing an aggregate share to the collector, the leader and the helper each add
//! independent discrete Gaussian noise to every entry of it (crates/core `dp`). The scale and
//! the cost of a release come from the aggregator's **own** copy of the task: its zCDP budget,
//! the plan of releases of its search mode (`SearchConfig::release_noise`, which gives each
//! level its share of the batch budget) and the sensitivity, the credential limit
//! `presentations_per_window`. Nothing in the collector's request sets them.
//!
//! Each aggregator also keeps its own accountant, rebuilt for every release from the
//! `releases` table of its store, so that a collector (or a leader) that deviates cannot
//! obtain more than the budget allows:
//!
//! 1. a level the task's search plan never releases is refused;
//! 2. a release that would take the batch or its day past the budget is refused with
//!    `FAILED_PRECONDITION`, and nothing is released;
//! 3. a release is recorded with its noisy share and the report set it covers (count and XOR
//!    of report ids) in the same transaction that charges it; asking for the same (batch,
//!    level) again returns that very share at no further cost, because fresh noise on the same
//!    counts could be averaged away, and asking over a different report set is refused.
//!
//! With noise switched off for a task (tests only), shares go out exact and nothing is charged.
//!
//! Known gap: the check and the record are serialised by a lock in this process
//! ([`Node::release_gate`]); replicas sharing one database (DESIGN.md section 6) will need the
//! check inside the database transaction.

use rand::CryptoRng;
use tonic::Status;

use hotspot_core::dp::{Accountant, DiscreteGaussian, DpError, ReleaseNoise};
use hotspot_vdaf::{AggregateShare, AggregationParam};

use crate::node::{Node, TaskCtx};
use crate::storage::{BatchKey, LevelAggregates, ReleaseRecord};

/// Whether this aggregator would release (batch, level) under `param` now: the level is in
/// the plan and the budget allows it (or it was released before). Checked before any work.
pub fn admit(node: &Node, batch: BatchKey, param: &AggregationParam) -> Result<(), Status> {
    let task = task_of(node, batch)?;
    let level = u32::from(param.level());
    let Some(noise) = plan(node, task, level, param.prefixes().len())? else {
        return Ok(());
    };
    let _gate = crate::lock(&node.release_gate);
    earlier_or_admit(node, task, batch, level, &noise).map(|_| ())
}

/// This aggregator's release of (batch, level): `share` (the sum over the level's accepted
/// reports, described by `aggs`) with its noise added, charged and recorded; or the share it
/// released before for the same reports. Blocks on the store.
pub fn release(
    node: &Node,
    batch: BatchKey,
    param: &AggregationParam,
    aggs: &LevelAggregates,
    mut share: AggregateShare,
    rng: &mut (impl CryptoRng + ?Sized),
) -> Result<AggregateShare, Status> {
    let task = task_of(node, batch)?;
    let level = u32::from(param.level());
    let Some(noise) = plan(node, task, level, param.prefixes().len())? else {
        return Ok(share);
    };
    let _gate = crate::lock(&node.release_gate);

    // 1. A level released before is served again, over the same reports only.
    // 2. Otherwise the budget, from this aggregator's own record.
    if let Some(earlier) = earlier_or_admit(node, task, batch, level, &noise)? {
        if earlier.accepted != aggs.accepted || earlier.checksum[..] != aggs.checksum[..] {
            return Err(Status::failed_precondition(format!(
                "level {level}: released before over a different set of reports; \
                 a level is released once"
            )));
        }
        return task
            .poplar
            .decode_aggregate_share(param, &earlier.share)
            .map_err(|_| Status::internal("stored release does not decode"));
    }

    // 3. Noise on every entry, recorded with its charge in one transaction.
    add(&mut share, &noise, rng)?;
    node.store.record_release(&ReleaseRecord {
        batch,
        level,
        rho: noise.rho,
        accepted: aggs.accepted,
        checksum: aggs.checksum.to_vec(),
        share: share.encode(),
    })?;
    metrics::counter!("hotspot_releases_total", "role" => role_name(node)).increment(1);
    tracing::info!(
        level,
        dp.rho = noise.rho,
        dp.sigma2 = noise.sigma2.to_f64(),
        "released noisy aggregate share"
    );
    Ok(share)
}

/// Adds one independent `N_Z(0, sigma^2)` draw to every entry of `share`.
pub fn add(
    share: &mut AggregateShare,
    noise: &ReleaseNoise,
    rng: &mut (impl CryptoRng + ?Sized),
) -> Result<(), Status> {
    let draws = DiscreteGaussian::new(noise.sigma2).vartime_sample_vec(share.len(), rng);
    share
        .add_noise(&draws)
        .map_err(|e| Status::internal(format!("adding noise: {e}")))
}

/// The earlier release of (batch, level) if there is one; otherwise `None` once the budget
/// allows a release of `noise`. Run under [`Node::release_gate`].
fn earlier_or_admit(
    node: &Node,
    task: &TaskCtx,
    batch: BatchKey,
    level: u32,
    noise: &ReleaseNoise,
) -> Result<Option<ReleaseRecord>, Status> {
    if let Some(earlier) = node.store.release(batch, level)? {
        return Ok(Some(earlier));
    }
    accountant(node, task, batch.window)?
        .check(batch.window, noise.rho)
        .map_err(|e| refusal(node, e))?;
    Ok(None)
}

fn task_of(node: &Node, batch: BatchKey) -> Result<&TaskCtx, Status> {
    node.task(&batch.task)
        .ok_or_else(|| Status::not_found("batch.task_id: unknown task"))
}

/// The noise of a release of `candidates` counts at `level` by the task's own plan; `None`
/// with noise off.
fn plan(
    node: &Node,
    task: &TaskCtx,
    level: u32,
    candidates: usize,
) -> Result<Option<ReleaseNoise>, Status> {
    let config = &task.config;
    config
        .search_config(config.threshold)
        .release_noise(&config.dp(), level, candidates)
        .map_err(|e| match e {
            DpError::UnplannedRelease { .. } => Status::failed_precondition(format!(
                "level: the task's {:?} search releases no level {level}",
                config.search_mode
            )),
            other => refusal(node, other),
        })
}

/// The accountant of `window`'s day, rebuilt from the stored releases of that day.
fn accountant(node: &Node, task: &TaskCtx, window: u64) -> Result<Accountant, Status> {
    let dp = task.config.dp();
    let charges = node
        .store
        .release_charges(task.config.id, dp.day_windows(window))?;
    Accountant::restore(&dp, charges).map_err(|e| refusal(node, e))
}

/// A refusal on privacy grounds, naming this aggregator.
fn refusal(node: &Node, e: DpError) -> Status {
    Status::failed_precondition(format!("privacy budget ({}): {e}", role_name(node)))
}

fn role_name(node: &Node) -> &'static str {
    node.role.name()
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use std::collections::HashMap;
    use std::path::Path;
    use std::sync::Arc;

    use rand::SeedableRng;
    use rand::rngs::ChaCha20Rng;

    use hotspot_core::envelope::HpkeKeyring;

    use hotspot_core::task::{
        PrivacyParams, SearchMode, SearchParams, TaskConfig, TaskId, TaskKind,
    };
    use hotspot_vdaf::Poplar1;

    use super::*;
    use crate::config::ServerRole;
    use crate::storage::sqlite::SqliteStore;

    fn task(noise: bool, mode: SearchMode) -> TaskConfig {
        TaskConfig {
            id: TaskId([5; 32]),
            bits: 8,
            grace_seconds: 0,
            search_mode: mode,
            privacy: PrivacyParams {
                noise,
                rho_batch: 0.01,
                rho_day: 0.015,
                delta: 1e-9,
                windows_per_day: 24,
            },
            search: SearchParams {
                stride: 4,
                ..SearchParams::default()
            },
            ..TaskConfig::example(TaskKind::Crowding)
        }
    }

    fn node(path: &Path, config: TaskConfig) -> Node {
        let store = Arc::new(SqliteStore::open(path).unwrap());
        let poplar = Poplar1::new(config.bits as usize).unwrap();
        Node {
            role: ServerRole::Helper,
            tasks: HashMap::from([(config.id, TaskCtx { config, poplar })]),
            keyring: HpkeKeyring::new(Vec::new()),
            verify_key: None,
            credentials: None,
            store,
            job_size: 10,
            release_gate: Default::default(),
        }
    }

    fn db(name: &str) -> std::path::PathBuf {
        let dir = std::env::temp_dir().join(format!("hotspot-noise-{}-{name}", std::process::id()));
        let _ = std::fs::remove_dir_all(&dir);
        std::fs::create_dir_all(&dir).unwrap();
        dir.join("db.sqlite")
    }

    /// The zero share of a leaf release over `candidates` codes.
    fn zero(node: &Node, param: &AggregationParam) -> AggregateShare {
        let task = node.tasks.values().next().unwrap();
        let width = if task.poplar.is_leaf(param.level()) {
            32
        } else {
            8
        };
        let bytes = vec![0u8; width * param.prefixes().len()];
        task.poplar.decode_aggregate_share(param, &bytes).unwrap()
    }

    fn batch(window: u64) -> BatchKey {
        BatchKey {
            task: TaskId([5; 32]),
            window,
        }
    }

    fn aggs(accepted: u64, checksum: u8) -> LevelAggregates {
        LevelAggregates {
            shares: Vec::new(),
            accepted,
            checksum: [checksum; 16],
        }
    }

    #[test]
    fn a_release_is_noisy_once_and_served_again_unchanged() {
        let path = db("once");
        let node = node(&path, task(true, SearchMode::Registry));
        let param = AggregationParam::new(7, (1..=200).collect()).unwrap();
        let mut rng = ChaCha20Rng::seed_from_u64(1);
        let first = release(
            &node,
            batch(0),
            &param,
            &aggs(3, 1),
            zero(&node, &param),
            &mut rng,
        )
        .unwrap();
        assert_ne!(
            first.encode(),
            zero(&node, &param).encode(),
            "noise was added"
        );

        // The same level again: the same share, at no further cost.
        let again = release(
            &node,
            batch(0),
            &param,
            &aggs(3, 1),
            zero(&node, &param),
            &mut rng,
        )
        .unwrap();
        assert_eq!(again.encode(), first.encode());
        assert_eq!(
            node.store
                .release_charges(TaskId([5; 32]), 0..u64::MAX)
                .unwrap()
                .len(),
            1
        );
        admit(&node, batch(0), &param).unwrap();

        // Over another report set: refused.
        let err = release(
            &node,
            batch(0),
            &param,
            &aggs(4, 1),
            zero(&node, &param),
            &mut rng,
        )
        .unwrap_err();
        assert_eq!(err.code(), tonic::Code::FailedPrecondition);
        assert!(err.message().contains("different set of reports"), "{err}");
    }

    #[test]
    fn the_day_budget_refuses_the_second_batch_even_after_a_restart() {
        let path = db("day");
        let param = AggregationParam::new(7, vec![1, 2, 3]).unwrap();
        let mut rng = ChaCha20Rng::seed_from_u64(2);
        {
            let node = node(&path, task(true, SearchMode::Registry));
            release(
                &node,
                batch(0),
                &param,
                &aggs(3, 1),
                zero(&node, &param),
                &mut rng,
            )
            .unwrap();
        }
        let node = node(&path, task(true, SearchMode::Registry));
        for err in [
            admit(&node, batch(1), &param).unwrap_err(),
            release(
                &node,
                batch(1),
                &param,
                &aggs(3, 2),
                zero(&node, &param),
                &mut rng,
            )
            .unwrap_err(),
        ] {
            assert_eq!(err.code(), tonic::Code::FailedPrecondition);
            assert!(
                err.message()
                    .starts_with("privacy budget (helper): daily budget"),
                "{err}"
            );
        }
        // Window 24 starts the next day.
        release(
            &node,
            batch(24),
            &param,
            &aggs(3, 2),
            zero(&node, &param),
            &mut rng,
        )
        .unwrap();
        // Each day is judged by its own releases: the last window of day 0 and the second
        // of day 1 are both refused.
        for window in [23, 25] {
            let err = admit(&node, batch(window), &param).unwrap_err();
            assert!(err.message().contains("daily budget"), "{window}: {err}");
        }
    }

    #[test]
    fn a_level_outside_the_plan_is_refused() {
        let node = node(&db("plan"), task(true, SearchMode::Open));
        // Stride 4 over 8 bits releases levels 3 and 7 only.
        let param = AggregationParam::new(5, vec![1, 2]).unwrap();
        let mut rng = ChaCha20Rng::seed_from_u64(3);
        let err = release(
            &node,
            batch(0),
            &param,
            &aggs(1, 1),
            zero(&node, &param),
            &mut rng,
        )
        .unwrap_err();
        assert_eq!(err.code(), tonic::Code::FailedPrecondition);
        assert!(err.message().contains("releases no level 5"), "{err}");
        assert_eq!(
            admit(&node, batch(0), &param).unwrap_err().code(),
            err.code()
        );
        let inner = AggregationParam::new(3, vec![0, 1]).unwrap();
        release(
            &node,
            batch(0),
            &inner,
            &aggs(1, 1),
            zero(&node, &inner),
            &mut rng,
        )
        .unwrap();
    }

    #[test]
    fn without_noise_shares_go_out_exact_and_nothing_is_charged() {
        let node = node(&db("off"), task(false, SearchMode::Registry));
        let param = AggregationParam::new(7, vec![9]).unwrap();
        let mut rng = ChaCha20Rng::seed_from_u64(4);
        for window in 0..5 {
            let out = release(
                &node,
                batch(window),
                &param,
                &aggs(1, 1),
                zero(&node, &param),
                &mut rng,
            )
            .unwrap();
            assert_eq!(out.encode(), zero(&node, &param).encode());
        }
        assert!(
            node.store
                .release_charges(TaskId([5; 32]), 0..u64::MAX)
                .unwrap()
                .is_empty()
        );
    }

    #[test]
    fn noise_has_the_planned_scale() {
        let node = node(&db("scale"), task(true, SearchMode::Registry));
        let param = AggregationParam::new(7, (1..=255).collect()).unwrap();
        let config = &node.tasks.values().next().unwrap().config;
        let noise = config
            .search_config(1)
            .release_noise(&config.dp(), 7, 255)
            .unwrap()
            .unwrap();
        let mut share = zero(&node, &param);
        add(&mut share, &noise, &mut ChaCha20Rng::seed_from_u64(5)).unwrap();
        let poplar = node.tasks.values().next().unwrap().poplar;
        let counts = poplar
            .unshard_signed(&param, [&share, &zero(&node, &param)], 0)
            .unwrap();
        let var = counts.iter().map(|c| (c * c) as f64).sum::<f64>() / 255.0;
        let sigma2 = noise.sigma2.to_f64();
        assert!((var / sigma2 - 1.0).abs() < 0.3, "{var} vs {sigma2}");
    }
}
