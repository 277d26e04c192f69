//! The node's Raft state as OpenTelemetry gauges, read from openraft's metrics at each export:
//! its term, whether it leads, its last log, commit and applied indexes, and the commit lag
//! (entries it holds that are not yet known committed).

use openraft::rt::WatchReceiver as _;
use opentelemetry::KeyValue;

use crate::NodeId;
use crate::app::Raft;

/// Registers this node's gauges with the process's meter (no-ops where metrics are not exported).
pub fn observe(raft: &Raft, node_id: NodeId) {
    let meter = bookstore_telemetry::meter();
    let gauges: [Gauge; 6] = [
        ("raft_term", "the node's current term", |n| n.term),
        ("raft_is_leader", "1 while the node leads", |n| u64::from(n.leader)),
        ("raft_last_log_index", "the node's last log entry", |n| n.last_log),
        ("raft_committed_index", "the last entry the node knows committed", |n| n.committed),
        ("raft_applied_index", "the last entry the node applied", |n| n.applied),
        ("raft_commit_lag", "entries the node holds that are not yet known committed", |n| {
            n.last_log.saturating_sub(n.committed)
        }),
    ];
    for (name, description, value) in gauges {
        let metrics = raft.metrics();
        let attributes = [KeyValue::new("node_id", node_id.to_string())];
        meter
            .u64_observable_gauge(name)
            .with_description(description)
            .with_callback(move |observer| observer.observe(value(&RaftNumbers::read(&metrics)), &attributes))
            .build();
    }
}

/// A gauge's name, what it says, and its value from the node's numbers.
type Gauge = (&'static str, &'static str, fn(&RaftNumbers) -> u64);

struct RaftNumbers {
    term: u64,
    leader: bool,
    last_log: u64,
    committed: u64,
    applied: u64,
}

impl RaftNumbers {
    fn read(
        metrics: &openraft::alias::WatchReceiverOf<crate::TypeConfig, openraft::RaftMetrics<crate::TypeConfig>>,
    ) -> Self {
        let m = metrics.borrow_watched();
        Self {
            term: m.current_term,
            leader: m.current_leader == Some(m.id),
            last_log: m.last_log_index.unwrap_or(0),
            committed: m.local_committed.as_ref().map_or(0, |id| id.index()),
            applied: m.last_applied.as_ref().map_or(0, |id| id.index()),
        }
    }
}
