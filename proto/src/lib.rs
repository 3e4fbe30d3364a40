//! The custody appliance's versioned protobuf packages and the tonic/prost code generated from
//! them at build time (see `README.md` in this crate for the packages and the versioning rule).
//!
//! One Rust module per protobuf package: `custody.signer.v1` is [`signer::v1`],
//! `custody.coordinator.v1` is [`coordinator::v1`]. Each holds the
//! messages, and the client and server of each service (`signer_peer_client`,
//! `signer_peer_server`, ...); each server module has the service's fully qualified name
//! as `SERVICE_NAME`.
//!
//! Beside the generated code, the parts of the wire contract that signers and coordinators
//! both implement live here once: roles from certificates ([`identity`]), the fleet's mTLS
//! material and channels ([`tls`]), channels pinned to one signer ([`peer_tls`]), the
//! signing order the coordinator writes and every signer's gate reads ([`order`]), and the
//! canonical formats of the coordinator's chain that signers verify ([`chain`]: block header,
//! commit certificate, Merkle inclusion proof, order commitment).
#![forbid(unsafe_code)]

pub mod chain;
pub mod identity;
pub mod order;
pub mod peer_tls;
pub mod tls;

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

/// Packages under `custody.coordinator`: what coordinators serve.
pub mod coordinator {
    /// `custody.coordinator.v1`: the coordinator's public API for wallets and chain nodes
    /// (transactions, accounts, lock-in and lock-out status, blocks, proofs, events).
    #[allow(
        missing_docs,
        clippy::all,
        clippy::pedantic,
        clippy::unwrap_used,
        clippy::expect_used,
        clippy::panic
    )]
    pub mod v1 {
        tonic::include_proto!("custody.coordinator.v1");
    }
}

/// The encoded `FileDescriptorSet` of every package in this crate, for gRPC server reflection
/// (`tonic_reflection::server::Builder::register_encoded_file_descriptor_set`).
pub const FILE_DESCRIPTOR_SET: &[u8] = tonic::include_file_descriptor_set!("custody_descriptor");
