//! `cargo xtask bench orders`: orders committed end to end (checkout → queue → executor →
//! two-phase commit → Raft) on the embedded default with its two executor slots, and the time
//! from approval to commit; then the executors alone, draining orders queued while they were
//! stopped. Times come from the orders' histories (millisecond timestamps).

use std::collections::{BTreeMap, HashSet};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant, SystemTime};

use anyhow::{Result, bail};
use aws_sdk_sqs::types::QueueAttributeName;
use serde_json::{Value, json};

use super::checkout::{cpu_seconds, order_body};
use super::load::{Sample, drive};
use crate::emulator::emulator_clients;
use crate::stack::{AwsEmulator, Stack, StackOptions};

#[derive(clap::Args)]
pub struct OrdersBench {
    /// The AWS emulator to measure on.
    #[arg(long, env = "BOOKSTORE_AWS", value_enum, default_value_t = AwsEmulator::Ministack)]
    aws: AwsEmulator,
    /// Seconds the shoppers check out for, in each part.
    #[arg(long, default_value_t = 10.0)]
    seconds: f64,
    /// Concurrent shoppers.
    #[arg(long, default_value_t = 8)]
    clients: usize,
}

const BOOKS: [&str; 4] = ["dune", "emma", "the-hobbit", "foundation"];

/// The seed's own bookstore commits about one order per second (DESIGN.md).
const SEED_COMMITS_PER_SECOND: f64 = 1.0;

pub async fn run(options: OrdersBench) -> Result<()> {
    if options.seconds <= 0.0 || options.clients == 0 {
        bail!("--seconds and --clients must be positive");
    }
    eprintln!("starting the embedded default on {} (release build)...", options.aws.name());
    let mut stack = Stack::start(StackOptions { release: true, ..StackOptions::ephemeral(options.aws) }).await?;
    let db = stack.books_db.client()?;
    for book in BOOKS {
        db.set(&format!("stock/{book}"), json!(1_000_000)).await?;
    }

    let (placed, ids) = place_orders(&stack, &options).await?;
    let histories = wait_for(&stack, &ids).await?;
    println!(
        "orders on the embedded default on {} (2 executor slots, {} shoppers, {:.1} s)",
        options.aws.name(),
        options.clients,
        options.seconds
    );
    println!("\nend to end, the executors running while shoppers check out:");
    println!("  approved: {} ({:.1}/s, {} errors)", ids.len(), placed.throughput(), placed.errors);
    let first = histories.values().filter_map(|h| h.approved).min_by(f64::total_cmp);
    let end_to_end = report(&histories, first, |h| Some(h.committed? - h.approved?));

    stack.stop_pollers().await;
    let (_, ids) = place_orders(&stack, &options).await?;
    let started = seconds_now();
    let cpu_before = cpu_seconds();
    stack.start_pollers();
    let histories = wait_for(&stack, &ids).await?;
    let cpu_after = cpu_seconds();
    println!("\nthe executors alone, draining {} orders queued while they were stopped:", ids.len());
    let alone = report(&histories, Some(started), |h| Some(h.committed? - h.executing?));
    let per_order = |before: f64, after: f64| (after - before) / ids.len().max(1) as f64 * 1000.0;
    println!(
        "  CPU per order: our processes {:.1} ms, the emulators {:.1} ms (the pollers run in this process, \
         in neither)",
        per_order(cpu_before.ours, cpu_after.ours),
        per_order(cpu_before.emulators, cpu_after.emulators)
    );

    println!(
        "\nagainst the seed's executors (about {SEED_COMMITS_PER_SECOND}/s, DESIGN.md): end to end {end_to_end:.1}x, \
         alone {alone:.1}x"
    );
    Ok(())
}

/// Shoppers check out for the configured time; answers the approved orders' ids.
async fn place_orders(stack: &Stack, options: &OrdersBench) -> Result<(Sample, Vec<String>)> {
    let url = Arc::new(format!("{}/checkout", stack.gateway_url));
    let ids = Arc::new(Mutex::new(Vec::new()));
    let collected = ids.clone();
    let sample = drive(options.clients, Duration::from_secs_f64(options.seconds), move |http, client, i| {
        let (url, ids) = (url.clone(), collected.clone());
        async move {
            let body = order_body(BOOKS[client.wrapping_add(i as usize) % BOOKS.len()]);
            let Ok(answer) = http.post(url.as_str()).body(body.to_string()).send().await else { return false };
            let Ok(answer) = answer.json::<Value>().await else { return false };
            match (answer["orderId"].as_str(), ids.lock()) {
                (Some(id), Ok(mut ids)) if answer["status"] == "Order Approved" => {
                    ids.push(id.to_string());
                    true
                }
                _ => false,
            }
        }
    })
    .await?;
    let ids = ids.lock().map(|ids| ids.clone()).unwrap_or_default();
    Ok((sample, ids))
}

/// Prints what happened to `histories`: outcomes, commits per second from `since` to the last
/// commit, and the p50/p99 of `latency`. Answers the commits per second.
fn report(histories: &BTreeMap<String, History>, since: Option<f64>, latency: impl Fn(&History) -> Option<f64>) -> f64 {
    let committed: Vec<&History> = histories.values().filter(|h| h.committed.is_some()).collect();
    let failed = histories.values().filter(|h| h.failed).count();
    let pending = histories.len() - committed.len() - failed;
    let last = committed.iter().filter_map(|h| h.committed).max_by(f64::total_cmp);
    let rate = match (since, last) {
        (Some(since), Some(last)) if last > since => committed.len() as f64 / (last - since),
        _ => f64::NAN,
    };
    let mut latencies: Vec<f64> = committed.iter().filter_map(|h| latency(h)).collect();
    latencies.sort_by(f64::total_cmp);
    let percentile = |p: f64| {
        let rank = ((latencies.len() as f64 * p).ceil() as usize).clamp(1, latencies.len().max(1));
        latencies.get(rank - 1).map_or(f64::NAN, |s| s * 1000.0)
    };
    println!("  committed: {}, failed: {failed}, still pending: {pending}", committed.len());
    println!("  committed per second: {rate:.1}");
    println!("  to commit: p50 {:.0} ms, p99 {:.0} ms", percentile(0.5), percentile(0.99));
    rate
}

/// An order's history: when it entered each state, in seconds since the epoch.
#[derive(Default)]
struct History {
    approved: Option<f64>,
    executing: Option<f64>,
    committed: Option<f64>,
    failed: bool,
}

/// Waits until the order queue is empty, then reads the orders table until every one of `ids`
/// is committed or failed (ten minutes at most). Asking the queue is cheap; scanning the table
/// while the executors run would cost moto more than the orders do.
async fn wait_for(stack: &Stack, ids: &[String]) -> Result<BTreeMap<String, History>> {
    let (dynamodb, sqs) = emulator_clients(&stack.aws_endpoint);
    let queue = stack.resources.get("OrderQueue").cloned().unwrap_or_default();
    let deadline = Instant::now() + Duration::from_secs(600);
    loop {
        let attributes = sqs
            .get_queue_attributes()
            .queue_url(&queue)
            .attribute_names(QueueAttributeName::ApproximateNumberOfMessages)
            .attribute_names(QueueAttributeName::ApproximateNumberOfMessagesNotVisible)
            .send()
            .await
            .map_err(|e| anyhow::anyhow!("asking the queue: {}", aws_sdk_sqs::error::DisplayErrorContext(e)))?;
        let waiting: u64 =
            attributes.attributes().into_iter().flatten().map(|(_, n)| n.parse::<u64>().unwrap_or(0)).sum();
        if waiting == 0 {
            let histories = scan(&dynamodb, stack, ids).await?;
            let finished = histories.values().filter(|h| h.committed.is_some() || h.failed).count();
            if finished == ids.len() {
                return Ok(histories);
            }
        }
        if Instant::now() > deadline {
            return scan(&dynamodb, stack, ids).await;
        }
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
}

/// The histories of `ids`, from the orders table.
async fn scan(dynamodb: &aws_sdk_dynamodb::Client, stack: &Stack, ids: &[String]) -> Result<BTreeMap<String, History>> {
    let table = stack.resources.get("OrdersTable").cloned().unwrap_or_default();
    let wanted: HashSet<&str> = ids.iter().map(String::as_str).collect();
    let mut histories = BTreeMap::new();
    let mut start = None;
    loop {
        let page =
            dynamodb.scan().table_name(&table).set_exclusive_start_key(start).send().await.map_err(|e| {
                anyhow::anyhow!("scanning the orders: {}", aws_sdk_dynamodb::error::DisplayErrorContext(e))
            })?;
        for item in page.items() {
            let Some(id) = item.get("orderId").and_then(|i| i.as_s().ok()) else { continue };
            if wanted.contains(id.as_str()) {
                histories.insert(id.clone(), history(item));
            }
        }
        start = page.last_evaluated_key().cloned();
        if start.is_none() {
            return Ok(histories);
        }
    }
}

fn history(item: &std::collections::HashMap<String, aws_sdk_dynamodb::types::AttributeValue>) -> History {
    let mut history = History::default();
    for change in item.get("history").and_then(|h| h.as_l().ok()).into_iter().flatten() {
        let Ok(change) = change.as_m() else { continue };
        let at = change.get("at").and_then(|a| a.as_s().ok()).and_then(|a| humantime::parse_rfc3339(a).ok());
        let at = at.and_then(|t| t.duration_since(SystemTime::UNIX_EPOCH).ok()).map(|d| d.as_secs_f64());
        match change.get("status").and_then(|s| s.as_s().ok()).map(String::as_str) {
            Some("approved") => history.approved = at,
            Some("executing") => history.executing = history.executing.or(at),
            Some("committed") => history.committed = at,
            Some("failed") => history.failed = true,
            _ => {}
        }
    }
    history
}

fn seconds_now() -> f64 {
    SystemTime::now().duration_since(SystemTime::UNIX_EPOCH).map_or(0.0, |d| d.as_secs_f64())
}
