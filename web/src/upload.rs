//! File uploads through `XMLHttpRequest`, whose upload events give progress
//! (fetch has none).

use playground_protocol::FileInfo;
use wasm_bindgen::prelude::*;
use web_sys::{File, ProgressEvent, XmlHttpRequest};
use yew::Callback;

/// POST `file` to `url`; `on_progress(loaded, total)` while it goes, then
/// `on_done` once with the stored file or a message for a person.
pub fn upload(
    url: &str,
    file: &File,
    on_progress: Callback<(f64, f64)>,
    on_done: Callback<Result<FileInfo, String>>,
) {
    let xhr = match XmlHttpRequest::new() {
        Ok(x) => x,
        Err(_) => {
            on_done.emit(Err("This browser cannot upload files.".to_owned()));
            return;
        }
    };
    if xhr.open("POST", url).is_err() {
        on_done.emit(Err("Could not start the upload.".to_owned()));
        return;
    }
    let _ = xhr.set_request_header("content-type", "application/octet-stream");
    if let Ok(up) = xhr.upload() {
        let progress = Closure::<dyn FnMut(ProgressEvent)>::new(move |e: ProgressEvent| {
            on_progress.emit((e.loaded(), e.total()));
        });
        up.set_onprogress(Some(progress.as_ref().unchecked_ref()));
        // Lives as long as the request object (collected with it).
        let _ = progress.into_js_value();
    }
    let x = xhr.clone();
    let done = on_done.clone();
    let on_load = Closure::once_into_js(move || {
        let status = x.status().unwrap_or(0);
        let text = x.response_text().ok().flatten().unwrap_or_default();
        if (200..300).contains(&status) {
            match serde_json::from_str::<FileInfo>(&text) {
                Ok(info) => done.emit(Ok(info)),
                Err(e) => done.emit(Err(format!("Unexpected answer: {e}"))),
            }
        } else {
            let msg = match status {
                413 => "The file is larger than this playground accepts.".to_owned(),
                507 => "The instance's disk is full.".to_owned(),
                _ => crate::api::error_message(status, &text),
            };
            done.emit(Err(msg));
        }
    });
    xhr.set_onload(Some(on_load.unchecked_ref()));
    let on_error = Closure::once_into_js(move || {
        on_done.emit(Err("Could not reach the playground server.".to_owned()));
    });
    xhr.set_onerror(Some(on_error.unchecked_ref()));
    if xhr.send_with_opt_blob(Some(file)).is_err() {
        // onerror reports it.
    }
}
