//! Deleting a savepoint's files directly, when its cluster (which would dispose of it, as
//! upstream does) is gone. The path comes from a resource's status, which a tenant or its
//! JobManager wrote, so the operator deletes only under directories an administrator chose
//! (`SnapshotSettings::local_roots`; none by default, local mode its own), after resolving
//! `..` and symbolic links, and only a directory that is a Flink snapshot (it holds
//! `_metadata`). Anything else is left in place and said so.

use std::path::{Path, PathBuf};

/// Deletes the savepoint at `path` (`file:` URI) when it may; otherwise says why not.
pub async fn delete(path: &str, roots: &[PathBuf]) -> Result<(), String> {
    let Some(local) = path.strip_prefix("file:") else {
        return Err(format!(
            "{path} is not on a local file system; its cluster, which could dispose of it, is gone"
        ));
    };
    let dir = PathBuf::from(format!("/{}", local.trim_start_matches('/')));
    let real = match tokio::fs::canonicalize(&dir).await {
        Ok(real) => real,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(()),
        Err(e) => return Err(format!("cannot resolve {}: {e}", dir.display())),
    };
    if !inside_a_root(&real, roots).await {
        return Err(format!(
            "{path} is outside the directories the operator deletes snapshots under ({}); left in place",
            if roots.is_empty() {
                "none is configured".to_string()
            } else {
                roots
                    .iter()
                    .map(|r| r.display().to_string())
                    .collect::<Vec<_>>()
                    .join(", ")
            }
        ));
    }
    let metadata = tokio::fs::symlink_metadata(real.join("_metadata")).await;
    if !metadata.is_ok_and(|m| m.is_file()) {
        return Err(format!(
            "{path} holds no _metadata file, so it is not a Flink snapshot; left in place"
        ));
    }
    tokio::fs::remove_dir_all(&real)
        .await
        .map_err(|e| format!("cannot delete {}: {e}", real.display()))
}

/// Strictly below one of `roots` (never a root itself).
async fn inside_a_root(real: &Path, roots: &[PathBuf]) -> bool {
    for root in roots {
        if let Ok(root) = tokio::fs::canonicalize(root).await
            && real != root
            && real.starts_with(&root)
        {
            return true;
        }
    }
    false
}

#[cfg(test)]
mod tests {
    use super::*;

    fn scratch(tag: &str) -> PathBuf {
        let dir = std::env::temp_dir().join(format!("snapshot-files-{tag}-{}", std::process::id()));
        let _ = std::fs::remove_dir_all(&dir);
        std::fs::create_dir_all(&dir).unwrap();
        dir
    }

    fn savepoint(dir: &Path) -> PathBuf {
        std::fs::create_dir_all(dir).unwrap();
        std::fs::write(dir.join("_metadata"), b"flink").unwrap();
        dir.to_path_buf()
    }

    #[tokio::test]
    async fn only_a_flink_snapshot_under_a_configured_root_is_deleted() {
        let root = scratch("root");
        let outside = scratch("outside");
        let roots = vec![root.join("savepoints")];
        let inside = savepoint(&root.join("savepoints/savepoint-1"));
        delete(&format!("file:{}", inside.display()), &roots)
            .await
            .expect("deleted");
        assert!(!inside.exists());

        // What a tenant could name: a directory outside, through `..`, through a symbolic
        // link, the root itself, a directory that is not a snapshot, another scheme.
        let elsewhere = savepoint(&outside.join("savepoint-2"));
        let link = root.join("savepoints/link");
        std::os::unix::fs::symlink(&elsewhere, &link).unwrap();
        std::fs::create_dir_all(root.join("savepoints/not-a-snapshot")).unwrap();
        for path in [
            format!("file://{}", elsewhere.display()),
            format!(
                "file://{}/savepoints/../../{}",
                root.display(),
                elsewhere
                    .strip_prefix(std::env::temp_dir())
                    .unwrap()
                    .display()
            ),
            format!("file://{}", link.display()),
            format!("file://{}", root.join("savepoints").display()),
            format!(
                "file://{}",
                root.join("savepoints/not-a-snapshot").display()
            ),
            "s3://bucket/savepoint-3".to_string(),
        ] {
            assert!(delete(&path, &roots).await.is_err(), "{path} was deleted");
        }
        assert!(elsewhere.join("_metadata").is_file());
        assert!(root.join("savepoints/not-a-snapshot").is_dir());
        assert!(
            delete(&format!("file://{}", elsewhere.display()), &[])
                .await
                .is_err()
        );
        // Already gone is done.
        delete(
            &format!("file://{}", root.join("savepoints/gone").display()),
            &roots,
        )
        .await
        .expect("nothing to delete");
        std::fs::remove_dir_all(&root).unwrap();
        std::fs::remove_dir_all(&outside).unwrap();
    }
}
