//! Anonymous, rate-limited upload credentials for hotspot, and the signatures its registry
//! and collector use (DESIGN.md section 4).
//!
//! A visitor obtains one credential from the issuer, then attaches a *presentation* of it to
//! each upload. For every context (task, window) a credential yields at most `N` valid
//! presentations, each with a deterministic *tag*: the aggregators store tags and reject a
//! repeated one. No server can link two presentations to each other or to the issuance.
//! The construction is a keyed-verification anonymous credential in the style of the Privacy
//! Pass ARC drafts (draft-ietf-privacypass-arc-crypto), ported to ristretto255 with every
//! proof made non-interactive by a merlin transcript; `docs/credentials.md` describes it and
//! lists where it departs from the draft.
//!
//! # Modules
//!
//! - [`keys`]: issuer keys, key ids, daily rotation ([`keys::KeySet`]).
//! - [`issuance`]: the client's request, the issuer's response, finalisation.
//! - [`presentation`]: presenting for a context, verification, tags.
//! - [`signature`]: Schnorr signatures on ristretto255 for posters and exposure lists.
//! - [`oprf`]: the RFC 9497 OPRF/VOPRF (modes 0 and 1), whose published vectors pin the group,
//!   encodings and hash-to-group/scalar this crate is built on ([`h2c`], [`encoding`]).
//! - [`labels`]: every transcript label and domain separator, in one place.
//!
//! # Conventions
//!
//! - Randomness is an argument: each core function takes a 32-byte seed (`*_with_randomness`,
//!   `from_seed`); the entry points without the suffix draw it from a `CryptoRng`.
//! - Decoders (`from_bytes`) reject non-canonical points and scalars, the identity element,
//!   truncated input and trailing bytes, naming the field at fault ([`encoding::EncodingError`]).
//! - Secrets (issuer keys, credentials, signing keys) are zeroized on drop, compared only in
//!   constant time and print as `<redacted>` or not at all. Variable-time code runs only on
//!   public values and is named `vartime_*` at the level where it happens.
//!
//! # What the server calls
//!
//! ```
//! use hotspot_credentials::labels::REQUEST_CONTEXT_CROWDING as CROWDING;
//! use hotspot_credentials::{
//!     CredentialRequest, Day, IssuerKey, KeySet, Presentation, PresentationContext, Tag, issue,
//! };
//!
//! let mut rng = rand::rng();
//!
//! // Issuer and aggregators: one key per day, from a shared master secret (or generated).
//! let keys = KeySet::derive_daily(&[7; 32], Day(20_000)..=Day(20_001));
//! let today = keys.for_day(Day(20_001)).expect("today's key");
//!
//! // Client: a blinded request for a crowding credential under today's public key.
//! let (pending, request) = CredentialRequest::new(today.public(), CROWDING, &mut rng);
//!
//! // Issuer (`hotspot serve --role issuer`): decode, check the request proof, answer.
//! let request = CredentialRequest::from_bytes(&request.to_bytes())?;
//! let response = issue(today, CROWDING, &request, &mut rng)?;
//!
//! // Client: check the issuer's proof, keep the credential, present it for (task, window).
//! let credential = pending.finalize(&response)?;
//! let context = PresentationContext::new(b"crowding-task", 480_024)?;
//! let upload = credential.present(&context, 4, 0, &mut rng)?.to_bytes();
//!
//! // Leader and helper, per upload: check the header, decode, verify against the accepted
//! // key days, then store the tag in the same transaction as the report (a repeat is a
//! // replay).
//! let tag: Tag = keys.verify_bytes(Day(20_001)..=Day(20_001), CROWDING, &context, 4, &upload)?;
//! // The same, in two steps.
//! let presentation = Presentation::from_bytes(&upload)?;
//! assert_eq!(keys.verify(Day(20_001)..=Day(20_001), CROWDING, &context, 4, &presentation)?, tag);
//! assert_eq!(tag.0.len(), 32);
//! # Ok::<(), Box<dyn std::error::Error>>(())
//! ```
#![warn(missing_docs, clippy::unwrap_used)]

pub mod encoding;
pub mod h2c;
pub mod issuance;
pub mod keys;
pub mod labels;
pub mod oprf;
pub mod presentation;
mod randomness;
mod sigma;
pub mod signature;

pub use issuance::{
    CredentialRequest, CredentialResponse, IssuanceError, PendingCredential, issue,
    issue_with_randomness,
};
pub use keys::{Day, IssuerKey, IssuerPublicKey, KeyError, KeyId, KeySet};
pub use labels::{REQUEST_CONTEXT_CROWDING, REQUEST_CONTEXT_OUTBREAK};
pub use presentation::{
    BatchItem, Credential, CredentialError, Presentation, PresentationContext, Tag, verify,
    verify_batch, verify_batch_with_randomness,
};
pub use signature::{Signature, SignatureError, SigningKey, VerifyingKey};
