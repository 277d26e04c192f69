//! Starting and running one node: storage, Raft, bootstrap, HTTP server.

use std::collections::BTreeMap;
use std::future::Future;
use std::sync::Arc;

use futures::FutureExt;
use openraft::SnapshotPolicy;
use openraft::errors::{InitializeError, RaftError};
use tokio::net::TcpListener;

use crate::NodeConfig;
use crate::app::{App, Raft};
use crate::network::PeerNetwork;
use crate::peer::PeerAddr;
use crate::secret::{ClusterSecret, SecretError};
use crate::store::{self, OpenError};

/// Why a node could not start; each is one line for the operator.
#[derive(Debug, thiserror::Error)]
pub enum StartError {
    #[error(transparent)]
    Storage(#[from] OpenError),
    #[error("cannot listen on {addr}: {source}")]
    Listen { addr: String, source: std::io::Error },
    /// `addr` is `ADDR` or `ADDR/RAFT_ADDR`, as --peers writes it.
    #[error("--addr {addr} differs from node {id}'s address {listed} in --peers")]
    AddrMismatch { id: u64, addr: String, listed: String },
    #[error(transparent)]
    Secret(#[from] SecretError),
    #[error(
        "the data dir {data_dir} belongs to a cluster of {stored}, but --peers says {given}: start with the same --peers, or with an empty data dir (cargo xtask up --fresh)"
    )]
    PeersMismatch { data_dir: String, stored: String, given: String },
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
        && *listed != config.own_addr()
    {
        return Err(StartError::AddrMismatch {
            id: config.id,
            addr: config.own_addr().to_string(),
            listed: listed.to_string(),
        });
    }
    let listener = listen(&config.bind_addr(&config.addr)).await?;
    let raft_listener = match &config.raft_addr {
        Some(raft_addr) => Some(listen(&config.bind_addr(raft_addr)).await?),
        None => None,
    };
    let secret = config.cluster_secret_file.as_deref().map(ClusterSecret::read).transpose()?;
    if secret.is_none() {
        tracing::warn!(
            node_id = config.id,
            "no --cluster-secret-file: anyone who can reach this node can send Raft RPCs and change the membership"
        );
    }
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
    let raft = Raft::new(
        config.id,
        Arc::new(raft_config),
        PeerNetwork::new(http.clone(), secret.clone()),
        log.clone(),
        state.clone(),
    )
    .await
    .map_err(|e| StartError::Raft(e.to_string()))?;
    if let Err(e) = check_peers(&raft, &config).await {
        let _ = raft.shutdown().await;
        return Err(e);
    }
    bootstrap(&raft, &config).await?;

    crate::metrics::observe(&raft, config.id);
    let app = Arc::new(App { id: config.id, raft: raft.clone(), state, log, config, http, secret });
    tracing::info!(node_id = app.id, addr = %app.config.addr, raft_addr = ?app.config.raft_addr, "serving");
    let shutdown = shutdown.shared();
    let served = match raft_listener {
        None => axum::serve(listener, crate::api::router(app, true)).with_graceful_shutdown(shutdown).await,
        Some(raft_listener) => {
            let client = axum::serve(listener, crate::api::router(app.clone(), false))
                .with_graceful_shutdown(shutdown.clone())
                .into_future();
            let peers = axum::serve(raft_listener, crate::api::raft_router(app)).with_graceful_shutdown(shutdown);
            let (client, peers) = tokio::join!(client, peers.into_future());
            client.and(peers)
        }
    };
    if let Err(e) = raft.shutdown().await {
        tracing::warn!(error = %e, "raft did not shut down cleanly");
    }
    served.map_err(StartError::Serve)
}

async fn listen(addr: &str) -> Result<TcpListener, StartError> {
    TcpListener::bind(addr).await.map_err(|source| StartError::Listen { addr: addr.to_string(), source })
}

/// A restarted node whose stored membership puts a node listed in `--peers` at another address
/// would wait for peers that are not there (no leader, ever): refuse to start instead. Ids on one
/// side only are fine: the membership may have grown or shrunk since the cluster was formed.
async fn check_peers(raft: &Raft, config: &NodeConfig) -> Result<(), StartError> {
    // Asked of Raft's own state, which holds the stored membership once loaded; the metrics may
    // not have been published yet.
    let stored: BTreeMap<u64, PeerAddr> = raft
        .with_raft_state(|state| {
            let membership = state.membership_state.effective().membership();
            membership.nodes().map(|(id, node)| (*id, node.clone())).collect()
        })
        .await
        .map_err(|e| StartError::Raft(e.to_string()))?;
    let moved = config.peers.0.iter().any(|(id, addr)| stored.get(id).is_some_and(|was| was != addr));
    if !moved {
        return Ok(());
    }
    let list = |peers: &BTreeMap<u64, PeerAddr>| {
        peers.iter().map(|(id, addr)| format!("{id}={addr}")).collect::<Vec<_>>().join(",")
    };
    Err(StartError::PeersMismatch {
        data_dir: config.data_dir.display().to_string(),
        stored: list(&stored),
        given: list(&config.peers.0),
    })
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
    let members: BTreeMap<u64, PeerAddr> = config.peers.0.clone();
    match raft.initialize(members).await {
        Ok(()) => tracing::info!(node_id = config.id, peers = ?config.peers.0, "proposed the initial cluster"),
        // Another node's leader reached us first: already part of the cluster.
        Err(RaftError::APIError(InitializeError::NotAllowed(_))) => {}
        Err(e) => return Err(StartError::Raft(e.to_string())),
    }
    Ok(())
}
