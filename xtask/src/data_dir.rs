//! Where a stack or a deployment keeps its data and logs: a folder the user names, kept, or a
//! temporary one removed with it.

use std::path::PathBuf;

use anyhow::{Context, Result};

pub struct DataDir {
    pub path: PathBuf,
    /// `logs/` in it, created.
    pub logs: PathBuf,
    temporary: Option<tempfile::TempDir>,
}

impl DataDir {
    /// `kept`, or a new temporary folder named `PREFIX…` when `None`.
    pub fn open(kept: Option<PathBuf>, prefix: &str) -> Result<Self> {
        let (path, temporary) = match kept {
            Some(path) => (path, None),
            None => {
                let temporary = tempfile::Builder::new().prefix(prefix).tempdir().context("a temporary data dir")?;
                (temporary.path().to_path_buf(), Some(temporary))
            }
        };
        let logs = path.join("logs");
        std::fs::create_dir_all(&logs).with_context(|| format!("creating {}", logs.display()))?;
        Ok(Self { path, logs, temporary })
    }

    /// Whether it outlives this run (state worth saving and restoring goes only there).
    pub fn is_kept(&self) -> bool {
        self.temporary.is_none()
    }
}
