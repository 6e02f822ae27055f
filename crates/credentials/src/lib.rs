//! hotspot-credentials: anonymous rate-limited upload credentials (work in progress).
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
