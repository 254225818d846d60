//! Blobs by digest under `blobs/sha256/<hex>`. A blob is written to a
//! temporary file in `tmp/`, checked against its digest and only then
//! renamed into place, so a partial or corrupt download is never visible.

use std::fs;
use std::io::{self, Write};
use std::path::{Path, PathBuf};

use tempfile::NamedTempFile;

use super::digest::{Digest, Hasher};
use super::Error;

#[derive(Clone, Debug)]
pub struct BlobStore {
    dir: PathBuf,
    tmp: PathBuf,
}

impl BlobStore {
    /// Blobs live in `<dir>`; unfinished writes in `<tmp>` (same file system,
    /// so the final rename is atomic).
    pub fn new(dir: PathBuf, tmp: PathBuf) -> io::Result<BlobStore> {
        fs::create_dir_all(&dir)?;
        fs::create_dir_all(&tmp)?;
        Ok(BlobStore { dir, tmp })
    }

    pub fn path(&self, digest: &Digest) -> PathBuf {
        self.dir.join(digest.hex())
    }

    pub fn contains(&self, digest: &Digest) -> bool {
        self.path(digest).is_file()
    }

    /// A whole blob (manifests and configs are small).
    pub fn read(&self, digest: &Digest) -> Result<Vec<u8>, Error> {
        fs::read(self.path(digest)).map_err(|e| match e.kind() {
            io::ErrorKind::NotFound => Error::NotFound(format!("blob {digest}")),
            _ => Error::Io(e),
        })
    }

    /// Store `bytes`, refusing them unless they hash to `expected`.
    pub fn write(&self, bytes: &[u8], expected: Option<&Digest>) -> Result<Digest, Error> {
        let mut writer = self.writer()?;
        writer.write_all(bytes)?;
        writer.commit(expected)
    }

    /// A writer for a blob that arrives in pieces.
    pub fn writer(&self) -> io::Result<BlobWriter> {
        Ok(BlobWriter {
            file: NamedTempFile::new_in(&self.tmp)?,
            hasher: Hasher::default(),
            len: 0,
            dir: self.dir.clone(),
        })
    }

    pub fn remove(&self, digest: &Digest) -> io::Result<()> {
        match fs::remove_file(self.path(digest)) {
            Err(e) if e.kind() != io::ErrorKind::NotFound => Err(e),
            _ => Ok(()),
        }
    }

    /// Every stored blob (file names that are not digests are ignored).
    pub fn list(&self) -> io::Result<Vec<Digest>> {
        list_digests(&self.dir)
    }
}

/// Digests named by the entries of `dir`.
pub(super) fn list_digests(dir: &Path) -> io::Result<Vec<Digest>> {
    let mut digests = Vec::new();
    for entry in fs::read_dir(dir)? {
        let name = entry?.file_name();
        if let Some(digest) = name
            .to_str()
            .and_then(|hex| format!("sha256:{hex}").parse().ok())
        {
            digests.push(digest);
        }
    }
    Ok(digests)
}

/// A blob being written; dropped without [`BlobWriter::commit`], its
/// temporary file is deleted.
pub struct BlobWriter {
    file: NamedTempFile,
    hasher: Hasher,
    len: u64,
    dir: PathBuf,
}

impl BlobWriter {
    /// Bytes written so far.
    pub fn written(&self) -> u64 {
        self.len
    }

    /// Check the digest and move the blob into place.
    pub fn commit(mut self, expected: Option<&Digest>) -> Result<Digest, Error> {
        self.file.flush()?;
        let actual = self.hasher.finish();
        if let Some(expected) = expected {
            if *expected != actual {
                return Err(Error::DigestMismatch {
                    expected: expected.clone(),
                    actual,
                });
            }
        }
        self.file.as_file().sync_all()?;
        self.file
            .persist(self.dir.join(actual.hex()))
            .map_err(|e| Error::Io(e.error))?;
        Ok(actual)
    }
}

impl Write for BlobWriter {
    fn write(&mut self, buf: &[u8]) -> io::Result<usize> {
        let n = self.file.write(buf)?;
        self.hasher.update(&buf[..n]);
        self.len += n as u64;
        Ok(n)
    }

    fn flush(&mut self) -> io::Result<()> {
        self.file.flush()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn refuses_wrong_digest_and_leaves_nothing() {
        let root = tempfile::tempdir().unwrap();
        let store = BlobStore::new(root.path().join("b"), root.path().join("t")).unwrap();
        let wrong = Digest::of(b"other");
        let err = store.write(b"content", Some(&wrong)).unwrap_err();
        assert!(matches!(err, Error::DigestMismatch { .. }), "{err}");
        assert!(store.list().unwrap().is_empty());
        assert_eq!(fs::read_dir(root.path().join("t")).unwrap().count(), 0);

        let d = store
            .write(b"content", Some(&Digest::of(b"content")))
            .unwrap();
        assert_eq!(store.read(&d).unwrap(), b"content");
        assert_eq!(store.list().unwrap(), vec![d]);
    }
}
