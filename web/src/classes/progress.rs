//! The class's progress: a bar per step of the scenario, the students who
//! have done it and those on it now.

use playground_protocol::StepProgress;
use yew::prelude::*;

use super::text::percent_of;

#[derive(Properties, PartialEq)]
pub struct ProgressProps {
    pub steps: Vec<StepProgress>,
    /// Students in the class (the bars' whole).
    pub students: u32,
}

#[function_component(ClassProgress)]
pub fn class_progress(props: &ProgressProps) -> Html {
    if props.steps.is_empty() {
        return html! {};
    }
    let rows = props.steps.iter().enumerate().map(|(i, step)| {
        let done = percent_of(step.done, props.students);
        let on_it = percent_of(step.on_it, props.students).min(100.0 - done);
        html! {
            <li class="step-progress" data-step={(i + 1).to_string()}>
                <span class="step-progress-title">{ format!("{}. {}", i + 1, step.title) }</span>
                <span class="step-progress-count">
                    <strong class="step-done">{ step.done }</strong>{ " done" }
                    if step.on_it > 0 {
                        <span class="step-on">{ format!(" · {} on it", step.on_it) }</span>
                    }
                </span>
                <span class="step-bar" title={format!("{} done, {} on it", step.done, step.on_it)}>
                    <span class="step-bar-done" style={format!("width: {done:.1}%")}></span>
                    <span class="step-bar-on" style={format!("width: {on_it:.1}%")}></span>
                </span>
            </li>
        }
    });
    html! {
        <section id="class-progress" class="panel">
            <div class="panel-head">
                <h2>{ "Progress" }</h2>
                <span class="legend">
                    <span class="swatch done"></span>{ "done" }
                    <span class="swatch on"></span>{ "on it now" }
                </span>
            </div>
            <ol class="steps-progress">{ for rows }</ol>
        </section>
    }
}
