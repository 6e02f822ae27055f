//! Verification cost as a multiple of one constant-time scalar multiplication, measured
//! interleaved in one process so that load on a shared machine hits both sides alike.
//!
//! `cargo bench -p hotspot-credentials --bench ratio` prints, per presentation limit, the
//! time of one decode-and-verify, of one reference multiplication, and their ratio. Each
//! timed window is short (one verification, or a batch of references of similar length) and
//! the figure kept is the 10th percentile over many windows: on a loaded machine most long
//! windows include time the process spent descheduled, which only ever adds.

use std::hint::black_box;
use std::time::Instant;

use curve25519_dalek::ristretto::RistrettoPoint;
use curve25519_dalek::scalar::Scalar;
use hotspot_credentials::labels::REQUEST_CONTEXT_CROWDING as KIND;
use hotspot_credentials::{
    CredentialRequest, IssuerKey, Presentation, PresentationContext, issue_with_randomness, verify,
};

const ROUNDS: usize = 301;
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

    println!("limit  bytes  verify_us  scalar_mul_us  ratio");
    for limit in [1u32, 2, 4, 8, 16] {
        let bytes = credential
            .present_with_randomness(&context, limit, limit - 1, &[3; 32])
            .expect("in range")
            .to_bytes();
        let (mut verifies, mut references) = (Vec::new(), Vec::new());
        for _ in 0..ROUNDS {
            references.push(time_window(REFERENCE_BATCH, || {
                black_box(black_box(point) * black_box(scalar));
            }));
            verifies.push(time_window(1, || {
                let presentation = Presentation::from_bytes(black_box(&bytes)).expect("decodes");
                black_box(verify(&key, KIND, &context, limit, &presentation).expect("valid"));
            }));
        }
        let (v, r) = (
            low_percentile(&mut verifies),
            low_percentile(&mut references),
        );
        println!(
            "{limit:>5}  {:>5}  {v:>9.1}  {r:>13.1}  {:>5.2}",
            bytes.len(),
            v / r
        );
    }
}
