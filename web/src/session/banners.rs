//! Notes across the session page: the warning that the session ends soon
//! (with "Extend"), the note that the session's host is gone (many hosts
//! behind a gateway) and the note over an instance that has stopped.

use yew::prelude::*;

use super::format::format_clock;

#[derive(Properties, PartialEq)]
pub struct EndingBannerProps {
    /// Seconds left.
    pub remaining: u64,
    /// Offer "Extend": the server still allows it and this is not a
    /// read-only view.
    pub can_extend: bool,
    /// An extension is under way.
    pub extending: bool,
    pub on_extend: Callback<()>,
}

/// Shown for the last minutes of a session, so nobody loses work by surprise.
#[function_component(EndingBanner)]
pub fn ending_banner(props: &EndingBannerProps) -> Html {
    html! {
        <div id="ending-soon-banner" class="ending-banner" role="status" aria-live="polite">
            <span class="ending-icon">{ "!" }</span>
            <span>
                { "This session ends in " }
                <strong class="ending-time">{ format_clock(props.remaining) }</strong>
                { " — save your work. Its instances and everything in them will then be deleted." }
            </span>
            if props.can_extend {
                <button id="extend-session" class="btn btn-primary btn-sm"
                        disabled={props.extending}
                        onclick={props.on_extend.reform(|_| ())}>
                    { if props.extending { "Extending…" } else { "Extend" } }
                </button>
            }
        </div>
    }
}

/// Replaces the port and file bars of an instance whose init has exited:
/// they would only fail.
#[function_component(ExitedNote)]
pub fn exited_note() -> Html {
    html! {
        <div id="instance-exited-note" class="instance-note" role="status">
            <strong>{ "This instance has stopped." }</strong>
            { " Its init process exited (it was killed, or the instance ran out of memory or processes), so its terminal and ports no longer work. Delete it to free its place, then add a new one." }
        </div>
    }
}

#[derive(Properties, PartialEq)]
pub struct HostGoneBannerProps {
    /// The gateway's words: which node, since when.
    pub message: AttrValue,
}

/// Shown while a gateway says the node holding this session stopped
/// answering: the page says why nothing works instead of only
/// "Reconnecting…", and the note goes when the session answers again.
#[function_component(HostGoneBanner)]
pub fn host_gone_banner(props: &HostGoneBannerProps) -> Html {
    html! {
        <div id="host-gone-banner" class="ending-banner" role="alert">
            <span class="ending-icon">{ "!" }</span>
            <span>
                <strong>{ "This session's host is gone." }</strong>
                { " If it comes back, so do your instances, and this page reconnects by itself. " }
                <span class="host-gone-detail">{ format!("({})", props.message) }</span>
            </span>
        </div>
    }
}
