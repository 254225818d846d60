//! The landing page's list of tutorials (`GET /api/scenarios`): a card per
//! scenario, courses as titled groups of cards, in the server's order.

use playground_protocol::{CatalogEntry, ScenarioSummary};
use yew::prelude::*;

#[derive(Properties, PartialEq)]
pub struct CatalogProps {
    pub entries: Vec<CatalogEntry>,
    /// A tutorial was picked (its id).
    pub on_open: Callback<String>,
}

/// The page's address of a tutorial: `/tutorials/{id}`, each part of the id
/// encoded (ids are paths, `/` stays).
pub fn tutorial_path(id: &str) -> String {
    let parts: Vec<String> = id
        .split('/')
        .map(|p| String::from(js_sys::encode_uri_component(p)))
        .collect();
    format!("/tutorials/{}", parts.join("/"))
}

/// Nothing at all when the server offers no tutorials.
#[function_component(Catalog)]
pub fn catalog(props: &CatalogProps) -> Html {
    if props.entries.is_empty() {
        return html! {};
    }
    html! {
        <section id="tutorials" class="catalog">
            <h2 class="catalog-heading">{ "Tutorials" }</h2>
            { entries(&props.entries, &props.on_open, 0) }
        </section>
    }
}

/// Scenarios of one level as a grid, then its courses, each a group.
fn entries(list: &[CatalogEntry], on_open: &Callback<String>, depth: usize) -> Html {
    let cards = list.iter().filter_map(|e| match e {
        CatalogEntry::Scenario(s) => Some(card(s, on_open)),
        CatalogEntry::Course { .. } => None,
    });
    let courses = list.iter().filter_map(|e| match e {
        CatalogEntry::Course {
            id,
            title,
            description,
            entries: inner,
        } => Some(html! {
            <div class={classes!("course", (depth > 0).then_some("nested"))} data-course={id.clone()}>
                <h3 class="course-title">{ title.clone() }</h3>
                if !description.is_empty() {
                    <p class="course-text">{ description.clone() }</p>
                }
                { entries(inner, on_open, depth + 1) }
            </div>
        }),
        CatalogEntry::Scenario(_) => None,
    });
    html! {
        <>
            <div class="catalog-grid">{ for cards }</div>
            { for courses }
        </>
    }
}

fn card(s: &ScenarioSummary, on_open: &Callback<String>) -> Html {
    let id = s.id.clone();
    let on_open = on_open.clone();
    // A real link (a new tab with Ctrl works), handled here for a plain click.
    let onclick = Callback::from(move |e: MouseEvent| {
        if e.button() == 0 && !(e.ctrl_key() || e.meta_key() || e.shift_key()) {
            e.prevent_default();
            on_open.emit(id.clone());
        }
    });
    let steps = match s.steps {
        1 => "1 step".to_owned(),
        n => format!("{n} steps"),
    };
    let machines = match s.hosts.len() {
        1 => "1 machine".to_owned(),
        n => format!("{n} machines"),
    };
    html! {
        <a class="tutorial-card" href={tutorial_path(&s.id)} data-scenario={s.id.clone()} {onclick}>
            <span class="tutorial-card-title">{ s.title.clone() }</span>
            if !s.description.is_empty() {
                <span class="tutorial-card-text">{ s.description.clone() }</span>
            }
            <span class="tutorial-card-meta">
                <span>{ steps }</span>
                <span class="dot-sep">{ "·" }</span>
                <span>{ machines }</span>
                <span class="tutorial-card-go">{ "Start →" }</span>
            </span>
        </a>
    }
}
