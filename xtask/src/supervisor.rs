//! The processes a stack, a deployment or a test starts: each in a process group of its own (so
//! that a Ctrl-C in the terminal reaches `cargo xtask` alone, which stops them in order), tied to
//! the process that started it, its output in a log file, stopped the last started first.

use std::path::Path;
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use anyhow::{Context, Result, bail};
use nix::sys::signal::{Signal, kill};
use nix::unistd::Pid;
use process_wrap::std::{ChildWrapper, CommandWrap, ProcessGroup};

/// How long a stopping emulator may take to save its state before it is killed.
const TERMINATE_TIMEOUT: Duration = Duration::from_secs(30);

/// How a process is stopped.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Stop {
    /// SIGKILL to it, its process group and its descendants: it keeps nothing that a kill would
    /// lose.
    Kill,
    /// SIGTERM, then wait (for an emulator saving its state); killed if it takes too long.
    Terminate,
}

/// A process started here.
pub struct Supervised {
    pub name: &'static str,
    child: Box<dyn ChildWrapper>,
    how: Stop,
}

impl Supervised {
    fn running(&mut self) -> bool {
        self.child.try_wait().is_ok_and(|status| status.is_none())
    }

    pub(crate) fn stop(&mut self) {
        if self.how == Stop::Terminate && self.running() {
            let _ = self.child.signal(Signal::SIGTERM as i32);
            let deadline = Instant::now() + TERMINATE_TIMEOUT;
            while Instant::now() < deadline {
                if !self.running() {
                    return;
                }
                std::thread::sleep(Duration::from_millis(50));
            }
            eprintln!("{} did not stop within {TERMINATE_TIMEOUT:?}; killing it", self.name);
        }
        // cargo lambda watch starts each function instance in a process group of its own, so its
        // group alone would leave them running: freeze the group (nothing new is started), then
        // kill every descendant, then the group.
        let _ = self.child.signal(Signal::SIGSTOP as i32);
        if let Ok(pid) = i32::try_from(self.child.id()) {
            for descendant in descendants(pid) {
                let _ = kill(Pid::from_raw(descendant), Signal::SIGKILL);
            }
        }
        let _ = self.child.kill();
    }
}

/// Every process below `root` (children, their children, ...), from `/proc`.
fn descendants(root: i32) -> Vec<i32> {
    let mut parents: Vec<(i32, i32)> = Vec::new();
    for entry in std::fs::read_dir("/proc").into_iter().flatten().flatten() {
        let Some(pid) = entry.file_name().to_str().and_then(|name| name.parse().ok()) else { continue };
        let Ok(stat) = std::fs::read_to_string(entry.path().join("stat")) else { continue };
        // The parent is the second field after the command name, which is in parentheses.
        let ppid = stat.rfind(')').and_then(|close| stat[close + 1..].split_whitespace().nth(1)?.parse().ok());
        if let Some(ppid) = ppid {
            parents.push((pid, ppid));
        }
    }
    let mut found = vec![root];
    let mut next = 0;
    while next < found.len() {
        let parent = found[next];
        found.extend(parents.iter().filter(|(_, ppid)| *ppid == parent).map(|(pid, _)| *pid));
        next += 1;
    }
    found.remove(0);
    found
}

/// Processes stopped, the last started first, when this is dropped: what a stack started so far
/// if starting it fails half-way, or a test's helper process (chromedriver).
#[derive(Default)]
pub struct Processes(Vec<Supervised>);

impl Processes {
    pub fn push(&mut self, name: &'static str, child: Box<dyn ChildWrapper>, how: Stop) {
        self.0.push(Supervised { name, child, how });
    }

    /// Takes the process named `name` out, for the caller to stop first.
    pub(crate) fn take(&mut self, name: &str) -> Option<Supervised> {
        let index = self.0.iter().position(|p| p.name == name)?;
        Some(self.0.remove(index))
    }

    /// Waits until `url` answers; fails at once, with the end of its log, if the last process
    /// started exits first (a broken venv, a port taken).
    pub async fn wait_until_serving(&mut self, url: &str, log: &Path, timeout: Duration) -> Result<()> {
        let http = reqwest::Client::builder().no_proxy().timeout(Duration::from_secs(2)).build()?;
        let deadline = Instant::now() + timeout;
        loop {
            let process = self.0.last_mut().context("nothing started")?;
            if let Ok(Some(status)) = process.child.try_wait() {
                let text = std::fs::read_to_string(log).unwrap_or_default();
                let last = text.lines().rev().find(|l| !l.trim().is_empty()).unwrap_or("no output");
                bail!("{} exited at start ({status}): {}; its log: {}", process.name, last.trim(), log.display());
            }
            if http.get(url).send().await.is_ok() {
                return Ok(());
            }
            if Instant::now() > deadline {
                bail!("{} did not answer at {url} within {timeout:?}; its log: {}", process.name, log.display());
            }
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
    }
}

impl Drop for Processes {
    fn drop(&mut self) {
        for mut process in self.0.drain(..).rev() {
            process.stop();
        }
    }
}

/// Starts `command` in a process group of its own with its output in `log`, tied to this
/// process (killed if it dies). The previous run's log, if any, is kept beside it as
/// `NAME.previous.log`: after a crash and a restart it tells what happened.
pub fn spawn_logged(mut command: Command, log: &Path) -> Result<Box<dyn ChildWrapper>> {
    if log.exists() {
        let previous = log.with_extension("previous.log");
        std::fs::rename(log, &previous)
            .with_context(|| format!("moving {} to {}", log.display(), previous.display()))?;
    }
    let file = std::fs::File::create(log).with_context(|| format!("creating {}", log.display()))?;
    command.stdin(Stdio::null()).stdout(file.try_clone()?).stderr(file);
    raft_local_cluster::tie_to_parent(&mut command);
    let program = command.get_program().to_string_lossy().to_string();
    CommandWrap::from(command).wrap(ProcessGroup::leader()).spawn().with_context(|| format!("starting {program}"))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test]
    async fn a_killed_process_takes_its_descendants_along() {
        let dir = tempfile::tempdir().expect("a temporary dir");
        let log = dir.path().join("sh.log");
        // A child in a process group of its own, as cargo lambda watch starts the functions.
        let mut command = Command::new("sh");
        command.args(["-c", "setsid sleep 600 & echo $!; wait"]);
        let mut processes = Processes::default();
        processes.push("sh", spawn_logged(command, &log).expect("sh starts"), Stop::Kill);
        let deadline = Instant::now() + Duration::from_secs(10);
        let grandchild: i32 = loop {
            if let Some(pid) = std::fs::read_to_string(&log).ok().and_then(|t| t.trim().parse().ok()) {
                break pid;
            }
            assert!(Instant::now() < deadline, "the shell printed no pid");
            tokio::time::sleep(Duration::from_millis(20)).await;
        };
        let alive = |pid: i32| {
            std::fs::read_to_string(format!("/proc/{pid}/stat"))
                .is_ok_and(|stat| stat.rsplit_once(')').is_some_and(|(_, rest)| !rest.trim_start().starts_with('Z')))
        };
        assert!(alive(grandchild));
        drop(processes);
        let deadline = Instant::now() + Duration::from_secs(10);
        while alive(grandchild) {
            assert!(Instant::now() < deadline, "the grandchild outlived the stop");
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
    }

    #[tokio::test]
    async fn the_previous_log_is_kept() {
        let dir = tempfile::tempdir().expect("a temporary dir");
        let log = dir.path().join("echo.log");
        for word in ["first", "second"] {
            let mut command = Command::new("echo");
            command.arg(word);
            let mut child = spawn_logged(command, &log).expect("echo starts");
            child.wait().expect("echo ends");
        }
        assert_eq!(std::fs::read_to_string(&log).expect("the log").trim(), "second");
        assert_eq!(std::fs::read_to_string(dir.path().join("echo.previous.log")).expect("the old log").trim(), "first");
    }
}
