//! Criterion benches of the credential protocol (filled in with the protocol itself).
use criterion::{Criterion, criterion_group, criterion_main};

fn oprf(c: &mut Criterion) {
    let suite = hotspot_credentials::oprf::Suite::new(hotspot_credentials::oprf::Mode::Oprf);
    c.bench_function("oprf/hash_to_group", |b| {
        b.iter(|| suite.hash_to_group(b"input"))
    });
}

criterion_group!(benches, oprf);
criterion_main!(benches);
