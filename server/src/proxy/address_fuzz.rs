//! Property tests of port addresses: host names and `/proxy/` paths come
//! straight from browsers, so any text must parse or be refused without a
//! panic, and whatever parses must name exactly what was written.
//!
//! Bounded in `cargo test`; `PROPTEST_CASES=100000` for a long run.

use proptest::prelude::*;

use super::*;

fn uuid() -> impl Strategy<Value = String> {
    "[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}"
}

fn instance_name() -> impl Strategy<Value = String> {
    "[a-z0-9]([a-z0-9-]{0,22}[a-z0-9])?"
}

/// Text near the shapes the parsers look for, plus anything at all.
fn label_like() -> impl Strategy<Value = String> {
    prop_oneof![
        any::<String>(),
        "[0-9a-fA-F-]{0,40}-[0-9+]{0,6}-[a-zA-Z0-9_.-]{0,12}",
        (uuid(), any::<u16>(), instance_name())
            .prop_map(|(sid, port, name)| label(&sid, &name, port)),
    ]
}

proptest! {
    #[test]
    fn any_label_parses_back_to_itself_or_is_refused(text in label_like()) {
        if let Some(target) = parse_label(&text) {
            // The canonical form of what was parsed is what was written.
            prop_assert_eq!(label(&target.sid, &target.instance, target.port), text.to_ascii_lowercase());
            prop_assert!(target.port > 0);
            prop_assert_eq!(parse_sid(&target.sid), Some(target.sid.clone()));
        }
    }

    #[test]
    fn made_labels_name_their_target(sid in uuid(), name in instance_name(), port in 1u16..) {
        let target = parse_label(&label(&sid, &name, port));
        prop_assert_eq!(target, Some(Target { sid, instance: name, port }));
    }

    #[test]
    fn session_ids_parse_to_the_dashed_form(text in prop_oneof![any::<String>(), uuid(), "[0-9a-fA-F-]{30,38}"]) {
        if let Some(sid) = parse_sid(&text) {
            prop_assert_eq!(sid.len(), 36);
            prop_assert_eq!(sid.replace('-', ""), text.replace('-', "").to_ascii_lowercase());
            prop_assert_eq!(parse_sid(&sid), Some(sid.clone()));
        }
    }

    #[test]
    fn host_prefixes_are_the_part_before_the_domain(
        host in prop_oneof![
            any::<String>(),
            "[a-zA-Z0-9.:\\[\\]-]{0,30}",
            (label_like(), "(:[0-9]{0,6})?").prop_map(|(l, p)| format!("{l}.localhost{p}")),
        ],
    ) {
        if let Some(prefix) = host_prefix(&host, "localhost") {
            prop_assert!(!prefix.is_empty());
            let name = format!("{prefix}.localhost");
            prop_assert!(host.to_ascii_lowercase().starts_with(&name), "{} {}", host, name);
        }
    }

    #[test]
    fn proxy_paths_split_into_prefix_and_rest(
        path in prop_oneof![
            any::<String>(),
            "/proxy[a-z/]{0,3}",
            (uuid(), "[a-zA-Z0-9_-]{0,8}", "[0-9a-z]{0,6}", "(/[^?#]{0,12})?")
                .prop_map(|(s, i, p, r)| format!("/proxy/{s}/{i}/{p}{r}")),
        ],
    ) {
        match parse_path(&path) {
            None => prop_assert!(!path.starts_with("/proxy/") && path != "/proxy"),
            Some(PathRoute::Malformed) => {}
            Some(PathRoute::AddSlash(location)) => prop_assert_eq!(location, format!("{path}/")),
            Some(PathRoute::Forward { target, prefix, rest }) => {
                prop_assert!(rest.starts_with('/'));
                prop_assert_eq!(format!("{prefix}{rest}"), path);
                prop_assert!(parse_instance(&target.instance).is_some());
                prop_assert!(target.port > 0);
            }
        }
    }
}
