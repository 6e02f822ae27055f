//! hotspot-credentials: anonymous rate-limited upload credentials (work in progress).
#![warn(missing_docs, clippy::unwrap_used)]

pub mod encoding;
pub mod h2c;
pub mod labels;
pub mod oprf;
