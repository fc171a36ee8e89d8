//! Keeping secrets out of events and logs. A resource carries secrets in plain sight (an
//! `s3.secret-key` in its Flink configuration, a `--password` job argument, a literal env value,
//! a password in a jar URL), and Flink or a validation message may echo them back. Every event
//! note and every logged error about a resource goes through that resource's [`Redactor`].

use serde_json::Value;

/// What replaces a secret.
pub const MASK: &str = "******";

/// Whether a Flink configuration key (or an env var, or a job argument name) names a secret:
/// it mentions a password, secret, token or credential, or a part of it is or ends in `key`
/// (`s3.access-key`, `fs.azure.account.key`, `apikey`; not `keystore`, whose value is a path).
pub fn is_sensitive_key(key: &str) -> bool {
    let key = key.to_ascii_lowercase();
    const WORDS: [&str; 8] = [
        "password",
        "secret",
        "token",
        "credential",
        "jaas.config",
        "auth-params",
        "basic-auth",
        "http-headers",
    ];
    WORDS.iter().any(|w| key.contains(w))
        || key.split(['.', '-', '_']).any(|part| part.ends_with("key"))
}

/// The secrets of one resource, and the scrubbing of any text about it.
#[derive(Debug, Default, Clone)]
pub struct Redactor {
    /// Longest first, so a secret that contains another is masked whole.
    secrets: Vec<String>,
}

/// Values shorter than this are not masked: masking `1` or `on` everywhere hides more than
/// it protects.
const MIN_SECRET_LEN: usize = 4;

impl Redactor {
    /// The secrets in a resource as JSON (FlinkDeployment, FlinkSessionJob): the values of
    /// sensitive Flink configuration keys, the value after (or in) a sensitive job argument,
    /// and literal values of sensitive env vars in the pod templates.
    pub fn of(resource: &Value) -> Redactor {
        let mut secrets = Vec::new();
        let spec = resource.get("spec").unwrap_or(&Value::Null);
        if let Some(config) = spec.get("flinkConfiguration").and_then(Value::as_object) {
            for (key, value) in config {
                if is_sensitive_key(key) {
                    secrets.push(text(value));
                }
            }
        }
        if let Some(args) = spec.pointer("/job/args").and_then(Value::as_array) {
            let args: Vec<String> = args.iter().map(text).collect();
            for (i, arg) in args.iter().enumerate() {
                let name = arg.trim_start_matches('-');
                if let Some((name, value)) = name.split_once('=') {
                    if arg.starts_with('-') && is_sensitive_key(name) {
                        secrets.push(value.to_string());
                    }
                } else if arg.starts_with('-')
                    && is_sensitive_key(name)
                    && let Some(value) = args.get(i + 1)
                {
                    secrets.push(value.clone());
                }
            }
        }
        for template in [
            "/podTemplate",
            "/jobManager/podTemplate",
            "/taskManager/podTemplate",
        ] {
            let containers = spec
                .pointer(&format!("{template}/spec/containers"))
                .into_iter()
                .chain(spec.pointer(&format!("{template}/spec/initContainers")))
                .filter_map(Value::as_array)
                .flatten();
            for container in containers {
                for env in container
                    .get("env")
                    .and_then(Value::as_array)
                    .into_iter()
                    .flatten()
                {
                    if env
                        .get("name")
                        .and_then(Value::as_str)
                        .is_some_and(is_sensitive_key)
                        && let Some(value) = env.get("value").and_then(Value::as_str)
                    {
                        secrets.push(value.to_string());
                    }
                }
            }
        }
        secrets.retain(|s| s.len() >= MIN_SECRET_LEN);
        secrets.sort_by_key(|s| std::cmp::Reverse(s.len()));
        secrets.dedup();
        Redactor { secrets }
    }

    /// The redactor of a typed resource (nothing to mask if it does not serialize).
    pub fn for_resource(resource: &impl serde::Serialize) -> Redactor {
        serde_json::to_value(resource)
            .map(|r| Redactor::of(&r))
            .unwrap_or_default()
    }

    /// `text` with the resource's secrets and any URL password (`scheme://user:PASSWORD@host`)
    /// masked.
    pub fn scrub(&self, text: &str) -> String {
        let mut out = scrub_url_passwords(text);
        for secret in &self.secrets {
            if out.contains(secret.as_str()) {
                out = out.replace(secret.as_str(), MASK);
            }
        }
        out
    }
}

fn text(value: &Value) -> String {
    match value {
        Value::String(s) => s.clone(),
        other => other.to_string(),
    }
}

/// Masks the password of every `scheme://user:password@` in `text`.
fn scrub_url_passwords(text: &str) -> String {
    let mut out = String::with_capacity(text.len());
    let mut rest = text;
    while let Some(at) = rest.find("://") {
        let (before, after) = rest.split_at(at + 3);
        out.push_str(before);
        // The authority ends at the first `/`, `?`, `#` or whitespace.
        let end = after
            .find(|c: char| matches!(c, '/' | '?' | '#') || c.is_whitespace() || c == '"')
            .unwrap_or(after.len());
        let authority = &after[..end];
        match authority.rfind('@').and_then(|at| {
            let userinfo = &authority[..at];
            userinfo.find(':').map(|colon| (colon, at))
        }) {
            Some((colon, at)) => {
                out.push_str(&authority[..=colon]);
                out.push_str(MASK);
                out.push_str(&authority[at..]);
            }
            None => out.push_str(authority),
        }
        rest = &after[end..];
    }
    out.push_str(rest);
    out
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn keys_that_name_secrets_are_sensitive_and_ordinary_ones_are_not() {
        for key in [
            "s3.secret-key",
            "s3.access-key",
            "fs.azure.account.key.acct.blob.core.windows.net",
            "security.ssl.rest.keystore-password",
            "metrics.reporter.dd.apikey",
            "kafka.sasl.jaas.config",
            "DB_PASSWORD",
            "github-token",
        ] {
            assert!(is_sensitive_key(key), "{key}");
        }
        for key in [
            "taskmanager.numberOfTaskSlots",
            "security.ssl.rest.keystore",
            "state.savepoints.dir",
            "pipeline.max-parallelism",
            "high-availability.cluster-id",
        ] {
            assert!(!is_sensitive_key(key), "{key}");
        }
    }

    #[test]
    fn a_deployments_secrets_are_masked_wherever_they_are_echoed() {
        let resource = json!({"spec": {
            "flinkConfiguration": {
                "s3.secret-key": "hunter2-s3",
                "s3.access-key": "AKIAEXAMPLE",
                "taskmanager.numberOfTaskSlots": "2",
                "security.ssl.enabled": "true"
            },
            "job": {"args": ["--input", "orders", "--db-password", "hunter2-db", "--token=hunter2-tok"]},
            "taskManager": {"podTemplate": {"spec": {"containers": [{"name": "flink-main-container",
                "env": [{"name": "API_SECRET", "value": "hunter2-env"}, {"name": "REGION", "value": "eu-west-1"}]}]}}}
        }});
        let redactor = Redactor::of(&resource);
        let message = "S3 refused AKIAEXAMPLE/hunter2-s3; args --db-password hunter2-db --token=hunter2-tok; env hunter2-env; 2 slots in eu-west-1, ssl true, input orders";
        assert_eq!(
            redactor.scrub(message),
            "S3 refused ******/******; args --db-password ****** --token=******; env ******; 2 slots in eu-west-1, ssl true, input orders"
        );
    }

    #[test]
    fn url_passwords_are_masked_and_the_rest_of_the_url_kept() {
        let redactor = Redactor::default();
        assert_eq!(
            redactor.scrub(
                r#"cannot fetch "ftp://deployer:s3cr:et@repo.example.com/jobs/a.jar": refused; see https://flink.apache.org/x"#
            ),
            r#"cannot fetch "ftp://deployer:******@repo.example.com/jobs/a.jar": refused; see https://flink.apache.org/x"#
        );
        assert_eq!(
            redactor.scrub("https://token@host/x and s3://bucket/p"),
            "https://token@host/x and s3://bucket/p",
            "a user without a password is not a secret here"
        );
    }
}
