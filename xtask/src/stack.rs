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
use std::num::NonZeroU32;
use std::path::PathBuf;
use std::sync::Arc;
use std::time::Duration;

use anyhow::{Context, Result};
use bookstore_aws::{EXECUTOR_KNOBS_KEY, EmulatedFaults};
use raft_local_cluster::free_ports;
use tokio_util::sync::CancellationToken;
use tokio_util::task::AbortOnDropHandle;

pub use crate::emulator::AwsEmulator;

use crate::books_db::{BooksDbCluster, BooksDbMode};
use crate::collector::Collector;
use crate::data_dir::DataDir;
use crate::emulator::{REGION, emulator_clients};
use crate::faults::FaultControls;
use crate::functions::{self, WATCH};
use crate::gateway::Extras;
use crate::gateway_telemetry::GatewayTelemetry;
use crate::poller::QueuePoller;
use crate::rate_limit::CheckoutLimit;
use crate::sam_local::SamLocal;
use crate::scheduler::Schedule;
use crate::supervisor::{Processes, Stop, spawn_logged};
use crate::template::{FunctionSpec, Resolver, Route, Template};
use crate::venv;

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
    /// Checkouts a minute the gateway takes from one client address; `None` takes all (tests
    /// and benchmarks send many from one).
    pub checkout_limit: Option<NonZeroU32>,
    /// Run the template's scheduled functions this often instead of at their rate (tests).
    pub schedule_every: Option<Duration>,
    /// Serve `sam local` too: relay the services onto Docker's bridge and write the SAM CLI's
    /// `--env-vars` file (see [`crate::sam_local`]). Needs a Docker engine.
    pub sam_local: bool,
    /// Serve the fault controls (see [`crate::faults`]).
    pub fault_controls: bool,
    /// Where the functions, the nodes and the gateway send their traces and metrics.
    pub telemetry: TelemetryTarget,
}

/// Where telemetry goes.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub enum TelemetryTarget {
    /// The stack's own [`Collector`] (and Prometheus scraping it).
    #[default]
    Collector,
    /// An OTLP/HTTP collector's base URL.
    Endpoint(String),
    /// Nowhere: no exporter in any process (the benchmarks' baseline).
    Off,
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
            checkout_limit: None,
            schedule_every: None,
            sam_local: false,
            fault_controls: false,
            telemetry: TelemetryTarget::Collector,
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
    /// The storefront with its fault controls unlocked (the cluster secret in the URL's
    /// fragment, which the browser does not send), when they are served.
    pub fault_controls_url: Option<String>,
    /// The stack's telemetry collector (see [`crate::collector`]), at `collector_url`.
    pub collector: Arc<Collector>,
    pub collector_url: String,
    /// Prometheus scraping the collector, when Debian's package is installed.
    pub prometheus_url: Option<String>,
    pub logs: PathBuf,
    processes: Processes,
    gateway: tokio::task::JoinHandle<()>,
    /// Aborted when dropped: a stack that fails to start leaves no collector behind.
    _collector_task: AbortOnDropHandle<()>,
    /// The event source mappings, and the tasks running them.
    mappings: Vec<QueuePoller>,
    pollers: Vec<tokio::task::JoinHandle<()>>,
    pollers_stop: CancellationToken,
    /// The scheduled functions' timers.
    schedules: Vec<tokio::task::JoinHandle<()>>,
    _data_dir: DataDir,
}

impl Stack {
    pub async fn start(options: StackOptions) -> Result<Stack> {
        let venv = venv::ensure()?;
        let template = Template::load(&venv, &crate::workspace_root().join("template.yaml"))?;
        let functions = template.functions()?;
        let data_dir = DataDir::open(options.data_dir.clone(), "bookstore-stack-")?;
        functions::build(&functions, options.release)?;

        let mut processes = Processes::default();
        let aws_endpoint = start_emulator(options.aws, options.aws_port, &data_dir, &mut processes).await?;
        let mut resolver = resolver(&template, &options.parameters);
        let resources = crate::emulator::create_resources(&template, &aws_endpoint, &mut resolver).await?;

        let collector = Arc::new(Collector::default());
        let (collector_url, collector_task) = crate::collector::serve(collector.clone()).await?;
        // Prometheus reads the stack's own collector: with telemetry sent elsewhere it would be empty.
        let prometheus_binary = crate::prometheus::binary().filter(|_| options.telemetry == TelemetryTarget::Collector);
        let prometheus_url = match prometheus_binary {
            Some(binary) => {
                let target = collector_url.trim_start_matches("http://");
                Some(
                    crate::prometheus::start(&binary, addr(0)?, target, &data_dir.path, &data_dir.logs, &mut processes)
                        .await?,
                )
            }
            None => None,
        };
        let otlp_endpoint = match &options.telemetry {
            TelemetryTarget::Collector => Some(collector_url.clone()),
            TelemetryTarget::Endpoint(url) => Some(url.clone()),
            TelemetryTarget::Off => None,
        };
        let books_db = BooksDbCluster::start(
            options.books_db,
            options.books_db_port,
            &data_dir.path,
            !data_dir.is_kept(),
            otlp_endpoint.as_deref(),
        )
        .await?;
        resolver.refs.insert("BooksDbUrl".into(), books_db.urls().join(","));
        release_orphaned_reservations(&books_db, &aws_endpoint, &resources).await?;
        // Knobs set from the fault controls last for the run that set them (a read first: a
        // delete is a Raft write, even of nothing).
        let db = books_db.client()?;
        if db.get(EXECUTOR_KNOBS_KEY).await.context("reading the executors' knobs")?.is_some() {
            db.delete(EXECUTOR_KNOBS_KEY).await.context("resetting the executors' knobs")?;
        }
        let fault_controls = match options.fault_controls {
            true => Some(Arc::new(FaultControls::new(&books_db, configured_executor_knobs(&resolver)?)?)),
            false => None,
        };

        let watch_addr = addr(options.watch_port)?;
        let watch_url = format!("http://{watch_addr}");
        for function in &functions {
            resolver.refs.insert(function.logical_id.clone(), function.binary.clone());
        }
        resolver.refs.insert("EmulatorEndpointUrl".into(), aws_endpoint.clone());
        resolver.refs.insert("LambdaEndpointUrl".into(), watch_url.clone());
        resolver.refs.insert("OtlpEndpoint".into(), otlp_endpoint.clone().unwrap_or_default());
        let mut function_env = functions::environment(&functions, &resolver)?;
        // `sam local`'s functions reach the collector, as every other service, through a relay on
        // the Docker bridge; each of its containers lives for one invocation, so they keep the
        // default, a flush at the end of each.
        let sam_local = match options.sam_local {
            true => Some(SamLocal::start(&function_env, &data_dir.path.join("sam-env.json")).await?),
            false => None,
        };
        // The functions under `cargo lambda watch` are never frozen between invocations: their
        // spans go out on the batch exporter's schedule instead of one export per invocation,
        // which doubled a checkout's time (README, "Metrics and traces").
        function_env.insert("TELEMETRY_FLUSH_EACH_INVOCATION".into(), "false".into());
        let env_file = data_dir.path.join("functions.env");
        functions::write_env_file(&function_env, &env_file)?;
        let watch = functions::watch_command(&venv, watch_addr.port(), options.release, &env_file);
        processes.push(WATCH, spawn_logged(watch, &data_dir.logs.join("cargo-lambda-watch.log"))?, Stop::Kill);

        let fault_secret = fault_controls.as_ref().map(|_| books_db.secret().to_string());
        let extras = Extras {
            limit: options.checkout_limit.map(CheckoutLimit::per_minute),
            faults: fault_controls,
            telemetry: otlp_endpoint.as_deref().map(|url| Arc::new(GatewayTelemetry::new(url))),
            prometheus: prometheus_url.clone(),
        };
        let (gateway_url, gateway) = serve_gateway(&functions, options.gateway_port, &watch_url, extras).await?;
        let fault_controls_url = fault_secret.map(|secret| format!("{gateway_url}/#faults={secret}"));
        let (_, sqs) = emulator_clients(&aws_endpoint);
        let mappings = QueuePoller::for_functions(&functions, &resources, &resolver, &sqs, &watch_url)?;
        let schedules = Schedule::for_functions(&functions, &watch_url, options.schedule_every);
        let mut stack = Stack {
            gateway_url,
            aws: options.aws,
            aws_endpoint,
            watch_url,
            books_db,
            function_env,
            resources,
            sam_local,
            fault_controls_url,
            collector,
            collector_url,
            prometheus_url,
            logs: data_dir.logs.clone(),
            processes,
            gateway,
            _collector_task: collector_task,
            mappings,
            pollers: Vec::new(),
            pollers_stop: CancellationToken::new(),
            schedules: Vec::new(),
            _data_dir: data_dir,
        };
        functions::warm_up(&functions, &stack.gateway_url, &stack.watch_url, &stack.logs).await?;
        stack.start_pollers();
        let timers = schedules.into_iter().map(|schedule| tokio::spawn(schedule.run()));
        stack.schedules = timers.collect();
        Ok(stack)
    }

    /// Stops so that the next start carries on where this one stopped: no more requests, the
    /// functions stopped (an execution in progress dies as in a crash, and its order is finished by
    /// the message's next delivery), the messages the pollers held made visible again at once
    /// (instead of after the 240-s visibility timeout), then the emulator stopped with SIGTERM so
    /// that it saves its state, and the books database.
    pub async fn shutdown(mut self) {
        self.gateway.abort();
        for timer in &self.schedules {
            timer.abort();
        }
        self.pollers_stop.cancel();
        if let Some(mut watch) = self.processes.take(WATCH) {
            watch.stop();
        }
        for poller in self.pollers.drain(..) {
            let _ = poller.await;
        }
        // Drop stops the rest, the emulator last and gracefully.
    }

    /// Stops the queue pollers once they finish the batches in hand: messages wait in the queue.
    pub async fn stop_pollers(&mut self) {
        self.pollers_stop.cancel();
        for poller in self.pollers.drain(..) {
            let _ = poller.await;
        }
    }

    /// Starts the queue pollers, unless they run.
    pub fn start_pollers(&mut self) {
        if self.pollers.is_empty() {
            self.pollers_stop = CancellationToken::new();
            let pollers =
                self.mappings.iter().map(|poller| tokio::spawn(poller.clone().run(self.pollers_stop.clone())));
            self.pollers = pollers.collect();
        }
    }

    /// A function's Lambda Invoke URL on `cargo lambda watch`.
    pub fn invoke_url(&self, binary: &str) -> String {
        functions::invoke_url(&self.watch_url, binary)
    }
}

impl Drop for Stack {
    fn drop(&mut self) {
        self.gateway.abort();
        for timer in &self.schedules {
            timer.abort();
        }
        for poller in &self.pollers {
            poller.abort();
        }
        // Before the books database (a field), as a shutdown would; the collector (a field too)
        // goes after them.
        drop(std::mem::take(&mut self.processes));
    }
}

/// Starts the AWS emulator on `port` (0: a free one), keeping its state in a kept data dir;
/// returns its endpoint once it answers and has restored what it saved.
async fn start_emulator(aws: AwsEmulator, port: u16, data_dir: &DataDir, processes: &mut Processes) -> Result<String> {
    let addr = addr(port)?;
    let state_dir = data_dir.is_kept().then(|| crate::emulator::state_dir(&data_dir.path));
    let launch = aws.launch(addr.port(), state_dir.as_deref())?;
    let log = data_dir.logs.join(format!("{}.log", aws.name().to_lowercase()));
    processes.push(aws.name(), spawn_logged(launch.command, &log)?, launch.stop);
    let endpoint = format!("http://{addr}");
    processes.wait_until_serving(&format!("{endpoint}{}", launch.ready_path), &log, Duration::from_secs(60)).await?;
    if let Some(dir) = &state_dir {
        aws.check_restored(&log, dir)?;
    }
    Ok(endpoint)
}

/// The template's parameters (their defaults, over them `parameters`) and the region, for `Ref`.
fn resolver(template: &Template, parameters: &[(String, String)]) -> Resolver {
    let mut resolver = Resolver::default();
    resolver.refs.extend(template.parameter_defaults());
    resolver.refs.extend(parameters.iter().cloned());
    resolver.refs.insert("AWS::Region".into(), REGION.into());
    resolver
}

/// The executors' knobs the template's parameters give them.
fn configured_executor_knobs(resolver: &Resolver) -> Result<EmulatedFaults> {
    let parameter = |name: &str| resolver.refs.get(name).map(String::as_str);
    EmulatedFaults::parse(parameter("ExecutorDelayMs"), parameter("ExecutorFailureRate")).map_err(anyhow::Error::msg)
}

/// Gives back the stock reserved for orders the orders table no longer has (an emulator that
/// lost them in a crash).
async fn release_orphaned_reservations(
    books_db: &BooksDbCluster,
    aws_endpoint: &str,
    resources: &BTreeMap<String, String>,
) -> Result<()> {
    let (dynamodb, _) = emulator_clients(aws_endpoint);
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
    Ok(())
}

/// Serves the gateway (the template's routes onto the functions, and `web/`) on `port`; its URL
/// and task.
async fn serve_gateway(
    functions: &[FunctionSpec],
    port: u16,
    watch_url: &str,
    extras: Extras,
) -> Result<(String, tokio::task::JoinHandle<()>)> {
    let routes: Vec<(Route, String)> =
        functions.iter().flat_map(|f| f.routes.iter().map(|r| (r.clone(), f.binary.clone()))).collect();
    let listener = tokio::net::TcpListener::bind(addr(port)?).await.context("binding the gateway")?;
    let url = format!("http://{}", listener.local_addr()?);
    let router = crate::gateway::router(&routes, watch_url.to_string(), extras)?;
    // Each client's address, for the checkout limit and the fault controls.
    let service = router.into_make_service_with_connect_info::<SocketAddr>();
    let task = tokio::spawn(async move {
        if let Err(e) = axum::serve(listener, service).await {
            eprintln!("gateway stopped: {e}");
        }
    });
    Ok((url, task))
}

/// 127.0.0.1:`port`, or a free port for 0.
pub(crate) fn addr(port: u16) -> Result<SocketAddr> {
    let port = match port {
        0 => free_ports(1)?.first().copied().context("no free port")?,
        port => port,
    };
    Ok(SocketAddr::from(([127, 0, 0, 1], port)))
}
