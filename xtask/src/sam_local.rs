//! What `sam local invoke` and `sam local start-api` need from a running embedded default.
//!
//! The SAM CLI runs each function in a container on Docker's default bridge, where 127.0.0.1 is
//! the container itself, while the embedded default listens on 127.0.0.1 only. So each of its
//! services that a function reaches (the AWS emulator, `cargo lambda watch`, the books database's
//! nodes) is relayed onto the bridge's gateway address, which the host and its containers reach
//! and the network does not; and the SAM CLI's `--env-vars` file gives the functions those
//! addresses. The SAM CLI sets only variables the template declares for a function, which is why
//! the endpoints are template variables (`EMULATOR_ENDPOINT_URL`, `LAMBDA_ENDPOINT_URL`).

use std::collections::BTreeMap;
use std::net::{IpAddr, Ipv4Addr, SocketAddr};
use std::path::{Path, PathBuf};
use std::process::Command;

use anyhow::{Context, Result, bail};
use tokio::net::{TcpListener, TcpStream};
use tokio::task::JoinHandle;

/// Where the embedded default's services listen, as the functions' environment names them.
const LOOPBACK_URL: &str = "http://127.0.0.1:";

/// The relays of a running stack and the `--env-vars` file that names them.
pub struct SamLocal {
    /// The SAM CLI's `--env-vars` file: `{"Parameters": {NAME: value}}`, for every function.
    pub env_vars_file: PathBuf,
    relays: Vec<JoinHandle<()>>,
}

impl SamLocal {
    /// Relays every `http://127.0.0.1:PORT` that `function_env` names onto the Docker bridge and
    /// writes `env_vars_file` with the relayed addresses.
    pub async fn start(function_env: &BTreeMap<String, String>, env_vars_file: &Path) -> Result<Self> {
        let bridge = bridge_gateway()?;
        let mut relays = Vec::new();
        let mut relayed: BTreeMap<u16, SocketAddr> = BTreeMap::new();
        let mut variables = serde_json::Map::new();
        for (name, value) in function_env {
            for port in loopback_ports(value) {
                if let std::collections::btree_map::Entry::Vacant(entry) = relayed.entry(port) {
                    let (address, task) = relay(bridge, SocketAddr::from(([127, 0, 0, 1], port))).await?;
                    entry.insert(address);
                    relays.push(task);
                }
            }
            variables.insert(name.clone(), rewrite(value, &relayed).into());
        }
        let file = serde_json::json!({ "Parameters": variables });
        std::fs::write(env_vars_file, serde_json::to_string_pretty(&file)?)
            .with_context(|| format!("writing {}", env_vars_file.display()))?;
        Ok(Self { env_vars_file: env_vars_file.to_path_buf(), relays })
    }
}

impl Drop for SamLocal {
    fn drop(&mut self) {
        for relay in &self.relays {
            relay.abort();
        }
    }
}

/// Whether this machine can serve `sam local`: a Docker engine whose bridge address is the host's.
pub fn available() -> bool {
    bridge_gateway().is_ok_and(|ip| std::net::TcpListener::bind((ip, 0)).is_ok())
}

/// The host's address on Docker's default bridge network: its gateway, which the engine often
/// leaves out of the network's configuration, where it is the subnet's first address.
pub fn bridge_gateway() -> Result<IpAddr> {
    let output = Command::new("docker")
        .args(["network", "inspect", "bridge", "--format", "{{range .IPAM.Config}}{{.Subnet}}={{.Gateway}} {{end}}"])
        .output()
        .context("running docker network inspect bridge")?;
    if !output.status.success() {
        bail!(
            "docker network inspect bridge failed: {}",
            String::from_utf8_lossy(&output.stderr).lines().next().unwrap_or("").trim()
        );
    }
    let text = String::from_utf8_lossy(&output.stdout);
    text.split_whitespace()
        .find_map(gateway_of)
        .with_context(|| format!("Docker's bridge network has no IPv4 subnet (it says {:?})", text.trim()))
}

/// `SUBNET=GATEWAY` (the gateway may be empty) to the gateway's IPv4 address.
fn gateway_of(config: &str) -> Option<IpAddr> {
    let (subnet, gateway) = config.split_once('=')?;
    if let Ok(gateway) = gateway.parse::<Ipv4Addr>() {
        return Some(gateway.into());
    }
    let network: Ipv4Addr = subnet.split_once('/')?.0.parse().ok()?;
    Some(Ipv4Addr::from(u32::from(network) + 1).into())
}

/// The ports of every `http://127.0.0.1:PORT` in `value` (a URL or a comma-separated list).
fn loopback_ports(value: &str) -> Vec<u16> {
    value
        .split(LOOPBACK_URL)
        .skip(1)
        .filter_map(|rest| rest.split(|c: char| !c.is_ascii_digit()).next()?.parse().ok())
        .collect()
}

/// `value` with each `http://127.0.0.1:PORT` replaced by its relay.
fn rewrite(value: &str, relayed: &BTreeMap<u16, SocketAddr>) -> String {
    let mut parts = value.split(LOOPBACK_URL);
    let mut out = parts.next().unwrap_or_default().to_string();
    for rest in parts {
        let digits = rest.find(|c: char| !c.is_ascii_digit()).unwrap_or(rest.len());
        match rest[..digits].parse::<u16>().ok().and_then(|port| relayed.get(&port)) {
            Some(address) => out.push_str(&format!("http://{address}{}", &rest[digits..])),
            None => out.push_str(&format!("{LOOPBACK_URL}{rest}")),
        }
    }
    out
}

/// Listens on a free port at `ip` and copies each connection to `target` and back.
async fn relay(ip: IpAddr, target: SocketAddr) -> Result<(SocketAddr, JoinHandle<()>)> {
    let listener = TcpListener::bind((ip, 0)).await.with_context(|| format!("listening on {ip} for {target}"))?;
    let address = listener.local_addr()?;
    let task = tokio::spawn(async move {
        while let Ok((mut inbound, _)) = listener.accept().await {
            tokio::spawn(async move {
                // A refused or broken connection ends as it would have without the relay.
                if let Ok(mut outbound) = TcpStream::connect(target).await {
                    let _ = tokio::io::copy_bidirectional(&mut inbound, &mut outbound).await;
                }
            });
        }
    });
    Ok((address, task))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_loopback_url_of_a_value_is_found_and_rewritten() {
        let value = "http://127.0.0.1:7001,http://127.0.0.1:7002/x,https://example.org:7003";
        assert_eq!(loopback_ports(value), [7001, 7002]);
        let relayed = BTreeMap::from([(7001, "172.17.0.1:40001".parse().unwrap())]);
        assert_eq!(
            rewrite(value, &relayed),
            "http://172.17.0.1:40001,http://127.0.0.1:7002/x,https://example.org:7003"
        );
        assert_eq!(rewrite("OrdersTable", &relayed), "OrdersTable");
    }

    #[test]
    fn the_bridge_gateway_is_the_given_one_or_the_subnets_first_address() {
        assert_eq!(gateway_of("172.17.0.0/16="), Some(IpAddr::from([172, 17, 0, 1])));
        assert_eq!(gateway_of("172.18.0.0/16=172.18.0.254"), Some(IpAddr::from([172, 18, 0, 254])));
        assert_eq!(gateway_of("fd00::/64="), None);
    }
}
