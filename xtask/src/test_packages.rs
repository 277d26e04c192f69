//! The Debian packages the tests use from the system: Chromium and its WebDriver (the storefront's
//! browser test; no browser is ever downloaded at run time) and Prometheus (the embedded default's
//! metrics backend, which the dashboard and its test read).

use std::path::Path;
use std::process::Command;

use anyhow::{Context, Result, bail};

pub const CHROMIUM: &str = "/usr/bin/chromium";
pub const CHROMEDRIVER: &str = "/usr/bin/chromedriver";
pub const PROMETHEUS: &str = "/usr/bin/prometheus";

/// Each package and the file it brings.
const PACKAGES: [(&str, &str); 3] =
    [("chromium", CHROMIUM), ("chromium-driver", CHROMEDRIVER), ("prometheus", PROMETHEUS)];

fn missing() -> Vec<&'static str> {
    PACKAGES.iter().filter(|(_, file)| !Path::new(file).exists()).map(|(package, _)| *package).collect()
}

/// Installs the packages that are missing when this runs as root on a machine with apt-get;
/// elsewhere says what to install.
pub fn ensure() -> Result<()> {
    let missing = missing();
    if missing.is_empty() {
        return Ok(());
    }
    let root = nix::unistd::geteuid().is_root();
    let apt = Command::new("apt-get").arg("--version").output().is_ok_and(|o| o.status.success());
    if !(root && apt) {
        bail!(
            "the browser and metrics tests need Debian's packages: run `sudo apt-get install {}` (or your system's equivalents at {})",
            missing.join(" "),
            PACKAGES.iter().map(|(_, file)| *file).collect::<Vec<_>>().join(", ")
        );
    }
    eprintln!("installing Debian's {} for the tests...", missing.join(" and "));
    for args in
        [&["update", "-qq"][..], &[&["install", "-y", "-qq", "--no-install-recommends"][..], &missing[..]].concat()]
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
    let still = self::missing();
    if !still.is_empty() {
        bail!("apt-get ran but {} is still missing", still.join(" and "));
    }
    Ok(())
}
