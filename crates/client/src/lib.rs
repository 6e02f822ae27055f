//! hotspot-client: what a venue's poster tool and a visitor's phone app embed.
//!
//! The visitor side of DESIGN.md sections 1 and 3 (steps 1 to 3 and 8): a venue's poster
//! carries a signed QR payload; the phone scans it, keeps a local diary of check-ins, reports
//! crowding as it happens, uploads its (spread and padded) diary after a diagnosis, and matches
//! the health authority's signed exposure list against the diary without anything leaving the
//! phone.
//!
//! | module | holds |
//! |---|---|
//! | [`payload`] | our versioned, signed venue QR payload (`https://<host>/c#<base64url>`) |
//! | [`legacy`] | the Corona-Warn-App and NotifyMe (CrowdNotifier) event QR codes |
//! | [`scan`] | one entry point for anything a camera or keyboard hands us: URLs and typed codes |
//! | [`registry`] | the registry's Ed25519 signing key file and the set of trusted keys |
//! | [`fallback`] | the short typed fallback code printed under the QR |
//! | [`poster`] | A4 posters as SVG, PNG and PDF, and decoding a photo of one |
//! | [`diary`] | the local check-in diary, kept 14 days in a file written atomically |
//! | [`upload`] | crowding and outbreak report preparation (spreading, padding), retried uploads |
//! | [`grpc`] | the uploader (shard, seal, present, upload to the leader) and the registry client |
//! | [`net`] | the exposure-list download |
//! | [`exposure`] | the signed exposure list, its verification, and matching against the diary |
//! | [`civil`] | calendar dates from Unix days, for validity dates on posters |
//! | [`credential`] | the credential wallet: obtain from the issuer over gRPC, present per report |
//!
//! Randomness is an explicit argument of every function that needs it; the CLI draws it.

pub mod civil;
#[cfg(feature = "net")]
pub mod credential;
pub mod diary;
pub mod exposure;
pub mod fallback;
#[cfg(feature = "net")]
pub mod grpc;
pub mod legacy;
#[cfg(feature = "net")]
pub mod net;
pub mod payload;
#[cfg(feature = "poster")]
pub mod poster;
pub mod registry;
pub mod scan;
pub mod upload;

/// Seconds since the Unix epoch, UTC. Every time in this crate is one of these, passed in by
/// the caller, so that tests pin the clock.
pub type UnixSeconds = u64;

/// Seconds in a day.
pub const DAY_SECS: u64 = 86_400;

/// The system clock in Unix seconds (0 if it reads before 1970). For the edges (CLI, app);
/// library functions take the time as an argument.
pub fn unix_now() -> UnixSeconds {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map(|d| d.as_secs())
        .unwrap_or(0)
}
