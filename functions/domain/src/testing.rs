//! Test support (the `testing` feature): in-memory stand-ins for the domain's ports, with the
//! conditions of the real ones, for the functions' tests.

// Test support only: a poisoned lock is a failed test.
#![allow(clippy::unwrap_used)]

use std::collections::HashMap;
use std::sync::Mutex;

use crate::idempotency::{CLAIM_LEASE, Claim, HeldKey, IdempotencyKey, IdempotencyStore, KEY_LIFETIME, StoredAnswer};
use crate::service::Unavailable;

/// Idempotency keys in memory: each held until its lease or lifetime (seconds) runs out.
#[derive(Default)]
pub struct MemoryKeys(pub Mutex<HashMap<String, (HeldKey, u64)>>);

impl IdempotencyStore for MemoryKeys {
    async fn claim(&self, key: &IdempotencyKey, fingerprint: &str, now: u64) -> Result<Claim, Unavailable> {
        let mut keys = self.0.lock().unwrap();
        if let Some((held, until)) = keys.get(key.as_str())
            && *until > now
        {
            return Ok(Claim::Held(held.clone()));
        }
        let held = HeldKey { fingerprint: fingerprint.into(), answer: None };
        keys.insert(key.as_str().into(), (held, now + CLAIM_LEASE.as_secs()));
        Ok(Claim::Won)
    }

    async fn answer(&self, key: &IdempotencyKey, answer: &StoredAnswer, now: u64) -> Result<(), Unavailable> {
        if let Some((held, until)) = self.0.lock().unwrap().get_mut(key.as_str()) {
            held.answer = Some(answer.clone());
            *until = now + KEY_LIFETIME.as_secs();
        }
        Ok(())
    }

    async fn release(&self, key: &IdempotencyKey) -> Result<(), Unavailable> {
        self.0.lock().unwrap().remove(key.as_str());
        Ok(())
    }
}
