//! A node that cannot start says why in one line and exits 1, without panicking.

// A test fails by panicking: its helpers unwrap too, not only its #[test] functions.
#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::process::{Command, Output};
use std::time::Duration;

use raft_local_cluster::{LocalCluster, free_addrs};

const RAFT_NODE: &str = env!("CARGO_BIN_EXE_raft-node");

fn raft_node(id: &str, addr: &str, data_dir: &str, peers: &str) -> Output {
    Command::new(RAFT_NODE)
        .args(["--id", id, "--addr", addr, "--data-dir", data_dir, "--peers", peers])
        .env("RUST_LOG", "off")
        .output()
        .expect("run raft-node")
}

fn assert_refused(output: &Output, expected: &str) {
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert_eq!(output.status.code(), Some(1), "stderr: {stderr}");
    assert_eq!(stderr.trim().lines().count(), 1, "one line: {stderr}");
    assert!(stderr.contains(expected), "{expected:?} not in {stderr:?}");
    assert!(!stderr.contains("panicked"), "{stderr}");
}

#[tokio::test]
async fn refuses_another_nodes_data_dir_a_foreign_dir_a_busy_address_and_bad_peers() {
    // A data dir that node 1 of a one-node cluster has used.
    let mut cluster = LocalCluster::start(RAFT_NODE, 1, &[]).unwrap();
    cluster.wait_for_leader(Duration::from_secs(10)).await.unwrap();
    cluster.kill(1).unwrap();
    let used = cluster.node(1).unwrap().data_dir.to_str().unwrap().to_string();

    let addr = free_addrs(1).unwrap().remove(0);
    assert_refused(&raft_node("2", &addr, &used, &format!("2={addr}")), "belongs to node 1, not to --id 2");

    let foreign = tempfile::tempdir().unwrap();
    std::fs::write(foreign.path().join("README"), "not a node").unwrap();
    let foreign = foreign.path().to_str().unwrap().to_string();
    assert_refused(&raft_node("1", &addr, &foreign, &format!("1={addr}")), "foreign");

    let busy = std::net::TcpListener::bind(&addr).unwrap();
    assert_refused(&raft_node("1", &addr, &used, &format!("1={addr}")), "cannot listen on");
    drop(busy);

    assert_refused(&raft_node("1", &addr, &used, "1=127.0.0.1:1"), "differs from node 1's address");

    let bad_peers = raft_node("1", &addr, &used, "1=nohost");
    assert_eq!(bad_peers.status.code(), Some(2), "a usage error");
    assert!(String::from_utf8_lossy(&bad_peers.stderr).contains("HOST:PORT"));
}

#[tokio::test]
async fn refuses_a_data_dir_whose_cluster_lived_at_other_addresses() {
    let mut cluster = LocalCluster::start(RAFT_NODE, 3, &[]).unwrap();
    cluster.wait_for_leader(Duration::from_secs(10)).await.unwrap();
    for id in cluster.ids() {
        cluster.kill(id).unwrap();
    }
    // All three moved to new ports, as `cargo xtask up --books-db-port` would move them.
    let moved = free_addrs(3).unwrap();
    let peers = (1..).zip(&moved).map(|(id, a)| format!("{id}={a}")).collect::<Vec<_>>().join(",");
    for (id, addr) in (1..=3u64).zip(&moved) {
        let used = cluster.node(id).unwrap().data_dir.to_str().unwrap().to_string();
        let output = raft_node(&id.to_string(), addr, &used, &peers);
        assert_refused(&output, "belongs to a cluster of 1=");
        assert_refused(&output, "--fresh");
    }
}

#[test]
fn refuses_a_missing_or_short_cluster_secret() {
    let dir = tempfile::tempdir().unwrap();
    let addr = free_addrs(1).unwrap().remove(0);
    let data = dir.path().join("data");
    let secret = dir.path().join("secret");
    let run = || {
        Command::new(RAFT_NODE)
            .args(["--id", "1", "--addr", &addr, "--peers", &format!("1={addr}")])
            .arg("--data-dir")
            .arg(&data)
            .arg("--cluster-secret-file")
            .arg(&secret)
            .env("RUST_LOG", "off")
            .output()
            .expect("run raft-node")
    };
    assert_refused(&run(), "cannot read the cluster secret");
    std::fs::write(&secret, "short\n").unwrap();
    assert_refused(&run(), "at least 16");
}
