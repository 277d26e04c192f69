//! Multi-process tests: real `raft-node` processes on 127.0.0.1, started by each test.

// A test fails by panicking: its helpers unwrap too, not only its #[test] functions.
#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::collections::BTreeMap;
use std::sync::Arc;
use std::time::{Duration, Instant};

use books_db_client::api::{Check, Compare, TxnOp, TxnRequest};
use books_db_client::{BooksDb, ClientOptions, Error};
use raft_local_cluster::LocalCluster;
use serde_json::{Value, json};

const RAFT_NODE: &str = env!("CARGO_BIN_EXE_raft-node");
const ELECTION: Duration = Duration::from_secs(10);

async fn cluster(extra_args: &[&str]) -> (LocalCluster, u64) {
    let cluster = LocalCluster::start(RAFT_NODE, 3, extra_args).expect("start cluster");
    let leader = cluster.wait_for_leader(ELECTION).await.expect("a leader");
    (cluster, leader)
}

fn follower_of(cluster: &LocalCluster, leader: u64) -> u64 {
    cluster.ids().into_iter().find(|id| *id != leader).expect("a follower")
}

/// Polls until node `id` serves `key` from its own state (a stale read) with `value`.
async fn wait_for_local_value(cluster: &LocalCluster, id: u64, key: &str, value: &Value) {
    let client = cluster.client_of(id).unwrap();
    let deadline = Instant::now() + Duration::from_secs(10);
    loop {
        if let Ok(Some(entry)) = client.get_stale(key).await
            && &entry.value == value
        {
            return;
        }
        assert!(Instant::now() < deadline, "node {id} never served {key} = {value}");
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_write_through_a_follower_is_readable_on_every_node() {
    let (cluster, leader) = cluster(&[]).await;
    let follower = follower_of(&cluster, leader);
    let version = cluster.client_of(follower).unwrap().set("book/1", json!({"title": "Dune"})).await.unwrap();
    for id in cluster.ids() {
        let entry = cluster.client_of(id).unwrap().get("book/1").await.unwrap().expect("linearizable read");
        assert_eq!((entry.value, entry.version), (json!({"title": "Dune"}), version), "node {id}");
        wait_for_local_value(&cluster, id, "book/1", &json!({"title": "Dune"})).await;
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn killing_the_leader_elects_another_and_loses_no_acknowledged_write() {
    let (mut cluster, old_leader) = cluster(&[]).await;
    let client = Arc::new(cluster.client().unwrap());

    // Writers keep writing while the leader dies; only acknowledged writes are recorded.
    let writers: Vec<_> = (0..4)
        .map(|w| {
            let client = client.clone();
            tokio::spawn(async move {
                let mut acknowledged = BTreeMap::new();
                let started = Instant::now();
                let mut i = 0;
                while started.elapsed() < Duration::from_secs(4) {
                    let key = format!("w{w}/{i}");
                    if client.set(&key, json!(i)).await.is_ok() {
                        acknowledged.insert(key, json!(i));
                    }
                    i += 1;
                }
                acknowledged
            })
        })
        .collect();

    tokio::time::sleep(Duration::from_millis(500)).await;
    cluster.kill(old_leader).unwrap();
    let killed_at = Instant::now();
    let survivor = follower_of(&cluster, old_leader);
    let status = cluster
        .wait_for_status(survivor, "a new leader", ELECTION, |s| s.leader.is_some_and(|l| l != old_leader))
        .await
        .unwrap();
    eprintln!("new leader {:?} after {:?}", status.leader, killed_at.elapsed());
    // A node that follows a leader holds the vote it granted that leader's term; the leader voted
    // for itself.
    for id in [survivor, status.leader.unwrap()] {
        let seen = cluster.wait_for_status(id, "a leader", ELECTION, |s| s.leader.is_some()).await.unwrap();
        assert_eq!(seen.voted_for, seen.leader, "node {id}: {seen:?}");
    }

    let mut acknowledged = BTreeMap::new();
    for writer in writers {
        acknowledged.extend(writer.await.unwrap());
    }
    assert!(acknowledged.len() > 20, "writes continued: only {} acknowledged", acknowledged.len());
    let after_kill = client.set("after-kill", json!(true)).await.unwrap();

    cluster.restart(old_leader).unwrap();
    for (key, value) in &acknowledged {
        assert_eq!(client.get(key).await.unwrap().map(|e| e.value).as_ref(), Some(value), "{key}");
    }
    // The restarted node catches up with everything, the write made without it included.
    cluster
        .wait_for_status(old_leader, "catch up", Duration::from_secs(10), |s| s.last_applied >= Some(after_kill))
        .await
        .unwrap();
    let restarted = cluster.client_of(old_leader).unwrap();
    for (key, value) in &acknowledged {
        assert_eq!(restarted.get_stale(key).await.unwrap().map(|e| e.value).as_ref(), Some(value), "{key}");
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_node_that_missed_compacted_log_catches_up_from_a_snapshot() {
    let (mut cluster, leader) = cluster(&["--snapshot-every", "20", "--keep-logs", "5"]).await;
    let lagging = follower_of(&cluster, leader);
    cluster.kill(lagging).unwrap();

    let client = cluster.client().unwrap();
    for i in 0..100 {
        client.set(&format!("k{i}"), json!(i)).await.unwrap();
    }
    let last = client.set("last", json!("done")).await.unwrap();
    // Make sure the leader really dropped log the lagging node needs.
    let leader_status = cluster
        .wait_for_status(leader, "log compaction", Duration::from_secs(10), |s| s.purged.is_some_and(|p| p > 50))
        .await
        .unwrap();
    eprintln!("leader purged up to {:?}", leader_status.purged);

    cluster.restart(lagging).unwrap();
    let status = cluster
        .wait_for_status(lagging, "catch up", Duration::from_secs(15), |s| s.last_applied >= Some(last))
        .await
        .unwrap();
    assert!(status.snapshot.is_some_and(|s| s > 50), "caught up through a snapshot: {status:?}");
    let lagging_client = cluster.client_of(lagging).unwrap();
    for i in 0..100 {
        assert_eq!(lagging_client.get_stale(&format!("k{i}")).await.unwrap().unwrap().value, json!(i));
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_node_cut_off_from_the_other_two_accepts_no_write() {
    let (mut cluster, leader) = cluster(&[]).await;
    let lone = follower_of(&cluster, leader);
    let others: Vec<u64> = cluster.ids().into_iter().filter(|id| *id != lone).collect();
    for id in &others {
        cluster.pause(*id).unwrap();
    }
    let impatient = BooksDb::with_options(
        [cluster.url(lone).unwrap()],
        ClientOptions { deadline: Duration::from_secs(6), ..ClientOptions::default() },
    )
    .unwrap();
    let refused = impatient.set("split-brain", json!(1)).await;
    assert!(matches!(refused, Err(Error::Unavailable { .. })), "{refused:?}");
    assert!(impatient.get("anything").await.is_err(), "no linearizable read without a quorum either");
    let status = cluster.status(lone).await.expect("the lone node answers status");
    assert_ne!(status.role, "leader");
    assert_eq!(impatient.get_stale("split-brain").await.unwrap(), None, "the lone node applied nothing by itself");

    for id in &others {
        cluster.resume(*id).unwrap();
    }
    // The refused write's outcome is unknown, as Raft has it: the lone node had forwarded it to the
    // paused leader, whose socket kept it, so it may commit once the leader runs again. What
    // matters is that it was never acknowledged, and the healed cluster takes writes again.
    cluster.wait_for_leader(ELECTION).await.unwrap();
    let client = cluster.client().unwrap();
    client.set("after-healing", json!(true)).await.unwrap();
    assert_eq!(
        cluster.client_of(lone).unwrap().get("after-healing").await.unwrap().map(|e| e.value),
        Some(json!(true))
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn http_api_answers_each_case_with_its_status_and_code() {
    let (cluster, leader) = cluster(&[]).await;
    let base = cluster.url(follower_of(&cluster, leader)).unwrap();
    // A new connection per request: the node closes the connection after refusing a body it did
    // not read (413), and a pooled connection reused after that fails at random.
    let http = reqwest::Client::builder().pool_max_idle_per_host(0).build().unwrap();
    let call = |method: reqwest::Method, path: &str, body: Option<String>| {
        // Only the peer's snapshot RPC below needs the secret; the client routes ignore it.
        let mut request = http
            .request(method, format!("{base}{path}"))
            .header("authorization", format!("Bearer {}", cluster.secret()));
        if let Some(body) = body {
            request = request.body(body);
        }
        async move {
            let response = request.send().await.unwrap();
            let status = response.status().as_u16();
            (status, response.json::<Value>().await.unwrap_or(Value::Null))
        }
    };
    use reqwest::Method;

    let (status, body) = call(Method::PUT, "/kv/a", Some(r#"{"value": {"n": 1}}"#.into())).await;
    assert_eq!(status, 200);
    let version = body["version"].as_u64().unwrap();
    let (status, body) = call(Method::GET, "/kv/a", None).await;
    assert_eq!((status, &body["value"], body["version"].as_u64()), (200, &json!({"n": 1}), Some(version)));

    let (status, body) = call(Method::PATCH, "/kv/missing", Some(r#"{"value": 1}"#.into())).await;
    assert_eq!((status, body["error"]["code"].as_str()), (404, Some("not_found")));
    let (status, body) =
        call(Method::PATCH, "/kv/a", Some(format!(r#"{{"value": 2, "ifVersion": {}}}"#, version + 100))).await;
    assert_eq!((status, body["error"]["code"].as_str()), (409, Some("version_mismatch")));
    let (status, _) = call(Method::PATCH, "/kv/a", Some(format!(r#"{{"value": 2, "ifVersion": {version}}}"#))).await;
    assert_eq!(status, 200);
    assert_eq!(call(Method::GET, "/kv/a", None).await.1["value"], json!(2));

    for (body, code) in [("not json", "invalid_json"), (r#"{"val": 1}"#, "invalid_body"), ("[1]", "invalid_body")] {
        let (status, answer) = call(Method::PUT, "/kv/a", Some(body.into())).await;
        assert_eq!((status, answer["error"]["code"].as_str()), (400, Some(code)), "{body}");
        assert!(answer["error"]["message"].as_str().is_some_and(|m| !m.is_empty()));
    }
    let huge = format!(r#"{{"value": "{}"}}"#, "x".repeat(2 * 1024 * 1024));
    let (status, answer) = call(Method::PUT, "/kv/a", Some(huge)).await;
    assert_eq!((status, answer["error"]["code"].as_str()), (413, Some("body_too_large")));
    let long_key = format!("/kv/{}", "k".repeat(600));
    let (status, answer) = call(Method::PUT, &long_key, Some(r#"{"value": 1}"#.into())).await;
    assert_eq!((status, answer["error"]["code"].as_str()), (400, Some("invalid_key")));
    let (status, answer) = call(Method::GET, "/kv/a%0Ab", None).await;
    assert_eq!((status, answer["error"]["code"].as_str()), (400, Some("invalid_key")));
    let (status, answer) = call(Method::GET, "/kv/", None).await;
    assert_eq!((status, answer["error"]["code"].as_str()), (400, Some("invalid_key")));
    let (status, answer) = call(Method::PATCH, "/kv/a", Some(r#"{"value": 3, "if_version": 1}"#.into())).await;
    assert_eq!((status, answer["error"]["code"].as_str()), (400, Some("invalid_body")), "misspelt ifVersion");
    // A peer's snapshot that could not be installed is refused before it reaches the state machine.
    let bad_snapshot = raft_node::snapshot::SnapshotRequest {
        vote: raft_node::Vote::new_committed(99, 1),
        meta: Default::default(),
        data: serde_json::value::RawValue::from_string(r#"{"kv": 7}"#.into()).unwrap(),
    };
    let (status, answer) =
        call(Method::POST, "/raft/snapshot", Some(serde_json::to_string(&bad_snapshot).unwrap())).await;
    assert_eq!((status, answer["error"]["code"].as_str()), (400, Some("invalid_snapshot")));
    let (status, answer) = call(Method::GET, "/kv/a?consistency=sometimes", None).await;
    assert_eq!((status, answer["error"]["code"].as_str()), (400, Some("invalid_query")));
    assert_eq!(call(Method::GET, "/kv/a", None).await.1["value"], json!(2), "failed writes changed nothing");

    let (status, _) = call(Method::DELETE, "/kv/a", None).await;
    assert_eq!(status, 200);
    assert_eq!(call(Method::DELETE, "/kv/a", None).await.0, 404);
    assert_eq!(call(Method::GET, "/kv/a", None).await.0, 404);
    assert_eq!(call(Method::GET, "/nowhere", None).await.1["error"]["code"], json!("not_found"));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_retried_write_is_applied_once() {
    let (cluster, leader) = cluster(&[]).await;
    let client = cluster.client().unwrap();
    client.set("stock/1", json!(5)).await.unwrap();
    let reserve = TxnRequest {
        compare: vec![Compare { key: "stock/1".into(), check: Check::AtLeast(2) }],
        success: vec![TxnOp::Add { key: "stock/1".into(), delta: -2 }],
        failure: vec![],
    };
    // The same request, with the same idempotency key, sent to two different nodes, as a client
    // that timed out at one node and retried at another would.
    let http = reqwest::Client::new();
    let mut answers = Vec::new();
    for id in [follower_of(&cluster, leader), leader] {
        let answer: Value = http
            .post(format!("{}/txn", cluster.url(id).unwrap()))
            .header("idempotency-key", "order-42:reserve")
            .json(&reserve)
            .send()
            .await
            .unwrap()
            .json()
            .await
            .unwrap();
        answers.push(answer);
    }
    assert_eq!(answers[0], answers[1], "the retry gets the first answer");
    assert_eq!(answers[0]["succeeded"], json!(true));
    assert_eq!(client.get("stock/1").await.unwrap().unwrap().value, json!(3));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_new_node_joins_as_learner_then_member() {
    let (mut cluster, _) = cluster(&[]).await;
    let client = cluster.client().unwrap();
    let version = client.set("before-join", json!("yes")).await.unwrap();
    let addr = cluster.start_extra_node(4).unwrap();
    client.add_learner(4, &addr, None).await.unwrap();
    let status = cluster
        .wait_for_status(4, "replicated as learner", Duration::from_secs(10), |s| s.last_applied >= Some(version))
        .await
        .unwrap();
    assert_eq!(status.role, "learner");
    client.change_membership(vec![1, 2, 3, 4]).await.unwrap();
    let status = cluster
        .wait_for_status(4, "voter", Duration::from_secs(10), |s| s.members.iter().any(|m| m.id == 4))
        .await
        .unwrap();
    assert_eq!(status.members.len(), 4);
    assert_eq!(cluster.client_of(4).unwrap().get("before-join").await.unwrap().unwrap().value, json!("yes"));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_transaction_reserves_stock_for_a_whole_order_or_nothing() {
    let (cluster, _) = cluster(&[]).await;
    let client = cluster.client().unwrap();
    client.set("stock/a", json!(1)).await.unwrap();
    client.set("stock/b", json!(10)).await.unwrap();
    let order = |id: &str, a: i64, b: i64| TxnRequest {
        compare: vec![
            Compare { key: "stock/a".into(), check: Check::AtLeast(a) },
            Compare { key: "stock/b".into(), check: Check::AtLeast(b) },
        ],
        success: vec![
            TxnOp::Add { key: "stock/a".into(), delta: -a },
            TxnOp::Add { key: "stock/b".into(), delta: -b },
            TxnOp::Put { key: format!("reservation/{id}"), value: json!({"a": a, "b": b}) },
        ],
        failure: vec![],
    };
    // Five concurrent orders for the one copy of `a`: exactly one gets it.
    let client = Arc::new(client);
    let tasks: Vec<_> = (0..5)
        .map(|i| {
            let client = client.clone();
            let txn = order(&i.to_string(), 1, 2);
            tokio::spawn(async move { client.txn(&txn).await.unwrap().succeeded })
        })
        .collect();
    let mut won = 0;
    for task in tasks {
        won += usize::from(task.await.unwrap());
    }
    assert_eq!(won, 1);
    assert_eq!(client.get("stock/a").await.unwrap().unwrap().value, json!(0));
    assert_eq!(client.get("stock/b").await.unwrap().unwrap().value, json!(8), "b untouched by the losers");
    assert_eq!(client.list("reservation/").await.unwrap().len(), 1);

    // The log view: the reservation's entry, found by its key on every node (each holds the
    // log), with the index that is the reservation's version, and its keys but not its values.
    let reservation = client.list("reservation/").await.unwrap().remove(0);
    for id in cluster.ids() {
        let url = cluster.url(id).unwrap();
        let window = wait_for_log(&client, &url, &[("key", &reservation.key)]).await;
        let [entry] = window.entries.as_slice() else { panic!("node {id}: {window:?}") };
        assert_eq!((entry.index, entry.kind.as_str()), (reservation.version, "command"), "node {id}");
        assert_eq!(entry.keys, ["stock/a", "stock/b", reservation.key.as_str()]);
        assert_eq!(entry.summary, "txn of 2 compares, 3/0 ops");
        assert!(!serde_json::to_string(entry).unwrap().contains("\"a\":1"), "no values: {entry:?}");
    }
    let leader = cluster.wait_for_leader(ELECTION).await.unwrap();
    let url = cluster.url(leader).unwrap();
    let tail = client.log_of(&url, &[("limit", "3")]).await.unwrap();
    let indexes: Vec<u64> = tail.entries.iter().map(|e| e.index).collect();
    let last = tail.last.unwrap();
    assert_eq!(indexes, [last - 2, last - 1, last], "the last three, oldest first");
    let head = client.log_of(&url, &[("from", "0"), ("limit", "100")]).await.unwrap();
    assert!(head.entries.iter().any(|e| e.kind == "blank"), "the first leader's blank entry: {head:?}");
    assert!(head.entries.iter().any(|e| e.kind == "membership"), "the bootstrap's membership: {head:?}");
    for bad in [[("limit", "0")], [("limit", "101")], [("from", "x")]] {
        match client.log_of(&url, &bad).await {
            Err(Error::Rejected { status: 400, .. }) => {}
            other => panic!("{bad:?}: {other:?}"),
        }
    }
}

/// Polls node `url`'s log until the window asked for has an entry (a follower may lag).
async fn wait_for_log(client: &BooksDb, url: &str, query: &[(&str, &str)]) -> books_db_client::api::LogWindow {
    let deadline = Instant::now() + Duration::from_secs(10);
    loop {
        let window = client.log_of(url, query).await.unwrap();
        if !window.entries.is_empty() || Instant::now() > deadline {
            return window;
        }
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn acknowledged_writes_survive_kill_9_of_every_node() {
    let (mut cluster, _) = cluster(&[]).await;
    let client = Arc::new(cluster.client().unwrap());
    let writers: Vec<_> = (0..8)
        .map(|w| {
            let client = client.clone();
            tokio::spawn(async move {
                let mut versions = Vec::new();
                for i in 0..25 {
                    versions
                        .push((format!("d{w}/{i}"), client.set(&format!("d{w}/{i}"), json!([w, i])).await.unwrap()));
                }
                versions
            })
        })
        .collect();
    let mut acknowledged = Vec::new();
    for writer in writers {
        acknowledged.extend(writer.await.unwrap());
    }
    // No graceful shutdown anywhere: whatever was acknowledged must already be on disk.
    for id in cluster.ids() {
        cluster.kill(id).unwrap();
    }
    for id in cluster.ids() {
        cluster.restart(id).unwrap();
    }
    cluster.wait_for_leader(ELECTION).await.unwrap();
    for (key, version) in acknowledged {
        let entry = client.get(&key).await.unwrap().unwrap_or_else(|| panic!("{key} lost"));
        assert_eq!(entry.version, version, "{key}");
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn membership_changes_and_raft_rpcs_need_the_cluster_secret() {
    let (cluster, leader) = cluster(&[]).await;
    let http = reqwest::Client::new();
    let url = |path: &str| format!("{}{path}", cluster.url(leader).unwrap());
    let post = |path: &str, body: Value, auth: Option<String>| {
        let mut request = http.post(url(path)).json(&body);
        if let Some(auth) = auth {
            request = request.header("authorization", auth);
        }
        request.send()
    };
    let anonymous = [
        ("/cluster/membership", json!({"voters": [leader]})),
        ("/cluster/learners", json!({"id": 9, "addr": "127.0.0.1:1"})),
        ("/raft/vote", json!({})),
        ("/raft/append", json!({})),
    ];
    for (path, body) in anonymous {
        for auth in [None, Some("Bearer not-the-secret-0123456789".to_string())] {
            let answer = post(path, body.clone(), auth.clone()).await.unwrap();
            assert_eq!(answer.status(), 401, "{path} with {auth:?}");
            let error: Value = answer.json().await.unwrap();
            assert_eq!(error["error"]["code"], "unauthorized", "{path}");
        }
    }
    // Nothing changed: still three voters, and the cluster still replicates (peers have the secret).
    let status = cluster.client().unwrap().status_of(&url("")).await.unwrap();
    assert_eq!(status.members.len(), 3);
    // Clients need no secret for reads, writes and status.
    let anonymous_client = BooksDb::new(cluster.urls()).unwrap();
    let version = anonymous_client.set("open", json!(1)).await.unwrap();
    assert!(version > 0);
    assert_eq!(anonymous_client.get("open").await.unwrap().unwrap().value, json!(1));
    let refused = anonymous_client.change_membership(vec![leader]).await.unwrap_err();
    assert!(matches!(refused, Error::Rejected { status: 401, .. }), "{refused}");
    // With the secret, the same change is accepted, also through a follower (forwarded with it).
    let follower = follower_of(&cluster, leader);
    let answer = post_through(&http, &cluster.url(follower).unwrap(), cluster.secret()).await;
    assert_eq!(answer, 200);
}

/// A membership change to the same three voters, sent to `node` with the secret.
async fn post_through(http: &reqwest::Client, node: &str, secret: &str) -> u16 {
    http.post(format!("{node}/cluster/membership"))
        .header("authorization", format!("Bearer {secret}"))
        .json(&json!({"voters": [1, 2, 3]}))
        .send()
        .await
        .unwrap()
        .status()
        .as_u16()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn raft_rpcs_on_their_own_listener_leave_the_client_port_to_clients() {
    let mut cluster = LocalCluster::start_with_raft_listeners(RAFT_NODE, 3, &[]).expect("start cluster");
    let leader = cluster.wait_for_leader(ELECTION).await.expect("a leader");
    let follower = follower_of(&cluster, leader);
    let version = cluster.client_of(follower).unwrap().set("split", json!(1)).await.unwrap();
    wait_for_local_value(&cluster, leader, "split", &json!(1)).await;

    let http = reqwest::Client::new();
    let node = cluster.node(follower).unwrap();
    let raft_base = format!("http://{}", node.raft_addr.as_deref().unwrap());
    let status = |url: String| {
        let request = http.post(url).json(&json!({}));
        async move { request.send().await.unwrap().status().as_u16() }
    };
    assert_eq!(status(format!("{}/raft/vote", node.url())).await, 404, "no Raft RPC on the client port");
    assert_eq!(status(format!("{raft_base}/raft/vote")).await, 401, "the Raft port needs the secret");
    assert_eq!(status(format!("{raft_base}/txn")).await, 404, "no client route on the Raft port");
    let members = cluster.client().unwrap().status_of(&node.url()).await.unwrap().members;
    assert!(members.iter().all(|m| m.raft_addr.is_some()), "{members:?}");

    // Replication and elections go through the Raft listeners.
    cluster.kill(leader).unwrap();
    let new_leader = cluster.wait_for_leader(ELECTION).await.expect("a new leader");
    assert_ne!(new_leader, leader);
    let entry = cluster.client_of(new_leader).unwrap().get("split").await.unwrap().unwrap();
    assert_eq!(entry.version, version);
}
