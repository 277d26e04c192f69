//! Project tasks: `cargo xtask up` runs the system, `cargo xtask test` runs every test,
//! `cargo xtask images` builds the container images, `cargo xtask nemesis` checks the books
//! database under faults, `cargo xtask bench raft` measures it against etcd.

use xtask::{bench, cargo, deploy, fraud_model, images, nemesis, redrive, test_packages, up, venv};

use std::process::ExitCode;

use anyhow::{Context, Result};
use clap::{Parser, Subcommand};

#[derive(Parser)]
#[command(name = "cargo xtask", about = "Bookstore project tasks")]
struct Cli {
    #[command(subcommand)]
    task: Task,
}

#[derive(Subcommand)]
enum Task {
    /// Run the system on this machine until Ctrl-C.
    Up(up::Up),
    /// Move the dead-letter queue's messages back to the order queue (of a running `up`).
    Redrive(redrive::Redrive),
    /// Run every test of the workspace (unit, multi-process, storage-suite, container and browser
    /// tests; the container tests need a Docker engine);
    /// installs Debian's Chromium first when it is missing and this runs as root.
    Test,
    /// Generate the fraud data set, train the fraud model and write its weights.
    TrainFraudModel(fraud_model::TrainFraudModel),
    /// Run one of the project's Python tools (aws, sam, cfn-lint, moto_server, ...) from its venv,
    /// creating the venv first if needed: `cargo xtask tool sam --version`.
    Tool {
        name: String,
        #[arg(trailing_var_arg = true, allow_hyphen_values = true)]
        args: Vec<String>,
    },
    /// Build the container images here (nothing is pulled): bookstore/raft-node, the Lambda base
    /// image for `sam local` (public.ecr.aws/lambda/provided:al2023-x86_64), and
    /// bookstore/etcd where Debian's etcd-server is installed.
    Images,
    /// Run the container cluster under faults (kill, pause, partition) with clients recording a
    /// history; check it for linearizability and lost writes.
    Nemesis(nemesis::Nemesis),
    /// Deploy template.yaml with `sam deploy` to a MiniStack started here (`--local`), with the
    /// books database, and run it until Ctrl-C.
    Deploy(deploy::Deploy),
    /// Run a benchmark and print its figures.
    #[command(subcommand)]
    Bench(bench::Bench),
}

fn main() -> ExitCode {
    match run(Cli::parse()) {
        Ok(code) => code,
        Err(e) => {
            eprintln!("xtask: error: {e:#}");
            ExitCode::FAILURE
        }
    }
}

fn run(cli: Cli) -> Result<ExitCode> {
    match cli.task {
        Task::Up(options) => {
            up::run(options)?;
            Ok(ExitCode::SUCCESS)
        }
        Task::Redrive(options) => {
            redrive::run(options)?;
            Ok(ExitCode::SUCCESS)
        }
        Task::Test => {
            // Without them every other test still runs; the browser and metrics tests then fail
            // and say what to install.
            if let Err(e) = test_packages::ensure() {
                eprintln!("xtask: warning: {e:#}");
            }
            cargo(&["test", "--workspace", "--all-targets"])
        }
        Task::Tool { name, args } => {
            let status =
                venv::ensure()?.command(&name).args(&args).status().with_context(|| format!("running {name}"))?;
            Ok(if status.success() { ExitCode::SUCCESS } else { ExitCode::FAILURE })
        }
        Task::TrainFraudModel(options) => {
            fraud_model::run(options)?;
            Ok(ExitCode::SUCCESS)
        }
        Task::Images => {
            images::run()?;
            Ok(ExitCode::SUCCESS)
        }
        Task::Nemesis(options) => {
            nemesis::run(options)?;
            Ok(ExitCode::SUCCESS)
        }
        Task::Deploy(options) => {
            deploy::run(options)?;
            Ok(ExitCode::SUCCESS)
        }
        Task::Bench(bench) => {
            bench::run(bench)?;
            Ok(ExitCode::SUCCESS)
        }
    }
}
