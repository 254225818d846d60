//! A class's notes on the student's session page: the instructor's request
//! to help (Accept / Decline), the notice that the instructor can type while
//! help is on (End help), and the instructor's messages, each dismissible.

use playground_protocol::HelpState;
use yew::prelude::*;

use crate::classes::clock_time;

#[derive(Properties, PartialEq)]
pub struct HelpBannerProps {
    pub state: HelpState,
    /// An answer is under way.
    pub busy: bool,
    pub on_answer: Callback<bool>,
    pub on_end: Callback<()>,
}

#[function_component(HelpBanner)]
pub fn help_banner(props: &HelpBannerProps) -> Html {
    match props.state {
        HelpState::None => html! {},
        HelpState::Requested => html! {
            <div id="help-request" class="class-banner help-request" role="alertdialog" aria-live="assertive">
                <span class="class-banner-icon">{ "?" }</span>
                <span class="class-banner-text">
                    <strong>{ "Your instructor asks to help in your terminal." }</strong>
                    { " If you accept, they can type in your terminals until you end it." }
                </span>
                <button id="help-accept" class="btn btn-primary btn-sm" disabled={props.busy}
                        onclick={props.on_answer.reform(|_| true)}>{ "Accept" }</button>
                <button id="help-decline" class="btn btn-secondary btn-sm" disabled={props.busy}
                        onclick={props.on_answer.reform(|_| false)}>{ "Decline" }</button>
            </div>
        },
        HelpState::Active => html! {
            <div id="help-active" class="class-banner help-active" role="status" aria-live="polite">
                <span class="live-dot"></span>
                <span class="class-banner-text">
                    <strong>{ "Your instructor can type in your terminals." }</strong>
                </span>
                <button id="help-end" class="btn btn-outline-danger btn-sm" disabled={props.busy}
                        onclick={props.on_end.reform(|_| ())}>{ "End help" }</button>
            </div>
        },
    }
}

/// A message from the instructor, as it arrived.
#[derive(Clone, Debug, PartialEq)]
pub struct ClassMessage {
    pub id: u32,
    pub text: String,
    /// RFC 3339.
    pub at: String,
}

#[derive(Properties, PartialEq)]
pub struct MessagesProps {
    pub messages: Vec<ClassMessage>,
    pub on_dismiss: Callback<u32>,
}

#[function_component(ClassMessages)]
pub fn class_messages(props: &MessagesProps) -> Html {
    let items = props.messages.iter().map(|m| {
        let id = m.id;
        html! {
            <div class="class-banner class-message" role="status" aria-live="polite" data-message={id.to_string()}>
                <span class="class-banner-icon">{ "✉" }</span>
                <span class="class-banner-text">
                    <span class="class-message-from">{ format!("Instructor · {}", clock_time(&m.at)) }</span>
                    <span class="class-message-text">{ m.text.clone() }</span>
                </span>
                <button class="dismiss" title="Dismiss" aria-label="Dismiss"
                        onclick={props.on_dismiss.reform(move |_| id)}>{ "×" }</button>
            </div>
        }
    });
    html! { <>{ for items }</> }
}
