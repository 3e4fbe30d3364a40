//! Generates the Rust code of the custody protobuf packages at build time.
//!
//! protoc comes from the `protoc-bin-vendored` crate, so nobody installs it by hand. The file
//! descriptor set written beside the code lets servers offer gRPC server reflection.

use std::path::PathBuf;

/// Every .proto file of every package, relative to `proto/`.
const PROTOS: &[&str] = &[
    "proto/custody/signer/v1/common.proto",
    "proto/custody/signer/v1/envelope.proto",
    "proto/custody/signer/v1/peer.proto",
    "proto/custody/signer/v1/control.proto",
    "proto/custody/signer/v1/client.proto",
    "proto/custody/coordinator/v1/coordinator.proto",
];

fn main() -> Result<(), Box<dyn std::error::Error>> {
    let protoc = protoc_bin_vendored::protoc_bin_path()?;
    let out_dir = PathBuf::from(std::env::var("OUT_DIR")?);

    let mut config = tonic_prost_build::Config::new();
    config.protoc_executable(protoc);

    tonic_prost_build::configure()
        .file_descriptor_set_path(out_dir.join("custody_descriptor.bin"))
        .compile_with_config(config, PROTOS, &["proto"])?;
    for proto in PROTOS {
        println!("cargo:rerun-if-changed={proto}");
    }
    Ok(())
}
