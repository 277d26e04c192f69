//! The nemesis: one fault at a time on the container cluster, then the heal.

use std::time::Duration;

use anyhow::Result;
use rand::Rng;
use rand::seq::IndexedRandom;

use crate::containers::ComposeCluster;

/// What the nemesis does to one node.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Fault {
    /// `docker kill`, later `docker start` (the node restarts from its volume).
    Kill,
    /// `docker pause` (frozen, sockets open), later `docker unpause`.
    Pause,
    /// `docker network disconnect` (a minority of one, cut off from peers and clients), later
    /// connected again.
    Partition,
}

/// Which node it picks.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Target {
    Leader,
    Follower,
}

/// A fault in force on a node, to heal.
#[derive(Debug, Clone, Copy)]
pub struct Applied {
    pub fault: Fault,
    pub target: Target,
    pub node: u64,
}

impl Applied {
    /// The fault and its target, without the node: "killed the leader".
    pub fn kind(&self) -> String {
        let what = match self.fault {
            Fault::Kill => "killed",
            Fault::Pause => "paused",
            Fault::Partition => "cut off",
        };
        let who = match self.target {
            Target::Leader => "the leader",
            Target::Follower => "a follower",
        };
        format!("{what} {who}")
    }
}

impl std::fmt::Display for Applied {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "{}, node {}", self.kind(), self.node)
    }
}

const FAULTS: [Fault; 3] = [Fault::Kill, Fault::Pause, Fault::Partition];

/// Picks a fault and a node (the leader half of the time) and applies it.
pub async fn inject(cluster: &mut ComposeCluster, rng: &mut impl Rng) -> Result<Applied> {
    let leader = cluster.wait_for_leader(Duration::from_secs(30)).await?;
    let fault = *FAULTS.choose(rng).unwrap_or(&Fault::Kill);
    let target = if rng.random_bool(0.5) { Target::Leader } else { Target::Follower };
    let node = match target {
        Target::Leader => leader,
        Target::Follower => {
            let followers: Vec<u64> = cluster.ids().into_iter().filter(|id| *id != leader).collect();
            *followers.choose(rng).unwrap_or(&leader)
        }
    };
    match fault {
        Fault::Kill => cluster.kill(node)?,
        Fault::Pause => cluster.pause(node)?,
        Fault::Partition => cluster.disconnect(node)?,
    }
    Ok(Applied { fault, target, node })
}

/// Undoes `applied`.
pub fn heal(cluster: &mut ComposeCluster, applied: Applied) -> Result<()> {
    match applied.fault {
        Fault::Kill => cluster.restart(applied.node),
        Fault::Pause => cluster.resume(applied.node),
        Fault::Partition => cluster.connect(applied.node),
    }
}
