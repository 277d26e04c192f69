//! The Raft log and vote: kept in memory for reads, written to redb in order by one writer thread.
//!
//! openraft wants appended entries readable at once and told when they are on disk. A single
//! writer thread gives both, in submission order, and lets one fsync cover every write that queued
//! up while the previous one ran (group commit): at 64 clients that is most of the speed.

use std::collections::BTreeMap;
use std::fmt::Debug;
use std::io;
use std::ops::RangeBounds;
use std::sync::mpsc::{Receiver, Sender};
use std::sync::{Arc, Mutex, MutexGuard};

use openraft::entry::RaftEntry;
use openraft::storage::{IOFlushed, LogState, RaftLogStorage};
use openraft::{OptionalSend, RaftLogReader};
use redb::{Database, ReadableDatabase, ReadableTable, TableDefinition};
use tokio::sync::oneshot;

use super::error::StoreError;
use super::meta::{META, get_meta};
use crate::{Entry, LogId, TypeConfig, Vote};

/// Log index → entry as JSON.
pub(crate) const LOG: TableDefinition<u64, &[u8]> = TableDefinition::new("log");
const VOTE: &str = "log.vote";
const COMMITTED: &str = "log.committed";
const PURGED: &str = "log.purged";
/// At most this many queued writes go into one transaction.
const MAX_GROUP: usize = 1024;

#[derive(Clone)]
pub struct LogStore {
    log: Arc<Mutex<InMemoryLog>>,
    writer: Arc<Writer>,
}

/// The writer thread, which owns the log file. Dropping the last handle lets it finish what is
/// queued and joins it, so the file is closed when the store is gone.
struct Writer {
    queue: Option<Sender<LogWrite>>,
    thread: Option<std::thread::JoinHandle<()>>,
}

impl Drop for Writer {
    fn drop(&mut self) {
        drop(self.queue.take());
        if let Some(thread) = self.thread.take() {
            // A panic in the thread has already been reported by the panic hook.
            let _ = thread.join();
        }
    }
}

#[derive(Default)]
struct InMemoryLog {
    entries: BTreeMap<u64, Entry>,
    vote: Option<Vote>,
    committed: Option<LogId>,
    purged: Option<LogId>,
}

/// A write for the writer thread; applied in the order sent.
enum LogWrite {
    Append { entries: Vec<(u64, Vec<u8>)>, done: IOFlushed<TypeConfig> },
    Vote { vote: Vec<u8>, done: oneshot::Sender<Result<(), String>> },
    Committed(Vec<u8>),
    TruncateFrom(u64),
    PurgeUpTo { index: u64, log_id: Vec<u8> },
}

impl LogStore {
    pub(crate) fn open(db: Arc<Database>) -> Result<Self, StoreError> {
        let mut log = InMemoryLog::default();
        {
            let txn = db.begin_read()?;
            let meta = txn.open_table(META)?;
            log.vote = get_meta(&meta, VOTE)?;
            log.committed = get_meta(&meta, COMMITTED)?;
            log.purged = get_meta(&meta, PURGED)?;
            for item in txn.open_table(LOG)?.iter()? {
                let (index, bytes) = item?;
                log.entries.insert(index.value(), serde_json::from_slice(bytes.value())?);
            }
        }
        let (sender, queue) = std::sync::mpsc::channel();
        let thread = std::thread::Builder::new()
            .name("raft-log-writer".into())
            .spawn(move || write_loop(&db, &queue))
            .map_err(StoreError::Thread)?;
        let writer = Writer { queue: Some(sender), thread: Some(thread) };
        Ok(Self { log: Arc::new(Mutex::new(log)), writer: Arc::new(writer) })
    }

    /// Entries for a reader (the log view), oldest first: from `from`, or the last ones when
    /// `from` is `None`; only those `touches` keeps; at most `limit`. With the first and last
    /// index still held.
    pub fn window(
        &self,
        from: Option<u64>,
        limit: usize,
        touches: impl Fn(&Entry) -> bool,
    ) -> (Option<u64>, Option<u64>, Vec<Entry>) {
        let log = self.memory();
        let (first, last) =
            (log.entries.first_key_value().map(|(i, _)| *i), log.entries.last_key_value().map(|(i, _)| *i));
        let entries = match from {
            Some(from) => {
                log.entries.range(from..).map(|(_, e)| e).filter(|e| touches(e)).take(limit).cloned().collect()
            }
            None => {
                let mut newest: Vec<Entry> =
                    log.entries.values().rev().filter(|e| touches(e)).take(limit).cloned().collect();
                newest.reverse();
                newest
            }
        };
        (first, last, entries)
    }

    fn memory(&self) -> MutexGuard<'_, InMemoryLog> {
        // A panic while holding this lock cannot leave the map half-updated (each update is one
        // call), so a poisoned lock is still consistent.
        self.log.lock().unwrap_or_else(|poisoned| poisoned.into_inner())
    }

    fn send(&self, write: LogWrite) -> Result<(), io::Error> {
        let queue = self.writer.queue.as_ref().ok_or(StoreError::WriterStopped)?;
        queue.send(write).map_err(|_| StoreError::WriterStopped.into())
    }
}

fn write_loop(db: &Database, queue: &Receiver<LogWrite>) {
    // After a failed write, later writes must not land (a lost truncate followed by a successful
    // append would leave a deposed leader's entries behind the new ones): every later write fails.
    let mut failure: Option<String> = None;
    while let Ok(first) = queue.recv() {
        let mut group = vec![first];
        while group.len() < MAX_GROUP {
            match queue.try_recv() {
                Ok(next) => group.push(next),
                Err(_) => break,
            }
        }
        let result = match &failure {
            Some(earlier) => Err(format!("an earlier log write failed: {earlier}")),
            None => write_group(db, &group).map_err(|e| e.to_string()),
        };
        if let (Err(e), None) = (&result, &failure) {
            tracing::error!(error = %e, "writing the raft log failed; refusing every later write");
            failure = Some(e.clone());
        }
        for write in group {
            match write {
                LogWrite::Append { done, .. } => done.io_completed(result.clone().map_err(io::Error::other)),
                LogWrite::Vote { done, .. } => {
                    // The waiter may have given up; nothing else to tell.
                    let _ = done.send(result.clone());
                }
                LogWrite::Committed(_) | LogWrite::TruncateFrom(_) | LogWrite::PurgeUpTo { .. } => {}
            }
        }
    }
}

/// Applies a group of writes in one durable transaction.
fn write_group(db: &Database, group: &[LogWrite]) -> Result<(), StoreError> {
    let txn = db.begin_write()?;
    {
        let mut log = txn.open_table(LOG)?;
        let mut meta = txn.open_table(META)?;
        for write in group {
            match write {
                LogWrite::Append { entries, .. } => {
                    for (index, bytes) in entries {
                        log.insert(index, bytes.as_slice())?;
                    }
                }
                LogWrite::Vote { vote, .. } => {
                    meta.insert(VOTE, vote.as_slice())?;
                }
                LogWrite::Committed(committed) => {
                    meta.insert(COMMITTED, committed.as_slice())?;
                }
                LogWrite::TruncateFrom(index) => log.retain_in(*index.., |_, _| false)?,
                LogWrite::PurgeUpTo { index, log_id } => {
                    meta.insert(PURGED, log_id.as_slice())?;
                    log.retain_in(..=*index, |_, _| false)?;
                }
            }
        }
    }
    txn.commit()?;
    Ok(())
}

impl RaftLogReader<TypeConfig> for LogStore {
    async fn try_get_log_entries<RB: RangeBounds<u64> + Clone + Debug + OptionalSend>(
        &mut self,
        range: RB,
    ) -> Result<Vec<Entry>, io::Error> {
        Ok(self.memory().entries.range(range).map(|(_, entry)| entry.clone()).collect())
    }

    async fn read_vote(&mut self) -> Result<Option<Vote>, io::Error> {
        Ok(self.memory().vote)
    }
}

impl RaftLogStorage<TypeConfig> for LogStore {
    type LogReader = Self;

    async fn get_log_state(&mut self) -> Result<LogState<TypeConfig>, io::Error> {
        let log = self.memory();
        let last = log.entries.last_key_value().map(|(_, entry)| entry.log_id()).or(log.purged);
        Ok(LogState { last_purged_log_id: log.purged, last_log_id: last })
    }

    async fn get_log_reader(&mut self) -> Self::LogReader {
        self.clone()
    }

    async fn save_vote(&mut self, vote: &Vote) -> Result<(), io::Error> {
        let (done, flushed) = oneshot::channel();
        self.send(LogWrite::Vote { vote: serde_json::to_vec(vote)?, done })?;
        flushed.await.map_err(|_| io::Error::from(StoreError::WriterStopped))?.map_err(io::Error::other)?;
        self.memory().vote = Some(*vote);
        Ok(())
    }

    async fn save_committed(&mut self, committed: Option<LogId>) -> Result<(), io::Error> {
        self.send(LogWrite::Committed(serde_json::to_vec(&committed)?))?;
        self.memory().committed = committed;
        Ok(())
    }

    async fn read_committed(&mut self) -> Result<Option<LogId>, io::Error> {
        Ok(self.memory().committed)
    }

    async fn append<I>(&mut self, entries: I, callback: IOFlushed<TypeConfig>) -> Result<(), io::Error>
    where
        I: IntoIterator<Item = Entry> + OptionalSend,
        I::IntoIter: OptionalSend,
    {
        let entries: Vec<Entry> = entries.into_iter().collect();
        let encoded =
            entries.iter().map(|e| Ok((e.index(), serde_json::to_vec(e)?))).collect::<Result<Vec<_>, io::Error>>()?;
        {
            let mut log = self.memory();
            for entry in entries {
                log.entries.insert(entry.index(), entry);
            }
        }
        self.send(LogWrite::Append { entries: encoded, done: callback })
    }

    async fn truncate_after(&mut self, last_log_id: Option<LogId>) -> Result<(), io::Error> {
        let from = last_log_id.map_or(0, |id| id.index() + 1);
        self.memory().entries.split_off(&from);
        self.send(LogWrite::TruncateFrom(from))
    }

    async fn purge(&mut self, log_id: LogId) -> Result<(), io::Error> {
        {
            let mut log = self.memory();
            log.entries = log.entries.split_off(&(log_id.index() + 1));
            log.purged = Some(log_id);
        }
        self.send(LogWrite::PurgeUpTo { index: log_id.index(), log_id: serde_json::to_vec(&log_id)? })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn writes_are_durable_across_reopen() {
        let dir = tempfile::tempdir().unwrap();
        let rt = tokio::runtime::Builder::new_current_thread().enable_all().build().unwrap();
        rt.block_on(async {
            let (mut log, _sm) = crate::store::open(dir.path(), 1).unwrap();
            let vote = Vote::new(3, 1);
            log.save_vote(&vote).await.unwrap();
            drop((log, _sm));
            let (mut log, _sm) = crate::store::open(dir.path(), 1).unwrap();
            assert_eq!(log.read_vote().await.unwrap(), Some(vote));
        });
    }
}
