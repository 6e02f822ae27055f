//! Verification cost as a multiple of one constant-time scalar multiplication, measured
//! interleaved in one process so that load on a shared machine hits both sides alike.
//!
//! `cargo bench -p hotspot-credentials --bench ratio` prints, per presentation limit, the
//! time of one decode-and-verify, the time per presentation of decoding and batch-verifying
//! [`BATCH`] of them at once (`verify_batch`, what an aggregator does with a job or a group of
//! uploads), of one reference multiplication, and the ratios. Each
//! timed window is short (one verification, or a batch of references of similar length) and
//! the figure kept is the 10th percentile over many windows: on a loaded machine most long
//! windows include time the process spent descheduled, which only ever adds.

use std::hint::black_box;
use std::time::Instant;

use curve25519_dalek::ristretto::RistrettoPoint;
use curve25519_dalek::scalar::Scalar;
use hotspot_credentials::labels::REQUEST_CONTEXT_CROWDING as KIND;
use hotspot_credentials::{
    BatchItem, CredentialRequest, IssuerKey, Presentation, PresentationContext,
    issue_with_randomness, verify, verify_batch_with_randomness,
};

const ROUNDS: usize = 301;
/// Presentations per batch.
const BATCH: usize = 32;
/// References per timed window, so that a window lasts about as long as one verification.
const REFERENCE_BATCH: u32 = 10;

/// The 10th percentile of the samples, in microseconds.
fn low_percentile(samples: &mut [f64]) -> f64 {
    samples.sort_by(f64::total_cmp);
    samples[samples.len() / 10]
}

/// Mean time of one call over a window of `batch` calls, in microseconds.
fn time_window(batch: u32, mut f: impl FnMut()) -> f64 {
    let start = Instant::now();
    for _ in 0..batch {
        f();
    }
    start.elapsed().as_secs_f64() * 1e6 / f64::from(batch)
}

fn main() {
    let key = IssuerKey::from_seed(&[0; 32]);
    let (pending, request) = CredentialRequest::new_with_randomness(key.public(), KIND, &[1; 32]);
    let response = issue_with_randomness(&key, KIND, &request, &[2; 32]).expect("issued");
    let credential = pending.finalize(&response).expect("finalized");
    let context = PresentationContext::new(b"task", 1).expect("context");
    let point = RistrettoPoint::mul_base(&Scalar::from(7u64));
    let scalar = Scalar::from_bytes_mod_order([9; 32]);

    println!("limit  bytes  verify_us  batch_us_each  scalar_mul_us  ratio  batch_ratio");
    for limit in [1u32, 2, 3, 4, 8, 16] {
        let bytes = credential
            .present_with_randomness(&context, limit, limit - 1, &[3; 32])
            .expect("in range")
            .to_bytes();
        let many: Vec<Vec<u8>> = (0..BATCH)
            .map(|i| {
                let seed = [i as u8; 32];
                let nonce = i as u32 % limit;
                let presentation =
                    credential.present_with_randomness(&context, limit, nonce, &seed);
                presentation.expect("in range").to_bytes()
            })
            .collect();
        let (mut verifies, mut batches, mut references) = (Vec::new(), Vec::new(), Vec::new());
        for round in 0..ROUNDS {
            references.push(time_window(REFERENCE_BATCH, || {
                black_box(black_box(point) * black_box(scalar));
            }));
            verifies.push(time_window(1, || {
                let presentation = Presentation::from_bytes(black_box(&bytes)).expect("decodes");
                black_box(verify(&key, KIND, &context, limit, &presentation).expect("valid"));
            }));
            if round % 8 == 0 {
                let each = time_window(1, || {
                    let decoded: Vec<Presentation> = (many.iter())
                        .map(|b| Presentation::from_bytes(black_box(b)).expect("decodes"))
                        .collect();
                    let items: Vec<BatchItem<'_>> = (decoded.iter())
                        .map(|presentation| BatchItem {
                            key: &key,
                            request_context: KIND,
                            context: &context,
                            limit,
                            presentation,
                        })
                        .collect();
                    let results = verify_batch_with_randomness(&items, &[round as u8; 32]);
                    assert!(results.iter().all(Result::is_ok));
                    black_box(results);
                }) / BATCH as f64;
                batches.push(each);
            }
        }
        let (v, b, r) = (
            low_percentile(&mut verifies),
            low_percentile(&mut batches),
            low_percentile(&mut references),
        );
        println!(
            "{limit:>5}  {:>5}  {v:>9.1}  {b:>13.1}  {r:>13.1}  {:>5.2}  {:>11.2}",
            bytes.len(),
            v / r,
            b / r
        );
    }
}
