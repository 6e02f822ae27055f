//! Criterion benches of the credential: issuance (each step), presentation and verification
//! per presentation limit, signatures, and a reference scalar multiplication measured in the
//! same run so results can be quoted as ratios on a shared machine.
//!
//! `cargo bench -p hotspot-credentials -- --warm-up-time 1 --measurement-time 3`

use std::hint::black_box;

use criterion::{BenchmarkId, Criterion, criterion_group, criterion_main};
use curve25519_dalek::ristretto::RistrettoPoint;
use curve25519_dalek::scalar::Scalar;
use hotspot_credentials::issuance::{self, CredentialRequest};
use hotspot_credentials::keys::IssuerKey;
use hotspot_credentials::labels::{DOMAIN_EXPOSURE_LIST, REQUEST_CONTEXT_CROWDING as KIND};
use hotspot_credentials::presentation::{self, Credential, Presentation, PresentationContext};
use hotspot_credentials::signature::SigningKey;

const LIMITS: [u32; 3] = [1, 4, 16];

fn credential(key: &IssuerKey) -> Credential {
    let (pending, request) = CredentialRequest::new_with_randomness(key.public(), KIND, &[1; 32]);
    let response = issuance::issue_with_randomness(key, KIND, &request, &[2; 32]).expect("issued");
    pending.finalize(&response).expect("finalized")
}

fn reference(c: &mut Criterion) {
    let point = RistrettoPoint::mul_base(&Scalar::from(7u64));
    let scalar = Scalar::from_bytes_mod_order([9; 32]);
    c.bench_function("reference/constant_time_scalar_mul", |b| {
        b.iter(|| black_box(point) * black_box(scalar))
    });
}

fn issuance(c: &mut Criterion) {
    let key = IssuerKey::from_seed(&[0; 32]);
    let mut group = c.benchmark_group("issuance");
    group.bench_function("client_request", |b| {
        b.iter(|| CredentialRequest::new_with_randomness(key.public(), KIND, &[1; 32]))
    });
    let (_, request) = CredentialRequest::new_with_randomness(key.public(), KIND, &[1; 32]);
    group.bench_function("issuer_response", |b| {
        b.iter(|| issuance::issue_with_randomness(&key, KIND, &request, &[2; 32]))
    });
    let response = issuance::issue_with_randomness(&key, KIND, &request, &[2; 32]).expect("issued");
    group.bench_function("client_finalize", |b| {
        b.iter_batched(
            || CredentialRequest::new_with_randomness(key.public(), KIND, &[1; 32]).0,
            |pending| pending.finalize(&response),
            criterion::BatchSize::SmallInput,
        )
    });
    group.finish();
}

fn presentation(c: &mut Criterion) {
    let key = IssuerKey::from_seed(&[0; 32]);
    let credential = credential(&key);
    let context = PresentationContext::new(b"task", 1).expect("context");
    let mut present = c.benchmark_group("present");
    for limit in LIMITS {
        present.bench_with_input(BenchmarkId::from_parameter(limit), &limit, |b, &limit| {
            b.iter(|| credential.present_with_randomness(&context, limit, limit - 1, &[3; 32]))
        });
    }
    present.finish();

    let mut verify = c.benchmark_group("verify");
    for limit in LIMITS {
        let presentation = credential
            .present_with_randomness(&context, limit, limit - 1, &[3; 32])
            .expect("in range");
        let bytes = presentation.to_bytes();
        eprintln!("presentation bytes for limit {limit}: {}", bytes.len());
        // What the server does per upload: decode the bytes, then verify.
        verify.bench_with_input(BenchmarkId::from_parameter(limit), &limit, |b, &limit| {
            b.iter(|| {
                let decoded = Presentation::from_bytes(&bytes).expect("decodes");
                presentation::verify(&key, KIND, &context, limit, &decoded).expect("valid")
            })
        });
    }
    verify.finish();
}

fn signatures(c: &mut Criterion) {
    let key = SigningKey::from_seed(&[4; 32]);
    let message = [0u8; 1024];
    let signature = key.sign_with_randomness(DOMAIN_EXPOSURE_LIST, &message, &[5; 32]);
    let public = key.verifying_key();
    let mut group = c.benchmark_group("signature");
    group.bench_function("sign_1KiB", |b| {
        b.iter(|| key.sign_with_randomness(DOMAIN_EXPOSURE_LIST, &message, &[5; 32]))
    });
    group.bench_function("verify_1KiB", |b| {
        b.iter(|| public.verify(DOMAIN_EXPOSURE_LIST, &message, &signature))
    });
    group.finish();
}

criterion_group!(benches, reference, issuance, presentation, signatures);
criterion_main!(benches);
