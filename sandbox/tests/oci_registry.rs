//! The image store against a real registry (Debian's `docker-registry` on
//! loopback, images pushed with `skopeo`): platform choice in an index, gzip
//! and plain layers, whiteouts checked through a real overlayfs mount, shared
//! layers fetched once, token and Basic auth, redirects without credentials,
//! mirrors, and content that does not match its digest. Needs root.

mod oci_support;

use std::fs;
use std::os::unix::fs::FileTypeExt;
use std::path::Path;
use std::sync::Mutex;

use oci_support::{digest_of, Front, FrontAuth, Layer, Layout, Registry};
use sandbox::oci::{Credentials, Error, ImageStore, Mirror, Progress, RegistrySettings};

fn store(dir: &Path, settings: RegistrySettings) -> ImageStore {
    ImageStore::open(&dir.join("oci"), settings).unwrap()
}

/// Collects progress events.
#[derive(Default)]
struct Events(Mutex<Vec<Progress>>);

impl Events {
    fn take(&self) -> Vec<Progress> {
        std::mem::take(&mut self.0.lock().unwrap())
    }
    fn record(&self) -> impl Fn(Progress) + Send + Sync + '_ {
        |p| self.0.lock().unwrap().push(p)
    }
}

/// A read-only overlayfs of lower dirs (top first), unmounted on drop.
struct Overlay(tempfile::TempDir);

impl Overlay {
    fn mount(lowers_top_first: &[&Path]) -> Overlay {
        let target = tempfile::tempdir().unwrap();
        let lowers: Vec<String> = lowers_top_first
            .iter()
            .map(|p| p.display().to_string())
            .collect();
        nix::mount::mount(
            Some("overlay"),
            target.path(),
            Some("overlay"),
            nix::mount::MsFlags::MS_RDONLY,
            Some(format!("lowerdir={}", lowers.join(":")).as_str()),
        )
        .expect("mount overlay (needs root)");
        Overlay(target)
    }
}

impl Drop for Overlay {
    fn drop(&mut self) {
        let _ = nix::mount::umount2(self.0.path(), nix::mount::MntFlags::MNT_DETACH);
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn pulls_this_platform_with_whiteouts_and_removes_by_reference_count() {
    let registry = Registry::start();
    let work = tempfile::tempdir().unwrap();
    let mut layout = Layout::new(&work.path().join("layout"));
    let base = Layer::gzip(&[
        ("etc/os-release", "test os\n"),
        ("etc/remove-me", "old\n"),
        ("var/lib/data/file", "lower\n"),
    ]);
    let upper = Layer::tar(&[
        ("etc/.wh.remove-me", ""),
        ("var/lib/.wh..wh..opq", ""),
        ("var/lib/new", "upper\n"),
    ]);
    let other_arch = Layer::gzip(&[("wrong-arch", "arm64\n")]);
    let amd64 = layout.image("amd64", &[&base, &upper], "amd64");
    let arm64 = layout.image("arm64", &[&other_arch], "arm64");
    let index = layout.index(&[arm64, amd64.clone()]);
    layout.tag("1", &index);
    registry.push(&layout.dir, "1", "multi");

    let store = store(work.path(), RegistrySettings::default());
    let events = Events::default();
    let name = format!("{}/multi:1", registry.host());
    let pulled = store.pull(&name, &events.record()).await.unwrap();
    assert_eq!(
        pulled.digest,
        digest_of(&index),
        "the repo digest is the index's"
    );
    assert!(pulled.updated);
    assert_eq!(pulled.reference, name);
    let events = events.take();
    assert!(events.contains(&Progress::LayerDone {
        layer: base_blob(&base)
    }));
    assert!(events
        .iter()
        .any(|e| matches!(e, Progress::Downloading { current, total, .. } if current == total)));

    let image = store.inspect(&name).unwrap();
    assert_eq!(image.manifest, digest_of(&amd64));
    assert_eq!(image.config.architecture().to_string(), "amd64");
    assert_eq!(image.layers.len(), 2);
    assert_eq!(image.layers[0].diff_id, base.diff_id);
    assert!(image.summary.size > 0);
    assert_eq!(image.summary.repo_tags, vec![name.clone()]);
    assert_eq!(store.list().len(), 1);
    // Docker's whiteouts became overlayfs ones in the upper layer's directory.
    let upper_root = &image.layers[1].path;
    let whiteout = fs::symlink_metadata(upper_root.join("etc/remove-me")).unwrap();
    assert!(whiteout.file_type().is_char_device());
    assert_eq!(
        xattr::get(upper_root.join("var/lib"), "trusted.overlay.opaque").unwrap(),
        Some(b"y".to_vec())
    );
    // Stacked as overlay lower dirs, they give the image's tree.
    {
        let merged = Overlay::mount(&[&image.layers[1].path, &image.layers[0].path]);
        let root = merged.0.path();
        assert_eq!(
            fs::read_to_string(root.join("etc/os-release")).unwrap(),
            "test os\n"
        );
        assert!(!root.join("etc/remove-me").exists());
        assert!(!root.join("var/lib/data").exists());
        assert_eq!(
            fs::read_to_string(root.join("var/lib/new")).unwrap(),
            "upper\n"
        );
        assert!(!root.join("wrong-arch").exists());
    }

    // A second tag only names the image; removing one tag keeps it.
    store.tag(&name, "local/copy:2").unwrap();
    assert!(matches!(
        store.remove(&pulled.id.to_string(), false).await,
        Err(Error::Conflict(_))
    ));
    let removed = store.remove(&name, false).await.unwrap();
    assert_eq!(removed.untagged, vec![name.clone()]);
    assert!(removed.deleted.is_empty());
    assert!(image.layers[0].path.is_dir());
    let removed = store.remove("local/copy:2", false).await.unwrap();
    assert_eq!(removed.untagged, ["local/copy:2"]);
    assert_eq!(
        removed.deleted.len(),
        3,
        "image and both layers: {removed:?}"
    );
    assert!(!image.layers[0].path.exists());
    assert!(store.list().is_empty());
    let collected = store.gc().await.unwrap();
    assert_eq!(
        (collected.blobs, collected.layers),
        (0, 0),
        "remove left nothing behind"
    );
    assert_eq!(
        fs::read_dir(store.root().join("blobs/sha256"))
            .unwrap()
            .count(),
        0
    );

    // The same layout imports without a registry (the offline path), and a
    // second import is a no-op.
    layout.tag("imported:1", &index);
    let none = |_| {};
    let imported = store.import_layout(&layout.dir, &none).await.unwrap();
    assert_eq!(
        imported.len(),
        1,
        "`1` names no image, `imported:1` does: {imported:?}"
    );
    assert_eq!(
        store.inspect("imported:1").unwrap().manifest,
        digest_of(&amd64)
    );
    assert!(store
        .import_layout(&layout.dir, &none)
        .await
        .unwrap()
        .is_empty());
}

fn base_blob(layer: &Layer) -> sandbox::oci::Digest {
    sandbox::oci::Digest::of(&layer.blob)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn shared_base_layers_are_fetched_and_unpacked_once() {
    let registry = Registry::start();
    let work = tempfile::tempdir().unwrap();
    let mut layout = Layout::new(&work.path().join("layout"));
    let base = Layer::gzip(&[
        ("etc/base", "shared\n"),
        ("usr/lib/big", &"x".repeat(100_000)),
    ]);
    let app1 = Layer::gzip(&[("app/one", "1\n")]);
    let app2 = Layer::gzip(&[("app/two", "2\n")]);
    let one = layout.image("amd64", &[&base, &app1], "one");
    let two = layout.image("amd64", &[&base, &app2], "two");
    layout.tag("one", &one);
    layout.tag("two", &two);
    registry.push(&layout.dir, "one", "app");
    registry.push(&layout.dir, "two", "app");

    // Pulled through a mirror of a registry that does not exist: the mirror
    // (a counting front of the real registry) serves everything.
    let front = Front::start(registry.port, FrontAuth::Anonymous, false).await;
    let settings = RegistrySettings {
        mirrors: vec![Mirror {
            registry: "registry.invalid".into(),
            url: format!("http://{}", front.host()),
        }],
        ..Default::default()
    };
    let store = store(work.path(), settings);
    let events = Events::default();
    store
        .pull("registry.invalid/app:one", &events.record())
        .await
        .unwrap();
    assert_eq!(
        front.blob_gets().len(),
        3,
        "config and two layers: {:?}",
        front.blob_gets()
    );
    let base_dir = store.inspect("registry.invalid/app:one").unwrap().layers[0]
        .path
        .clone();
    let base_inode =
        std::os::unix::fs::MetadataExt::ino(&fs::metadata(base_dir.join("etc/base")).unwrap());
    events.take();
    front.clear();

    store
        .pull("registry.invalid/app:two", &events.record())
        .await
        .unwrap();
    let gets = front.blob_gets();
    assert_eq!(gets.len(), 2, "only the config and the new layer: {gets:?}");
    assert!(gets.iter().all(|g| !g.ends_with(base_blob(&base).hex())));
    let events = events.take();
    assert!(events.contains(&Progress::LayerExists {
        layer: base_blob(&base)
    }));
    assert!(!events.contains(&Progress::Extracting {
        layer: base_blob(&base)
    }));
    let two_layers = store.inspect("registry.invalid/app:two").unwrap().layers;
    assert_eq!(two_layers[0].path, base_dir);
    let inode =
        std::os::unix::fs::MetadataExt::ino(&fs::metadata(base_dir.join("etc/base")).unwrap());
    assert_eq!(inode, base_inode, "the base layer was not unpacked again");

    // Pulling again changes nothing and fetches no blob.
    front.clear();
    let again = store
        .pull("registry.invalid/app:two", &|_| {})
        .await
        .unwrap();
    assert!(!again.updated);
    assert!(front.blob_gets().is_empty());

    // Removing the first image keeps the shared base for the second.
    let removed = store
        .remove("registry.invalid/app:one", false)
        .await
        .unwrap();
    assert_eq!(
        removed.deleted.len(),
        2,
        "image and its own layer: {removed:?}"
    );
    assert!(base_dir.join("etc/base").is_file());
    assert!(
        !store.inspect("registry.invalid/app:two").unwrap().layers[1]
            .path
            .join("../..")
            .join(app1.diff_id.hex())
            .exists()
    );
    store
        .remove("registry.invalid/app:two", false)
        .await
        .unwrap();
    assert!(!base_dir.exists());
    assert_eq!(
        fs::read_dir(store.root().join("layers")).unwrap().count(),
        0
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn token_and_basic_auth_and_redirects_without_credentials() {
    let registry = Registry::start();
    let work = tempfile::tempdir().unwrap();
    let mut layout = Layout::new(&work.path().join("layout"));
    let layer = Layer::gzip(&[("secret/file", "for members\n")]);
    let image = layout.image("amd64", &[&layer], "private");
    layout.tag("1", &image);
    registry.push(&layout.dir, "1", "private");

    let user = |front: &Front, password: &str| RegistrySettings {
        credentials: vec![Credentials {
            registry: front.host(),
            username: "student".into(),
            password: password.into(),
        }],
        ..Default::default()
    };

    // Bearer: 401 with a challenge, a token from the realm for our Basic
    // credentials, then blobs redirected to another origin.
    let front = Front::start(
        registry.port,
        FrontAuth::Bearer {
            username: "student".into(),
            password: "right".into(),
        },
        true,
    )
    .await;
    let name = format!("{}/private:1", front.host());
    let anonymous = store(&work.path().join("anonymous"), RegistrySettings::default());
    let refused = anonymous.pull(&name, &|_| {}).await.unwrap_err();
    assert!(matches!(refused, Error::Unauthorized(_)), "{refused}");
    let wrong = store(&work.path().join("wrong"), user(&front, "wrong"));
    assert!(matches!(
        wrong.pull(&name, &|_| {}).await,
        Err(Error::Unauthorized(_))
    ));
    front.clear();

    let right = store(&work.path().join("right"), user(&front, "right"));
    right.pull(&name, &|_| {}).await.unwrap();
    let seen = front.seen();
    assert!(seen.iter().any(|s| s.path == "/token"
        && s.authorization
            .as_deref()
            .is_some_and(|a| a.starts_with("Basic "))));
    assert!(seen.iter().any(|s| s.path.contains("/manifests/")
        && s.authorization.as_deref() == Some("Bearer test-token-1")));
    let redirected: Vec<_> = seen
        .iter()
        .filter(|s| s.path.starts_with("/raw/"))
        .collect();
    assert_eq!(
        redirected.len(),
        2,
        "config and layer came by redirect: {seen:?}"
    );
    for s in redirected {
        assert!(s.host.starts_with("localhost:"), "{s:?}");
        assert_eq!(
            s.authorization, None,
            "credentials followed a redirect to another host"
        );
    }
    let pulled = right.inspect(&name).unwrap();
    assert!(pulled.layers[0].path.join("secret/file").is_file());

    // Basic auth straight to the registry.
    let basic = Front::start(
        registry.port,
        FrontAuth::Basic {
            username: "student".into(),
            password: "right".into(),
        },
        false,
    )
    .await;
    let name = format!("{}/private:1", basic.host());
    let anonymous = store(&work.path().join("anonymous2"), RegistrySettings::default());
    assert!(matches!(
        anonymous.pull(&name, &|_| {}).await,
        Err(Error::Unauthorized(_))
    ));
    let store = store(&work.path().join("basic"), user(&basic, "right"));
    store.pull(&name, &|_| {}).await.unwrap();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn content_that_does_not_match_its_digest_is_refused() {
    let registry = Registry::start();
    let work = tempfile::tempdir().unwrap();
    let mut layout = Layout::new(&work.path().join("layout"));
    let layer = Layer::tar(&[("file", "original content\n")]);
    let image = layout.image("amd64", &[&layer], "corrupt");
    layout.tag("1", &image);
    // A config that lies about its layer's uncompressed digest.
    let honest = Layer::tar(&[("other", "x\n")]);
    let lying = layout.image_with_diff_ids(
        "amd64",
        &[&honest],
        "lying",
        vec![sandbox::oci::Digest::of(b"not this layer").to_string()],
    );
    layout.tag("lying", &lying);
    registry.push(&layout.dir, "1", "corrupt");
    registry.push(&layout.dir, "lying", "corrupt");

    // Same length, other bytes: the registry serves it as the blob.
    let blob_file = registry.blob_file(&base_blob(&layer));
    let mut bytes = fs::read(&blob_file).unwrap();
    let at = bytes.windows(8).position(|w| w == b"original").unwrap();
    bytes[at..at + 8].copy_from_slice(b"tampered");
    fs::write(&blob_file, bytes).unwrap();

    let store = store(work.path(), RegistrySettings::default());
    let err = store
        .pull(&format!("{}/corrupt:1", registry.host()), &|_| {})
        .await
        .unwrap_err();
    assert!(matches!(err, Error::DigestMismatch { .. }), "{err}");
    let err = store
        .pull(&format!("{}/corrupt:lying", registry.host()), &|_| {})
        .await
        .unwrap_err();
    assert!(matches!(err, Error::DigestMismatch { .. }), "{err}");
    assert!(store.list().is_empty());
    assert_eq!(
        fs::read_dir(store.root().join("layers")).unwrap().count(),
        0
    );
    assert!(!store
        .root()
        .join("blobs/sha256")
        .join(base_blob(&layer).hex())
        .exists());
    assert_eq!(
        fs::read_dir(store.root().join("tmp")).unwrap().count(),
        0,
        "no partial files"
    );
    // A pinned digest that the registry's answer does not match.
    let pinned = format!(
        "{}/corrupt@{}",
        registry.host(),
        sandbox::oci::Digest::of(b"x")
    );
    assert!(store.pull(&pinned, &|_| {}).await.is_err());
}
