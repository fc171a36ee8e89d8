//! Tenant bindings: which plugin decides what for whom, and how a new set of bindings becomes
//! active without ever leaving a tenant with a broken plugin.
//!
//! The policies ConfigMap's `policies.yaml`:
//! ```yaml
//! tenantLabel: example.com/tenant        # names the tenant in a shared namespace
//! tenants:
//! - name: team-a
//!   namespaces: [team-a, team-a-staging]  # team-a's alone: every resource here is team-a's
//!   sharedNamespaces: [analytics]         # shared: a resource names team-a by tenantLabel
//!   podTemplate:
//!     plugin: connector-pod-template     # <plugin>.wasm in the plugin directory or binaryData
//!     sha256: 3f5c…                      # the pin: other bytes are never run
//!     config: {connectors: [...]}
//!     limits: {fuel: 50000000, deadlineMs: 300}
//!     guard: {allowHostPath: false}
//! ```
//!
//! [`activate`] turns a parsed config into [`ActivePolicies`] one binding at a time: read the
//! bytes, check the pin, compile off the async runtime, check the shape, `validate-config`,
//! one smoke call on a realistic sample. A binding that fails any step keeps the previous good
//! version of that binding (if there was one) and says why in its [`BindingReport`]; other
//! bindings are not held back by it.

use crate::contract::samples;
use crate::engine::{CallFailure, Digest, Plugin, PolicyEngine};
use crate::guard::PodGuard;
use crate::limits::{LimitOverrides, Limits};
use crate::model::ExtensionPoint;
use serde::{Deserialize, Serialize};
use serde_json::Value;
use std::collections::{BTreeMap, BTreeSet};
use std::path::PathBuf;
use std::sync::Arc;
use std::sync::atomic::{AtomicI64, AtomicU32, Ordering::Relaxed};

/// The ConfigMap key that holds the bindings.
pub const CONFIG_KEY: &str = "policies.yaml";

#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct PolicyConfig {
    #[serde(default)]
    pub tenant_label: Option<String>,
    #[serde(default)]
    pub tenants: Vec<Tenant>,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct Tenant {
    pub name: String,
    /// This tenant's own namespaces: every resource in them is the tenant's, whatever its
    /// labels say (nobody there can opt out of the tenant's policies or claim another's).
    #[serde(default)]
    pub namespaces: Vec<String>,
    /// Namespaces the tenant shares with others: a resource there names its tenant with
    /// `tenantLabel`, among the tenants that share the namespace.
    #[serde(default)]
    pub shared_namespaces: Vec<String>,
    #[serde(default)]
    pub scaling: Option<Binding>,
    #[serde(default)]
    pub upgrade: Option<Binding>,
    #[serde(default)]
    pub pod_template: Option<Binding>,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct Binding {
    /// The plugin's name: `<plugin>.wasm` in the plugin directory or the ConfigMap's binaryData.
    pub plugin: String,
    /// The sha256 of the plugin's bytes (hex, with or without `sha256:`).
    pub sha256: String,
    #[serde(default)]
    pub config: Value,
    #[serde(default)]
    pub limits: LimitOverrides,
    /// Pod templates only: what the plugin's patches may introduce.
    #[serde(default)]
    pub guard: PodGuard,
    /// Scaling only: what happens when the tenant's usage cannot be read (the plugin is not
    /// asked with a made-up number).
    #[serde(default)]
    pub on_unknown_usage: UnknownUsage,
    /// Upgrade only: how long a blue/green transition keeps the old child running once the
    /// new one is ready (a dual-running window), when longer than the resource's deletion
    /// delay.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub dual_running_seconds: Option<u64>,
}

/// A scaling binding's choice when the tenant's usage cannot be read.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub enum UnknownUsage {
    /// No scaling until it can (fail closed): right for a quota.
    #[default]
    Veto,
    /// The built-in autoscaler's decision applies (fail open).
    Follow,
}

impl Tenant {
    pub fn binding(&self, point: ExtensionPoint) -> Option<&Binding> {
        match point {
            ExtensionPoint::Scaling => self.scaling.as_ref(),
            ExtensionPoint::Upgrade => self.upgrade.as_ref(),
            ExtensionPoint::PodTemplate => self.pod_template.as_ref(),
        }
    }
}

fn field(point: ExtensionPoint) -> &'static str {
    match point {
        ExtensionPoint::Scaling => "scaling",
        ExtensionPoint::Upgrade => "upgrade",
        ExtensionPoint::PodTemplate => "podTemplate",
    }
}

impl PolicyConfig {
    /// Reads `policies.yaml` (YAML or JSON). Every problem is reported with its path, e.g.
    /// `tenants[1].podTemplate.sha256: "abc" is not a sha256 (64 hex digits) …`.
    pub fn parse(text: &str) -> Result<PolicyConfig, Vec<String>> {
        let value: Value = serde_saphyr::from_str(text)
            .map_err(|e| vec![format!("{CONFIG_KEY}: not YAML: {e}")])?;
        let value = if value.is_null() {
            Value::Object(Default::default())
        } else {
            value
        };
        let config: PolicyConfig = serde_path_to_error::deserialize(value)
            .map_err(|e| vec![format!("{CONFIG_KEY}: {}: {}", e.path(), e.inner())])?;
        let problems = config.problems();
        if problems.is_empty() {
            Ok(config)
        } else {
            Err(problems)
        }
    }

    fn problems(&self) -> Vec<String> {
        let mut problems = Vec::new();
        let mut names = BTreeSet::new();
        let mut owners: BTreeMap<&str, &str> = BTreeMap::new();
        for (i, tenant) in self.tenants.iter().enumerate() {
            if tenant.name.is_empty() || !names.insert(tenant.name.as_str()) {
                problems.push(format!("tenants[{i}].name: {:?} is empty or used twice; each tenant needs its own name", tenant.name));
            }
            for namespace in &tenant.namespaces {
                if let Some(other) = owners.get(namespace.as_str()) {
                    problems.push(format!(
                        "tenants[{i}].namespaces: {namespace} already belongs to tenant {other}; a namespace has one tenant (list it under sharedNamespaces of each tenant that shares it)"
                    ));
                } else {
                    owners.insert(namespace, &tenant.name);
                }
            }
            if !tenant.shared_namespaces.is_empty() && self.tenant_label.is_none() {
                problems.push(format!(
                    "tenants[{i}].sharedNamespaces: a shared namespace needs tenantLabel, the label that names a resource's tenant there"
                ));
            }
            for point in ExtensionPoint::ALL {
                let Some(binding) = tenant.binding(point) else {
                    continue;
                };
                let at = format!("tenants[{i}].{}", field(point));
                let safe = !binding.plugin.is_empty()
                    && binding
                        .plugin
                        .bytes()
                        .all(|b| b.is_ascii_alphanumeric() || b"-_.".contains(&b))
                    && !binding.plugin.starts_with('.');
                if !safe {
                    problems.push(format!("{at}.plugin: {:?} must be a file name without a path (letters, digits, - _ .), e.g. connector-pod-template", binding.plugin));
                }
                let hex = binding.sha256.trim_start_matches("sha256:");
                if hex.len() != 64 || !hex.bytes().all(|b| b.is_ascii_hexdigit()) {
                    problems.push(format!(
                        "{at}.sha256: {:?} is not a sha256 (64 hex digits); `flink-operator plugin check FILE` prints a plugin's digest",
                        binding.sha256
                    ));
                }
                if point != ExtensionPoint::PodTemplate && binding.guard != PodGuard::default() {
                    problems.push(format!(
                        "{at}.guard: only podTemplate bindings have a guard"
                    ));
                }
                if point != ExtensionPoint::Upgrade && binding.dual_running_seconds.is_some() {
                    problems.push(format!(
                        "{at}.dualRunningSeconds: only upgrade bindings decide blue/green cut-overs"
                    ));
                }
                if point != ExtensionPoint::Scaling
                    && binding.on_unknown_usage != UnknownUsage::default()
                {
                    problems.push(format!(
                        "{at}.onUnknownUsage: only scaling bindings read the tenant's usage"
                    ));
                }
            }
        }
        for (i, tenant) in self.tenants.iter().enumerate() {
            for namespace in &tenant.shared_namespaces {
                if let Some(owner) = owners.get(namespace.as_str()) {
                    problems.push(format!(
                        "tenants[{i}].sharedNamespaces: {namespace} is tenant {owner}'s own namespace; share it from every tenant's sharedNamespaces instead"
                    ));
                }
            }
        }
        problems
    }

    /// The tenant a resource in `namespace` with `labels` belongs to. In a tenant's own
    /// namespace, that tenant (labels cannot change it); in a shared namespace, the sharing
    /// tenant `tenantLabel` names, and an error naming the label and the choices when it names
    /// none of them (the operator then holds the resource: nobody escapes their tenant's
    /// policies by leaving the label out); elsewhere, none.
    pub fn tenant_of(
        &self,
        namespace: &str,
        labels: &BTreeMap<String, String>,
    ) -> Result<Option<&Tenant>, String> {
        if let Some(owner) = self
            .tenants
            .iter()
            .find(|t| t.namespaces.iter().any(|n| n == namespace))
        {
            return Ok(Some(owner));
        }
        let sharing: Vec<&Tenant> = self
            .tenants
            .iter()
            .filter(|t| t.shared_namespaces.iter().any(|n| n == namespace))
            .collect();
        if sharing.is_empty() {
            return Ok(None);
        }
        let label = self.tenant_label.as_deref().unwrap_or_default();
        let named = labels.get(label);
        sharing
            .iter()
            .find(|t| Some(&t.name) == named)
            .map(|t| Some(*t))
            .ok_or_else(|| {
                format!(
                    "{} in namespace {namespace}, which tenants share; set the label {label} to one of {}",
                    named.map_or("is not set".to_string(), |v| format!("names {v:?}, which is not a tenant sharing it,")),
                    sharing
                        .iter()
                        .map(|t| t.name.as_str())
                        .collect::<Vec<_>>()
                        .join(", ")
                )
            })
    }
}

/// Where plugin bytes come from.
#[derive(Debug, Clone, Default)]
pub struct PluginSource {
    /// The ConfigMap's binaryData (`<plugin>.wasm` → bytes), looked at first.
    pub binary_data: BTreeMap<String, Vec<u8>>,
    /// The plugin directory (a volume), if any. Symlinks are followed, so a ConfigMap volume's
    /// `..data` swap is read as the new version.
    pub directory: Option<PathBuf>,
}

impl PluginSource {
    pub fn read(&self, plugin: &str) -> Result<Vec<u8>, String> {
        let file = format!("{plugin}.wasm");
        if let Some(bytes) = self.binary_data.get(&file) {
            return Ok(bytes.clone());
        }
        match &self.directory {
            Some(dir) => std::fs::read(dir.join(&file)).map_err(|e| {
                format!(
                    "{file} is not in the policies ConfigMap's binaryData, and {}: {e}",
                    dir.join(&file).display()
                )
            }),
            None => Err(format!(
                "{file} is not in the policies ConfigMap's binaryData (and no plugin directory is configured)"
            )),
        }
    }
}

/// Stops calling a plugin that keeps failing: after `THRESHOLD` failures in a row, calls are
/// skipped (the fallback applies at once) until `COOLDOWN_MS` passed; then one call is tried.
#[derive(Debug, Default)]
pub struct Breaker {
    failures: AtomicU32,
    open_until_ms: AtomicI64,
}

impl Breaker {
    pub const THRESHOLD: u32 = 5;
    pub const COOLDOWN_MS: i64 = 60_000;
    /// Why a call was skipped while the breaker is open.
    pub const PAUSED: &'static str =
        "the plugin failed 5 times in a row and is paused for a minute";

    /// Whether to call the plugin now.
    pub fn allows(&self, now_ms: i64) -> bool {
        now_ms >= self.open_until_ms.load(Relaxed)
    }

    pub fn record(&self, succeeded: bool, now_ms: i64) {
        if succeeded {
            self.failures.store(0, Relaxed);
            self.open_until_ms.store(0, Relaxed);
            return;
        }
        let failures = self.failures.fetch_add(1, Relaxed) + 1;
        if failures >= Self::THRESHOLD {
            self.open_until_ms
                .store(now_ms + Self::COOLDOWN_MS, Relaxed);
        }
    }
}

/// A binding in use: the loaded plugin and everything a call needs.
#[derive(Debug)]
pub struct ActiveBinding {
    pub tenant: String,
    pub point: ExtensionPoint,
    pub plugin: Arc<Plugin>,
    pub config: Value,
    pub limits: Limits,
    pub guard: PodGuard,
    pub on_unknown_usage: UnknownUsage,
    /// Upgrade only: the blue/green dual-running window (zero: none).
    pub dual_running: std::time::Duration,
    pub breaker: Breaker,
    /// What the binding was activated from, to tell an unchanged binding on the next reload.
    source: Binding,
}

/// How one binding fared in the last activation.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct BindingReport {
    pub tenant: String,
    pub extension_point: ExtensionPoint,
    pub plugin: String,
    /// The digest now in use for this binding (the new one, or the last good one).
    pub active_digest: Option<Digest>,
    /// Why the new version was not activated.
    pub error: Option<String>,
}

/// The bindings in effect: swapped as a whole (`Arc`), so a call in flight finishes on the
/// version it started with.
#[derive(Debug, Default)]
pub struct ActivePolicies {
    pub config: PolicyConfig,
    pub bindings: BTreeMap<(String, ExtensionPoint), Arc<ActiveBinding>>,
    pub reports: Vec<BindingReport>,
    /// Problems with the configuration as a whole (then the previous config stays in effect).
    pub config_errors: Vec<String>,
}

impl ActivePolicies {
    /// The binding that decides `point` for a resource, if its tenant has one active.
    pub fn binding_for(
        &self,
        namespace: &str,
        labels: &BTreeMap<String, String>,
        point: ExtensionPoint,
    ) -> Option<Arc<ActiveBinding>> {
        // An unresolved tenant has no binding here; the operator refuses the resource itself.
        let tenant = self.config.tenant_of(namespace, labels).ok()??;
        self.bindings.get(&(tenant.name.clone(), point)).cloned()
    }

    /// The error reported for a tenant's binding, if its latest version is not the one in use.
    pub fn error_for(&self, tenant: &str, point: ExtensionPoint) -> Option<&str> {
        self.reports
            .iter()
            .find(|r| r.tenant == tenant && r.extension_point == point)
            .and_then(|r| r.error.as_deref())
    }

    /// A config that does not parse: everything stays as it was, with the reasons.
    pub fn keep_with_errors(previous: &ActivePolicies, errors: Vec<String>) -> ActivePolicies {
        ActivePolicies {
            config: previous.config.clone(),
            bindings: previous.bindings.clone(),
            reports: previous.reports.clone(),
            config_errors: errors,
        }
    }
}

/// Checks one binding end to end; the plugin ready to use, or why not.
async fn check(
    engine: &Arc<PolicyEngine>,
    point: ExtensionPoint,
    binding: &Binding,
    source: &PluginSource,
    maxima: &Limits,
) -> Result<(Arc<Plugin>, Limits), String> {
    let bytes = source.read(&binding.plugin)?;
    let digest = Digest::of(&bytes);
    let pinned = binding
        .sha256
        .trim_start_matches("sha256:")
        .to_ascii_lowercase();
    if digest.hex() != pinned {
        return Err(format!(
            "{}.wasm has digest {digest} but the binding pins sha256:{pinned}; review the new plugin, then update the pin",
            binding.plugin
        ));
    }
    let name = binding.plugin.clone();
    let loader = engine.clone();
    let plugin = tokio::task::spawn_blocking(move || loader.load(&name, &bytes))
        .await
        .map_err(|e| format!("loading {}.wasm stopped: {e}", binding.plugin))?
        .map_err(|e| e.to_string())?;
    if plugin.shape.extension_point != point {
        return Err(format!(
            "{} implements {}, but is bound as {}; bind it under {}",
            binding.plugin,
            plugin.shape.world,
            point.world(),
            field(plugin.shape.extension_point)
        ));
    }
    let limits = binding.limits.resolve(point, maxima);
    match engine
        .validate_config(&plugin, &binding.config, &limits)
        .await
    {
        Ok(called) => called
            .value
            .map_err(|message| format!("{} refuses its config: {message}", binding.plugin))?,
        Err(failure) => return Err(format!("{} validate-config {failure}", binding.plugin)),
    }
    let (sample_name, sample) = samples(point, &binding.config)
        .into_iter()
        .next()
        .ok_or("no sample")?;
    engine
        .call_sample(&plugin, &sample, &limits)
        .await
        .map_err(|failure: CallFailure| {
            format!(
                "{} failed its smoke call on {sample_name}: the plugin {failure}",
                binding.plugin
            )
        })?;
    Ok((plugin, limits))
}

/// Activates `config`: every binding checked, failures kept at their last good version.
pub async fn activate(
    engine: &Arc<PolicyEngine>,
    config: PolicyConfig,
    source: &PluginSource,
    previous: &ActivePolicies,
    maxima: &Limits,
) -> ActivePolicies {
    let mut bindings = BTreeMap::new();
    let mut reports = Vec::new();
    for tenant in &config.tenants {
        for point in ExtensionPoint::ALL {
            let Some(binding) = tenant.binding(point) else {
                continue;
            };
            let key = (tenant.name.clone(), point);
            let before = previous.bindings.get(&key);
            if let Some(active) = before.filter(|a| {
                &a.source == binding && a.limits == binding.limits.resolve(point, maxima)
            }) {
                // The binding asks for exactly what is active (unchanged, or back to the last
                // good version after a rejected one): reused if its file still has those bytes.
                if source
                    .read(&binding.plugin)
                    .is_ok_and(|bytes| Digest::of(&bytes) == active.plugin.digest)
                {
                    reports.push(BindingReport {
                        tenant: tenant.name.clone(),
                        extension_point: point,
                        plugin: binding.plugin.clone(),
                        active_digest: Some(active.plugin.digest.clone()),
                        error: None,
                    });
                    bindings.insert(key, active.clone());
                    continue;
                }
            }
            match check(engine, point, binding, source, maxima).await {
                Ok((plugin, limits)) => {
                    tracing::info!(tenant = %tenant.name, %point, plugin = %binding.plugin, digest = %plugin.digest, "policy plugin activated");
                    reports.push(BindingReport {
                        tenant: tenant.name.clone(),
                        extension_point: point,
                        plugin: binding.plugin.clone(),
                        active_digest: Some(plugin.digest.clone()),
                        error: None,
                    });
                    bindings.insert(
                        key,
                        Arc::new(ActiveBinding {
                            tenant: tenant.name.clone(),
                            point,
                            plugin,
                            config: binding.config.clone(),
                            limits,
                            guard: binding.guard,
                            on_unknown_usage: binding.on_unknown_usage,
                            dual_running: std::time::Duration::from_secs(
                                binding.dual_running_seconds.unwrap_or(0),
                            ),
                            breaker: Breaker::default(),
                            source: binding.clone(),
                        }),
                    );
                }
                Err(error) => {
                    let kept = before.cloned();
                    let error = match &kept {
                        Some(old) => format!(
                            "{error}; still using {} {}",
                            old.plugin.name, old.plugin.digest
                        ),
                        None => format!("{error}; the built-in behaviour applies"),
                    };
                    tracing::warn!(tenant = %tenant.name, %point, plugin = %binding.plugin, "policy plugin not activated: {error}");
                    reports.push(BindingReport {
                        tenant: tenant.name.clone(),
                        extension_point: point,
                        plugin: binding.plugin.clone(),
                        active_digest: kept.as_ref().map(|k| k.plugin.digest.clone()),
                        error: Some(error),
                    });
                    if let Some(kept) = kept {
                        bindings.insert(key, kept);
                    }
                }
            }
        }
    }
    ActivePolicies {
        config,
        bindings,
        reports,
        config_errors: Vec::new(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const PIN: &str = "3f5c4b0a9e8d7c6b5a4f3e2d1c0b9a8f7e6d5c4b3a2f1e0d9c8b7a6f5e4d3c2b";

    #[test]
    fn a_config_is_read_with_paths_in_every_error() {
        let ok = PolicyConfig::parse(&format!(
            "tenantLabel: example.com/tenant\ntenants:\n- name: team-a\n  namespaces: [a]\n  podTemplate:\n    plugin: connectors\n    sha256: {PIN}\n    config: {{labels: {{x: z}}}}\n    guard: {{allowHostPath: true}}\n"
        ))
        .unwrap();
        assert_eq!(
            ok.tenants[0].pod_template.as_ref().unwrap().config["labels"]["x"],
            "z"
        );

        let errors = PolicyConfig::parse("tenants:\n- name: a\n  scaling: {plugin: ../x, sha256: abc, guard: {allowPrivileged: true}}\n- name: a\n").unwrap_err();
        assert_eq!(errors.len(), 4, "{errors:#?}");
        assert!(
            errors[0].starts_with("tenants[0].scaling.plugin: \"../x\" must be a file name"),
            "{errors:#?}"
        );
        assert!(
            errors[1].starts_with("tenants[0].scaling.sha256: \"abc\" is not a sha256"),
            "{errors:#?}"
        );
        assert!(
            errors[2].starts_with("tenants[0].scaling.guard: only podTemplate"),
            "{errors:#?}"
        );
        assert!(
            errors[3].starts_with("tenants[1].name: \"a\" is empty or used twice"),
            "{errors:#?}"
        );

        let errors = PolicyConfig::parse("tenants:\n- name: a\n  upgrade: {plugin: x, sha: 1}\n")
            .unwrap_err();
        assert!(
            errors[0].starts_with("policies.yaml: tenants[0].upgrade.sha: unknown field `sha`"),
            "{errors:#?}"
        );
    }

    #[test]
    fn a_label_names_the_tenant_only_in_a_namespace_tenants_share() {
        let config = PolicyConfig::parse(
            "tenantLabel: t\ntenants:\n- {name: a, namespaces: [team-a], sharedNamespaces: [shared]}\n- {name: b, namespaces: [team-b], sharedNamespaces: [shared]}\n- {name: c}\n",
        )
        .unwrap();
        let labels = |v: &str| BTreeMap::from([("t".to_string(), v.to_string())]);
        let name = |r: Result<Option<&Tenant>, String>| r.map(|t| t.map(|t| t.name.clone()));
        // In its own namespace a resource cannot leave its tenant or claim another.
        assert_eq!(
            name(config.tenant_of("team-a", &BTreeMap::new())),
            Ok(Some("a".into()))
        );
        assert_eq!(
            name(config.tenant_of("team-a", &labels("b"))),
            Ok(Some("a".into()))
        );
        assert_eq!(
            name(config.tenant_of("team-b", &labels("nobody"))),
            Ok(Some("b".into()))
        );
        // In a shared one, the label chooses among those sharing it, and nothing else does.
        assert_eq!(
            name(config.tenant_of("shared", &labels("b"))),
            Ok(Some("b".into()))
        );
        for missing in [BTreeMap::new(), labels("c"), labels("nobody")] {
            let error = config.tenant_of("shared", &missing).unwrap_err();
            assert!(error.contains("set the label t to one of a, b"), "{error}");
        }
        assert_eq!(name(config.tenant_of("elsewhere", &labels("a"))), Ok(None));
        let errors = PolicyConfig::parse(
            "tenants:\n- {name: a, namespaces: [x]}\n- {name: b, namespaces: [x], sharedNamespaces: [other]}\n- {name: c, sharedNamespaces: [x]}\n",
        )
        .unwrap_err();
        assert!(
            errors[0].contains("x already belongs to tenant a"),
            "{errors:#?}"
        );
        assert!(errors[1].contains("needs tenantLabel"), "{errors:#?}");
        assert!(
            errors
                .iter()
                .any(|e| e.contains("x is tenant a's own namespace")),
            "{errors:#?}"
        );
    }

    #[test]
    fn the_breaker_opens_after_repeated_failures_and_retries_after_the_cooldown() {
        let breaker = Breaker::default();
        for _ in 0..Breaker::THRESHOLD - 1 {
            breaker.record(false, 1_000);
        }
        assert!(breaker.allows(1_000));
        breaker.record(false, 1_000);
        assert!(!breaker.allows(1_000 + Breaker::COOLDOWN_MS - 1));
        assert!(breaker.allows(1_000 + Breaker::COOLDOWN_MS));
        breaker.record(true, 70_000);
        assert!(breaker.allows(0));
        assert!(Breaker::PAUSED.contains(&format!("{} times", Breaker::THRESHOLD)));
        assert_eq!(Breaker::COOLDOWN_MS, 60_000, "PAUSED says a minute");
    }
}
