//! Typing into a terminal from elsewhere on the page (a tutorial's
//! commands): each instance's visible terminal registers its connection
//! here, and `send` writes to it as if typed. Text for an instance whose
//! terminal is not mounted yet (the page is switching to it) waits here
//! until it registers, then waits in the connection until its shell is
//! attached, so no keystroke is lost to the switch.

use std::cell::RefCell;
use std::collections::HashMap;
use std::rc::{Rc, Weak};

use super::socket::{type_input, Inner};

#[derive(Default)]
struct Registry {
    /// Per instance name, the connection of its visible shell.
    shown: HashMap<String, Weak<RefCell<Inner>>>,
    /// Input for instances with no registered terminal yet.
    waiting: HashMap<String, Vec<u8>>,
}

/// A handle shared through Yew's context (cheap to clone; equal when it is
/// the same registry).
#[derive(Clone, Default)]
pub struct TerminalInput(Rc<RefCell<Registry>>);

impl PartialEq for TerminalInput {
    fn eq(&self, other: &Self) -> bool {
        Rc::ptr_eq(&self.0, &other.0)
    }
}

impl TerminalInput {
    /// Type `bytes` into the visible shell of instance `name`.
    pub fn send(&self, name: &str, bytes: &[u8]) {
        let conn = self.0.borrow().shown.get(name).and_then(Weak::upgrade);
        match conn {
            Some(rc) => type_input(&rc, bytes),
            None => self
                .0
                .borrow_mut()
                .waiting
                .entry(name.to_owned())
                .or_default()
                .extend_from_slice(bytes),
        }
    }

    /// `conn` is now the visible shell of `name`: it takes what waited.
    pub(super) fn register(&self, name: &str, conn: &Rc<RefCell<Inner>>) {
        let waiting = {
            let mut reg = self.0.borrow_mut();
            reg.shown.insert(name.to_owned(), Rc::downgrade(conn));
            reg.waiting.remove(name)
        };
        if let Some(bytes) = waiting {
            type_input(conn, &bytes);
        }
    }

    /// `conn` is hidden or gone (only if it is still the registered one: the
    /// next tab may have registered first).
    pub(super) fn unregister(&self, name: &str, conn: &Weak<RefCell<Inner>>) {
        let mut reg = self.0.borrow_mut();
        if reg.shown.get(name).is_some_and(|w| w.ptr_eq(conn)) {
            reg.shown.remove(name);
        }
    }
}
