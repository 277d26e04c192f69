//! Starting and running one node: storage, Raft, bootstrap, HTTP server.

use std::collections::BTreeMap;
use std::future::Future;
use std::sync::Arc;

use openraft::errors::{InitializeError, RaftError};
use openraft::{BasicNode, SnapshotPolicy};
use tokio::net::TcpListener;

use crate::app::App;
use crate::network::PeerNetwork;
use crate::store::{self, OpenError};
use crate::{NodeConfig, Raft};

/// Why a node could not start; each is one line for the operator.
#[derive(Debug, thiserror::Error)]
pub enum StartError {
    #[error(transparent)]
    Storage(#[from] OpenError),
    #[error("cannot listen on {addr}: {source}")]
    Listen { addr: String, source: std::io::Error },
    #[error("--addr {addr} differs from node {id}'s address {listed} in --peers")]
    AddrMismatch { id: u64, addr: String, listed: String },
    #[error("invalid raft settings: {0}")]
    Settings(String),
    #[error("raft failed: {0}")]
    Raft(String),
    #[error("serving HTTP failed: {0}")]
    Serve(std::io::Error),
}

/// Runs a node until `shutdown` completes.
pub async fn run(config: NodeConfig, shutdown: impl Future<Output = ()> + Send + 'static) -> Result<(), StartError> {
    if let Some(listed) = config.peers.0.get(&config.id)
        && *listed != config.addr
    {
        return Err(StartError::AddrMismatch { id: config.id, addr: config.addr.clone(), listed: listed.clone() });
    }
    let listener = TcpListener::bind(&config.addr)
        .await
        .map_err(|source| StartError::Listen { addr: config.addr.clone(), source })?;
    let (log, state) = store::open(&config.data_dir, config.id)?;

    let raft_config = openraft::Config {
        cluster_name: "books-db".into(),
        heartbeat_interval: config.heartbeat_ms,
        election_timeout_min: config.election_timeout_ms,
        election_timeout_max: config.election_timeout_ms * 2,
        snapshot_policy: SnapshotPolicy::LogsSinceLast(config.snapshot_every),
        max_in_snapshot_log_to_keep: config.keep_logs,
        enable_pre_vote: Some(true),
        // Sending and installing a whole snapshot takes longer than the 200 ms default allows.
        install_snapshot_timeout: 30_000,
        broadcast_submitted_on_append: Some(true),
        ..Default::default()
    }
    .validate()
    .map_err(|e| StartError::Settings(e.to_string()))?;

    let http = reqwest::Client::builder().no_proxy().build().map_err(|e| StartError::Raft(e.to_string()))?;
    let raft = Raft::new(config.id, Arc::new(raft_config), PeerNetwork::new(http.clone()), log, state.clone())
        .await
        .map_err(|e| StartError::Raft(e.to_string()))?;
    bootstrap(&raft, &config).await?;

    let app = Arc::new(App { id: config.id, raft: raft.clone(), state, config, http });
    tracing::info!(node_id = app.id, addr = %app.config.addr, "serving");
    let served = axum::serve(listener, crate::api::router(app)).with_graceful_shutdown(shutdown).await;
    if let Err(e) = raft.shutdown().await {
        tracing::warn!(error = %e, "raft did not shut down cleanly");
    }
    served.map_err(StartError::Serve)
}

/// A fresh node listed in `--peers` proposes the listed cluster. Every listed node does so with
/// the same membership, which openraft allows: the election picks one leader. A node that has
/// state (a restart) or is not listed (it joins later as a learner) waits for the leader.
async fn bootstrap(raft: &Raft, config: &NodeConfig) -> Result<(), StartError> {
    if !config.peers.0.contains_key(&config.id) {
        tracing::info!(node_id = config.id, "not in --peers: waiting to be added as a learner");
        return Ok(());
    }
    let initialized = raft.is_initialized().await.map_err(|e| StartError::Raft(e.to_string()))?;
    if initialized {
        return Ok(());
    }
    let members: BTreeMap<u64, BasicNode> =
        config.peers.0.iter().map(|(id, addr)| (*id, BasicNode { addr: addr.clone() })).collect();
    match raft.initialize(members).await {
        Ok(()) => tracing::info!(node_id = config.id, peers = ?config.peers.0, "proposed the initial cluster"),
        // Another node's leader reached us first: already part of the cluster.
        Err(RaftError::APIError(InitializeError::NotAllowed(_))) => {}
        Err(e) => return Err(StartError::Raft(e.to_string())),
    }
    Ok(())
}
