//! Killercoda's environments (`backend.imageid`) as our instances: how many,
//! and which profile. Every environment gets `nesting` instances (the real
//! dockerd, nested namespaces), the closest to Killercoda's machines; the
//! Kubernetes environments get their number of machines but no cluster:
//! a scenario's own scripts must install one (see `docs/scenarios.md`).

/// The instances an environment maps to, or why it cannot be mapped.
pub fn instances(imageid: &str) -> Result<(usize, sandbox::Profile), String> {
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
    match count {
        Some(n) => Ok((n, sandbox::Profile::Nesting)),
        None => Err(format!(
            "backend.imageid {imageid:?} is not an environment we know (ubuntu..., debian..., \
             kubernetes-...-1node..., kubernetes-...-2nodes...)"
        )),
    }
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
            assert_eq!(instances(id).unwrap().0, n, "{id}");
        }
        assert!(instances("windows").unwrap_err().contains("windows"));
        assert!(instances("kubernetes-kubeadm").is_err());
    }
}
