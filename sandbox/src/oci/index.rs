//! The store's small database: which images exist and which tags name them,
//! kept as one JSON file replaced atomically on every change.

use std::collections::{BTreeMap, BTreeSet};
use std::fs;
use std::io::{self, Write};
use std::path::Path;

use serde::{Deserialize, Serialize};

use super::digest::Digest;

#[derive(Debug, Default, Clone, Serialize, Deserialize)]
pub struct Index {
    /// Images by id (the digest of their config, as Docker names them).
    pub images: BTreeMap<Digest, ImageRecord>,
    /// Fully qualified `repository:tag` to image id.
    pub tags: BTreeMap<String, Digest>,
}

/// What listing and running an image needs, copied from its manifest and
/// config when it was stored so that neither is read again for that.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct ImageRecord {
    pub manifest: Digest,
    /// `repository@digest` by which it was pulled (the digest of what the
    /// registry served: a manifest list or the manifest itself).
    pub repo_digests: BTreeSet<String>,
    /// Bottom to top.
    pub layers: Vec<LayerRecord>,
    /// The config's `created`, RFC 3339.
    pub created: Option<String>,
    /// Seconds since the epoch when it entered the store.
    pub stored_at: u64,
}

#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct LayerRecord {
    /// Digest of the uncompressed tar; names the unpacked directory.
    pub diff_id: Digest,
    /// Digest of the blob as distributed (compressed).
    pub blob: Digest,
    /// Uncompressed size in bytes.
    pub size: u64,
}

impl Index {
    pub fn load(path: &Path) -> io::Result<Index> {
        match fs::read(path) {
            Ok(bytes) => serde_json::from_slice(&bytes)
                .map_err(|e| io::Error::other(format!("{}: {e}", path.display()))),
            Err(e) if e.kind() == io::ErrorKind::NotFound => Ok(Index::default()),
            Err(e) => Err(e),
        }
    }

    /// Write to a temporary file and rename it over `path`: a crash leaves
    /// the old index or the new one, never half of one.
    pub fn save(&self, path: &Path) -> io::Result<()> {
        let dir = path.parent().unwrap_or(Path::new("."));
        let mut file = tempfile::NamedTempFile::new_in(dir)?;
        file.write_all(&serde_json::to_vec_pretty(self).map_err(io::Error::other)?)?;
        file.as_file().sync_all()?;
        file.persist(path).map_err(|e| e.error)?;
        Ok(())
    }

    /// Tags (fully qualified) that name `id`.
    pub fn tags_of(&self, id: &Digest) -> Vec<String> {
        self.tags
            .iter()
            .filter(|(_, target)| *target == id)
            .map(|(tag, _)| tag.clone())
            .collect()
    }

    /// Everything the images still need: blobs and unpacked layers.
    pub fn reachable(&self) -> (BTreeSet<Digest>, BTreeSet<Digest>) {
        let mut blobs = BTreeSet::new();
        let mut layers = BTreeSet::new();
        for (id, image) in &self.images {
            blobs.insert(id.clone());
            blobs.insert(image.manifest.clone());
            for layer in &image.layers {
                blobs.insert(layer.blob.clone());
                layers.insert(layer.diff_id.clone());
            }
        }
        (blobs, layers)
    }
}
