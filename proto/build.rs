//! Compiles `hotspot/v1/hotspot.proto` with protox (pure Rust: no `protoc` on the machine) and
//! generates the prost messages and tonic clients and servers, plus the file descriptor set
//! that gRPC reflection serves.

use std::{env, path::PathBuf};

fn main() -> Result<(), Box<dyn std::error::Error>> {
    let proto = "hotspot/v1/hotspot.proto";
    println!("cargo:rerun-if-changed={proto}");

    // Parse and type-check the .proto files.
    let fds = protox::compile([proto], ["."])?;

    // Keep the descriptor set for reflection.
    let out = PathBuf::from(env::var("OUT_DIR")?);
    std::fs::write(
        out.join("hotspot_descriptor.bin"),
        prost::Message::encode_to_vec(&fds),
    )?;

    // Generate the Rust code.
    tonic_prost_build::configure().compile_fds(fds)?;
    Ok(())
}
