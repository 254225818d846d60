//! The built web app (Trunk's output folder), served from `/`. Paths that
//! are not files (`/s/<session>`) get `index.html`, so links and reloads work.

use std::path::Path;

use axum::http::StatusCode;
use axum::response::Html;
use axum::routing::get_service;
use axum::Router;
use tower_http::services::{ServeDir, ServeFile};

pub fn router<S: Clone + Send + Sync + 'static>(web_dir: &Path) -> Router<S> {
    let index = web_dir.join("index.html");
    if !index.exists() {
        tracing::warn!(
            "no web app at {} (build it with `trunk build --release`); serving the API only",
            web_dir.display()
        );
        let page = format!(
            "<!doctype html><title>Playground</title><h1>Playground</h1>\
             <p>The web app is not built: no <code>{}</code>. Run <code>trunk build --release</code>, \
             or start the playground with the README's first command.</p>",
            index.display()
        );
        return Router::new()
            .fallback(move || async move { (StatusCode::SERVICE_UNAVAILABLE, Html(page)) });
    }
    let files = ServeDir::new(web_dir)
        .precompressed_gzip()
        .precompressed_br()
        .fallback(ServeFile::new(index));
    Router::new().fallback_service(get_service(files))
}
