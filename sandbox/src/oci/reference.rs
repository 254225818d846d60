//! Image references with Docker's normalisation: `busybox` is
//! `docker.io/library/busybox:latest`, `registry:5000/foo:1` keeps its
//! registry, `name@sha256:..` pins a digest.

use std::fmt;
use std::str::FromStr;

use super::digest::Digest;
use super::Error;

/// Docker Hub's name in references (`index.docker.io` is an alias of it).
pub const DOCKER_HUB: &str = "docker.io";
const DEFAULT_TAG: &str = "latest";

#[derive(Clone, Debug, PartialEq, Eq, Hash)]
pub struct Reference {
    /// Registry host, with port if any: `docker.io`, `127.0.0.1:5000`.
    pub domain: String,
    /// Repository path within the registry: `library/busybox`.
    pub path: String,
    /// `None` only when a digest is given without a tag.
    pub tag: Option<String>,
    pub digest: Option<Digest>,
}

impl Reference {
    /// `docker.io/library/busybox`.
    pub fn repository(&self) -> String {
        format!("{}/{}", self.domain, self.path)
    }

    /// The repository as `docker` prints it: `busybox`, `user/app`,
    /// `127.0.0.1:5000/foo`.
    pub fn familiar_repository(&self) -> String {
        if self.domain == DOCKER_HUB {
            self.path
                .strip_prefix("library/")
                .filter(|rest| !rest.contains('/'))
                .unwrap_or(&self.path)
                .to_owned()
        } else {
            self.repository()
        }
    }

    /// `busybox:latest`, `busybox@sha256:..`: the form `docker images` shows.
    pub fn familiar(&self) -> String {
        let mut out = self.familiar_repository();
        self.push_suffix(&mut out);
        out
    }

    /// The same repository with another tag (and no digest).
    pub fn with_tag(&self, tag: &str) -> Result<Reference, Error> {
        check_tag(tag)?;
        Ok(Reference {
            tag: Some(tag.to_owned()),
            digest: None,
            ..self.clone()
        })
    }

    /// The same repository pinned to `digest` (a RepoDigest).
    pub fn with_digest(&self, digest: &Digest) -> Reference {
        Reference {
            tag: None,
            digest: Some(digest.clone()),
            ..self.clone()
        }
    }

    /// What to ask the registry for: the digest if pinned, else the tag.
    pub fn registry_reference(&self) -> String {
        match (&self.digest, &self.tag) {
            (Some(digest), _) => digest.to_string(),
            (None, Some(tag)) => tag.clone(),
            (None, None) => DEFAULT_TAG.to_owned(),
        }
    }

    fn push_suffix(&self, out: &mut String) {
        if let Some(tag) = &self.tag {
            out.push(':');
            out.push_str(tag);
        }
        if let Some(digest) = &self.digest {
            out.push('@');
            out.push_str(&digest.to_string());
        }
    }
}

impl fmt::Display for Reference {
    /// The fully qualified form, used as the key of the tag index.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let mut out = self.repository();
        self.push_suffix(&mut out);
        f.write_str(&out)
    }
}

impl FromStr for Reference {
    type Err = Error;

    fn from_str(text: &str) -> Result<Reference, Error> {
        let invalid = |why: &str| Error::Invalid(format!("invalid reference {text:?}: {why}"));
        let (rest, digest) = match text.split_once('@') {
            Some((rest, digest)) => (rest, Some(digest.parse::<Digest>()?)),
            None => (text, None),
        };
        // A tag is after the last ':' that follows the last '/' (a ':'
        // before it is a registry port).
        let last_slash = rest.rfind('/').map_or(0, |i| i + 1);
        let (name, tag) = match rest[last_slash..].rfind(':') {
            Some(i) => (&rest[..last_slash + i], Some(&rest[last_slash + i + 1..])),
            None => (rest, None),
        };
        if let Some(tag) = tag {
            check_tag(tag)?;
        }
        let (domain, path) = match name.split_once('/') {
            Some((first, remainder))
                if first.contains('.') || first.contains(':') || first == "localhost" =>
            {
                (first.to_owned(), remainder.to_owned())
            }
            _ => (DOCKER_HUB.to_owned(), name.to_owned()),
        };
        if !is_domain(&domain) {
            return Err(invalid("bad registry host"));
        }
        let domain = if domain == "index.docker.io" {
            DOCKER_HUB.to_owned()
        } else {
            domain
        };
        if path.is_empty() || !path.split('/').all(is_path_component) {
            return Err(invalid(
                "repository names are lower-case letters, digits and separators",
            ));
        }
        let path = if domain == DOCKER_HUB && !path.contains('/') {
            format!("library/{path}")
        } else {
            path
        };
        let tag = match (tag, &digest) {
            (Some(tag), _) => Some(tag.to_owned()),
            (None, Some(_)) => None,
            (None, None) => Some(DEFAULT_TAG.to_owned()),
        };
        Ok(Reference {
            domain,
            path,
            tag,
            digest,
        })
    }
}

fn check_tag(tag: &str) -> Result<(), Error> {
    let mut chars = tag.chars();
    let ok = tag.len() <= 128
        && chars
            .next()
            .is_some_and(|c| c.is_ascii_alphanumeric() || c == '_')
        && chars.all(|c| c.is_ascii_alphanumeric() || "_.-".contains(c));
    if ok {
        Ok(())
    } else {
        Err(Error::Invalid(format!("invalid tag {tag:?}")))
    }
}

fn is_path_component(part: &str) -> bool {
    let bytes = part.as_bytes();
    let alnum = |b: &u8| b.is_ascii_lowercase() || b.is_ascii_digit();
    !bytes.is_empty()
        && bytes.first().is_some_and(alnum)
        && bytes.last().is_some_and(alnum)
        && bytes.iter().all(|b| alnum(b) || b"._-".contains(b))
}

fn is_domain(domain: &str) -> bool {
    let (host, port) = match domain.rsplit_once(':') {
        Some((host, port)) if !host.contains(']') || domain.starts_with('[') => (host, Some(port)),
        _ => (domain, None),
    };
    let host_ok = !host.is_empty()
        && host
            .chars()
            .all(|c| c.is_ascii_alphanumeric() || "-.[]:".contains(c));
    host_ok && port.is_none_or(|p| !p.is_empty() && p.chars().all(|c| c.is_ascii_digit()))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn full(text: &str) -> String {
        text.parse::<Reference>().unwrap().to_string()
    }

    #[test]
    fn normalises_like_docker() {
        assert_eq!(full("busybox"), "docker.io/library/busybox:latest");
        assert_eq!(full("busybox:1.36"), "docker.io/library/busybox:1.36");
        assert_eq!(full("user/app"), "docker.io/user/app:latest");
        assert_eq!(
            full("index.docker.io/library/busybox"),
            "docker.io/library/busybox:latest"
        );
        assert_eq!(full("registry:5000/foo:1"), "registry:5000/foo:1");
        assert_eq!(full("localhost/foo"), "localhost/foo:latest");
        assert_eq!(full("127.0.0.1:5000/a/b"), "127.0.0.1:5000/a/b:latest");
        let pinned = format!("busybox@sha256:{}", "a".repeat(64));
        assert_eq!(full(&pinned), format!("docker.io/library/{pinned}"));
        let r: Reference = "docker.io/library/busybox:latest".parse().unwrap();
        assert_eq!(r.familiar(), "busybox:latest");
        let r: Reference = "registry:5000/foo:1".parse().unwrap();
        assert_eq!(r.familiar(), "registry:5000/foo:1");
        assert_eq!(r.registry_reference(), "1");
    }

    #[test]
    fn refuses_bad_names() {
        for bad in [
            "",
            "Busybox",
            "a//b",
            "busybox:",
            "busybox:-x",
            "busybox@sha256:12",
            "-a",
            "a:b:c",
        ] {
            assert!(bad.parse::<Reference>().is_err(), "{bad:?} accepted");
        }
    }
}
