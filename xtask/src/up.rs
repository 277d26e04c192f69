//! `cargo xtask up`: the embedded default, until Ctrl-C or SIGTERM. See [`crate::stack`].

use anyhow::{Context, Result};

use crate::books_db::BooksDbMode;
use crate::stack::{AwsEmulator, Stack, StackOptions, TelemetryTarget};

#[derive(clap::Args)]
pub struct Up {
    /// The gateway: the bookstore's API and web page.
    #[arg(long, env = "BOOKSTORE_PORT", default_value_t = 8080)]
    port: u16,
    /// The AWS emulator for DynamoDB and SQS: MiniStack keeps its state in the data dir across a
    /// clean stop; moto is the cross-check and keeps nothing.
    #[arg(long, env = "BOOKSTORE_AWS", value_enum, default_value_t = AwsEmulator::Ministack)]
    aws: AwsEmulator,
    /// The AWS emulator's port, where LocalStack would listen.
    #[arg(long, env = "BOOKSTORE_AWS_PORT", default_value_t = 4566)]
    aws_port: u16,
    /// `cargo lambda watch`'s Lambda API.
    #[arg(long, env = "BOOKSTORE_LAMBDA_PORT", default_value_t = 9000)]
    lambda_port: u16,
    /// The books database as raft-node processes, or as the container cluster of
    /// raft-cluster/compose.yaml (needs a Docker engine; the image is built here).
    #[arg(long, env = "BOOKSTORE_BOOKS_DB", value_enum, default_value_t = BooksDbMode::Processes)]
    books_db: BooksDbMode,
    /// First of the three consecutive ports of the books database's nodes.
    #[arg(long, env = "BOOKS_DB_BASE_PORT", default_value_t = 7001)]
    books_db_port: u16,
    /// Where the books database, the AWS emulator's state and the logs are kept.
    #[arg(long, env = "BOOKSTORE_DATA_DIR", default_value = ".data")]
    data_dir: std::path::PathBuf,
    /// Start from empty data (the books database's and the AWS emulator's) instead of the
    /// previous run's.
    #[arg(long)]
    fresh: bool,
    /// Build and run the functions with optimizations: slower to start, faster checkouts.
    #[arg(long)]
    release: bool,
    /// Emulate the course's slow executors: a random delay per order, MIN-MAX milliseconds
    /// (the course used 5000-30000). Off by default.
    #[arg(long, env = "EXECUTOR_DELAY_MS")]
    executor_delay_ms: Option<String>,
    /// Emulate the course's unreliable executors: the probability that a delivery fails midway
    /// (the course used 0.5). Off by default.
    #[arg(long, env = "EXECUTOR_FAILURE_RATE")]
    executor_failure_rate: Option<String>,
    /// Checkouts a minute the gateway takes from one client address (then a 429); 0 takes all.
    #[arg(long, env = "BOOKSTORE_CHECKOUT_LIMIT", default_value_t = crate::rate_limit::DEFAULT_CHECKOUTS_PER_MINUTE)]
    checkout_limit: u32,
    /// Serve the fault controls: the storefront's panel that kills, pauses and restarts the books
    /// database's nodes and sets the executors' knobs; only from this machine, with the cluster
    /// secret (the link printed at start carries it).
    #[arg(long)]
    fault_controls: bool,
    /// Send the traces and metrics of the functions, the nodes and the gateway to this
    /// OTLP/HTTP collector (protobuf) instead of the stack's own, which feeds `/metrics`,
    /// Prometheus and the dashboard.
    #[arg(long, env = "OTEL_EXPORTER_OTLP_ENDPOINT")]
    otlp_endpoint: Option<String>,
}

pub fn run(options: Up) -> Result<()> {
    let data_dir = crate::workspace_root().join(&options.data_dir);
    if options.fresh && data_dir.exists() {
        std::fs::remove_dir_all(&data_dir).with_context(|| format!("removing {}", data_dir.display()))?;
    }
    for (port, flag) in [
        (options.port, "--port"),
        (options.aws_port, "--aws-port"),
        (options.lambda_port, "--lambda-port"),
        (options.books_db_port, "--books-db-port"),
    ] {
        if std::net::TcpListener::bind(("127.0.0.1", port)).is_err() {
            anyhow::bail!("port {port} is in use (is another `cargo xtask up` running?); choose another with {flag}");
        }
    }
    let runtime = tokio::runtime::Builder::new_multi_thread().enable_all().build()?;
    runtime.block_on(async {
        let telemetry = match options.otlp_endpoint.filter(|url| !url.trim().is_empty()) {
            Some(url) => TelemetryTarget::Endpoint(url),
            None => TelemetryTarget::Collector,
        };
        // Listening from the start: Ctrl-C while the stack starts stops what has started.
        let mut shutdown = std::pin::pin!(shutdown_signal());
        let start = Stack::start(StackOptions {
            aws: options.aws,
            gateway_port: options.port,
            aws_port: options.aws_port,
            watch_port: options.lambda_port,
            books_db: options.books_db,
            books_db_port: options.books_db_port,
            data_dir: Some(data_dir),
            release: options.release,
            parameters: [
                ("ExecutorDelayMs", options.executor_delay_ms),
                ("ExecutorFailureRate", options.executor_failure_rate),
            ]
            .into_iter()
            .filter_map(|(name, value)| Some((name.to_string(), value?)))
            .collect(),
            checkout_limit: std::num::NonZeroU32::new(options.checkout_limit),
            schedule_every: None,
            // Wherever there is a Docker engine, `sam local` can run the functions against
            // this stack.
            sam_local: crate::sam_local::available(),
            fault_controls: options.fault_controls,
            telemetry: telemetry.clone(),
        });
        let stack = tokio::select! {
            stack = start => stack?,
            () = &mut shutdown => {
                eprintln!("stopping");
                return Ok(());
            }
        };
        println!("ready: the bookstore at {} (open it in a browser)", stack.gateway_url);
        println!("  cluster and queues: {}/status", stack.gateway_url);
        if let Some(url) = &stack.fault_controls_url {
            println!("  fault controls (this machine only; the link carries the cluster secret): {url}");
        }
        match &stack.prometheus_url {
            Some(prometheus) => {
                println!("  dashboard: {}/dashboard.html (Prometheus: {prometheus})", stack.gateway_url)
            }
            None => println!(
                "  dashboard: {}/dashboard.html needs Prometheus: apt-get install prometheus, then start again",
                stack.gateway_url
            ),
        }
        match &telemetry {
            TelemetryTarget::Endpoint(url) => println!("  traces and metrics: sent to {url}"),
            _ => println!(
                "  metrics (Prometheus text): {}/metrics; traces: {}/traces?orderId=ID",
                stack.collector_url, stack.collector_url
            ),
        }
        println!("  try: curl -s {}/books | head -c 300", stack.gateway_url);
        println!("  books database: {}", stack.books_db.urls().join(","));
        println!(
            "  AWS emulator (DynamoDB, SQS): {} at {}{}; Lambda API: {}",
            stack.aws.name(),
            stack.aws_endpoint,
            if stack.aws.keeps_state() { ", state kept across a clean stop" } else { ", in memory" },
            stack.watch_url
        );
        if let Some(sam_local) = &stack.sam_local {
            println!(
                "  sam local (after cargo xtask images and cargo xtask tool sam build --build-in-source): cargo xtask tool sam local invoke CheckoutFunction -e events/checkout.json --env-vars {} --skip-pull-image",
                sam_local.env_vars_file.display()
            );
        }
        println!("  logs: {}; Ctrl-C stops everything", stack.logs.display());
        shutdown.await;
        eprintln!("stopping (saving the emulator's state)");
        stack.shutdown().await;
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
