//! RUN: a temporary container of the image so far (on the instance's
//! container bridge unless `--network host` or `none`), its output streamed into the build's, its writable
//! layer exported and stored as the next layer, the container's layer
//! removed whatever happened.

use std::fs;
use std::path::PathBuf;
use std::time::Duration;

use serde_json::{json, Value};
use tokio::io::AsyncReadExt;

use super::{Build, Failure, Step};
use crate::engine::build::dockerfile;

/// How long one RUN may take.
const RUN_TIMEOUT: Duration = Duration::from_secs(30 * 60);
/// How long the rest of a RUN's output may take after its exit.
const DRAIN: Duration = Duration::from_millis(300);

impl Build {
    pub(super) async fn run_step(&mut self, args: &str) -> Step {
        let argv = dockerfile::json_form(args)
            .unwrap_or_else(|| vec!["/bin/sh".to_string(), "-c".to_string(), args.to_string()]);
        let id = crate::engine::containers::random_id();
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
        let network = match self.network.as_str() {
            "host" => sandbox::ContainerNetwork::Instance,
            "none" => sandbox::ContainerNetwork::Loopback,
            _ => sandbox::ContainerNetwork::Bridge {
                address: containers
                    .reserve_address(&self.ctx.instance)
                    .ok_or_else(|| {
                        "no free address on the instance's container bridge".to_string()
                    })?,
            },
        };
        let spec = sandbox::RunSpec {
            id: id.clone(),
            hostname: short.clone(),
            layers: self.layers.iter().map(|l| l.path.clone()).collect(),
            disk_image: PathBuf::new(),
            binds: Vec::new(),
            network,
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
        if let sandbox::ContainerNetwork::Bridge { address } = network {
            engine
                .containers
                .release_address(&self.ctx.instance, address);
        }
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
                    if !text.is_empty() {
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
            _ = tokio::time::sleep_until(self.deadline) => Err(super::too_long()),
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

    pub(super) fn tmp_file(&self, id: &str) -> PathBuf {
        self.ctx
            .engine
            .store
            .root()
            .join("tmp")
            .join(format!("build-{id}.tar"))
    }

    pub(super) async fn add_layer(&mut self, tar: &std::path::Path) -> Step {
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
}

fn created_by(argv: &[String]) -> String {
    argv.join(" ")
}
