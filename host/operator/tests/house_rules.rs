//! The house rule (docs/ARCHITECTURE.md: observe, decide purely, act), checked on the sources
//! until the compiler can check it (a crate of its own for `reconcile/` and `render/` needs the
//! plugin model out of `flink-policy` first): the decisions do no I/O, read no clock and log
//! nothing, and a resource's reconcile writes to Kubernetes only through `controller/act.rs`.

use std::path::{Path, PathBuf};

fn sources(dir: &Path) -> Vec<PathBuf> {
    let mut found = Vec::new();
    let mut pending = vec![dir.to_path_buf()];
    while let Some(dir) = pending.pop() {
        for entry in std::fs::read_dir(&dir).expect("a source directory") {
            let path = entry.expect("an entry").path();
            if path.is_dir() {
                pending.push(path);
            } else if path.extension().is_some_and(|e| e == "rs") {
                found.push(path);
            }
        }
    }
    found.sort();
    found
}

/// Every line of the sources under `src/<dir>` (outside comments) that contains one of
/// `patterns`, as `file:line: text`; `except` files are left out.
fn offending(dir: &str, patterns: &[&str], except: &[&str]) -> Vec<String> {
    let root = Path::new(env!("CARGO_MANIFEST_DIR")).join("src");
    let mut found = Vec::new();
    for file in sources(&root.join(dir)) {
        let relative = file
            .strip_prefix(&root)
            .expect("under src")
            .display()
            .to_string();
        if except.contains(&relative.as_str()) {
            continue;
        }
        let text = std::fs::read_to_string(&file).expect("a readable source");
        for (number, line) in text.lines().enumerate() {
            let code = line.trim_start();
            if code.starts_with("//") {
                continue;
            }
            if patterns.iter().any(|p| code.contains(p)) {
                found.push(format!("{relative}:{}: {}", number + 1, code));
            }
        }
    }
    found
}

#[test]
fn decisions_do_no_io_read_no_clock_and_log_nothing() {
    let forbidden = [
        "kube::",
        "tokio",
        "reqwest",
        "async fn",
        ".await",
        "std::fs",
        "std::net",
        "std::process",
        "SystemTime",
        "Instant::now",
        "tracing::",
        "println!",
        "eprintln!",
        "rand::",
    ];
    for dir in ["reconcile", "render"] {
        let found = offending(dir, &forbidden, &[]);
        assert!(
            found.is_empty(),
            "src/{dir} must stay pure; found:\n{}",
            found.join("\n")
        );
    }
}

#[test]
fn a_reconcile_writes_to_kubernetes_only_through_act() {
    // The operator's own bookkeeping writes elsewhere, each in a thin loop of its own: the
    // status annotation on its ConfigMaps (`act::report_on_config_map`), the sharding Leases,
    // the webhook's certificate and configuration. controller/ holds the reconciles.
    let writes = [
        ".patch(",
        ".patch_status(",
        ".create(",
        ".delete(",
        ".replace(",
        ".replace_status(",
        ".delete_collection(",
    ];
    let found = offending("controller", &writes, &["controller/act.rs"]);
    assert!(
        found.is_empty(),
        "only controller/act.rs writes; found:\n{}",
        found.join("\n")
    );
}

#[test]
fn the_checks_find_what_they_look_for() {
    // Each check can fail: act.rs writes and the controllers await, so looking there finds
    // something.
    assert!(!offending("controller", &[".patch("], &[]).is_empty());
    assert!(!offending("controller", &[".await"], &[]).is_empty());
}
