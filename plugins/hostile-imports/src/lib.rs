//! A scaling plugin that reads the wall clock and a file: it imports `wasi:clocks` and
//! `wasi:filesystem`, which the host's import allowlist must refuse at load, before any call.

use flink_policy_sdk::scaling::{Guest, PluginError, ScalingDecision, ScalingInput};

struct Policy;

impl Guest for Policy {
    fn validate_config(_config: String) -> Result<(), String> {
        Ok(())
    }

    fn decide(_input: ScalingInput) -> Result<ScalingDecision, PluginError> {
        let now = std::time::SystemTime::now();
        let secret = std::fs::read_to_string("/etc/hostname").unwrap_or_default();
        Ok(ScalingDecision::Veto(format!("{now:?} {secret}")))
    }
}

flink_policy_sdk::export_scaling!(Policy);
