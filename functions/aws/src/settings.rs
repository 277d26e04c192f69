//! The functions' settings, read from the environment once at start. Each function declares one
//! `clap::Parser` struct of the pieces below (flattened) and loads it with [`load`]; the variable
//! names are the template's. A value the template sets to `""` means the default (sam local passes
//! every declared variable, empty when the user gave none).

use std::convert::Infallible;

use clap::{Args, Parser};

pub const DEFAULT_BOOKS_DB_URL: &str = "http://127.0.0.1:7001";
pub const DEFAULT_ORDERS_TABLE: &str = "bookstore-orders";
pub const DEFAULT_IDEMPOTENCY_TABLE: &str = "bookstore-idempotency";
pub const DEFAULT_SERVICE_STATE_TABLE: &str = "bookstore-service-state";
pub const DEFAULT_PAYMENTS_TABLE: &str = "bookstore-payments";
pub const DEFAULT_TRANSACTION_VERIFICATION_FUNCTION: &str = "transaction-verification";
pub const DEFAULT_FRAUD_DETECTION_FUNCTION: &str = "fraud-detection";
pub const DEFAULT_SUGGESTIONS_FUNCTION: &str = "suggestions";
pub const DEFAULT_PAYMENT_FUNCTION: &str = "payment";

/// A setting that is missing or malformed, in one line naming the variable.
#[derive(thiserror::Error)]
#[error("bad settings: {0}")]
pub struct SettingsError(String);

// A main that returns the error prints it with Debug: the message itself, not a struct.
impl std::fmt::Debug for SettingsError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        std::fmt::Display::fmt(self, f)
    }
}

/// Reads `T` from the environment only: the function's command line is ignored (the Lambda
/// runtime gives none).
pub fn load<T: Parser>() -> Result<T, SettingsError> {
    T::try_parse_from(["function"]).map_err(|e| SettingsError(one_line(&e.render().to_string())))
}

/// clap's message without its usage lines, on one line: a start failure is one log line.
fn one_line(message: &str) -> String {
    message
        .lines()
        .map(str::trim)
        .filter(|l| !l.is_empty() && !l.starts_with("Usage:") && !l.starts_with("For more information"))
        .map(|l| l.trim_start_matches("error: "))
        .collect::<Vec<_>>()
        .join(" ")
}

/// A value parser for a setting with a default: empty (or blank) means the default.
pub fn or_default(
    default: &'static str,
) -> impl Fn(&str) -> Result<String, Infallible> + Clone + Send + Sync + 'static {
    move |value: &str| Ok(if value.trim().is_empty() { default.to_string() } else { value.to_string() })
}

/// A value parser for a required setting: empty is refused like unset.
pub fn non_empty(value: &str) -> Result<String, String> {
    if value.trim().is_empty() { Err("must not be empty".into()) } else { Ok(value.to_string()) }
}

/// A value parser for a whole number with a default: blank means the default.
pub fn number_or<T>(default: T) -> impl Fn(&str) -> Result<T, String> + Clone + Send + Sync + 'static
where
    T: std::str::FromStr + Clone + Send + Sync + 'static,
{
    move |value: &str| match value.trim() {
        "" => Ok(default.clone()),
        text => text.parse().map_err(|_| format!("must be a whole number, not {value:?}")),
    }
}

/// Where AWS is: unset or empty means the SDK's own configuration (`AWS_ENDPOINT_URL*`, or AWS).
#[derive(Debug, Clone, Default, Args)]
pub struct AwsSettings {
    /// Every AWS service's endpoint when set: a local emulator's URL. The template declares it
    /// (empty on AWS), so that `sam local` can set it for a function, which it does only for
    /// declared variables; the SDK's own `AWS_ENDPOINT_URL` would warn when empty.
    #[arg(long, env = "EMULATOR_ENDPOINT_URL")]
    pub emulator_endpoint_url: Option<String>,
    /// The Lambda API's endpoint when set, over the emulator's: the embedded default's functions
    /// run under `cargo lambda watch`, beside the emulator.
    #[arg(long, env = "LAMBDA_ENDPOINT_URL")]
    pub lambda_endpoint_url: Option<String>,
}

impl AwsSettings {
    pub fn emulator_endpoint(&self) -> Option<&str> {
        self.emulator_endpoint_url.as_deref().filter(|v| !v.is_empty())
    }

    pub fn lambda_endpoint(&self) -> Option<&str> {
        self.lambda_endpoint_url.as_deref().filter(|v| !v.is_empty())
    }
}

#[derive(Debug, Clone, Args)]
pub struct BooksDbSettings {
    /// The books database's nodes, comma-separated.
    #[arg(long, env = "BOOKS_DB_URL", default_value = DEFAULT_BOOKS_DB_URL, value_parser = or_default(DEFAULT_BOOKS_DB_URL))]
    pub books_db_url: String,
}

#[derive(Debug, Clone, Args)]
pub struct OrdersTableSettings {
    #[arg(long, env = "ORDERS_TABLE", default_value = DEFAULT_ORDERS_TABLE, value_parser = or_default(DEFAULT_ORDERS_TABLE))]
    pub orders_table: String,
}

#[derive(Debug, Clone, Args)]
pub struct IdempotencySettings {
    #[arg(long, env = "IDEMPOTENCY_TABLE", default_value = DEFAULT_IDEMPOTENCY_TABLE, value_parser = or_default(DEFAULT_IDEMPOTENCY_TABLE))]
    pub idempotency_table: String,
}

#[derive(Debug, Clone, Args)]
pub struct OrderQueueSettings {
    /// Required: an approved order that cannot be queued is never executed.
    #[arg(long, env = "ORDER_QUEUE_URL", value_parser = non_empty)]
    pub order_queue_url: String,
}

/// The settings of the three services (transaction verification, fraud detection, suggestions).
#[derive(Debug, Clone, Parser)]
pub struct ServiceSettings {
    #[command(flatten)]
    pub aws: AwsSettings,
    #[arg(long, env = "SERVICE_STATE_TABLE", default_value = DEFAULT_SERVICE_STATE_TABLE, value_parser = or_default(DEFAULT_SERVICE_STATE_TABLE))]
    pub service_state_table: String,
}

/// The services' function names, for the orchestrator.
#[derive(Debug, Clone, Args)]
pub struct ServiceFunctions {
    #[arg(long, env = "TRANSACTION_VERIFICATION_FUNCTION", default_value = DEFAULT_TRANSACTION_VERIFICATION_FUNCTION, value_parser = or_default(DEFAULT_TRANSACTION_VERIFICATION_FUNCTION))]
    pub transaction_verification: String,
    #[arg(long, env = "FRAUD_DETECTION_FUNCTION", default_value = DEFAULT_FRAUD_DETECTION_FUNCTION, value_parser = or_default(DEFAULT_FRAUD_DETECTION_FUNCTION))]
    pub fraud_detection: String,
    #[arg(long, env = "SUGGESTIONS_FUNCTION", default_value = DEFAULT_SUGGESTIONS_FUNCTION, value_parser = or_default(DEFAULT_SUGGESTIONS_FUNCTION))]
    pub suggestions: String,
}

#[cfg(test)]
mod tests {
    use super::*;

    #[derive(Debug, Parser)]
    struct Example {
        #[command(flatten)]
        aws: AwsSettings,
        #[command(flatten)]
        books_db: BooksDbSettings,
        #[command(flatten)]
        queue: OrderQueueSettings,
        #[arg(long, env = "BOOKSTORE_TEST_NUMBER", default_value = "5", value_parser = number_or(5u32))]
        number: u32,
    }

    // One test: the environment is the process's, shared by tests running in parallel. The
    // variables are the real ones, so no other test in this crate may read them.
    #[test]
    fn settings_come_from_the_environment_with_defaults_and_refusals() {
        let vars = ["EMULATOR_ENDPOINT_URL", "LAMBDA_ENDPOINT_URL", "BOOKS_DB_URL", "ORDER_QUEUE_URL"];
        let set = |values: [Option<&str>; 4], number: Option<&str>| {
            for (name, value) in vars.iter().zip(values) {
                // SAFETY: this is the only test of the crate that touches the environment.
                unsafe {
                    match value {
                        Some(v) => std::env::set_var(name, v),
                        None => std::env::remove_var(name),
                    }
                }
            }
            unsafe {
                match number {
                    Some(v) => std::env::set_var("BOOKSTORE_TEST_NUMBER", v),
                    None => std::env::remove_var("BOOKSTORE_TEST_NUMBER"),
                }
            }
        };

        set([Some(""), None, Some(""), Some("http://queue")], Some(" "));
        let example: Example = load().unwrap();
        assert_eq!(example.aws.emulator_endpoint(), None, "empty means unset");
        assert_eq!(example.aws.lambda_endpoint(), None);
        assert_eq!(example.books_db.books_db_url, DEFAULT_BOOKS_DB_URL, "empty means the default");
        assert_eq!(example.queue.order_queue_url, "http://queue");
        assert_eq!(example.number, 5);

        set([Some("http://emu"), Some("http://watch"), Some("http://a,http://b"), Some("q")], Some("7"));
        let example: Example = load().unwrap();
        assert_eq!(example.aws.emulator_endpoint(), Some("http://emu"));
        assert_eq!(example.aws.lambda_endpoint(), Some("http://watch"));
        assert_eq!(example.books_db.books_db_url, "http://a,http://b");
        assert_eq!(example.number, 7);

        set([None, None, None, Some("")], None);
        let error = load::<Example>().unwrap_err().to_string();
        assert!(error.contains("ORDER_QUEUE_URL") && !error.contains('\n'), "{error}");

        set([None, None, None, None], None);
        let error = load::<Example>().unwrap_err().to_string();
        assert!(error.contains("order-queue-url") && !error.contains('\n'), "{error}");

        set([None, None, None, Some("q")], Some("many"));
        let error = load::<Example>().unwrap_err().to_string();
        assert!(error.contains("whole number") && !error.contains('\n'), "{error}");
        set([None, None, None, None], None);
    }
}
