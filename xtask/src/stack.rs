//! The embedded default: the whole bookstore on one machine, from `template.yaml`.
//!
//! MiniStack (or moto) emulates DynamoDB and SQS; the template's tables and queues are created in it;
//! three raft-node processes are the books database; `cargo lambda watch` serves every function
//! with the environment the template gives it; a gateway routes the template's API paths to the
//! functions and serves `web/`. [`Stack::shutdown`] stops it so that a restart carries on (the
//! messages in hand go back to the queue, the emulator saves its state); dropping a [`Stack`]
//! stops everything too.

use std::collections::BTreeMap;
use std::net::SocketAddr;
use std::os::unix::process::CommandExt;
use std::path::{Path, PathBuf};
use std::process::{Child, Stdio};
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::{Duration, Instant};

pub use crate::emulator::AwsEmulator;

use anyhow::{Context, Result, bail};
use aws_sdk_dynamodb::config::{Credentials, Region};
use aws_sdk_dynamodb::types::{AttributeDefinition, BillingMode, KeySchemaElement, KeyType, ScalarAttributeType};
use aws_sdk_sqs::types::QueueAttributeName;
use raft_local_cluster::{free_addrs, spawn_tied};

use crate::books_db::{BooksDbCluster, BooksDbMode};

use crate::sam_local::SamLocal;
use crate::template::{Resolver, Route, Template};
use crate::venv;

pub(crate) const REGION: &str = "us-east-1";

/// The name the stack gives `cargo lambda watch` among its processes.
const WATCH: &str = "cargo lambda watch";

/// How long a stopping emulator may take to save its state before it is killed.
const EMULATOR_STOP_TIMEOUT: Duration = Duration::from_secs(30);

/// Where the stack listens and keeps its data. Port 0 picks a free port.
#[derive(Debug, Clone)]
pub struct StackOptions {
    /// DynamoDB and SQS.
    pub aws: AwsEmulator,
    pub gateway_port: u16,
    pub aws_port: u16,
    pub watch_port: u16,
    /// Processes or containers.
    pub books_db: BooksDbMode,
    /// First of three consecutive ports for the books database; 0 picks free ones.
    pub books_db_port: u16,
    /// Data (the books database's, and the AWS emulator's where it keeps state) and logs; a
    /// temporary folder, kept by nothing, when `None`.
    pub data_dir: Option<PathBuf>,
    /// Build and run the functions with optimizations (for benchmarks; slower to build).
    pub release: bool,
    /// Values for the template's parameters, over their defaults.
    pub parameters: Vec<(String, String)>,
    /// Serve `sam local` too: relay the services onto Docker's bridge and write the SAM CLI's
    /// `--env-vars` file (see [`crate::sam_local`]). Needs a Docker engine.
    pub sam_local: bool,
}

impl StackOptions {
    /// Free ports and a temporary folder: for tests, which may run side by side.
    pub fn ephemeral(aws: AwsEmulator) -> Self {
        Self {
            aws,
            gateway_port: 0,
            aws_port: 0,
            watch_port: 0,
            books_db: BooksDbMode::Processes,
            books_db_port: 0,
            data_dir: None,
            release: false,
            parameters: Vec::new(),
            sam_local: false,
        }
    }
}

pub struct Stack {
    /// `http://127.0.0.1:PORT` of the gateway: the bookstore's API and web page.
    pub gateway_url: String,
    /// The AWS emulator (DynamoDB, SQS).
    pub aws: AwsEmulator,
    pub aws_endpoint: String,
    /// `cargo lambda watch`: its Lambda Invoke API.
    pub watch_url: String,
    pub books_db: BooksDbCluster,
    /// The environment every function runs with.
    pub function_env: BTreeMap<String, String>,
    /// Template logical id → local name (tables) or URL (queues).
    pub resources: BTreeMap<String, String>,
    /// What `sam local` uses of this stack, when asked for.
    pub sam_local: Option<SamLocal>,
    pub logs: PathBuf,
    processes: Vec<Supervised>,
    gateway: tokio::task::JoinHandle<()>,
    /// The event source mappings, and the tasks running them.
    mappings: Vec<crate::poller::QueuePoller>,
    pollers: Vec<tokio::task::JoinHandle<()>>,
    pollers_stop: Arc<AtomicBool>,
    _temporary: Option<tempfile::TempDir>,
}

impl Stack {
    pub async fn start(options: StackOptions) -> Result<Stack> {
        let venv = venv::ensure()?;
        let workspace = crate::workspace_root();
        let template = Template::load(&venv, &workspace.join("template.yaml"))?;
        let functions = template.functions()?;

        let temporary = match &options.data_dir {
            Some(_) => None,
            None => Some(tempfile::Builder::new().prefix("bookstore-stack-").tempdir()?),
        };
        let data_dir = options.data_dir.clone().or_else(|| temporary.as_ref().map(|t| t.path().to_path_buf()));
        let data_dir = data_dir.context("no data dir")?;
        let logs = data_dir.join("logs");
        std::fs::create_dir_all(&logs)?;

        let binaries: Vec<&str> = functions.iter().map(|f| f.binary.as_str()).collect();
        build_functions(&binaries, options.release)?;

        let mut stack_guard = Processes(Vec::new());
        let aws_addr = addr(options.aws_port)?;
        let aws_endpoint = format!("http://{aws_addr}");
        // Only a kept data dir keeps the emulator's state.
        let state_dir = temporary.is_none().then(|| crate::emulator::state_dir(&data_dir));
        let mut launch = options.aws.launch(aws_addr.port(), state_dir.as_deref())?;
        let log = logs.join(format!("{}.log", options.aws.name().to_lowercase()));
        stack_guard.push(options.aws.name(), spawn_logged(&mut launch.command, &log)?, launch.stop);
        stack_guard
            .wait_until_serving(&format!("{aws_endpoint}{}", launch.ready_path), &log, Duration::from_secs(60))
            .await?;
        if let Some(dir) = &state_dir {
            options.aws.check_restored(&log, dir)?;
        }

        let mut resolver = Resolver::default();
        resolver.refs.extend(template.parameter_defaults());
        resolver.refs.extend(options.parameters.iter().cloned());
        resolver.refs.insert("AWS::Region".into(), REGION.into());
        let resources = create_resources(&template, &aws_endpoint, &mut resolver).await?;

        let books_db =
            BooksDbCluster::start(options.books_db, options.books_db_port, &data_dir, temporary.is_some()).await?;
        resolver.refs.insert("BooksDbUrl".into(), books_db.urls().join(","));
        let (dynamodb, _) = emulator_clients(&aws_endpoint);
        let orders_table = resources.get("OrdersTable").context("the template has no OrdersTable")?;
        let orders = bookstore_aws::DynamoOrders::new(dynamodb, orders_table.clone());
        let released = crate::recovery::release_orphaned_reservations(books_db.client()?, &orders)
            .await
            .context("releasing the stock of orders the AWS emulator lost")?;
        for order_id in released {
            eprintln!(
                "gave back the copies reserved for order {order_id}: the orders table no longer has it (the AWS emulator lost it in a crash)"
            );
        }

        let watch_addr = addr(options.watch_port)?;
        let watch_url = format!("http://{watch_addr}");
        for function in &functions {
            resolver.refs.insert(function.logical_id.clone(), function.binary.clone());
        }
        resolver.refs.insert("EmulatorEndpointUrl".into(), aws_endpoint.clone());
        resolver.refs.insert("LambdaEndpointUrl".into(), watch_url.clone());
        let mut function_env = BTreeMap::new();
        for function in &functions {
            for (name, value) in &function.environment {
                let value = resolver.resolve(value).with_context(|| format!("{}: {name}", function.logical_id))?;
                if let Some(other) = function_env.insert(name.clone(), value.clone())
                    && other != value
                {
                    bail!(
                        "{name} differs between functions ({other} vs {value}); the embedded default runs them with one environment"
                    );
                }
            }
        }
        for (name, value) in [
            ("AWS_REGION", REGION.to_string()),
            ("AWS_ACCESS_KEY_ID", "test".into()),
            ("AWS_SECRET_ACCESS_KEY", "test".into()),
        ] {
            function_env.insert(name.into(), value);
        }
        let env_file = data_dir.join("functions.env");
        std::fs::write(&env_file, function_env.iter().map(|(k, v)| format!("{k}={v}\n")).collect::<String>())?;
        let sam_local = match options.sam_local {
            true => Some(SamLocal::start(&function_env, &data_dir.join("sam-env.json")).await?),
            false => None,
        };

        let mut watch = venv.command("cargo");
        watch
            .args(["lambda", "watch", "--quiet", "--ignore-changes", "--concurrency", "8"])
            .args(["--invoke-address", "127.0.0.1", "--invoke-port", &watch_addr.port().to_string()])
            .args(if options.release { &["--release"][..] } else { &[] })
            .arg("--env-file")
            .arg(&env_file)
            .current_dir(&workspace)
            // Its own process group, so that stopping it stops the functions it runs too.
            .process_group(0);
        stack_guard.push(WATCH, spawn_logged(&mut watch, &logs.join("cargo-lambda-watch.log"))?, Stop::Kill);

        let routes: Vec<(Route, String)> =
            functions.iter().flat_map(|f| f.routes.iter().map(|r| (r.clone(), f.binary.clone()))).collect();
        let listener =
            tokio::net::TcpListener::bind(addr(options.gateway_port)?).await.context("binding the gateway")?;
        let gateway_url = format!("http://{}", listener.local_addr()?);
        let router = crate::gateway::router(&routes, watch_url.clone())?;
        let gateway = tokio::spawn(async move {
            if let Err(e) = axum::serve(listener, router).await {
                eprintln!("gateway stopped: {e}");
            }
        });

        let mut stack = Stack {
            gateway_url,
            aws: options.aws,
            aws_endpoint,
            watch_url,
            books_db,
            function_env,
            resources,
            sam_local,
            logs,
            processes: std::mem::take(&mut stack_guard.0),
            gateway,
            mappings: Vec::new(),
            pollers: Vec::new(),
            pollers_stop: Arc::default(),
            _temporary: temporary,
        };
        stack.warm_up(&functions).await?;
        stack.mappings = stack.event_source_mappings(&functions, &resolver)?;
        stack.start_pollers();
        Ok(stack)
    }

    /// The event source mappings of the template's `SQS` events: as many pollers per event as it
    /// lets batches run at once.
    fn event_source_mappings(
        &self,
        functions: &[crate::template::FunctionSpec],
        resolver: &Resolver,
    ) -> Result<Vec<crate::poller::QueuePoller>> {
        let (_, sqs) = emulator_clients(&self.aws_endpoint);
        let mut pollers = Vec::new();
        for function in functions {
            for event in &function.queue_events {
                let queue_url =
                    self.resources.get(&event.queue).with_context(|| format!("no queue {}", event.queue))?;
                let queue_arn =
                    resolver.attributes.get(&(event.queue.clone(), "Arn".into())).context("no queue ARN")?;
                for _ in 0..event.maximum_concurrency {
                    pollers.push(crate::poller::QueuePoller {
                        sqs: sqs.clone(),
                        queue_url: queue_url.clone(),
                        queue_arn: queue_arn.clone(),
                        invoke_url: self.invoke_url(&function.binary),
                        batch_size: event.batch_size,
                        report_batch_item_failures: event.report_batch_item_failures,
                    });
                }
            }
        }
        Ok(pollers)
    }

    /// Stops so that the next start carries on where this one stopped: no more requests, the
    /// functions stopped (an execution in progress dies as in a crash, and its order is finished by
    /// the message's next delivery), the messages the pollers held made visible again at once
    /// (instead of after the 240-s visibility timeout), then the emulator stopped with SIGTERM so
    /// that it saves its state, and the books database.
    pub async fn shutdown(mut self) {
        self.gateway.abort();
        self.pollers_stop.store(true, Ordering::SeqCst);
        if let Some(index) = self.processes.iter().position(|p| p.name == WATCH) {
            let mut watch = self.processes.remove(index);
            watch.stop();
        }
        for poller in self.pollers.drain(..) {
            let _ = poller.await;
        }
        // Drop stops the rest, the emulator last and gracefully.
    }

    /// Stops the queue pollers once they finish the batches in hand: messages wait in the queue.
    pub async fn stop_pollers(&mut self) {
        self.pollers_stop.store(true, Ordering::SeqCst);
        for poller in self.pollers.drain(..) {
            let _ = poller.await;
        }
    }

    /// Starts the queue pollers, unless they run.
    pub fn start_pollers(&mut self) {
        if self.pollers.is_empty() {
            self.pollers_stop = Arc::new(AtomicBool::new(false));
            let pollers =
                self.mappings.iter().map(|poller| tokio::spawn(poller.clone().run(self.pollers_stop.clone())));
            self.pollers = pollers.collect();
        }
    }

    /// A function's Lambda Invoke URL on `cargo lambda watch`.
    pub fn invoke_url(&self, binary: &str) -> String {
        format!("{}/2015-03-31/functions/{binary}/invocations", self.watch_url)
    }

    /// Invokes every function once, so the first real request finds them built and started
    /// (`cargo lambda watch` builds and starts a function at its first invocation).
    async fn warm_up(&self, functions: &[crate::template::FunctionSpec]) -> Result<()> {
        let http = reqwest::Client::builder().no_proxy().timeout(Duration::from_secs(600)).build()?;
        let deadline = Instant::now() + Duration::from_secs(600);
        for function in functions {
            loop {
                let answer = match function.routes.iter().find(|r| r.method != "OPTIONS") {
                    // An HTTP function, through its own route: a GET has no side effect, and a
                    // body that is not JSON is refused before anything is written. (A preflight
                    // would not do: cargo lambda watch answers those itself.)
                    Some(route) => {
                        let path = route.path.replace("{orderId}", "warm-up");
                        let method = reqwest::Method::from_bytes(route.method.as_bytes())?;
                        http.request(method, format!("{}{path}", self.gateway_url)).body("warm-up").send().await
                    }
                    // A queue consumer gets an empty batch; any other function a request it
                    // refuses (a service clears an order it never saw).
                    None => {
                        let body = if function.queue_events.is_empty() {
                            r#"{"action":"clear","orderId":"warm-up","finalClock":{}}"#
                        } else {
                            r#"{"Records":[]}"#
                        };
                        http.post(self.invoke_url(&function.binary)).body(body).send().await
                    }
                };
                // Any answer of the function's own (a 4xx, or a function error: a 500 from cargo
                // lambda watch with the runtime's `errorType`) means it runs.
                let answer = match answer {
                    Ok(answer) if answer.status().is_server_error() => {
                        let status = answer.status();
                        match answer.text().await {
                            Ok(body) if body.contains("\"errorType\"") => break,
                            _ => Ok(status),
                        }
                    }
                    Ok(answer) => Ok(answer.status()),
                    Err(e) => Err(e),
                };
                match answer {
                    Ok(status) if !status.is_server_error() => break,
                    Ok(status) if Instant::now() > deadline => {
                        bail!("{} did not start: {status}; see {}", function.binary, self.logs.display())
                    }
                    Err(e) if Instant::now() > deadline => bail!("{} did not start: {e}", function.binary),
                    // Not listening yet, or still starting: ask again in a moment, not at once,
                    // since every request waiting makes cargo lambda watch start another instance.
                    _ => tokio::time::sleep(Duration::from_secs(1)).await,
                }
            }
        }
        Ok(())
    }
}

impl Drop for Stack {
    fn drop(&mut self) {
        self.gateway.abort();
        for poller in &self.pollers {
            poller.abort();
        }
        stop(&mut self.processes);
    }
}

/// How a process is stopped.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Stop {
    /// SIGKILL to it and its process group: it keeps nothing that a kill would lose.
    Kill,
    /// SIGTERM, then wait (for an emulator saving its state); killed if it takes too long.
    Terminate,
}

/// A process the stack started.
pub struct Supervised {
    pub name: &'static str,
    child: Child,
    how: Stop,
}

impl Supervised {
    fn stop(&mut self) {
        if self.how == Stop::Terminate && self.child.try_wait().is_ok_and(|status| status.is_none()) {
            // SAFETY: kill(2) on our own child, not reaped yet, so the pid is still ours.
            unsafe {
                libc::kill(self.child.id() as libc::pid_t, libc::SIGTERM);
            }
            let deadline = Instant::now() + EMULATOR_STOP_TIMEOUT;
            while Instant::now() < deadline {
                if !self.child.try_wait().is_ok_and(|status| status.is_none()) {
                    return;
                }
                std::thread::sleep(Duration::from_millis(50));
            }
            eprintln!("{} did not stop within {EMULATOR_STOP_TIMEOUT:?}; killing it", self.name);
        }
        let pid = self.child.id() as libc::pid_t;
        // cargo lambda watch starts each function instance in a process group of its own, so its
        // group alone would leave them running: freeze the child's group (nothing new is
        // started), then kill every descendant, then the group.
        // SAFETY: kill(2) on our own child's process group or pid, and on its descendants; the
        // child is not reaped yet, so its id is still ours.
        unsafe {
            libc::kill(-pid, libc::SIGSTOP);
            for descendant in descendants(pid) {
                libc::kill(descendant, libc::SIGKILL);
            }
            libc::kill(-pid, libc::SIGKILL);
        }
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// Every process below `root` (children, their children, ...), from `/proc`.
fn descendants(root: libc::pid_t) -> Vec<libc::pid_t> {
    let mut parents: Vec<(libc::pid_t, libc::pid_t)> = Vec::new();
    for entry in std::fs::read_dir("/proc").into_iter().flatten().flatten() {
        let Some(pid) = entry.file_name().to_str().and_then(|name| name.parse().ok()) else { continue };
        let Ok(stat) = std::fs::read_to_string(entry.path().join("stat")) else { continue };
        // The parent is the second field after the command name, which is in parentheses.
        let ppid = stat.rfind(')').and_then(|close| stat[close + 1..].split_whitespace().nth(1)?.parse().ok());
        if let Some(ppid) = ppid {
            parents.push((pid, ppid));
        }
    }
    let mut found = vec![root];
    let mut next = 0;
    while next < found.len() {
        let parent = found[next];
        found.extend(parents.iter().filter(|(_, ppid)| *ppid == parent).map(|(pid, _)| *pid));
        next += 1;
    }
    found.remove(0);
    found
}

/// Processes stopped, the last started first, when this is dropped: what the stack started so
/// far if starting it fails half-way, or a test's helper process (chromedriver).
#[derive(Default)]
pub struct Processes(pub Vec<Supervised>);

impl Processes {
    pub fn push(&mut self, name: &'static str, child: Child, how: Stop) {
        self.0.push(Supervised { name, child, how });
    }

    /// Waits until `url` answers; fails at once, with the end of its log, if the last process
    /// started exits first (a broken venv, a port taken).
    pub(crate) async fn wait_until_serving(&mut self, url: &str, log: &Path, timeout: Duration) -> Result<()> {
        let http = reqwest::Client::builder().no_proxy().timeout(Duration::from_secs(2)).build()?;
        let deadline = Instant::now() + timeout;
        loop {
            let process = self.0.last_mut().context("nothing started")?;
            if let Ok(Some(status)) = process.child.try_wait() {
                let text = std::fs::read_to_string(log).unwrap_or_default();
                let last = text.lines().rev().find(|l| !l.trim().is_empty()).unwrap_or("no output");
                bail!("{} exited at start ({status}): {}; its log: {}", process.name, last.trim(), log.display());
            }
            if http.get(url).send().await.is_ok() {
                return Ok(());
            }
            if Instant::now() > deadline {
                bail!("{} did not answer at {url} within {timeout:?}; its log: {}", process.name, log.display());
            }
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
    }
}

impl Drop for Processes {
    fn drop(&mut self) {
        stop(&mut self.0);
    }
}

fn stop(processes: &mut Vec<Supervised>) {
    for mut process in processes.drain(..).rev() {
        process.stop();
    }
}

fn addr(port: u16) -> Result<SocketAddr> {
    let port = if port == 0 {
        free_addrs(1)?.remove(0).rsplit_once(':').and_then(|(_, p)| p.parse().ok()).unwrap_or(0)
    } else {
        port
    };
    Ok(SocketAddr::from(([127, 0, 0, 1], port)))
}

/// Starts `command` with its output in `log`, tied to this process (killed if it dies).
/// The previous run's log, if any, is kept beside it as `NAME.previous.log`: after a crash and a
/// restart it tells what happened.
pub fn spawn_logged(command: &mut std::process::Command, log: &Path) -> Result<Child> {
    if log.exists() {
        let previous = log.with_extension("previous.log");
        std::fs::rename(log, &previous)
            .with_context(|| format!("moving {} to {}", log.display(), previous.display()))?;
    }
    let file = std::fs::File::create(log).with_context(|| format!("creating {}", log.display()))?;
    command.stdin(Stdio::null()).stdout(file.try_clone()?).stderr(file);
    let program = command.get_program().to_string_lossy().to_string();
    spawn_tied(command).with_context(|| format!("starting {program}"))
}

/// Builds the functions before `cargo lambda watch` starts, so that its first invocations only
/// start them.
fn build_functions(binaries: &[&str], release: bool) -> Result<()> {
    let mut args = vec!["build", "--quiet"];
    if release {
        args.push("--release");
    }
    for binary in binaries {
        args.extend(["--bin", binary]);
    }
    if crate::cargo(&args)? != std::process::ExitCode::SUCCESS {
        bail!("building the functions failed");
    }
    Ok(())
}

/// DynamoDB and SQS clients for the AWS emulator at `endpoint` (any credentials will do).
pub fn emulator_clients(endpoint: &str) -> (aws_sdk_dynamodb::Client, aws_sdk_sqs::Client) {
    let credentials = Credentials::new("test", "test", None, None, "embedded-default");
    let dynamodb = aws_sdk_dynamodb::Config::builder()
        .behavior_version_latest()
        .endpoint_url(endpoint)
        .region(Region::new(REGION))
        .credentials_provider(credentials.clone())
        .http_client(bookstore_aws::http_client())
        .build();
    let sqs = aws_sdk_sqs::Config::builder()
        .behavior_version_latest()
        .endpoint_url(endpoint)
        .region(aws_sdk_sqs::config::Region::new(REGION))
        .credentials_provider(credentials)
        .http_client(bookstore_aws::http_client())
        .build();
    (aws_sdk_dynamodb::Client::from_conf(dynamodb), aws_sdk_sqs::Client::from_conf(sqs))
}

/// Creates the template's tables and queues in the emulator; fills in `resolver` with their
/// names, URLs and ARNs. Returns logical id → name or URL.
async fn create_resources(
    template: &Template,
    endpoint: &str,
    resolver: &mut Resolver,
) -> Result<BTreeMap<String, String>> {
    let (dynamodb, sqs) = emulator_clients(endpoint);
    let mut resources = BTreeMap::new();
    for table in template.tables()? {
        let mut create = dynamodb.create_table().table_name(&table.logical_id).billing_mode(BillingMode::PayPerRequest);
        for (name, kind) in &table.keys {
            let kind = if kind == "RANGE" { KeyType::Range } else { KeyType::Hash };
            create = create.key_schema(KeySchemaElement::builder().attribute_name(name).key_type(kind).build()?);
        }
        for (name, kind) in &table.attributes {
            let kind = ScalarAttributeType::from(kind.as_str());
            create = create.attribute_definitions(
                AttributeDefinition::builder().attribute_name(name).attribute_type(kind).build()?,
            );
        }
        match create.send().await {
            Ok(_) => {}
            Err(e) if e.as_service_error().is_some_and(|e| e.is_resource_in_use_exception()) => {}
            Err(e) => bail!("creating table {}: {}", table.logical_id, aws_sdk_dynamodb::error::DisplayErrorContext(e)),
        }
        resolver.refs.insert(table.logical_id.clone(), table.logical_id.clone());
        resources.insert(table.logical_id.clone(), table.logical_id);
    }
    // Queues that others redrive to come first, so their ARNs are known.
    let mut queues = template.queues();
    queues.sort_by_key(|q| q.properties.contains_key("RedrivePolicy"));
    for queue in queues {
        let mut create = sqs.create_queue().queue_name(&queue.logical_id);
        for (name, value) in &queue.properties {
            let value = match value {
                serde_json::Value::Object(policy) => {
                    let resolved: serde_json::Map<String, serde_json::Value> = policy
                        .iter()
                        .map(|(k, v)| Ok((k.clone(), serde_json::Value::String(resolver.resolve(v)?))))
                        .collect::<Result<_>>()?;
                    serde_json::Value::Object(resolved).to_string()
                }
                other => resolver.resolve(other)?,
            };
            create = create.attributes(QueueAttributeName::from(name.as_str()), value);
        }
        let created = create.send().await.map_err(|e| {
            anyhow::anyhow!("creating queue {}: {}", queue.logical_id, aws_sdk_sqs::error::DisplayErrorContext(e))
        })?;
        let url = created.queue_url().context("no queue URL")?.to_string();
        let attributes = sqs
            .get_queue_attributes()
            .queue_url(&url)
            .attribute_names(QueueAttributeName::QueueArn)
            .send()
            .await
            .map_err(|e| {
                anyhow::anyhow!("reading queue {}: {}", queue.logical_id, aws_sdk_sqs::error::DisplayErrorContext(e))
            })?;
        let arn = attributes.attributes().and_then(|a| a.get(&QueueAttributeName::QueueArn)).context("no queue ARN")?;
        resolver.refs.insert(queue.logical_id.clone(), url.clone());
        resolver.attributes.insert((queue.logical_id.clone(), "Arn".into()), arn.clone());
        resolver.attributes.insert((queue.logical_id.clone(), "QueueName".into()), queue.logical_id.clone());
        resources.insert(queue.logical_id, url);
    }
    Ok(resources)
}
