//! Embedding in other sites (what Play with Docker's SDK did): the script
//! tutorial sites load (`/sdk.js`, from `static/sdk.js`), CORS on `/api` for
//! the origins of `--embed-origins`, and who may show our pages in a frame.
//!
//! Only `/embed/...` pages (one terminal filling the frame, see
//! `web/src/embed.rs`) may be framed, and only by those origins; every other
//! answer says `frame-ancestors 'none'`. With no origin set nothing is
//! embeddable and no other site's page may call the API. No credentials are
//! involved: a session's id is the capability, and the SDK holds it.

use std::time::Duration;

use axum::extract::{Request, State};
use axum::http::header::{CACHE_CONTROL, CONTENT_SECURITY_POLICY, CONTENT_TYPE, X_FRAME_OPTIONS};
use axum::http::{HeaderValue, Method};
use axum::middleware::Next;
use axum::response::{IntoResponse, Response};
use axum::routing::get;
use axum::Router;
use tower_http::cors::{AllowOrigin, CorsLayer};

/// The SDK, built into the binary so it always matches this server's API.
const SDK: &str = include_str!("../../../static/sdk.js");

/// Which sites may embed the playground: origins as `parse_origin` in
/// `ops/config.rs` normalised them (`https://tutorial.example`).
#[derive(Clone, Debug)]
pub struct Embedding {
    /// `Content-Security-Policy` of `/embed/...` pages.
    embed_policy: HeaderValue,
    origins: Vec<HeaderValue>,
}

impl Embedding {
    pub fn new(origins: &[String]) -> Embedding {
        let origins: Vec<HeaderValue> = origins
            .iter()
            .filter_map(|o| HeaderValue::from_str(o).ok())
            .collect();
        let ancestors = if origins.is_empty() {
            "'none'".to_string()
        } else {
            origins
                .iter()
                .filter_map(|o| o.to_str().ok())
                .collect::<Vec<_>>()
                .join(" ")
        };
        let embed_policy = HeaderValue::from_str(&format!("frame-ancestors {ancestors}"))
            .expect("origins are printable ASCII");
        Embedding {
            embed_policy,
            origins,
        }
    }

    /// CORS for `/api`: the methods and header the SDK uses, for the listed
    /// origins only; `None` without origins (no other site may call it).
    pub fn cors(&self) -> Option<CorsLayer> {
        if self.origins.is_empty() {
            return None;
        }
        Some(
            CorsLayer::new()
                .allow_origin(AllowOrigin::list(self.origins.clone()))
                .allow_methods([Method::GET, Method::POST, Method::DELETE])
                .allow_headers([CONTENT_TYPE])
                .max_age(Duration::from_secs(600)),
        )
    }
}

/// `GET /sdk.js`.
pub fn router<S: Clone + Send + Sync + 'static>() -> Router<S> {
    Router::new().route("/sdk.js", get(sdk))
}

async fn sdk() -> Response {
    (
        [
            (CONTENT_TYPE, "text/javascript; charset=utf-8"),
            // Small, and must follow upgrades of the server at once.
            (CACHE_CONTROL, "no-cache"),
        ],
        SDK,
    )
        .into_response()
}

/// Middleware over the whole app (not the port proxy): `/embed/...` may be
/// framed by the listed origins, nothing else by anyone.
pub async fn frame_policy(
    State(embedding): State<std::sync::Arc<Embedding>>,
    request: Request,
    next: Next,
) -> Response {
    let embed_page = request.uri().path().starts_with("/embed/");
    let mut response = next.run(request).await;
    let headers = response.headers_mut();
    if embed_page {
        headers.insert(CONTENT_SECURITY_POLICY, embedding.embed_policy.clone());
    } else {
        headers
            .entry(CONTENT_SECURITY_POLICY)
            .or_insert(HeaderValue::from_static("frame-ancestors 'none'"));
        // For browsers older than frame-ancestors.
        headers
            .entry(X_FRAME_OPTIONS)
            .or_insert(HeaderValue::from_static("DENY"));
    }
    response
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn embed_pages_name_the_origins_or_none() {
        let none = Embedding::new(&[]);
        assert_eq!(none.embed_policy, "frame-ancestors 'none'");
        assert!(none.cors().is_none());
        let some = Embedding::new(&["https://a.example".into(), "http://127.0.0.1:8000".into()]);
        assert_eq!(
            some.embed_policy,
            "frame-ancestors https://a.example http://127.0.0.1:8000"
        );
        assert!(some.cors().is_some());
    }
}
