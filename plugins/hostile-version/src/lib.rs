//! A plugin built for interface 2.0.0: the host (1.x) must refuse it at load and name both
//! versions.

wit_bindgen::generate!({ world: "scaling-policy", path: "wit" });

struct Policy;

impl exports::flinkop::policy::scaling::Guest for Policy {
    fn validate_config(_config: String) -> Result<(), String> {
        Ok(())
    }

    fn decide(_input: String) -> Result<u32, String> {
        Ok(1)
    }
}

#[cfg(target_arch = "wasm32")]
export!(Policy);
#[cfg(not(target_arch = "wasm32"))]
const _: () = {
    let _ = Policy;
};
