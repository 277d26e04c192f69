//! The books database as the container cluster of `raft-cluster/compose.yaml`, and the faults a
//! test or the nemesis puts on it: `docker kill`, `docker pause`, `docker network disconnect`.

use std::collections::BTreeMap;
use std::path::PathBuf;
use std::process::Command;
use std::time::{Duration, Instant};

use anyhow::{Context, Result, bail};
use books_db_client::api::ClusterStatus;
use books_db_client::{BooksDb, ClientOptions};
use raft_local_cluster::agreed_leader;

/// The cluster's compose file.
pub fn compose_file() -> PathBuf {
    crate::workspace_root().join("raft-cluster/compose.yaml")
}

/// The secret the compose file gives the nodes by default; made once, kept, not in git.
pub fn compose_secret_file() -> Result<PathBuf> {
    let path = crate::workspace_root().join("raft-cluster/cluster-secret");
    raft_local_cluster::read_or_create_secret(&path).with_context(|| format!("creating {}", path.display()))?;
    Ok(path)
}

/// Fails with one line when there is no Docker engine to talk to.
pub fn check_docker() -> Result<()> {
    let output = Command::new("docker").args(["info", "--format", "{{.ServerVersion}}"]).output();
    match output {
        Ok(out) if out.status.success() => Ok(()),
        Ok(out) => bail!(
            "docker info failed: the Docker engine is not running or not reachable ({})",
            String::from_utf8_lossy(&out.stderr).lines().next().unwrap_or("").trim()
        ),
        Err(e) => bail!("cannot run docker ({e}): install Docker Engine and docker-compose"),
    }
}

/// A compose project name no other run uses: `PREFIX` with this process and the time.
pub fn unique_project(prefix: &str) -> String {
    let nanos = std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).map_or(0, |d| d.as_nanos());
    format!("{prefix}{}x{nanos}", std::process::id())
}

/// Three free ports on 127.0.0.1, for a cluster's client ports.
pub fn free_ports() -> Result<[u16; 3]> {
    let ports = raft_local_cluster::free_ports(3)?;
    Ok([ports[0], ports[1], ports[2]])
}

/// `docker compose` where the plugin is installed, else the standalone `docker-compose`; asked
/// of docker once per process.
fn compose() -> Command {
    static PLUGIN: std::sync::OnceLock<bool> = std::sync::OnceLock::new();
    let plugin = *PLUGIN
        .get_or_init(|| Command::new("docker").args(["compose", "version"]).output().is_ok_and(|o| o.status.success()));
    if plugin {
        let mut command = Command::new("docker");
        command.arg("compose");
        command
    } else {
        Command::new("docker-compose")
    }
}

/// Runs `command`; its stderr becomes the error when it fails.
fn run(command: &mut Command, what: &str) -> Result<String> {
    let output = command.output().with_context(|| format!("running {what}"))?;
    if !output.status.success() {
        bail!("{what} failed: {}", String::from_utf8_lossy(&output.stderr).trim());
    }
    Ok(String::from_utf8_lossy(&output.stdout).trim().to_string())
}

/// Why a node does not answer: what the last fault did to it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Down {
    Killed,
    Paused,
    CutOff,
}

/// A running compose project of three raft-node containers.
pub struct ComposeCluster {
    project: String,
    /// Client port on 127.0.0.1 of node `id`.
    ports: BTreeMap<u64, u16>,
    secret_file: PathBuf,
    /// Whether stopping removes the nodes' volumes too (tests) or keeps them (`cargo xtask up`).
    remove_volumes: bool,
    /// Container ids by node id.
    containers: BTreeMap<u64, String>,
    /// Nodes whose status cannot be asked now, and why.
    unreachable: BTreeMap<u64, Down>,
    probe: BooksDb,
    secret: String,
    /// Where the nodes send their telemetry, as they reach it from their network; blank: none.
    otlp_endpoint: String,
}

impl ComposeCluster {
    /// Starts the compose project `project` with the client ports `ports` (nodes 1..=3). With
    /// `remove_volumes`, its data goes when it is dropped. The nodes send their telemetry to
    /// `otlp_endpoint`, which must be reachable from their network.
    pub fn start(
        project: &str,
        ports: [u16; 3],
        secret_file: PathBuf,
        remove_volumes: bool,
        otlp_endpoint: Option<&str>,
    ) -> Result<Self> {
        check_docker()?;
        let secret = raft_local_cluster::read_or_create_secret(&secret_file)
            .with_context(|| format!("the cluster secret {}", secret_file.display()))?;
        let ports: BTreeMap<u64, u16> = (1..).zip(ports).collect();
        let probe_options = ClientOptions {
            attempt_timeout: Duration::from_millis(500),
            deadline: Duration::from_millis(500),
            ..ClientOptions::default()
        };
        let urls: Vec<String> = ports.values().map(|p| format!("http://127.0.0.1:{p}")).collect();
        let mut cluster = Self {
            project: project.to_string(),
            ports,
            secret_file,
            remove_volumes,
            containers: BTreeMap::new(),
            unreachable: BTreeMap::new(),
            probe: BooksDb::with_options(urls, probe_options)?,
            secret,
            otlp_endpoint: otlp_endpoint.unwrap_or_default().to_string(),
        };
        // From here on, Drop takes the project down, also when starting fails half-way.
        cluster.compose_run(&["up", "-d", "--no-build"], "docker compose up")?;
        for id in cluster.ids() {
            let container = cluster.compose_run(&["ps", "-q", &format!("node{id}")], "docker compose ps")?;
            if container.is_empty() {
                bail!("docker compose started no container for node{id}");
            }
            cluster.containers.insert(id, container);
        }
        Ok(cluster)
    }

    fn compose_run(&self, args: &[&str], what: &str) -> Result<String> {
        let mut command = compose();
        command.arg("--project-name").arg(&self.project).arg("--file").arg(compose_file()).args(args);
        command.env("BOOKS_DB_SECRET_FILE", &self.secret_file);
        // Given to every command: compose would recreate the nodes where it differed.
        command.env("BOOKS_DB_OTLP_ENDPOINT", &self.otlp_endpoint);
        for (id, port) in &self.ports {
            command.env(format!("BOOKS_DB_PORT_{id}"), port.to_string());
        }
        run(&mut command, what)
    }

    pub fn project(&self) -> &str {
        &self.project
    }

    /// Makes dropping the cluster remove its volumes too (or keep them).
    pub fn set_remove_volumes(&mut self, remove: bool) {
        self.remove_volumes = remove;
    }

    pub fn ids(&self) -> Vec<u64> {
        self.ports.keys().copied().collect()
    }

    pub fn url(&self, id: u64) -> Result<String> {
        let port = self.ports.get(&id).with_context(|| format!("no node {id}"))?;
        Ok(format!("http://127.0.0.1:{port}"))
    }

    pub fn urls(&self) -> Vec<String> {
        self.ports.values().map(|p| format!("http://127.0.0.1:{p}")).collect()
    }

    /// A client of every node, with the cluster secret.
    pub fn client(&self) -> Result<BooksDb> {
        Ok(BooksDb::new(self.urls())?.with_cluster_secret(&self.secret)?)
    }

    /// A client of node `id` only, with `options`.
    pub fn client_of(&self, id: u64, options: ClientOptions) -> Result<BooksDb> {
        Ok(BooksDb::with_options([self.url(id)?], options)?)
    }

    pub fn secret(&self) -> &str {
        &self.secret
    }

    fn container(&self, id: u64) -> Result<&str> {
        self.containers.get(&id).map(String::as_str).with_context(|| format!("no node {id}"))
    }

    fn docker(&self, args: &[&str], id: u64) -> Result<()> {
        let container = self.container(id)?.to_string();
        run(Command::new("docker").args(args).arg(&container), &format!("docker {} node{id}", args.join(" ")))?;
        Ok(())
    }

    /// The private network the nodes talk on.
    pub fn network(&self) -> String {
        // Compose names networks PROJECT_NAME, lower-cased, without characters it does not allow.
        format!("{}_raft", self.project)
    }

    /// `docker kill` (SIGKILL) node `id`; its restart policy does not restart a killed container.
    pub fn kill(&mut self, id: u64) -> Result<()> {
        self.docker(&["kill"], id)?;
        self.unreachable.insert(id, Down::Killed);
        Ok(())
    }

    /// Starts a killed or stopped node `id` again, with its volume.
    pub fn restart(&mut self, id: u64) -> Result<()> {
        self.docker(&["start"], id)?;
        self.unreachable.remove(&id);
        Ok(())
    }

    /// `docker pause`: the node's processes freeze (cgroup freezer), its sockets stay open.
    pub fn pause(&mut self, id: u64) -> Result<()> {
        self.docker(&["pause"], id)?;
        self.unreachable.insert(id, Down::Paused);
        Ok(())
    }

    pub fn resume(&mut self, id: u64) -> Result<()> {
        self.docker(&["unpause"], id)?;
        self.unreachable.remove(&id);
        Ok(())
    }

    /// Cuts node `id` off the network: no peer and no client reaches it, it reaches no one.
    pub fn disconnect(&mut self, id: u64) -> Result<()> {
        let network = self.network();
        self.docker(&["network", "disconnect", &network], id)?;
        self.unreachable.insert(id, Down::CutOff);
        Ok(())
    }

    /// Connects node `id` back, under its host name.
    pub fn connect(&mut self, id: u64) -> Result<()> {
        let network = self.network();
        self.docker(&["network", "connect", "--alias", &format!("node{id}"), &network], id)?;
        self.unreachable.remove(&id);
        Ok(())
    }

    /// Node `id`'s status, or `None` when it does not answer (or is known to be down).
    pub async fn status(&self, id: u64) -> Option<ClusterStatus> {
        if self.unreachable.contains_key(&id) {
            return None;
        }
        self.probe.status_of(&self.url(id).ok()?).await.ok()
    }

    /// Polls until a node leads with a majority agreeing; returns its id.
    pub async fn wait_for_leader(&self, timeout: Duration) -> Result<u64> {
        let deadline = Instant::now() + timeout;
        loop {
            let mut statuses = Vec::new();
            for id in self.ids() {
                statuses.extend(self.status(id).await);
            }
            if let Some(leader) = agreed_leader(&statuses, self.ports.len()) {
                return Ok(leader);
            }
            if Instant::now() >= deadline {
                bail!("the container cluster {} elected no leader in {timeout:?}: {}", self.project, self.logs_tail(5));
            }
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
    }

    /// The last lines of every node's log.
    pub fn logs_tail(&self, lines: usize) -> String {
        let mut all = String::new();
        for id in self.ids() {
            let Ok(container) = self.container(id) else { continue };
            let output = Command::new("docker").args(["logs", "--tail", &lines.to_string(), container]).output();
            if let Ok(output) = output {
                all.push_str(&format!("\n--- node{id} ---\n{}", String::from_utf8_lossy(&output.stderr).trim()));
            }
        }
        all
    }
}

impl Drop for ComposeCluster {
    fn drop(&mut self) {
        if std::thread::panicking() {
            eprintln!("{}", self.logs_tail(30));
        }
        // Heal first, so that `down` finds every container as compose left it.
        for (id, why) in self.unreachable.clone() {
            let _ = match why {
                Down::Paused => self.resume(id),
                Down::CutOff => self.connect(id),
                Down::Killed => Ok(()),
            };
        }
        let mut args = vec!["down", "--remove-orphans", "--timeout", "5"];
        if self.remove_volumes {
            args.push("--volumes");
        }
        if let Err(e) = self.compose_run(&args, "docker compose down") {
            eprintln!("xtask: warning: {e:#}");
        }
    }
}
