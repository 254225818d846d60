//! Running a Dockerfile's instructions: the image so far (layers and
//! config), each step printed as the classic builder does, the config-only
//! instructions and FROM here; RUN in `run`, COPY/ADD/WORKDIR in `copy`.

use std::collections::{BTreeMap, HashMap};
use std::time::Duration;

use sandbox::oci::{Digest, LayerDetails, Reference};
use serde_json::{json, Map, Value};
use tokio::sync::mpsc::UnboundedSender;

use super::context::Context;
use super::dockerfile::{self, Instruction};
use crate::engine::ctx::Ctx;

mod copy;
mod run;

/// How long a whole build may take.
const BUILD_TIMEOUT: Duration = Duration::from_secs(60 * 60);

fn too_long() -> String {
    format!(
        "the build took longer than {} minutes",
        BUILD_TIMEOUT.as_secs() / 60
    )
}

/// A failed build: Docker's message, and the client's exit code.
#[derive(Debug)]
pub struct Failure {
    pub message: String,
    pub code: i32,
}

impl From<String> for Failure {
    fn from(message: String) -> Failure {
        Failure { message, code: 1 }
    }
}

type Step<T = ()> = Result<T, Failure>;

pub struct Build {
    pub ctx: Ctx,
    pub out: UnboundedSender<Value>,
    pub context: Context,
    pub build_args: HashMap<String, String>,
    pub labels: BTreeMap<String, String>,
    /// RUN's network: `bridge` (the default), `host` or `none`.
    pub network: String,
    /// When the whole build must be done.
    deadline: tokio::time::Instant,
    /// ARGs declared (and their values), for expansion and RUN's environment.
    args: BTreeMap<String, Option<String>>,
    /// ARGs before the FROM, for the FROM line only.
    meta_args: BTreeMap<String, Option<String>>,
    from_done: bool,
    base: Option<Digest>,
    base_config: Value,
    layers: Vec<LayerDetails>,
    /// Layers this build stored.
    pub added: Vec<Digest>,
    config: Map<String, Value>,
    history: Vec<Value>,
    author: Option<String>,
    cmd_set: bool,
    created: String,
}

impl Build {
    pub fn new(
        ctx: Ctx,
        out: UnboundedSender<Value>,
        context: Context,
        build_args: HashMap<String, String>,
        labels: BTreeMap<String, String>,
    ) -> Build {
        Build {
            ctx,
            out,
            context,
            build_args,
            labels,
            network: "bridge".into(),
            deadline: tokio::time::Instant::now() + BUILD_TIMEOUT,
            args: BTreeMap::new(),
            meta_args: BTreeMap::new(),
            from_done: false,
            base: None,
            base_config: Value::Null,
            layers: Vec::new(),
            added: Vec::new(),
            config: Map::new(),
            history: Vec::new(),
            author: None,
            cmd_set: false,
            created: humantime::format_rfc3339_nanos(std::time::SystemTime::now()).to_string(),
        }
    }

    /// The image the build started from (none for `FROM scratch`).
    pub fn base(&self) -> Option<Digest> {
        self.base.clone()
    }

    pub fn say(&self, text: impl Into<String>) {
        let _ = self.out.send(json!({ "stream": text.into() }));
    }

    /// Run every instruction; the image's config as stored.
    pub async fn run(&mut self, instructions: &[Instruction]) -> Step<Vec<u8>> {
        let total = instructions.len();
        for (n, instruction) in instructions.iter().enumerate() {
            if self.out.is_closed() {
                return Err("the client went away".to_string().into());
            }
            if tokio::time::Instant::now() >= self.deadline {
                return Err(too_long().into());
            }
            self.say(format!(
                "Step {}/{total} : {}\n",
                n + 1,
                instruction.display()
            ));
            self.step(instruction).await?;
            // FROM shows the base image's id, later steps the image so far.
            // (Nothing for `FROM scratch` and ARGs before FROM.)
            let id = match instruction.keyword.as_str() {
                "FROM" => self.base.clone(),
                _ if self.from_done => Some(Digest::of(&self.image_config())),
                _ => None,
            };
            if let Some(id) = id {
                self.say(format!(" ---> {}\n", &id.hex()[..12]));
            }
        }
        if !self.from_done {
            return Err("No image was generated. Is your Dockerfile empty?"
                .to_string()
                .into());
        }
        Ok(self.image_config())
    }

    async fn step(&mut self, instruction: &Instruction) -> Step {
        let keyword = instruction.keyword.as_str();
        let args = instruction.args.as_str();
        if !self.from_done && !matches!(keyword, "FROM" | "ARG") {
            return Err(format!(
                "Please provide a source image with `from` prior to {}",
                keyword.to_ascii_lowercase()
            )
            .into());
        }
        let history = format!("/bin/sh -c #(nop)  {}", instruction.display());
        match keyword {
            "FROM" => return self.from(args).await,
            "ARG" => return self.arg(args),
            "RUN" => return self.run_step(args).await,
            "COPY" | "ADD" => return self.copy(keyword, args).await,
            "WORKDIR" => return self.workdir(args, history).await,
            "ENV" => {
                for (key, value) in self.pairs(args, "ENV")? {
                    let mut env = self.env();
                    env.retain(|e| e.split('=').next() != Some(key.as_str()));
                    env.push(format!("{key}={value}"));
                    self.config.insert("Env".into(), env.into());
                }
            }
            "LABEL" => {
                for (key, value) in self.pairs(args, "LABEL")? {
                    self.object("Labels").insert(key, value.into());
                }
            }
            "EXPOSE" => {
                for port in self.words(args)? {
                    let port = if port.contains('/') {
                        port.to_ascii_lowercase()
                    } else {
                        format!("{port}/tcp")
                    };
                    self.object("ExposedPorts").insert(port, json!({}));
                }
            }
            "VOLUME" => {
                let paths = match dockerfile::json_form(args) {
                    Some(paths) => paths,
                    None => self.words(args)?,
                };
                for path in paths {
                    self.object("Volumes").insert(path, json!({}));
                }
            }
            "USER" => {
                let user = self.word(args)?;
                self.config.insert("User".into(), user.into());
            }
            "STOPSIGNAL" => {
                let signal = self.word(args)?;
                self.config.insert("StopSignal".into(), signal.into());
            }
            "CMD" => {
                self.config.insert("Cmd".into(), command(args).into());
                self.cmd_set = true;
            }
            "ENTRYPOINT" => {
                self.config
                    .insert("Entrypoint".into(), command(args).into());
                // An inherited CMD does not suit a new entrypoint.
                if !self.cmd_set {
                    self.config.insert("Cmd".into(), Value::Null);
                }
            }
            "MAINTAINER" => self.author = Some(self.word(args)?),
            other => return Err(format!("unknown instruction: {other}").into()),
        }
        self.history(history, true);
        Ok(())
    }

    fn lookup(&self) -> impl Fn(&str) -> Option<String> + '_ {
        move |name: &str| {
            let prefix = format!("{name}=");
            self.env()
                .iter()
                .find_map(|e| e.strip_prefix(&prefix).map(String::from))
                .or_else(|| self.args.get(name).cloned().flatten())
        }
    }

    fn words(&self, text: &str) -> Step<Vec<String>> {
        Ok(dockerfile::words(text, &self.lookup())?)
    }

    fn word(&self, text: &str) -> Step<String> {
        Ok(dockerfile::word(text, &self.lookup())?)
    }

    /// `k=v k2="v 2"`, or the old `k some value` form.
    fn pairs(&self, args: &str, keyword: &str) -> Step<Vec<(String, String)>> {
        let first = args.split_whitespace().next().unwrap_or("");
        if first.is_empty() {
            return Err(format!("{keyword} requires at least one argument").into());
        }
        if !first.contains('=') {
            let rest = args[first.len()..].trim();
            return Ok(vec![(first.to_string(), self.word(rest)?)]);
        }
        self.words(args)?
            .into_iter()
            .map(|w| match w.split_once('=') {
                Some((k, v)) if !k.is_empty() => Ok((k.to_string(), v.to_string())),
                _ => Err(format!(
                    "Syntax error - can't find = in {w:?}. Must be of the form: name=value"
                )
                .into()),
            })
            .collect()
    }

    fn env(&self) -> Vec<String> {
        self.config
            .get("Env")
            .and_then(Value::as_array)
            .map(|a| {
                a.iter()
                    .filter_map(|v| v.as_str().map(String::from))
                    .collect()
            })
            .unwrap_or_default()
    }

    fn object(&mut self, key: &str) -> &mut Map<String, Value> {
        let slot = self
            .config
            .entry(key.to_string())
            .or_insert_with(|| json!({}));
        if !slot.is_object() {
            *slot = json!({});
        }
        slot.as_object_mut().expect("made an object above")
    }

    fn workdir_path(&self) -> String {
        self.config
            .get("WorkingDir")
            .and_then(Value::as_str)
            .filter(|w| !w.is_empty())
            .unwrap_or("/")
            .to_string()
    }

    fn history(&mut self, created_by: String, empty: bool) {
        let mut entry = json!({ "created": self.created, "created_by": created_by });
        if empty {
            entry["empty_layer"] = true.into();
        }
        self.history.push(entry);
    }

    /// The image config JSON as it stands (its digest is the image id).
    fn image_config(&self) -> Vec<u8> {
        let diff_ids: Vec<String> = self.layers.iter().map(|l| l.diff_id.to_string()).collect();
        let mut config = self.config.clone();
        for (key, value) in &self.labels {
            config
                .entry("Labels")
                .or_insert_with(|| json!({}))
                .as_object_mut()
                .map(|m| m.insert(key.clone(), value.clone().into()));
        }
        let mut image = json!({
            "architecture": self.base_config.get("architecture").cloned().unwrap_or(json!(sandbox_arch())),
            "os": "linux",
            "created": self.created,
            "config": config,
            "rootfs": { "type": "layers", "diff_ids": diff_ids },
            "history": self.history,
        });
        if let Some(author) = &self.author {
            image["author"] = author.clone().into();
        }
        serde_json::to_vec(&image).unwrap_or_default()
    }

    async fn from(&mut self, args: &str) -> Step {
        if self.from_done {
            return Err("multi-stage builds (a second FROM) are not supported by this playground's docker build".to_string().into());
        }
        let meta = self.meta_args.clone();
        let lookup = |name: &str| meta.get(name).cloned().flatten();
        let words = dockerfile::words(args, &lookup)?;
        match &words[..] {
            [_] => {}
            [_, r#as, _] if r#as.eq_ignore_ascii_case("as") => {
                return Err("multi-stage builds (FROM ... AS name) are not supported by this playground's docker build".to_string().into())
            }
            _ if words.iter().any(|w| w.starts_with("--")) => {
                return Err(format!("FROM flags are not supported by this playground's docker build: {args}").into())
            }
            _ => return Err(format!("FROM requires one argument: {args}").into()),
        }
        self.from_done = true;
        self.args.clear();
        let name = &words[0];
        if name == "scratch" {
            return Ok(());
        }
        let id = self.base_image(name).await?;
        let store = &self.ctx.engine.store;
        let details = store
            .inspect(&id)
            .map_err(|e| format!("image {name}: {e}"))?;
        self.base_config = store
            .config_bytes(&details.summary.id)
            .ok()
            .and_then(|b| serde_json::from_slice(&b).ok())
            .unwrap_or(Value::Null);
        self.config = self.base_config["config"]
            .as_object()
            .cloned()
            .unwrap_or_default();
        self.history = self.base_config["history"]
            .as_array()
            .cloned()
            .unwrap_or_default();
        self.layers = details.layers;
        self.base = Some(details.summary.id);
        Ok(())
    }

    /// The image `name` in the instance's view, else pulled (or served from
    /// the store, like `docker pull` offline) and named there.
    async fn base_image(&self, name: &str) -> Step<String> {
        if let Ok(id) = crate::engine::images::resolve(&self.ctx, name) {
            return Ok(id);
        }
        let reference: Reference = name
            .parse()
            .map_err(|_| format!("invalid reference format: {name}"))?;
        let store = &self.ctx.engine.store;
        let id = match store.pull(&reference.to_string(), &|_| {}).await {
            Ok(outcome) => outcome.id.to_string(),
            Err(e) => match store.inspect(&reference.to_string()) {
                Ok(details) => details.summary.id.to_string(),
                Err(_) => {
                    return Err(format!(
                        "pull access denied for {}, repository does not exist or may require 'docker login': {e}",
                        reference.familiar_repository()
                    )
                    .into())
                }
            },
        };
        crate::engine::images::name_image(&self.ctx, &reference, &id);
        Ok(id)
    }

    fn arg(&mut self, args: &str) -> Step {
        let declared = self.word(args)?;
        let (name, default) = match declared.split_once('=') {
            Some((n, d)) => (n.to_string(), Some(d.to_string())),
            None => (declared.clone(), None),
        };
        if name.is_empty() {
            return Err("ARG requires exactly one argument".to_string().into());
        }
        let value = self.build_args.get(&name).cloned().or(default);
        if self.from_done {
            self.args.insert(name, value);
            self.history(format!("/bin/sh -c #(nop)  ARG {declared}"), true);
        } else {
            self.meta_args.insert(name, value);
        }
        Ok(())
    }
}

/// CMD and ENTRYPOINT: the exec form as given, the shell form through sh.
fn command(args: &str) -> Vec<String> {
    dockerfile::json_form(args)
        .unwrap_or_else(|| vec!["/bin/sh".into(), "-c".into(), args.to_string()])
}

fn sandbox_arch() -> &'static str {
    match std::env::consts::ARCH {
        "x86_64" => "amd64",
        "aarch64" => "arm64",
        other => other,
    }
}
