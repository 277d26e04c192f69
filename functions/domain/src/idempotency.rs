//! One order per retry: a checkout sent with an `Idempotency-Key` runs once. The first request
//! with a key claims it (a conditional write), runs, and stores its answer with the key; a retry
//! with the same key and the same body gets that answer and creates nothing; the same key with
//! another body is refused. A key lives [`KEY_LIFETIME`]. A claim whose request died before
//! answering is given up after [`CLAIM_LEASE`], so a retry can then run it.

use std::future::Future;
use std::time::Duration;

use serde::{Deserialize, Serialize};
use sha2::{Digest, Sha256};

use crate::service::Unavailable;

/// Longest key taken, in bytes.
pub const MAX_KEY_LEN: usize = 255;
/// How long a key's answer is kept and replayed.
pub const KEY_LIFETIME: Duration = Duration::from_secs(24 * 60 * 60);
/// How long a claimed key waits for its request's answer before a retry may take it over: well
/// past the checkout function's timeout (15 s), so a live request is never run twice.
pub const CLAIM_LEASE: Duration = Duration::from_secs(60);

/// A client's key: 1 to 255 printable ASCII characters.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct IdempotencyKey(String);

#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("the Idempotency-Key header must be 1 to {MAX_KEY_LEN} printable ASCII characters")]
pub struct InvalidKey;

impl IdempotencyKey {
    pub fn parse(raw: &[u8]) -> Result<Self, InvalidKey> {
        let printable = raw.iter().all(|b| (0x20..=0x7e).contains(b));
        match std::str::from_utf8(raw) {
            Ok(key) if printable && !key.trim().is_empty() && key.len() <= MAX_KEY_LEN => Ok(Self(key.to_string())),
            _ => Err(InvalidKey),
        }
    }

    pub fn as_str(&self) -> &str {
        &self.0
    }
}

/// What identifies a request's body under a key: its SHA-256, in hex.
pub fn fingerprint(body: &[u8]) -> String {
    Sha256::digest(body).iter().map(|b| format!("{b:02x}")).collect()
}

/// The order id of the checkout of the body with `fingerprint` under `key`: the same for every
/// run of it, so a retry that runs again (after a 5xx, or a claim whose request died) meets the
/// order a run before it recorded instead of making a second. A name-based UUID (version 8,
/// from SHA-256, as RFC 9562 describes).
pub fn order_id(key: &IdempotencyKey, fingerprint: &str) -> String {
    let mut hash = Sha256::new();
    for part in ["bookstore-order", key.as_str(), fingerprint] {
        hash.update(part.as_bytes());
        hash.update([0]);
    }
    let mut bytes: [u8; 16] = hash.finalize()[..16].try_into().unwrap_or_default();
    bytes[6] = (bytes[6] & 0x0f) | 0x80;
    bytes[8] = (bytes[8] & 0x3f) | 0x80;
    let hex: String = bytes.iter().map(|b| format!("{b:02x}")).collect();
    format!("{}-{}-{}-{}-{}", &hex[..8], &hex[8..12], &hex[12..16], &hex[16..20], &hex[20..])
}

/// An answer as it is stored and replayed.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct StoredAnswer {
    pub status: u16,
    /// The JSON body, as sent.
    pub body: String,
}

/// A key someone holds.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct HeldKey {
    /// The fingerprint of the body it was claimed with.
    pub fingerprint: String,
    /// Its answer, once its request finished.
    pub answer: Option<StoredAnswer>,
}

/// Who holds a claim: answering or releasing a key takes it, so a request whose claim was taken
/// over (its lease ran out) cannot answer or free another request's key.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ClaimId(pub String);

/// What claiming a key did.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Claim {
    /// It was free (or expired, or its claim's lease ran out): the caller runs the request.
    Won(ClaimId),
    /// Someone holds it.
    Held(HeldKey),
}

/// Where keys and their answers are kept. Times are seconds since the Unix epoch.
pub trait IdempotencyStore: Send + Sync {
    /// Claims `key` for a body with `fingerprint`, unless it is held: answered and not expired
    /// at `now`, or claimed and its lease not run out. One conditional write, so two claims at
    /// the same moment cannot both win.
    fn claim(
        &self,
        key: &IdempotencyKey,
        fingerprint: &str,
        now: u64,
    ) -> impl Future<Output = Result<Claim, Unavailable>> + Send;

    /// Stores the answer of the request that won `claim` at `now` (when it started); it is kept
    /// [`KEY_LIFETIME`] from then. Nothing is written if the claim is no longer `claim`'s.
    fn answer(
        &self,
        key: &IdempotencyKey,
        claim: &ClaimId,
        answer: &StoredAnswer,
        now: u64,
    ) -> impl Future<Output = Result<(), Unavailable>> + Send;

    /// Gives the key up (its request failed in a way a retry may mend), if `claim` still holds it.
    fn release(&self, key: &IdempotencyKey, claim: &ClaimId) -> impl Future<Output = Result<(), Unavailable>> + Send;
}

/// What a request with a key gets.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Keyed {
    /// It ran: its answer.
    Ran(StoredAnswer),
    /// A request with this key and body ran before: its answer, replayed.
    Replayed(StoredAnswer),
    /// The key was used with another body.
    Reused,
    /// The key's first request is still running.
    InProgress,
}

/// Runs `request` once per key: see the module's doc. An answer of 5xx is not kept (the key is
/// released, so a retry runs again); every other answer is. `now` is when the request started:
/// the claim's lease and the key's lifetime count from it.
pub async fn run_once<S, F, Fut>(
    store: &S,
    key: &IdempotencyKey,
    fingerprint: &str,
    now: u64,
    request: F,
) -> Result<Keyed, Unavailable>
where
    S: IdempotencyStore,
    F: FnOnce() -> Fut,
    Fut: Future<Output = StoredAnswer>,
{
    match store.claim(key, fingerprint, now).await? {
        Claim::Won(claim) => {
            let answer = request().await;
            // The request ran: its answer goes out whatever happens to the key; a retry then
            // meets the claim until its lease runs out.
            if answer.status >= 500 {
                if let Err(e) = store.release(key, &claim).await {
                    tracing::error!(key = key.as_str(), error = %e, "the idempotency key could not be released");
                }
            } else if let Err(e) = store.answer(key, &claim, &answer, now).await {
                tracing::error!(key = key.as_str(), error = %e, "the answer could not be stored with its key");
            }
            Ok(Keyed::Ran(answer))
        }
        Claim::Held(held) if held.fingerprint != fingerprint => Ok(Keyed::Reused),
        Claim::Held(HeldKey { answer: Some(answer), .. }) => Ok(Keyed::Replayed(answer)),
        Claim::Held(HeldKey { answer: None, .. }) => Ok(Keyed::InProgress),
    }
}

#[cfg(test)]
mod tests {
    use std::sync::atomic::{AtomicUsize, Ordering};

    use futures::executor::block_on;

    use super::*;
    use crate::testing::MemoryKeys;

    fn answer(status: u16, body: &str) -> StoredAnswer {
        StoredAnswer { status, body: body.into() }
    }

    #[test]
    fn keys_are_printable_ascii_of_at_most_255_bytes() {
        assert!(IdempotencyKey::parse(b"3f9a1c2e-7b4d-4e8f").is_ok());
        assert!(IdempotencyKey::parse("x".repeat(MAX_KEY_LEN).as_bytes()).is_ok());
        for bad in [&b""[..], b"   ", b"tab\there", "ключ".as_bytes(), &[b'x'; MAX_KEY_LEN + 1]] {
            assert_eq!(IdempotencyKey::parse(bad), Err(InvalidKey), "{bad:?}");
        }
    }

    #[test]
    fn a_key_and_body_name_one_order_id_and_any_other_pair_another() {
        let (k1, k2) = (IdempotencyKey::parse(b"k1").unwrap(), IdempotencyKey::parse(b"k2").unwrap());
        let id = order_id(&k1, &fingerprint(b"body"));
        assert_eq!(id, order_id(&k1, &fingerprint(b"body")));
        assert_ne!(id, order_id(&k2, &fingerprint(b"body")));
        assert_ne!(id, order_id(&k1, &fingerprint(b"other")));
        // A UUID's shape, version 8, RFC variant.
        let groups: Vec<_> = id.split('-').map(str::len).collect();
        assert_eq!(groups, [8, 4, 4, 4, 12], "{id}");
        assert_eq!(&id[14..15], "8", "{id}");
        assert!(matches!(id.as_bytes()[19], b'8' | b'9' | b'a' | b'b'), "{id}");
    }

    #[test]
    fn a_retry_replays_the_first_answer_and_runs_nothing() {
        let store = MemoryKeys::default();
        let key = IdempotencyKey::parse(b"k1").unwrap();
        let runs = AtomicUsize::new(0);
        let run = || async {
            runs.fetch_add(1, Ordering::SeqCst);
            answer(200, r#"{"orderId":"a"}"#)
        };
        let first = block_on(run_once(&store, &key, &fingerprint(b"body"), 1000, run)).unwrap();
        assert_eq!(first, Keyed::Ran(answer(200, r#"{"orderId":"a"}"#)));
        let again = block_on(run_once(&store, &key, &fingerprint(b"body"), 1001, run)).unwrap();
        assert_eq!(again, Keyed::Replayed(answer(200, r#"{"orderId":"a"}"#)));
        assert_eq!(runs.load(Ordering::SeqCst), 1);
        let other = block_on(run_once(&store, &key, &fingerprint(b"another body"), 1002, run)).unwrap();
        assert_eq!(other, Keyed::Reused);
        // After its lifetime the key is free again.
        let later = 1000 + KEY_LIFETIME.as_secs() + 1;
        let expired = block_on(run_once(&store, &key, &fingerprint(b"another body"), later, run)).unwrap();
        assert!(matches!(expired, Keyed::Ran(_)), "{expired:?}");
        assert_eq!(runs.load(Ordering::SeqCst), 2);
    }

    #[test]
    fn a_request_still_running_is_not_run_twice_and_a_failed_one_may_be_retried() {
        let store = MemoryKeys::default();
        let key = IdempotencyKey::parse(b"k2").unwrap();
        let print = fingerprint(b"body");
        let Claim::Won(first) = block_on(store.claim(&key, &print, 1000)).unwrap() else { panic!("a free key") };
        let meanwhile = block_on(run_once(&store, &key, &print, 1001, || async { answer(200, "{}") })).unwrap();
        assert_eq!(meanwhile, Keyed::InProgress);
        // A claim whose request died is taken over once its lease runs out.
        let after_lease = 1000 + CLAIM_LEASE.as_secs() + 1;
        assert_eq!(
            block_on(store.claim(&key, &print, after_lease - 1)).unwrap(),
            Claim::Held(HeldKey { fingerprint: print.clone(), answer: None }),
            "held to the last second of its lease, as DynamoDB's `expiresAt < :now` holds it"
        );
        let Claim::Won(second) = block_on(store.claim(&key, &print, after_lease)).unwrap() else {
            panic!("taken over")
        };
        // The first request, back too late, neither answers nor frees the key it lost.
        block_on(store.answer(&key, &first, &answer(200, "late"), 1000)).unwrap();
        block_on(store.release(&key, &first)).unwrap();
        let held = block_on(store.claim(&key, &print, after_lease)).unwrap();
        assert_eq!(held, Claim::Held(HeldKey { fingerprint: print.clone(), answer: None }));
        block_on(store.release(&key, &second)).unwrap();
        // Released (as after a 5xx), the key runs the retry.
        let retried =
            block_on(run_once(&store, &key, &print, after_lease + 1, || async { answer(200, "{}") })).unwrap();
        assert_eq!(retried, Keyed::Ran(answer(200, "{}")));
    }
}
