//! Manifests as registries and layouts serve them: OCI image manifests and
//! indexes, Docker schema2 manifests and manifest lists (the same shapes
//! under other media types), and the choice of this host's platform in a list.

use oci_spec::image::{Descriptor, ImageIndex, ImageManifest};

use super::digest::Digest;
use super::Error;

pub const OCI_MANIFEST: &str = "application/vnd.oci.image.manifest.v1+json";
pub const OCI_INDEX: &str = "application/vnd.oci.image.index.v1+json";
pub const DOCKER_MANIFEST: &str = "application/vnd.docker.distribution.manifest.v2+json";
pub const DOCKER_LIST: &str = "application/vnd.docker.distribution.manifest.list.v2+json";

/// The `Accept` header for manifest requests: every kind we can read.
pub const ACCEPT: &str = "application/vnd.oci.image.index.v1+json, \
     application/vnd.docker.distribution.manifest.list.v2+json, \
     application/vnd.oci.image.manifest.v1+json, \
     application/vnd.docker.distribution.manifest.v2+json";

/// A manifest document of either level.
#[derive(Debug)]
pub enum Document {
    /// A list of per-platform manifests.
    Index(Box<ImageIndex>),
    /// One image: a config and its layers.
    Manifest(Box<ImageManifest>),
}

/// Read a manifest document. `content_type` is the registry's header (or the
/// descriptor's media type); without one the document's own `mediaType`
/// field, or else its shape, decides.
pub fn parse(bytes: &[u8], content_type: Option<&str>) -> Result<Document, Error> {
    #[derive(serde::Deserialize)]
    #[serde(rename_all = "camelCase")]
    struct Probe {
        schema_version: Option<u32>,
        media_type: Option<String>,
        manifests: Option<serde_json::Value>,
    }
    let probe: Probe = serde_json::from_slice(bytes)
        .map_err(|e| Error::Invalid(format!("manifest is not JSON: {e}")))?;
    if probe.schema_version != Some(2) {
        return Err(Error::Unsupported(
            "only schema version 2 manifests are supported (Docker schema 1 is obsolete)".into(),
        ));
    }
    let declared = content_type
        .map(|t| t.split(';').next().unwrap_or("").trim())
        .filter(|t| !t.is_empty() && *t != "application/json" && *t != "text/plain")
        .map(str::to_owned)
        .or(probe.media_type);
    let is_index = match declared.as_deref() {
        Some(OCI_INDEX | DOCKER_LIST) => true,
        Some(OCI_MANIFEST | DOCKER_MANIFEST) => false,
        Some(other) => return Err(Error::Unsupported(format!("manifest type {other}"))),
        None => probe.manifests.is_some(),
    };
    let invalid = |e: oci_spec::OciSpecError| Error::Invalid(format!("bad manifest: {e}"));
    Ok(if is_index {
        Document::Index(Box::new(ImageIndex::from_reader(bytes).map_err(invalid)?))
    } else {
        Document::Manifest(Box::new(
            ImageManifest::from_reader(bytes).map_err(invalid)?,
        ))
    })
}

/// This host's platform in the names images use (Go's GOARCH).
pub fn host_platform() -> (&'static str, &'static str, Option<&'static str>) {
    match std::env::consts::ARCH {
        "x86_64" => ("linux", "amd64", None),
        "aarch64" => ("linux", "arm64", Some("v8")),
        "x86" => ("linux", "386", None),
        other => ("linux", other, None),
    }
}

/// The entry of `index` for this host. Entries without a platform (such as
/// build attestations) are never chosen.
pub fn select_platform(index: &ImageIndex) -> Result<&Descriptor, Error> {
    let (os, arch, variant) = host_platform();
    let candidates = index.manifests().iter().filter(|d| {
        d.platform()
            .as_ref()
            .is_some_and(|p| p.os().to_string() == os && p.architecture().to_string() == arch)
    });
    // An exact variant match wins; arm64's variant is often left out.
    let mut fallback = None;
    for descriptor in candidates {
        let found = descriptor
            .platform()
            .as_ref()
            .and_then(|p| p.variant().clone());
        if found.as_deref() == variant {
            return Ok(descriptor);
        }
        fallback.get_or_insert(descriptor);
    }
    fallback
        .ok_or_else(|| Error::NotFound(format!("no manifest for {os}/{arch} in the manifest list")))
}

/// The digest of a descriptor, in our (sha256-only) type.
pub fn descriptor_digest(descriptor: &Descriptor) -> Result<Digest, Error> {
    descriptor.digest().to_string().parse()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn entry(arch: &str, variant: Option<&str>, digest_char: char) -> serde_json::Value {
        let mut platform = serde_json::json!({"os": "linux", "architecture": arch});
        if let Some(v) = variant {
            platform["variant"] = v.into();
        }
        serde_json::json!({
            "mediaType": DOCKER_MANIFEST,
            "digest": format!("sha256:{}", digest_char.to_string().repeat(64)),
            "size": 100,
            "platform": platform,
        })
    }

    #[test]
    fn picks_this_hosts_platform_from_a_docker_list() {
        let (_, arch, _) = host_platform();
        let list = serde_json::json!({
            "schemaVersion": 2,
            "mediaType": DOCKER_LIST,
            "manifests": [entry("arm", Some("v7"), 'a'), entry(arch, None, 'b'), entry("s390x", None, 'c')],
        });
        let bytes = serde_json::to_vec(&list).unwrap();
        let Document::Index(index) = parse(&bytes, Some(DOCKER_LIST)).unwrap() else {
            panic!("not an index")
        };
        let chosen = select_platform(&index).unwrap();
        assert!(descriptor_digest(chosen).unwrap().hex().starts_with('b'));
    }

    #[test]
    fn refuses_schema1() {
        let err = parse(br#"{"schemaVersion":1,"fsLayers":[]}"#, None).unwrap_err();
        assert!(matches!(err, Error::Unsupported(_)));
    }
}
