//! Answers in Docker's shape: JSON bodies, and errors as `{"message": ...}`
//! with the status codes the `docker` client turns into its usual messages.

use axum::body::Body;
use axum::http::{header, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::Json;
use futures_util::{Stream, StreamExt};

#[derive(Debug)]
pub struct DockerError {
    pub status: StatusCode,
    pub message: String,
}

impl DockerError {
    pub fn new(status: StatusCode, message: impl Into<String>) -> DockerError {
        DockerError {
            status,
            message: message.into(),
        }
    }

    /// 404, which `docker rmi` and `docker inspect` print as "No such image".
    pub fn no_such_image(name: &str) -> DockerError {
        DockerError::new(StatusCode::NOT_FOUND, format!("No such image: {name}"))
    }

    pub fn internal(e: impl std::fmt::Display) -> DockerError {
        DockerError::new(StatusCode::INTERNAL_SERVER_ERROR, e.to_string())
    }
}

impl IntoResponse for DockerError {
    fn into_response(self) -> Response {
        (
            self.status,
            Json(serde_json::json!({ "message": self.message })),
        )
            .into_response()
    }
}

pub type Reply = Result<Response, DockerError>;

/// A streamed answer of JSON documents, one per line (pull and build
/// progress, stats, events), as the client reads them while they come.
pub fn json_lines(values: impl Stream<Item = serde_json::Value> + Send + 'static) -> Response {
    let lines = values.map(|value| {
        let mut bytes = serde_json::to_vec(&value).unwrap_or_default();
        bytes.push(b'\n');
        Ok::<_, std::convert::Infallible>(bytes)
    });
    (
        [(header::CONTENT_TYPE, "application/json")],
        Body::from_stream(lines),
    )
        .into_response()
}
