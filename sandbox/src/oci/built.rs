//! Images made here rather than pulled (`docker build`): layers arrive as
//! uncompressed tars (so their blob digest is their diff_id) and are
//! unpacked once like pulled ones; an image is a config over a base image's
//! layers plus new ones, stored with a manifest but no tag or repo digest
//! (the engine names it in the instance's view).

use std::collections::BTreeSet;
use std::fs;
use std::io;
use std::path::Path;
use std::time::{SystemTime, UNIX_EPOCH};

use oci_spec::image::{
    Descriptor, DescriptorBuilder, ImageConfiguration, ImageManifest, ImageManifestBuilder,
    MediaType,
};

use super::digest::Digest;
use super::index::{ImageRecord, LayerRecord};
use super::manifest::{self, Document};
use super::store::{ImageStore, LayerDetails};
use super::{Error, Result};

impl ImageStore {
    /// Store the layer tar at `tar` (uncompressed) and unpack it, unless a
    /// layer with the same content is there already.
    pub async fn add_layer(&self, tar: &Path) -> Result<LayerDetails> {
        let _shared = self.deleting.read().await;
        let mut writer = self.blobs.writer()?;
        io::copy(&mut fs::File::open(tar)?, &mut writer)?;
        let diff_id = writer.commit(None)?;
        if !self.layer_root(&diff_id).is_dir() {
            self.unpack_layer(&diff_id, &diff_id).await?;
        }
        Ok(LayerDetails {
            path: self.layer_root(&diff_id),
            size: self.layer_size(&diff_id),
            diff_id,
        })
    }

    /// Drop layers `add_layer` stored that no image uses (a build that
    /// failed).
    pub async fn discard_layers(&self, diff_ids: &[Digest]) -> Result<()> {
        let _exclusive = self.deleting.write().await;
        let (blobs, layers) = self.index.lock().unwrap().reachable();
        for diff_id in diff_ids {
            if !blobs.contains(diff_id) {
                self.blobs.remove(diff_id)?;
            }
            if !layers.contains(diff_id) {
                self.delete_layer(diff_id)?;
            }
        }
        Ok(())
    }

    /// Store an image: `config` (its `rootfs.diff_ids` are the base's layers
    /// then `added`, each stored by `add_layer`) over the image `base` (an
    /// id; `None` for an image from scratch). Returns the image id.
    pub fn add_image(
        &self,
        config: &[u8],
        base: Option<&Digest>,
        added: &[Digest],
    ) -> Result<Digest> {
        let parsed = ImageConfiguration::from_reader(config)
            .map_err(|e| Error::Invalid(format!("bad image config: {e}")))?;
        let (mut records, mut descriptors) = match base {
            Some(base) => self.base_layers(base)?,
            None => (Vec::new(), Vec::new()),
        };
        for diff_id in added {
            if !self.blobs.contains(diff_id) || !self.layer_root(diff_id).is_dir() {
                return Err(Error::NotFound(format!("layer {diff_id}")));
            }
            let blob_size = fs::metadata(self.blobs.path(diff_id))?.len();
            descriptors.push(descriptor(MediaType::ImageLayer, diff_id, blob_size)?);
            records.push(LayerRecord {
                diff_id: diff_id.clone(),
                blob: diff_id.clone(),
                size: self.layer_size(diff_id),
            });
        }
        let wanted: Vec<String> = records.iter().map(|r| r.diff_id.to_string()).collect();
        if *parsed.rootfs().diff_ids() != wanted {
            return Err(Error::Invalid(
                "the config's diff_ids are not the image's layers".into(),
            ));
        }
        let id = self.blobs.write(config, None)?;
        let manifest: ImageManifest = ImageManifestBuilder::default()
            .schema_version(2u32)
            .media_type(MediaType::ImageManifest)
            .config(descriptor(
                MediaType::ImageConfig,
                &id,
                config.len() as u64,
            )?)
            .layers(descriptors)
            .build()
            .map_err(|e| Error::Invalid(format!("manifest: {e}")))?;
        let manifest_bytes = serde_json::to_vec(&manifest).map_err(io::Error::other)?;
        let manifest_digest = self.blobs.write(&manifest_bytes, None)?;
        let mut index = self.index.lock().unwrap();
        index
            .images
            .entry(id.clone())
            .or_insert_with(|| ImageRecord {
                manifest: manifest_digest,
                repo_digests: BTreeSet::new(),
                layers: records,
                created: parsed.created().clone(),
                stored_at: SystemTime::now()
                    .duration_since(UNIX_EPOCH)
                    .map_or(0, |d| d.as_secs()),
            });
        index.save(&self.root().join("index.json"))?;
        Ok(id)
    }

    /// The layer records and manifest descriptors of image `id`.
    fn base_layers(&self, id: &Digest) -> Result<(Vec<LayerRecord>, Vec<Descriptor>)> {
        let record = self
            .index
            .lock()
            .unwrap()
            .images
            .get(id)
            .cloned()
            .ok_or_else(|| Error::NotFound(format!("image {id}")))?;
        let Document::Manifest(manifest) =
            manifest::parse(&self.blobs.read(&record.manifest)?, None)?
        else {
            return Err(Error::Invalid("the base image's manifest is a list".into()));
        };
        Ok((record.layers, manifest.layers().clone()))
    }
}

fn descriptor(media_type: MediaType, digest: &Digest, size: u64) -> Result<Descriptor> {
    let digest: oci_spec::image::Digest = digest
        .to_string()
        .parse()
        .map_err(|e| Error::Invalid(format!("{e}")))?;
    DescriptorBuilder::default()
        .media_type(media_type)
        .digest(digest)
        .size(size)
        .build()
        .map_err(|e| Error::Invalid(format!("descriptor: {e}")))
}
