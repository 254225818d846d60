//! COPY, ADD and WORKDIR: layers made straight from the build context
//! (or an empty directory), placed where the image's symlinks lead.

use std::collections::BTreeSet;
use std::fs;
use std::path::PathBuf;

use super::{Build, Step};
use crate::engine::build::context::{self, Context};
use crate::engine::build::dockerfile;
use crate::engine::build::image_fs::{self, Kind};

impl Build {
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
        let tar = self.tmp_file(&crate::engine::containers::random_id());
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

    pub(super) async fn copy(&mut self, keyword: &str, args: &str) -> Step {
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
        // The numeric fields of `name`'s line in `file` (passwd: uid, gid;
        // group: gid).
        let ids = |file: &str, name: &str| -> Option<Vec<u64>> {
            let text = image_fs::read(&roots, file)?;
            text.lines().find_map(|l| {
                let fields: Vec<&str> = l.split(':').collect();
                (fields.len() > 3 && fields[0] == name)
                    .then(|| fields[2..].iter().map_while(|f| f.parse().ok()).collect())
            })
        };
        let missing = |what: &str| {
            format!("unable to convert uid/gid chown string to host mapping: can't find {what} in the image's files: {spec}")
        };
        let (uid, primary) = match user.parse::<u64>() {
            Ok(n) => (n, n),
            Err(_) => match ids("etc/passwd", user).as_deref() {
                Some([uid, gid, ..]) => (*uid, *gid),
                _ => return Err(missing("user").into()),
            },
        };
        let gid = if group.is_empty() {
            primary
        } else if let Ok(n) = group.parse::<u64>() {
            n
        } else {
            match ids("etc/group", group).as_deref() {
                Some([gid, ..]) => *gid,
                _ => return Err(missing("group").into()),
            }
        };
        Ok((uid, gid))
    }

    pub(super) async fn workdir(&mut self, args: &str, history: String) -> Step {
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
