//! The embedded default's EventBridge: invokes each function with a `Schedule` event in
//! `template.yaml` at its rate, with the event a scheduled rule sends. A failed invoke is logged
//! and the next tick tries again, as a rule would.

use std::time::Duration;

use crate::functions::invoke_url;
use crate::template::FunctionSpec;

/// What an EventBridge scheduled rule sends its target (the fields functions may read).
pub const SCHEDULED_EVENT: &str = r#"{"version":"0","id":"embedded-default","detail-type":"Scheduled Event","source":"aws.events","account":"000000000000","region":"us-east-1","resources":[],"detail":{}}"#;

#[derive(Debug, Clone, PartialEq)]
pub struct Schedule {
    pub binary: String,
    pub invoke_url: String,
    pub every: Duration,
}

impl Schedule {
    /// One per `Schedule` event of `functions`; `every` (tests) runs each that often instead.
    pub fn for_functions(functions: &[FunctionSpec], watch_url: &str, every: Option<Duration>) -> Vec<Schedule> {
        let schedules = functions.iter().flat_map(|function| {
            function.schedules.iter().map(|rate| Schedule {
                binary: function.binary.clone(),
                invoke_url: invoke_url(watch_url, &function.binary),
                every: every.unwrap_or(*rate),
            })
        });
        schedules.collect()
    }

    /// Invokes the function every period, the first time one period from now, until the task
    /// is aborted.
    pub async fn run(self) {
        let http = match reqwest::Client::builder().no_proxy().timeout(Duration::from_secs(900)).build() {
            Ok(http) => http,
            Err(e) => return eprintln!("schedule of {}: {e}", self.binary),
        };
        let mut ticks = tokio::time::interval_at(tokio::time::Instant::now() + self.every, self.every);
        ticks.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
        loop {
            ticks.tick().await;
            let answer = http.post(&self.invoke_url).body(SCHEDULED_EVENT).send().await;
            match answer {
                Ok(answer) if answer.status().is_success() => {}
                Ok(answer) => eprintln!("schedule of {}: the invoke answered {}", self.binary, answer.status()),
                Err(e) => eprintln!("schedule of {}: {e}", self.binary),
            }
        }
    }
}
