//! The project's Python tools live in virtual environments built from exact pins: moto,
//! cargo-lambda, AWS CLI, SAM CLI, cfn-lint and Zig in `/.venv` (`tools/requirements.txt`), and
//! MiniStack in `/.venv-ministack` (`tools/ministack-requirements.txt`), since its pinned botocore
//! cannot be installed beside the SAM CLI's boto3.
//!
//! [`ensure`] and [`ministack`] return at once when the venv matches its pins; otherwise they
//! delete the venv and build it again (about 40 s with a warm network, once per change of the
//! pins).

use std::ffi::OsString;
use std::fs::{self, File};
use std::io::ErrorKind;
use std::path::PathBuf;
use std::process::{Command, Output};

use anyhow::{Context, Result, bail};

/// The tools' pins and venv, relative to the workspace root.
const TOOLS: (&str, &str) = ("tools/requirements.txt", ".venv");
/// MiniStack's.
const MINISTACK: (&str, &str) = ("tools/ministack-requirements.txt", ".venv-ministack");
/// Written inside the venv after a successful install; holds the requirements it was built from.
const STAMP: &str = "requirements.stamp";

/// The project's virtual environment.
pub struct Venv {
    pub root: PathBuf,
}

/// Returns the project's tools venv, creating or rebuilding it first when it does not match
/// `tools/requirements.txt`.
pub fn ensure() -> Result<Venv> {
    ensure_from(TOOLS)
}

/// Returns MiniStack's venv, creating or rebuilding it first when it does not match
/// `tools/ministack-requirements.txt`.
pub fn ministack() -> Result<Venv> {
    ensure_from(MINISTACK)
}

fn ensure_from((requirements_file, venv_dir): (&str, &str)) -> Result<Venv> {
    let workspace = crate::workspace_root();
    let requirements_path = workspace.join(requirements_file);
    let requirements =
        fs::read_to_string(&requirements_path).with_context(|| format!("reading {}", requirements_path.display()))?;
    let venv = Venv { root: workspace.join(venv_dir) };
    if venv.is_current(&requirements) {
        return Ok(venv);
    }

    // Two xtasks started together must not build the same venv at once: the second waits here,
    // then finds the venv current. The lock lives in target/, which is gitignored.
    let lock_path = workspace.join(format!("target/{}.lock", venv_dir.trim_start_matches('.')));
    if let Some(dir) = lock_path.parent() {
        fs::create_dir_all(dir).with_context(|| format!("creating {}", dir.display()))?;
    }
    let lock = File::create(&lock_path).with_context(|| format!("creating {}", lock_path.display()))?;
    lock.lock().with_context(|| format!("locking {}", lock_path.display()))?;
    if venv.is_current(&requirements) {
        return Ok(venv);
    }

    eprintln!("xtask: creating the Python venv {venv_dir} from {requirements_file} (about a minute, once)...");
    if venv.root.exists() {
        fs::remove_dir_all(&venv.root).with_context(|| format!("removing stale {}", venv.root.display()))?;
    }
    let created = match Command::new("python3").arg("-m").arg("venv").arg(&venv.root).output() {
        Err(e) if e.kind() == ErrorKind::NotFound => {
            bail!("python3 not found on PATH; install Python 3 (with its venv module) to get the project's tools")
        }
        created => created.context("running python3 -m venv")?,
    };
    if !created.status.success() {
        show(&created);
        bail!("python3 -m venv {} failed ({}); is the venv module installed?", venv.root.display(), created.status);
    }
    let installed = venv
        .command("python")
        .args(["-m", "pip", "install", "--quiet", "--no-input", "--disable-pip-version-check", "-r"])
        .arg(&requirements_path)
        .output()
        .with_context(|| format!("running pip in {venv_dir}"))?;
    if !installed.status.success() {
        show(&installed);
        bail!("pip install -r {requirements_file} into {venv_dir} failed ({}); its output is above", installed.status);
    }
    let stamp = venv.root.join(STAMP);
    fs::write(&stamp, &requirements).with_context(|| format!("writing {}", stamp.display()))?;
    Ok(venv)
}

impl Venv {
    /// The path of an executable installed in the venv, such as `moto_server` or `sam`.
    pub fn bin(&self, name: &str) -> PathBuf {
        self.root.join("bin").join(name)
    }

    /// `PATH` with the venv's bin directory first, for child processes that run the tools
    /// themselves (`cargo lambda` finds `cargo-lambda`, which finds Zig through `python3`).
    pub fn path_env(&self) -> OsString {
        let mut path = self.root.join("bin").into_os_string();
        if let Some(old) = std::env::var_os("PATH").filter(|old| !old.is_empty()) {
            path.push(":");
            path.push(old);
        }
        path
    }

    /// A command for `tool`, looked up on [`Venv::path_env`] (so `aws` is the venv's and `cargo`
    /// is the usual one), with telemetry and pagers off.
    pub fn command(&self, tool: &str) -> Command {
        let mut command = Command::new(tool);
        command
            .env("PATH", self.path_env())
            .env("VIRTUAL_ENV", &self.root)
            .env_remove("PYTHONHOME")
            .env("SAM_CLI_TELEMETRY", "0")
            .env("AWS_PAGER", "");
        command
    }

    /// Whether the venv was fully built from exactly these requirements.
    fn is_current(&self, requirements: &str) -> bool {
        self.bin("python").exists()
            && fs::read_to_string(self.root.join(STAMP)).is_ok_and(|stamp| stamp == requirements)
    }
}

/// Prints a failed command's captured output, so the user sees why it failed.
fn show(output: &Output) {
    eprint!("{}{}", String::from_utf8_lossy(&output.stdout), String::from_utf8_lossy(&output.stderr));
}
