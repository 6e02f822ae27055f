//! hotspot-proto: the gRPC wire format (package hotspot.v1).
