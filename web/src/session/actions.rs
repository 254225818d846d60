//! What the page does when the user acts: add, delete, close and extend
//! (requests to the server, and their answers), open a port, open more
//! shells, upload and download files.

use gloo_timers::callback::Timeout;
use playground_protocol::{FileInfo, InstanceInfo, SessionInfo};
use web_sys::File;
use yew::prelude::*;

use super::files_bar::Upload;
use super::format::{fill_template, parse_port};
use super::terminal_tabs::{forget_tabs, save_tabs, shown_tabs, MAX_TABS};
use super::tutorial::Exec;
use super::{Msg, SessionPage};
use crate::api::{self, ApiError, ApiResult};
use crate::classes::api as class_api;
use crate::upload;

impl SessionPage {
    /// Tell the user (the app shows a banner).
    pub(super) fn report(&self, ctx: &Context<Self>, what: &str, e: &ApiError) {
        ctx.props().on_error.emit(format!("{what}: {e}"));
    }

    /// The link for `port` of the selected instance: its own when it is
    /// listening, else the session's template.
    fn port_url(&self, port: u16) -> Option<String> {
        let inst = self.selected_instance()?;
        if let Some(p) = inst.ports.iter().find(|p| p.port == port) {
            return Some(p.url.clone());
        }
        let template = &self.session.as_ref()?.port_url_template;
        (!template.is_empty()).then(|| fill_template(template, &inst.name, port))
    }

    pub(super) fn add_instance(&mut self, ctx: &Context<Self>) -> bool {
        if self.adding {
            return false;
        }
        self.adding = true;
        let sid = ctx.props().sid.clone();
        ctx.link()
            .send_future(async move { Msg::Added(api::create_instance(&sid).await) });
        true
    }

    pub(super) fn added(&mut self, ctx: &Context<Self>, result: ApiResult<InstanceInfo>) -> bool {
        self.adding = false;
        match result {
            Ok(inst) => {
                let name = inst.name.clone();
                self.upsert_instance(inst);
                self.selected = Some(name);
                self.port_error = None;
            }
            Err(e) if e.is_not_found() => ctx.props().on_ended.emit(()),
            Err(e) => self.report(ctx, "Could not add an instance", &e),
        }
        true
    }

    /// Delete the selected instance.
    pub(super) fn delete_instance(&mut self, ctx: &Context<Self>) -> bool {
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

    pub(super) fn deleted(
        &mut self,
        ctx: &Context<Self>,
        name: String,
        result: ApiResult<()>,
    ) -> bool {
        self.deleting = None;
        if result.is_ok() && self.tabs.remove(&name).is_some() {
            save_tabs(&ctx.props().sid, &self.tabs);
        }
        match result {
            // 404: already gone, which is what the user wanted.
            Ok(()) => self.remove_instance(&name),
            Err(e) if e.is_not_found() => self.remove_instance(&name),
            Err(e) => self.report(ctx, &format!("Could not delete {name}"), &e),
        }
        true
    }

    pub(super) fn close_session(&mut self, ctx: &Context<Self>) -> bool {
        if self.closing {
            return false;
        }
        self.closing = true;
        let sid = ctx.props().sid.clone();
        ctx.link()
            .send_future(async move { Msg::Closed(api::delete_session(&sid).await) });
        true
    }

    pub(super) fn closed(&mut self, ctx: &Context<Self>, result: ApiResult<()>) -> bool {
        self.closing = false;
        match result {
            Ok(()) => {
                forget_tabs(&ctx.props().sid);
                ctx.props().on_closed.emit(())
            }
            Err(e) if e.is_not_found() => ctx.props().on_closed.emit(()),
            Err(e) => self.report(ctx, "Could not close the session", &e),
        }
        true
    }

    /// Open the typed port of the selected instance in a new tab.
    pub(super) fn open_port(&mut self) -> bool {
        match parse_port(&self.port_input) {
            Ok(port) => match self.port_url(port) {
                Some(url) => {
                    self.port_error = None;
                    if let Some(w) = web_sys::window() {
                        let _ = w.open_with_url_and_target_and_features(&url, "_blank", "noopener");
                    }
                }
                None => self.port_error = Some("No instance to open it on.".to_owned()),
            },
            Err(e) => self.port_error = Some(e.to_owned()),
        }
        true
    }

    pub(super) fn extend(&mut self, ctx: &Context<Self>) -> bool {
        if self.extending || ctx.props().view {
            return false;
        }
        self.extending = true;
        let sid = ctx.props().sid.clone();
        ctx.link()
            .send_future(async move { Msg::Extended(api::extend_session(&sid).await) });
        true
    }

    pub(super) fn extended(&mut self, ctx: &Context<Self>, result: ApiResult<SessionInfo>) -> bool {
        self.extending = false;
        match result {
            Ok(info) => {
                if let Some(s) = &mut self.session {
                    s.expires_in_secs = info.expires_in_secs;
                    s.expires_at = info.expires_at;
                    s.can_extend = info.can_extend;
                    self.fetched_at = js_sys::Date::now();
                }
                self.ending_soon = false;
            }
            Err(e) if e.is_not_found() => ctx.props().on_ended.emit(()),
            Err(e) => {
                if e.status == Some(409) {
                    if let Some(s) = &mut self.session {
                        s.can_extend = false;
                    }
                }
                self.report(ctx, "Could not extend the session", &e);
            }
        }
        true
    }

    /// How many tabs `inst` shows, and the visible one: the shells opened
    /// on this page, and at least those running on the server (an SSH
    /// login's shell gets its tab, without being switched to).
    pub(super) fn tab_state(&self, inst: &InstanceInfo) -> (u8, u8) {
        let (opened, active) = self.tabs.get(&inst.name).copied().unwrap_or((1, 0));
        let count = shown_tabs(opened, inst.shells);
        (count, active.min(count - 1))
    }

    /// Show shell `n` of the selected instance.
    pub(super) fn select_tab(&mut self, n: u8) -> bool {
        let Some(inst) = self.selected_instance() else {
            return false;
        };
        let (count, _) = self.tab_state(inst);
        let name = inst.name.clone();
        self.tabs.insert(name, (count, n.min(count - 1)));
        true
    }

    /// Open one more shell in the selected instance, and show it.
    pub(super) fn new_tab(&mut self, ctx: &Context<Self>) -> bool {
        let Some(inst) = self.selected_instance() else {
            return false;
        };
        let (count, active) = self.tab_state(inst);
        let name = inst.name.clone();
        let tabs = if count < MAX_TABS {
            (count + 1, count)
        } else {
            (count, active)
        };
        self.tabs.insert(name, tabs);
        save_tabs(&ctx.props().sid, &self.tabs);
        true
    }

    /// Upload picked or dropped files into the selected instance.
    pub(super) fn upload_files(&mut self, ctx: &Context<Self>, files: Vec<File>) -> bool {
        self.dragging = false;
        let Some(name) = self.selected.clone() else {
            return true;
        };
        for file in files {
            let id = self.next_upload;
            self.next_upload += 1;
            self.uploads.push(Upload {
                id,
                name: file.name(),
                loaded: 0.0,
                total: file.size(),
                result: None,
            });
            let url = api::file_url(&ctx.props().sid, &name, &file.name());
            upload::upload(
                &url,
                &file,
                ctx.link()
                    .callback(move |(l, t)| Msg::UploadProgress(id, l, t)),
                ctx.link().callback(move |r| Msg::UploadDone(id, r)),
            );
        }
        // Keep the list short: the last few.
        let excess = self.uploads.len().saturating_sub(6);
        self.uploads.drain(..excess);
        true
    }

    pub(super) fn upload_progress(&mut self, id: u32, loaded: f64, total: f64) -> bool {
        if let Some(u) = self.uploads.iter_mut().find(|u| u.id == id) {
            u.loaded = loaded;
            if total > 0.0 {
                u.total = total;
            }
        }
        true
    }

    pub(super) fn upload_done(&mut self, id: u32, result: Result<FileInfo, String>) -> bool {
        if let Some(u) = self.uploads.iter_mut().find(|u| u.id == id) {
            u.loaded = u.total;
            u.result = Some(result.map(|info| info.path));
        }
        true
    }

    /// Download the typed path of the selected instance in a new tab.
    pub(super) fn download(&self, ctx: &Context<Self>) -> bool {
        let path = self.download_path.trim();
        let (Some(name), false) = (self.selected.clone(), path.is_empty()) else {
            return false;
        };
        let url = api::file_url(&ctx.props().sid, &name, path);
        if let Some(w) = web_sys::window() {
            let _ = w.open_with_url_and_target(&url, "_blank");
        }
        false
    }

    /// Type a tutorial's command: into the named instance's terminal (shown
    /// first), else the one shown. After Ctrl-C the shell gets a moment:
    /// the interrupted program's exit may flush what follows it.
    pub(super) fn exec(&mut self, exec: Exec) -> bool {
        let name = match exec.instance {
            Some(name)
                if self
                    .session
                    .as_ref()
                    .is_some_and(|s| s.instances.iter().any(|i| i.name == name)) =>
            {
                name
            }
            _ => match self.selected.clone() {
                Some(name) => name,
                None => return false,
            },
        };
        let switch = self.selected.as_deref() != Some(name.as_str());
        self.selected = Some(name.clone());
        match exec.interrupt {
            Some(first) => {
                self.inputs.send(&name, first.as_bytes());
                let inputs = self.inputs.clone();
                Timeout::new(INTERRUPT_PAUSE_MS, move || {
                    inputs.send(&name, exec.input.as_bytes())
                })
                .forget();
            }
            None => self.inputs.send(&name, exec.input.as_bytes()),
        }
        switch
    }
}

/// Between a tutorial's Ctrl-C and the command after it.
const INTERRUPT_PAUSE_MS: u32 = 300;

impl SessionPage {
    /// The student answers a request to help (`Some(accept)`) or ends help (`None`).
    pub(super) fn answer_help(&mut self, ctx: &Context<Self>, answer: Option<bool>) -> bool {
        if self.help_busy || ctx.props().view {
            return false;
        }
        self.help_busy = true;
        let sid = ctx.props().sid.clone();
        ctx.link().send_future(async move {
            let result = match answer {
                Some(accept) => class_api::answer_help(&sid, accept).await,
                None => class_api::stop_help(&sid).await,
            };
            Msg::HelpDone(result)
        });
        true
    }

    /// The `help` event that follows says what the state is now.
    pub(super) fn help_done(&mut self, ctx: &Context<Self>, result: ApiResult<()>) -> bool {
        self.help_busy = false;
        if let Err(e) = result {
            self.report(ctx, "Could not answer the instructor", &e);
        }
        true
    }
}
