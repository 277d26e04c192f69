//! `cargo xtask deploy --local`: the unchanged `template.yaml`, built by `sam build` and deployed
//! by `sam deploy` to MiniStack on this machine (CloudFormation, API Gateway, Lambda, SQS and its
//! event source mapping, DynamoDB, S3 for the code), with the books database beside it.
//!
//! MiniStack runs `provided.al2023` functions as local processes, so the functions reach the
//! books database and MiniStack on 127.0.0.1. The building and deploying is
//! `localstack/deploy.sh`, the script LocalStack's users run against theirs.

use std::path::{Path, PathBuf};
use std::time::Duration;

use anyhow::{Context, Result, bail};

use crate::books_db::{BooksDbCluster, BooksDbMode};
use crate::data_dir::DataDir;
use crate::emulator::REGION;
use crate::supervisor::{Processes, spawn_logged};
use crate::venv::{self, Venv};

/// The deployment, shared with LocalStack's users.
const DEPLOY_SCRIPT: &str = "localstack/deploy.sh";
/// How the script's last line starts.
const READY: &str = "ready: the bookstore API at ";
/// What MiniStack serves for the deployment.
const SERVICES: &str = "cloudformation,s3,lambda,apigateway,sqs,dynamodb,iam,sts,logs,ssm";

#[derive(clap::Args)]
pub struct Deploy {
    /// Deploy to a MiniStack this command starts on this machine (the only target so far; for
    /// LocalStack, see localstack/deploy.sh).
    #[arg(long, required = true)]
    local: bool,
    /// MiniStack's port (where LocalStack would listen).
    #[arg(long, default_value_t = 4566)]
    port: u16,
    /// The books database as raft-node processes, or as the container cluster.
    #[arg(long, value_enum, default_value_t = BooksDbMode::Processes)]
    books_db: BooksDbMode,
    /// First of the three consecutive ports of the books database's nodes.
    #[arg(long, default_value_t = 7101)]
    books_db_port: u16,
    /// The storefront, its page pointed at the deployed API.
    #[arg(long, default_value_t = 8081)]
    storefront_port: u16,
    /// The CloudFormation stack's name.
    #[arg(long, default_value = "bookstore")]
    stack_name: String,
    /// Where MiniStack's state, the books database, the build and the logs are kept.
    #[arg(long, default_value = ".data/deploy")]
    data_dir: PathBuf,
    /// Start from empty data instead of the previous deployment's.
    #[arg(long)]
    fresh: bool,
}

/// Where and how to deploy. Port 0 picks a free port; no data dir, a temporary one.
#[derive(Debug, Clone)]
pub struct DeployOptions {
    pub port: u16,
    pub books_db: BooksDbMode,
    pub books_db_port: u16,
    pub storefront_port: u16,
    pub stack_name: String,
    pub data_dir: Option<PathBuf>,
}

/// A running local deployment; dropping it stops MiniStack (saving its state where it keeps one)
/// and the books database.
pub struct LocalDeployment {
    /// The API's stage URL, as MiniStack serves it: `{endpoint}/restapis/{id}/Prod/_user_request_`.
    pub api_url: String,
    /// MiniStack's endpoint.
    pub endpoint: String,
    /// `http://127.0.0.1:PORT` of the storefront, whose page uses the deployed API.
    pub storefront_url: String,
    storefront: tokio::task::JoinHandle<()>,
    pub logs: PathBuf,
    // Dropped in this order: MiniStack first, while the books database still answers.
    _processes: Processes,
    pub books_db: BooksDbCluster,
    _data_dir: DataDir,
}

pub fn run(options: Deploy) -> Result<()> {
    if !options.local {
        bail!("only --local is supported: cargo xtask deploy --local");
    }
    let data_dir = crate::workspace_root().join(&options.data_dir);
    if options.fresh && data_dir.exists() {
        std::fs::remove_dir_all(&data_dir).with_context(|| format!("removing {}", data_dir.display()))?;
    }
    let runtime = tokio::runtime::Builder::new_multi_thread().enable_all().build()?;
    runtime.block_on(async {
        let deployment = LocalDeployment::start(DeployOptions {
            port: options.port,
            books_db: options.books_db,
            books_db_port: options.books_db_port,
            storefront_port: options.storefront_port,
            stack_name: options.stack_name,
            data_dir: Some(data_dir),
        });
        let deployment = tokio::select! {
            deployment = deployment => deployment?,
            _ = tokio::signal::ctrl_c() => {
                eprintln!("stopping");
                return Ok(());
            }
        };
        println!("ready: the bookstore API at {}", deployment.api_url);
        println!("  try: curl -s {}/books | head -c 300", deployment.api_url);
        println!("  the storefront on it: {} (open it in a browser)", deployment.storefront_url);
        println!("  MiniStack at {}; books database: {}", deployment.endpoint, deployment.books_db.urls().join(","));
        println!("  logs: {}; Ctrl-C stops everything (the deployment is kept)", deployment.logs.display());
        let _ = tokio::signal::ctrl_c().await;
        eprintln!("stopping (MiniStack saves its state)");
        drop(deployment);
        Ok(())
    })
}

impl LocalDeployment {
    /// Starts MiniStack and the books database, builds the template and deploys it.
    pub async fn start(options: DeployOptions) -> Result<Self> {
        let venv = venv::ensure()?;
        let data_dir = DataDir::open(options.data_dir.clone(), "bookstore-deploy-")?;
        // Bound first, so that a port in use fails at once, not after the deploy.
        let listener = tokio::net::TcpListener::bind(("127.0.0.1", options.storefront_port))
            .await
            .with_context(|| format!("binding the storefront's port {}", options.storefront_port))?;

        let books_db =
            BooksDbCluster::start(options.books_db, options.books_db_port, &data_dir.path, !data_dir.is_kept(), None)
                .await?;

        let port = crate::stack::addr(options.port)?.port();
        let endpoint = format!("http://127.0.0.1:{port}");
        let state_dir = data_dir.is_kept().then(|| crate::emulator::state_dir(&data_dir.path));
        let mut launch = crate::emulator::ministack(port, state_dir.as_deref(), SERVICES)?;
        // The functions it runs as processes inherit its environment: they reach it here. Its
        // code cache goes with the data dir, not into /tmp.
        let tmp = data_dir.path.join("tmp");
        std::fs::create_dir_all(&tmp)?;
        launch.command.env("AWS_ENDPOINT_URL", &endpoint).env("TMPDIR", &tmp);
        let log = data_dir.logs.join("ministack.log");
        let mut processes = Processes::default();
        processes.push("MiniStack", spawn_logged(launch.command, &log)?, launch.stop);
        processes
            .wait_until_serving(&format!("{endpoint}{}", launch.ready_path), &log, Duration::from_secs(60))
            .await?;

        let api_url = deploy_script(&venv, &endpoint, &options.stack_name, &books_db.urls().join(","), &data_dir.path)?;
        let storefront_url = format!("http://{}", listener.local_addr()?);
        let router = crate::gateway::storefront(&api_url)?;
        let storefront = tokio::spawn(async move {
            if let Err(e) = axum::serve(listener, router).await {
                eprintln!("the storefront stopped: {e}");
            }
        });
        Ok(Self {
            api_url,
            endpoint,
            storefront_url,
            storefront,
            books_db,
            logs: data_dir.logs.clone(),
            _processes: processes,
            _data_dir: data_dir,
        })
    }
}

impl Drop for LocalDeployment {
    fn drop(&mut self) {
        self.storefront.abort();
    }
}

/// Runs `localstack/deploy.sh` against the emulator at `endpoint`, with the venv's SAM CLI and AWS
/// CLI; the API's URL it prints.
fn deploy_script(venv: &Venv, endpoint: &str, stack_name: &str, books_db_url: &str, data_dir: &Path) -> Result<String> {
    eprintln!("sam build and sam deploy (localstack/deploy.sh)...");
    let script = crate::workspace_root().join(DEPLOY_SCRIPT);
    let output = venv
        .command("bash")
        .arg(&script)
        .env("AWS_ENDPOINT_URL", endpoint)
        .env("AWS_DEFAULT_REGION", REGION)
        .env("STACK_NAME", stack_name)
        .env("BOOKS_DB_URL", books_db_url)
        .env("FUNCTIONS_ENDPOINT_URL", endpoint)
        .env("BUILD_DIR", data_dir.join("sam-build"))
        .env("SAM", "sam")
        .env("AWS", "aws")
        .output()
        .with_context(|| format!("running {DEPLOY_SCRIPT}"))?;
    let stdout = String::from_utf8_lossy(&output.stdout);
    if !output.status.success() {
        let printed = format!("{stdout}{}", String::from_utf8_lossy(&output.stderr));
        let lines: Vec<&str> = printed.lines().collect();
        bail!("{DEPLOY_SCRIPT} failed ({}):\n{}", output.status, lines[lines.len().saturating_sub(30)..].join("\n"));
    }
    stdout
        .lines()
        .find_map(|line| line.strip_prefix(READY))
        .map(|url| url.trim().to_string())
        .with_context(|| format!("{DEPLOY_SCRIPT} printed no '{READY}' line:\n{stdout}"))
}
