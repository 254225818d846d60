//! The few xterm.js 6 bindings the page needs.
//!
//! `xterm` and `xterm-addon-fit` are bare module specifiers that the import map
//! in `index.html` resolves to the ES modules Trunk copies out of
//! `node_modules` (`/xterm.mjs`, `/addon-fit.mjs`).

use js_sys::{Function, Object, Reflect, Uint8Array};
use wasm_bindgen::prelude::*;

#[wasm_bindgen(module = "xterm")]
extern "C" {
    /// `Terminal` from `@xterm/xterm`.
    #[derive(Clone)]
    pub type Terminal;

    #[wasm_bindgen(constructor)]
    pub fn new(options: &Object) -> Terminal;

    #[wasm_bindgen(method)]
    pub fn open(this: &Terminal, parent: &web_sys::HtmlElement);

    /// Queue raw output bytes; `callback` runs once xterm has parsed them
    /// (the hook for flow control). The array must not alias wasm memory:
    /// xterm keeps it until it gets around to parsing it.
    #[wasm_bindgen(method, js_name = write)]
    pub fn write_bytes(this: &Terminal, data: &Uint8Array, callback: &JsValue);

    #[wasm_bindgen(method, js_name = write)]
    pub fn write_str(this: &Terminal, data: &str);

    /// Keyboard input (and pasted text) as a string.
    #[wasm_bindgen(method, js_name = onData)]
    pub fn on_data(this: &Terminal, listener: &Function) -> Disposable;

    /// Non-UTF-8 input (some mouse reports): one char per byte.
    #[wasm_bindgen(method, js_name = onBinary)]
    pub fn on_binary(this: &Terminal, listener: &Function) -> Disposable;

    /// Fires with `{cols, rows}` after the terminal changed size.
    #[wasm_bindgen(method, js_name = onResize)]
    pub fn on_resize(this: &Terminal, listener: &Function) -> Disposable;

    #[wasm_bindgen(method, js_name = loadAddon)]
    pub fn load_addon(this: &Terminal, addon: &FitAddon);

    #[wasm_bindgen(method)]
    pub fn focus(this: &Terminal);

    #[wasm_bindgen(method)]
    pub fn dispose(this: &Terminal);

    #[wasm_bindgen(method, getter)]
    pub fn cols(this: &Terminal) -> u16;

    /// Fires when the selection changed (read it with `get_selection`).
    #[wasm_bindgen(method, js_name = onSelectionChange)]
    pub fn on_selection_change(this: &Terminal, listener: &Function) -> Disposable;

    #[wasm_bindgen(method, js_name = getSelection)]
    pub fn get_selection(this: &Terminal) -> String;

    /// Feed text as if pasted (bracketed paste when the program asked for it).
    #[wasm_bindgen(method)]
    pub fn paste(this: &Terminal, data: &str);

    /// `handler(KeyboardEvent) -> bool`: false stops xterm from handling the key.
    #[wasm_bindgen(method, js_name = attachCustomKeyEventHandler)]
    pub fn attach_custom_key_event_handler(this: &Terminal, handler: &Function);

    /// The live options object: setting a property applies it.
    #[wasm_bindgen(method, getter, js_name = options)]
    pub fn live_options(this: &Terminal) -> Object;

    #[wasm_bindgen(method, getter)]
    pub fn rows(this: &Terminal) -> u16;

    /// What the `on*` event registrations return.
    pub type Disposable;

    #[wasm_bindgen(method)]
    pub fn dispose(this: &Disposable);
}

#[wasm_bindgen(module = "xterm-addon-fit")]
extern "C" {
    /// `FitAddon` from `@xterm/addon-fit`: sizes the terminal to its parent element.
    #[derive(Clone)]
    pub type FitAddon;

    #[wasm_bindgen(constructor)]
    pub fn new() -> FitAddon;

    #[wasm_bindgen(method)]
    pub fn fit(this: &FitAddon);
}

/// Apply a font size and theme to a running terminal.
pub fn apply_look(term: &Terminal, font_size: u8, light: bool) {
    let o = term.live_options();
    set(&o, "fontSize", &JsValue::from_f64(f64::from(font_size)));
    set(&o, "theme", &theme(light));
}

const LIGHT: [(&str, &str); 21] = [
    ("background", "#ffffff"),
    ("foreground", "#1f2328"),
    ("cursor", "#0969da"),
    ("cursorAccent", "#ffffff"),
    ("selectionBackground", "#b6d4fe"),
    ("black", "#24292f"),
    ("red", "#cf222e"),
    ("green", "#116329"),
    ("yellow", "#7d4e00"),
    ("blue", "#0969da"),
    ("magenta", "#8250df"),
    ("cyan", "#1b7c83"),
    ("white", "#6e7781"),
    ("brightBlack", "#57606a"),
    ("brightRed", "#a40e26"),
    ("brightGreen", "#1a7f37"),
    ("brightYellow", "#633c01"),
    ("brightBlue", "#218bff"),
    ("brightMagenta", "#a475f9"),
    ("brightCyan", "#3192aa"),
    ("brightWhite", "#8c959f"),
];

fn theme(light: bool) -> Object {
    let theme = Object::new();
    if light {
        for (k, v) in LIGHT {
            set(&theme, k, &JsValue::from_str(v));
        }
        return theme;
    }
    for (k, v) in [
        ("background", "#0b0e14"),
        ("foreground", "#d6dbe4"),
        ("cursor", "#7aa2f7"),
        ("cursorAccent", "#0b0e14"),
        ("selectionBackground", "#2d3f66"),
        ("black", "#1d2230"),
        ("red", "#f7768e"),
        ("green", "#9ece6a"),
        ("yellow", "#e0af68"),
        ("blue", "#7aa2f7"),
        ("magenta", "#bb9af7"),
        ("cyan", "#7dcfff"),
        ("white", "#c0caf5"),
        ("brightBlack", "#565f89"),
        ("brightRed", "#ff8ea3"),
        ("brightGreen", "#b9f27c"),
        ("brightYellow", "#ffc777"),
        ("brightBlue", "#8fb4ff"),
        ("brightMagenta", "#d0b3ff"),
        ("brightCyan", "#a4e3ff"),
        ("brightWhite", "#e6ebff"),
    ] {
        set(&theme, k, &JsValue::from_str(v));
    }
    theme
}

/// The terminal's options: a theme matching the page, a monospace stack
/// that exists on every OS, and a generous scrollback.
pub fn options(font_size: u8, light: bool, read_only: bool) -> Object {
    let o = Object::new();
    set(&o, "cursorBlink", &JsValue::TRUE);
    set(
        &o,
        "fontFamily",
        &JsValue::from_str(
            "ui-monospace, 'JetBrains Mono', 'Cascadia Mono', 'DejaVu Sans Mono', Menlo, Consolas, monospace",
        ),
    );
    set(&o, "fontSize", &JsValue::from_f64(f64::from(font_size)));
    set(&o, "disableStdin", &JsValue::from_bool(read_only));
    set(&o, "lineHeight", &JsValue::from_f64(1.15));
    set(&o, "scrollback", &JsValue::from_f64(5000.0));
    set(&o, "theme", &theme(light));
    o
}

fn set(o: &Object, key: &str, value: &JsValue) {
    // Setting a plain data property on a fresh Object cannot fail.
    let _ = Reflect::set(o, &JsValue::from_str(key), value);
}
