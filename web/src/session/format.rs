//! Pure text helpers of the session page (durations, sizes, percentages,
//! port numbers, the `ssh` command), kept apart from the components so they
//! are unit-tested on the host.

use playground_protocol::{InstanceStats, SshAccess};

/// A port number typed by a person: 1–65535, surrounding blanks and a
/// leading `:` allowed.
pub fn parse_port(text: &str) -> Result<u16, &'static str> {
    let text = text.trim();
    let text = text.strip_prefix(':').unwrap_or(text);
    if text.is_empty() {
        return Err("Type a port number first.");
    }
    if !text.bytes().all(|b| b.is_ascii_digit()) {
        return Err("A port is a number from 1 to 65535.");
    }
    match text.parse::<u32>() {
        Ok(p @ 1..=65535) => Ok(p as u16),
        _ => Err("Ports go from 1 to 65535."),
    }
}

/// The session's port link for `instance` and `port`.
pub fn fill_template(template: &str, instance: &str, port: u16) -> String {
    template
        .replace("{instance}", instance)
        .replace("{port}", &port.to_string())
}

/// `mm:ss` under an hour, `h:mm:ss` from one hour up.
pub fn format_duration(secs: u64) -> String {
    let (h, m, s) = (secs / 3600, secs / 60 % 60, secs % 60);
    if h > 0 {
        format!("{h}:{m:02}:{s:02}")
    } else {
        format!("{m:02}:{s:02}")
    }
}

/// `m:ss` under an hour (for prose: "ends in 4:59"), `h:mm:ss` above.
pub fn format_clock(secs: u64) -> String {
    let (h, m, s) = (secs / 3600, secs / 60 % 60, secs % 60);
    if h > 0 {
        format!("{h}:{m:02}:{s:02}")
    } else {
        format!("{m}:{s:02}")
    }
}

/// Binary units, whole numbers from 10 up: `512 B`, `3.5 MiB`, `38 MiB`, `1 GiB`.
pub fn format_bytes(bytes: u64) -> String {
    const UNITS: [&str; 5] = ["B", "KiB", "MiB", "GiB", "TiB"];
    let mut value = bytes as f64;
    let mut unit = 0;
    while unit < UNITS.len() - 1 && value.round() >= 1024.0 {
        value /= 1024.0;
        unit += 1;
    }
    if unit == 0 {
        format!("{bytes} B")
    } else if value >= 9.95 || (value - value.round()).abs() < 0.05 {
        format!("{value:.0} {}", UNITS[unit])
    } else {
        format!("{value:.1} {}", UNITS[unit])
    }
}

/// Whether a memory limit means anything (cgroup v1 reports "none" as a huge number).
fn has_limit(stats: &InstanceStats) -> bool {
    stats.memory_limit_bytes > 0 && stats.memory_limit_bytes < 1 << 60
}

/// `38 MiB / 1 GiB`, or just the use when there is no limit.
pub fn format_memory(stats: &InstanceStats) -> String {
    if has_limit(stats) {
        format!(
            "{} / {}",
            format_bytes(stats.memory_bytes),
            format_bytes(stats.memory_limit_bytes)
        )
    } else {
        format_bytes(stats.memory_bytes)
    }
}

/// How full the memory limit is (0–1), when there is one.
pub fn memory_fraction(stats: &InstanceStats) -> Option<f64> {
    has_limit(stats).then(|| stats.memory_bytes as f64 / stats.memory_limit_bytes as f64)
}

/// `0.4%`, `12%`, `180%` (several cores).
pub fn format_percent(p: f64) -> String {
    let p = p.max(0.0);
    if p < 9.95 {
        format!("{p:.1}%")
    } else {
        format!("{p:.0}%")
    }
}
/// The `ssh` command that logs in to `instance` of session `sid`: at the
/// server's SSH host, or at the page's own host name (`page_host`) when it
/// names none; `-p` only off the standard port.
pub fn ssh_command(instance: &str, sid: &str, access: &SshAccess, page_host: &str) -> String {
    let host = if access.host.is_empty() {
        page_host
    } else {
        access.host.as_str()
    };
    // `location.hostname` keeps an IPv6 address in brackets; ssh wants it bare.
    let host = host
        .strip_prefix('[')
        .and_then(|h| h.strip_suffix(']'))
        .unwrap_or(host);
    let port = match access.port {
        22 => String::new(),
        p => format!("-p {p} "),
    };
    format!("ssh {port}{instance}.{sid}@{host}")
}

/// A public key's type as `ssh-keygen -l` names it (`ED25519`, `RSA`,
/// `ECDSA`, `ED25519-SK`), from its line (`ssh-ed25519 AAAA...`).
pub fn key_kind(key: &str) -> &str {
    let algorithm = key.split_whitespace().next().unwrap_or_default();
    match algorithm {
        "ssh-ed25519" => "ED25519",
        "ssh-rsa" => "RSA",
        "sk-ssh-ed25519@openssh.com" => "ED25519-SK",
        "sk-ecdsa-sha2-nistp256@openssh.com" => "ECDSA-SK",
        a if a.starts_with("ecdsa-sha2-") => "ECDSA",
        other => other,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn durations() {
        assert_eq!(format_duration(0), "00:00");
        assert_eq!(format_duration(59), "00:59");
        assert_eq!(format_duration(3599), "59:59");
        assert_eq!(format_duration(3600), "1:00:00");
        assert_eq!(format_duration(4 * 3600 + 5 * 60 + 6), "4:05:06");
        assert_eq!(format_clock(299), "4:59");
        assert_eq!(format_clock(5), "0:05");
        assert_eq!(format_clock(3661), "1:01:01");
    }

    #[test]
    fn bytes() {
        assert_eq!(format_bytes(512), "512 B");
        assert_eq!(format_bytes(38 * 1024 * 1024), "38 MiB");
        assert_eq!(format_bytes(1024 * 1024 * 1024), "1 GiB");
        assert_eq!(format_bytes(3 * 1024 * 1024 + 512 * 1024), "3.5 MiB");
        assert_eq!(format_bytes(1024 * 1024 - 1), "1 MiB");
        let stats = InstanceStats {
            memory_bytes: 38 << 20,
            memory_limit_bytes: 1 << 30,
            cpu_seconds: 0.0,
            pids: 1,
            pids_limit: 1000,
        };
        assert_eq!(format_memory(&stats), "38 MiB / 1 GiB");
    }

    #[test]
    fn ports() {
        assert_eq!(parse_port("8000"), Ok(8000));
        assert_eq!(parse_port(" :3000 "), Ok(3000));
        assert_eq!(parse_port("65535"), Ok(65535));
        assert!(parse_port("0").is_err());
        assert!(parse_port("65536").is_err());
        assert!(parse_port("80a").is_err());
        assert!(parse_port("").is_err());
        assert!(parse_port("-1").is_err());
        assert_eq!(
            fill_template("/proxy/s1/{instance}/{port}/", "node2", 8080),
            "/proxy/s1/node2/8080/"
        );
    }

    #[test]
    fn percents() {
        assert_eq!(format_percent(25.0), "25%");
        assert_eq!(format_percent(0.42), "0.4%");
    }

    #[test]
    fn ssh_commands() {
        let sid = "0b6f3c1e-5d2a-4c8e-9f10-1a2b3c4d5e6f";
        let access = |host: &str, port| SshAccess {
            host: host.to_owned(),
            port,
        };
        assert_eq!(
            ssh_command("node1", sid, &access("", 2222), "play.example.org"),
            format!("ssh -p 2222 node1.{sid}@play.example.org")
        );
        assert_eq!(
            ssh_command("node2", sid, &access("ssh.example.org", 22), "localhost"),
            format!("ssh node2.{sid}@ssh.example.org")
        );
        assert_eq!(
            ssh_command("node1", sid, &access("", 22), "[::1]"),
            format!("ssh node1.{sid}@::1")
        );
    }

    #[test]
    fn key_kinds() {
        assert_eq!(key_kind("ssh-ed25519 AAAAC3Nz"), "ED25519");
        assert_eq!(key_kind("ssh-rsa AAAAB3Nz"), "RSA");
        assert_eq!(key_kind("ecdsa-sha2-nistp384 AAAA"), "ECDSA");
        assert_eq!(key_kind("sk-ssh-ed25519@openssh.com AAAA"), "ED25519-SK");
        assert_eq!(key_kind("ssh-dss AAAA"), "ssh-dss");
        assert_eq!(key_kind(""), "");
    }
}
