//! Every rejection rule of the crate has a negative test here, plus property tests for the
//! field laws and the encoding round trips (decoders never panic on arbitrary bytes).

use hotspot_vdaf::field::{Field64, Field255, FieldElement};
use hotspot_vdaf::{
    AggregationParam, HelperMessage, LocalReport, Poplar1, ReportShare, Round1Shares, VdafError,
    Verdicts, is_valid,
};
use proptest::prelude::*;

const CTX: &[u8] = b"rules";
const KEY: [u8; 32] = [7; 32];

fn report(poplar: &Poplar1, m: u64, seed: u8) -> ([u8; 16], Vec<u8>, [Vec<u8>; 2]) {
    let nonce = [seed; 16];
    let rand = [seed.wrapping_add(1); 128];
    let (p, s) = poplar
        .shard_with_rand(CTX, m, &nonce, &rand)
        .expect("shard");
    (nonce, p.encode(), [s[0].encode(), s[1].encode()])
}

#[test]
fn agg_param_rejects_unsorted_duplicate_empty_and_oversized_prefixes() {
    assert!(matches!(
        AggregationParam::new(3, vec![2, 1]),
        Err(VdafError::InvalidAggParam(_))
    ));
    assert!(matches!(
        AggregationParam::new(3, vec![1, 1]),
        Err(VdafError::InvalidAggParam(_))
    ));
    assert!(matches!(
        AggregationParam::new(3, vec![]),
        Err(VdafError::InvalidAggParam(_))
    ));
    assert!(matches!(
        AggregationParam::new(3, vec![16]),
        Err(VdafError::InvalidAggParam(_))
    ));
    assert!(matches!(
        AggregationParam::new(64, vec![0]),
        Err(VdafError::InvalidAggParam(_))
    ));
    assert!(AggregationParam::new(63, vec![0, u64::MAX]).is_ok());
}

#[test]
fn agg_param_decoder_rejects_padding_bits_trailing_bytes_and_short_input() {
    let good = AggregationParam::new(3, vec![1, 5])
        .expect("param")
        .encode();
    assert!(AggregationParam::decode(&good).is_ok());
    let mut padded = good.clone();
    padded[6] |= 0x01; // a bit below the 4 prefix bits
    assert!(matches!(
        AggregationParam::decode(&padded),
        Err(VdafError::Decode { .. })
    ));
    let mut trailing = good.clone();
    trailing.push(0);
    assert!(matches!(
        AggregationParam::decode(&trailing),
        Err(VdafError::Decode { .. })
    ));
    assert!(matches!(
        AggregationParam::decode(&good[..5]),
        Err(VdafError::Decode { .. })
    ));
    let mut big_count = good;
    big_count[2] = 0xff;
    assert!(matches!(
        AggregationParam::decode(&big_count),
        Err(VdafError::Decode { .. })
    ));
}

#[test]
fn is_valid_requires_increasing_levels_and_extended_prefixes() {
    let p0 = AggregationParam::new(0, vec![0, 1]).expect("param");
    let p1 = AggregationParam::new(1, vec![2, 3]).expect("param");
    let p1_orphan = AggregationParam::new(1, vec![0]).expect("param");
    assert!(is_valid(&p0, &[]));
    assert!(is_valid(&p1, std::slice::from_ref(&p0)));
    assert!(
        !is_valid(&p0, std::slice::from_ref(&p1)),
        "level must increase"
    );
    assert!(
        !is_valid(&p1, std::slice::from_ref(&p1)),
        "same level twice"
    );
    let only_one = AggregationParam::new(0, vec![1]).expect("param");
    assert!(
        !is_valid(&p1_orphan, &[only_one]),
        "prefix must extend a previous one"
    );
}

#[test]
fn new_rejects_zero_and_oversized_bits() {
    assert_eq!(Poplar1::new(0), Err(VdafError::InvalidBits(0)));
    assert_eq!(Poplar1::new(65), Err(VdafError::InvalidBits(65)));
}

#[test]
fn shard_rejects_wide_measurement_and_wrong_rand_length() {
    let poplar = Poplar1::new(8).expect("bits");
    let r = poplar.shard_with_rand(CTX, 256, &[0; 16], &[0; 128]);
    assert_eq!(r.err(), Some(VdafError::MeasurementTooLarge { bits: 8 }));
    let r = poplar.shard_with_rand(CTX, 1, &[0; 16], &[0; 127]);
    assert_eq!(
        r.err(),
        Some(VdafError::InvalidRandLength {
            expected: 128,
            got: 127
        })
    );
    let long_ctx = vec![0u8; 70_000];
    let r = poplar.shard_with_rand(&long_ctx, 1, &[0; 16], &[0; 128]);
    assert_eq!(r.err(), Some(VdafError::ContextTooLong(70_000)));
}

#[test]
fn public_share_decoder_rejects_padding_length_and_non_canonical() {
    let poplar = Poplar1::new(3).expect("bits");
    let (_, public, _) = report(&poplar, 5, 1);
    assert!(poplar.decode_public_share(&public).is_ok());
    let mut padding = public.clone();
    padding[0] |= 0x80; // 3 levels use 6 control bits; bit 7 is padding
    assert!(matches!(
        poplar.decode_public_share(&padding),
        Err(VdafError::Decode { .. })
    ));
    assert!(poplar.decode_public_share(&public[1..]).is_err());
    let mut long = public.clone();
    long.push(0);
    assert!(poplar.decode_public_share(&long).is_err());
    let mut big = public.clone();
    let values = 1 + 16 * 3;
    big[values..values + 8].copy_from_slice(&[0xff; 8]);
    assert!(matches!(
        poplar.decode_public_share(&big),
        Err(VdafError::Decode { .. })
    ));
    let mut big_leaf = public;
    let n = big_leaf.len();
    big_leaf[n - 32..].copy_from_slice(&[0xff; 32]);
    assert!(matches!(
        poplar.decode_public_share(&big_leaf),
        Err(VdafError::Decode { .. })
    ));
}

#[test]
fn input_share_decoder_rejects_length_agg_id_and_non_canonical() {
    let poplar = Poplar1::new(3).expect("bits");
    let (_, _, inputs) = report(&poplar, 5, 1);
    assert!(poplar.decode_input_share(0, &inputs[0]).is_ok());
    assert!(matches!(
        poplar.decode_input_share(2, &inputs[0]),
        Err(VdafError::InvalidAggregatorId(2))
    ));
    assert!(poplar.decode_input_share(0, &inputs[0][1..]).is_err());
    let mut big = inputs[0].clone();
    big[48..56].copy_from_slice(&[0xff; 8]);
    assert!(matches!(
        poplar.decode_input_share(0, &big),
        Err(VdafError::Decode { .. })
    ));
}

#[test]
fn verify_init_rejects_level_beyond_bits() {
    let poplar = Poplar1::new(3).expect("bits");
    let param = AggregationParam::new(3, vec![1]).expect("param");
    let (nonce, public, inputs) = report(&poplar, 5, 1);
    let p = poplar.decode_public_share(&public).expect("public");
    let s = poplar.decode_input_share(0, &inputs[0]).expect("input");
    let r = poplar.verify_init(&KEY, CTX, 0, &param, &nonce, &p, &s);
    assert!(matches!(r, Err(VdafError::InvalidAggParam(_))));
}

#[test]
fn message_decoders_reject_wrong_lengths_and_rounds() {
    let poplar = Poplar1::new(4).expect("bits");
    let inner = AggregationParam::new(1, vec![0, 3]).expect("param");
    assert!(poplar.decode_verifier_share(&inner, 1, &[0; 24]).is_ok());
    assert!(poplar.decode_verifier_share(&inner, 1, &[0; 25]).is_err());
    assert!(poplar.decode_verifier_share(&inner, 3, &[0; 8]).is_err());
    assert!(poplar.decode_verifier_message(&inner, 2, &[0]).is_err());
    assert!(
        poplar
            .decode_verifier_message(&inner, 1, &[0xff; 24])
            .is_err()
    );
    assert!(poplar.decode_aggregate_share(&inner, &[0; 8]).is_err());
}

#[test]
fn batch_messages_reject_padding_unknown_codes_and_length_mismatch() {
    let poplar = Poplar1::new(4).expect("bits");
    let param = AggregationParam::new(2, vec![1, 6]).expect("param");
    let (nonce, public, inputs) = report(&poplar, 3, 2);
    let leader = [ReportShare {
        nonce,
        public_share: &public,
        input_share: &inputs[0],
    }];
    let helper = [ReportShare {
        nonce,
        public_share: &public,
        input_share: &inputs[1],
    }];
    let (_, msg) = poplar
        .batch_init(&KEY, CTX, 0, &param, &leader)
        .expect("init");
    let bytes = msg.encode();
    assert!(Round1Shares::decode(&poplar, &param, &bytes).is_ok());
    let mut padded = bytes.clone();
    padded[4] |= 0x02; // only report 0 exists
    assert!(Round1Shares::decode(&poplar, &param, &padded).is_err());
    assert!(Round1Shares::decode(&poplar, &param, &bytes[..bytes.len() - 1]).is_err());
    assert!(
        HelperMessage::decode(&poplar, &param, &bytes).is_err(),
        "missing round-2 share"
    );
    assert!(Verdicts::decode(&[0, 0, 0, 1, 9]).is_err());
    assert!(Verdicts::decode(&[0, 0, 0, 2, 0]).is_err());

    // A message for a different batch size is an error, not a panic.
    let (mut helper_state, _) = poplar
        .batch_init(&KEY, CTX, 1, &param, &helper)
        .expect("init");
    let empty = Round1Shares::decode(&poplar, &param, &[0, 0, 0, 0]).expect("empty");
    let r = poplar.helper_continue(&mut helper_state, &empty);
    assert_eq!(
        r.err(),
        Some(VdafError::BatchLengthMismatch {
            expected: 1,
            got: 0
        })
    );
}

#[test]
fn batch_steps_refuse_the_wrong_role() {
    let poplar = Poplar1::new(4).expect("bits");
    let param = AggregationParam::new(0, vec![0, 1]).expect("param");
    let (mut leader_state, msg) = poplar.batch_init(&KEY, CTX, 0, &param, &[]).expect("init");
    assert!(poplar.helper_continue(&mut leader_state, &msg).is_err());
    assert!(poplar.batch_init(&KEY, CTX, 2, &param, &[]).is_err());
}

#[test]
fn undecodable_reports_are_rejected_per_report_and_the_batch_goes_on() {
    let poplar = Poplar1::new(8).expect("bits");
    let param = AggregationParam::new(7, vec![3, 200]).expect("param");
    let good = report(&poplar, 200, 3);
    let bad_leader = report(&poplar, 3, 4);
    let bad_helper = report(&poplar, 3, 5);
    let short = &bad_leader.2[0][1..];
    let short_h = &bad_helper.2[1][1..];
    let reports = [
        LocalReport {
            nonce: good.0,
            public_share: &good.1,
            input_shares: [&good.2[0], &good.2[1]],
        },
        LocalReport {
            nonce: bad_leader.0,
            public_share: &bad_leader.1,
            input_shares: [short, &bad_leader.2[1]],
        },
        LocalReport {
            nonce: bad_helper.0,
            public_share: &bad_helper.1,
            input_shares: [&bad_helper.2[0], short_h],
        },
    ];
    let out = poplar
        .prepare_batch_local(&KEY, CTX, &param, &reports)
        .expect("batch");
    use hotspot_vdaf::{RejectReason::*, Verdict::*};
    assert_eq!(
        out.verdicts,
        vec![Accepted, Rejected(LeaderDecode), Rejected(HelperDecode)]
    );
    let counts = poplar
        .unshard(&param, [&out.aggregates[0], &out.aggregates[1]], 1)
        .expect("unshard");
    assert_eq!(
        counts,
        vec![0, 1],
        "the leader's provisional sum dropped the late rejection"
    );
}

#[test]
fn noise_is_added_modulo_p_and_read_back_signed() {
    let poplar = Poplar1::new(8).expect("bits");
    for level in [3u16, 7] {
        let param = AggregationParam::new(level, vec![0, 1, 2]).expect("param");
        let r = report(&poplar, 0, 9);
        let reports = [LocalReport {
            nonce: r.0,
            public_share: &r.1,
            input_shares: [&r.2[0], &r.2[1]],
        }];
        let mut out = poplar
            .prepare_batch_local(&KEY, CTX, &param, &reports)
            .expect("batch");
        out.aggregates[0].add_noise(&[-3, 2, -1]).expect("noise");
        out.aggregates[1].add_noise(&[1, -5, 0]).expect("noise");
        let signed = poplar
            .unshard_signed(&param, [&out.aggregates[0], &out.aggregates[1]], 1)
            .expect("signed");
        assert_eq!(signed, vec![1 - 3 + 1, -3, -1]);
        let r = out.aggregates[0].add_noise(&[1]);
        assert_eq!(
            r.err(),
            Some(VdafError::NoiseLengthMismatch {
                expected: 3,
                got: 1
            })
        );
    }
}

#[test]
fn secrets_print_nothing_in_debug() {
    let poplar = Poplar1::new(4).expect("bits");
    let (_, shares) = poplar
        .shard_with_rand(CTX, 3, &[1; 16], &[0xab; 128])
        .expect("shard");
    let text = format!("{:?}", shares[0]);
    assert_eq!(text, "InputShare([redacted])");
    assert!(!text.contains("ab"));
}

fn p64() -> u128 {
    u128::from(Field64::MODULUS)
}

proptest! {
    #[test]
    fn field64_matches_integer_arithmetic(a in 0..Field64::MODULUS, b in 0..Field64::MODULUS) {
        let (x, y) = (Field64::from_u64(a), Field64::from_u64(b));
        let (a, b) = (u128::from(a), u128::from(b));
        prop_assert_eq!(u128::from((x + y).value()), (a + b) % p64());
        prop_assert_eq!(u128::from((x * y).value()), (a * b) % p64());
        prop_assert_eq!(u128::from((x - y).value()), (a + p64() - b) % p64());
    }

    #[test]
    fn field255_obeys_ring_laws(a in any::<[u8; 32]>(), b in any::<[u8; 32]>(), c in any::<[u8; 32]>()) {
        let f = |mut x: [u8; 32]| { x[31] &= 0x3f; Field255::from_canonical_bytes(&x).expect("below p") };
        let (x, y, z) = (f(a), f(b), f(c));
        prop_assert_eq!(x * (y + z), x * y + x * z);
        prop_assert_eq!((x * y) * z, x * (y * z));
        prop_assert_eq!(x + y - y, x);
        prop_assert_eq!(x * Field255::ONE, x);
        prop_assert_eq!(x - x, Field255::ZERO);
        prop_assert_eq!(-(-x), x);
    }

    #[test]
    fn field_encodings_round_trip(a in any::<u64>(), b in any::<[u8; 32]>()) {
        let x = Field64::from_u64(a);
        let mut buf = Vec::new();
        x.encode_into(&mut buf);
        prop_assert_eq!(Field64::from_canonical_bytes(&buf), Some(x));
        if let Some(y) = Field255::from_canonical_bytes(&b) {
            let mut buf = Vec::new();
            y.encode_into(&mut buf);
            prop_assert_eq!(buf, b.to_vec());
        }
    }

    #[test]
    fn agg_param_round_trips(level in 0u16..64, raw in proptest::collection::vec(any::<u64>(), 1..20)) {
        let width = u32::from(level) + 1;
        let mut prefixes: Vec<u64> = raw.iter().map(|p| if width == 64 { *p } else { p & ((1 << width) - 1) }).collect();
        prefixes.sort_unstable();
        prefixes.dedup();
        let param = AggregationParam::new(level, prefixes).expect("valid");
        prop_assert_eq!(AggregationParam::decode(&param.encode()).expect("decode"), param);
    }

    #[test]
    fn shares_round_trip(m in any::<u64>(), bits in 1usize..=64, rand in proptest::collection::vec(any::<u8>(), 128)) {
        let poplar = Poplar1::new(bits).expect("bits");
        let m = if bits == 64 { m } else { m & ((1 << bits) - 1) };
        let (p, s) = poplar.shard_with_rand(CTX, m, &[3; 16], &rand).expect("shard");
        prop_assert!(poplar.decode_public_share(&p.encode()).expect("public") == p);
        for (agg, share) in s.iter().enumerate() {
            prop_assert!(poplar.decode_input_share(agg, &share.encode()).expect("input") == *share);
        }
    }

    #[test]
    fn decoders_never_panic(bytes in proptest::collection::vec(any::<u8>(), 0..400), bits in 1usize..=16) {
        let poplar = Poplar1::new(bits).expect("bits");
        let _ = poplar.decode_public_share(&bytes);
        let _ = poplar.decode_input_share(0, &bytes);
        let _ = AggregationParam::decode(&bytes);
        let _ = Verdicts::decode(&bytes);
        let param = AggregationParam::new(0, vec![0, 1]).expect("param");
        let _ = Round1Shares::decode(&poplar, &param, &bytes);
        let _ = HelperMessage::decode(&poplar, &param, &bytes);
    }
}
