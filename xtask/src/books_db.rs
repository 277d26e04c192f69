//! The embedded default's books database: three raft-node processes (the default), or the
//! container cluster of `raft-cluster/compose.yaml` (`cargo xtask up --books-db containers`).

use std::path::Path;
use std::sync::{Arc, Weak};
use std::time::{Duration, Instant};

use anyhow::{Result, bail};
use books_db_client::BooksDb;
use raft_local_cluster::LocalCluster;
use tokio::sync::Mutex;

use crate::bridge::BridgeRelays;
use crate::containers::{ComposeCluster, free_ports, unique_project};

/// How the books database runs.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, clap::ValueEnum)]
pub enum BooksDbMode {
    /// raft-node processes on this machine.
    #[default]
    Processes,
    /// raft-node containers on this machine's Docker engine (`cargo xtask images` is run first).
    Containers,
}

/// How long the cluster may take to elect its first leader.
const ELECTION_TIMEOUT: Duration = Duration::from_secs(30);

/// The nodes themselves, as processes or containers.
pub enum BooksDbNodes {
    Processes(LocalCluster),
    Containers(ComposeCluster),
}

/// The books database's three nodes: the stack owns it (dropping it stops the nodes), and the
/// fault controls reach it through a [`Weak`] handle (see [`BooksDbCluster::handle`]), so a
/// request in flight never keeps the nodes alive.
pub struct BooksDbCluster {
    nodes: Arc<Mutex<BooksDbNodes>>,
    urls: Vec<String>,
    secret: String,
    mode: BooksDbMode,
    /// Containers' way to a collector on this machine's loopback.
    _telemetry_relay: Option<BridgeRelays>,
}

/// A handle on a [`BooksDbCluster`] that does not keep it running.
#[derive(Clone, Default)]
pub struct BooksDbHandle(Weak<Mutex<BooksDbNodes>>);

impl BooksDbCluster {
    /// Starts three nodes on the ports from `first_port` (0: free ports), with their data in
    /// `data_dir` (processes: a temporary data dir goes with its folder) or in compose volumes
    /// named after it (containers: removed at the end when `temporary`); waits for a leader.
    /// The nodes send their telemetry to `otlp_endpoint`; containers, on their own network, reach
    /// one on this machine's loopback through a relay on the Docker bridge.
    pub async fn start(
        mode: BooksDbMode,
        first_port: u16,
        data_dir: &Path,
        temporary: bool,
        otlp_endpoint: Option<&str>,
    ) -> Result<Self> {
        let ports = if first_port == 0 { free_ports()? } else { [first_port, first_port + 1, first_port + 2] };
        let mut relay = None;
        let nodes = match mode {
            BooksDbMode::Processes => {
                let binary = crate::build_release("raft-node")?;
                let addrs = ports.iter().map(|port| format!("127.0.0.1:{port}")).collect();
                // Always given, blank for none: the nodes must not fall back to an
                // OTEL_EXPORTER_OTLP_ENDPOINT they inherit from this process.
                let otlp = ["--otlp-endpoint", otlp_endpoint.unwrap_or("")];
                BooksDbNodes::Processes(LocalCluster::start_kept(&binary, data_dir.join("books-db"), addrs, &otlp)?)
            }
            BooksDbMode::Containers => {
                crate::images::build_raft_node()?;
                let project = if temporary { unique_project("stack") } else { project_for(data_dir) };
                let secret = data_dir.join("books-db-secret");
                let otlp = match otlp_endpoint {
                    Some(url) => {
                        let relays = relay.insert(BridgeRelays::new()?);
                        Some(relays.rewrite(url).await?)
                    }
                    None => None,
                };
                let cluster = ComposeCluster::start(&project, ports, secret, temporary, otlp.as_deref())?;
                BooksDbNodes::Containers(cluster)
            }
        };
        let cluster = Self { _telemetry_relay: relay, ..Self::from_nodes(nodes) };
        cluster.wait_for_first_leader().await?;
        Ok(cluster)
    }

    /// Shares nodes started elsewhere.
    pub fn from_nodes(nodes: BooksDbNodes) -> Self {
        let (urls, secret, mode) = match &nodes {
            BooksDbNodes::Processes(c) => (c.urls(), c.secret().to_string(), BooksDbMode::Processes),
            BooksDbNodes::Containers(c) => (c.urls(), c.secret().to_string(), BooksDbMode::Containers),
        };
        Self { nodes: Arc::new(Mutex::new(nodes)), urls, secret, mode, _telemetry_relay: None }
    }

    /// Waits for a leader; a node process that exits meanwhile (it refused its data dir, say)
    /// ends the wait with its last line.
    async fn wait_for_first_leader(&self) -> Result<()> {
        let deadline = Instant::now() + ELECTION_TIMEOUT;
        loop {
            if let BooksDbNodes::Processes(cluster) = &*self.nodes.lock().await
                && let Some((id, why)) = cluster.exited()
            {
                bail!("books database node {id} stopped: {why}");
            }
            if self.wait_for_leader(Duration::from_millis(500)).await.is_ok() {
                return Ok(());
            }
            if Instant::now() >= deadline {
                bail!("the books database elected no leader in {ELECTION_TIMEOUT:?}");
            }
        }
    }

    pub fn urls(&self) -> Vec<String> {
        self.urls.clone()
    }

    pub fn mode(&self) -> BooksDbMode {
        self.mode
    }

    /// The secret the nodes share (for membership changes and Raft RPCs; the fault controls ask
    /// for it too).
    pub fn secret(&self) -> &str {
        &self.secret
    }

    /// A client of every node, with the cluster secret.
    pub fn client(&self) -> Result<BooksDb> {
        Ok(BooksDb::new(self.urls.clone())?.with_cluster_secret(&self.secret)?)
    }

    /// A handle that reaches the nodes while this cluster is alive.
    pub fn handle(&self) -> BooksDbHandle {
        BooksDbHandle(Arc::downgrade(&self.nodes))
    }

    /// Polls until a node leads with a majority agreeing; its id.
    pub async fn wait_for_leader(&self, timeout: Duration) -> Result<u64> {
        let deadline = Instant::now() + timeout;
        loop {
            if let Some(leader) = self.agreed_leader().await {
                return Ok(leader);
            }
            if Instant::now() >= deadline {
                let logs = match &*self.nodes.lock().await {
                    BooksDbNodes::Containers(c) => format!(": {}", c.logs_tail(5)),
                    BooksDbNodes::Processes(_) => String::new(),
                };
                bail!("the books database elected no leader in {timeout:?}{logs}");
            }
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
    }

    /// One look at the nodes (the lock held only for it, so a fault is not held up by a wait):
    /// the node that leads with a majority agreeing.
    async fn agreed_leader(&self) -> Option<u64> {
        let nodes = self.nodes.lock().await;
        let mut statuses = Vec::new();
        for id in 1..=self.urls.len() as u64 {
            let status = match &*nodes {
                BooksDbNodes::Processes(c) => c.status(id).await,
                BooksDbNodes::Containers(c) => c.status(id).await,
            };
            statuses.extend(status);
        }
        raft_local_cluster::agreed_leader(&statuses, self.urls.len())
    }

    /// Runs `f` on the nodes themselves.
    pub async fn with_nodes<R>(&self, f: impl FnOnce(&mut BooksDbNodes) -> R) -> R {
        f(&mut *self.nodes.lock().await)
    }

    pub async fn apply(&self, fault: NodeFault, id: u64) -> Result<()> {
        apply(&mut *self.nodes.lock().await, fault, id)
    }

    /// SIGKILL (processes) or `docker kill` (containers).
    pub async fn kill(&self, id: u64) -> Result<()> {
        self.apply(NodeFault::Kill, id).await
    }

    /// Starts a killed node again, on its data.
    pub async fn restart(&self, id: u64) -> Result<()> {
        self.apply(NodeFault::Restart, id).await
    }

    /// Freezes a node (SIGSTOP, or the cgroup freezer): its sockets stay open, nothing answers.
    pub async fn pause(&self, id: u64) -> Result<()> {
        self.apply(NodeFault::Pause, id).await
    }

    pub async fn resume(&self, id: u64) -> Result<()> {
        self.apply(NodeFault::Resume, id).await
    }
}

impl BooksDbHandle {
    /// Applies `fault` to node `id`; `Ok(false)` when the cluster is stopped.
    pub async fn apply(&self, fault: NodeFault, id: u64) -> Result<bool> {
        let Some(nodes) = self.0.upgrade() else { return Ok(false) };
        apply(&mut *nodes.lock().await, fault, id)?;
        Ok(true)
    }
}

/// What can be done to one node.
#[derive(Debug, Clone, Copy, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum NodeFault {
    Kill,
    Restart,
    Pause,
    Resume,
    /// Cut off the network (containers only).
    Partition,
    Heal,
}

impl NodeFault {
    /// Whether only the container cluster can have it: processes on one host share its network.
    pub fn needs_containers(self) -> bool {
        matches!(self, Self::Partition | Self::Heal)
    }
}

fn apply(nodes: &mut BooksDbNodes, fault: NodeFault, id: u64) -> Result<()> {
    // The process harness does nothing, silently, where docker would refuse: say so instead.
    if let BooksDbNodes::Processes(c) = nodes {
        let node = c.node(id)?;
        let refusal = match fault {
            NodeFault::Kill if !node.is_running() => Some("it is not running"),
            NodeFault::Restart if node.is_running() => Some("it is running (kill it first)"),
            NodeFault::Pause if !node.is_running() => Some("it is not running"),
            NodeFault::Pause if node.is_paused() => Some("it is paused already"),
            NodeFault::Resume if !node.is_paused() => Some("it is not paused"),
            _ => None,
        };
        if let Some(why) = refusal {
            bail!("node {id}: {why}");
        }
    }
    match (nodes, fault) {
        (BooksDbNodes::Processes(c), NodeFault::Kill) => Ok(c.kill(id)?),
        (BooksDbNodes::Processes(c), NodeFault::Restart) => Ok(c.restart(id)?),
        (BooksDbNodes::Processes(c), NodeFault::Pause) => Ok(c.pause(id)?),
        (BooksDbNodes::Processes(c), NodeFault::Resume) => Ok(c.resume(id)?),
        (BooksDbNodes::Processes(_), NodeFault::Partition | NodeFault::Heal) => {
            bail!("cutting a node off the network needs the container cluster (`cargo xtask up --books-db containers`)")
        }
        (BooksDbNodes::Containers(c), NodeFault::Kill) => c.kill(id),
        (BooksDbNodes::Containers(c), NodeFault::Restart) => c.restart(id),
        (BooksDbNodes::Containers(c), NodeFault::Pause) => c.pause(id),
        (BooksDbNodes::Containers(c), NodeFault::Resume) => c.resume(id),
        (BooksDbNodes::Containers(c), NodeFault::Partition) => c.disconnect(id),
        (BooksDbNodes::Containers(c), NodeFault::Heal) => c.connect(id),
    }
}

/// A compose project name for a kept data dir: the same on every run from it, so the volumes
/// (the nodes' data) are found again.
fn project_for(data_dir: &Path) -> String {
    // FNV-1a: stable across Rust versions, unlike the standard hasher.
    let hash = data_dir
        .to_string_lossy()
        .bytes()
        .fold(0xcbf2_9ce4_8422_2325u64, |h, b| (h ^ u64::from(b)).wrapping_mul(0x0000_0100_0000_01b3));
    format!("bookstore{hash:016x}")
}
