//! A scenario's Markdown to sanitised HTML, with Killercoda's annotations
//! turned into elements the page acts on:
//!
//! | Markdown | HTML |
//! | --- | --- |
//! | `` `cmd` `` (inline code, no annotation) | `<code class="copy">` |
//! | `` `cmd`{{copy}} `` | `<code class="copy">` |
//! | `` `cmd`{{exec}} `` | `<code class="exec">` |
//! | `` `cmd`{{exec interrupt}} `` | `<code class="exec interrupt">` (Ctrl-C first) |
//! | `` `cmd`{{exec host2}} `` | `<code class="exec" data-host="2">` (in the second instance's terminal) |
//! | `` `cmd`{{}} `` | `<code>` (nothing to click) |
//! | a fenced block closed by ` ```{{exec}} ` (or the others) | `<pre class="exec">` and so on |
//! | a fenced block with no annotation | `<pre>` (nothing to click) |
//! | `[text]({{TRAFFIC_HOST1_80}})`, or the bare placeholder in text | `<a class="traffic" data-host="1" data-port="80" href="#">` |
//! | `[text]({{TRAFFIC_SELECTOR}})`, or the bare placeholder | `<a class="traffic-selector" href="#">` |
//!
//! `{{execute}}` is taken for `{{exec}}` (Katacoda's spelling). The page
//! runs or copies the element's text; placeholders inside code are left as
//! written for the page to fill in.
//!
//! The annotations are handled before sanitising, and the sanitiser keeps
//! exactly these classes and `data-` attributes (and `language-*` on code),
//! so the raw HTML a scenario may hold cannot add others.
//!
//! A closing fence followed by `{{exec}}` is not a closing fence to
//! CommonMark, so a first pass over the lines moves the annotation of such
//! a fence into the info string of its opening fence, as a `kc:exec`
//! word, which the second pass (over pulldown-cmark's events) reads.

use std::borrow::Cow;
use std::collections::HashSet;

use pulldown_cmark::{CodeBlockKind, CowStr, Event, Options, Parser, Tag, TagEnd, TextMergeStream};

/// What clicking a code element does.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Action {
    /// `{{}}`, and fenced blocks without annotation.
    Nothing,
    Copy,
    /// Run in the terminal: with `interrupt`, Ctrl-C first; with a host
    /// (`{{exec host2}}`, Katacoda's `{{execute HOST2}}`), in that
    /// instance's terminal (from 1), else in the one shown.
    Exec {
        interrupt: bool,
        host: Option<u32>,
    },
}

impl Action {
    /// The annotation's inside, between `{{` and `}}`; `None` for text that
    /// is no annotation (it then stays in the output as written).
    pub fn parse(inside: &str) -> Option<Action> {
        let words: Vec<&str> = inside.split_whitespace().collect();
        match words.as_slice() {
            [] => Some(Action::Nothing),
            ["copy"] => Some(Action::Copy),
            ["exec" | "execute", options @ ..] => {
                let (mut interrupt, mut host) = (false, None);
                for option in options {
                    if *option == "interrupt" && !interrupt {
                        interrupt = true;
                    } else if let Some(n) = host_number(option).filter(|_| host.is_none()) {
                        host = Some(n);
                    } else {
                        return None;
                    }
                }
                Some(Action::Exec { interrupt, host })
            }
            _ => None,
        }
    }

    /// The word carried in a fence's info string (`kc:<word>`).
    fn word(self) -> String {
        match self {
            Action::Nothing => "none".into(),
            Action::Copy => "copy".into(),
            Action::Exec { interrupt, host } => {
                let mut word = "exec".to_string();
                if interrupt {
                    word.push_str("-interrupt");
                }
                if let Some(n) = host {
                    word.push_str(&format!("-host{n}"));
                }
                word
            }
        }
    }

    fn from_word(word: &str) -> Option<Action> {
        match word {
            "none" => Some(Action::Nothing),
            "copy" => Some(Action::Copy),
            _ => Action::parse(&word.replace('-', " ")),
        }
    }

    /// The attributes for it, with a leading space, or nothing.
    fn attrs(self) -> String {
        match self {
            Action::Nothing => String::new(),
            Action::Copy => " class=\"copy\"".into(),
            Action::Exec { interrupt, host } => {
                let class = if interrupt { "exec interrupt" } else { "exec" };
                match host {
                    Some(n) => format!(" class=\"{class}\" data-host=\"{n}\""),
                    None => format!(" class=\"{class}\""),
                }
            }
        }
    }
}

/// `host2` or `HOST2` (Katacoda's spelling): 2.
fn host_number(word: &str) -> Option<u32> {
    let digits = word
        .strip_prefix("host")
        .or_else(|| word.strip_prefix("HOST"))?;
    if digits.is_empty() || digits.len() > 3 || !digits.bytes().all(|b| b.is_ascii_digit()) {
        return None;
    }
    digits.parse().ok().filter(|&n| n >= 1)
}

/// A `{{TRAFFIC_...}}` placeholder.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Traffic {
    /// `{{TRAFFIC_HOST<n>_<port>}}`: a port of the n-th instance (from 1).
    Host { host: u32, port: u16 },
    /// `{{TRAFFIC_SELECTOR}}`: the list of the session's ports.
    Selector,
}

impl Traffic {
    /// A placeholder at the very start of `s`, and its length.
    pub fn parse_prefix(s: &str) -> Option<(Traffic, usize)> {
        let rest = s.strip_prefix("{{TRAFFIC_")?;
        let end = rest.find("}}")?;
        let inner = &rest[..end];
        let len = "{{TRAFFIC_".len() + end + 2;
        if inner == "SELECTOR" {
            return Some((Traffic::Selector, len));
        }
        let (host, port) = inner.strip_prefix("HOST")?.split_once('_')?;
        let digits =
            |d: &str| !d.is_empty() && d.len() <= 5 && d.bytes().all(|b| b.is_ascii_digit());
        if !digits(host) || !digits(port) {
            return None;
        }
        let host: u32 = host.parse().ok()?;
        let port: u16 = port.parse().ok()?;
        (host >= 1 && port >= 1).then_some((Traffic::Host { host, port }, len))
    }

    fn open_tag(self) -> String {
        match self {
            Traffic::Host { host, port } => {
                format!(
                    "<a class=\"traffic\" data-host=\"{host}\" data-port=\"{port}\" href=\"#\">"
                )
            }
            Traffic::Selector => "<a class=\"traffic-selector\" href=\"#\">".into(),
        }
    }

    /// The link text for a bare placeholder.
    fn label(self) -> String {
        match self {
            Traffic::Host { host, port } => format!("port {port} of node{host}"),
            Traffic::Selector => "the ports".into(),
        }
    }
}

/// `markdown` to sanitised HTML.
pub fn render(markdown: &str) -> String {
    let source = move_fence_annotations(markdown);
    let mut options = Options::empty();
    options.insert(Options::ENABLE_TABLES);
    options.insert(Options::ENABLE_STRIKETHROUGH);
    let events = annotate(TextMergeStream::new(Parser::new_ext(&source, options)));
    let mut html = String::with_capacity(markdown.len() * 3 / 2);
    pulldown_cmark::html::push_html(&mut html, events.into_iter());
    sanitise(&html)
}

/// The first pass: ` ```{{exec}} ` closing a fence becomes ` ``` `, and
/// the fence's opening line gets ` kc:exec` at the end of its info string.
pub(super) fn move_fence_annotations(markdown: &str) -> String {
    let mut lines: Vec<String> = markdown.split_inclusive('\n').map(str::to_owned).collect();
    // The open fence: its line, its character and its length.
    let mut open: Option<(usize, u8, usize)> = None;
    for i in 0..lines.len() {
        let (line, ending) = split_ending(&lines[i]);
        let body = strip_container(line);
        let prefix = line.len() - body.len();
        let Some(c) = body.bytes().next().filter(|b| *b == b'`' || *b == b'~') else {
            continue;
        };
        let run = body.bytes().take_while(|b| *b == c).count();
        if run < 3 {
            continue;
        }
        let after = &body[run..];
        match open {
            None => {
                if c == b'`' && after.contains('`') {
                    continue; // inline code, not a fence
                }
                open = Some((i, c, run));
            }
            Some((start, oc, olen)) if oc == c && run >= olen => {
                let after = after.trim();
                if after.is_empty() {
                    open = None;
                    continue;
                }
                let action = after
                    .strip_prefix("{{")
                    .and_then(|a| a.strip_suffix("}}"))
                    .filter(|a| !a.contains(['{', '}']))
                    .and_then(Action::parse);
                if let Some(action) = action {
                    let closing = format!("{}{ending}", &line[..prefix + run]);
                    let (first, first_end) = split_ending(&lines[start]);
                    let opening = format!("{first} kc:{}{first_end}", action.word());
                    lines[i] = closing;
                    lines[start] = opening;
                    open = None;
                }
            }
            Some(_) => {}
        }
    }
    lines.concat()
}

/// A line without its line ending, and the ending.
fn split_ending(line: &str) -> (&str, &str) {
    let body = line.trim_end_matches(['\n', '\r']);
    (body, &line[body.len()..])
}

/// A line without what puts it in a block quote or a list item: leading
/// blanks, `>`, and one list marker.
fn strip_container(line: &str) -> &str {
    let line = line.trim_start_matches([' ', '\t', '>']);
    let marker = line
        .strip_prefix(['-', '*', '+'])
        .or_else(|| {
            let digits = line.bytes().take_while(u8::is_ascii_digit).count();
            (digits > 0 && digits <= 9)
                .then(|| line[digits..].strip_prefix(['.', ')']))
                .flatten()
        })
        .filter(|rest| rest.starts_with([' ', '\t']));
    match marker {
        Some(rest) => rest.trim_start_matches([' ', '\t']),
        None => line,
    }
}

/// The second pass, over the parser's events.
fn annotate<'a>(events: impl Iterator<Item = Event<'a>>) -> Vec<Event<'a>> {
    let mut out: Vec<Event<'a>> = Vec::new();
    let mut in_link = 0usize;
    let mut in_code_block = false;
    let mut events = events.peekable();
    while let Some(event) = events.next() {
        match event {
            Event::Code(code) => {
                // An annotation right after the code, in the text that follows.
                let mut action = Action::Copy;
                if let Some(Event::Text(next)) = events.peek() {
                    if let Some((a, len)) = leading_annotation(next) {
                        action = a;
                        let rest = next[len..].to_string();
                        events.next();
                        out.push(code_html(action, &code));
                        if !rest.is_empty() {
                            push_text(&mut out, rest.into(), in_link > 0);
                        }
                        continue;
                    }
                }
                out.push(code_html(action, &code));
            }
            Event::Start(Tag::CodeBlock(kind)) => {
                in_code_block = true;
                let info = match &kind {
                    CodeBlockKind::Fenced(info) => info.to_string(),
                    CodeBlockKind::Indented => String::new(),
                };
                let mut action = Action::Nothing;
                let mut lang = None;
                for word in info.split_whitespace() {
                    match word.strip_prefix("kc:").and_then(Action::from_word) {
                        Some(a) => action = a,
                        None if lang.is_none() => lang = Some(word.to_owned()),
                        None => {}
                    }
                }
                let lang = lang
                    .map(|l| format!(" class=\"language-{}\"", escape_attr(&l)))
                    .unwrap_or_default();
                out.push(Event::Html(
                    format!("<pre{}><code{lang}>", action.attrs()).into(),
                ));
            }
            Event::End(TagEnd::CodeBlock) => {
                in_code_block = false;
                out.push(Event::End(TagEnd::CodeBlock));
            }
            Event::Start(Tag::Link {
                dest_url,
                title,
                link_type,
                id,
            }) => {
                in_link += 1;
                match Traffic::parse_prefix(&dest_url).filter(|(_, len)| *len == dest_url.len()) {
                    Some((traffic, _)) => out.push(Event::InlineHtml(traffic.open_tag().into())),
                    None => out.push(Event::Start(Tag::Link {
                        dest_url,
                        title,
                        link_type,
                        id,
                    })),
                }
            }
            Event::End(TagEnd::Link) => {
                in_link = in_link.saturating_sub(1);
                out.push(Event::End(TagEnd::Link));
            }
            Event::Text(text) if !in_code_block => push_text(&mut out, text, in_link > 0),
            other => out.push(other),
        }
    }
    out
}

/// `{{...}}` at the start of `text` that is an annotation, and its length.
fn leading_annotation(text: &str) -> Option<(Action, usize)> {
    let rest = text.strip_prefix("{{")?;
    let end = rest.find("}}")?;
    let inside = &rest[..end];
    if inside.contains('{') {
        return None;
    }
    Action::parse(inside).map(|a| (a, end + 4))
}

fn code_html<'a>(action: Action, code: &str) -> Event<'a> {
    Event::InlineHtml(format!("<code{}>{}</code>", action.attrs(), escape_text(code)).into())
}

/// Text, with bare `{{TRAFFIC_...}}` placeholders made links (not inside a
/// link already: links do not nest).
fn push_text<'a>(out: &mut Vec<Event<'a>>, text: CowStr<'a>, in_link: bool) {
    if in_link || !text.contains("{{TRAFFIC_") {
        out.push(Event::Text(text));
        return;
    }
    let mut plain = String::new();
    let mut rest: &str = &text;
    while let Some(at) = rest.find("{{TRAFFIC_") {
        plain.push_str(&rest[..at]);
        match Traffic::parse_prefix(&rest[at..]) {
            Some((traffic, len)) => {
                if !plain.is_empty() {
                    out.push(Event::Text(std::mem::take(&mut plain).into()));
                }
                out.push(Event::InlineHtml(
                    format!(
                        "{}{}</a>",
                        traffic.open_tag(),
                        escape_text(&traffic.label())
                    )
                    .into(),
                ));
                rest = &rest[at + len..];
            }
            None => {
                plain.push_str("{{TRAFFIC_");
                rest = &rest[at + "{{TRAFFIC_".len()..];
            }
        }
    }
    plain.push_str(rest);
    if !plain.is_empty() {
        out.push(Event::Text(plain.into()));
    }
}

fn escape_text(s: &str) -> String {
    let mut out = String::with_capacity(s.len());
    for c in s.chars() {
        match c {
            '&' => out.push_str("&amp;"),
            '<' => out.push_str("&lt;"),
            '>' => out.push_str("&gt;"),
            c => out.push(c),
        }
    }
    out
}

fn escape_attr(s: &str) -> String {
    escape_text(s).replace('"', "&quot;").replace('\'', "&#39;")
}

/// The classes our elements carry; with `language-*` on `code`, the only
/// ones the sanitiser keeps.
const CLASSES: &[&str] = &["copy", "exec", "interrupt", "traffic", "traffic-selector"];

fn language_class(class: &str) -> bool {
    class.strip_prefix("language-").is_some_and(|l| {
        !l.is_empty()
            && l.len() <= 32
            && l.bytes()
                .all(|b| b.is_ascii_alphanumeric() || b"+#._-".contains(&b))
    })
}

/// ammonia's defaults (no scripts, styles, event handlers or `javascript:`
/// links; `rel="noopener noreferrer"` on links), plus our classes and
/// `data-` attributes, checked value by value.
pub(super) fn sanitise(html: &str) -> String {
    let mut builder = ammonia::Builder::default();
    builder
        .add_tag_attributes("code", ["class", "data-host"])
        .add_tag_attributes("pre", ["class", "data-host"])
        .add_tag_attributes("a", ["class", "data-host", "data-port"])
        .add_tag_attributes("details", ["open"])
        .attribute_filter(|element, attribute, value| match attribute {
            "class" => {
                let kept: Vec<&str> = value
                    .split_ascii_whitespace()
                    .filter(|c| CLASSES.contains(c) || (element == "code" && language_class(c)))
                    .collect::<HashSet<_>>()
                    .into_iter()
                    .collect();
                let mut kept = kept;
                kept.sort_unstable();
                (!kept.is_empty()).then(|| Cow::Owned(kept.join(" ")))
            }
            "data-host" | "data-port" => {
                (!value.is_empty() && value.len() <= 5 && value.bytes().all(|b| b.is_ascii_digit()))
                    .then_some(Cow::Borrowed(value))
            }
            _ => Some(Cow::Borrowed(value)),
        });
    builder.clean(html).to_string()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn exec_in_a_chosen_instance() {
        let html = render(
            "`hostname`{{exec host2}} `a`{{execute HOST3}} `b`{{exec interrupt host1}} `c`{{exec host0}} `d`{{exec host2 host3}}\n\n```\nls\n```{{exec host2}}\n",
        );
        assert!(
            html.contains("<code class=\"exec\" data-host=\"2\">hostname</code>"),
            "{html}"
        );
        assert!(
            html.contains("<code class=\"exec\" data-host=\"3\">a</code>"),
            "{html}"
        );
        assert!(
            html.contains("<code class=\"exec interrupt\" data-host=\"1\">b</code>"),
            "{html}"
        );
        // Not annotations: left as written.
        assert!(html.contains("c</code>{{exec host0}}"), "{html}");
        assert!(html.contains("{{exec host2 host3}}"), "{html}");
        assert!(
            html.contains("<pre class=\"exec\" data-host=\"2\"><code>ls\n</code></pre>"),
            "{html}"
        );
        // Raw HTML cannot put anything but digits there.
        let html = render("<code class=\"exec\" data-host=\"1 onclick=x\">y</code>");
        assert!(!html.contains("data-host"), "{html}");
    }

    #[test]
    fn inline_annotations() {
        let html =
            render("`ls -lh`{{exec}} and `whoami`{{exec interrupt}}, `a`{{copy}} `b`{{}} `c`");
        assert!(
            html.contains("<code class=\"exec\">ls -lh</code> and"),
            "{html}"
        );
        assert!(
            html.contains("<code class=\"exec interrupt\">whoami</code>,"),
            "{html}"
        );
        assert!(html.contains("<code class=\"copy\">a</code>"), "{html}");
        assert!(html.contains("<code>b</code>"), "{html}");
        assert!(html.contains("<code class=\"copy\">c</code>"), "{html}");
        assert!(!html.contains("{{"), "{html}");
    }

    #[test]
    fn fenced_annotations() {
        let md = "Run:\n\n```plain\nuname -r\npwd\n```{{exec}}\n\nText after.\n\n```\nkubectl get pod\n```{{copy}}\n\n```yaml\nkind: Pod\n```\n\n~~~\nsleep 1\n~~~{{execute interrupt}}\n";
        let html = render(md);
        assert!(
            html.contains(
                "<pre class=\"exec\"><code class=\"language-plain\">uname -r\npwd\n</code></pre>"
            ),
            "{html}"
        );
        assert!(html.contains("<p>Text after.</p>"), "{html}");
        assert!(
            html.contains("<pre class=\"copy\"><code>kubectl get pod\n</code></pre>"),
            "{html}"
        );
        assert!(
            html.contains("<pre><code class=\"language-yaml\">kind: Pod\n</code></pre>"),
            "{html}"
        );
        assert!(
            html.contains("<pre class=\"exec interrupt\"><code>sleep 1\n</code></pre>"),
            "{html}"
        );
        assert!(!html.contains("{{") && !html.contains("kc:"), "{html}");
    }

    #[test]
    fn fences_in_block_quotes_and_lists() {
        let html = render("- item\n\n  ```\n  ls\n  ```{{exec}}\n\n> ```\n> pwd\n> ```{{copy}}\n");
        assert!(
            html.contains("<pre class=\"exec\"><code>ls\n</code></pre>"),
            "{html}"
        );
        assert!(
            html.contains("<pre class=\"copy\"><code>pwd\n</code></pre>"),
            "{html}"
        );
    }

    #[test]
    fn traffic_links() {
        let html = render("[ACCESS NGINX]({{TRAFFIC_HOST1_80}}) or [ports]({{TRAFFIC_SELECTOR}}); bare {{TRAFFIC_HOST2_8080}}.");
        assert!(
            html.contains("<a class=\"traffic\" data-host=\"1\" data-port=\"80\" href=\"#\" rel=\"noopener noreferrer\">ACCESS NGINX</a>"),
            "{html}"
        );
        assert!(
            html.contains(
                "<a class=\"traffic-selector\" href=\"#\" rel=\"noopener noreferrer\">ports</a>"
            ),
            "{html}"
        );
        assert!(
            html.contains("data-host=\"2\" data-port=\"8080\""),
            "{html}"
        );
        // Not placeholders: left as written.
        let html = render("{{TRAFFIC_HOST0_80}} {{TRAFFIC_HOST1_70000}} {{TRAFFIC_X}}");
        assert!(
            html.contains("{{TRAFFIC_HOST0_80}} {{TRAFFIC_HOST1_70000}} {{TRAFFIC_X}}"),
            "{html}"
        );
        // In code they stay for the page to fill in.
        let html = render("`curl {{TRAFFIC_HOST1_80}}`{{exec}}");
        assert!(
            html.contains("<code class=\"exec\">curl {{TRAFFIC_HOST1_80}}</code>"),
            "{html}"
        );
    }

    #[test]
    fn raw_html_is_sanitised() {
        let md = "<details><summary>Solution</summary>\n\n`ls`{{exec}}\n\n</details>\n\n<script>alert(1)</script>\n<img src=x onerror=alert(1)>\n<a href=\"javascript:alert(1)\" class=\"exec evil\">x</a>\n<code class=\"exec language-sh owned\" style=\"color:red\" data-host=\"1\">y</code>\n<a class=\"traffic\" data-host=\"1; x\" data-port=\"80\">z</a>\n";
        let html = render(md);
        assert!(
            html.contains("<details><summary>Solution</summary>"),
            "{html}"
        );
        assert!(html.contains("<code class=\"exec\">ls</code>"), "{html}");
        for bad in [
            "script",
            "onerror",
            "javascript",
            "evil",
            "owned",
            "style",
            "1; x",
        ] {
            assert!(!html.contains(bad), "{bad} in {html}");
        }
        assert!(
            html.contains("<code class=\"exec language-sh\" data-host=\"1\">y</code>"),
            "{html}"
        );
    }

    #[test]
    fn unknown_annotations_stay_as_text() {
        let html = render("`x`{{open}} and\n\n```\ny\n```{{foo}}\n");
        assert!(
            html.contains("<code class=\"copy\">x</code>{{open}}"),
            "{html}"
        );
        // Not a closing fence: CommonMark keeps the block open to the end.
        assert!(html.contains("```{{foo}}"), "{html}");
    }
}

#[cfg(test)]
#[path = "markdown_fuzz.rs"]
mod fuzz;
