//! `raft-node health HOST:PORT`: the container health check. An image built `FROM scratch` has no
//! shell or curl, so the node's own binary asks the node.

use std::time::Duration;

use books_db_client::api::ClusterStatus;
use clap::Parser;

/// Exits 0 when the node at ADDR answers and knows a leader, 1 (with why) otherwise.
#[derive(Debug, Parser)]
#[command(name = "raft-node health")]
pub struct HealthCheck {
    /// The node's client address.
    #[arg(default_value = "127.0.0.1:7001")]
    pub addr: String,
    #[arg(long, default_value_t = 2_000)]
    pub timeout_ms: u64,
}

impl HealthCheck {
    /// The node's status when healthy; otherwise why not, in one line.
    pub async fn run(&self) -> Result<ClusterStatus, String> {
        let http = reqwest::Client::builder()
            .no_proxy()
            .timeout(Duration::from_millis(self.timeout_ms))
            .build()
            .map_err(|e| e.to_string())?;
        let url = format!("http://{}/cluster/status", self.addr);
        let answer = http.get(&url).send().await.map_err(|e| format!("{url}: {e}"))?;
        if !answer.status().is_success() {
            return Err(format!("{url}: HTTP {}", answer.status()));
        }
        let status: ClusterStatus = answer.json().await.map_err(|e| format!("{url}: {e}"))?;
        match status.leader {
            Some(_) => Ok(status),
            None => Err(format!("node {} knows no leader (term {})", status.id, status.term)),
        }
    }
}
