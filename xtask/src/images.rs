//! `cargo xtask images`: the project's container images, built here with nothing pulled. Each is
//! `FROM scratch` with its binaries and exactly the shared libraries `ldd` says they link, so no
//! base image or registry is needed.

use std::path::{Path, PathBuf};
use std::process::Command;

use anyhow::{Context, Result, bail};

/// The books database's node image; `raft-cluster/compose.yaml` runs it.
pub const RAFT_NODE_IMAGE: &str = "bookstore/raft-node:latest";
/// etcd from Debian's `etcd-server`, the anchor of `cargo xtask bench raft`.
pub const ETCD_IMAGE: &str = "bookstore/etcd:latest";
/// Where Debian's `etcd-server` puts etcd.
const ETCD_BINARY: &str = "/usr/bin/etcd";
/// The Lambda base image `sam local` builds its `provided.al2023` x86_64 images on; with
/// `--skip-pull-image` it takes this local one.
pub const LAMBDA_BASE_IMAGE: &str = "public.ecr.aws/lambda/provided:al2023-x86_64";
/// Debian's `busybox-static`: the shell and tools the SAM CLI's image build runs (`sh`, `mv`,
/// `chmod`, `cp`, `rm`).
const BUSYBOX_BINARY: &str = "/bin/busybox";
/// Debian's CA bundle (`ca-certificates`).
const CA_CERTIFICATES: &str = "/etc/ssl/certs/ca-certificates.crt";
/// The commands the Lambda base image links to busybox.
const BUSYBOX_COMMANDS: [&str; 8] = ["sh", "mv", "chmod", "cp", "rm", "mkdir", "ls", "cat"];
/// The glibc a `provided.al2023` function may link (a `bootstrap` built by cargo-lambda links a
/// subset), with the loader; the Lambda image carries them as Amazon Linux does.
const LAMBDA_LIBRARIES: [&str; 7] = [
    "/lib/x86_64-linux-gnu/libc.so.6",
    "/lib/x86_64-linux-gnu/libm.so.6",
    "/lib/x86_64-linux-gnu/libpthread.so.0",
    "/lib/x86_64-linux-gnu/libdl.so.2",
    "/lib/x86_64-linux-gnu/librt.so.1",
    "/lib/x86_64-linux-gnu/libgcc_s.so.1",
    "/lib64/ld-linux-x86-64.so.2",
];

/// One image: a binary at `/NAME` on an empty root, with Dockerfile lines after the copy.
struct ImageSpec<'a> {
    tag: &'a str,
    binary: &'a Path,
    dockerfile_tail: &'a str,
}

/// Builds every image; the etcd one only where Debian's `etcd-server` is installed.
pub fn run() -> Result<()> {
    crate::containers::check_docker()?;
    build_raft_node()?;
    build_lambda_base()?;
    if Path::new(ETCD_BINARY).exists() {
        build(&ImageSpec {
            tag: ETCD_IMAGE,
            binary: Path::new(ETCD_BINARY),
            dockerfile_tail: "EXPOSE 2379 2380\nENTRYPOINT [\"/etcd\"]\n",
        })?;
    } else {
        eprintln!("skipped {ETCD_IMAGE}: {ETCD_BINARY} is missing (apt-get install etcd-server)");
    }
    let secret = crate::containers::compose_secret_file()?;
    eprintln!("the compose cluster's secret is in {}", secret.display());
    Ok(())
}

/// Builds the raft-node image from the release binary.
pub fn build_raft_node() -> Result<()> {
    let binary = crate::build_release("raft-node")?;
    build(&ImageSpec {
        tag: RAFT_NODE_IMAGE,
        binary: &binary,
        dockerfile_tail: concat!(
            "VOLUME /data\n",
            "EXPOSE 7001\n",
            "HEALTHCHECK --interval=2s --timeout=3s --start-period=5s --retries=3 CMD [\"/raft-node\", \"health\", \"127.0.0.1:7001\"]\n",
            "ENTRYPOINT [\"/raft-node\"]\n",
        ),
    })
}

/// Builds the Lambda base image: the runtime's folders, busybox for the SAM CLI's build steps,
/// and glibc for the functions. The Runtime Interface Emulator is not in it: the SAM CLI adds its
/// own, which finds `/var/task/bootstrap` by itself.
pub fn build_lambda_base() -> Result<()> {
    let busybox = Path::new(BUSYBOX_BINARY);
    if !busybox.exists() || !linked_libraries(busybox)?.is_empty() {
        bail!("{BUSYBOX_BINARY} is missing or not static: apt-get install busybox-static");
    }
    let context = image_context("lambda-provided")?;
    let rootfs = context.join("rootfs");
    for dir in ["tmp", "var/task", "var/runtime", "opt"] {
        std::fs::create_dir_all(rootfs.join(dir))?;
    }
    copy_into(&rootfs, busybox, busybox)?;
    for command in BUSYBOX_COMMANDS {
        std::os::unix::fs::symlink("busybox", rootfs.join("bin").join(command))?;
    }
    for library in LAMBDA_LIBRARIES {
        copy_into(&rootfs, Path::new(library), Path::new(library))?;
    }
    // The CA certificates, where Amazon Linux keeps them, for a function that calls out over TLS.
    let certificates = Path::new(CA_CERTIFICATES);
    if certificates.exists() {
        copy_into(&rootfs, certificates, Path::new("/etc/pki/tls/certs/ca-bundle.crt"))?;
    }
    write_dockerfile(
        &context,
        concat!(
            "ENV LANG=en_US.UTF-8 TZ=:/etc/localtime PATH=/var/lang/bin:/usr/local/bin:/usr/bin/:/bin:/opt/bin ",
            "LD_LIBRARY_PATH=/var/lang/lib:/lib64:/usr/lib64:/var/runtime:/var/runtime/lib:/var/task:/var/task/lib:/opt/lib ",
            "LAMBDA_TASK_ROOT=/var/task LAMBDA_RUNTIME_DIR=/var/runtime\n",
            "WORKDIR /var/task\n",
        ),
    )?;
    docker_build(LAMBDA_BASE_IMAGE, &context)
}

fn build(spec: &ImageSpec) -> Result<()> {
    let name = spec.binary.file_name().and_then(|n| n.to_str()).context("the binary has no file name")?;
    let context = image_context(name)?;
    let rootfs = context.join("rootfs");
    for dir in ["etc", "tmp", "data"] {
        std::fs::create_dir_all(rootfs.join(dir))?;
    }
    copy_into(&rootfs, spec.binary, Path::new(&format!("/{name}")))?;
    for library in linked_libraries(spec.binary)? {
        copy_into(&rootfs, &library, &library)?;
    }
    // Host names (the other nodes, by their container names) from Docker's /etc/hosts and DNS.
    std::fs::write(rootfs.join("etc/nsswitch.conf"), "hosts: files dns\n")?;
    write_dockerfile(&context, spec.dockerfile_tail)?;
    docker_build(spec.tag, &context)
}

/// An empty build context for the image `name`, in `target/images/`.
fn image_context(name: &str) -> Result<PathBuf> {
    let context = crate::workspace_root().join("target/images").join(name);
    if context.exists() {
        std::fs::remove_dir_all(&context).with_context(|| format!("clearing {}", context.display()))?;
    }
    std::fs::create_dir_all(context.join("rootfs"))?;
    Ok(context)
}

/// A Dockerfile that puts `rootfs/` on an empty root, then `tail`.
fn write_dockerfile(context: &Path, tail: &str) -> Result<()> {
    let dockerfile = context.join("Dockerfile");
    std::fs::write(&dockerfile, format!("FROM scratch\nCOPY rootfs/ /\n{tail}"))
        .with_context(|| format!("writing {}", dockerfile.display()))
}

fn docker_build(tag: &str, context: &Path) -> Result<()> {
    eprintln!("building image {tag}...");
    let output = Command::new("docker")
        .args(["build", "--quiet", "--tag", tag])
        .arg(context)
        // The classic builder: BuildKit would look for a registry even for `FROM scratch` on
        // some engines.
        .env("DOCKER_BUILDKIT", "0")
        .output()
        .context("running docker build")?;
    if !output.status.success() {
        bail!("docker build of {tag} failed: {}", String::from_utf8_lossy(&output.stderr).trim());
    }
    eprintln!("built {tag}");
    Ok(())
}

/// Copies `from` to `at` inside `rootfs` (an absolute path in the image), following symlinks.
fn copy_into(rootfs: &Path, from: &Path, at: &Path) -> Result<()> {
    let target = rootfs.join(at.strip_prefix("/").unwrap_or(at));
    if let Some(parent) = target.parent() {
        std::fs::create_dir_all(parent)?;
    }
    std::fs::copy(from, &target).with_context(|| format!("copying {} into the image", from.display()))?;
    Ok(())
}

/// The shared libraries `binary` loads, the dynamic loader included, as `ldd` lists them.
fn linked_libraries(binary: &Path) -> Result<Vec<PathBuf>> {
    let output = Command::new("ldd").arg(binary).output().context("running ldd")?;
    let text = String::from_utf8_lossy(&output.stdout);
    if !output.status.success() {
        // A static binary: "not a dynamic executable".
        return Ok(Vec::new());
    }
    Ok(parse_ldd(&text))
}

fn parse_ldd(text: &str) -> Vec<PathBuf> {
    text.lines()
        .filter_map(|line| {
            let line = line.trim();
            let path = match line.split_once("=>") {
                Some((_, right)) => right.trim(),
                None => line,
            };
            let path = path.split(" (").next()?.trim();
            path.starts_with('/').then(|| PathBuf::from(path))
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ldd_output_gives_every_library_and_the_loader() {
        let text = "\tlinux-vdso.so.1 (0x00007ffd)\n\tlibgcc_s.so.1 => /lib/x86_64-linux-gnu/libgcc_s.so.1 (0x00007f96)\n\tlibc.so.6 => /lib/x86_64-linux-gnu/libc.so.6 (0x00007f96)\n\t/lib64/ld-linux-x86-64.so.2 (0x00007f96)\n";
        let libraries = parse_ldd(text);
        assert_eq!(
            libraries,
            [
                PathBuf::from("/lib/x86_64-linux-gnu/libgcc_s.so.1"),
                PathBuf::from("/lib/x86_64-linux-gnu/libc.so.6"),
                PathBuf::from("/lib64/ld-linux-x86-64.so.2"),
            ]
        );
    }
}
