//! Where the operator may fetch a session job's jar from: upstream's
//! `kubernetes.operator.user.artifacts.allowed-schemes` (default `https` only) and
//! `kubernetes.operator.user.artifacts.disallow-restricted-hosts` (default true). Pure:
//! validation applies it to the URI as written; the operator's fetch applies it again to every
//! address the host resolves to and to every redirect, so a name that later resolves elsewhere
//! gains nothing.

use crate::validation::ValidationSettings;
use std::net::{IpAddr, Ipv4Addr, Ipv6Addr};
use url::{Host, Url};

/// The upstream key of the allowed schemes.
pub const ALLOWED_SCHEMES_KEY: &str = "kubernetes.operator.user.artifacts.allowed-schemes";
/// The upstream key of the restricted-host switch.
pub const RESTRICTED_HOSTS_KEY: &str =
    "kubernetes.operator.user.artifacts.disallow-restricted-hosts";
/// The upstream key of the headers sent with an HTTP(S) download (`name:value,name:value`).
pub const HTTP_HEADER_KEY: &str = "kubernetes.operator.user.artifacts.http.header";
/// Ours: the hosts the operator ConfigMap's headers are sent to (comma-separated). A tenant
/// names the jar's host, so the administrator's headers (a repository token) go only to the
/// hosts listed here; none by default. A session job's own headers go to its jar's host.
pub const HTTP_HEADER_HOSTS_KEY: &str = "kubernetes.operator.user.artifacts.http.header.hosts";

/// Why the operator will not fetch `uri`, as the rest of a `spec.job.jarURI: ...` message
/// that names the fix; None when it may (subject to where the host resolves at fetch time).
pub fn uri_problem(uri: &str, settings: &ValidationSettings) -> Option<String> {
    let parsed = match Url::parse(uri) {
        Ok(parsed) => parsed,
        Err(e) => {
            return Some(format!(
                "{uri:?} is not a URI ({e}); give the jar's full URI, e.g. `https://repo.example.com/job.jar`"
            ));
        }
    };
    let scheme = parsed.scheme();
    if !settings.session_job_jar_schemes.iter().any(|s| s == scheme) {
        return Some(format!(
            "scheme `{scheme}` is not allowed, got {uri:?}; use one of {} (the allowed schemes are an operator setting, {ALLOWED_SCHEMES_KEY})",
            settings
                .session_job_jar_schemes
                .iter()
                .map(|s| format!("{s}://"))
                .collect::<Vec<_>>()
                .join(", ")
        ));
    }
    if !matches!(scheme, "http" | "https") || !settings.disallow_restricted_hosts {
        return None;
    }
    let why = match parsed.host() {
        None => {
            return Some(format!(
                "{uri:?} names no host; give the server the jar is on"
            ));
        }
        Some(Host::Ipv4(ip)) => restricted(IpAddr::V4(ip)),
        Some(Host::Ipv6(ip)) => restricted(IpAddr::V6(ip)),
        Some(Host::Domain(name)) => {
            let name = name.trim_end_matches('.').to_ascii_lowercase();
            (name == "localhost" || name.ends_with(".localhost")).then_some("a loopback address")
        }
    };
    why.map(|why| restricted_message(uri, parsed.host_str().unwrap_or_default(), why))
}

/// The message for a host that is (or resolves to) a restricted address.
pub fn restricted_message(uri: &str, host: &str, why: &str) -> String {
    format!(
        "{uri:?}: {host} is {why}; the operator does not fetch jars from loopback, link-local, private, shared, wildcard, broadcast or multicast addresses ({RESTRICTED_HOSTS_KEY}); serve the jar from a public address"
    )
}

/// Why the operator never connects to `ip` for a tenant (what upstream refuses and more:
/// unique-local IPv6, shared 100.64/10, the 0/8 "this network" block, and IPv4 embedded in
/// IPv6 as mapped or NAT64 addresses); None for an ordinary public address.
pub fn restricted(ip: IpAddr) -> Option<&'static str> {
    match ip {
        IpAddr::V4(ip) => restricted_v4(ip),
        IpAddr::V6(ip) => restricted_v6(ip),
    }
}

fn restricted_v4(ip: Ipv4Addr) -> Option<&'static str> {
    let [a, b, ..] = ip.octets();
    if ip.is_unspecified() || a == 0 {
        Some("a wildcard (this-network) address")
    } else if ip.is_loopback() {
        Some("a loopback address")
    } else if ip.is_link_local() {
        Some("a link-local address (where cloud metadata services answer)")
    } else if ip.is_private() {
        Some("a private (site-local) address")
    } else if a == 100 && (64..128).contains(&b) {
        Some("a shared (carrier-grade NAT) address")
    } else if a == 198 && (18..20).contains(&b) {
        Some("a benchmarking address (198.18/15, used inside some networks)")
    } else if a == 192 && b == 0 && ip.octets()[2] == 0 {
        Some("an IETF protocol address (192.0.0/24)")
    } else if a >= 240 {
        Some("a reserved address (240/4, used as private space by some clusters)")
    } else if ip.is_multicast() {
        Some("a multicast address")
    } else if ip.is_broadcast() {
        Some("the broadcast address")
    } else {
        None
    }
}

fn restricted_v6(ip: Ipv6Addr) -> Option<&'static str> {
    if let Some(v4) = ip.to_ipv4_mapped() {
        return restricted_v4(v4);
    }
    let segments = ip.segments();
    let v4 = |hi: u16, lo: u16| Ipv4Addr::from(((hi as u32) << 16) | lo as u32);
    // NAT64 (64:ff9b::/96) and IPv4-compatible (::/96, deprecated) addresses carry an IPv4
    // address in their last 32 bits, 6to4 (2002::/16) in the 32 after the prefix.
    if segments[..6] == [0x64, 0xff9b, 0, 0, 0, 0] || (segments[..6] == [0; 6] && segments[6] != 0)
    {
        return restricted_v4(v4(segments[6], segments[7]));
    }
    if segments[0] == 0x2002 {
        return restricted_v4(v4(segments[1], segments[2]));
    }
    if segments[0] == 0x64 && segments[1] == 0xff9b && segments[2] == 1 {
        return Some("a local-use NAT64 address (64:ff9b:1::/48)");
    }
    if segments[0] == 0x2001 && segments[1] == 0 {
        return Some("a Teredo address (2001::/32), which tunnels to an address it hides");
    }
    if ip.is_unspecified() {
        Some("a wildcard address")
    } else if ip.is_loopback() {
        Some("a loopback address")
    } else if ip.is_unicast_link_local() {
        Some("a link-local address")
    } else if segments[0] & 0xffc0 == 0xfec0 {
        Some("a site-local address")
    } else if ip.is_unique_local() {
        Some("a unique-local (private) address")
    } else if ip.is_multicast() {
        Some("a multicast address")
    } else {
        None
    }
}

/// The headers of `kubernetes.operator.user.artifacts.http.header` (`name:value,name:value`,
/// upstream's map format), or what is wrong with the text.
pub fn parse_headers(text: &str) -> Result<Vec<(String, String)>, String> {
    text.split(',')
        .map(str::trim)
        .filter(|entry| !entry.is_empty())
        .map(|entry| {
            let (name, value) = entry.split_once(':').ok_or_else(|| {
                format!("{HTTP_HEADER_KEY}: {entry:?} is not `name:value`; write `name:value,name:value`")
            })?;
            let name = name.trim();
            let valid_name = !name.is_empty()
                && name.bytes().all(|b| b.is_ascii_alphanumeric() || b"!#$%&'*+-.^_`|~".contains(&b));
            let value = value.trim();
            if !valid_name || value.chars().any(char::is_control) {
                return Err(format!(
                    "{HTTP_HEADER_KEY}: {name:?} is not an HTTP header name with a printable value"
                ));
            }
            Ok((name.to_string(), value.to_string()))
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn strict() -> ValidationSettings {
        ValidationSettings::default()
    }

    #[test]
    fn only_https_by_default_with_the_scheme_named() {
        assert_eq!(
            uri_problem("https://repo.example.com/job.jar", &strict()),
            None
        );
        assert_eq!(
            uri_problem("HTTPS://repo.example.com/job.jar", &strict()),
            None
        );
        for uri in [
            "http://repo.example.com/job.jar",
            "file:///etc/passwd",
            "local:///opt/flink/usrlib/job.jar",
            "s3://b/j.jar",
        ] {
            let problem = uri_problem(uri, &strict()).expect(uri);
            assert!(problem.starts_with("scheme `"), "{problem}");
            assert!(problem.contains(ALLOWED_SCHEMES_KEY), "{problem}");
        }
    }

    #[test]
    fn restricted_hosts_are_refused_in_every_spelling_the_url_parser_accepts() {
        for uri in [
            "https://127.0.0.1/j.jar",
            "https://127.1/j.jar",
            "https://2130706433/j.jar",
            "https://0x7f000001/j.jar",
            "https://user@127.0.0.1:8443/j.jar",
            "https://localhost/j.jar",
            "https://LOCALHOST./j.jar",
            "https://api.localhost/j.jar",
            "https://[::1]/j.jar",
            "https://[::ffff:169.254.169.254]/j.jar",
            "https://[64:ff9b::a9fe:a9fe]/j.jar",
            "https://169.254.169.254/latest/meta-data",
            "https://10.0.0.1/j.jar",
            "https://172.31.255.255/j.jar",
            "https://192.168.1.1/j.jar",
            "https://100.100.100.200/j.jar",
            "https://0.0.0.0/j.jar",
            "https://[fd00:ec2::254]/j.jar",
            "https://[fe80::1]/j.jar",
            "https://224.0.0.1/j.jar",
            "https://255.255.255.255/j.jar",
            "https://198.18.0.1/j.jar",
            "https://240.0.0.1/j.jar",
            "https://192.0.0.170/j.jar",
            "https://[::169.254.169.254]/j.jar",
            "https://[2002:a9fe:a9fe::1]/j.jar",
            "https://[64:ff9b:1::a]/j.jar",
            "https://[2001:0:4136:e378:8000:63bf:3fff:fdd2]/j.jar",
        ] {
            let problem = uri_problem(uri, &strict()).unwrap_or_else(|| panic!("{uri} passed"));
            assert!(problem.contains(RESTRICTED_HOSTS_KEY), "{uri}: {problem}");
        }
        assert_eq!(uri_problem("https://93.184.215.14/j.jar", &strict()), None);
        assert_eq!(
            uri_problem("https://[2606:4700::1111]/j.jar", &strict()),
            None
        );
        let open = ValidationSettings {
            disallow_restricted_hosts: false,
            ..strict()
        };
        assert_eq!(uri_problem("https://127.0.0.1/j.jar", &open), None);
    }

    #[test]
    fn headers_read_upstreams_map_format() {
        assert_eq!(
            parse_headers("Authorization: Bearer x, X-Team:a").unwrap(),
            vec![
                ("Authorization".to_string(), "Bearer x".to_string()),
                ("X-Team".to_string(), "a".to_string())
            ]
        );
        assert!(parse_headers("novalue").is_err());
        assert!(parse_headers("Bad Name:x").is_err());
    }
}
