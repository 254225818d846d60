//! The playground's web page. Built with Trunk (see `/Trunk.toml`) into
//! `dist/`, which the server serves from `/`.

mod api;
mod app;
mod backoff;
mod catalog;
mod classes;
mod editor;
mod events;
mod session;
mod settings;
mod terminal;
mod upload;
mod xterm;

fn main() {
    yew::Renderer::<app::App>::new().render();
}
