//! Property tests of what the API reads from requests before any handler
//! logic: JSON bodies that may be empty, and the terminal's query string.
//! Any input is accepted or refused with a 4xx answer, never a panic.
//!
//! Bounded in `cargo test`; `PROPTEST_CASES=100000` for a long run.

use axum::body::Bytes;
use axum::extract::Query;
use axum::http::{StatusCode, Uri};
use playground_protocol::CreateSession;
use proptest::prelude::*;

use super::sessions::{optional_json, NoOptions};
use super::terminals::TerminalQuery;
use crate::error::ApiError;

fn refused_cleanly(e: &ApiError) -> bool {
    matches!(
        e.status,
        StatusCode::BAD_REQUEST | StatusCode::UNPROCESSABLE_ENTITY
    ) && !e.message.is_empty()
}

/// Query strings near the terminal's parameters, percent escapes included.
fn query() -> impl Strategy<Value = String> {
    prop_oneof![
        "[a-z=&%0-9+-]{0,40}",
        "(from|cols|rows|tab)=[0-9-]{0,22}(&(from|cols|rows|tab)=[0-9a-f%+-]{0,22}){0,4}",
        any::<String>().prop_map(|s| s.replace(['#', ' '], "")),
    ]
}

proptest! {
    #[test]
    fn bodies_parse_or_are_refused(body in prop_oneof![
        proptest::collection::vec(any::<u8>(), 0..128),
        r#"[ {}":,a-z0-9\\]{0,48}"#.prop_map(String::into_bytes),
    ]) {
        let body = Bytes::from(body);
        if let Err(e) = optional_json::<CreateSession>(&body) {
            prop_assert!(refused_cleanly(&e), "{:?}", e);
        }
        match optional_json::<NoOptions>(&body) {
            Ok(NoOptions {}) => {}
            Err(e) => prop_assert!(refused_cleanly(&e), "{:?}", e),
        }
    }

    #[test]
    fn terminal_queries_parse_or_are_refused(query in query()) {
        let Ok(uri) = format!("/t?{query}").parse::<Uri>() else {
            return Ok(()); // hyper refuses such a request line before us
        };
        if let Ok(Query(q)) = Query::<TerminalQuery>::try_from_uri(&uri) {
            // Whatever was given, the values the handler uses stay in range.
            let cols = q.cols.unwrap_or(80).clamp(2, 1000);
            prop_assert!((2..=1000).contains(&cols));
            let _ = q.from.unwrap_or(0);
            let _ = q.rows;
            let _ = q.tab;
        }
    }
}

#[test]
fn empty_and_blank_bodies_mean_defaults() {
    for blank in ["", " ", "\n\t "] {
        let parsed: CreateSession = optional_json(&Bytes::from(blank)).unwrap();
        assert_eq!(parsed, CreateSession::default());
    }
    let status = |body: &'static str| {
        optional_json::<NoOptions>(&Bytes::from(body))
            .err()
            .map(|e| e.status)
    };
    assert_eq!(status(r#"{"x":1}"#), Some(StatusCode::UNPROCESSABLE_ENTITY));
    assert_eq!(status("{"), Some(StatusCode::BAD_REQUEST));
}
