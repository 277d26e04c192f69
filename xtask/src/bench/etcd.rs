//! A three-node etcd cluster on loopback, as the anchor the books database is measured against.

use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use anyhow::{Context, Result, bail};
use raft_local_cluster::{free_addrs, spawn_tied};

pub struct EtcdCluster {
    children: Vec<Child>,
    /// Container names, in container mode.
    containers: Vec<String>,
    pub client_urls: Vec<String>,
    _dir: tempfile::TempDir,
}

impl EtcdCluster {
    pub fn start(size: usize) -> Result<Self> {
        let version = Command::new("etcd")
            .arg("--version")
            .output()
            .context("etcd is not installed (Debian: apt-get install etcd-server)")?;
        let version = String::from_utf8_lossy(&version.stdout);
        println!("anchor: {}", version.lines().next().unwrap_or("etcd").trim());

        let dir = tempfile::Builder::new().prefix("etcd-bench-").tempdir()?;
        let addrs = free_addrs(size * 2)?;
        let (client_addrs, peer_addrs) = addrs.split_at(size);
        let initial_cluster = peer_addrs
            .iter()
            .enumerate()
            .map(|(i, addr)| format!("e{}=http://{addr}", i + 1))
            .collect::<Vec<_>>()
            .join(",");
        let mut cluster = Self {
            children: Vec::new(),
            containers: Vec::new(),
            client_urls: client_addrs.iter().map(|a| format!("http://{a}")).collect(),
            _dir: dir,
        };
        for (i, (client_url, peer_addr)) in cluster.client_urls.iter().zip(peer_addrs).enumerate() {
            let name = format!("e{}", i + 1);
            let peer_url = format!("http://{peer_addr}");
            let mut command = Command::new("etcd");
            command
                .args(["--name", &name])
                .arg("--data-dir")
                .arg(cluster._dir.path().join(&name))
                .args(["--listen-client-urls", client_url, "--advertise-client-urls", client_url])
                .args(["--listen-peer-urls", &peer_url, "--initial-advertise-peer-urls", &peer_url])
                .args(["--initial-cluster", &initial_cluster, "--initial-cluster-state", "new"])
                .args(["--initial-cluster-token", "bench", "--logger", "zap", "--log-level", "error"])
                .stdin(Stdio::null())
                .stdout(Stdio::null())
                .stderr(Stdio::null());
            cluster.children.push(spawn_tied(&mut command).context("starting etcd")?);
        }
        Ok(cluster)
    }

    /// `size` containers of `bookstore/etcd` (`cargo xtask images`) on the Docker network
    /// `network`, each client port published on 127.0.0.1.
    pub fn start_containers(size: usize, network: &str) -> Result<Self> {
        let prefix = crate::containers::unique_project("etcd");
        let initial_cluster =
            (1..=size).map(|i| format!("e{i}=http://{prefix}e{i}:2380")).collect::<Vec<_>>().join(",");
        let ports = free_addrs(size)?;
        let mut cluster = Self {
            children: Vec::new(),
            containers: Vec::new(),
            client_urls: ports.iter().map(|a| format!("http://{a}")).collect(),
            _dir: tempfile::tempdir()?,
        };
        for (i, published) in (1..).zip(&ports) {
            let name = format!("{prefix}e{i}");
            let output = Command::new("docker")
                .args(["run", "--detach", "--name", &name, "--hostname", &name, "--network", network])
                .args(["--publish", &format!("{published}:2379"), crate::images::ETCD_IMAGE])
                .args(["--name", &format!("e{i}"), "--data-dir", "/data/etcd"])
                .args(["--listen-client-urls", "http://0.0.0.0:2379"])
                .args(["--advertise-client-urls", &format!("http://{name}:2379")])
                .args(["--listen-peer-urls", "http://0.0.0.0:2380"])
                .args(["--initial-advertise-peer-urls", &format!("http://{name}:2380")])
                .args(["--initial-cluster", &initial_cluster, "--initial-cluster-state", "new"])
                .args(["--initial-cluster-token", "bench", "--logger", "zap", "--log-level", "error"])
                .output()
                .context("running docker run")?;
            if !output.status.success() {
                bail!("starting etcd container {name}: {}", String::from_utf8_lossy(&output.stderr).trim());
            }
            cluster.containers.push(name);
        }
        Ok(cluster)
    }

    /// Polls every member's `/health` until all say healthy.
    pub async fn wait_healthy(&self, timeout: Duration) -> Result<()> {
        let http = reqwest::Client::builder().no_proxy().timeout(Duration::from_millis(500)).build()?;
        let deadline = Instant::now() + timeout;
        'poll: loop {
            if Instant::now() > deadline {
                bail!("etcd did not become healthy within {timeout:?}");
            }
            tokio::time::sleep(Duration::from_millis(50)).await;
            for url in &self.client_urls {
                let healthy = match http.get(format!("{url}/health")).send().await {
                    Ok(r) => r.text().await.is_ok_and(|t| t.contains("\"true\"")),
                    Err(_) => false,
                };
                if !healthy {
                    continue 'poll;
                }
            }
            return Ok(());
        }
    }
}

impl Drop for EtcdCluster {
    fn drop(&mut self) {
        for child in &mut self.children {
            let _ = child.kill();
            let _ = child.wait();
        }
        if !self.containers.is_empty() {
            let _ = Command::new("docker").args(["rm", "--force", "--volumes"]).args(&self.containers).output();
        }
    }
}
