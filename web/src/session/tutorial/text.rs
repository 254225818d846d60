//! Pure text of the tutorial pane (what a click types, the step label,
//! which button a page gets), apart from the DOM so it is unit-tested on
//! the host.

use playground_protocol::{PageKind, TutorialPage};

/// What an exec element's text types: its lines, each ended by Enter
/// (`\r`, what the Enter key sends), without the blank end a code block has.
pub fn command_input(text: &str) -> String {
    let text = text.trim_end_matches(['\n', '\r', ' ', '\t']);
    let mut out = String::with_capacity(text.len() + 1);
    for line in text.split('\n') {
        out.push_str(line.trim_end_matches('\r'));
        out.push('\r');
    }
    out
}

/// Replace each `{{TRAFFIC_HOST<n>_<port>}}` in `text` by `link(n, port)`
/// (n counts hosts from 1); a placeholder it has no link for stays as it is.
pub fn fill_traffic(text: &str, link: impl Fn(usize, u16) -> Option<String>) -> String {
    const OPEN: &str = "{{TRAFFIC_HOST";
    let mut out = String::with_capacity(text.len());
    let mut rest = text;
    while let Some(at) = rest.find(OPEN) {
        out.push_str(&rest[..at]);
        let after = &rest[at + OPEN.len()..];
        let parsed = after.find("}}").and_then(|end| {
            let (host, port) = after[..end].split_once('_')?;
            let host: usize = host.parse().ok().filter(|&n| n >= 1)?;
            let port: u16 = port.parse().ok().filter(|&p| p >= 1)?;
            Some((link(host, port)?, end + 2))
        });
        match parsed {
            Some((url, len)) => {
                out.push_str(&url);
                rest = &after[len..];
            }
            None => {
                out.push_str(OPEN);
                rest = after;
            }
        }
    }
    out.push_str(rest);
    out
}

/// The heading and the HTML below it. Markdown pages usually start with
/// their title: a leading `<h1>` that repeats the page's title is not shown
/// twice, and on the intro and finish (whose titles may be made up) a
/// leading `<h1>` of their own becomes the heading.
pub fn heading_and_body(page: &TutorialPage) -> (String, &str) {
    let own = page
        .html
        .trim_start()
        .strip_prefix("<h1>")
        .and_then(|rest| {
            let (inner, after) = rest.split_once("</h1>")?;
            // Only a plain-text heading; one with markup stays in the body.
            (!inner.contains('<')).then(|| (unescape(inner.trim()), after.trim_start_matches('\n')))
        });
    match own {
        Some((text, body)) if text == page.title.trim() || page.kind != PageKind::Step => {
            (text, body)
        }
        _ => (page.title.clone(), &page.html),
    }
}

/// The entities a sanitiser writes in text.
fn unescape(text: &str) -> String {
    text.replace("&lt;", "<")
        .replace("&gt;", ">")
        .replace("&quot;", "\"")
        .replace("&#39;", "'")
        .replace("&amp;", "&")
}

/// The step indicator: `Introduction`, `Step 2 of 3`, `Finish`.
pub fn page_label(pages: &[TutorialPage], page: usize) -> String {
    let steps = pages.iter().filter(|p| p.kind == PageKind::Step).count();
    match pages.get(page).map(|p| p.kind) {
        Some(PageKind::Intro) => "Introduction".to_owned(),
        Some(PageKind::Finish) => "Finish".to_owned(),
        Some(PageKind::Step) => format!("Step {} of {steps}", step_number(pages, page)),
        None => String::new(),
    }
}

/// The step number (from 1) of page `page`, counting steps only.
pub fn step_number(pages: &[TutorialPage], page: usize) -> usize {
    pages
        .iter()
        .take(page + 1)
        .filter(|p| p.kind == PageKind::Step)
        .count()
}

/// What the pane's main button does on a page.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Forward {
    /// The intro: ask the server to move on (a check that passes at once).
    Start,
    /// Run the page's verify script.
    Check,
    /// A step without a check: move on at once (also a check).
    Next,
    /// A page done before: open the next one again, no check.
    Reopen,
    /// The last page: nowhere to go.
    None,
}

/// The main button of page `page` when pages up to `reached` are open.
pub fn forward(pages: &[TutorialPage], page: usize, reached: usize) -> Forward {
    let Some(p) = pages.get(page) else {
        return Forward::None;
    };
    if page + 1 >= pages.len() && (p.kind != PageKind::Step || page < reached) {
        return Forward::None;
    }
    if page < reached {
        return Forward::Reopen;
    }
    match p.kind {
        PageKind::Intro => Forward::Start,
        PageKind::Step if p.has_check => Forward::Check,
        PageKind::Step => Forward::Next,
        PageKind::Finish => Forward::None,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn page(kind: PageKind, has_check: bool) -> TutorialPage {
        TutorialPage {
            kind,
            title: String::new(),
            html: String::new(),
            has_check,
        }
    }

    fn pages() -> Vec<TutorialPage> {
        vec![
            page(PageKind::Intro, false),
            page(PageKind::Step, true),
            page(PageKind::Step, false),
            page(PageKind::Step, true),
            page(PageKind::Finish, false),
        ]
    }

    #[test]
    fn commands() {
        assert_eq!(command_input("docker ps"), "docker ps\r");
        assert_eq!(command_input("uname -r\npwd\n"), "uname -r\rpwd\r");
        assert_eq!(command_input("a\r\nb\n\n"), "a\rb\r");
        // Blank lines inside a block are typed too (a heredoc may need them).
        assert_eq!(command_input("a\n\nb"), "a\r\rb\r");
    }

    #[test]
    fn traffic_placeholders() {
        let link = |host: usize, port: u16| {
            (host <= 2).then(|| format!("http://node{host}-{port}.example"))
        };
        assert_eq!(
            fill_traffic("curl {{TRAFFIC_HOST1_80}}/x", link),
            "curl http://node1-80.example/x"
        );
        assert_eq!(
            fill_traffic("{{TRAFFIC_HOST2_8080}} {{TRAFFIC_HOST1_1}}", link),
            "http://node2-8080.example http://node1-1.example"
        );
        // Unknown hosts, bad ports and other placeholders stay.
        for text in [
            "{{TRAFFIC_HOST3_80}}",
            "{{TRAFFIC_HOST1_70000}}",
            "{{TRAFFIC_HOST0_80}}",
            "{{TRAFFIC_SELECTOR}}",
            "{{TRAFFIC_HOST1_80",
            "no placeholder",
        ] {
            assert_eq!(fill_traffic(text, link), text);
        }
    }

    #[test]
    fn headings() {
        let mut p = page(PageKind::Step, true);
        p.title = "Run a container".into();
        p.html = "<h1>Run a container</h1>\n<p>Text</p>\n".into();
        assert_eq!(
            heading_and_body(&p),
            ("Run a container".into(), "<p>Text</p>\n")
        );
        // A step's own title wins over a different heading, which stays.
        p.title = "Step 1".into();
        assert_eq!(heading_and_body(&p), ("Step 1".into(), p.html.as_str()));
        // The finish's heading replaces a made-up title.
        let mut f = page(PageKind::Finish, false);
        f.title = "Finished".into();
        f.html = "<h1>Done &amp; dusted</h1><p>x</p>".into();
        assert_eq!(heading_and_body(&f), ("Done & dusted".into(), "<p>x</p>"));
        // No heading, or one with markup: the title, the HTML as it is.
        f.html = "<p>x</p>".into();
        assert_eq!(heading_and_body(&f), ("Finished".into(), "<p>x</p>"));
        f.html = "<h1><code>ls</code></h1>".into();
        assert_eq!(heading_and_body(&f), ("Finished".into(), f.html.as_str()));
    }

    #[test]
    fn labels() {
        let p = pages();
        let labels: Vec<String> = (0..6).map(|i| page_label(&p, i)).collect();
        assert_eq!(
            labels,
            [
                "Introduction",
                "Step 1 of 3",
                "Step 2 of 3",
                "Step 3 of 3",
                "Finish",
                ""
            ]
        );
        assert_eq!(step_number(&p, 3), 3);
    }

    #[test]
    fn buttons() {
        let p = pages();
        assert_eq!(forward(&p, 0, 0), Forward::Start);
        assert_eq!(forward(&p, 1, 1), Forward::Check);
        assert_eq!(forward(&p, 2, 2), Forward::Next);
        assert_eq!(forward(&p, 1, 3), Forward::Reopen);
        assert_eq!(forward(&p, 0, 3), Forward::Reopen);
        assert_eq!(forward(&p, 4, 4), Forward::None);
        // A scenario without a finish page: its last step still checks.
        let mut q = pages();
        q.pop();
        assert_eq!(forward(&q, 3, 3), Forward::Check);
        assert_eq!(forward(&q, 3, 4), Forward::None);
    }
}
