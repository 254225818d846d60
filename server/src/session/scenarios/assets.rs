//! `details.assets`: files of a scenario's `assets/` folder to copy into its
//! instances, per host (`host01` is the first instance). `file` is a path or
//! a glob relative to `assets/` (`*` stays within a folder, `**` crosses
//! folders); `target` is a folder inside the instance (`~` is `/root`). A
//! matched file lands in `target` under its path below the pattern's first
//! folder with a wildcard: `app1/readme.md` lands as `target/readme.md`,
//! `**` keeps every folder, `app1/**/*.json` keeps those below `app1/`.

use std::collections::BTreeMap;
use std::path::{Component, Path};

use serde::Deserialize;

use super::Asset;

/// One entry of `details.assets.hostNN` as written.
#[derive(Deserialize, Debug, Clone)]
#[serde(deny_unknown_fields)]
pub struct AssetSpec {
    pub file: String,
    pub target: String,
    #[serde(default)]
    pub chmod: Option<String>,
}

/// Every file of the specs, checked: hosts within `hostnames`, patterns
/// that stay in `assets/` and match something, absolute targets, valid
/// modes. The error is the problem, without the file's name.
pub fn resolve(
    scenario_dir: &Path,
    specs: &BTreeMap<String, Vec<AssetSpec>>,
    hostnames: &[String],
) -> Result<Vec<Asset>, String> {
    if specs.values().all(Vec::is_empty) {
        return Ok(Vec::new());
    }
    let assets_dir = scenario_dir.join("assets");
    let files = list_files(&assets_dir)?;
    let mut out = Vec::new();
    for (host, specs) in specs {
        let hostname = host_index(host)
            .and_then(|i| hostnames.get(i))
            .ok_or_else(|| {
                format!(
                    "details.assets: {host:?} is not one of this environment's hosts (host01 to host{:02})",
                    hostnames.len()
                )
            })?;
        for spec in specs {
            let what = format!("details.assets.{host} {:?}", spec.file);
            let pattern = check_pattern(&spec.file).map_err(|e| format!("{what}: {e}"))?;
            let target = check_target(&spec.target).map_err(|e| format!("{what}: {e}"))?;
            if let Some(mode) = &spec.chmod {
                if !valid_mode(mode) {
                    return Err(format!(
                        "{what}: chmod {mode:?} is not a mode (like +x, 0755 or u+w,g-w)"
                    ));
                }
            }
            let keep_from = literal_prefix_len(&spec.file);
            let options = glob::MatchOptions {
                case_sensitive: true,
                require_literal_separator: true,
                require_literal_leading_dot: false,
            };
            let mut matched = 0;
            for rel in &files {
                if !pattern.matches_with(rel, options) {
                    continue;
                }
                matched += 1;
                let kept = &rel[keep_from.min(rel.len())..];
                let kept = if kept.is_empty() {
                    rel.rsplit('/').next().unwrap_or(rel)
                } else {
                    kept
                };
                out.push(Asset {
                    hostname: hostname.clone(),
                    source: assets_dir.join(rel),
                    target: if target == "/" {
                        format!("/{kept}")
                    } else {
                        format!("{target}/{kept}")
                    },
                    chmod: spec.chmod.clone(),
                });
            }
            if matched == 0 {
                return Err(format!("{what}: no file of assets/ matches it"));
            }
        }
    }
    Ok(out)
}

/// `host01` → 0.
fn host_index(host: &str) -> Option<usize> {
    let digits = host.strip_prefix("host")?;
    if digits.is_empty() || digits.len() > 3 || !digits.bytes().all(|b| b.is_ascii_digit()) {
        return None;
    }
    digits.parse::<usize>().ok()?.checked_sub(1)
}

fn check_pattern(file: &str) -> Result<glob::Pattern, String> {
    let path = Path::new(file);
    if file.is_empty()
        || path.is_absolute()
        || path
            .components()
            .any(|c| !matches!(c, Component::Normal(_) | Component::CurDir))
    {
        return Err("must be a path or glob inside assets/, without '..'".into());
    }
    glob::Pattern::new(file.trim_start_matches("./")).map_err(|e| format!("not a glob: {e}"))
}

/// The target as an absolute path without a trailing `/`, `~` made `/root`.
fn check_target(target: &str) -> Result<String, String> {
    let t = if target == "~" {
        "/root".to_owned()
    } else if let Some(rest) = target.strip_prefix("~/") {
        format!("/root/{rest}")
    } else {
        target.to_owned()
    };
    let path = Path::new(&t);
    if !path.is_absolute()
        || path.components().any(|c| matches!(c, Component::ParentDir))
        || t.contains('\0')
    {
        return Err(format!(
            "target {target:?} must be an absolute folder (or start with ~), without '..'"
        ));
    }
    let trimmed = t.trim_end_matches('/');
    Ok(if trimmed.is_empty() {
        "/".into()
    } else {
        trimmed.to_owned()
    })
}

/// Length of the leading folders of `pattern` that hold no wildcard,
/// with their `/`; a pattern without wildcards keeps only the file name.
fn literal_prefix_len(pattern: &str) -> usize {
    let pattern = pattern.trim_start_matches("./");
    let wild = |s: &str| s.contains(['*', '?', '[']);
    let mut len = 0;
    let parts: Vec<&str> = pattern.split('/').collect();
    for (i, part) in parts.iter().enumerate() {
        if wild(part) || i == parts.len() - 1 {
            break;
        }
        len += part.len() + 1;
    }
    len
}

/// `+x`, `a-w`, `u+rw,g-w`, `755`, `0644`.
fn valid_mode(mode: &str) -> bool {
    if (3..=4).contains(&mode.len()) && mode.bytes().all(|b| (b'0'..=b'7').contains(&b)) {
        return true;
    }
    !mode.is_empty()
        && mode.split(',').all(|clause| {
            let ops = clause.trim_start_matches(['u', 'g', 'o', 'a']);
            !ops.is_empty()
                && ops.starts_with(['+', '-', '='])
                && ops.bytes().all(|b| b"+-=rwxXst".contains(&b))
        })
}

/// Every regular file under `dir`, as `/`-separated paths relative to it,
/// sorted. Symbolic links are refused: one could copy the server's files.
fn list_files(dir: &Path) -> Result<Vec<String>, String> {
    let mut out = Vec::new();
    let mut stack = vec![String::new()];
    while let Some(rel) = stack.pop() {
        let here = if rel.is_empty() {
            dir.to_path_buf()
        } else {
            dir.join(&rel)
        };
        let entries = std::fs::read_dir(&here)
            .map_err(|e| format!("details.assets: cannot read {}: {e}", here.display()))?;
        for entry in entries {
            let entry = entry.map_err(|e| format!("details.assets: {}: {e}", here.display()))?;
            let name = entry.file_name();
            let Some(name) = name.to_str() else {
                return Err(format!(
                    "details.assets: {} has a name that is not UTF-8",
                    entry.path().display()
                ));
            };
            let child = if rel.is_empty() {
                name.to_owned()
            } else {
                format!("{rel}/{name}")
            };
            let kind = entry
                .file_type()
                .map_err(|e| format!("details.assets: {}: {e}", entry.path().display()))?;
            if kind.is_symlink() {
                return Err(format!("details.assets: assets/{child} is a symbolic link"));
            } else if kind.is_dir() {
                stack.push(child);
            } else if kind.is_file() {
                out.push(child);
            }
        }
    }
    out.sort();
    Ok(out)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn specs(host: &str, list: &[(&str, &str, Option<&str>)]) -> BTreeMap<String, Vec<AssetSpec>> {
        let mut m = BTreeMap::new();
        m.insert(
            host.to_owned(),
            list.iter()
                .map(|(f, t, c)| AssetSpec {
                    file: (*f).into(),
                    target: (*t).into(),
                    chmod: c.map(str::to_owned),
                })
                .collect(),
        );
        m
    }

    fn tree() -> tempfile::TempDir {
        let dir = tempfile::tempdir().unwrap();
        for f in [
            "run.sh",
            "conf.yaml",
            "app1/readme.md",
            "app1/images/a.json",
            "app2/cnf/b.json",
        ] {
            let p = dir.path().join("assets").join(f);
            std::fs::create_dir_all(p.parent().unwrap()).unwrap();
            std::fs::write(p, f).unwrap();
        }
        dir
    }

    fn targets(dir: &Path, file: &str, target: &str) -> Vec<String> {
        let nodes = ["node1".to_owned()];
        resolve(dir, &specs("host01", &[(file, target, None)]), &nodes)
            .unwrap()
            .into_iter()
            .map(|a| a.target)
            .collect()
    }

    #[test]
    fn globs_and_targets() {
        let dir = tree();
        let d = dir.path();
        assert_eq!(
            targets(d, "run.sh", "/usr/local/bin/"),
            ["/usr/local/bin/run.sh"]
        );
        assert_eq!(targets(d, "conf.yaml", "~/"), ["/root/conf.yaml"]);
        assert_eq!(
            targets(d, "app1/readme.md", "/my/location"),
            ["/my/location/readme.md"]
        );
        assert_eq!(
            targets(d, "*", "/all1"),
            ["/all1/conf.yaml", "/all1/run.sh"]
        );
        assert_eq!(targets(d, "**", "/all2").len(), 5);
        assert_eq!(
            targets(d, "**/*.json", "/j"),
            ["/j/app1/images/a.json", "/j/app2/cnf/b.json"]
        );
        assert_eq!(targets(d, "app1/**/*.json", "/a"), ["/a/images/a.json"]);
        assert_eq!(targets(d, "app*/*.*", "/apps"), ["/apps/app1/readme.md"]);
    }

    #[test]
    fn bad_specs_are_refused() {
        let dir = tree();
        let d = dir.path();
        let nodes = ["node1".to_owned()];
        let err = |host: &str, f: &str, t: &str, c: Option<&str>| {
            resolve(d, &specs(host, &[(f, t, c)]), &nodes).unwrap_err()
        };
        assert!(err("host02", "run.sh", "/x", None).contains("host02"));
        assert!(err("client", "run.sh", "/x", None).contains("client"));
        assert!(err("host01", "../index.json", "/x", None).contains(".."));
        assert!(err("host01", "/etc/passwd", "/x", None).contains("inside assets"));
        assert!(err("host01", "missing.sh", "/x", None).contains("no file"));
        assert!(err("host01", "run.sh", "relative", None).contains("absolute"));
        assert!(err("host01", "run.sh", "/a/../b", None).contains(".."));
        assert!(err("host01", "run.sh", "/x", Some("+y")).contains("chmod"));
        assert!(resolve(
            d,
            &specs("host01", &[("run.sh", "/x", Some("0755"))]),
            &nodes
        )
        .is_ok());
        assert!(resolve(
            d,
            &specs("host01", &[("run.sh", "/x", Some("u+x,g-w"))]),
            &nodes
        )
        .is_ok());
    }

    #[test]
    fn symbolic_links_are_refused() {
        let dir = tree();
        std::os::unix::fs::symlink("/etc/passwd", dir.path().join("assets/passwd")).unwrap();
        let nodes = ["node1".to_owned()];
        let e = resolve(
            dir.path(),
            &specs("host01", &[("run.sh", "/x", None)]),
            &nodes,
        )
        .unwrap_err();
        assert!(e.contains("symbolic link"), "{e}");
    }
}
