//! Launch: the processes that make instances and containers, and the
//! messages between them and the server.

pub mod agent;
pub mod dockerd;
pub mod init;
pub mod jobs;
pub mod launcher;
pub mod nested;
pub mod rootfs;
pub mod server;
