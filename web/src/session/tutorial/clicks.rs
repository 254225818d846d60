//! Clicks inside a page's HTML, by event delegation: the HTML comes from the
//! server as a string, so its elements carry no handlers of their own; one
//! handler on the text finds which annotated element was clicked.

use gloo_timers::callback::Timeout;
use wasm_bindgen::JsCast;
use web_sys::{Element, Event};

/// The annotated elements, by the classes the server's Markdown gives them.
const CLICKABLE: &str = "pre.exec, code.exec, .copy, a.traffic, a.traffic-selector";

/// What a click in the text asks for.
pub enum Click {
    /// Type `text` into a terminal: host `host` (from 1) when given, else
    /// the one shown; Ctrl-C first when `interrupt`.
    Exec {
        host: Option<usize>,
        text: String,
        interrupt: bool,
        element: Element,
    },
    Copy {
        text: String,
        element: Element,
    },
    /// A port of host `host` (from 1).
    Traffic {
        host: usize,
        port: u16,
        element: Element,
    },
    Selector,
}

/// The annotated element under a click (or Enter on it) inside `root`, if any.
pub fn classify(ev: &Event, root: &Element) -> Option<Click> {
    let target: Element = ev.target()?.dyn_into().ok()?;
    let element = target.closest(CLICKABLE).ok()??;
    if !root.contains(Some(&element)) {
        return None;
    }
    let classes = element.class_list();
    fn number<T: std::str::FromStr>(element: &Element, name: &str) -> Option<T> {
        element.get_attribute(name)?.trim().parse().ok()
    }
    if classes.contains("traffic-selector") {
        return Some(Click::Selector);
    }
    if classes.contains("traffic") {
        return Some(Click::Traffic {
            host: number(&element, "data-host")?,
            port: number(&element, "data-port")?,
            element,
        });
    }
    let text = element.text_content().unwrap_or_default();
    if classes.contains("exec") {
        return Some(Click::Exec {
            host: number(&element, "data-host"),
            interrupt: classes.contains("interrupt"),
            text,
            element,
        });
    }
    Some(Click::Copy { text, element })
}

/// Mark `element` with `class` for a moment (the "copied" and "ran" flash).
pub fn flash(element: &Element, class: &'static str, ms: u32) {
    let _ = element.class_list().add_1(class);
    let element = element.clone();
    Timeout::new(ms, move || {
        let _ = element.class_list().remove_1(class);
    })
    .forget();
}

/// Make the commands and texts to copy under `root` reachable by keyboard
/// and say what a click does (`host_name(n)`: the n-th host's name).
pub fn describe_actions(root: &Element, host_name: impl Fn(usize) -> Option<String>) {
    let Ok(found) = root.query_selector_all("pre.exec, code.exec, .copy") else {
        return;
    };
    for i in 0..found.length() {
        let Some(el) = found.get(i).and_then(|n| n.dyn_into::<Element>().ok()) else {
            continue;
        };
        if el.has_attribute("tabindex") {
            continue;
        }
        let title = if el.class_list().contains("exec") {
            let host = el
                .get_attribute("data-host")
                .and_then(|n| n.trim().parse().ok())
                .and_then(&host_name);
            match host {
                Some(name) => format!("Run in {name}'s terminal"),
                None => "Run in the terminal".to_owned(),
            }
        } else {
            "Copy".to_owned()
        };
        let _ = el.set_attribute("tabindex", "0");
        let _ = el.set_attribute("role", "button");
        let _ = el.set_attribute("title", &title);
    }
}

/// Give every `a.traffic` under `root` its real address (`link(host,
/// port)`), opening in a new tab, so it works as a plain link: middle
/// click, copy the address, and tests can read it.
pub fn fill_traffic_links(root: &Element, link: impl Fn(usize, u16) -> Option<String>) {
    let Ok(links) = root.query_selector_all("a.traffic[data-host][data-port]") else {
        return;
    };
    for i in 0..links.length() {
        let Some(a) = links.get(i).and_then(|n| n.dyn_into::<Element>().ok()) else {
            continue;
        };
        let host = a
            .get_attribute("data-host")
            .and_then(|h| h.trim().parse().ok());
        let port = a
            .get_attribute("data-port")
            .and_then(|p| p.trim().parse().ok());
        let (Some(host), Some(port)) = (host, port) else {
            continue;
        };
        if let Some(url) = link(host, port) {
            if a.get_attribute("href").as_deref() != Some(url.as_str()) {
                let _ = a.set_attribute("href", &url);
                let _ = a.set_attribute("target", "_blank");
            }
        }
    }
}
