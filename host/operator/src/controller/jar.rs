//! Fetching a session job's jar: `local://` and `file://` from the operator's file system,
//! `http(s)://` with a timeout; every source with a size limit, and only schemes the
//! validation settings allow (so an operator cannot be pointed at arbitrary URLs).

use crate::settings::{JarSettings, Settings};
use futures::StreamExt;
use std::path::PathBuf;

/// The jar's file name and bytes, or why it cannot be had (naming the field and the fix).
pub async fn fetch(uri: &str, settings: &Settings) -> Result<(String, Vec<u8>), String> {
    let jars = &settings.jars;
    let parsed =
        url::Url::parse(uri).map_err(|e| format!("spec.job.jarURI: {uri:?} is not a URI: {e}"))?;
    let scheme = parsed.scheme().to_string();
    if !settings
        .validation
        .session_job_jar_schemes
        .contains(&scheme)
    {
        return Err(format!(
            "spec.job.jarURI: scheme {scheme:?} is not allowed; use one of {:?}",
            settings.validation.session_job_jar_schemes
        ));
    }
    let file_name = parsed
        .path_segments()
        .and_then(|mut s| s.next_back())
        .filter(|n| !n.is_empty())
        .unwrap_or("job.jar")
        .to_string();
    let bytes = match scheme.as_str() {
        "local" | "file" => read_file(&local_path(parsed.path(), jars, &scheme), jars).await?,
        "http" | "https" => download(uri, jars).await?,
        other => return Err(format!("spec.job.jarURI: cannot fetch {other}:// jars")),
    };
    Ok((file_name, bytes))
}

fn local_path(path: &str, jars: &JarSettings, scheme: &str) -> PathBuf {
    if scheme == "local" {
        for (prefix, dir) in &jars.local_path_prefixes {
            if let Some(rest) = path.strip_prefix(prefix.as_str()) {
                return dir.join(rest.trim_start_matches('/'));
            }
        }
    }
    PathBuf::from(path)
}

async fn read_file(path: &PathBuf, jars: &JarSettings) -> Result<Vec<u8>, String> {
    let metadata = tokio::fs::metadata(path).await.map_err(|e| {
        format!(
            "spec.job.jarURI: cannot read {}: {e}; check the path",
            path.display()
        )
    })?;
    if metadata.len() > jars.max_bytes {
        return Err(too_big(metadata.len(), jars));
    }
    tokio::fs::read(path)
        .await
        .map_err(|e| format!("spec.job.jarURI: cannot read {}: {e}", path.display()))
}

async fn download(uri: &str, jars: &JarSettings) -> Result<Vec<u8>, String> {
    let client = reqwest::Client::builder()
        .timeout(jars.timeout)
        .build()
        .map_err(|e| format!("cannot build an HTTP client: {e}"))?;
    let response = client
        .get(uri)
        .send()
        .await
        .map_err(|e| format!("spec.job.jarURI: cannot download {uri}: {e}"))?;
    if !response.status().is_success() {
        return Err(format!(
            "spec.job.jarURI: downloading {uri} answered HTTP {}",
            response.status()
        ));
    }
    if let Some(length) = response.content_length()
        && length > jars.max_bytes
    {
        return Err(too_big(length, jars));
    }
    let mut bytes = Vec::new();
    let mut stream = response.bytes_stream();
    while let Some(chunk) = stream.next().await {
        let chunk = chunk.map_err(|e| format!("spec.job.jarURI: downloading {uri} failed: {e}"))?;
        bytes.extend_from_slice(&chunk);
        if bytes.len() as u64 > jars.max_bytes {
            return Err(too_big(bytes.len() as u64, jars));
        }
    }
    Ok(bytes)
}

fn too_big(size: u64, jars: &JarSettings) -> String {
    format!(
        "spec.job.jarURI: the jar is {size} bytes, over the operator's limit of {} bytes; shrink the jar or raise the limit",
        jars.max_bytes
    )
}
