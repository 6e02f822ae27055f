//! hotspot-server: the leader, helper, collector and issuer roles as gRPC servers over durable
//! storage (DESIGN.md sections 3 and 6).
//!
//! | module | holds |
//! |---|---|
//! | [`config`] | TOML config, `HOTSPOT_` overrides, secrets from env/files |
//! | [`storage`] | the `Store` trait and its SQLite backend |
//! | [`upload`] | the leader's upload checks and group commit |
//! | [`credential`] | the aggregators' check of credential presentations |
//! | [`issuer`] | the issuer: enrolment, crowding and outbreak credentials, diagnosis codes |
//! | [`leader`] | the leader's aggregation jobs and the `Collection` service |
//! | [`helper`] | the helper's `Aggregation` service |
//! | [`collector`] | the search driver, alerts, the alert stream |
//! | [`registry`] | the collector's venue registry: `RegisterVenue` signs a venue's QR payload |
//! | [`admin`] | `/healthz`, `/readyz`, `/metrics`, and the collector's dashboard |
//! | [`dashboard`] | the collector's dashboard, webhooks and exposure list over its store |
//! | [`serve`] | wiring: one role, health, reflection, mTLS, graceful shutdown |
//!
//! Nothing here does field arithmetic: the Poplar1 work goes through `hotspot-vdaf`'s batch
//! API, and the sealing through `hotspot-core`'s envelope.

pub mod admin;
pub mod collector;
pub mod config;
pub mod credential;
pub mod dashboard;
pub mod helper;
pub mod issuer;
pub mod leader;
pub mod node;
pub mod noise;
pub mod registry;
pub mod serve;
pub mod storage;
pub mod upload;

use std::sync::{Mutex, MutexGuard};

use tonic::Status;

use hotspot_core::envelope::HpkeCiphertext;
use hotspot_core::task::TaskId;
use hotspot_proto::v1;

use crate::storage::{BatchKey, JobKey, StoreError};

/// Seconds since the Unix epoch (0 if the clock is before it).
pub fn now_unix() -> u64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map(|d| d.as_secs())
        .unwrap_or(0)
}

/// Takes `m`, taking over a poisoned lock: what these locks guard stays consistent (derived,
/// re-derivable values, or state a panic leaves whole).
pub(crate) fn lock<T>(m: &Mutex<T>) -> MutexGuard<'_, T> {
    m.lock().unwrap_or_else(|p| p.into_inner())
}

/// Runs blocking work (SQLite, the engine) off the async threads.
pub(crate) async fn blocking<T, E>(
    f: impl FnOnce() -> Result<T, E> + Send + 'static,
) -> Result<T, Status>
where
    T: Send + 'static,
    E: Into<Status> + Send + 'static,
{
    match tokio::task::spawn_blocking(f).await {
        Ok(r) => r.map_err(Into::into),
        Err(e) => Err(Status::internal(format!("worker failed: {e}"))),
    }
}

/// Maps a storage error to a status; details go to the log, not the peer.
pub(crate) fn store_status(e: StoreError) -> Status {
    match e {
        StoreError::Conflict(what) => {
            Status::failed_precondition(format!("{what}: conflicts with the stored one"))
        }
        other => {
            tracing::error!(error = %other, "storage error");
            Status::unavailable("storage unavailable")
        }
    }
}

/// A batch id from the wire, naming `field` when malformed.
pub(crate) fn batch_key(b: Option<&v1::BatchId>, field: &str) -> Result<BatchKey, Status> {
    let b = b.ok_or_else(|| Status::invalid_argument(format!("{field}: missing")))?;
    let task = TaskId::from_slice(&b.task_id)
        .ok_or_else(|| Status::invalid_argument(format!("{field}.task_id: must be 32 bytes")))?;
    Ok(BatchKey {
        task,
        window: b.window,
    })
}

/// A job key from the wire.
pub(crate) fn job_key(j: Option<&v1::JobId>) -> Result<JobKey, Status> {
    let j = j.ok_or_else(|| Status::invalid_argument("job: missing"))?;
    Ok(JobKey {
        batch: batch_key(j.batch.as_ref(), "job.batch")?,
        level: j.level,
        job: j.job,
    })
}

/// The wire form of a ciphertext.
pub(crate) fn proto_ct(ct: &HpkeCiphertext) -> v1::HpkeCiphertext {
    v1::HpkeCiphertext {
        key_id: ct.key_id,
        enc: ct.enc.clone(),
        payload: ct.payload.clone(),
    }
}
