//! "Share": the session's link (full control) and its read-only link, each
//! with a Copy button.

use wasm_bindgen::JsCast;
use web_sys::HtmlInputElement;
use yew::prelude::*;

#[derive(Properties, PartialEq)]
pub struct ShareProps {
    pub session_id: AttrValue,
    /// Empty when the server gives no read-only view.
    pub viewer_id: AttrValue,
    /// The panel with the links is shown.
    pub open: bool,
    pub on_toggle: Callback<()>,
}

#[function_component(Share)]
pub fn share(props: &ShareProps) -> Html {
    let origin = web_sys::window()
        .and_then(|w| w.location().origin().ok())
        .unwrap_or_default();
    let session_link = format!("{origin}/s/{}", props.session_id);
    let view_link =
        (!props.viewer_id.is_empty()).then(|| format!("{origin}/v/{}", props.viewer_id));
    let select = Callback::from(|e: FocusEvent| {
        if let Some(input) = e.target_dyn_into::<HtmlInputElement>() {
            input.select();
        }
    });
    html! {
        <div class="share">
            <button id="share-toggle" class="btn btn-secondary btn-sm"
                    aria-expanded={props.open.to_string()}
                    onclick={props.on_toggle.reform(|_| ())}>{ "Share" }</button>
            if props.open {
                <div id="share-panel" class="share-panel">
                    <label for="share-link">{ "Session link: whoever has it can type in the terminals" }</label>
                    <div class="share-row">
                        <input id="share-link" class="input" readonly=true value={session_link} onfocus={select.clone()} />
                        <button class="btn btn-secondary btn-sm" onclick={copy("share-link")}>{ "Copy" }</button>
                    </div>
                    if let Some(view_link) = view_link {
                        <label for="share-view-link">{ "Read-only link: watch without typing" }</label>
                        <div class="share-row">
                            <input id="share-view-link" class="input" readonly=true value={view_link} onfocus={select} />
                            <button class="btn btn-secondary btn-sm" onclick={copy("share-view-link")}>{ "Copy" }</button>
                        </div>
                    }
                </div>
            }
        </div>
    }
}

/// Copies the value of the input `id` (also the SSH bar's command).
pub(super) fn copy(id: &'static str) -> Callback<MouseEvent> {
    Callback::from(move |_: MouseEvent| {
        let doc = web_sys::window().and_then(|w| w.document());
        let input = doc
            .and_then(|d| d.get_element_by_id(id))
            .and_then(|e| e.dyn_into::<HtmlInputElement>().ok());
        if let Some(input) = input {
            input.select();
            match crate::terminal::clipboard() {
                Some(c) => {
                    let _ = c.write_text(&input.value());
                }
                // No clipboard API: the text is selected for Ctrl+C.
                None => {
                    let _ = input.focus();
                }
            }
        }
    })
}
