//! Property tests of the templates file (TOML): any text loads or is
//! refused with a message naming the file, and every template that loads
//! has usable hostnames, unique within it.
//!
//! Bounded in `cargo test`; `PROPTEST_CASES=100000` for a long run.

use std::sync::atomic::{AtomicUsize, Ordering};

use proptest::prelude::*;

use super::*;

/// `text` loaded as a templates file (a temporary file per call).
fn load_text(text: &str, max: u32) -> anyhow::Result<Vec<TemplateInfo>> {
    static NEXT: AtomicUsize = AtomicUsize::new(0);
    let path = std::env::temp_dir().join(format!(
        "templates-fuzz-{}-{}.toml",
        std::process::id(),
        NEXT.fetch_add(1, Ordering::Relaxed)
    ));
    std::fs::write(&path, text).unwrap();
    let result = load(Some(&path), max);
    std::fs::remove_file(&path).unwrap();
    result
}

fn toml_string() -> impl Strategy<Value = String> {
    prop_oneof!["[a-z0-9-]{0,26}", "[A-Za-z_. -]{0,6}", any::<String>()]
        .prop_map(|s| format!("{s:?}")) // a TOML basic string needs the same escapes
}

/// Files of the documented shape with names and hostnames that may or may
/// not be valid.
fn templates_file() -> impl Strategy<Value = String> {
    let instance = (
        toml_string(),
        proptest::collection::vec(toml_string(), 0..3),
    )
        .prop_map(|(h, run)| {
            format!(
                "[[template.instance]]\nhostname = {h}\nrun = [{}]\n",
                run.join(", ")
            )
        });
    let template = (
        toml_string(),
        toml_string(),
        proptest::collection::vec(instance, 0..4),
    )
        .prop_map(|(n, t, i)| format!("[[template]]\nname = {n}\ntitle = {t}\n{}", i.concat()));
    proptest::collection::vec(template, 0..4).prop_map(|t| t.concat())
}

proptest! {
    #[test]
    fn any_text_loads_or_is_refused(text in prop_oneof![
        any::<String>(),
        "[\\[\\]a-z=\" \n.0-9]{0,80}",
    ]) {
        if let Err(e) = load_text(&text, 5) {
            prop_assert!(e.to_string().starts_with("templates file "));
        }
    }

    #[test]
    fn loaded_templates_are_usable(text in templates_file(), max in 0u32..6) {
        match load_text(&text, max) {
            Ok(all) => {
                for t in &all {
                    prop_assert!(!t.instances.is_empty() && t.instances.len() <= max as usize);
                    let mut seen = HashSet::new();
                    for i in &t.instances {
                        prop_assert!(valid_hostname(&i.hostname), "{:?}", i.hostname);
                        prop_assert!(seen.insert(&i.hostname));
                    }
                }
            }
            Err(e) => prop_assert!(e.to_string().starts_with("templates file ")),
        }
    }
}
