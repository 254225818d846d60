//! The API's error answers: `{"error": "..."}` with a fitting status code.

use axum::extract::rejection::JsonRejection;
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use axum::Json;
use playground_protocol::ErrorBody;

#[derive(Debug)]
pub struct ApiError {
    pub status: StatusCode,
    pub message: String,
    /// Seconds after which trying again may succeed (the `Retry-After` header).
    pub retry_after: Option<u64>,
}

impl ApiError {
    pub fn new(status: StatusCode, message: impl Into<String>) -> Self {
        ApiError {
            status,
            message: message.into(),
            retry_after: None,
        }
    }

    pub fn retry_after(mut self, seconds: u64) -> Self {
        self.retry_after = Some(seconds.max(1));
        self
    }

    pub fn session_not_found(sid: &str) -> Self {
        Self::new(
            StatusCode::NOT_FOUND,
            format!("session {sid} does not exist or has ended"),
        )
    }

    pub fn instance_not_found(name: &str) -> Self {
        Self::new(
            StatusCode::NOT_FOUND,
            format!("instance {name} does not exist in this session"),
        )
    }

    pub fn bad_request(message: impl Into<String>) -> Self {
        Self::new(StatusCode::BAD_REQUEST, message)
    }
}

impl From<sandbox::Error> for ApiError {
    fn from(e: sandbox::Error) -> Self {
        let status = match e {
            sandbox::Error::NotRunning => StatusCode::CONFLICT,
            sandbox::Error::Capacity(_) => StatusCode::SERVICE_UNAVAILABLE,
            // The instance cannot start a process now (process limit, memory).
            sandbox::Error::Spawn(_) => StatusCode::SERVICE_UNAVAILABLE,
            sandbox::Error::File { kind, .. } => match kind {
                sandbox::FileErrorKind::NotFound => StatusCode::NOT_FOUND,
                sandbox::FileErrorKind::IsDirectory
                | sandbox::FileErrorKind::NotRegular
                | sandbox::FileErrorKind::NotDirectory => StatusCode::UNPROCESSABLE_ENTITY,
                sandbox::FileErrorKind::PermissionDenied => StatusCode::FORBIDDEN,
                sandbox::FileErrorKind::DiskFull => StatusCode::INSUFFICIENT_STORAGE,
                sandbox::FileErrorKind::InvalidPath => StatusCode::BAD_REQUEST,
                sandbox::FileErrorKind::Other => StatusCode::INTERNAL_SERVER_ERROR,
            },
            sandbox::Error::Setup(_) | sandbox::Error::Cleanup(_) => {
                StatusCode::INTERNAL_SERVER_ERROR
            }
        };
        if status.is_server_error() {
            tracing::error!("{e}");
        }
        ApiError::new(status, e.to_string())
    }
}

impl From<JsonRejection> for ApiError {
    fn from(rejection: JsonRejection) -> Self {
        let status = match &rejection {
            JsonRejection::JsonSyntaxError(_) => StatusCode::BAD_REQUEST,
            JsonRejection::JsonDataError(_) => StatusCode::UNPROCESSABLE_ENTITY,
            JsonRejection::MissingJsonContentType(_) => StatusCode::UNSUPPORTED_MEDIA_TYPE,
            _ => rejection.status(),
        };
        ApiError::new(status, rejection.body_text())
    }
}

impl IntoResponse for ApiError {
    fn into_response(self) -> Response {
        let mut response = (
            self.status,
            Json(ErrorBody {
                error: self.message,
            }),
        )
            .into_response();
        if let Some(seconds) = self.retry_after {
            response
                .headers_mut()
                .insert(axum::http::header::RETRY_AFTER, seconds.into());
        }
        response
    }
}
