//! `raft-node`: one node of the books database; `raft-node health` checks one.

use clap::Parser;
use raft_node::NodeConfig;
use raft_node::health::HealthCheck;

#[tokio::main]
async fn main() {
    // A subcommand would make every node flag optional to clap; the health check is separate.
    if std::env::args().nth(1).as_deref() == Some("health") {
        let check = HealthCheck::parse_from(std::env::args().skip(1));
        match check.run().await {
            Ok(status) => {
                println!("node {} is {} (leader {:?}, term {})", status.id, status.role, status.leader, status.term)
            }
            Err(why) => {
                eprintln!("raft-node health: {why}");
                std::process::exit(1);
            }
        }
        return;
    }
    let config = NodeConfig::parse();
    let _telemetry = bookstore_telemetry::init_to("raft-node", "info,openraft=warn", config.otlp_endpoint.as_deref());
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
