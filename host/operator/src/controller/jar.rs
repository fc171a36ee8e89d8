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

#[cfg(test)]
mod tests {
    use super::*;
    use std::io::{Read, Write};

    fn settings(max_bytes: u64, dir: &std::path::Path) -> Settings {
        let mut settings = Settings::default();
        settings.jars.max_bytes = max_bytes;
        settings.jars.local_path_prefixes = vec![("/opt/flink/usrlib".into(), dir.to_path_buf())];
        settings
    }

    fn temp_dir(tag: &str) -> PathBuf {
        let dir = std::env::temp_dir().join(format!("jar-fetch-{tag}-{}", std::process::id()));
        std::fs::create_dir_all(&dir).expect("temp dir");
        dir
    }

    /// Serves one HTTP response with `body` on a free loopback port.
    fn serve_once(body: Vec<u8>) -> String {
        let listener = std::net::TcpListener::bind("127.0.0.1:0").expect("bind");
        let port = listener.local_addr().expect("addr").port();
        std::thread::spawn(move || {
            if let Ok((mut stream, _)) = listener.accept() {
                let mut request = [0u8; 1024];
                let _ = stream.read(&mut request);
                let _ = write!(
                    stream,
                    "HTTP/1.1 200 OK\r\nContent-Length: {}\r\nConnection: close\r\n\r\n",
                    body.len()
                );
                let _ = stream.write_all(&body);
            }
        });
        format!("http://127.0.0.1:{port}/jobs/job.jar")
    }

    #[tokio::test]
    async fn local_jars_are_read_through_the_path_mapping() {
        let dir = temp_dir("local");
        std::fs::write(dir.join("job.jar"), b"PK-jar").expect("write");
        let (name, bytes) = fetch("local:///opt/flink/usrlib/job.jar", &settings(100, &dir))
            .await
            .expect("fetched");
        assert_eq!(
            (name.as_str(), bytes.as_slice()),
            ("job.jar", b"PK-jar".as_slice())
        );
        let error = fetch(
            "local:///opt/flink/usrlib/missing.jar",
            &settings(100, &dir),
        )
        .await
        .expect_err("missing");
        assert!(error.starts_with("spec.job.jarURI: cannot read"), "{error}");
        let error = fetch("local:///opt/flink/usrlib/job.jar", &settings(3, &dir))
            .await
            .expect_err("too big");
        assert!(
            error.contains("over the operator's limit of 3 bytes"),
            "{error}"
        );
    }

    #[tokio::test]
    async fn schemes_outside_the_allowlist_are_refused() {
        let dir = temp_dir("scheme");
        let mut settings = settings(100, &dir);
        settings.validation.session_job_jar_schemes = vec!["https".into()];
        let error = fetch("http://example.invalid/job.jar", &settings)
            .await
            .expect_err("refused");
        assert!(error.contains("scheme \"http\" is not allowed"), "{error}");
    }

    #[tokio::test]
    async fn downloads_stop_at_the_size_limit() {
        let dir = temp_dir("http");
        let (_, bytes) = fetch(&serve_once(vec![7; 100]), &settings(1000, &dir))
            .await
            .expect("downloaded");
        assert_eq!(bytes.len(), 100);
        let error = fetch(&serve_once(vec![7; 100]), &settings(10, &dir))
            .await
            .expect_err("too big");
        assert!(error.contains("over the operator's limit"), "{error}");
    }
}
