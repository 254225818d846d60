//! `backend.imageid` as our instances: their hostnames, and which profile.
//! One of the server's templates by name gets its instances and profile
//! (`None`: the server's default). Otherwise a Killercoda environment: each
//! gets `nesting` instances (the real dockerd, nested namespaces), the
//! closest to Killercoda's machines; the Kubernetes environments get their
//! number of machines but no cluster: a scenario's own scripts must install
//! one (see `docs/scenarios.md`).

use playground_protocol::TemplateInfo;
use sandbox::Profile;

/// The instances `imageid` maps to, or why it cannot be mapped.
pub fn instances(
    imageid: &str,
    templates: &[TemplateInfo],
) -> Result<(Vec<String>, Option<Profile>), String> {
    if let Some(template) = templates.iter().find(|t| t.name == imageid) {
        let hostnames = template.instances.iter().map(|i| i.hostname.clone());
        // Checked when the templates were loaded.
        let profile = template.profile.as_deref().and_then(|p| p.parse().ok());
        return Ok((hostnames.collect(), profile));
    }
    let count = killercoda(imageid).ok_or_else(|| {
        let names: Vec<&str> = templates.iter().map(|t| t.name.as_str()).collect();
        format!(
            "backend.imageid {imageid:?} is neither a template of this server ({}) nor a \
             Killercoda environment we know (ubuntu..., debian..., kubernetes-...-1node..., \
             kubernetes-...-2nodes...)",
            names.join(", ")
        )
    })?;
    let hostnames = (1..=count).map(|i| format!("node{i}")).collect();
    Ok((hostnames, Some(Profile::Nesting)))
}

/// How many machines a Killercoda environment has.
fn killercoda(imageid: &str) -> Option<usize> {
    let count = if imageid.starts_with("ubuntu") || imageid.starts_with("debian") {
        // ubuntu, ubuntu-4GB, ubuntu20.04, ...: one machine.
        Some(1)
    } else if let Some(rest) = imageid.strip_prefix("kubernetes-") {
        // kubernetes-kubeadm-1node, kubernetes-kubeadm-2nodes(-4GB),
        // kubernetes-k3s-1node, ...
        let words: Vec<&str> = rest.split('-').collect();
        if words.contains(&"1node") {
            Some(1)
        } else if words.contains(&"2nodes") {
            Some(2)
        } else {
            None
        }
    } else {
        None
    };
    count
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn killercoda_environments() {
        for (id, n) in [
            ("ubuntu", 1),
            ("ubuntu-4GB", 1),
            ("ubuntu20.04", 1),
            ("kubernetes-kubeadm-1node", 1),
            ("kubernetes-kubeadm-1node-4GB", 1),
            ("kubernetes-k3s-1node", 1),
            ("kubernetes-kubeadm-2nodes", 2),
            ("kubernetes-kubeadm-2nodes-4GB", 2),
        ] {
            let (hostnames, profile) = instances(id, &[]).unwrap();
            assert_eq!(hostnames.len(), n, "{id}");
            assert_eq!(hostnames[0], "node1");
            assert_eq!(profile, Some(Profile::Nesting));
        }
        assert!(instances("windows", &[]).unwrap_err().contains("windows"));
        assert!(instances("kubernetes-kubeadm", &[]).is_err());
    }

    #[test]
    fn templates_by_name() {
        let template = |name: &str, hosts: &[&str], profile: Option<&str>| TemplateInfo {
            name: name.into(),
            title: name.into(),
            instances: hosts
                .iter()
                .map(|h| playground_protocol::TemplateInstance {
                    hostname: h.to_string(),
                    run: Vec::new(),
                })
                .collect(),
            profile: profile.map(String::from),
        };
        let templates = [
            template("web-and-db", &["web", "db"], Some("strict")),
            // A template may take a Killercoda name: the operator's wins.
            template("ubuntu", &["box"], None),
        ];
        assert_eq!(
            instances("web-and-db", &templates).unwrap(),
            (
                vec!["web".to_string(), "db".to_string()],
                Some(Profile::Strict)
            )
        );
        assert_eq!(
            instances("ubuntu", &templates).unwrap(),
            (vec!["box".to_string()], None)
        );
        let e = instances("nope", &templates).unwrap_err();
        assert!(e.contains("web-and-db, ubuntu"), "{e}");
    }
}
