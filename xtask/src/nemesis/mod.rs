//! `cargo xtask nemesis`: what Jepsen does for etcd, on the books database's container cluster.
//! Clients (each through its own node) read, write and compare-and-set a few registers and add to
//! a set while a nemesis kills, pauses and cuts off nodes; then the history is checked for
//! linearizability ([`checker`]) and the set for acknowledged adds that were lost.

pub mod checker;
pub mod faults;
pub mod history;
pub mod workload;

use std::collections::BTreeSet;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::{Duration, Instant};

use anyhow::{Context, Result, bail};
use rand::{Rng, SeedableRng};
use rand_chacha::ChaCha8Rng;

use crate::containers::ComposeCluster;
use history::{Call, Operation, Return};

/// `cargo xtask nemesis` options.
#[derive(Debug, Clone, clap::Args)]
pub struct Nemesis {
    /// Independent runs, each on a fresh cluster.
    #[arg(long, default_value_t = 20)]
    pub runs: usize,
    /// How long the clients and the nemesis run, per run.
    #[arg(long, default_value = "60s", value_parser = humantime::parse_duration)]
    pub duration: Duration,
    /// Concurrent clients, spread over the three nodes.
    #[arg(long, default_value_t = 6)]
    pub clients: usize,
    /// Registers the clients share.
    #[arg(long, default_value_t = 4)]
    pub keys: usize,
    /// How long a fault stays before it is healed, and the calm after it.
    #[arg(long, default_value = "4s", value_parser = humantime::parse_duration)]
    pub fault_for: Duration,
    /// Seed of the clients' and the nemesis' choices (a run's seed is this plus its number).
    #[arg(long, default_value_t = 1)]
    pub seed: u64,
}

/// What one run found.
#[derive(Debug, Default)]
pub struct RunReport {
    pub operations: usize,
    pub unknown: usize,
    pub acknowledged_adds: usize,
    /// Each fault with when it began, since the start of the run.
    pub faults: Vec<(Duration, faults::Applied)>,
    pub violations: Vec<checker::Violation>,
    /// Acknowledged set adds missing from the final read.
    pub lost: Vec<String>,
    pub check_time: Duration,
}

impl RunReport {
    pub fn is_clean(&self) -> bool {
        self.violations.is_empty() && self.lost.is_empty()
    }
}

/// Runs every run, prints a line each and the totals; fails when any run found a violation.
pub fn run(options: Nemesis) -> Result<()> {
    crate::containers::check_docker()?;
    crate::images::build_raft_node()?;
    let runtime = tokio::runtime::Runtime::new()?;
    let (mut operations, mut faults, mut violations, mut lost) = (0, 0, 0, 0);
    let mut kinds: std::collections::BTreeMap<String, usize> = Default::default();
    for index in 0..options.runs {
        let report = runtime.block_on(run_once(&options, options.seed + index as u64))?;
        println!(
            "run {:>2}: {} operations ({} unknown), {} acknowledged adds, {} faults, {} violations, {} lost writes, checked in {:.2} s",
            index + 1,
            report.operations,
            report.unknown,
            report.acknowledged_adds,
            report.faults.len(),
            report.violations.len(),
            report.lost.len(),
            report.check_time.as_secs_f64()
        );
        for v in &report.violations {
            println!("  violation: {v}");
        }
        for key in &report.lost {
            println!("  lost: the acknowledged add of {key}");
        }
        for (_, applied) in &report.faults {
            *kinds.entry(applied.kind()).or_default() += 1;
        }
        operations += report.operations;
        faults += report.faults.len();
        violations += report.violations.len();
        lost += report.lost.len();
    }
    println!(
        "nemesis: {} runs, {operations} operations, {faults} faults, {violations} linearizability violations, {lost} lost writes",
        options.runs
    );
    let kinds: Vec<String> = kinds.iter().map(|(kind, n)| format!("{n} {kind}")).collect();
    println!("faults: {}", kinds.join(", "));
    if violations + lost > 0 {
        bail!("the books database lost writes or answered non-linearizably");
    }
    Ok(())
}

/// One run on a fresh compose project: clients and nemesis for `duration`, heal, final reads,
/// check.
pub async fn run_once(options: &Nemesis, seed: u64) -> Result<RunReport> {
    let project = crate::containers::unique_project("nemesis");
    let secret_dir = tempfile::tempdir()?;
    let mut cluster = ComposeCluster::start(
        &project,
        crate::containers::free_ports()?,
        secret_dir.path().join("cluster-secret"),
        true,
        None,
    )?;
    cluster.wait_for_leader(Duration::from_secs(60)).await?;

    let started = Instant::now();
    let stop = Arc::new(AtomicBool::new(false));
    let mut clients = Vec::new();
    for client in 0..options.clients {
        let node = cluster.ids()[client % 3];
        let db = cluster.client_of(node, workload::client_options())?;
        clients.push(tokio::spawn(workload::run_client(client, db, options.keys, seed, started, stop.clone())));
    }

    let mut rng = ChaCha8Rng::seed_from_u64(seed);
    let mut report = RunReport::default();
    let calm = options.fault_for;
    tokio::time::sleep(calm.min(options.duration / 4)).await;
    while started.elapsed() + options.fault_for * 2 <= options.duration {
        let applied = faults::inject(&mut cluster, &mut rng).await?;
        report.faults.push((started.elapsed(), applied));
        let jitter = rng.random_range(0.5..1.5);
        tokio::time::sleep(options.fault_for.mul_f64(jitter)).await;
        faults::heal(&mut cluster, applied)?;
        cluster.wait_for_leader(Duration::from_secs(30)).await.context("after healing")?;
        tokio::time::sleep(calm).await;
    }
    let remaining = options.duration.saturating_sub(started.elapsed());
    tokio::time::sleep(remaining).await;
    stop.store(true, Ordering::Relaxed);
    let mut history: Vec<Operation> = Vec::new();
    let (mut added, mut maybe_added) = (BTreeSet::new(), BTreeSet::new());
    for client in clients {
        let log = client.await.context("a nemesis client panicked")?;
        history.extend(log.operations);
        added.extend(log.added);
        maybe_added.extend(log.maybe_added);
    }

    // Everything healed: every node must now agree with the history, through itself.
    cluster.wait_for_leader(Duration::from_secs(30)).await?;
    let final_client = options.clients;
    for node in cluster.ids() {
        let db = cluster.client_of(node, books_db_client::ClientOptions::default())?;
        for k in 0..options.keys {
            let key = format!("{}{k}", workload::REGISTER_PREFIX);
            let invoked = started.elapsed();
            let value = db.get(&key).await.with_context(|| format!("final read of {key} through node {node}"))?;
            let ret = Return::Read(value.and_then(|e| e.value.as_i64()));
            history.push(Operation {
                client: final_client,
                key,
                call: Call::Read,
                ret,
                invoked,
                completed: started.elapsed(),
            });
        }
    }
    let present: BTreeSet<String> = cluster
        .client()?
        .list(workload::SET_PREFIX)
        .await
        .context("final read of the set")?
        .into_iter()
        .map(|e| e.key)
        .collect();
    report.lost = added.difference(&present).cloned().collect();
    report.acknowledged_adds = added.len();
    report.operations = history.len() + added.len() + maybe_added.len();
    report.unknown = history.iter().filter(|op| op.ret == Return::Unknown).count() + maybe_added.len();

    let checking = Instant::now();
    report.violations = checker::check(&history);
    report.check_time = checking.elapsed();
    drop(cluster);
    Ok(report)
}
