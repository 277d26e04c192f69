//! What the nemesis clients record: each operation with its invocation and completion times and
//! what it returned — or that its outcome is unknown (a timeout, a connection lost after sending).

use std::time::Duration;

/// A compare-and-set register's operations, on one key.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Call {
    Read,
    Write(i64),
    /// Set to `to` if the value is `from`.
    Cas {
        from: i64,
        to: i64,
    },
}

/// What the cluster answered.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Return {
    /// The value read; `None` when the key did not exist.
    Read(Option<i64>),
    Written,
    /// Whether the compare held (and the write was applied).
    Cas(bool),
    /// No definite answer: the operation may have taken effect, or not, at any time after its
    /// invocation.
    Unknown,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Operation {
    pub client: usize,
    pub key: String,
    pub call: Call,
    pub ret: Return,
    /// Since the start of the run.
    pub invoked: Duration,
    pub completed: Duration,
}

impl std::fmt::Display for Operation {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        let call = match self.call {
            Call::Read => "read".to_string(),
            Call::Write(v) => format!("write {v}"),
            Call::Cas { from, to } => format!("cas {from}->{to}"),
        };
        let ret = match self.ret {
            Return::Read(Some(v)) => format!("{v}"),
            Return::Read(None) => "nothing".into(),
            Return::Written => "ok".into(),
            Return::Cas(held) => if held { "ok" } else { "failed" }.into(),
            Return::Unknown => "unknown".into(),
        };
        write!(
            f,
            "client {} {} on {:?} -> {} [{:.3} s, {:.3} s]",
            self.client,
            call,
            self.key,
            ret,
            self.invoked.as_secs_f64(),
            self.completed.as_secs_f64()
        )
    }
}
