//! Local mode only: resolves Service names (`svc.ns`, `svc.ns.svc.cluster.local`) through the
//! process runtime's hosts file, as the local cluster's pods do, so the operator reaches Flink
//! through the same names as in a real cluster.

use reqwest::dns::{Addrs, Name, Resolve, Resolving};
use std::net::{IpAddr, SocketAddr};
use std::path::PathBuf;

#[derive(Debug)]
pub struct HostsFileResolver {
    pub path: PathBuf,
}

impl Resolve for HostsFileResolver {
    fn resolve(&self, name: Name) -> Resolving {
        let path = self.path.clone();
        let host = name.as_str().to_string();
        Box::pin(async move {
            let text = tokio::fs::read_to_string(&path).await.unwrap_or_default();
            match lookup(&text, &host) {
                Some(ip) => Ok(Box::new(std::iter::once(SocketAddr::new(ip, 0))) as Addrs),
                None => {
                    // Not a Service of the local cluster: the system resolver (e.g. `localhost`).
                    let addrs: Vec<SocketAddr> = tokio::net::lookup_host((host.as_str(), 0))
                        .await
                        .map_err(|e| format!("{host} is neither a ready Service of the local cluster nor resolvable: {e}"))?
                        .collect();
                    Ok(Box::new(addrs.into_iter()) as Addrs)
                }
            }
        })
    }
}

/// The address `host` has in a hosts file's text.
pub fn lookup(hosts: &str, host: &str) -> Option<IpAddr> {
    hosts.lines().find_map(|line| {
        let mut words = line.split_whitespace();
        let ip = words.next()?;
        words.any(|w| w == host).then(|| ip.parse().ok()).flatten()
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn finds_any_name_form_of_a_service() {
        let hosts = "127.0.1.2 f f.ns f.ns.svc f.ns.svc.cluster.local\n127.0.1.3 g g.ns\n";
        assert_eq!(lookup(hosts, "f.ns"), "127.0.1.2".parse().ok());
        assert_eq!(lookup(hosts, "g"), "127.0.1.3".parse().ok());
        assert_eq!(lookup(hosts, "h.ns"), None);
    }
}
