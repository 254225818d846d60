//! Running a Dockerfile's instructions: the image so far (layers and
//! config), each step printed as the classic builder does, RUN in a
//! temporary container whose writable layer becomes a layer, COPY/ADD
//! layers made from the context, and the image stored and named at the end.

use std::collections::{BTreeMap, BTreeSet, HashMap};
use std::fs;
use std::path::PathBuf;
use std::time::Duration;

use sandbox::oci::{Digest, LayerDetails, Reference};
use serde_json::{json, Map, Value};
use tokio::io::AsyncReadExt;
use tokio::sync::mpsc::UnboundedSender;

use super::context::{self, Context};
use super::dockerfile::{self, Instruction};
use super::image_fs::{self, Kind};
use crate::engine::routes::Ctx;

/// How long one RUN may take.
const RUN_TIMEOUT: Duration = Duration::from_secs(30 * 60);
/// How long the rest of a RUN's output may take after its exit.
const DRAIN: Duration = Duration::from_millis(300);

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
    pub quiet: bool,
    pub context: Context,
    pub build_args: HashMap<String, String>,
    pub labels: BTreeMap<String, String>,
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
        quiet: bool,
        context: Context,
        build_args: HashMap<String, String>,
        labels: BTreeMap<String, String>,
    ) -> Build {
        Build {
            ctx,
            out,
            quiet,
            context,
            build_args,
            labels,
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
        if !self.quiet {
            let _ = self.out.send(json!({ "stream": text.into() }));
        }
    }

    /// Run every instruction; the image's config as stored.
    pub async fn run(&mut self, instructions: &[Instruction]) -> Step<Vec<u8>> {
        let total = instructions.len();
        for (n, instruction) in instructions.iter().enumerate() {
            if self.out.is_closed() {
                return Err("the client went away".to_string().into());
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

    async fn run_step(&mut self, args: &str) -> Step {
        let argv = dockerfile::json_form(args)
            .unwrap_or_else(|| vec!["/bin/sh".to_string(), "-c".to_string(), args.to_string()]);
        let id = super::super::containers::random_id();
        let short = id[..12].to_string();
        self.say(format!(" ---> Running in {short}\n"));
        let mut env = self.env();
        let has = |env: &[String], k: &str| env.iter().any(|e| e.starts_with(&format!("{k}=")));
        for (name, value) in &self.args {
            if let (Some(value), false) = (value, has(&env, name)) {
                env.push(format!("{name}={value}"));
            }
        }
        if !has(&env, "PATH") {
            env.insert(
                0,
                "PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin".into(),
            );
        }
        env.push(format!("HOSTNAME={short}"));
        if !has(&env, "HOME") {
            env.push("HOME=/root".into());
        }
        let containers = &self.ctx.engine.containers;
        let address = containers
            .reserve_address(&self.ctx.instance)
            .ok_or_else(|| "no free address on the instance's container bridge".to_string())?;
        let spec = sandbox::RunSpec {
            id: id.clone(),
            hostname: short.clone(),
            layers: self.layers.iter().map(|l| l.path.clone()).collect(),
            disk_image: PathBuf::new(),
            binds: Vec::new(),
            network: sandbox::ContainerNetwork::Bridge { address },
            process: sandbox::ProcessSpec {
                argv: argv.clone(),
                env,
                cwd: self.workdir_path(),
                user: self
                    .config
                    .get("User")
                    .and_then(Value::as_str)
                    .unwrap_or("")
                    .to_string(),
                tty: None,
            },
        };
        let sandbox = self.ctx.sandbox.clone();
        let engine = self.ctx.engine.clone();
        let builds = &engine.builds;
        builds.container(&self.ctx.instance, &id, 0);
        let result = self.run_container(spec, &argv).await;
        // Its network went with its processes.
        engine
            .containers
            .release_address(&self.ctx.instance, address);
        let result = match result {
            Ok(()) => self.export(&id).await,
            Err(e) => Err(e),
        };
        match sandbox.remove_container_layer(&id).await {
            Ok(()) => builds.container_gone(&self.ctx.instance, &id),
            Err(e) => tracing::warn!(instance = %self.ctx.instance, "build container {short}: {e}"),
        }
        self.say(format!("Removing intermediate container {short}\n"));
        result?;
        self.history(created_by(&argv), false);
        Ok(())
    }

    /// Run the RUN container to its end, its output into the build's.
    async fn run_container(&self, spec: sandbox::RunSpec, argv: &[String]) -> Step {
        let sandbox = &self.ctx.sandbox;
        let spec_id = spec.id.clone();
        let process = sandbox
            .run_container(spec)
            .await
            .map_err(|e| format!("failed to create task for container: {e}"))?;
        let sandbox::ProcessIo::Pipes { stdout, stderr, .. } = process.io else {
            return Err("the build container has a terminal".to_string().into());
        };
        let mut readers = Vec::new();
        for fd in [stdout, stderr] {
            let out = self.out.clone();
            let quiet = self.quiet;
            readers.push(tokio::spawn(async move {
                let Ok(mut pipe) = tokio::net::unix::pipe::Receiver::from_owned_fd(fd) else {
                    return;
                };
                let mut buf = vec![0u8; 16 * 1024];
                let mut carry = Vec::new();
                while let Ok(n) = pipe.read(&mut buf).await {
                    if n == 0 {
                        break;
                    }
                    carry.extend_from_slice(&buf[..n]);
                    // Whole UTF-8 characters only; the rest waits.
                    let cut = match std::str::from_utf8(&carry) {
                        Ok(_) => carry.len(),
                        Err(e) if e.error_len().is_none() => e.valid_up_to(),
                        Err(_) => carry.len(),
                    };
                    let text = String::from_utf8_lossy(&carry[..cut]).into_owned();
                    carry.drain(..cut);
                    if !quiet && !text.is_empty() {
                        let _ = out.send(json!({ "stream": text }));
                    }
                }
            }));
        }
        let pid = process.pid;
        let builds = &self.ctx.engine.builds;
        builds.container(&self.ctx.instance, &spec_id, pid);
        let outcome = tokio::select! {
            code = process.exit => Ok(code.unwrap_or(255)),
            _ = tokio::time::sleep(RUN_TIMEOUT) => Err(format!("the command '{}' took longer than {} minutes", argv.join(" "), RUN_TIMEOUT.as_secs() / 60)),
            _ = self.out.closed() => Err("the client went away".to_string()),
        };
        if outcome.is_err() {
            let _ = sandbox.signal(pid, libc::SIGKILL).await;
        }
        for reader in readers {
            let abort = reader.abort_handle();
            if tokio::time::timeout(DRAIN, reader).await.is_err() {
                abort.abort();
            }
        }
        match outcome? {
            0 => Ok(()),
            code => Err(Failure {
                message: format!(
                    "The command '{}' returned a non-zero code: {code}",
                    argv.join(" ")
                ),
                code,
            }),
        }
    }

    /// The RUN container's writable layer into the store, as the next layer.
    async fn export(&mut self, id: &str) -> Step {
        let tar = self.tmp_file(id);
        let exported = self
            .ctx
            .sandbox
            .export_container_layer(id, &tar)
            .await
            .map_err(|e| format!("saving the layer: {e}"));
        let added = match exported {
            Ok(()) => self.add_layer(&tar).await,
            Err(e) => Err(e.into()),
        };
        let _ = fs::remove_file(&tar);
        added
    }

    fn tmp_file(&self, id: &str) -> PathBuf {
        self.ctx
            .engine
            .store
            .root()
            .join("tmp")
            .join(format!("build-{id}.tar"))
    }

    async fn add_layer(&mut self, tar: &std::path::Path) -> Step {
        let layer = self
            .ctx
            .engine
            .store
            .add_layer(tar)
            .await
            .map_err(|e| format!("storing the layer: {e}"))?;
        if !self.layers.iter().any(|l| l.diff_id == layer.diff_id) {
            let builds = &self.ctx.engine.builds;
            builds.layer(&self.ctx.instance, &layer.diff_id.to_string());
            self.added.push(layer.diff_id.clone());
        }
        self.layers.push(layer);
        Ok(())
    }

    /// Make a layer of `plan` (and the directories it needs) and add it.
    async fn layer_of(&mut self, plan: &[(String, &context::Entry)], owner: (u64, u64)) -> Step {
        let mut parents = BTreeSet::new();
        let roots: Vec<PathBuf> = self.layers.iter().map(|l| l.path.clone()).collect();
        let planned: BTreeSet<&str> = plan.iter().map(|(t, _)| t.as_str()).collect();
        for (target, _) in plan {
            let mut parent = target.as_str();
            while let Some((up, _)) = parent.rsplit_once('/') {
                parent = up;
                if !planned.contains(parent) && image_fs::kind(&roots, parent) != Some(Kind::Dir) {
                    parents.insert(parent.to_string());
                }
            }
        }
        let tar = self.tmp_file(&super::super::containers::random_id());
        let written = fs::File::create(&tar)
            .and_then(|file| context::write_layer(file, plan, &parents, owner))
            .and_then(|file| file.sync_all())
            .map_err(|e| format!("writing the layer: {e}"));
        let result = match written {
            Ok(()) => self.add_layer(&tar).await,
            Err(e) => Err(e.into()),
        };
        let _ = fs::remove_file(&tar);
        result
    }

    async fn copy(&mut self, keyword: &str, args: &str) -> Step {
        let mut words = match dockerfile::json_form(args) {
            Some(items) => items
                .iter()
                .map(|i| self.word(i))
                .collect::<Step<Vec<_>>>()?,
            None => self.words(args)?,
        };
        let mut owner = (0, 0);
        while words.first().is_some_and(|w| w.starts_with("--")) {
            let flag = words.remove(0);
            match flag.split_once('=') {
                Some(("--chown", spec)) => owner = self.owner(spec)?,
                _ => {
                    return Err(format!(
                        "{keyword} {flag} is not supported by this playground's docker build"
                    )
                    .into())
                }
            }
        }
        if words.len() < 2 {
            return Err(format!("{keyword} requires at least two arguments").into());
        }
        let dest = words.pop().expect("two or more");
        if let Some(url) = words
            .iter()
            .find(|w| w.starts_with("http://") || w.starts_with("https://"))
        {
            return Err(format!(
                "{keyword} of a URL ({url}) is not supported by this playground's docker build"
            )
            .into());
        }
        let absolute = if dest.starts_with('/') {
            dest.clone()
        } else {
            format!("{}/{dest}", self.workdir_path())
        };
        let roots: Vec<PathBuf> = self.layers.iter().map(|l| l.path.clone()).collect();
        let clean_dest = image_fs::resolve(&roots, &context::clean(&absolute).unwrap_or_default());
        let dest_is_dir =
            clean_dest.is_empty() || image_fs::kind(&roots, &clean_dest) == Some(Kind::Dir);
        let context = std::mem::replace(&mut self.context, Context::empty());
        // The destination as the image resolves it (a trailing / kept).
        let slash = if absolute.ends_with('/') { "/" } else { "" };
        let resolved = format!("/{clean_dest}{slash}");
        let result = match context.plan(&words, &resolved, dest_is_dir) {
            Ok(plan) => self.layer_of(&plan, owner).await,
            Err(e) => Err(e.into()),
        };
        self.context = context;
        result?;
        self.history(
            format!(
                "/bin/sh -c #(nop) {keyword} {}",
                words.join(" ") + " in " + &dest
            ),
            false,
        );
        Ok(())
    }

    /// `--chown=user:group`: numbers, or names from the image's
    /// /etc/passwd and /etc/group.
    fn owner(&self, spec: &str) -> Step<(u64, u64)> {
        let roots: Vec<PathBuf> = self.layers.iter().map(|l| l.path.clone()).collect();
        let (user, group) = spec.split_once(':').unwrap_or((spec, ""));
        let find = |file: &str, name: &str| -> Option<(u64, u64)> {
            if let Ok(n) = name.parse::<u64>() {
                return Some((n, n));
            }
            let text = image_fs::read(&roots, file)?;
            text.lines().find_map(|l| {
                let fields: Vec<&str> = l.split(':').collect();
                (fields.len() > 3 && fields[0] == name)
                    .then(|| Some((fields[2].parse().ok()?, fields[3].parse().ok()?)))
                    .flatten()
            })
        };
        let missing = |what: &str| {
            format!("unable to convert uid/gid chown string to host mapping: can't find {what} in the image's files: {spec}")
        };
        let (uid, primary) = find("etc/passwd", user).ok_or_else(|| missing("user"))?;
        let gid = if group.is_empty() {
            primary
        } else {
            find("etc/group", group).ok_or_else(|| missing("group"))?.1
        };
        Ok((uid, gid))
    }

    async fn workdir(&mut self, args: &str, history: String) -> Step {
        let path = self.word(args)?;
        let absolute = if path.starts_with('/') {
            path
        } else {
            format!("{}/{path}", self.workdir_path())
        };
        let clean = context::clean(&absolute).unwrap_or_default();
        self.config
            .insert("WorkingDir".into(), format!("/{clean}").into());
        let roots: Vec<PathBuf> = self.layers.iter().map(|l| l.path.clone()).collect();
        let clean = image_fs::resolve(&roots, &clean);
        if clean.is_empty() || image_fs::kind(&roots, &clean) == Some(Kind::Dir) {
            self.history(history, true);
            return Ok(());
        }
        let dir = context::Entry {
            content: context::Content::Dir,
            mode: 0o755,
            mtime: std::time::SystemTime::now()
                .duration_since(std::time::UNIX_EPOCH)
                .map_or(0, |d| d.as_secs()),
        };
        self.layer_of(&[(clean, &dir)], (0, 0)).await?;
        self.history(history, false);
        Ok(())
    }
}

/// CMD and ENTRYPOINT: the exec form as given, the shell form through sh.
fn command(args: &str) -> Vec<String> {
    dockerfile::json_form(args)
        .unwrap_or_else(|| vec!["/bin/sh".into(), "-c".into(), args.to_string()])
}

fn created_by(argv: &[String]) -> String {
    argv.join(" ")
}

fn sandbox_arch() -> &'static str {
    match std::env::consts::ARCH {
        "x86_64" => "amd64",
        "aarch64" => "arm64",
        other => other,
    }
}
