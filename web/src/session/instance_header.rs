//! The selected instance's header: status, host name, its IP, CPU and
//! memory (with a meter against the limit), and its Editor and Delete
//! buttons.

use playground_protocol::{InstanceInfo, InstanceStatus};
use yew::prelude::*;

use super::format::{format_memory, format_percent, memory_fraction};

#[derive(Properties, PartialEq)]
pub struct InstanceHeaderProps {
    pub instance: InstanceInfo,
    /// CPU use (percent), once two readings came in.
    pub cpu: Option<f64>,
    /// A read-only view: no buttons.
    pub view: bool,
    /// "Delete instance" was clicked and the answer is awaited.
    pub deleting: bool,
    pub editor_open: bool,
    pub on_toggle_editor: Callback<()>,
    pub on_delete: Callback<()>,
}

/// Host name, address, CPU and memory of the selected instance, and its
/// Editor and Delete buttons.
#[function_component(InstanceHeader)]
pub fn instance_header(props: &InstanceHeaderProps) -> Html {
    let inst = &props.instance;
    let exited = inst.status == InstanceStatus::Exited;
    let stats = inst.stats.as_ref().filter(|_| !exited);
    let cpu = props.cpu.filter(|_| !exited);
    let cpu_title = match stats {
        Some(s) => format!(
            "CPU use over the last few seconds (100% = one full core). Processes: {} of at most {}.",
            s.pids, s.pids_limit
        ),
        None => "CPU use over the last few seconds (100% = one full core)".to_owned(),
    };
    let (memory, fraction) = match stats {
        Some(s) => (format_memory(s), memory_fraction(s)),
        None => ("—".to_owned(), None),
    };
    let meter = fraction.map(|f| {
        let level = if f >= 0.95 {
            "crit"
        } else if f >= 0.8 {
            "high"
        } else {
            ""
        };
        html! {
            <span class="meter" aria-hidden="true">
                <span class={classes!("meter-fill", (!level.is_empty()).then_some(level))}
                      style={format!("width: {:.1}%", (f * 100.0).clamp(0.0, 100.0))}></span>
            </span>
        }
    });
    html! {
        <div class="toolbar">
            <span class={classes!("status-dot", exited.then_some("off"))}
                  title={if exited { "exited" } else { "running" }}></span>
            <span class="toolbar-title">{ inst.hostname.clone() }</span>
            if inst.hostname != inst.name {
                <span class="toolbar-sub">{ inst.name.clone() }</span>
            }
            if exited {
                <span class="badge badge-warn">{ "exited" }</span>
            }
            <div class="stats">
                <div class="stat" title="The instance's address on this session's network; other instances reach it there">
                    <span class="stat-label">{ "IP" }</span>
                    <span id="instance-ip" class="stat-value mono">
                        { inst.ip.clone().unwrap_or_else(|| "—".to_owned()) }
                    </span>
                </div>
                <div class="stat" title={cpu_title}>
                    <span class="stat-label">{ "CPU" }</span>
                    <span id="instance-cpu" class="stat-value">
                        { cpu.map(format_percent).unwrap_or_else(|| "—".to_owned()) }
                    </span>
                </div>
                <div class="stat" title="Memory in use (page cache included) and the instance's limit">
                    <span class="stat-label">{ "Memory" }</span>
                    <span id="instance-memory" class="stat-value">{ memory }</span>
                    { for meter }
                </div>
            </div>
            <div class="spacer"></div>
            if !props.view {
                if !exited {
                    <button id="editor-toggle" class={classes!("btn", "btn-sm", if props.editor_open { "btn-primary" } else { "btn-secondary" })}
                            aria-pressed={props.editor_open.to_string()}
                            title="Show or hide a file editor for /root"
                            onclick={props.on_toggle_editor.reform(|_| ())}>{ "Editor" }</button>
                }
                <button id="delete-instance" class="btn btn-outline-danger btn-sm"
                        disabled={props.deleting}
                        title="Delete this instance and everything in it"
                        onclick={props.on_delete.reform(|_| ())}>
                    { if props.deleting { "Deleting…" } else { "Delete instance" } }
                </button>
            }
        </div>
    }
}
