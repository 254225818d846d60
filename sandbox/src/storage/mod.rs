//! Storage: what instances and containers are made of on the host's disks.

pub mod disk;
pub mod disk_pool;
pub mod image;
pub mod layer_export;
