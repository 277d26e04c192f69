use std::sync::atomic::{AtomicU64, AtomicUsize, Ordering};
use std::time::{Duration, Instant};

use backon::{BackoffBuilder, ExponentialBuilder};
use reqwest::header::{AUTHORIZATION, HeaderMap, HeaderValue};
use reqwest::{Method, StatusCode};
use serde::Serialize;
use serde::de::DeserializeOwned;
use serde_json::Value;

use crate::api::{
    AddLearnerRequest, ChangeMembershipRequest, ClusterStatus, IDEMPOTENCY_KEY, KvEntry, KvList, LogWindow, SetRequest,
    TxnRequest, TxnResponse, UpdateRequest, WriteResponse, validate_key,
};
use crate::error::Error;

/// How long membership changes may take: a new learner receives a snapshot and the log first.
pub const MEMBERSHIP_TIMEOUT: Duration = Duration::from_secs(60);

/// Timeouts and retry budget of a [`BooksDb`].
#[derive(Debug, Clone)]
pub struct ClientOptions {
    /// How long one attempt at one node may take.
    pub attempt_timeout: Duration,
    /// How long a call may take in all, retries included.
    pub deadline: Duration,
    /// First pause between attempts; doubles up to `max_backoff`.
    pub min_backoff: Duration,
    pub max_backoff: Duration,
}

impl ClientOptions {
    /// For a read that may as well not happen (settings with a fallback, a view): a node that
    /// does not answer within 300 ms is left for the next, and the call gives up after a second.
    pub fn glance() -> Self {
        Self { attempt_timeout: Duration::from_millis(300), deadline: Duration::from_secs(1), ..Self::default() }
    }
}

impl Default for ClientOptions {
    fn default() -> Self {
        Self {
            attempt_timeout: Duration::from_secs(4),
            deadline: Duration::from_secs(15),
            min_backoff: Duration::from_millis(20),
            max_backoff: Duration::from_millis(800),
        }
    }
}

/// A handle on the books database. Cheap to share (`&self` everywhere); clone the `Arc` you keep
/// it in rather than the client.
pub struct BooksDb {
    endpoints: Vec<String>,
    http: reqwest::Client,
    options: ClientOptions,
    /// The endpoint that answered last; calls start there.
    preferred: AtomicUsize,
    /// Idempotency keys are `{client_id}:{seq}`: unique per write, the same for its retries.
    client_id: String,
    seq: AtomicU64,
    /// `Bearer SECRET` for membership changes, when the cluster has a secret.
    cluster_secret: Option<HeaderValue>,
}

/// Time allowed to one call: per attempt, and in all.
#[derive(Clone, Copy)]
struct Budget {
    attempt: Duration,
    deadline: Duration,
}

/// How one attempt ended.
enum Attempt {
    Done(StatusCode, Vec<u8>),
    /// Worth trying again, maybe at another node.
    Retry(String),
}

impl BooksDb {
    /// A client for these node URLs (`http://host:port`), with default options.
    pub fn new<I, S>(endpoints: I) -> Result<Self, Error>
    where
        I: IntoIterator<Item = S>,
        S: Into<String>,
    {
        Self::with_options(endpoints, ClientOptions::default())
    }

    /// A client for a comma-separated list of node URLs, as `BOOKS_DB_URL` holds it.
    pub fn from_url_list(list: &str) -> Result<Self, Error> {
        Self::new(list.split(',').map(str::trim).filter(|s| !s.is_empty()))
    }

    pub fn with_options<I, S>(endpoints: I, options: ClientOptions) -> Result<Self, Error>
    where
        I: IntoIterator<Item = S>,
        S: Into<String>,
    {
        let endpoints: Vec<String> = endpoints
            .into_iter()
            .map(|e| {
                let e: String = e.into();
                let e = e.trim_end_matches('/').to_string();
                if e.contains("://") { e } else { format!("http://{e}") }
            })
            .collect();
        if endpoints.is_empty() {
            return Err(Error::Config("no books database endpoint given".into()));
        }
        let http = reqwest::Client::builder()
            .timeout(options.attempt_timeout)
            .connect_timeout(options.attempt_timeout.min(Duration::from_secs(1)))
            .no_proxy()
            .build()
            .map_err(|e| Error::Config(e.to_string()))?;
        Ok(Self {
            endpoints,
            http,
            options,
            preferred: AtomicUsize::new(0),
            client_id: uuid::Uuid::new_v4().simple().to_string(),
            seq: AtomicU64::new(0),
            cluster_secret: None,
        })
    }

    /// Sends `secret` with membership changes, which a cluster started with
    /// `--cluster-secret-file` refuses (401) without it. Reads and writes never carry it.
    pub fn with_cluster_secret(mut self, secret: &str) -> Result<Self, Error> {
        let mut bearer = HeaderValue::from_str(&format!("Bearer {}", secret.trim_end()))
            .map_err(|_| Error::Config("the cluster secret must be visible ASCII".into()))?;
        bearer.set_sensitive(true);
        self.cluster_secret = Some(bearer);
        Ok(self)
    }

    pub fn endpoints(&self) -> &[String] {
        &self.endpoints
    }

    /// Linearizable read of one key; `None` when it does not exist.
    pub async fn get(&self, key: &str) -> Result<Option<KvEntry>, Error> {
        self.read(&kv_path(key)?).await
    }

    /// Read of one key from whichever node answers, without asking the leader: fast, maybe stale.
    pub async fn get_stale(&self, key: &str) -> Result<Option<KvEntry>, Error> {
        self.read(&format!("{}?consistency=stale", kv_path(key)?)).await
    }

    /// GETs one key at `path`: its entry, or `None` on 404.
    async fn read(&self, path: &str) -> Result<Option<KvEntry>, Error> {
        let (status, body) = self.call(Method::GET, path, None::<&()>, false).await?;
        match status {
            StatusCode::OK => decode(&body).map(Some),
            StatusCode::NOT_FOUND => Ok(None),
            _ => Err(Error::from_body(status.as_u16(), &body)),
        }
    }

    /// Linearizable read of every key that starts with `prefix`, in key order.
    pub async fn list(&self, prefix: &str) -> Result<Vec<KvEntry>, Error> {
        let path = format!("/kv?prefix={}", encode_component(prefix));
        let list: KvList = self.expect_ok(Method::GET, &path, None::<&()>, false).await?;
        Ok(list.items)
    }

    /// Creates or replaces a key; returns its new version.
    pub async fn set(&self, key: &str, value: Value) -> Result<u64, Error> {
        let resp: WriteResponse =
            self.expect_ok(Method::PUT, &kv_path(key)?, Some(&SetRequest { value }), true).await?;
        Ok(resp.version)
    }

    /// Replaces the value of an existing key, if its version is `if_version` (when given).
    pub async fn update(&self, key: &str, value: Value, if_version: Option<u64>) -> Result<u64, Error> {
        let body = UpdateRequest { value, if_version };
        let (status, body) = self.call(Method::PATCH, &kv_path(key)?, Some(&body), true).await?;
        match status {
            StatusCode::OK => decode::<WriteResponse>(&body).map(|r| r.version),
            StatusCode::NOT_FOUND => Err(Error::NotFound),
            StatusCode::CONFLICT if error_code(&body).as_deref() == Some("version_mismatch") => {
                Err(Error::VersionMismatch(error_message(&body)))
            }
            _ => Err(Error::from_body(status.as_u16(), &body)),
        }
    }

    /// Deletes a key; `false` when it did not exist.
    pub async fn delete(&self, key: &str) -> Result<bool, Error> {
        let (status, body) = self.call(Method::DELETE, &kv_path(key)?, None::<&()>, true).await?;
        match status {
            StatusCode::OK => Ok(true),
            StatusCode::NOT_FOUND => Ok(false),
            _ => Err(Error::from_body(status.as_u16(), &body)),
        }
    }

    /// Applies a transaction atomically; see [`TxnRequest`].
    pub async fn txn(&self, txn: &TxnRequest) -> Result<TxnResponse, Error> {
        self.expect_ok(Method::POST, "/txn", Some(txn), true).await
    }

    /// The status of the node that answers first (no failover to the leader: any node's view).
    pub async fn status(&self) -> Result<ClusterStatus, Error> {
        self.expect_ok(Method::GET, "/cluster/status", None::<&()>, false).await
    }

    /// The status of one node, by its URL; no retries.
    pub async fn status_of(&self, endpoint: &str) -> Result<ClusterStatus, Error> {
        self.get_once(endpoint, "/cluster/status").await
    }

    /// Some of one node's Raft log, by its URL; no retries. `query` is `GET /cluster/log`'s:
    /// `limit=N` (the last N), `from=I&limit=N`, or `key=K&limit=N` (the last N touching K).
    pub async fn log_of(&self, endpoint: &str, query: &[(&str, &str)]) -> Result<LogWindow, Error> {
        let query: Vec<String> =
            query.iter().map(|(name, value)| format!("{name}={}", encode_component(value))).collect();
        self.get_once(endpoint, &format!("/cluster/log?{}", query.join("&"))).await
    }

    /// GETs `path` of one node, by its URL, once: a node's own view, not the cluster's.
    async fn get_once<T: DeserializeOwned>(&self, endpoint: &str, path: &str) -> Result<T, Error> {
        let timeout = self.options.attempt_timeout;
        match self.attempt(endpoint, &Method::GET, path, None, &HeaderMap::new(), timeout).await {
            Attempt::Done(StatusCode::OK, body) => decode(&body),
            Attempt::Done(status, body) => Err(Error::from_body(status.as_u16(), &body)),
            Attempt::Retry(last) => Err(Error::Unavailable { attempts: 1, last }),
        }
    }

    /// Adds a node as a learner and waits until it has caught up. `raft_addr` is where it takes
    /// Raft RPCs, when it has a listener of its own for them.
    pub async fn add_learner(&self, id: u64, addr: &str, raft_addr: Option<&str>) -> Result<(), Error> {
        let body = AddLearnerRequest { id, addr: addr.to_string(), raft_addr: raft_addr.map(str::to_string) };
        self.change_members("/cluster/learners", &body).await
    }

    /// Makes exactly these nodes the voters.
    pub async fn change_membership(&self, voters: Vec<u64>) -> Result<(), Error> {
        self.change_members("/cluster/membership", &ChangeMembershipRequest { voters }).await
    }

    async fn change_members<B: Serialize>(&self, path: &str, body: &B) -> Result<(), Error> {
        let budget = Budget { attempt: MEMBERSHIP_TIMEOUT, deadline: MEMBERSHIP_TIMEOUT + self.options.deadline };
        let (status, body) = self.call_within(Method::POST, path, Some(body), true, true, budget).await?;
        if status.is_success() { Ok(()) } else { Err(Error::from_body(status.as_u16(), &body)) }
    }

    async fn expect_ok<B: Serialize, T: DeserializeOwned>(
        &self,
        method: Method,
        path: &str,
        body: Option<&B>,
        write: bool,
    ) -> Result<T, Error> {
        let (status, body) = self.call(method, path, body, write).await?;
        if status.is_success() { decode(&body) } else { Err(Error::from_body(status.as_u16(), &body)) }
    }

    async fn call<B: Serialize>(
        &self,
        method: Method,
        path: &str,
        body: Option<&B>,
        write: bool,
    ) -> Result<(StatusCode, Vec<u8>), Error> {
        let budget = Budget { attempt: self.options.attempt_timeout, deadline: self.options.deadline };
        self.call_within(method, path, body, write, false, budget).await
    }

    /// Sends one request, failing over between nodes and backing off, until a node gives a
    /// definite answer or the budget is spent. Writes carry one idempotency key for all attempts.
    async fn call_within<B: Serialize>(
        &self,
        method: Method,
        path: &str,
        body: Option<&B>,
        write: bool,
        admin: bool,
        budget: Budget,
    ) -> Result<(StatusCode, Vec<u8>), Error> {
        let body = body
            .map(serde_json::to_vec)
            .transpose()
            .map_err(|e| Error::Protocol(format!("cannot encode the request: {e}")))?;
        let mut headers = HeaderMap::new();
        if write {
            let key = format!("{}:{}", self.client_id, self.seq.fetch_add(1, Ordering::Relaxed));
            let key = HeaderValue::from_str(&key).map_err(|e| Error::Protocol(format!("idempotency key: {e}")))?;
            headers.insert(IDEMPOTENCY_KEY, key);
        }
        if admin && let Some(secret) = &self.cluster_secret {
            headers.insert(AUTHORIZATION, secret.clone());
        }
        let started = Instant::now();
        let mut delays = ExponentialBuilder::default()
            .with_min_delay(self.options.min_backoff)
            .with_max_delay(self.options.max_backoff)
            .with_jitter()
            .without_max_times()
            .build();
        let mut index = self.preferred.load(Ordering::Relaxed);
        let mut attempts = 0;
        loop {
            let endpoint = &self.endpoints[index % self.endpoints.len()];
            attempts += 1;
            let timeout = budget.attempt.min(budget.deadline.saturating_sub(started.elapsed()));
            match self.attempt(endpoint, &method, path, body.as_deref(), &headers, timeout).await {
                Attempt::Done(status, body) => {
                    self.preferred.store(index % self.endpoints.len(), Ordering::Relaxed);
                    return Ok((status, body));
                }
                Attempt::Retry(reason) => {
                    tracing::debug!(endpoint, attempts, reason, "books database attempt failed; retrying");
                    let delay = delays.next().unwrap_or(self.options.max_backoff);
                    if started.elapsed() + delay >= budget.deadline {
                        return Err(Error::Unavailable { attempts, last: reason });
                    }
                    tokio::time::sleep(delay).await;
                    index += 1;
                }
            }
        }
    }

    async fn attempt(
        &self,
        endpoint: &str,
        method: &Method,
        path: &str,
        body: Option<&[u8]>,
        headers: &HeaderMap,
        timeout: Duration,
    ) -> Attempt {
        let mut request =
            self.http.request(method.clone(), format!("{endpoint}{path}")).timeout(timeout).headers(headers.clone());
        if let Some(body) = body {
            request = request.header("content-type", "application/json").body(body.to_vec());
        }
        let response = match request.send().await {
            Ok(response) => response,
            Err(e) => return Attempt::Retry(format!("{endpoint}: {e}")),
        };
        let status = response.status();
        match response.bytes().await {
            // No leader, no quorum, a timeout, an unreachable leader: another node, or the same
            // node a moment later, may succeed. Writes are idempotent, so retrying is safe.
            Ok(body) if matches!(status.as_u16(), 502..=504) => {
                Attempt::Retry(format!("{endpoint}: {status}: {}", error_message(&body)))
            }
            Ok(body) => Attempt::Done(status, body.to_vec()),
            Err(e) => Attempt::Retry(format!("{endpoint}: reading the answer: {e}")),
        }
    }
}

fn kv_path(key: &str) -> Result<String, Error> {
    validate_key(key).map_err(Error::InvalidKey)?;
    Ok(format!("/kv/{}", encode_component(key)))
}

/// Percent-encodes everything but unreserved characters and `/` (keys may be paths).
fn encode_component(s: &str) -> String {
    let mut out = String::with_capacity(s.len());
    for b in s.bytes() {
        match b {
            b'A'..=b'Z' | b'a'..=b'z' | b'0'..=b'9' | b'-' | b'_' | b'.' | b'~' | b'/' => out.push(b as char),
            _ => out.push_str(&format!("%{b:02X}")),
        }
    }
    out
}

fn decode<T: DeserializeOwned>(body: &[u8]) -> Result<T, Error> {
    serde_json::from_slice(body).map_err(|e| Error::Protocol(e.to_string()))
}

fn error_code(body: &[u8]) -> Option<String> {
    serde_json::from_slice::<crate::api::ErrorBody>(body).ok().map(|b| b.error.code)
}

fn error_message(body: &[u8]) -> String {
    match serde_json::from_slice::<crate::api::ErrorBody>(body) {
        Ok(b) => format!("{}: {}", b.error.code, b.error.message),
        Err(_) => String::from_utf8_lossy(body).chars().take(200).collect(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn keys_are_percent_encoded_but_slashes_kept() {
        assert_eq!(kv_path("book/1").unwrap(), "/kv/book/1");
        assert_eq!(kv_path("a b?c").unwrap(), "/kv/a%20b%3Fc");
        assert_eq!(kv_path("ä").unwrap(), "/kv/%C3%A4");
        assert!(matches!(kv_path("a/../b"), Err(Error::InvalidKey(_))));
        assert!(matches!(kv_path(""), Err(Error::InvalidKey(_))));
    }

    #[test]
    fn endpoints_get_a_scheme_and_lose_trailing_slashes() {
        let db = BooksDb::from_url_list("127.0.0.1:1, http://h:2/ ,").unwrap();
        assert_eq!(db.endpoints(), ["http://127.0.0.1:1", "http://h:2"]);
        assert!(matches!(BooksDb::from_url_list(" , "), Err(Error::Config(_))));
    }
}
