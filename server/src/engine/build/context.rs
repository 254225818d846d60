//! The build context (the tar the client sends, maybe gzipped; the client
//! has applied `.dockerignore` already), and COPY/ADD: which context entries
//! go where, written as a layer tar.

use std::collections::{BTreeMap, BTreeSet};
use std::io::{Read, Write};

#[derive(Debug, Clone)]
pub enum Content {
    File(Vec<u8>),
    Dir,
    Symlink(String),
}

#[derive(Debug, Clone)]
pub struct Entry {
    pub content: Content,
    pub mode: u32,
    pub mtime: u64,
}

pub struct Context {
    /// By clean relative path (`app/main.py`).
    entries: BTreeMap<String, Entry>,
}

/// `a/./b/../c/` -> `a/c`; `None` if it climbs above its root.
pub fn clean(path: &str) -> Option<String> {
    let mut parts: Vec<&str> = Vec::new();
    for part in path.split('/') {
        match part {
            "" | "." => {}
            ".." => {
                parts.pop()?;
            }
            p => parts.push(p),
        }
    }
    Some(parts.join("/"))
}

impl Context {
    pub fn empty() -> Context {
        Context {
            entries: BTreeMap::new(),
        }
    }

    pub fn read(body: &[u8]) -> Result<Context, String> {
        let reader: Box<dyn Read + '_> = if body.starts_with(&[0x1f, 0x8b]) {
            Box::new(flate2::read::GzDecoder::new(body))
        } else {
            Box::new(body)
        };
        let mut archive = tar::Archive::new(reader);
        let mut entries = BTreeMap::new();
        let bad = |e: std::io::Error| format!("the build context is not a readable tar: {e}");
        for entry in archive.entries().map_err(bad)? {
            let mut entry = entry.map_err(bad)?;
            let path = entry.path().map_err(bad)?.to_string_lossy().into_owned();
            let Some(path) = clean(&path).filter(|p| !p.is_empty()) else {
                continue;
            };
            let header = entry.header();
            let mode = header.mode().unwrap_or(0o644) & 0o7777;
            let mtime = header.mtime().unwrap_or(0);
            let content = match header.entry_type() {
                tar::EntryType::Directory => Content::Dir,
                tar::EntryType::Symlink => Content::Symlink(
                    entry
                        .link_name()
                        .map_err(bad)?
                        .map(|l| l.to_string_lossy().into_owned())
                        .unwrap_or_default(),
                ),
                tar::EntryType::Link => {
                    let target = entry
                        .link_name()
                        .map_err(bad)?
                        .and_then(|l| clean(&l.to_string_lossy()));
                    match target.and_then(|t| entries.get(&t)) {
                        Some(Entry {
                            content: Content::File(data),
                            ..
                        }) => Content::File(data.clone()),
                        _ => continue,
                    }
                }
                tar::EntryType::Regular | tar::EntryType::Continuous => {
                    let mut data = Vec::with_capacity(entry.size() as usize);
                    entry.read_to_end(&mut data).map_err(bad)?;
                    Content::File(data)
                }
                _ => continue,
            };
            entries.insert(
                path,
                Entry {
                    content,
                    mode,
                    mtime,
                },
            );
        }
        Ok(Context { entries })
    }

    pub fn file(&self, path: &str) -> Option<&[u8]> {
        match &self.entries.get(&clean(path)?)?.content {
            Content::File(data) => Some(data),
            _ => None,
        }
    }

    /// Paths a COPY source names: itself, or what its wildcards match.
    fn sources(&self, source: &str) -> Result<Vec<String>, String> {
        let missing = || {
            format!("COPY failed: file not found in build context or excluded by .dockerignore: stat {source}: file does not exist")
        };
        let pattern = clean(source).ok_or_else(missing)?;
        if !pattern.contains(['*', '?', '[']) {
            if pattern.is_empty() || self.entries.contains_key(&pattern) || self.is_dir(&pattern) {
                return Ok(vec![pattern]);
            }
            return Err(missing());
        }
        let found: Vec<String> = self
            .entries
            .keys()
            .filter(|p| glob_match(&pattern, p))
            .cloned()
            .collect();
        if found.is_empty() {
            return Err(missing());
        }
        Ok(found)
    }

    /// A directory, listed or implied by the entries under it.
    fn is_dir(&self, path: &str) -> bool {
        path.is_empty()
            || matches!(
                self.entries.get(path),
                Some(Entry {
                    content: Content::Dir,
                    ..
                })
            )
            || self
                .entries
                .range(format!("{path}/")..)
                .next()
                .is_some_and(|(p, _)| p.starts_with(&format!("{path}/")))
    }

    /// Where COPY `sources` `dest` puts what: (absolute target path without
    /// the leading `/`, entry). `dest` is absolute; `dest_is_dir` says
    /// whether the image has a directory there.
    pub fn plan(
        &self,
        sources: &[String],
        dest: &str,
        dest_is_dir: bool,
    ) -> Result<Vec<(String, &Entry)>, String> {
        let mut paths = Vec::new();
        let mut wildcard = false;
        for source in sources {
            wildcard |= source.contains(['*', '?', '[']);
            paths.extend(self.sources(source)?);
        }
        let into_dir = dest.ends_with('/') || dest_is_dir;
        if (paths.len() > 1 || wildcard) && !into_dir {
            return Err("When using COPY with more than one source file, the destination must be a directory and end with a /".into());
        }
        let dest = clean(dest).unwrap_or_default();
        let join = |a: &str, b: &str| {
            if a.is_empty() {
                b.to_string()
            } else if b.is_empty() {
                a.to_string()
            } else {
                format!("{a}/{b}")
            }
        };
        let mut plan = Vec::new();
        for path in paths {
            if self.is_dir(&path)
                && !matches!(
                    self.entries.get(&path),
                    Some(Entry {
                        content: Content::File(_) | Content::Symlink(_),
                        ..
                    })
                )
            {
                // A directory's contents, not the directory itself.
                let prefix = if path.is_empty() {
                    String::new()
                } else {
                    format!("{path}/")
                };
                for (p, entry) in self.entries.range(prefix.clone()..) {
                    let Some(rel) = p.strip_prefix(&prefix) else {
                        break;
                    };
                    plan.push((join(&dest, rel), entry));
                }
            } else {
                let entry = &self.entries[&path];
                let target = if into_dir {
                    join(&dest, path.rsplit('/').next().unwrap_or(&path))
                } else {
                    dest.clone()
                };
                plan.push((target, entry));
            }
        }
        Ok(plan)
    }
}

/// `*` and `?` within one path component, `[...]` classes, as Go's
/// `filepath.Match` (which Docker uses).
fn glob_match(pattern: &str, path: &str) -> bool {
    let pattern: Vec<&str> = pattern.split('/').collect();
    let path: Vec<&str> = path.split('/').collect();
    pattern.len() == path.len()
        && pattern
            .iter()
            .zip(&path)
            .all(|(p, s)| component_match(p.as_bytes(), s.as_bytes()))
}

fn component_match(p: &[u8], s: &[u8]) -> bool {
    match (p.first(), s.first()) {
        (None, None) => true,
        (Some(b'*'), _) => {
            component_match(&p[1..], s) || (!s.is_empty() && component_match(p, &s[1..]))
        }
        (Some(b'?'), Some(_)) => component_match(&p[1..], &s[1..]),
        (Some(b'['), Some(&c)) => match p.iter().position(|&b| b == b']') {
            Some(end) if end > 1 => {
                let (negate, class) = match p[1] {
                    b'^' | b'!' => (true, &p[2..end]),
                    _ => (false, &p[1..end]),
                };
                let mut hit = false;
                let mut i = 0;
                while i < class.len() {
                    if i + 2 < class.len() && class[i + 1] == b'-' {
                        hit |= class[i] <= c && c <= class[i + 2];
                        i += 3;
                    } else {
                        hit |= class[i] == c;
                        i += 1;
                    }
                }
                hit != negate && component_match(&p[end + 1..], &s[1..])
            }
            _ => false,
        },
        (Some(a), Some(b)) => a == b && component_match(&p[1..], &s[1..]),
        _ => false,
    }
}

/// Write the COPY layer: `plan`'s entries owned by `owner`, after the
/// directories `parents` (made for them, mode 0755).
pub fn write_layer<W: Write>(
    out: W,
    plan: &[(String, &Entry)],
    parents: &BTreeSet<String>,
    owner: (u64, u64),
) -> std::io::Result<W> {
    let mut builder = tar::Builder::new(out);
    let header = |kind: tar::EntryType, mode: u32, mtime: u64| {
        let mut h = tar::Header::new_gnu();
        h.set_entry_type(kind);
        h.set_mode(mode);
        h.set_uid(owner.0);
        h.set_gid(owner.1);
        h.set_mtime(mtime);
        h.set_size(0);
        h
    };
    let now = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0, |d| d.as_secs());
    for dir in parents {
        let mut h = header(tar::EntryType::Directory, 0o755, now);
        builder.append_data(&mut h, dir, std::io::empty())?;
    }
    for (target, entry) in plan {
        match &entry.content {
            Content::Dir => {
                let mut h = header(tar::EntryType::Directory, entry.mode, entry.mtime);
                builder.append_data(&mut h, target, std::io::empty())?;
            }
            Content::File(data) => {
                let mut h = header(tar::EntryType::Regular, entry.mode, entry.mtime);
                h.set_size(data.len() as u64);
                builder.append_data(&mut h, target, &data[..])?;
            }
            Content::Symlink(link) => {
                let mut h = header(tar::EntryType::Symlink, 0o777, entry.mtime);
                builder.append_link(&mut h, target, link)?;
            }
        }
    }
    builder.into_inner()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn context() -> Context {
        let mut builder = tar::Builder::new(Vec::new());
        let mut add = |path: &str, data: &[u8], mode: u32| {
            let mut h = tar::Header::new_gnu();
            h.set_mode(mode);
            h.set_size(data.len() as u64);
            builder.append_data(&mut h, path, data).unwrap();
        };
        add("Dockerfile", b"FROM busybox\n", 0o644);
        add("app/run.sh", b"#!/bin/sh\n", 0o755);
        add("app/lib/a.txt", b"a", 0o600);
        add("notes.txt", b"n", 0o644);
        Context::read(&builder.into_inner().unwrap()).unwrap()
    }

    fn targets(plan: &[(String, &Entry)]) -> Vec<String> {
        plan.iter().map(|(t, _)| t.clone()).collect()
    }

    #[test]
    fn copy_targets_follow_docker() {
        let ctx = context();
        assert_eq!(ctx.file("./Dockerfile").unwrap(), b"FROM busybox\n");
        let one =
            |s: &str, d: &str, dir: bool| ctx.plan(&[s.to_string()], d, dir).map(|p| targets(&p));
        assert_eq!(
            one("notes.txt", "/srv/n.txt", false).unwrap(),
            ["srv/n.txt"]
        );
        assert_eq!(one("notes.txt", "/srv/", false).unwrap(), ["srv/notes.txt"]);
        assert_eq!(one("notes.txt", "/srv", true).unwrap(), ["srv/notes.txt"]);
        // A directory's contents go into the destination.
        assert_eq!(
            one("app", "/opt/app", false).unwrap(),
            ["opt/app/lib/a.txt", "opt/app/run.sh"]
        );
        assert_eq!(one("*.txt", "/t/", false).unwrap(), ["t/notes.txt"]);
        assert!(one("*.txt", "/t", false)
            .unwrap_err()
            .contains("must be a directory"));
        assert!(one("nope", "/t", false)
            .unwrap_err()
            .contains("file not found in build context"));
        assert!(one("../x", "/t", false).is_err());
        let plan = ctx.plan(&["app/run.sh".into()], "/x", false).unwrap();
        assert_eq!(plan[0].1.mode, 0o755);
    }

    #[test]
    fn globs_stay_within_components() {
        assert!(glob_match("app/*.sh", "app/run.sh"));
        assert!(!glob_match("*.sh", "app/run.sh"));
        assert!(glob_match("r?n.[a-s]h", "run.sh"));
        assert!(!glob_match("[!r]un.sh", "run.sh"));
    }
}
