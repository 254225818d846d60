//! `/classes/{id}`: the instructor's dashboard for one class. The join
//! link and code large enough to project, the seats taken, the progress per
//! step, the roster, and the chosen student's terminal; kept live by the
//! roster's long poll (`?since=<version>&wait=25`). Broadcast, extend, end
//! and the roster as CSV are its buttons.

use std::collections::HashMap;

use gloo_timers::callback::{Interval, Timeout};
use playground_protocol::{ClassInfo, ClassState, HelpGrant, HelpState, Roster};
use wasm_bindgen::JsCast;
use web_sys::HtmlInputElement;
use yew::prelude::*;

use super::progress::ClassProgress;
use super::roster::RosterTable;
use super::text::{cpu_percent, state_label};
use super::watch::WatchPanel;
use super::{absolute, api, clock_time, instructor_token, local_time};
use crate::api::ApiResult;

/// After a failed poll, try again this much later.
const RETRY_MS: u32 = 3_000;

#[derive(Properties, PartialEq)]
pub struct DashboardProps {
    pub id: String,
    /// Back to the list of classes (also where the token is asked for).
    pub on_list: Callback<()>,
}

pub enum Msg {
    Poll,
    Roster(ApiResult<Roster>),
    Tick,
    Select(String),
    CloseWatch,
    Help(String),
    HelpGranted(String, ApiResult<HelpGrant>),
    StopHelp(String),
    HelpStopped(String, ApiResult<()>),
    BroadcastInput(String),
    Broadcast,
    Broadcasted(ApiResult<()>),
    Extend,
    Extended(ApiResult<ClassInfo>),
    AskEnd(bool),
    End,
    Ended(ApiResult<()>),
    Csv,
    CsvReady(ApiResult<String>),
    DismissError,
}

pub struct ClassDashboard {
    token: Option<String>,
    roster: Option<Roster>,
    /// Why the roster cannot be shown (wrong token, unknown class).
    fatal: Option<String>,
    /// The last failed action, shown until dismissed.
    error: Option<String>,
    /// CPU seconds and when, per student: the previous sample.
    samples: HashMap<String, (f64, f64)>,
    cpu: HashMap<String, f64>,
    selected: Option<String>,
    help_keys: HashMap<String, String>,
    /// Per student, the roster version from which a request to help shows:
    /// an older roster (already on its way when we asked) is not news of it.
    help_since: HashMap<String, u64>,
    notices: HashMap<String, String>,
    asking: bool,
    message: String,
    sending: bool,
    sent: Option<String>,
    confirm_end: bool,
    busy: bool,
    /// Said after Extend worked.
    extended: Option<String>,
    now: u64,
    _retry: Option<Timeout>,
    _tick: Interval,
}

impl ClassDashboard {
    fn poll(&self, ctx: &Context<Self>) {
        let Some(token) = self.token.clone() else {
            return;
        };
        let id = ctx.props().id.clone();
        let since = self.roster.as_ref().map(|r| r.version);
        ctx.link()
            .send_future(async move { Msg::Roster(api::roster(&token, &id, since).await) });
    }

    /// Take a new roster: CPU rates, and what happened to help.
    fn apply(&mut self, mut roster: Roster) {
        let now = js_sys::Date::now();
        // A roster older than our request to help keeps the help we know of.
        let known: HashMap<String, HelpState> = (self.roster.iter())
            .flat_map(|r| r.students.iter().map(|s| (s.id.clone(), s.help)))
            .collect();
        for s in &mut roster.students {
            if self
                .help_since
                .get(&s.id)
                .is_some_and(|&v| roster.version < v)
            {
                s.help = known.get(&s.id).copied().unwrap_or(s.help);
            }
        }
        for s in &roster.students {
            let sample = (s.cpu_seconds, now);
            if let Some(before) = self.samples.get(&s.id) {
                match cpu_percent(*before, sample) {
                    Some(p) => {
                        self.cpu.insert(s.id.clone(), p);
                    }
                    // Too soon for a rate: keep the older sample.
                    None if now - before.1 < 500.0 => continue,
                    None => {
                        self.cpu.remove(&s.id);
                    }
                }
            }
            self.samples.insert(s.id.clone(), sample);
        }
        let before: HashMap<String, HelpState> = self
            .roster
            .as_ref()
            .map(|r| r.students.iter().map(|s| (s.id.clone(), s.help)).collect())
            .unwrap_or_default();
        for s in &roster.students {
            let was = before.get(&s.id).copied().unwrap_or(HelpState::None);
            if s.help == HelpState::None && self.help_keys.contains_key(&s.id) {
                self.help_keys.remove(&s.id);
                let note = match was {
                    HelpState::Active => {
                        format!("Help ended: {}'s terminal is read-only again.", s.name)
                    }
                    HelpState::Requested => format!("{} declined help.", s.name),
                    HelpState::None => continue,
                };
                self.notices.insert(s.id.clone(), note);
            } else if s.help == HelpState::Active && was != HelpState::Active {
                self.notices.remove(&s.id);
            }
        }
        self.roster = Some(roster);
    }

    fn join_card(&self, class: &ClassInfo) -> Html {
        let link = absolute(&class.join_path);
        let origin = link
            .strip_suffix(&class.join_path)
            .unwrap_or_default()
            .to_owned();
        html! {
            <section id="join-card" class="panel join-big">
                <span class="join-big-label">{ "Join at" }</span>
                <a id="join-link" class="join-big-link" href={link} target="_blank">
                    // Broken after the host if need be, never inside the code.
                    { origin }<wbr /><span class="join-big-path">{ class.join_path.clone() }</span>
                </a>
                <span class="join-big-label">{ "or type the code" }</span>
                <span id="join-code" class="join-big-code">{ class.code.clone() }</span>
                <div class="join-big-meta">
                    <span id="seats-joined" class="seats-joined">
                        <strong>{ class.joined }</strong>{ format!(" of {} seats taken", class.seats) }
                    </span>
                    if let Some(end) = &class.ends_at {
                        <span id="class-ends">{ format!("Ends {}", local_time(end)) }</span>
                    }
                    if let (ClassState::Scheduled, Some(start)) = (class.state, &class.starts_at) {
                        <span>{ format!("Opens {}", local_time(start)) }</span>
                    }
                </div>
                if let Some(note) = &self.extended {
                    <span id="class-extended" class="muted small">{ note.clone() }</span>
                }
            </section>
        }
    }

    fn broadcast_panel(&self, ctx: &Context<Self>, class: &ClassInfo) -> Html {
        let oninput = ctx.link().callback(|e: InputEvent| {
            Msg::BroadcastInput(e.target_unchecked_into::<HtmlInputElement>().value())
        });
        let onsubmit = ctx.link().callback(|e: SubmitEvent| {
            e.prevent_default();
            Msg::Broadcast
        });
        let ended = class.state == ClassState::Ended;
        html! {
            <form id="broadcast-form" class="panel broadcast" {onsubmit}>
                <h2>{ "Message to everyone" }</h2>
                <div class="join-row">
                    <input id="broadcast-input" class="text-input" type="text" maxlength="500"
                        placeholder="e.g. Five more minutes on step 2" value={self.message.clone()}
                        {oninput} disabled={ended} />
                    <button id="broadcast-send" type="submit" class="btn btn-primary"
                            disabled={self.sending || ended || self.message.trim().is_empty()}>{ "Send" }</button>
                </div>
                if let Some(sent) = &self.sent {
                    <span id="broadcast-sent" class="muted small">{ sent.clone() }</span>
                }
            </form>
        }
    }
}

impl Component for ClassDashboard {
    type Message = Msg;
    type Properties = DashboardProps;

    fn create(ctx: &Context<Self>) -> Self {
        let link = ctx.link().clone();
        let tick = Interval::new(5_000, move || link.send_message(Msg::Tick));
        let token = instructor_token();
        let page = ClassDashboard {
            fatal: token
                .is_none()
                .then(|| "Sign in with your instructor token first.".to_owned()),
            token,
            roster: None,
            error: None,
            samples: HashMap::new(),
            cpu: HashMap::new(),
            selected: None,
            help_keys: HashMap::new(),
            help_since: HashMap::new(),
            notices: HashMap::new(),
            asking: false,
            message: String::new(),
            sending: false,
            sent: None,
            confirm_end: false,
            busy: false,
            extended: None,
            now: 0,
            _retry: None,
            _tick: tick,
        };
        page.poll(ctx);
        page
    }

    fn update(&mut self, ctx: &Context<Self>, msg: Msg) -> bool {
        let token = self.token.clone().unwrap_or_default();
        let id = ctx.props().id.clone();
        let link = ctx.link();
        match msg {
            Msg::Poll => {
                self.poll(ctx);
                return false;
            }
            Msg::Roster(result) => match result {
                Ok(roster) => {
                    self.apply(roster);
                    self.poll(ctx);
                }
                Err(e) if matches!(e.status, Some(401 | 403 | 404)) => {
                    self.fatal = Some(e.message);
                }
                Err(_) => {
                    let link = link.clone();
                    self._retry =
                        Some(Timeout::new(RETRY_MS, move || link.send_message(Msg::Poll)));
                    return false;
                }
            },
            Msg::Tick => self.now += 1,
            Msg::Select(student) => {
                self.selected = Some(student);
            }
            Msg::CloseWatch => self.selected = None,
            Msg::Help(student) => {
                self.asking = true;
                self.notices.remove(&student);
                link.send_future(async move {
                    let r = api::request_help(&token, &id, &student).await;
                    Msg::HelpGranted(student, r)
                });
            }
            Msg::HelpGranted(student, result) => {
                self.asking = false;
                match result {
                    Ok(grant) => {
                        self.help_keys.insert(student.clone(), grant.key);
                        self.help_since.insert(student.clone(), grant.version);
                        // The roster's next version says so too; show it now.
                        if let Some(row) = self
                            .roster
                            .as_mut()
                            .and_then(|r| r.students.iter_mut().find(|s| s.id == student))
                        {
                            row.help = grant.state;
                        }
                    }
                    Err(e) => self.error = Some(format!("Could not ask to help: {e}")),
                }
            }
            Msg::StopHelp(student) => {
                link.send_future(async move {
                    let r = api::end_help(&token, &id, &student).await;
                    Msg::HelpStopped(student, r)
                });
                return false;
            }
            Msg::HelpStopped(student, result) => {
                if let Err(e) = result {
                    self.error = Some(format!("Could not stop helping: {e}"));
                } else if let Some(row) = self
                    .roster
                    .as_mut()
                    .and_then(|r| r.students.iter_mut().find(|s| s.id == student))
                {
                    self.help_keys.remove(&student);
                    if row.help == HelpState::Active {
                        self.notices.insert(
                            student,
                            "You stopped helping: the terminal is read-only again.".to_owned(),
                        );
                    }
                    row.help = HelpState::None;
                }
            }
            Msg::BroadcastInput(text) => {
                self.message = text;
                self.sent = None;
            }
            Msg::Broadcast => {
                let text = self.message.trim().to_owned();
                if text.is_empty() || self.sending {
                    return false;
                }
                self.sending = true;
                link.send_future(async move {
                    Msg::Broadcasted(api::broadcast(&token, &id, &text).await)
                });
            }
            Msg::Broadcasted(result) => {
                self.sending = false;
                match result {
                    Ok(()) => {
                        let at = clock_time(&String::from(js_sys::Date::new_0().to_iso_string()));
                        self.sent = Some(format!("Sent to every student at {at}."));
                        self.message.clear();
                    }
                    Err(e) => self.error = Some(format!("The message was not sent: {e}")),
                }
            }
            Msg::Extend => {
                self.busy = true;
                link.send_future(async move { Msg::Extended(api::extend(&token, &id).await) });
            }
            Msg::Extended(result) => {
                self.busy = false;
                match result {
                    Ok(class) => {
                        let at = clock_time(&String::from(js_sys::Date::new_0().to_iso_string()));
                        self.extended = Some(match &class.ends_at {
                            Some(end) => {
                                format!("Extended at {at}: the class now ends {}.", local_time(end))
                            }
                            None => {
                                format!("Extended at {at}: every student's session has more time.")
                            }
                        });
                        if let Some(r) = &mut self.roster {
                            r.class = class;
                        }
                    }
                    Err(e) => self.error = Some(format!("Could not extend the class: {e}")),
                }
            }
            Msg::AskEnd(on) => self.confirm_end = on,
            Msg::End => {
                self.confirm_end = false;
                self.busy = true;
                link.send_future(async move { Msg::Ended(api::end(&token, &id).await) });
            }
            Msg::Ended(result) => {
                self.busy = false;
                match result {
                    Ok(()) => {
                        if let Some(r) = &mut self.roster {
                            r.class.state = ClassState::Ended;
                        }
                    }
                    Err(e) => self.error = Some(format!("Could not end the class: {e}")),
                }
            }
            Msg::Csv => {
                link.send_future(async move { Msg::CsvReady(api::csv(&token, &id).await) });
                return false;
            }
            Msg::CsvReady(result) => match result {
                Ok(text) => {
                    let code = self
                        .roster
                        .as_ref()
                        .map(|r| r.class.code.clone())
                        .unwrap_or_default();
                    if let Err(e) = download(&format!("class-{code}.csv"), &text) {
                        self.error = Some(e);
                    } else {
                        return false;
                    }
                }
                Err(e) => self.error = Some(format!("Could not get the CSV: {e}")),
            },
            Msg::DismissError => self.error = None,
        }
        true
    }

    fn view(&self, ctx: &Context<Self>) -> Html {
        let link = ctx.link();
        let back = ctx
            .props()
            .on_list
            .reform(|e: MouseEvent| e.prevent_default());
        let header = |title: Html, actions: Html| {
            html! {
                <header class="topbar">
                    <a class="brand" href="/"><span class="brand-mark">{ ">_" }</span>{ "Playground" }</a>
                    <a class="topbar-link" href="/classes" onclick={back.clone()}>{ "Classes" }</a>
                    <span class="topbar-sep">{ "/" }</span>
                    { title }
                    <span class="spacer"></span>
                    { actions }
                </header>
            }
        };
        if let Some(fatal) = &self.fatal {
            return html! {
                <div class="page">
                    { header(html! {}, html! {}) }
                    <main class="classes-page">
                        <div id="dashboard-error" class="start-error" role="alert"><span>{ fatal.clone() }</span></div>
                        <a class="btn btn-secondary" href="/classes" onclick={back.clone()}>{ "Your classes" }</a>
                    </main>
                </div>
            };
        }
        let Some(roster) = &self.roster else {
            return html! {
                <div class="page">
                    { header(html! {}, html! {}) }
                    <main class="classes-page"><div class="panel"><span class="spinner"></span>{ "Loading the class…" }</div></main>
                </div>
            };
        };
        let class = &roster.class;
        let ended = class.state == ClassState::Ended;
        let title = html! {
            <>
                <span id="class-title" class="topbar-title">{ class.title.clone() }</span>
                <span id="class-state" class={classes!("state-pill", state_label(class.state).to_lowercase())}>{ state_label(class.state) }</span>
            </>
        };
        let actions = html! {
            <>
                <button id="download-csv" class="btn btn-secondary btn-sm" onclick={link.callback(|_| Msg::Csv)}>{ "Download CSV" }</button>
                if !ended {
                    <button id="extend-class" class="btn btn-secondary btn-sm" disabled={self.busy}
                            onclick={link.callback(|_| Msg::Extend)}>{ "Extend" }</button>
                    if self.confirm_end {
                        <span class="confirm">
                            { "End for everyone?" }
                            <button id="end-class-confirm" class="btn btn-outline-danger btn-sm" onclick={link.callback(|_| Msg::End)}>{ "End class" }</button>
                            <button class="btn btn-secondary btn-sm" onclick={link.callback(|_| Msg::AskEnd(false))}>{ "Keep" }</button>
                        </span>
                    } else {
                        <button id="end-class" class="btn btn-outline-danger btn-sm" disabled={self.busy}
                                onclick={link.callback(|_| Msg::AskEnd(true))}>{ "End class" }</button>
                    }
                }
            </>
        };
        let watch = self.selected.as_ref().and_then(|sel| {
            let student = roster.students.iter().find(|s| &s.id == sel)?.clone();
            let id = student.id.clone();
            let stop = id.clone();
            let help_key = self.help_keys.get(&id).cloned();
            let notice = self.notices.get(&id).cloned();
            let key = id.clone();
            Some(html! {
                <WatchPanel {key} {student} {help_key} {notice} asking={self.asking}
                    on_help={link.callback(move |_| Msg::Help(id.clone()))}
                    on_stop_help={link.callback(move |_| Msg::StopHelp(stop.clone()))}
                    on_close={link.callback(|_| Msg::CloseWatch)} />
            })
        });
        html! {
            <div class="page">
                { header(title, actions) }
                if let Some(e) = &self.error {
                    <div id="error-banner" class="error-banner" role="alert">
                        <span class="error-icon">{ "!" }</span>
                        <span class="error-text">{ e.clone() }</span>
                        <button class="dismiss" title="Dismiss" aria-label="Dismiss"
                                onclick={link.callback(|_| Msg::DismissError)}>{ "×" }</button>
                    </div>
                }
                <main class={classes!("dashboard", watch.is_some().then_some("watching"))}>
                    <div class="dashboard-side">
                        { self.join_card(class) }
                        <ClassProgress steps={roster.steps.clone()} students={class.joined} />
                        { self.broadcast_panel(ctx, class) }
                    </div>
                    <div class="dashboard-main">
                        <section class="panel roster-panel">
                            <div class="panel-head">
                                <h2>{ "Students" }</h2>
                                <span class="muted small">{ "Click a student to watch their terminal." }</span>
                            </div>
                            <RosterTable students={roster.students.clone()} steps={roster.steps.clone()}
                                cpu={self.cpu.clone()} selected={self.selected.clone()} now={self.now}
                                on_select={link.callback(Msg::Select)} />
                        </section>
                        { for watch }
                    </div>
                </main>
            </div>
        }
    }
}

/// Offer `text` as a file download (a blob link clicked once).
fn download(name: &str, text: &str) -> Result<(), String> {
    let parts = js_sys::Array::of1(&text.into());
    let options = web_sys::BlobPropertyBag::new();
    options.set_type("text/csv");
    let blob = web_sys::Blob::new_with_str_sequence_and_options(&parts, &options)
        .map_err(|_| "Could not make the CSV file.".to_owned())?;
    let url = web_sys::Url::create_object_url_with_blob(&blob)
        .map_err(|_| "Could not make the CSV link.".to_owned())?;
    let document = web_sys::window()
        .and_then(|w| w.document())
        .ok_or("no document")?;
    let a: web_sys::HtmlAnchorElement = document
        .create_element("a")
        .map_err(|_| "no link")?
        .unchecked_into();
    a.set_href(&url);
    a.set_download(name);
    a.click();
    // Revoked a little later: the download starts after this task.
    Timeout::new(10_000, move || {
        let _ = web_sys::Url::revoke_object_url(&url);
    })
    .forget();
    Ok(())
}
