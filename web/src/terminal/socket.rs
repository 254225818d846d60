//! The terminal's WebSocket: connecting (and reconnecting with backoff),
//! the control messages, flow control (acknowledge, pause, resume) and
//! keyboard input. Kept apart from xterm's setup so the protocol reads in
//! one place.

use std::cell::RefCell;
use std::rc::{Rc, Weak};

use gloo_timers::callback::Timeout;
use js_sys::{ArrayBuffer, Uint8Array};
use playground_protocol::{TerminalClientMsg, TerminalServerMsg};
use wasm_bindgen::prelude::*;
use wasm_bindgen::JsCast;
use web_sys::{BinaryType, CloseEvent, MessageEvent, WebSocket};
use yew::prelude::*;

use super::ConnState;
use crate::api;
use crate::xterm::{FitAddon, Terminal};

/// Above this many bytes handed to xterm but not yet parsed, ask the server to pause.
const HIGH_WATERMARK: u64 = 128 * 1024;
/// Acknowledge received output this often (the server lets a client be at
/// most 256 KiB past its last acknowledgement).
const ACK_EVERY: u64 = 32 * 1024;
/// Below this many, ask it to resume.
const LOW_WATERMARK: u64 = 16 * 1024;
/// How long queued input waits for a new shell's first output.
const QUIET_SHELL_MS: u32 = 1_500;
/// Which terminal to connect to.
pub(super) struct Target {
    pub(super) sid: String,
    pub(super) name: String,
    pub(super) view: bool,
    /// `sid` is an instructor's help key.
    pub(super) help: bool,
    pub(super) tab: u8,
}

/// The connection's state, shared (weakly) with every callback of the
/// socket and of xterm.
pub(super) struct Inner {
    pub(super) target: Target,
    pub(super) term: Terminal,
    pub(super) fit: FitAddon,
    pub(super) on_state: Callback<ConnState>,
    pub(super) socket: Option<Socket>,
    /// Counts sockets, so events from a replaced one are ignored.
    pub(super) generation: u32,
    /// Output offset of the next byte we expect; `None` until the server said
    /// where the stream starts (and after an exit: the next shell is new).
    pub(super) offset: Option<u64>,
    /// The offset last acknowledged to the server.
    pub(super) acked: u64,
    /// Bytes given to `term.write` whose callback has not run yet.
    pub(super) pending: u64,
    pub(super) paused: bool,
    pub(super) exited: bool,
    pub(super) attempt: u32,
    pub(super) retry: Option<Timeout>,
    pub(super) disposed: bool,
    /// The instance stopped: never connect again.
    pub(super) halted: bool,
    /// Input typed by the page (`type_input`) before the shell was
    /// attached: sent once it is and has said something (its prompt), so a
    /// new shell does not echo it twice, before and after the prompt.
    pub(super) queued: Vec<u8>,
    /// Attached with input queued: waiting for the shell's first output,
    /// or for this timer if it stays silent.
    pub(super) flush_timer: Option<Timeout>,
}

/// The current WebSocket and the handlers that must live as long as it.
pub(super) struct Socket {
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

fn ws_url(t: &Target, from: Option<u64>) -> String {
    let location = web_sys::window().expect("window").location();
    let scheme = match location.protocol().as_deref() {
        Ok("https:") => "wss:",
        _ => "ws:",
    };
    let host = location.host().unwrap_or_default();
    let path = if t.help {
        api::help_terminal_path(&t.sid, &t.name, t.tab)
    } else {
        api::terminal_path(&t.sid, &t.name, t.view, t.tab)
    };
    let mut url = format!("{scheme}//{host}{path}");
    // Acknowledge what arrives, so output in flight when the network drops
    // is kept for the reconnect.
    let sep = if url.contains('?') { '&' } else { '?' };
    url.push_str(&format!("{sep}ack=true"));
    if let Some(from) = from {
        url.push_str(&format!("&from={from}"));
    }
    url
}

/// Open a new socket (replacing any current one).
pub(super) fn connect(rc: &Rc<RefCell<Inner>>) {
    let (url, generation) = {
        let mut inner = rc.borrow_mut();
        if inner.disposed || inner.halted {
            return;
        }
        inner.retry = None;
        inner.socket = None;
        inner.generation += 1;
        (ws_url(&inner.target, inner.offset), inner.generation)
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
                    inner.acked = offset;
                    inner.attempt = 0;
                    if !inner.queued.is_empty() {
                        let weak = Rc::downgrade(rc);
                        inner.flush_timer = Some(Timeout::new(QUIET_SHELL_MS, move || {
                            if let Some(rc) = weak.upgrade() {
                                flush_queued(&rc);
                            }
                        }));
                    }
                    (inner.term.clone(), inner.on_state.clone())
                };
                term.focus();
                cb.emit(ConnState::Open);
            }
            Ok(TerminalServerMsg::Missed { bytes }) => {
                // Away longer than the server keeps output: say so instead of
                // joining the stream silently.
                let term = rc.borrow().term.clone();
                term.write_str(&format!(
                    "\r\n\x1b[0m\x1b[2m[{} of output missed while disconnected]\x1b[0m\r\n",
                    crate::session::format::format_bytes(bytes)
                ));
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
        let delay_ms = crate::backoff::delay_ms(inner.attempt);
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

/// Send the page's queued input (see `Inner::queued`).
fn flush_queued(rc: &Rc<RefCell<Inner>>) {
    let mut inner = rc.borrow_mut();
    inner.flush_timer = None;
    let queued = std::mem::take(&mut inner.queued);
    if let (Some(ws), false) = (open_socket(&inner), queued.is_empty()) {
        let _ = ws.send_with_u8_array(&queued);
    }
}

/// Raw output from the shell: count it, hand it to xterm, and apply the
/// watermarks.
fn on_output(rc: &Rc<RefCell<Inner>>, bytes: Uint8Array) {
    let len = u64::from(bytes.length());
    if len == 0 {
        return;
    }
    if rc.borrow().flush_timer.is_some() {
        flush_queued(rc);
    }
    let term = {
        let mut inner = rc.borrow_mut();
        if let Some(offset) = inner.offset.as_mut() {
            *offset += len;
            let offset = *offset;
            if offset - inner.acked >= ACK_EVERY {
                inner.acked = offset;
                send_msg(&inner, &TerminalClientMsg::Ack { offset });
            }
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
pub(super) fn on_input(rc: &Rc<RefCell<Inner>>, bytes: &[u8], text: bool) {
    let restart = {
        let mut inner = rc.borrow_mut();
        if inner.halted || inner.target.view {
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

/// Input from the page rather than the keyboard (a tutorial's command):
/// sent now when the shell is attached, else when it is. After the shell
/// exited, a new one is started for it.
pub(super) fn type_input(rc: &Rc<RefCell<Inner>>, bytes: &[u8]) {
    let restart = {
        let mut inner = rc.borrow_mut();
        if inner.halted || inner.target.view {
            return;
        }
        let attached = inner.offset.is_some() && inner.flush_timer.is_none();
        match open_socket(&inner) {
            Some(ws) if attached && !inner.exited => {
                let _ = ws.send_with_u8_array(bytes);
                return;
            }
            _ => inner.queued.extend_from_slice(bytes),
        }
        if !inner.exited {
            return;
        }
        inner.exited = false;
        inner.attempt = 0;
        inner.on_state.clone()
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

pub(super) fn send_size(inner: &Inner) {
    let (cols, rows) = (inner.term.cols(), inner.term.rows());
    if cols > 0 && rows > 0 {
        send_msg(inner, &TerminalClientMsg::Resize { cols, rows });
    }
}
