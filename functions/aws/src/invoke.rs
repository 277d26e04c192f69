use aws_sdk_lambda::Client;
use aws_sdk_lambda::primitives::Blob;
use bookstore_domain::events::Service;
use bookstore_domain::orchestrator::ServiceClient;
use bookstore_domain::service::{ServiceRequest, ServiceResponse, Unavailable};
use bookstore_telemetry::context::Traced;
use serde::Serialize;
use serde::de::DeserializeOwned;
use tracing::Instrument as _;

use crate::settings::ServiceFunctions;
use crate::unavailable;

/// Calls the services through the Lambda Invoke API.
pub struct LambdaServices {
    client: Client,
    transaction_verification: String,
    fraud_detection: String,
    suggestions: String,
}

impl LambdaServices {
    /// `client` should not retry: a function error comes back once, as an error (`cargo lambda
    /// watch` answers one with HTTP 500, which the SDK would otherwise retry).
    pub fn new(client: Client, functions: ServiceFunctions) -> Self {
        let ServiceFunctions { transaction_verification, fraud_detection, suggestions } = functions;
        Self { client, transaction_verification, fraud_detection, suggestions }
    }

    fn function(&self, service: Service) -> &str {
        match service {
            Service::TransactionVerification => &self.transaction_verification,
            Service::FraudDetection => &self.fraud_detection,
            Service::Suggestions => &self.suggestions,
        }
    }
}

impl ServiceClient for LambdaServices {
    async fn call(&self, service: Service, request: &ServiceRequest) -> Result<ServiceResponse, Unavailable> {
        invoke_json(&self.client, self.function(service), request).await
    }
}

/// Invokes `function` with `request` as JSON and decodes its JSON answer; a function error is
/// an error, once.
pub(crate) async fn invoke_json<Q: Serialize, A: DeserializeOwned>(
    client: &Client,
    function: &str,
    request: &Q,
) -> Result<A, Unavailable> {
    let span = tracing::info_span!("invoke", function);
    // Taken inside the span, so that the callee's span is the invoke's child.
    let traced = span.in_scope(|| Traced::current(request));
    let payload = serde_json::to_vec(&traced).map_err(|e| unavailable("encoding the request", e))?;
    let answer = client
        .invoke()
        .function_name(function)
        .payload(Blob::new(payload))
        .send()
        .instrument(span)
        .await
        .map_err(|e| unavailable(&format!("invoking {function}"), aws_sdk_lambda::error::DisplayErrorContext(e)))?;
    let body = answer.payload().map(|p| p.as_ref()).unwrap_or_default();
    if let Some(error) = answer.function_error() {
        let detail: String = String::from_utf8_lossy(body).chars().take(300).collect();
        return Err(unavailable(&format!("{function} failed ({error})"), detail));
    }
    serde_json::from_slice(body).map_err(|e| unavailable(&format!("decoding {function}'s answer"), e))
}
