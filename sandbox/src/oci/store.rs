//! The image store the engine uses: pull, list, inspect, tag, remove and
//! garbage-collect images, each layer unpacked once into a directory shared
//! by every image that has it.

use std::collections::BTreeSet;
use std::fs;
use std::io;
use std::path::{Path, PathBuf};
use std::sync::Mutex;
use std::time::{SystemTime, UNIX_EPOCH};

use oci_spec::image::{ImageConfiguration, ImageManifest};
use tokio::sync::RwLock;

use super::blobs::{list_digests, BlobStore};
use super::digest::Digest;
use super::index::{ImageRecord, Index, LayerRecord};
use super::layer;
use super::manifest::{self, Document};
use super::reference::Reference;
use super::registry::{Endpoint, RegistryClient, RegistrySettings};
use super::{Error, Result};

/// Steps of a pull, in the order `docker pull` prints them. `layer` is the
/// blob digest (Docker shows its first 12 hex digits).
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Progress {
    /// The manifest was found: `latest: Pulling from library/busybox`.
    Resolved {
        reference: String,
        digest: Digest,
    },
    /// An unpacked layer with the same content is in the store already.
    LayerExists {
        layer: Digest,
    },
    /// The layer will be fetched: `Pulling fs layer`.
    LayerWaiting {
        layer: Digest,
    },
    Downloading {
        layer: Digest,
        current: u64,
        total: u64,
    },
    /// Downloaded and checked against its digest: `Download complete`.
    Downloaded {
        layer: Digest,
    },
    Extracting {
        layer: Digest,
    },
    /// Unpacked and checked against its diff_id: `Pull complete`.
    LayerDone {
        layer: Digest,
    },
}

/// A progress callback; the engine turns these into Docker's JSON stream.
pub type ProgressFn<'a> = &'a (dyn Fn(Progress) + Send + Sync);

#[derive(Debug, Clone)]
pub struct PullOutcome {
    /// The image id (config digest).
    pub id: Digest,
    /// The digest the registry served for the reference: `Digest: ...`.
    pub digest: Digest,
    /// The reference as `docker` prints it: `busybox:latest`.
    pub reference: String,
    /// False when the tag already named this image (`Image is up to date`).
    pub updated: bool,
}

/// One line of `docker images`.
#[derive(Debug, Clone)]
pub struct ImageSummary {
    pub id: Digest,
    /// Familiar forms: `busybox:latest`.
    pub repo_tags: Vec<String>,
    pub repo_digests: Vec<String>,
    pub created: Option<String>,
    /// Sum of the layers' uncompressed sizes.
    pub size: u64,
}

/// What `docker image inspect` and the runtime need.
#[derive(Debug, Clone)]
pub struct ImageDetails {
    pub summary: ImageSummary,
    pub manifest: Digest,
    /// The parsed image config (Env, Cmd, Entrypoint, ExposedPorts, ...).
    pub config: ImageConfiguration,
    /// Bottom to top.
    pub layers: Vec<LayerDetails>,
}

#[derive(Debug, Clone)]
pub struct LayerDetails {
    pub diff_id: Digest,
    /// The unpacked tree, ready to be an overlayfs lower dir.
    pub path: PathBuf,
    pub size: u64,
}

/// What `remove` did, in Docker's terms.
#[derive(Debug, Clone, Default)]
pub struct Removed {
    /// Familiar references whose tags were removed.
    pub untagged: Vec<String>,
    /// Image ids deleted, then layer diff_ids deleted.
    pub deleted: Vec<Digest>,
}

/// What garbage collection freed.
#[derive(Debug, Clone, Default)]
pub struct Collected {
    pub blobs: usize,
    pub layers: usize,
}

pub struct ImageStore {
    root: PathBuf,
    pub(super) blobs: BlobStore,
    layers: PathBuf,
    tmp: PathBuf,
    pub(super) index: Mutex<Index>,
    registry: RegistryClient,
    /// Pulls and imports share it; removal and gc take it alone, so a layer
    /// a pull has found present cannot vanish before the pull records it.
    pub(super) deleting: RwLock<()>,
}

impl ImageStore {
    /// Open (or create) the store under `root`. Unfinished work of an earlier
    /// run (partial blobs, half-unpacked layers) is removed.
    pub fn open(root: &Path, settings: RegistrySettings) -> Result<ImageStore> {
        let tmp = root.join("tmp");
        if tmp.exists() {
            fs::remove_dir_all(&tmp)?;
        }
        let blobs = BlobStore::new(root.join("blobs/sha256"), tmp.clone())?;
        let layers = root.join("layers");
        fs::create_dir_all(&layers)?;
        let index = Index::load(&root.join("index.json"))?;
        Ok(ImageStore {
            root: root.to_owned(),
            blobs,
            layers,
            tmp,
            index: Mutex::new(index),
            registry: RegistryClient::new(settings)?,
            deleting: RwLock::new(()),
        })
    }

    /// Pull `reference` (`busybox`, `registry:5000/foo:1`, `x@sha256:..`)
    /// for this host's platform. Layers already unpacked are neither
    /// downloaded nor unpacked again.
    pub async fn pull(&self, reference: &str, progress: ProgressFn<'_>) -> Result<PullOutcome> {
        let reference: Reference = reference.parse()?;
        let _shared = self.deleting.read().await;
        let mut last_error = None;
        for endpoint in self.registry.endpoints(&reference)? {
            match self.pull_from(&endpoint, &reference, progress).await {
                Ok(outcome) => return Ok(outcome),
                // Content that fails its digest is not retried elsewhere: it
                // is as likely an attack as an accident.
                Err(e @ Error::DigestMismatch { .. }) => return Err(e),
                Err(e) => {
                    tracing::debug!(
                        "pull of {reference} from {} failed: {e}",
                        endpoint.describe()
                    );
                    last_error = Some(e);
                }
            }
        }
        Err(last_error.unwrap_or_else(|| Error::NotFound(reference.to_string())))
    }

    async fn pull_from(
        &self,
        endpoint: &Endpoint,
        reference: &Reference,
        progress: ProgressFn<'_>,
    ) -> Result<PullOutcome> {
        let (bytes, content_type) = self
            .registry
            .manifest(endpoint, &reference.registry_reference())
            .await?;
        let top = check_digest(&bytes, reference.digest.as_ref())?;
        progress(Progress::Resolved {
            reference: reference.registry_reference(),
            digest: top.clone(),
        });
        let (manifest_bytes, manifest_digest) =
            match manifest::parse(&bytes, content_type.as_deref())? {
                Document::Manifest(_) => (bytes, top.clone()),
                Document::Index(index) => {
                    let chosen = manifest::select_platform(&index)?;
                    let digest = manifest::descriptor_digest(chosen)?;
                    let (bytes, _) = self
                        .registry
                        .manifest(endpoint, &digest.to_string())
                        .await?;
                    check_digest(&bytes, Some(&digest))?;
                    (bytes, digest)
                }
            };
        let source = Source::Registry(endpoint);
        self.install(
            &source,
            manifest_bytes,
            manifest_digest,
            top,
            reference,
            progress,
        )
        .await
    }

    /// Store a platform manifest's config and layers, then name the image.
    /// `top` is the digest the reference resolved to (maybe an index).
    pub(super) async fn install(
        &self,
        source: &Source<'_>,
        manifest_bytes: Vec<u8>,
        manifest_digest: Digest,
        top: Digest,
        reference: &Reference,
        progress: ProgressFn<'_>,
    ) -> Result<PullOutcome> {
        let manifest = match manifest::parse(&manifest_bytes, None)? {
            Document::Manifest(m) => m,
            Document::Index(_) => return Err(Error::Invalid("nested manifest list".into())),
        };
        let config_digest = manifest::descriptor_digest(manifest.config())?;
        if !self.blobs.contains(&config_digest) {
            self.fetch(source, &config_digest, manifest.config().size(), &|_| {})
                .await?;
        }
        let config_bytes = self.blobs.read(&config_digest)?;
        let config = ImageConfiguration::from_reader(&config_bytes[..])
            .map_err(|e| Error::Invalid(format!("bad image config: {e}")))?;
        let layers = self
            .install_layers(source, &manifest, &config, progress)
            .await?;
        self.blobs.write(&manifest_bytes, Some(&manifest_digest))?;

        let id = config_digest;
        let repo_digest = reference.with_digest(&top).to_string();
        let mut index = self.index.lock().unwrap();
        let record = index
            .images
            .entry(id.clone())
            .or_insert_with(|| ImageRecord {
                manifest: manifest_digest,
                repo_digests: BTreeSet::new(),
                layers,
                created: config.created().clone(),
                stored_at: SystemTime::now()
                    .duration_since(UNIX_EPOCH)
                    .map_or(0, |d| d.as_secs()),
            });
        record.repo_digests.insert(repo_digest);
        let mut updated = true;
        if reference.tag.is_some() {
            let tag = Reference {
                digest: None,
                ..reference.clone()
            };
            let previous = index.tags.insert(tag.to_string(), id.clone());
            updated = previous.as_ref() != Some(&id);
        }
        index.save(&self.root.join("index.json"))?;
        Ok(PullOutcome {
            id,
            digest: top,
            reference: reference.familiar(),
            updated,
        })
    }

    async fn install_layers(
        &self,
        source: &Source<'_>,
        manifest: &ImageManifest,
        config: &ImageConfiguration,
        progress: ProgressFn<'_>,
    ) -> Result<Vec<LayerRecord>> {
        let diff_ids = config.rootfs().diff_ids();
        if diff_ids.len() != manifest.layers().len() {
            return Err(Error::Invalid(format!(
                "manifest has {} layers, its config {} diff_ids",
                manifest.layers().len(),
                diff_ids.len()
            )));
        }
        let mut wanted = Vec::new();
        for (descriptor, diff_id) in manifest.layers().iter().zip(diff_ids) {
            let blob = manifest::descriptor_digest(descriptor)?;
            let diff_id: Digest = diff_id.parse()?;
            if self.layer_root(&diff_id).is_dir() {
                progress(Progress::LayerExists {
                    layer: blob.clone(),
                });
            } else {
                progress(Progress::LayerWaiting {
                    layer: blob.clone(),
                });
            }
            wanted.push((blob, diff_id, descriptor.size()));
        }
        let mut records = Vec::new();
        for (blob, diff_id, size) in wanted {
            if !self.layer_root(&diff_id).is_dir() {
                if !self.blobs.contains(&blob) {
                    let report = |current| {
                        progress(Progress::Downloading {
                            layer: blob.clone(),
                            current,
                            total: size,
                        })
                    };
                    self.fetch(source, &blob, size, &report).await?;
                }
                progress(Progress::Downloaded {
                    layer: blob.clone(),
                });
                progress(Progress::Extracting {
                    layer: blob.clone(),
                });
                self.unpack_layer(&blob, &diff_id).await?;
                progress(Progress::LayerDone {
                    layer: blob.clone(),
                });
            }
            records.push(LayerRecord {
                size: self.layer_size(&diff_id),
                diff_id,
                blob,
            });
        }
        Ok(records)
    }

    /// Copy blob `digest` from `source` into the store, verified.
    async fn fetch(
        &self,
        source: &Source<'_>,
        digest: &Digest,
        size: u64,
        progress: &(dyn Fn(u64) + Send + Sync),
    ) -> Result<()> {
        let mut writer = self.blobs.writer()?;
        match source {
            Source::Registry(endpoint) => {
                self.registry
                    .blob(endpoint, digest, size, &mut writer, progress)
                    .await?
            }
            Source::Layout(dir) => {
                let path = dir.join("blobs/sha256").join(digest.hex());
                let mut file = fs::File::open(&path)
                    .map_err(|e| Error::NotFound(format!("{}: {e}", path.display())))?;
                io::copy(&mut file, &mut writer)?;
                progress(writer.written());
            }
        }
        if writer.written() != size {
            return Err(Error::Invalid(format!(
                "blob {digest} has {} bytes, its descriptor says {size}",
                writer.written()
            )));
        }
        writer.commit(Some(digest))?;
        Ok(())
    }

    /// Unpack a stored layer blob into `layers/<diff_id>`: into a temporary
    /// directory first, renamed into place only once its diff_id checks out.
    pub(super) async fn unpack_layer(&self, blob: &Digest, diff_id: &Digest) -> Result<()> {
        let blob_path = self.blobs.path(blob);
        let staging = tempfile::Builder::new()
            .prefix("layer-")
            .tempdir_in(&self.tmp)?;
        let staging_root = staging.path().join("root");
        fs::create_dir(&staging_root)?;
        let unpacked = {
            let root = staging_root.clone();
            tokio::task::spawn_blocking(move || layer::unpack(&blob_path, &root))
                .await
                .map_err(|e| Error::Io(io::Error::other(e)))??
        };
        if unpacked.diff_id != *diff_id {
            return Err(Error::DigestMismatch {
                expected: diff_id.clone(),
                actual: unpacked.diff_id,
            });
        }
        fs::write(staging.path().join("size"), unpacked.size.to_string())?;
        fs::set_permissions(
            staging.path(),
            std::os::unix::fs::PermissionsExt::from_mode(0o755),
        )?;
        let staging = staging.keep();
        if let Err(e) = fs::rename(&staging, self.layers.join(diff_id.hex())) {
            // Another pull may have finished the same layer meanwhile.
            let _ = remove_tree(&staging);
            if !self.layer_root(diff_id).is_dir() {
                return Err(e.into());
            }
        }
        Ok(())
    }

    pub(super) fn layer_root(&self, diff_id: &Digest) -> PathBuf {
        self.layers.join(diff_id.hex()).join("root")
    }

    pub(super) fn layer_size(&self, diff_id: &Digest) -> u64 {
        fs::read_to_string(self.layers.join(diff_id.hex()).join("size"))
            .ok()
            .and_then(|s| s.trim().parse().ok())
            .unwrap_or(0)
    }

    /// Every image, newest first.
    pub fn list(&self) -> Vec<ImageSummary> {
        let index = self.index.lock().unwrap();
        let mut images: Vec<_> = index.images.iter().collect();
        images.sort_by_key(|(_, record)| std::cmp::Reverse(record.stored_at));
        images
            .into_iter()
            .map(|(id, record)| summary(&index, id, record))
            .collect()
    }

    /// The image id `name_or_id` stands for: a reference (tag or
    /// `repo@digest`), a full id, or an unambiguous id prefix.
    pub fn resolve(&self, name_or_id: &str) -> Result<Digest> {
        let index = self.index.lock().unwrap();
        resolve(&index, name_or_id)
    }

    pub fn inspect(&self, name_or_id: &str) -> Result<ImageDetails> {
        let (id, record, summary) = {
            let index = self.index.lock().unwrap();
            let id = resolve(&index, name_or_id)?;
            let record = index.images[&id].clone();
            let summary = summary(&index, &id, &record);
            (id, record, summary)
        };
        let config = ImageConfiguration::from_reader(&self.blobs.read(&id)?[..])
            .map_err(|e| Error::Invalid(format!("bad image config: {e}")))?;
        let layers = record
            .layers
            .iter()
            .map(|layer| LayerDetails {
                diff_id: layer.diff_id.clone(),
                path: self.layer_root(&layer.diff_id),
                size: layer.size,
            })
            .collect();
        Ok(ImageDetails {
            summary,
            manifest: record.manifest,
            config,
            layers,
        })
    }

    /// The raw config JSON of an image, as `docker inspect` passes it on.
    pub fn config_bytes(&self, id: &Digest) -> Result<Vec<u8>> {
        self.blobs.read(id)
    }

    /// Name the image `source` also as `target` (`docker tag`).
    pub fn tag(&self, source: &str, target: &str) -> Result<()> {
        let target: Reference = target.parse()?;
        if target.digest.is_some() {
            return Err(Error::Invalid("a tag cannot contain a digest".into()));
        }
        let mut index = self.index.lock().unwrap();
        let id = resolve(&index, source)?;
        index.tags.insert(target.to_string(), id);
        index.save(&self.root.join("index.json"))?;
        Ok(())
    }

    /// `docker rmi`: a tag name removes that tag, and the image with it when
    /// no other tag is left; an id removes the image (with `force`, even when
    /// several tags name it). Layers other images use stay. Whether
    /// containers still use the image is the engine's check, made before.
    pub async fn remove(&self, name_or_id: &str, force: bool) -> Result<Removed> {
        let _exclusive = self.deleting.write().await;
        let mut removed = Removed::default();
        let mut index = self.index.lock().unwrap();
        let as_tag = name_or_id
            .parse::<Reference>()
            .ok()
            .filter(|r| r.digest.is_none())
            .map(|r| r.to_string())
            .filter(|tag| index.tags.contains_key(tag));
        let id = match as_tag {
            Some(tag) => {
                let id = index.tags.remove(&tag).expect("checked above");
                removed.untagged.push(familiar(&tag));
                if !index.tags_of(&id).is_empty() {
                    index.save(&self.root.join("index.json"))?;
                    return Ok(removed);
                }
                id
            }
            None => {
                let id = resolve(&index, name_or_id)?;
                let tags = index.tags_of(&id);
                if tags.len() > 1 && !force {
                    return Err(Error::Conflict(format!(
                        "image {} is referenced by {} tags; remove them or force",
                        id.short(),
                        tags.len()
                    )));
                }
                for tag in tags {
                    index.tags.remove(&tag);
                    removed.untagged.push(familiar(&tag));
                }
                id
            }
        };
        let record = index.images.remove(&id).expect("resolved ids exist");
        index.save(&self.root.join("index.json"))?;
        removed.deleted.push(id.clone());
        let (blobs, layers) = index.reachable();
        drop(index);
        for blob in [&id, &record.manifest] {
            if !blobs.contains(blob) {
                self.blobs.remove(blob)?;
            }
        }
        for layer in &record.layers {
            if !blobs.contains(&layer.blob) {
                self.blobs.remove(&layer.blob)?;
            }
            if !layers.contains(&layer.diff_id) && self.delete_layer(&layer.diff_id)? {
                removed.deleted.push(layer.diff_id.clone());
            }
        }
        Ok(removed)
    }

    /// Remove every blob and unpacked layer no image refers to, and leftovers
    /// of interrupted work.
    pub async fn gc(&self) -> Result<Collected> {
        let _exclusive = self.deleting.write().await;
        let (blobs, layers) = self.index.lock().unwrap().reachable();
        let mut collected = Collected::default();
        for blob in self.blobs.list()? {
            if !blobs.contains(&blob) {
                self.blobs.remove(&blob)?;
                collected.blobs += 1;
            }
        }
        for layer in list_digests(&self.layers)? {
            if !layers.contains(&layer) && self.delete_layer(&layer)? {
                collected.layers += 1;
            }
        }
        Ok(collected)
    }

    /// Move the layer out of sight first (one rename), then delete it.
    pub(super) fn delete_layer(&self, diff_id: &Digest) -> Result<bool> {
        let dir = self.layers.join(diff_id.hex());
        let doomed = self.tmp.join(format!("deleting-{}", diff_id.hex()));
        match fs::rename(&dir, &doomed) {
            Ok(()) => {
                remove_tree(&doomed)?;
                Ok(true)
            }
            Err(e) if e.kind() == io::ErrorKind::NotFound => Ok(false),
            Err(e) => Err(e.into()),
        }
    }

    pub fn root(&self) -> &Path {
        &self.root
    }
}

/// Where `install` gets blobs from.
pub(super) enum Source<'a> {
    Registry(&'a Endpoint),
    /// An OCI image layout directory.
    Layout(&'a Path),
}

fn check_digest(bytes: &[u8], expected: Option<&Digest>) -> Result<Digest> {
    let actual = Digest::of(bytes);
    match expected {
        Some(expected) if *expected != actual => Err(Error::DigestMismatch {
            expected: expected.clone(),
            actual,
        }),
        _ => Ok(actual),
    }
}

fn familiar(full: &str) -> String {
    full.parse::<Reference>()
        .map(|r| r.familiar())
        .unwrap_or_else(|_| full.to_owned())
}

fn summary(index: &Index, id: &Digest, record: &ImageRecord) -> ImageSummary {
    ImageSummary {
        id: id.clone(),
        repo_tags: index.tags_of(id).iter().map(|t| familiar(t)).collect(),
        repo_digests: record.repo_digests.iter().map(|d| familiar(d)).collect(),
        created: record.created.clone(),
        size: record.layers.iter().map(|l| l.size).sum(),
    }
}

fn resolve(index: &Index, name_or_id: &str) -> Result<Digest> {
    if let Ok(reference) = name_or_id.parse::<Reference>() {
        if let Some(digest) = &reference.digest {
            let wanted = reference.with_digest(digest).to_string();
            if let Some((id, _)) = index
                .images
                .iter()
                .find(|(_, r)| r.repo_digests.contains(&wanted))
            {
                return Ok(id.clone());
            }
        } else if let Some(id) = index.tags.get(&reference.to_string()) {
            return Ok(id.clone());
        }
    }
    let hex = name_or_id.strip_prefix("sha256:").unwrap_or(name_or_id);
    if !hex.is_empty() && hex.len() <= 64 && hex.bytes().all(|b| b.is_ascii_hexdigit()) {
        let mut matches = index.images.keys().filter(|id| id.hex().starts_with(hex));
        if let (Some(id), None) = (matches.next(), matches.next()) {
            return Ok(id.clone());
        }
    }
    Err(Error::NotFound(format!("no such image: {name_or_id}")))
}

/// Delete a directory tree (root ignores the modes inside layers).
fn remove_tree(path: &Path) -> io::Result<()> {
    fs::remove_dir_all(path)
}

impl ImageStore {
    /// Whether the tag of `reference` names an image pulled as `digest`.
    pub(super) fn tag_has_repo_digest(&self, reference: &Reference, digest: &Digest) -> bool {
        let index = self.index.lock().unwrap();
        let pinned = reference.with_digest(digest).to_string();
        index
            .tags
            .get(&reference.to_string())
            .and_then(|id| index.images.get(id))
            .is_some_and(|record| record.repo_digests.contains(&pinned))
    }
}
