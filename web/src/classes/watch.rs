//! One student's terminal on the dashboard: read-only and live through the
//! session's viewer id, or, once the student has accepted help, writable
//! through the help key. When help ends the terminal falls back to
//! read-only (the server closes the writable one at once).

use playground_protocol::{HelpState, StudentRow};
use yew::prelude::*;

use crate::terminal::TerminalView;

#[derive(Properties, PartialEq)]
pub struct WatchProps {
    pub student: StudentRow,
    /// The key of the instructor's last request to help this student.
    pub help_key: Option<String>,
    /// Said over the terminal (e.g. that help ended).
    pub notice: Option<String>,
    /// A request to help is under way.
    pub asking: bool,
    pub on_help: Callback<()>,
    pub on_stop_help: Callback<()>,
    pub on_close: Callback<()>,
}

#[function_component(WatchPanel)]
pub fn watch_panel(props: &WatchProps) -> Html {
    let s = &props.student;
    let chosen = use_state(|| None::<String>);
    let name = chosen
        .as_ref()
        .filter(|n| s.instances.contains(n))
        .or(s.instances.first())
        .cloned();
    let helping = s.help == HelpState::Active && props.help_key.is_some();
    let tabs = s.instances.iter().map(|n| {
        let set = chosen.setter();
        let value = n.clone();
        let active = name.as_deref() == Some(n.as_str());
        html! {
            <button class={classes!("watch-tab", active.then_some("active"))}
                    onclick={move |_| set.set(Some(value.clone()))}>{ n.clone() }</button>
        }
    });
    let mode = match s.help {
        HelpState::Active if helping => html! {
            <span id="watch-mode" class="watch-mode helping">{ format!("Helping: you can type in {}'s terminals", s.name) }</span>
        },
        HelpState::Requested => html! {
            <span id="watch-mode" class="watch-mode waiting"><span class="spinner"></span>{ format!("Waiting for {} to accept…", s.name) }</span>
        },
        _ => html! { <span id="watch-mode" class="watch-mode">{ "Read-only, live" }</span> },
    };
    let action = match s.help {
        HelpState::None => html! {
            <button id="help-button" class="btn btn-primary btn-sm" disabled={props.asking || !s.live}
                    onclick={props.on_help.reform(|_| ())}>{ "Help" }</button>
        },
        HelpState::Requested => html! {
            <button id="cancel-help" class="btn btn-secondary btn-sm"
                    onclick={props.on_stop_help.reform(|_| ())}>{ "Cancel request" }</button>
        },
        HelpState::Active => html! {
            <>
                if !helping {
                    <button id="help-button" class="btn btn-primary btn-sm" disabled={props.asking}
                            title="Help is on: take the keyboard from this page"
                            onclick={props.on_help.reform(|_| ())}>{ "Type here" }</button>
                }
                <button id="stop-help" class="btn btn-outline-danger btn-sm"
                        onclick={props.on_stop_help.reform(|_| ())}>{ "Stop helping" }</button>
            </>
        },
    };
    let terminal = match (&name, s.live) {
        (_, false) => {
            html! { <div class="watch-empty">{ "This student's session has ended." }</div> }
        }
        (None, true) => html! { <div class="watch-empty">{ "No machines yet." }</div> },
        (Some(n), true) => {
            let (sid, key) = if helping {
                let k = props.help_key.clone().unwrap_or_default();
                (k.clone(), format!("help/{k}/{n}"))
            } else {
                (s.viewer_id.clone(), format!("view/{}/{n}", s.viewer_id))
            };
            html! {
                <div id="watch-terminal" class={classes!("watch-terminal", helping.then_some("helping"))}
                     data-mode={if helping { "help" } else { "view" }}>
                    <TerminalView {key} sid={sid} name={n.clone()} view={!helping} help={helping} />
                </div>
            }
        }
    };
    html! {
        <section id="watch" class="panel watch" data-student={s.id.clone()}>
            <div class="panel-head">
                <h2 id="watch-name">{ s.name.clone() }</h2>
                <div class="watch-tabs">{ for tabs }</div>
                <span class="spacer"></span>
                { action }
                <button class="dismiss" title="Close" aria-label="Close"
                        onclick={props.on_close.reform(|_| ())}>{ "×" }</button>
            </div>
            <div class="watch-bar">
                { mode }
                if let Some(n) = &props.notice {
                    <span id="watch-notice" class="watch-notice">{ n.clone() }</span>
                }
            </div>
            { terminal }
        </section>
    }
}
