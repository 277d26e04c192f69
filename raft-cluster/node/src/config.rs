//! The `raft-node` command line.

use std::collections::BTreeMap;
use std::path::PathBuf;
use std::time::Duration;

use books_db_client::api::validate_addr;
use clap::Parser;

/// One node of the books database.
#[derive(Debug, Clone, Parser)]
#[command(name = "raft-node", about = "A node of the books database (a three-node openraft cluster)")]
pub struct NodeConfig {
    /// This node's id; must match the data dir's owner.
    #[arg(long)]
    pub id: u64,
    /// HOST:PORT to serve the HTTP API and the Raft RPCs on, as the peers reach it.
    #[arg(long)]
    pub addr: String,
    /// Local address to bind, when it differs from --addr (in a container: 0.0.0.0:7001, while
    /// peers know the node by its host name).
    #[arg(long)]
    pub listen: Option<String>,
    /// Directory for this node's durable state; created when missing.
    #[arg(long)]
    pub data_dir: PathBuf,
    /// The initial cluster, as ID=HOST:PORT,...; nodes started with the same list form one
    /// cluster. A node whose id is not in the list waits to be added as a learner.
    #[arg(long, value_parser = parse_peers)]
    pub peers: Peers,
    /// File whose first line is the cluster secret. With it, the Raft RPCs (`/raft/*`) and the
    /// membership changes (`/cluster/learners`, `/cluster/membership`) need `Authorization:
    /// Bearer SECRET` (401 otherwise), and this node sends it to its peers. Every node of a
    /// cluster must be given the same secret. Without it those routes are open to anyone who
    /// can reach the node, and the node says so at start.
    #[arg(long, env = "RAFT_NODE_CLUSTER_SECRET_FILE")]
    pub cluster_secret_file: Option<PathBuf>,
    /// Leader heartbeat interval.
    #[arg(long, default_value_t = 100)]
    pub heartbeat_ms: u64,
    /// A follower that hears no leader for a random time between this and twice this stands
    /// for election.
    #[arg(long, default_value_t = 500)]
    pub election_timeout_ms: u64,
    /// Build a snapshot (and compact the log) after this many new log entries.
    #[arg(long, default_value_t = 10_000)]
    pub snapshot_every: u64,
    /// Log entries kept after a snapshot, so briefly lagging followers need no snapshot.
    #[arg(long, default_value_t = 1_000)]
    pub keep_logs: u64,
    /// How long a write or linearizable read may wait for the cluster before it fails with 503.
    #[arg(long, default_value_t = 3_000)]
    pub request_timeout_ms: u64,
    /// Largest accepted request body.
    #[arg(long, default_value_t = 1024 * 1024)]
    pub max_body_bytes: usize,
}

impl NodeConfig {
    pub fn request_timeout(&self) -> Duration {
        Duration::from_millis(self.request_timeout_ms)
    }
}

/// Node id → HOST:PORT.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Peers(pub BTreeMap<u64, String>);

fn parse_peers(text: &str) -> Result<Peers, String> {
    let mut peers = BTreeMap::new();
    for item in text.split(',').map(str::trim).filter(|s| !s.is_empty()) {
        let (id, addr) = item.split_once('=').ok_or_else(|| format!("peer {item:?} is not ID=HOST:PORT"))?;
        let id: u64 = id.trim().parse().map_err(|_| format!("peer id {id:?} is not a number"))?;
        let addr = addr.trim();
        validate_addr(addr).map_err(|e| format!("peer {id}: {e}"))?;
        if peers.insert(id, addr.to_string()).is_some() {
            return Err(format!("peer {id} is listed twice"));
        }
    }
    if peers.is_empty() {
        return Err("no peers given".into());
    }
    Ok(Peers(peers))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn peers_parse_and_bad_lists_are_explained() {
        let peers = parse_peers("1=127.0.0.1:7001, 2=localhost:7002,3=[::1]:7003").unwrap();
        assert_eq!(peers.0.len(), 3);
        assert_eq!(peers.0[&3], "[::1]:7003");
        for (bad, why) in [
            ("1=a:1,1=b:2", "twice"),
            ("x=a:1", "not a number"),
            ("1=nohost", "HOST:PORT"),
            ("1=h:99999", "HOST:PORT"),
            ("1", "ID=HOST:PORT"),
            ("", "no peers"),
        ] {
            let err = parse_peers(bad).unwrap_err();
            assert!(err.contains(why), "{bad:?}: {err}");
        }
    }
}
