//! The gateway's limit on checkouts per client address: one script sending checkouts in a loop
//! cannot take the AWS emulator from every other shopper. Past the limit a checkout is a 429 in
//! the error shape, with `Retry-After`.

use std::net::{IpAddr, Ipv4Addr, SocketAddr};
use std::num::NonZeroU32;
use std::sync::Arc;

use axum::extract::{ConnectInfo, Request, State};
use axum::http::{HeaderValue, Method, StatusCode, header};
use axum::middleware::Next;
use axum::response::Response;
use governor::clock::{Clock, DefaultClock};
use governor::{DefaultKeyedRateLimiter, Quota, RateLimiter};

/// The default limit of `cargo xtask up`: a shopper never meets it, a loop does within a minute.
pub const DEFAULT_CHECKOUTS_PER_MINUTE: u32 = 60;

/// Past this many addresses remembered, those whose allowance is full again are forgotten, so
/// a stream of new addresses cannot grow the table without bound.
const FORGET_ABOVE: usize = 10_000;

/// Checkouts per minute per client address, in a burst of as many (a generic cell rate, so
/// the allowance refills steadily rather than at the minute's turn).
#[derive(Clone)]
pub struct CheckoutLimit {
    limiter: Arc<DefaultKeyedRateLimiter<IpAddr>>,
    per_minute: NonZeroU32,
}

impl CheckoutLimit {
    pub fn per_minute(per_minute: NonZeroU32) -> Self {
        Self { limiter: Arc::new(RateLimiter::hashmap(Quota::per_minute(per_minute))), per_minute }
    }
}

/// Counts the POSTs of a route against the client's address.
pub async fn limit(State(limit): State<CheckoutLimit>, request: Request, next: Next) -> Response {
    if request.method() != Method::POST {
        return next.run(request).await;
    }
    let address = request
        .extensions()
        .get::<ConnectInfo<SocketAddr>>()
        .map_or(IpAddr::V4(Ipv4Addr::UNSPECIFIED), |ConnectInfo(peer)| peer.ip());
    if limit.limiter.len() > FORGET_ABOVE {
        limit.limiter.retain_recent();
    }
    match limit.limiter.check_key(&address) {
        Ok(()) => next.run(request).await,
        Err(not_until) => {
            let wait = not_until.wait_time_from(DefaultClock::default().now()).as_secs().max(1);
            let message =
                format!("more than {} checkouts a minute from this address; try again in {wait} s", limit.per_minute);
            let mut answer = crate::gateway::error(StatusCode::TOO_MANY_REQUESTS, "rate_limited", &message);
            if let Ok(value) = HeaderValue::from_str(&wait.to_string()) {
                answer.headers_mut().insert(header::RETRY_AFTER, value);
            }
            answer
        }
    }
}
