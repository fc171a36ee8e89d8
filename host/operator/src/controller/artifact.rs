//! Fetching a session job's jar, which a tenant names: nothing it names may reach the
//! operator's own files or a host the operator can see and the tenant cannot.
//!
//! - Only the allowed schemes (`kubernetes.operator.user.artifacts.allowed-schemes`, `https` by
//!   default), checked by [`flink_api::artifact::uri_problem`] as validation checks them.
//! - `http(s)`: the host is resolved once, every address is checked against the restricted
//!   ranges, and the connection goes to exactly those addresses (no second resolution that a
//!   rebinding name could answer differently); no proxy; redirects are followed by hand, each
//!   checked the same way; headers go to the original host only. The body streams to a file
//!   under `base.dir` with a size cap, never whole into memory.
//! - `local://` and `file://` are read only under the directories an administrator mapped
//!   (`ArtifactSettings::local_roots`), after resolving `..` and symbolic links, and only
//!   regular files (not `/dev/zero`).
//! - At most `concurrent_fetches` jars are held at once over all resources, and at most
//!   [`PER_NAMESPACE`] per namespace, so a tenant whose jars are slow to come (or whose
//!   JobManager is slow to take them) cannot hold every slot; a fetch that waits 30 s for a
//!   slot fails and is retried.

use crate::settings::ArtifactSettings;
use flink_api::artifact::{restricted, restricted_message, uri_problem};
use flink_api::validation::ValidationSettings;
use flink_rest::root_cause;
use futures::StreamExt;
use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::Duration;
use tokio::io::AsyncWriteExt;
use tokio::sync::{OwnedSemaphorePermit, Semaphore};
use url::Url;

const FIELD: &str = "spec.job.jarURI";
/// Fetches at once from one namespace.
pub const PER_NAMESPACE: usize = 2;
/// How long a fetch waits for a slot.
const SLOT_WAIT: Duration = Duration::from_secs(30);
const CONNECT: Duration = Duration::from_secs(10);
const RESOLVE: Duration = Duration::from_secs(10);

/// Fetches jars for upload; one per operator.
pub struct Fetcher {
    settings: ArtifactSettings,
    permits: Arc<Semaphore>,
    /// Fetches in flight per namespace (entries go at 0).
    in_flight: Arc<std::sync::Mutex<std::collections::HashMap<String, usize>>>,
    next_file: AtomicU64,
    /// Which addresses are never connected to (`flink_api::artifact::restricted`; tests
    /// restrict a loopback address of their own instead).
    restricted: fn(std::net::IpAddr) -> Option<&'static str>,
}

/// A jar ready to upload: an open file and its length. A download is deleted when dropped,
/// and its fetch slot freed.
pub struct Jar {
    pub file_name: String,
    pub file: tokio::fs::File,
    pub len: u64,
    downloaded: Option<PathBuf>,
    _permit: Slot,
}

/// A fetch slot: one of all, and one of its namespace's.
struct Slot {
    _overall: OwnedSemaphorePermit,
    namespace: String,
    in_flight: Arc<std::sync::Mutex<std::collections::HashMap<String, usize>>>,
}

impl Drop for Slot {
    fn drop(&mut self) {
        let mut in_flight = self.in_flight.lock().unwrap_or_else(|e| e.into_inner());
        if let Some(count) = in_flight.get_mut(&self.namespace) {
            *count -= 1;
            if *count == 0 {
                in_flight.remove(&self.namespace);
            }
        }
    }
}

impl Drop for Jar {
    fn drop(&mut self) {
        if let Some(path) = &self.downloaded {
            let _ = std::fs::remove_file(path);
        }
    }
}

impl Fetcher {
    /// Downloads a crashed operator left behind (each is removed when its upload ends) are
    /// removed first, so they neither fill the directory nor collide with new names.
    pub fn new(settings: ArtifactSettings) -> Self {
        if let Ok(entries) = std::fs::read_dir(&settings.base_dir) {
            for entry in entries.flatten() {
                let name = entry.file_name();
                let name = name.to_string_lossy();
                if name.starts_with("fetch-") && name.ends_with(".jar") {
                    let _ = std::fs::remove_file(entry.path());
                }
            }
        }
        Self {
            permits: Arc::new(Semaphore::new(settings.concurrent_fetches.max(1))),
            settings,
            in_flight: Arc::default(),
            next_file: AtomicU64::new(0),
            restricted,
        }
    }

    /// A slot for a fetch of `namespace`, or why there is none now (the reconcile retries).
    async fn slot(&self, namespace: &str) -> Result<Slot, String> {
        {
            let mut in_flight = self.in_flight.lock().unwrap_or_else(|e| e.into_inner());
            let count = in_flight.entry(namespace.to_string()).or_default();
            if *count >= PER_NAMESPACE {
                return Err(format!(
                    "{FIELD}: namespace {namespace} already fetches {PER_NAMESPACE} jars; this one is fetched when one of them is done"
                ));
            }
            *count += 1;
        }
        // Counted from here: the slot's drop gives the namespace's count back.
        let pending = Slot {
            _overall: match tokio::time::timeout(SLOT_WAIT, self.permits.clone().acquire_owned())
                .await
            {
                Ok(Ok(permit)) => permit,
                _ => {
                    let mut in_flight = self.in_flight.lock().unwrap_or_else(|e| e.into_inner());
                    if let Some(count) = in_flight.get_mut(namespace) {
                        *count -= 1;
                        if *count == 0 {
                            in_flight.remove(namespace);
                        }
                    }
                    return Err(format!(
                        "{FIELD}: every jar fetch slot was busy for {} s; the fetch is retried",
                        SLOT_WAIT.as_secs()
                    ));
                }
            },
            namespace: namespace.to_string(),
            in_flight: self.in_flight.clone(),
        };
        Ok(pending)
    }

    /// The jar `uri` names, or why the operator will not or cannot have it (naming the field
    /// and the fix). `headers`: the operator's and the session job's
    /// `kubernetes.operator.user.artifacts.http.header`.
    pub async fn fetch(
        &self,
        namespace: &str,
        uri: &str,
        validation: &ValidationSettings,
        headers: &[(String, String)],
    ) -> Result<Jar, String> {
        if let Some(problem) = scheme_problem(uri, validation) {
            return Err(format!("{FIELD}: {problem}"));
        }
        let url = Url::parse(uri).map_err(|e| format!("{FIELD}: {uri:?} is not a URI: {e}"))?;
        let file_name = url
            .path_segments()
            .and_then(|mut s| s.next_back())
            .filter(|n| !n.is_empty())
            .unwrap_or("job.jar")
            .to_string();
        let permit = self.slot(namespace).await?;
        match url.scheme() {
            "local" | "file" => self.local(&url, uri, file_name, permit).await,
            "http" | "https" => {
                self.download(url, uri, file_name, validation, headers, permit)
                    .await
            }
            other => Err(format!(
                "{FIELD}: the operator cannot fetch {other}:// jars; use https://"
            )),
        }
    }

    async fn local(
        &self,
        url: &Url,
        uri: &str,
        file_name: String,
        permit: Slot,
    ) -> Result<Jar, String> {
        let path = percent_encoding::percent_decode_str(url.path())
            .decode_utf8()
            .map_err(|_| format!("{FIELD}: {uri:?} is not a UTF-8 path"))?
            .into_owned();
        let roots = &self.settings.local_roots;
        let (candidate, allowed): (PathBuf, Vec<&Path>) = if url.scheme() == "local" {
            let mapped = roots.iter().find_map(|(prefix, dir)| {
                let rest = path.strip_prefix(prefix.trim_end_matches('/'))?;
                rest.starts_with('/')
                    .then(|| (dir.join(rest.trim_start_matches('/')), vec![dir.as_path()]))
            });
            mapped.ok_or_else(|| outside(uri, roots))?
        } else {
            (
                PathBuf::from(&path),
                roots.iter().map(|(_, d)| d.as_path()).collect(),
            )
        };
        if allowed.is_empty() {
            return Err(outside(uri, roots));
        }
        // Resolved before it is compared: `..` and symbolic links cannot leave a root.
        let Ok(real) = tokio::fs::canonicalize(&candidate).await else {
            return Err(format!(
                "{FIELD}: {uri:?} does not exist in the operator's jar directory; check the file name"
            ));
        };
        let mut inside = false;
        for root in allowed {
            if let Ok(root) = tokio::fs::canonicalize(root).await
                && real.starts_with(&root)
            {
                inside = true;
            }
        }
        if !inside {
            return Err(outside(uri, roots));
        }
        let file = tokio::fs::File::open(&real)
            .await
            .map_err(|e| format!("{FIELD}: cannot read {uri:?}: {e}"))?;
        let metadata = file
            .metadata()
            .await
            .map_err(|e| format!("{FIELD}: cannot read {uri:?}: {e}"))?;
        if !metadata.is_file() {
            return Err(format!("{FIELD}: {uri:?} is not a regular file"));
        }
        if metadata.len() > self.settings.max_bytes {
            return Err(self.too_big(metadata.len()));
        }
        Ok(Jar {
            file_name,
            file,
            len: metadata.len(),
            downloaded: None,
            _permit: permit,
        })
    }

    async fn download(
        &self,
        original: Url,
        uri: &str,
        file_name: String,
        validation: &ValidationSettings,
        headers: &[(String, String)],
        permit: Slot,
    ) -> Result<Jar, String> {
        let mut url = original.clone();
        for hop in 0..=self.settings.max_redirects {
            if hop > 0
                && let Some(problem) = scheme_problem(url.as_str(), validation)
            {
                return Err(format!("{FIELD}: {uri:?} redirects to {url}: {problem}"));
            }
            let host = url.host_str().unwrap_or_default().to_string();
            // A literal address or a name (`localhost` too): every address it stands for now.
            let addresses = resolve(&url).await?;
            if validation.disallow_restricted_hosts {
                for address in &addresses {
                    if let Some(why) = (self.restricted)(address.ip()) {
                        let host = format!("{host} ({})", address.ip());
                        return Err(format!(
                            "{FIELD}: {}",
                            restricted_message(url.as_str(), &host, why)
                        ));
                    }
                }
            }
            let mut client = reqwest::Client::builder()
                .redirect(reqwest::redirect::Policy::none())
                .no_proxy()
                .connect_timeout(CONNECT)
                .timeout(self.settings.timeout);
            if url.domain().is_some() {
                // Connect to the addresses just checked, never to a second answer.
                client = client.resolve_to_addrs(&host, &addresses);
            }
            let client = client
                .build()
                .map_err(|e| format!("cannot build an HTTP client: {e}"))?;
            let mut request = client.get(url.clone());
            if url.origin() == original.origin() {
                for (name, value) in headers {
                    request = request.header(name, value);
                }
            }
            let response = request
                .send()
                .await
                .map_err(|e| format!("{FIELD}: cannot download {url}: {}", root_cause(&e)))?;
            let status = response.status();
            if status.is_redirection() {
                let location = response
                    .headers()
                    .get(reqwest::header::LOCATION)
                    .and_then(|l| l.to_str().ok())
                    .ok_or_else(|| {
                        format!("{FIELD}: {url} answered HTTP {status} without a Location")
                    })?;
                url = url
                    .join(location)
                    .map_err(|e| format!("{FIELD}: {url} redirects to {location:?}: {e}"))?;
                continue;
            }
            if !status.is_success() {
                return Err(format!("{FIELD}: downloading {url} answered HTTP {status}"));
            }
            return self.save(response, &url, file_name, permit).await;
        }
        Err(format!(
            "{FIELD}: {uri:?} redirects more than {} times; give the jar's final URI",
            self.settings.max_redirects
        ))
    }

    /// Streams the body into a new file under `base_dir`, stopping at the size limit.
    async fn save(
        &self,
        response: reqwest::Response,
        url: &Url,
        file_name: String,
        permit: Slot,
    ) -> Result<Jar, String> {
        if let Some(length) = response.content_length()
            && length > self.settings.max_bytes
        {
            return Err(self.too_big(length));
        }
        let dir = &self.settings.base_dir;
        tokio::fs::create_dir_all(dir)
            .await
            .map_err(|e| format!("cannot create {}: {e}", dir.display()))?;
        let path = dir.join(format!(
            "fetch-{}-{}.jar",
            std::process::id(),
            self.next_file.fetch_add(1, Ordering::Relaxed)
        ));
        let file = tokio::fs::File::options()
            .read(true)
            .write(true)
            .create_new(true)
            .open(&path)
            .await
            .map_err(|e| format!("cannot create {}: {e}", path.display()))?;
        // From here on, dropping the jar removes the file, whatever goes wrong.
        let mut jar = Jar {
            file_name,
            file,
            len: 0,
            downloaded: Some(path),
            _permit: permit,
        };
        let mut body = response.bytes_stream();
        while let Some(chunk) = body.next().await {
            let chunk = chunk
                .map_err(|e| format!("{FIELD}: downloading {url} failed: {}", root_cause(&e)))?;
            jar.len += chunk.len() as u64;
            if jar.len > self.settings.max_bytes {
                return Err(self.too_big(jar.len));
            }
            jar.file
                .write_all(&chunk)
                .await
                .map_err(|e| format!("cannot write the downloaded jar: {e}"))?;
        }
        jar.file
            .flush()
            .await
            .map_err(|e| format!("cannot write the downloaded jar: {e}"))?;
        use tokio::io::AsyncSeekExt;
        jar.file
            .rewind()
            .await
            .map_err(|e| format!("cannot read the downloaded jar: {e}"))?;
        Ok(jar)
    }

    fn too_big(&self, size: u64) -> String {
        format!(
            "{FIELD}: the jar is {size} bytes or more, over the operator's limit of {} bytes; shrink the jar",
            self.settings.max_bytes
        )
    }
}

/// `uri_problem` without the host check, which the fetch makes on the resolved addresses.
fn scheme_problem(uri: &str, validation: &ValidationSettings) -> Option<String> {
    let schemes_only = ValidationSettings {
        disallow_restricted_hosts: false,
        ..validation.clone()
    };
    uri_problem(uri, &schemes_only)
}

/// The headers a download of `uri` is sent with: the administrator's (`admin`) only when the
/// jar's host is one of `admin_hosts` (a tenant names the host, so a repository token must not
/// go wherever it points), then the session job's own (`own`, its
/// `kubernetes.operator.user.artifacts.http.header`). Redirects to another origin get none.
pub fn headers_for(
    uri: &str,
    admin: &[(String, String)],
    admin_hosts: &[String],
    own: Option<&String>,
) -> Result<Vec<(String, String)>, String> {
    let host = Url::parse(uri).ok().and_then(|u| {
        u.host_str()
            .map(|h| h.trim_end_matches('.').to_ascii_lowercase())
    });
    let mut headers = match host {
        Some(host) if admin_hosts.contains(&host) => admin.to_vec(),
        _ => Vec::new(),
    };
    if let Some(text) = own {
        headers.extend(flink_api::artifact::parse_headers(text)?);
    }
    Ok(headers)
}

/// Where the URL's host is: the literal address, or every address its name resolves to now.
async fn resolve(url: &Url) -> Result<Vec<SocketAddr>, String> {
    let port = url.port_or_known_default().unwrap_or(443);
    match url.host() {
        Some(url::Host::Ipv4(ip)) => Ok(vec![SocketAddr::new(ip.into(), port)]),
        Some(url::Host::Ipv6(ip)) => Ok(vec![SocketAddr::new(ip.into(), port)]),
        Some(url::Host::Domain(name)) => {
            let found = tokio::time::timeout(RESOLVE, tokio::net::lookup_host((name, port)))
                .await
                .map_err(|_| format!("{FIELD}: resolving {name} took more than {RESOLVE:?}"))?
                .map_err(|e| format!("{FIELD}: cannot resolve {name}: {e}"))?;
            let addresses: Vec<SocketAddr> = found.collect();
            if addresses.is_empty() {
                Err(format!("{FIELD}: {name} resolves to no address"))
            } else {
                Ok(addresses)
            }
        }
        None => Err(format!("{FIELD}: {url} names no host")),
    }
}

/// The message for a `local://` or `file://` URI outside every mapped directory. It does not
/// say whether the file exists.
fn outside(uri: &str, roots: &[(String, PathBuf)]) -> String {
    if roots.is_empty() {
        format!(
            "{FIELD}: {uri:?} names a file the operator does not serve: local:// is a path in the Flink image, which a session job's jar is not uploaded from; give an https:// URI"
        )
    } else {
        format!(
            "{FIELD}: {uri:?} is outside the directories the operator serves jars from ({}); put the jar there or give an https:// URI",
            roots
                .iter()
                .map(|(prefix, _)| format!("local://{prefix}"))
                .collect::<Vec<_>>()
                .join(", ")
        )
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::io::{Read, Write};
    use tokio::io::AsyncReadExt;

    fn scratch(tag: &str) -> PathBuf {
        let dir = std::env::temp_dir().join(format!("artifact-{tag}-{}", std::process::id()));
        let _ = std::fs::remove_dir_all(&dir);
        std::fs::create_dir_all(&dir).expect("temp dir");
        dir
    }

    fn fetcher(dir: &Path, max_bytes: u64) -> Fetcher {
        Fetcher::new(ArtifactSettings {
            base_dir: dir.join("downloads"),
            local_roots: vec![("/opt/flink/usrlib".into(), dir.join("usrlib"))],
            max_bytes,
            ..ArtifactSettings::default()
        })
    }

    fn open(schemes: &[&str]) -> ValidationSettings {
        ValidationSettings {
            session_job_jar_schemes: schemes.iter().map(|s| s.to_string()).collect(),
            disallow_restricted_hosts: false,
        }
    }

    async fn bytes(mut jar: Jar) -> Vec<u8> {
        let mut out = Vec::new();
        jar.file.read_to_end(&mut out).await.expect("read");
        out
    }

    /// Serves `answers` (raw HTTP responses) one per connection on a loopback port; returns
    /// the base URL and the requests it got.
    fn serve(answers: Vec<String>) -> (String, Arc<std::sync::Mutex<Vec<String>>>) {
        let listener = std::net::TcpListener::bind("127.0.0.1:0").expect("bind");
        let port = listener.local_addr().expect("addr").port();
        let seen = Arc::new(std::sync::Mutex::new(Vec::new()));
        let log = seen.clone();
        std::thread::spawn(move || {
            for answer in answers {
                let Ok((mut stream, _)) = listener.accept() else {
                    return;
                };
                let mut request = [0u8; 4096];
                let n = stream.read(&mut request).unwrap_or(0);
                log.lock()
                    .unwrap()
                    .push(String::from_utf8_lossy(&request[..n]).into_owned());
                let _ = stream.write_all(answer.as_bytes());
            }
        });
        (format!("http://127.0.0.1:{port}"), seen)
    }

    fn ok(body: &str) -> String {
        format!(
            "HTTP/1.1 200 OK\r\nContent-Length: {}\r\nConnection: close\r\n\r\n{body}",
            body.len()
        )
    }

    #[tokio::test]
    async fn local_jars_are_read_only_inside_the_mapped_directory() {
        let dir = scratch("local");
        std::fs::create_dir_all(dir.join("usrlib")).unwrap();
        std::fs::write(dir.join("usrlib/job.jar"), b"PK-jar").unwrap();
        std::fs::write(dir.join("secret"), b"token").unwrap();
        std::os::unix::fs::symlink(dir.join("secret"), dir.join("usrlib/link.jar")).unwrap();
        let fetcher = fetcher(&dir, 100);
        let local = open(&["local", "file"]);
        let jar = fetcher
            .fetch("team-a", "local:///opt/flink/usrlib/job.jar", &local, &[])
            .await
            .expect("fetched");
        assert_eq!((jar.file_name.as_str(), jar.len), ("job.jar", 6));
        assert_eq!(bytes(jar).await, b"PK-jar");
        for uri in [
            "local:///opt/flink/usrlib/../../secret".to_string(),
            "local:///opt/flink/usrlib/%2e%2e/secret".to_string(),
            "local:///opt/flink/usrlib/link.jar".to_string(),
            "local:///opt/flink/usrlibx/job.jar".to_string(),
            "local:///etc/passwd".to_string(),
            format!("file://{}", dir.join("secret").display()),
            "file:///proc/self/environ".to_string(),
        ] {
            let error = match fetcher.fetch("team-a", &uri, &local, &[]).await {
                Ok(_) => panic!("{uri} was fetched"),
                Err(e) => e,
            };
            assert!(
                error.contains("outside the directories") || error.contains("does not exist"),
                "{uri}: {error}"
            );
        }
        std::fs::remove_dir_all(&dir).unwrap();
    }

    #[tokio::test]
    async fn devices_and_oversized_files_are_not_read() {
        let dir = scratch("device");
        let fetcher = Fetcher::new(ArtifactSettings {
            local_roots: vec![("/dev".into(), PathBuf::from("/dev"))],
            max_bytes: 3,
            ..ArtifactSettings::default()
        });
        let local = open(&["local"]);
        let error = fetcher
            .fetch("team-a", "local:///dev/zero", &local, &[])
            .await
            .err()
            .expect("refused");
        assert!(error.contains("not a regular file"), "{error}");
        std::fs::create_dir_all(dir.join("usrlib")).unwrap();
        std::fs::write(dir.join("usrlib/big.jar"), b"0123").unwrap();
        let error = self::fetcher(&dir, 3)
            .fetch("team-a", "local:///opt/flink/usrlib/big.jar", &local, &[])
            .await
            .err()
            .expect("too big");
        assert!(
            error.contains("over the operator's limit of 3 bytes"),
            "{error}"
        );
        std::fs::remove_dir_all(&dir).unwrap();
    }

    #[tokio::test]
    async fn without_a_mapping_local_and_file_uris_read_nothing() {
        let fetcher = Fetcher::new(ArtifactSettings::default());
        let error = fetcher
            .fetch(
                "team-a",
                "file:///etc/hostname",
                &open(&["file", "local"]),
                &[],
            )
            .await
            .err()
            .expect("refused");
        assert!(error.contains("does not serve"), "{error}");
    }

    #[tokio::test]
    async fn downloads_stream_to_a_file_that_goes_with_the_jar_and_stop_at_the_limit() {
        let dir = scratch("http");
        let (base, _) = serve(vec![ok("0123456789"), ok("0123456789")]);
        let fetcher = fetcher(&dir, 10);
        let http = open(&["http"]);
        let jar = fetcher
            .fetch("team-a", &format!("{base}/jobs/job.jar"), &http, &[])
            .await
            .expect("downloaded");
        assert_eq!(jar.len, 10);
        let files = || std::fs::read_dir(dir.join("downloads")).unwrap().count();
        assert_eq!(files(), 1);
        assert_eq!(bytes(jar).await, b"0123456789");
        assert_eq!(files(), 0, "the download goes with the jar");
        let error = self::fetcher(&dir, 9)
            .fetch("team-a", &format!("{base}/jobs/job.jar"), &http, &[])
            .await
            .err()
            .expect("too big");
        assert!(error.contains("over the operator's limit"), "{error}");
        assert_eq!(files(), 0, "nothing is left of a refused download");
        std::fs::remove_dir_all(&dir).unwrap();
    }

    #[tokio::test]
    async fn restricted_addresses_are_refused_before_connecting_and_after_a_redirect() {
        let dir = scratch("restricted");
        let strict = ValidationSettings {
            session_job_jar_schemes: vec!["http".into()],
            disallow_restricted_hosts: true,
        };
        // With the real ranges, the loopback test server itself is refused, unasked.
        let (base, seen) = serve(vec![ok("PK")]);
        let error = fetcher(&dir, 100)
            .fetch("team-a", &format!("{base}/job.jar"), &strict, &[])
            .await
            .err()
            .expect("refused");
        assert!(error.contains("is a loopback address"), "{error}");
        assert!(seen.lock().unwrap().is_empty(), "no request was sent");
        // 127.0.0.2 stands for a restricted address here: the first hop (127.0.0.1) passes,
        // its redirect to 127.0.0.2 is refused before anything is sent there.
        let inner = std::net::TcpListener::bind("127.0.0.2:0").expect("bind 127.0.0.2");
        let inner_port = inner.local_addr().unwrap().port();
        inner.set_nonblocking(true).unwrap();
        let (base, _) = serve(vec![format!(
            "HTTP/1.1 302 Found\r\nLocation: http://127.0.0.2:{inner_port}/meta-data\r\nContent-Length: 0\r\nConnection: close\r\n\r\n"
        )]);
        let mut fetcher = fetcher(&dir, 100);
        fetcher.restricted =
            |ip| (ip == std::net::IpAddr::from([127, 0, 0, 2])).then_some("restricted here");
        let error = fetcher
            .fetch("team-a", &format!("{base}/job.jar"), &strict, &[])
            .await
            .err()
            .expect("refused");
        assert!(
            error.contains("127.0.0.2 (127.0.0.2) is restricted here"),
            "{error}"
        );
        assert!(
            inner.accept().is_err(),
            "nothing connected to the restricted address"
        );
        std::fs::remove_dir_all(&dir).unwrap();
    }

    #[tokio::test]
    async fn headers_go_to_the_original_host_only_and_redirects_are_bounded() {
        let dir = scratch("headers");
        let (other, other_seen) = serve(vec![ok("PK")]);
        let (base, seen) = serve(vec![format!(
            "HTTP/1.1 302 Found\r\nLocation: {other}/moved.jar\r\nContent-Length: 0\r\nConnection: close\r\n\r\n"
        )]);
        let fetcher = fetcher(&dir, 100);
        let headers = [("Authorization".to_string(), "Bearer team-a".to_string())];
        let jar = fetcher
            .fetch(
                "team-a",
                &format!("{base}/job.jar"),
                &open(&["http"]),
                &headers,
            )
            .await
            .expect("followed");
        assert_eq!(bytes(jar).await, b"PK");
        assert!(seen.lock().unwrap()[0].contains("Bearer team-a"));
        assert!(
            !other_seen.lock().unwrap()[0].contains("Bearer team-a"),
            "another host never sees the header"
        );
        let looping: Vec<String> = (0..10)
            .map(|_| "HTTP/1.1 302 Found\r\nLocation: /again.jar\r\nContent-Length: 0\r\nConnection: close\r\n\r\n".to_string())
            .collect();
        let (base, _) = serve(looping);
        let error = fetcher
            .fetch("team-a", &format!("{base}/job.jar"), &open(&["http"]), &[])
            .await
            .err()
            .expect("bounded");
        assert!(error.contains("redirects more than 5 times"), "{error}");
        std::fs::remove_dir_all(&dir).unwrap();
    }

    #[test]
    fn the_administrators_headers_go_only_to_the_hosts_listed_for_them() {
        let admin = [("Authorization".to_string(), "Bearer repo-token".to_string())];
        let hosts = ["repo.example.com".to_string()];
        let own = "X-Team:a".to_string();
        assert_eq!(
            headers_for(
                "https://REPO.example.com./j.jar",
                &admin,
                &hosts,
                Some(&own)
            )
            .unwrap(),
            vec![admin[0].clone(), ("X-Team".to_string(), "a".to_string())]
        );
        assert_eq!(
            headers_for("https://attacker.example/j.jar", &admin, &hosts, Some(&own)).unwrap(),
            vec![("X-Team".to_string(), "a".to_string())],
            "a host a tenant names gets only the tenant's own headers"
        );
        assert!(
            headers_for("https://attacker.example/j.jar", &admin, &[], None)
                .unwrap()
                .is_empty()
        );
        assert!(
            headers_for(
                "https://repo.example.com/j.jar",
                &admin,
                &hosts,
                Some(&"bad".to_string())
            )
            .is_err()
        );
    }

    #[tokio::test]
    async fn a_redirect_to_a_scheme_not_allowed_is_refused() {
        let dir = scratch("scheme");
        let (base, _) = serve(vec![
            "HTTP/1.1 301 Moved\r\nLocation: file:///etc/passwd\r\nContent-Length: 0\r\nConnection: close\r\n\r\n".into(),
        ]);
        let error = fetcher(&dir, 100)
            .fetch("team-a", &format!("{base}/job.jar"), &open(&["http"]), &[])
            .await
            .err()
            .expect("refused");
        assert!(
            error.contains("redirects to file:///etc/passwd: scheme `file` is not allowed"),
            "{error}"
        );
        std::fs::remove_dir_all(&dir).unwrap();
    }
}
