//! Each instance's own image names: the references it pulled or tagged,
//! each naming an image id of the shared store. Saved as one small JSON
//! file per instance (`<instance id>.json`), replaced atomically, removed
//! with the instance (and at start-up for instances that are gone).

use std::collections::{BTreeMap, HashMap};
use std::fs;
use std::io;
use std::path::{Path, PathBuf};
use std::sync::Mutex;

/// Full reference (`docker.io/library/busybox:latest`) to image id.
pub type View = BTreeMap<String, String>;

pub struct Views {
    dir: PathBuf,
    loaded: Mutex<HashMap<String, View>>,
}

impl Views {
    pub fn open(dir: &Path, keep: &[String]) -> io::Result<Views> {
        fs::create_dir_all(dir)?;
        for entry in fs::read_dir(dir)? {
            let path = entry?.path();
            let id = path.file_stem().and_then(|s| s.to_str()).unwrap_or("");
            let known =
                path.extension().is_some_and(|e| e == "json") && keep.iter().any(|k| k == id);
            if !known {
                let _ = fs::remove_file(&path);
            }
        }
        Ok(Views {
            dir: dir.to_owned(),
            loaded: Mutex::new(HashMap::new()),
        })
    }

    fn path(&self, instance: &str) -> PathBuf {
        self.dir.join(format!("{instance}.json"))
    }

    /// Read the instance's view.
    pub fn get(&self, instance: &str) -> View {
        self.with(instance, |view| (view.clone(), false))
    }

    /// Change the instance's view with `change`, which says whether it
    /// changed anything (then the view is saved).
    pub fn with<T>(&self, instance: &str, change: impl FnOnce(&mut View) -> (T, bool)) -> T {
        let mut loaded = self.loaded.lock().unwrap();
        let view = loaded.entry(instance.to_string()).or_insert_with(|| {
            fs::read(self.path(instance))
                .ok()
                .and_then(|bytes| serde_json::from_slice(&bytes).ok())
                .unwrap_or_default()
        });
        let (result, changed) = change(view);
        if changed {
            if let Err(e) = self.save(instance, view) {
                tracing::error!(instance, "cannot save its image list: {e}");
            }
        }
        result
    }

    fn save(&self, instance: &str, view: &View) -> io::Result<()> {
        let path = self.path(instance);
        let tmp = path.with_extension("json.tmp");
        fs::write(&tmp, serde_json::to_vec(view)?)?;
        fs::rename(&tmp, &path)
    }

    /// Whether any instance's view names image `id` (the saved files are
    /// current: every change is saved at once).
    pub fn names_anywhere(&self, id: &str) -> bool {
        let _loaded = self.loaded.lock().unwrap();
        let Ok(entries) = fs::read_dir(&self.dir) else {
            return true; // unknown: keep the image
        };
        entries.flatten().any(|entry| {
            let path = entry.path();
            path.extension().is_some_and(|e| e == "json")
                && fs::read(&path)
                    .ok()
                    .and_then(|bytes| serde_json::from_slice::<View>(&bytes).ok())
                    .is_some_and(|view| view.values().any(|v| v == id))
        })
    }

    pub fn forget(&self, instance: &str) {
        self.loaded.lock().unwrap().remove(instance);
        let _ = fs::remove_file(self.path(instance));
    }
}
