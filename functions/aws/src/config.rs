use aws_config::{BehaviorVersion, SdkConfig};
use aws_smithy_http_client::tls::{Provider, rustls_provider::CryptoMode};
use aws_smithy_runtime_api::client::http::SharedHttpClient;

/// Every AWS service's endpoint when set: a local emulator's URL. The template declares it (empty
/// on AWS), so that `sam local` can set it for a function, which it does only for declared
/// variables; the SDK's own `AWS_ENDPOINT_URL` would warn when empty.
pub const EMULATOR_ENDPOINT_URL: &str = "EMULATOR_ENDPOINT_URL";
/// The Lambda API's endpoint when set, over [`EMULATOR_ENDPOINT_URL`]: the embedded default's
/// functions run under `cargo lambda watch`, beside the emulator.
pub const LAMBDA_ENDPOINT_URL: &str = "LAMBDA_ENDPOINT_URL";

/// The SDK configuration from the environment (region, credentials, `AWS_ENDPOINT_URL*`,
/// [`EMULATOR_ENDPOINT_URL`]), with [`http_client`].
pub async fn sdk_config() -> SdkConfig {
    let mut loader = aws_config::defaults(BehaviorVersion::latest()).http_client(http_client());
    if let Some(url) = non_empty_env(EMULATOR_ENDPOINT_URL) {
        loader = loader.endpoint_url(url);
    }
    loader.load().await
}

/// The SDK's HTTP(S) client: rustls on ring. The SDK's default TLS stack builds aws-lc-sys,
/// which cross-compiling with zig (sam build, cargo lambda build) does not always manage.
pub fn http_client() -> SharedHttpClient {
    aws_smithy_http_client::Builder::new().tls_provider(Provider::Rustls(CryptoMode::Ring)).build_https()
}

/// An environment variable, or `default` when it is unset or empty.
pub fn env_or(name: &str, default: &str) -> String {
    non_empty_env(name).unwrap_or_else(|| default.to_string())
}

fn non_empty_env(name: &str) -> Option<String> {
    std::env::var(name).ok().filter(|v| !v.is_empty())
}

/// A Lambda client that does not retry: a function error must come back once, not three times
/// (`cargo lambda watch` answers one with HTTP 500, which the SDK would otherwise retry).
/// An invoke that takes longer than 20 s fails, so that a hung function cannot hold its caller.
pub fn lambda_client(config: &SdkConfig) -> aws_sdk_lambda::Client {
    let retry = aws_sdk_lambda::config::retry::RetryConfig::disabled();
    let timeout = aws_sdk_lambda::config::timeout::TimeoutConfig::builder()
        .operation_timeout(std::time::Duration::from_secs(20))
        .build();
    let mut lambda = aws_sdk_lambda::config::Builder::from(config).retry_config(retry).timeout_config(timeout);
    if let Some(url) = non_empty_env(LAMBDA_ENDPOINT_URL) {
        lambda = lambda.endpoint_url(url);
    }
    aws_sdk_lambda::Client::from_conf(lambda.build())
}
