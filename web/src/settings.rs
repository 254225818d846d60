//! Settings that stick across visits (localStorage): terminal font size and
//! the light or dark theme, applied to the page (`data-theme` on `<html>`)
//! and to every terminal.

const FONT_KEY: &str = "playground.fontSize";
const THEME_KEY: &str = "playground.theme";
pub const MIN_FONT: u8 = 9;
pub const MAX_FONT: u8 = 28;
const DEFAULT_FONT: u8 = 14;

#[derive(Clone, Copy, Debug, PartialEq)]
pub struct Settings {
    pub font_size: u8,
    pub light: bool,
}

fn storage() -> Option<web_sys::Storage> {
    web_sys::window()?.local_storage().ok()?
}

impl Settings {
    pub fn load() -> Settings {
        let store = storage();
        let get = |k: &str| store.as_ref().and_then(|s| s.get_item(k).ok().flatten());
        let font_size = get(FONT_KEY)
            .and_then(|v| v.parse::<u8>().ok())
            .map(|v| v.clamp(MIN_FONT, MAX_FONT))
            .unwrap_or(DEFAULT_FONT);
        let light = get(THEME_KEY).as_deref() == Some("light");
        Settings { font_size, light }
    }

    /// Store and apply to the page.
    pub fn save(&self) {
        if let Some(s) = storage() {
            let _ = s.set_item(FONT_KEY, &self.font_size.to_string());
            let _ = s.set_item(THEME_KEY, if self.light { "light" } else { "dark" });
        }
        self.apply();
    }

    pub fn apply(&self) {
        let root = web_sys::window()
            .and_then(|w| w.document())
            .and_then(|d| d.document_element());
        if let Some(root) = root {
            let _ = root.set_attribute("data-theme", if self.light { "light" } else { "dark" });
        }
    }
}
