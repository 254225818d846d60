//! The tutorial pane beside a tutorial session's terminals: the page shown
//! (title, HTML from `GET /api/scenarios/{id}`, fetched once), where the
//! learner is ("Step 2 of 3", a dot per page), Start / Check / Next and
//! Back, the hint of a failed check, and what clicks in the text do.
//!
//! The progress itself (`TutorialState`) belongs to the session page: it
//! arrives with the session and its `tutorial` events, and this pane reports
//! the answers of its own requests through `on_state` so the page need not
//! wait for the event.

mod clicks;
mod port_picker;
pub mod text;

use std::cell::Cell;

use gloo_timers::callback::Timeout;
use playground_protocol::{
    CheckResult, InstanceInfo, PageKind, ScenarioInfo, TutorialPage, TutorialState,
};
use web_sys::{Element, Event, KeyboardEvent};
use yew::prelude::*;

use super::format::fill_template;
use crate::api::{self, ApiResult};
use crate::terminal::clipboard;
use clicks::{classify, describe_actions, fill_traffic_links, flash, Click};
use port_picker::PortPicker;
use text::{
    command_input, fill_traffic, forward, heading_and_body, page_label, step_number, Forward,
};

/// How long "Step N done" stays.
const NOTICE_MS: u32 = 6_000;
/// Ctrl-C, for `{{exec interrupt}}`.
const CTRL_C: &str = "\u{3}";

/// Text for a terminal, from a click in the page.
#[derive(Clone, Debug, PartialEq)]
pub struct Exec {
    /// The instance whose terminal to type into; `None`: the one shown.
    pub instance: Option<String>,
    /// Ctrl-C to send first (and let the shell settle) before `input`.
    pub interrupt: Option<String>,
    pub input: String,
}

#[derive(Properties, PartialEq)]
pub struct TutorialProps {
    pub sid: AttrValue,
    /// A read-only view: the text, no buttons, nothing typed.
    pub view: bool,
    pub state: TutorialState,
    pub port_url_template: AttrValue,
    pub instances: Vec<InstanceInfo>,
    /// A newer state, from an answer of the server to this pane.
    pub on_state: Callback<TutorialState>,
    pub on_exec: Callback<Exec>,
    pub on_error: Callback<String>,
}

pub enum Msg {
    Loaded(ApiResult<ScenarioInfo>),
    /// Start, Check or Next.
    Forward,
    Checked(u32, ApiResult<CheckResult>),
    Open(u32),
    Opened(ApiResult<TutorialState>),
    /// A click in the page's text, or Enter on one of its commands.
    Click(Event),
    CloseSelector,
    HideNotice,
}

pub struct TutorialPane {
    scenario: Option<ScenarioInfo>,
    load_error: Option<String>,
    /// A check or page request is under way.
    busy: bool,
    /// The answer of the last Check (a failed one shows as the hint).
    check: Option<CheckResult>,
    notice: Option<String>,
    _notice_timer: Option<Timeout>,
    selector: bool,
    text_ref: NodeRef,
    scroll_ref: NodeRef,
    /// The page last drawn: a new one scrolls back to the top.
    drawn: Cell<Option<u32>>,
}

impl TutorialPane {
    fn pages(&self) -> &[TutorialPage] {
        self.scenario.as_ref().map_or(&[], |s| &s.pages)
    }

    /// The session's instance for host `n` (from 1): the scenario's hosts
    /// name the instances.
    fn host(&self, props: &TutorialProps, n: usize) -> Option<String> {
        let i = n.checked_sub(1)?;
        match &self.scenario {
            Some(s) => s.summary.hosts.get(i).cloned(),
            None => props.instances.get(i).map(|inst| inst.name.clone()),
        }
    }

    /// The address of port `port` of host `n`.
    fn port_link(&self, props: &TutorialProps, n: usize, port: u16) -> Option<String> {
        let name = self.host(props, n)?;
        if !props.port_url_template.is_empty() {
            return Some(fill_template(&props.port_url_template, &name, port));
        }
        let inst = props.instances.iter().find(|i| i.name == name)?;
        Some(inst.ports.iter().find(|p| p.port == port)?.url.clone())
    }

    fn click(&mut self, ctx: &Context<Self>, ev: Event) -> bool {
        let props = ctx.props();
        let Some(root) = self.text_ref.cast::<Element>() else {
            return false;
        };
        let click = classify(&ev, &root);
        if ev.type_() == "keydown" && matches!(click, Some(Click::Traffic { .. } | Click::Selector))
        {
            // Links answer Enter with a click of their own.
            return false;
        }
        match click {
            Some(Click::Exec {
                host,
                text,
                interrupt,
                element,
            }) => {
                ev.prevent_default();
                if props.view {
                    return false;
                }
                let text = fill_traffic(&text, |n, port| self.port_link(props, n, port));
                props.on_exec.emit(Exec {
                    instance: host.and_then(|n| self.host(props, n)),
                    interrupt: interrupt.then(|| CTRL_C.to_owned()),
                    input: command_input(&text),
                });
                flash(&element, "ran", 1_500);
                false
            }
            Some(Click::Copy { text, element }) => {
                ev.prevent_default();
                match clipboard() {
                    Some(c) => {
                        let _ = c.write_text(text.trim_end());
                        flash(&element, "copied", 1_500);
                    }
                    None => props
                        .on_error
                        .emit("This browser offers no clipboard here (it needs https).".into()),
                }
                false
            }
            Some(Click::Traffic {
                host,
                port,
                element,
            }) => {
                // Its address was filled in when drawn; fill it now if the
                // instances came later.
                match self.port_link(props, host, port) {
                    Some(url) => {
                        if element.get_attribute("href").as_deref() != Some(url.as_str()) {
                            ev.prevent_default();
                            if let Some(w) = web_sys::window() {
                                let _ = w.open_with_url_and_target(&url, "_blank");
                            }
                        }
                    }
                    None => {
                        ev.prevent_default();
                        props
                            .on_error
                            .emit(format!("This session has no link for port {port}."));
                    }
                }
                false
            }
            Some(Click::Selector) => {
                ev.prevent_default();
                self.selector = !self.selector;
                true
            }
            None => false,
        }
    }

    fn forward(&mut self, ctx: &Context<Self>) -> bool {
        let state = &ctx.props().state;
        let action = forward(self.pages(), state.page as usize, state.reached as usize);
        if self.busy || ctx.props().view {
            return false;
        }
        match action {
            Forward::None => return false,
            Forward::Reopen => return self.open(ctx, state.page + 1),
            Forward::Start | Forward::Check | Forward::Next => {}
        }
        self.busy = true;
        let (sid, page) = (ctx.props().sid.to_string(), state.page);
        ctx.link().send_future(async move {
            let result = api::tutorial_check(&sid).await;
            Msg::Checked(page, result)
        });
        true
    }

    fn checked(&mut self, ctx: &Context<Self>, page: u32, result: ApiResult<CheckResult>) -> bool {
        self.busy = false;
        let result = match result {
            Ok(r) => r,
            Err(e) => {
                ctx.props()
                    .on_error
                    .emit(format!("Could not check the step: {e}"));
                return true;
            }
        };
        let state = &ctx.props().state;
        if !result.passed {
            self.check = Some(result);
            return true;
        }
        self.check = None;
        // What the server did on a pass, unless its event came first.
        if state.page == page {
            let last = self.pages().len().saturating_sub(1) as u32;
            let last_step = self
                .pages()
                .iter()
                .rposition(|p| p.kind == PageKind::Step)
                .map(|i| i as u32);
            let mut next = state.clone();
            next.page = (page + 1).min(last);
            next.reached = next.reached.max(next.page);
            next.finished |= Some(page) == last_step;
            next.last_check = Some(result);
            ctx.props().on_state.emit(next);
        }
        true
    }

    fn open(&mut self, ctx: &Context<Self>, page: u32) -> bool {
        if self.busy || ctx.props().view || page == ctx.props().state.page {
            return false;
        }
        self.busy = true;
        let sid = ctx.props().sid.to_string();
        ctx.link()
            .send_future(async move { Msg::Opened(api::tutorial_open(&sid, page).await) });
        true
    }

    /// "Step N done" for a step passed between `old` and `new`.
    fn passed_notice(&self, old: &TutorialState, new: &TutorialState) -> Option<String> {
        let pages = self.pages();
        let passed = if new.reached > old.reached {
            new.reached as usize - 1
        } else if new.finished && !old.finished {
            pages.iter().rposition(|p| p.kind == PageKind::Step)?
        } else {
            return None;
        };
        (pages.get(passed)?.kind == PageKind::Step)
            .then(|| format!("Step {} done", step_number(pages, passed)))
    }

    /// The hint under the text: the last failed check of the page shown.
    fn hint(&self, state: &TutorialState) -> Html {
        let failed = |c: &&CheckResult| c.page == state.page && !c.passed;
        let Some(check) = self.check.as_ref().filter(failed).or(state
            .last_check
            .as_ref()
            .filter(failed)
            .filter(|c| !c.automatic))
        else {
            return html! {};
        };
        let heading = if check.timed_out {
            "The check took too long and was stopped."
        } else {
            "Not done yet"
        };
        let output = check.output.trim();
        html! {
            <div id="tutorial-hint" class={classes!("tutorial-hint", check.timed_out.then_some("timed-out"))} role="status">
                <div class="tutorial-hint-head">{ heading }</div>
                if !output.is_empty() {
                    <pre class="tutorial-hint-text">{ output.to_owned() }</pre>
                }
            </div>
        }
    }

    fn dots(&self, ctx: &Context<Self>) -> Html {
        let state = &ctx.props().state;
        let dots = self.pages().iter().enumerate().map(|(i, p)| {
            let i = i as u32;
            let done = i < state.reached || (state.finished && p.kind != PageKind::Finish);
            let class = classes!(
                "step-dot",
                done.then_some("done"),
                (i == state.page).then_some("current"),
                (p.kind != PageKind::Step).then_some("edge")
            );
            html! {
                <button {class} data-page={i.to_string()} title={p.title.clone()}
                        disabled={i > state.reached || self.busy || ctx.props().view}
                        aria-current={(i == state.page).then_some("step")}
                        onclick={ctx.link().callback(move |_| Msg::Open(i))}></button>
            }
        });
        html! { <div class="step-dots">{ for dots }</div> }
    }

    fn nav(&self, ctx: &Context<Self>) -> Html {
        let state = &ctx.props().state;
        let pages = self.pages();
        let mut action = forward(pages, state.page as usize, state.reached as usize);
        if state.finished && state.page as usize + 1 >= pages.len() {
            action = Forward::None;
        }
        let (label, name) = match action {
            Forward::Start => ("Start", "start"),
            Forward::Check => ("Check", "check"),
            Forward::Next | Forward::Reopen => ("Next", "next"),
            Forward::None => ("", ""),
        };
        let back = state.page.saturating_sub(1);
        let notice = self.notice.as_ref().map(|n| {
            html! { <div id="tutorial-notice" class="tutorial-notice" role="status">{ format!("✓ {n}") }</div> }
        });
        html! {
            <div class="tutorial-nav">
                if !ctx.props().view {
                    <button id="tutorial-back" class="btn btn-secondary" disabled={state.page == 0 || self.busy}
                            onclick={ctx.link().callback(move |_| Msg::Open(back))}>
                        { "Back" }
                    </button>
                }
                { for notice }
                <span class="spacer"></span>
                if action != Forward::None && !ctx.props().view {
                    <button id="tutorial-forward" class="btn btn-primary" data-action={name}
                            disabled={self.busy} onclick={ctx.link().callback(|_| Msg::Forward)}>
                        if self.busy && action == Forward::Check {
                            <span class="spinner"></span>{ "Checking…" }
                        } else {
                            { label }
                        }
                    </button>
                }
            </div>
        }
    }
}

impl Component for TutorialPane {
    type Message = Msg;
    type Properties = TutorialProps;

    fn create(ctx: &Context<Self>) -> Self {
        let id = ctx.props().state.scenario.clone();
        ctx.link()
            .send_future(async move { Msg::Loaded(api::scenario(&id).await) });
        TutorialPane {
            scenario: None,
            load_error: None,
            busy: false,
            check: None,
            notice: None,
            _notice_timer: None,
            selector: false,
            text_ref: NodeRef::default(),
            scroll_ref: NodeRef::default(),
            drawn: Cell::new(None),
        }
    }

    fn update(&mut self, ctx: &Context<Self>, msg: Msg) -> bool {
        match msg {
            Msg::Loaded(Ok(info)) => self.scenario = Some(info),
            Msg::Loaded(Err(e)) => self.load_error = Some(e.message),
            Msg::Forward => return self.forward(ctx),
            Msg::Checked(page, result) => return self.checked(ctx, page, result),
            Msg::Open(page) => return self.open(ctx, page),
            Msg::Opened(result) => {
                self.busy = false;
                match result {
                    Ok(state) => ctx.props().on_state.emit(state),
                    Err(e) => ctx
                        .props()
                        .on_error
                        .emit(format!("Could not open the page: {e}")),
                }
            }
            Msg::Click(ev) => return self.click(ctx, ev),
            Msg::CloseSelector => self.selector = false,
            Msg::HideNotice => {
                self.notice = None;
                self._notice_timer = None;
            }
        }
        true
    }

    fn changed(&mut self, ctx: &Context<Self>, old: &TutorialProps) -> bool {
        let (old, new) = (&old.state, &ctx.props().state);
        if let Some(text) = self.passed_notice(old, new) {
            self.notice = Some(text);
            let link = ctx.link().clone();
            self._notice_timer = Some(Timeout::new(NOTICE_MS, move || {
                link.send_message(Msg::HideNotice)
            }));
        }
        if old.page != new.page {
            self.selector = false;
        }
        true
    }

    fn rendered(&mut self, ctx: &Context<Self>, _first: bool) {
        let props = ctx.props();
        if let Some(root) = self.text_ref.cast::<Element>() {
            fill_traffic_links(&root, |n, port| self.port_link(props, n, port));
            describe_actions(&root, |n| self.host(props, n));
        }
        let page = Some(props.state.page);
        if self.drawn.replace(page) != page {
            if let Some(scroll) = self.scroll_ref.cast::<Element>() {
                scroll.set_scroll_top(0);
            }
        }
    }

    fn view(&self, ctx: &Context<Self>) -> Html {
        let props = ctx.props();
        let Some(scenario) = &self.scenario else {
            return html! {
                <aside id="tutorial" class="tutorial">
                    <div class="tutorial-loading">
                        if let Some(e) = &self.load_error {
                            <span class="field-error">{ format!("Could not load the tutorial: {e}") }</span>
                        } else {
                            <span class="spinner"></span>{ "Loading the tutorial…" }
                        }
                    </div>
                </aside>
            };
        };
        let state = &props.state;
        let pages = &scenario.pages;
        let index = (state.page as usize).min(pages.len().saturating_sub(1));
        let Some(page) = pages.get(index) else {
            return html! { <aside id="tutorial" class="tutorial"></aside> };
        };
        let (title, body) = heading_and_body(page);
        let body = Html::from_html_unchecked(AttrValue::from(body.to_owned()));
        let finished = state.finished && index + 1 >= pages.len();
        html! {
            <aside id="tutorial" class="tutorial" data-page={index.to_string()}
                   data-reached={state.reached.to_string()}>
                <div class="tutorial-head">
                    <div class="tutorial-scenario" title={scenario.summary.description.clone()}>
                        { scenario.summary.title.clone() }
                    </div>
                    <div class="tutorial-progress">
                        <span id="tutorial-step" class="tutorial-step">{ page_label(pages, index) }</span>
                        { self.dots(ctx) }
                    </div>
                </div>
                <div class="tutorial-scroll" ref={self.scroll_ref.clone()}>
                    <h1 id="tutorial-title" class="tutorial-title">{ title }</h1>
                    <div id="tutorial-text" class="tutorial-text" ref={self.text_ref.clone()}
                         onclick={ctx.link().callback(|e: MouseEvent| Msg::Click(e.into()))}
                         onkeydown={ctx.link().batch_callback(|e: KeyboardEvent| {
                             (e.key() == "Enter").then(|| Msg::Click(e.into()))
                         })}>
                        { body }
                    </div>
                    { self.hint(state) }
                    if finished {
                        <div id="tutorial-finished" class="tutorial-finished">
                            <span class="tutorial-finished-mark">{ "✓" }</span>
                            <div>
                                <strong>{ "Tutorial complete" }</strong>
                                <span>{ "You did every step. The machines stay yours until the session ends." }</span>
                            </div>
                        </div>
                    }
                </div>
                if self.selector {
                    <PortPicker instances={props.instances.clone()}
                        on_close={ctx.link().callback(|_| Msg::CloseSelector)} />
                }
                { self.nav(ctx) }
            </aside>
        }
    }
}
