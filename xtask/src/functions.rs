//! The template's functions in the embedded default: their environment, their build, `cargo
//! lambda watch` serving them, and a warm-up invoke of each.

use std::collections::BTreeMap;
use std::path::Path;
use std::process::{Command, ExitCode};
use std::time::{Duration, Instant};

use anyhow::{Context, Result, bail};

use crate::emulator::REGION;
use crate::template::{FunctionSpec, Resolver};
use crate::venv::Venv;

/// The name of `cargo lambda watch` among the stack's processes.
pub const WATCH: &str = "cargo lambda watch";

/// How long the functions may take to build and start at their first invoke.
const WARM_UP_TIMEOUT: Duration = Duration::from_secs(600);

/// Builds the functions before `cargo lambda watch` starts, so that its first invocations only
/// start them.
pub fn build(functions: &[FunctionSpec], release: bool) -> Result<()> {
    let mut args = vec!["build", "--quiet"];
    if release {
        args.push("--release");
    }
    for function in functions {
        args.extend(["--bin", &function.binary]);
    }
    if crate::cargo(&args)? != ExitCode::SUCCESS {
        bail!("building the functions failed");
    }
    Ok(())
}

/// The one environment every function runs with: each function's variables from the template,
/// resolved, and local AWS credentials. Fails when two functions want different values for one
/// name, which one `cargo lambda watch` cannot give them.
pub fn environment(functions: &[FunctionSpec], resolver: &Resolver) -> Result<BTreeMap<String, String>> {
    let mut environment = BTreeMap::new();
    for function in functions {
        for (name, value) in &function.environment {
            let value = resolver.resolve(value).with_context(|| format!("{}: {name}", function.logical_id))?;
            if let Some(other) = environment.insert(name.clone(), value.clone())
                && other != value
            {
                bail!(
                    "{name} differs between functions ({other} vs {value}); the embedded default runs them with one environment"
                );
            }
        }
    }
    for (name, value) in [("AWS_REGION", REGION), ("AWS_ACCESS_KEY_ID", "test"), ("AWS_SECRET_ACCESS_KEY", "test")] {
        environment.insert(name.into(), value.into());
    }
    Ok(environment)
}

/// `environment` as an env file for `cargo lambda watch --env-file`.
pub fn write_env_file(environment: &BTreeMap<String, String>, path: &Path) -> Result<()> {
    let text: String = environment.iter().map(|(k, v)| format!("{k}={v}\n")).collect();
    std::fs::write(path, text).with_context(|| format!("writing {}", path.display()))
}

/// `cargo lambda watch` serving the workspace's functions' Invoke API on 127.0.0.1:`port`.
pub fn watch_command(venv: &Venv, port: u16, release: bool, env_file: &Path) -> Command {
    let mut watch = venv.command("cargo");
    watch
        .args(["lambda", "watch", "--quiet", "--ignore-changes", "--concurrency", "8"])
        .args(["--invoke-address", "127.0.0.1", "--invoke-port", &port.to_string()])
        .args(if release { &["--release"][..] } else { &[] })
        .arg("--env-file")
        .arg(env_file)
        .current_dir(crate::workspace_root());
    watch
}

/// A function's Lambda Invoke URL on `cargo lambda watch` at `watch_url`.
pub fn invoke_url(watch_url: &str, binary: &str) -> String {
    format!("{watch_url}/2015-03-31/functions/{binary}/invocations")
}

/// Invokes every function once, so the first real request finds them built and started
/// (`cargo lambda watch` builds and starts a function at its first invocation). HTTP functions
/// are asked through the gateway at `gateway_url`.
pub async fn warm_up(functions: &[FunctionSpec], gateway_url: &str, watch_url: &str, logs: &Path) -> Result<()> {
    let http = reqwest::Client::builder().no_proxy().timeout(WARM_UP_TIMEOUT).build()?;
    let deadline = Instant::now() + WARM_UP_TIMEOUT;
    for function in functions {
        loop {
            let answer = match function.routes.iter().find(|r| r.method != "OPTIONS") {
                // An HTTP function, through its own route: a GET has no side effect, and a body
                // that is not JSON is refused before anything is written. (A preflight would not
                // do: cargo lambda watch answers those itself.)
                Some(route) => {
                    let path = route.path.replace("{orderId}", "warm-up");
                    let method = reqwest::Method::from_bytes(route.method.as_bytes())?;
                    http.request(method, format!("{gateway_url}{path}")).body("warm-up").send().await
                }
                // A queue consumer gets an empty batch, a scheduled function its event (a sweep
                // at start does good), any other function a request it refuses (a service
                // clears an order it never saw).
                None => {
                    let body = if !function.queue_events.is_empty() {
                        r#"{"Records":[]}"#
                    } else if !function.schedules.is_empty() {
                        crate::scheduler::SCHEDULED_EVENT
                    } else {
                        r#"{"action":"clear","orderId":"warm-up","finalClock":{}}"#
                    };
                    http.post(invoke_url(watch_url, &function.binary)).body(body).send().await
                }
            };
            // Any answer of the function's own (a 4xx, or a function error: a 500 from cargo
            // lambda watch with the runtime's `errorType`) means it runs.
            let answer = match answer {
                Ok(answer) if answer.status().is_server_error() => {
                    let status = answer.status();
                    match answer.text().await {
                        Ok(body) if body.contains("\"errorType\"") => break,
                        _ => Ok(status),
                    }
                }
                Ok(answer) => Ok(answer.status()),
                Err(e) => Err(e),
            };
            match answer {
                Ok(status) if !status.is_server_error() => break,
                Ok(status) if Instant::now() > deadline => {
                    bail!("{} did not start: {status}; see {}", function.binary, logs.display())
                }
                Err(e) if Instant::now() > deadline => bail!("{} did not start: {e}", function.binary),
                // Not listening yet, or still starting: ask again in a moment, not at once, since
                // every request waiting makes cargo lambda watch start another instance.
                _ => tokio::time::sleep(Duration::from_secs(1)).await,
            }
        }
    }
    Ok(())
}
