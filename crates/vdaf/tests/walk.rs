//! A heavy-hitter walk with [`BatchCache`] gives, level by level, exactly the verdicts and
//! aggregate shares of the uncached engine, also when reports are corrupted, drop out, change
//! bytes under the same nonce, or the cache is stale.

use hotspot_vdaf::{AggregationParam, BatchCache, LocalReport, Poplar1, Verdict};

const CTX: &[u8] = b"walk";
const KEY: [u8; 32] = [9; 32];

struct Report {
    nonce: [u8; 16],
    public: Vec<u8>,
    inputs: [Vec<u8>; 2],
}

fn reports(poplar: &Poplar1, ms: &[u64]) -> Vec<Report> {
    ms.iter()
        .enumerate()
        .map(|(i, m)| {
            let nonce = [i as u8; 16];
            let rand = [(i as u8).wrapping_mul(7).wrapping_add(1); 128];
            let (p, s) = poplar
                .shard_with_rand(CTX, *m, &nonce, &rand)
                .expect("shard");
            Report {
                nonce,
                public: p.encode(),
                inputs: [s[0].encode(), s[1].encode()],
            }
        })
        .collect()
}

fn local(rs: &[Report]) -> Vec<LocalReport<'_>> {
    rs.iter()
        .map(|r| LocalReport {
            nonce: r.nonce,
            public_share: &r.public,
            input_shares: [&r.inputs[0], &r.inputs[1]],
        })
        .collect()
}

/// Walks all levels with threshold 2, comparing cached and uncached results at every level.
fn walk_both(poplar: &Poplar1, rs: &[Report], caches: &mut [BatchCache; 2]) -> Vec<u64> {
    let bits = poplar.bits();
    let batch = local(rs);
    let mut candidates = vec![0u64, 1];
    for level in 0..bits as u16 {
        let param = AggregationParam::new(level, candidates.clone()).expect("param");
        let plain = poplar
            .prepare_batch_local(&KEY, CTX, &param, &batch)
            .expect("uncached");
        let cached = poplar
            .prepare_batch_local_cached(&KEY, CTX, &param, &batch, caches)
            .expect("cached");
        assert_eq!(plain.verdicts, cached.verdicts, "level {level}: verdicts");
        for j in 0..2 {
            assert_eq!(
                plain.aggregates[j].encode(),
                cached.aggregates[j].encode(),
                "level {level}: share {j}"
            );
        }
        let counts = poplar
            .unshard(
                &param,
                [&cached.aggregates[0], &cached.aggregates[1]],
                rs.len(),
            )
            .expect("unshard");
        let survivors: Vec<u64> = candidates
            .iter()
            .zip(&counts)
            .filter(|(_, c)| **c >= 2)
            .map(|(p, _)| *p)
            .collect();
        if usize::from(level) == bits - 1 {
            return survivors;
        }
        candidates = survivors.iter().flat_map(|p| [2 * p, 2 * p + 1]).collect();
        if candidates.is_empty() {
            return Vec::new();
        }
    }
    Vec::new()
}

#[test]
fn cached_walk_matches_uncached_walk_level_by_level() {
    let poplar = Poplar1::new(12).expect("bits");
    let ms = [0xabc, 0xabc, 0xabc, 0x123, 0x123, 0x7ff, 0x000, 0xabd];
    let rs = reports(&poplar, &ms);
    let mut caches = [BatchCache::new(), BatchCache::new()];
    assert_eq!(walk_both(&poplar, &rs, &mut caches), vec![0x123, 0xabc]);
    assert!(caches[0].len() <= rs.len());
}

#[test]
fn cached_walk_handles_corrupted_and_swapped_reports() {
    let poplar = Poplar1::new(10).expect("bits");
    let ms = [0x155, 0x155, 0x155, 0x2aa, 0x2aa, 0x001];
    let mut rs = reports(&poplar, &ms);
    // Corrupt the helper's correlated randomness of one report at every level.
    for b in rs[1].inputs[1][48..48 + 16 * 9].iter_mut().step_by(16) {
        *b ^= 0x01;
    }
    let mut caches = [BatchCache::new(), BatchCache::new()];
    assert_eq!(walk_both(&poplar, &rs, &mut caches), vec![0x155, 0x2aa]);

    // Same nonces, new bytes: the cache must not be trusted.
    let rs2 = reports(&poplar, &[0x001, 0x001, 0x3ff, 0x3ff, 0x3ff, 0x2aa]);
    let renonced: Vec<Report> = rs2
        .into_iter()
        .enumerate()
        .map(|(i, mut r)| {
            r.nonce = rs[i].nonce;
            r
        })
        .collect();
    assert_eq!(
        walk_both(&poplar, &renonced, &mut caches),
        vec![0x001, 0x3ff]
    );
}

#[test]
fn stale_cache_from_another_walk_is_ignored() {
    let poplar = Poplar1::new(8).expect("bits");
    let rs = reports(&poplar, &[0x10, 0x10, 0x20]);
    let batch = local(&rs);
    let mut caches = [BatchCache::new(), BatchCache::new()];
    let deep = AggregationParam::new(5, vec![0x04]).expect("param");
    poplar
        .prepare_batch_local_cached(&KEY, CTX, &deep, &batch, &mut caches)
        .expect("deep");
    // A shallower level and unrelated prefixes afterwards: evaluated from the root.
    let shallow = AggregationParam::new(2, vec![0, 1]).expect("param");
    let out = poplar
        .prepare_batch_local_cached(&KEY, CTX, &shallow, &batch, &mut caches)
        .expect("shallow");
    assert!(out.verdicts.iter().all(|v| *v == Verdict::Accepted));
    let counts = poplar
        .unshard(&shallow, [&out.aggregates[0], &out.aggregates[1]], 3)
        .expect("unshard");
    assert_eq!(counts, vec![2, 1]);
}
