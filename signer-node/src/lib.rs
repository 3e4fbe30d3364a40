//! One shard holder of the custody fleet: the mutual-TLS gRPC node.
//!
//! What exists now is the network foundation (issue #4): configuration ([`config`]), a devnet
//! PKI ([`pki`]), the node's Ed25519 key ([`node_key`]), mTLS ([`tls`]) with roles from
//! certificates ([`identity`]), signed and verified envelopes ([`envelope`]), the hand-off
//! to sessions ([`inbox`]) and the server ([`server`]), and the interface to the node's
//! durable secrets ([`vault`]). The session runner, the sealed store and the signing gate
//! come later; the RPCs that need them say so (`UNIMPLEMENTED`).
#![forbid(unsafe_code)]

pub mod blame;
pub mod client_policy;
pub mod config;
pub mod devnet;
pub mod envelope;
pub mod fault;
pub mod gate;
/// Roles from certificates: shared with the coordinator, so it lives in `custody_proto`.
pub use custody_proto::identity;
pub mod inbox;
pub mod launch;
pub mod metrics;
pub mod node_key;
/// Channels pinned to one signer: shared with the coordinator (`custody_proto::peer_tls`).
pub use custody_proto::peer_tls;
pub mod pki;
pub mod pools;
pub mod runner;
pub mod server;
pub mod session_record;
pub mod store;
/// The fleet's mTLS material: shared with the coordinator (`custody_proto::tls`).
pub use custody_proto::tls;
pub mod vault;
