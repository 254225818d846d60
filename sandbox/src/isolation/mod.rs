//! Isolation: the kernel's means of keeping an instance apart, used by the
//! processes that make instances and containers (see `crate::launch`) and by
//! the server's side (see `crate::instance`).

pub mod cgroup;
pub mod modules;
pub mod security;
pub mod sys;
