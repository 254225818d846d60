//! The page other sites show in a frame, `/embed/s/<session>/<instance>`
//! (`?tab=N` for another of its shells, `theme=light`, `font=N` pixels): one
//! terminal filling the frame, nothing else. `/sdk.js` makes these frames; the server lets only the
//! origins of `--embed-origins` frame them (`server/src/api/embed.rs`).
//!
//! The page it is framed in talks to it with `postMessage`, and only that
//! page (messages from any other window are ignored):
//! - `{type: "playground:run", text: "ls\n", interrupt?: true}` types the
//!   text into the terminal (newlines as Enter). With `interrupt`, Ctrl-C
//!   goes first and the text a moment later: typed at once, the shell would
//!   take its first characters as part of the line Ctrl-C discards. Text
//!   that comes before the shell is attached waits, in order.
//! - Each time the shell is attached it posts `{type: "playground:ready",
//!   instance, tab}` to its parent.

use std::collections::VecDeque;

use gloo_timers::callback::Timeout;
use js_sys::{Object, Reflect};
use wasm_bindgen::prelude::*;
use wasm_bindgen::JsCast;
use web_sys::MessageEvent;
use yew::prelude::*;

use crate::settings::Settings;
use crate::terminal::{TerminalInput, TerminalView};

#[derive(Clone, Debug, PartialEq, Properties)]
pub struct EmbedProps {
    pub sid: AttrValue,
    pub name: AttrValue,
    /// Which of the instance's shells (0..=3).
    pub tab: u8,
    pub light: bool,
    pub font_size: u8,
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
    let params = web_sys::UrlSearchParams::new_with_str(&search).ok();
    let param = |name: &str| params.as_ref().and_then(|p| p.get(name));
    let number = |name: &str, range: std::ops::RangeInclusive<u8>| {
        param(name)
            .and_then(|t| t.parse::<u8>().ok())
            .filter(|n| range.contains(n))
    };
    Some(EmbedProps {
        sid: decode(sid).into(),
        name: decode(name).into(),
        tab: number("tab", 0..=3).unwrap_or(0),
        light: param("theme").as_deref() == Some("light"),
        font_size: number("font", 8..=32).unwrap_or(14),
    })
}

/// How long after Ctrl-C the text follows: time for the shell to drop the
/// interrupted line and print a new prompt.
const AFTER_INTERRUPT_MS: u32 = 200;

/// Text the parent asked to type, with Enter as `\r`.
pub struct Typed {
    text: String,
    interrupt: bool,
}

pub enum Msg {
    Attached,
    Type(Typed),
    /// The pause after a Ctrl-C is over.
    Settled,
}

pub struct EmbedPage {
    /// Types into the terminal (it registers itself with it).
    input: TerminalInput,
    attached: bool,
    /// What waits to be typed: sent before the shell was attached, or
    /// after a Ctrl-C that is still settling.
    queue: VecDeque<Typed>,
    settling: Option<Timeout>,
    listener: Closure<dyn FnMut(MessageEvent)>,
}

impl EmbedPage {
    /// Type what waits, in order, pausing after each Ctrl-C.
    fn pump(&mut self, ctx: &Context<Self>) {
        if !self.attached || self.settling.is_some() {
            return;
        }
        let name = ctx.props().name.clone();
        while let Some(next) = self.queue.front_mut() {
            if next.interrupt {
                self.input.send(&name, b"\x03");
                next.interrupt = false;
                let link = ctx.link().clone();
                self.settling = Some(Timeout::new(AFTER_INTERRUPT_MS, move || {
                    link.send_message(Msg::Settled)
                }));
                return;
            }
            self.input.send(&name, next.text.as_bytes());
            self.queue.pop_front();
        }
    }
}

impl Component for EmbedPage {
    type Message = Msg;
    type Properties = EmbedProps;

    fn create(ctx: &Context<Self>) -> Self {
        // The page's colours follow the terminal's.
        Settings {
            font_size: ctx.props().font_size,
            light: ctx.props().light,
        }
        .apply();
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
            input: TerminalInput::default(),
            attached: false,
            queue: VecDeque::new(),
            settling: None,
            listener,
        }
    }

    fn update(&mut self, ctx: &Context<Self>, msg: Msg) -> bool {
        match msg {
            Msg::Attached => {
                self.attached = true;
                self.pump(ctx);
                tell_parent_ready(ctx.props());
            }
            Msg::Type(typed) => {
                self.queue.push_back(typed);
                self.pump(ctx);
            }
            Msg::Settled => {
                self.settling = None;
                self.pump(ctx);
            }
        }
        false
    }

    fn view(&self, ctx: &Context<Self>) -> Html {
        let props = ctx.props();
        // Inline, so the session page's stylesheet needs nothing for it.
        html! {
            <div id="embed" style="position:fixed;inset:0;display:flex;flex-direction:column;background:var(--term-bg)">
                <ContextProvider<TerminalInput> context={self.input.clone()}>
                    <TerminalView sid={props.sid.clone()} name={props.name.clone()} tab={props.tab}
                        light={props.light} font_size={props.font_size}
                        on_attached={ctx.link().callback(|()| Msg::Attached)} />
                </ContextProvider<TerminalInput>>
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

/// What a `playground:run` message from the parent asks to type, with line
/// breaks as Enter.
fn typed_text(event: &MessageEvent) -> Option<Typed> {
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
    Some(Typed { text, interrupt })
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
