//! The clients of a nemesis run: each talks to one node only and does reads, writes and
//! compare-and-sets on a few registers, and adds elements to a set, recording every operation.

use std::collections::BTreeSet;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::{Duration, Instant};

use books_db_client::api::{Check, Compare, TxnOp, TxnRequest};
use books_db_client::{BooksDb, ClientOptions};
use rand::{Rng, SeedableRng};
use rand_chacha::ChaCha8Rng;
use serde_json::json;

use super::history::{Call, Operation, Return};

/// Key prefix of the registers; the set's elements are keys under [`SET_PREFIX`].
pub const REGISTER_PREFIX: &str = "nemesis/register/";
pub const SET_PREFIX: &str = "nemesis/set/";

/// How long one operation may try (the client retries within it, with one idempotency key).
pub fn client_options() -> ClientOptions {
    ClientOptions {
        attempt_timeout: Duration::from_millis(1_000),
        deadline: Duration::from_millis(2_000),
        min_backoff: Duration::from_millis(20),
        max_backoff: Duration::from_millis(200),
    }
}

/// What one client recorded.
#[derive(Default)]
pub struct ClientLog {
    pub operations: Vec<Operation>,
    /// Set elements whose add was acknowledged, and those whose add had no definite answer.
    pub added: BTreeSet<String>,
    pub maybe_added: BTreeSet<String>,
}

/// One client's loop until `stop`: `db` reaches one node; values are unique per client.
pub async fn run_client(
    client: usize,
    db: BooksDb,
    keys: usize,
    seed: u64,
    started: Instant,
    stop: Arc<AtomicBool>,
) -> ClientLog {
    let mut rng = ChaCha8Rng::seed_from_u64(seed ^ (client as u64).wrapping_mul(0x9e37_79b9));
    let mut log = ClientLog::default();
    let mut next_value = (client as i64 + 1) * 1_000_000;
    let mut last_seen: Vec<Option<i64>> = vec![None; keys];
    let mut adds = 0u64;
    while !stop.load(Ordering::Relaxed) {
        let k = rng.random_range(0..keys);
        let key = format!("{REGISTER_PREFIX}{k}");
        let roll = rng.random_range(0..100);
        if roll < 15 {
            adds += 1;
            let element = format!("{SET_PREFIX}{client}-{adds}");
            match db.set(&element, json!(true)).await {
                Ok(_) => log.added.insert(element),
                Err(_) => log.maybe_added.insert(element),
            };
            continue;
        }
        let invoked = started.elapsed();
        let (call, ret) = if roll < 55 {
            let ret = match db.get(&key).await {
                Ok(entry) => Return::Read(entry.and_then(|e| e.value.as_i64())),
                Err(_) => Return::Unknown,
            };
            if let Return::Read(value) = ret {
                last_seen[k] = value;
            }
            (Call::Read, ret)
        } else if roll < 80 {
            next_value += 1;
            let ret = match db.set(&key, json!(next_value)).await {
                Ok(_) => Return::Written,
                Err(_) => Return::Unknown,
            };
            (Call::Write(next_value), ret)
        } else {
            next_value += 1;
            // Compare against what this client saw last, so that many CASes can succeed.
            let from = last_seen[k].unwrap_or(0);
            let txn = TxnRequest {
                compare: vec![Compare { key: key.clone(), check: Check::Value(json!(from)) }],
                success: vec![TxnOp::Put { key: key.clone(), value: json!(next_value) }],
                failure: vec![],
            };
            let ret = match db.txn(&txn).await {
                Ok(answer) => Return::Cas(answer.succeeded),
                Err(_) => Return::Unknown,
            };
            (Call::Cas { from, to: next_value }, ret)
        };
        log.operations.push(Operation { client, key, call, ret, invoked, completed: started.elapsed() });
    }
    log
}
