//! The custody coordinator (issue #5, DESIGN §6): the embedded FUSION-style chain, the
//! contract engine that decides when lock-in addresses are made and lock-outs signed, the
//! chain adapters that watch and spend on external chains, and the orchestration of signer
//! sessions. It never sees a secret share.
//!
//! | module | job |
//! |---|---|
//! | [`adapter`] | one trait for external chains; Ethereum and Bitcoin; confirmation depth |
//! | [`chain`] | the embedded chain: transactions, state in sled, blocks, solo consensus |
//! | [`api`] | the public gRPC API over mTLS, with health and reflection |
//! | [`config`] | the `coordinator run` TOML file and the validator key file |
//! | [`node`] | the node loop: mempool, solo block producer, broadcast of committed blocks |
//! | [`engine`] | contract engine: deposit watcher (lock-in), lock-out saga, its journal |
//! | [`client`] | a caller of the public API (the `custody` CLI and the devnet use it) |
//! | [`devnet`] | `coordinator devnet`: dev chains, 5 signers, a coordinator, a scripted lock-in and lock-out |
//! | [`fleet`] | sessions on the signer fleet over mTLS: DKG, presign, sign; signers by reliability |
//! | [`signals`] | Ctrl-C / SIGTERM for the binaries |
//! | [`runner`] | the engine loop of `coordinator run`: DKG for key requests, watcher and saga per asset |
#![forbid(unsafe_code)]

pub mod adapter;
pub mod api;
pub mod chain;
pub mod client;
pub mod config;
pub mod devnet;
pub mod engine;
pub mod fleet;
pub mod node;
pub mod runner;
pub mod signals;
