//! Differential tests against the `prio` crate 0.18.1 (its Poplar1 implements VDAF-18):
//! reports sharded by us and prepared by prio, and the reverse, give identical verifier
//! shares, verifier messages, output shares, aggregates and results; corrupted reports (a
//! correction word, the public share, the correlated randomness) are rejected by both.
//!
//! Sizes stay small (a few reports per width) so the suite is quick on two cores.

use hotspot_vdaf::{
    AggregationParam, LocalReport, Poplar1, RejectReason, Verdict, VerifyTransition,
};
use prio::codec::{Decode, Encode, ParameterizedDecode};
use prio::idpf::IdpfInput;
use prio::vdaf::poplar1::{
    Poplar1 as PrioPoplar1, Poplar1AggregationParam, Poplar1InputShare, Poplar1PublicShare,
};
use prio::vdaf::xof::XofTurboShake128;
use prio::vdaf::{Aggregator, Client, Collector, VerifyTransition as PrioTransition};
use rand::rngs::StdRng;
use rand::{RngExt, SeedableRng};

type Prio = PrioPoplar1<XofTurboShake128, 32>;
const CTX: &[u8] = b"hotspot differential test";

/// One encoded report: nonce, public share, input shares.
struct Report {
    nonce: [u8; 16],
    public: Vec<u8>,
    inputs: [Vec<u8>; 2],
}

fn bits_of(m: u64, bits: usize) -> Vec<bool> {
    (0..bits).map(|i| (m >> (bits - 1 - i)) & 1 == 1).collect()
}

fn shard_ours(poplar: &Poplar1, m: u64, rng: &mut StdRng) -> Report {
    let nonce: [u8; 16] = rng.random();
    let mut rand = [0u8; 128];
    rng.fill(&mut rand[..]);
    let (public, inputs) = poplar
        .shard_with_rand(CTX, m, &nonce, &rand)
        .expect("shard");
    Report {
        nonce,
        public: public.encode(),
        inputs: [inputs[0].encode(), inputs[1].encode()],
    }
}

fn shard_prio(prio: &Prio, bits: usize, m: u64, rng: &mut StdRng) -> Report {
    let nonce: [u8; 16] = rng.random();
    let input = IdpfInput::from_bools(&bits_of(m, bits));
    let (public, inputs) = prio.shard(CTX, &input, &nonce).expect("prio shard");
    Report {
        nonce,
        public: public.get_encoded().expect("encode"),
        inputs: [
            inputs[0].get_encoded().expect("encode"),
            inputs[1].get_encoded().expect("encode"),
        ],
    }
}

/// A random aggregation parameter at a random level whose candidates include the prefixes
/// of the measurements and some random others.
fn random_param(bits: usize, measurements: &[u64], rng: &mut StdRng) -> AggregationParam {
    let level = rng.random_range(0..bits) as u16;
    let width = u32::from(level) + 1;
    let mask = if width == 64 {
        u64::MAX
    } else {
        (1u64 << width) - 1
    };
    let mut prefixes: Vec<u64> = measurements
        .iter()
        .map(|m| m >> (bits as u32 - width))
        .collect();
    for _ in 0..4 {
        prefixes.push(rng.random::<u64>() & mask);
    }
    prefixes.sort_unstable();
    prefixes.dedup();
    AggregationParam::new(level, prefixes).expect("valid parameter")
}

/// Prepares one report with prio, returning every intermediate encoding, or `None` if prio
/// rejects it.
fn prepare_prio(prio: &Prio, key: &[u8; 32], param: &[u8], r: &Report) -> Option<Vec<Vec<u8>>> {
    let param = Poplar1AggregationParam::get_decoded(param).expect("prio decodes our parameter");
    let public = Poplar1PublicShare::get_decoded_with_param(prio, &r.public).ok()?;
    let mut states = Vec::new();
    let mut shares = Vec::new();
    let mut trace = Vec::new();
    for agg in 0..2 {
        let input = Poplar1InputShare::get_decoded_with_param(&(prio, agg), &r.inputs[agg]).ok()?;
        let (st, sh) = prio
            .verify_init(key, CTX, agg, &param, &r.nonce, &public, &input)
            .ok()?;
        trace.push(sh.get_encoded().expect("encode"));
        states.push(st);
        shares.push(sh);
    }
    let msg = prio.verifier_shares_to_message(CTX, &param, shares).ok()?;
    trace.push(msg.get_encoded().expect("encode"));
    let mut round2 = Vec::new();
    let mut next_states = Vec::new();
    for st in states {
        match prio.verify_next(CTX, st, msg.clone()).ok()? {
            PrioTransition::Continue(st, sh) => {
                trace.push(sh.get_encoded().expect("encode"));
                next_states.push(st);
                round2.push(sh);
            }
            PrioTransition::Finish(_) => return None,
        }
    }
    let msg = prio.verifier_shares_to_message(CTX, &param, round2).ok()?;
    for st in next_states {
        match prio.verify_next(CTX, st, msg.clone()).ok()? {
            PrioTransition::Finish(out) => trace.push(out.get_encoded().expect("encode")),
            PrioTransition::Continue(..) => return None,
        }
    }
    Some(trace)
}

/// The same trace with our single-report functions.
fn prepare_ours(
    poplar: &Poplar1,
    key: &[u8; 32],
    param: &AggregationParam,
    r: &Report,
) -> Option<Vec<Vec<u8>>> {
    let public = poplar.decode_public_share(&r.public).ok()?;
    let mut states = Vec::new();
    let mut shares = Vec::new();
    let mut trace = Vec::new();
    for agg in 0..2 {
        let input = poplar.decode_input_share(agg, &r.inputs[agg]).ok()?;
        let (st, sh) = poplar
            .verify_init(key, CTX, agg, param, &r.nonce, &public, &input)
            .ok()?;
        trace.push(sh.encode());
        states.push(st);
        shares.push(sh);
    }
    let [s0, s1]: [_; 2] = shares.try_into().ok()?;
    let msg = poplar
        .verifier_shares_to_message(CTX, param, [s0, s1])
        .ok()?;
    trace.push(msg.encode());
    let mut round2 = Vec::new();
    let mut next_states = Vec::new();
    for st in states {
        match poplar.verify_next(CTX, st, &msg).ok()? {
            VerifyTransition::Continue(st, sh) => {
                trace.push(sh.encode());
                next_states.push(st);
                round2.push(sh);
            }
            VerifyTransition::Finish(_) => return None,
        }
    }
    let [s0, s1]: [_; 2] = round2.try_into().ok()?;
    let msg = poplar
        .verifier_shares_to_message(CTX, param, [s0, s1])
        .ok()?;
    for st in next_states {
        match poplar.verify_next(CTX, st, &msg).ok()? {
            VerifyTransition::Finish(out) => trace.push(out.encode()),
            VerifyTransition::Continue(..) => return None,
        }
    }
    Some(trace)
}

fn local(reports: &[Report]) -> Vec<LocalReport<'_>> {
    reports
        .iter()
        .map(|r| LocalReport {
            nonce: r.nonce,
            public_share: &r.public,
            input_shares: [&r.inputs[0], &r.inputs[1]],
        })
        .collect()
}

/// Runs both implementations over `reports` and checks every message and the result.
fn check_same(bits: usize, reports: &[Report], measurements: &[u64], rng: &mut StdRng) {
    let poplar = Poplar1::new(bits).expect("bits");
    let prio = Prio::new_turboshake128(bits);
    let key: [u8; 32] = rng.random();
    let param = random_param(bits, measurements, rng);
    let param_bytes = param.encode();

    // Per report, every verifier share, message and output share agrees.
    let mut prio_outs = [Vec::new(), Vec::new()];
    for r in reports {
        let theirs = prepare_prio(&prio, &key, &param_bytes, r).expect("prio accepts");
        let ours = prepare_ours(&poplar, &key, &param, r).expect("we accept");
        assert_eq!(ours, theirs, "bits {bits}: per-report trace");
        prio_outs[0].push(theirs[theirs.len() - 2].clone());
        prio_outs[1].push(theirs[theirs.len() - 1].clone());
    }

    // Our batch engine's aggregate shares equal prio's aggregation of its output shares.
    let outcome = poplar
        .prepare_batch_local(&key, CTX, &param, &local(reports))
        .expect("batch");
    assert!(outcome.verdicts.iter().all(|v| *v == Verdict::Accepted));
    let prio_param = Poplar1AggregationParam::get_decoded(&param_bytes).expect("decode");
    let mut prio_aggs = Vec::new();
    for (agg, outs) in prio_outs.iter().enumerate() {
        let outs = outs.iter().map(|o| {
            prio::vdaf::poplar1::Poplar1FieldVec::get_decoded_with_param(&(&prio, &prio_param), o)
                .expect("decode output share")
        });
        let share = prio.aggregate(&prio_param, outs).expect("prio aggregate");
        assert_eq!(
            outcome.aggregates[agg].encode(),
            share.get_encoded().expect("encode")
        );
        prio_aggs.push(share);
    }
    let theirs = prio
        .unshard(&prio_param, prio_aggs, reports.len())
        .expect("prio unshard");
    let ours = poplar
        .unshard(
            &param,
            [&outcome.aggregates[0], &outcome.aggregates[1]],
            reports.len(),
        )
        .expect("unshard");
    assert_eq!(ours, theirs, "bits {bits}: counts");
    let shift = bits as u32 - (u32::from(param.level()) + 1);
    let plain: Vec<u64> = param
        .prefixes()
        .iter()
        .map(|p| measurements.iter().filter(|m| *m >> shift == *p).count() as u64)
        .collect();
    assert_eq!(ours, plain, "bits {bits}: counts equal the plaintext count");
}

fn measurements(bits: usize, n: usize, rng: &mut StdRng) -> Vec<u64> {
    let mask = if bits == 64 {
        u64::MAX
    } else {
        (1u64 << bits) - 1
    };
    let pool: Vec<u64> = (0..3).map(|_| rng.random::<u64>() & mask).collect();
    (0..n)
        .map(|i| {
            if i % 2 == 0 {
                pool[i % 3]
            } else {
                rng.random::<u64>() & mask
            }
        })
        .collect()
}

#[test]
fn our_reports_prepared_by_prio_match() {
    let mut rng = StdRng::seed_from_u64(1);
    for bits in [4, 16, 32, 64] {
        let poplar = Poplar1::new(bits).expect("bits");
        for _ in 0..2 {
            let ms = measurements(bits, 5, &mut rng);
            let reports: Vec<Report> = ms
                .iter()
                .map(|m| shard_ours(&poplar, *m, &mut rng))
                .collect();
            check_same(bits, &reports, &ms, &mut rng);
        }
    }
}

#[test]
fn prio_reports_prepared_by_us_match() {
    let mut rng = StdRng::seed_from_u64(2);
    for bits in [4, 16, 32, 64] {
        let prio = Prio::new_turboshake128(bits);
        for _ in 0..2 {
            let ms = measurements(bits, 5, &mut rng);
            let reports: Vec<Report> = ms
                .iter()
                .map(|m| shard_prio(&prio, bits, *m, &mut rng))
                .collect();
            check_same(bits, &reports, &ms, &mut rng);
        }
    }
}

/// Where a report is corrupted.
#[derive(Clone, Copy, Debug)]
enum Corruption {
    /// A byte of the level-0 correction-word seed.
    CorrectionWord,
    /// A byte of the correction value at the aggregated level (public share).
    PublicShareValue,
    /// A byte of the helper's correlated randomness (its `A` share at the level).
    CorrelatedRandomness,
}

fn corrupt(bits: usize, level: usize, r: &mut Report, how: Corruption) {
    let packed = (2 * bits).div_ceil(8);
    match how {
        Corruption::CorrectionWord => r.public[packed + 5] ^= 0x40,
        Corruption::PublicShareValue => {
            let values = packed + 16 * bits;
            let at = if level == bits - 1 {
                values + 16 * (bits - 1)
            } else {
                values + 16 * level
            };
            r.public[at + 2] ^= 0x11;
        }
        Corruption::CorrelatedRandomness => {
            let at = if level == bits - 1 {
                48 + 16 * (bits - 1)
            } else {
                48 + 16 * level
            };
            r.inputs[1][at + 2] ^= 0x11;
        }
    }
}

#[test]
fn corrupted_reports_are_rejected_by_both() {
    let mut rng = StdRng::seed_from_u64(3);
    for bits in [4, 16, 32, 64] {
        let poplar = Poplar1::new(bits).expect("bits");
        let prio = Prio::new_turboshake128(bits);
        let key: [u8; 32] = rng.random();
        for how in [
            Corruption::CorrectionWord,
            Corruption::PublicShareValue,
            Corruption::CorrelatedRandomness,
        ] {
            let m = measurements(bits, 1, &mut rng)[0];
            let param = random_param(bits, &[m], &mut rng);
            let level = usize::from(param.level());
            let mut good = shard_ours(&poplar, m, &mut rng);
            let honest = shard_ours(&poplar, m, &mut rng);
            corrupt(bits, level, &mut good, how);
            let bad = good;

            assert!(
                prepare_prio(&prio, &key, &param.encode(), &bad).is_none(),
                "prio: {how:?} bits {bits}"
            );
            assert!(
                prepare_ours(&poplar, &key, &param, &bad).is_none(),
                "ours: {how:?} bits {bits}"
            );
            let both = [bad, honest];
            let outcome = poplar
                .prepare_batch_local(&key, CTX, &param, &local(&both))
                .expect("batch");
            assert!(
                matches!(outcome.verdicts[0], Verdict::Rejected(_)),
                "batch: {how:?} bits {bits}"
            );
            assert_eq!(outcome.verdicts[1], Verdict::Accepted);
            let counts = poplar
                .unshard(&param, [&outcome.aggregates[0], &outcome.aggregates[1]], 1)
                .expect("unshard");
            let shift = bits - 1 - level;
            let expected: Vec<u64> = param
                .prefixes()
                .iter()
                .map(|p| u64::from(m >> shift == *p))
                .collect();
            assert_eq!(counts, expected, "only the honest report is counted");
        }
    }
}

#[test]
fn sketch_failure_is_reported_as_such() {
    let mut rng = StdRng::seed_from_u64(4);
    let poplar = Poplar1::new(16).expect("bits");
    let key: [u8; 32] = rng.random();
    let param = AggregationParam::new(15, vec![0x1234]).expect("param");
    let mut r = shard_ours(&poplar, 0x1234, &mut rng);
    corrupt(16, 15, &mut r, Corruption::CorrelatedRandomness);
    let outcome = poplar
        .prepare_batch_local(&key, CTX, &param, &local(&[r]))
        .expect("batch");
    assert_eq!(
        outcome.verdicts[0],
        Verdict::Rejected(RejectReason::VerifyFailed)
    );
}
