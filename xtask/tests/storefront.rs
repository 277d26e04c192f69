//! The storefront in a real headless Chromium (Debian's `chromium` and `chromium-driver`), driven
//! through WebDriver, against the embedded default started by the test: a shopper adds two books,
//! checks out, sees the order approved and committed and the stock drop; a bad card is rejected
//! with its reason; the cluster view shows the Raft nodes; the course's own page style of request
//! still works from another origin. A screenshot of the page after checkout is saved in
//! `target/test-artifacts/`.

// A test fails by panicking: its helpers unwrap too, not only its #[test] functions.
#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::path::{Path, PathBuf};
use std::process::Command;
use std::time::{Duration, Instant};

use fantoccini::elements::Element;
use fantoccini::key::Key;
use fantoccini::{Client, ClientBuilder, Locator};
use serde_json::{Value, json};
use xtask::stack::{AwsEmulator, Stack, StackOptions};
use xtask::supervisor::{Processes, Stop, spawn_logged};
use xtask::test_packages::{CHROMEDRIVER, CHROMIUM};

/// Long enough for an order to pass the queue, retries included.
const PATIENCE: Duration = Duration::from_secs(120);

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_shopper_buys_two_books_in_chromium() {
    for tool in [CHROMIUM, CHROMEDRIVER] {
        assert!(
            Path::new(tool).exists(),
            "{tool} is missing: `cargo xtask test` installs Debian's chromium and chromium-driver, as .ci/run does"
        );
    }
    let options = StackOptions { fault_controls: true, ..StackOptions::ephemeral(AwsEmulator::Ministack) };
    let stack = Stack::start(options).await.expect("the embedded default starts");
    let browser = Browser::start(&stack.logs).await;
    let page = &browser.client;
    let http = reqwest::Client::builder().no_proxy().build().expect("an HTTP client");
    let api = |path: &str| format!("{}{path}", stack.gateway_url);

    // Two books with copies to spare, and their stock before.
    let books: Vec<Value> = http.get(api("/books")).send().await.unwrap().json().await.unwrap();
    let chosen: Vec<&Value> = books.iter().filter(|b| b["stock"].as_u64().unwrap_or(0) >= 3).take(2).collect();
    assert_eq!(chosen.len(), 2, "the catalog has books in stock");
    let ids: Vec<&str> = chosen.iter().map(|b| b["bookId"].as_str().unwrap()).collect();

    let with_fault_controls = stack.fault_controls_url.as_deref().expect("the fault controls are on");
    page.goto(with_fault_controls).await.expect("the page opens");

    // Out-of-stock books cannot be added; the search narrows the catalog.
    wait_for(page, ".book").await;
    let sold_out: Vec<&Value> = books.iter().filter(|b| b["stock"] == 0).collect();
    assert!(!sold_out.is_empty(), "the seeded catalog has books out of stock");
    for book in sold_out {
        let add =
            wait_for(page, &format!(r#".book[data-book-id="{}"] button.add"#, book["bookId"].as_str().unwrap())).await;
        assert!(add.attr("disabled").await.unwrap().is_some(), "{} is out of stock but can be added", book["title"]);
    }
    let search = page.find(Locator::Id("search")).await.unwrap();
    search.send_keys(chosen[0]["title"].as_str().unwrap()).await.unwrap();
    let found = page.find_all(Locator::Css(".book")).await.unwrap();
    assert!(
        !found.is_empty() && found.len() < books.len(),
        "the search shows {} of {} books",
        found.len(),
        books.len()
    );
    search.clear().await.unwrap();
    search.send_keys(" ").await.unwrap();
    click(page, &format!(r#".book[data-book-id="{}"] button.add"#, ids[0])).await;
    // The second by keyboard: Enter on the focused button; the redrawn card keeps the focus.
    let add = wait_for(page, &format!(r#".book[data-book-id="{}"] button.add"#, ids[1])).await;
    add.send_keys(&Key::Enter.to_string()).await.unwrap();
    let focused = page
        .execute("return document.activeElement.closest('[data-book-id]')?.dataset.bookId ?? null;", vec![])
        .await
        .unwrap();
    assert_eq!(focused, json!(ids[1]), "the focus stays on the book just added");
    let lines = page.find_all(Locator::Css(".cart-line")).await.unwrap();
    assert_eq!(lines.len(), 2, "two lines in the cart");
    let cents = |b: &Value| (b["price"].as_f64().unwrap() * 100.0).round() as u64;
    let total = chosen.iter().map(|b| cents(b)).sum::<u64>();
    let total_text = text(page, "#cart-total").await;
    assert_eq!(total_text, format!("€{}.{:02}", total / 100, total % 100), "the cart's total");

    // Quantities change the total (typed over the old one: select all, type, tab away).
    let quantity =
        page.find(Locator::Css(&format!(r#".cart-line[data-book-id="{}"] input.qty"#, ids[0]))).await.unwrap();
    quantity.send_keys(&format!("{}a{}2\t", Key::Control, Key::Null)).await.unwrap();
    let doubled = total + cents(chosen[0]);
    wait_for_text(page, "#cart-total", |t| t == format!("€{}.{:02}", doubled / 100, doubled % 100)).await;
    let quantity =
        page.find(Locator::Css(&format!(r#".cart-line[data-book-id="{}"] input.qty"#, ids[0]))).await.unwrap();
    quantity.send_keys(&format!("{}a{}1\t", Key::Control, Key::Null)).await.unwrap();
    wait_for_text(page, "#cart-total", |t| t == total_text).await;

    // The cart survives a reload.
    page.refresh().await.unwrap();
    wait_for(page, ".book").await;
    wait_for(page, &format!(r#".cart-line[data-book-id="{}"]"#, ids[1])).await;
    assert_eq!(page.find_all(Locator::Css(".cart-line")).await.unwrap().len(), 2, "the cart after a reload");

    // Check out with the demo defaults; only the terms need ticking.
    click(page, r#"input[name="terms"]"#).await;
    click(page, "#place-order").await;
    let decision = wait_for_text(page, "#decision", |t| t.starts_with("Order")).await;
    assert_eq!(decision, "Order Approved");
    let suggestions = page.find_all(Locator::Css("#suggestions button.suggestion")).await.unwrap();
    assert!(!suggestions.is_empty(), "suggested books are shown");
    assert!(page.find_all(Locator::Css(".cart-line")).await.unwrap().is_empty(), "an approved order empties the cart");

    // The status follows the order to committed without a reload.
    let status = wait_for_text(page, "#order-status", |t| t == "committed" || t.starts_with("failed")).await;
    assert_eq!(status, "committed");
    let timeline: Vec<String> = attributes(page, "#status-timeline li", "data-status").await;
    assert_eq!(timeline, ["approved", "queued", "executing", "committed"], "the status history");

    // The two-phase commit's trail: a delivery took the order up, both participants voted, the
    // decision, both committed.
    let steps = attributes(page, "#trail li", "data-step").await;
    let participants = attributes(page, "#trail li", "data-participant").await;
    let protocol: Vec<(&str, &str)> = steps
        .iter()
        .zip(&participants)
        .filter(|(step, _)| *step != "claim")
        .map(|(step, participant)| (step.as_str(), participant.as_str()))
        .collect();
    assert_eq!(steps.first().map(String::as_str), Some("claim"), "{steps:?}");
    let expected =
        [("prepare", "stock"), ("prepare", "payment"), ("decide", ""), ("commit", "stock"), ("commit", "payment")];
    assert_eq!(protocol, expected, "the two-phase commit's trail");
    let decided = text(page, r#"#trail li[data-step="decide"]"#).await;
    assert!(decided.contains("decision recorded: commit"), "{decided}");

    // Its entries in the Raft log, the stock's vote linking to the prepare's.
    let kinds = wait_for_attributes(page, "#order-log li", "data-kind", |k| k.len() == 2).await;
    assert_eq!(kinds, ["command", "command"], "the prepare's and phase two's entries");
    let link = page.find(Locator::Css("#trail a.log-link")).await.expect("a link to the log entry");
    let target = link.attr("href").await.unwrap().unwrap();
    let first_entry = page.find(Locator::Css("#order-log li")).await.unwrap();
    assert_eq!(
        target,
        format!("#{}", first_entry.attr("id").await.unwrap().unwrap()),
        "the link names the prepare's entry"
    );
    let entry_text = first_entry.text().await.unwrap();
    assert!(entry_text.contains("txn") && entry_text.contains("reservation/"), "{entry_text}");
    let tail = wait_for_attributes(page, "#raft-log li", "data-kind", |k| !k.is_empty()).await;
    assert!(tail.len() <= 8 && tail.contains(&"command".to_string()), "the leader's newest entries: {tail:?}");

    // The space-time diagram: six events, one arrow per edge of the graph, a and c on one line.
    let events = page.find_all(Locator::Css("#spacetime g.event")).await.unwrap();
    assert_eq!(events.len(), 6, "events a-f");
    let arrows = page.find_all(Locator::Css("#spacetime line.message-arrow")).await.unwrap();
    assert_eq!(arrows.len(), 5, "a→c, b→d, c→e, d→e, e→f");
    let lane_of = |event: &'static str| async move {
        let circle = page.find(Locator::Css(&format!(r#"#spacetime g[data-event="{event}"] circle"#))).await.unwrap();
        circle.attr("cy").await.unwrap().unwrap()
    };
    assert_eq!(lane_of("a").await, lane_of("c").await, "a and c are both tv-a's");
    assert_ne!(lane_of("a").await, lane_of("b").await, "a and b are on different processes");

    // The stock shown drops by the copies bought.
    for book in &chosen {
        let id = book["bookId"].as_str().unwrap();
        let expected = format!("{} in stock", book["stock"].as_u64().unwrap() - 1);
        wait_for_text(page, &format!(r#".book[data-book-id="{id}"] .stock"#), |t| t == expected).await;
    }

    // The cluster view: three nodes, one leader, and the queues' depths.
    wait_for_attributes(page, "#nodes tr.node", "data-role", |roles| {
        roles.len() == 3 && roles.iter().filter(|r| *r == "leader").count() == 1
    })
    .await;
    assert!(text(page, "#queue-depth").await.contains("waiting"), "the order queue's depth is shown");
    assert!(text(page, "#dlq-size").await.contains("waiting"), "the dead-letter queue's size is shown");

    save_screenshot(page, "storefront-after-checkout.png").await;

    // The fault controls, from the page (opened with the link `up --fault-controls` prints; the
    // reload above kept the secret in the tab, out of the address bar).
    let address = page.current_url().await.unwrap();
    assert!(!address.as_str().contains("faults="), "the secret left the address bar: {address}");
    wait_for(page, "#fault-nodes button[data-action=\"pause\"]").await;
    let fault_button =
        |node: u64, action: &str| format!(r#"#fault-nodes button[data-node="{node}"][data-action="{action}"]"#);

    // A paused follower shows as unreachable, live, and comes back when it resumes.
    let status: Value = http.get(api("/status")).send().await.unwrap().json().await.unwrap();
    let follower = status["booksDb"].as_array().unwrap().iter().find(|n| n["role"] == "follower").expect("a follower")
        ["id"]
        .as_u64()
        .unwrap();
    click(page, &fault_button(follower, "pause")).await;
    let roles =
        wait_for_attributes(page, "#nodes tr.node", "data-role", |r| r.iter().any(|r| r == "unreachable")).await;
    click(page, &fault_button(follower, "resume")).await;
    assert_eq!(roles.iter().filter(|r| *r == "unreachable").count(), 1, "{roles:?}");
    wait_for_attributes(page, "#nodes tr.node", "data-role", |r| r.iter().all(|r| r != "unreachable")).await;
    let actions = wait_for_attributes(page, "#elections li.fault", "data-action", |a| a.len() == 2).await;
    assert_eq!(actions, ["resume", "pause"], "each action on the timeline, newest first");
    let paused = page.find_all(Locator::Css("#elections li.fault")).await.unwrap()[1].text().await.unwrap();
    assert!(paused.starts_with(&format!("fault: paused node {follower} ")), "{paused}");

    // Each node's vote, commit and applied index are shown; the leader voted for itself.
    let leader_row = r#"#nodes tr.node[data-role="leader"]"#;
    let voted = text(page, &format!("{leader_row} .voted-for")).await;
    let leader = status["booksDb"].as_array().unwrap().iter().find(|n| n["role"] == "leader").unwrap()["id"].clone();
    assert_eq!(voted, format!("node {leader}"), "the leader's vote");
    assert!(text(page, &format!("{leader_row} .committed")).await.parse::<u64>().is_ok_and(|c| c > 0));

    // Slow executors, set from the page: every execution from now on waits before preparing.
    let knobs = page.find(Locator::Id("executor-knobs")).await.unwrap();
    for (field, value) in [("delayMin", "1500"), ("delayMax", "1500"), ("failureRate", "0")] {
        let input = knobs.find(Locator::Css(&format!(r#"input[name="{field}"]"#))).await.unwrap();
        input.clear().await.unwrap();
        input.send_keys(value).await.unwrap();
    }
    click(page, r#"#executor-knobs button[type="submit"]"#).await;
    wait_for_attributes(page, "#elections li.fault", "data-action", |a| a.first().is_some_and(|a| a == "executor"))
        .await;
    // Placed with the cluster healthy, so that only the delay can make it wait (the order before,
    // with the knobs off, is shown for comparison).
    let before = text(page, "#order-id").await;
    let slow = place_order(page, ids[1]).await;
    let status = wait_for_text(page, "#order-status", |t| t == "committed" || t.starts_with("failed")).await;
    assert_eq!(status, "committed");
    let (waited, unset) = (prepare_wait(&http, &api(""), &slow).await, prepare_wait(&http, &api(""), &before).await);
    assert!(
        waited >= Duration::from_millis(1500),
        "the executor waited the delay set from the page: {waited:?} (before it was set: {unset:?})"
    );
    click(page, "#reset-knobs").await;
    wait_for_attributes(page, "#elections li.fault", "data-action", |a| {
        a.iter().filter(|a| *a == "executor").count() == 2
    })
    .await;

    // The leader paused from the page: the page shows the election of another, in a later term,
    // with its votes; an order placed meanwhile still commits.
    let elected = "#elections li:not(.fault)";
    let terms = attributes(page, elected, "data-term").await;
    assert_eq!(terms.len(), 1, "the leader seen when the page opened: {terms:?}");
    let leader = leader.as_u64().unwrap();
    click(page, &fault_button(leader, "pause")).await;
    place_order(page, ids[0]).await;
    let decision = wait_for_text(page, "#decision", |t| t.starts_with("Order")).await;
    assert_eq!(decision, "Order Approved", "an order placed while the leader is paused");
    let terms = wait_for_attributes(page, elected, "data-term", |t| t.len() == 2).await;
    let (new, old): (u64, u64) = (terms[0].parse().unwrap(), terms[1].parse().unwrap());
    assert!(new > old, "a later term: {terms:?}");
    // The first match is the newest.
    let election = text(page, elected).await;
    assert!(election.contains("votes from nodes"), "a majority voted: {election}");
    assert!(
        election.contains("no leader seen for") || election.contains("fell between two looks"),
        "how long there was no leader: {election}"
    );
    assert!(!election.contains(&format!("node {leader} leads")), "{election}");
    let status = wait_for_text(page, "#order-status", |t| t == "committed" || t.starts_with("failed")).await;
    assert_eq!(status, "committed", "the order placed while the leader was paused");
    click(page, &fault_button(leader, "resume")).await;

    // The new leader killed from the page, and restarted: another election.
    let killed: u64 = attributes(page, elected, "data-leader").await[0].parse().unwrap();
    click(page, &fault_button(killed, "kill")).await;
    wait_for_attributes(page, elected, "data-term", |t| t.len() == 3).await;
    click(page, &fault_button(killed, "restart")).await;
    wait_for_attributes(page, "#nodes tr.node", "data-role", |r| r.len() == 3 && r.iter().all(|r| r != "unreachable"))
        .await;
    let actions = attributes(page, "#elections li.fault", "data-action").await;
    assert_eq!(actions[..6], ["restart", "kill", "resume", "pause", "executor", "executor"], "{actions:?}");

    // A card that fails the Luhn check: hinted while typing, rejected by the services with why.
    click(page, &format!(r#".book[data-book-id="{}"] button.add"#, ids[0])).await;
    let card = page.find(Locator::Css(r#"input[name="cardNumber"]"#)).await.unwrap();
    card.clear().await.unwrap();
    card.send_keys("4111 1111 1111 1112").await.unwrap();
    wait_for_text(page, r#"[data-hint-for="cardNumber"]"#, |t| t.contains("card number")).await;
    click(page, "#place-order").await;
    let decision = wait_for_text(page, "#decision", |t| t.starts_with("Order Rejected")).await;
    let reason = decision.trim_start_matches("Order Rejected").trim_start_matches(':').trim();
    assert!(reason.to_lowercase().contains("card"), "the reason is shown: {decision:?}");
    wait_for_text(page, "#order-status", |t| t == "rejected").await;
    assert_eq!(page.find_all(Locator::Css(".cart-line")).await.unwrap().len(), 1, "a rejected order keeps the cart");

    // An API that cannot be reached is said in words (the page's API address, as a deployment
    // would set it, pointed at a closed port).
    page.execute(r#"document.querySelector('meta[name="bookstore-api"]').content = 'http://127.0.0.1:9';"#, vec![])
        .await
        .unwrap();
    click(page, "#place-order").await;
    let message = wait_for_text(page, "#message", |t| !t.is_empty()).await;
    assert!(message.starts_with("Cannot reach the bookstore"), "{message}");
    // And a 4xx in the server's own words (an API address with no such route behind it).
    let wrong = format!("{}/nowhere", stack.gateway_url);
    page.execute(r#"document.querySelector('meta[name="bookstore-api"]').content = arguments[0];"#, vec![json!(wrong)])
        .await
        .unwrap();
    click(page, "#place-order").await;
    let message = wait_for_text(page, "#message", |t| t.starts_with("Refused")).await;
    assert_eq!(message, "Refused: no such route");
    page.refresh().await.unwrap();
    wait_for(page, ".book").await;

    // A phone-sized screen: nothing wider than the screen.
    page.set_window_size(390, 844).await.unwrap();
    let overflow = page
        .execute("return document.documentElement.scrollWidth - document.documentElement.clientWidth;", vec![])
        .await
        .unwrap();
    assert!(overflow.as_i64().unwrap_or(1) <= 0, "the page scrolls sideways on a phone by {overflow}px");
    let width = page.execute("return window.innerWidth;", vec![]).await.unwrap();
    assert!(width.as_i64().is_some_and(|w| w <= 400), "the window is phone-sized: {width}");

    // The course's page: from another origin, no Content-Type, `termsAccepted`, `suggestedBooks`
    // read from the 200 answer.
    let other_origin = stack.gateway_url.replace("127.0.0.1", "localhost");
    page.goto(&format!("{other_origin}/")).await.unwrap();
    let course = json!({
        "user": {"name": "Ada Lovelace", "contact": "ada@example.org"},
        "creditCard": {"number": "4111111111111111", "expirationDate": "12/30", "cvv": "123"},
        "items": [{"name": chosen[0]["title"], "quantity": 1}],
        "billingAddress": {"street": "Narva mnt 18", "city": "Tartu", "zip": "51009", "country": "Estonia"},
        "shippingMethod": "Standard",
        "termsAccepted": true
    });
    let answer = page
        .execute_async(
            "const [url, body, done] = arguments;
             fetch(url, { method: 'POST', body: JSON.stringify(body) })
               .then(async (r) => done({ status: r.status, body: await r.json() }))
               .catch((e) => done({ error: String(e) }));",
            vec![json!(format!("{}/checkout", stack.gateway_url)), course],
        )
        .await
        .unwrap();
    assert_eq!(answer["status"], 200, "{answer}");
    assert_eq!(answer["body"]["status"], "Order Approved", "{answer}");
    assert!(answer["body"]["suggestedBooks"].is_array(), "{answer}");

    // The dashboard: Prometheus's series of the orders this test placed, drawn.
    page.set_window_size(1280, 1100).await.unwrap();
    page.goto(&format!("{}/dashboard.html", stack.gateway_url)).await.unwrap();
    let legend = wait_for_text(page, "#chart-orders .legend", |t| t.contains("approved")).await;
    assert!(legend.contains("approved: "), "{legend}");
    let points = wait_for_attributes(page, "#chart-orders polyline", "points", |p| {
        p.iter().any(|points| points.split(' ').count() >= 2)
    })
    .await;
    assert!(!points.is_empty(), "the orders are drawn");
    let terms = wait_for_text(page, "#chart-raft-term .legend", |t| t.matches("node ").count() == 3).await;
    assert!(terms.contains("node 1: "), "{terms}");
    wait_for_text(page, "#chart-checkout-latency .legend", |t| t.contains("95th percentile")).await;
    assert!(text(page, "#message").await.is_empty(), "no error shown");
    save_screenshot(page, "dashboard.png").await;

    browser.stop().await;
}

/// The page's own logic, run in Chromium on its modules as the gateway serves them (no stack
/// needed): the space-time diagram's layout from clocks, the checkout hints, the cart's total.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_pages_logic_in_chromium() {
    let logs = tempfile::tempdir().unwrap();
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let origin = format!("http://{}", listener.local_addr().unwrap());
    // Only web/: no routes, and no functions behind them.
    let router = xtask::gateway::router(&[], "http://127.0.0.1:9".into(), Default::default()).unwrap();
    let server = tokio::spawn(async move { axum::serve(listener, router).await });
    let browser = Browser::start(logs.path()).await;
    let page = &browser.client;
    // A document of the same origin that runs no script of its own.
    page.goto(&format!("{origin}/style.css")).await.unwrap();
    let results = page
        .execute_async(
            r#"const done = arguments[0];
            (async () => {
              const spacetime = await import('/js/spacetime.js');
              const checkout = await import('/js/checkout.js');
              const { Cart, euros } = await import('/js/cart.js');
              const clock = (a, b, fraud, suggestions) => ({ 'tv-a': a, 'tv-b': b, fraud, suggestions });
              const graph = [
                { event: 'f', vectorClock: clock(2, 1, 2, 1) },
                { event: 'a', vectorClock: clock(1, 0, 0, 0) },
                { event: 'b', vectorClock: clock(0, 1, 0, 0) },
                { event: 'c', vectorClock: clock(2, 0, 0, 0) },
                { event: 'd', vectorClock: clock(0, 1, 1, 0) },
                { event: 'e', vectorClock: clock(2, 1, 2, 0) },
              ];
              const summary = (events) => {
                const { processes, points, arrows } = spacetime.layout(events);
                return {
                  processes,
                  lanes: Object.fromEntries(points.map((p) => [p.event.event, p.lane])),
                  columns: Object.fromEntries(points.map((p) => [p.event.event, p.column])),
                  arrows: arrows.map(([x, y]) => points[x].event.event + points[y].event.event).sort(),
                };
              };
              // A rejected order: c failed, so d, e and f never ran.
              const rejected = summary(graph.filter((e) => 'abc'.includes(e.event)));
              const now = new Date(2026, 10, 24);
              const fields = { contact: 'x', cardNumber: '4111 1111 1111 1112', expirationDate: '01/20', cvv: '12', terms: false };
              const good = { ...checkout.demoDefaults(now), terms: true };
              const cart = new Cart();
              cart.clear();
              cart.add('dune', 2);
              cart.add('dune');
              cart.add('emma');
              cart.set('emma', 0);
              const prices = new Map([['dune', { price: 12.99 }]]);
              // A checkout whose connection drops once: sent again, with the same key.
              const api = await import('/js/api.js');
              const keysSent = [];
              const realFetch = window.fetch;
              let drops = 1;
              window.fetch = async (url, options) => {
                keysSent.push(options.headers['Idempotency-Key']);
                if (drops-- > 0) throw new TypeError('Failed to fetch');
                return new Response('{"orderId":"o-1","status":"Order Approved"}', { status: 200 });
              };
              const placed = await api.postCheckout('{}', 'key-1').finally(() => { window.fetch = realFetch; });
              // Leaders across looks at the cluster: node 1 leads, dies, node 2 is elected; then
              // node 3 takes over between two looks; node 1, back and cut off, still calls
              // itself the leader of term 1.
              const { LeaderHistory, describeLeader } = await import('/js/cluster.js');
              const node = (id, role, term, votedFor) => ({ id, role, term, votedFor });
              const down = (id) => ({ id, error: 'no answer' });
              const leaders = new LeaderHistory();
              const looks = [
                [[node(1, 'leader', 1, 1), node(2, 'follower', 1, 1), node(3, 'follower', 1, 1)], 1000],
                [[node(1, 'leader', 1, 1), node(2, 'follower', 1, 1), node(3, 'follower', 1, 1)], 3000],
                [[down(1), node(2, 'candidate', 2, 2), node(3, 'follower', 1, 1)], 5000],
                [[down(1), node(2, 'leader', 2, 2), node(3, 'follower', 2, 2)], 7500],
                [[down(1), node(2, 'follower', 3, 3), node(3, 'leader', 3, 3)], 9500],
                [[node(1, 'leader', 1, 1), down(2), down(3)], 11500],
              ];
              const elections = looks.map(([nodes, at]) => leaders.observe(nodes, at)).map((c) => c && describeLeader(c));
              // The fault controls' secret, from the link and then from the tab; their knobs.
              const faults = await import('/js/faults.js');
              const stored = new Map();
              const storage = { setItem: (k, v) => stored.set(k, v), getItem: (k) => stored.get(k) ?? null };
              const addresses = [];
              const history = { replaceState: (_state, _title, url) => addresses.push(url) };
              const secrets = [
                faults.takeSecret({ hash: '', pathname: '/', search: '' }, storage, history),
                faults.takeSecret({ hash: '#faults=s%3Dcret', pathname: '/', search: '?x=1' }, storage, history),
                faults.takeSecret({ hash: '#cart-heading', pathname: '/', search: '' }, storage, history),
              ];
              const knobs = [['', '', ''], ['100', '200', '0.5'], ['100', '', '0'], ['200', '100', '0'], ['0', '40000', '0'], ['', '', '1.5'], ['1.5', '2', '0']]
                .map(([delayMin, delayMax, failureRate]) => faults.readKnobs({ delayMin, delayMax, failureRate }));
              const dashboard = await import('/js/dashboard.js');
              const byOutcome = dashboard.CHARTS.find((c) => c.id === 'orders').series[0];
              const byNode = dashboard.CHARTS.find((c) => c.id === 'raft-term').series[0];
              const matrix = [{ metric: { outcome: 'approved' }, values: [[100, '1'], [105, 'NaN'], [110, '3']] }];
              const drawn = dashboard.drawChart('Orders', dashboard.toSeries(byOutcome, matrix), 100, 110);
              const dashboardText = {
                series: dashboard.toSeries(byOutcome, matrix),
                names: [dashboard.seriesName(byNode, { node_id: '2' }), dashboard.seriesName({ name: 'median' }, {}),
                        dashboard.seriesName({ by: ['queue', 'state'] }, { queue: 'orders', state: 'waiting' })],
                values: [0, 0.012345, 2.5, 1234.56, NaN].map(dashboard.formatValue),
                points: drawn.querySelector('polyline').getAttribute('points'),
                label: drawn.getAttribute('aria-label'),
                empty: dashboard.drawChart('Orders', [], 100, 110).getAttribute('aria-label'),
              };
              const raftLog = await import('/js/raft-log.js');
              const logText = {
                keys: [[], ['stock/a'], ['a', 'b', 'c', 'd', 'e', 'f']].map(raftLog.describeKeys),
                indexes: ['yes (Raft log index 42)', 'yes', undefined].map(raftLog.logIndexOf),
              };
              done({
                dashboardText,
                logText,
                faults: { secrets, addresses, knobs },
                elections,
                retry: { keysSent, orderId: placed.orderId, fresh: [api.newIdempotencyKey(), api.newIdempotencyKey()] },
                full: summary(graph),
                rejected,
                concurrent: [spacetime.happenedBefore(graph[1].vectorClock, graph[2].vectorClock, ['tv-a', 'tv-b']),
                             spacetime.happenedBefore(graph[2].vectorClock, graph[1].vectorClock, ['tv-a', 'tv-b'])],
                bad: checkout.hints(fields, 0, now),
                good: checkout.hints(good, 1, now),
                month: checkout.hints({ ...good, expirationDate: '13/30' }, 1, now).expirationDate,
                cart: { lines: [...cart.lines], total: euros(cart.totalCents(prices)),
                        unknown: (cart.add('emma'), cart.totalCents(prices)) },
              });
              cart.clear();
            })().catch((e) => done({ error: String(e.stack ?? e) }));"#,
            vec![],
        )
        .await
        .unwrap();
    assert!(results["error"].is_null(), "{}", results["error"]);

    let full = &results["full"];
    assert_eq!(full["processes"], json!(["tv-a", "tv-b", "fraud", "suggestions"]));
    assert_eq!(
        full["lanes"],
        json!({"a": "tv-a", "b": "tv-b", "c": "tv-a", "d": "fraud", "e": "fraud", "f": "suggestions"}),
        "each event on the line of the process it ticked"
    );
    assert_eq!(
        full["columns"],
        json!({"a": 0, "b": 0, "c": 1, "d": 1, "e": 2, "f": 3}),
        "the longest chain before each"
    );
    assert_eq!(
        full["arrows"],
        json!(["ac", "bd", "ce", "de", "ef"]),
        "only the direct edges, whatever the order given"
    );
    assert_eq!(results["rejected"]["arrows"], json!(["ac"]), "{}", results["rejected"]);
    assert_eq!(results["rejected"]["columns"], json!({"a": 0, "b": 0, "c": 1}));
    assert_eq!(results["concurrent"], json!([false, false]), "a and b are concurrent");
    let retry = &results["retry"];
    assert_eq!(retry["keysSent"], json!(["key-1", "key-1"]), "a retry after a network error reuses the key");
    assert_eq!(retry["orderId"], "o-1");
    let fresh: Vec<&str> = retry["fresh"].as_array().unwrap().iter().filter_map(Value::as_str).collect();
    assert!(fresh.iter().all(|k| k.len() == 32 && k.bytes().all(|b| b.is_ascii_hexdigit())), "{fresh:?}");
    assert_ne!(fresh[0], fresh[1], "a new key per order");

    let elections = json!([
        "term 1: node 1 leads (votes from nodes 1, 2, 3)",
        null,
        null,
        "term 2: node 2 leads (votes from nodes 2, 3); no leader seen for 2.5 s",
        "term 3: node 3 leads (votes from nodes 2, 3); the change fell between two looks",
        null,
    ]);
    assert_eq!(results["elections"], elections, "leaders as the cluster view tells them");

    let dashboard = &results["dashboardText"];
    assert_eq!(dashboard["series"], json!([{"name": "approved", "points": [[100, 1], [110, 3]]}]), "NaN left out");
    assert_eq!(dashboard["names"], json!(["node 2", "median", "orders waiting"]));
    assert_eq!(dashboard["values"], json!(["0", "0.0123", "2.5", "1235", "–"]));
    assert_eq!(
        dashboard["points"], "0.0,82.7 320.0,8.0",
        "from the left edge at a third of the top value to the top right"
    );
    assert_eq!(dashboard["label"], "Orders: approved 3");
    assert_eq!(dashboard["empty"], "Orders: no data yet");
    assert_eq!(results["logText"]["keys"], json!(["", " (stock/a)", " (a, b, c, d and 2 more)"]));
    assert_eq!(results["logText"]["indexes"], json!([42, null, null]), "the entry a stock vote names");

    let faults = &results["faults"];
    assert_eq!(faults["secrets"], json!([null, "s=cret", "s=cret"]), "taken from the link once, then kept in the tab");
    assert_eq!(faults["addresses"], json!(["/?x=1"]), "the secret is taken out of the address bar");
    let knobs = faults["knobs"].as_array().unwrap();
    assert_eq!(knobs[0], json!({"knobs": {"delayMs": null, "failureRate": 0}}), "blank is off");
    assert_eq!(knobs[1], json!({"knobs": {"delayMs": [100, 200], "failureRate": 0.5}}));
    for refused in &knobs[2..] {
        assert!(refused["error"].as_str().is_some_and(|e| !e.is_empty()), "refused in words: {refused}");
    }

    let bad = &results["bad"];
    for field in ["contact", "cardNumber", "cvv", "terms", "cart"] {
        assert!(bad[field].as_str().is_some_and(|h| !h.is_empty()), "no hint for a bad {field}: {bad}");
    }
    assert_eq!(bad["expirationDate"], "This card has expired.");
    assert!(
        results["good"].as_object().unwrap().values().all(|h| h == ""),
        "the demo defaults are hinted: {}",
        results["good"]
    );
    assert_eq!(results["month"], "The expiry is MM/YY.");

    let cart = &results["cart"];
    assert_eq!(cart["lines"], json!([["dune", 3]]), "adds add up; a quantity of 0 removes the line");
    assert_eq!(cart["total"], "€38.97", "3 × €12.99 counted in cents");
    assert!(cart["unknown"].is_null(), "a book without a known price makes the total unknown, not lower");

    browser.stop().await;
    server.abort();
}

/// chromedriver and the headless Chromium it runs; both die with the test.
struct Browser {
    client: Client,
    _chromedriver: Processes,
    /// Chromium's profile: removed after chromedriver (and so Chromium) is stopped.
    _profile: tempfile::TempDir,
}

impl Browser {
    async fn start(logs: &Path) -> Browser {
        let port = raft_local_cluster::free_addrs(1).unwrap()[0].rsplit_once(':').unwrap().1.to_string();
        let mut command = Command::new(CHROMEDRIVER);
        command.arg(format!("--port={port}"));
        // Its own process group: stopping it stops the browser it started too.
        std::os::unix::process::CommandExt::process_group(&mut command, 0);
        let chromedriver = spawn_logged(command, &logs.join("chromedriver.log")).expect("chromedriver starts");
        let chromedriver = {
            let mut processes = Processes::default();
            processes.push("chromedriver", chromedriver, Stop::Kill);
            processes
        };
        let profile = tempfile::tempdir().expect("a profile folder");
        let options = json!({
            "binary": CHROMIUM,
            // The flags a sandboxed, offline machine needs: no background connections, no GPU.
            "args": [
                "--headless=new", "--no-sandbox", "--disable-gpu", "--disable-dev-shm-usage", "--disable-quic",
                "--no-first-run", "--disable-background-networking", "--disable-component-update", "--disable-sync",
                "--window-size=1280,1600", format!("--user-data-dir={}", profile.path().display()),
            ],
        });
        let mut capabilities = serde_json::Map::new();
        capabilities.insert("goog:chromeOptions".into(), options);
        let url = format!("http://127.0.0.1:{port}");
        let deadline = Instant::now() + Duration::from_secs(30);
        let client = loop {
            let connector = hyper_util::client::legacy::connect::HttpConnector::new();
            match ClientBuilder::new(connector).capabilities(capabilities.clone()).connect(&url).await {
                Ok(client) => break client,
                Err(e) if Instant::now() > deadline => panic!("no WebDriver session: {e}; see chromedriver.log"),
                Err(_) => tokio::time::sleep(Duration::from_millis(100)).await,
            }
        };
        Browser { client, _chromedriver: chromedriver, _profile: profile }
    }

    async fn stop(self) {
        let _ = self.client.close().await;
    }
}

async fn wait_for(page: &Client, css: &str) -> Element {
    page.wait().at_most(PATIENCE).for_element(Locator::Css(css)).await.unwrap_or_else(|e| panic!("no {css}: {e}"))
}

/// Clicks an element, finding it again if the page redrew it in between.
/// Adds one copy of `book` and places the order from the page; the new order's id.
async fn place_order(page: &Client, book: &str) -> String {
    click(page, &format!(r#".book[data-book-id="{book}"] button.add"#)).await;
    let before = text(page, "#order-id").await;
    click(page, "#place-order").await;
    wait_for_text(page, "#order-id", |t| !t.is_empty() && t != before).await
}

/// How long an order's executor took from taking it up to deciding (the emulated delay falls
/// between), from its trail.
async fn prepare_wait(http: &reqwest::Client, api: &str, order_id: &str) -> Duration {
    let order: Value = http.get(format!("{api}/orders/{order_id}")).send().await.unwrap().json().await.unwrap();
    let at = |step: &str| {
        let entry = order["trail"].as_array().unwrap().iter().find(|e| e["step"] == step).expect(step);
        humantime::parse_rfc3339(entry["at"].as_str().unwrap()).unwrap()
    };
    at("decide").duration_since(at("claim")).unwrap()
}

async fn click(page: &Client, css: &str) {
    let deadline = Instant::now() + PATIENCE;
    loop {
        match wait_for(page, css).await.click().await {
            Ok(()) => return,
            Err(e) if Instant::now() > deadline => panic!("cannot click {css}: {e}"),
            Err(_) => tokio::time::sleep(Duration::from_millis(100)).await,
        }
    }
}

async fn text(page: &Client, css: &str) -> String {
    wait_for(page, css).await.text().await.unwrap_or_default()
}

/// Polls an element's text until `done` holds; the last text seen.
async fn wait_for_text(page: &Client, css: &str, done: impl Fn(&str) -> bool) -> String {
    let deadline = Instant::now() + PATIENCE;
    loop {
        let seen = match page.find(Locator::Css(css)).await {
            Ok(element) => element.text().await.unwrap_or_default(),
            Err(_) => String::new(),
        };
        if done(&seen) {
            return seen;
        }
        assert!(Instant::now() < deadline, "{css} never got there; it says {seen:?}");
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
}

async fn attributes(page: &Client, css: &str, name: &str) -> Vec<String> {
    let mut values = Vec::new();
    for element in page.find_all(Locator::Css(css)).await.unwrap_or_default() {
        values.push(element.attr(name).await.ok().flatten().unwrap_or_default());
    }
    values
}

async fn wait_for_attributes(page: &Client, css: &str, name: &str, done: impl Fn(&[String]) -> bool) -> Vec<String> {
    let deadline = Instant::now() + PATIENCE;
    loop {
        let values = attributes(page, css, name).await;
        if done(&values) {
            return values;
        }
        assert!(Instant::now() < deadline, "{css} never got there: {values:?}");
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
}

/// Saves a screenshot of the whole page where CI keeps artifacts: `target/test-artifacts/`.
async fn save_screenshot(page: &Client, name: &str) {
    page.execute("window.scrollTo(0, 0);", vec![]).await.unwrap();
    let png = page.screenshot().await.expect("a screenshot");
    let folder: PathBuf = xtask::workspace_root().join("target/test-artifacts");
    std::fs::create_dir_all(&folder).unwrap();
    std::fs::write(folder.join(name), png).unwrap();
}
