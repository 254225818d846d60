//! Property tests of the files API's own path handling: the query string
//! and the download name made from a path. (Paths themselves are resolved by
//! the instance's init inside the instance's mount namespace; see the
//! sandbox's `init::resolve` and its tests.)
//!
//! Bounded in `cargo test`; `PROPTEST_CASES=100000` for a long run.

use axum::extract::Query;
use axum::http::Uri;
use proptest::prelude::*;

use super::*;

proptest! {
    #[test]
    fn download_names_are_safe_in_a_quoted_header(path in prop_oneof![
        any::<String>(),
        "(/[a-z. \"\\\\]{0,6}){0,4}/?",
    ]) {
        let name = download_name(&path);
        prop_assert!(!name.is_empty());
        prop_assert!(name.bytes().all(|b| (b.is_ascii_graphic() || b == b' ') && b != b'"' && b != b'\\' && b != b'/'));
        // It always makes a valid header value.
        let header = format!("attachment; filename=\"{name}\"");
        prop_assert!(axum::http::HeaderValue::from_str(&header).is_ok());
    }

    #[test]
    fn file_queries_parse_or_are_refused(query in prop_oneof![
        "(path|list)=[a-z/%0-9.+]{0,20}(&(path|list)=[a-z/%0-9.]{0,20}){0,3}",
        any::<String>().prop_map(|s| s.replace(['#', ' '], "")),
    ]) {
        let Ok(uri) = format!("/f?{query}").parse::<Uri>() else {
            return Ok(());
        };
        if let Ok(Query(q)) = Query::<FileQuery>::try_from_uri(&uri) {
            match require_path(q) {
                Ok(path) => prop_assert!(!path.is_empty()),
                Err(e) => prop_assert_eq!(e.status, StatusCode::BAD_REQUEST),
            }
        }
    }
}
