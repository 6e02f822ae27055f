//! Building an upload the way a visitor's phone does (DESIGN.md section 3, step 3): shard the
//! venue code with Poplar1 (nonce = a fresh report id, context = task id), seal each input
//! share to its aggregator with the report's binding as associated data. The visitor library
//! (crates/client) will own this; the demo, the benchmark and the tests use this copy until
//! it lands.

use anyhow::{Result, anyhow};
use rand::CryptoRng;

use hotspot_core::envelope::{self, ReportId, Role, input_share_info, report_aad};
use hotspot_core::task::TaskConfig;
use hotspot_proto::v1;
use hotspot_vdaf::Poplar1;

/// One report for `venue` in `window`.
pub fn make_report(
    task: &TaskConfig,
    poplar: &Poplar1,
    venue: u64,
    window: u64,
    rng: &mut impl CryptoRng,
) -> Result<v1::Report> {
    let mut id = [0u8; 16];
    rng.fill_bytes(&mut id);
    let (public, [leader, helper]) = poplar
        .shard(&task.id.0, venue, &id, rng)
        .map_err(|e| anyhow!("shard: {e}"))?;
    let public = public.encode();
    let aad = report_aad(&task.id, window, &ReportId(id), &public);
    let mut seal = |share: &[u8],
                    role: Role,
                    keys: &[envelope::HpkePublicKey]|
     -> Result<v1::HpkeCiphertext> {
        let key = keys
            .first()
            .ok_or_else(|| anyhow!("task has no key for {role:?}"))?;
        let ct = envelope::seal_with_rng(key, &input_share_info(role), &aad, share, rng)
            .map_err(|e| anyhow!("{e}"))?;
        Ok(v1::HpkeCiphertext {
            key_id: ct.key_id,
            enc: ct.enc,
            payload: ct.payload,
        })
    };
    let leader_share = seal(&leader.encode(), Role::Leader, &task.leader_keys)?;
    let helper_share = seal(&helper.encode(), Role::Helper, &task.helper_keys)?;
    Ok(v1::Report {
        task_id: task.id.0.to_vec(),
        window,
        report_id: id.to_vec(),
        public_share: public,
        leader_share: Some(leader_share),
        helper_share: Some(helper_share),
        presentation: Vec::new(),
    })
}
