//! OCI images for the engine behind the instances' `docker` command: a
//! content-addressed store, a registry client and unpacked layers ready to be
//! stacked as overlayfs lower dirs.
//!
//! Files: `digest` (sha256 names), `blobs` (verified blob files),
//! `reference` (Docker's name normalisation), `manifest` (manifest kinds and
//! platform choice), `layer` (unpacking with whiteouts), `registry` (the
//! Distribution API client), `index` (tags and images, saved as JSON),
//! `store` (the API: pull, list, inspect, tag, remove, gc), `built`
//! (images made by `docker build`), `layout`
//! (importing OCI image layouts, which is how offline images arrive).
//!
//! On disk, below the directory given to [`ImageStore::open`]:
//! `blobs/sha256/<hex>` manifests, configs and layer blobs;
//! `layers/<diff_id hex>/root` one unpacked layer (with `size` beside it);
//! `index.json` tags and images; `tmp/` unfinished work, emptied on open.

mod blobs;
mod built;
mod digest;
mod index;
mod layer;
mod layout;
mod manifest;
mod reference;
mod registry;
mod store;

pub use digest::Digest;
pub use layer::Compression;
pub use reference::Reference;
pub use registry::{Credentials, Mirror, RegistrySettings};
pub use store::{
    Collected, ImageDetails, ImageStore, ImageSummary, LayerDetails, Progress, ProgressFn,
    PullOutcome, Removed,
};

#[derive(Debug, thiserror::Error)]
pub enum Error {
    #[error("{0}")]
    Io(#[from] std::io::Error),
    /// A name, digest, manifest or layer that is malformed or unsafe.
    #[error("{0}")]
    Invalid(String),
    /// Something valid that we do not handle (schema 1, other digests).
    #[error("unsupported: {0}")]
    Unsupported(String),
    #[error("not found: {0}")]
    NotFound(String),
    /// Content that does not hash to the digest it was asked for by.
    #[error("digest mismatch: expected {expected}, got {actual}")]
    DigestMismatch { expected: Digest, actual: Digest },
    /// The registry refused our credentials, or we had none to offer.
    #[error("unauthorized: {0}")]
    Unauthorized(String),
    /// The registry could not be reached or answered with an error.
    #[error("registry: {0}")]
    Registry(String),
    /// The image is still in use (tagged elsewhere or by containers).
    #[error("conflict: {0}")]
    Conflict(String),
}

pub type Result<T> = std::result::Result<T, Error>;
