//! Who is asking: the client address of each API request, and the
//! requests-per-second limit per address, so one person cannot take the
//! playground from everyone else.

use std::net::{IpAddr, SocketAddr};
use std::num::NonZeroU32;
use std::sync::Arc;

use axum::extract::{ConnectInfo, Request, State};
use axum::http::StatusCode;
use axum::middleware::Next;
use axum::response::{IntoResponse, Response};
use governor::{DefaultKeyedRateLimiter, Quota};

use crate::error::ApiError;

/// The client address of a request (an extension set by [`limit`]).
#[derive(Clone, Copy, Debug)]
pub struct ClientAddr(pub Option<IpAddr>);

pub struct ClientPolicy {
    /// `None` when requests are not limited.
    limiter: Option<DefaultKeyedRateLimiter<IpAddr>>,
    trust_forwarded_for: bool,
}

impl ClientPolicy {
    /// `per_second` sustained, bursts of five times as many; 0 for no limit.
    pub fn new(per_second: u32, trust_forwarded_for: bool) -> Arc<Self> {
        let limiter = NonZeroU32::new(per_second).map(|rate| {
            let burst = rate.saturating_mul(NonZeroU32::new(5).unwrap());
            governor::RateLimiter::keyed(Quota::per_second(rate).allow_burst(burst))
        });
        Arc::new(ClientPolicy {
            limiter,
            trust_forwarded_for,
        })
    }

    /// Forget addresses that have been quiet long enough to be back at a
    /// full burst, so the table does not grow with every address ever seen.
    pub fn forget_quiet(&self) {
        if let Some(limiter) = &self.limiter {
            limiter.retain_recent();
            limiter.shrink_to_fit();
        }
    }

    fn address(&self, request: &Request) -> Option<IpAddr> {
        if self.trust_forwarded_for {
            // The proxy in front appends the address it saw last.
            let forwarded = request
                .headers()
                .get_all("x-forwarded-for")
                .iter()
                .filter_map(|v| v.to_str().ok())
                .flat_map(|v| v.split(','))
                .filter_map(|a| a.trim().parse::<IpAddr>().ok())
                .next_back();
            if forwarded.is_some() {
                return forwarded;
            }
        }
        request
            .extensions()
            .get::<ConnectInfo<SocketAddr>>()
            .map(|ConnectInfo(addr)| addr.ip().to_canonical())
    }
}

/// Middleware: note the client's address, and refuse it with 429 and a
/// Retry-After once it is over its rate.
pub async fn limit(
    State(policy): State<Arc<ClientPolicy>>,
    mut request: Request,
    next: Next,
) -> Response {
    let address = policy.address(&request);
    if let (Some(limiter), Some(ip)) = (&policy.limiter, address) {
        if let Err(not_until) = limiter.check_key(&ip) {
            let wait = not_until.wait_time_from(governor::clock::Clock::now(limiter.clock()));
            return ApiError::new(
                StatusCode::TOO_MANY_REQUESTS,
                "too many requests from your address; slow down and try again in a moment",
            )
            .retry_after(wait.as_secs_f64().ceil() as u64)
            .into_response();
        }
    }
    request.extensions_mut().insert(ClientAddr(address));
    next.run(request).await
}
