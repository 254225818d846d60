//! A small file editor beside the terminal: a tree of `/root` (directories
//! listed when opened), a monospace text area, and "Save".

use std::collections::{HashMap, HashSet};

use playground_protocol::{DirEntry, EntryKind};
use web_sys::HtmlTextAreaElement;
use yew::prelude::*;

use crate::api::{self, ApiResult};

const ROOT: &str = "/root";

#[derive(Properties, PartialEq)]
pub struct EditorProps {
    pub sid: AttrValue,
    pub name: AttrValue,
}

pub enum Msg {
    Toggle(String),
    Listed(String, ApiResult<Vec<DirEntry>>),
    Open(String),
    Loaded(String, ApiResult<String>),
    Input(String),
    Save,
    Saved(String, ApiResult<()>),
    Refresh,
}

pub struct Editor {
    listings: HashMap<String, Result<Vec<DirEntry>, String>>,
    expanded: HashSet<String>,
    /// The file in the text area.
    open: Option<String>,
    text: String,
    loading: bool,
    saving: bool,
    /// A message under the buttons, and whether it is good news.
    status: Option<(bool, String)>,
}

impl Editor {
    fn list(&self, ctx: &Context<Self>, dir: String) {
        let (sid, name) = (ctx.props().sid.clone(), ctx.props().name.clone());
        ctx.link().send_future(async move {
            let result = api::list_dir(&sid, &name, &dir).await;
            Msg::Listed(dir, result)
        });
    }

    fn tree(&self, ctx: &Context<Self>, dir: &str, depth: usize) -> Html {
        let entries = match self.listings.get(dir) {
            None => return html! { <div class="tree-note">{ "Loading…" }</div> },
            Some(Err(e)) => return html! { <div class="tree-note error">{ e.clone() }</div> },
            Some(Ok(entries)) => entries,
        };
        let mut sorted: Vec<&DirEntry> = entries.iter().collect();
        sorted.sort_by_key(|e| (e.kind != EntryKind::Dir, e.name.to_lowercase()));
        if sorted.is_empty() {
            return html! { <div class="tree-note">{ "(empty)" }</div> };
        }
        let pad = format!("padding-left: {}px", 6 + depth * 14);
        let items = sorted.into_iter().map(|e| {
            let path = format!("{}/{}", dir.trim_end_matches('/'), e.name);
            match e.kind {
                EntryKind::Dir => {
                    let open = self.expanded.contains(&path);
                    let p = path.clone();
                    html! {
                        <li>
                            <button class="tree-item tree-dir" style={pad.clone()} data-path={path.clone()}
                                    onclick={ctx.link().callback(move |_| Msg::Toggle(p.clone()))}>
                                <span class="tree-caret">{ if open { "▾" } else { "▸" } }</span>
                                { e.name.clone() }
                            </button>
                            if open { { self.tree(ctx, &path, depth + 1) } }
                        </li>
                    }
                }
                EntryKind::File | EntryKind::Symlink => {
                    let p = path.clone();
                    let current = self.open.as_deref() == Some(path.as_str());
                    html! {
                        <li>
                            <button class={classes!("tree-item", "tree-file", current.then_some("current"))}
                                    style={pad.clone()} data-path={path.clone()}
                                    onclick={ctx.link().callback(move |_| Msg::Open(p.clone()))}>
                                { e.name.clone() }
                            </button>
                        </li>
                    }
                }
                EntryKind::Other => html! {},
            }
        });
        html! { <ul class="tree">{ for items }</ul> }
    }
}

impl Component for Editor {
    type Message = Msg;
    type Properties = EditorProps;

    fn create(ctx: &Context<Self>) -> Self {
        let editor = Editor {
            listings: HashMap::new(),
            expanded: HashSet::new(),
            open: None,
            text: String::new(),
            loading: false,
            saving: false,
            status: None,
        };
        editor.list(ctx, ROOT.to_owned());
        editor
    }

    fn update(&mut self, ctx: &Context<Self>, msg: Msg) -> bool {
        match msg {
            Msg::Toggle(dir) => {
                if !self.expanded.remove(&dir) {
                    self.expanded.insert(dir.clone());
                    self.list(ctx, dir);
                }
            }
            Msg::Listed(dir, result) => {
                self.listings
                    .insert(dir, result.map_err(|e| e.message.clone()));
            }
            Msg::Refresh => {
                self.list(ctx, ROOT.to_owned());
                for dir in self.expanded.clone() {
                    self.list(ctx, dir);
                }
            }
            Msg::Open(path) => {
                self.loading = true;
                self.status = None;
                let (sid, name) = (ctx.props().sid.clone(), ctx.props().name.clone());
                ctx.link().send_future(async move {
                    let result = api::read_file(&sid, &name, &path).await;
                    Msg::Loaded(path, result)
                });
            }
            Msg::Loaded(path, result) => {
                self.loading = false;
                match result {
                    Ok(text) => {
                        self.open = Some(path);
                        self.text = text;
                    }
                    Err(e) => self.status = Some((false, format!("Could not open {path}: {e}"))),
                }
            }
            Msg::Input(text) => {
                self.text = text;
                return self.status.take().is_some();
            }
            Msg::Save => {
                let Some(path) = self.open.clone() else {
                    return false;
                };
                if self.saving {
                    return false;
                }
                self.saving = true;
                self.status = None;
                let (sid, name) = (ctx.props().sid.clone(), ctx.props().name.clone());
                let text = self.text.clone();
                ctx.link().send_future(async move {
                    let result = api::write_file(&sid, &name, &path, text).await;
                    Msg::Saved(path, result)
                });
            }
            Msg::Saved(path, result) => {
                self.saving = false;
                self.status = Some(match result {
                    Ok(()) => (true, "Saved".to_owned()),
                    Err(e) => (false, format!("Could not save {path}: {e}")),
                });
            }
        }
        true
    }

    fn view(&self, ctx: &Context<Self>) -> Html {
        let oninput = ctx.link().callback(|e: InputEvent| {
            Msg::Input(e.target_unchecked_into::<HtmlTextAreaElement>().value())
        });
        // Ctrl+S saves instead of saving the web page.
        let onkeydown = ctx.link().batch_callback(|e: KeyboardEvent| {
            if (e.ctrl_key() || e.meta_key()) && e.key().eq_ignore_ascii_case("s") {
                e.prevent_default();
                Some(Msg::Save)
            } else {
                None
            }
        });
        html! {
            <section id="editor" class="editor">
                <div class="editor-tree">
                    <div class="editor-tree-head">
                        <span class="mono">{ ROOT }</span>
                        <button class="btn btn-secondary btn-xs" title="Reload the file list"
                                onclick={ctx.link().callback(|_| Msg::Refresh)}>{ "↻" }</button>
                    </div>
                    { self.tree(ctx, ROOT, 0) }
                </div>
                <div class="editor-main">
                    <div class="editor-bar">
                        <span id="editor-path" class="mono editor-path">
                            { self.open.clone().unwrap_or_else(|| if self.loading { "Opening…".to_owned() } else { "Click a file to open it".to_owned() }) }
                        </span>
                        if let Some((ok, text)) = &self.status {
                            <span id="editor-status" class={classes!("editor-status", if *ok { "ok" } else { "error" })}
                                  role="status">{ text.clone() }</span>
                        }
                        <button id="editor-save" class="btn btn-primary btn-sm"
                                disabled={self.open.is_none() || self.saving}
                                onclick={ctx.link().callback(|_| Msg::Save)}>
                            { if self.saving { "Saving…" } else { "Save" } }
                        </button>
                    </div>
                    <textarea id="editor-text" class="editor-text" spellcheck="false"
                              disabled={self.open.is_none()}
                              value={self.text.clone()} {oninput} {onkeydown} />
                </div>
            </section>
        }
    }
}
