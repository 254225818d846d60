//! What a client asks for in its channel requests, checked: environment
//! variables, the terminal's type and size, `-L` targets. Pure functions,
//! so any input can be thrown at them (the property tests below).

/// `NAME=value` for a variable the client may set (`SendEnv`/`SetEnv`):
/// the locale and the terminal's colours, as OpenSSH's sshd accepts by
/// default (`AcceptEnv LANG LC_*`), with a short single-line value.
pub fn env_var(name: &str, value: &str) -> Option<String> {
    let allowed = name == "LANG" || name.starts_with("LC_") || name == "COLORTERM";
    let safe = allowed
        && name.len() <= 64
        && name.bytes().all(|b| b.is_ascii_alphanumeric() || b == b'_')
        && value.len() <= 256
        && !value.contains(['\0', '\n', '\r']);
    safe.then(|| format!("{name}={value}"))
}

/// The `TERM` for a PTY request: the client's when it looks like a
/// terminal type, else xterm's.
pub fn terminal_type(term: &str) -> String {
    let plausible = !term.is_empty()
        && term.len() <= 64
        && term
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || b"-_.+".contains(&b));
    if plausible {
        term.to_string()
    } else {
        "xterm-256color".to_string()
    }
}

/// A window size in columns and rows, within what a terminal can be. A
/// client whose own input is no terminal (`ssh -tt < file`) says 0x0:
/// that gets 80x24.
pub fn window(cols: u32, rows: u32) -> (u16, u16) {
    match (cols, rows) {
        (0, _) | (_, 0) => (80, 24),
        _ => (cols.clamp(2, 1000) as u16, rows.clamp(2, 1000) as u16),
    }
}

/// The port `ssh -L` may reach: only inside the instance itself (named by
/// loopback or its own name), never another machine through it.
pub fn forward_port(host: &str, port: u32, instance: &str) -> Option<u16> {
    let local = matches!(host, "localhost" | "127.0.0.1" | "::1") || host == instance;
    let port = u16::try_from(port).ok().filter(|&p| p > 0)?;
    local.then_some(port)
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    #[test]
    fn examples() {
        assert_eq!(env_var("LANG", "C.UTF-8").as_deref(), Some("LANG=C.UTF-8"));
        assert_eq!(env_var("LC_ALL", "x\ny"), None);
        assert_eq!(env_var("LD_PRELOAD", "/tmp/x.so"), None);
        assert_eq!(env_var("PATH", "/tmp"), None);
        assert_eq!(env_var("LC_X=Y", "1"), None);
        assert_eq!(terminal_type("screen-256color"), "screen-256color");
        assert_eq!(terminal_type("x;rm -rf /"), "xterm-256color");
        assert_eq!(window(0, 0), (80, 24));
        assert_eq!(window(u32::MAX, 1), (1000, 2));
        assert_eq!(forward_port("localhost", 80, "node1"), Some(80));
        assert_eq!(forward_port("node1", 8080, "node1"), Some(8080));
        assert_eq!(forward_port("10.0.0.1", 80, "node1"), None);
        assert_eq!(forward_port("node2", 80, "node1"), None);
        assert_eq!(forward_port("localhost", 70000, "node1"), None);
        assert_eq!(forward_port("localhost", 0, "node1"), None);
    }

    proptest! {
        /// Whatever a client sends, a variable set is one line, of an
        /// allowed name, and never one that changes how programs load.
        #[test]
        fn env_vars_stay_harmless(name in ".{0,80}", value in ".{0,300}") {
            if let Some(var) = env_var(&name, &value) {
                prop_assert!(!var.contains('\n') && !var.contains('\0'));
                prop_assert!(name == "LANG" || name.starts_with("LC_") || name == "COLORTERM");
                prop_assert_eq!(var.split_once('=').map(|(n, _)| n), Some(name.as_str()));
            }
        }

        #[test]
        fn terminal_types_are_plain(term in ".{0,100}") {
            let t = terminal_type(&term);
            prop_assert!(!t.is_empty() && t.len() <= 64);
            prop_assert!(t.bytes().all(|b| b.is_ascii_alphanumeric() || b"-_.+".contains(&b)));
        }

        #[test]
        fn windows_are_usable(cols in any::<u32>(), rows in any::<u32>()) {
            let (c, r) = window(cols, rows);
            prop_assert!((2..=1000).contains(&c) && (2..=1000).contains(&r));
        }

        #[test]
        fn forwarding_stays_inside(host in ".{0,40}", port in any::<u32>()) {
            if let Some(p) = forward_port(&host, port, "node1") {
                prop_assert!(p > 0 && u32::from(p) == port);
                prop_assert!(["localhost", "127.0.0.1", "::1", "node1"].contains(&host.as_str()));
            }
        }
    }
}
