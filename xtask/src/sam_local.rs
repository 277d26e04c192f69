//! What `sam local invoke` and `sam local start-api` need from a running embedded default.
//!
//! The SAM CLI runs each function in a container on Docker's default bridge, where 127.0.0.1 is
//! the container itself. So each service of the embedded default that a function reaches (the
//! AWS emulator, `cargo lambda watch`, the books database's nodes, the telemetry collector) is
//! relayed onto the bridge (`crate::bridge`), and the SAM CLI's `--env-vars` file gives the
//! functions those addresses. The SAM CLI sets only variables the template declares for a
//! function, which is why the endpoints are template variables (`EMULATOR_ENDPOINT_URL`,
//! `LAMBDA_ENDPOINT_URL`, `OTEL_EXPORTER_OTLP_ENDPOINT`).

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

use anyhow::{Context, Result};

use crate::bridge::BridgeRelays;

/// The relays of a running stack and the `--env-vars` file that names them.
pub struct SamLocal {
    /// The SAM CLI's `--env-vars` file: `{"Parameters": {NAME: value}}`, for every function.
    pub env_vars_file: PathBuf,
    _relays: BridgeRelays,
}

impl SamLocal {
    /// Relays every `http://127.0.0.1:PORT` that `function_env` names onto the Docker bridge and
    /// writes `env_vars_file` with the relayed addresses.
    pub async fn start(function_env: &BTreeMap<String, String>, env_vars_file: &Path) -> Result<Self> {
        let mut relays = BridgeRelays::new()?;
        let mut variables = serde_json::Map::new();
        for (name, value) in function_env {
            variables.insert(name.clone(), relays.rewrite(value).await?.into());
        }
        let file = serde_json::json!({ "Parameters": variables });
        std::fs::write(env_vars_file, serde_json::to_string_pretty(&file)?)
            .with_context(|| format!("writing {}", env_vars_file.display()))?;
        Ok(Self { env_vars_file: env_vars_file.to_path_buf(), _relays: relays })
    }
}

/// Whether this machine can serve `sam local`: a Docker engine whose bridge address is the host's.
pub fn available() -> bool {
    crate::bridge::available()
}
