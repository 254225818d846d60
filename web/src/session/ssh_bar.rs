//! The selected instance's SSH access: the exact `ssh` command with a Copy
//! button, and "SSH keys", which opens the session's keys (`ssh_keys.rs`).
//! Shown when the server runs its SSH server, never in a read-only view.
//!
//! The keys belong to the session, not to an instance: this component
//! loads them, adds and removes them itself, and keeps them (and the panel
//! open or not) while the user moves between instances.

use playground_protocol::{SshAccess, SshKeyInfo};
use wasm_bindgen::JsCast;
use web_sys::{HtmlElement, HtmlInputElement};
use yew::prelude::*;

use super::format::ssh_command;
use super::share::copy;
use super::ssh_keys::SshKeys;
use crate::api::{self, ApiResult};

#[derive(Properties, PartialEq)]
pub struct SshBarProps {
    pub sid: AttrValue,
    /// The selected instance (its name is the first part of the user name).
    pub name: AttrValue,
    pub access: SshAccess,
}

pub enum Msg {
    Loaded(ApiResult<Vec<SshKeyInfo>>),
    Toggle,
    Close,
    Input(String),
    Add,
    Added(ApiResult<SshKeyInfo>),
    Remove(String),
    Removed(String, ApiResult<()>),
}

pub struct SshBar {
    keys: Option<Vec<SshKeyInfo>>,
    list_error: Option<String>,
    open: bool,
    input: String,
    error: Option<String>,
    adding: bool,
    removing: Option<String>,
    /// Where the focus goes after the next render: the key field (just
    /// opened) or the toggle (just closed).
    focus: Option<&'static str>,
}

impl SshBar {
    fn load(&self, ctx: &Context<Self>) {
        let sid = ctx.props().sid.clone();
        ctx.link()
            .send_future(async move { Msg::Loaded(api::ssh_keys(&sid).await) });
    }

    fn add(&mut self, ctx: &Context<Self>) -> bool {
        let key = self.input.trim().to_owned();
        if self.adding {
            return false;
        }
        if key.is_empty() {
            self.error = Some("Paste a public key first.".to_owned());
            return true;
        }
        self.adding = true;
        let sid = ctx.props().sid.clone();
        ctx.link()
            .send_future(async move { Msg::Added(api::add_ssh_key(&sid, &key).await) });
        true
    }

    /// A removed key leaves the list.
    fn forget(&mut self, fingerprint: &str) {
        if let Some(keys) = &mut self.keys {
            keys.retain(|k| k.fingerprint != fingerprint);
        }
        self.list_error = None;
    }
}

impl Component for SshBar {
    type Message = Msg;
    type Properties = SshBarProps;

    fn create(ctx: &Context<Self>) -> Self {
        let bar = SshBar {
            keys: None,
            list_error: None,
            open: false,
            input: String::new(),
            error: None,
            adding: false,
            removing: None,
            focus: None,
        };
        bar.load(ctx);
        bar
    }

    fn update(&mut self, ctx: &Context<Self>, msg: Msg) -> bool {
        match msg {
            Msg::Loaded(Ok(keys)) => {
                self.keys = Some(keys);
                self.list_error = None;
            }
            Msg::Loaded(Err(e)) => self.list_error = Some(format!("Could not load the keys: {e}")),
            Msg::Toggle => {
                self.open = !self.open;
                self.focus = Some(if self.open {
                    "ssh-key-input"
                } else {
                    "ssh-keys-toggle"
                });
                if self.open && self.keys.is_none() {
                    self.load(ctx);
                }
            }
            Msg::Close => {
                self.open = false;
                self.focus = Some("ssh-keys-toggle");
            }
            Msg::Input(text) => {
                self.input = text;
                // A stale reason goes as soon as the user edits.
                return self.error.take().is_some();
            }
            Msg::Add => return self.add(ctx),
            Msg::Added(result) => {
                self.adding = false;
                // The disabled button lost the focus: back to the field, for
                // the next key or to fix this one.
                self.focus = Some("ssh-key-input");
                match result {
                    Ok(key) => {
                        let keys = self.keys.get_or_insert_with(Vec::new);
                        // The same key again is no second entry.
                        keys.retain(|k| k.fingerprint != key.fingerprint);
                        keys.push(key);
                        self.input.clear();
                        self.error = None;
                    }
                    // The text stays in the field, to be fixed.
                    Err(e) => self.error = Some(e.message),
                }
            }
            Msg::Remove(fingerprint) => {
                if self.removing.is_some() {
                    return false;
                }
                self.removing = Some(fingerprint.clone());
                let sid = ctx.props().sid.clone();
                ctx.link().send_future(async move {
                    let result = api::remove_ssh_key(&sid, &fingerprint).await;
                    Msg::Removed(fingerprint, result)
                });
            }
            Msg::Removed(fingerprint, result) => {
                self.removing = None;
                match result {
                    // 404: already gone, which is what the user wanted.
                    Ok(()) => self.forget(&fingerprint),
                    Err(e) if e.is_not_found() => self.forget(&fingerprint),
                    Err(e) => self.list_error = Some(format!("Could not remove the key: {e}")),
                }
            }
        }
        true
    }

    fn view(&self, ctx: &Context<Self>) -> Html {
        let props = ctx.props();
        let page_host = web_sys::window()
            .and_then(|w| w.location().hostname().ok())
            .unwrap_or_default();
        let command = ssh_command(&props.name, &props.sid, &props.access, &page_host);
        let select = Callback::from(|e: FocusEvent| {
            if let Some(input) = e.target_dyn_into::<HtmlInputElement>() {
                input.select();
            }
        });
        let link = ctx.link();
        let toggle_label = match &self.keys {
            Some(keys) if !keys.is_empty() => format!("SSH keys ({})", keys.len()),
            _ => "SSH keys".to_owned(),
        };
        let no_keys = self.keys.as_ref().is_some_and(|k| k.is_empty());
        html! {
            <div class="sshbar">
                <span class="portbar-label">{ "SSH" }</span>
                <label class="sr-only" for="ssh-command">
                    { format!("Command to log in to {} over SSH", props.name) }
                </label>
                <input id="ssh-command" class="input ssh-command" readonly=true value={command}
                       onfocus={select} />
                <button id="ssh-copy" class="btn btn-secondary btn-sm" title="Copy the command"
                        onclick={copy("ssh-command")}>{ "Copy" }</button>
                if no_keys {
                    <span class="portbar-hint">{ "Add your public key first →" }</span>
                }
                <div class="spacer"></div>
                <button id="ssh-keys-toggle" class="btn btn-secondary btn-sm"
                        aria-expanded={self.open.to_string()} aria-controls="ssh-keys-panel"
                        title="The public keys that may log in to this session's instances"
                        onclick={link.callback(|_| Msg::Toggle)}>{ toggle_label }</button>
                if self.open {
                    <SshKeys keys={self.keys.clone()}
                        list_error={self.list_error.clone().map(AttrValue::from)}
                        input={self.input.clone()} error={self.error.clone().map(AttrValue::from)}
                        adding={self.adding} removing={self.removing.clone().map(AttrValue::from)}
                        on_input={link.callback(Msg::Input)} on_add={link.callback(|_| Msg::Add)}
                        on_remove={link.callback(Msg::Remove)} on_close={link.callback(|_| Msg::Close)} />
                }
            </div>
        }
    }

    fn rendered(&mut self, _ctx: &Context<Self>, _first: bool) {
        let Some(id) = self.focus.take() else { return };
        let element = web_sys::window()
            .and_then(|w| w.document())
            .and_then(|d| d.get_element_by_id(id))
            .and_then(|e| e.dyn_into::<HtmlElement>().ok());
        if let Some(element) = element {
            let _ = element.focus();
        }
    }
}
