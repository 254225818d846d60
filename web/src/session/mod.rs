//! The session page: header with countdown and "Close session", a sidebar
//! listing the instances, and the selected instance's details (address,
//! memory, CPU, open ports) above its terminal. A tutorial's session adds
//! the tutorial pane on the left (`tutorial/`).
//!
//! The page follows the session's event stream (see `events.rs`): the state
//! comes from each `snapshot` and is kept current by the events after it. A
//! slow poll of `GET /api/sessions/{sid}` keeps the countdown honest and
//! takes over (faster) while the stream is down.
//!
//! This file holds the page's state and messages, and `update` dispatches;
//! `sync.rs` keeps the session current, `actions.rs` carries out what the
//! user asks, and each part of the page is a component in its own file,
//! drawn from properties and reporting through callbacks.

mod actions;
mod banners;
mod class_banners;
mod cpu_meter;
mod files_bar;
pub mod format;
mod instance_header;
mod instance_list;
mod ports_bar;
mod share;
mod ssh_bar;
mod ssh_keys;
mod sync;
mod terminal_tabs;
mod topbar;
mod tutorial;

use std::collections::HashMap;

use gloo_timers::callback::Interval;
use playground_protocol::{
    FileInfo, InstanceInfo, InstanceStatus, SessionEvent, SessionInfo, TutorialState,
};
use web_sys::File;
use yew::prelude::*;

use crate::api::ApiResult;
use crate::editor::Editor;
use crate::events::{EventStream, LinkState};
use crate::settings::{Settings, MAX_FONT, MIN_FONT};
use crate::terminal::TerminalInput;
use banners::{EndingBanner, ExitedNote, HostGoneBanner};
use class_banners::{ClassMessage, ClassMessages, HelpBanner};
use cpu_meter::CpuMeter;
use files_bar::{FilesBar, Upload};
use instance_header::InstanceHeader;
use instance_list::InstanceList;
use ports_bar::PortsBar;
use share::Share;
use ssh_bar::SshBar;
use terminal_tabs::{load_tabs, Tabs, TerminalTabs};
use topbar::TopBar;
use tutorial::{Exec, TutorialPane};

/// How often the poll timer fires.
const POLL_TICK_MS: u32 = 5_000;
/// While the event stream is live, re-read the session only this often
/// (for the countdown).
const LIVE_POLL_MS: f64 = 30_000.0;
/// The warning banner shows from this many seconds before the end.
const ENDING_SOON_SECS: u64 = 300;

#[derive(Properties, PartialEq)]
pub struct SessionProps {
    /// The session id, or (`view`) the viewer id of a read-only view.
    pub sid: String,
    /// A read-only view: no controls that change anything, no input.
    #[prop_or_default]
    pub view: bool,
    #[prop_or_default]
    pub initial: Option<SessionInfo>,
    pub on_error: Callback<String>,
    /// The session is gone (404 or `ended`): show the "ended" page.
    pub on_ended: Callback<()>,
    /// The user closed the session: go back to the landing page.
    pub on_closed: Callback<()>,
}

pub enum Msg {
    Event(SessionEvent),
    Link(LinkState),
    Poll,
    /// A GET answer, and whether the stream was live when it was sent.
    Loaded(bool, ApiResult<SessionInfo>),
    Tick,
    AddInstance,
    Added(ApiResult<InstanceInfo>),
    Select(String),
    DeleteInstance,
    Deleted(String, ApiResult<()>),
    CloseSession,
    Closed(ApiResult<()>),
    PortInput(String),
    OpenPort,
    Extend,
    Extended(ApiResult<SessionInfo>),
    SelectTab(u8),
    NewTab,
    FontSmaller,
    FontLarger,
    ToggleTheme,
    ToggleEditor,
    ToggleShare,
    Dragging(bool),
    UploadFiles(Vec<File>),
    UploadProgress(u32, f64, f64),
    UploadDone(u32, Result<FileInfo, String>),
    DismissUpload(u32),
    DownloadInput(String),
    Download,
    /// A newer tutorial state, from the tutorial pane's own requests.
    Tutorial(TutorialState),
    /// Type a tutorial's command into a terminal.
    Exec(Exec),
    /// The student's answer to the instructor's request to help.
    AnswerHelp(bool),
    /// The student ends help.
    EndHelp,
    HelpDone(ApiResult<()>),
    DismissMessage(u32),
}

pub struct SessionPage {
    session: Option<SessionInfo>,
    /// `Date.now()` when `expires_in_secs` was last set: the countdown runs from there.
    fetched_at: f64,
    selected: Option<String>,
    link: LinkState,
    /// A GET is under way.
    loading: bool,
    /// `Date.now()` of the last GET.
    polled_at: f64,
    /// The last GET failed (reported once, not every few seconds).
    poll_failing: bool,
    /// A gateway says the node holding the session is gone (its words).
    host_gone: Option<String>,
    /// `ending_soon` arrived.
    ending_soon: bool,
    cpu: HashMap<String, CpuMeter>,
    adding: bool,
    deleting: Option<String>,
    closing: bool,
    port_input: String,
    port_error: Option<String>,
    extending: bool,
    settings: Settings,
    /// Per instance: how many shells the user opened here, and the visible
    /// one (the instance's running `shells` may show more: `tab_state`).
    tabs: Tabs,
    editor_open: bool,
    share_open: bool,
    dragging: bool,
    uploads: Vec<Upload>,
    next_upload: u32,
    download_path: String,
    /// Lets the tutorial type into the visible terminals.
    inputs: TerminalInput,
    /// The instructor's messages (a class's session), newest last.
    messages: Vec<ClassMessage>,
    next_message: u32,
    /// An answer about help is under way.
    help_busy: bool,
    _events: EventStream,
    _poll: Interval,
    _tick: Interval,
}

impl SessionPage {
    /// The selected instance (header, bars, terminals, editor), or a
    /// placeholder while there is none.
    fn content(&self, ctx: &Context<Self>) -> Html {
        if self.session.is_none() {
            return html! {
                <main class="content empty">
                    <div class="empty-state"><span class="spinner"></span>{ "Loading session…" }</div>
                </main>
            };
        }
        let Some(inst) = self.selected_instance() else {
            return html! {
                <main class="content empty">
                    <div class="empty-state">
                        <h2>{ "No instances yet" }</h2>
                        <p>{ "Click “+ Add new instance” to start a Linux machine; its terminal opens here." }</p>
                    </div>
                </main>
            };
        };
        let exited = inst.status == InstanceStatus::Exited;
        let (count, active) = self.tab_state(inst);
        let ssh = self
            .session
            .as_ref()
            .and_then(|s| s.ssh.clone())
            .filter(|_| !ctx.props().view);
        let can_open_port = !ctx.props().view
            && self
                .session
                .as_ref()
                .is_some_and(|s| !s.port_url_template.is_empty());
        html! {
            <main class="content">
                <InstanceHeader instance={inst.clone()} cpu={self.cpu.get(&inst.name).and_then(|m| m.percent)}
                    view={ctx.props().view} deleting={self.deleting.as_deref() == Some(inst.name.as_str())}
                    editor_open={self.editor_open}
                    on_toggle_editor={ctx.link().callback(|_| Msg::ToggleEditor)}
                    on_delete={ctx.link().callback(|_| Msg::DeleteInstance)} />
                if exited {
                    <ExitedNote />
                } else {
                    <PortsBar hostname={inst.hostname.clone()} ports={inst.ports.clone()}
                        can_open={can_open_port} input={self.port_input.clone()}
                        error={self.port_error.clone()}
                        on_input={ctx.link().callback(Msg::PortInput)}
                        on_open={ctx.link().callback(|_| Msg::OpenPort)} />
                    if !ctx.props().view {
                        <FilesBar hostname={inst.hostname.clone()} uploads={self.uploads.clone()}
                            download_path={self.download_path.clone()}
                            on_files={ctx.link().callback(Msg::UploadFiles)}
                            on_dismiss={ctx.link().callback(Msg::DismissUpload)}
                            on_download_input={ctx.link().callback(Msg::DownloadInput)}
                            on_download={ctx.link().callback(|_| Msg::Download)} />
                    }
                    if let Some(access) = ssh {
                        <SshBar sid={ctx.props().sid.clone()} name={inst.name.clone()} {access} />
                    }
                }
                <div class="work-area">
                    <TerminalTabs sid={ctx.props().sid.clone()} name={inst.name.clone()}
                        hostname={inst.hostname.clone()} view={ctx.props().view} {exited}
                        {count} {active} settings={self.settings} dragging={self.dragging}
                        on_select={ctx.link().callback(Msg::SelectTab)}
                        on_new={ctx.link().callback(|_| Msg::NewTab)}
                        on_dragging={ctx.link().callback(Msg::Dragging)}
                        on_files={ctx.link().callback(Msg::UploadFiles)} />
                    if self.editor_open && !exited && !ctx.props().view {
                        <Editor key={format!("{}/{}", ctx.props().sid, inst.name)}
                            sid={ctx.props().sid.clone()} name={inst.name.clone()} />
                    }
                </div>
            </main>
        }
    }
}

impl Component for SessionPage {
    type Message = Msg;
    type Properties = SessionProps;

    fn create(ctx: &Context<Self>) -> Self {
        let link = ctx.link().clone();
        let poll = Interval::new(POLL_TICK_MS, move || link.send_message(Msg::Poll));
        let link = ctx.link().clone();
        let tick = Interval::new(1_000, move || link.send_message(Msg::Tick));
        let events = EventStream::start(
            &ctx.props().sid,
            ctx.props().view,
            ctx.link().callback(Msg::Event),
            ctx.link().callback(Msg::Link),
        );
        let mut page = SessionPage {
            session: None,
            fetched_at: 0.0,
            selected: None,
            link: LinkState::Connecting,
            loading: false,
            polled_at: js_sys::Date::now(),
            poll_failing: false,
            host_gone: None,
            ending_soon: false,
            cpu: HashMap::new(),
            adding: false,
            deleting: None,
            closing: false,
            port_input: String::new(),
            port_error: None,
            extending: false,
            settings: Settings::load(),
            tabs: if ctx.props().view {
                HashMap::new()
            } else {
                load_tabs(&ctx.props().sid)
            },
            editor_open: false,
            share_open: false,
            dragging: false,
            uploads: Vec::new(),
            next_upload: 0,
            download_path: String::new(),
            inputs: TerminalInput::default(),
            messages: Vec::new(),
            next_message: 0,
            help_busy: false,
            _events: events,
            _poll: poll,
            _tick: tick,
        };
        match ctx.props().initial.clone() {
            Some(info) => page.set_session(info),
            // The snapshot will come too; a GET shows the page sooner when
            // the stream is slow, and answers 404 for an unknown session.
            None => page.poll(ctx),
        }
        page
    }

    fn update(&mut self, ctx: &Context<Self>, msg: Msg) -> bool {
        match msg {
            Msg::Event(event) => {
                self.apply(ctx, event);
                true
            }
            Msg::Link(state) => self.link_changed(ctx, state),
            Msg::Poll => self.poll_if_due(ctx),
            Msg::Loaded(was_live, result) => self.loaded(ctx, was_live, result),
            Msg::Tick => self.tick(ctx),
            Msg::AddInstance => self.add_instance(ctx),
            Msg::Added(result) => self.added(ctx, result),
            Msg::Select(name) => {
                let changed = self.selected.as_deref() != Some(name.as_str());
                if changed {
                    self.port_error = None;
                }
                self.selected = Some(name);
                changed
            }
            Msg::DeleteInstance => self.delete_instance(ctx),
            Msg::Deleted(name, result) => self.deleted(ctx, name, result),
            Msg::CloseSession => self.close_session(ctx),
            Msg::Closed(result) => self.closed(ctx, result),
            Msg::PortInput(text) => {
                self.port_input = text;
                // Clear a stale error as soon as the user edits.
                self.port_error.take().is_some()
            }
            Msg::OpenPort => self.open_port(),
            Msg::Extend => self.extend(ctx),
            Msg::Extended(result) => self.extended(ctx, result),
            Msg::SelectTab(n) => self.select_tab(n),
            Msg::NewTab => self.new_tab(ctx),
            Msg::FontSmaller | Msg::FontLarger | Msg::ToggleTheme => {
                let s = &mut self.settings;
                match msg {
                    Msg::FontSmaller => s.font_size = s.font_size.saturating_sub(1).max(MIN_FONT),
                    Msg::FontLarger => s.font_size = (s.font_size + 1).min(MAX_FONT),
                    _ => s.light = !s.light,
                }
                s.save();
                true
            }
            Msg::ToggleEditor => {
                self.editor_open = !self.editor_open;
                true
            }
            Msg::ToggleShare => {
                self.share_open = !self.share_open;
                true
            }
            Msg::Dragging(on) => {
                let changed = self.dragging != on;
                self.dragging = on;
                changed
            }
            Msg::UploadFiles(files) => self.upload_files(ctx, files),
            Msg::UploadProgress(id, loaded, total) => self.upload_progress(id, loaded, total),
            Msg::UploadDone(id, result) => self.upload_done(id, result),
            Msg::DismissUpload(id) => {
                self.uploads.retain(|u| u.id != id);
                true
            }
            Msg::DownloadInput(text) => {
                self.download_path = text;
                false
            }
            Msg::Download => self.download(ctx),
            Msg::Tutorial(state) => {
                if let Some(s) = &mut self.session {
                    s.tutorial = Some(state);
                }
                true
            }
            Msg::Exec(exec) => self.exec(exec),
            Msg::AnswerHelp(accept) => self.answer_help(ctx, Some(accept)),
            Msg::EndHelp => self.answer_help(ctx, None),
            Msg::HelpDone(result) => self.help_done(ctx, result),
            Msg::DismissMessage(id) => {
                self.messages.retain(|m| m.id != id);
                true
            }
        }
    }

    fn view(&self, ctx: &Context<Self>) -> Html {
        let (link, view) = (ctx.link(), ctx.props().view);
        let instances = self
            .session
            .as_ref()
            .map(|s| s.instances.clone())
            .unwrap_or_default();
        let max = self.session.as_ref().map(|s| s.max_instances as usize);
        let cpu: HashMap<String, f64> = self
            .cpu
            .iter()
            .filter_map(|(name, m)| Some((name.clone(), m.percent?)))
            .collect();
        let tutorial = self.session.as_ref().and_then(|s| {
            let state = s.tutorial.clone()?;
            let key = state.scenario.clone();
            Some(html! {
                <TutorialPane {key} sid={ctx.props().sid.clone()} {view} {state}
                    port_url_template={s.port_url_template.clone()} instances={s.instances.clone()}
                    on_state={link.callback(Msg::Tutorial)} on_exec={link.callback(Msg::Exec)}
                    on_error={ctx.props().on_error.clone()} />
            })
        });
        // Beside a tutorial one machine needs no list: its name heads the terminal.
        let list = tutorial.is_none() || instances.len() > 1;
        html! {
            <ContextProvider<TerminalInput> context={self.inputs.clone()}>
            <div class={classes!("page", "session-page", tutorial.is_some().then_some("with-tutorial"))}>
                <TopBar {view} link={self.link} remaining={self.session.is_some().then(|| self.remaining_secs())}
                    settings={self.settings} closing={self.closing}
                    on_font_smaller={link.callback(|_| Msg::FontSmaller)}
                    on_font_larger={link.callback(|_| Msg::FontLarger)}
                    on_toggle_theme={link.callback(|_| Msg::ToggleTheme)}
                    on_close={link.callback(|_| Msg::CloseSession)}>
                    if let (false, Some(s)) = (view, &self.session) {
                        <Share session_id={s.id.clone()} viewer_id={s.viewer_id.clone()}
                            open={self.share_open} on_toggle={link.callback(|_| Msg::ToggleShare)} />
                    }
                </TopBar>
                if let Some(message) = &self.host_gone {
                    <HostGoneBanner message={message.clone()} />
                }
                if self.show_ending_soon() {
                    <EndingBanner remaining={self.remaining_secs()}
                        can_extend={!view && self.session.as_ref().is_some_and(|s| s.can_extend)}
                        extending={self.extending} on_extend={link.callback(|_| Msg::Extend)} />
                }
                if !view {
                    <HelpBanner state={self.session.as_ref().map(|s| s.help).unwrap_or_default()}
                        busy={self.help_busy} on_answer={link.callback(Msg::AnswerHelp)}
                        on_end={link.callback(|_| Msg::EndHelp)} />
                    <ClassMessages messages={self.messages.clone()}
                        on_dismiss={link.callback(Msg::DismissMessage)} />
                }
                <div class="workspace">
                    { for tutorial }
                    if list {
                        <InstanceList {view} {instances} max={max} selected={self.selected.clone()}
                            cpu={cpu} adding={self.adding}
                            on_add={link.callback(|_| Msg::AddInstance)} on_select={link.callback(Msg::Select)} />
                    }
                    { self.content(ctx) }
                </div>
            </div>
            </ContextProvider<TerminalInput>>
        }
    }
}
