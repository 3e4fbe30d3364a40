//! The custody appliance's versioned protobuf packages and the tonic/prost code generated from
//! them at build time (see `README.md` in this crate for the packages and the versioning rule).
//!
//! One Rust module per protobuf package: `custody.signer.v1` is [`signer::v1`]. Each holds the
//! messages, and the client and server of each service (`signer_peer_client`,
//! `signer_peer_server`, ...); each server module has the service's fully qualified name
//! as `SERVICE_NAME`.
//!
//! [`chain`] holds the hand-written canonical formats of the coordinator's chain (block
//! header, commit certificate, Merkle inclusion proof, order commitment) that signers verify.
#![forbid(unsafe_code)]

pub mod chain;

/// Packages under `custody.signer`: what signer nodes serve.
pub mod signer {
    /// `custody.signer.v1`: the peer, control and client services of a signer node.
    #[allow(
        missing_docs,
        clippy::all,
        clippy::pedantic,
        clippy::unwrap_used,
        clippy::expect_used,
        clippy::panic
    )]
    pub mod v1 {
        tonic::include_proto!("custody.signer.v1");
    }
}

/// The encoded `FileDescriptorSet` of every package in this crate, for gRPC server reflection
/// (`tonic_reflection::server::Builder::register_encoded_file_descriptor_set`).
pub const FILE_DESCRIPTOR_SET: &[u8] = tonic::include_file_descriptor_set!("custody_descriptor");
