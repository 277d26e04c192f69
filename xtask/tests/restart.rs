//! `cargo xtask up` stopped with Ctrl-C and started again carries on where it stopped: an order
//! approved and executing (slow executors) at the Ctrl-C is still there after the restart, ends
//! `committed`, and its stock is taken once. Copies reserved for an order that the orders table
//! does not know (what a crash of the AWS emulator leaves) are given back at the start. Runs the
//! real command, as a user would.

// A test fails by panicking: its helpers unwrap too, not only its #[test] functions.
#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::net::TcpListener;
use std::path::Path;
use std::process::Stdio;
use std::time::{Duration, Instant};

use books_db_client::api::{TxnOp, TxnRequest};
use nix::sys::signal::{Signal, kill, killpg};
use nix::unistd::Pid;
use serde_json::{Value, json};
use tokio::io::{AsyncBufReadExt, BufReader};
use tokio::process::{Child, Command};

mod common;
use common::order;

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_order_executing_at_ctrl_c_commits_once_after_a_restart() {
    let data = tempfile::Builder::new().prefix("bookstore-restart-").tempdir().unwrap();
    let ports = Ports::free();
    let http = reqwest::Client::builder().no_proxy().timeout(Duration::from_secs(30)).build().unwrap();

    let up = Up::start(data.path(), &ports).await;
    let books = |http: reqwest::Client, url: String| async move {
        let books: Value = http.get(format!("{url}/books")).send().await.unwrap().json().await.unwrap();
        books.as_array().unwrap().iter().find(|b| b["bookId"] == "dune").unwrap()["stock"].as_u64().unwrap()
    };
    let stock_before = books(http.clone(), up.url.clone()).await;
    // What a crash of the emulator after an executor's prepare leaves: the reservation, no order.
    let db = books_db_client::BooksDb::from_url_list(&format!("http://127.0.0.1:{}", ports.books_db)).unwrap();
    let orphan = TxnRequest {
        compare: vec![],
        success: vec![
            TxnOp::Add { key: "stock/dune".into(), delta: -1 },
            TxnOp::Put {
                key: "reservation/lost-in-a-crash".into(),
                value: json!({"state": "prepared", "lines": [["dune", 1]]}),
            },
        ],
        failure: vec![],
    };
    assert!(db.txn(&orphan).await.unwrap().succeeded);
    let answer: Value = http
        .post(format!("{}/checkout", up.url))
        .body(order(json!({"items": [{"bookId": "dune", "quantity": 2}]})).to_string())
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    assert_eq!(answer["status"], "Order Approved", "{answer}");
    let order_id = answer["orderId"].as_str().unwrap().to_string();
    let order_url = format!("{}/orders/{order_id}", up.url);
    // The executor claims it, then waits its emulated delay: Ctrl-C lands mid-execution.
    let executing = poll(&http, &order_url, |order| order["status"] == "executing").await;
    assert_eq!(executing["status"], "executing", "{executing}");
    let stopped = up.interrupt().await;
    assert!(stopped.success(), "cargo xtask up exited with {stopped} on Ctrl-C");

    let up = Up::start(data.path(), &ports).await;
    let kept = data.path().join("logs/cargo-lambda-watch.previous.log");
    assert!(kept.exists(), "the first run's function logs are kept beside the new ones");
    let (status, recorded) = get(&http, &order_url).await;
    assert_eq!(status, 200, "the order is readable after the restart: {recorded}");
    let done = poll(&http, &order_url, |order| order["status"] == "committed" || order["status"] == "failed").await;
    assert_eq!(done["status"], "committed", "{done}");
    let history: Vec<&str> = done["history"].as_array().unwrap().iter().filter_map(|h| h["status"].as_str()).collect();
    assert_eq!(history.iter().filter(|s| **s == "committed").count(), 1, "{history:?}");
    assert_eq!(history.first(), Some(&"approved"), "{history:?}");
    assert_eq!(
        books(http.clone(), up.url.clone()).await,
        stock_before - 2,
        "the stock is taken once, the orphan's given back"
    );
    let orphan = db.get("reservation/lost-in-a-crash").await.unwrap().expect("the reservation is kept");
    assert_eq!(orphan.value["state"], "aborted", "{orphan:?}");
    let stopped = up.interrupt().await;
    assert!(stopped.success(), "cargo xtask up exited with {stopped} on Ctrl-C");

    // The same data on other books-database ports: the nodes' stored cluster lives at the old
    // ones, so `up` stops with the node's one line, which says what to do.
    let moved = Ports { books_db: three_consecutive_free_ports_from(ports.books_db + 3), ..Ports::free() };
    let (status, stderr) = Up::run_to_exit(data.path(), &moved).await;
    assert!(!status.success(), "{stderr}");
    let last = stderr.trim().lines().last().unwrap_or_default();
    assert!(last.contains("books database node") && last.contains("--fresh"), "{stderr}");
}

struct Ports {
    gateway: u16,
    aws: u16,
    lambda: u16,
    books_db: u16,
}

impl Ports {
    fn free() -> Self {
        let one = || TcpListener::bind("127.0.0.1:0").unwrap().local_addr().unwrap().port();
        Self { gateway: one(), aws: one(), lambda: one(), books_db: three_consecutive_free_ports() }
    }
}

/// The first of three consecutive free ports (the books database's nodes).
fn three_consecutive_free_ports() -> u16 {
    three_consecutive_free_ports_from(20_000 + (std::process::id() % 2_000) as u16 * 10)
}

fn three_consecutive_free_ports_from(start: u16) -> u16 {
    (start..start + 10_000)
        .step_by(3)
        .find(|&base| (base..base + 3).all(|port| TcpListener::bind(("127.0.0.1", port)).is_ok()))
        .expect("three consecutive free ports")
}

/// A running `cargo xtask up` (the xtask binary, in its own process group).
struct Up {
    child: Child,
    url: String,
}

impl Up {
    fn command(data: &Path, ports: &Ports) -> Command {
        let mut command = Command::new(env!("CARGO_BIN_EXE_xtask"));
        command
            .arg("up")
            .args(["--port", &ports.gateway.to_string(), "--aws-port", &ports.aws.to_string()])
            .args(["--lambda-port", &ports.lambda.to_string(), "--books-db-port", &ports.books_db.to_string()])
            .arg("--data-dir")
            .arg(data)
            .args(["--aws", "ministack", "--executor-delay-ms", "6000-8000"])
            .env_remove("EXECUTOR_FAILURE_RATE")
            .stdin(Stdio::null())
            .stdout(Stdio::piped())
            .stderr(std::fs::File::create(data.join("up.stderr")).unwrap())
            .process_group(0)
            .kill_on_drop(true);
        command
    }

    /// Runs it to its end (it is expected to fail at start); answers its status and stderr.
    async fn run_to_exit(data: &Path, ports: &Ports) -> (std::process::ExitStatus, String) {
        let mut child = Self::command(data, ports).spawn().expect("cargo xtask up starts");
        let status = tokio::time::timeout(Duration::from_secs(300), child.wait())
            .await
            .expect("cargo xtask up ends by itself")
            .expect("its exit status");
        (status, std::fs::read_to_string(data.join("up.stderr")).unwrap_or_default())
    }

    /// Starts it and waits for its `ready:` line (the first start builds the functions).
    async fn start(data: &Path, ports: &Ports) -> Up {
        let mut child = Self::command(data, ports).spawn().expect("cargo xtask up starts");
        let mut lines = BufReader::new(child.stdout.take().unwrap()).lines();
        let ready = tokio::time::timeout(Duration::from_secs(900), async {
            while let Some(line) = lines.next_line().await.unwrap() {
                if let Some(rest) = line.strip_prefix("ready: the bookstore at ") {
                    return Some(rest.split_whitespace().next().unwrap_or_default().to_string());
                }
            }
            None
        })
        .await;
        let stderr = || std::fs::read_to_string(data.join("up.stderr")).unwrap_or_default();
        let url = match ready {
            Ok(Some(url)) => url,
            other => panic!("cargo xtask up did not get ready ({other:?}): {}", stderr()),
        };
        // Keep reading its stdout, so that it never blocks on a full pipe.
        tokio::spawn(async move { while let Ok(Some(_)) = lines.next_line().await {} });
        Up { child, url }
    }

    /// Ctrl-C, as a terminal sends it; waits for the command to finish stopping.
    async fn interrupt(mut self) -> std::process::ExitStatus {
        let pid = self.child.id().expect("still running") as i32;
        kill(Pid::from_raw(pid), Signal::SIGINT).expect("a signal to our own child");
        tokio::time::timeout(Duration::from_secs(90), self.child.wait())
            .await
            .expect("cargo xtask up stops within 90 s of Ctrl-C")
            .expect("its exit status")
    }
}

impl Drop for Up {
    fn drop(&mut self) {
        // A test that failed midway: the whole group goes (its children are tied to it too).
        if let Some(pid) = self.child.id() {
            let _ = killpg(Pid::from_raw(pid as i32), Signal::SIGKILL);
        }
    }
}

async fn get(http: &reqwest::Client, url: &str) -> (u16, Value) {
    let answer = http.get(url).send().await.expect("the gateway answers");
    (answer.status().as_u16(), answer.json().await.unwrap_or(Value::Null))
}

/// Polls `url` until `done` holds (two minutes at most); answers the last body.
async fn poll(http: &reqwest::Client, url: &str, done: impl Fn(&Value) -> bool) -> Value {
    let deadline = Instant::now() + Duration::from_secs(120);
    loop {
        let (status, body) = get(http, url).await;
        if status == 200 && done(&body) {
            return body;
        }
        assert!(Instant::now() < deadline, "{url} never got there: {status} {body}");
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
}
