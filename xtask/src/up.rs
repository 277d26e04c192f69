//! `cargo xtask up`: runs the system on this machine until Ctrl-C. For now the system is the
//! books database: three raft-node processes on fixed ports, data kept in `.data/`.

use std::time::Duration;

use anyhow::{Context, Result, bail};
use raft_local_cluster::LocalCluster;

#[derive(clap::Args)]
pub struct Up {
    /// First of the three consecutive ports of the books database's nodes.
    #[arg(long, env = "BOOKS_DB_BASE_PORT", default_value_t = 7001)]
    base_port: u16,
    /// Start from empty data dirs instead of the previous run's.
    #[arg(long)]
    fresh: bool,
}

pub fn run(options: Up) -> Result<()> {
    let binary = crate::build_release("raft-node")?;
    let root = crate::workspace_root().join(".data/books-db");
    if options.fresh && root.exists() {
        std::fs::remove_dir_all(&root).with_context(|| format!("removing {}", root.display()))?;
    }
    let mut addrs = Vec::new();
    for offset in 0..3 {
        let port = options.base_port.checked_add(offset).context("--base-port is too high")?;
        let addr = format!("127.0.0.1:{port}");
        if std::net::TcpListener::bind(&addr).is_err() {
            bail!("port {port} is in use (is another `cargo xtask up` running?); choose others with --base-port");
        }
        addrs.push(addr);
    }

    let runtime = tokio::runtime::Builder::new_multi_thread().enable_all().build()?;
    runtime.block_on(async {
        let cluster = LocalCluster::start_kept(&binary, &root, addrs, &[])?;
        if let Err(e) = cluster.wait_for_leader(Duration::from_secs(30)).await {
            for id in cluster.ids() {
                eprintln!("--- node {id} ---\n{}", cluster.log_tail(id, 20));
            }
            bail!("the books database did not elect a leader: {e}");
        }
        let urls = cluster.urls().join(",");
        println!("ready: books database at {urls}");
        println!("  try: BOOKS_DB_URL={urls} cargo run -q -p books-db-client -- status");
        println!("  node logs and data: {}; Ctrl-C stops everything", root.display());
        shutdown_signal().await;
        eprintln!("stopping");
        drop(cluster);
        Ok(())
    })
}

async fn shutdown_signal() {
    let mut term = tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate()).ok();
    tokio::select! {
        _ = tokio::signal::ctrl_c() => {}
        _ = async { match term.as_mut() { Some(t) => { t.recv().await; } None => std::future::pending().await } } => {}
    }
}
