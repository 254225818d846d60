//! What every handler stands on: the request context (`Ctx`: the engine and
//! the instance asking) and the decoding of image names in paths. `routes`
//! composes the handlers; the handlers take these from here, not from
//! `routes`, so that no handler imports the file that imports it.

use std::sync::Arc;

use super::Engine;

#[derive(Clone)]
pub struct Ctx {
    pub engine: Arc<Engine>,
    /// The instance's id.
    pub instance: String,
    pub sandbox: sandbox::Instance,
}

/// Decode `%xx` escapes (the client escapes image names in paths).
pub(super) fn percent_decode(text: &str) -> String {
    let bytes = text.as_bytes();
    let mut out = Vec::with_capacity(bytes.len());
    let mut i = 0;
    while i < bytes.len() {
        if bytes[i] == b'%' && i + 2 < bytes.len() {
            if let Ok(b) = u8::from_str_radix(&text[i + 1..i + 3], 16) {
                out.push(b);
                i += 3;
                continue;
            }
        }
        out.push(bytes[i]);
        i += 1;
    }
    String::from_utf8_lossy(&out).into_owned()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names_are_decoded() {
        assert_eq!(
            percent_decode("localhost%3A5000%2Fa/json"),
            "localhost:5000/a/json"
        );
        assert_eq!(percent_decode("bad%zz%4"), "bad%zz%4");
    }
}
