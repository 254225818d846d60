//! Who is asking: the client address of each API request, and the
//! requests-per-second limit, so one person cannot take the playground from
//! everyone else.
//!
//! A request about a live session counts against that session, not its
//! address: a classroom behind one address is thirty people, each with
//! their own session and their own share. Everything else (creating
//! sessions, joining classes, unknown sessions) counts against the address.
//! Reading the templates and scenarios, which costs nothing, is not counted.

use std::net::{IpAddr, SocketAddr};
use std::num::NonZeroU32;
use std::sync::Arc;

use axum::extract::{ConnectInfo, Request, State};
use axum::http::StatusCode;
use axum::middleware::Next;
use axum::response::{IntoResponse, Response};
use governor::{DefaultKeyedRateLimiter, Quota};

use crate::api::state::AppState;
use crate::error::ApiError;

/// The client address of a request (an extension set by [`limit`]).
#[derive(Clone, Copy, Debug)]
pub struct ClientAddr(pub Option<IpAddr>);

pub struct ClientPolicy {
    /// `None` when requests are not limited.
    limiter: Option<DefaultKeyedRateLimiter<Share>>,
    trust_forwarded_for: bool,
}

/// Whose share of requests one counts against.
#[derive(Clone, Debug, PartialEq, Eq, Hash)]
enum Share {
    Address(IpAddr),
    Session(String),
}

/// What a request's path (below `/api`) counts against, given whether a
/// session id names a live session; `None`: not counted.
fn share_of(
    path: &str,
    method: &axum::http::Method,
    live: impl Fn(&str) -> bool,
) -> Option<Option<String>> {
    let path = path.strip_prefix("/api").unwrap_or(path);
    let mut parts = path.trim_start_matches('/').split('/');
    let first = parts.next().unwrap_or("");
    let second = parts.next().filter(|s| !s.is_empty());
    let free_read = method == axum::http::Method::GET
        && (first == "templates" || first == "scenarios" || (first == "join" && second.is_some()));
    if free_read {
        return None;
    }
    match (first, second) {
        ("sessions", Some(sid)) if live(sid) => Some(Some(sid.to_string())),
        _ => Some(None),
    }
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
            if let Some(forwarded) = last_forwarded_for(request.headers()) {
                return Some(forwarded);
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
    State((policy, sessions)): State<(Arc<ClientPolicy>, AppState)>,
    mut request: Request,
    next: Next,
) -> Response {
    let address = policy.address(&request);
    let share = share_of(request.uri().path(), request.method(), |sid| {
        sessions.get(sid).is_ok()
    });
    let key = match (share, address) {
        (Some(Some(sid)), _) => Some(Share::Session(sid)),
        (Some(None), Some(ip)) => Some(Share::Address(ip)),
        _ => None,
    };
    if let (Some(limiter), Some(key)) = (&policy.limiter, key) {
        if let Err(not_until) = limiter.check_key(&key) {
            let wait = not_until.wait_time_from(governor::clock::Clock::now(limiter.clock()));
            return ApiError::new(
                StatusCode::TOO_MANY_REQUESTS,
                "too many requests from your address (or for your session); slow down and try \
                 again in a moment",
            )
            .retry_after(wait.as_secs_f64().ceil() as u64)
            .into_response();
        }
    }
    request.extensions_mut().insert(ClientAddr(address));
    next.run(request).await
}

/// The last address in `X-Forwarded-For`: the one the proxy in front of us
/// appended (those before it are the client's word).
pub fn last_forwarded_for(headers: &axum::http::HeaderMap) -> Option<IpAddr> {
    headers
        .get_all("x-forwarded-for")
        .iter()
        .filter_map(|v| v.to_str().ok())
        .flat_map(|v| v.split(','))
        .filter_map(|a| a.trim().parse::<IpAddr>().ok())
        .next_back()
}

#[cfg(test)]
mod tests {
    use super::*;
    use axum::http::Method;

    #[test]
    fn requests_count_against_their_session_or_address() {
        let live = |sid: &str| sid == "s1";
        let get = Method::GET;
        let post = Method::POST;
        assert_eq!(
            share_of("/sessions/s1/events", &get, live),
            Some(Some("s1".into()))
        );
        assert_eq!(
            share_of("/api/sessions/s1/tutorial/check", &post, live),
            Some(Some("s1".into()))
        );
        // An unknown (or made-up) session id gets no share of its own.
        assert_eq!(
            share_of("/sessions/nope/instances", &post, live),
            Some(None)
        );
        assert_eq!(share_of("/sessions", &post, live), Some(None));
        assert_eq!(share_of("/join/ABC234", &post, live), Some(None));
        assert_eq!(share_of("/classes/x", &get, live), Some(None));
        // Free reads.
        assert_eq!(share_of("/templates", &get, live), None);
        assert_eq!(share_of("/scenarios/a/b", &get, live), None);
        assert_eq!(share_of("/join/ABC234", &get, live), None);
        assert_eq!(share_of("/join", &get, live), Some(None));
    }
}
