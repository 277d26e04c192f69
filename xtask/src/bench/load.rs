//! A closed-loop load driver: N clients, each with its own connection, each sending its next
//! request when the previous one is answered.

use std::future::Future;
use std::sync::Arc;
use std::time::{Duration, Instant};

/// What one run of the driver measured.
pub struct Sample {
    pub ok: usize,
    pub errors: usize,
    pub elapsed: Duration,
    /// Latencies of the successful requests, sorted.
    pub latencies: Vec<Duration>,
}

impl Sample {
    pub fn throughput(&self) -> f64 {
        self.ok as f64 / self.elapsed.as_secs_f64()
    }

    pub fn percentile_ms(&self, p: f64) -> f64 {
        if self.latencies.is_empty() {
            return f64::NAN;
        }
        let rank = ((self.latencies.len() as f64 * p).ceil() as usize).clamp(1, self.latencies.len());
        self.latencies[rank - 1].as_secs_f64() * 1000.0
    }
}

/// Runs `clients` loops of `op(http, client, i)` for `duration` after one unmeasured warm-up
/// request per client; `op` answers whether the request succeeded. Each client has an HTTP
/// client of its own (one kept-alive connection).
pub async fn drive<Op, Fut>(clients: usize, duration: Duration, op: Op) -> anyhow::Result<Sample>
where
    Op: Fn(reqwest::Client, usize, u64) -> Fut + Send + Sync + 'static,
    Fut: Future<Output = bool> + Send + 'static,
{
    let connect = |_| async { Ok(reqwest::Client::builder().no_proxy().pool_max_idle_per_host(1).build()?) };
    drive_with(clients, duration, connect, op).await
}

/// [`drive`] with any kind of connection: `connect(client)` makes client `client`'s.
pub async fn drive_with<C, Connect, Connecting, Op, Fut>(
    clients: usize,
    duration: Duration,
    connect: Connect,
    op: Op,
) -> anyhow::Result<Sample>
where
    C: Clone + Send + 'static,
    Connect: Fn(usize) -> Connecting,
    Connecting: Future<Output = anyhow::Result<C>>,
    Op: Fn(C, usize, u64) -> Fut + Send + Sync + 'static,
    Fut: Future<Output = bool> + Send + 'static,
{
    let op = Arc::new(op);
    let mut connections = Vec::with_capacity(clients);
    for client in 0..clients {
        let connection = connect(client).await?;
        op(connection.clone(), client, u64::MAX).await;
        connections.push(connection);
    }
    let started = Instant::now();
    let deadline = started + duration;
    let tasks: Vec<_> = connections
        .into_iter()
        .enumerate()
        .map(|(client, http)| {
            let op = op.clone();
            tokio::spawn(async move {
                let (mut latencies, mut errors) = (Vec::new(), 0);
                let mut i = 0;
                while Instant::now() < deadline {
                    let sent = Instant::now();
                    if op(http.clone(), client, i).await {
                        latencies.push(sent.elapsed());
                    } else {
                        errors += 1;
                    }
                    i += 1;
                }
                (latencies, errors)
            })
        })
        .collect();
    let mut sample = Sample { ok: 0, errors: 0, elapsed: Duration::ZERO, latencies: Vec::new() };
    for task in tasks {
        let (latencies, errors) = task.await?;
        sample.latencies.extend(latencies);
        sample.errors += errors;
    }
    sample.elapsed = started.elapsed();
    sample.ok = sample.latencies.len();
    sample.latencies.sort_unstable();
    Ok(sample)
}
