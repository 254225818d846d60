//! Published ports (`-p`, `-P`) as Docker's API spells them: what
//! `docker create` asks for, which ports of the instance a start binds,
//! and the views `docker ps`, `inspect` and `port` read.

use std::net::Ipv4Addr;
use std::ops::RangeInclusive;

use axum::http::StatusCode;
use serde_json::{json, Map, Value};

use super::bindings::PortBinding;
use super::records::{Config, Record};
use crate::engine::reply::DockerError;

/// What a start binds: an address and the ports it may take (None: any
/// free one).
#[derive(Clone, Debug, PartialEq)]
pub struct Wanted {
    pub container_port: u16,
    pub host_ip: Ipv4Addr,
    pub host_ports: Option<RangeInclusive<u16>>,
}

fn bad(message: String) -> DockerError {
    DockerError::new(StatusCode::BAD_REQUEST, message)
}

/// `80/tcp` or `80` -> 80. Other protocols are refused: the forwarder
/// only speaks TCP.
fn tcp_port(key: &str) -> Result<u16, DockerError> {
    let (port, proto) = key.split_once('/').unwrap_or((key, "tcp"));
    let number = port
        .parse::<u16>()
        .ok()
        .filter(|p| *p != 0)
        .ok_or_else(|| bad(format!("invalid port specification: {key:?}")))?;
    match proto {
        "tcp" => Ok(number),
        "udp" | "sctp" => Err(DockerError::new(
            StatusCode::NOT_IMPLEMENTED,
            format!("publishing {proto} ports ({key}) is not available in this playground: only tcp ports can be published"),
        )),
        _ => Err(bad(format!("invalid proto: {proto:?}"))),
    }
}

/// `80` or `80/udp` -> `80/udp` (tcp when no protocol is given).
fn exposed_key(key: &str) -> Option<String> {
    let (port, proto) = key.split_once('/').unwrap_or((key, "tcp"));
    let port = port.parse::<u16>().ok().filter(|p| *p != 0)?;
    Some(format!("{port}/{}", proto.to_ascii_lowercase()))
}

/// `""` or `0.0.0.0` -> every address; else an IPv4 address.
fn host_ip(text: &str) -> Result<Ipv4Addr, DockerError> {
    if text.is_empty() {
        return Ok(Ipv4Addr::UNSPECIFIED);
    }
    match text.parse::<std::net::IpAddr>() {
        Ok(std::net::IpAddr::V4(ip)) => Ok(ip),
        Ok(std::net::IpAddr::V6(_)) => Err(DockerError::new(
            StatusCode::NOT_IMPLEMENTED,
            format!("publishing on an IPv6 address ({text}) is not available in this playground: instances have IPv4 only"),
        )),
        Err(_) => Err(bad(format!("invalid IP address: {text}"))),
    }
}

/// `""` or `0` -> any free port; `8080`; `8000-8010`.
fn host_ports(text: &str) -> Result<Option<RangeInclusive<u16>>, DockerError> {
    let invalid = || bad(format!("invalid hostPort: {text}"));
    if text.is_empty() || text == "0" {
        return Ok(None);
    }
    let (low, high) = text.split_once('-').unwrap_or((text, text));
    let low: u16 = low.parse().map_err(|_| invalid())?;
    let high: u16 = high.parse().map_err(|_| invalid())?;
    if low == 0 || high < low {
        return Err(invalid());
    }
    Ok(Some(low..=high))
}

/// The published and exposed ports of a `docker create` body
/// (`HostConfig.PortBindings`, `HostConfig.PublishAllPorts`,
/// `ExposedPorts`) and of the image: what goes into the container's
/// [`Config`] (`port_bindings`, `publish_all`, `exposed_ports`).
pub fn from_create(
    body: &Value,
    image_exposed: &[String],
) -> Result<(Vec<PortBinding>, bool, Vec<String>), DockerError> {
    let mut bindings = Vec::new();
    let mut exposed: Vec<String> = image_exposed
        .iter()
        .filter_map(|k| exposed_key(k))
        .collect();
    if let Some(asked) = body["ExposedPorts"].as_object() {
        for key in asked.keys() {
            exposed.push(
                exposed_key(key)
                    .ok_or_else(|| bad(format!("invalid port specification: {key:?}")))?,
            );
        }
    }
    if let Some(asked) = body["HostConfig"]["PortBindings"].as_object() {
        for (key, hosts) in asked {
            let container_port = tcp_port(key)?;
            exposed.push(format!("{container_port}/tcp"));
            // An empty list (or null) only exposes the port, as with Docker.
            let hosts = hosts.as_array().map(Vec::as_slice).unwrap_or_default();
            for host in hosts {
                let ip = host["HostIp"].as_str().unwrap_or("").to_string();
                let port = host["HostPort"].as_str().unwrap_or("").to_string();
                host_ip(&ip)?;
                host_ports(&port)?;
                bindings.push(PortBinding {
                    container_port,
                    host_ip: ip,
                    host_port: port,
                });
            }
        }
    }
    // Stable: bindings of one port keep the client's order.
    bindings.sort_by_key(|b| b.container_port);
    exposed.sort_by_key(|k| sort_key(k));
    exposed.dedup();
    let publish_all = body["HostConfig"]["PublishAllPorts"]
        .as_bool()
        .unwrap_or(false);
    Ok((bindings, publish_all, exposed))
}

/// `80/tcp` -> (80, "tcp"), for sorting by number.
fn sort_key(key: &str) -> (u16, String) {
    let (port, proto) = key.split_once('/').unwrap_or((key, "tcp"));
    (port.parse().unwrap_or(0), proto.to_string())
}

/// The ports a start of the container binds: its `-p`s, and with `-P` a
/// free port for every exposed tcp port that has none.
pub fn wanted(config: &Config) -> Result<Vec<Wanted>, DockerError> {
    let mut wanted = Vec::new();
    for b in &config.port_bindings {
        wanted.push(Wanted {
            container_port: b.container_port,
            host_ip: host_ip(&b.host_ip)?,
            host_ports: host_ports(&b.host_port)?,
        });
    }
    if config.publish_all {
        for key in &config.exposed_ports {
            let (port, proto) = sort_key(key);
            let bound = config
                .port_bindings
                .iter()
                .any(|b| b.container_port == port);
            if proto == "tcp" && !bound {
                wanted.push(Wanted {
                    container_port: port,
                    host_ip: Ipv4Addr::UNSPECIFIED,
                    host_ports: None,
                });
            }
        }
    }
    Ok(wanted)
}

/// inspect's `HostConfig.PortBindings`: what was asked.
pub fn asked_view(config: &Config) -> Value {
    let mut view = Map::new();
    for b in &config.port_bindings {
        let hosts = view
            .entry(format!("{}/tcp", b.container_port))
            .or_insert_with(|| json!([]));
        if let Value::Array(hosts) = hosts {
            hosts.push(json!({ "HostIp": b.host_ip, "HostPort": b.host_port }));
        }
    }
    Value::Object(view)
}

/// inspect's `NetworkSettings.Ports` (what `docker port` prints): each
/// exposed port with the instance's ports forwarded to it, or null. Empty
/// when the container is not running.
pub fn bound_view(r: &Record) -> Value {
    let mut view = Map::new();
    if !r.running {
        return Value::Object(view);
    }
    for key in &r.config.exposed_ports {
        view.insert(key.clone(), Value::Null);
    }
    for p in &r.published {
        let entry = view
            .entry(format!("{}/tcp", p.container_port))
            .or_insert(Value::Null);
        if entry.is_null() {
            *entry = json!([]);
        }
        if let Value::Array(hosts) = entry {
            hosts.push(
                json!({ "HostIp": p.host_ip.to_string(), "HostPort": p.host_port.to_string() }),
            );
        }
    }
    Value::Object(view)
}

/// `docker ps`'s `Ports`: published ports, then exposed ones without a
/// published port (shown as `80/tcp`). Empty when not running.
pub fn list_view(r: &Record) -> Value {
    if !r.running {
        return json!([]);
    }
    let mut items: Vec<Value> = r
        .published
        .iter()
        .map(|p| {
            json!({
                "IP": p.host_ip.to_string(),
                "PrivatePort": p.container_port,
                "PublicPort": p.host_port,
                "Type": "tcp",
            })
        })
        .collect();
    for key in &r.config.exposed_ports {
        let (port, proto) = sort_key(key);
        let published = proto == "tcp" && r.published.iter().any(|p| p.container_port == port);
        if !published {
            items.push(json!({ "PrivatePort": port, "Type": proto }));
        }
    }
    Value::Array(items)
}

/// inspect's `Config.ExposedPorts`.
pub fn exposed_view(config: &Config) -> Value {
    let map: Map<String, Value> = config
        .exposed_ports
        .iter()
        .map(|k| (k.clone(), json!({})))
        .collect();
    Value::Object(map)
}

#[cfg(test)]
mod tests {
    use super::super::bindings::PublishedPort;
    use super::*;

    fn create(
        body: Value,
        image: &[&str],
    ) -> Result<(Vec<PortBinding>, bool, Vec<String>), DockerError> {
        let image: Vec<String> = image.iter().map(|s| s.to_string()).collect();
        from_create(&body, &image)
    }

    #[test]
    fn bindings_as_the_client_sends_them() {
        let body = json!({
            "ExposedPorts": {"80/tcp": {}, "53/udp": {}},
            "HostConfig": {"PortBindings": {
                "80/tcp": [{"HostIp": "", "HostPort": "8080"}, {"HostIp": "127.0.0.1", "HostPort": "8081"}],
                "443": [{"HostIp": "", "HostPort": ""}],
                "9000/tcp": null,
            }},
        });
        let (bindings, all, exposed) = create(body, &["8443/tcp", "80/tcp"]).unwrap();
        assert!(!all);
        assert_eq!(
            exposed,
            ["53/udp", "80/tcp", "443/tcp", "8443/tcp", "9000/tcp"]
        );
        let asked: Vec<(u16, &str, &str)> = bindings
            .iter()
            .map(|b| (b.container_port, b.host_ip.as_str(), b.host_port.as_str()))
            .collect();
        assert_eq!(
            asked,
            [(80, "", "8080"), (80, "127.0.0.1", "8081"), (443, "", "")]
        );
        let config = Config {
            port_bindings: bindings,
            exposed_ports: exposed,
            ..Config::default()
        };
        assert_eq!(
            asked_view(&config)["80/tcp"],
            json!([{"HostIp": "", "HostPort": "8080"}, {"HostIp": "127.0.0.1", "HostPort": "8081"}])
        );
        let wanted = wanted(&config).unwrap();
        assert_eq!(wanted[1].host_ip, Ipv4Addr::LOCALHOST);
        assert_eq!(wanted[1].host_ports, Some(8081..=8081));
        assert_eq!(wanted[2].host_ports, None);
    }

    #[test]
    fn publish_all_takes_free_ports_for_exposed_tcp_ports_only() {
        let body = json!({
            "ExposedPorts": {"53/udp": {}},
            "HostConfig": {"PublishAllPorts": true, "PortBindings": {"80/tcp": [{"HostPort": "8000-8010"}]}},
        });
        let (port_bindings, publish_all, exposed_ports) =
            create(body, &["80/tcp", "443/tcp"]).unwrap();
        let config = Config {
            port_bindings,
            publish_all,
            exposed_ports,
            ..Config::default()
        };
        let wanted = wanted(&config).unwrap();
        let ports: Vec<(u16, Option<RangeInclusive<u16>>)> = wanted
            .into_iter()
            .map(|w| (w.container_port, w.host_ports))
            .collect();
        assert_eq!(ports, [(80, Some(8000..=8010)), (443, None)]);
    }

    #[test]
    fn what_cannot_be_published_is_refused() {
        let udp = json!({"HostConfig": {"PortBindings": {"53/udp": [{"HostPort": "53"}]}}});
        let e = create(udp, &[]).unwrap_err();
        assert_eq!(e.status, StatusCode::NOT_IMPLEMENTED);
        assert!(e.message.contains("only tcp ports"), "{}", e.message);
        let v6 = json!({"HostConfig": {"PortBindings": {"80/tcp": [{"HostIp": "::1", "HostPort": "80"}]}}});
        assert_eq!(
            create(v6, &[]).unwrap_err().status,
            StatusCode::NOT_IMPLEMENTED
        );
        for (key, ip, port) in [
            ("x/tcp", "", "1"),
            ("80/tcp", "nope", "1"),
            ("80/tcp", "", "9-2"),
            ("80/tcp", "", "70000"),
            ("0/tcp", "", ""),
        ] {
            let body =
                json!({"HostConfig": {"PortBindings": {key: [{"HostIp": ip, "HostPort": port}]}}});
            assert_eq!(
                create(body, &[]).unwrap_err().status,
                StatusCode::BAD_REQUEST,
                "{key} {ip} {port}"
            );
        }
    }

    #[test]
    fn views_of_a_running_container() {
        let r = Record {
            running: true,
            config: Config {
                exposed_ports: vec!["80/tcp".into(), "443/tcp".into()],
                ..Config::default()
            },
            published: vec![PublishedPort {
                container_port: 80,
                host_ip: Ipv4Addr::UNSPECIFIED,
                host_port: 8080,
            }],
            ..Record::default()
        };
        assert_eq!(
            bound_view(&r),
            json!({"80/tcp": [{"HostIp": "0.0.0.0", "HostPort": "8080"}], "443/tcp": null})
        );
        assert_eq!(
            list_view(&r),
            json!([
                {"IP": "0.0.0.0", "PrivatePort": 80, "PublicPort": 8080, "Type": "tcp"},
                {"PrivatePort": 443, "Type": "tcp"},
            ])
        );
        let stopped = Record {
            running: false,
            ..r
        };
        assert_eq!(bound_view(&stopped), json!({}));
        assert_eq!(list_view(&stopped), json!([]));
    }
}
