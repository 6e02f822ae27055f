//! hotspot-vdaf: Poplar1 (draft-irtf-cfrg-vdaf-18) for the hotspot aggregators, pure Rust, no
//! I/O, no async.
//!
//! Implements draft-irtf-cfrg-vdaf-18 (not later editor's copies): the fields `Field64` and
//! `Field255` (section 6.1), `XofTurboShake128` and `XofFixedKeyAes128` (section 6.2), the IDPF
//! `IdpfBBCGGI21` (section 8.3) and `Poplar1` (section 8), checked byte for byte against the
//! draft's test vectors and differentially against the `prio` crate 0.18.1.
//!
//! # Module tour
//!
//! - [`field`]: the two prime fields, canonical encodings, branch-free arithmetic.
//! - [`xof`]: the two XOFs and rejection sampling into field vectors.
//! - [`idpf`]: key generation, public-share codec, and evaluation over a shared prefix tree.
//! - [`poplar1`]: one report at a time, exactly the draft's functions (`shard`,
//!   `verify_init`, `verifier_shares_to_message`, `verify_next`, `aggregate`, `unshard`).
//! - [`batch`]: what the servers run: a whole batch of reports for one aggregation parameter
//!   per call, as a pure two-party state machine, in parallel (rayon).
//! - [`keccak`], [`vaes`], [`field512`]: the hot loops on SIMD registers (below).
//!
//! # SIMD paths
//!
//! The engine's time goes into three things: Keccak-p[1600, 12] at the leaf level, the
//! fixed-key AES hash at the inner depths, and `Field255` arithmetic at the leaves. Each has
//! a portable path and faster ones chosen at run time (`is_x86_feature_detected!`, cached),
//! with the same results, which the unit tests check path against path and the vectors and
//! the differential tests check end to end on whatever the machine has:
//!
//! | work | portable | AVX2 | AVX-512 |
//! |---|---|---|---|
//! | Keccak, several states | `[u64; 4]` lanes | four-way ([`keccak::p1600_x4`]) | four- and eight-way with `vprolq` / `vpternlogq` ([`keccak::p1600_x8`]) |
//! | fixed-key AES hash | `aes` crate (AES-NI or software) | same | VAES, 32 blocks in flight ([`vaes::hash_u128s`]); an inner depth's extend, correction and convert in one pass ([`vaes::extend_convert`]) |
//! | leaf values, sketch, output shares | 64-bit limbs, in the same blocks of eight ([`field512::LeafBlock`]) | same | AVX-512F leaf values and output-share sums eight leaves at a time, IFMA sketch sums in radix 2^52 ([`field512`]) |
//!
//! Unsafe code is denied in the workspace except in these three modules, for the calls into
//! functions compiled for a CPU feature and for the 512-bit loads and stores; each module
//! says what its `unsafe` blocks rely on.
//!
//! # The API the other crates use
//!
//! ```text
//! Poplar1::new(bits: usize) -> Result<Poplar1, VdafError>          // 1 <= bits <= 64
//! NONCE_SIZE = 16, VERIFY_KEY_SIZE = 32, RAND_SIZE = 128
//! Poplar1::shard(&self, ctx, measurement: u64, nonce: &[u8; 16], rng: &mut impl CryptoRng)
//!     -> Result<(PublicShare, [InputShare; 2]), VdafError>
//! Poplar1::shard_with_rand(&self, ctx, measurement: u64, nonce, rand: &[u8]) -> same
//! PublicShare::encode / Poplar1::decode_public_share(&[u8])
//! InputShare::encode / Poplar1::decode_input_share(agg_id, &[u8])
//! AggregationParam::new(level: u16, prefixes: Vec<u64>) / encode / decode(&[u8])
//! is_valid(&AggregationParam, previous: &[AggregationParam]) -> bool
//!
//! // Two-party batch preparation (module `batch`), per batch and aggregation parameter:
//! leader: Poplar1::batch_init(verify_key, ctx, 0, &param, &[ReportShare])
//!             -> (BatchState, Round1Shares)                      // Round1Shares -> helper
//! helper: Poplar1::batch_init(verify_key, ctx, 1, &param, &[ReportShare])
//!             -> (BatchState, Round1Shares)                      // kept in its state
//! helper: Poplar1::helper_continue(&mut BatchState, &Round1Shares /* leader's */)
//!             -> HelperMessage                                   // -> leader
//! leader: Poplar1::leader_finish(BatchState, &HelperMessage)
//!             -> (BatchOutcome, Verdicts)                        // Verdicts -> helper
//! helper: Poplar1::helper_finish(BatchState, &Verdicts) -> BatchOutcome
//! BatchOutcome { verdicts: Vec<Verdict>, aggregate: AggregateShare, accepted: usize }
//! Poplar1::prepare_batch_local(verify_key, ctx, &param, &[LocalReport]) -> LocalOutcome
//! AggregateShare::add_noise(&mut self, noise: &[i64]) -> Result<(), VdafError>
//! Poplar1::unshard(&param, [&AggregateShare; 2], n) -> Result<Vec<u64>, VdafError>
//! Poplar1::unshard_signed(&param, [&AggregateShare; 2], n) -> Result<Vec<i64>, VdafError>
//! ```
//!
//! Every message type has `encode() -> Vec<u8>` and a decoder taking the instance and the
//! aggregation parameter; decoders reject non-canonical encodings and trailing bytes.
//!
//! # Known gaps
//!
//! - Measurements are at most 64 bits (`u64`); the draft allows longer bit strings.
//! - Robustness against a malicious aggregator is out of scope (as in the draft's threat
//!   model for Poplar1 with two aggregators, privacy holds if one is honest).

#![warn(missing_docs)]

pub mod batch;
pub mod error;
pub mod field;
pub mod field512;
pub mod idpf;
pub mod keccak;
pub mod poplar1;
pub mod vaes;
pub mod xof;

pub use batch::{
    BatchCache, BatchOutcome, BatchState, HelperMessage, LocalOutcome, LocalReport, RejectReason,
    ReportShare, Round1Shares, Verdict, Verdicts,
};
pub use error::VdafError;
pub use field::{Field64, Field255, FieldElement};
pub use poplar1::{
    AggregateShare, AggregationParam, InputShare, NONCE_SIZE, OutputShare, Poplar1, PublicShare,
    RAND_SIZE, VERIFY_KEY_SIZE, VerifierMessage, VerifierShare, VerifyState, VerifyTransition,
    is_valid,
};
