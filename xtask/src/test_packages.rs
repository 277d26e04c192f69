//! The browser of the storefront's test: Debian's Chromium and its WebDriver (no browser is ever
//! downloaded at run time).

use std::path::Path;
use std::process::Command;

use anyhow::{Context, Result, bail};

pub const CHROMIUM: &str = "/usr/bin/chromium";
pub const CHROMEDRIVER: &str = "/usr/bin/chromedriver";
const PACKAGES: [&str; 2] = ["chromium", "chromium-driver"];

fn installed() -> bool {
    Path::new(CHROMIUM).exists() && Path::new(CHROMEDRIVER).exists()
}

/// Installs Debian's `chromium` and `chromium-driver` when they are missing and this runs as root
/// on a machine with apt-get; elsewhere says what to install.
pub fn ensure() -> Result<()> {
    if installed() {
        return Ok(());
    }
    let root = nix::unistd::geteuid().is_root();
    let apt = Command::new("apt-get").arg("--version").output().is_ok_and(|o| o.status.success());
    if !(root && apt) {
        bail!(
            "the browser test needs Debian's Chromium: run `sudo apt-get install {}` (or your system's chromium and chromedriver at {CHROMIUM} and {CHROMEDRIVER})",
            PACKAGES.join(" ")
        );
    }
    eprintln!("installing Debian's {} for the browser test...", PACKAGES.join(" and "));
    for args in
        [&["update", "-qq"][..], &[&["install", "-y", "-qq", "--no-install-recommends"][..], &PACKAGES[..]].concat()]
    {
        let status = Command::new("apt-get")
            .args(args)
            .env("DEBIAN_FRONTEND", "noninteractive")
            .status()
            .with_context(|| format!("running apt-get {}", args.join(" ")))?;
        if !status.success() {
            bail!("apt-get {} failed ({status})", args.join(" "));
        }
    }
    if !installed() {
        bail!("apt-get installed {} but {CHROMIUM} or {CHROMEDRIVER} is still missing", PACKAGES.join(" "));
    }
    Ok(())
}
