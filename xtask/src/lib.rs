//! The project's tasks and the embedded default's pieces, as a library so that tests can start
//! the stack too. `src/main.rs` is the `cargo xtask` command line.

pub mod bench;
pub mod books_db;
pub mod bridge;
pub mod collector;
pub mod containers;
pub mod data_dir;
pub mod deploy;
pub mod emulator;
pub mod faults;
pub mod fraud_model;
pub mod functions;
pub mod gateway;
pub mod gateway_telemetry;
pub mod images;
pub mod nemesis;
pub mod poller;
pub mod prometheus;
pub mod rate_limit;
pub mod recovery;
pub mod redrive;
pub mod sam_local;
pub mod scheduler;
pub mod stack;
pub mod supervisor;
pub mod template;
pub mod test_packages;
pub mod up;
pub mod venv;

use std::process::{Command, ExitCode};

use anyhow::{Context, Result};

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
