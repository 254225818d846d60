//! Scenarios: step-by-step tutorials in Killercoda's format, loaded from
//! `--scenarios DIR` at start (see `docs/scenarios.md`). A scenario is a
//! folder with an `index.json`; a course groups scenarios, by folder or by a
//! `structure.json`. Everything is checked and rendered once, at load: the
//! page gets sanitised HTML, the session model gets the scripts and the
//! files to copy into instances.
//!
//! One job per file: reading folders and JSON (`load.rs`), Markdown and its
//! annotations to sanitised HTML (`markdown.rs`), asset globs to file lists
//! (`assets.rs`), Killercoda's environments to our instances (`backend.rs`).

mod assets;
mod backend;
mod load;
mod markdown;

use std::path::PathBuf;

pub use load::{check_limits, load_dir};

/// Everything `--scenarios` holds: the scenarios, the courses that group
/// them, and what the top level lists, in order.
#[derive(Debug, Default)]
pub struct Catalog {
    /// Every scenario reachable from the top level, by id.
    pub scenarios: Vec<Scenario>,
    /// Every course reachable from the top level, by id.
    pub courses: Vec<Course>,
    /// The top level: a `structure.json`'s order, else folders by name.
    pub top: Vec<Item>,
}

impl Catalog {
    pub fn scenario(&self, id: &str) -> Option<&Scenario> {
        self.scenarios.iter().find(|s| s.id == id)
    }

    pub fn course(&self, id: &str) -> Option<&Course> {
        self.courses.iter().find(|c| c.id == id)
    }
}

/// A group of scenarios (and maybe of other courses).
#[derive(Debug, Clone, PartialEq)]
pub struct Course {
    /// The folder, relative to the scenarios folder (`/`-separated).
    pub id: String,
    pub title: String,
    pub description: String,
    pub items: Vec<Item>,
}

/// One entry of a course or of the top level. `title` and `description`
/// are the overrides a `structure.json` may give; the page falls back to the
/// scenario's or course's own.
#[derive(Debug, Clone, PartialEq)]
pub struct Item {
    pub kind: ItemKind,
    pub id: String,
    pub title: Option<String>,
    pub description: Option<String>,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ItemKind {
    Scenario,
    Course,
}

/// One loaded and checked scenario.
#[derive(Debug, Clone)]
pub struct Scenario {
    /// The folder, relative to the scenarios folder (`/`-separated).
    pub id: String,
    pub title: String,
    /// Plain text, as Killercoda shows it.
    pub description: String,
    pub intro: Option<Page>,
    pub steps: Vec<Page>,
    pub finish: Option<Page>,
    /// Files to copy into instances before the intro's scripts run.
    pub assets: Vec<Asset>,
    /// Killercoda's environment name, as written (`backend.imageid`).
    pub imageid: String,
    /// The instances to start, in order: `host01` is the first.
    pub hostnames: Vec<String>,
    /// `None`: the server's default.
    pub profile: Option<sandbox::Profile>,
    pub layout: Layout,
}

/// The intro, a step or the finish.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct Page {
    pub title: Option<String>,
    /// The Markdown rendered to sanitised HTML, annotations included.
    pub html: String,
    /// Shell scripts, their contents: run hidden, run in the terminal, and
    /// run to check the step (exit status 0 passes).
    pub background: Option<String>,
    pub foreground: Option<String>,
    pub verify: Option<String>,
}

/// One file to copy into an instance.
#[derive(Debug, Clone, PartialEq)]
pub struct Asset {
    /// Instance hostname (`host01` is the first of `Scenario::hostnames`).
    pub hostname: String,
    /// The file on the server.
    pub source: PathBuf,
    /// Absolute path of the file inside the instance.
    pub target: String,
    /// A `chmod` mode to apply after copying (`+x`, `0644`, `u+w,g-w`).
    pub chmod: Option<String>,
}

/// `interface.layout`. We have no editor yet: `Ide` shows the terminal.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub enum Layout {
    #[default]
    Terminal,
    Ide,
    /// A value we do not know, kept to show it in the log.
    Other(String),
}
