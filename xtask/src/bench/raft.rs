//! `cargo xtask bench raft`: the books database against etcd, same workload, same run.

use std::path::PathBuf;
use std::sync::Arc;
use std::time::Duration;

use anyhow::{Context, Result, bail};
use base64::Engine;
use base64::engine::general_purpose::STANDARD as BASE64;
use raft_local_cluster::LocalCluster;
use serde_json::json;

use super::etcd::EtcdCluster;
#[cfg(feature = "etcd-grpc")]
use super::load::drive_with;
use super::load::{Sample, drive};
use crate::books_db::{BooksDbCluster, BooksDbNodes};
use crate::containers::ComposeCluster;

#[derive(clap::Args)]
pub struct RaftBench {
    /// Seconds each measurement runs.
    #[arg(long, default_value_t = 5.0)]
    seconds: f64,
    /// Concurrent clients, comma-separated; each client has its own connection to one node.
    #[arg(long, value_delimiter = ',', default_values_t = [1, 16, 64])]
    clients: Vec<usize>,
    /// Size of each written value.
    #[arg(long, default_value_t = 100)]
    value_bytes: usize,
    /// A raft-node binary to use; by default it is built in release mode.
    #[arg(long)]
    raft_node: Option<PathBuf>,
    /// Run both clusters as containers on one Docker network (the images of `cargo xtask
    /// images`, built first), clients through the published ports, instead of as processes.
    #[arg(long)]
    containers: bool,
}

#[derive(Clone, Copy, PartialEq)]
enum Op {
    Write,
    Read,
}

#[derive(Clone, Copy, PartialEq)]
enum System {
    BooksDb,
    /// etcd through its gRPC API, what its own clients use.
    Etcd,
    /// etcd through its HTTP/JSON gateway: the same kind of requests as the books database's.
    EtcdJson,
}

const SYSTEMS: [System; 3] = [System::BooksDb, System::Etcd, System::EtcdJson];

/// The systems reached with HTTP/JSON requests.
#[derive(Clone, Copy, PartialEq)]
enum JsonApi {
    BooksDb,
    Etcd,
}

impl System {
    fn name(self) -> &'static str {
        match self {
            System::BooksDb => "books-db",
            System::Etcd => "etcd-grpc",
            System::EtcdJson => "etcd-json",
        }
    }

    /// How it is asked over HTTP/JSON; `None` for gRPC.
    fn json_api(self) -> Option<JsonApi> {
        match self {
            System::BooksDb => Some(JsonApi::BooksDb),
            System::Etcd => None,
            System::EtcdJson => Some(JsonApi::Etcd),
        }
    }
}

struct Row {
    system: System,
    op: Op,
    clients: usize,
    sample: Sample,
}

pub async fn run(options: RaftBench) -> Result<()> {
    if options.seconds <= 0.0 || options.clients.contains(&0) {
        bail!("--seconds and every --clients value must be positive");
    }
    let (ours, etcd, secret_dir) = if options.containers {
        crate::images::run()?;
        let secret_dir = tempfile::tempdir()?;
        let project = crate::containers::unique_project("bench");
        let ports = crate::containers::free_ports()?;
        let ours = ComposeCluster::start(&project, ports, secret_dir.path().join("s"), true, None)?;
        let etcd = EtcdCluster::start_containers(3, &ours.network())?;
        (BooksDbCluster::from_nodes(BooksDbNodes::Containers(ours)), etcd, Some(secret_dir))
    } else {
        let binary = match &options.raft_node {
            Some(path) => path.clone(),
            None => crate::build_release("raft-node")?,
        };
        let ours = LocalCluster::start(&binary, 3, &[]).context("starting the books database")?;
        (BooksDbCluster::from_nodes(BooksDbNodes::Processes(ours)), EtcdCluster::start(3)?, None)
    };
    let _secret_dir = secret_dir;
    ours.wait_for_leader(Duration::from_secs(30)).await.context("books database election")?;
    etcd.wait_healthy(Duration::from_secs(30)).await?;
    let value = "x".repeat(options.value_bytes);
    let duration = Duration::from_secs_f64(options.seconds);
    println!(
        "3 raft-node vs 3 etcd {}, {} cores; {} B values; {:.1} s per point; clients spread over the 3 nodes",
        if options.containers { "as containers on one Docker network" } else { "as processes on 127.0.0.1" },
        std::thread::available_parallelism().map_or(0, |n| n.get()),
        options.value_bytes,
        options.seconds
    );
    println!(
        "{:<10} {:<6} {:>7} {:>10} {:>8} {:>8} {:>7}",
        "system", "op", "clients", "ops/s", "p50 ms", "p99 ms", "errors"
    );

    let mut rows = Vec::new();
    for op in [Op::Write, Op::Read] {
        for &clients in &options.clients {
            // Alternate the systems at each point, so all see the same machine conditions.
            for system in SYSTEMS {
                let urls = Arc::new(match system {
                    System::BooksDb => ours.urls(),
                    System::Etcd | System::EtcdJson => etcd.client_urls.clone(),
                });
                let value = value.clone();
                let sample = match system.json_api() {
                    Some(api) => {
                        drive(clients, duration, move |http, client, i| {
                            request(http, urls.clone(), api, op, client, i, value.clone())
                        })
                        .await?
                    }
                    None => grpc_sample(urls, clients, duration, op, value).await?,
                };
                println!(
                    "{:<10} {:<6} {:>7} {:>10.0} {:>8.2} {:>8.2} {:>7}",
                    system.name(),
                    if op == Op::Write { "write" } else { "read" },
                    clients,
                    sample.throughput(),
                    sample.percentile_ms(0.50),
                    sample.percentile_ms(0.99),
                    sample.errors
                );
                rows.push(Row { system, op, clients, sample });
            }
        }
    }

    for anchor in [System::Etcd, System::EtcdJson] {
        println!("\nbooks-db / {} (throughput: higher is better; p50, p99: lower is better)", anchor.name());
        ratios(&rows, anchor, &options.clients);
    }
    Ok(())
}

fn ratios(rows: &[Row], anchor: System, client_counts: &[usize]) {
    for op in [Op::Write, Op::Read] {
        for &clients in client_counts {
            let find = |system| rows.iter().find(|r| r.system == system && r.op == op && r.clients == clients);
            if let (Some(ours), Some(theirs)) = (find(System::BooksDb), find(anchor)) {
                println!(
                    "{:<6} {:>3} clients: throughput {:.2}x, p50 {:.2}x, p99 {:.2}x",
                    if op == Op::Write { "write" } else { "read" },
                    clients,
                    ours.sample.throughput() / theirs.sample.throughput(),
                    ours.sample.percentile_ms(0.50) / theirs.sample.percentile_ms(0.50),
                    ours.sample.percentile_ms(0.99) / theirs.sample.percentile_ms(0.99),
                );
            }
        }
    }
}

/// One request of the workload. Each client writes and reads its own 100 keys.
async fn request(
    http: reqwest::Client,
    urls: Arc<Vec<String>>,
    api: JsonApi,
    op: Op,
    client: usize,
    i: u64,
    value: String,
) -> bool {
    let url = &urls[client % urls.len()];
    let key = format!("bench/{client}/{}", i % 100);
    let request = match (api, op) {
        (JsonApi::BooksDb, Op::Write) => http.put(format!("{url}/kv/{key}")).json(&json!({ "value": value })),
        (JsonApi::BooksDb, Op::Read) => http.get(format!("{url}/kv/{key}")),
        (JsonApi::Etcd, Op::Write) => http
            .post(format!("{url}/v3/kv/put"))
            .json(&json!({ "key": BASE64.encode(&key), "value": BASE64.encode(&value) })),
        // etcd's range is linearizable unless `serializable` is set.
        (JsonApi::Etcd, Op::Read) => {
            http.post(format!("{url}/v3/kv/range")).json(&json!({ "key": BASE64.encode(&key) }))
        }
    };
    match request.send().await {
        // Read the body, so the connection is reused.
        Ok(response) => {
            let status = response.status();
            response.bytes().await.is_ok() && (status.is_success() || (op == Op::Read && status.as_u16() == 404))
        }
        Err(_) => false,
    }
}

/// `bench raft` needs etcd's gRPC client, which needs protoc to build: the xtask that
/// `cargo xtask` builds leaves it out, and runs itself again with it for this command.
pub fn run_with_etcd_grpc() -> Result<()> {
    let status = std::process::Command::new(std::env::var_os("CARGO").unwrap_or_else(|| "cargo".into()))
        .args(["run", "--quiet", "--package", "xtask", "--features", "etcd-grpc", "--"])
        .args(std::env::args_os().skip(1))
        .current_dir(crate::workspace_root())
        .status()
        .context("running cargo")?;
    if !status.success() {
        bail!(
            "bench raft ({status}); etcd's gRPC client builds with protoc: install Debian's protobuf-compiler and libprotobuf-dev if the build failed"
        );
    }
    Ok(())
}

/// The workload through etcd's gRPC KV API, each client on its own connection.
#[cfg(feature = "etcd-grpc")]
async fn grpc_sample(
    urls: Arc<Vec<String>>,
    clients: usize,
    duration: Duration,
    op: Op,
    value: String,
) -> Result<Sample> {
    let connect = |client: usize| {
        let url = urls[client % urls.len()].clone();
        async move { Ok(etcd_client::Client::connect([url], None).await?.kv_client()) }
    };
    drive_with(clients, duration, connect, move |kv, client, i| grpc_request(kv, op, client, i, value.clone())).await
}

#[cfg(not(feature = "etcd-grpc"))]
async fn grpc_sample(_: Arc<Vec<String>>, _: usize, _: Duration, _: Op, _: String) -> Result<Sample> {
    bail!("this xtask was built without the etcd-grpc feature")
}

/// The same workload as [`request`], through etcd's gRPC KV API.
#[cfg(feature = "etcd-grpc")]
async fn grpc_request(mut kv: etcd_client::KvClient, op: Op, client: usize, i: u64, value: String) -> bool {
    let key = format!("bench/{client}/{}", i % 100);
    match op {
        Op::Write => kv.put(key, value, None).await.is_ok(),
        // Linearizable unless `serializable` is asked for, as over JSON.
        Op::Read => kv.get(key, None).await.is_ok(),
    }
}
