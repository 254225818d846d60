//! The playground's web page. Built with Trunk (see `/Trunk.toml`) into
//! `dist/`, which the server serves from `/`. Addresses under `/embed/`
//! get the embed page (`embed.rs`), all others the app (`app.rs`).

mod api;
mod app;
mod backoff;
mod catalog;
mod classes;
mod editor;
mod embed;
mod events;
mod session;
mod settings;
mod terminal;
mod upload;
mod xterm;

fn main() {
    match embed::route() {
        Some(props) => {
            yew::Renderer::<embed::EmbedPage>::with_props(props).render();
        }
        None => {
            yew::Renderer::<app::App>::new().render();
        }
    }
}
