//! The roster table: a row per student with their step, steps done, last
//! activity, CPU and memory, help and whether their session is live. A
//! click on a row opens that student's terminal.

use std::collections::HashMap;

use playground_protocol::{HelpState, StepProgress, StudentRow};
use yew::prelude::*;

use super::seconds_since;
use super::text::{ago, current_step};
use crate::session::format::{format_bytes, format_percent};

#[derive(Properties, PartialEq)]
pub struct RosterProps {
    pub students: Vec<StudentRow>,
    pub steps: Vec<StepProgress>,
    /// CPU use per student id, in percent of a core.
    pub cpu: HashMap<String, f64>,
    pub selected: Option<String>,
    pub on_select: Callback<String>,
    /// Bumped every few seconds so "2 min ago" moves on.
    pub now: u64,
}

pub fn help_label(help: HelpState) -> Html {
    match help {
        HelpState::None => html! { <span class="muted">{ "—" }</span> },
        HelpState::Requested => html! { <span class="help-pill requested">{ "asked" }</span> },
        HelpState::Active => html! { <span class="help-pill active">{ "helping" }</span> },
    }
}

#[function_component(RosterTable)]
pub fn roster_table(props: &RosterProps) -> Html {
    if props.students.is_empty() {
        return html! {
            <p id="roster-empty" class="muted roster-empty">{ "Nobody has joined yet. Share the link or the code above." }</p>
        };
    }
    let scenario = !props.steps.is_empty();
    let rows = props.students.iter().map(|s| {
        let id = s.id.clone();
        let onclick = props.on_select.reform(move |_| id.clone());
        let selected = props.selected.as_deref() == Some(s.id.as_str());
        let last = s
            .last_active_at
            .as_deref()
            .and_then(seconds_since)
            .map_or_else(|| "—".to_owned(), ago);
        let cpu = props
            .cpu
            .get(&s.id)
            .map_or_else(|| "—".to_owned(), |p| format_percent(*p));
        html! {
            <tr class={classes!("student-row", selected.then_some("selected"), (!s.live).then_some("gone"))}
                data-student={s.id.clone()} data-name={s.name.clone()} {onclick}>
                <td class="student-name">{ s.name.clone() }</td>
                if scenario {
                    <td class="student-step">{ current_step(s.tutorial.as_ref(), &props.steps) }</td>
                    <td class="student-done num">{ format!("{} / {}", s.steps_done, props.steps.len()) }</td>
                }
                <td class="student-last">{ last }</td>
                <td class="student-cpu num">{ if s.live { cpu } else { "—".to_owned() } }</td>
                <td class="student-mem num">{ if s.live { format_bytes(s.memory_bytes) } else { "—".to_owned() } }</td>
                <td class="student-help">{ help_label(s.help) }</td>
                <td class="student-live">
                    if s.live {
                        <span class="live-dot"></span>{ "live" }
                    } else {
                        <span class="muted">{ "ended" }</span>
                    }
                </td>
            </tr>
        }
    });
    html! {
        <table id="roster" class="roster" data-now={props.now.to_string()}>
            <thead>
                <tr>
                    <th>{ "Student" }</th>
                    if scenario {
                        <th>{ "Current step" }</th>
                        <th class="num">{ "Steps done" }</th>
                    }
                    <th>{ "Last activity" }</th>
                    <th class="num">{ "CPU" }</th>
                    <th class="num">{ "Memory" }</th>
                    <th>{ "Help" }</th>
                    <th>{ "Session" }</th>
                </tr>
            </thead>
            <tbody>{ for rows }</tbody>
        </table>
    }
}
