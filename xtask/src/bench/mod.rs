//! Benchmarks: commands that print figures, never assertions.

mod checkout;
mod etcd;
mod load;
mod orders;
mod raft;

use anyhow::Result;
use clap::Subcommand;

#[derive(Subcommand)]
pub enum Bench {
    /// The books database (three raft-node processes) against a three-node etcd, same workload,
    /// same run: writes and linearizable reads at several client counts.
    Raft(raft::RaftBench),
    /// Checkouts through the embedded default's gateway: latency, throughput, CPU per checkout,
    /// and a per-hop breakdown.
    Checkout(checkout::CheckoutBench),
    /// Orders committed end to end (checkout, queue, executors, two-phase commit, Raft) and the
    /// time from approval to commit.
    Orders(orders::OrdersBench),
}

pub fn run(bench: Bench) -> Result<()> {
    if matches!(bench, Bench::Raft(_)) && !cfg!(feature = "etcd-grpc") {
        return raft::run_with_etcd_grpc();
    }
    let runtime = tokio::runtime::Builder::new_multi_thread().enable_all().build()?;
    match bench {
        Bench::Raft(options) => runtime.block_on(raft::run(options)),
        Bench::Checkout(options) => runtime.block_on(checkout::run(options)),
        Bench::Orders(options) => runtime.block_on(orders::run(options)),
    }
}
