//! How containers reach the services the embedded default runs on this machine's loopback.
//!
//! In a container 127.0.0.1 is the container itself, and the embedded default listens on
//! 127.0.0.1 only. So each service a container needs is relayed onto Docker's default bridge's
//! gateway address: the host's, which the host and its containers reach (from their own networks
//! too) and the outside network does not.

use std::collections::BTreeMap;
use std::net::{IpAddr, Ipv4Addr, SocketAddr};
use std::process::Command;

use anyhow::{Context, Result, bail};
use tokio::net::{TcpListener, TcpStream};
use tokio_util::task::AbortOnDropHandle;

/// Where the embedded default's services listen, as URLs name them.
const LOOPBACK_URL: &str = "http://127.0.0.1:";
/// The same, as a user may give it (`--otlp-endpoint http://localhost:4318`).
const LOCALHOST_URL: &str = "http://localhost:";

/// The relays made so far; dropping them stops them.
pub struct BridgeRelays {
    bridge: IpAddr,
    relayed: BTreeMap<u16, SocketAddr>,
    tasks: Vec<AbortOnDropHandle<()>>,
}

impl BridgeRelays {
    /// Finds the bridge; fails where there is no Docker engine.
    pub fn new() -> Result<Self> {
        Ok(Self { bridge: bridge_gateway()?, relayed: BTreeMap::new(), tasks: Vec::new() })
    }

    /// `value` (a URL or a comma-separated list) with each `http://127.0.0.1:PORT` (or
    /// `http://localhost:PORT`) replaced by a relay on the bridge, made on first use of its port.
    pub async fn rewrite(&mut self, value: &str) -> Result<String> {
        let value = &value.replace(LOCALHOST_URL, LOOPBACK_URL);
        for port in loopback_ports(value) {
            if let std::collections::btree_map::Entry::Vacant(entry) = self.relayed.entry(port) {
                let (address, task) = relay(self.bridge, SocketAddr::from(([127, 0, 0, 1], port))).await?;
                entry.insert(address);
                self.tasks.push(task);
            }
        }
        Ok(rewrite(value, &self.relayed))
    }
}

/// Whether this machine's containers can reach it: a Docker engine whose bridge address is the
/// host's.
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

/// The ports of every `http://127.0.0.1:PORT` in `value`.
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
async fn relay(ip: IpAddr, target: SocketAddr) -> Result<(SocketAddr, AbortOnDropHandle<()>)> {
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
    Ok((address, AbortOnDropHandle::new(task)))
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

    /// Needs a Docker engine, as `sam local` and the containers do.
    #[tokio::test]
    async fn a_relay_on_the_bridge_reaches_a_service_on_loopback_by_either_name() {
        let service = TcpListener::bind(("127.0.0.1", 0)).await.unwrap();
        let port = service.local_addr().unwrap().port();
        let mut relays = BridgeRelays::new().expect("a Docker engine's bridge");
        let by_ip = relays.rewrite(&format!("http://127.0.0.1:{port}/v1")).await.unwrap();
        let by_name = relays.rewrite(&format!("http://localhost:{port}/v1")).await.unwrap();
        assert_eq!(by_ip, by_name, "one relay for both names");
        let relayed = by_ip.trim_start_matches("http://").trim_end_matches("/v1");
        assert!(relayed.starts_with(&relays.bridge.to_string()), "{relayed}");
        let _client = TcpStream::connect(relayed).await.expect("the relay listens on the bridge");
        service.accept().await.expect("and connects through to the service");
    }

    #[test]
    fn the_bridge_gateway_is_the_given_one_or_the_subnets_first_address() {
        assert_eq!(gateway_of("172.17.0.0/16="), Some(IpAddr::from([172, 17, 0, 1])));
        assert_eq!(gateway_of("172.18.0.0/16=172.18.0.254"), Some(IpAddr::from([172, 18, 0, 254])));
        assert_eq!(gateway_of("fd00::/64="), None);
    }
}
