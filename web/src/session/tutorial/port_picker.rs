//! What a page's `{{TRAFFIC_SELECTOR}}` link opens: the ports listening in
//! the session's machines, each a link to open in a new tab.

use playground_protocol::InstanceInfo;
use yew::prelude::*;

#[derive(Properties, PartialEq)]
pub struct PortPickerProps {
    pub instances: Vec<InstanceInfo>,
    pub on_close: Callback<()>,
}

#[function_component(PortPicker)]
pub fn port_picker(props: &PortPickerProps) -> Html {
    let links: Vec<Html> = props
        .instances
        .iter()
        .flat_map(|inst| inst.ports.iter().map(move |p| (inst, p)))
        .map(|(inst, p)| {
            html! {
                <a class="port-pick" href={p.url.clone()} target="_blank" rel="noopener"
                   data-instance={inst.name.clone()} data-port={p.port.to_string()}>
                    <span class="mono">{ format!("{}:{}", inst.hostname, p.port) }</span>
                    <span class="ext-icon">{ "↗" }</span>
                </a>
            }
        })
        .collect();
    html! {
        <div id="traffic-selector" class="port-picker" role="dialog" aria-label="Open a port">
            <div class="port-picker-head">
                <span>{ "Open a port" }</span>
                <button class="dismiss" title="Close" aria-label="Close"
                        onclick={props.on_close.reform(|_| ())}>{ "×" }</button>
            </div>
            if links.is_empty() {
                <p class="port-picker-empty">{ "No port is listening yet. Start a server, and its port shows here." }</p>
            } else {
                <div class="port-picker-list">{ for links }</div>
            }
        </div>
    }
}
