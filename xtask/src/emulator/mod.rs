//! The embedded default's AWS emulator, serving DynamoDB and SQS on one port as LocalStack does:
//! MiniStack by default (fast, and it keeps its state across a clean restart), or moto as a
//! fidelity cross-check (`--aws moto`; in memory only).

use std::path::{Path, PathBuf};
use std::process::Command;

use anyhow::{Context, Result, bail};

use crate::supervisor::Stop;
use crate::venv;

mod clients;
mod resources;

pub use clients::{REGION, emulator_clients};
pub use resources::create_resources;

/// moto server's own application (what `moto_server` serves), served by waitress instead of
/// werkzeug's development server: werkzeug closes the connection after every answer, so each call
/// paid for a new TCP connection and a new thread, and it logs every request through colorama.
/// Measured with py-spy and `cargo xtask bench checkout`.
const MOTO_SERVER: &str = "import os, sys\n\
from waitress import serve\n\
from moto.moto_server.werkzeug_app import DomainDispatcherApplication, create_backend_app\n\
host, port = sys.argv[1], sys.argv[2]\n\
os.environ.setdefault('MOTO_PORT', port)\n\
serve(DomainDispatcherApplication(create_backend_app), host=host, port=int(port), threads=8, ident=None, _quiet=True)\n";

/// What MiniStack logs when it could not restore a saved service and goes on empty.
const MINISTACK_RESTORE_FAILURES: [&str; 2] = ["Persistence: failed to load", "Failed to restore persisted state"];

#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, clap::ValueEnum)]
pub enum AwsEmulator {
    /// MiniStack: DynamoDB and SQS in about a third of moto's CPU per call; its state is saved on
    /// a clean stop and restored at start.
    #[default]
    Ministack,
    /// moto server (under waitress): the cross-check; keeps nothing across a restart.
    Moto,
}

/// How to start an emulator and when it is ready.
pub struct EmulatorLaunch {
    pub command: Command,
    /// A path that answers once it serves requests.
    pub ready_path: &'static str,
    /// How it is stopped: with SIGTERM, waited for, when it has state to save.
    pub stop: Stop,
}

impl AwsEmulator {
    pub fn name(self) -> &'static str {
        match self {
            Self::Ministack => "MiniStack",
            Self::Moto => "moto",
        }
    }

    /// Whether a restart finds what the previous run wrote.
    pub fn keeps_state(self) -> bool {
        self == Self::Ministack
    }

    /// The command serving the emulator on 127.0.0.1:`port`, keeping its state in `state_dir`
    /// when given (MiniStack only), with its venv created first when missing.
    pub fn launch(self, port: u16, state_dir: Option<&Path>) -> Result<EmulatorLaunch> {
        match self {
            Self::Moto => {
                let mut command = venv::ensure()?.command("python");
                command.args(["-c", MOTO_SERVER, "127.0.0.1", &port.to_string()]);
                Ok(EmulatorLaunch { command, ready_path: "/moto-api/", stop: Stop::Kill })
            }
            Self::Ministack => ministack(port, state_dir, "dynamodb,sqs"),
        }
    }

    /// After start: fails when the emulator said in `log` that it dropped saved state.
    pub fn check_restored(self, log: &Path, state_dir: &Path) -> Result<()> {
        if self != Self::Ministack {
            return Ok(());
        }
        let text = std::fs::read_to_string(log).unwrap_or_default();
        if let Some(line) = text.lines().find(|line| MINISTACK_RESTORE_FAILURES.iter().any(|m| line.contains(m))) {
            bail!(
                "MiniStack could not restore its saved state in {} ({}); start with --fresh to begin empty",
                state_dir.display(),
                line.trim()
            );
        }
        Ok(())
    }
}

/// MiniStack on 127.0.0.1:`port` with only `services` (comma-separated), keeping its state in
/// `state_dir` when given; `cargo xtask deploy --local` asks for more services than the embedded
/// default.
pub(crate) fn ministack(port: u16, state_dir: Option<&Path>, services: &str) -> Result<EmulatorLaunch> {
    let venv = venv::ministack()?;
    // MiniStack's ASGI app under uvicorn (httptools, uvloop) rather than its own Hypercorn: see
    // tools/ministack-requirements.txt.
    let mut command = venv.command(&venv.bin("python").to_string_lossy());
    command
        .args(["-m", "uvicorn", "ministack.app:app", "--host", "127.0.0.1", "--port", &port.to_string()])
        .args(["--loop", "uvloop", "--http", "httptools", "--timeout-keep-alive", "75"])
        .args(["--no-access-log", "--log-level", "warning"])
        // Where it says its queues are (queue URLs).
        .env("GATEWAY_PORT", port.to_string())
        .env("MINISTACK_HOST", "127.0.0.1")
        .env("SERVICES", services)
        // No listeners beyond the gateway port (IoT's MQTT on 0.0.0.0:8883, SFTP).
        .env("IOT_MTLS_ENABLED", "0")
        .env("SFTP_ENABLED", "0")
        .env("LOG_LEVEL", "WARNING");
    if let Some(dir) = state_dir {
        check_saved_state(dir)?;
        command.env("PERSIST_STATE", "1").env("STATE_DIR", dir);
    } else {
        command.env("PERSIST_STATE", "0");
    }
    let stop = if state_dir.is_some() { Stop::Terminate } else { Stop::Kill };
    Ok(EmulatorLaunch { command, ready_path: "/_ministack/health", stop })
}

/// Reads every file MiniStack saved in `dir`, so that one that cannot be read stops the start
/// with its path: MiniStack itself would log it and start that service empty.
pub fn check_saved_state(dir: &Path) -> Result<()> {
    let entries = match std::fs::read_dir(dir) {
        Ok(entries) => entries,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(()),
        Err(e) => bail!(unreadable(dir, &e.to_string())),
    };
    for entry in entries {
        let path = entry.with_context(|| unreadable(dir, "cannot list it"))?.path();
        if path.extension().is_none_or(|ext| ext != "json") {
            continue;
        }
        let text = std::fs::read_to_string(&path).map_err(|e| anyhow::anyhow!(unreadable(&path, &e.to_string())))?;
        let saved: serde_json::Value =
            serde_json::from_str(&text).map_err(|e| anyhow::anyhow!(unreadable(&path, &e.to_string())))?;
        if !saved.is_object() {
            bail!(unreadable(&path, "not a JSON object"));
        }
    }
    Ok(())
}

fn unreadable(path: &Path, why: &str) -> String {
    format!(
        "the AWS emulator's saved state {} cannot be read ({why}); start with --fresh to begin empty (forgets every order)",
        path.display()
    )
}

/// Where the stack keeps the emulator's state under its data dir.
pub fn state_dir(data_dir: &Path) -> PathBuf {
    data_dir.join("aws")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn saved_state_that_cannot_be_read_is_named_with_the_way_out() {
        let dir = tempfile::tempdir().unwrap();
        assert!(check_saved_state(&dir.path().join("missing")).is_ok(), "no saved state is a fresh start");
        std::fs::write(dir.path().join("dynamodb.json"), r#"{"__ministack_format__": 2, "payload": {}}"#).unwrap();
        assert!(check_saved_state(dir.path()).is_ok());
        std::fs::write(dir.path().join("sqs.json"), "{\"queues\": ").unwrap();
        let error = check_saved_state(dir.path()).unwrap_err().to_string();
        assert!(error.contains("sqs.json") && error.contains("--fresh"), "{error}");
        std::fs::write(dir.path().join("sqs.json"), "[]").unwrap();
        assert!(check_saved_state(dir.path()).unwrap_err().to_string().contains("not a JSON object"));
    }

    #[test]
    fn a_dropped_service_in_the_log_stops_the_start() {
        let dir = tempfile::tempdir().unwrap();
        let log = dir.path().join("ministack.log");
        std::fs::write(&log, "INFO Ready\n").unwrap();
        assert!(AwsEmulator::Ministack.check_restored(&log, dir.path()).is_ok());
        std::fs::write(&log, "ERROR [persistence] Persistence: failed to load sqs: Expecting value\n").unwrap();
        let error = AwsEmulator::Ministack.check_restored(&log, dir.path()).unwrap_err().to_string();
        assert!(error.contains("failed to load sqs") && error.contains("--fresh"), "{error}");
        assert!(AwsEmulator::Moto.check_restored(&log, dir.path()).is_ok(), "moto restores nothing");
    }
}
