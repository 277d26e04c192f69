//! The books database as three raft-node containers (raft-cluster/compose.yaml) on this
//! machine's Docker engine, from the image `cargo xtask images` builds here: replication across
//! containers, a killed leader, a cut-off minority, the cluster secret, a short nemesis run
//! checked for linearizability, and the nodes' telemetry reaching a collector on this machine.
//! Without a Docker engine these tests fail and say so.

// A test fails by panicking: its helpers unwrap too, not only its #[test] functions.
#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::time::{Duration, Instant};

use books_db_client::{ClientOptions, Error};
use serde_json::json;
use xtask::books_db::{BooksDbCluster, BooksDbMode, BooksDbNodes, NodeFault};
use xtask::collector::Collector;
use xtask::containers::{ComposeCluster, check_docker, free_ports, unique_project};
use xtask::nemesis::{self, Nemesis};

/// The image is built once per test process; the tests run one cluster at a time (two
/// clusters and a nemesis on two cores would slow each other into time-outs).
async fn one_cluster_at_a_time() -> tokio::sync::MutexGuard<'static, bool> {
    static CLUSTERS: tokio::sync::Mutex<bool> = tokio::sync::Mutex::const_new(false);
    let mut built = CLUSTERS.lock().await;
    if let Err(e) = check_docker() {
        panic!("these tests need a Docker engine (`docker info` must work): {e:#}");
    }
    if !*built {
        tokio::task::block_in_place(xtask::images::build_raft_node).expect("build the raft-node image");
        *built = true;
    }
    built
}

fn start(dir: &tempfile::TempDir) -> ComposeCluster {
    ComposeCluster::start(&unique_project("test"), free_ports().unwrap(), dir.path().join("secret"), true, None)
        .expect("compose up")
}

/// Fails fast: a cut-off node must refuse, not keep the test waiting.
fn impatient() -> ClientOptions {
    ClientOptions {
        attempt_timeout: Duration::from_millis(800),
        deadline: Duration::from_millis(1_500),
        ..ClientOptions::default()
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn containers_replicate_survive_a_killed_leader_and_a_cut_off_minority() {
    let _one = one_cluster_at_a_time().await;
    let dir = tempfile::tempdir().unwrap();
    let mut cluster = start(&dir);
    let leader = cluster.wait_for_leader(Duration::from_secs(60)).await.unwrap();
    let [a, b] =
        <[u64; 2]>::try_from(cluster.ids().into_iter().filter(|id| *id != leader).collect::<Vec<_>>()).unwrap();

    // A write through one container is read through another.
    let through_a = cluster.client_of(a, ClientOptions::default()).unwrap();
    through_a.set("across", json!("containers")).await.unwrap();
    let through_b = cluster.client_of(b, ClientOptions::default()).unwrap();
    assert_eq!(through_b.get("across").await.unwrap().unwrap().value, json!("containers"));

    // Membership changes without the secret are refused; with it, accepted.
    let http = reqwest::Client::new();
    let url = format!("{}/cluster/membership", cluster.url(a).unwrap());
    let anonymous = http.post(&url).json(&json!({"voters": [leader]})).send().await.unwrap();
    assert_eq!(anonymous.status(), 401);
    // The Raft RPCs have their own port, on the private network only.
    let vote = http.post(format!("{}/raft/vote", cluster.url(a).unwrap())).json(&json!({})).send().await.unwrap();
    assert_eq!(vote.status(), 404, "no Raft RPC on the published client port");
    let status = through_b.status_of(&cluster.url(b).unwrap()).await.unwrap();
    assert_eq!(status.members.len(), 3, "the anonymous change did nothing");
    cluster.client().unwrap().change_membership(vec![1, 2, 3]).await.expect("with the secret");

    // Kill the leader's container: another leader, and no acknowledged write lost.
    let client = cluster.client().unwrap();
    let mut acknowledged = Vec::new();
    for i in 0..20 {
        acknowledged.push((format!("acked/{i}"), client.set(&format!("acked/{i}"), json!(i)).await.unwrap()));
    }
    cluster.kill(leader).unwrap();
    let new_leader = cluster.wait_for_leader(Duration::from_secs(30)).await.expect("a new leader");
    assert_ne!(new_leader, leader);
    let survivor = cluster.client_of(new_leader, ClientOptions::default()).unwrap();
    for (key, version) in &acknowledged {
        let entry = survivor.get(key).await.unwrap().unwrap_or_else(|| panic!("{key} was lost"));
        assert_eq!(entry.version, *version, "{key}");
    }
    cluster.restart(leader).unwrap();
    cluster.wait_for_leader(Duration::from_secs(30)).await.unwrap();

    // Cut one node off: as a minority it accepts no write; the majority goes on; healed, the
    // node catches up.
    let leader = cluster.wait_for_leader(Duration::from_secs(30)).await.unwrap();
    let lone = cluster.ids().into_iter().find(|id| *id != leader).unwrap();
    cluster.disconnect(lone).unwrap();
    let through_lone = cluster.client_of(lone, impatient()).unwrap();
    let refused = through_lone.set("minority", json!(1)).await;
    assert!(matches!(refused, Err(Error::Unavailable { .. })), "{refused:?}");
    let majority = cluster.client_of(leader, ClientOptions::default()).unwrap();
    assert_eq!(majority.get("minority").await.unwrap(), None, "the minority's write was not applied");
    let version = majority.set("while-cut-off", json!("majority")).await.unwrap();
    cluster.connect(lone).unwrap();
    let deadline = Instant::now() + Duration::from_secs(30);
    loop {
        let entry = cluster.client_of(lone, impatient()).unwrap().get_stale("while-cut-off").await;
        if let Ok(Some(entry)) = entry {
            assert_eq!(entry.version, version);
            break;
        }
        assert!(Instant::now() < deadline, "node {lone} did not catch up after healing: {entry:?}");
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_short_nemesis_run_is_linearizable_and_loses_no_write() {
    let _one = one_cluster_at_a_time().await;
    let options = Nemesis {
        runs: 1,
        duration: Duration::from_secs(40),
        clients: 6,
        keys: 4,
        fault_for: Duration::from_secs(3),
        seed: 7,
    };
    let report = nemesis::run_once(&options, options.seed).await.expect("the nemesis run");
    assert!(report.faults.len() >= 3, "faults: {:?}", report.faults);
    assert!(report.operations > 500, "only {} operations", report.operations);
    assert!(report.acknowledged_adds > 50, "only {} adds", report.acknowledged_adds);
    assert!(report.violations.is_empty(), "{:#?}", report.violations);
    assert!(report.lost.is_empty(), "lost: {:?}", report.lost);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_embedded_defaults_container_books_db_keeps_its_data_across_restarts() {
    let _one = one_cluster_at_a_time().await;
    let data = tempfile::tempdir().unwrap();
    // The nodes send their telemetry from their network to a collector on this machine's loopback.
    let collector = std::sync::Arc::new(Collector::default());
    let (collector_url, _collector_task) = xtask::collector::serve(collector.clone()).await.unwrap();
    let start = || BooksDbCluster::start(BooksDbMode::Containers, 0, data.path(), false, Some(&collector_url));
    let first = start().await.expect("the container books database starts");
    let version = first.client().unwrap().set("kept", json!("across restarts")).await.unwrap();
    drop(first);
    let second = start().await.expect("and starts again from its volumes");
    second
        .with_nodes(|nodes| {
            if let BooksDbNodes::Containers(cluster) = nodes {
                cluster.set_remove_volumes(true);
            }
        })
        .await;
    let entry = second.client().unwrap().get("kept").await.unwrap().expect("the value is still there");
    assert_eq!((entry.value, entry.version), (json!("across restarts"), version));

    // Every node's Raft gauges reached the collector, through the relay on the Docker bridge.
    let deadline = Instant::now() + Duration::from_secs(30);
    loop {
        let text = collector.prometheus_text();
        let has_term = |id: u64| {
            text.lines().any(|line| line.starts_with("raft_term{") && line.contains(&format!("node_id=\"{id}\"")))
        };
        if (1..=3).all(has_term) {
            break;
        }
        assert!(Instant::now() < deadline, "not every node's term reached the collector:\n{text}");
        tokio::time::sleep(Duration::from_millis(250)).await;
    }

    // The fault controls' partition: the leader cut off the network, the others elect another;
    // healed, it follows again.
    let leader = second.wait_for_leader(Duration::from_secs(10)).await.unwrap();
    second.apply(NodeFault::Partition, leader).await.unwrap();
    let next = second.wait_for_leader(Duration::from_secs(30)).await.expect("a leader among the others");
    assert_ne!(next, leader);
    second.apply(NodeFault::Heal, leader).await.unwrap();
    let status = wait_until_following(&second, leader).await;
    assert_eq!(status.leader, Some(next), "the healed node follows the new leader: {status:?}");
}

/// Polls node `id` until it follows a leader other than itself.
async fn wait_until_following(cluster: &BooksDbCluster, id: u64) -> books_db_client::api::ClusterStatus {
    let url = &cluster.urls()[usize::try_from(id - 1).unwrap()];
    let client = cluster.client().unwrap();
    let deadline = Instant::now() + Duration::from_secs(30);
    loop {
        if let Ok(status) = client.status_of(url).await
            && status.role == "follower"
            && status.leader.is_some_and(|leader| leader != id)
        {
            return status;
        }
        assert!(Instant::now() < deadline, "node {id} did not follow again");
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
}
