//! Log output (readable text or JSON lines) and the span each request's
//! logs carry: method, path, and the session and instance it is about.

use axum::extract::MatchedPath;
use axum::http::Request;
use tracing::field::Empty;
use tracing::Span;
use tracing_subscriber::EnvFilter;

/// Log to standard output as `format` says (`text` or `json`), at the levels of
/// RUST_LOG (default info).
pub fn init(format: &str) {
    let filter = EnvFilter::try_from_default_env().unwrap_or_else(|_| EnvFilter::new("info"));
    let builder = tracing_subscriber::fmt().with_env_filter(filter);
    if format == "json" {
        // Event fields at the top level, and every enclosing span's fields
        // (session, instance) under "spans".
        builder
            .json()
            .flatten_event(true)
            .with_current_span(false)
            .with_span_list(true)
            .init();
    } else {
        builder.init();
    }
}

/// The span of one request to the playground's router. Ids come from the
/// route's parameters, so a log line of any handler says which session and
/// instance it concerns.
pub fn request_span<B>(request: &Request<B>) -> Span {
    let span = tracing::info_span!(
        "request",
        method = %request.method(),
        path = %request.uri().path(),
        session = Empty,
        view = Empty,
        instance = Empty,
    );
    if let Some(route) = request.extensions().get::<MatchedPath>() {
        let segments = route
            .as_str()
            .split('/')
            .zip(request.uri().path().split('/'));
        for (template, actual) in segments {
            match template {
                "{sid}" => span.record("session", actual),
                "{vid}" => span.record("view", actual),
                "{name}" => span.record("instance", actual),
                _ => &span,
            };
        }
    }
    span
}
