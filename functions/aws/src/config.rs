use aws_config::{BehaviorVersion, SdkConfig};
use aws_smithy_http_client::tls::{Provider, rustls_provider::CryptoMode};
use aws_smithy_runtime_api::client::http::SharedHttpClient;

use crate::settings::AwsSettings;

/// The SDK configuration from the environment (region, credentials, `AWS_ENDPOINT_URL*`), over
/// which the emulator's endpoint goes when set, with [`http_client`].
pub async fn sdk_config(aws: &AwsSettings) -> SdkConfig {
    let mut loader = aws_config::defaults(BehaviorVersion::latest()).http_client(http_client());
    if let Some(url) = aws.emulator_endpoint() {
        loader = loader.endpoint_url(url);
    }
    loader.load().await
}

/// The SDK's HTTP(S) client: rustls on ring. The SDK's default TLS stack builds aws-lc-sys,
/// which cross-compiling with zig (sam build, cargo lambda build) does not always manage.
pub fn http_client() -> SharedHttpClient {
    aws_smithy_http_client::Builder::new().tls_provider(Provider::Rustls(CryptoMode::Ring)).build_https()
}

/// A Lambda client that does not retry: a function error must come back once, not three times
/// (`cargo lambda watch` answers one with HTTP 500, which the SDK would otherwise retry).
/// An invoke that takes longer than 20 s fails, so that a hung function cannot hold its caller.
pub fn lambda_client(config: &SdkConfig, aws: &AwsSettings) -> aws_sdk_lambda::Client {
    let retry = aws_sdk_lambda::config::retry::RetryConfig::disabled();
    let timeout = aws_sdk_lambda::config::timeout::TimeoutConfig::builder()
        .operation_timeout(std::time::Duration::from_secs(20))
        .build();
    let mut lambda = aws_sdk_lambda::config::Builder::from(config).retry_config(retry).timeout_config(timeout);
    if let Some(url) = aws.lambda_endpoint() {
        lambda = lambda.endpoint_url(url);
    }
    aws_sdk_lambda::Client::from_conf(lambda.build())
}
