//! Criterion benches of our Poplar1 engine: sharding one report, one inner level and the leaf
//! level of a batch (both aggregators, one thread per the rayon pool of the host).

use criterion::{BenchmarkId, Criterion, criterion_group, criterion_main};
use hotspot_benches::{CTX, Report, registry_workload, shard_all};
use hotspot_vdaf::{AggregationParam, LocalReport, Poplar1};

const KEY: [u8; 32] = [1; 32];

fn bench_shard(c: &mut Criterion) {
    let poplar = Poplar1::new(32).expect("bits");
    let rand = [3u8; hotspot_vdaf::RAND_SIZE];
    c.bench_function("shard/bits32", |b| {
        b.iter(|| {
            poplar
                .shard_with_rand(CTX, 0xdead_beef, &[1; 16], &rand)
                .expect("shard")
        })
    });
}

fn bench_levels(c: &mut Criterion) {
    let poplar = Poplar1::new(32).expect("bits");
    let mut group = c.benchmark_group("prepare");
    for candidates in [16usize, 1024] {
        let (registry, ms) = registry_workload(candidates, 64, 5);
        let reports = shard_all(&poplar, &ms, 6);
        let local: Vec<LocalReport<'_>> = reports.iter().map(Report::local).collect();
        // An inner level: the candidates' 16-bit prefixes.
        let mut inner: Vec<u64> = registry.iter().map(|v| v >> 16).collect();
        inner.dedup();
        let inner = AggregationParam::new(15, inner).expect("param");
        let leaf = AggregationParam::new(31, registry).expect("param");
        for (name, param) in [("inner15", &inner), ("leaf", &leaf)] {
            group.bench_with_input(BenchmarkId::new(name, candidates), param, |b, param| {
                b.iter(|| {
                    poplar
                        .prepare_batch_local(&KEY, CTX, param, &local)
                        .expect("batch")
                })
            });
        }
    }
    group.finish();
}

criterion_group!(benches, bench_shard, bench_levels);
criterion_main!(benches);
