//! The `raft-node` command line.

use std::collections::BTreeMap;
use std::path::PathBuf;
use std::time::Duration;

use books_db_client::api::validate_addr;
use clap::Parser;

use crate::peer::PeerAddr;

/// One node of the books database.
#[derive(Debug, Clone, Parser)]
#[command(name = "raft-node", about = "A node of the books database (a three-node openraft cluster)")]
pub struct NodeConfig {
    /// This node's id; must match the data dir's owner.
    #[arg(long)]
    pub id: u64,
    /// HOST:PORT of the HTTP API (and of the Raft RPCs, without --raft-addr), as clients and
    /// peers reach it.
    #[arg(long)]
    pub addr: String,
    /// HOST:PORT of a listener for the Raft RPCs alone, as peers reach it; the client port then
    /// serves no `/raft/*` route, so only the client port needs to be reachable by clients.
    #[arg(long)]
    pub raft_addr: Option<String>,
    /// Bind the listeners on this host, at the ports of --addr and --raft-addr (in a container:
    /// 0.0.0.0, while peers know the node by its host name).
    #[arg(long)]
    pub bind_host: Option<String>,
    /// Directory for this node's durable state; created when missing.
    #[arg(long)]
    pub data_dir: PathBuf,
    /// The initial cluster, as ID=HOST:PORT,... (ID=HOST:PORT/RAFT_HOST:RAFT_PORT for nodes with
    /// a --raft-addr); nodes started with the same list form one cluster. A node whose id is not
    /// in the list waits to be added as a learner.
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
    /// Where the node sends its traces and metrics (an OTLP/HTTP collector's base URL); none
    /// if unset.
    #[arg(long, env = "OTEL_EXPORTER_OTLP_ENDPOINT")]
    pub otlp_endpoint: Option<String>,
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

    /// This node as its peers reach it.
    pub fn own_addr(&self) -> PeerAddr {
        PeerAddr { addr: self.addr.clone(), raft_addr: self.raft_addr.clone() }
    }

    /// Where to bind `advertised` (one of this node's addresses): at --bind-host, if given.
    pub fn bind_addr(&self, advertised: &str) -> String {
        match (&self.bind_host, advertised.rsplit_once(':')) {
            (Some(host), Some((_, port))) => format!("{host}:{port}"),
            _ => advertised.to_string(),
        }
    }
}

/// Node id → its addresses.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Peers(pub BTreeMap<u64, PeerAddr>);

fn parse_peers(text: &str) -> Result<Peers, String> {
    let mut peers = BTreeMap::new();
    for item in text.split(',').map(str::trim).filter(|s| !s.is_empty()) {
        let (id, addr) = item.split_once('=').ok_or_else(|| format!("peer {item:?} is not ID=HOST:PORT"))?;
        let id: u64 = id.trim().parse().map_err(|_| format!("peer id {id:?} is not a number"))?;
        let (addr, raft_addr) = match addr.trim().split_once('/') {
            Some((addr, raft)) => (addr, Some(raft)),
            None => (addr.trim(), None),
        };
        for a in std::iter::once(addr).chain(raft_addr) {
            validate_addr(a).map_err(|e| format!("peer {id}: {e}"))?;
        }
        let peer = PeerAddr { addr: addr.to_string(), raft_addr: raft_addr.map(str::to_string) };
        if peers.insert(id, peer).is_some() {
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
        let peers = parse_peers("1=127.0.0.1:7001, 2=localhost:7002,3=[::1]:7003,4=n4:7001/n4:7002").unwrap();
        assert_eq!(peers.0.len(), 4);
        assert_eq!(peers.0[&3].addr, "[::1]:7003");
        assert_eq!(peers.0[&3].raft(), "[::1]:7003");
        assert_eq!(peers.0[&4].raft(), "n4:7002");
        for (bad, why) in [
            ("1=a:1,1=b:2", "twice"),
            ("x=a:1", "not a number"),
            ("1=nohost", "HOST:PORT"),
            ("1=h:99999", "HOST:PORT"),
            ("1=h:1/nohost", "HOST:PORT"),
            ("1", "ID=HOST:PORT"),
            ("", "no peers"),
        ] {
            let err = parse_peers(bad).unwrap_err();
            assert!(err.contains(why), "{bad:?}: {err}");
        }
    }
}
