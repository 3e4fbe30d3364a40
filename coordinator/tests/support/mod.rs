//! Helpers shared by the coordinator's integration tests.
#![allow(dead_code)]

pub mod anvil;
pub mod local_fleet;
pub mod signers;
