//! The guest SDK for Flink operator policy plugins.
//!
//! A plugin is a `cdylib` crate built for `wasm32-wasip2`. Most are two plain functions and a
//! line: `scaling_plugin!(config: Config::parse, decide: decide)` (also `upgrade_plugin!`,
//! `pod_template_plugin!`). Or implement one extension point's trait and export it:
//!
//! ```ignore
//! use flink_policy_sdk::scaling::{Guest, ScalingInput, ScalingDecision, PluginError};
//!
//! struct Policy;
//! impl Guest for Policy {
//!     fn validate_config(config: String) -> Result<(), String> { Ok(()) }
//!     fn decide(input: ScalingInput) -> Result<ScalingDecision, PluginError> {
//!         Ok(ScalingDecision::Follow)
//!     }
//! }
//! flink_policy_sdk::export_scaling!(Policy);
//! ```
//!
//! The types are plain Rust structs generated from `wit/policy.wit`, so a plugin's logic is
//! ordinary functions that unit tests call natively (`cargo test`); only the export macro needs
//! the wasm target. [`log`] writes to the operator's log, [`parse_config`] reads the tenant's JSON
//! config with errors that name the field.

/// The bindings of each world. Types shared between worlds (`resource-ref`, `plugin-error`,
/// the `host` log) are generated once, in [`bindings`], and reused by the others.
pub mod bindings {
    pub mod scaling_world {
        wit_bindgen::generate!({
            world: "scaling-policy",
            path: "../../wit",
            default_bindings_module: "flink_policy_sdk::bindings::scaling_world",
            pub_export_macro: true,
            export_macro_name: "wit_export_scaling",
        });
    }
    pub mod upgrade_world {
        wit_bindgen::generate!({
            world: "upgrade-strategy",
            path: "../../wit",
            default_bindings_module: "flink_policy_sdk::bindings::upgrade_world",
            pub_export_macro: true,
            export_macro_name: "wit_export_upgrade",
            with: {
                "flinkop:policy/types@1.1.0": crate::bindings::scaling_world::flinkop::policy::types,
                "flinkop:policy/host@1.1.0": crate::bindings::scaling_world::flinkop::policy::host,
            },
        });
    }
    pub mod pod_template_world {
        wit_bindgen::generate!({
            world: "pod-template",
            path: "../../wit",
            default_bindings_module: "flink_policy_sdk::bindings::pod_template_world",
            pub_export_macro: true,
            export_macro_name: "wit_export_pods",
            with: {
                "flinkop:policy/types@1.1.0": crate::bindings::scaling_world::flinkop::policy::types,
                "flinkop:policy/host@1.1.0": crate::bindings::scaling_world::flinkop::policy::host,
            },
        });
    }
}

pub use bindings::scaling_world::flinkop::policy::types::{LogLevel, PluginError, ResourceRef};
#[doc(hidden)]
pub use bindings::{
    pod_template_world::wit_export_pods, scaling_world::wit_export_scaling,
    upgrade_world::wit_export_upgrade,
};

/// Exports a type implementing [`scaling::Guest`] as the plugin's scaling policy.
/// The type is a unit struct (a plugin keeps no state between calls). Only on wasm: natively
/// (unit tests) there is nothing to export.
#[macro_export]
macro_rules! export_scaling {
    ($ty:ident) => {
        #[cfg(target_arch = "wasm32")]
        $crate::wit_export_scaling!($ty);
        // Natively the plugin type is still "used", so its logic is not dead code.
        #[cfg(not(target_arch = "wasm32"))]
        const _: () = {
            let _ = $ty;
        };
    };
}

/// Exports a type implementing [`upgrade::Guest`] as the plugin's upgrade strategy.
#[macro_export]
macro_rules! export_upgrade {
    ($ty:ident) => {
        #[cfg(target_arch = "wasm32")]
        $crate::wit_export_upgrade!($ty);
        // Natively the plugin type is still "used", so its logic is not dead code.
        #[cfg(not(target_arch = "wasm32"))]
        const _: () = {
            let _ = $ty;
        };
    };
}

/// Exports a type implementing [`pods::Guest`] as the plugin's pod-template policy.
#[macro_export]
macro_rules! export_pods {
    ($ty:ident) => {
        #[cfg(target_arch = "wasm32")]
        $crate::wit_export_pods!($ty);
        // Natively the plugin type is still "used", so its logic is not dead code.
        #[cfg(not(target_arch = "wasm32"))]
        const _: () = {
            let _ = $ty;
        };
    };
}

/// The scaling extension point.
pub mod scaling {
    pub use crate::bindings::scaling_world::exports::flinkop::policy::scaling::*;
    pub use crate::{PluginError, ResourceRef};
}

/// The upgrade-strategy extension point.
pub mod upgrade {
    pub use crate::bindings::upgrade_world::exports::flinkop::policy::upgrade::*;
    pub use crate::{PluginError, ResourceRef};
}

/// The pod-template extension point.
pub mod pods {
    pub use crate::bindings::pod_template_world::exports::flinkop::policy::pods::*;
    pub use crate::{PluginError, ResourceRef};
}

/// A whole scaling plugin from two plain functions: `config` reads the tenant's config
/// (`fn(&str) -> Result<C, String>`, e.g. built on [`parse_config`]), `decide` decides
/// (`fn(&ScalingInput, &C) -> ScalingDecision`). Both stay unit-testable natively.
///
/// ```ignore
/// flink_policy_sdk::scaling_plugin!(config: Config::parse, decide: decide);
/// ```
#[macro_export]
macro_rules! scaling_plugin {
    (config: $config:path, decide: $decide:path $(,)?) => {
        struct Plugin;
        impl $crate::scaling::Guest for Plugin {
            fn validate_config(config: String) -> Result<(), String> {
                $config(&config).map(|_| ())
            }
            fn decide(
                input: $crate::scaling::ScalingInput,
            ) -> Result<$crate::scaling::ScalingDecision, $crate::PluginError> {
                let config = $config(&input.config).map_err($crate::error)?;
                Ok($decide(&input, &config))
            }
        }
        $crate::export_scaling!(Plugin);
    };
}

/// A whole upgrade-strategy plugin from two plain functions (see [`scaling_plugin!`]);
/// `decide` is `fn(&UpgradeInput, &C) -> UpgradeDecision`.
#[macro_export]
macro_rules! upgrade_plugin {
    (config: $config:path, decide: $decide:path $(,)?) => {
        struct Plugin;
        impl $crate::upgrade::Guest for Plugin {
            fn validate_config(config: String) -> Result<(), String> {
                $config(&config).map(|_| ())
            }
            fn decide(
                input: $crate::upgrade::UpgradeInput,
            ) -> Result<$crate::upgrade::UpgradeDecision, $crate::PluginError> {
                let config = $config(&input.config).map_err($crate::error)?;
                Ok($decide(&input, &config))
            }
        }
        $crate::export_upgrade!(Plugin);
    };
}

/// A whole pod-template plugin from two plain functions (see [`scaling_plugin!`]); `render`
/// is `fn(&PodInput, &C) -> Result<String, PluginError>` and returns the JSON Patch text.
#[macro_export]
macro_rules! pod_template_plugin {
    (config: $config:path, render: $render:path $(,)?) => {
        struct Plugin;
        impl $crate::pods::Guest for Plugin {
            fn validate_config(config: String) -> Result<(), String> {
                $config(&config).map(|_| ())
            }
            fn render(input: $crate::pods::PodInput) -> Result<String, $crate::PluginError> {
                let config = $config(&input.config).map_err($crate::error)?;
                $render(&input, &config)
            }
        }
        $crate::export_pods!(Plugin);
    };
}

/// Writes a line to the operator's log (bounded by the host: extra lines are dropped).
/// Natively (unit tests) it prints to stderr instead.
pub fn log(level: LogLevel, message: &str) {
    #[cfg(target_arch = "wasm32")]
    bindings::scaling_world::flinkop::policy::host::log(level, message);
    #[cfg(not(target_arch = "wasm32"))]
    eprintln!("[{level:?}] {message}");
}

/// Scaling plugins: the task slots the tenant's other jobs use now, or why the operator could
/// not read them (interface 1.1's `tenant.slots-in-use`). A quota should refuse to decide on
/// an unknown usage rather than take `input.tenant_slots_in_use`, which is 0 then. Natively
/// (unit tests) it answers what [`testing::set_tenant_usage`] set on this thread, else the
/// input's number.
pub fn tenant_usage(input: &scaling::ScalingInput) -> Result<u32, String> {
    #[cfg(target_arch = "wasm32")]
    {
        let _ = input;
        bindings::scaling_world::flinkop::policy::tenant::slots_in_use()
    }
    #[cfg(not(target_arch = "wasm32"))]
    testing::USAGE
        .with(|usage| usage.borrow().clone())
        .unwrap_or(Ok(input.tenant_slots_in_use))
}

/// For plugins' native unit tests.
#[cfg(not(target_arch = "wasm32"))]
pub mod testing {
    use std::cell::RefCell;

    thread_local! {
        pub(crate) static USAGE: RefCell<Option<Result<u32, String>>> = const { RefCell::new(None) };
    }

    /// What [`crate::tenant_usage`] answers on this thread (None: the input's number).
    pub fn set_tenant_usage(usage: Option<Result<u32, String>>) {
        USAGE.with(|u| *u.borrow_mut() = usage);
    }
}

/// Reads the tenant's JSON config into `T`. An empty text reads as `{}`. The error names the
/// field that does not fit, e.g. `quota.maxParallelism: invalid type: string "ten", expected u32`.
pub fn parse_config<T: serde::de::DeserializeOwned>(config: &str) -> Result<T, String> {
    let text = if config.trim().is_empty() {
        "{}"
    } else {
        config
    };
    let mut reader = serde_json::Deserializer::from_str(text);
    serde_path_to_error::deserialize(&mut reader).map_err(|err| {
        let path = err.path().to_string();
        if path == "." {
            format!("config: {}", err.inner())
        } else {
            format!("config.{path}: {}", err.inner())
        }
    })
}

/// A plugin error with a message (for `Err(..)` results).
pub fn error(message: impl Into<String>) -> PluginError {
    PluginError {
        message: message.into(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[derive(serde::Deserialize, Debug)]
    #[serde(rename_all = "camelCase", deny_unknown_fields)]
    struct Quota {
        #[allow(dead_code)]
        max_parallelism: u32,
    }

    #[test]
    fn config_errors_name_the_field() {
        let err = parse_config::<Quota>(r#"{"maxParallelism": "ten"}"#).unwrap_err();
        assert!(
            err.starts_with("config.maxParallelism: invalid type"),
            "{err}"
        );
        let err = parse_config::<Quota>(r#"{"maxParalelism": 3}"#).unwrap_err();
        assert!(err.contains("unknown field `maxParalelism`"), "{err}");
        assert!(
            parse_config::<Quota>("")
                .unwrap_err()
                .contains("missing field `maxParallelism`")
        );
    }
}
