//! The selected instance's files: "Upload" (or drop files on the terminal)
//! with a line of progress per file, and download by path.

use wasm_bindgen::JsCast;
use web_sys::{File, HtmlInputElement};
use yew::prelude::*;

/// One file being (or done being) uploaded.
#[derive(Clone, PartialEq)]
pub struct Upload {
    pub id: u32,
    pub name: String,
    pub loaded: f64,
    pub total: f64,
    /// `Ok(stored path)` or a message.
    pub result: Option<Result<String, String>>,
}

#[derive(Properties, PartialEq)]
pub struct FilesBarProps {
    pub hostname: AttrValue,
    /// The last few uploads, of any instance.
    pub uploads: Vec<Upload>,
    /// The text of the download field.
    pub download_path: AttrValue,
    /// Files were picked.
    pub on_files: Callback<Vec<File>>,
    /// An upload's line was dismissed (its id).
    pub on_dismiss: Callback<u32>,
    pub on_download_input: Callback<String>,
    pub on_download: Callback<()>,
}

/// Upload (button, drag and drop), its progress, and download by path.
#[function_component(FilesBar)]
pub fn files_bar(props: &FilesBarProps) -> Html {
    let on_files = props.on_files.clone();
    let onchange = Callback::from(move |e: Event| {
        let input = e.target_unchecked_into::<HtmlInputElement>();
        let files = input.files().map(file_list).unwrap_or_default();
        // Let the same file be picked again.
        input.set_value("");
        on_files.emit(files)
    });
    // The file input itself is hidden (it cannot be styled): a button clicks it.
    let pick = Callback::from(|_: MouseEvent| {
        let input = web_sys::window()
            .and_then(|w| w.document())
            .and_then(|d| d.get_element_by_id("upload-input"))
            .and_then(|e| e.dyn_into::<web_sys::HtmlElement>().ok());
        if let Some(input) = input {
            input.click();
        }
    });
    let oninput = props
        .on_download_input
        .reform(|e: InputEvent| e.target_unchecked_into::<HtmlInputElement>().value());
    let on_download = props.on_download.clone();
    let onsubmit = Callback::from(move |e: SubmitEvent| {
        e.prevent_default();
        on_download.emit(())
    });
    let uploads = props.uploads.iter().map(|u| upload_line(props, u));
    html! {
        <div class="filebar">
            <span class="portbar-label">{ "Files" }</span>
            <input id="upload-input" type="file" multiple=true class="sr-only" tabindex="-1" {onchange} />
            <button id="upload-button" class="btn btn-secondary btn-sm" onclick={pick}
                    title={format!("Upload files into the current directory of {}'s shell (or drop them on the terminal)", props.hostname)}>
                { "Upload" }
            </button>
            <span class="portbar-hint">{ "or drop files on the terminal" }</span>
            <div class="spacer"></div>
            <form class="open-port" {onsubmit}>
                <label class="sr-only" for="download-path">{ "Path to download" }</label>
                <input id="download-path" class="input" type="text" autocomplete="off"
                       placeholder="/root/file.txt" value={props.download_path.clone()} {oninput} />
                <button id="download-button" type="submit" class="btn btn-secondary btn-sm"
                        title="Download this file of the instance">{ "Download" }</button>
            </form>
            if !props.uploads.is_empty() {
                <ul id="uploads" class="uploads">{ for uploads }</ul>
            }
        </div>
    }
}

/// One upload: its progress bar, then the result and a dismiss button.
fn upload_line(props: &FilesBarProps, u: &Upload) -> Html {
    let id = u.id;
    let dismiss = props.on_dismiss.reform(move |_: MouseEvent| id);
    let (class, text, pct) = match &u.result {
        None => {
            let pct = if u.total > 0.0 {
                (u.loaded / u.total * 100.0).clamp(0.0, 100.0)
            } else {
                0.0
            };
            ("running", format!("Uploading {} … {pct:.0}%", u.name), pct)
        }
        Some(Ok(path)) => ("ok", format!("Uploaded {} to {path}", u.name), 100.0),
        Some(Err(e)) => ("error", format!("Could not upload {}: {e}", u.name), 100.0),
    };
    html! {
        <li class={classes!("upload", class)} data-name={u.name.clone()}>
            <span class="upload-text">{ text }</span>
            <span class="upload-bar"><span class="upload-fill" style={format!("width: {pct:.1}%")}></span></span>
            if u.result.is_some() {
                <button class="dismiss" title="Dismiss" aria-label="Dismiss" onclick={dismiss}>{ "×" }</button>
            }
        </li>
    }
}

/// The files of a file input or a drop, as a `Vec`.
pub fn file_list(list: web_sys::FileList) -> Vec<File> {
    (0..list.length()).filter_map(|i| list.get(i)).collect()
}
