//! Answers in Docker's shape: JSON bodies, and errors as `{"message": ...}`
//! with the status codes the `docker` client turns into its usual messages.

use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use axum::Json;

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
