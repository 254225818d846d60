//! The session page: header with countdown and "Close session", a sidebar
//! listing the instances, and the selected instance's terminal.

use gloo_timers::callback::Interval;
use playground_protocol::{InstanceInfo, InstanceStatus, SessionInfo};
use yew::prelude::*;

use crate::api::{self, ApiError, ApiResult};
use crate::terminal::TerminalView;

/// How often the page re-reads the session (instances, expiry).
const REFRESH_MS: u32 = 5_000;

#[derive(Properties, PartialEq)]
pub struct SessionProps {
    pub sid: String,
    #[prop_or_default]
    pub initial: Option<SessionInfo>,
    pub on_error: Callback<String>,
    /// The session is gone (404): show the "ended" page.
    pub on_ended: Callback<()>,
    /// The user closed the session: go back to the landing page.
    pub on_closed: Callback<()>,
}

pub enum Msg {
    Refresh,
    /// A GET answer, with the mutation count at the time it was sent.
    Loaded(u32, ApiResult<SessionInfo>),
    Tick,
    AddInstance,
    Added(ApiResult<InstanceInfo>),
    Select(String),
    DeleteInstance,
    Deleted(String, ApiResult<()>),
    CloseSession,
    Closed(ApiResult<()>),
}

pub struct SessionPage {
    session: Option<SessionInfo>,
    /// `Date.now()` when `session` was fetched: the countdown runs from there.
    fetched_at: f64,
    selected: Option<String>,
    loading: bool,
    /// The last refresh failed (reported once, not every few seconds).
    refresh_failing: bool,
    /// Bumped by every change this page makes, so a GET that started before
    /// it does not undo it.
    mutations: u32,
    adding: bool,
    deleting: Option<String>,
    closing: bool,
    _refresh: Interval,
    _tick: Interval,
}

impl SessionPage {
    fn remaining_secs(&self) -> u64 {
        let Some(s) = &self.session else { return 0 };
        let elapsed = ((js_sys::Date::now() - self.fetched_at) / 1000.0).max(0.0) as u64;
        s.expires_in_secs.saturating_sub(elapsed)
    }

    fn set_session(&mut self, info: SessionInfo) {
        let keep = self
            .selected
            .as_ref()
            .is_some_and(|n| info.instances.iter().any(|i| &i.name == n));
        if !keep {
            self.selected = info.instances.first().map(|i| i.name.clone());
        }
        self.session = Some(info);
        self.fetched_at = js_sys::Date::now();
    }

    fn refresh(&mut self, ctx: &Context<Self>) {
        if self.loading || self.closing {
            return;
        }
        self.loading = true;
        let sid = ctx.props().sid.clone();
        let mutations = self.mutations;
        ctx.link()
            .send_future(async move { Msg::Loaded(mutations, api::get_session(&sid).await) });
    }

    fn report(&self, ctx: &Context<Self>, what: &str, e: &ApiError) {
        ctx.props().on_error.emit(format!("{what}: {e}"));
    }

    fn header(&self, ctx: &Context<Self>) -> Html {
        let remaining = self.remaining_secs();
        let class = classes!(
            "countdown",
            (self.session.is_some() && remaining < 300).then_some("low")
        );
        html! {
            <header class="topbar">
                <span class="brand"><span class="brand-mark">{ ">_" }</span>{ "Playground" }</span>
                <div class="spacer"></div>
                <div class="countdown-box" title="Time left before this session and its instances are deleted">
                    <span class="countdown-label">{ "Session ends in" }</span>
                    <span id="countdown" {class}>
                        { if self.session.is_some() { format_duration(remaining) } else { "--:--".to_owned() } }
                    </span>
                </div>
                <button id="close-session" class="btn btn-outline-danger"
                        disabled={self.closing}
                        onclick={ctx.link().callback(|_| Msg::CloseSession)}>
                    { if self.closing { "Closing…" } else { "Close session" } }
                </button>
            </header>
        }
    }

    fn sidebar(&self, ctx: &Context<Self>) -> Html {
        let (count, max) = self
            .session
            .as_ref()
            .map(|s| (s.instances.len(), s.max_instances as usize))
            .unwrap_or((0, 0));
        let full = self.session.is_some() && count >= max;
        let title = if full {
            format!("This session already has its maximum of {max} instances. Delete one to add another.")
        } else {
            "Start a new Linux machine in this session".to_owned()
        };
        let items = self.session.iter().flat_map(|s| s.instances.iter()).map(|inst| {
            let selected = self.selected.as_deref() == Some(inst.name.as_str());
            let name = inst.name.clone();
            let onclick = ctx.link().callback(move |_| Msg::Select(name.clone()));
            let exited = inst.status == InstanceStatus::Exited;
            html! {
                <li>
                    <button class={classes!("instance", selected.then_some("selected"), exited.then_some("exited"))}
                            data-name={inst.name.clone()} {onclick}
                            aria-current={selected.then_some("true")}>
                        <span class="status-dot" title={if exited { "exited" } else { "running" }}></span>
                        <span class="instance-text">
                            <span class="instance-host">{ inst.hostname.clone() }</span>
                            <span class="instance-sub">
                                { inst.name.clone() }
                                if exited { { " · exited" } }
                            </span>
                        </span>
                    </button>
                </li>
            }
        });
        html! {
            <aside class="sidebar">
                <button id="add-instance" class="btn btn-primary btn-block"
                        disabled={self.session.is_none() || full || self.adding}
                        {title}
                        onclick={ctx.link().callback(|_| Msg::AddInstance)}>
                    if self.adding {
                        <span class="spinner"></span>{ "Adding…" }
                    } else {
                        { "+ Add new instance" }
                    }
                </button>
                <div class="sidebar-heading">
                    <span>{ "Instances" }</span>
                    if self.session.is_some() {
                        <span class="count">{ format!("{count} / {max}") }</span>
                    }
                </div>
                <ul class="instance-list">{ for items }</ul>
            </aside>
        }
    }

    fn content(&self, ctx: &Context<Self>) -> Html {
        let Some(session) = &self.session else {
            return html! {
                <main class="content empty">
                    <div class="empty-state"><span class="spinner"></span>{ "Loading session…" }</div>
                </main>
            };
        };
        let selected = self
            .selected
            .as_ref()
            .and_then(|n| session.instances.iter().find(|i| &i.name == n));
        let Some(inst) = selected else {
            return html! {
                <main class="content empty">
                    <div class="empty-state">
                        <h2>{ "No instances yet" }</h2>
                        <p>{ "Click “+ Add new instance” to start a Linux machine; its terminal opens here." }</p>
                    </div>
                </main>
            };
        };
        let deleting = self.deleting.as_deref() == Some(inst.name.as_str());
        html! {
            <main class="content">
                <div class="toolbar">
                    <span class="toolbar-title">{ inst.hostname.clone() }</span>
                    <span class="toolbar-sub">{ inst.name.clone() }</span>
                    if inst.status == InstanceStatus::Exited {
                        <span class="badge badge-warn">{ "exited" }</span>
                    }
                    <div class="spacer"></div>
                    <button id="delete-instance" class="btn btn-outline-danger btn-sm"
                            disabled={deleting}
                            title="Delete this instance and everything in it"
                            onclick={ctx.link().callback(|_| Msg::DeleteInstance)}>
                        { if deleting { "Deleting…" } else { "Delete instance" } }
                    </button>
                </div>
                <TerminalView key={format!("{}/{}", ctx.props().sid, inst.name)}
                    sid={ctx.props().sid.clone()} name={inst.name.clone()} />
            </main>
        }
    }
}

impl Component for SessionPage {
    type Message = Msg;
    type Properties = SessionProps;

    fn create(ctx: &Context<Self>) -> Self {
        let link = ctx.link().clone();
        let refresh = Interval::new(REFRESH_MS, move || link.send_message(Msg::Refresh));
        let link = ctx.link().clone();
        let tick = Interval::new(1_000, move || link.send_message(Msg::Tick));
        let mut page = SessionPage {
            session: None,
            fetched_at: 0.0,
            selected: None,
            loading: false,
            refresh_failing: false,
            mutations: 0,
            adding: false,
            deleting: None,
            closing: false,
            _refresh: refresh,
            _tick: tick,
        };
        match ctx.props().initial.clone() {
            Some(info) => page.set_session(info),
            None => page.refresh(ctx),
        }
        page
    }

    fn update(&mut self, ctx: &Context<Self>, msg: Msg) -> bool {
        match msg {
            Msg::Refresh => {
                self.refresh(ctx);
                false
            }
            Msg::Loaded(mutations, result) => {
                self.loading = false;
                match result {
                    Ok(info) => {
                        self.refresh_failing = false;
                        if mutations == self.mutations || self.session.is_none() {
                            self.set_session(info);
                        }
                    }
                    Err(e) if e.is_not_found() => ctx.props().on_ended.emit(()),
                    Err(e) => {
                        if !self.refresh_failing {
                            self.report(ctx, "Could not load the session", &e);
                        }
                        self.refresh_failing = true;
                    }
                }
                true
            }
            Msg::Tick => {
                if self.session.is_some() && self.remaining_secs() == 0 {
                    // Expired: the next GET answers 404 and shows the ended page.
                    self.refresh(ctx);
                }
                self.session.is_some()
            }
            Msg::AddInstance => {
                if self.adding {
                    return false;
                }
                self.adding = true;
                let sid = ctx.props().sid.clone();
                ctx.link()
                    .send_future(async move { Msg::Added(api::create_instance(&sid).await) });
                true
            }
            Msg::Added(result) => {
                self.adding = false;
                self.mutations += 1;
                match result {
                    Ok(inst) => {
                        if let Some(s) = &mut self.session {
                            if !s.instances.iter().any(|i| i.name == inst.name) {
                                s.instances.push(inst.clone());
                            }
                        }
                        self.selected = Some(inst.name);
                    }
                    Err(e) if e.is_not_found() => ctx.props().on_ended.emit(()),
                    Err(e) => self.report(ctx, "Could not add an instance", &e),
                }
                true
            }
            Msg::Select(name) => {
                let changed = self.selected.as_deref() != Some(name.as_str());
                self.selected = Some(name);
                changed
            }
            Msg::DeleteInstance => {
                let Some(name) = self.selected.clone() else {
                    return false;
                };
                if self.deleting.is_some() {
                    return false;
                }
                self.deleting = Some(name.clone());
                let sid = ctx.props().sid.clone();
                ctx.link().send_future(async move {
                    let result = api::delete_instance(&sid, &name).await;
                    Msg::Deleted(name, result)
                });
                true
            }
            Msg::Deleted(name, result) => {
                self.deleting = None;
                self.mutations += 1;
                match result {
                    // 404: already gone, which is what the user wanted.
                    Ok(()) => self.remove_instance(&name),
                    Err(e) if e.is_not_found() => self.remove_instance(&name),
                    Err(e) => self.report(ctx, &format!("Could not delete {name}"), &e),
                }
                true
            }
            Msg::CloseSession => {
                if self.closing {
                    return false;
                }
                self.closing = true;
                let sid = ctx.props().sid.clone();
                ctx.link()
                    .send_future(async move { Msg::Closed(api::delete_session(&sid).await) });
                true
            }
            Msg::Closed(result) => {
                self.closing = false;
                match result {
                    Ok(()) => ctx.props().on_closed.emit(()),
                    Err(e) if e.is_not_found() => ctx.props().on_closed.emit(()),
                    Err(e) => self.report(ctx, "Could not close the session", &e),
                }
                true
            }
        }
    }

    fn view(&self, ctx: &Context<Self>) -> Html {
        html! {
            <div class="page session-page">
                { self.header(ctx) }
                <div class="workspace">
                    { self.sidebar(ctx) }
                    { self.content(ctx) }
                </div>
            </div>
        }
    }
}

impl SessionPage {
    fn remove_instance(&mut self, name: &str) {
        let Some(s) = &mut self.session else { return };
        let Some(pos) = s.instances.iter().position(|i| i.name == name) else {
            return;
        };
        s.instances.remove(pos);
        if self.selected.as_deref() == Some(name) {
            let next = pos.min(s.instances.len().saturating_sub(1));
            self.selected = s.instances.get(next).map(|i| i.name.clone());
        }
    }
}

/// `mm:ss` under an hour, `h:mm:ss` from one hour up.
pub fn format_duration(secs: u64) -> String {
    let (h, m, s) = (secs / 3600, secs / 60 % 60, secs % 60);
    if h > 0 {
        format!("{h}:{m:02}:{s:02}")
    } else {
        format!("{m:02}:{s:02}")
    }
}

#[cfg(test)]
mod tests {
    use super::format_duration;

    #[test]
    fn durations() {
        assert_eq!(format_duration(0), "00:00");
        assert_eq!(format_duration(59), "00:59");
        assert_eq!(format_duration(3599), "59:59");
        assert_eq!(format_duration(3600), "1:00:00");
        assert_eq!(format_duration(4 * 3600 + 5 * 60 + 6), "4:05:06");
    }
}
