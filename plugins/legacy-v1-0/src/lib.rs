//! A scaling plugin built for interface 1.0.0 (`wit/` holds that version's WIT, frozen): the
//! host of interface 1.1 must load it and call it unchanged. It vetoes every scaling and says
//! how many slots the host told it the tenant uses.

wit_bindgen::generate!({ world: "scaling-policy", path: "wit" });

use exports::flinkop::policy::scaling::{Guest, ScalingDecision, ScalingInput};
use flinkop::policy::types::PluginError;

struct Policy;

impl Guest for Policy {
    fn validate_config(_config: String) -> Result<(), String> {
        Ok(())
    }

    fn decide(input: ScalingInput) -> Result<ScalingDecision, PluginError> {
        Ok(ScalingDecision::Veto(format!(
            "interface 1.0 plugin: the tenant uses {} slots",
            input.tenant_slots_in_use
        )))
    }
}

#[cfg(target_arch = "wasm32")]
export!(Policy);
#[cfg(not(target_arch = "wasm32"))]
const _: () = {
    let _ = Policy;
};
