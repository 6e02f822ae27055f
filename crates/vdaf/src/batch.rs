//! Batch preparation: a whole batch of reports for one aggregation parameter per call, as a
//! pure two-party state machine (no I/O) that the servers drive across the network.
//!
//! Messages, in order (each one `encode()`d, sent, and decoded by the peer with the instance
//! and the aggregation parameter):
//!
//! 1. leader -> helper: [`Round1Shares`], the leader's first sketch share per report (or a
//!    mark that the leader rejected the report while decoding it).
//! 2. helper -> leader: [`HelperMessage`], per report the combined sketch (the draft's round-1
//!    verifier message) and the helper's second sketch share, or a rejection mark.
//! 3. leader -> helper: [`Verdicts`], per report accepted or the reason it was rejected.
//!
//! Both sides end with the same accept/reject decision per report and their
//! [`AggregateShare`] over the accepted ones ([`BatchOutcome`]).
//!
//! Performance (DESIGN.md section 5): the candidate prefixes form one [`PrefixTree`] built per
//! batch; each report walks it with its AES work batched per tree depth; reports are spread
//! over the rayon pool. Output shares are summed as they are produced (memory is one
//! aggregate per worker, independent of the number of reports); a report that is finally
//! rejected after its output share was added is evaluated again and subtracted, so honest
//! batches pay nothing for it. The per-report state kept between messages is the decoded
//! shares and five field elements.

use core::fmt;
use std::collections::HashMap;
use std::sync::Arc;

use rayon::prelude::*;
use subtle::ConstantTimeEq;
use zeroize::Zeroize;

use crate::error::VdafError;
use crate::field::{Field64, Field255, FieldElement, SketchSums255};
use crate::field512::{self, LeafBlock};
use crate::idpf::{EvalScratch, LeafWalk, PrefixTree};
use crate::poplar1::{
    AggregateShare, AggregationParam, FieldVec, InputShare, LEAF_CHUNK, NONCE_SIZE, Poplar1,
    PublicShare, ReportEval, VERIFY_KEY_SIZE, WalkState, check_ctx,
};
use crate::xof::StreamsX4;

/// One report as an aggregator holds it: nonce, encoded public share, its own encoded input
/// share.
#[derive(Clone, Copy)]
pub struct ReportShare<'a> {
    /// The report's nonce (its id).
    pub nonce: [u8; NONCE_SIZE],
    /// Encoded public share.
    pub public_share: &'a [u8],
    /// This aggregator's encoded input share.
    pub input_share: &'a [u8],
}

impl fmt::Debug for ReportShare<'_> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("ReportShare")
            .field("input_share", &"[redacted]")
            .finish_non_exhaustive()
    }
}

/// One report with both input shares, for [`Poplar1::prepare_batch_local`].
#[derive(Clone, Copy)]
pub struct LocalReport<'a> {
    /// The report's nonce.
    pub nonce: [u8; NONCE_SIZE],
    /// Encoded public share.
    pub public_share: &'a [u8],
    /// Encoded input shares of the leader (0) and the helper (1).
    pub input_shares: [&'a [u8]; 2],
}

/// Why a report was dropped from the batch.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
#[non_exhaustive]
pub enum RejectReason {
    /// The leader could not decode the report (public share or its input share).
    LeaderDecode,
    /// The helper could not decode the report (public share or its input share).
    HelperDecode,
    /// The sketch did not verify: the client's shares are not a valid one-hot IDPF.
    VerifyFailed,
}

impl RejectReason {
    fn code(self) -> u8 {
        match self {
            RejectReason::LeaderDecode => 1,
            RejectReason::HelperDecode => 2,
            RejectReason::VerifyFailed => 3,
        }
    }
}

/// The outcome of one report.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum Verdict {
    /// Verified and counted.
    Accepted,
    /// Dropped, with the reason.
    Rejected(RejectReason),
}

/// What one aggregator ends a batch with.
#[derive(Debug)]
pub struct BatchOutcome {
    /// One verdict per report, in batch order.
    pub verdicts: Vec<Verdict>,
    /// This aggregator's aggregate share over the accepted reports.
    pub aggregate: AggregateShare,
    /// Number of accepted reports.
    pub accepted: usize,
}

/// Both aggregators' results of [`Poplar1::prepare_batch_local`].
#[derive(Debug)]
pub struct LocalOutcome {
    /// One verdict per report.
    pub verdicts: Vec<Verdict>,
    /// Leader's and helper's aggregate shares.
    pub aggregates: [AggregateShare; 2],
    /// Number of accepted reports.
    pub accepted: usize,
}

/// A decoded report kept for the second evaluation of a late rejection.
struct Decoded {
    nonce: [u8; NONCE_SIZE],
    /// Shared with the walk cache when there is one (no copy per level).
    shares: Arc<(PublicShare, InputShare)>,
}

/// One aggregator's state between the messages of one batch. Holds secrets (input shares,
/// the verification key): zeroized on drop, redacted in `Debug`.
pub struct BatchState {
    agg_id: u8,
    param: AggregationParam,
    is_leaf: bool,
    verify_key: [u8; VERIFY_KEY_SIZE],
    ctx: Vec<u8>,
    tree: PrefixTree,
    reports: Vec<Option<Decoded>>,
    /// `A`, `B` shares per report (2 per report).
    ab: FieldVec,
    /// Own first sketch share per report (3 per report).
    sketch: FieldVec,
    /// Sum of the output shares of every report that passed `verify_init`.
    provisional: FieldVec,
}

impl Drop for BatchState {
    fn drop(&mut self) {
        self.verify_key.zeroize();
        self.ab.zeroize();
        self.sketch.zeroize();
        self.provisional.zeroize();
    }
}

impl fmt::Debug for BatchState {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("BatchState")
            .field("agg_id", &self.agg_id)
            .field("level", &self.param.level())
            .field("reports", &self.reports.len())
            .finish_non_exhaustive()
    }
}

impl BatchState {
    /// Number of reports in the batch.
    pub fn len(&self) -> usize {
        self.reports.len()
    }

    /// `true` for an empty batch.
    pub fn is_empty(&self) -> bool {
        self.reports.is_empty()
    }

    /// The aggregation parameter of the batch.
    pub fn agg_param(&self) -> &AggregationParam {
        &self.param
    }
}

// ---------------------------------------------------------------------------------------------
// Wire messages
// ---------------------------------------------------------------------------------------------

/// Message 1 (leader -> helper): the leader's first sketch shares.
#[derive(Clone, PartialEq, Eq)]
pub struct Round1Shares {
    ok: Vec<bool>,
    /// 3 elements per report; zeros where `ok` is false.
    shares: FieldVec,
}

/// Message 2 (helper -> leader): combined sketches and the helper's second shares.
#[derive(Clone, PartialEq, Eq)]
pub struct HelperMessage {
    ok: Vec<bool>,
    /// 3 elements per report (the round-1 verifier message).
    sketch: FieldVec,
    /// 1 element per report (the helper's round-2 verifier share).
    round2: FieldVec,
}

/// Message 3 (leader -> helper): the verdicts.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Verdicts(Vec<Verdict>);

impl Verdicts {
    /// The verdicts, one per report.
    pub fn as_slice(&self) -> &[Verdict] {
        &self.0
    }

    /// Encoding: report count (u32 BE), then one byte per report (0 accepted, 1 leader
    /// decode, 2 helper decode, 3 verification failed).
    pub fn encode(&self) -> Vec<u8> {
        let mut out = Vec::with_capacity(4 + self.0.len());
        out.extend_from_slice(&(self.0.len() as u32).to_be_bytes());
        out.extend(self.0.iter().map(|v| match v {
            Verdict::Accepted => 0,
            Verdict::Rejected(r) => r.code(),
        }));
        out
    }

    /// Decodes, rejecting unknown codes and length mismatches.
    pub fn decode(bytes: &[u8]) -> Result<Self, VdafError> {
        const WHAT: &str = "verdicts";
        let (n, body) = split_count(bytes, WHAT)?;
        if body.len() != n {
            return Err(VdafError::decode(WHAT, "length does not match the count"));
        }
        let verdicts = body
            .iter()
            .map(|b| match b {
                0 => Ok(Verdict::Accepted),
                1 => Ok(Verdict::Rejected(RejectReason::LeaderDecode)),
                2 => Ok(Verdict::Rejected(RejectReason::HelperDecode)),
                3 => Ok(Verdict::Rejected(RejectReason::VerifyFailed)),
                _ => Err(VdafError::decode(WHAT, "unknown verdict code")),
            })
            .collect::<Result<_, _>>()?;
        Ok(Self(verdicts))
    }
}

fn split_count<'b>(bytes: &'b [u8], what: &'static str) -> Result<(usize, &'b [u8]), VdafError> {
    if bytes.len() < 4 {
        return Err(VdafError::decode(what, "too short"));
    }
    let n = u32::from_be_bytes([bytes[0], bytes[1], bytes[2], bytes[3]]) as usize;
    Ok((n, &bytes[4..]))
}

/// `count || bitmap (LSB first) || elements of the marked reports, `per` each`.
fn encode_marked(ok: &[bool], vecs: &[(&FieldVec, usize)]) -> Vec<u8> {
    let mut out = Vec::new();
    out.extend_from_slice(&(ok.len() as u32).to_be_bytes());
    let mut bitmap = vec![0u8; ok.len().div_ceil(8)];
    for (i, &b) in ok.iter().enumerate() {
        bitmap[i / 8] |= u8::from(b) << (i % 8);
    }
    out.extend_from_slice(&bitmap);
    for (i, _) in ok.iter().enumerate().filter(|(_, b)| **b) {
        for (v, per) in vecs {
            match v {
                FieldVec::Inner(x) => x[i * per..(i + 1) * per]
                    .iter()
                    .for_each(|e| e.encode_into(&mut out)),
                FieldVec::Leaf(x) => x[i * per..(i + 1) * per]
                    .iter()
                    .for_each(|e| e.encode_into(&mut out)),
            }
        }
    }
    out
}

/// Inverse of [`encode_marked`]; `pers` are the element counts per report of each vector.
fn decode_marked(
    is_leaf: bool,
    pers: &[usize],
    bytes: &[u8],
    what: &'static str,
) -> Result<(Vec<bool>, Vec<FieldVec>), VdafError> {
    let (n, body) = split_count(bytes, what)?;
    let bitmap_len = n.div_ceil(8);
    if body.len() < bitmap_len {
        return Err(VdafError::decode(what, "too short for its count"));
    }
    let (bitmap, mut elems) = body.split_at(bitmap_len);
    let ok: Vec<bool> = (0..n)
        .map(|i| (bitmap[i / 8] >> (i % 8)) & 1 == 1)
        .collect();
    if (n..8 * bitmap_len).any(|i| (bitmap[i / 8] >> (i % 8)) & 1 == 1) {
        return Err(VdafError::decode(what, "nonzero padding bits"));
    }
    let size = if is_leaf {
        Field255::ENCODED_SIZE
    } else {
        Field64::ENCODED_SIZE
    };
    let per_report: usize = pers.iter().sum();
    let marked = ok.iter().filter(|b| **b).count();
    if elems.len() != marked * per_report * size {
        return Err(VdafError::decode(
            what,
            "length does not match the marked reports",
        ));
    }
    let mut vecs: Vec<FieldVec> = pers
        .iter()
        .map(|p| FieldVec::zero(is_leaf, n * p))
        .collect();
    for i in (0..n).filter(|i| ok[*i]) {
        for (v, per) in vecs.iter_mut().zip(pers) {
            let (chunk, rest) = elems.split_at(per * size);
            elems = rest;
            let dec = FieldVec::decode(is_leaf, *per, chunk, what)?;
            match (v, dec) {
                (FieldVec::Inner(x), FieldVec::Inner(d)) => {
                    x[i * per..(i + 1) * per].copy_from_slice(&d)
                }
                (FieldVec::Leaf(x), FieldVec::Leaf(d)) => {
                    x[i * per..(i + 1) * per].copy_from_slice(&d)
                }
                _ => return Err(VdafError::StateMismatch("field mismatch")),
            }
        }
    }
    Ok((ok, vecs))
}

impl Round1Shares {
    /// Encoding: report count, bitmap of reports with a share, then 3 field elements each.
    pub fn encode(&self) -> Vec<u8> {
        encode_marked(&self.ok, &[(&self.shares, 3)])
    }

    /// Decodes for `param` (the field follows from the level).
    pub fn decode(
        poplar: &Poplar1,
        param: &AggregationParam,
        bytes: &[u8],
    ) -> Result<Self, VdafError> {
        let is_leaf = poplar.is_leaf(param.level());
        let (ok, mut vecs) = decode_marked(is_leaf, &[3], bytes, "round-1 shares")?;
        let shares = vecs
            .pop()
            .ok_or(VdafError::StateMismatch("missing vector"))?;
        Ok(Self { ok, shares })
    }

    /// Number of reports covered.
    pub fn len(&self) -> usize {
        self.ok.len()
    }

    /// `true` if no reports are covered.
    pub fn is_empty(&self) -> bool {
        self.ok.is_empty()
    }
}

impl HelperMessage {
    /// Encoding: report count, bitmap of reports still in, then 3 + 1 field elements each.
    pub fn encode(&self) -> Vec<u8> {
        encode_marked(&self.ok, &[(&self.sketch, 3), (&self.round2, 1)])
    }

    /// Decodes for `param`.
    pub fn decode(
        poplar: &Poplar1,
        param: &AggregationParam,
        bytes: &[u8],
    ) -> Result<Self, VdafError> {
        let is_leaf = poplar.is_leaf(param.level());
        let (ok, mut vecs) = decode_marked(is_leaf, &[3, 1], bytes, "helper message")?;
        let round2 = vecs
            .pop()
            .ok_or(VdafError::StateMismatch("missing vector"))?;
        let sketch = vecs
            .pop()
            .ok_or(VdafError::StateMismatch("missing vector"))?;
        Ok(Self { ok, sketch, round2 })
    }
}

impl fmt::Debug for Round1Shares {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "Round1Shares({} reports)", self.ok.len())
    }
}

impl fmt::Debug for HelperMessage {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "HelperMessage({} reports)", self.ok.len())
    }
}

// ---------------------------------------------------------------------------------------------
// The state machine
// ---------------------------------------------------------------------------------------------

/// Reports evaluated together by one worker: at the leaf level, the verification randomness
/// of a group comes from one 4-way Keccak permutation per 168 bytes of each stream.
const GROUP: usize = 4;

/// One group of reports with their cache entries and result slots.
struct Group<'g, 'r> {
    reports: &'g [ReportShare<'r>],
    entries: &'g mut [Option<Box<CacheEntry>>],
    slots: &'g mut [Option<InitSlot>],
}

/// Per-worker buffers, reused from group to group. The values are secret: zeroized on drop.
#[derive(Default)]
struct GroupScratch {
    scratch: EvalScratch,
    walks: [LeafWalk; GROUP],
    /// One chunk of verification randomness per report of the group.
    rs: Vec<Field255>,
    /// One chunk of leaf values per report of the group, in blocks of eight
    /// ([`LeafWalk::next_blocks`]); wiped on drop.
    blocks: Vec<LeafBlock>,
    /// This worker's sum of the leaf output shares, block by block (candidate `i` in lane
    /// `i % 8` of `acc_blocks[i / 8]`, limb-major), added to its accumulator once at the end
    /// ([`Self::flush_into`]).
    acc_blocks: Vec<[[u64; 8]; 4]>,
}

impl GroupScratch {
    /// Adds the block sums into `acc` (the worker's accumulator) and clears them.
    fn flush_into(&mut self, acc: &mut FieldVec) {
        if let FieldVec::Leaf(acc) = acc {
            for (i, a) in acc.iter_mut().enumerate() {
                let Some(block) = self.acc_blocks.get(i / 8) else {
                    break;
                };
                *a += Field255::from_reduced_limbs(core::array::from_fn(|j| block[j][i % 8]));
            }
        }
        self.acc_blocks.zeroize();
        self.acc_blocks.clear();
    }
}

impl Drop for GroupScratch {
    fn drop(&mut self) {
        self.acc_blocks.zeroize();
    }
}

/// Per-report result of `verify_init` inside the batch.
struct InitSlot {
    decoded: Option<Decoded>,
    ab: [FieldElem; 2],
    sketch: [FieldElem; 3],
}

/// A field element of either field (per-report scalars in the batch state).
#[derive(Clone, Copy)]
enum FieldElem {
    Inner(Field64),
    Leaf(Field255),
}

/// What one aggregator carries between the aggregations of a heavy-hitter walk over the same
/// reports (one aggregation per level): per report, the decoded shares, the node keys, the
/// IDPF nodes at the previous level's candidates and the correlated-randomness stream. The
/// next level then walks one tree depth per report instead of all of them from the root.
///
/// Bounded: after each call it holds exactly the reports of that call's batch, each with the
/// nodes of that call's candidates (memory proportional to reports x candidates). A report is
/// matched by nonce *and* by its exact share bytes; anything else is evaluated from scratch,
/// so a stale or foreign cache only costs time. Holds secrets: zeroized on drop.
#[derive(Default)]
pub struct BatchCache {
    agg_id: Option<u8>,
    ctx: Vec<u8>,
    /// The last inner aggregation parameter evaluated with this cache.
    last: Option<AggregationParam>,
    entries: HashMap<[u8; NONCE_SIZE], Box<CacheEntry>>,
}

impl fmt::Debug for BatchCache {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("BatchCache")
            .field("reports", &self.entries.len())
            .finish_non_exhaustive()
    }
}

impl BatchCache {
    /// An empty cache.
    pub fn new() -> Self {
        Self::default()
    }

    /// Number of reports held.
    pub fn len(&self) -> usize {
        self.entries.len()
    }

    /// `true` if no report is held.
    pub fn is_empty(&self) -> bool {
        self.entries.is_empty()
    }
}

struct CacheEntry {
    public_bytes: Vec<u8>,
    input_bytes: Vec<u8>,
    shares: Arc<(PublicShare, InputShare)>,
    walk: WalkState,
}

impl Poplar1 {
    /// Step 1, both aggregators: decodes and evaluates every report (the draft's
    /// `verify_init`), in parallel. Reports that do not decode are marked, not fatal.
    pub fn batch_init(
        &self,
        verify_key: &[u8; VERIFY_KEY_SIZE],
        ctx: &[u8],
        agg_id: usize,
        param: &AggregationParam,
        reports: &[ReportShare<'_>],
    ) -> Result<(BatchState, Round1Shares), VdafError> {
        self.batch_init_inner(verify_key, ctx, agg_id, param, reports, None)
    }

    /// [`Self::batch_init`] for one level of a walk over the same reports: uses and updates
    /// `cache` (see [`BatchCache`]); results are identical to `batch_init`.
    pub fn batch_init_cached(
        &self,
        verify_key: &[u8; VERIFY_KEY_SIZE],
        ctx: &[u8],
        agg_id: usize,
        param: &AggregationParam,
        reports: &[ReportShare<'_>],
        cache: &mut BatchCache,
    ) -> Result<(BatchState, Round1Shares), VdafError> {
        self.batch_init_inner(verify_key, ctx, agg_id, param, reports, Some(cache))
    }

    fn batch_init_inner(
        &self,
        verify_key: &[u8; VERIFY_KEY_SIZE],
        ctx: &[u8],
        agg_id: usize,
        param: &AggregationParam,
        reports: &[ReportShare<'_>],
        mut cache: Option<&mut BatchCache>,
    ) -> Result<(BatchState, Round1Shares), VdafError> {
        if agg_id > 1 {
            return Err(VdafError::InvalidAggregatorId(agg_id));
        }
        check_ctx(ctx)?;
        self.check_agg_param(param)?;
        let is_leaf = self.is_leaf(param.level());
        let n_prefixes = param.prefixes().len();
        let level = usize::from(param.level());
        let tree = PrefixTree::new(level, param.prefixes());

        // Take the cached entries of this batch's reports out of the cache.
        let mut entries: Vec<Option<Box<CacheEntry>>> = Vec::with_capacity(reports.len());
        entries.resize_with(reports.len(), || None);
        let mut resumed = None;
        if let Some(c) = cache.as_deref_mut() {
            if c.agg_id != Some(agg_id as u8) || c.ctx != ctx {
                *c = BatchCache {
                    agg_id: Some(agg_id as u8),
                    ctx: ctx.to_vec(),
                    ..BatchCache::default()
                };
            }
            for (e, r) in entries.iter_mut().zip(reports) {
                *e = c.entries.remove(&r.nonce);
            }
            c.entries.clear();
            resumed = c.last.as_ref().and_then(|last| {
                PrefixTree::resume(
                    usize::from(last.level()),
                    last.prefixes(),
                    level,
                    param.prefixes(),
                )
            });
        }
        let caching = cache.is_some();
        let ev = ReportEval {
            poplar: self,
            verify_key,
            ctx,
            param,
            tree: &tree,
            resumed: resumed.as_ref(),
        };

        // Evaluate all reports, in groups of GROUP; each worker sums output shares into its
        // own accumulator.
        let mut slots: Vec<Option<InitSlot>> = Vec::with_capacity(reports.len());
        slots.resize_with(reports.len(), || None);
        let provisional = slots
            .par_chunks_mut(GROUP)
            .zip(entries.par_chunks_mut(GROUP))
            .zip(reports.par_chunks(GROUP))
            .fold(
                || (GroupScratch::default(), FieldVec::zero(is_leaf, n_prefixes)),
                |(mut scratch, mut acc), ((slots, entries), reports)| {
                    let group = Group {
                        reports,
                        entries,
                        slots,
                    };
                    self.init_group(&ev, agg_id as u8, group, caching, &mut scratch, &mut acc);
                    (scratch, acc)
                },
            )
            .map(|(mut scratch, mut acc)| {
                scratch.flush_into(&mut acc);
                acc
            })
            .reduce_with(|mut a, b| {
                // Both accumulators have the same field and length by construction.
                let _ = a.add_assign(&b);
                a
            })
            .unwrap_or_else(|| FieldVec::zero(is_leaf, n_prefixes));

        // Put the updated entries back (only this batch's reports stay).
        if let Some(c) = cache {
            for (e, r) in entries.into_iter().zip(reports) {
                if let Some(e) = e {
                    c.entries.insert(r.nonce, e);
                }
            }
            c.last = (!is_leaf).then(|| param.clone());
        }

        // Flatten the per-report scalars.
        let n = reports.len();
        let mut ab = FieldVec::zero(is_leaf, 2 * n);
        let mut sketch = FieldVec::zero(is_leaf, 3 * n);
        let mut ok = vec![false; n];
        let mut decoded = Vec::with_capacity(n);
        for (i, slot) in slots.into_iter().enumerate() {
            match slot {
                Some(s) => {
                    ok[i] = true;
                    put(&mut ab, 2 * i, &s.ab);
                    put(&mut sketch, 3 * i, &s.sketch);
                    decoded.push(s.decoded);
                }
                None => decoded.push(None),
            }
        }
        let shares = Round1Shares {
            ok,
            shares: sketch.clone(),
        };
        let state = BatchState {
            agg_id: agg_id as u8,
            param: param.clone(),
            is_leaf,
            verify_key: *verify_key,
            ctx: ctx.to_vec(),
            tree,
            reports: decoded,
            ab,
            sketch,
            provisional,
        };
        Ok((state, shares))
    }

    /// `verify_init` of a group of reports: one at a time at an inner level; at the leaf
    /// level together ([`Self::init_leaf_group`]).
    fn init_group(
        &self,
        ev: &ReportEval<'_>,
        agg_id: u8,
        group: Group<'_, '_>,
        caching: bool,
        scratch: &mut GroupScratch,
        acc: &mut FieldVec,
    ) {
        if self.is_leaf(ev.param.level()) {
            return self.init_leaf_group(ev, agg_id, group, caching, scratch);
        }
        let Group {
            reports,
            entries,
            slots,
        } = group;
        for ((slot, entry), report) in slots.iter_mut().zip(entries.iter_mut()).zip(reports) {
            let cached = entry.take();
            let (s, e) = self.init_one(
                ev,
                agg_id,
                report,
                cached,
                caching,
                &mut scratch.scratch,
                acc,
            );
            *slot = s;
            *entry = e;
        }
    }

    /// The cache entry for `report`: `cached` if it holds exactly this report's bytes, else
    /// the report decoded afresh (`None` if it does not decode).
    fn entry_for(
        &self,
        ev: &ReportEval<'_>,
        agg_id: u8,
        report: &ReportShare<'_>,
        cached: Option<Box<CacheEntry>>,
        caching: bool,
    ) -> Option<Box<CacheEntry>> {
        match cached {
            Some(e)
                if e.public_bytes == report.public_share && e.input_bytes == report.input_share =>
            {
                Some(e)
            }
            _ => {
                let public_share = self.decode_public_share(report.public_share).ok()?;
                let input_share = self
                    .decode_input_share(usize::from(agg_id), report.input_share)
                    .ok()?;
                let keep = |b: &[u8]| if caching { b.to_vec() } else { Vec::new() };
                Some(Box::new(CacheEntry {
                    public_bytes: keep(report.public_share),
                    input_bytes: keep(report.input_share),
                    shares: Arc::new((public_share, input_share)),
                    walk: WalkState::new(ev.ctx, &report.nonce),
                }))
            }
        }
    }

    /// `verify_init` of one report; adds its output share to `acc`. `None` if it does not
    /// decode. Uses `cached` if it holds exactly this report's shares; returns the entry to
    /// keep when `caching`.
    #[allow(clippy::too_many_arguments)]
    fn init_one(
        &self,
        ev: &ReportEval<'_>,
        agg_id: u8,
        report: &ReportShare<'_>,
        cached: Option<Box<CacheEntry>>,
        caching: bool,
        scratch: &mut EvalScratch,
        acc: &mut FieldVec,
    ) -> (Option<InitSlot>, Option<Box<CacheEntry>>) {
        let Some(mut entry) = self.entry_for(ev, agg_id, report, cached, caching) else {
            return (None, None);
        };
        // The entry's walk state holds this report's node keys, derived once.
        let resume = entry.walk.nodes.is_some();
        let walk = Some(&mut entry.walk);
        let (public_share, input_share) = &*entry.shares;
        let result = ev.init(
            agg_id,
            &report.nonce,
            &public_share.0,
            input_share,
            walk,
            resume,
            scratch,
        );
        // An evaluation error here means inconsistent internal state: drop the report.
        let Ok((state, share)) = result else {
            return (None, None);
        };
        let (ab, out) = state.parts();
        // Same field and length by construction (ReportEval follows the level).
        let _ = acc.add_assign(out);
        let decoded = Decoded {
            nonce: report.nonce,
            shares: Arc::clone(&entry.shares),
        };
        let slot = InitSlot {
            ab: elems2(ab),
            sketch: elems3(&share.0),
            decoded: Some(decoded),
        };
        (Some(slot), caching.then_some(entry))
    }

    /// `verify_init` at the leaf level for up to [`GROUP`] reports together: each report's
    /// inner depths are walked, then the leaf values of all of them are produced chunk by
    /// chunk, with the reports' verification-randomness streams read in lockstep (one 4-way
    /// permutation per 168 bytes of each) and the sketches and the output-share sums (the
    /// worker's, in `gs`) updated per chunk. Same results as [`Self::init_one`] on each
    /// report.
    fn init_leaf_group(
        &self,
        ev: &ReportEval<'_>,
        agg_id: u8,
        group: Group<'_, '_>,
        caching: bool,
        gs: &mut GroupScratch,
    ) {
        let Group {
            reports,
            entries,
            slots,
        } = group;
        // Decode each report and walk its inner depths.
        let mut live = Vec::with_capacity(GROUP);
        for (i, report) in reports.iter().enumerate().take(GROUP) {
            let Some(mut entry) = self.entry_for(ev, agg_id, report, entries[i].take(), caching)
            else {
                continue;
            };
            let tree = ev.tree_for(entry.walk.nodes.is_some());
            let nodes = entry.walk.nodes.take();
            let (public_share, input_share) = &*entry.shares;
            let started = gs.walks[live.len()].start(
                agg_id,
                &public_share.0,
                &input_share.idpf_key,
                &entry.walk.keys,
                tree,
                nodes.as_ref(),
                &mut gs.scratch,
            );
            // An evaluation error means inconsistent internal state: drop the report.
            if started.is_ok() {
                live.push((i, entry, tree));
            }
        }
        let readers = live
            .iter()
            .map(|(i, _, _)| ev.verify_xof(&reports[*i].nonce).into_reader())
            .collect();
        let mut streams = StreamsX4::new(readers);

        gs.rs.resize(GROUP * LEAF_CHUNK, Field255::ZERO);
        // Leaf values in blocks of eight, the layout they are computed in with AVX-512 and
        // the one the sketch reads.
        gs.blocks
            .resize(GROUP * LEAF_CHUNK / 8, LeafBlock::default());
        let mut sums: [SketchSums255; GROUP] = Default::default();
        let mut offsets = [0usize; GROUP];
        loop {
            let mut got = [0usize; GROUP];
            let blocks = gs.blocks.chunks_exact_mut(LEAF_CHUNK / 8);
            for (k, ((_, entry, tree), blocks)) in live.iter().zip(blocks).enumerate() {
                let (ps, keys) = (&entry.shares.0.0, &entry.walk.keys);
                got[k] = gs.walks[k].next_blocks(agg_id, ps, keys, tree, blocks);
            }
            if got.iter().all(|g| *g == 0) {
                break;
            }
            let mut rs = gs.rs.chunks_exact_mut(LEAF_CHUNK);
            let mut outs: [&mut [Field255]; GROUP] = core::array::from_fn(|k| {
                let chunk = rs.next().unwrap_or_default();
                &mut chunk[..got[k]]
            });
            streams.next_vecs(&mut outs);
            for k in 0..live.len() {
                let blocks = &gs.blocks[k * LEAF_CHUNK / 8..(k + 1) * LEAF_CHUNK / 8];
                sums[k].add_blocks(blocks, outs[k]);
                // Chunks start at multiples of LEAF_CHUNK (`next_blocks`), so block b of the
                // chunk is block offset / 8 + b of the level.
                debug_assert_eq!(offsets[k] % 8, 0);
                let first = offsets[k] / 8;
                let end = first + got[k].div_ceil(8);
                if gs.acc_blocks.len() < end {
                    gs.acc_blocks.resize(end, [[0; 8]; 4]);
                }
                for (a, b) in gs.acc_blocks[first..end].iter_mut().zip(blocks) {
                    field512::add_first_values(a, b);
                }
                offsets[k] += got[k];
            }
        }

        for (k, (i, entry, _)) in live.into_iter().enumerate() {
            let input_share = &entry.shares.1;
            let abc = ev.leaf_abc(agg_id, &reports[i].nonce, input_share);
            let sums = sums[k].finish();
            let sketch: [Field255; 3] = core::array::from_fn(|j| sums[j] + abc[j]);
            slots[i] = Some(InitSlot {
                ab: input_share.corr_leaf.map(FieldElem::Leaf),
                sketch: sketch.map(FieldElem::Leaf),
                decoded: Some(Decoded {
                    nonce: reports[i].nonce,
                    shares: Arc::clone(&entry.shares),
                }),
            });
            entries[i] = caching.then_some(entry);
        }
    }

    /// Step 2, helper: combines the leader's round-1 shares with its own into the round-1
    /// verifier messages, and computes its round-2 shares.
    pub fn helper_continue(
        &self,
        state: &mut BatchState,
        leader: &Round1Shares,
    ) -> Result<HelperMessage, VdafError> {
        if state.agg_id != 1 {
            return Err(VdafError::StateMismatch(
                "helper_continue runs on the helper",
            ));
        }
        check_len(state.len(), leader.ok.len())?;
        check_field(state.is_leaf, &leader.shares)?;
        let n = state.len();
        let ok: Vec<bool> = (0..n)
            .map(|i| leader.ok[i] && state.reports[i].is_some())
            .collect();
        let mut sketch = state.sketch.clone();
        sketch.add_assign(&leader.shares)?;
        let round2 = round2_shares(1, &state.ab, &sketch, &ok);
        Ok(HelperMessage { ok, sketch, round2 })
    }

    /// Step 3, leader: computes its round-2 shares from the helper's messages, decides every
    /// report, and finishes its aggregate share. Returns the verdicts to send to the helper.
    pub fn leader_finish(
        &self,
        state: BatchState,
        helper: &HelperMessage,
    ) -> Result<(BatchOutcome, Verdicts), VdafError> {
        if state.agg_id != 0 {
            return Err(VdafError::StateMismatch("leader_finish runs on the leader"));
        }
        check_len(state.len(), helper.ok.len())?;
        check_field(state.is_leaf, &helper.sketch)?;
        let n = state.len();
        if (0..n).any(|i| helper.ok[i] && state.reports[i].is_none()) {
            return Err(VdafError::StateMismatch(
                "helper kept a report the leader rejected",
            ));
        }
        let own = round2_shares(0, &state.ab, &helper.sketch, &helper.ok);
        let verdicts: Vec<Verdict> = (0..n)
            .map(|i| {
                if state.reports[i].is_none() {
                    Verdict::Rejected(RejectReason::LeaderDecode)
                } else if !helper.ok[i] {
                    Verdict::Rejected(RejectReason::HelperDecode)
                } else if sum_is_zero(&own, &helper.round2, i) {
                    Verdict::Accepted
                } else {
                    Verdict::Rejected(RejectReason::VerifyFailed)
                }
            })
            .collect();
        let outcome = self.finish(state, &verdicts)?;
        Ok((outcome, Verdicts(verdicts)))
    }

    /// Step 4, helper: applies the leader's verdicts and finishes its aggregate share.
    pub fn helper_finish(
        &self,
        state: BatchState,
        verdicts: &Verdicts,
    ) -> Result<BatchOutcome, VdafError> {
        if state.agg_id != 1 {
            return Err(VdafError::StateMismatch("helper_finish runs on the helper"));
        }
        check_len(state.len(), verdicts.0.len())?;
        if (0..state.len())
            .any(|i| state.reports[i].is_none() && verdicts.0[i] == Verdict::Accepted)
        {
            return Err(VdafError::StateMismatch(
                "leader accepted a report the helper rejected",
            ));
        }
        self.finish(state, &verdicts.0)
    }

    /// Subtracts the output shares of reports rejected after `verify_init` (evaluated again)
    /// from the provisional sum.
    fn finish(
        &self,
        mut state: BatchState,
        verdicts: &[Verdict],
    ) -> Result<BatchOutcome, VdafError> {
        let late: Vec<&Decoded> = state
            .reports
            .iter()
            .zip(verdicts)
            .filter_map(|(d, v)| match (d, v) {
                (Some(d), Verdict::Rejected(_)) => Some(d),
                _ => None,
            })
            .collect();
        let ev = ReportEval {
            poplar: self,
            verify_key: &state.verify_key,
            ctx: &state.ctx,
            param: &state.param,
            tree: &state.tree,
            resumed: None,
        };
        let mut aggregate = std::mem::replace(&mut state.provisional, FieldVec::Inner(Vec::new()));
        let mut scratch = EvalScratch::default();
        for d in late {
            let (st, _) = ev.init(
                state.agg_id,
                &d.nonce,
                &d.shares.0.0,
                &d.shares.1,
                None,
                false,
                &mut scratch,
            )?;
            let (_, out) = st.parts();
            aggregate.sub_assign(out)?;
        }
        let accepted = verdicts.iter().filter(|v| **v == Verdict::Accepted).count();
        Ok(BatchOutcome {
            verdicts: verdicts.to_vec(),
            aggregate: AggregateShare(aggregate),
            accepted,
        })
    }

    /// Both aggregators in one process over one batch: for tests, benchmarks and the
    /// accuracy simulation of the search.
    pub fn prepare_batch_local(
        &self,
        verify_key: &[u8; VERIFY_KEY_SIZE],
        ctx: &[u8],
        param: &AggregationParam,
        reports: &[LocalReport<'_>],
    ) -> Result<LocalOutcome, VdafError> {
        self.prepare_batch_local_inner(verify_key, ctx, param, reports, None)
    }

    /// [`Self::prepare_batch_local`] for one level of a walk, with each aggregator's
    /// [`BatchCache`] (leader's, helper's).
    pub fn prepare_batch_local_cached(
        &self,
        verify_key: &[u8; VERIFY_KEY_SIZE],
        ctx: &[u8],
        param: &AggregationParam,
        reports: &[LocalReport<'_>],
        caches: &mut [BatchCache; 2],
    ) -> Result<LocalOutcome, VdafError> {
        self.prepare_batch_local_inner(verify_key, ctx, param, reports, Some(caches))
    }

    fn prepare_batch_local_inner(
        &self,
        verify_key: &[u8; VERIFY_KEY_SIZE],
        ctx: &[u8],
        param: &AggregationParam,
        reports: &[LocalReport<'_>],
        caches: Option<&mut [BatchCache; 2]>,
    ) -> Result<LocalOutcome, VdafError> {
        let side = |agg: usize| -> Vec<ReportShare<'_>> {
            reports
                .iter()
                .map(|r| ReportShare {
                    nonce: r.nonce,
                    public_share: r.public_share,
                    input_share: r.input_shares[agg],
                })
                .collect()
        };
        let (leader, helper) = (side(0), side(1));
        let (c0, c1) = match caches {
            Some([c0, c1]) => (Some(c0), Some(c1)),
            None => (None, None),
        };
        let (leader_state, leader_msg) =
            self.batch_init_inner(verify_key, ctx, 0, param, &leader, c0)?;
        let (mut helper_state, _) =
            self.batch_init_inner(verify_key, ctx, 1, param, &helper, c1)?;
        let helper_msg = self.helper_continue(&mut helper_state, &leader_msg)?;
        let (leader_out, verdicts) = self.leader_finish(leader_state, &helper_msg)?;
        let helper_out = self.helper_finish(helper_state, &verdicts)?;
        Ok(LocalOutcome {
            verdicts: leader_out.verdicts,
            accepted: leader_out.accepted,
            aggregates: [leader_out.aggregate, helper_out.aggregate],
        })
    }
}

fn check_len(expected: usize, got: usize) -> Result<(), VdafError> {
    if expected != got {
        return Err(VdafError::BatchLengthMismatch { expected, got });
    }
    Ok(())
}

fn check_field(is_leaf: bool, v: &FieldVec) -> Result<(), VdafError> {
    match (is_leaf, v) {
        (false, FieldVec::Inner(_)) | (true, FieldVec::Leaf(_)) => Ok(()),
        _ => Err(VdafError::StateMismatch("message of the other field")),
    }
}

/// Round-2 shares `A * s0 + B (+ s0^2 - s1 - s2 for the helper)` for every kept report.
fn round2_shares(agg_id: u8, ab: &FieldVec, sketch: &FieldVec, ok: &[bool]) -> FieldVec {
    fn go<F: FieldElement>(agg_id: u8, ab: &[F], s: &[F], ok: &[bool]) -> Vec<F> {
        ok.iter()
            .enumerate()
            .map(|(i, &keep)| {
                if !keep {
                    return F::ZERO;
                }
                let (a, b) = (ab[2 * i], ab[2 * i + 1]);
                let s = &s[3 * i..3 * i + 3];
                let mut v = a * s[0] + b;
                if agg_id == 1 {
                    v += s[0] * s[0] - s[1] - s[2];
                }
                v
            })
            .collect()
    }
    match (ab, sketch) {
        (FieldVec::Inner(ab), FieldVec::Inner(s)) => FieldVec::Inner(go(agg_id, ab, s, ok)),
        (FieldVec::Leaf(ab), FieldVec::Leaf(s)) => FieldVec::Leaf(go(agg_id, ab, s, ok)),
        // check_field ran before; a mismatch keeps every report out.
        _ => FieldVec::Inner(vec![Field64::ONE; ok.len()]),
    }
}

fn sum_is_zero(a: &FieldVec, b: &FieldVec, i: usize) -> bool {
    match (a, b) {
        (FieldVec::Inner(a), FieldVec::Inner(b)) => (a[i] + b[i]).ct_eq(&Field64::ZERO).into(),
        (FieldVec::Leaf(a), FieldVec::Leaf(b)) => (a[i] + b[i]).ct_eq(&Field255::ZERO).into(),
        _ => false,
    }
}

fn put(v: &mut FieldVec, at: usize, elems: &[FieldElem]) {
    for (j, e) in elems.iter().enumerate() {
        match (&mut *v, e) {
            (FieldVec::Inner(x), FieldElem::Inner(e)) => x[at + j] = *e,
            (FieldVec::Leaf(x), FieldElem::Leaf(e)) => x[at + j] = *e,
            _ => {}
        }
    }
}

fn elem(v: &FieldVec, i: usize) -> FieldElem {
    match v {
        FieldVec::Inner(x) => FieldElem::Inner(x[i]),
        FieldVec::Leaf(x) => FieldElem::Leaf(x[i]),
    }
}

fn elems2(v: &FieldVec) -> [FieldElem; 2] {
    [elem(v, 0), elem(v, 1)]
}

fn elems3(v: &FieldVec) -> [FieldElem; 3] {
    [elem(v, 0), elem(v, 1), elem(v, 2)]
}
