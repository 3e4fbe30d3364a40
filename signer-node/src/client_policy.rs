//! The raw-signing allow-list of this signer (`[[clients]]`): which client certificate names
//! may call `SignerClient.SignDigest`, with which keys, and how many accepted requests each may
//! make per sliding hour.
//!
//! Every signer decides alone, from its own configuration and the caller's mTLS certificate:
//! no signer acts on another's word that a client asked. The quota counters live in memory (a
//! restart forgets them, so the quota bounds what one process lifetime accepts per hour) and
//! are charged only when a request is accepted, after every other check passed; a refused
//! request charges nothing.

use std::collections::{BTreeMap, VecDeque};
use std::sync::Mutex;
use std::time::{Duration, Instant};

use crate::config::{AllowedKeys, ClientPolicy, ValidatedConfig};
use crate::vault::KeyId;

/// The quota window.
pub const QUOTA_WINDOW: Duration = Duration::from_secs(3600);

/// Why a client may not sign.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum ClientDenied {
    /// Not on the allow-list (`PERMISSION_DENIED`).
    #[error("client {0:?} is not on this signer's raw-signing allow-list")]
    NotAllowed(String),
    /// On the list, but not for this key (`PERMISSION_DENIED`).
    #[error("client {client:?} may not sign with key {}", hex::encode(.key_id))]
    KeyNotAllowed {
        /// The client.
        client: String,
        /// The key asked for.
        key_id: KeyId,
    },
    /// The quota is used up (`RESOURCE_EXHAUSTED`).
    #[error("client {client:?} already had {max} signatures accepted by this signer in the last {window_secs} s (quota)")]
    Quota {
        /// The client.
        client: String,
        /// Its quota.
        max: u32,
        /// The window.
        window_secs: u64,
    },
    /// The counters are unavailable (`UNAVAILABLE`).
    #[error("client quota counters unavailable")]
    Unavailable,
}

impl From<ClientDenied> for tonic::Status {
    fn from(d: ClientDenied) -> Self {
        match d {
            ClientDenied::NotAllowed(_) | ClientDenied::KeyNotAllowed { .. } => {
                tonic::Status::permission_denied(d.to_string())
            }
            ClientDenied::Quota { .. } => tonic::Status::resource_exhausted(d.to_string()),
            ClientDenied::Unavailable => tonic::Status::unavailable(d.to_string()),
        }
    }
}

/// The allow-list and its quota counters.
#[derive(Debug)]
pub struct ClientPolicies {
    clients: BTreeMap<String, ClientPolicy>,
    window: Duration,
    charges: Mutex<BTreeMap<String, VecDeque<Instant>>>,
}

impl ClientPolicies {
    /// The allow-list of a validated configuration, with a one-hour window.
    pub fn from_config(config: &ValidatedConfig) -> Self {
        Self::new(config.clients.clone(), QUOTA_WINDOW)
    }

    /// An allow-list with an explicit window (tests use short ones).
    pub fn new(clients: Vec<ClientPolicy>, window: Duration) -> Self {
        Self {
            clients: clients.into_iter().map(|c| (c.name.clone(), c)).collect(),
            window,
            charges: Mutex::new(BTreeMap::new()),
        }
    }

    /// Whether `client` is on the list at all.
    pub fn is_listed(&self, client: &str) -> bool {
        self.clients.contains_key(client)
    }

    /// Checks that `client` may sign with `key_id` (charges nothing).
    pub fn check(&self, client: &str, key_id: &KeyId) -> Result<(), ClientDenied> {
        let policy = self
            .clients
            .get(client)
            .ok_or_else(|| ClientDenied::NotAllowed(client.to_owned()))?;
        match &policy.keys {
            AllowedKeys::All => Ok(()),
            AllowedKeys::Only(keys) if keys.contains(key_id) => Ok(()),
            AllowedKeys::Only(_) => Err(ClientDenied::KeyNotAllowed {
                client: client.to_owned(),
                key_id: *key_id,
            }),
        }
    }

    /// Charges one accepted request to `client` at `now`, or refuses if its quota of
    /// requests within the window ending at `now` is used up.
    pub fn charge(&self, client: &str, now: Instant) -> Result<(), ClientDenied> {
        let policy = self
            .clients
            .get(client)
            .ok_or_else(|| ClientDenied::NotAllowed(client.to_owned()))?;
        let mut charges = self.charges.lock().map_err(|_| ClientDenied::Unavailable)?;
        let times = charges.entry(client.to_owned()).or_default();
        while let Some(&first) = times.front() {
            if now.saturating_duration_since(first) >= self.window {
                times.pop_front();
            } else {
                break;
            }
        }
        if times.len() >= policy.max_signatures_per_hour as usize {
            return Err(ClientDenied::Quota {
                client: client.to_owned(),
                max: policy.max_signatures_per_hour,
                window_secs: self.window.as_secs(),
            });
        }
        times.push_back(now);
        Ok(())
    }

    /// How many requests of `client` were charged within the window ending at `now`.
    pub fn used(&self, client: &str, now: Instant) -> usize {
        self.charges
            .lock()
            .ok()
            .and_then(|c| {
                c.get(client).map(|times| {
                    times
                        .iter()
                        .filter(|t| now.saturating_duration_since(**t) < self.window)
                        .count()
                })
            })
            .unwrap_or(0)
    }
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]
    use std::collections::BTreeSet;

    use super::*;

    fn policies() -> ClientPolicies {
        ClientPolicies::new(
            vec![
                ClientPolicy {
                    name: "wallet".into(),
                    keys: AllowedKeys::Only(BTreeSet::from([[1; 32]])),
                    max_signatures_per_hour: 2,
                },
                ClientPolicy {
                    name: "node".into(),
                    keys: AllowedKeys::All,
                    max_signatures_per_hour: 1,
                },
            ],
            Duration::from_secs(10),
        )
    }

    #[test]
    fn allow_list_and_keys() {
        let p = policies();
        assert!(p.check("wallet", &[1; 32]).is_ok());
        assert!(matches!(
            p.check("wallet", &[2; 32]),
            Err(ClientDenied::KeyNotAllowed { .. })
        ));
        assert!(p.check("node", &[2; 32]).is_ok());
        assert!(matches!(
            p.check("stranger", &[1; 32]),
            Err(ClientDenied::NotAllowed(_))
        ));
        assert!(p.is_listed("node") && !p.is_listed("stranger"));
    }

    #[test]
    fn quota_slides_and_is_per_client() {
        let p = policies();
        let t0 = Instant::now();
        p.charge("wallet", t0).unwrap();
        p.charge("wallet", t0 + Duration::from_secs(5)).unwrap();
        let over = p.charge("wallet", t0 + Duration::from_secs(9)).unwrap_err();
        assert!(matches!(over, ClientDenied::Quota { max: 2, .. }));
        // a refusal charged nothing
        assert_eq!(p.used("wallet", t0 + Duration::from_secs(9)), 2);
        // another client has its own counter
        p.charge("node", t0).unwrap();
        // the first charge leaves the window at t0 + 10 s
        p.charge("wallet", t0 + Duration::from_secs(10)).unwrap();
        assert!(p.charge("wallet", t0 + Duration::from_secs(11)).is_err());
        assert!(matches!(
            p.charge("stranger", t0),
            Err(ClientDenied::NotAllowed(_))
        ));
    }
}
