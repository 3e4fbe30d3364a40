//! Committee positions ↔ fleet signer indices.
//!
//! mpc-core numbers the parties of a key 0..m ([`PartyIndex`]); envelopes name fleet signer
//! indices. A key's committee is its holders in increasing index order, and the Shamir
//! evaluation point of the holder with index i is the scalar i itself, so the mapping can be
//! read back from a stored [`mpc_core::dkg::KeyShare`]'s committee without another record.

use k256::Scalar;
use mpc_core::protocol::{Committee, CommitteeError, PartyIndex};

/// The holders of one key (or the participants of one keygen), in increasing index order:
/// position p is `members()[p]`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Positions {
    members: Vec<u16>,
}

impl Positions {
    /// The positions of `members` (any order, distinct, each ≥ 1).
    pub fn new(mut members: Vec<u16>) -> Result<Self, String> {
        members.sort_unstable();
        if members.is_empty() {
            return Err("no signers given".into());
        }
        if members.first() == Some(&0) {
            return Err("signer index 0 does not exist (indices start at 1)".into());
        }
        if members.windows(2).any(|w| w[0] == w[1]) {
            return Err("a signer index is listed twice".into());
        }
        Ok(Self { members })
    }

    /// Reads the holders back from a committee made by [`Positions::committee`]: each point
    /// must be the scalar of one of `fleet`'s indices.
    pub fn from_committee(committee: &Committee, fleet: &[u16]) -> Option<Self> {
        let members = committee
            .points()
            .iter()
            .map(|point| {
                fleet
                    .iter()
                    .copied()
                    .find(|i| Scalar::from(u64::from(*i)) == *point)
            })
            .collect::<Option<Vec<u16>>>()?;
        // points were made in increasing order; anything else is not ours
        Self::new(members.clone())
            .ok()
            .filter(|p| p.members == members)
    }

    /// The mpc-core committee: holder i evaluates at x = i.
    pub fn committee(&self) -> Result<Committee, CommitteeError> {
        Committee::new(
            self.members
                .iter()
                .map(|i| Scalar::from(u64::from(*i)))
                .collect(),
        )
    }

    /// The signer indices, increasing.
    pub fn members(&self) -> &[u16] {
        &self.members
    }

    /// The position of signer `index`, if it is a member.
    pub fn position_of(&self, index: u16) -> Option<PartyIndex> {
        self.members
            .binary_search(&index)
            .ok()
            .and_then(|p| u16::try_from(p).ok())
            .map(PartyIndex::new)
    }

    /// The signer index at position `p`.
    pub fn index_of(&self, p: PartyIndex) -> Option<u16> {
        self.members.get(p.as_usize()).copied()
    }
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]
    use super::*;

    #[test]
    fn positions_follow_index_order_and_survive_the_committee() {
        let p = Positions::new(vec![5, 2, 9]).unwrap();
        assert_eq!(p.members(), &[2, 5, 9]);
        assert_eq!(p.position_of(5), Some(PartyIndex::new(1)));
        assert_eq!(p.position_of(3), None);
        assert_eq!(p.index_of(PartyIndex::new(2)), Some(9));
        assert_eq!(p.index_of(PartyIndex::new(3)), None);
        let c = p.committee().unwrap();
        assert_eq!(Positions::from_committee(&c, &[1, 2, 5, 9]), Some(p));
        assert_eq!(Positions::from_committee(&c, &[1, 2, 9]), None);
        assert!(Positions::new(vec![]).is_err());
        assert!(Positions::new(vec![0, 1]).is_err());
        assert!(Positions::new(vec![1, 1]).is_err());
    }
}
