//! The xterm.js side of a terminal: the xterm instance in its host element,
//! with resize, copy on select and paste, wired to the socket
//! (`socket.rs`); dropping it tears everything down.

use std::cell::RefCell;
use std::rc::Rc;

use js_sys::Function;
use wasm_bindgen::prelude::*;
use wasm_bindgen::JsCast;
use web_sys::{HtmlElement, ResizeObserver};
use yew::prelude::*;

use super::socket::{connect, on_input, send_size, Inner, Target};
use super::{clipboard, ConnState};
use crate::xterm::{self, Disposable, FitAddon, Terminal};

/// Owns the xterm instance and everything registered on it; dropping it
/// closes the socket and disposes the terminal.
pub(super) struct TermConn {
    pub(super) inner: Rc<RefCell<Inner>>,
    disposables: Vec<Disposable>,
    observer: Option<ResizeObserver>,
    host: HtmlElement,
    on_context_menu: Closure<dyn FnMut(web_sys::MouseEvent)>,
    _on_key: Closure<dyn FnMut(web_sys::KeyboardEvent) -> bool>,
    _listeners: Vec<Closure<dyn FnMut(JsValue)>>,
}

impl TermConn {
    pub(super) fn start(
        host: &HtmlElement,
        target: Target,
        (font_size, light): (u8, bool),
        on_state: Callback<ConnState>,
    ) -> Self {
        let read_only = target.view;
        let term = Terminal::new(&xterm::options(font_size, light, read_only));
        let fit = FitAddon::new();
        term.load_addon(&fit);
        term.open(host);
        fit.fit();
        term.focus();

        let inner = Rc::new(RefCell::new(Inner {
            target,
            term: term.clone(),
            fit: fit.clone(),
            on_state,
            socket: None,
            generation: 0,
            offset: None,
            acked: 0,
            pending: 0,
            paused: false,
            exited: false,
            attempt: 0,
            retry: None,
            disposed: false,
            halted: false,
            queued: Vec::new(),
            flush_timer: None,
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

        // Selecting text copies it, like a terminal on the desktop.
        let t = term.clone();
        let on_selection = Closure::<dyn FnMut(JsValue)>::new(move |_: JsValue| {
            let text = t.get_selection();
            if !text.is_empty() {
                if let Some(c) = clipboard() {
                    let _ = c.write_text(&text);
                }
            }
        });
        disposables
            .push(term.on_selection_change(on_selection.as_ref().unchecked_ref::<Function>()));
        listeners.push(on_selection);

        // Ctrl+Shift+V and Shift+Insert paste; everything else goes to xterm.
        let t = term.clone();
        let on_key = Closure::<dyn FnMut(web_sys::KeyboardEvent) -> bool>::new(
            move |ev: web_sys::KeyboardEvent| {
                let key = ev.key();
                let paste = (ev.ctrl_key() && ev.shift_key() && key.eq_ignore_ascii_case("v"))
                    || (ev.shift_key() && key == "Insert");
                if !paste {
                    return true;
                }
                ev.prevent_default();
                if ev.type_() == "keydown" && !read_only {
                    paste_clipboard(&t);
                }
                false
            },
        );
        term.attach_custom_key_event_handler(on_key.as_ref().unchecked_ref());

        // Right-click pastes (no context menu over the terminal).
        let t = term.clone();
        let on_context_menu =
            Closure::<dyn FnMut(web_sys::MouseEvent)>::new(move |ev: web_sys::MouseEvent| {
                // Without a clipboard API (plain http on a remote host) the
                // browser's own menu is the only way to paste: keep it.
                if read_only || clipboard().is_none() {
                    return;
                }
                ev.prevent_default();
                paste_clipboard(&t);
            });
        let _ = host.add_event_listener_with_callback(
            "contextmenu",
            on_context_menu.as_ref().unchecked_ref(),
        );

        connect(&inner);
        TermConn {
            inner,
            disposables,
            observer,
            host: host.clone(),
            on_context_menu,
            _on_key: on_key,
            _listeners: listeners,
        }
    }
}

impl TermConn {
    /// The instance stopped: close the socket, stop reconnecting, and say so
    /// under the last output.
    pub(super) fn halt(&self) {
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

/// Read the clipboard and paste it into the terminal (the browser may ask
/// the user for permission first).
fn paste_clipboard(term: &Terminal) {
    let Some(c) = clipboard() else { return };
    let promise = c.read_text();
    let term = term.clone();
    wasm_bindgen_futures::spawn_local(async move {
        match wasm_bindgen_futures::JsFuture::from(promise).await {
            Ok(text) => {
                if let Some(text) = text.as_string().filter(|t| !t.is_empty()) {
                    term.paste(&text);
                }
            }
            Err(e) => web_sys::console::warn_2(&"paste: clipboard not readable".into(), &e),
        }
    });
}

impl Drop for TermConn {
    fn drop(&mut self) {
        let _ = self.host.remove_event_listener_with_callback(
            "contextmenu",
            self.on_context_menu.as_ref().unchecked_ref(),
        );
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
