//! Keeping secrets out of events, logs, statuses and plugins. A resource carries secrets in
//! plain sight (an `s3.secret-key` in its Flink configuration, a `--password` job argument, a
//! literal env value, a password in a jar URL), the operator's default configuration may too,
//! and Flink, a validation message or a plugin may echo them back. Every event note, logged
//! error and `status.error` about a resource goes through that resource's [`Redactor`], and
//! what a plugin is given (specs, pod templates) has its secrets masked first, so a plugin
//! never holds one to log or return.
//!
//! Not covered (docs/security.md): the rendered Flink configuration ConfigMap holds the values
//! in plain text, as upstream's does; Flink reads them from there.

use serde_json::Value;
use std::collections::BTreeMap;

/// What replaces a secret (Flink's own `GlobalConfiguration.HIDDEN_CONTENT`).
pub const MASK: &str = "******";

/// Whether a Flink configuration key (or an env var, or a job argument name) names a secret:
/// Flink's own rule (`GlobalConfiguration.isSensitive`, 2.x with FLINK-39561: the key, lower
/// case, contains one of its words), the artifact headers upstream's operator sends, and any
/// part that is or ends in `key` (`s3.access-key`, `apikey`; not `keystore`, a path).
pub fn is_sensitive_key(key: &str) -> bool {
    let key = key.to_ascii_lowercase();
    const WORDS: [&str; 17] = [
        // Flink's list.
        "password",
        "secret",
        "fs.azure.account.key",
        "apikey",
        "api-key",
        "auth-params",
        "service-key",
        "token",
        "basic-auth",
        "jaas.config",
        "http-headers",
        "access-key",
        "access.key",
        "accesskey",
        // Ours: credentials, and `kubernetes.operator.user.artifacts.http.header`.
        "credential",
        "http.header",
        "private-key",
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
    /// sensitive Flink configuration keys (flat or nested), the value after (or in) a
    /// sensitive job argument, and literal values of sensitive env vars in the pod templates.
    pub fn of(resource: &Value) -> Redactor {
        let mut secrets = Vec::new();
        let spec = resource.get("spec").unwrap_or(&Value::Null);
        if let Some(config) = spec.get("flinkConfiguration").filter(|c| c.is_object())
            && let Ok(config) =
                serde_json::from_value::<flink_api::FlinkConfiguration>(config.clone())
        {
            secrets.extend(
                config
                    .flat()
                    .into_iter()
                    .filter(|(key, _)| is_sensitive_key(key))
                    .map(|(_, value)| value),
            );
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
            for list in ["containers", "initContainers", "ephemeralContainers"] {
                for container in spec
                    .pointer(&format!("{template}/spec/{list}"))
                    .and_then(Value::as_array)
                    .into_iter()
                    .flatten()
                {
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
        }
        Redactor::from_secrets(secrets)
    }

    fn from_secrets(mut secrets: Vec<String>) -> Redactor {
        secrets.retain(|s| s.len() >= MIN_SECRET_LEN);
        // As an error may quote them: JSON-escaped and Debug-escaped.
        let escaped: Vec<String> = secrets
            .iter()
            .flat_map(|s| {
                let json = serde_json::to_string(s).unwrap_or_default();
                let debug = format!("{s:?}");
                [json, debug].map(|q| q.trim_matches('"').to_string())
            })
            .filter(|e| !secrets.contains(e))
            .collect();
        secrets.extend(escaped);
        secrets.sort_by_key(|s| std::cmp::Reverse(s.len()));
        secrets.dedup();
        Redactor { secrets }
    }

    /// This redactor and the sensitive values of `defaults` (the operator's default Flink
    /// configuration, which every resource starts from).
    pub fn with_defaults(self, defaults: &BTreeMap<String, String>) -> Redactor {
        self.merge(Redactor::from_secrets(
            defaults
                .iter()
                .filter(|(key, _)| is_sensitive_key(key))
                .map(|(_, value)| value.clone())
                .collect(),
        ))
    }

    /// Both redactors' secrets (e.g. an old spec's and a new one's).
    pub fn merge(self, other: Redactor) -> Redactor {
        let mut secrets = self.secrets;
        secrets.extend(other.secrets);
        Redactor::from_secrets(secrets)
    }

    /// `value` with every string scrubbed: what a plugin is given instead of a spec or a pod
    /// template holding secrets.
    pub fn scrub_json(&self, value: &Value) -> Value {
        match value {
            Value::String(s) => Value::String(self.scrub(s)),
            Value::Array(items) => Value::Array(items.iter().map(|i| self.scrub_json(i)).collect()),
            Value::Object(map) => Value::Object(
                map.iter()
                    .map(|(k, v)| (k.clone(), self.scrub_json(v)))
                    .collect(),
            ),
            other => other.clone(),
        }
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
    fn nested_configuration_defaults_and_flinks_new_keys_are_secrets_too() {
        let resource = json!({"spec": {"flinkConfiguration": {
            "s3": {"secret-key": "nested-secret"},
            "fs.oss.accessKeyId": "oss-access-id",
            "kubernetes.operator.user.artifacts.http.header": "Authorization:Bearer jar-token"
        }}});
        let defaults = BTreeMap::from([(
            "fs.s3a.secret.key".to_string(),
            "default-secret".to_string(),
        )]);
        let redactor = Redactor::of(&resource).with_defaults(&defaults);
        assert_eq!(
            redactor
                .scrub("nested-secret oss-access-id Authorization:Bearer jar-token default-secret"),
            "****** ****** ****** ******"
        );
        let spec = json!({"job": {"args": ["--x", "has nested-secret inside"]}, "n": 3});
        assert_eq!(
            redactor.scrub_json(&spec),
            json!({"job": {"args": ["--x", "has ****** inside"]}, "n": 3})
        );
    }

    #[test]
    fn secrets_quoted_with_escapes_are_masked_too() {
        let resource = json!({"spec": {"flinkConfiguration": {"db.password": "pa\"ss\\word"}}});
        let redactor = Redactor::of(&resource);
        let quoted = format!(
            "got {:?} and {}",
            "pa\"ss\\word",
            serde_json::json!("pa\"ss\\word")
        );
        assert_eq!(redactor.scrub(&quoted), "got \"******\" and \"******\"");
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
