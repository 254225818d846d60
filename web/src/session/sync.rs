//! Keeping the page's copy of the session current: the event stream's
//! snapshot and events, and the poll of `GET /api/sessions/{sid}` that
//! re-syncs the countdown and stands in while the stream is down.

use playground_protocol::{InstanceInfo, InstanceStatus, SessionEvent, SessionInfo};
use yew::prelude::*;

use super::class_banners::ClassMessage;
use super::{Msg, SessionPage, ENDING_SOON_SECS, LIVE_POLL_MS};
use crate::api::{self, ApiResult};
use crate::events::LinkState;

impl SessionPage {
    pub(super) fn remaining_secs(&self) -> u64 {
        let Some(s) = &self.session else { return 0 };
        let elapsed = ((js_sys::Date::now() - self.fetched_at) / 1000.0).max(0.0) as u64;
        s.expires_in_secs.saturating_sub(elapsed)
    }

    pub(super) fn show_ending_soon(&self) -> bool {
        self.session.is_some() && (self.ending_soon || self.remaining_secs() <= ENDING_SOON_SECS)
    }

    /// Take a whole session (snapshot, first GET) as the new state.
    pub(super) fn set_session(&mut self, info: SessionInfo) {
        let keep = self
            .selected
            .as_ref()
            .is_some_and(|n| info.instances.iter().any(|i| &i.name == n));
        if !keep {
            self.selected = info.instances.first().map(|i| i.name.clone());
        }
        let now = js_sys::Date::now();
        self.cpu
            .retain(|name, _| info.instances.iter().any(|i| &i.name == name));
        for inst in &info.instances {
            if let Some(stats) = &inst.stats {
                self.cpu
                    .entry(inst.name.clone())
                    .or_default()
                    .sample(stats.cpu_seconds, now);
            }
        }
        self.session = Some(info);
        self.fetched_at = now;
    }

    fn instance_mut(&mut self, name: &str) -> Option<&mut InstanceInfo> {
        self.session
            .as_mut()?
            .instances
            .iter_mut()
            .find(|i| i.name == name)
    }

    /// Add an instance, or refresh it if it is known (an `instance_added`
    /// and the POST answer can arrive in either order).
    pub(super) fn upsert_instance(&mut self, inst: InstanceInfo) {
        let Some(s) = &mut self.session else { return };
        match s.instances.iter_mut().find(|i| i.name == inst.name) {
            Some(known) => {
                let stats = known.stats.take();
                let ports = std::mem::take(&mut known.ports);
                *known = InstanceInfo {
                    stats: inst.stats.or(stats),
                    ports: if inst.ports.is_empty() {
                        ports
                    } else {
                        inst.ports
                    },
                    ..inst
                };
            }
            None => s.instances.push(inst),
        }
        if self.selected.is_none() {
            self.selected = s.instances.first().map(|i| i.name.clone());
        }
    }

    pub(super) fn remove_instance(&mut self, name: &str) {
        self.cpu.remove(name);
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

    pub(super) fn apply(&mut self, ctx: &Context<Self>, event: SessionEvent) {
        match event {
            SessionEvent::Snapshot { session } => self.set_session(session),
            SessionEvent::InstanceAdded { instance } => self.upsert_instance(instance),
            SessionEvent::InstanceRemoved { name } => self.remove_instance(&name),
            SessionEvent::InstanceExited { name } => {
                self.cpu.remove(&name);
                if let Some(inst) = self.instance_mut(&name) {
                    inst.status = InstanceStatus::Exited;
                    inst.ports.clear();
                    inst.stats = None;
                }
            }
            SessionEvent::PortsChanged { name, ports } => {
                if let Some(inst) = self.instance_mut(&name) {
                    inst.ports = ports;
                }
            }
            SessionEvent::Stats { name, stats } => {
                let cpu_seconds = stats.cpu_seconds;
                if let Some(inst) = self.instance_mut(&name) {
                    if inst.status == InstanceStatus::Running {
                        inst.stats = Some(stats);
                        self.cpu
                            .entry(name)
                            .or_default()
                            .sample(cpu_seconds, js_sys::Date::now());
                    }
                }
            }
            SessionEvent::EndingSoon { expires_in_secs } => {
                self.ending_soon = true;
                if let Some(s) = &mut self.session {
                    s.expires_in_secs = expires_in_secs;
                    self.fetched_at = js_sys::Date::now();
                }
            }
            SessionEvent::Tutorial { tutorial } => {
                if let Some(s) = &mut self.session {
                    s.tutorial = Some(*tutorial);
                }
            }
            SessionEvent::Help { state } => {
                if let Some(s) = &mut self.session {
                    s.help = state;
                }
            }
            SessionEvent::Message { text, at } => {
                self.next_message += 1;
                self.messages.push(ClassMessage {
                    id: self.next_message,
                    text,
                    at,
                });
            }
            SessionEvent::ShellsChanged { name, shells } => {
                if let Some(inst) = self.instance_mut(&name) {
                    inst.shells = shells;
                }
            }
            SessionEvent::Ended => ctx.props().on_ended.emit(()),
        }
    }

    pub(super) fn poll(&mut self, ctx: &Context<Self>) {
        if self.loading || self.closing {
            return;
        }
        self.loading = true;
        self.polled_at = js_sys::Date::now();
        let sid = ctx.props().sid.clone();
        let view = ctx.props().view;
        let live = self.link == LinkState::Live;
        ctx.link()
            .send_future(async move { Msg::Loaded(live, api::get_session(&sid, view).await) });
    }

    pub(super) fn selected_instance(&self) -> Option<&InstanceInfo> {
        let name = self.selected.as_ref()?;
        self.session
            .as_ref()?
            .instances
            .iter()
            .find(|i| &i.name == name)
    }

    /// The event stream dropped or came back.
    pub(super) fn link_changed(&mut self, ctx: &Context<Self>, state: LinkState) -> bool {
        let changed = self.link != state;
        self.link = state;
        if matches!(state, LinkState::Reconnecting { .. }) {
            // Did the session end while we were away? A 404 says so.
            self.poll(ctx);
        }
        changed
    }

    /// The poll timer: read the session again when the stream is down, or
    /// now and then for the countdown.
    pub(super) fn poll_if_due(&mut self, ctx: &Context<Self>) -> bool {
        let due =
            self.link != LinkState::Live || js_sys::Date::now() - self.polled_at >= LIVE_POLL_MS;
        if due {
            self.poll(ctx);
        }
        false
    }

    /// The answer of a GET sent while the stream was live (`was_live`) or not.
    pub(super) fn loaded(
        &mut self,
        ctx: &Context<Self>,
        was_live: bool,
        result: ApiResult<SessionInfo>,
    ) -> bool {
        self.loading = false;
        match result {
            Ok(info) => {
                self.poll_failing = false;
                self.host_gone = None;
                let live = was_live || self.link == LinkState::Live;
                if self.session.is_none() || !live {
                    // No stream to trust: take the whole state.
                    self.set_session(info);
                } else if let Some(s) = &mut self.session {
                    // The stream is the source of truth; only the
                    // countdown is re-synced.
                    s.expires_in_secs = info.expires_in_secs;
                    self.fetched_at = js_sys::Date::now();
                }
            }
            Err(e) if e.is_not_found() => ctx.props().on_ended.emit(()),
            // A cluster's gateway says why nothing answers: its own note,
            // kept until the session answers again.
            Err(e) if e.is_host_gone() => self.host_gone = Some(e.message),
            Err(e) => {
                // While the stream is down too, the header already
                // says "Reconnecting…": no need for an error on top.
                let quiet = self.session.is_some() && self.link != LinkState::Live;
                if !self.poll_failing && !quiet {
                    self.report(ctx, "Could not load the session", &e);
                }
                self.poll_failing = true;
            }
        }
        true
    }

    /// Every second: the countdown moves.
    pub(super) fn tick(&mut self, ctx: &Context<Self>) -> bool {
        if self.session.is_some() && self.remaining_secs() == 0 {
            // Expired: `ended` arrives, or the next GET answers 404.
            self.poll(ctx);
        }
        self.session.is_some()
    }
}
