//! Project tasks: `cargo xtask up` runs the system, `cargo xtask test` runs every test,
//! `cargo xtask bench raft` measures the books database against etcd.

mod bench;
mod fraud_model;
mod up;
mod venv;

use std::process::{Command, ExitCode};

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
    /// Run every test of the workspace (unit, multi-process and storage-suite tests).
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
        Task::Test => cargo(&["test", "--workspace", "--all-targets"]),
        Task::Tool { name, args } => {
            let status =
                venv::ensure()?.command(&name).args(&args).status().with_context(|| format!("running {name}"))?;
            Ok(if status.success() { ExitCode::SUCCESS } else { ExitCode::FAILURE })
        }
        Task::TrainFraudModel(options) => {
            fraud_model::run(options)?;
            Ok(ExitCode::SUCCESS)
        }
        Task::Bench(bench) => {
            bench::run(bench)?;
            Ok(ExitCode::SUCCESS)
        }
    }
}

/// Runs cargo with `args` in the workspace, passing its exit status on.
pub fn cargo(args: &[&str]) -> Result<ExitCode> {
    let cargo = std::env::var("CARGO").unwrap_or_else(|_| "cargo".into());
    let status = Command::new(&cargo)
        .args(args)
        .current_dir(workspace_root())
        .status()
        .with_context(|| format!("running {cargo} {}", args.join(" ")))?;
    Ok(if status.success() { ExitCode::SUCCESS } else { ExitCode::FAILURE })
}

/// Builds a binary of the workspace in release mode; returns its path.
pub fn build_release(binary: &str) -> Result<std::path::PathBuf> {
    eprintln!("building {binary} (release)...");
    if cargo(&["build", "--release", "--quiet", "--bin", binary])? != ExitCode::SUCCESS {
        anyhow::bail!("building {binary} failed");
    }
    Ok(workspace_root().join("target/release").join(binary))
}

pub fn workspace_root() -> std::path::PathBuf {
    let manifest = std::path::Path::new(env!("CARGO_MANIFEST_DIR"));
    manifest.parent().unwrap_or(manifest).to_path_buf()
}
