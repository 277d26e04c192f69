//! Raft RPCs to peers: JSON over HTTP to the peer's `/raft/*` routes (see `api::raft_rpc`).

use std::future::Future;
use std::io::Cursor;

use openraft::OptionalSend;
use openraft::errors::{NetworkError, RPCError, RaftError, ReplicationClosed, StreamingError, Unreachable};
use openraft::network::{RPCOption, RaftNetworkFactory, RaftNetworkV2};
use openraft::raft::{AppendEntriesRequest, AppendEntriesResponse, SnapshotResponse, VoteRequest, VoteResponse};
use serde::Serialize;
use serde::de::DeserializeOwned;
use serde_json::value::RawValue;

use crate::peer::PeerAddr;
use crate::secret::ClusterSecret;
use crate::snapshot::SnapshotRequest;
use crate::{NodeId, Snapshot, TypeConfig, Vote};

/// Makes a [`PeerClient`] per peer; all share one connection pool.
#[derive(Clone)]
pub struct PeerNetwork {
    http: reqwest::Client,
    secret: Option<ClusterSecret>,
}

impl PeerNetwork {
    /// `secret`, when given, goes with every RPC: peers refuse RPCs without it.
    pub fn new(http: reqwest::Client, secret: Option<ClusterSecret>) -> Self {
        Self { http, secret }
    }
}

impl RaftNetworkFactory<TypeConfig> for PeerNetwork {
    type Network = PeerClient;

    async fn new_client(&mut self, target: NodeId, node: &PeerAddr) -> PeerClient {
        PeerClient {
            target,
            base: format!("http://{}/raft", node.raft()),
            http: self.http.clone(),
            secret: self.secret.clone(),
        }
    }
}

pub struct PeerClient {
    target: NodeId,
    base: String,
    http: reqwest::Client,
    secret: Option<ClusterSecret>,
}

impl PeerClient {
    async fn call<Req, Resp>(
        &self,
        route: &str,
        request: &Req,
        option: &RPCOption,
    ) -> Result<Resp, RPCError<TypeConfig>>
    where
        Req: Serialize,
        Resp: DeserializeOwned,
    {
        let url = format!("{}/{route}", self.base);
        let mut post = self.http.post(&url).json(request).timeout(option.hard_ttl());
        if let Some(secret) = &self.secret {
            post = post.header(reqwest::header::AUTHORIZATION, secret.bearer().as_bytes());
        }
        let response = post.send().await.map_err(|e| {
            if e.is_connect() {
                RPCError::Unreachable(Unreachable::new(&e))
            } else {
                RPCError::Network(NetworkError::new(&e))
            }
        })?;
        let status = response.status();
        if !status.is_success() {
            let message = format!("{url}: HTTP {status}");
            return Err(RPCError::Network(NetworkError::from_string(message)));
        }
        let answer: Result<Resp, RaftError<TypeConfig>> =
            response.json().await.map_err(|e| RPCError::Network(NetworkError::new(&e)))?;
        // The peer's Raft refused the call (it is shutting down, say): to this node, as good as
        // unreachable for now.
        answer.map_err(|e| {
            tracing::debug!(target_node = self.target, error = %e, "peer refused raft rpc");
            RPCError::Unreachable(Unreachable::new(&e))
        })
    }
}

impl RaftNetworkV2<TypeConfig> for PeerClient {
    type SnapshotData = Cursor<Vec<u8>>;

    async fn append_entries(
        &mut self,
        request: AppendEntriesRequest<TypeConfig>,
        option: RPCOption,
    ) -> Result<AppendEntriesResponse<TypeConfig>, RPCError<TypeConfig>> {
        self.call("append", &request, &option).await
    }

    async fn vote(
        &mut self,
        request: VoteRequest<TypeConfig>,
        option: RPCOption,
    ) -> Result<VoteResponse<TypeConfig>, RPCError<TypeConfig>> {
        self.call("vote", &request, &option).await
    }

    async fn pre_vote(
        &mut self,
        request: VoteRequest<TypeConfig>,
        option: RPCOption,
    ) -> Result<VoteResponse<TypeConfig>, RPCError<TypeConfig>> {
        self.call("pre-vote", &request, &option).await
    }

    async fn full_snapshot(
        &mut self,
        vote: Vote,
        snapshot: Snapshot,
        cancel: impl Future<Output = ReplicationClosed> + OptionalSend + 'static,
        option: RPCOption,
    ) -> Result<SnapshotResponse<TypeConfig>, StreamingError<TypeConfig>> {
        // Snapshot data is JSON: embed it as is rather than as an array of byte values.
        let data = String::from_utf8(snapshot.snapshot.into_inner())
            .ok()
            .and_then(|text| RawValue::from_string(text).ok())
            .ok_or_else(|| NetworkError::from_string("snapshot data is not JSON"))?;
        let request = SnapshotRequest { vote, meta: snapshot.meta, data };
        tokio::select! {
            closed = cancel => Err(StreamingError::Closed(closed)),
            answer = self.call("snapshot", &request, &option) => Ok(answer?),
        }
    }
}
