//! Decides whether a history of register operations is linearizable: the Wing–Gong search with
//! Lowe's memoisation, as Porcupine does it, one key at a time (linearizability is compositional).
//!
//! Operations are events on a time line (a call, later its return). The search walks the line,
//! tries to linearize each call that has not returned yet in some order, and backtracks when it
//! reaches a return whose call it could not place. A state it has been in before (the same set of
//! placed operations and the same register value) is not searched again. An operation with an
//! unknown outcome returns "never": it may be placed anywhere after its call, with or without its
//! effect; reads with unknown outcomes constrain nothing and are left out.

use std::collections::{BTreeMap, BTreeSet, HashSet};

use super::history::{Call, Operation, Return};

/// The register's possible values at one point of the search: a set, because an operation of
/// unknown outcome may or may not have taken effect.
type States = BTreeSet<Option<i64>>;

/// One key's history has no linearization.
#[derive(Debug, Clone, PartialEq)]
pub struct Violation {
    pub key: String,
    /// The operation the search could place least far past: it cannot be ordered after what must
    /// precede it.
    pub operation: Operation,
    /// How many of the key's operations the longest partial linearization held.
    pub placed: usize,
    pub operations: usize,
}

impl std::fmt::Display for Violation {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(
            f,
            "key {:?} is not linearizable: no order of its {} operations explains `{}` (the longest explained prefix has {})",
            self.key, self.operations, self.operation, self.placed
        )
    }
}

/// Checks every key of `history`; returns the keys that are not linearizable.
pub fn check(history: &[Operation]) -> Vec<Violation> {
    let mut by_key: BTreeMap<&str, Vec<&Operation>> = BTreeMap::new();
    for op in history {
        if op.call == Call::Read && op.ret == Return::Unknown {
            continue;
        }
        by_key.entry(op.key.as_str()).or_default().push(op);
    }
    by_key.into_iter().filter_map(|(key, ops)| check_key(key, &ops)).collect()
}

/// Where the register can go from each of `states` by `op`; empty when `op` cannot happen now.
fn step(states: &States, op: &Operation) -> States {
    let mut next = States::new();
    for &value in states {
        match (op.call, op.ret) {
            (Call::Read, Return::Read(read)) if read == value => {
                next.insert(value);
            }
            (Call::Write(v), Return::Written | Return::Unknown) => {
                next.insert(Some(v));
            }
            (Call::Cas { from, to }, Return::Cas(true)) if value == Some(from) => {
                next.insert(Some(to));
            }
            (Call::Cas { from, .. }, Return::Cas(false)) if value != Some(from) => {
                next.insert(value);
            }
            (Call::Cas { from, to }, Return::Unknown) => {
                next.insert(value);
                if value == Some(from) {
                    next.insert(Some(to));
                }
            }
            _ => {}
        }
    }
    next
}

const NIL: usize = usize::MAX;

/// A call or return event in the doubly linked time line.
struct Event {
    op: usize,
    is_call: bool,
    /// For a call, its return event.
    partner: usize,
    prev: usize,
    next: usize,
}

/// The key's violation, or `None` when its history is linearizable.
fn check_key(key: &str, ops: &[&Operation]) -> Option<Violation> {
    // Events sorted by time; a call before a return at the same instant (they overlap).
    let mut order: Vec<(std::time::Duration, bool, usize)> = Vec::with_capacity(ops.len() * 2);
    for (i, op) in ops.iter().enumerate() {
        order.push((op.invoked, false, i));
        let completed = if op.ret == Return::Unknown { std::time::Duration::MAX } else { op.completed };
        order.push((completed, true, i));
    }
    order.sort();
    let mut events: Vec<Event> = Vec::with_capacity(order.len());
    let mut call_of = vec![NIL; ops.len()];
    for (position, &(_, is_return, op)) in order.iter().enumerate() {
        let prev = if position == 0 { NIL } else { position - 1 };
        let next = if position + 1 == order.len() { NIL } else { position + 1 };
        events.push(Event { op, is_call: !is_return, partner: NIL, prev, next });
        if is_return {
            events[call_of[op]].partner = position;
        } else {
            call_of[op] = position;
        }
    }
    let mut head = if events.is_empty() { NIL } else { 0 };

    let words = ops.len().div_ceil(64);
    let mut placed = vec![0u64; words];
    let mut states: States = [None].into();
    let mut seen: HashSet<(Vec<u64>, States)> = HashSet::new();
    let mut stack: Vec<(usize, States)> = Vec::new();
    let mut deepest = (0, 0usize);
    let mut entry = head;
    while head != NIL {
        let event = &events[entry];
        if event.is_call {
            let op = event.op;
            let next_states = step(&states, ops[op]);
            if !next_states.is_empty() {
                let mut next_placed = placed.clone();
                next_placed[op / 64] |= 1 << (op % 64);
                if seen.insert((next_placed.clone(), next_states.clone())) {
                    stack.push((entry, std::mem::replace(&mut states, next_states)));
                    placed = next_placed;
                    lift(&mut events, &mut head, entry);
                    entry = head;
                    continue;
                }
            }
            entry = events[entry].next;
        } else {
            // A return whose call is not placed: what is placed so far cannot be extended.
            if stack.len() >= deepest.0 {
                deepest = (stack.len(), event.op);
            }
            let Some((call, previous)) = stack.pop() else {
                return Some(violation(key, ops, deepest));
            };
            states = previous;
            let op = events[call].op;
            placed[op / 64] &= !(1 << (op % 64));
            unlift(&mut events, &mut head, call);
            entry = events[call].next;
        }
    }
    None
}

fn violation(key: &str, ops: &[&Operation], (placed, op): (usize, usize)) -> Violation {
    Violation { key: key.to_string(), operation: ops[op].clone(), placed, operations: ops.len() }
}

/// Takes a call and its return out of the time line.
fn lift(events: &mut [Event], head: &mut usize, call: usize) {
    let ret = events[call].partner;
    for e in [call, ret] {
        let (prev, next) = (events[e].prev, events[e].next);
        if prev == NIL {
            *head = next;
        } else {
            events[prev].next = next;
        }
        if next != NIL {
            events[next].prev = prev;
        }
    }
}

/// Puts them back, in the reverse order of taking out.
fn unlift(events: &mut [Event], head: &mut usize, call: usize) {
    let ret = events[call].partner;
    for e in [ret, call] {
        let (prev, next) = (events[e].prev, events[e].next);
        if prev == NIL {
            *head = e;
        } else {
            events[prev].next = e;
        }
        if next != NIL {
            events[next].prev = e;
        }
    }
}

#[cfg(test)]
mod tests {
    use std::time::Duration;

    use super::*;

    /// An operation on key "k" by `client` from `start` to `end` (milliseconds).
    fn op(client: usize, call: Call, ret: Return, start: u64, end: u64) -> Operation {
        Operation {
            client,
            key: "k".into(),
            call,
            ret,
            invoked: Duration::from_millis(start),
            completed: Duration::from_millis(end),
        }
    }

    fn linearizable(history: &[Operation]) -> bool {
        check(history).is_empty()
    }

    #[test]
    fn sequential_and_overlapping_histories_that_have_an_order_pass() {
        assert!(linearizable(&[
            op(0, Call::Read, Return::Read(None), 0, 1),
            op(0, Call::Write(1), Return::Written, 2, 3),
            op(1, Call::Read, Return::Read(Some(1)), 4, 5),
            op(1, Call::Cas { from: 1, to: 2 }, Return::Cas(true), 6, 7),
            op(0, Call::Cas { from: 1, to: 3 }, Return::Cas(false), 8, 9),
            op(0, Call::Read, Return::Read(Some(2)), 10, 11),
        ]));
        // A read overlapping a write may see either value; two overlapping reads may disagree
        // if the write falls between them.
        assert!(linearizable(&[
            op(0, Call::Write(1), Return::Written, 0, 10),
            op(1, Call::Read, Return::Read(Some(1)), 1, 2),
            op(2, Call::Read, Return::Read(None), 0, 3),
        ]));
        // The write's call comes last in time order but must be placed first.
        assert!(linearizable(&[
            op(1, Call::Read, Return::Read(Some(5)), 0, 10),
            op(0, Call::Write(5), Return::Written, 5, 6),
        ]));
    }

    #[test]
    fn a_stale_read_is_caught() {
        let violations = check(&[
            op(0, Call::Write(1), Return::Written, 0, 1),
            op(0, Call::Write(2), Return::Written, 2, 3),
            op(1, Call::Read, Return::Read(Some(1)), 4, 5),
        ]);
        assert_eq!(violations.len(), 1);
        assert_eq!(violations[0].key, "k");
        assert_eq!(violations[0].operation.ret, Return::Read(Some(1)), "{}", violations[0]);
    }

    #[test]
    fn a_lost_write_is_caught() {
        assert!(!linearizable(&[
            op(0, Call::Write(1), Return::Written, 0, 1),
            op(1, Call::Read, Return::Read(None), 2, 3),
        ]));
    }

    #[test]
    fn a_cas_that_succeeds_twice_is_caught() {
        assert!(!linearizable(&[
            op(0, Call::Write(0), Return::Written, 0, 1),
            op(1, Call::Cas { from: 0, to: 1 }, Return::Cas(true), 2, 10),
            op(2, Call::Cas { from: 0, to: 2 }, Return::Cas(true), 3, 9),
        ]));
        // One of them failing is fine.
        assert!(linearizable(&[
            op(0, Call::Write(0), Return::Written, 0, 1),
            op(1, Call::Cas { from: 0, to: 1 }, Return::Cas(true), 2, 10),
            op(2, Call::Cas { from: 0, to: 2 }, Return::Cas(false), 3, 9),
        ]));
    }

    #[test]
    fn a_value_nobody_wrote_is_caught() {
        assert!(!linearizable(&[op(0, Call::Read, Return::Read(Some(7)), 0, 1)]));
    }

    #[test]
    fn unknown_outcomes_may_or_may_not_have_happened_but_only_after_their_call() {
        // An unknown write seen later: it happened.
        assert!(linearizable(&[
            op(0, Call::Write(1), Return::Unknown, 0, 1),
            op(1, Call::Read, Return::Read(Some(1)), 50, 51),
        ]));
        // Or not seen: it did not (or not yet).
        assert!(linearizable(&[
            op(0, Call::Write(1), Return::Unknown, 0, 1),
            op(1, Call::Read, Return::Read(None), 50, 51),
        ]));
        // An unknown CAS may have applied, and then a later read sees its value.
        assert!(linearizable(&[
            op(0, Call::Write(0), Return::Written, 0, 1),
            op(1, Call::Cas { from: 0, to: 4 }, Return::Unknown, 2, 3),
            op(2, Call::Read, Return::Read(Some(4)), 10, 11),
            op(2, Call::Read, Return::Read(Some(4)), 12, 13),
        ]));
        // But never before it was called.
        assert!(!linearizable(&[
            op(1, Call::Read, Return::Read(Some(1)), 0, 1),
            op(0, Call::Write(1), Return::Unknown, 5, 6),
        ]));
        // And once seen overwritten, it cannot come back.
        assert!(!linearizable(&[
            op(0, Call::Write(1), Return::Unknown, 0, 1),
            op(1, Call::Read, Return::Read(Some(1)), 10, 11),
            op(1, Call::Write(2), Return::Written, 12, 13),
            op(1, Call::Read, Return::Read(Some(2)), 14, 15),
            op(2, Call::Read, Return::Read(Some(1)), 16, 17),
        ]));
    }

    #[test]
    fn keys_are_checked_apart_and_only_the_bad_one_is_named() {
        let mut good = op(0, Call::Write(1), Return::Written, 0, 1);
        good.key = "good".into();
        let mut good_read = op(1, Call::Read, Return::Read(Some(1)), 2, 3);
        good_read.key = "good".into();
        let bad = op(1, Call::Read, Return::Read(Some(9)), 2, 3);
        let violations = check(&[good, good_read, bad]);
        assert_eq!(violations.iter().map(|v| v.key.as_str()).collect::<Vec<_>>(), ["k"]);
        assert!(violations[0].to_string().contains("read on \"k\" -> 9"), "{}", violations[0]);
    }

    #[test]
    fn a_long_concurrent_history_is_checked_quickly() {
        // Four clients, 2,000 operations, every one overlapping its neighbours: without the
        // memo the search would be exponential.
        let mut history = Vec::new();
        let mut value = None;
        for i in 0..2_000u64 {
            let client = (i % 4) as usize;
            let (call, ret) = match i % 3 {
                0 => (Call::Write(i as i64), Return::Written),
                1 => (Call::Read, Return::Read(value)),
                _ => (Call::Cas { from: -1, to: 0 }, Return::Cas(false)),
            };
            if let Call::Write(v) = call {
                value = Some(v);
            }
            history.push(op(client, call, ret, i * 10, i * 10 + 15));
        }
        assert!(linearizable(&history));
    }
}
