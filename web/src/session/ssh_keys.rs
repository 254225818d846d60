//! "SSH keys": the public keys that may log in to the session's instances,
//! each with a Remove button, and a field to paste one more. The SSH bar
//! (`ssh_bar.rs`) opens it and holds what it shows.

use playground_protocol::SshKeyInfo;
use web_sys::HtmlTextAreaElement;
use yew::prelude::*;

use super::format::key_kind;

#[derive(Properties, PartialEq)]
pub struct SshKeysProps {
    /// The keys, once loaded.
    pub keys: Option<Vec<SshKeyInfo>>,
    /// Why the keys could not be loaded, or one could not be removed.
    pub list_error: Option<AttrValue>,
    /// The text in the field.
    pub input: AttrValue,
    /// Why the last key was refused (the server's reason).
    pub error: Option<AttrValue>,
    /// An Add is under way.
    pub adding: bool,
    /// The fingerprint of a key being removed.
    pub removing: Option<AttrValue>,
    pub on_input: Callback<String>,
    pub on_add: Callback<()>,
    /// Remove the key with this fingerprint.
    pub on_remove: Callback<String>,
    pub on_close: Callback<()>,
}

/// The session's SSH keys and the form to add one, as a panel under the
/// SSH bar; Escape closes it.
#[function_component(SshKeys)]
pub fn ssh_keys(props: &SshKeysProps) -> Html {
    let on_close = props.on_close.clone();
    let onkeydown = Callback::from(move |e: KeyboardEvent| {
        if e.key() == "Escape" {
            e.prevent_default();
            on_close.emit(())
        }
    });
    let list = match &props.keys {
        None if props.list_error.is_none() => html! {
            <p class="ssh-keys-note"><span class="spinner"></span>{ "Loading keys…" }</p>
        },
        None => html! {},
        Some(keys) if keys.is_empty() => html! {
            <p id="ssh-keys-empty" class="ssh-keys-note">
                { "No keys yet: add one below, then run the command." }
            </p>
        },
        Some(keys) => html! {
            <ul id="ssh-keys" class="ssh-keys" aria-label="Keys that may log in">
                { for keys.iter().map(|k| key_row(props, k)) }
            </ul>
        },
    };
    html! {
        <div id="ssh-keys-panel" class="ssh-panel" role="dialog" aria-labelledby="ssh-keys-title" {onkeydown}>
            <div class="ssh-panel-head">
                <h2 id="ssh-keys-title">{ "SSH keys" }</h2>
                <span class="ssh-panel-sub">{ "for every instance of this session" }</span>
                <div class="spacer"></div>
                <button class="dismiss" title="Close (Esc)" aria-label="Close SSH keys"
                        onclick={props.on_close.reform(|_| ())}>{ "×" }</button>
            </div>
            { list }
            if let Some(e) = &props.list_error {
                <p id="ssh-keys-error" class="field-error" role="alert">{ e.clone() }</p>
            }
            { add_form(props) }
        </div>
    }
}

/// One key: its type, comment and fingerprint, and a Remove button.
fn key_row(props: &SshKeysProps, key: &SshKeyInfo) -> Html {
    let fingerprint = key.fingerprint.clone();
    let removing = props.removing.as_deref() == Some(key.fingerprint.as_str());
    let onclick = props
        .on_remove
        .reform(move |_: MouseEvent| fingerprint.clone());
    let name = if key.comment.is_empty() {
        "(no comment)".to_owned()
    } else {
        key.comment.clone()
    };
    html! {
        <li class="ssh-key" data-fingerprint={key.fingerprint.clone()}>
            <span class="ssh-key-kind">{ key_kind(&key.key).to_owned() }</span>
            <span class="ssh-key-text">
                <span class="ssh-key-comment">{ name.clone() }</span>
                <span class="ssh-key-fingerprint" title={key.fingerprint.clone()}>{ key.fingerprint.clone() }</span>
            </span>
            <button class="btn btn-outline-danger btn-xs ssh-key-remove" disabled={removing}
                    aria-label={format!("Remove the key {name}")} {onclick}>
                { if removing { "Removing…" } else { "Remove" } }
            </button>
        </li>
    }
}

/// The field to paste a public key and its Add button; the server's
/// reason under it when the key is refused (the text stays to be fixed).
fn add_form(props: &SshKeysProps) -> Html {
    let oninput = props
        .on_input
        .reform(|e: InputEvent| e.target_unchecked_into::<HtmlTextAreaElement>().value());
    let on_add = props.on_add.clone();
    let onsubmit = Callback::from(move |e: SubmitEvent| {
        e.prevent_default();
        on_add.emit(())
    });
    // A key is one line: Enter adds it (Shift+Enter still breaks the line).
    let on_add = props.on_add.clone();
    let onkeydown = Callback::from(move |e: KeyboardEvent| {
        if e.key() == "Enter" && !e.shift_key() {
            e.prevent_default();
            on_add.emit(())
        }
    });
    let invalid = props.error.is_some();
    let described = if invalid {
        "ssh-key-error ssh-key-help"
    } else {
        "ssh-key-help"
    };
    html! {
        <form class="ssh-key-form" {onsubmit} novalidate=true>
            <label for="ssh-key-input">{ "Add a public key" }</label>
            <textarea id="ssh-key-input" class={classes!("input", "ssh-key-input", invalid.then_some("invalid"))}
                      rows="3" spellcheck="false" autocomplete="off"
                      placeholder="ssh-ed25519 AAAAC3NzaC1lZDI1NTE5AAAA… you@laptop"
                      aria-invalid={invalid.then_some("true")} aria-describedby={described}
                      value={props.input.clone()} {oninput} {onkeydown} />
            if let Some(error) = &props.error {
                <p id="ssh-key-error" class="field-error" role="alert">{ error.clone() }</p>
            }
            <div class="ssh-key-actions">
                <p id="ssh-key-help" class="ssh-key-help">
                    { "Paste your " }<code>{ "~/.ssh/id_ed25519.pub" }</code>
                    { ". No key yet? Make one with " }<code>{ "ssh-keygen -t ed25519" }</code>{ "." }
                </p>
                <button id="ssh-key-add" type="submit" class="btn btn-primary btn-sm" disabled={props.adding}>
                    { if props.adding { "Adding…" } else { "Add key" } }
                </button>
            </div>
        </form>
    }
}
