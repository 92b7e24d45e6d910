//! Sharding a run across CI machines: `mic run --shard 2/4` runs the scenarios whose
//! stable hash falls in shard 2 of 4.
//!
//! The hash is FNV-1a of the scenario id: stable across machines, Rust versions and the
//! set of scenarios (adding one never moves the others), and both trials of a scenario land
//! on the same machine. Every scenario is in exactly one shard.

use std::fmt;
use std::str::FromStr;

/// Shard `index` (1-based) of `count`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Shard {
    pub index: u32,
    pub count: u32,
}

/// FNV-1a, 64 bits.
pub fn stable_hash(s: &str) -> u64 {
    s.bytes().fold(0xcbf2_9ce4_8422_2325, |h, b| {
        (h ^ u64::from(b)).wrapping_mul(0x0000_0100_0000_01b3)
    })
}

impl Shard {
    /// # Errors
    /// `index` is 0 or above `count`.
    pub fn new(index: u32, count: u32) -> Result<Self, ShardError> {
        if count == 0 || index == 0 || index > count {
            return Err(ShardError(format!("{index}/{count}")));
        }
        Ok(Self { index, count })
    }

    /// Whether `scenario_id` runs in this shard.
    pub fn contains(&self, scenario_id: &str) -> bool {
        stable_hash(scenario_id) % u64::from(self.count) == u64::from(self.index - 1)
    }

    /// The items of this shard, in their order.
    pub fn select<T>(&self, items: impl IntoIterator<Item = T>, id: impl Fn(&T) -> &str) -> Vec<T> {
        items.into_iter().filter(|t| self.contains(id(t))).collect()
    }
}

impl fmt::Display for Shard {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}/{}", self.index, self.count)
    }
}

#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("`{0}` is not a shard: use i/n with 1 <= i <= n, e.g. 2/4")]
pub struct ShardError(String);

impl FromStr for Shard {
    type Err = ShardError;

    fn from_str(s: &str) -> Result<Self, ShardError> {
        let (i, n) = s.split_once('/').ok_or_else(|| ShardError(s.into()))?;
        let parse = |v: &str| v.trim().parse::<u32>().map_err(|_| ShardError(s.into()));
        Self::new(parse(i)?, parse(n)?).map_err(|_| ShardError(s.into()))
    }
}
