//! One function per extension point: build the WIT input, call the plugin in a fresh store,
//! and check the answer (`outputs`). Every failure comes back as a `CallFailure`; the caller
//! applies its extension point's failure policy.

use crate::bindings::{self, PluginError};
use crate::engine::{CallFailure, Called, Plugin, PolicyEngine, Prepared};
use crate::guard::PodGuard;
use crate::limits::Limits;
use crate::model::{
    self, ExtensionPoint, PodInput, PodTemplateDecision, ScalingDecision, ScalingInput,
    UpgradeDecision, UpgradeInput,
};
use crate::outputs;
use serde_json::Value;

type WitScaling = bindings::scaling::exports::flinkop::policy::scaling::ScalingDecision;
type WitUpgrade = bindings::upgrade::exports::flinkop::policy::upgrade::UpgradeDecision;

fn wrong(plugin: &Plugin, wanted: ExtensionPoint) -> CallFailure {
    CallFailure::WrongExtensionPoint {
        wanted: wanted.world(),
        actual: plugin.shape.world,
    }
}

fn plugin_error<T>(called: Called<Result<T, PluginError>>) -> Result<Called<T>, CallFailure> {
    let Called {
        value,
        fuel_used,
        elapsed,
        logs,
        dropped_logs,
        notes,
    } = called;
    match value {
        Ok(value) => Ok(Called {
            value,
            fuel_used,
            elapsed,
            logs,
            dropped_logs,
            notes,
        }),
        Err(err) => Err(CallFailure::PluginError {
            message: err.message,
        }),
    }
}

fn invalid(message: String) -> CallFailure {
    CallFailure::InvalidOutput { message }
}

fn scaling_bytes(d: &WitScaling) -> u64 {
    match d {
        WitScaling::Follow => 0,
        WitScaling::Veto(reason) => reason.len() as u64,
        WitScaling::Override(o) => {
            o.reason.len() as u64
                + o.vertices
                    .iter()
                    .map(|v| v.vertex_id.len() as u64 + 4)
                    .sum::<u64>()
        }
    }
}

fn upgrade_bytes(d: &WitUpgrade) -> u64 {
    match d {
        WitUpgrade::Proceed(p) => p.reason.len() as u64,
        WitUpgrade::WaitUntil(w) => w.reason.len() as u64,
        WitUpgrade::Refuse(reason) => reason.len() as u64,
    }
}

fn result_bytes<T>(r: &Result<T, PluginError>, ok: impl Fn(&T) -> u64) -> u64 {
    match r {
        Ok(value) => ok(value),
        Err(err) => err.message.len() as u64,
    }
}

impl PolicyEngine {
    /// Asks the plugin whether `config` is valid for it. `Ok(Err(message))` is the plugin's
    /// own refusal, which names the field.
    pub async fn validate_config(
        &self,
        plugin: &Plugin,
        config: &Value,
        limits: &Limits,
    ) -> Result<Called<Result<(), String>>, CallFailure> {
        self.validate_config_text(plugin, &model::config_text(config), limits)
            .await
    }

    /// `validate_config` with the config as the text the plugin receives.
    pub async fn validate_config_text(
        &self,
        plugin: &Plugin,
        text: &str,
        limits: &Limits,
    ) -> Result<Called<Result<(), String>>, CallFailure> {
        let size = |r: &Result<(), String>| r.as_ref().err().map_or(0, |e| e.len() as u64);
        match &plugin.pre {
            Prepared::Scaling(pre) => {
                self.call(
                    plugin,
                    limits,
                    async |store| {
                        let instance = pre.instantiate_async(&mut *store).await?;
                        instance
                            .flinkop_policy_scaling()
                            .call_validate_config(&mut *store, text)
                            .await
                    },
                    size,
                )
                .await
            }
            Prepared::Upgrade(pre) => {
                self.call(
                    plugin,
                    limits,
                    async |store| {
                        let instance = pre.instantiate_async(&mut *store).await?;
                        instance
                            .flinkop_policy_upgrade()
                            .call_validate_config(&mut *store, text)
                            .await
                    },
                    size,
                )
                .await
            }
            Prepared::Pods(pre) => {
                self.call(
                    plugin,
                    limits,
                    async |store| {
                        let instance = pre.instantiate_async(&mut *store).await?;
                        instance
                            .flinkop_policy_pods()
                            .call_validate_config(&mut *store, text)
                            .await
                    },
                    size,
                )
                .await
            }
        }
    }

    /// The scaling plugin's decision, checked and clamped.
    pub async fn scaling(
        &self,
        plugin: &Plugin,
        input: &ScalingInput,
        limits: &Limits,
    ) -> Result<Called<ScalingDecision>, CallFailure> {
        let Prepared::Scaling(pre) = &plugin.pre else {
            return Err(wrong(plugin, ExtensionPoint::Scaling));
        };
        let wit = input.to_wit();
        let usage = match &input.tenant_usage_error {
            Some(why) => Err(why.clone()),
            None => Ok(input.tenant_slots_in_use),
        };
        let called = self
            .call(
                plugin,
                limits,
                async |store| {
                    store.data_mut().tenant_usage = usage;
                    let instance = pre.instantiate_async(&mut *store).await?;
                    instance
                        .flinkop_policy_scaling()
                        .call_decide(&mut *store, &wit)
                        .await
                },
                |r| result_bytes(r, scaling_bytes),
            )
            .await?;
        let called = plugin_error(called)?;
        let (decision, notes) =
            outputs::scaling(input, called.value.clone().into()).map_err(invalid)?;
        Ok(Called {
            notes,
            ..called.map(|_| decision)
        })
    }

    /// The upgrade plugin's decision, checked.
    pub async fn upgrade(
        &self,
        plugin: &Plugin,
        input: &UpgradeInput,
        limits: &Limits,
    ) -> Result<Called<UpgradeDecision>, CallFailure> {
        let Prepared::Upgrade(pre) = &plugin.pre else {
            return Err(wrong(plugin, ExtensionPoint::Upgrade));
        };
        let wit = input.to_wit();
        let called = self
            .call(
                plugin,
                limits,
                async |store| {
                    let instance = pre.instantiate_async(&mut *store).await?;
                    instance
                        .flinkop_policy_upgrade()
                        .call_decide(&mut *store, &wit)
                        .await
                },
                |r| result_bytes(r, upgrade_bytes),
            )
            .await?;
        let called = plugin_error(called)?;
        let (decision, notes) =
            outputs::upgrade(input, called.value.clone().into()).map_err(invalid)?;
        Ok(Called {
            notes,
            ..called.map(|_| decision)
        })
    }

    /// The pod template after the plugin's patch, checked against the tenant's guard.
    pub async fn pod_template(
        &self,
        plugin: &Plugin,
        input: &PodInput,
        guard: &PodGuard,
        limits: &Limits,
    ) -> Result<Called<PodTemplateDecision>, CallFailure> {
        self.pod_template_onto(plugin, input, &input.pod_template, guard, limits)
            .await
    }

    /// Like [`PolicyEngine::pod_template`], with the patch applied to `template` rather than
    /// to the one the plugin saw: the operator shows plugins a template with its secrets
    /// masked and patches the real one.
    pub async fn pod_template_onto(
        &self,
        plugin: &Plugin,
        input: &PodInput,
        template: &Value,
        guard: &PodGuard,
        limits: &Limits,
    ) -> Result<Called<PodTemplateDecision>, CallFailure> {
        let Prepared::Pods(pre) = &plugin.pre else {
            return Err(wrong(plugin, ExtensionPoint::PodTemplate));
        };
        let wit = input.to_wit();
        let called = self
            .call(
                plugin,
                limits,
                async |store| {
                    let instance = pre.instantiate_async(&mut *store).await?;
                    instance
                        .flinkop_policy_pods()
                        .call_render(&mut *store, &wit)
                        .await
                },
                |r| result_bytes(r, |patch| patch.len() as u64),
            )
            .await?;
        let called = plugin_error(called)?;
        // Reading the patch costs the host far more than its text (a JSON value per `[]`,
        // the template patched): reserved from the budget like the call itself.
        let _reading = self
            .reserve_for_answer(
                called.value.len() as u64 * ANSWER_EXPANSION + 2 * template_bytes(template),
            )
            .await?;
        let decision = outputs::pod_template(template, &called.value, guard).map_err(invalid)?;
        Ok(called.map(|_| decision))
    }
}

/// How much more memory than its text a JSON Patch can take once read (a `[]` of 3 bytes is a
/// 32-byte value, read once and cloned once).
const ANSWER_EXPANSION: u64 = 32;

fn template_bytes(template: &Value) -> u64 {
    serde_json::to_vec(template).map_or(0, |t| t.len() as u64)
}
