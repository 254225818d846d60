//! Help mode: someone else (a class's instructor) typing into a session's
//! terminals, only while its owner agrees. The helper asks and gets a key;
//! the owner's page shows the request; once the owner accepts, the key
//! opens writable terminals; either side ends it, and from that moment the
//! key's connections take no more input and close.

use std::sync::Mutex;

use axum::http::StatusCode;
use playground_protocol::HelpState;
use tokio::sync::watch;

use crate::error::ApiError;

pub struct Help {
    inner: Mutex<Inner>,
    /// True while help is active: the key's terminals watch it.
    active: watch::Sender<bool>,
}

struct Inner {
    state: HelpState,
    /// The helper's key of the current request (none when there is none).
    key: Option<String>,
}

impl Default for Help {
    fn default() -> Self {
        Help {
            inner: Mutex::new(Inner {
                state: HelpState::None,
                key: None,
            }),
            active: watch::channel(false).0,
        }
    }
}

impl Help {
    pub fn state(&self) -> HelpState {
        self.inner.lock().unwrap().state
    }

    /// The helper asks: a new request with a new key, or, asking again (a
    /// reloaded dashboard), the request or help there is, with its key: one
    /// key at a time, so none outlives the help it was for.
    pub fn request(&self) -> (HelpState, String) {
        let mut inner = self.inner.lock().unwrap();
        if inner.state == HelpState::None || inner.key.is_none() {
            inner.state = HelpState::Requested;
            inner.key = Some(uuid::Uuid::new_v4().to_string());
        }
        let key = inner.key.clone().expect("set above");
        (inner.state, key)
    }

    /// The owner answers a request. Refused when there is none.
    pub fn answer(&self, accept: bool) -> Result<HelpState, ApiError> {
        let mut inner = self.inner.lock().unwrap();
        match (inner.state, accept) {
            (HelpState::None, _) => Err(ApiError::new(
                StatusCode::CONFLICT,
                "nobody has asked to help in this session",
            )),
            (_, true) => {
                inner.state = HelpState::Active;
                self.active.send_replace(true);
                Ok(inner.state)
            }
            (_, false) => {
                *inner = Inner {
                    state: HelpState::None,
                    key: None,
                };
                self.active.send_replace(false);
                Ok(HelpState::None)
            }
        }
    }

    /// Either side ends help (or withdraws the request).
    pub fn end(&self) {
        *self.inner.lock().unwrap() = Inner {
            state: HelpState::None,
            key: None,
        };
        self.active.send_replace(false);
    }

    /// Whether `key` is the current key of active help.
    pub fn admits(&self, key: &str) -> bool {
        let inner = self.inner.lock().unwrap();
        inner.state == HelpState::Active && inner.key.as_deref() == Some(key)
    }

    /// Whether `key` is the current key, active or not.
    pub fn knows(&self, key: &str) -> bool {
        self.inner.lock().unwrap().key.as_deref() == Some(key)
    }

    /// Turns false when help ends.
    pub fn watch(&self) -> watch::Receiver<bool> {
        self.active.subscribe()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn only_an_accepted_current_key_types() {
        let help = Help::default();
        assert!(help.answer(true).is_err(), "nothing asked");
        let (state, key) = help.request();
        assert_eq!(state, HelpState::Requested);
        assert!(help.knows(&key) && !help.admits(&key));
        let mut active = help.watch();
        assert_eq!(help.answer(true).unwrap(), HelpState::Active);
        assert!(help.admits(&key) && *active.borrow_and_update());
        // Asking again while active gives the same help and key.
        assert_eq!(help.request(), (HelpState::Active, key.clone()));
        help.end();
        assert!(!help.admits(&key) && !*active.borrow_and_update());
        // A new request after the end: a new key; the old one opens nothing.
        let (_, newer) = help.request();
        assert_ne!(newer, key);
        help.answer(true).unwrap();
        assert!(!help.admits(&key) && help.admits(&newer));
        help.end();
        assert_eq!(help.state(), HelpState::None);
        let (_, key) = help.request();
        assert_eq!(help.answer(false).unwrap(), HelpState::None);
        assert!(!help.knows(&key));
    }
}
