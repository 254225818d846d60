//! The page other sites show in a frame, `/embed/s/<session>/<instance>`
//! (`?tab=N` for another of its shells): one terminal filling the frame,
//! nothing else. `/sdk.js` makes these frames; the server lets only the
//! origins of `--embed-origins` frame them (`server/src/api/embed.rs`).
//!
//! The page it is framed in talks to it with `postMessage`, and only that
//! page (messages from any other window are ignored):
//! - `{type: "playground:run", text: "ls\n", interrupt?: true}` types the
//!   text into the terminal (newlines as Enter; Ctrl-C first with
//!   `interrupt`). Text that comes before the shell is attached waits.
//! - Each time the shell is attached it posts `{type: "playground:ready",
//!   instance, tab}` to its parent.

use js_sys::{Object, Reflect};
use wasm_bindgen::prelude::*;
use wasm_bindgen::JsCast;
use web_sys::MessageEvent;
use yew::prelude::*;

use crate::terminal::{TermInput, TerminalView};

#[derive(Clone, Debug, PartialEq, Properties)]
pub struct EmbedProps {
    pub sid: AttrValue,
    pub name: AttrValue,
    /// Which of the instance's shells (0..=3).
    pub tab: u8,
}

/// The embed page's properties when the address is one, else `None`.
pub fn route() -> Option<EmbedProps> {
    let location = web_sys::window()?.location();
    let path = location.pathname().ok()?;
    let rest = path.strip_prefix("/embed/s/")?.trim_end_matches('/');
    let (sid, name) = rest.split_once('/')?;
    if sid.is_empty() || name.is_empty() || name.contains('/') {
        return None;
    }
    let decode = |s: &str| {
        js_sys::decode_uri_component(s)
            .map(String::from)
            .unwrap_or_else(|_| s.to_owned())
    };
    let search = location.search().unwrap_or_default();
    let tab = web_sys::UrlSearchParams::new_with_str(&search)
        .ok()
        .and_then(|p| p.get("tab"))
        .and_then(|t| t.parse::<u8>().ok())
        .filter(|t| *t <= 3)
        .unwrap_or(0);
    Some(EmbedProps {
        sid: decode(sid).into(),
        name: decode(name).into(),
        tab,
    })
}

pub enum Msg {
    Attached(TermInput),
    /// Text to type, already with Enter as `\r` (and Ctrl-C before it).
    Type(String),
}

pub struct EmbedPage {
    input: Option<TermInput>,
    /// What the parent sent before the shell was attached.
    waiting: Vec<String>,
    listener: Closure<dyn FnMut(MessageEvent)>,
}

impl Component for EmbedPage {
    type Message = Msg;
    type Properties = EmbedProps;

    fn create(ctx: &Context<Self>) -> Self {
        let link = ctx.link().clone();
        let listener = Closure::<dyn FnMut(MessageEvent)>::new(move |event: MessageEvent| {
            if let Some(text) = typed_text(&event) {
                link.send_message(Msg::Type(text));
            }
        });
        if let Some(window) = web_sys::window() {
            let _ = window
                .add_event_listener_with_callback("message", listener.as_ref().unchecked_ref());
        }
        EmbedPage {
            input: None,
            waiting: Vec::new(),
            listener,
        }
    }

    fn update(&mut self, ctx: &Context<Self>, msg: Msg) -> bool {
        match msg {
            Msg::Attached(input) => {
                for text in self.waiting.drain(..) {
                    input.send(&text);
                }
                self.input = Some(input);
                tell_parent_ready(ctx.props());
            }
            Msg::Type(text) => match &self.input {
                Some(input) => input.send(&text),
                None => self.waiting.push(text),
            },
        }
        false
    }

    fn view(&self, ctx: &Context<Self>) -> Html {
        let props = ctx.props();
        // Inline, so the session page's stylesheet needs nothing for it.
        html! {
            <div id="embed" style="position:fixed;inset:0;display:flex;flex-direction:column;background:var(--term-bg)">
                <TerminalView sid={props.sid.clone()} name={props.name.clone()} tab={props.tab}
                    on_attached={ctx.link().callback(Msg::Attached)} />
            </div>
        }
    }

    fn destroy(&mut self, _ctx: &Context<Self>) {
        if let Some(window) = web_sys::window() {
            let _ = window.remove_event_listener_with_callback(
                "message",
                self.listener.as_ref().unchecked_ref(),
            );
        }
    }
}

/// The parent window, when this page is in a frame.
fn parent() -> Option<web_sys::Window> {
    let window = web_sys::window()?;
    let parent = window.parent().ok()??;
    (!Object::is(&parent, &window)).then_some(parent)
}

/// The text a `playground:run` message from the parent asks to type, with
/// line breaks as Enter and Ctrl-C first when it asks to interrupt.
fn typed_text(event: &MessageEvent) -> Option<String> {
    let parent = parent()?;
    if !Object::is(event.source()?.as_ref(), &parent) {
        return None;
    }
    let data = event.data();
    let field = |name: &str| Reflect::get(&data, &JsValue::from_str(name)).ok();
    if field("type")?.as_string()? != "playground:run" {
        return None;
    }
    let text = field("text")?.as_string()?;
    let interrupt = field("interrupt").and_then(|v| v.as_bool()) == Some(true);
    let text = text.replace("\r\n", "\r").replace('\n', "\r");
    Some(if interrupt {
        format!("\x03{text}")
    } else {
        text
    })
}

fn tell_parent_ready(props: &EmbedProps) {
    let Some(parent) = parent() else { return };
    let message = Object::new();
    let set = |k: &str, v: JsValue| {
        let _ = Reflect::set(&message, &JsValue::from_str(k), &v);
    };
    set("type", "playground:ready".into());
    set("instance", props.name.as_str().into());
    set("tab", props.tab.into());
    // Nothing secret in it; the parent's origin is checked by the server's
    // frame-ancestors, and the parent checks this frame's.
    let _ = parent.post_message(&message, "*");
}
