//! SSH into instances (issue #16, in progress on this branch): the
//! learner's own `ssh`, `scp` and `sftp` reach an instance of their session
//! as `<instance>.<session id>@<host>`, with keys the session's owner added.
//!
//! Done: the user name (`user.rs`), the host key (`host_key.rs`), the
//! session's keys (`session/ssh_keys.rs`, stored with the session, the API
//! in `api/ssh.rs`). Next: the keys on the page, the server on
//! `--ssh-listen` (russh: publickey only, refusals alike and slow, a rate
//! per address), shells as terminal tabs, exec with exit status, the
//! instance's own sftp-server, `-L` forwarding; agent, X11 and remote
//! forwarding refused with a message.

// Not wired into the server yet.
#![allow(dead_code)]

pub mod host_key;
pub mod user;
