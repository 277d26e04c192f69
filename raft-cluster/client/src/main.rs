//! `books-db`: a small command-line client of the books database.

use anyhow::{Context, Result};
use books_db_client::BooksDb;
use books_db_client::api::TxnRequest;
use clap::{Parser, Subcommand};
use serde_json::Value;

#[derive(Parser)]
#[command(name = "books-db", about = "Read and write the books database (a raft-node cluster)")]
struct Cli {
    /// Node URLs, comma-separated; any node will do.
    #[arg(long, global = true, env = "BOOKS_DB_URL", default_value = "http://127.0.0.1:7001")]
    url: String,
    #[command(subcommand)]
    command: Command,
}

#[derive(Subcommand)]
enum Command {
    /// Print a key's value and version (linearizable read).
    Get {
        key: String,
        /// Read from the first node that answers, without asking the leader.
        #[arg(long)]
        stale: bool,
    },
    /// List the keys that start with a prefix.
    List { prefix: String },
    /// Create or replace a key. VALUE is JSON: '"text"', 42, '{"a":1}'.
    Set { key: String, value: String },
    /// Replace the value of an existing key.
    Update {
        key: String,
        value: String,
        /// Only if the key is at this version.
        #[arg(long)]
        if_version: Option<u64>,
    },
    /// Delete a key.
    Delete { key: String },
    /// Apply a transaction given as JSON (see the README).
    Txn { json: String },
    /// Print every node's status.
    Status,
    /// Add a node as a learner (it catches up with the log).
    AddLearner {
        id: u64,
        addr: String,
        /// Where the node takes Raft RPCs, if it was started with --raft-addr.
        #[arg(long)]
        raft_addr: Option<String>,
    },
    /// Make exactly these node ids the voters.
    Members { voters: Vec<u64> },
}

#[tokio::main(flavor = "current_thread")]
async fn main() {
    if let Err(e) = run(Cli::parse()).await {
        eprintln!("books-db: {e:#}");
        std::process::exit(1);
    }
}

async fn run(cli: Cli) -> Result<()> {
    let db = BooksDb::from_url_list(&cli.url)?;
    match cli.command {
        Command::Get { key, stale } => {
            let entry = if stale { db.get_stale(&key).await? } else { db.get(&key).await? };
            match entry {
                Some(entry) => print_json(&entry)?,
                None => anyhow::bail!("key {key:?} not found"),
            }
        }
        Command::List { prefix } => print_json(&db.list(&prefix).await?)?,
        Command::Set { key, value } => {
            let version = db.set(&key, parse_value(&value)?).await?;
            println!("{{\"version\":{version}}}");
        }
        Command::Update { key, value, if_version } => {
            let version = db.update(&key, parse_value(&value)?, if_version).await?;
            println!("{{\"version\":{version}}}");
        }
        Command::Delete { key } => {
            if !db.delete(&key).await? {
                anyhow::bail!("key {key:?} not found");
            }
        }
        Command::Txn { json } => {
            let txn: TxnRequest = serde_json::from_str(&json).context("the transaction is not valid JSON")?;
            print_json(&db.txn(&txn).await?)?;
        }
        Command::Status => {
            for endpoint in db.endpoints() {
                match db.status_of(endpoint).await {
                    Ok(status) => println!("{endpoint} {}", serde_json::to_string(&status)?),
                    Err(e) => println!("{endpoint} unreachable: {e}"),
                }
            }
        }
        Command::AddLearner { id, addr, raft_addr } => db.add_learner(id, &addr, raft_addr.as_deref()).await?,
        Command::Members { voters } => db.change_membership(voters).await?,
    }
    Ok(())
}

fn parse_value(text: &str) -> Result<Value> {
    serde_json::from_str(text).with_context(|| format!("the value must be JSON, e.g. '\"text\"' or 42, not {text:?}"))
}

fn print_json<T: serde::Serialize>(value: &T) -> Result<()> {
    println!("{}", serde_json::to_string_pretty(value)?);
    Ok(())
}
