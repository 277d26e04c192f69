//! DynamoDB table access shared by the orders, payments and service-state tables.

#[cfg(test)]
pub(crate) mod replay {
    //! A DynamoDB client that answers each call from a script and keeps the requests, so tests
    //! pin the exact wire shape of items and conditions.

    use aws_sdk_dynamodb::Client;
    use aws_sdk_dynamodb::config::{BehaviorVersion, Credentials, Region};
    use aws_smithy_http_client::test_util::{ReplayEvent, StaticReplayClient};
    use aws_smithy_types::body::SdkBody;
    use serde_json::{Value, json};

    pub(crate) struct Replay {
        pub client: Client,
        http: StaticReplayClient,
    }

    /// The answer DynamoDB gives when a condition expression did not hold.
    pub(crate) fn condition_failed() -> (u16, Value) {
        let kind = "com.amazonaws.dynamodb.v20120810#ConditionalCheckFailedException";
        (400, json!({"__type": kind, "message": "The conditional request failed"}))
    }

    /// A client whose calls get `answers` (status, JSON body), in order.
    pub(crate) fn replay(answers: Vec<(u16, Value)>) -> Replay {
        let events = answers
            .into_iter()
            .map(|(status, body)| {
                let request = http::Request::builder().body(SdkBody::empty()).unwrap();
                let response = http::Response::builder()
                    .status(status)
                    .header("content-type", "application/x-amz-json-1.0")
                    .body(SdkBody::from(body.to_string()))
                    .unwrap();
                ReplayEvent::new(request, response)
            })
            .collect();
        let http = StaticReplayClient::new(events);
        let config = aws_sdk_dynamodb::Config::builder()
            .behavior_version(BehaviorVersion::latest())
            .region(Region::new("us-east-1"))
            .credentials_provider(Credentials::new("test", "test", None, None, "test"))
            .endpoint_url("http://dynamodb.test")
            .http_client(http.clone())
            .build();
        Replay { client: Client::from_conf(config), http }
    }

    impl Replay {
        /// Every call made: its operation (`PutItem`, …) and its JSON body.
        pub(crate) fn calls(&self) -> Vec<(String, Value)> {
            self.http
                .actual_requests()
                .map(|request| {
                    let target = request.headers().get("x-amz-target").unwrap_or_default();
                    let operation = target.trim_start_matches("DynamoDB_20120810.").to_string();
                    (operation, serde_json::from_slice(request.body().bytes().unwrap()).unwrap())
                })
                .collect()
        }
    }
}
