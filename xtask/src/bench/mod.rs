//! Benchmarks: commands that print figures, never assertions.

mod checkout;
mod etcd;
mod load;
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
}

pub fn run(bench: Bench) -> Result<()> {
    let runtime = tokio::runtime::Builder::new_multi_thread().enable_all().build()?;
    match bench {
        Bench::Raft(options) => runtime.block_on(raft::run(options)),
        Bench::Checkout(options) => runtime.block_on(checkout::run(options)),
    }
}
