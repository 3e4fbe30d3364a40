//! Velocity limit: at most `max` approvals per key within any sliding window.

use std::collections::{BTreeMap, VecDeque};
use std::sync::Mutex;
use std::time::{Duration, SystemTime};

use super::GateRefusal;
use crate::vault::KeyId;

/// Sliding-window counters, one per key.
pub(super) struct VelocityLimit {
    max: u32,
    window: Duration,
    charges: Mutex<BTreeMap<KeyId, VecDeque<SystemTime>>>,
}

impl VelocityLimit {
    pub(super) fn new(max: u32, window: Duration) -> Self {
        Self {
            max,
            window,
            charges: Mutex::new(BTreeMap::new()),
        }
    }

    /// Records one approval for `key_id` at `now`, or refuses if `max` approvals already
    /// fall within the window ending at `now`.
    pub(super) fn charge(&self, key_id: &KeyId, now: SystemTime) -> Result<(), GateRefusal> {
        let mut charges = self
            .charges
            .lock()
            .map_err(|_| GateRefusal::Denied("velocity counters unavailable".into()))?;
        let times = charges.entry(*key_id).or_default();
        // drop charges older than the window (a clock that went backwards keeps them)
        while let Some(&first) = times.front() {
            match now.duration_since(first) {
                Ok(age) if age >= self.window => {
                    times.pop_front();
                }
                _ => break,
            }
        }
        if times.len() >= self.max as usize {
            return Err(GateRefusal::Denied(format!(
                "velocity limit: key {} already signed {} times in the last {} s",
                hex::encode(key_id),
                times.len(),
                self.window.as_secs()
            )));
        }
        times.push_back(now);
        Ok(())
    }
}
