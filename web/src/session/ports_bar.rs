//! The selected instance's ports: a link for each open port, and a field
//! to open any port by number.

use playground_protocol::PortInfo;
use web_sys::HtmlInputElement;
use yew::prelude::*;

#[derive(Properties, PartialEq)]
pub struct PortsBarProps {
    pub hostname: AttrValue,
    /// The ports the instance listens on, with their links.
    pub ports: Vec<PortInfo>,
    /// Show the field to open any port: the server has a link template and
    /// this is not a read-only view.
    pub can_open: bool,
    /// The text in the field.
    pub input: AttrValue,
    /// Why the last "Open port" did nothing.
    pub error: Option<AttrValue>,
    pub on_input: Callback<String>,
    pub on_open: Callback<()>,
}

/// The open ports of the selected instance, and a field to open any port.
#[function_component(PortsBar)]
pub fn ports_bar(props: &PortsBarProps) -> Html {
    let links = props.ports.iter().map(|p| {
        html! {
            <a class="port-link" data-port={p.port.to_string()} href={p.url.clone()}
               target="_blank" rel="noopener"
               title={format!("Open port {} of {} in a new tab", p.port, props.hostname)}>
                { format!(":{}", p.port) }
                { external_icon() }
            </a>
        }
    });
    let form = if props.can_open {
        open_port_form(props)
    } else {
        html! {}
    };
    html! {
        <div class="portbar">
            <span class="portbar-label">{ "Ports" }</span>
            if props.ports.is_empty() {
                <span class="portbar-hint">
                    { "None open yet. Start a server, e.g. " }
                    <code>{ "python3 -m http.server 8000" }</code>
                    { ", and its link appears here." }
                </span>
            } else {
                <div class="port-links">{ for links }</div>
            }
            <div class="spacer"></div>
            { form }
        </div>
    }
}

/// A field to open any port, even one nothing listens on yet (the server's
/// link template makes the address).
fn open_port_form(props: &PortsBarProps) -> Html {
    let on_input = props.on_input.clone();
    let oninput = Callback::from(move |e: InputEvent| {
        on_input.emit(e.target_unchecked_into::<HtmlInputElement>().value())
    });
    let on_open = props.on_open.clone();
    let onsubmit = Callback::from(move |e: SubmitEvent| {
        e.prevent_default();
        on_open.emit(())
    });
    let invalid = props.error.is_some();
    html! {
        <form class="open-port" {onsubmit} novalidate=true>
            if let Some(error) = &props.error {
                <span id="open-port-error" class="field-error" role="alert">{ error.clone() }</span>
            }
            <label class="sr-only" for="open-port-input">{ "Port number" }</label>
            <input id="open-port-input" class={classes!("input", invalid.then_some("invalid"))}
                   type="text" inputmode="numeric" autocomplete="off" maxlength="5"
                   placeholder="Port, e.g. 3000"
                   aria-invalid={invalid.then_some("true")}
                   aria-describedby={invalid.then_some("open-port-error")}
                   value={props.input.clone()} {oninput} />
            <button id="open-port-button" type="submit" class="btn btn-secondary btn-sm"
                    title="Open this port of the instance in a new tab, even if nothing listens on it yet">
                { "Open port" }
            </button>
        </form>
    }
}

/// The "opens elsewhere" mark after a port link.
fn external_icon() -> Html {
    html! {
        <svg class="ext-icon" viewBox="0 0 16 16" width="12" height="12" aria-hidden="true">
            <path d="M9 3h4v4M13 3L7 9M11 10v3H3V5h3" fill="none" stroke="currentColor"
                  stroke-width="1.6" stroke-linecap="round" stroke-linejoin="round" />
        </svg>
    }
}
