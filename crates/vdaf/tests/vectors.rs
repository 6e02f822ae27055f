//! Conformance: reproduces, byte for byte, every operation of every draft-irtf-cfrg-vdaf-18
//! test vector for Poplar1, IdpfBBCGGI21, XofTurboShake128 and XofFixedKeyAes128, including the
//! negative file (an operation marked as failing must fail with a typed error).
//!
//! Vectors are read from `$HOTSPOT_VECTORS/vdaf-18`, or `../shared/vectors/vdaf-18` beside the
//! workspace. With `HOTSPOT_VECTORS` set, a missing file fails the test instead of skipping.

use std::path::PathBuf;

use hotspot_vdaf::field::{Field64, Field255, FieldElement};
use hotspot_vdaf::xof::{XofFixedKeyAes128, XofTurboShake128};
use hotspot_vdaf::{
    AggregationParam, LocalReport, OutputShare, Poplar1, RejectReason, VdafError, Verdict,
    VerifierShare, VerifyState, VerifyTransition, idpf,
};
use serde_json::Value;

/// Files the conformance test must find (with `HOTSPOT_VECTORS` set).
const REQUIRED: &[&str] = &[
    "IdpfBBCGGI21_0.json",
    "Poplar1_0.json",
    "Poplar1_1.json",
    "Poplar1_2.json",
    "Poplar1_3.json",
    "Poplar1_4.json",
    "Poplar1_5.json",
    "Poplar1_bad_corr_inner.json",
    "XofFixedKeyAes128.json",
    "XofTurboShake128.json",
];

fn vector_dir() -> Option<PathBuf> {
    match std::env::var_os("HOTSPOT_VECTORS") {
        Some(dir) => Some(PathBuf::from(dir).join("vdaf-18")),
        None => {
            let dir =
                PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../../../shared/vectors/vdaf-18");
            dir.is_dir().then_some(dir)
        }
    }
}

/// Loads every vector file whose name starts with `prefix`; panics on a required file that is
/// missing when the vector location was given explicitly.
fn load(prefix: &str) -> Vec<(String, Value)> {
    let Some(dir) = vector_dir() else {
        eprintln!("vectors not found (set HOTSPOT_VECTORS); skipping {prefix}");
        return Vec::new();
    };
    for name in REQUIRED.iter().filter(|n| n.starts_with(prefix)) {
        assert!(
            dir.join(name).is_file(),
            "missing vector file {}",
            dir.join(name).display()
        );
    }
    let mut out = Vec::new();
    let entries = std::fs::read_dir(&dir).unwrap_or_else(|e| panic!("{}: {e}", dir.display()));
    for entry in entries {
        let path = entry.expect("directory entry").path();
        let name = path
            .file_name()
            .and_then(|n| n.to_str())
            .unwrap_or_default()
            .to_string();
        if name.starts_with(prefix) && name.ends_with(".json") {
            let text = std::fs::read_to_string(&path).expect("readable vector");
            out.push((name, serde_json::from_str(&text).expect("valid JSON")));
        }
    }
    out.sort_by(|a, b| a.0.cmp(&b.0));
    assert!(!out.is_empty(), "no {prefix} vectors in {}", dir.display());
    out
}

fn hex_of(v: &Value) -> Vec<u8> {
    hex::decode(v.as_str().expect("hex string")).expect("valid hex")
}

fn arr<const N: usize>(v: &Value) -> [u8; N] {
    hex_of(v).try_into().expect("fixed-size hex")
}

fn bools(v: &Value) -> Vec<bool> {
    v.as_array()
        .expect("bit array")
        .iter()
        .map(|b| b.as_bool().expect("bool"))
        .collect()
}

/// The draft's Field128 (p = 2^66 * 4611686018427387897 + 1), only for the XOF vectors'
/// `expanded_vec_field128`: rejection sampling on 16 little-endian bytes.
fn expand_field128(next16: &mut dyn FnMut() -> [u8; 16], length: usize) -> Vec<u8> {
    const P128: u128 = 340_282_366_920_938_462_946_865_773_367_900_766_209;
    let mut out = Vec::new();
    while out.len() < 16 * length {
        let b = next16();
        if u128::from_le_bytes(b) < P128 {
            out.extend_from_slice(&b);
        }
    }
    out
}

#[test]
fn xof_turboshake128_matches_vectors() {
    for (name, v) in load("XofTurboShake128") {
        let seed = hex_of(&v["seed"]);
        let (dst, binder) = (hex_of(&v["dst"]), hex_of(&v["binder"]));
        let xof = || {
            let mut x = XofTurboShake128::new(&seed, &[&dst]);
            x.update(&binder);
            x
        };
        let derived: [u8; 32] = xof().derive_seed();
        assert_eq!(
            derived.to_vec(),
            hex_of(&v["derived_seed"]),
            "{name}: derived_seed"
        );
        let mut stream = xof().into_stream();
        let length = v["length"].as_u64().expect("length") as usize;
        let mut next = || {
            let mut b = [0u8; 16];
            stream.fill(&mut b);
            b
        };
        let expanded = expand_field128(&mut next, length);
        assert_eq!(
            expanded,
            hex_of(&v["expanded_vec_field128"]),
            "{name}: expanded vec"
        );
    }
}

#[test]
fn xof_fixed_key_aes128_matches_vectors() {
    for (name, v) in load("XofFixedKeyAes128") {
        let seed: [u8; 16] = arr(&v["seed"]);
        let (dst, binder) = (hex_of(&v["dst"]), hex_of(&v["binder"]));
        let xof = XofFixedKeyAes128::new(&seed, &[&dst], &binder);
        let mut derived = [0u8; 16];
        xof.stream().fill(&mut derived);
        assert_eq!(
            derived.to_vec(),
            hex_of(&v["derived_seed"]),
            "{name}: derived_seed"
        );
        let mut stream = xof.stream();
        let length = v["length"].as_u64().expect("length") as usize;
        let mut next = || {
            let mut b = [0u8; 16];
            stream.fill(&mut b);
            b
        };
        let expanded = expand_field128(&mut next, length);
        assert_eq!(
            expanded,
            hex_of(&v["expanded_vec_field128"]),
            "{name}: expanded vec"
        );
    }
}

fn decimal<F: FieldElement>(v: &Value) -> F {
    F::from_u64(
        v.as_str()
            .expect("decimal string")
            .parse()
            .expect("small decimal"),
    )
}

#[test]
fn idpf_bbcggi21_key_gen_matches_vectors() {
    for (name, v) in load("IdpfBBCGGI21") {
        let alpha = bools(&v["alpha"]);
        let beta_inner: Vec<[Field64; 2]> = v["beta_inner"]
            .as_array()
            .expect("beta_inner")
            .iter()
            .map(|p| [decimal(&p[0]), decimal(&p[1])])
            .collect();
        let beta_leaf: [Field255; 2] = [decimal(&v["beta_leaf"][0]), decimal(&v["beta_leaf"][1])];
        let keys = [arr::<16>(&v["keys"][0]), arr::<16>(&v["keys"][1])];
        let (ctx, nonce) = (hex_of(&v["ctx"]), hex_of(&v["nonce"]));
        let (public, _) = idpf::key_gen(&alpha, &beta_inner, beta_leaf, &ctx, &nonce, &keys)
            .expect("key generation");
        assert_eq!(
            public.encode(),
            hex_of(&v["public_share"]),
            "{name}: public share"
        );
        let decoded = idpf::IdpfPublicShare::decode(alpha.len(), &public.encode()).expect("decode");
        assert!(decoded == public, "{name}: public share round trip");
    }
}

/// State of one report while the vector's operations run.
#[derive(Default)]
struct ReportRun {
    states: [Option<VerifyState>; 2],
    shares: [Option<VerifierShare>; 2],
    message: Option<hotspot_vdaf::VerifierMessage>,
    out: [Option<OutputShare>; 2],
}

#[test]
fn poplar1_matches_vectors_operation_by_operation() {
    for (name, v) in load("Poplar1") {
        run_poplar1_vector(&name, &v);
    }
}

fn run_poplar1_vector(name: &str, v: &Value) {
    let bits = v["bits"].as_u64().expect("bits") as usize;
    let poplar = Poplar1::new(bits).expect("bits");
    let ctx = hex_of(&v["ctx"]);
    let verify_key: [u8; 32] = arr(&v["verify_key"]);
    let param = AggregationParam::decode(&hex_of(&v["agg_param"])).expect("agg param");
    assert_eq!(
        param.encode(),
        hex_of(&v["agg_param"]),
        "{name}: agg param round trip"
    );
    let reports = v["reports"].as_array().expect("reports");
    let mut runs: Vec<ReportRun> = reports.iter().map(|_| ReportRun::default()).collect();

    for op in v["operations"].as_array().expect("operations") {
        let kind = op["operation"].as_str().expect("operation");
        let success = op["success"].as_bool().expect("success");
        let idx = op["report_index"].as_u64().map(|i| i as usize);
        let agg = op["aggregator_id"].as_u64().map(|i| i as usize);
        let round = op["round"].as_u64();
        let result = match kind {
            "shard" => shard_op(name, &poplar, &ctx, &reports[idx.expect("index")]),
            "verify_init" => {
                let (i, a) = (idx.expect("index"), agg.expect("aggregator"));
                init_op(
                    name,
                    &poplar,
                    &verify_key,
                    &ctx,
                    &param,
                    &reports[i],
                    a,
                    &mut runs[i],
                )
            }
            "verifier_shares_to_message" => {
                let i = idx.expect("index");
                to_message_op(
                    name,
                    &poplar,
                    &ctx,
                    &param,
                    &reports[i],
                    round,
                    &mut runs[i],
                )
            }
            "verify_next" => {
                let (i, a) = (idx.expect("index"), agg.expect("aggregator"));
                next_op(name, &poplar, &ctx, &reports[i], a, round, &mut runs[i])
            }
            "aggregate" => aggregate_op(name, &poplar, &param, v, agg.expect("aggregator"), &runs),
            "unshard" => unshard_op(name, &poplar, &param, v),
            other => panic!("{name}: unknown operation {other}"),
        };
        match (success, result) {
            (true, Ok(())) => {}
            (true, Err(e)) => panic!("{name}: {kind} failed: {e}"),
            (false, Ok(())) => panic!("{name}: {kind} must fail"),
            (false, Err(e)) => assert_eq!(e, VdafError::VerifyFailed, "{name}: {kind}"),
        }
    }
    check_batch_engine(name, &poplar, &verify_key, &ctx, &param, v);
}

fn shard_op(name: &str, poplar: &Poplar1, ctx: &[u8], r: &Value) -> Result<(), VdafError> {
    let nonce: [u8; 16] = arr(&r["nonce"]);
    let alpha = bools(&r["measurement"]);
    let (public, shares) = poplar.shard_bits_with_rand(ctx, &alpha, &nonce, &hex_of(&r["rand"]))?;
    assert_eq!(
        public.encode(),
        hex_of(&r["public_share"]),
        "{name}: public share"
    );
    for (j, share) in shares.iter().enumerate() {
        assert_eq!(
            share.encode(),
            hex_of(&r["input_shares"][j]),
            "{name}: input share {j}"
        );
    }
    // The u64 entry point agrees with the bit-vector one.
    let m = alpha.iter().fold(0u64, |acc, b| (acc << 1) | u64::from(*b));
    let (public2, _) = poplar.shard_with_rand(ctx, m, &nonce, &hex_of(&r["rand"]))?;
    assert!(public2 == public, "{name}: u64 shard");
    Ok(())
}

#[allow(clippy::too_many_arguments)]
fn init_op(
    name: &str,
    poplar: &Poplar1,
    verify_key: &[u8; 32],
    ctx: &[u8],
    param: &AggregationParam,
    r: &Value,
    agg: usize,
    run: &mut ReportRun,
) -> Result<(), VdafError> {
    let nonce: [u8; 16] = arr(&r["nonce"]);
    let public = poplar.decode_public_share(&hex_of(&r["public_share"]))?;
    assert_eq!(
        public.encode(),
        hex_of(&r["public_share"]),
        "{name}: public share re-encoding"
    );
    let input = poplar.decode_input_share(agg, &hex_of(&r["input_shares"][agg]))?;
    let (state, share) =
        poplar.verify_init(verify_key, ctx, agg, param, &nonce, &public, &input)?;
    assert_eq!(
        share.encode(),
        hex_of(&r["verifier_shares"][0][agg]),
        "{name}: round-1 share {agg}"
    );
    let decoded = poplar.decode_verifier_share(param, 1, &share.encode())?;
    assert!(decoded == share, "{name}: verifier share round trip");
    run.states[agg] = Some(state);
    run.shares[agg] = Some(share);
    Ok(())
}

fn to_message_op(
    name: &str,
    poplar: &Poplar1,
    ctx: &[u8],
    param: &AggregationParam,
    r: &Value,
    round: Option<u64>,
    run: &mut ReportRun,
) -> Result<(), VdafError> {
    let round = round.expect("round") as usize;
    let shares = [
        run.shares[0].take().expect("share 0"),
        run.shares[1].take().expect("share 1"),
    ];
    let msg = poplar.verifier_shares_to_message(ctx, param, shares)?;
    assert_eq!(
        msg.encode(),
        hex_of(&r["verifier_messages"][round]),
        "{name}: message {round}"
    );
    let decoded = poplar.decode_verifier_message(param, round as u8 + 1, &msg.encode())?;
    assert!(decoded == msg, "{name}: message round trip");
    run.message = Some(msg);
    Ok(())
}

fn next_op(
    name: &str,
    poplar: &Poplar1,
    ctx: &[u8],
    r: &Value,
    agg: usize,
    round: Option<u64>,
    run: &mut ReportRun,
) -> Result<(), VdafError> {
    let state = run.states[agg].take().expect("state");
    let msg = run.message.as_ref().expect("message");
    match poplar.verify_next(ctx, state, msg)? {
        VerifyTransition::Continue(state, share) => {
            let round = round.expect("round") as usize;
            let expected = hex_of(&r["verifier_shares"][round][agg]);
            assert_eq!(
                share.encode(),
                expected,
                "{name}: round-{} share {agg}",
                round + 1
            );
            run.states[agg] = Some(state);
            run.shares[agg] = Some(share);
        }
        VerifyTransition::Finish(out) => {
            assert_eq!(
                out.encode(),
                hex_of(&r["out_shares"][agg]),
                "{name}: out share {agg}"
            );
            run.out[agg] = Some(out);
        }
    }
    Ok(())
}

fn aggregate_op(
    name: &str,
    poplar: &Poplar1,
    param: &AggregationParam,
    v: &Value,
    agg: usize,
    runs: &[ReportRun],
) -> Result<(), VdafError> {
    let outs = runs
        .iter()
        .map(|r| r.out[agg].as_ref().expect("output share"));
    let share = poplar.aggregate(param, outs)?;
    assert_eq!(
        share.encode(),
        hex_of(&v["agg_shares"][agg]),
        "{name}: aggregate share {agg}"
    );
    let decoded = poplar.decode_aggregate_share(param, &share.encode())?;
    assert!(decoded == share, "{name}: aggregate share round trip");
    Ok(())
}

fn unshard_op(
    name: &str,
    poplar: &Poplar1,
    param: &AggregationParam,
    v: &Value,
) -> Result<(), VdafError> {
    let shares: Vec<_> = (0..2)
        .map(|j| poplar.decode_aggregate_share(param, &hex_of(&v["agg_shares"][j])))
        .collect::<Result<_, _>>()?;
    let n = v["reports"].as_array().map_or(0, Vec::len);
    let result = poplar.unshard(param, [&shares[0], &shares[1]], n)?;
    let expected: Vec<u64> = v["agg_result"]
        .as_array()
        .expect("agg_result")
        .iter()
        .map(|x| x.as_u64().expect("count"))
        .collect();
    assert_eq!(result, expected, "{name}: aggregate result");
    Ok(())
}

/// The batch engine on the same reports gives the same aggregate shares, or rejects the bad
/// report with the sketch-failure reason.
fn check_batch_engine(
    name: &str,
    poplar: &Poplar1,
    verify_key: &[u8; 32],
    ctx: &[u8],
    param: &AggregationParam,
    v: &Value,
) {
    let reports = v["reports"].as_array().expect("reports");
    let bytes: Vec<_> = reports
        .iter()
        .map(|r| {
            (
                arr::<16>(&r["nonce"]),
                hex_of(&r["public_share"]),
                [hex_of(&r["input_shares"][0]), hex_of(&r["input_shares"][1])],
            )
        })
        .collect();
    let local: Vec<LocalReport<'_>> = bytes
        .iter()
        .map(|(nonce, p, s)| LocalReport {
            nonce: *nonce,
            public_share: p,
            input_shares: [&s[0], &s[1]],
        })
        .collect();
    let outcome = poplar
        .prepare_batch_local(verify_key, ctx, param, &local)
        .expect("batch");
    if v["agg_result"].is_null() {
        let expected = Verdict::Rejected(RejectReason::VerifyFailed);
        assert!(
            outcome.verdicts.iter().all(|x| *x == expected),
            "{name}: batch verdicts"
        );
        assert_eq!(outcome.accepted, 0, "{name}: nothing accepted");
    } else {
        assert!(
            outcome.verdicts.iter().all(|x| *x == Verdict::Accepted),
            "{name}: verdicts"
        );
        for j in 0..2 {
            let expected = hex_of(&v["agg_shares"][j]);
            assert_eq!(
                outcome.aggregates[j].encode(),
                expected,
                "{name}: batch aggregate {j}"
            );
        }
    }
}
