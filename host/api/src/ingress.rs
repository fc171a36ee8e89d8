//! `spec.ingress.template` read as upstream reads it: the only placeholders are `{{name}}` and
//! `{{namespace}}` (any case), the result is read as a URL (`http://` is assumed when no scheme
//! is given), and only its host and path are used (scheme, port and user are dropped). One
//! rule for validation and rendering, so a template `validate` accepts always renders.
//!
//! ```
//! use flink_api::ingress::{IngressRule, ingress_rule};
//! assert_eq!(
//!     ingress_rule("flink.k8s.io/{{namespace}}/{{name}}(/|$)(.*)", "orders", "team-a"),
//!     Ok(IngressRule { host: Some("flink.k8s.io".into()), path: Some("/team-a/orders(/|$)(.*)".into()) })
//! );
//! ```

/// The host and path of an Ingress rule; either may be absent, not both.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct IngressRule {
    pub host: Option<String>,
    pub path: Option<String>,
}

/// The rule `template` makes for the resource `name` in `namespace`; Err says what is wrong
/// with the template (and how to write it).
pub fn ingress_rule(template: &str, name: &str, namespace: &str) -> Result<IngressRule, String> {
    let template = template.trim();
    if template.is_empty() {
        return Err("is empty; set a host or path template, e.g. `{{name}}.{{namespace}}.example.com` or `/{{namespace}}/{{name}}(/|$)(.*)`".into());
    }
    let filled = replace_ignoring_case(
        &replace_ignoring_case(template, "{{name}}", name),
        "{{namespace}}",
        namespace,
    );
    let rest = ["http://", "https://"]
        .iter()
        .find_map(|scheme| {
            filled
                .get(..scheme.len())
                .filter(|s| s.eq_ignore_ascii_case(scheme))
                .map(|_| &filled[scheme.len()..])
        })
        .unwrap_or(&filled);
    let authority_end = rest.find(['/', '?', '#']).unwrap_or(rest.len());
    let authority = &rest[..authority_end];
    let host_port = authority.rsplit_once('@').map_or(authority, |(_, h)| h);
    let host = match host_port.rsplit_once(':') {
        Some((host, port)) if !host_port.ends_with(']') => {
            if !port.is_empty() && !port.bytes().all(|b| b.is_ascii_digit()) {
                return Err(format!(
                    "has a port that is not a number ({port:?} in {template:?}); the template is a host and/or path, e.g. `{{{{name}}}}.example.com/{{{{namespace}}}}`"
                ));
            }
            host
        }
        _ => host_port,
    };
    if let Some(bad) = host
        .chars()
        .find(|c| !(c.is_ascii_alphanumeric() || matches!(c, '.' | '-' | '*' | '[' | ']' | ':')))
    {
        return Err(format!(
            "makes the host {host:?}, which has {bad:?}; a host is DNS labels (letters, digits, `-`, `.`); start the template with `/` for a path only"
        ));
    }
    let after = &rest[authority_end..];
    let path_end = after.find(['?', '#']).unwrap_or(after.len());
    let path = after[..path_end].to_string();
    let rule = IngressRule {
        host: (!host.is_empty()).then(|| host.to_ascii_lowercase()),
        path: (!path.is_empty()).then_some(path),
    };
    if rule.host.is_none() && rule.path.is_none() {
        return Err(format!(
            "makes neither a host nor a path ({template:?}); e.g. `{{{{name}}}}.{{{{namespace}}}}.example.com` or `/{{{{namespace}}}}/{{{{name}}}}`"
        ));
    }
    Ok(rule)
}

/// `text` with every `pattern` (ASCII, matched in any case) replaced by `with`.
fn replace_ignoring_case(text: &str, pattern: &str, with: &str) -> String {
    let lower = text.to_ascii_lowercase();
    let mut out = String::with_capacity(text.len());
    let mut from = 0;
    while let Some(found) = lower[from..].find(pattern) {
        out.push_str(&text[from..from + found]);
        out.push_str(with);
        from += found + pattern.len();
    }
    out.push_str(&text[from..]);
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    fn rule(template: &str) -> Result<(Option<String>, Option<String>), String> {
        ingress_rule(template, "basic-ingress", "default").map(|r| (r.host, r.path))
    }

    fn some(s: &str) -> Option<String> {
        Some(s.to_string())
    }

    #[test]
    fn templates_read_as_upstream_reads_them() {
        // Upstream's IngressUtilsTest and ingress documentation.
        assert_eq!(
            rule("flink.k8s.io/{{namespace}}/{{name}}"),
            Ok((some("flink.k8s.io"), some("/default/basic-ingress")))
        );
        assert_eq!(
            rule("/{{namespace}}/{{name}}"),
            Ok((None, some("/default/basic-ingress")))
        );
        assert_eq!(
            rule("{{name}}.{{namespace}}.flink.k8s.io"),
            Ok((some("basic-ingress.default.flink.k8s.io"), None))
        );
        assert_eq!(
            rule("{{name}}.{{namespace}}.flink.k8s.io/"),
            Ok((some("basic-ingress.default.flink.k8s.io"), some("/")))
        );
        assert_eq!(
            rule("flink.k8s.io/{{namespace}}/{{name}}(/|$)(.*)"),
            Ok((
                some("flink.k8s.io"),
                some("/default/basic-ingress(/|$)(.*)")
            ))
        );
        assert_eq!(
            rule("https://user@{{NAME}}.example.com:8443/ui?x=1"),
            Ok((some("basic-ingress.example.com"), some("/ui")))
        );
    }

    #[test]
    fn a_template_that_is_no_url_names_the_problem() {
        let port = rule("example.com:port").unwrap_err();
        assert!(port.contains("port that is not a number"), "{port}");
        let spaces = rule("my host/{{name}}").unwrap_err();
        assert!(spaces.contains("which has ' '"), "{spaces}");
        assert!(rule("  ").unwrap_err().contains("is empty"));
        assert!(
            rule("http://")
                .unwrap_err()
                .contains("neither a host nor a path")
        );
    }
}
