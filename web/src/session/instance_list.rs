//! The sidebar: "+ Add new instance", the count against the session's
//! limit, and one entry per instance (host, address, memory, CPU, ports).

use std::collections::HashMap;

use playground_protocol::{InstanceInfo, InstanceStatus};
use yew::prelude::*;

use super::format::{format_bytes, format_percent};

#[derive(Properties, PartialEq)]
pub struct InstanceListProps {
    /// A read-only view: no "Add" button.
    pub view: bool,
    pub instances: Vec<InstanceInfo>,
    /// The session's limit; `None` until the session is loaded.
    pub max: Option<usize>,
    pub selected: Option<String>,
    /// CPU use (percent) of the instances that have a figure yet.
    pub cpu: HashMap<String, f64>,
    /// An instance is being created.
    pub adding: bool,
    pub on_add: Callback<()>,
    /// An entry was clicked (its instance name).
    pub on_select: Callback<String>,
}

#[function_component(InstanceList)]
pub fn instance_list(props: &InstanceListProps) -> Html {
    let count = props.instances.len();
    let full = props.max.is_some_and(|max| count >= max);
    let title = match props.max {
        Some(max) if full => format!(
            "This session already has its maximum of {max} instances. Delete one to add another."
        ),
        _ => "Start a new Linux machine in this session".to_owned(),
    };
    let items = props.instances.iter().map(|inst| item(props, inst));
    html! {
        <aside class="sidebar">
            if !props.view {
                <button id="add-instance" class="btn btn-primary btn-block"
                        disabled={props.max.is_none() || full || props.adding}
                        {title}
                        onclick={props.on_add.reform(|_| ())}>
                    if props.adding {
                        <span class="spinner"></span>{ "Adding…" }
                    } else {
                        { "+ Add new instance" }
                    }
                </button>
            }
            <div class="sidebar-heading">
                <span>{ "Instances" }</span>
                if let Some(max) = props.max {
                    <span class="count">{ format!("{count} / {max}") }</span>
                }
            </div>
            <ul class="instance-list">
                { for items }
                if props.adding {
                    // The instance being created: shown at once, so a slow
                    // start is visible, and replaced by the real entry.
                    <li>
                        <div id="instance-starting" class="instance starting" aria-live="polite">
                            <span class="spinner"></span>
                            <span class="instance-text">
                                <span class="instance-host">{ "Starting…" }</span>
                                <span class="instance-sub">{ "a new instance" }</span>
                            </span>
                        </div>
                    </li>
                }
            </ul>
        </aside>
    }
}

/// One instance's entry: a button that selects it.
fn item(props: &InstanceListProps, inst: &InstanceInfo) -> Html {
    let selected = props.selected.as_deref() == Some(inst.name.as_str());
    let name = inst.name.clone();
    let onclick = props.on_select.reform(move |_| name.clone());
    let exited = inst.status == InstanceStatus::Exited;
    let sub = subtitle(inst, props.cpu.get(&inst.name).copied());
    let ports = match inst.ports.as_slice() {
        [] => html! {},
        [one] => {
            html! { <span class="instance-ports" title="Open port">{ format!(":{}", one.port) }</span> }
        }
        [first, rest @ ..] => html! {
            <span class="instance-ports" title={format!("{} open ports", rest.len() + 1)}>
                { format!(":{} +{}", first.port, rest.len()) }
            </span>
        },
    };
    html! {
        <li>
            <button class={classes!("instance", selected.then_some("selected"), exited.then_some("exited"))}
                    data-name={inst.name.clone()} {onclick}
                    aria-current={selected.then_some("true")}>
                <span class="status-dot" title={if exited { "exited" } else { "running" }}></span>
                <span class="instance-text">
                    <span class="instance-line">
                        <span class="instance-host">{ inst.hostname.clone() }</span>
                        { ports }
                    </span>
                    <span class="instance-sub">{ sub }</span>
                </span>
            </button>
        </li>
    }
}

/// The line under the host name: the instance's name when the host name
/// differs, then its address, memory and CPU (or that it exited).
fn subtitle(inst: &InstanceInfo, cpu: Option<f64>) -> String {
    if inst.status == InstanceStatus::Exited {
        return if inst.hostname != inst.name {
            format!("{} · exited", inst.name)
        } else {
            "exited".to_owned()
        };
    }
    let mut parts = Vec::new();
    if inst.hostname != inst.name {
        parts.push(inst.name.clone());
    }
    if let Some(ip) = &inst.ip {
        parts.push(ip.clone());
    }
    if let Some(stats) = &inst.stats {
        parts.push(format_bytes(stats.memory_bytes));
    }
    if let Some(p) = cpu {
        parts.push(format_percent(p));
    }
    if parts.is_empty() {
        inst.name.clone()
    } else {
        parts.join(" · ")
    }
}
