//! The selected instance's shells: a tab per shell (up to four), a terminal
//! per tab, and the drop zone for uploads. The shell counts are kept in
//! localStorage, so a reload opens as many shells again; an instance shows
//! at least the tabs whose shells run on the server (an SSH login opens
//! one), see `shown_tabs`.

use std::collections::HashMap;

use web_sys::File;
use yew::prelude::*;

use super::files_bar::file_list;
use crate::settings::Settings;
use crate::terminal::TerminalView;

/// Shells per instance (tabs above the terminal).
pub const MAX_TABS: u8 = 4;

/// Per instance: how many shells, and the visible one.
pub type Tabs = HashMap<String, (u8, u8)>;

#[derive(Properties, PartialEq)]
pub struct TerminalTabsProps {
    pub sid: AttrValue,
    pub name: AttrValue,
    pub hostname: AttrValue,
    /// A read-only view: no new shells, no uploads.
    pub view: bool,
    /// The instance has stopped: its terminals keep their last output.
    pub exited: bool,
    /// How many shells, and the visible one.
    pub count: u8,
    pub active: u8,
    pub settings: Settings,
    /// Files are being dragged over the terminals.
    pub dragging: bool,
    pub on_select: Callback<u8>,
    pub on_new: Callback<()>,
    pub on_dragging: Callback<bool>,
    /// Files were dropped on the terminals.
    pub on_files: Callback<Vec<File>>,
}

/// The shells of an instance as tabs, and the drop zone for uploads.
#[function_component(TerminalTabs)]
pub fn terminal_tabs(props: &TerminalTabsProps) -> Html {
    let (view, exited, count, active) = (props.view, props.exited, props.count, props.active);
    let tabs = (0..count).map(|n| {
        let onclick = props.on_select.reform(move |_: MouseEvent| n);
        html! {
            <button class={classes!("terminal-tab", (n == active).then_some("active"))}
                    data-tab={n.to_string()} aria-selected={(n == active).to_string()} {onclick}>
                { (n + 1).to_string() }
            </button>
        }
    });
    // Hidden tabs stay mounted (and connected): the key keeps each one.
    let views = (0..count).map(|n| {
        html! {
            <TerminalView key={format!("{}/{}/{n}", props.sid, props.name)}
                sid={props.sid.clone()} name={props.name.clone()} {view} tab={n}
                active={n == active} font_size={props.settings.font_size}
                light={props.settings.light} stopped={exited} />
        }
    });
    let drop_enabled = !view && !exited;
    let on_dragging = props.on_dragging.clone();
    let ondragover = Callback::from(move |e: DragEvent| {
        if !drop_enabled {
            return;
        }
        // Accepting the drag is what makes the browser allow the drop.
        e.prevent_default();
        on_dragging.emit(true)
    });
    let ondragleave = props.on_dragging.reform(|_: DragEvent| false);
    let on_files = props.on_files.clone();
    let ondrop = Callback::from(move |e: DragEvent| {
        if !drop_enabled {
            return;
        }
        e.prevent_default();
        let files = e
            .data_transfer()
            .and_then(|d| d.files())
            .map(file_list)
            .unwrap_or_default();
        on_files.emit(files)
    });
    html! {
        <div class={classes!("terminals", props.dragging.then_some("dragging"))}
             {ondragover} {ondragleave} {ondrop}>
            <div class="tabbar" role="tablist">
                { for tabs }
                if !view && !exited && count < MAX_TABS {
                    <button id="new-tab" class="terminal-tab new-tab" title="Open another shell in this instance"
                            onclick={props.on_new.reform(|_| ())}>{ "+" }</button>
                }
            </div>
            { for views }
            if props.dragging {
                <div class="drop-hint">{ format!("Drop to upload into {}", props.hostname) }</div>
            }
        </div>
    }
}

/// How many tabs an instance shows: those the user opened on this page
/// (`opened`), and at least those that may have a running shell
/// (`InstanceInfo::shells`), one to `MAX_TABS`.
pub fn shown_tabs(opened: u8, shells: u8) -> u8 {
    opened.max(shells).clamp(1, MAX_TABS)
}

fn local_storage() -> Option<web_sys::Storage> {
    web_sys::window()?.local_storage().ok()?
}

fn tabs_key(sid: &str) -> String {
    format!("playground.tabs.{sid}")
}

/// Remember how many shells each instance has, so a reload shows them all.
pub fn save_tabs(sid: &str, tabs: &Tabs) {
    let counts: HashMap<&String, u8> = tabs.iter().map(|(k, v)| (k, v.0)).collect();
    if let (Some(store), Ok(text)) = (local_storage(), serde_json::to_string(&counts)) {
        let _ = store.set_item(&tabs_key(sid), &text);
    }
}

/// Shell counts saved by `save_tabs` (the first tab shows after a reload).
pub fn load_tabs(sid: &str) -> Tabs {
    local_storage()
        .and_then(|s| s.get_item(&tabs_key(sid)).ok().flatten())
        .and_then(|text| serde_json::from_str::<HashMap<String, u8>>(&text).ok())
        .map(|m| {
            m.into_iter()
                .map(|(k, n)| (k, (n.clamp(1, MAX_TABS), 0)))
                .collect()
        })
        .unwrap_or_default()
}

/// The session was closed: its counts are of no more use.
pub fn forget_tabs(sid: &str) {
    if let Some(store) = local_storage() {
        let _ = store.remove_item(&tabs_key(sid));
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn running_shells_add_tabs() {
        assert_eq!(shown_tabs(0, 0), 1);
        assert_eq!(shown_tabs(1, 0), 1);
        assert_eq!(shown_tabs(1, 2), 2, "an SSH login's tab");
        assert_eq!(shown_tabs(3, 2), 3, "tabs opened here stay");
        assert_eq!(shown_tabs(2, 9), MAX_TABS);
    }
}
