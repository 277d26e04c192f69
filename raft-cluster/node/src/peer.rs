//! How the cluster reaches a node; this is what the membership stores for each node.

use serde::{Deserialize, Serialize};

/// A node's client address, and the address of its Raft listener when it has one of its own
/// (`--raft-addr`). Stored as `{"addr"}` when there is none: what entries written before
/// `--raft-addr` existed hold, so they still read.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct PeerAddr {
    pub addr: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub raft_addr: Option<String>,
}

impl PeerAddr {
    /// Where the node takes Raft RPCs.
    pub fn raft(&self) -> &str {
        self.raft_addr.as_deref().unwrap_or(&self.addr)
    }
}

/// `ADDR` or `ADDR/RAFT_ADDR`, as `--peers` lists a node.
impl std::fmt::Display for PeerAddr {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match &self.raft_addr {
            Some(raft) => write!(f, "{}/{raft}", self.addr),
            None => f.write_str(&self.addr),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn entries_stored_before_raft_addr_still_read() {
        let old: PeerAddr = serde_json::from_str(r#"{"addr": "127.0.0.1:7001"}"#).unwrap();
        assert_eq!(old, PeerAddr { addr: "127.0.0.1:7001".into(), raft_addr: None });
        assert_eq!(old.raft(), "127.0.0.1:7001");
        assert_eq!(serde_json::to_string(&old).unwrap(), r#"{"addr":"127.0.0.1:7001"}"#);
        let split = PeerAddr { addr: "n1:7001".into(), raft_addr: Some("n1:7002".into()) };
        assert_eq!(split.raft(), "n1:7002");
        assert_eq!(split.to_string(), "n1:7001/n1:7002");
    }
}
