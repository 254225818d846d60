//! The class pages (issue #15): a student's join page (`/join/{code}`,
//! `join.rs`), the instructor's list of classes with the form to create one
//! (`/classes`, `list.rs`) and a class's dashboard (`/classes/{id}`,
//! `dashboard.rs`: the join link, the progress per step (`progress.rs`),
//! the roster (`roster.rs`) and a student's terminal, read-only or, while
//! the student lets the instructor help, writable (`watch.rs`)). The
//! student's side of help and broadcasts is on the session page
//! (`session/class_banners.rs`). `api.rs` holds the calls, `text.rs` the
//! pure helpers.

pub mod api;
mod dashboard;
mod join;
mod list;
mod progress;
mod roster;
pub mod text;
mod watch;

pub use dashboard::ClassDashboard;
pub use join::JoinPage;
pub use list::ClassesPage;

/// Where the browser keeps the instructor's token.
const INSTRUCTOR_KEY: &str = "playground.instructorToken";

fn storage() -> Option<web_sys::Storage> {
    web_sys::window()?.local_storage().ok()?
}

pub fn load(key: &str) -> Option<String> {
    storage()?
        .get_item(key)
        .ok()
        .flatten()
        .filter(|v| !v.is_empty())
}

pub fn store(key: &str, value: &str) {
    if let Some(s) = storage() {
        let _ = s.set_item(key, value);
    }
}

pub fn forget(key: &str) {
    if let Some(s) = storage() {
        let _ = s.remove_item(key);
    }
}

pub fn instructor_token() -> Option<String> {
    load(INSTRUCTOR_KEY)
}

pub fn set_instructor_token(token: Option<&str>) {
    match token {
        Some(t) => store(INSTRUCTOR_KEY, t),
        None => forget(INSTRUCTOR_KEY),
    }
}

/// An RFC 3339 time as the browser's local date and time ("Mon, 7 Dec, 14:05"-like).
pub fn local_time(rfc3339: &str) -> String {
    let date = js_sys::Date::new(&rfc3339.into());
    if date.get_time().is_nan() {
        return rfc3339.to_owned();
    }
    let options = js_sys::Object::new();
    for (k, v) in [
        ("weekday", "short"),
        ("day", "numeric"),
        ("month", "short"),
        ("hour", "2-digit"),
        ("minute", "2-digit"),
    ] {
        let _ = js_sys::Reflect::set(&options, &k.into(), &v.into());
    }
    String::from(date.to_locale_string("default", &options))
}

/// Just the local time of day ("14:05").
pub fn clock_time(rfc3339: &str) -> String {
    let date = js_sys::Date::new(&rfc3339.into());
    if date.get_time().is_nan() {
        return String::new();
    }
    format!("{:02}:{:02}", date.get_hours(), date.get_minutes())
}

/// Seconds since an RFC 3339 time (`None` if it does not parse).
pub fn seconds_since(rfc3339: &str) -> Option<f64> {
    let t = js_sys::Date::parse(rfc3339);
    (!t.is_nan()).then(|| (js_sys::Date::now() - t) / 1000.0)
}

/// The address of `path` on this server (`http://host/join/AB12`).
pub fn absolute(path: &str) -> String {
    let origin = web_sys::window()
        .and_then(|w| w.location().origin().ok())
        .unwrap_or_default();
    format!("{origin}{path}")
}
