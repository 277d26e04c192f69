//! Debian's `prometheus`, as the embedded default's metrics backend: it scrapes the collector's
//! `/metrics` every two seconds and keeps the series with the stack's data, served under
//! `/prometheus` (its UI and its HTTP API, which the dashboard queries through the gateway).
//! Optional: without the package the stack runs, and the dashboard says what to install.

use std::path::{Path, PathBuf};
use std::time::Duration;

use anyhow::{Context, Result};

use crate::supervisor::{Processes, Stop, spawn_logged};

/// The path Prometheus serves under, here and through the gateway.
pub const ROUTE_PREFIX: &str = "/prometheus";

/// How often the collector is scraped: a dashboard that moves with each order.
const SCRAPE_INTERVAL: &str = "2s";

/// The `prometheus` binary, if installed.
pub fn binary() -> Option<PathBuf> {
    std::env::var_os("PATH")
        .into_iter()
        .flat_map(|path| std::env::split_paths(&path).collect::<Vec<_>>())
        .map(|dir| dir.join("prometheus"))
        .find(|candidate| candidate.is_file())
}

/// Starts Prometheus on `addr` (`127.0.0.1:PORT`) scraping `target` (`127.0.0.1:PORT` of the
/// collector), its data in `data_dir`; its URL (with [`ROUTE_PREFIX`]) once it is ready.
pub async fn start(
    binary: &Path,
    addr: std::net::SocketAddr,
    target: &str,
    data_dir: &Path,
    logs: &Path,
    processes: &mut Processes,
) -> Result<String> {
    let dir = data_dir.join("prometheus");
    std::fs::create_dir_all(&dir).with_context(|| format!("creating {}", dir.display()))?;
    let config = dir.join("prometheus.yml");
    let text = format!(
        "global:\n  scrape_interval: {SCRAPE_INTERVAL}\n  evaluation_interval: {SCRAPE_INTERVAL}\nscrape_configs:\n  - job_name: bookstore\n    static_configs:\n      - targets: ['{target}']\n"
    );
    std::fs::write(&config, text).with_context(|| format!("writing {}", config.display()))?;
    let url = format!("http://{addr}{ROUTE_PREFIX}");
    let mut command = std::process::Command::new(binary);
    command
        .arg(format!("--config.file={}", config.display()))
        .arg(format!("--storage.tsdb.path={}", dir.join("data").display()))
        .arg(format!("--web.listen-address={addr}"))
        .arg(format!("--web.external-url={url}"))
        .arg(format!("--web.route-prefix={ROUTE_PREFIX}"))
        .arg("--storage.tsdb.retention.time=7d");
    let log = logs.join("prometheus.log");
    processes.push("prometheus", spawn_logged(command, &log)?, Stop::Terminate);
    let ready = format!("{url}/-/ready");
    processes.wait_until_serving(&ready, &log, Duration::from_secs(60)).await?;
    // It answers 503 until its database is loaded.
    let http = reqwest::Client::builder().no_proxy().timeout(Duration::from_secs(2)).build()?;
    let deadline = std::time::Instant::now() + Duration::from_secs(60);
    while !http.get(&ready).send().await.is_ok_and(|answer| answer.status().is_success()) {
        anyhow::ensure!(
            std::time::Instant::now() < deadline,
            "Prometheus was not ready within a minute; its log: {}",
            log.display()
        );
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
    Ok(url)
}
