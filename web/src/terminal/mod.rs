//! One instance's terminal: an xterm.js view wired to the terminal WebSocket,
//! with flow control, resize, automatic reconnection and "press Enter for a
//! new shell" after the shell exits. When the instance itself stops, the
//! terminal keeps its last output and stops reconnecting.
//!
//! This file is the Yew component; `conn.rs` sets up xterm in the page and
//! `socket.rs` speaks the terminal's WebSocket protocol.

mod conn;
mod input;
mod socket;

use wasm_bindgen::prelude::*;
use wasm_bindgen::JsCast;
use web_sys::HtmlElement;
use yew::prelude::*;

use crate::xterm;
use conn::TermConn;
pub use input::TerminalInput;
use socket::Target;

/// What the terminal's connection is doing, for the banner over it.
#[derive(Clone, Debug, PartialEq)]
pub enum ConnState {
    Connecting,
    Open,
    Reconnecting {
        attempt: u32,
        delay_ms: u32,
    },
    Exited {
        code: i32,
    },
    /// The instance stopped: no more connections.
    Stopped,
}

#[derive(Properties, PartialEq)]
pub struct TerminalProps {
    pub sid: AttrValue,
    pub name: AttrValue,
    /// `sid` is a viewer id: connect through the read-only view, send no input.
    #[prop_or_default]
    pub view: bool,
    /// `sid` is a help key: connect through `/api/help/{key}/...`, writable
    /// while the session's owner lets the instructor help.
    #[prop_or_default]
    pub help: bool,
    /// Which shell of the instance (0..=3).
    #[prop_or_default]
    pub tab: u8,
    /// The visible tab (the others stay connected, hidden).
    #[prop_or(true)]
    pub active: bool,
    #[prop_or(14)]
    pub font_size: u8,
    #[prop_or_default]
    pub light: bool,
    /// The instance's init died: stop reconnecting, keep the output.
    #[prop_or_default]
    pub stopped: bool,
    /// Told each time the shell is attached (the embed page tells the page
    /// it is framed in).
    #[prop_or_default]
    pub on_attached: Option<Callback<()>>,
}

/// Hosts xterm in `#terminal`; a new (sid, name) tears down the old
/// connection and starts a new one.
#[function_component(TerminalView)]
pub fn terminal_view(props: &TerminalProps) -> Html {
    let host = use_node_ref();
    let state = use_state(|| ConnState::Connecting);
    let conn = use_mut_ref(|| None::<TermConn>);
    {
        let host = host.clone();
        let set_state = state.setter();
        let conn = conn.clone();
        let look = (props.font_size, props.light);
        let on_attached = props.on_attached.clone();
        use_effect_with(
            (
                props.sid.clone(),
                props.name.clone(),
                props.view,
                props.help,
                props.tab,
            ),
            move |(sid, name, view, help, tab)| {
                set_state.set(ConnState::Connecting);
                let on_state = Callback::from(move |s: ConnState| {
                    if let (ConnState::Open, Some(cb)) = (&s, &on_attached) {
                        cb.emit(());
                    }
                    set_state.set(s)
                });
                let target = Target {
                    sid: sid.to_string(),
                    name: name.to_string(),
                    view: *view,
                    help: *help,
                    tab: *tab,
                };
                *conn.borrow_mut() = host
                    .cast::<HtmlElement>()
                    .map(|el| TermConn::start(&el, target, look, on_state));
                move || {
                    let old = conn.borrow_mut().take();
                    drop(old);
                }
            },
        );
    }
    {
        // Declared after the effect above, so it runs after a new
        // connection was made (effects run in order).
        let conn = conn.clone();
        use_effect_with(props.stopped, move |stopped| {
            if *stopped {
                if let Some(c) = conn.borrow().as_ref() {
                    c.halt();
                }
            }
        });
    }
    {
        let conn = conn.clone();
        use_effect_with((props.font_size, props.light), move |(size, light)| {
            if let Some(c) = conn.borrow().as_ref() {
                let (term, fit) = {
                    let inner = c.inner.borrow();
                    (inner.term.clone(), inner.fit.clone())
                };
                xterm::apply_look(&term, *size, *light);
                fit.fit();
            }
        });
    }
    {
        // The visible shell takes the page's typed input (a tutorial's
        // commands); declared after the connection's effect, so it
        // registers the connection that effect made.
        let conn = conn.clone();
        let input = use_context::<TerminalInput>();
        use_effect_with(
            (
                props.sid.clone(),
                props.name.clone(),
                props.tab,
                props.active,
            ),
            move |(_, name, _, active)| {
                let name = name.to_string();
                let registered = match (input, conn.borrow().as_ref(), *active) {
                    (Some(input), Some(c), true) => {
                        input.register(&name, &c.inner);
                        Some((input, std::rc::Rc::downgrade(&c.inner)))
                    }
                    _ => None,
                };
                move || {
                    if let Some((input, weak)) = registered {
                        input.unregister(&name, &weak);
                    }
                }
            },
        );
    }
    {
        let conn = conn.clone();
        use_effect_with(props.active, move |active| {
            if *active {
                if let Some(c) = conn.borrow().as_ref() {
                    let term = c.inner.borrow().term.clone();
                    term.focus();
                }
            }
        });
    }
    let banner = match &*state {
        ConnState::Open | ConnState::Exited { .. } | ConnState::Stopped => html! {},
        ConnState::Connecting => html! {
            <div id="terminal-status" class="term-status">{ "Connecting…" }</div>
        },
        ConnState::Reconnecting { attempt, delay_ms } => html! {
            <div id="terminal-status" class="term-status warn">
                <span class="spinner"></span>
                { format!("Reconnecting… (attempt {attempt}, next try in {:.1} s)", f64::from(*delay_ms) / 1000.0) }
            </div>
        },
    };
    html! {
        <div class="term-wrap" hidden={!props.active} data-tab={props.tab.to_string()}>
            <div id={props.active.then_some("terminal")} class="terminal-host" ref={host}></div>
            { banner }
        </div>
    }
}

/// `navigator.clipboard`, which browsers offer only in secure contexts
/// (https, localhost).
pub fn clipboard() -> Option<web_sys::Clipboard> {
    let navigator = web_sys::window()?.navigator();
    let c = js_sys::Reflect::get(&navigator, &JsValue::from_str("clipboard")).ok()?;
    (!c.is_undefined() && !c.is_null()).then(|| c.unchecked_into())
}
