//! `cargo xtask bench checkout`: checkouts through the embedded default's gateway at several
//! client counts: latency, throughput, CPU per checkout of our own processes, and where the time
//! goes (from the checkout function's `Server-Timing` header).

use std::collections::BTreeMap;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use anyhow::{Result, bail};
use serde_json::json;

use super::load::drive;
use crate::stack::{AwsEmulator, Stack, StackOptions, TelemetryTarget};

#[derive(clap::Args)]
pub struct CheckoutBench {
    /// The AWS emulator to measure on.
    #[arg(long, env = "BOOKSTORE_AWS", value_enum, default_value_t = AwsEmulator::Ministack)]
    aws: AwsEmulator,
    /// Seconds each measurement runs.
    #[arg(long, default_value_t = 5.0)]
    seconds: f64,
    /// Concurrent clients, comma-separated.
    #[arg(long, value_delimiter = ',', default_values_t = [1, 8, 32])]
    clients: Vec<usize>,
    /// Run with no telemetry exported (the baseline of its cost); by default every process
    /// sends traces and metrics to the stack's collector, as `cargo xtask up` runs.
    #[arg(long)]
    no_telemetry: bool,
}

/// Books to buy, one per checkout in turn: stock never runs out during a run (the executors are
/// stopped), and carts differ.
const BOOKS: [&str; 8] =
    ["dune", "emma", "the-hobbit", "foundation", "frankenstein", "neuromancer", "solaris", "cosmos"];

/// The seed's own Python/gRPC bookstore on a machine like this one (DESIGN.md).
const SEED_P50_MS_AT_1: f64 = 15.0;
const SEED_THROUGHPUT_AT_8: f64 = 150.0;
const SEED_CPU_MS: f64 = 12.0;

pub async fn run(options: CheckoutBench) -> Result<()> {
    if options.seconds <= 0.0 || options.clients.contains(&0) {
        bail!("--seconds and every --clients value must be positive");
    }
    eprintln!("starting the embedded default on {} (release build)...", options.aws.name());
    let telemetry = if options.no_telemetry { TelemetryTarget::Off } else { TelemetryTarget::Collector };
    eprintln!("telemetry: {telemetry:?}");
    let options_for_stack = StackOptions { release: true, telemetry, ..StackOptions::ephemeral(options.aws) };
    let mut stack = Stack::start(options_for_stack).await?;
    // The checkout alone: executing the orders would share moto with it (`bench orders` measures
    // both together).
    stack.stop_pollers().await;
    let url = Arc::new(format!("{}/checkout", stack.gateway_url));
    // Warm every instance's connections.
    drive(8, Duration::from_secs(1), checkout(url.clone(), Arc::default())).await?;

    println!(
        "checkouts through the gateway of the embedded default on {} ({} cores); {:.1} s per point",
        options.aws.name(),
        cores(),
        options.seconds
    );
    println!(
        "{:>7} {:>9} {:>8} {:>8} {:>7} {:>14} {:>14}",
        "clients", "orders/s", "p50 ms", "p99 ms", "errors", "our CPU ms/op", "emulators ms/op"
    );
    let mut hops_at = BTreeMap::new();
    let mut first_p50 = None;
    let mut throughput_at_8 = None;
    let mut cpu_at_1 = None;
    for &clients in &options.clients {
        let timings = Arc::new(Mutex::new(Vec::new()));
        let before = cpu_seconds();
        let sample =
            drive(clients, Duration::from_secs_f64(options.seconds), checkout(url.clone(), timings.clone())).await?;
        let after = cpu_seconds();
        let ops = sample.ok.max(1) as f64;
        let ours = (after.ours - before.ours) / ops * 1000.0;
        let emulators = (after.emulators - before.emulators) / ops * 1000.0;
        println!(
            "{:>7} {:>9.1} {:>8.2} {:>8.2} {:>7} {:>14.2} {:>14.2}",
            clients,
            sample.throughput(),
            sample.percentile_ms(0.5),
            sample.percentile_ms(0.99),
            sample.errors,
            ours,
            emulators
        );
        first_p50.get_or_insert(sample.percentile_ms(0.5));
        if clients == 1 {
            cpu_at_1 = Some(ours);
        }
        if clients == 8 {
            throughput_at_8 = Some(sample.throughput());
        }
        let recorded = timings.lock().map(|t| t.clone()).unwrap_or_default();
        hops_at.insert(clients, (mean_hops(&recorded), sample.percentile_ms(0.5)));
    }

    println!("\nwhere a checkout's time goes (mean ms per checkout; calls that run side by side each count)");
    println!(
        "{:>7} {:>8} {:>8} {:>8} {:>8} {:>8} {:>8} {:>8} {:>8}",
        "clients", "gateway", "checkout", "books-db", "tv", "fraud", "suggest", "dynamodb", "sqs"
    );
    for (clients, (hops, _)) in &hops_at {
        let get = |name: &str| hops.get(name).copied().unwrap_or(f64::NAN);
        println!(
            "{:>7} {:>8.2} {:>8.2} {:>8.2} {:>8.2} {:>8.2} {:>8.2} {:>8.2} {:>8.2}",
            clients,
            get("client") - get("total"),
            get("total"),
            get("books-db"),
            get("transaction-verification"),
            get("fraud-detection"),
            get("suggestions"),
            get("dynamodb"),
            get("sqs")
        );
    }
    println!("\nagainst the seed's Python bookstore (DESIGN.md): ");
    if let Some(p50) = first_p50 {
        println!("  p50 at 1 client: {p50:.1} ms vs {SEED_P50_MS_AT_1} ms ({:.2}x)", p50 / SEED_P50_MS_AT_1);
    }
    if let Some(t) = throughput_at_8 {
        println!("  throughput at 8 clients: {t:.0}/s vs {SEED_THROUGHPUT_AT_8}/s ({:.2}x)", t / SEED_THROUGHPUT_AT_8);
    }
    if let Some(cpu) = cpu_at_1 {
        println!("  our CPU per checkout: {cpu:.2} ms vs {SEED_CPU_MS} ms ({:.2}x)", cpu / SEED_CPU_MS);
    }
    drop(stack);
    Ok(())
}

fn cores() -> usize {
    std::thread::available_parallelism().map_or(0, |n| n.get())
}

/// One checkout per call; records the client-side latency and the function's Server-Timing.
fn checkout(
    url: Arc<String>,
    timings: Arc<Mutex<Vec<BTreeMap<String, f64>>>>,
) -> impl Fn(reqwest::Client, usize, u64) -> std::pin::Pin<Box<dyn Future<Output = bool> + Send>> + Send + Sync + 'static
{
    move |http, client, i| {
        let url = url.clone();
        let timings = timings.clone();
        Box::pin(async move {
            let body = order_body(BOOKS[client.wrapping_add(i as usize) % BOOKS.len()]);
            let started = std::time::Instant::now();
            let Ok(answer) = http.post(url.as_str()).body(body.to_string()).send().await else { return false };
            let header = answer.headers().get("server-timing").and_then(|v| v.to_str().ok()).map(str::to_string);
            let Ok(text) = answer.text().await else { return false };
            let elapsed = started.elapsed().as_secs_f64() * 1000.0;
            if !text.contains("Order Approved") {
                return false;
            }
            let mut hops = parse_server_timing(header.as_deref().unwrap_or_default());
            hops.insert("client".into(), elapsed);
            if let Ok(mut all) = timings.lock() {
                all.push(hops);
            }
            true
        })
    }
}

/// A checkout that is approved: one copy of `book`.
pub(super) fn order_body(book: &str) -> serde_json::Value {
    json!({
        "user": {"name": "Ada Lovelace", "contact": "ada.lovelace@example.org"},
        "creditCard": {"number": "4111 1111 1111 1111", "expirationDate": "12/30", "cvv": "123"},
        "items": [{"bookId": book, "quantity": 1}],
        "billingAddress": {"street": "Narva mnt 18", "city": "Tartu", "zip": "51009", "country": "Estonia"},
        "termsAccepted": true
    })
}

fn parse_server_timing(header: &str) -> BTreeMap<String, f64> {
    header
        .split(',')
        .filter_map(|metric| {
            let (name, duration) = metric.trim().split_once(";dur=")?;
            Some((name.to_string(), duration.parse().ok()?))
        })
        .collect()
}

fn mean_hops(recorded: &[BTreeMap<String, f64>]) -> BTreeMap<String, f64> {
    let mut sums: BTreeMap<String, f64> = BTreeMap::new();
    for hops in recorded {
        for (name, ms) in hops {
            *sums.entry(name.clone()).or_default() += ms;
        }
    }
    let n = recorded.len().max(1) as f64;
    sums.into_iter().map(|(name, sum)| (name, sum / n)).collect()
}

/// CPU seconds so far of our processes (the functions and the books database) and of the
/// emulators (MiniStack or moto server, cargo lambda watch). The gateway runs inside this process, with the
/// load generator, and is counted in neither.
pub(super) struct CpuSeconds {
    pub ours: f64,
    pub emulators: f64,
}

pub(super) fn cpu_seconds() -> CpuSeconds {
    // Process names are cut to 15 characters.
    const OURS: [&str; 10] = [
        "checkout",
        "transaction-ver",
        "fraud-detection",
        "suggestions",
        "catalog",
        "orders",
        "order-executor",
        "payment",
        "system-status",
        "raft-node",
    ];
    let ticks = 100.0; // sysconf(_SC_CLK_TCK) on Linux
    let mut total = CpuSeconds { ours: 0.0, emulators: 0.0 };
    for entry in std::fs::read_dir("/proc").into_iter().flatten().flatten() {
        let Ok(stat) = std::fs::read_to_string(entry.path().join("stat")) else { continue };
        // comm is in parentheses and may hold spaces; the fields after it are space-separated.
        let (Some(open), Some(close)) = (stat.find('('), stat.rfind(')')) else { continue };
        let comm = &stat[open + 1..close];
        let fields: Vec<&str> = stat[close + 2..].split(' ').collect();
        let (Some(utime), Some(stime)) = (fields.get(11), fields.get(12)) else { continue };
        let seconds = (utime.parse::<f64>().unwrap_or(0.0) + stime.parse::<f64>().unwrap_or(0.0)) / ticks;
        if OURS.contains(&comm) {
            total.ours += seconds;
        } else if comm.starts_with("moto")
            || comm.starts_with("ministack")
            || comm.starts_with("cargo-lambda")
            || comm == "python"
            || comm == "python3"
        {
            total.emulators += seconds;
        }
    }
    total
}
