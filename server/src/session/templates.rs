//! Session templates: ready-made sets of instances. Three are built in
//! (`1-instance`, `2-instances`, `3-instances`); operators add more with `--templates`, a
//! TOML file (see `templates.example.toml`).

use std::collections::HashSet;
use std::path::Path;

use playground_protocol::{TemplateInfo, TemplateInstance};
use serde::Deserialize;

/// Longest hostname (and instance name) a template may give.
const MAX_HOSTNAME: usize = 24;

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct File {
    #[serde(default)]
    template: Vec<FileTemplate>,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct FileTemplate {
    name: String,
    title: String,
    /// `nesting` or `strict`; the server's default when absent.
    #[serde(default)]
    profile: Option<String>,
    #[serde(default)]
    instance: Vec<FileInstance>,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct FileInstance {
    hostname: String,
    #[serde(default)]
    run: Vec<String>,
}

fn built_in() -> Vec<TemplateInfo> {
    let nodes = |n: usize| {
        (1..=n)
            .map(|i| TemplateInstance {
                hostname: format!("node{i}"),
                run: Vec::new(),
            })
            .collect()
    };
    vec![
        TemplateInfo {
            name: "1-instance".into(),
            title: "1 instance".into(),
            instances: nodes(1),
            profile: None,
        },
        TemplateInfo {
            name: "2-instances".into(),
            title: "2 instances".into(),
            instances: nodes(2),
            profile: None,
        },
        TemplateInfo {
            name: "3-instances".into(),
            title: "3 instances".into(),
            instances: nodes(3),
            profile: None,
        },
    ]
}

/// Whether `name` is usable as an instance name and hostname.
pub fn valid_hostname(name: &str) -> bool {
    // No '-' at either end: hostnames forbid it, and port links need it.
    !name.is_empty()
        && name.len() <= MAX_HOSTNAME
        && !name.starts_with('-')
        && !name.ends_with('-')
        && name
            .bytes()
            .all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b == b'-')
}

/// The built-in templates that fit `max_instances`, then those of `file`.
/// Errors name the file and the problem.
pub fn load(file: Option<&Path>, max_instances: u32) -> anyhow::Result<Vec<TemplateInfo>> {
    let mut templates: Vec<TemplateInfo> = built_in()
        .into_iter()
        .filter(|t| t.instances.len() <= max_instances as usize)
        .collect();
    let Some(path) = file else {
        return Ok(templates);
    };
    let fail = |problem: String| anyhow::anyhow!("templates file {}: {problem}", path.display());
    let text = std::fs::read_to_string(path).map_err(|e| fail(e.to_string()))?;
    let parsed: File = toml::from_str(&text).map_err(|e| fail(e.to_string()))?;
    let mut names: HashSet<String> = built_in().into_iter().map(|t| t.name).collect();
    for t in parsed.template {
        let valid_name = !t.name.is_empty()
            && t.name
                .bytes()
                .all(|b| b.is_ascii_alphanumeric() || b == b'-' || b == b'_' || b == b'.');
        if !valid_name {
            return Err(fail(format!(
                "template name {:?} must be non-empty letters, digits, '-', '_' or '.'",
                t.name
            )));
        }
        if !names.insert(t.name.clone()) {
            return Err(fail(format!(
                "template name {:?} is used more than once (1-instance, 2-instances and 3-instances are built in)",
                t.name
            )));
        }
        if t.instance.is_empty() {
            return Err(fail(format!("template {:?} has no instances", t.name)));
        }
        if t.instance.len() > max_instances as usize {
            return Err(fail(format!(
                "template {:?} has {} instances, more than --max-instances ({max_instances})",
                t.name,
                t.instance.len()
            )));
        }
        if let Some(profile) = &t.profile {
            if let Err(e) = profile.parse::<sandbox::Profile>() {
                return Err(fail(format!("template {:?}: {e}", t.name)));
            }
        }
        let mut hostnames = HashSet::new();
        for i in &t.instance {
            if !valid_hostname(&i.hostname) {
                return Err(fail(format!(
                    "template {:?}: hostname {:?} must be 1 to {MAX_HOSTNAME} lowercase letters, digits or '-' (not first or last)",
                    t.name, i.hostname
                )));
            }
            if !hostnames.insert(i.hostname.clone()) {
                return Err(fail(format!(
                    "template {:?}: hostname {:?} is used more than once",
                    t.name, i.hostname
                )));
            }
        }
        templates.push(TemplateInfo {
            name: t.name,
            title: t.title,
            profile: t.profile,
            instances: t
                .instance
                .into_iter()
                .map(|i| TemplateInstance {
                    hostname: i.hostname,
                    run: i.run,
                })
                .collect(),
        });
    }
    Ok(templates)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn load_text(text: &str, max: u32) -> anyhow::Result<Vec<TemplateInfo>> {
        let path = std::env::temp_dir().join(format!(
            "templates-test-{}-{}.toml",
            std::process::id(),
            text.len()
        ));
        std::fs::write(&path, text).unwrap();
        let result = load(Some(&path), max);
        std::fs::remove_file(&path).unwrap();
        result
    }

    #[test]
    fn files_are_validated() {
        let good = "[[template]]\nname = \"swarm\"\ntitle = \"Swarm\"\n[[template.instance]]\nhostname = \"manager1\"\nrun = [\"true\"]\n";
        let all = load_text(good, 5).unwrap();
        assert_eq!(all.len(), 4);
        assert_eq!(all[3].instances[0].run, ["true"]);
        let bad = good.replace("manager1", "Manager1");
        assert!(load_text(&bad, 5)
            .unwrap_err()
            .to_string()
            .contains("Manager1"));
        let dup = good.replace("swarm", "3-instances");
        assert!(load_text(&dup, 5).is_err());
        assert!(load_text(good, 0).is_err());
        assert_eq!(load(None, 2).unwrap().len(), 2);
    }

    #[test]
    fn the_example_file_is_valid() {
        let path = Path::new(env!("CARGO_MANIFEST_DIR")).join("../templates.example.toml");
        let all = load(Some(&path), 5).unwrap();
        assert_eq!(all[3].name, "swarm");
        assert_eq!(all[3].instances.len(), 3);
    }
}

#[cfg(test)]
#[path = "templates_fuzz.rs"]
mod fuzz;
