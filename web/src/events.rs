//! A session's event stream (`GET /api/sessions/{sid}/events`): one WebSocket
//! of JSON `SessionEvent` text frames, reopened with backoff when it drops.
//! Each new connection starts with a `snapshot`, so the page re-syncs from it
//! and never has to guess what it missed.

use std::cell::RefCell;
use std::rc::Rc;

use gloo_timers::callback::Timeout;
use playground_protocol::SessionEvent;
use wasm_bindgen::prelude::*;
use wasm_bindgen::JsCast;
use web_sys::{MessageEvent, WebSocket};
use yew::Callback;

use crate::api;

/// What the stream's connection is doing.
#[derive(Clone, Copy, Debug, PartialEq)]
pub enum LinkState {
    Connecting,
    /// Open, and the snapshot has arrived.
    Live,
    /// Dropped; the next attempt starts in `delay_ms`.
    Reconnecting {
        attempt: u32,
        delay_ms: u32,
    },
}

/// Owns the socket; dropping it closes the socket and stops reconnecting.
pub struct EventStream {
    inner: Rc<RefCell<Inner>>,
}

struct Inner {
    sid: String,
    view: bool,
    on_event: Callback<SessionEvent>,
    on_state: Callback<LinkState>,
    socket: Option<Socket>,
    /// Counts sockets, so events from a replaced one are ignored.
    generation: u32,
    attempt: u32,
    retry: Option<Timeout>,
    /// `ended` arrived (or we were dropped): never reconnect.
    done: bool,
}

/// The current WebSocket and the handlers that must live as long as it.
struct Socket {
    ws: WebSocket,
    _handlers: Vec<Closure<dyn FnMut(JsValue)>>,
}

impl Drop for Socket {
    fn drop(&mut self) {
        self.ws.set_onmessage(None);
        self.ws.set_onclose(None);
        let _ = self.ws.close();
    }
}

impl EventStream {
    pub fn start(
        sid: &str,
        view: bool,
        on_event: Callback<SessionEvent>,
        on_state: Callback<LinkState>,
    ) -> EventStream {
        let inner = Rc::new(RefCell::new(Inner {
            sid: sid.to_owned(),
            view,
            on_event,
            on_state,
            socket: None,
            generation: 0,
            attempt: 0,
            retry: None,
            done: false,
        }));
        connect(&inner);
        EventStream { inner }
    }
}

impl Drop for EventStream {
    fn drop(&mut self) {
        let (socket, retry) = {
            let mut inner = self.inner.borrow_mut();
            inner.done = true;
            (inner.socket.take(), inner.retry.take())
        };
        drop(socket);
        drop(retry);
    }
}

fn ws_url(sid: &str, view: bool) -> String {
    let location = web_sys::window().expect("window").location();
    let scheme = match location.protocol().as_deref() {
        Ok("https:") => "wss:",
        _ => "ws:",
    };
    let host = location.host().unwrap_or_default();
    format!("{scheme}//{host}{}", api::events_path(sid, view))
}

fn connect(rc: &Rc<RefCell<Inner>>) {
    let (url, generation) = {
        let mut inner = rc.borrow_mut();
        if inner.done {
            return;
        }
        inner.retry = None;
        inner.socket = None;
        inner.generation += 1;
        (ws_url(&inner.sid, inner.view), inner.generation)
    };
    let ws = match WebSocket::new(&url) {
        Ok(ws) => ws,
        Err(_) => {
            schedule_reconnect(rc);
            return;
        }
    };
    let handler = |f: fn(&Rc<RefCell<Inner>>, JsValue)| {
        let weak = Rc::downgrade(rc);
        Closure::<dyn FnMut(JsValue)>::new(move |ev: JsValue| {
            if let Some(rc) = weak.upgrade() {
                if rc.borrow().generation == generation {
                    f(&rc, ev);
                }
            }
        })
    };
    let on_message = handler(on_message);
    let on_close = handler(on_close);
    ws.set_onmessage(Some(on_message.as_ref().unchecked_ref()));
    ws.set_onclose(Some(on_close.as_ref().unchecked_ref()));
    rc.borrow_mut().socket = Some(Socket {
        ws,
        _handlers: vec![on_message, on_close],
    });
}

fn on_message(rc: &Rc<RefCell<Inner>>, ev: JsValue) {
    let Some(text) = ev
        .dyn_ref::<MessageEvent>()
        .and_then(|e| e.data().as_string())
    else {
        return;
    };
    let event = match serde_json::from_str::<SessionEvent>(&text) {
        Ok(event) => event,
        Err(e) => {
            web_sys::console::warn_1(
                &format!("events: ignoring unknown message {text:?}: {e}").into(),
            );
            return;
        }
    };
    // No borrow held while emitting: the page may drop this stream in its
    // handler (on `ended`).
    let (on_event, live) = {
        let mut inner = rc.borrow_mut();
        let live = match &event {
            SessionEvent::Snapshot { .. } => {
                inner.attempt = 0;
                Some(inner.on_state.clone())
            }
            SessionEvent::Ended => {
                inner.done = true;
                None
            }
            _ => None,
        };
        (inner.on_event.clone(), live)
    };
    if let Some(on_state) = live {
        on_state.emit(LinkState::Live);
    }
    on_event.emit(event);
}

fn on_close(rc: &Rc<RefCell<Inner>>, _ev: JsValue) {
    {
        let mut inner = rc.borrow_mut();
        inner.socket = None;
        if inner.done {
            return;
        }
    }
    schedule_reconnect(rc);
}

fn schedule_reconnect(rc: &Rc<RefCell<Inner>>) {
    let (on_state, attempt, delay_ms) = {
        let mut inner = rc.borrow_mut();
        if inner.done {
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
    on_state.emit(LinkState::Reconnecting { attempt, delay_ms });
}
