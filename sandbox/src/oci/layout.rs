//! Importing images from OCI image layouts (a directory with `oci-layout`,
//! `index.json` and `blobs/`). This is how the offline default images
//! (built by `scripts/build-offline-images`) enter the store, and how tests
//! and tools can hand over images without a registry.

use std::fs;
use std::path::Path;

use oci_spec::image::ImageIndex;

use super::digest::Digest;
use super::manifest::{self, Document};
use super::reference::Reference;
use super::store::{ImageStore, ProgressFn, PullOutcome, Source};
use super::{Error, Result};

/// The annotation that names a manifest in a layout's index.
const REF_NAME: &str = "org.opencontainers.image.ref.name";

impl ImageStore {
    /// Import every manifest of the layout at `dir` whose ref name is an
    /// image reference with a tag (`busybox:latest`, `debian:bookworm-slim`). A tag that
    /// already names the same manifest is skipped, so calling this at every
    /// start costs a few file reads.
    pub async fn import_layout(
        &self,
        dir: &Path,
        progress: ProgressFn<'_>,
    ) -> Result<Vec<PullOutcome>> {
        let index_path = dir.join("index.json");
        let index = ImageIndex::from_file(&index_path)
            .map_err(|e| Error::Invalid(format!("{}: {e}", index_path.display())))?;
        let mut outcomes = Vec::new();
        for descriptor in index.manifests() {
            let Some(name) = descriptor
                .annotations()
                .as_ref()
                .and_then(|a| a.get(REF_NAME))
            else {
                continue;
            };
            // Bare tags (`latest`, `1`), common in layouts, name no image.
            let named = name.contains(':') || name.contains('@');
            let Some(reference) = name.parse::<Reference>().ok().filter(|_| named) else {
                tracing::debug!("layout ref {name:?} is not an image reference; skipped");
                continue;
            };
            let top = manifest::descriptor_digest(descriptor)?;
            if self.tag_has_repo_digest(&reference, &top) {
                continue;
            }
            let outcome = self.import_one(dir, &reference, &top, progress).await?;
            outcomes.push(outcome);
        }
        Ok(outcomes)
    }

    async fn import_one(
        &self,
        dir: &Path,
        reference: &Reference,
        top: &Digest,
        progress: ProgressFn<'_>,
    ) -> Result<PullOutcome> {
        let read = |digest: &Digest| -> Result<Vec<u8>> {
            let bytes = fs::read(dir.join("blobs/sha256").join(digest.hex()))?;
            let actual = Digest::of(&bytes);
            if actual != *digest {
                return Err(Error::DigestMismatch {
                    expected: digest.clone(),
                    actual,
                });
            }
            Ok(bytes)
        };
        let bytes = read(top)?;
        let (manifest_bytes, manifest_digest) = match manifest::parse(&bytes, None)? {
            Document::Manifest(_) => (bytes, top.clone()),
            Document::Index(index) => {
                let digest = manifest::descriptor_digest(manifest::select_platform(&index)?)?;
                (read(&digest)?, digest)
            }
        };
        self.install(
            &Source::Layout(dir),
            manifest_bytes,
            manifest_digest,
            top.clone(),
            reference,
            progress,
        )
        .await
    }
}
