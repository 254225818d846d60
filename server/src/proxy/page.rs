//! The proxy's own answers: small HTML pages that say what went wrong and
//! what to do, with a fitting status code. Never cached, so a reload after
//! starting a server shows the server.

use axum::body::Body;
use axum::http::{self as http, header, HeaderValue, StatusCode};
use axum::response::{IntoResponse, Response};

#[derive(Debug)]
pub struct Page {
    pub status: StatusCode,
    pub title: String,
    pub message: String,
    pub hint: String,
}

impl Page {
    fn new(
        status: StatusCode,
        title: impl Into<String>,
        message: impl Into<String>,
        hint: impl Into<String>,
    ) -> Page {
        Page {
            status,
            title: title.into(),
            message: message.into(),
            hint: hint.into(),
        }
    }

    pub fn bad_host(host: &str, domain: &str) -> Page {
        Page::new(
            StatusCode::BAD_REQUEST,
            "Not a port address",
            format!("{host} does not name a port of a playground instance."),
            format!(
                "Port addresses look like <session id without dashes>-<port>-<instance>.{domain}, \
                 e.g. 804b4863eb2f42518e9b034831487511-8000-node1.{domain}. \
                 Open ports from the links on the playground's page."
            ),
        )
    }

    pub fn bad_path(path: &str) -> Page {
        Page::new(
            StatusCode::BAD_REQUEST,
            "Not a port address",
            format!("{path} does not name a port of a playground instance."),
            "Port paths look like /proxy/<session id>/<instance>/<port>/, \
             e.g. /proxy/804b4863-eb2f-4251-8e9b-034831487511/node1/8000/.",
        )
    }

    pub fn unknown_session(sid: &str) -> Page {
        Page::new(
            StatusCode::NOT_FOUND,
            "No such session",
            format!("Session {sid} does not exist or has ended."),
            "Sessions end when their time is up or when they are closed. \
             Start a new session on the playground's page.",
        )
    }

    pub fn unknown_instance(instance: &str) -> Page {
        Page::new(
            StatusCode::NOT_FOUND,
            "No such instance",
            format!("This session has no instance named {instance}."),
            "It may have been deleted. The playground's page lists the session's instances.",
        )
    }

    pub fn not_running(instance: &str) -> Page {
        Page::new(
            StatusCode::SERVICE_UNAVAILABLE,
            "Instance not running",
            format!("Instance {instance} is not running: it has exited."),
            "Delete it and add a new one on the playground's page.",
        )
    }

    pub fn nothing_listening(instance: &str, port: u16) -> Page {
        Page::new(
            StatusCode::BAD_GATEWAY,
            "Nothing listening",
            format!(
                "Nothing is listening on port {port} in {instance} yet; \
                 start a server there and reload."
            ),
            format!("For example, in {instance}'s terminal: python3 -m http.server {port}"),
        )
    }

    pub fn connect_timeout(instance: &str, port: u16, secs: u64) -> Page {
        Page::new(
            StatusCode::GATEWAY_TIMEOUT,
            "Connection timed out",
            format!("Connecting to port {port} in {instance} took longer than {secs} s."),
            "The instance may be overloaded. Reload to try again.",
        )
    }

    pub fn connect_failed(instance: &str, port: u16, error: &std::io::Error) -> Page {
        Page::new(
            StatusCode::BAD_GATEWAY,
            "Cannot connect",
            format!("Connecting to port {port} in {instance} failed: {error}."),
            "Reload to try again.",
        )
    }

    pub fn bad_upstream(instance: &str, port: u16, what: impl std::fmt::Display) -> Page {
        Page::new(
            StatusCode::BAD_GATEWAY,
            "No HTTP answer",
            format!("The program on port {port} in {instance} did not answer with HTTP: {what}."),
            "Only HTTP servers (and WebSockets) can be reached through these links.",
        )
    }

    /// A kept connection closed by the program as a request that cannot be
    /// repeated safely (`idempotent`: it could, but its body was streamed
    /// on and is gone) went out on it.
    pub fn closed_before_answer(
        instance: &str,
        port: u16,
        method: &http::Method,
        idempotent: bool,
    ) -> Page {
        let hint = if idempotent {
            "It was not sent again: its body went to the program as it came and cannot \
             be sent a second time. Send it again."
                .to_string()
        } else {
            format!(
                "It was not sent again: a {method} request may change something, and it may \
                 have arrived. Check, then send it again."
            )
        };
        Page::new(
            StatusCode::BAD_GATEWAY,
            "Connection closed",
            format!(
                "The program on port {port} in {instance} closed the connection \
                 without answering this {method} request."
            ),
            hint,
        )
    }

    pub fn upstream_timeout(instance: &str, port: u16, secs: u64) -> Page {
        Page::new(
            StatusCode::GATEWAY_TIMEOUT,
            "No answer",
            format!(
                "The program on port {port} in {instance} accepted the connection \
                 but did not answer within {secs} s."
            ),
            "Is it an HTTP server? Reload to try again.",
        )
    }
}

fn escape(text: &str) -> String {
    let mut out = String::with_capacity(text.len());
    for c in text.chars() {
        match c {
            '&' => out.push_str("&amp;"),
            '<' => out.push_str("&lt;"),
            '>' => out.push_str("&gt;"),
            '"' => out.push_str("&quot;"),
            '\'' => out.push_str("&#39;"),
            c => out.push(c),
        }
    }
    out
}

impl IntoResponse for Page {
    fn into_response(self) -> Response {
        let html = format!(
            "<!doctype html>\n<html lang=\"en\"><head><meta charset=\"utf-8\">\
             <meta name=\"viewport\" content=\"width=device-width\">\
             <title>{code} {title} - Playground</title>\
             <style>body{{font-family:system-ui,sans-serif;max-width:40em;margin:4em auto;\
             padding:0 1em;line-height:1.5;color:#222}}h1{{font-size:1.4em}}\
             .hint{{color:#555}}</style></head><body>\
             <h1>{title}</h1><p class=\"message\">{message}</p>\
             <p class=\"hint\">{hint}</p><p class=\"hint\">{code} - playground proxy</p>\
             </body></html>\n",
            code = self.status.as_u16(),
            title = escape(&self.title),
            message = escape(&self.message),
            hint = escape(&self.hint),
        );
        let mut response = Response::new(Body::from(html));
        *response.status_mut() = self.status;
        let headers = response.headers_mut();
        headers.insert(
            header::CONTENT_TYPE,
            HeaderValue::from_static("text/html; charset=utf-8"),
        );
        headers.insert(header::CACHE_CONTROL, HeaderValue::from_static("no-store"));
        response
    }
}

/// A redirect to `location` (308 keeps the method and body).
pub fn redirect(location: &str) -> Response {
    let mut response = Response::new(Body::empty());
    *response.status_mut() = StatusCode::PERMANENT_REDIRECT;
    if let Ok(value) = HeaderValue::from_str(location) {
        response.headers_mut().insert(header::LOCATION, value);
    }
    response
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn pages_escape_what_they_quote() {
        assert_eq!(
            escape("<a href='x'>&\""),
            "&lt;a href=&#39;x&#39;&gt;&amp;&quot;"
        );
    }
}
