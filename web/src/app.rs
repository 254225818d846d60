//! Top level: routing between the landing page (`/`), a tutorial being
//! started (`/tutorials/{id}`), a session (`/s/{sid}`), the class pages
//! (`/join/{code}`, `/classes`, `/classes/{id}`), and the error banner
//! every page shares.

use playground_protocol::{CatalogEntry, ScenarioInfo, SessionInfo, TemplateInfo};
use wasm_bindgen::prelude::*;
use wasm_bindgen::JsCast;
use yew::prelude::*;

use crate::api;
use crate::catalog::{tutorial_path, Catalog};
use crate::classes::{text::clean_code, ClassDashboard, ClassesPage, JoinPage};
use crate::session::SessionPage;
use crate::settings::Settings;

#[derive(Clone, Debug, PartialEq)]
pub enum Route {
    Landing,
    Session(String),
    /// A read-only view (`/v/{viewer_id}`).
    View(String),
    /// Start a tutorial (`/tutorials/{id}`; ids may hold `/`): a new
    /// session replaces this address once its instances are up.
    Tutorial(String),
    /// A class's join page (`/join/{code}`).
    Join(String),
    /// The instructor's classes (`/classes`).
    Classes,
    /// A class's dashboard (`/classes/{id}`).
    Class(String),
}

impl Route {
    fn current() -> Route {
        let path = window().location().pathname().unwrap_or_default();
        let id = |prefix: &str| {
            path.strip_prefix(prefix)
                .map(|s| s.trim_end_matches('/'))
                .filter(|s| !s.is_empty() && !s.contains('/'))
                .map(|s| {
                    js_sys::decode_uri_component(s)
                        .map(String::from)
                        .unwrap_or_else(|_| s.to_owned())
                })
        };
        let tutorial = path
            .strip_prefix("/tutorials/")
            .map(|s| s.trim_end_matches('/'))
            .filter(|s| !s.is_empty())
            .map(|s| {
                let parts: Vec<String> = s
                    .split('/')
                    .map(|p| {
                        js_sys::decode_uri_component(p)
                            .map(String::from)
                            .unwrap_or_else(|_| p.to_owned())
                    })
                    .collect();
                parts.join("/")
            });
        if let Some(sid) = id("/s/") {
            Route::Session(sid)
        } else if let Some(vid) = id("/v/") {
            Route::View(vid)
        } else if let Some(scenario) = tutorial {
            Route::Tutorial(scenario)
        } else if let Some(code) = id("/join/") {
            Route::Join(code)
        } else if let Some(class) = id("/classes/") {
            Route::Class(class)
        } else if path.trim_end_matches('/') == "/classes" {
            Route::Classes
        } else {
            Route::Landing
        }
    }

    fn path(&self) -> String {
        match self {
            Route::Landing => "/".to_owned(),
            Route::Session(sid) => {
                format!("/s/{}", String::from(js_sys::encode_uri_component(sid)))
            }
            Route::View(vid) => {
                format!("/v/{}", String::from(js_sys::encode_uri_component(vid)))
            }
            Route::Tutorial(id) => tutorial_path(id),
            Route::Join(code) => {
                format!("/join/{}", String::from(js_sys::encode_uri_component(code)))
            }
            Route::Classes => "/classes".to_owned(),
            Route::Class(id) => {
                format!(
                    "/classes/{}",
                    String::from(js_sys::encode_uri_component(id))
                )
            }
        }
    }
}

fn window() -> web_sys::Window {
    web_sys::window().expect("no window")
}

/// `?template=<name>` of the page's address.
fn template_param() -> Option<String> {
    let search = window().location().search().ok()?;
    let params = web_sys::UrlSearchParams::new_with_str(&search).ok()?;
    params.get("template").filter(|t| !t.is_empty())
}

pub enum Msg {
    Start,
    StartTemplate(String),
    Templates(api::ApiResult<Vec<TemplateInfo>>),
    Started(api::ApiResult<SessionInfo>),
    Catalog(api::ApiResult<Vec<CatalogEntry>>),
    /// A tutorial was picked on the landing page.
    OpenTutorial(String),
    /// The tutorial's title and machines, for the page shown while it starts.
    TutorialInfo(String, api::ApiResult<ScenarioInfo>),
    TutorialStarted(String, api::ApiResult<SessionInfo>),
    /// The landing page's class code box.
    CodeInput(String),
    JoinCode,
    /// Joined a class (or back to its session): show the session.
    Joined(SessionInfo),
    Go(Route),
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
    /// What `GET /api/templates` offered (empty when the server has none).
    templates: Vec<TemplateInfo>,
    /// What `GET /api/scenarios` offered (empty when the server has none).
    catalog: Vec<CatalogEntry>,
    /// The tutorial being started, once `GET /api/scenarios/{id}` answered.
    tutorial_info: Option<ScenarioInfo>,
    /// Why the tutorial could not start (shown on its page, not a banner).
    tutorial_error: Option<String>,
    error: Option<String>,
    /// What the landing page's class code box holds.
    code: String,
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

    fn template_chooser(&self, ctx: &Context<Self>) -> Html {
        if self.templates.is_empty() {
            return html! {};
        }
        let buttons = self.templates.iter().map(|t| {
            let name = t.name.clone();
            let hosts: Vec<&str> = t.instances.iter().map(|i| i.hostname.as_str()).collect();
            html! {
                <button class="btn btn-secondary template-button" data-template={t.name.clone()}
                        disabled={self.starting}
                        title={format!("Start a session with {}", hosts.join(", "))}
                        onclick={ctx.link().callback(move |_| Msg::StartTemplate(name.clone()))}>
                    { t.title.clone() }
                </button>
            }
        });
        html! {
            <div id="templates" class="templates">
                <span class="templates-label">{ "or start with" }</span>
                { for buttons }
            </div>
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
                    { self.template_chooser(ctx) }
                    { self.join_box(ctx) }
                    <Catalog entries={self.catalog.clone()}
                        on_open={ctx.link().callback(Msg::OpenTutorial)} />
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
                <footer class="footer">
                    { "Open source · Apache-2.0 · " }
                    <a id="instructors-link" href="/classes"
                       onclick={ctx.link().callback(|e: MouseEvent| { e.prevent_default(); Msg::Go(Route::Classes) })}>
                        { "For instructors" }
                    </a>
                </footer>
            </div>
        }
    }

    /// "Join a class": a code box that opens `/join/{code}`.
    fn join_box(&self, ctx: &Context<Self>) -> Html {
        let oninput = ctx.link().callback(|e: InputEvent| {
            Msg::CodeInput(
                e.target_unchecked_into::<web_sys::HtmlInputElement>()
                    .value(),
            )
        });
        let onsubmit = ctx.link().callback(|e: SubmitEvent| {
            e.prevent_default();
            Msg::JoinCode
        });
        html! {
            <form id="join-code-form" class="join-code-box" {onsubmit}>
                <label for="join-code-input">{ "Joining a class?" }</label>
                <input id="join-code-input" class="text-input code-input" type="text" maxlength="12"
                    placeholder="Class code" autocomplete="off" spellcheck="false" {oninput} />
                <button id="join-code-go" type="submit" class="btn btn-secondary">{ "Join" }</button>
            </form>
        }
    }

    /// While a tutorial's session starts, and why it could not.
    fn tutorial_start(&self, ctx: &Context<Self>, id: &str) -> Html {
        let info = self.tutorial_info.as_ref().filter(|i| i.summary.id == id);
        let title = info.map_or_else(|| "Tutorial".to_owned(), |i| i.summary.title.clone());
        let machines = info.map_or_else(String::new, |i| i.summary.hosts.join(" and "));
        let back = ctx.link().callback(|e: MouseEvent| {
            e.prevent_default();
            Msg::SessionClosed
        });
        html! {
            <div class="page">
                <header class="topbar">
                    <span class="brand"><span class="brand-mark">{ ">_" }</span>{ "Playground" }</span>
                </header>
                <main class="landing tutorial-start">
                    <h2>{ title }</h2>
                    if let Some(error) = &self.tutorial_error {
                        <div id="tutorial-start-error" class="start-error" role="alert">
                            <strong>{ "This tutorial could not start." }</strong>
                            <span>{ error.clone() }</span>
                        </div>
                        <a class="btn btn-secondary" href="/" onclick={back}>{ "All tutorials" }</a>
                    } else {
                        <div id="tutorial-starting" class="start-progress">
                            <span class="spinner"></span>
                            <span>
                                if machines.is_empty() {
                                    { "Starting your machines…" }
                                } else {
                                    { format!("Starting {machines}…") }
                                }
                            </span>
                        </div>
                        <div class="progress-track"><div class="progress-run"></div></div>
                        <p class="tagline">{ "Each machine is a fresh Linux system with Docker; the tutorial's files are copied in before it opens." }</p>
                    }
                </main>
            </div>
        }
    }

    /// Ask for a new session of tutorial `id` (and its title meanwhile).
    fn start_tutorial(&mut self, ctx: &Context<Self>, id: String) {
        self.starting = true;
        self.tutorial_error = None;
        let info_id = id.clone();
        ctx.link().send_future(async move {
            let info = api::scenario(&info_id).await;
            Msg::TutorialInfo(info_id, info)
        });
        ctx.link().send_future(async move {
            let result = api::create_tutorial_session(&id).await;
            Msg::TutorialStarted(id, result)
        });
    }

    /// The landing page's lists, unless already loaded.
    fn load_lists(&self, ctx: &Context<Self>) {
        if self.templates.is_empty() {
            ctx.link()
                .send_future(async { Msg::Templates(api::templates().await) });
        }
        if self.catalog.is_empty() {
            ctx.link()
                .send_future(async { Msg::Catalog(api::scenarios().await) });
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
        Settings::load().apply();
        let route = Route::current();
        let mut app = App {
            route: route.clone(),
            initial: None,
            ended: false,
            starting: false,
            templates: Vec::new(),
            catalog: Vec::new(),
            tutorial_info: None,
            tutorial_error: None,
            error: None,
            code: String::new(),
            _popstate: popstate,
        };
        match route {
            Route::Landing => match template_param() {
                // A tutorial's link: start that template at once.
                Some(name) => ctx.link().send_message(Msg::StartTemplate(name)),
                None => app.load_lists(ctx),
            },
            Route::Tutorial(id) => app.start_tutorial(ctx, id),
            Route::Session(_)
            | Route::View(_)
            | Route::Join(_)
            | Route::Classes
            | Route::Class(_) => {}
        }
        app
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
            Msg::StartTemplate(name) => {
                if self.starting {
                    return false;
                }
                self.starting = true;
                ctx.link().send_future(async move {
                    Msg::Started(api::create_session_from(&name).await)
                });
            }
            // A server without templates answers 404: no chooser then.
            Msg::Templates(result) => self.templates = result.unwrap_or_default(),
            Msg::Started(result) => {
                self.starting = false;
                match result {
                    Ok(info) => {
                        self.error = None;
                        self.ended = false;
                        self.navigate(Route::Session(info.id.clone()));
                        self.initial = Some(info);
                    }
                    Err(e) => {
                        self.error = Some(format!("Could not start a session: {e}"));
                        self.load_lists(ctx);
                    }
                }
            }
            // A server without tutorials answers 404: no list then.
            Msg::Catalog(result) => self.catalog = result.unwrap_or_default(),
            Msg::OpenTutorial(id) => {
                if self.starting {
                    return false;
                }
                self.navigate(Route::Tutorial(id.clone()));
                self.start_tutorial(ctx, id);
            }
            Msg::TutorialInfo(id, result) => match result {
                Ok(info) if self.route == Route::Tutorial(id) => self.tutorial_info = Some(info),
                _ => return false,
            },
            Msg::TutorialStarted(id, result) => {
                self.starting = false;
                if self.route != Route::Tutorial(id) {
                    // The user went elsewhere meanwhile; the session expires by itself.
                    return false;
                }
                match result {
                    Ok(info) => {
                        // Replace, not push: Back should not start it again.
                        let route = Route::Session(info.id.clone());
                        if let Ok(history) = window().history() {
                            let _ = history.replace_state_with_url(
                                &JsValue::NULL,
                                "",
                                Some(&route.path()),
                            );
                        }
                        self.route = route;
                        self.ended = false;
                        self.initial = Some(info);
                    }
                    Err(e) => self.tutorial_error = Some(e.message),
                }
            }
            Msg::PopState => {
                self.route = Route::current();
                match self.route.clone() {
                    Route::Landing => self.load_lists(ctx),
                    Route::Tutorial(id) => self.start_tutorial(ctx, id),
                    Route::Session(_)
                    | Route::View(_)
                    | Route::Join(_)
                    | Route::Classes
                    | Route::Class(_) => {}
                }
                self.initial = None;
                self.ended = false;
            }
            Msg::CodeInput(text) => {
                self.code = clean_code(&text);
                return false;
            }
            Msg::JoinCode => {
                if self.code.is_empty() {
                    return false;
                }
                self.navigate(Route::Join(self.code.to_uppercase()));
            }
            Msg::Joined(info) => {
                // Replace, not push: Back should not join again.
                let route = Route::Session(info.id.clone());
                if let Ok(history) = window().history() {
                    let _ = history.replace_state_with_url(&JsValue::NULL, "", Some(&route.path()));
                }
                self.route = route;
                self.ended = false;
                self.initial = Some(info);
            }
            Msg::Go(route) => self.navigate(route),
            Msg::SessionEnded => self.ended = true,
            Msg::SessionClosed => {
                self.initial = None;
                self.ended = false;
                self.navigate(Route::Landing);
                self.load_lists(ctx);
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
            (Route::Tutorial(id), _) => self.tutorial_start(ctx, id),
            (Route::Join(code), _) => html! {
                <JoinPage key={code.clone()} code={code.clone()}
                    on_joined={ctx.link().callback(Msg::Joined)} />
            },
            (Route::Classes, _) => html! {
                <ClassesPage on_open={ctx.link().callback(|id| Msg::Go(Route::Class(id)))} />
            },
            (Route::Class(id), _) => html! {
                <ClassDashboard key={id.clone()} id={id.clone()}
                    on_list={ctx.link().callback(|_| Msg::Go(Route::Classes))} />
            },
            (Route::Session(_) | Route::View(_), true) => self.ended(ctx),
            (Route::View(vid), false) => html! {
                <SessionPage key={format!("view/{vid}")} sid={vid.clone()} view=true
                    on_error={ctx.link().callback(Msg::Error)}
                    on_ended={ctx.link().callback(|_| Msg::SessionEnded)}
                    on_closed={ctx.link().callback(|_| Msg::SessionClosed)} />
            },
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
