//! `raft-node`: one node of the books database.

use clap::Parser;
use raft_node::NodeConfig;
use tracing_subscriber::EnvFilter;

#[tokio::main]
async fn main() {
    let config = NodeConfig::parse();
    tracing_subscriber::fmt()
        .with_env_filter(EnvFilter::try_from_default_env().unwrap_or_else(|_| EnvFilter::new("info,openraft=warn")))
        .with_writer(std::io::stderr)
        .init();
    if let Err(e) = raft_node::node::run(config, shutdown_signal()).await {
        eprintln!("raft-node: error: {e}");
        std::process::exit(1);
    }
}

/// Ctrl-C or SIGTERM.
async fn shutdown_signal() {
    let interrupt = tokio::signal::ctrl_c();
    #[cfg(unix)]
    {
        match tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate()) {
            Ok(mut term) => {
                tokio::select! {
                    _ = interrupt => {}
                    _ = term.recv() => {}
                }
            }
            Err(_) => {
                let _ = interrupt.await;
            }
        }
    }
    #[cfg(not(unix))]
    {
        let _ = interrupt.await;
    }
}
