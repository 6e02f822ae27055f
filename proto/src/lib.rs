//! hotspot-proto: the gRPC wire format, package `hotspot.v1`.
//!
//! The services and messages are defined in `proto/hotspot/v1/hotspot.proto` and generated at
//! build time by `build.rs` (protox, so no `protoc` is needed). Nothing here is edited by hand:
//! the types carry bytes whose meaning (Poplar1 encodings, HPKE ciphertexts) the core and
//! server crates define and check.
//!
//! | service | caller → server |
//! |---|---|
//! | `Upload` | visitor → leader |
//! | `Aggregation` | leader → helper |
//! | `Collection` | collector → leader |
//! | `Collector` | operator, dashboard → collector (search trigger, alert stream) |
//! | `Issuance` | visitor → issuer (credentials), health authority → issuer (diagnosis codes) |
//! | `Registry` | venue tools → collector (register a venue, get the registry's public key) |

/// Generated messages, clients and servers of `hotspot.v1`.
#[allow(missing_docs, clippy::all, clippy::pedantic)]
pub mod v1 {
    tonic::include_proto!("hotspot.v1");
}

/// The encoded `FileDescriptorSet` of `hotspot.v1`, for gRPC reflection.
pub const FILE_DESCRIPTOR_SET: &[u8] =
    include_bytes!(concat!(env!("OUT_DIR"), "/hotspot_descriptor.bin"));
