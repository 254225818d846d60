//! The TOML configuration file (`--config`): every key is a flag's long name
//! (`instance-memory-mib = 512`, or with underscores), and every value a
//! default that the environment and the command line override.
//!
//! It works by filling in the flags' environment variables that are not
//! already set, so one rule holds for every setting: command line, then
//! environment, then file, then the built-in default.

use std::ffi::OsString;
use std::path::{Path, PathBuf};

use anyhow::{bail, Context};
use clap::CommandFactory;

use crate::ops::config::Config;

/// The file named by `--config <path>`, `--config=<path>` or
/// `PLAYGROUND_CONFIG`, if any. Read from the raw arguments because the
/// file has to be applied before clap parses them.
pub fn path_from(args: &[OsString]) -> Option<PathBuf> {
    let mut iter = args.iter().skip(1);
    while let Some(arg) = iter.next() {
        let arg = arg.to_string_lossy();
        if arg == "--" {
            break;
        }
        if arg == "--config" {
            return iter.next().map(PathBuf::from);
        }
        if let Some(value) = arg.strip_prefix("--config=") {
            return Some(PathBuf::from(value));
        }
    }
    std::env::var_os("PLAYGROUND_CONFIG").map(PathBuf::from)
}

/// Every (environment variable, value) the file at `path` sets. Unknown
/// keys, tables and values of the wrong shape are errors that name the
/// file and the key, so a typo never passes silently.
pub fn read(path: &Path) -> anyhow::Result<Vec<(String, String)>> {
    let text = std::fs::read_to_string(path)
        .with_context(|| format!("read the configuration file {}", path.display()))?;
    parse(&text).with_context(|| format!("in the configuration file {}", path.display()))
}

pub fn parse(text: &str) -> anyhow::Result<Vec<(String, String)>> {
    let table: toml::Table = text.parse()?;
    let command = Config::command();
    let mut settings = Vec::new();
    for (key, value) in table {
        let long = key.replace('_', "-");
        let Some(arg) = command
            .get_arguments()
            .find(|a| a.get_long() == Some(long.as_str()))
        else {
            bail!("unknown setting {key:?} (see `playground --help` for the settings)");
        };
        let Some(env) = arg.get_env() else {
            bail!("{key:?} cannot be set in the file");
        };
        let value = match value {
            toml::Value::String(s) => s,
            toml::Value::Integer(i) => i.to_string(),
            toml::Value::Float(f) => f.to_string(),
            toml::Value::Boolean(b) => b.to_string(),
            toml::Value::Array(items) => items
                .into_iter()
                .map(|item| match item {
                    toml::Value::String(s) => Ok(s),
                    toml::Value::Integer(i) => Ok(i.to_string()),
                    other => bail!("{key:?}: list items must be strings, not {other}"),
                })
                .collect::<anyhow::Result<Vec<_>>>()?
                .join(","),
            toml::Value::Datetime(_) | toml::Value::Table(_) => {
                bail!("{key:?} must be a string, number, boolean or list")
            }
        };
        settings.push((env.to_string_lossy().into_owned(), value));
    }
    Ok(settings)
}

/// Apply the file's settings as environment defaults.
///
/// Must run before any thread exists: it changes the process environment.
pub fn apply(settings: Vec<(String, String)>) {
    for (name, value) in settings {
        if std::env::var_os(&name).is_none() {
            std::env::set_var(name, value);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn keys_are_flag_names_with_dashes_or_underscores() {
        let settings = parse(
            "listen = \"0.0.0.0:80\"\ninstance_memory_mib = 512\ninstance-cpus = 0.5\n\
             dns = [\"1.1.1.1\", \"8.8.8.8\"]\n",
        )
        .unwrap();
        assert_eq!(
            settings,
            vec![
                ("PLAYGROUND_DNS".into(), "1.1.1.1,8.8.8.8".into()),
                ("PLAYGROUND_INSTANCE_CPUS".into(), "0.5".into()),
                ("PLAYGROUND_INSTANCE_MEMORY_MIB".into(), "512".into()),
                ("PLAYGROUND_LISTEN".into(), "0.0.0.0:80".into()),
            ]
        );
    }

    #[test]
    fn unknown_keys_and_tables_are_refused() {
        let e = parse("instance_memroy_mib = 5").unwrap_err();
        assert!(e.to_string().contains("unknown setting"), "{e}");
        let e = parse("[listen]\nx = 1").unwrap_err();
        assert!(e.to_string().contains("must be"), "{e}");
        assert!(parse("listen = ").is_err());
    }

    #[test]
    fn the_example_file_sets_every_setting_and_parses() {
        let example = include_str!("../../../playground.example.toml");
        // Every setting appears in the example, commented out, so the
        // example is the one place that documents them all.
        let uncommented: String = example
            .lines()
            .map(|l| l.strip_prefix("# ").unwrap_or(l))
            .filter(|l| !l.starts_with('#'))
            .collect::<Vec<_>>()
            .join("\n");
        let settings = parse(&uncommented).unwrap();
        for arg in Config::command().get_arguments() {
            let (Some(_), Some(env)) = (arg.get_long(), arg.get_env()) else {
                continue;
            };
            if env == "PLAYGROUND_CONFIG" {
                continue;
            }
            assert!(
                settings.iter().any(|(name, _)| *env == **name),
                "{env:?} is missing from playground.example.toml"
            );
        }
    }

    #[test]
    fn config_path_comes_from_the_flag_or_the_environment() {
        let args = |a: &[&str]| a.iter().map(OsString::from).collect::<Vec<_>>();
        assert_eq!(
            path_from(&args(&["playground", "--config", "a.toml"])),
            Some("a.toml".into())
        );
        assert_eq!(
            path_from(&args(&["playground", "--config=b.toml", "teardown"])),
            Some("b.toml".into())
        );
    }
}
