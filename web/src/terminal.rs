//! One instance's terminal: an xterm.js view wired to the terminal WebSocket,
//! with flow control, resize, automatic reconnection and "press Enter for a
//! new shell" after the shell exits. When the instance itself stops, the
//! terminal keeps its last output and stops reconnecting.

use std::cell::RefCell;
use std::rc::{Rc, Weak};

use gloo_timers::callback::Timeout;
use js_sys::{ArrayBuffer, Function, Uint8Array};
use playground_protocol::{TerminalClientMsg, TerminalServerMsg};
use wasm_bindgen::prelude::*;
use wasm_bindgen::JsCast;
use web_sys::{BinaryType, CloseEvent, HtmlElement, MessageEvent, ResizeObserver, WebSocket};
use yew::prelude::*;

use crate::api;
use crate::xterm::{self, Disposable, FitAddon, Terminal};

/// Above this many bytes handed to xterm but not yet parsed, ask the server to pause.
const HIGH_WATERMARK: u64 = 128 * 1024;
/// Below this many, ask it to resume.
const LOW_WATERMARK: u64 = 16 * 1024;
/// Reconnect delays: 500 ms, doubling, at most 10 s.
const FIRST_RETRY_MS: u32 = 500;
const MAX_RETRY_MS: u32 = 10_000;

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
    /// The instance's init died: stop reconnecting, keep the output.
    #[prop_or_default]
    pub stopped: bool,
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
        use_effect_with(
            (props.sid.clone(), props.name.clone()),
            move |(sid, name)| {
                set_state.set(ConnState::Connecting);
                let on_state = Callback::from(move |s| set_state.set(s));
                *conn.borrow_mut() = host
                    .cast::<HtmlElement>()
                    .map(|el| TermConn::start(&el, sid, name, on_state));
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
        <div class="term-wrap">
            <div id="terminal" class="terminal-host" ref={host}></div>
            { banner }
        </div>
    }
}

/// Owns the xterm instance and everything registered on it; dropping it
/// closes the socket and disposes the terminal.
struct TermConn {
    inner: Rc<RefCell<Inner>>,
    disposables: Vec<Disposable>,
    observer: Option<ResizeObserver>,
    _listeners: Vec<Closure<dyn FnMut(JsValue)>>,
}

struct Inner {
    sid: String,
    name: String,
    term: Terminal,
    fit: FitAddon,
    on_state: Callback<ConnState>,
    socket: Option<Socket>,
    /// Counts sockets, so events from a replaced one are ignored.
    generation: u32,
    /// Output offset of the next byte we expect; `None` until the server said
    /// where the stream starts (and after an exit: the next shell is new).
    offset: Option<u64>,
    /// Bytes given to `term.write` whose callback has not run yet.
    pending: u64,
    paused: bool,
    exited: bool,
    attempt: u32,
    retry: Option<Timeout>,
    disposed: bool,
    /// The instance stopped: never connect again.
    halted: bool,
}

/// The current WebSocket and the handlers that must live as long as it.
struct Socket {
    ws: WebSocket,
    _handlers: Vec<Closure<dyn FnMut(JsValue)>>,
}

impl Drop for Socket {
    fn drop(&mut self) {
        self.ws.set_onopen(None);
        self.ws.set_onmessage(None);
        self.ws.set_onclose(None);
        self.ws.set_onerror(None);
        let _ = self.ws.close();
    }
}

impl TermConn {
    fn start(host: &HtmlElement, sid: &str, name: &str, on_state: Callback<ConnState>) -> Self {
        let term = Terminal::new(&xterm::options());
        let fit = FitAddon::new();
        term.load_addon(&fit);
        term.open(host);
        fit.fit();
        term.focus();

        let inner = Rc::new(RefCell::new(Inner {
            sid: sid.to_owned(),
            name: name.to_owned(),
            term: term.clone(),
            fit: fit.clone(),
            on_state,
            socket: None,
            generation: 0,
            offset: None,
            pending: 0,
            paused: false,
            exited: false,
            attempt: 0,
            retry: None,
            disposed: false,
            halted: false,
        }));
        let weak = Rc::downgrade(&inner);
        let mut listeners: Vec<Closure<dyn FnMut(JsValue)>> = Vec::new();
        let mut disposables = Vec::new();

        let w = weak.clone();
        let on_data = Closure::<dyn FnMut(JsValue)>::new(move |data: JsValue| {
            if let (Some(rc), Some(s)) = (w.upgrade(), data.as_string()) {
                on_input(&rc, s.as_bytes(), true);
            }
        });
        disposables.push(term.on_data(on_data.as_ref().unchecked_ref::<Function>()));
        listeners.push(on_data);

        let w = weak.clone();
        let on_binary = Closure::<dyn FnMut(JsValue)>::new(move |data: JsValue| {
            if let (Some(rc), Some(s)) = (w.upgrade(), data.as_string()) {
                // One char per byte (xterm's "binary" strings).
                let bytes: Vec<u8> = s.chars().map(|c| c as u32 as u8).collect();
                on_input(&rc, &bytes, false);
            }
        });
        disposables.push(term.on_binary(on_binary.as_ref().unchecked_ref::<Function>()));
        listeners.push(on_binary);

        let w = weak.clone();
        let on_resize = Closure::<dyn FnMut(JsValue)>::new(move |_size: JsValue| {
            if let Some(rc) = w.upgrade() {
                send_size(&rc.borrow());
            }
        });
        disposables.push(term.on_resize(on_resize.as_ref().unchecked_ref::<Function>()));
        listeners.push(on_resize);

        // Refit whenever the host element changes size (window resize,
        // sidebar, banners): covers more than the window's resize event.
        let w = weak.clone();
        let on_host_resize = Closure::<dyn FnMut(JsValue)>::new(move |_entries: JsValue| {
            if let Some(rc) = w.upgrade() {
                let fit = rc.borrow().fit.clone();
                // No borrow held: fit() fires onResize synchronously.
                fit.fit();
            }
        });
        let observer = ResizeObserver::new(on_host_resize.as_ref().unchecked_ref()).ok();
        if let Some(o) = &observer {
            o.observe(host);
        }
        listeners.push(on_host_resize);

        connect(&inner);
        TermConn {
            inner,
            disposables,
            observer,
            _listeners: listeners,
        }
    }
}

impl TermConn {
    /// The instance stopped: close the socket, stop reconnecting, and say so
    /// under the last output.
    fn halt(&self) {
        let (socket, retry, term, on_state, at_line_start) = {
            let mut inner = self.inner.borrow_mut();
            if inner.halted || inner.disposed {
                return;
            }
            inner.halted = true;
            (
                inner.socket.take(),
                inner.retry.take(),
                inner.term.clone(),
                inner.on_state.clone(),
                // The "shell exited" note ends with a line break.
                inner.exited,
            )
        };
        drop(socket);
        drop(retry);
        let lead = if at_line_start { "" } else { "\r\n" };
        term.write_str(&format!(
            "{lead}\x1b[0m\x1b[2m[this instance has stopped: no new shell can start in it]\x1b[0m\r\n"
        ));
        on_state.emit(ConnState::Stopped);
    }
}

impl Drop for TermConn {
    fn drop(&mut self) {
        if let Some(o) = &self.observer {
            o.disconnect();
        }
        for d in &self.disposables {
            d.dispose();
        }
        let (socket, retry, term) = {
            let mut inner = self.inner.borrow_mut();
            inner.disposed = true;
            (inner.socket.take(), inner.retry.take(), inner.term.clone())
        };
        drop(socket);
        drop(retry);
        term.dispose();
    }
}

fn ws_url(sid: &str, name: &str, from: Option<u64>) -> String {
    let location = web_sys::window().expect("window").location();
    let scheme = match location.protocol().as_deref() {
        Ok("https:") => "wss:",
        _ => "ws:",
    };
    let host = location.host().unwrap_or_default();
    let mut url = format!("{scheme}//{host}{}", api::terminal_path(sid, name));
    if let Some(from) = from {
        url.push_str(&format!("?from={from}"));
    }
    url
}

/// Open a new socket (replacing any current one).
fn connect(rc: &Rc<RefCell<Inner>>) {
    let (url, generation) = {
        let mut inner = rc.borrow_mut();
        if inner.disposed || inner.halted {
            return;
        }
        inner.retry = None;
        inner.socket = None;
        inner.generation += 1;
        (
            ws_url(&inner.sid, &inner.name, inner.offset),
            inner.generation,
        )
    };
    let ws = match WebSocket::new(&url) {
        Ok(ws) => ws,
        Err(_) => {
            schedule_reconnect(rc);
            return;
        }
    };
    ws.set_binary_type(BinaryType::Arraybuffer);
    let weak = Rc::downgrade(rc);
    let handler = |f: fn(&Rc<RefCell<Inner>>, JsValue)| {
        let weak: Weak<RefCell<Inner>> = weak.clone();
        Closure::<dyn FnMut(JsValue)>::new(move |ev: JsValue| {
            if let Some(rc) = weak.upgrade() {
                if rc.borrow().generation == generation {
                    f(&rc, ev);
                }
            }
        })
    };
    let on_open = handler(on_open);
    let on_message = handler(on_message);
    let on_close = handler(on_close);
    ws.set_onopen(Some(on_open.as_ref().unchecked_ref()));
    ws.set_onmessage(Some(on_message.as_ref().unchecked_ref()));
    ws.set_onclose(Some(on_close.as_ref().unchecked_ref()));
    rc.borrow_mut().socket = Some(Socket {
        ws,
        _handlers: vec![on_open, on_message, on_close],
    });
}

fn on_open(rc: &Rc<RefCell<Inner>>, _ev: JsValue) {
    let mut inner = rc.borrow_mut();
    // A new connection starts unpaused; pause again if xterm is still behind.
    inner.paused = false;
    if inner.pending > HIGH_WATERMARK {
        inner.paused = true;
        send_msg(&inner, &TerminalClientMsg::Pause);
    }
    send_size(&inner);
}

fn on_message(rc: &Rc<RefCell<Inner>>, ev: JsValue) {
    let Some(ev) = ev.dyn_ref::<MessageEvent>() else {
        return;
    };
    let data = ev.data();
    if let Some(buf) = data.dyn_ref::<ArrayBuffer>() {
        on_output(rc, Uint8Array::new(buf));
    } else if let Some(text) = data.as_string() {
        match serde_json::from_str::<TerminalServerMsg>(&text) {
            Ok(TerminalServerMsg::Attached { offset }) => {
                let (term, cb) = {
                    let mut inner = rc.borrow_mut();
                    inner.offset = Some(offset);
                    inner.attempt = 0;
                    (inner.term.clone(), inner.on_state.clone())
                };
                term.focus();
                cb.emit(ConnState::Open);
            }
            Ok(TerminalServerMsg::Exited { code }) => {
                let (term, cb) = {
                    let mut inner = rc.borrow_mut();
                    inner.exited = true;
                    inner.offset = None;
                    (inner.term.clone(), inner.on_state.clone())
                };
                term.write_str(&format!(
                    "\r\n\x1b[0m\x1b[2m[shell exited with code {code} \u{2014} press Enter to start a new one]\x1b[0m\r\n"
                ));
                cb.emit(ConnState::Exited { code });
            }
            Err(e) => web_sys::console::warn_1(
                &format!("terminal: ignoring unknown control message {text:?}: {e}").into(),
            ),
        }
    }
}

fn on_close(rc: &Rc<RefCell<Inner>>, ev: JsValue) {
    let reason = ev.dyn_ref::<CloseEvent>().map(|e| (e.code(), e.reason()));
    {
        let mut inner = rc.borrow_mut();
        inner.socket = None;
        if inner.disposed || inner.halted || inner.exited {
            return;
        }
    }
    if let Some((code, reason)) = reason {
        web_sys::console::info_1(&format!("terminal socket closed ({code}) {reason}").into());
    }
    schedule_reconnect(rc);
}

fn schedule_reconnect(rc: &Rc<RefCell<Inner>>) {
    let (cb, attempt, delay_ms) = {
        let mut inner = rc.borrow_mut();
        if inner.disposed || inner.halted {
            return;
        }
        inner.attempt += 1;
        let shift = (inner.attempt - 1).min(10);
        let delay_ms = FIRST_RETRY_MS.saturating_mul(1 << shift).min(MAX_RETRY_MS);
        let weak = Rc::downgrade(rc);
        inner.retry = Some(Timeout::new(delay_ms, move || {
            if let Some(rc) = weak.upgrade() {
                connect(&rc);
            }
        }));
        (inner.on_state.clone(), inner.attempt, delay_ms)
    };
    cb.emit(ConnState::Reconnecting { attempt, delay_ms });
}

/// Raw output from the shell: count it, hand it to xterm, and apply the
/// watermarks.
fn on_output(rc: &Rc<RefCell<Inner>>, bytes: Uint8Array) {
    let len = u64::from(bytes.length());
    if len == 0 {
        return;
    }
    let term = {
        let mut inner = rc.borrow_mut();
        if let Some(offset) = inner.offset.as_mut() {
            *offset += len;
        }
        inner.pending += len;
        if !inner.paused && inner.pending > HIGH_WATERMARK {
            inner.paused = true;
            send_msg(&inner, &TerminalClientMsg::Pause);
        }
        inner.term.clone()
    };
    let weak = Rc::downgrade(rc);
    let written = Closure::once_into_js(move || {
        if let Some(rc) = weak.upgrade() {
            on_written(&rc, len);
        }
    });
    // No borrow held: right after user input xterm parses synchronously and
    // runs the callback before `write` returns.
    term.write_bytes(&bytes, &written);
}

fn on_written(rc: &Rc<RefCell<Inner>>, len: u64) {
    let mut inner = rc.borrow_mut();
    inner.pending = inner.pending.saturating_sub(len);
    if inner.paused && inner.pending < LOW_WATERMARK {
        inner.paused = false;
        send_msg(&inner, &TerminalClientMsg::Resume);
    }
}

/// Keyboard input. After the shell exited, Enter starts a new one.
fn on_input(rc: &Rc<RefCell<Inner>>, bytes: &[u8], text: bool) {
    let restart = {
        let mut inner = rc.borrow_mut();
        if inner.halted {
            return;
        }
        if inner.exited {
            if !(text && bytes.contains(&b'\r')) {
                return;
            }
            inner.exited = false;
            inner.attempt = 0;
            inner.on_state.clone()
        } else {
            if let Some(ws) = open_socket(&inner) {
                let _ = ws.send_with_u8_array(bytes);
            }
            return;
        }
    };
    restart.emit(ConnState::Connecting);
    connect(rc);
}

fn open_socket(inner: &Inner) -> Option<&WebSocket> {
    inner
        .socket
        .as_ref()
        .map(|s| &s.ws)
        .filter(|ws| ws.ready_state() == WebSocket::OPEN)
}

fn send_msg(inner: &Inner, msg: &TerminalClientMsg) {
    if let Some(ws) = open_socket(inner) {
        if let Ok(text) = serde_json::to_string(msg) {
            let _ = ws.send_with_str(&text);
        }
    }
}

fn send_size(inner: &Inner) {
    let (cols, rows) = (inner.term.cols(), inner.term.rows());
    if cols > 0 && rows > 0 {
        send_msg(inner, &TerminalClientMsg::Resize { cols, rows });
    }
}
