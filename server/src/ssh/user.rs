//! The SSH user name says where to log in: `<instance>.<session id>`
//! (`node1.0b6f...`), as the page shows it in the `ssh` command. Parsed
//! strictly: anything else is refused like an unknown session, so a name
//! tells an attacker nothing.

use crate::session::templates::valid_hostname;

/// Where an SSH user name points.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Target {
    pub instance: String,
    pub session: String,
}

/// `node1.<uuid>` to its parts, or `None`.
pub fn parse(user: &str) -> Option<Target> {
    let (instance, session) = user.split_once('.')?;
    if !valid_hostname(instance) || !is_session_id(session) {
        return None;
    }
    Some(Target {
        instance: instance.to_string(),
        session: session.to_string(),
    })
}

/// A session id as the server makes them: a UUID in its hyphenated,
/// lowercase form.
fn is_session_id(s: &str) -> bool {
    s.len() == 36
        && s.bytes().enumerate().all(|(i, b)| match i {
            8 | 13 | 18 | 23 => b == b'-',
            _ => b.is_ascii_digit() || (b'a'..=b'f').contains(&b),
        })
}

/// The user name for `instance` of `session` (what the page will show).
#[cfg(test)]
pub fn name(instance: &str, session: &str) -> String {
    format!("{instance}.{session}")
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    const SID: &str = "0b6f3c1e-5d2a-4c8e-9f10-1a2b3c4d5e6f";

    #[test]
    fn names_point_at_an_instance_of_a_session() {
        let target = parse(&format!("node1.{SID}")).unwrap();
        assert_eq!(target.instance, "node1");
        assert_eq!(target.session, SID);
        assert_eq!(parse(&name("web-2", SID)).unwrap().instance, "web-2");
        for bad in [
            String::new(),
            "node1".to_string(),
            SID.to_string(),
            format!(".{SID}"),
            format!("Node1.{SID}"),
            format!("node1.{}", SID.to_uppercase()),
            format!("node1.{SID}.x"),
            format!("node1..{SID}"),
            format!("-node.{SID}"),
            format!("node1.{}", &SID[1..]),
            format!("node1 .{SID}"),
            "root".to_string(),
        ] {
            assert_eq!(parse(&bad), None, "{bad:?}");
        }
    }

    proptest! {
        #[test]
        fn any_text_parses_or_is_refused_without_panicking(user in any::<String>()) {
            if let Some(t) = parse(&user) {
                prop_assert_eq!(name(&t.instance, &t.session), user);
            }
        }

        #[test]
        fn made_names_parse_back(instance in "[a-z][a-z0-9-]{0,22}[a-z0-9]", sid in "[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}") {
            let parsed = parse(&name(&instance, &sid));
            prop_assert_eq!(parsed, Some(Target { instance, session: sid }));
        }
    }
}
