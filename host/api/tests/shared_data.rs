//! Where the shared, read-only test data lives: upstream's CRDs and examples beside the repo.

use std::path::PathBuf;

/// `shared/` beside the repository (as CI lays it out), or `$FLINK_OPERATOR_SHARED`.
pub fn shared_dir() -> PathBuf {
    let dir = std::env::var_os("FLINK_OPERATOR_SHARED")
        .map(PathBuf::from)
        .unwrap_or_else(|| PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../../../shared"));
    assert!(
        dir.join("upstream-crds").is_dir(),
        "upstream test data not found at {}; put shared/ beside the repository or set FLINK_OPERATOR_SHARED",
        dir.display()
    );
    dir
}

/// The repository root (not every test binary that includes this module needs it).
#[allow(dead_code)]
pub fn repo_dir() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../..")
}
