//! The checkout's six events and their partial order:
//! a ∥ b, a → c, b → d, c → e, d → e, e → f.
//!
//! Transaction verification runs two processes (`tv-a` for a and c, `tv-b` for b), so that a and b
//! are concurrent: events of one process are always ordered. Each event has a place in its
//! process: after it runs, its process's component of the clock equals [`Event::seq`]. So a
//! service can tell from an incoming clock whether an event's predecessors have happened.

use serde::{Deserialize, Serialize};

use crate::vector_clock::VectorClock;

/// The processes that keep a component of the order's vector clock.
pub const PROCESSES: [&str; 4] = ["tv-a", "tv-b", "fraud", "suggestions"];

#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Event {
    A,
    B,
    C,
    D,
    E,
    F,
}

/// The function that runs an event.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum Service {
    TransactionVerification,
    FraudDetection,
    Suggestions,
}

/// Why a service refuses to run an event.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum OrderViolation {
    #[error("event {event} needs event {missing} first, which the clock {clock} does not include")]
    PredecessorMissing { event: Event, missing: Event, clock: VectorClock },
    #[error("event {event} has already run for this order")]
    AlreadyRan { event: Event },
}

impl Event {
    pub const ALL: [Event; 6] = [Event::A, Event::B, Event::C, Event::D, Event::E, Event::F];

    pub fn letter(self) -> &'static str {
        match self {
            Event::A => "a",
            Event::B => "b",
            Event::C => "c",
            Event::D => "d",
            Event::E => "e",
            Event::F => "f",
        }
    }

    pub fn service(self) -> Service {
        match self {
            Event::A | Event::B | Event::C => Service::TransactionVerification,
            Event::D | Event::E => Service::FraudDetection,
            Event::F => Service::Suggestions,
        }
    }

    /// The process whose clock component this event advances.
    pub fn process(self) -> &'static str {
        match self {
            Event::A | Event::C => "tv-a",
            Event::B => "tv-b",
            Event::D | Event::E => "fraud",
            Event::F => "suggestions",
        }
    }

    /// The event's place in its process (1 for its first event).
    pub fn seq(self) -> u64 {
        match self {
            Event::A | Event::B | Event::D | Event::F => 1,
            Event::C | Event::E => 2,
        }
    }

    /// The event before this one in its process, if it is not the process's first.
    pub fn previous_in_process(self) -> Option<Event> {
        Event::ALL.into_iter().find(|e| e.process() == self.process() && e.seq() + 1 == self.seq())
    }

    /// The events that must happen directly before this one.
    pub fn predecessors(self) -> &'static [Event] {
        match self {
            Event::A | Event::B => &[],
            Event::C => &[Event::A],
            Event::D => &[Event::B],
            Event::E => &[Event::C, Event::D],
            Event::F => &[Event::E],
        }
    }

    /// Whether `self → other` in the graph (transitively).
    pub fn precedes(self, other: Event) -> bool {
        other.predecessors().iter().any(|p| *p == self || self.precedes(*p))
    }

    pub fn description(self) -> &'static str {
        match self {
            Event::A => "the cart is not empty and quantities are positive",
            Event::B => "the user data is filled in",
            Event::C => "the card number, expiry and CVV are well formed",
            Event::D => "the user data looks legitimate",
            Event::E => "the card and order look legitimate",
            Event::F => "books to suggest for this cart",
        }
    }

    /// The rule every service applies before running an event: the clock it is given must include
    /// every predecessor, and the event must not have run yet in `process_clock` (the clock the
    /// service keeps for this order and this event's process). On success both clocks are
    /// merged, the process ticks, and the result is the event's clock.
    pub fn advance(self, process_clock: &VectorClock, incoming: &VectorClock) -> Result<VectorClock, OrderViolation> {
        if process_clock.get(self.process()) >= self.seq() {
            return Err(OrderViolation::AlreadyRan { event: self });
        }
        for missing in self.predecessors() {
            if incoming.get(missing.process()) < missing.seq() {
                return Err(OrderViolation::PredecessorMissing {
                    event: self,
                    missing: *missing,
                    clock: incoming.clone(),
                });
            }
        }
        let mut clock = process_clock.clone();
        clock.merge(incoming);
        clock.tick(self.process());
        Ok(clock)
    }
}

impl std::fmt::Display for Event {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.letter())
    }
}

#[cfg(test)]
mod tests {
    use std::collections::BTreeMap;

    use super::*;

    /// Runs the graph as the orchestrator would: each event gets the merge of its predecessors'
    /// clocks; each process keeps its own clock.
    fn run_graph() -> BTreeMap<Event, VectorClock> {
        let mut lanes: BTreeMap<&str, VectorClock> = BTreeMap::new();
        let mut clocks = BTreeMap::new();
        for event in Event::ALL {
            let mut incoming = VectorClock::zero(PROCESSES);
            for p in event.predecessors() {
                incoming.merge(&clocks[p]);
            }
            let lane = lanes.entry(event.process()).or_default();
            let clock = event.advance(lane, &incoming).unwrap();
            *lane = clock.clone();
            clocks.insert(event, clock);
        }
        clocks
    }

    #[test]
    fn recorded_clocks_capture_exactly_the_graph() {
        let clocks = run_graph();
        for x in Event::ALL {
            for y in Event::ALL {
                assert_eq!(
                    x.precedes(y),
                    clocks[&x].happened_before(&clocks[&y]),
                    "{x} → {y} in the graph iff VC({x}) < VC({y}): {} vs {}",
                    clocks[&x],
                    clocks[&y]
                );
            }
        }
        assert!(clocks[&Event::A].concurrent_with(&clocks[&Event::B]));
        let f = &clocks[&Event::F];
        assert_eq!((f.get("tv-a"), f.get("tv-b"), f.get("fraud"), f.get("suggestions")), (2, 1, 2, 1));
    }

    #[test]
    fn the_graph_is_as_designed() {
        let edges: Vec<(Event, Event)> =
            Event::ALL.iter().flat_map(|y| y.predecessors().iter().map(move |x| (*x, *y))).collect();
        use Event::*;
        assert_eq!(edges, vec![(A, C), (B, D), (C, E), (D, E), (E, F)]);
        assert!(!A.precedes(B) && !B.precedes(A) && A.precedes(F) && !F.precedes(A));
    }

    #[test]
    fn an_event_whose_predecessor_is_missing_is_refused() {
        let fresh = VectorClock::new();
        let err = Event::C.advance(&fresh, &VectorClock::zero(PROCESSES)).unwrap_err();
        assert!(matches!(err, OrderViolation::PredecessorMissing { event: Event::C, missing: Event::A, .. }), "{err}");
        // e needs both c and d: d alone is not enough.
        let mut after_d = VectorClock::new();
        after_d.tick("tv-b");
        after_d.tick("fraud");
        let err = Event::E.advance(&after_d, &after_d).unwrap_err();
        assert!(matches!(err, OrderViolation::PredecessorMissing { missing: Event::C, .. }));
    }

    #[test]
    fn the_previous_event_of_a_process_is_a_predecessor() {
        assert_eq!(Event::C.previous_in_process(), Some(Event::A));
        assert_eq!(Event::E.previous_in_process(), Some(Event::D));
        for event in Event::ALL {
            match event.previous_in_process() {
                Some(previous) => assert!(event.predecessors().contains(&previous), "{event}"),
                None => assert_eq!(event.seq(), 1, "{event}"),
            }
        }
    }

    #[test]
    fn an_event_runs_once() {
        let a = Event::A.advance(&VectorClock::new(), &VectorClock::new()).unwrap();
        assert_eq!(Event::A.advance(&a, &VectorClock::new()), Err(OrderViolation::AlreadyRan { event: Event::A }));
    }
}
