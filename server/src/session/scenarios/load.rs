//! Reading `--scenarios DIR`: scenario folders (`index.json` and the files
//! it names) and courses (folders of scenarios, or a `structure.json`
//! listing them). Everything is checked; an error names the file and the
//! problem, and stops the start like a bad templates file does.

use std::collections::{BTreeMap, HashMap, HashSet};
use std::path::{Component, Path, PathBuf};

use anyhow::anyhow;
use playground_protocol::TemplateInfo;
use serde::Deserialize;

use super::assets::{self, AssetSpec};
use super::{backend, markdown, Catalog, Course, Item, ItemKind, Layout, Page, Scenario};

/// Largest Markdown, script or JSON file read.
const MAX_FILE: u64 = 1 << 20;

// What the JSON files hold. Keys we do not use (Katacoda's `difficulty`,
// `time`, `environment`, ...) are ignored at the top level; in a page or an
// asset entry an unknown key is refused, where a typo would lose a script.

#[derive(Deserialize)]
struct IndexFile {
    title: String,
    #[serde(default)]
    description: String,
    #[serde(default)]
    details: Details,
    #[serde(default)]
    backend: Option<Backend>,
    #[serde(default)]
    interface: Option<Interface>,
}

#[derive(Deserialize, Default)]
struct Details {
    #[serde(default)]
    intro: Option<PageFile>,
    #[serde(default)]
    steps: Vec<PageFile>,
    #[serde(default)]
    finish: Option<PageFile>,
    #[serde(default)]
    assets: BTreeMap<String, Vec<AssetSpec>>,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct PageFile {
    #[serde(default)]
    title: Option<String>,
    #[serde(default)]
    text: Option<String>,
    /// Katacoda called it `courseData`.
    #[serde(default, alias = "courseData")]
    background: Option<String>,
    /// Katacoda called it `code`.
    #[serde(default, alias = "code")]
    foreground: Option<String>,
    #[serde(default)]
    verify: Option<String>,
    /// Katacoda's answer page: not shown (yet).
    #[serde(default)]
    #[allow(dead_code)]
    answer: Option<String>,
}

#[derive(Deserialize)]
struct Backend {
    imageid: String,
}

#[derive(Deserialize)]
struct Interface {
    #[serde(default)]
    layout: Option<String>,
}

#[derive(Deserialize)]
struct StructureFile {
    #[serde(default)]
    title: Option<String>,
    #[serde(default)]
    description: Option<String>,
    items: Vec<StructureItem>,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct StructureItem {
    path: String,
    #[serde(default)]
    title: Option<String>,
    #[serde(default)]
    description: Option<String>,
}

/// Every scenario and course of `dir`. Without a `structure.json`, every
/// folder with an `index.json` is a scenario and every other folder holding
/// scenarios (at any depth) a course, by name; with one, only what it
/// lists, in its order (paths may reach other folders of `dir`, never out).
/// `templates` are the server's: a `backend.imageid` naming one of them
/// gets its instances.
pub fn load_dir(dir: &Path, templates: &[TemplateInfo]) -> anyhow::Result<Catalog> {
    let root = dir
        .canonicalize()
        .map_err(|e| anyhow!("scenarios folder {}: {e}", dir.display()))?;
    if !root.is_dir() {
        return Err(anyhow!("scenarios folder {}: not a folder", dir.display()));
    }
    if root.join("index.json").exists() {
        return Err(anyhow!(
            "scenarios folder {}: holds an index.json: give the folder above it, \
             which holds scenario folders",
            dir.display()
        ));
    }
    let mut loader = Loader {
        root,
        templates,
        scenarios: BTreeMap::new(),
        courses: HashMap::new(),
        visiting: HashSet::new(),
    };
    let top = loader.group("")?;
    let mut courses: Vec<Course> = loader.courses.into_values().flatten().collect();
    courses.sort_by(|a, b| a.id.cmp(&b.id));
    Ok(Catalog {
        scenarios: loader.scenarios.into_values().collect(),
        courses,
        top,
    })
}

/// Scenarios need no more instances than a session may have.
pub fn check_limits(dir: &Path, catalog: &Catalog, max_instances: u32) -> anyhow::Result<()> {
    for s in &catalog.scenarios {
        if s.hostnames.len() > max_instances as usize {
            return Err(anyhow!(
                "scenario file {}: backend.imageid {:?} needs {} instances, more than --max-instances ({max_instances})",
                dir.join(&s.id).join("index.json").display(),
                s.imageid,
                s.hostnames.len()
            ));
        }
    }
    Ok(())
}

struct Loader<'a> {
    root: PathBuf,
    templates: &'a [TemplateInfo],
    scenarios: BTreeMap<String, Scenario>,
    /// `None` while a course is being read, and for folders that hold no
    /// scenario.
    courses: HashMap<String, Option<Course>>,
    /// Courses being read: a `structure.json` reaching one of them again
    /// is a circle.
    visiting: HashSet<String>,
}

impl Loader<'_> {
    fn path(&self, rel: &str) -> PathBuf {
        if rel.is_empty() {
            self.root.clone()
        } else {
            self.root.join(rel)
        }
    }

    /// The items of the folder `rel` (`""` is the top).
    fn group(&mut self, rel: &str) -> anyhow::Result<Vec<Item>> {
        let dir = self.path(rel);
        let structure = dir.join("structure.json");
        if structure.exists() {
            let file: StructureFile = read_json(&structure)?;
            let fail =
                |problem: String| anyhow!("scenario file {}: {problem}", structure.display());
            let mut items = Vec::new();
            for item in file.items {
                let target = join_rel(rel, &item.path).ok_or_else(|| {
                    fail(format!(
                        "item path {:?} leaves the scenarios folder",
                        item.path
                    ))
                })?;
                check_id(&target).map_err(|e| fail(format!("item path {:?}: {e}", item.path)))?;
                let kind = self.entry(&target)?.ok_or_else(|| {
                    fail(format!(
                        "item path {:?} is neither a scenario (no index.json) nor a folder of scenarios",
                        item.path
                    ))
                })?;
                items.push(Item {
                    kind,
                    id: target,
                    title: item.title,
                    description: item.description,
                });
            }
            return Ok(items);
        }
        let mut names = Vec::new();
        let entries = std::fs::read_dir(&dir)
            .map_err(|e| anyhow!("scenarios folder {}: {e}", dir.display()))?;
        for entry in entries {
            let entry = entry.map_err(|e| anyhow!("scenarios folder {}: {e}", dir.display()))?;
            let name = entry.file_name().to_string_lossy().into_owned();
            // Hidden folders (.git) and a scenario's own assets are no items.
            if name.starts_with('.') || name == "assets" || !entry.path().is_dir() {
                continue;
            }
            names.push(name);
        }
        names.sort();
        let mut items = Vec::new();
        for name in names {
            let child = if rel.is_empty() {
                name
            } else {
                format!("{rel}/{name}")
            };
            if let Err(e) = check_id(&child) {
                // A folder we cannot name is skipped, unless it is a scenario.
                if self.path(&child).join("index.json").exists() {
                    return Err(anyhow!(
                        "scenarios folder {}: {e}",
                        self.path(&child).display()
                    ));
                }
                continue;
            }
            if let Some(kind) = self.entry(&child)? {
                items.push(Item {
                    kind,
                    id: child,
                    title: None,
                    description: None,
                });
            }
        }
        Ok(items)
    }

    /// The scenario or course at `rel`, loaded once; `None` for a folder
    /// that holds no scenario.
    fn entry(&mut self, rel: &str) -> anyhow::Result<Option<ItemKind>> {
        let dir = self.path(rel);
        if !dir.is_dir() {
            return Ok(None);
        }
        if dir.join("index.json").exists() {
            if !self.scenarios.contains_key(rel) {
                let scenario = load_scenario(&self.root, rel, self.templates)?;
                self.scenarios.insert(rel.to_owned(), scenario);
            }
            return Ok(Some(ItemKind::Scenario));
        }
        if let Some(known) = self.courses.get(rel) {
            if known.is_some() {
                return Ok(Some(ItemKind::Course));
            }
            if self.visiting.contains(rel) {
                return Err(anyhow!(
                    "scenario file {}: its items lead back to it",
                    dir.join("structure.json").display()
                ));
            }
            return Ok(None);
        }
        self.visiting.insert(rel.to_owned());
        self.courses.insert(rel.to_owned(), None);
        let items = self.group(rel)?;
        self.visiting.remove(rel);
        if items.is_empty() {
            return Ok(None);
        }
        let (title, description) = match dir.join("structure.json") {
            s if s.exists() => {
                let file: StructureFile = read_json(&s)?;
                (file.title, file.description)
            }
            _ => (None, None),
        };
        let name = rel.rsplit('/').next().unwrap_or(rel).to_owned();
        self.courses.insert(
            rel.to_owned(),
            Some(Course {
                id: rel.to_owned(),
                title: title.unwrap_or(name),
                description: description.unwrap_or_default(),
                items,
            }),
        );
        Ok(Some(ItemKind::Course))
    }
}

/// `base/path` made plain (`.` and `..` resolved), or `None` if it leaves
/// the top.
fn join_rel(base: &str, path: &str) -> Option<String> {
    let mut parts: Vec<&str> = base.split('/').filter(|p| !p.is_empty()).collect();
    if path.starts_with('/') {
        return None;
    }
    for part in path.split('/') {
        match part {
            "" | "." => {}
            ".." => {
                parts.pop()?;
            }
            p => parts.push(p),
        }
    }
    (!parts.is_empty()).then(|| parts.join("/"))
}

/// Scenario and course ids appear in links: letters, digits, `-`, `_`,
/// `.`, folders split by `/`, none hidden.
fn check_id(id: &str) -> Result<(), String> {
    let ok = !id.is_empty()
        && id.split('/').all(|part| {
            !part.is_empty()
                && !part.starts_with('.')
                && part
                    .bytes()
                    .all(|b| b.is_ascii_alphanumeric() || b"-_.".contains(&b))
        });
    if ok {
        Ok(())
    } else {
        Err(format!(
            "folder name {id:?} must be letters, digits, '-', '_' or '.' (not first)"
        ))
    }
}

fn load_scenario(root: &Path, id: &str, templates: &[TemplateInfo]) -> anyhow::Result<Scenario> {
    let dir = root.join(id);
    let index_path = dir.join("index.json");
    let fail = |problem: String| anyhow!("scenario file {}: {problem}", index_path.display());
    let index: IndexFile = read_json(&index_path)?;
    if index.title.trim().is_empty() {
        return Err(fail("title is empty".into()));
    }
    let imageid = index
        .backend
        .map(|b| b.imageid)
        .unwrap_or_else(|| "ubuntu".to_owned());
    let (hostnames, profile) = backend::instances(&imageid, templates).map_err(fail)?;
    let layout = match index.interface.and_then(|i| i.layout).as_deref() {
        None | Some("terminal") => Layout::Terminal,
        Some("ide") => Layout::Ide,
        Some(other) => Layout::Other(other.to_owned()),
    };
    let page = |p: Option<PageFile>, what: &str| -> anyhow::Result<Option<Page>> {
        let Some(p) = p else { return Ok(None) };
        let file = |name: &Option<String>, key: &str| -> anyhow::Result<Option<String>> {
            match name {
                None => Ok(None),
                Some(name) => read_in(&dir, name)
                    .map(Some)
                    .map_err(|e| fail(format!("{what}.{key} {name:?}: {e}"))),
            }
        };
        Ok(Some(Page {
            title: p.title.clone(),
            html: file(&p.text, "text")?
                .map(|md| markdown::render(&md))
                .unwrap_or_default(),
            background: file(&p.background, "background")?,
            foreground: file(&p.foreground, "foreground")?,
            verify: file(&p.verify, "verify")?,
        }))
    };
    let details = index.details;
    let intro = page(details.intro, "details.intro")?;
    let mut steps = Vec::new();
    for (i, step) in details.steps.into_iter().enumerate() {
        steps.push(page(Some(step), &format!("details.steps[{i}]"))?.expect("a page"));
    }
    let finish = page(details.finish, "details.finish")?;
    let assets = assets::resolve(&dir, &details.assets, &hostnames).map_err(fail)?;
    Ok(Scenario {
        id: id.to_owned(),
        title: index.title,
        description: index.description,
        intro,
        steps,
        finish,
        assets,
        imageid,
        hostnames,
        profile,
        layout,
    })
}

/// The text of `name`, a file of the scenario folder `dir`: a relative
/// path that stays inside it (symbolic links included), a regular file of
/// at most `MAX_FILE` bytes, UTF-8.
fn read_in(dir: &Path, name: &str) -> Result<String, String> {
    let rel = Path::new(name);
    if name.is_empty()
        || rel.is_absolute()
        || rel
            .components()
            .any(|c| !matches!(c, Component::Normal(_) | Component::CurDir))
    {
        return Err("must be a path inside the scenario's folder, without '..'".into());
    }
    let path = dir.join(rel);
    let real = path.canonicalize().map_err(|e| e.to_string())?;
    let base = dir.canonicalize().map_err(|e| e.to_string())?;
    if !real.starts_with(&base) {
        return Err("leads out of the scenario's folder".into());
    }
    read_text(&real)
}

fn read_text(path: &Path) -> Result<String, String> {
    let meta = std::fs::metadata(path).map_err(|e| e.to_string())?;
    if !meta.is_file() {
        return Err("not a regular file".into());
    }
    if meta.len() > MAX_FILE {
        return Err(format!("larger than {MAX_FILE} bytes"));
    }
    let bytes = std::fs::read(path).map_err(|e| e.to_string())?;
    String::from_utf8(bytes).map_err(|_| "not UTF-8 text".into())
}

fn read_json<T: serde::de::DeserializeOwned>(path: &Path) -> anyhow::Result<T> {
    let fail = |problem: String| anyhow!("scenario file {}: {problem}", path.display());
    let text = read_text(path).map_err(fail)?;
    serde_json::from_str(&text).map_err(|e| fail(e.to_string()))
}

#[cfg(test)]
#[path = "load_test.rs"]
mod tests;
