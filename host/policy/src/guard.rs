//! What a tenant's pod-template plugin may not introduce: anything the Kubernetes Pod Security
//! Standards' `baseline` profile forbids (`restricted` when the tenant's guard asks for it),
//! and what only an operator knows to guard: the pods' identity (service account, its token),
//! Secrets the rendered template did not reference, and the labels the operator selects its
//! pods by.
//!
//! The checks follow the reference implementation (`k8s.io/pod-security-admission`, policy
//! level `latest` as of Kubernetes 1.36) control by control, over the pod and every container
//! list (`containers`, `initContainers`, `ephemeralContainers`). Each finding carries the
//! offending value, and a patch is judged by the findings the patched template has that the
//! rendered one did not: what the user's own podTemplate already held is never blamed on the
//! plugin, and changing a value (retargeting an existing hostPath) is a new finding.

use serde::{Deserialize, Serialize};
use serde_json::{Value, json};
use std::collections::BTreeSet;
use std::fmt;

/// A tenant's guard (`guard:` of a podTemplate binding in `policies.yaml`).
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct PodGuard {
    /// The Pod Security Standards profile plugins' templates must keep to.
    #[serde(default)]
    pub level: Level,
    /// Exempts privileged containers and added capabilities (baseline's "Privileged
    /// Containers" and "Capabilities"; restricted's capability rules).
    #[serde(default)]
    pub allow_privileged: bool,
    /// Exempts host networking, PID and IPC namespaces and host ports.
    #[serde(default)]
    pub allow_host_namespaces: bool,
    /// Exempts hostPath volumes.
    #[serde(default)]
    pub allow_host_path: bool,
    /// Lets a plugin change `serviceAccountName` and `automountServiceAccountToken` or add
    /// service-account token projections (the pods' identity in the cluster).
    #[serde(default)]
    pub allow_service_account: bool,
    /// Lets a plugin reference Secrets the rendered template did not (volumes, projections,
    /// environment variables).
    #[serde(default)]
    pub allow_secrets: bool,
}

/// The Pod Security Standards profiles.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Level {
    #[default]
    Baseline,
    Restricted,
}

/// One thing a template holds that the guard forbids: the control, where, and the value.
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord)]
struct Finding {
    at: String,
    value: String,
    why: &'static str,
}

impl fmt::Display for Finding {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}: {} ({})", self.at, self.value, self.why)
    }
}

const CONTAINER_LISTS: [&str; 3] = ["containers", "initContainers", "ephemeralContainers"];

/// Baseline's capabilities allow-list.
const BASELINE_CAPABILITIES: [&str; 13] = [
    "AUDIT_WRITE",
    "CHOWN",
    "DAC_OVERRIDE",
    "FOWNER",
    "FSETID",
    "KILL",
    "MKNOD",
    "NET_BIND_SERVICE",
    "SETFCAP",
    "SETGID",
    "SETPCAP",
    "SETUID",
    "SYS_CHROOT",
];

/// Baseline's safe sysctls (Kubernetes 1.32 to 1.36).
const SAFE_SYSCTLS: [&str; 12] = [
    "kernel.shm_rmid_forced",
    "net.ipv4.ip_local_port_range",
    "net.ipv4.ip_unprivileged_port_start",
    "net.ipv4.tcp_syncookies",
    "net.ipv4.ping_group_range",
    "net.ipv4.ip_local_reserved_ports",
    "net.ipv4.tcp_keepalive_time",
    "net.ipv4.tcp_fin_timeout",
    "net.ipv4.tcp_keepalive_intvl",
    "net.ipv4.tcp_keepalive_probes",
    "net.ipv4.tcp_rmem",
    "net.ipv4.tcp_wmem",
];

const SELINUX_TYPES: [&str; 5] = [
    "",
    "container_t",
    "container_init_t",
    "container_kvm_t",
    "container_engine_t",
];

/// Restricted's volume types.
const RESTRICTED_VOLUMES: [&str; 9] = [
    "configMap",
    "csi",
    "downwardAPI",
    "emptyDir",
    "ephemeral",
    "image",
    "persistentVolumeClaim",
    "projected",
    "secret",
];

/// `CAP_SYS_ADMIN`, `sys_admin` and `SYS_ADMIN` are one capability to a container runtime.
fn capability(name: &str) -> String {
    let upper = name.trim().to_ascii_uppercase();
    upper
        .strip_prefix("CAP_")
        .map(str::to_string)
        .unwrap_or(upper)
}

fn text(value: &Value) -> String {
    value.to_string()
}

/// Collects the findings of one template.
struct Findings<'a> {
    guard: &'a PodGuard,
    found: BTreeSet<Finding>,
}

impl Findings<'_> {
    fn add(&mut self, at: impl Into<String>, value: &Value, why: &'static str) {
        self.found.insert(Finding {
            at: at.into(),
            value: text(value),
            why,
        });
    }

    fn restricted(&self) -> bool {
        self.guard.level == Level::Restricted
    }
}

fn findings(template: &Value, guard: &PodGuard) -> BTreeSet<Finding> {
    let mut f = Findings {
        guard,
        found: BTreeSet::new(),
    };
    let null = Value::Null;
    let spec = template.get("spec").unwrap_or(&null);
    let pod_context = spec.get("securityContext").unwrap_or(&null);

    // Host namespaces (baseline).
    if !guard.allow_host_namespaces {
        for field in ["hostNetwork", "hostPID", "hostIPC"] {
            if let Some(v @ Value::Bool(true)) = spec.get(field) {
                f.add(format!("spec.{field}"), v, "host namespaces");
            }
        }
    }
    // HostProcess, SELinux, seccomp, AppArmor, sysctls at pod level (baseline).
    security_context(&mut f, "spec.securityContext", pod_context);
    if let Some(sysctls) = pod_context.get("sysctls").and_then(Value::as_array) {
        for sysctl in sysctls {
            let name = sysctl.get("name").and_then(Value::as_str).unwrap_or("");
            if !SAFE_SYSCTLS.contains(&name) {
                f.add(
                    "spec.securityContext.sysctls",
                    sysctl,
                    "a sysctl outside the safe set",
                );
            }
        }
    }
    // AppArmor annotations (baseline).
    if let Some(annotations) = template
        .pointer("/metadata/annotations")
        .and_then(Value::as_object)
    {
        for (key, value) in annotations {
            if key.starts_with("container.apparmor.security.beta.kubernetes.io/") {
                let profile = value.as_str().unwrap_or("");
                if !(profile.is_empty()
                    || profile == "runtime/default"
                    || profile.starts_with("localhost/"))
                {
                    f.add(
                        format!("metadata.annotations.{key}"),
                        value,
                        "an AppArmor profile other than runtime/default or localhost/*",
                    );
                }
            }
        }
    }
    // Volumes: hostPath (baseline), types (restricted).
    for volume in spec
        .get("volumes")
        .and_then(Value::as_array)
        .into_iter()
        .flatten()
    {
        let name = volume.get("name").and_then(Value::as_str).unwrap_or("?");
        let at = format!("spec.volumes[{name}]");
        if let Some(host_path) = volume.get("hostPath")
            && !guard.allow_host_path
        {
            f.add(format!("{at}.hostPath"), host_path, "hostPath volumes");
        }
        if f.restricted() {
            let types: Vec<&String> = volume
                .as_object()
                .into_iter()
                .flat_map(|o| o.keys())
                .filter(|k| k.as_str() != "name")
                .collect();
            for kind in types {
                let allowed = RESTRICTED_VOLUMES.contains(&kind.as_str())
                    || (kind == "hostPath" && guard.allow_host_path);
                if !allowed {
                    f.add(
                        format!("{at}.{kind}"),
                        &volume[kind.as_str()],
                        "a volume type the restricted profile does not allow",
                    );
                }
            }
        }
    }
    // Restricted, pod level: run as non-root, not as root's uid.
    if f.restricted() {
        if let Some(v @ Value::Bool(false)) = pod_context.get("runAsNonRoot") {
            f.add("spec.securityContext.runAsNonRoot", v, "running as root");
        }
        if let Some(v) = pod_context
            .get("runAsUser")
            .filter(|v| v.as_i64() == Some(0))
        {
            f.add("spec.securityContext.runAsUser", v, "running as uid 0");
        }
    }
    let windows = spec.pointer("/os/name").and_then(Value::as_str) == Some("windows");
    for list in CONTAINER_LISTS {
        for container in spec
            .get(list)
            .and_then(Value::as_array)
            .into_iter()
            .flatten()
        {
            container_findings(&mut f, list, container, pod_context, windows);
        }
    }
    f.found
}

/// SELinux, seccomp (baseline: not Unconfined), AppArmor and Windows HostProcess of a pod or
/// container security context.
fn security_context(f: &mut Findings, at: &str, context: &Value) {
    if let Some(v @ Value::Bool(true)) = context.pointer("/windowsOptions/hostProcess") {
        f.add(
            format!("{at}.windowsOptions.hostProcess"),
            v,
            "Windows HostProcess",
        );
    }
    if let Some(options) = context.get("seLinuxOptions") {
        let kind = options.get("type").and_then(Value::as_str).unwrap_or("");
        let user = options.get("user").and_then(Value::as_str).unwrap_or("");
        let role = options.get("role").and_then(Value::as_str).unwrap_or("");
        if !SELINUX_TYPES.contains(&kind) || !user.is_empty() || !role.is_empty() {
            f.add(
                format!("{at}.seLinuxOptions"),
                options,
                "an SELinux type, user or role the baseline profile does not allow",
            );
        }
    }
    if let Some(v) = context.pointer("/seccompProfile/type")
        && v.as_str() == Some("Unconfined")
    {
        f.add(
            format!("{at}.seccompProfile.type"),
            v,
            "an unconfined seccomp profile",
        );
    }
    if let Some(v) = context.pointer("/appArmorProfile/type")
        && v.as_str() == Some("Unconfined")
    {
        f.add(
            format!("{at}.appArmorProfile.type"),
            v,
            "an unconfined AppArmor profile",
        );
    }
}

fn container_findings(
    f: &mut Findings,
    list: &str,
    container: &Value,
    pod_context: &Value,
    windows: bool,
) {
    let null = Value::Null;
    let name = container.get("name").and_then(Value::as_str).unwrap_or("?");
    let at = format!("spec.{list}[{name}]");
    let context = container.get("securityContext").unwrap_or(&null);
    let ctx_at = format!("{at}.securityContext");
    let guard = f.guard;
    if !guard.allow_privileged {
        if let Some(v @ Value::Bool(true)) = context.get("privileged") {
            f.add(format!("{ctx_at}.privileged"), v, "privileged containers");
        }
        if let Some(v @ Value::Bool(true)) = context.get("allowPrivilegeEscalation") {
            f.add(
                format!("{ctx_at}.allowPrivilegeEscalation"),
                v,
                "privilege escalation",
            );
        }
        let allowed: &[&str] = if f.restricted() {
            &["NET_BIND_SERVICE"]
        } else {
            &BASELINE_CAPABILITIES
        };
        for added in context
            .pointer("/capabilities/add")
            .and_then(Value::as_array)
            .into_iter()
            .flatten()
        {
            let normalised = added.as_str().map(capability).unwrap_or_default();
            if !allowed.contains(&normalised.as_str()) {
                f.add(
                    format!("{ctx_at}.capabilities.add"),
                    added,
                    "a capability outside the profile's allowed list",
                );
            }
        }
    }
    if !guard.allow_host_namespaces {
        for port in container
            .get("ports")
            .and_then(Value::as_array)
            .into_iter()
            .flatten()
        {
            if let Some(v) = port.get("hostPort").filter(|v| v.as_i64() != Some(0)) {
                f.add(format!("{at}.ports.hostPort"), v, "host ports");
            }
        }
    }
    if let Some(v) = context.get("procMount")
        && v.as_str() != Some("Default")
    {
        f.add(format!("{ctx_at}.procMount"), v, "an unmasked /proc mount");
    }
    security_context(f, &ctx_at, context);
    // Probes and lifecycle hooks may not aim at another host (baseline since 1.34).
    for hook in [
        "livenessProbe",
        "readinessProbe",
        "startupProbe",
        "lifecycle/postStart",
        "lifecycle/preStop",
    ] {
        for handler in ["httpGet", "tcpSocket"] {
            if let Some(v) = container
                .pointer(&format!("/{hook}/{handler}/host"))
                .filter(|v| v.as_str() != Some(""))
            {
                f.add(
                    format!("{at}.{}.{handler}.host", hook.replace('/', ".")),
                    v,
                    "a probe or hook aimed at another host",
                );
            }
        }
    }
    if !f.restricted() {
        return;
    }
    // Restricted, per container (Windows pods are exempt from some, as in the reference).
    if !windows
        && !guard.allow_privileged
        && context.get("allowPrivilegeEscalation") != Some(&Value::Bool(false))
    {
        f.add(
            format!("{ctx_at}.allowPrivilegeEscalation"),
            context.get("allowPrivilegeEscalation").unwrap_or(&null),
            "the restricted profile needs allowPrivilegeEscalation: false",
        );
    }
    let non_root = context
        .get("runAsNonRoot")
        .or_else(|| pod_context.get("runAsNonRoot"));
    if non_root != Some(&Value::Bool(true)) {
        f.add(
            format!("{ctx_at}.runAsNonRoot"),
            non_root.unwrap_or(&null),
            "the restricted profile needs runAsNonRoot: true",
        );
    }
    if let Some(v) = context.get("runAsUser").filter(|v| v.as_i64() == Some(0)) {
        f.add(format!("{ctx_at}.runAsUser"), v, "running as uid 0");
    }
    if !windows {
        let seccomp = context
            .pointer("/seccompProfile/type")
            .or_else(|| pod_context.pointer("/seccompProfile/type"));
        if !matches!(
            seccomp.and_then(Value::as_str),
            Some("RuntimeDefault" | "Localhost")
        ) {
            f.add(
                format!("{ctx_at}.seccompProfile.type"),
                seccomp.unwrap_or(&null),
                "the restricted profile needs a RuntimeDefault or Localhost seccomp profile",
            );
        }
        if !guard.allow_privileged {
            let drops_all = context
                .pointer("/capabilities/drop")
                .and_then(Value::as_array)
                .is_some_and(|d| {
                    d.iter()
                        .any(|c| c.as_str().map(capability).as_deref() == Some("ALL"))
                });
            if !drops_all {
                f.add(
                    format!("{ctx_at}.capabilities.drop"),
                    context.pointer("/capabilities/drop").unwrap_or(&null),
                    "the restricted profile needs every capability dropped (ALL)",
                );
            }
        }
    }
}

/// The service account the pods run as, and whether its token is mounted.
fn identity(template: &Value) -> Value {
    let spec = template.get("spec").unwrap_or(&Value::Null);
    json!({
        "serviceAccountName": spec.get("serviceAccountName").or_else(|| spec.get("serviceAccount")),
        "automountServiceAccountToken": spec.get("automountServiceAccountToken"),
    })
}

/// Every Secret the template references, and every service-account token it projects.
fn secret_references(template: &Value) -> (BTreeSet<String>, BTreeSet<String>) {
    let mut secrets = BTreeSet::new();
    let mut tokens = BTreeSet::new();
    let spec = template.get("spec").unwrap_or(&Value::Null);
    for volume in spec
        .get("volumes")
        .and_then(Value::as_array)
        .into_iter()
        .flatten()
    {
        // Any volume type that names a Secret (`secret`, `azureFile`, `csi`'s and the
        // plugins' `*SecretRef`s, projected sources) or a secrets-store provider class.
        secret_names_in(volume, &mut secrets);
        for source in volume
            .pointer("/projected/sources")
            .and_then(Value::as_array)
            .into_iter()
            .flatten()
        {
            if let Some(token) = source.get("serviceAccountToken") {
                tokens.insert(token.to_string());
            }
        }
    }
    for list in CONTAINER_LISTS {
        for container in spec
            .get(list)
            .and_then(Value::as_array)
            .into_iter()
            .flatten()
        {
            for field in ["env", "envFrom"] {
                if let Some(items) = container.get(field) {
                    secret_names_in(items, &mut secrets);
                }
            }
        }
    }
    (secrets, tokens)
}

/// Every Secret a volume, a projection source or an environment entry names, wherever its
/// type keeps it.
fn secret_names_in(value: &Value, secrets: &mut BTreeSet<String>) {
    match value {
        Value::Object(map) => {
            for (key, item) in map {
                let named = item.get("name").and_then(Value::as_str);
                match (key.as_str(), item.as_str(), named) {
                    ("secretName", Some(name), _) => {
                        secrets.insert(name.to_string());
                    }
                    ("secretProviderClass", Some(name), _) => {
                        secrets.insert(format!("secretProviderClass {name}"));
                    }
                    (key, _, Some(name))
                        if matches!(key, "secret" | "secretRef" | "secretKeyRef")
                            || key.ends_with("SecretRef") =>
                    {
                        secrets.insert(name.to_string());
                    }
                    _ => {}
                }
                secret_names_in(item, secrets);
            }
        }
        Value::Array(items) => items.iter().for_each(|i| secret_names_in(i, secrets)),
        _ => {}
    }
}

/// What `after` breaks that `before` did not: an empty list means the patch is acceptable.
pub fn violations(before: &Value, after: &Value, guard: &PodGuard) -> Vec<String> {
    let existing = findings(before, guard);
    let mut new: Vec<String> = findings(after, guard)
        .difference(&existing)
        .map(|f| format!("{f} is not allowed for this tenant"))
        .collect();
    if !guard.allow_service_account {
        let (old, now) = (identity(before), identity(after));
        for field in ["serviceAccountName", "automountServiceAccountToken"] {
            if old[field] != now[field] {
                new.push(format!(
                    "spec.{field}: changed from {} to {} (the pods' identity in the cluster is not a plugin's to change)",
                    old[field], now[field]
                ));
            }
        }
    }
    let (old_secrets, old_tokens) = secret_references(before);
    let (secrets, tokens) = secret_references(after);
    if !guard.allow_service_account {
        for token in tokens.difference(&old_tokens) {
            new.push(format!(
                "spec.volumes: a projected service-account token {token} (the pods' identity is not a plugin's to hand out)"
            ));
        }
    }
    if !guard.allow_secrets {
        for secret in secrets.difference(&old_secrets) {
            new.push(format!(
                "Secret {secret:?}: referenced by the patch but not by the rendered template (a plugin may not give pods Secrets)"
            ));
        }
    }
    let labels = |t: &Value| {
        t.pointer("/metadata/labels")
            .and_then(Value::as_object)
            .cloned()
            .unwrap_or_default()
    };
    let (old_labels, new_labels) = (labels(before), labels(after));
    for (key, value) in &old_labels {
        if new_labels.get(key) != Some(value) {
            new.push(format!("metadata.labels.{key}: the operator's label was changed or removed (it selects the pods)"));
        }
    }
    new
}

#[cfg(test)]
mod tests {
    use super::*;

    fn rendered() -> Value {
        json!({"metadata": {"labels": {"app": "orders", "component": "taskmanager"}},
               "spec": {"serviceAccountName": "flink",
                        "containers": [{"name": "flink-main-container", "image": "flink:2.3"}],
                        "volumes": [{"name": "data", "hostPath": {"path": "/data"}}]}})
    }

    fn patched(f: impl FnOnce(&mut Value)) -> Value {
        let mut t = rendered();
        f(&mut t);
        t
    }

    fn main_context(t: &mut Value) -> &mut Value {
        &mut t["spec"]["containers"][0]["securityContext"]
    }

    /// Each escalation a hostile plugin tried in the issue, and more: every one is refused by
    /// the default guard (baseline), each for its own control.
    #[test]
    fn every_baseline_control_refuses_its_escalation() {
        type Escalate = Box<dyn Fn(&mut Value)>;
        let escalations: Vec<(&str, Escalate)> = vec![
            (
                "privileged containers",
                Box::new(|t| *main_context(t) = json!({"privileged": true})),
            ),
            (
                "privilege escalation",
                Box::new(|t| *main_context(t) = json!({"allowPrivilegeEscalation": true})),
            ),
            (
                "capability",
                Box::new(|t| *main_context(t) = json!({"capabilities": {"add": ["NET_RAW"]}})),
            ),
            (
                "capability",
                Box::new(|t| {
                    *main_context(t) = json!({"capabilities": {"add": ["cap_sys_admin"]}})
                }),
            ),
            (
                "capability",
                Box::new(|t| *main_context(t) = json!({"capabilities": {"add": ["Sys_Ptrace"]}})),
            ),
            (
                "capability",
                Box::new(|t| *main_context(t) = json!({"capabilities": {"add": ["BPF"]}})),
            ),
            (
                "host namespaces",
                Box::new(|t| t["spec"]["hostPID"] = json!(true)),
            ),
            (
                "host namespaces",
                Box::new(|t| t["spec"]["hostIPC"] = json!(true)),
            ),
            (
                "host namespaces",
                Box::new(|t| t["spec"]["hostNetwork"] = json!(true)),
            ),
            (
                "host ports",
                Box::new(|t| {
                    t["spec"]["containers"][0]["ports"] =
                        json!([{"containerPort": 22, "hostPort": 22}])
                }),
            ),
            (
                "hostPath",
                Box::new(|t| t["spec"]["volumes"][0]["hostPath"]["path"] = json!("/")),
            ),
            (
                "hostPath",
                Box::new(
                    |t| t["spec"]["volumes"] = json!([{"name": "data", "hostPath": {"path": "/data"}}, {"name": "sock", "hostPath": {"path": "/var/run/docker.sock"}}]),
                ),
            ),
            (
                "/proc mount",
                Box::new(|t| *main_context(t) = json!({"procMount": "Unmasked"})),
            ),
            (
                "seccomp",
                Box::new(|t| {
                    t["spec"]["securityContext"] = json!({"seccompProfile": {"type": "Unconfined"}})
                }),
            ),
            (
                "seccomp",
                Box::new(|t| *main_context(t) = json!({"seccompProfile": {"type": "Unconfined"}})),
            ),
            (
                "AppArmor",
                Box::new(|t| *main_context(t) = json!({"appArmorProfile": {"type": "Unconfined"}})),
            ),
            (
                "AppArmor",
                Box::new(
                    |t| t["metadata"]["annotations"] = json!({"container.apparmor.security.beta.kubernetes.io/flink-main-container": "unconfined"}),
                ),
            ),
            (
                "SELinux",
                Box::new(|t| *main_context(t) = json!({"seLinuxOptions": {"type": "spc_t"}})),
            ),
            (
                "SELinux",
                Box::new(|t| {
                    t["spec"]["securityContext"] = json!({"seLinuxOptions": {"user": "system_u"}})
                }),
            ),
            (
                "sysctl",
                Box::new(|t| {
                    t["spec"]["securityContext"] =
                        json!({"sysctls": [{"name": "kernel.core_pattern", "value": "|/x"}]})
                }),
            ),
            (
                "HostProcess",
                Box::new(|t| {
                    t["spec"]["securityContext"] = json!({"windowsOptions": {"hostProcess": true}})
                }),
            ),
            (
                "another host",
                Box::new(|t| {
                    t["spec"]["containers"][0]["livenessProbe"] =
                        json!({"httpGet": {"host": "169.254.169.254", "port": 80}})
                }),
            ),
            (
                "privileged containers",
                Box::new(|t| {
                    t["spec"]["initContainers"] =
                        json!([{"name": "init", "securityContext": {"privileged": true}}])
                }),
            ),
            (
                "privileged containers",
                Box::new(|t| {
                    t["spec"]["ephemeralContainers"] =
                        json!([{"name": "debug", "securityContext": {"privileged": true}}])
                }),
            ),
            (
                "identity",
                Box::new(|t| t["spec"]["serviceAccountName"] = json!("flink-operator")),
            ),
            (
                "identity",
                Box::new(|t| t["spec"]["automountServiceAccountToken"] = json!(true)),
            ),
            (
                "identity",
                Box::new(
                    |t| t["spec"]["volumes"][0] = json!({"name": "data", "projected": {"sources": [{"serviceAccountToken": {"path": "token", "audience": "vault"}}]}}),
                ),
            ),
            (
                "Secret",
                Box::new(|t| {
                    t["spec"]["volumes"][0] =
                        json!({"name": "data", "secret": {"secretName": "operator-webhook-cert"}})
                }),
            ),
            (
                "Secret",
                Box::new(
                    |t| t["spec"]["containers"][0]["env"] = json!([{"name": "T", "valueFrom": {"secretKeyRef": {"name": "other-team-db", "key": "password"}}}]),
                ),
            ),
            (
                "Secret",
                Box::new(|t| {
                    t["spec"]["containers"][0]["envFrom"] =
                        json!([{"secretRef": {"name": "other-team-db"}}])
                }),
            ),
            (
                "Secret",
                Box::new(
                    |t| t["spec"]["volumes"][0] = json!({"name": "data", "azureFile": {"secretName": "storage-key", "shareName": "s"}}),
                ),
            ),
            (
                "Secret",
                Box::new(
                    |t| t["spec"]["volumes"][0] = json!({"name": "data", "csi": {"driver": "x", "nodePublishSecretRef": {"name": "csi-creds"}}}),
                ),
            ),
            (
                "Secret",
                Box::new(
                    |t| t["spec"]["volumes"][0] = json!({"name": "data", "csi": {"driver": "secrets-store.csi.k8s.io", "volumeAttributes": {"secretProviderClass": "vault-all"}}}),
                ),
            ),
            (
                "label",
                Box::new(|t| t["metadata"]["labels"]["app"] = json!("other")),
            ),
        ];
        for (i, (what, escalate)) in escalations.iter().enumerate() {
            let v = violations(&rendered(), &patched(escalate), &PodGuard::default());
            assert_eq!(v.len(), 1, "escalation {i} ({what}): {v:?}");
            let lower = v[0].to_lowercase();
            let key = what.to_lowercase();
            assert!(
                lower.contains(&key)
                    || (key == "identity" && (lower.contains("identity")))
                    || (key == "label" && lower.contains("operator's label")),
                "escalation {i} ({what}): {v:?}"
            );
        }
    }

    #[test]
    fn what_baseline_allows_passes() {
        let fine = patched(|t| {
            *main_context(t) = json!({"capabilities": {"add": ["NET_BIND_SERVICE", "CAP_CHOWN"], "drop": ["ALL"]},
                                      "seccompProfile": {"type": "RuntimeDefault"}, "procMount": "Default",
                                      "seLinuxOptions": {"type": "container_t"}});
            t["spec"]["securityContext"] =
                json!({"sysctls": [{"name": "net.ipv4.tcp_keepalive_time", "value": "60"}]});
            t["spec"]["containers"].as_array_mut().unwrap().push(
                json!({"name": "sidecar", "ports": [{"containerPort": 9000, "hostPort": 0}]}),
            );
            t["spec"]["volumes"]
                .as_array_mut()
                .unwrap()
                .push(json!({"name": "scratch", "emptyDir": {}}));
            t["metadata"]["labels"]["team"] = json!("a");
            t["metadata"]["annotations"] = json!({"container.apparmor.security.beta.kubernetes.io/sidecar": "runtime/default"});
        });
        assert_eq!(
            violations(&rendered(), &fine, &PodGuard::default()),
            Vec::<String>::new()
        );
    }

    #[test]
    fn the_guards_exemptions_allow_what_they_name_and_nothing_else() {
        let host = patched(|t| {
            t["spec"]["hostNetwork"] = json!(true);
            t["spec"]["volumes"][0]["hostPath"]["path"] = json!("/");
            *main_context(t) = json!({"privileged": true});
        });
        assert_eq!(
            violations(&rendered(), &host, &PodGuard::default()).len(),
            3
        );
        let lenient = PodGuard {
            allow_host_namespaces: true,
            allow_host_path: true,
            allow_privileged: true,
            ..PodGuard::default()
        };
        assert!(violations(&rendered(), &host, &lenient).is_empty());
        let identity = patched(|t| t["spec"]["serviceAccountName"] = json!("other"));
        assert!(!violations(&rendered(), &identity, &lenient).is_empty());
        let allowed = PodGuard {
            allow_service_account: true,
            ..PodGuard::default()
        };
        assert!(violations(&rendered(), &identity, &allowed).is_empty());
    }

    #[test]
    fn restricted_also_needs_non_root_no_escalation_seccomp_and_dropped_capabilities() {
        let restricted = PodGuard {
            level: Level::Restricted,
            ..PodGuard::default()
        };
        let sidecar = |context: Value| {
            patched(move |t| {
                t["spec"]["containers"]
                    .as_array_mut()
                    .unwrap()
                    .push(json!({"name": "sidecar", "securityContext": context}));
            })
        };
        let hardened = json!({"allowPrivilegeEscalation": false, "runAsNonRoot": true,
                              "seccompProfile": {"type": "RuntimeDefault"}, "capabilities": {"drop": ["ALL"]}});
        assert_eq!(
            violations(&rendered(), &sidecar(hardened.clone()), &restricted),
            Vec::<String>::new()
        );
        let v = violations(&rendered(), &sidecar(json!({})), &restricted);
        assert_eq!(v.len(), 4, "{v:?}");
        let mut root = hardened.clone();
        root["runAsUser"] = json!(0);
        assert_eq!(
            violations(&rendered(), &sidecar(root), &restricted).len(),
            1
        );
        let mut chown = hardened;
        chown["capabilities"]["add"] = json!(["CHOWN"]);
        assert_eq!(
            violations(&rendered(), &sidecar(chown.clone()), &restricted).len(),
            1
        );
        assert!(violations(&rendered(), &sidecar(chown), &PodGuard::default()).is_empty());
        let nfs = patched(|t| {
            t["spec"]["volumes"]
                .as_array_mut()
                .unwrap()
                .push(json!({"name": "n", "nfs": {"server": "x", "path": "/"}}))
        });
        assert_eq!(violations(&rendered(), &nfs, &restricted).len(), 1);
        assert!(violations(&rendered(), &nfs, &PodGuard::default()).is_empty());
    }

    #[test]
    fn what_the_user_already_had_is_not_blamed_on_the_plugin() {
        let users = patched(|t| t["spec"]["hostNetwork"] = json!(true));
        let plus_label = patched(|t| {
            t["spec"]["hostNetwork"] = json!(true);
            t["metadata"]["labels"]["team"] = json!("a");
        });
        assert!(violations(&users, &plus_label, &PodGuard::default()).is_empty());
    }

    #[test]
    fn guards_read_from_policies_yaml_with_the_old_fields_still_valid() {
        let guard: PodGuard =
            serde_json::from_value(json!({"level": "restricted", "allowHostPath": true})).unwrap();
        assert_eq!(guard.level, Level::Restricted);
        assert!(guard.allow_host_path);
        assert!(serde_json::from_value::<PodGuard>(json!({"level": "privileged"})).is_err());
        assert!(serde_json::from_value::<PodGuard>(json!({"allowEverything": true})).is_err());
    }
}
