//! The fault controls (`cargo xtask up --fault-controls`): the storefront's panel kills,
//! pauses, resumes and restarts the books database's nodes, cuts one off the network (the
//! container cluster), and sets the executors' emulated delay and failure rate, so a learner
//! can break the system on purpose and watch it recover.
//!
//! Off unless asked for (the gateway then has no `/faults` routes: a JSON 404), and even then
//! only for a client on this machine that sends the cluster secret (`Authorization: Bearer`);
//! anything else is a 403. Every action is kept in an event log that the page merges into its
//! timeline of leaders.

use std::collections::VecDeque;
use std::net::SocketAddr;
use std::sync::{Arc, Mutex};
use std::time::{SystemTime, UNIX_EPOCH};

use axum::Router;
use axum::body::Bytes;
use axum::extract::rejection::PathRejection;
use axum::extract::{ConnectInfo, Path, Request, State};
use axum::http::{StatusCode, header};
use axum::middleware::Next;
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post, put};
use books_db_client::BooksDb;
use bookstore_aws::{EXECUTOR_KNOBS_KEY, EmulatedFaults};
use serde::Serialize;

use crate::books_db::{BooksDbCluster, BooksDbHandle, BooksDbMode, NodeFault};
use crate::gateway::error;

/// Events kept for the page: the newest.
const EVENTS_KEPT: usize = 100;

/// What the fault controls act on, and what they did.
pub struct FaultControls {
    cluster: BooksDbHandle,
    nodes: Vec<u64>,
    partitionable: bool,
    secret: String,
    /// For writing the executors' knobs: waits out an election.
    books_db: BooksDb,
    /// For reading them: any node that answers at once (a paused one must not slow the panel).
    glance: BooksDb,
    /// The executors' knobs when none are set here: the stack's parameters.
    configured: EmulatedFaults,
    events: Mutex<EventLog>,
}

#[derive(Default)]
struct EventLog {
    next: u64,
    kept: VecDeque<FaultEvent>,
}

/// One action of the fault controls.
#[derive(Debug, Clone, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct FaultEvent {
    /// Increasing: the page shows each once.
    pub seq: u64,
    /// Milliseconds since the Unix epoch.
    pub at: u64,
    /// `kill`, `pause`, … or `executor`.
    pub action: String,
    pub node: Option<u64>,
    /// In words.
    pub detail: String,
}

/// `GET /faults`.
#[derive(Serialize)]
#[serde(rename_all = "camelCase")]
struct Panel<'a> {
    nodes: &'a [u64],
    /// Whether a node can be cut off the network (the container cluster).
    partitionable: bool,
    /// The knobs in force, when the books database could say.
    executor: Option<EmulatedFaults>,
    configured_executor: &'a EmulatedFaults,
    events: Vec<FaultEvent>,
}

impl FaultControls {
    /// Controls over `cluster`, which they do not keep running; `configured` are the executors'
    /// knobs from the stack's parameters.
    pub fn new(cluster: &BooksDbCluster, configured: EmulatedFaults) -> anyhow::Result<Self> {
        Ok(Self {
            cluster: cluster.handle(),
            nodes: (1..=cluster.urls().len() as u64).collect(),
            partitionable: cluster.mode() == BooksDbMode::Containers,
            secret: cluster.secret().to_string(),
            books_db: cluster.client()?,
            glance: glance(cluster.urls())?,
            configured,
            events: Mutex::default(),
        })
    }

    fn record(&self, action: &str, node: Option<u64>, detail: String) -> FaultEvent {
        eprintln!("fault controls: {detail}");
        let at = SystemTime::now().duration_since(UNIX_EPOCH).map_or(0, |d| d.as_millis() as u64);
        // A poisoned lock only means another request panicked mid-push; the log is still whole.
        let mut log = self.events.lock().unwrap_or_else(std::sync::PoisonError::into_inner);
        log.next += 1;
        let event = FaultEvent { seq: log.next, at, action: action.to_string(), node, detail };
        log.kept.push_back(event.clone());
        if log.kept.len() > EVENTS_KEPT {
            log.kept.pop_front();
        }
        event
    }

    fn events(&self) -> Vec<FaultEvent> {
        self.events.lock().unwrap_or_else(std::sync::PoisonError::into_inner).kept.iter().cloned().collect()
    }

    /// Whether `bearer` is the cluster secret, compared in time independent of where they differ.
    fn is_secret(&self, bearer: &str) -> bool {
        let (given, secret) = (bearer.as_bytes(), self.secret.as_bytes());
        given.len() == secret.len() && given.iter().zip(secret).fold(0u8, |diff, (a, b)| diff | (a ^ b)) == 0
    }
}

/// A client that gives up on a node within a fraction of a second.
fn glance(urls: Vec<String>) -> Result<BooksDb, books_db_client::Error> {
    BooksDb::with_options(urls, books_db_client::ClientOptions::glance())
}

/// The `/faults` routes, guarded.
pub fn routes(controls: Arc<FaultControls>) -> Router {
    Router::new()
        .route("/faults", get(panel).fallback(not_allowed("GET")))
        .route("/faults/nodes/{node}/{action}", post(node_fault).fallback(not_allowed("POST")))
        .route("/faults/executor", put(set_executor).delete(reset_executor).fallback(not_allowed("PUT, DELETE")))
        .route_layer(axum::middleware::from_fn_with_state(Arc::clone(&controls), guard))
        .with_state(controls)
}

/// A JSON 405 naming the methods the path takes.
fn not_allowed(methods: &'static str) -> impl Fn(Request) -> std::future::Ready<Response> + Clone {
    move |request: Request| {
        let usage = format!("{} takes {methods}", request.uri().path());
        std::future::ready(error(StatusCode::METHOD_NOT_ALLOWED, "method_not_allowed", &usage))
    }
}

/// Lets through a client on this machine that sends the cluster secret.
/// (The peer's address comes from serving with `into_make_service_with_connect_info`.)
async fn guard(
    State(controls): State<Arc<FaultControls>>,
    ConnectInfo(peer): ConnectInfo<SocketAddr>,
    request: Request,
    next: Next,
) -> Response {
    let local = peer.ip().is_loopback();
    let bearer = request
        .headers()
        .get(header::AUTHORIZATION)
        .and_then(|value| value.to_str().ok())
        .and_then(|value| value.strip_prefix("Bearer "));
    if !local {
        return error(StatusCode::FORBIDDEN, "forbidden", "the fault controls take requests from this machine only");
    }
    if !bearer.is_some_and(|bearer| controls.is_secret(bearer.trim())) {
        let message = "the fault controls need the cluster secret (Authorization: Bearer SECRET; `cargo xtask up --fault-controls` prints a link with it)";
        return error(StatusCode::FORBIDDEN, "forbidden", message);
    }
    next.run(request).await
}

async fn panel(State(controls): State<Arc<FaultControls>>) -> Response {
    let executor = match controls.glance.get_stale(EXECUTOR_KNOBS_KEY).await {
        Ok(None) => Some(controls.configured.clone()),
        Ok(Some(entry)) => serde_json::from_value(entry.value).ok(),
        Err(_) => None,
    };
    let panel = Panel {
        nodes: &controls.nodes,
        partitionable: controls.partitionable,
        executor,
        configured_executor: &controls.configured,
        events: controls.events(),
    };
    axum::Json(panel).into_response()
}

async fn node_fault(
    State(controls): State<Arc<FaultControls>>,
    path: Result<Path<(String, String)>, PathRejection>,
) -> Response {
    let Ok(Path((node, action))) = path else {
        return error(StatusCode::BAD_REQUEST, "invalid_path", "use /faults/nodes/{node id}/{action}");
    };
    let Some(node) = node.parse::<u64>().ok().filter(|id| controls.nodes.contains(id)) else {
        let message = format!("no node {node}; the nodes are {:?}", controls.nodes);
        return error(StatusCode::NOT_FOUND, "no_such_node", &message);
    };
    let Ok(fault) = serde_json::from_value::<NodeFault>(serde_json::Value::String(action.clone())) else {
        let message = format!("no action {action:?}; try kill, restart, pause, resume, partition or heal");
        return error(StatusCode::BAD_REQUEST, "unknown_action", &message);
    };
    if fault.needs_containers() && !controls.partitionable {
        let message = "cutting a node off the network needs the container cluster: start with `cargo xtask up --fault-controls --books-db containers`";
        return error(StatusCode::CONFLICT, "needs_containers", message);
    }
    match controls.cluster.apply(fault, node).await {
        Ok(true) => {
            let event = controls.record(&action, Some(node), format!("{} node {node}", past_tense(fault)));
            axum::Json(event).into_response()
        }
        Ok(false) => error(StatusCode::SERVICE_UNAVAILABLE, "books_db_stopped", "the books database is stopped"),
        Err(e) => error(StatusCode::CONFLICT, "not_applied", &format!("could not {action} node {node}: {e:#}")),
    }
}

fn past_tense(fault: NodeFault) -> &'static str {
    match fault {
        NodeFault::Kill => "killed",
        NodeFault::Restart => "restarted",
        NodeFault::Pause => "paused",
        NodeFault::Resume => "resumed",
        NodeFault::Partition => "cut off the network",
        NodeFault::Heal => "reconnected",
    }
}

/// `PUT /faults/executor {"delayMs": [MIN, MAX] | null, "failureRate": 0..1}`: the knobs every
/// executor uses from its next delivery on.
async fn set_executor(State(controls): State<Arc<FaultControls>>, body: Bytes) -> Response {
    let knobs: EmulatedFaults = match serde_json::from_slice(&body) {
        Ok(knobs) => knobs,
        Err(e) => {
            let message = format!("expected {{\"delayMs\": [MIN, MAX] or null, \"failureRate\": 0 to 1}}: {e}");
            return error(StatusCode::BAD_REQUEST, "invalid_knobs", &message);
        }
    };
    if let Err(e) = knobs.validate() {
        return error(StatusCode::BAD_REQUEST, "invalid_knobs", &e.to_string());
    }
    let value = match serde_json::to_value(&knobs) {
        Ok(value) => value,
        Err(e) => return error(StatusCode::INTERNAL_SERVER_ERROR, "internal", &e.to_string()),
    };
    if let Err(e) = controls.books_db.set(EXECUTOR_KNOBS_KEY, value).await {
        return error(
            StatusCode::SERVICE_UNAVAILABLE,
            "books_db_unavailable",
            &format!("the knobs were not kept: {e}"),
        );
    }
    let delay = knobs.delay_ms.map_or("no delay".to_string(), |(min, max)| format!("a delay of {min}-{max} ms"));
    let detail = format!("executors set to {delay} and a failure rate of {}", knobs.failure_rate);
    axum::Json(controls.record("executor", None, detail)).into_response()
}

/// `DELETE /faults/executor`: back to the configured knobs.
async fn reset_executor(State(controls): State<Arc<FaultControls>>) -> Response {
    if let Err(e) = controls.books_db.delete(EXECUTOR_KNOBS_KEY).await {
        return error(
            StatusCode::SERVICE_UNAVAILABLE,
            "books_db_unavailable",
            &format!("the knobs were not reset: {e}"),
        );
    }
    axum::Json(controls.record("executor", None, "executors back to their configured knobs".into())).into_response()
}

#[cfg(test)]
mod tests {
    use axum::extract::connect_info::MockConnectInfo;
    use serde_json::{Value, json};

    use super::*;

    const SECRET: &str = "a-secret-of-enough-length-0123456789";

    /// The routes on a free port, as if every client came from `peer`, over a cluster that is
    /// already stopped and a books database that does not answer; their URL.
    async fn serve(peer: [u8; 4]) -> String {
        let closed = std::net::TcpListener::bind("127.0.0.1:0").expect("a free port");
        let nowhere = format!("http://{}", closed.local_addr().expect("its address"));
        drop(closed);
        let controls = FaultControls {
            cluster: BooksDbHandle::default(),
            nodes: vec![1, 2, 3],
            partitionable: false,
            secret: SECRET.into(),
            books_db: glance(vec![nowhere.clone()]).expect("a client"),
            glance: glance(vec![nowhere]).expect("a client"),
            configured: EmulatedFaults::default(),
            events: Mutex::default(),
        };
        let router = routes(Arc::new(controls)).layer(MockConnectInfo(SocketAddr::from((peer, 40_000))));
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.expect("a free port");
        let url = format!("http://{}", listener.local_addr().expect("its address"));
        tokio::spawn(async move { axum::serve(listener, router).await });
        url
    }

    async fn call(method: reqwest::Method, url: String, bearer: Option<&str>, body: Option<&str>) -> (u16, Value) {
        let http = reqwest::Client::builder().no_proxy().build().expect("a client");
        let mut request = http.request(method, url);
        if let Some(bearer) = bearer {
            request = request.bearer_auth(bearer);
        }
        if let Some(body) = body {
            request = request.body(body.to_string());
        }
        let answer = request.send().await.expect("the controls answer");
        let status = answer.status().as_u16();
        (status, answer.json().await.expect("a JSON body"))
    }

    #[tokio::test]
    async fn only_this_machine_with_the_secret_reaches_the_controls() {
        let remote = serve([10, 0, 0, 7]).await;
        for path in ["/faults", "/faults/nodes/1/kill", "/faults/executor"] {
            let method = match path {
                "/faults" => reqwest::Method::GET,
                "/faults/executor" => reqwest::Method::PUT,
                _ => reqwest::Method::POST,
            };
            let (status, body) = call(method.clone(), format!("{remote}{path}"), Some(SECRET), None).await;
            assert_eq!((status, &body["error"]["code"]), (403, &json!("forbidden")), "{path} from afar: {body}");
            let local = serve([127, 0, 0, 1]).await;
            for bearer in [None, Some("not-the-secret"), Some(&SECRET[1..])] {
                let (status, body) = call(method.clone(), format!("{local}{path}"), bearer, None).await;
                assert_eq!(status, 403, "{path} with {bearer:?}: {body}");
                assert!(body["error"]["message"].as_str().is_some_and(|m| m.contains("cluster secret")), "{body}");
            }
        }
        let local = serve([127, 0, 0, 1]).await;
        let (status, body) = call(reqwest::Method::GET, format!("{local}/faults"), Some(SECRET), None).await;
        assert_eq!(status, 200, "{body}");
        assert_eq!(body["nodes"], json!([1, 2, 3]));
        assert_eq!(body["partitionable"], false);
        assert_eq!(body["executor"], Value::Null, "the books database did not answer: {body}");
        assert_eq!(body["events"], json!([]));
    }

    #[tokio::test]
    async fn a_bad_request_is_refused_with_why_and_changes_nothing() {
        let url = serve([127, 0, 0, 1]).await;
        let post = |path: &str| call(reqwest::Method::POST, format!("{url}{path}"), Some(SECRET), None);
        let cases = [
            ("/faults/nodes/9/kill", 404, "no_such_node"),
            ("/faults/nodes/one/kill", 404, "no_such_node"),
            ("/faults/nodes/1/explode", 400, "unknown_action"),
            ("/faults/nodes/1/partition", 409, "needs_containers"),
            ("/faults/nodes/1/kill", 503, "books_db_stopped"),
            ("/faults/nodes/%ff/kill", 400, "invalid_path"),
        ];
        for (path, status, code) in cases {
            let (got, body) = post(path).await;
            assert_eq!((got, &body["error"]["code"]), (status, &json!(code)), "{path}: {body}");
        }
        let put =
            |body: &'static str| call(reqwest::Method::PUT, format!("{url}/faults/executor"), Some(SECRET), Some(body));
        for body in [r#"{"failureRate": 2}"#, r#"{"delayMs": [30, 5], "failureRate": 0}"#, "half", r#"{"rate": 1}"#] {
            let (status, answer) = put(body).await;
            assert_eq!((status, &answer["error"]["code"]), (400, &json!("invalid_knobs")), "{body}: {answer}");
        }
        let (status, answer) = put(r#"{"delayMs": null, "failureRate": 0.5}"#).await;
        assert_eq!((status, &answer["error"]["code"]), (503, &json!("books_db_unavailable")), "{answer}");
        let (status, answer) =
            call(reqwest::Method::GET, format!("{url}/faults/nodes/1/kill"), Some(SECRET), None).await;
        assert_eq!((status, &answer["error"]["code"]), (405, &json!("method_not_allowed")), "{answer}");
        let (_, panel) = call(reqwest::Method::GET, format!("{url}/faults"), Some(SECRET), None).await;
        assert_eq!(panel["events"], json!([]), "nothing was done, so nothing is logged");
    }
}
