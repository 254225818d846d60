//! `/classes`: the instructor's page. Asks for the instructor token once
//! (kept in this browser until "Forget token"), lists the instructor's
//! classes and creates new ones of a template or a scenario.

use playground_protocol::{CatalogEntry, ClassInfo, CreateClass, ScenarioSummary, TemplateInfo};
use wasm_bindgen::JsCast;
use web_sys::{HtmlInputElement, HtmlSelectElement};
use yew::prelude::*;

use super::text::state_label;
use super::{api, instructor_token, local_time, set_instructor_token};
use crate::api::{self as base, ApiResult};

#[derive(Properties, PartialEq)]
pub struct ClassesProps {
    /// Open a class's dashboard.
    pub on_open: Callback<String>,
}

/// A field of the form.
#[derive(Clone, Copy)]
pub enum Field {
    Token,
    Title,
    Kind,
    Seats,
    Starts,
    Ends,
}

pub enum Msg {
    Input(Field, String),
    SaveToken,
    Forget,
    Listed(ApiResult<Vec<ClassInfo>>),
    Templates(ApiResult<Vec<TemplateInfo>>),
    Scenarios(ApiResult<Vec<CatalogEntry>>),
    Create,
    Created(ApiResult<ClassInfo>),
}

pub struct ClassesPage {
    token: Option<String>,
    token_input: String,
    classes: Option<Vec<ClassInfo>>,
    error: Option<String>,
    templates: Vec<TemplateInfo>,
    scenarios: Vec<ScenarioSummary>,
    title: String,
    /// `template:<name>` or `scenario:<id>`.
    kind: String,
    seats: String,
    starts: String,
    ends: String,
    creating: bool,
    create_error: Option<String>,
}

fn flatten(entries: Vec<CatalogEntry>, out: &mut Vec<ScenarioSummary>) {
    for e in entries {
        match e {
            CatalogEntry::Scenario(s) => out.push(s),
            CatalogEntry::Course { entries, .. } => flatten(entries, out),
        }
    }
}

/// A `datetime-local` value as RFC 3339 (the browser knows the time zone).
fn to_rfc3339(local: &str) -> Option<String> {
    let local = local.trim();
    if local.is_empty() {
        return None;
    }
    let date = js_sys::Date::new(&local.into());
    if date.get_time().is_nan() {
        return Some(local.to_owned());
    }
    Some(String::from(date.to_iso_string()))
}

impl ClassesPage {
    fn load(&self, ctx: &Context<Self>) {
        if let Some(token) = self.token.clone() {
            ctx.link()
                .send_future(async move { Msg::Listed(api::list(&token).await) });
        }
    }

    fn token_form(&self, ctx: &Context<Self>) -> Html {
        let oninput = ctx.link().callback(|e: InputEvent| {
            Msg::Input(
                Field::Token,
                e.target_unchecked_into::<HtmlInputElement>().value(),
            )
        });
        let onsubmit = ctx.link().callback(|e: SubmitEvent| {
            e.prevent_default();
            Msg::SaveToken
        });
        html! {
            <form id="token-form" class="panel token-panel" {onsubmit}>
                <h2>{ "Instructor sign-in" }</h2>
                <p class="muted">{ "Paste the instructor token your playground's operator gave you. This browser keeps it until you choose “Forget token”." }</p>
                <div class="join-row">
                    <input id="token-input" class="text-input" type="password" autocomplete="off"
                        placeholder="Instructor token" value={self.token_input.clone()} {oninput} />
                    <button id="token-save" type="submit" class="btn btn-primary">{ "Continue" }</button>
                </div>
            </form>
        }
    }

    fn class_list(&self, ctx: &Context<Self>) -> Html {
        let Some(classes) = &self.classes else {
            return html! { <div class="panel"><span class="spinner"></span>{ "Loading your classes…" }</div> };
        };
        let rows = classes.iter().rev().map(|c| {
            let id = c.id.clone();
            let href = format!("/classes/{}", c.id);
            let open = ctx.props().on_open.reform(move |e: MouseEvent| {
                e.prevent_default();
                id.clone()
            });
            // The tutorial's or template's title, when the server lists it.
            let what = match (&c.scenario, &c.template) {
                (Some(id), _) => (self.scenarios.iter().find(|s| &s.id == id))
                    .map_or_else(|| id.clone(), |s| s.title.clone()),
                (None, Some(name)) => (self.templates.iter().find(|t| &t.name == name))
                    .map_or_else(|| name.clone(), |t| t.title.clone()),
                (None, None) => String::new(),
            };
            html! {
                <a class="class-row" {href} onclick={open} data-class={c.id.clone()}>
                    <span class="class-row-title">{ c.title.clone() }</span>
                    <span class="class-row-what">{ what }</span>
                    <span class="class-row-code">{ c.code.clone() }</span>
                    <span class="class-row-seats">{ format!("{} / {} joined", c.joined, c.seats) }</span>
                    <span class={classes!("state-pill", state_label(c.state).to_lowercase())}>{ state_label(c.state) }</span>
                </a>
            }
        });
        html! {
            <section class="panel">
                <h2>{ "Your classes" }</h2>
                if classes.is_empty() {
                    <p class="muted">{ "No classes yet: create one below." }</p>
                } else {
                    <div id="class-list" class="class-list">{ for rows }</div>
                }
            </section>
        }
    }

    fn create_form(&self, ctx: &Context<Self>) -> Html {
        let input = |field: Field| {
            ctx.link().callback(move |e: InputEvent| {
                Msg::Input(field, e.target_unchecked_into::<HtmlInputElement>().value())
            })
        };
        let onchange = ctx.link().callback(|e: Event| {
            let select = e
                .target()
                .and_then(|t| t.dyn_into::<HtmlSelectElement>().ok());
            Msg::Input(Field::Kind, select.map(|s| s.value()).unwrap_or_default())
        });
        let onsubmit = ctx.link().callback(|e: SubmitEvent| {
            e.prevent_default();
            Msg::Create
        });
        let scenarios = self.scenarios.iter().map(|s| {
            let value = format!("scenario:{}", s.id);
            let selected = self.kind == value;
            html! { <option {selected} {value}>{ format!("{} ({})", s.title, s.hosts.join(", ")) }</option> }
        });
        let templates = self.templates.iter().map(|t| {
            let value = format!("template:{}", t.name);
            let selected = self.kind == value;
            html! { <option {selected} {value}>{ t.title.clone() }</option> }
        });
        html! {
            <form id="create-class" class="panel create-form" {onsubmit}>
                <h2>{ "New class" }</h2>
                <div class="form-grid">
                    <label>
                        <span>{ "Title" }</span>
                        <input id="class-title" class="text-input" type="text" maxlength="100"
                            placeholder="e.g. Containers 101, Tuesday" value={self.title.clone()}
                            oninput={input(Field::Title)} />
                    </label>
                    <label>
                        <span>{ "Lab" }</span>
                        <select id="class-kind" class="text-input" {onchange}>
                            <option value="" selected={self.kind.is_empty()}>{ "Choose a tutorial or template…" }</option>
                            if !self.scenarios.is_empty() {
                                <optgroup label="Tutorials (progress is followed)">{ for scenarios }</optgroup>
                            }
                            if !self.templates.is_empty() {
                                <optgroup label="Templates">{ for templates }</optgroup>
                            }
                        </select>
                    </label>
                    <label>
                        <span>{ "Seats" }</span>
                        <input id="class-seats" class="text-input" type="number" min="1" max="500"
                            value={self.seats.clone()} oninput={input(Field::Seats)} />
                    </label>
                    <label>
                        <span>{ "Opens (optional)" }</span>
                        <input id="class-starts" class="text-input" type="datetime-local"
                            value={self.starts.clone()} oninput={input(Field::Starts)} />
                    </label>
                    <label>
                        <span>{ "Ends (optional)" }</span>
                        <input id="class-ends" class="text-input" type="datetime-local"
                            value={self.ends.clone()} oninput={input(Field::Ends)} />
                    </label>
                </div>
                if let Some(e) = &self.create_error {
                    <div id="create-error" class="start-error" role="alert">
                        <strong>{ "The class was not created." }</strong><span>{ e.clone() }</span>
                    </div>
                }
                <div class="form-actions">
                    <span class="muted">{ "Every seat's machines are reserved on the server when you create the class." }</span>
                    <button id="create-button" type="submit" class="btn btn-primary" disabled={self.creating}>
                        if self.creating { <span class="spinner"></span>{ "Creating…" } } else { { "Create class" } }
                    </button>
                </div>
            </form>
        }
    }
}

impl Component for ClassesPage {
    type Message = Msg;
    type Properties = ClassesProps;

    fn create(ctx: &Context<Self>) -> Self {
        ctx.link()
            .send_future(async { Msg::Templates(base::templates().await) });
        ctx.link()
            .send_future(async { Msg::Scenarios(base::scenarios().await) });
        let page = ClassesPage {
            token: instructor_token(),
            token_input: String::new(),
            classes: None,
            error: None,
            templates: Vec::new(),
            scenarios: Vec::new(),
            title: String::new(),
            kind: String::new(),
            seats: "10".to_owned(),
            starts: String::new(),
            ends: String::new(),
            creating: false,
            create_error: None,
        };
        page.load(ctx);
        page
    }

    fn update(&mut self, ctx: &Context<Self>, msg: Msg) -> bool {
        match msg {
            Msg::Input(field, value) => {
                match field {
                    Field::Token => self.token_input = value,
                    Field::Title => self.title = value,
                    Field::Kind => self.kind = value,
                    Field::Seats => self.seats = value,
                    Field::Starts => self.starts = value,
                    Field::Ends => self.ends = value,
                }
                return self.create_error.take().is_some();
            }
            Msg::SaveToken => {
                let token = self.token_input.trim().to_owned();
                if token.is_empty() {
                    return false;
                }
                self.error = None;
                self.token = Some(token);
                self.classes = None;
                self.load(ctx);
            }
            Msg::Forget => {
                set_instructor_token(None);
                self.token = None;
                self.token_input.clear();
                self.classes = None;
            }
            Msg::Listed(result) => match result {
                Ok(list) => {
                    // The token works: keep it.
                    if let Some(t) = &self.token {
                        set_instructor_token(Some(t));
                    }
                    self.classes = Some(list);
                }
                Err(e) => {
                    if matches!(e.status, Some(401 | 403)) {
                        set_instructor_token(None);
                        self.token = None;
                    }
                    self.error = Some(e.message);
                }
            },
            Msg::Templates(r) => self.templates = r.unwrap_or_default(),
            Msg::Scenarios(r) => {
                let mut list = Vec::new();
                flatten(r.unwrap_or_default(), &mut list);
                self.scenarios = list;
            }
            Msg::Create => {
                let (Some(token), false) = (self.token.clone(), self.creating) else {
                    return false;
                };
                let seats = match self.seats.trim().parse::<u32>() {
                    Ok(n) if n > 0 => n,
                    _ => {
                        self.create_error = Some("Seats: a whole number from 1.".to_owned());
                        return true;
                    }
                };
                let (template, scenario) = match self.kind.split_once(':') {
                    Some(("template", t)) => (Some(t.to_owned()), None),
                    Some(("scenario", s)) => (None, Some(s.to_owned())),
                    _ => {
                        self.create_error = Some("Choose a tutorial or a template.".to_owned());
                        return true;
                    }
                };
                let body = CreateClass {
                    title: self.title.trim().to_owned(),
                    template,
                    scenario,
                    seats,
                    starts_at: to_rfc3339(&self.starts),
                    ends_at: to_rfc3339(&self.ends),
                };
                self.creating = true;
                self.create_error = None;
                ctx.link()
                    .send_future(async move { Msg::Created(api::create(&token, &body).await) });
            }
            Msg::Created(result) => {
                self.creating = false;
                match result {
                    Ok(class) => {
                        ctx.props().on_open.emit(class.id);
                        return false;
                    }
                    Err(e) => self.create_error = Some(e.message),
                }
            }
        }
        true
    }

    fn view(&self, ctx: &Context<Self>) -> Html {
        let signed_in = self.token.is_some();
        html! {
            <div class="page">
                <header class="topbar">
                    <a class="brand" href="/"><span class="brand-mark">{ ">_" }</span>{ "Playground" }</a>
                    <span class="topbar-title">{ "Classes" }</span>
                    <span class="spacer"></span>
                    if signed_in {
                        <button id="forget-token" class="btn btn-secondary btn-sm"
                                title="Remove the instructor token from this browser"
                                onclick={ctx.link().callback(|_| Msg::Forget)}>{ "Forget token" }</button>
                    }
                </header>
                <main class="classes-page">
                    if let Some(e) = &self.error {
                        <div id="classes-error" class="start-error" role="alert"><span>{ e.clone() }</span></div>
                    }
                    if signed_in {
                        { self.class_list(ctx) }
                        { self.create_form(ctx) }
                    } else {
                        { self.token_form(ctx) }
                    }
                    if let Some(c) = self.classes.as_ref().and_then(|l| l.last()) {
                        <p class="muted small">{ format!("Newest class created {}", local_time(&c.created_at)) }</p>
                    }
                </main>
            </div>
        }
    }
}
