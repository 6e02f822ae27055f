//! What every role shares at run time: its tasks (with their Poplar1 instances), its keys and
//! its store.

use std::collections::HashMap;
use std::sync::Arc;

use hotspot_core::envelope::HpkeKeyring;
use hotspot_core::task::{TaskConfig, TaskId};
use hotspot_vdaf::Poplar1;

use crate::config::{ServerConfig, ServerRole, VerifyKey};
use crate::credential::Verifier;
use crate::storage::Store;

/// One task with its Poplar1 instance.
#[derive(Debug)]
pub struct TaskCtx {
    /// The task's public parameters.
    pub config: TaskConfig,
    /// Poplar1 for the task's `bits`.
    pub poplar: Poplar1,
}

/// A running server's shared state.
#[derive(Debug)]
pub struct Node {
    /// The role.
    pub role: ServerRole,
    /// Tasks by id.
    pub tasks: HashMap<TaskId, TaskCtx>,
    /// This server's HPKE keys.
    pub keyring: HpkeKeyring,
    /// The Poplar1 verification key (aggregators).
    pub verify_key: Option<VerifyKey>,
    /// The credential presentation verifier (aggregators).
    pub credentials: Option<Verifier>,
    /// The store.
    pub store: Arc<dyn Store>,
    /// Reports per aggregation job.
    pub job_size: usize,
    /// Serialises the privacy check and record of releases ([`crate::noise`]).
    pub release_gate: std::sync::Mutex<()>,
}

impl std::fmt::Debug for dyn Store {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("Store")
    }
}

/// Errors building a node.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum NodeError {
    /// A task's `bits` is not supported by the engine.
    #[error("task {0}: {1}")]
    Task(TaskId, hotspot_vdaf::VdafError),
}

impl Node {
    /// The node for `config` over `store`.
    pub fn new(config: &ServerConfig, store: Arc<dyn Store>) -> Result<Self, NodeError> {
        let mut tasks = HashMap::new();
        for (id, task) in &config.tasks {
            let poplar = Poplar1::new(task.bits as usize).map_err(|e| NodeError::Task(*id, e))?;
            tasks.insert(
                *id,
                TaskCtx {
                    config: task.clone(),
                    poplar,
                },
            );
        }
        Ok(Node {
            role: config.role,
            tasks,
            keyring: config.keyring.clone(),
            verify_key: config.verify_key.clone(),
            credentials: config.credential_key.as_ref().map(|k| Verifier::new(&k.0)),
            store,
            job_size: config.job_size,
            release_gate: std::sync::Mutex::new(()),
        })
    }

    /// The task with this id.
    pub fn task(&self, id: &TaskId) -> Option<&TaskCtx> {
        self.tasks.get(id)
    }

    /// The credential presentation verifier; an internal error where none is configured.
    pub(crate) fn verifier(&self) -> Result<&Verifier, tonic::Status> {
        self.credentials
            .as_ref()
            .ok_or_else(|| tonic::Status::internal("no credential verifier configured"))
    }
}
