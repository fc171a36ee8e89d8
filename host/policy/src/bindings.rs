//! The host side of `wit/policy.wit`, version 1.x: one generated module per world. The shared
//! `types` and `host` interfaces are generated once (with the scaling world) and reused. A
//! plugin of an older minor version (1.0) instantiates against these too: wasmtime resolves
//! its `@1.0.0` imports and exports to the `@1.1.0` ones, which only add.
//!
//! Nothing outside this crate sees these types: `model` is the host's own, serde-friendly view,
//! so a future 2.x interface can get its own module here without changing callers.

pub mod scaling {
    wasmtime::component::bindgen!({
        world: "scaling-policy",
        path: "../../wit",
        exports: { default: async },
    });
}

pub mod upgrade {
    wasmtime::component::bindgen!({
        world: "upgrade-strategy",
        path: "../../wit",
        exports: { default: async },
        with: {
            "flinkop:policy/types": crate::bindings::scaling::flinkop::policy::types,
            "flinkop:policy/host": crate::bindings::scaling::flinkop::policy::host,
        },
    });
}

pub mod pods {
    wasmtime::component::bindgen!({
        world: "pod-template",
        path: "../../wit",
        exports: { default: async },
        with: {
            "flinkop:policy/types": crate::bindings::scaling::flinkop::policy::types,
            "flinkop:policy/host": crate::bindings::scaling::flinkop::policy::host,
        },
    });
}

pub use scaling::flinkop::policy::host::Host as LogHost;
pub use scaling::flinkop::policy::tenant::Host as TenantHost;
pub use scaling::flinkop::policy::types::{LogLevel, PluginError, ResourceRef};

/// The interface version these bindings were generated from.
pub const INTERFACE_VERSION: &str = "1.1.0";
/// The WIT package plugins export.
pub const PACKAGE: &str = "flinkop:policy";
