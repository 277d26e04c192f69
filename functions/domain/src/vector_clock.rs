//! Vector clocks: one counter per process; `a` happened before `b` iff `a ≤ b` component-wise and
//! `a ≠ b`.

use std::cmp::Ordering;
use std::collections::BTreeMap;

use serde::{Deserialize, Serialize};

/// A vector clock: process name → number of events of that process it has seen. Missing
/// processes count as 0. On the wire: `{"tv-a": 1, "fraud": 0}`.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(transparent)]
pub struct VectorClock(BTreeMap<String, u64>);

impl VectorClock {
    pub fn new() -> Self {
        Self::default()
    }

    /// A clock with every named process at 0 (so it prints every lane).
    pub fn zero<'a>(processes: impl IntoIterator<Item = &'a str>) -> Self {
        Self(processes.into_iter().map(|p| (p.to_string(), 0)).collect())
    }

    pub fn get(&self, process: &str) -> u64 {
        self.0.get(process).copied().unwrap_or(0)
    }

    /// Counts a new event of `process`.
    pub fn tick(&mut self, process: &str) {
        *self.0.entry(process.to_string()).or_insert(0) += 1;
    }

    /// Takes the component-wise maximum with `other`: this clock now has seen what both saw.
    pub fn merge(&mut self, other: &VectorClock) {
        for (process, count) in &other.0 {
            let mine = self.0.entry(process.clone()).or_insert(0);
            *mine = (*mine).max(*count);
        }
    }

    /// `self ≤ other` in every component.
    pub fn le(&self, other: &VectorClock) -> bool {
        self.0.iter().all(|(process, count)| *count <= other.get(process))
    }

    /// `self → other`: every event `self` has seen, `other` has seen too, and `other` more.
    pub fn happened_before(&self, other: &VectorClock) -> bool {
        self.le(other) && !other.le(self)
    }

    /// Neither happened before the other (and they differ).
    pub fn concurrent_with(&self, other: &VectorClock) -> bool {
        !self.le(other) && !other.le(self)
    }

    pub fn iter(&self) -> impl Iterator<Item = (&str, u64)> {
        self.0.iter().map(|(p, c)| (p.as_str(), *c))
    }
}

impl FromIterator<(String, u64)> for VectorClock {
    fn from_iter<I: IntoIterator<Item = (String, u64)>>(components: I) -> Self {
        Self(components.into_iter().collect())
    }
}

/// The causal order is partial: `None` for concurrent clocks.
impl PartialOrd for VectorClock {
    fn partial_cmp(&self, other: &Self) -> Option<Ordering> {
        match (self.le(other), other.le(self)) {
            (true, true) => Some(Ordering::Equal),
            (true, false) => Some(Ordering::Less),
            (false, true) => Some(Ordering::Greater),
            (false, false) => None,
        }
    }
}

impl std::fmt::Display for VectorClock {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "{{")?;
        for (i, (process, count)) in self.0.iter().enumerate() {
            if i > 0 {
                write!(f, ", ")?;
            }
            write!(f, "{process}: {count}")?;
        }
        write!(f, "}}")
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn clock(pairs: &[(&str, u64)]) -> VectorClock {
        VectorClock(pairs.iter().map(|(p, c)| (p.to_string(), *c)).collect())
    }

    #[test]
    fn tick_and_merge() {
        let mut a = VectorClock::new();
        a.tick("p");
        a.tick("p");
        let mut b = clock(&[("q", 3), ("p", 1)]);
        b.merge(&a);
        assert_eq!(b, clock(&[("p", 2), ("q", 3)]));
        b.tick("q");
        assert_eq!(b.get("q"), 4);
        assert_eq!(b.get("missing"), 0);
    }

    #[test]
    fn causal_order_is_partial() {
        let a = clock(&[("p", 1)]);
        let b = clock(&[("q", 1)]);
        let c = clock(&[("p", 1), ("q", 1)]);
        assert!(a.happened_before(&c) && b.happened_before(&c));
        assert!(a.concurrent_with(&b));
        assert!(!c.happened_before(&a));
        assert_eq!(a.partial_cmp(&b), None);
        assert!(a < c);
        assert_eq!(clock(&[("p", 1), ("q", 0)]).partial_cmp(&a), Some(Ordering::Equal), "zeros are absent");
        assert!(!a.happened_before(&a) && !a.concurrent_with(&a));
    }

    #[test]
    fn wire_form_is_a_flat_object() {
        let c = clock(&[("tv-a", 1), ("fraud", 0)]);
        assert_eq!(serde_json::to_value(&c).unwrap(), serde_json::json!({"tv-a": 1, "fraud": 0}));
        assert_eq!(c.to_string(), "{fraud: 0, tv-a: 1}");
    }
}
