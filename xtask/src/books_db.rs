//! The embedded default's books database: three raft-node processes (the default), or the
//! container cluster of `raft-cluster/compose.yaml` (`cargo xtask up --books-db containers`).

use std::path::Path;
use std::time::{Duration, Instant};

use anyhow::{Result, bail};
use books_db_client::BooksDb;
use raft_local_cluster::LocalCluster;

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

pub enum BooksDbCluster {
    Processes(LocalCluster),
    Containers(ComposeCluster),
}

impl BooksDbCluster {
    /// Starts three nodes on the ports from `first_port` (0: free ports), with their data in
    /// `data_dir` (processes: a temporary data dir goes with its folder) or in compose volumes
    /// named after it (containers: removed at the end when `temporary`); waits for a leader.
    pub async fn start(mode: BooksDbMode, first_port: u16, data_dir: &Path, temporary: bool) -> Result<Self> {
        let ports = if first_port == 0 { free_ports()? } else { [first_port, first_port + 1, first_port + 2] };
        let cluster = match mode {
            BooksDbMode::Processes => {
                let binary = crate::build_release("raft-node")?;
                let addrs = ports.iter().map(|port| format!("127.0.0.1:{port}")).collect();
                Self::Processes(LocalCluster::start_kept(&binary, data_dir.join("books-db"), addrs, &[])?)
            }
            BooksDbMode::Containers => {
                crate::images::build_raft_node()?;
                let project = if temporary { unique_project("stack") } else { project_for(data_dir) };
                let secret = data_dir.join("books-db-secret");
                Self::Containers(ComposeCluster::start(&project, ports, secret, temporary)?)
            }
        };
        cluster.wait_for_first_leader().await?;
        Ok(cluster)
    }

    /// Waits for a leader; a node process that exits meanwhile (it refused its data dir, say)
    /// ends the wait with its last line.
    async fn wait_for_first_leader(&self) -> Result<()> {
        let deadline = Instant::now() + ELECTION_TIMEOUT;
        loop {
            if let Self::Processes(cluster) = self
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
        match self {
            Self::Processes(c) => c.urls(),
            Self::Containers(c) => c.urls(),
        }
    }

    /// A client of every node, with the cluster secret.
    pub fn client(&self) -> Result<BooksDb> {
        match self {
            Self::Processes(c) => Ok(c.client()?),
            Self::Containers(c) => c.client(),
        }
    }

    pub async fn wait_for_leader(&self, timeout: Duration) -> Result<u64> {
        match self {
            Self::Processes(c) => Ok(c.wait_for_leader(timeout).await?),
            Self::Containers(c) => c.wait_for_leader(timeout).await,
        }
    }

    pub fn kill(&mut self, id: u64) -> Result<()> {
        match self {
            Self::Processes(c) => Ok(c.kill(id)?),
            Self::Containers(c) => c.kill(id),
        }
    }

    pub fn restart(&mut self, id: u64) -> Result<()> {
        match self {
            Self::Processes(c) => Ok(c.restart(id)?),
            Self::Containers(c) => c.restart(id),
        }
    }

    pub fn pause(&mut self, id: u64) -> Result<()> {
        match self {
            Self::Processes(c) => Ok(c.pause(id)?),
            Self::Containers(c) => c.pause(id),
        }
    }

    pub fn resume(&mut self, id: u64) -> Result<()> {
        match self {
            Self::Processes(c) => Ok(c.resume(id)?),
            Self::Containers(c) => c.resume(id),
        }
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
