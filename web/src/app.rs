//! Top level: routing between the landing page (`/`) and a session
//! (`/s/{sid}`), and the error banner every page shares.

use playground_protocol::SessionInfo;
use wasm_bindgen::prelude::*;
use wasm_bindgen::JsCast;
use yew::prelude::*;

use crate::api;
use crate::session::SessionPage;

#[derive(Clone, Debug, PartialEq)]
pub enum Route {
    Landing,
    Session(String),
}

impl Route {
    fn current() -> Route {
        let path = window().location().pathname().unwrap_or_default();
        match path.strip_prefix("/s/").map(|s| s.trim_end_matches('/')) {
            Some(sid) if !sid.is_empty() && !sid.contains('/') => Route::Session(
                js_sys::decode_uri_component(sid)
                    .map(String::from)
                    .unwrap_or_else(|_| sid.to_owned()),
            ),
            _ => Route::Landing,
        }
    }

    fn path(&self) -> String {
        match self {
            Route::Landing => "/".to_owned(),
            Route::Session(sid) => {
                format!("/s/{}", String::from(js_sys::encode_uri_component(sid)))
            }
        }
    }
}

fn window() -> web_sys::Window {
    web_sys::window().expect("no window")
}

pub enum Msg {
    Start,
    Started(api::ApiResult<SessionInfo>),
    PopState,
    SessionEnded,
    SessionClosed,
    Error(String),
    DismissError,
}

pub struct App {
    route: Route,
    /// The body of `POST /api/sessions`, handed to the session page so it
    /// need not fetch it again.
    initial: Option<SessionInfo>,
    ended: bool,
    starting: bool,
    error: Option<String>,
    _popstate: Closure<dyn FnMut(web_sys::Event)>,
}

impl App {
    fn navigate(&mut self, route: Route) {
        let path = route.path();
        if let Ok(history) = window().history() {
            let _ = history.push_state_with_url(&JsValue::NULL, "", Some(&path));
        }
        self.route = route;
    }

    fn start_button(&self, ctx: &Context<Self>, label: &str) -> Html {
        html! {
            <button id="start" class="btn btn-primary btn-lg"
                    disabled={self.starting}
                    onclick={ctx.link().callback(|_| Msg::Start)}>
                if self.starting {
                    <span class="spinner"></span>{ "Starting…" }
                } else {
                    { label.to_owned() }
                }
            </button>
        }
    }

    fn landing(&self, ctx: &Context<Self>) -> Html {
        html! {
            <div class="page">
                <header class="topbar">
                    <span class="brand"><span class="brand-mark">{ ">_" }</span>{ "Playground" }</span>
                </header>
                <main class="landing">
                    <h1>{ "Playground" }</h1>
                    <p class="tagline">
                        { "Disposable Linux machines in your browser: start a session, add instances, and work in a real shell. Nothing to install." }
                    </p>
                    { self.start_button(ctx, "Start") }
                    <ul class="features">
                        <li>
                            <strong>{ "Real shells" }</strong>
                            <span>{ "Each instance is an isolated Linux machine with its own hostname and terminal." }</span>
                        </li>
                        <li>
                            <strong>{ "Throwaway by design" }</strong>
                            <span>{ "Sessions expire on their own and everything in them is deleted." }</span>
                        </li>
                        <li>
                            <strong>{ "Self-hosted" }</strong>
                            <span>{ "Runs on your own Linux server, for classes, workshops and tutorials." }</span>
                        </li>
                    </ul>
                </main>
                <footer class="footer">{ "Open source · Apache-2.0" }</footer>
            </div>
        }
    }

    fn ended(&self, ctx: &Context<Self>) -> Html {
        html! {
            <div class="page">
                <header class="topbar">
                    <span class="brand"><span class="brand-mark">{ ">_" }</span>{ "Playground" }</span>
                </header>
                <main class="landing ended">
                    <h2 id="session-ended">{ "This session has ended or does not exist" }</h2>
                    <p class="tagline">{ "Sessions expire after a while, and closing one deletes its instances." }</p>
                    { self.start_button(ctx, "Start a new session") }
                </main>
            </div>
        }
    }
}

impl Component for App {
    type Message = Msg;
    type Properties = ();

    fn create(ctx: &Context<Self>) -> Self {
        let link = ctx.link().clone();
        let popstate = Closure::<dyn FnMut(web_sys::Event)>::new(move |_| {
            link.send_message(Msg::PopState);
        });
        let _ = window()
            .add_event_listener_with_callback("popstate", popstate.as_ref().unchecked_ref());
        App {
            route: Route::current(),
            initial: None,
            ended: false,
            starting: false,
            error: None,
            _popstate: popstate,
        }
    }

    fn update(&mut self, ctx: &Context<Self>, msg: Msg) -> bool {
        match msg {
            Msg::Start => {
                if self.starting {
                    return false;
                }
                self.starting = true;
                ctx.link()
                    .send_future(async { Msg::Started(api::create_session().await) });
            }
            Msg::Started(result) => {
                self.starting = false;
                match result {
                    Ok(info) => {
                        self.error = None;
                        self.ended = false;
                        self.navigate(Route::Session(info.id.clone()));
                        self.initial = Some(info);
                    }
                    Err(e) => self.error = Some(format!("Could not start a session: {e}")),
                }
            }
            Msg::PopState => {
                self.route = Route::current();
                self.initial = None;
                self.ended = false;
            }
            Msg::SessionEnded => self.ended = true,
            Msg::SessionClosed => {
                self.initial = None;
                self.ended = false;
                self.navigate(Route::Landing);
            }
            Msg::Error(text) => self.error = Some(text),
            Msg::DismissError => self.error = None,
        }
        true
    }

    fn view(&self, ctx: &Context<Self>) -> Html {
        let banner = match &self.error {
            Some(text) => html! {
                <div id="error-banner" class="error-banner" role="alert">
                    <span class="error-icon">{ "!" }</span>
                    <span class="error-text">{ text.clone() }</span>
                    <button class="dismiss" title="Dismiss" aria-label="Dismiss"
                            onclick={ctx.link().callback(|_| Msg::DismissError)}>{ "×" }</button>
                </div>
            },
            None => html! {},
        };
        let page = match (&self.route, self.ended) {
            (Route::Landing, _) => self.landing(ctx),
            (Route::Session(_), true) => self.ended(ctx),
            (Route::Session(sid), false) => {
                let initial = self.initial.clone().filter(|s| &s.id == sid);
                html! {
                    <SessionPage key={sid.clone()} sid={sid.clone()} {initial}
                        on_error={ctx.link().callback(Msg::Error)}
                        on_ended={ctx.link().callback(|_| Msg::SessionEnded)}
                        on_closed={ctx.link().callback(|_| Msg::SessionClosed)} />
                }
            }
        };
        html! { <>{ banner }{ page }</> }
    }
}
