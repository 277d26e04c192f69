//! `cargo xtask deploy --local`: the unchanged `template.yaml`, built by `sam build` and deployed
//! by `sam deploy` to MiniStack on this machine (CloudFormation, API Gateway, Lambda, SQS and its
//! event source mapping, DynamoDB, S3 for the code), with the books database beside it.
//!
//! MiniStack runs `provided.al2023` functions as local processes, so the functions reach the
//! books database and MiniStack on 127.0.0.1. `localstack/deploy.sh` does the same deployment
//! against any LocalStack-compatible endpoint.

use std::path::PathBuf;
use std::process::Command;
use std::time::Duration;

use anyhow::{Context, Result, bail};

use crate::books_db::{BooksDbCluster, BooksDbMode};
use crate::stack::{Processes, REGION, spawn_logged};
use crate::venv::{self, Venv};

/// What MiniStack serves for the deployment.
const SERVICES: &str = "cloudformation,s3,lambda,apigateway,sqs,dynamodb,iam,sts,logs,ssm";
/// The template's output with the API's URL.
const API_OUTPUT: &str = "ApiUrl";

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
    pub logs: PathBuf,
    // Dropped in this order: MiniStack first, while the books database still answers.
    _processes: Processes,
    pub books_db: BooksDbCluster,
    _temporary: Option<tempfile::TempDir>,
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
        println!(
            "  the storefront: set <meta name=\"bookstore-api\" content=\"{}\"> in web/index.html",
            deployment.api_url
        );
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
        let temporary = match &options.data_dir {
            Some(_) => None,
            None => Some(tempfile::Builder::new().prefix("bookstore-deploy-").tempdir()?),
        };
        let data_dir = options.data_dir.clone().or_else(|| temporary.as_ref().map(|t| t.path().to_path_buf()));
        let data_dir = data_dir.context("no data dir")?;
        let logs = data_dir.join("logs");
        std::fs::create_dir_all(&logs)?;

        let books_db =
            BooksDbCluster::start(options.books_db, options.books_db_port, &data_dir, temporary.is_some()).await?;

        let port = match options.port {
            0 => crate::containers::free_ports()?[0],
            port => port,
        };
        let endpoint = format!("http://127.0.0.1:{port}");
        let state_dir = temporary.is_none().then(|| crate::emulator::state_dir(&data_dir));
        let mut launch = crate::emulator::ministack(port, state_dir.as_deref(), SERVICES)?;
        // The functions it runs as processes inherit its environment: they reach it here.
        launch.command.env("AWS_ENDPOINT_URL", &endpoint);
        let log = logs.join("ministack.log");
        let mut processes = Processes::default();
        processes.push("MiniStack", spawn_logged(&mut launch.command, &log)?, launch.stop);
        processes
            .wait_until_serving(&format!("{endpoint}{}", launch.ready_path), &log, Duration::from_secs(60))
            .await?;

        let build_dir = data_dir.join("sam-build");
        let aws = AwsTools { venv: &venv, endpoint: &endpoint };
        aws.run(
            "sam build",
            aws.command("sam")
                .args(["build", "--build-in-source", "--template", "template.yaml", "--build-dir"])
                .arg(&build_dir),
        )?;
        let parameters =
            [format!("BooksDbUrl={}", books_db.urls().join(",")), format!("EmulatorEndpointUrl={endpoint}")];
        aws.run(
            "sam deploy",
            aws.command("sam")
                .arg("deploy")
                .arg("--template-file")
                .arg(build_dir.join("template.yaml"))
                .args(["--stack-name", &options.stack_name, "--resolve-s3", "--capabilities", "CAPABILITY_IAM"])
                .args(["--no-confirm-changeset", "--no-fail-on-empty-changeset", "--no-progressbar"])
                .arg("--parameter-overrides")
                .args(&parameters),
        )?;
        let output = aws.run(
            "aws cloudformation describe-stacks",
            aws.command("aws").args(["cloudformation", "describe-stacks", "--stack-name", &options.stack_name]).args([
                "--query",
                &format!("Stacks[0].Outputs[?OutputKey=='{API_OUTPUT}'].OutputValue"),
                "--output",
                "text",
            ]),
        )?;
        let api_url = local_api_url(&endpoint, output.trim())?;
        Ok(Self { api_url, endpoint, books_db, logs, _processes: processes, _temporary: temporary })
    }
}

/// The venv's `sam` and `aws`, pointed at the emulator.
struct AwsTools<'a> {
    venv: &'a Venv,
    endpoint: &'a str,
}

impl AwsTools<'_> {
    fn command(&self, tool: &str) -> Command {
        let mut command = self.venv.command(tool);
        command
            .current_dir(crate::workspace_root())
            .env("AWS_ENDPOINT_URL", self.endpoint)
            .env("AWS_DEFAULT_REGION", REGION)
            .env("AWS_REGION", REGION)
            .env("AWS_ACCESS_KEY_ID", "test")
            .env("AWS_SECRET_ACCESS_KEY", "test");
        command
    }

    /// Runs `command`; its standard output, or an error with the end of what it printed.
    fn run(&self, what: &str, command: &mut Command) -> Result<String> {
        eprintln!("{what}...");
        let output = command.output().with_context(|| format!("running {what}"))?;
        if !output.status.success() {
            let printed =
                format!("{}{}", String::from_utf8_lossy(&output.stdout), String::from_utf8_lossy(&output.stderr));
            let tail: Vec<&str> = printed.lines().rev().take(30).collect();
            let tail: Vec<&str> = tail.into_iter().rev().collect();
            bail!("{what} failed ({}):\n{}", output.status, tail.join("\n"));
        }
        Ok(String::from_utf8_lossy(&output.stdout).into_owned())
    }
}

/// MiniStack's URL for the stage that `api_output` (`https://{id}.execute-api.{region}.amazonaws.com/{stage}`)
/// names.
fn local_api_url(endpoint: &str, api_output: &str) -> Result<String> {
    let rest = api_output.strip_prefix("https://").context("the API's URL is not https")?;
    let (host, stage) = rest.split_once('/').context("the API's URL has no stage")?;
    let (api_id, _) = host.split_once(".execute-api.").context("the API's URL has no API id")?;
    if api_id.is_empty() || stage.is_empty() {
        bail!("the stack's {API_OUTPUT} output is {api_output:?}: no API id or stage");
    }
    Ok(format!("{endpoint}/restapis/{api_id}/{}/_user_request_", stage.trim_end_matches('/')))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_api_output_gives_ministacks_stage_url() {
        assert_eq!(
            local_api_url("http://127.0.0.1:4566", "https://a1b2c3d4.execute-api.us-east-1.amazonaws.com/Prod")
                .unwrap(),
            "http://127.0.0.1:4566/restapis/a1b2c3d4/Prod/_user_request_"
        );
        assert!(local_api_url("http://127.0.0.1:4566", "None").is_err());
        assert!(local_api_url("http://127.0.0.1:4566", "https://x.amazonaws.com/Prod").is_err());
    }
}
