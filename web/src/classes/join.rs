//! `/join/{code}`: a student's way into a class. Shows the class's title,
//! its state and the seats left, asks for a display name and joins; the
//! token the join gives stays in this browser (per code), so opening the
//! link again goes back to the same session.

use playground_protocol::{ClassState, JoinClass, JoinInfo, Joined, SessionInfo};
use web_sys::HtmlInputElement;
use yew::prelude::*;

use super::text::token_key;
use super::{api, forget, load, local_time, store};
use crate::api::ApiResult;

#[derive(Properties, PartialEq)]
pub struct JoinProps {
    pub code: String,
    /// Joined (or back): the page shows the session.
    pub on_joined: Callback<SessionInfo>,
}

pub enum Msg {
    Info(ApiResult<JoinInfo>),
    Name(String),
    Join,
    Joined(bool, ApiResult<Joined>),
}

pub struct JoinPage {
    info: Option<ApiResult<JoinInfo>>,
    name: String,
    busy: bool,
    /// Going back with the stored token.
    resuming: bool,
    error: Option<String>,
}

impl Component for JoinPage {
    type Message = Msg;
    type Properties = JoinProps;

    fn create(ctx: &Context<Self>) -> Self {
        let code = ctx.props().code.clone();
        let c = code.clone();
        ctx.link()
            .send_future(async move { Msg::Info(api::join_info(&c).await) });
        let resuming = match load(&token_key(&code)) {
            Some(token) => {
                let body = JoinClass {
                    name: String::new(),
                    token: Some(token),
                };
                ctx.link()
                    .send_future(async move { Msg::Joined(true, api::join(&code, &body).await) });
                true
            }
            None => false,
        };
        JoinPage {
            info: None,
            name: String::new(),
            busy: resuming,
            resuming,
            error: None,
        }
    }

    fn update(&mut self, ctx: &Context<Self>, msg: Msg) -> bool {
        match msg {
            Msg::Info(result) => self.info = Some(result),
            Msg::Name(name) => {
                self.name = name;
                return self.error.take().is_some();
            }
            Msg::Join => {
                let name = self.name.trim().to_owned();
                if self.busy {
                    return false;
                }
                if name.is_empty() {
                    self.error = Some("Type the name your instructor will see.".to_owned());
                    return true;
                }
                self.busy = true;
                self.error = None;
                let code = ctx.props().code.clone();
                let body = JoinClass { name, token: None };
                ctx.link()
                    .send_future(async move { Msg::Joined(false, api::join(&code, &body).await) });
            }
            Msg::Joined(resumed, result) => {
                self.busy = false;
                self.resuming = false;
                let key = token_key(&ctx.props().code);
                match result {
                    Ok(joined) => {
                        store(&key, &joined.token);
                        ctx.props().on_joined.emit(joined.session);
                        return false;
                    }
                    Err(e) => {
                        if resumed {
                            // That seat is gone: a new join may still work.
                            forget(&key);
                            self.error =
                                Some(format!("Your earlier session is not available: {e}"));
                        } else {
                            self.error = Some(e.message);
                        }
                    }
                }
            }
        }
        true
    }

    fn view(&self, ctx: &Context<Self>) -> Html {
        let code = ctx.props().code.to_uppercase();
        let body = match &self.info {
            None => html! {
                <div class="start-progress"><span class="spinner"></span>{ "Looking up the class…" }</div>
            },
            Some(Err(e)) => html! {
                <div id="join-error" class="start-error" role="alert">
                    <strong>{ format!("No class to join with the code {code}.") }</strong>
                    <span>{ e.message.clone() }</span>
                </div>
            },
            Some(Ok(info)) => self.class_view(ctx, info),
        };
        html! {
            <div class="page">
                <header class="topbar">
                    <a class="brand" href="/"><span class="brand-mark">{ ">_" }</span>{ "Playground" }</a>
                </header>
                <main class="landing join-page">
                    <div class="join-card">
                        <span class="join-kicker">{ format!("Class {code}") }</span>
                        { body }
                    </div>
                </main>
            </div>
        }
    }
}

impl JoinPage {
    fn class_view(&self, ctx: &Context<Self>, info: &JoinInfo) -> Html {
        let state = match info.state {
            ClassState::Scheduled => html! {
                <p id="join-state" class="join-state scheduled">
                    { "Opens at " }
                    <strong>{ info.starts_at.as_deref().map(local_time).unwrap_or_default() }</strong>
                    { ": come back then." }
                </p>
            },
            ClassState::Ended => html! {
                <p id="join-state" class="join-state ended">{ "This class has ended." }</p>
            },
            ClassState::Open => html! {
                <p id="join-state" class="join-state open">
                    <span id="join-seats">{ seats_left(info.seats_left) }</span>
                    if let Some(end) = &info.ends_at {
                        { format!(" · ends {}", local_time(end)) }
                    }
                </p>
            },
        };
        let error = self.error.clone().map(|e| {
            html! { <div id="join-error" class="start-error" role="alert"><span>{ e }</span></div> }
        });
        let form = (info.state == ClassState::Open && !self.resuming).then(|| {
            let oninput = ctx.link().callback(|e: InputEvent| {
                Msg::Name(e.target_unchecked_into::<HtmlInputElement>().value())
            });
            let onsubmit = ctx.link().callback(|e: SubmitEvent| {
                e.prevent_default();
                Msg::Join
            });
            html! {
                <form id="join-form" class="join-form" {onsubmit}>
                    <label for="join-name">{ "Your name, as your instructor will see it" }</label>
                    <div class="join-row">
                        <input id="join-name" class="text-input" type="text" maxlength="40"
                            autocomplete="name" placeholder="e.g. Ada L." value={self.name.clone()}
                            {oninput} disabled={self.busy} />
                        <button id="join-button" type="submit" class="btn btn-primary"
                                disabled={self.busy || info.seats_left == 0}>
                            if self.busy { <span class="spinner"></span>{ "Joining…" } } else { { "Join" } }
                        </button>
                    </div>
                    <p class="join-note">{ "You get your own Linux machines for this class. Your instructor can see your terminals, and can type in them only if you accept." }</p>
                </form>
            }
        });
        html! {
            <>
                <h2 id="join-title">{ info.title.clone() }</h2>
                { state }
                if self.resuming {
                    <div id="join-resuming" class="start-progress">
                        <span class="spinner"></span>{ "Back to your session…" }
                    </div>
                }
                { for error }
                { for form }
            </>
        }
    }
}

fn seats_left(n: u32) -> String {
    match n {
        0 => "No seats left".to_owned(),
        1 => "1 seat left".to_owned(),
        n => format!("{n} seats left"),
    }
}
