//! `/_ping`, `/version` and `/info`: what `docker version` and `docker info`
//! show about the engine.

use axum::http::header::{HeaderName, HeaderValue, CACHE_CONTROL};
use axum::response::{IntoResponse, Response};
use axum::Json;
use serde_json::json;

use super::ctx::Ctx;
use super::{API_VERSION, MIN_API_VERSION};

const ENGINE_VERSION: &str = concat!("playground-", env!("CARGO_PKG_VERSION"));

/// The client negotiates its API version from these headers.
pub fn ping() -> Response {
    let headers = [
        (HeaderName::from_static("api-version"), API_VERSION),
        (HeaderName::from_static("docker-experimental"), "false"),
        (HeaderName::from_static("ostype"), "linux"),
        (CACHE_CONTROL, "no-cache, no-store, must-revalidate"),
    ];
    let mut response = "OK".into_response();
    for (name, value) in headers {
        response
            .headers_mut()
            .insert(name, HeaderValue::from_static(value));
    }
    response
}

fn kernel_version() -> String {
    std::fs::read_to_string("/proc/sys/kernel/osrelease")
        .map(|s| s.trim().to_string())
        .unwrap_or_default()
}

pub fn version() -> Response {
    Json(json!({
        "Platform": { "Name": "Playground Engine" },
        "Components": [{
            "Name": "Engine",
            "Version": ENGINE_VERSION,
            "Details": {
                "ApiVersion": API_VERSION,
                "MinAPIVersion": MIN_API_VERSION,
                "Os": "linux",
                "Arch": "amd64",
                "KernelVersion": kernel_version(),
                "GitCommit": "",
                "GoVersion": "none (Rust)",
                "BuildTime": "",
                "Experimental": "false",
            }
        }],
        "Version": ENGINE_VERSION,
        "ApiVersion": API_VERSION,
        "MinAPIVersion": MIN_API_VERSION,
        "GitCommit": "",
        "GoVersion": "none (Rust)",
        "Os": "linux",
        "Arch": "amd64",
        "KernelVersion": kernel_version(),
        "BuildTime": "",
    }))
    .into_response()
}

pub fn info(ctx: &Ctx) -> Response {
    let images = super::images::visible(ctx).len();
    let cpus = std::thread::available_parallelism().map_or(1, |n| n.get());
    let containers = ctx.engine.containers.list(&ctx.instance);
    let running = containers.iter().filter(|r| r.running).count();
    Json(json!({
        "ID": ctx.instance,
        "Name": ctx.instance,
        "Containers": containers.len(),
        "ContainersRunning": running,
        "ContainersPaused": 0,
        "ContainersStopped": containers.len() - running,
        "Images": images,
        "Driver": "overlay",
        "DriverStatus": [["Image store", "shared by the playground's instances"]],
        "Plugins": { "Volume": [], "Network": [], "Authorization": null, "Log": [] },
        "MemoryLimit": true,
        "SwapLimit": false,
        "CpuCfsPeriod": true,
        "CpuCfsQuota": true,
        "IPv4Forwarding": true,
        "Debug": false,
        "NFd": 0,
        "NGoroutines": 0,
        "SystemTime": humantime::format_rfc3339_seconds(std::time::SystemTime::now()).to_string(),
        "LoggingDriver": "json-file",
        "CgroupDriver": "cgroupfs",
        "KernelVersion": kernel_version(),
        "OperatingSystem": "Playground",
        "OSType": "linux",
        "Architecture": "x86_64",
        "NCPU": cpus,
        "MemTotal": 0,
        "IndexServerAddress": "https://index.docker.io/v1/",
        "RegistryConfig": { "IndexConfigs": {}, "InsecureRegistryCIDRs": [], "Mirrors": [] },
        "ServerVersion": ENGINE_VERSION,
        "Runtimes": {},
        "DefaultRuntime": "playground",
        "Swarm": { "LocalNodeState": "inactive", "ControlAvailable": false },
        "LiveRestoreEnabled": true,
        "Isolation": "",
        "SecurityOptions": [],
        "Warnings": ["containers share the instance's network (like --network host): bridge networks and published ports (-p) are not available yet in this playground"],
    }))
    .into_response()
}
