//! `cargo xtask deploy --local`: the unchanged template built by `sam build`, deployed by
//! `sam deploy` to a MiniStack started here (CloudFormation, API Gateway, Lambda, SQS, DynamoDB),
//! with the books database as processes. Through the deployed API: a checkout is approved, its
//! order is committed by the deployed event source mapping, and a bad body gets its 4xx; the
//! storefront it serves uses that API.

// A test fails by panicking: its helpers unwrap too, not only its #[test] functions.
#![allow(clippy::unwrap_used, clippy::expect_used)]

mod common;

use std::time::{Duration, Instant};

use serde_json::{Value, json};
use xtask::books_db::BooksDbMode;
use xtask::deploy::{DeployOptions, LocalDeployment};

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_checkout_commits_through_the_deployed_template() {
    let deployment = LocalDeployment::start(DeployOptions {
        port: 0,
        books_db: BooksDbMode::Processes,
        books_db_port: 0,
        storefront_port: 0,
        stack_name: "bookstore-test".into(),
        data_dir: None,
    })
    .await
    .expect("the template deploys to MiniStack");
    let api = &deployment.api_url;
    let http = reqwest::Client::builder().no_proxy().timeout(Duration::from_secs(60)).build().unwrap();

    let books: Value = http.get(format!("{api}/books")).send().await.unwrap().json().await.unwrap();
    assert!(books.as_array().is_some_and(|books| books.iter().any(|b| b["bookId"] == "dune")), "{books}");

    let answer = http.post(format!("{api}/checkout")).json(&common::order(json!({}))).send().await.unwrap();
    let status = answer.status().as_u16();
    let checkout: Value = answer.json().await.unwrap_or(Value::Null);
    assert_eq!((status, &checkout["status"]), (200, &json!("Order Approved")), "{checkout}");
    let order_id = checkout["orderId"].as_str().expect("an order id");

    // The deployed event source mapping hands the order to the executor, which commits it.
    let deadline = Instant::now() + Duration::from_secs(120);
    let order = loop {
        let answer = http.get(format!("{api}/orders/{order_id}")).send().await.unwrap();
        assert_eq!(answer.status().as_u16(), 200);
        let order: Value = answer.json().await.unwrap();
        if order["status"] == "committed" || order["status"] == "failed" {
            break order;
        }
        assert!(Instant::now() < deadline, "order {order_id} is stuck: {order}");
        tokio::time::sleep(Duration::from_millis(250)).await;
    };
    assert_eq!(order["status"], "committed", "{order}");
    let history: Vec<&str> = order["history"].as_array().unwrap().iter().filter_map(|h| h["status"].as_str()).collect();
    assert_eq!(history, ["approved", "queued", "executing", "committed"]);

    // API Gateway passes the function's own 4xx on.
    for (body, code) in [("{bad", "invalid_json"), (r#"{"items": "x"}"#, "invalid_body")] {
        let answer = http
            .post(format!("{api}/checkout"))
            .header("content-type", "application/json")
            .body(body)
            .send()
            .await
            .unwrap();
        let status = answer.status().as_u16();
        let error: Value = answer.json().await.unwrap_or(Value::Null);
        assert!((400..500).contains(&status), "{body}: {status} {error}");
        assert_eq!(error["error"]["code"], code, "{body}: {error}");
        assert!(error["error"]["message"].is_string(), "{error}");
    }
    // The storefront's page uses the deployed API.
    let page = http.get(&deployment.storefront_url).send().await.unwrap().text().await.unwrap();
    assert!(page.contains(&format!(r#"<meta name="bookstore-api" content="{api}">"#)), "{page}");
    let script = http.get(format!("{}/js/api.js", deployment.storefront_url)).send().await.unwrap();
    assert_eq!(script.status().as_u16(), 200);
    // The page is another origin than the API: the browser's preflight must pass.
    let preflight = http
        .request(reqwest::Method::OPTIONS, format!("{api}/checkout"))
        .header("origin", &deployment.storefront_url)
        .header("access-control-request-method", "POST")
        .header("access-control-request-headers", "content-type")
        .send()
        .await
        .unwrap();
    assert!(preflight.status().is_success(), "preflight: {}", preflight.status());
    let allowed = preflight.headers().get("access-control-allow-origin").and_then(|v| v.to_str().ok());
    assert!(allowed == Some("*") || allowed == Some(deployment.storefront_url.as_str()), "{:?}", preflight.headers());
    drop(deployment);
}
