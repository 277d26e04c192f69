//! Test support (the `testing` feature): in-memory stand-ins for the domain's ports, with the
//! conditions of the real ones, for the functions' tests.

// Test support only: a poisoned lock is a failed test.
#![allow(clippy::unwrap_used)]

use std::collections::HashMap;
use std::sync::Mutex;
use std::sync::atomic::{AtomicBool, Ordering};

use crate::idempotency::{
    CLAIM_LEASE, Claim, ClaimId, HeldKey, IdempotencyKey, IdempotencyStore, KEY_LIFETIME, StoredAnswer,
};
use crate::orchestrator::OrderQueue;
use crate::service::Unavailable;

/// The order queue in memory: the order ids sent, in order; while `down`, every send fails.
#[derive(Default)]
pub struct MemoryQueue {
    pub sent: Mutex<Vec<String>>,
    pub down: AtomicBool,
}

impl OrderQueue for MemoryQueue {
    async fn enqueue(&self, order_id: &str) -> Result<(), Unavailable> {
        if self.down.load(Ordering::SeqCst) {
            return Err(Unavailable("the queue is down".into()));
        }
        self.sent.lock().unwrap().push(order_id.into());
        Ok(())
    }
}

/// Idempotency keys in memory: each held, by its claim, until the last second of its lease or
/// lifetime.
#[derive(Default)]
pub struct MemoryKeys(pub Mutex<HashMap<String, (HeldKey, ClaimId, u64)>>);

impl IdempotencyStore for MemoryKeys {
    async fn claim(&self, key: &IdempotencyKey, fingerprint: &str, now: u64) -> Result<Claim, Unavailable> {
        let mut keys = self.0.lock().unwrap();
        if let Some((held, _, until)) = keys.get(key.as_str())
            && *until >= now
        {
            return Ok(Claim::Held(held.clone()));
        }
        let held = HeldKey { fingerprint: fingerprint.into(), answer: None };
        let claim = ClaimId(format!("claim-{now}-{}", keys.len()));
        keys.insert(key.as_str().into(), (held, claim.clone(), now + CLAIM_LEASE.as_secs()));
        Ok(Claim::Won(claim))
    }

    async fn answer(
        &self,
        key: &IdempotencyKey,
        claim: &ClaimId,
        answer: &StoredAnswer,
        now: u64,
    ) -> Result<(), Unavailable> {
        if let Some((held, holder, until)) = self.0.lock().unwrap().get_mut(key.as_str())
            && holder == claim
            && held.answer.is_none()
        {
            held.answer = Some(answer.clone());
            *until = now + KEY_LIFETIME.as_secs();
        }
        Ok(())
    }

    async fn release(&self, key: &IdempotencyKey, claim: &ClaimId) -> Result<(), Unavailable> {
        let mut keys = self.0.lock().unwrap();
        if keys.get(key.as_str()).is_some_and(|(held, holder, _)| holder == claim && held.answer.is_none()) {
            keys.remove(key.as_str());
        }
        Ok(())
    }
}
