//! Where each aggregator adds its differential-privacy noise to an aggregate share before
//! sealing it to the collector (DESIGN.md section 4).
//!
//! Known gap: the discrete Gaussian sampler and the accountant come with the search issue
//! (crates/core `dp`); until then this adds nothing, so released counts are exact. The call
//! sites are final: [`add`] receives the task and the share, and the engine's
//! `AggregateShare::add_noise` does the arithmetic.

use tonic::Status;

use hotspot_core::task::TaskConfig;
use hotspot_vdaf::AggregateShare;

/// Adds this aggregator's noise for `task` to `share` (currently none: see the module docs).
pub fn add(task: &TaskConfig, share: &mut AggregateShare) -> Result<(), Status> {
    let _ = (task, share);
    Ok(())
}
