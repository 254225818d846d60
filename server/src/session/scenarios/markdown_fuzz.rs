//! Property tests of the Markdown renderer and its annotation parser: any
//! text renders without panicking to HTML that holds no script, event
//! handler or class outside the allow-list, and annotated code renders as
//! the element the page acts on, whatever the command.
//!
//! Bounded in `cargo test`; `PROPTEST_CASES=100000` for a long run.

use proptest::prelude::*;

use super::*;

/// The tags of `html` as the sanitiser writes them (text escapes `<`,
/// attribute values are double-quoted and escape `"`): each tag's name and
/// its attributes.
fn tags(html: &str) -> Vec<(String, Vec<(String, String)>)> {
    let mut out = Vec::new();
    let mut rest = html;
    while let Some(at) = rest.find('<') {
        rest = &rest[at + 1..];
        let name_len = rest
            .find(|c: char| c.is_whitespace() || c == '>' || c == '/')
            .unwrap_or(rest.len());
        let name = rest[..name_len].to_ascii_lowercase();
        rest = &rest[name_len..];
        let mut attrs = Vec::new();
        loop {
            rest = rest.trim_start_matches(|c: char| c.is_whitespace() || c == '/');
            if rest.is_empty() || rest.starts_with('>') {
                break;
            }
            let n = rest
                .find(|c: char| c.is_whitespace() || c == '=' || c == '>')
                .unwrap_or(rest.len());
            let attr = rest[..n].to_ascii_lowercase();
            rest = &rest[n..];
            let mut value = String::new();
            if let Some(v) = rest.strip_prefix("=\"") {
                let end = v.find('"').unwrap_or(v.len());
                value = v[..end].to_owned();
                rest = &v[(end + 1).min(v.len())..];
            }
            attrs.push((attr, value));
        }
        out.push((name, attrs));
    }
    out
}

fn assert_safe(html: &str) -> Result<(), TestCaseError> {
    for (name, attrs) in tags(html) {
        let name = name.trim_start_matches('/');
        prop_assert!(
            !["script", "style", "iframe", "object", "embed", "form", "input"].contains(&name),
            "<{name}> in {html}"
        );
        for (attr, value) in attrs {
            prop_assert!(
                !attr.starts_with("on") && attr != "style",
                "{attr} in {html}"
            );
            if attr == "href" || attr == "src" {
                prop_assert!(
                    !value
                        .to_ascii_lowercase()
                        .trim_start()
                        .starts_with("javascript:"),
                    "{value} in {html}"
                );
            }
            if attr == "class" {
                for class in value.split_whitespace() {
                    prop_assert!(
                        CLASSES.contains(&class) || language_class(class),
                        "class {class:?} in {html}"
                    );
                }
            }
        }
    }
    Ok(())
}

/// Markdown made of the pieces scenarios use, annotations included, and
/// the raw HTML an attacker would try.
fn scenario_markdown() -> impl Strategy<Value = String> {
    let piece = prop_oneof![
        "[a-zA-Z ]{0,12}",
        Just("\n".to_owned()),
        Just("\n\n".to_owned()),
        Just("`".to_owned()),
        Just("```".to_owned()),
        Just("~~~".to_owned()),
        Just("> ".to_owned()),
        Just("- ".to_owned()),
        Just("{{exec}}".to_owned()),
        Just("{{exec interrupt}}".to_owned()),
        Just("{{copy}}".to_owned()),
        Just("{{}}".to_owned()),
        Just("{{".to_owned()),
        Just("}}".to_owned()),
        Just("{{TRAFFIC_HOST1_80}}".to_owned()),
        Just("{{TRAFFIC_SELECTOR}}".to_owned()),
        Just("{{TRAFFIC_HOST".to_owned()),
        Just("[link](".to_owned()),
        Just(")".to_owned()),
        Just("<script>alert(1)</script>".to_owned()),
        Just("<a href=\"javascript:x\" onclick=\"x\" class=\"exec pwn\">".to_owned()),
        Just("<code class=\"language-\\\" onload=x\" style=\"x\">".to_owned()),
        Just("<details><summary>s</summary>".to_owned()),
        any::<String>(),
    ];
    proptest::collection::vec(piece, 0..24).prop_map(|p| p.concat())
}

proptest! {
    #[test]
    fn any_text_renders_safely(text in any::<String>()) {
        assert_safe(&render(&text))?;
    }

    #[test]
    fn scenario_markdown_renders_safely(text in scenario_markdown()) {
        let html = render(&text);
        assert_safe(&html)?;
        prop_assert!(!html.contains("kc:"), "{html}");
    }

    #[test]
    fn inline_commands_become_elements(
        cmd in "[a-z0-9 ./|-]{1,30}",
        annotation in prop_oneof![
            Just(("{{exec}}", "<code class=\"exec\">")),
            Just(("{{exec interrupt}}", "<code class=\"exec interrupt\">")),
            Just(("{{execute}}", "<code class=\"exec\">")),
            Just(("{{copy}}", "<code class=\"copy\">")),
            Just(("", "<code class=\"copy\">")),
            Just(("{{}}", "<code>")),
        ],
    ) {
        let cmd = cmd.trim();
        prop_assume!(!cmd.is_empty());
        let html = render(&format!("Run `{cmd}`{} now.", annotation.0));
        prop_assert!(html.contains(&format!("{}{cmd}</code> now.", annotation.1)), "{html}");
    }

    #[test]
    fn fenced_commands_become_elements(
        lines in proptest::collection::vec("[a-z0-9 ./|-]{0,20}", 1..5),
        lang in prop_oneof![Just(""), Just("plain"), Just("bash")],
        annotation in prop_oneof![
            Just(("{{exec}}", "<pre class=\"exec\">")),
            Just(("{{exec interrupt}}", "<pre class=\"exec interrupt\">")),
            Just(("{{copy}}", "<pre class=\"copy\">")),
            Just(("", "<pre>")),
            Just(("{{}}", "<pre>")),
        ],
        quoted in any::<bool>(),
    ) {
        let prefix = if quoted { "> " } else { "" };
        let body: String = lines.iter().map(|l| format!("{prefix}{l}\n")).collect();
        let md = format!("Intro\n\n{prefix}```{lang}\n{body}{prefix}```{}\n\nAfter\n", annotation.0);
        let html = render(&md);
        let code_open = if lang.is_empty() { "<code>".to_owned() } else { format!("<code class=\"language-{lang}\">") };
        prop_assert!(html.contains(&format!("{}{code_open}", annotation.1)), "{html}");
        let text: String = lines.iter().map(|l| format!("{l}\n")).collect();
        prop_assert!(html.contains(&format!("{code_open}{text}</code></pre>")), "{html}");
        prop_assert!(html.contains("<p>After</p>"), "{html}");
        prop_assert!(!html.contains("{{"), "{html}");
    }

    #[test]
    fn traffic_placeholders(host in 1u32..100, port in 1u16..) {
        let html = render(&format!("[open]({{{{TRAFFIC_HOST{host}_{port}}}}}) {{{{TRAFFIC_HOST{host}_{port}}}}}"));
        let tag = format!("<a class=\"traffic\" data-host=\"{host}\" data-port=\"{port}\" href=\"#\"");
        prop_assert_eq!(html.matches(&tag).count(), 2, "{}", html);
    }
}
