//! Port addresses: which session, instance and port a request is for.
//!
//! Two forms name the same thing:
//! - a host name, `<sid without dashes>-<port>-<instance>.<proxy domain>`
//!   (one DNS label, so one wildcard certificate covers every port), e.g.
//!   `804b4863eb2f42518e9b034831487511-8000-node1.localhost`;
//! - a path on the playground's own host, for deployments without wildcard
//!   DNS: `/proxy/<sid>/<instance>/<port>/<rest>`, forwarded as `/<rest>`.

/// Where browsers reach the playground, and under which domain port host
/// names live.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ProxySettings {
    /// Port host names are `<label>.<domain>`; lowercase, no dots at the ends.
    pub domain: String,
    /// `http` or `https`: what browsers use (https behind a TLS terminator).
    pub scheme: String,
    /// The port browsers use; left out of URLs when it is the scheme's default.
    pub public_port: u16,
}

impl ProxySettings {
    pub fn new(domain: &str, scheme: &str, public_port: u16) -> ProxySettings {
        ProxySettings {
            domain: domain.trim_matches('.').to_ascii_lowercase(),
            scheme: scheme.to_ascii_lowercase(),
            public_port,
        }
    }

    /// `:port`, or nothing when the port is the scheme's default.
    fn port_suffix(&self) -> String {
        match (self.scheme.as_str(), self.public_port) {
            ("http", 80) | ("https", 443) => String::new(),
            (_, port) => format!(":{port}"),
        }
    }
}

/// The browser address of `port` in `instance` of session `sid`, e.g.
/// `http://804b4863eb2f42518e9b034831487511-8000-node1.localhost:8080/`.
pub fn port_url(settings: &ProxySettings, sid: &str, instance: &str, port: u16) -> String {
    format!(
        "{}://{}.{}{}/",
        settings.scheme,
        label(sid, instance, port),
        settings.domain,
        settings.port_suffix()
    )
}

/// The DNS label that names `port` in `instance` of session `sid`.
pub fn label(sid: &str, instance: &str, port: u16) -> String {
    format!(
        "{}-{port}-{}",
        sid.replace('-', "").to_ascii_lowercase(),
        instance.to_ascii_lowercase()
    )
}

/// What a port address names.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Target {
    /// The session id in its usual form, with dashes.
    pub sid: String,
    pub instance: String,
    pub port: u16,
}

/// A session id as 32 hex digits or in the dashed UUID form; gives the
/// dashed lowercase form the registry uses. (Built in place: this runs for
/// every proxied request.)
pub fn parse_sid(text: &str) -> Option<String> {
    let bytes = text.as_bytes();
    let well_formed = match bytes.len() {
        32 => bytes.iter().all(u8::is_ascii_hexdigit),
        36 => bytes.iter().enumerate().all(|(i, b)| {
            if matches!(i, 8 | 13 | 18 | 23) {
                *b == b'-'
            } else {
                b.is_ascii_hexdigit()
            }
        }),
        _ => false,
    };
    if !well_formed {
        return None;
    }
    let mut sid = String::with_capacity(36);
    for b in bytes.iter().filter(|b| **b != b'-') {
        if matches!(sid.len(), 8 | 13 | 18 | 23) {
            sid.push('-');
        }
        sid.push(char::from(b.to_ascii_lowercase()));
    }
    Some(sid)
}

/// A port number in canonical decimal form (no sign, no leading zero), 1 to 65535.
fn parse_port(text: &str) -> Option<u16> {
    if text.is_empty() || text.len() > 5 || text.starts_with('0') {
        return None;
    }
    if !text.bytes().all(|b| b.is_ascii_digit()) {
        return None;
    }
    text.parse().ok()
}

/// Instance names are DNS-label material: lowercase letters, digits and
/// inner dashes.
fn parse_instance(text: &str) -> Option<String> {
    let name = text.to_ascii_lowercase();
    let ok = !name.is_empty()
        && name.len() <= 40
        && !name.starts_with('-')
        && !name.ends_with('-')
        && name
            .bytes()
            .all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b == b'-');
    ok.then_some(name)
}

/// Parse a host-name label, `<32 hex>-<port>-<instance>` (any case: the
/// parts are lowercased as they are parsed).
pub fn parse_label(label: &str) -> Option<Target> {
    let mut parts = label.splitn(3, '-');
    let (Some(sid), Some(port), Some(instance)) = (parts.next(), parts.next(), parts.next()) else {
        return None;
    };
    if sid.len() != 32 {
        return None;
    }
    Some(Target {
        sid: parse_sid(sid)?,
        port: parse_port(port)?,
        instance: parse_instance(instance)?,
    })
}

/// If `host` (a Host header: name and optional port) is a name under
/// `domain`, the part before the domain (lowercase); `None` when the host is
/// not the proxy's. The part may be malformed: it is the proxy's to reject.
pub fn host_prefix(host: &str, domain: &str) -> Option<String> {
    let name = if host.starts_with('[') {
        return None; // an IPv6 literal
    } else {
        match host.rsplit_once(':') {
            Some((name, port)) if port.bytes().all(|b| b.is_ascii_digit()) => name,
            _ => host,
        }
    };
    let name = name.trim_end_matches('.').to_ascii_lowercase();
    let prefix = name.strip_suffix(domain)?.strip_suffix('.')?;
    (!prefix.is_empty()).then(|| prefix.to_string())
}

/// The first segment of the path-based form.
pub const PATH_PREFIX: &str = "/proxy";

/// What a path under `/proxy` asks for.
#[derive(Debug, PartialEq, Eq)]
pub enum PathRoute {
    /// Forward to `target` with path `rest` (starts with `/`); `prefix` is
    /// the part of the path that was taken off.
    Forward {
        target: Target,
        prefix: String,
        rest: String,
    },
    /// `/proxy/<sid>/<instance>/<port>` without the final slash: send the
    /// browser to `<that>/` so relative links resolve inside the prefix.
    AddSlash(String),
    /// A path under `/proxy` that does not name a port.
    Malformed,
}

/// `Some` when `path` is the proxy's (`/proxy` or below it).
pub fn parse_path(path: &str) -> Option<PathRoute> {
    let after = path.strip_prefix(PATH_PREFIX)?;
    if !(after.is_empty() || after.starts_with('/')) {
        return None; // e.g. /proxying: not ours
    }
    let mut parts = after.splitn(5, '/').skip(1);
    let (Some(sid), Some(instance), Some(port)) = (parts.next(), parts.next(), parts.next()) else {
        return Some(PathRoute::Malformed);
    };
    let target = match (parse_sid(sid), parse_instance(instance), parse_port(port)) {
        (Some(sid), Some(instance), Some(port)) => Target {
            sid,
            instance,
            port,
        },
        _ => return Some(PathRoute::Malformed),
    };
    let prefix = format!("{PATH_PREFIX}/{sid}/{instance}/{port}");
    Some(match parts.next() {
        None => PathRoute::AddSlash(format!("{prefix}/")),
        Some(rest) => PathRoute::Forward {
            target,
            prefix,
            rest: format!("/{rest}"),
        },
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    const SID: &str = "804b4863-eb2f-4251-8e9b-034831487511";
    const HEX: &str = "804b4863eb2f42518e9b034831487511";

    #[test]
    fn port_urls_name_session_port_and_instance_in_one_label() {
        let local = ProxySettings::new("localhost", "http", 8080);
        assert_eq!(
            port_url(&local, SID, "node1", 8000),
            format!("http://{HEX}-8000-node1.localhost:8080/")
        );
        let public = ProxySettings::new(".Play.Example.com.", "https", 443);
        assert_eq!(
            port_url(&public, SID, "node2", 3000),
            format!("https://{HEX}-3000-node2.play.example.com/")
        );
        let plain = ProxySettings::new("localhost", "http", 80);
        assert_eq!(
            port_url(&plain, SID, "node1", 80),
            format!("http://{HEX}-80-node1.localhost/")
        );
        let odd = ProxySettings::new("localhost", "https", 80);
        assert!(port_url(&odd, SID, "node1", 80).contains(".localhost:80/"));
    }

    #[test]
    fn labels_parse_back_in_any_case() {
        let expected = Target {
            sid: SID.into(),
            instance: "node1".into(),
            port: 8000,
        };
        assert_eq!(
            parse_label(&label(SID, "node1", 8000)),
            Some(expected.clone())
        );
        assert_eq!(
            parse_label(&label(SID, "node1", 8000).to_uppercase()),
            Some(expected)
        );
        let dashed = parse_label(&format!("{HEX}-65535-my-node")).unwrap();
        assert_eq!((dashed.port, dashed.instance.as_str()), (65535, "my-node"));
    }

    #[test]
    fn malformed_labels_are_rejected() {
        for bad in [
            "",
            "hello",
            "www",
            HEX,
            &format!("{HEX}-8000"),
            &format!("{HEX}-8000-"),
            &format!("{HEX}-0-node1"),
            &format!("{HEX}-08000-node1"),
            &format!("{HEX}-65536-node1"),
            &format!("{HEX}-+80-node1"),
            &format!("{HEX}--node1"),
            &format!("{HEX}-80-node1-"),
            &format!("{HEX}-80-no_de"),
            &format!("{}-80-node1", &HEX[1..]),
            &format!("{HEX}0-80-node1"),
            &format!("{}g-80-node1", &HEX[1..]),
            &format!("{SID}-80-node1"),
        ] {
            assert_eq!(parse_label(bad), None, "{bad:?}");
        }
    }

    #[test]
    fn hosts_under_the_domain_are_the_proxys() {
        let label = format!("{HEX}-8000-node1");
        let host = format!("{label}.localhost:8080");
        assert_eq!(host_prefix(&host, "localhost"), Some(label.clone()));
        assert_eq!(
            host_prefix(&format!("{}.LOCALHOST.", label.to_uppercase()), "localhost"),
            Some(label.clone())
        );
        assert_eq!(
            host_prefix("a.b.play.example.com", "play.example.com"),
            Some("a.b".into())
        );
        for not_ours in [
            "localhost",
            "localhost:8080",
            "127.0.0.1:8080",
            "[::1]:8080",
            "notlocalhost:8080",
            "play.example.com",
            ".localhost",
        ] {
            assert_eq!(host_prefix(not_ours, "localhost"), None, "{not_ours}");
        }
        assert_eq!(host_prefix("example.com", "play.example.com"), None);
    }

    #[test]
    fn paths_name_ports_too() {
        let target = Target {
            sid: SID.into(),
            instance: "node1".into(),
            port: 8000,
        };
        assert_eq!(
            parse_path(&format!("/proxy/{SID}/node1/8000/a/b.txt")),
            Some(PathRoute::Forward {
                target: target.clone(),
                prefix: format!("/proxy/{SID}/node1/8000"),
                rest: "/a/b.txt".into(),
            })
        );
        assert_eq!(
            parse_path(&format!("/proxy/{HEX}/node1/8000/")),
            Some(PathRoute::Forward {
                target,
                prefix: format!("/proxy/{HEX}/node1/8000"),
                rest: "/".into(),
            })
        );
        assert_eq!(
            parse_path(&format!("/proxy/{SID}/node1/8000")),
            Some(PathRoute::AddSlash(format!("/proxy/{SID}/node1/8000/")))
        );
        for bad in [
            "/proxy",
            "/proxy/",
            &format!("/proxy/{SID}"),
            &format!("/proxy/{SID}/node1"),
            &format!("/proxy/{SID}/node1/"),
            &format!("/proxy/{SID}/node1/http/"),
            "/proxy/nope/node1/8000/",
            &format!("/proxy/{SID}//8000/"),
        ] {
            assert_eq!(parse_path(bad), Some(PathRoute::Malformed), "{bad}");
        }
        assert_eq!(parse_path("/"), None);
        assert_eq!(parse_path("/api/sessions"), None);
        assert_eq!(parse_path("/proxying"), None);
    }
}

#[cfg(test)]
#[path = "address_fuzz.rs"]
mod fuzz;
