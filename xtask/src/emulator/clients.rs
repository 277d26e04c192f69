//! Clients of the AWS emulator, as the stack and its tools talk to it.

use aws_sdk_dynamodb::config::{Credentials, Region};

/// The one region everything local runs in.
pub const REGION: &str = "us-east-1";

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
