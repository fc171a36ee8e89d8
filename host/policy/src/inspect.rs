//! What a component is, read from the names it imports and exports: which extension point it
//! implements, which interface version it was built for, and whether it asks for anything the
//! host does not offer. Pure functions over names, so every rule is unit-tested without wasm.

use crate::bindings::PACKAGE;
use crate::model::ExtensionPoint;
use serde::Serialize;

/// The major interface version this host speaks.
pub const SUPPORTED_MAJOR: u64 = 1;

/// A plugin's shape, as `flink-operator plugin check` prints it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct Shape {
    pub extension_point: ExtensionPoint,
    pub world: &'static str,
    /// The interface version the plugin was built for, e.g. `1.0.0`.
    pub interface_version: String,
    pub imports: Vec<String>,
    pub exports: Vec<String>,
}

impl Shape {
    /// Whether the plugin asks the host for the tenant's usage (interface 1.1's `tenant`), so
    /// it can be told when the usage is unknown.
    pub fn imports_tenant(&self) -> bool {
        self.imports.iter().any(|i| {
            split(i).is_some_and(|(p, interface, _)| p == PACKAGE && interface == "tenant")
        })
    }
}

/// Why a component is not a plugin this host can run. Each message says what to change.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum ShapeError {
    #[error(
        "exports no {PACKAGE} extension point (its exports: {}); a plugin exports one of the \
         worlds scaling-policy, upgrade-strategy or pod-template from wit/policy.wit",
        list(.exports)
    )]
    NotAPolicy { exports: Vec<String> },
    #[error(
        "exports several extension points ({}); build one plugin per world",
        list(.found)
    )]
    SeveralWorlds { found: Vec<String> },
    #[error(
        "was built for interface {found} of {PACKAGE}; this operator speaks {SUPPORTED_MAJOR}.x: \
         rebuild the plugin against this operator's wit/ (or run an operator that supports {found})"
    )]
    UnsupportedVersion { found: String },
    #[error("imports {import}, which plugins are not given: {why}")]
    DeniedImport { import: String, why: &'static str },
}

fn list(names: &[String]) -> String {
    if names.is_empty() {
        "none".into()
    } else {
        names.join(", ")
    }
}

/// `flinkop:policy/scaling@1.0.0` → (`flinkop:policy`, `scaling`, `1.0.0`).
fn split(name: &str) -> Option<(&str, &str, &str)> {
    let (package, rest) = name.split_once('/')?;
    let (interface, version) = rest.split_once('@').unwrap_or((rest, ""));
    Some((package, interface, version))
}

fn major(version: &str) -> Option<u64> {
    version.split('.').next()?.parse().ok()
}

const WASI_IO: &[&str] = &["error", "poll", "streams"];
const WASI_CLI: &[&str] = &[
    "environment",
    "exit",
    "stdin",
    "stdout",
    "stderr",
    "terminal-input",
    "terminal-output",
    "terminal-stdin",
    "terminal-stdout",
    "terminal-stderr",
];

/// Why an import is refused, or None when the allowlist has it. The allowlist is our `host`
/// (log), `tenant` (1.1) and `types`, and the parts of WASI that Rust's standard library links in for any
/// program: streams and an empty CLI environment (stdin closed, output captured and capped).
pub fn denied_import(name: &str) -> Option<&'static str> {
    let Some((package, interface, _)) = split(name) else {
        return Some(
            "it is not a versioned interface; only the operator's WIT and basic WASI are offered",
        );
    };
    match package {
        PACKAGE if matches!(interface, "host" | "types" | "tenant") => None,
        "wasi:io" if WASI_IO.contains(&interface) => None,
        "wasi:cli" if WASI_CLI.contains(&interface) => None,
        "wasi:clocks" => Some(
            "plugins get no clock, so decisions are replayable; the time is the input's nowEpochMs",
        ),
        "wasi:random" => Some(
            "plugins get no randomness, so decisions are replayable (a std HashMap asks for it: \
             use a BTreeMap)",
        ),
        "wasi:filesystem" => Some("plugins get no files; configuration comes in the input"),
        "wasi:sockets" | "wasi:http" => Some("plugins get no network"),
        _ => Some("this operator does not offer it to plugins"),
    }
}

/// Reads a component's shape from its import and export names.
pub fn shape(imports: &[String], exports: &[String]) -> Result<Shape, ShapeError> {
    for name in imports.iter().chain(exports) {
        if let Some((PACKAGE, _, version)) = split(name)
            && major(version) != Some(SUPPORTED_MAJOR)
        {
            return Err(ShapeError::UnsupportedVersion {
                found: version.to_string(),
            });
        }
    }
    let mut points = Vec::new();
    let mut version = String::new();
    for name in exports {
        let Some((PACKAGE, interface, v)) = split(name) else {
            continue;
        };
        if let Some(point) = ExtensionPoint::ALL
            .into_iter()
            .find(|p| p.interface() == interface)
        {
            points.push((point, name.clone()));
            version = v.to_string();
        }
    }
    let point = match points.as_slice() {
        [] => {
            return Err(ShapeError::NotAPolicy {
                exports: exports.to_vec(),
            });
        }
        [(point, _)] => *point,
        several => {
            return Err(ShapeError::SeveralWorlds {
                found: several.iter().map(|(_, name)| name.clone()).collect(),
            });
        }
    };
    for import in imports {
        if let Some(why) = denied_import(import) {
            return Err(ShapeError::DeniedImport {
                import: import.clone(),
                why,
            });
        }
    }
    Ok(Shape {
        extension_point: point,
        world: point.world(),
        interface_version: version,
        imports: imports.to_vec(),
        exports: exports.to_vec(),
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn names(list: &[&str]) -> Vec<String> {
        list.iter().map(|s| s.to_string()).collect()
    }

    const STD_IMPORTS: &[&str] = &[
        "flinkop:policy/types@1.0.0",
        "flinkop:policy/host@1.0.0",
        "wasi:io/error@0.2.6",
        "wasi:io/streams@0.2.6",
        "wasi:cli/environment@0.2.6",
        "wasi:cli/exit@0.2.6",
        "wasi:cli/stderr@0.2.6",
    ];

    #[test]
    fn a_scaling_plugin_built_with_the_sdk_fits() {
        let shape = shape(
            &names(STD_IMPORTS),
            &names(&["flinkop:policy/scaling@1.0.0"]),
        )
        .unwrap();
        assert_eq!(shape.extension_point, ExtensionPoint::Scaling);
        assert_eq!(shape.interface_version, "1.0.0");
    }

    #[test]
    fn a_later_minor_version_fits_a_new_major_does_not() {
        assert!(shape(&[], &names(&["flinkop:policy/pods@1.3.0"])).is_ok());
        let err = shape(&[], &names(&["flinkop:policy/scaling@2.0.0"])).unwrap_err();
        assert_eq!(
            err,
            ShapeError::UnsupportedVersion {
                found: "2.0.0".into()
            }
        );
        assert!(
            err.to_string().contains("built for interface 2.0.0"),
            "{err}"
        );
        assert!(err.to_string().contains("speaks 1.x"), "{err}");
    }

    #[test]
    fn clocks_randomness_files_and_network_are_refused_with_the_reason() {
        for (import, needle) in [
            ("wasi:clocks/wall-clock@0.2.6", "nowEpochMs"),
            ("wasi:random/insecure-seed@0.2.6", "BTreeMap"),
            ("wasi:filesystem/preopens@0.2.6", "no files"),
            ("wasi:sockets/tcp@0.2.6", "no network"),
            ("acme:evil/backdoor@1.0.0", "does not offer"),
        ] {
            let mut imports = names(STD_IMPORTS);
            imports.push(import.into());
            let err = shape(&imports, &names(&["flinkop:policy/scaling@1.0.0"])).unwrap_err();
            assert!(
                matches!(&err, ShapeError::DeniedImport { import: i, .. } if i == import),
                "{err}"
            );
            assert!(err.to_string().contains(needle), "{err}");
        }
    }

    #[test]
    fn a_component_that_is_no_policy_or_several_is_refused() {
        let err = shape(&[], &names(&["wasi:cli/run@0.2.6"])).unwrap_err();
        assert!(
            err.to_string().contains(
                "exports no flinkop:policy extension point (its exports: wasi:cli/run@0.2.6)"
            ),
            "{err}"
        );
        let err = shape(
            &[],
            &names(&["flinkop:policy/scaling@1.0.0", "flinkop:policy/pods@1.0.0"]),
        )
        .unwrap_err();
        assert!(matches!(err, ShapeError::SeveralWorlds { .. }));
    }
}
