//! The session page's top bar: the live-link status, the read-only badge,
//! the terminal look (font size, theme), the share panel (as children), the
//! countdown and "Close session".

use yew::prelude::*;

use super::format::format_duration;
use super::ENDING_SOON_SECS;
use crate::events::LinkState;
use crate::settings::{Settings, MAX_FONT, MIN_FONT};

#[derive(Properties, PartialEq)]
pub struct TopBarProps {
    /// A read-only view: a badge, and nothing that changes the session.
    pub view: bool,
    pub link: LinkState,
    /// Seconds left; `None` until the session is loaded.
    pub remaining: Option<u64>,
    pub settings: Settings,
    /// "Close session" was clicked and the answer is awaited.
    pub closing: bool,
    pub on_font_smaller: Callback<()>,
    pub on_font_larger: Callback<()>,
    pub on_toggle_theme: Callback<()>,
    pub on_close: Callback<()>,
    /// Shown between the look controls and the countdown (the share panel).
    #[prop_or_default]
    pub children: Html,
}

#[function_component(TopBar)]
pub fn top_bar(props: &TopBarProps) -> Html {
    let loaded = props.remaining.is_some();
    let class = classes!(
        "countdown",
        props
            .remaining
            .is_some_and(|r| r < ENDING_SOON_SECS)
            .then_some("low")
    );
    let link = match props.link {
        // Before the first load the page shows "Loading session…" instead.
        LinkState::Reconnecting { attempt, delay_ms } if loaded => html! {
            <span id="events-status" class="link-status"
                  title={format!("The live connection to the server dropped; trying again (attempt {attempt}, next in {:.1} s). The page may be out of date until then.", f64::from(delay_ms) / 1000.0)}>
                <span class="spinner"></span>{ "Reconnecting…" }
            </span>
        },
        _ => html! {},
    };
    html! {
        <header class="topbar">
            <span class="brand"><span class="brand-mark">{ ">_" }</span>{ "Playground" }</span>
            <div class="spacer"></div>
            { link }
            if props.view {
                <span id="read-only-badge" class="badge badge-readonly"
                      title="You are watching this session: you can see its terminals but not type into them">
                    { "Read-only view" }
                </span>
            }
            { look_controls(props) }
            { props.children.clone() }
            <div class="countdown-box" title="Time left before this session and its instances are deleted">
                <span class="countdown-label">{ "Session ends in" }</span>
                <span id="countdown" {class}>
                    { props.remaining.map(format_duration).unwrap_or_else(|| "--:--".to_owned()) }
                </span>
            </div>
            if !props.view {
                <button id="close-session" class="btn btn-outline-danger"
                        disabled={props.closing}
                        onclick={props.on_close.reform(|_| ())}>
                    { if props.closing { "Closing…" } else { "Close session" } }
                </button>
            }
        </header>
    }
}

/// Font size and theme of the terminals (and of the page, for the theme).
fn look_controls(props: &TopBarProps) -> Html {
    let s = props.settings;
    html! {
        <div class="look">
            <button id="font-smaller" class="btn btn-secondary btn-sm" title="Smaller terminal text"
                    disabled={s.font_size <= MIN_FONT}
                    onclick={props.on_font_smaller.reform(|_| ())}>{ "A−" }</button>
            <button id="font-larger" class="btn btn-secondary btn-sm" title="Larger terminal text"
                    disabled={s.font_size >= MAX_FONT}
                    onclick={props.on_font_larger.reform(|_| ())}>{ "A+" }</button>
            <button id="theme-toggle" class="btn btn-secondary btn-sm"
                    title={if s.light { "Switch to the dark theme" } else { "Switch to the light theme" }}
                    onclick={props.on_toggle_theme.reform(|_| ())}>
                { if s.light { "Dark" } else { "Light" } }
            </button>
        </div>
    }
}
