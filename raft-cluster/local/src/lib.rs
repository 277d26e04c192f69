//! Runs a books-database cluster of real `raft-node` processes on this machine, for tests,
//! benchmarks and the embedded default: free loopback ports, data dirs in a temporary folder, and
//! the faults a test needs (kill -9, pause, restart). Every process it starts is killed when the
//! [`LocalCluster`] is dropped, also when a test panics. The nodes share a cluster secret (a file
//! in the cluster's folder, made once), so membership changes need the client of [`LocalCluster::client`].

use std::collections::BTreeMap;
use std::fs::File;
use std::net::TcpListener;
use std::os::unix::process::CommandExt;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use books_db_client::api::ClusterStatus;
use books_db_client::{BooksDb, ClientOptions};

#[derive(Debug, thiserror::Error)]
pub enum HarnessError {
    #[error("{0}")]
    Io(#[from] std::io::Error),
    #[error("no node {0} in this cluster")]
    UnknownNode(u64),
    #[error("timed out after {0:?} waiting for {1}")]
    Timeout(Duration, String),
    #[error("client: {0}")]
    Client(#[from] books_db_client::Error),
}

/// One `raft-node` process (or the place for one, while it is down).
pub struct LocalNode {
    pub id: u64,
    pub addr: String,
    /// Its Raft RPC listener, when it has one of its own.
    pub raft_addr: Option<String>,
    pub data_dir: PathBuf,
    /// `--peers` it was started with.
    peers: String,
    log: PathBuf,
    child: Option<Child>,
    paused: bool,
}

impl LocalNode {
    pub fn url(&self) -> String {
        format!("http://{}", self.addr)
    }

    pub fn is_running(&self) -> bool {
        self.child.is_some()
    }

    /// Stopped with SIGSTOP and not resumed.
    pub fn is_paused(&self) -> bool {
        self.paused
    }

    /// Where the node's stderr goes.
    pub fn log_path(&self) -> &Path {
        &self.log
    }
}

/// Where the nodes' data dirs and logs live.
enum Root {
    /// Removed with the cluster (tests, benchmarks).
    Temporary(tempfile::TempDir),
    /// Kept, so a later run starts from the same data.
    Kept(PathBuf),
}

impl Root {
    fn path(&self) -> &Path {
        match self {
            Root::Temporary(dir) => dir.path(),
            Root::Kept(path) => path,
        }
    }
}

pub struct LocalCluster {
    binary: PathBuf,
    extra_args: Vec<String>,
    nodes: BTreeMap<u64, LocalNode>,
    root: Root,
    /// For status polls: short timeouts, so a paused node does not hold a poll up.
    probe: BooksDb,
    secret: String,
}

/// The secret's file in the cluster's folder.
pub const SECRET_FILE: &str = "cluster-secret";

impl LocalCluster {
    /// Starts nodes `1..=size` of `binary` (a `raft-node`) as one cluster, with `extra_args`
    /// added to every node's command line.
    pub fn start(binary: impl Into<PathBuf>, size: u64, extra_args: &[&str]) -> Result<Self, HarnessError> {
        let root = tempfile::Builder::new().prefix("books-db-cluster-").tempdir()?;
        let addrs = free_addrs(size as usize)?;
        Self::start_with(binary.into(), Root::Temporary(root), addrs, None, extra_args)
    }

    /// Like [`LocalCluster::start`], with each node's Raft RPCs on a listener of their own
    /// (`--raft-addr`).
    pub fn start_with_raft_listeners(
        binary: impl Into<PathBuf>,
        size: u64,
        extra_args: &[&str],
    ) -> Result<Self, HarnessError> {
        let root = tempfile::Builder::new().prefix("books-db-cluster-").tempdir()?;
        let mut addrs = free_addrs(2 * size as usize)?;
        let raft_addrs = addrs.split_off(size as usize);
        Self::start_with(binary.into(), Root::Temporary(root), addrs, Some(raft_addrs), extra_args)
    }

    /// Starts nodes `1..=addrs.len()` on the given addresses, with data dirs and logs kept in
    /// `root` (a restarted cluster carries on from them).
    pub fn start_kept(
        binary: impl Into<PathBuf>,
        root: impl Into<PathBuf>,
        addrs: Vec<String>,
        extra_args: &[&str],
    ) -> Result<Self, HarnessError> {
        let root = root.into();
        std::fs::create_dir_all(&root)?;
        Self::start_with(binary.into(), Root::Kept(root), addrs, None, extra_args)
    }

    fn start_with(
        binary: PathBuf,
        root: Root,
        addrs: Vec<String>,
        raft_addrs: Option<Vec<String>>,
        extra_args: &[&str],
    ) -> Result<Self, HarnessError> {
        let raft_addrs: Vec<Option<String>> = match raft_addrs {
            Some(raft) => raft.into_iter().map(Some).collect(),
            None => vec![None; addrs.len()],
        };
        let listed = |addr: &String, raft: &Option<String>| match raft {
            Some(raft) => format!("{addr}/{raft}"),
            None => addr.clone(),
        };
        let peers = (1..)
            .zip(addrs.iter().zip(&raft_addrs))
            .map(|(id, (addr, raft))| format!("{id}={}", listed(addr, raft)))
            .collect::<Vec<_>>()
            .join(",");
        let probe_options = ClientOptions {
            attempt_timeout: Duration::from_millis(500),
            deadline: Duration::from_millis(500),
            ..ClientOptions::default()
        };
        let secret_file = root.path().join(SECRET_FILE);
        let secret = read_or_create_secret(&secret_file)?;
        let mut extra_args: Vec<String> = extra_args.iter().map(|s| s.to_string()).collect();
        extra_args.extend(["--cluster-secret-file".to_string(), secret_file.display().to_string()]);
        let mut cluster = Self {
            binary,
            extra_args,
            secret,
            nodes: BTreeMap::new(),
            probe: BooksDb::with_options(addrs.iter().map(|a| format!("http://{a}")), probe_options)?,
            root,
        };
        for (id, (addr, raft_addr)) in (1..).zip(addrs.into_iter().zip(raft_addrs)) {
            cluster.add_node(id, addr, raft_addr, peers.clone())?;
        }
        Ok(cluster)
    }

    /// Starts one more node, `id`, that is not in the initial `--peers`: it waits to be added as
    /// a learner. Returns its address.
    pub fn start_extra_node(&mut self, id: u64) -> Result<String, HarnessError> {
        let addr = free_addrs(1)?.remove(0);
        let peers = self.nodes.values().next().map(|n| n.peers.clone()).unwrap_or_default();
        self.add_node(id, addr.clone(), None, peers)?;
        Ok(addr)
    }

    fn add_node(
        &mut self,
        id: u64,
        addr: String,
        raft_addr: Option<String>,
        peers: String,
    ) -> Result<(), HarnessError> {
        let node = LocalNode {
            raft_addr,
            id,
            data_dir: self.root.path().join(format!("node-{id}")),
            log: self.root.path().join(format!("node-{id}.log")),
            addr,
            peers,
            child: None,
            paused: false,
        };
        self.nodes.insert(id, node);
        self.restart(id)
    }

    pub fn ids(&self) -> Vec<u64> {
        self.nodes.keys().copied().collect()
    }

    pub fn node(&self, id: u64) -> Result<&LocalNode, HarnessError> {
        self.nodes.get(&id).ok_or(HarnessError::UnknownNode(id))
    }

    fn node_mut(&mut self, id: u64) -> Result<&mut LocalNode, HarnessError> {
        self.nodes.get_mut(&id).ok_or(HarnessError::UnknownNode(id))
    }

    pub fn url(&self, id: u64) -> Result<String, HarnessError> {
        Ok(self.node(id)?.url())
    }

    pub fn urls(&self) -> Vec<String> {
        self.nodes.values().map(LocalNode::url).collect()
    }

    /// A client that knows every node and the cluster secret.
    pub fn client(&self) -> Result<BooksDb, HarnessError> {
        Ok(BooksDb::new(self.urls())?.with_cluster_secret(&self.secret)?)
    }

    /// The secret the nodes were started with.
    pub fn secret(&self) -> &str {
        &self.secret
    }

    /// A client that talks to one node only.
    pub fn client_of(&self, id: u64) -> Result<BooksDb, HarnessError> {
        Ok(BooksDb::new([self.url(id)?])?)
    }

    /// Starts node `id` again with its data dir (or for the first time).
    pub fn restart(&mut self, id: u64) -> Result<(), HarnessError> {
        let binary = self.binary.clone();
        let extra_args = self.extra_args.clone();
        let node = self.node_mut(id)?;
        if node.child.is_some() {
            return Ok(());
        }
        let log = File::options().create(true).append(true).open(&node.log)?;
        let mut command = Command::new(&binary);
        command
            .arg("--id")
            .arg(id.to_string())
            .arg("--addr")
            .arg(&node.addr)
            .arg("--data-dir")
            .arg(&node.data_dir)
            .arg("--peers")
            .arg(&node.peers)
            .args(node.raft_addr.iter().flat_map(|raft| ["--raft-addr", raft.as_str()]))
            .args(&extra_args)
            .stdin(Stdio::null())
            .stdout(log.try_clone()?)
            .stderr(log);
        node.child = Some(spawn_tied(&mut command)?);
        node.paused = false;
        Ok(())
    }

    /// `kill -9` node `id` and reap it.
    pub fn kill(&mut self, id: u64) -> Result<(), HarnessError> {
        let node = self.node_mut(id)?;
        if let Some(mut child) = node.child.take() {
            child.kill()?;
            child.wait()?;
        }
        node.paused = false;
        Ok(())
    }

    /// Freezes node `id` (SIGSTOP): it keeps its sockets but answers nothing, like a node cut
    /// off from the network or stalled.
    pub fn pause(&mut self, id: u64) -> Result<(), HarnessError> {
        self.signal(id, libc::SIGSTOP)?;
        self.node_mut(id)?.paused = true;
        Ok(())
    }

    pub fn resume(&mut self, id: u64) -> Result<(), HarnessError> {
        self.signal(id, libc::SIGCONT)?;
        self.node_mut(id)?.paused = false;
        Ok(())
    }

    fn signal(&self, id: u64, signal: libc::c_int) -> Result<(), HarnessError> {
        let node = self.node(id)?;
        if let Some(child) = &node.child {
            // SAFETY: kill(2) on our own child's pid, which we have not reaped yet.
            if unsafe { libc::kill(child.id() as libc::pid_t, signal) } != 0 {
                return Err(std::io::Error::last_os_error().into());
            }
        }
        Ok(())
    }

    /// Node `id`'s status, or `None` when it does not answer.
    pub async fn status(&self, id: u64) -> Option<ClusterStatus> {
        let node = self.node(id).ok()?;
        if !node.is_running() || node.paused {
            return None;
        }
        self.probe.status_of(&node.url()).await.ok()
    }

    /// Polls until `check` holds for node `id`'s status; returns that status.
    pub async fn wait_for_status(
        &self,
        id: u64,
        what: &str,
        timeout: Duration,
        check: impl Fn(&ClusterStatus) -> bool,
    ) -> Result<ClusterStatus, HarnessError> {
        let deadline = Instant::now() + timeout;
        loop {
            if let Some(status) = self.status(id).await
                && check(&status)
            {
                return Ok(status);
            }
            if Instant::now() >= deadline {
                return Err(HarnessError::Timeout(timeout, format!("node {id}: {what}")));
            }
            tokio::time::sleep(Duration::from_millis(25)).await;
        }
    }

    /// Polls until a running node says it leads and a majority of the cluster's nodes (the
    /// leader included) agree; returns the leader's id.
    pub async fn wait_for_leader(&self, timeout: Duration) -> Result<u64, HarnessError> {
        let deadline = Instant::now() + timeout;
        loop {
            let mut statuses = Vec::new();
            for id in self.nodes.keys() {
                if let Some(status) = self.status(*id).await {
                    statuses.push(status);
                }
            }
            if let Some(leader) = agreed_leader(&statuses, self.nodes.len()) {
                return Ok(leader);
            }
            if Instant::now() >= deadline {
                return Err(HarnessError::Timeout(timeout, "a leader".into()));
            }
            tokio::time::sleep(Duration::from_millis(25)).await;
        }
    }

    /// A node whose process has exited on its own, with the last line of its log (why it
    /// stopped).
    pub fn exited(&self) -> Option<(u64, String)> {
        for node in self.nodes.values() {
            let Some(child) = &node.child else { continue };
            let pid = child.id();
            // Not reaped yet, so an exited node shows as a zombie (state Z); /proc tells without
            // the `&mut` that `try_wait` needs.
            let stat = std::fs::read_to_string(format!("/proc/{pid}/stat")).unwrap_or_default();
            let state = stat.rsplit(')').next().and_then(|rest| rest.split_whitespace().next());
            if state == Some("Z") {
                return Some((node.id, self.log_tail(node.id, 1)));
            }
        }
        None
    }

    /// The last lines of node `id`'s log, to explain a failure.
    pub fn log_tail(&self, id: u64, lines: usize) -> String {
        let Ok(node) = self.node(id) else { return String::new() };
        let text = std::fs::read_to_string(&node.log).unwrap_or_default();
        let all: Vec<&str> = text.lines().collect();
        all[all.len().saturating_sub(lines)..].join("\n")
    }
}

impl Drop for LocalCluster {
    fn drop(&mut self) {
        let ids = self.ids();
        if std::thread::panicking() {
            for id in &ids {
                eprintln!("--- raft-node {id} log (last lines) ---\n{}", self.log_tail(*id, 30));
            }
        }
        for id in ids {
            // A stopped process still dies of SIGKILL; resume anyway so nothing lingers stopped.
            let _ = self.resume(id);
            let _ = self.kill(id);
        }
    }
}

/// Spawns a process that the kernel kills if the spawning thread dies first (a test runner killed
/// with SIGKILL, say), so no server outlives the test or tool that started it.
pub fn spawn_tied(command: &mut Command) -> std::io::Result<Child> {
    tie_to_parent(command);
    command.spawn()
}

/// Makes `command`'s process die with the thread that spawns it (see [`spawn_tied`]), for a caller
/// that spawns it another way.
pub fn tie_to_parent(command: &mut Command) {
    // SAFETY: prctl(2) is async-signal-safe, as code between fork and exec must be.
    unsafe {
        command.pre_exec(|| {
            libc::prctl(libc::PR_SET_PDEATHSIG, libc::SIGKILL);
            Ok(())
        });
    }
}

/// The node that says it leads, if a majority of a cluster of `size` (the leader included) agree
/// with it in the same term.
pub fn agreed_leader(statuses: &[ClusterStatus], size: usize) -> Option<u64> {
    let leader = statuses.iter().find(|s| s.role == "leader")?;
    let agreeing = statuses.iter().filter(|s| s.leader == Some(leader.id) && s.term == leader.term).count();
    (agreeing > size / 2).then_some(leader.id)
}

/// The secret in `path`, or a new random one written there (readable by its owner only).
pub fn read_or_create_secret(path: &Path) -> std::io::Result<String> {
    use std::io::{Read, Write};
    use std::os::unix::fs::OpenOptionsExt;
    match std::fs::read_to_string(path) {
        Ok(secret) => return Ok(secret.trim_end().to_string()),
        Err(e) if e.kind() != std::io::ErrorKind::NotFound => return Err(e),
        Err(_) => {}
    }
    let mut random = [0u8; 24];
    File::open("/dev/urandom")?.read_exact(&mut random)?;
    let secret: String = random.iter().map(|b| format!("{b:02x}")).collect();
    let mut file = File::options().write(true).create_new(true).mode(0o600).open(path)?;
    writeln!(file, "{secret}")?;
    Ok(secret)
}

/// Loopback addresses with ports that were free a moment ago: all held open together, so they
/// differ, then released for the nodes to bind.
pub fn free_addrs(count: usize) -> std::io::Result<Vec<String>> {
    Ok(free_ports(count)?.into_iter().map(|port| format!("127.0.0.1:{port}")).collect())
}

/// The ports of [`free_addrs`].
pub fn free_ports(count: usize) -> std::io::Result<Vec<u16>> {
    let listeners = (0..count).map(|_| TcpListener::bind("127.0.0.1:0")).collect::<Result<Vec<_>, _>>()?;
    listeners.iter().map(|l| l.local_addr().map(|a| a.port())).collect()
}
