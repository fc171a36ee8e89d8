//! What the kubelet does for one pod: map its Flink container to the distribution's scripts,
//! materialise its volumes and configuration, and run it as a local process on its own
//! loopback address.

use serde_json::Value;
use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

/// How a container runs on this machine.
#[derive(Clone, Debug, PartialEq)]
pub struct ProcessSpec {
    pub program: String,
    pub args: Vec<String>,
    pub env: BTreeMap<String, String>,
}

/// Flink image entrypoints and the distribution script that runs each in the foreground.
fn script_for(entrypoint: &str) -> Option<(&'static str, bool)> {
    match entrypoint {
        "jobmanager" => Some(("jobmanager.sh", true)),
        "taskmanager" => Some(("taskmanager.sh", true)),
        "standalone-job" => Some(("standalone-job.sh", true)),
        "kubernetes-jobmanager.sh" | "/opt/flink/bin/kubernetes-jobmanager.sh" => {
            Some(("kubernetes-jobmanager.sh", false))
        }
        "kubernetes-taskmanager.sh" | "/opt/flink/bin/kubernetes-taskmanager.sh" => {
            Some(("kubernetes-taskmanager.sh", false))
        }
        _ => None,
    }
}

/// `local:///opt/flink/usrlib/x.jar` → the jar directory; `local:///opt/flink/...` → the
/// distribution; `/opt/flink/...` likewise.
pub fn map_path(arg: &str, flink_home: &Path, usrlib: &Path) -> String {
    let arg = arg.strip_prefix("local://").unwrap_or(arg);
    if let Some(rest) = arg.strip_prefix("/opt/flink/usrlib/") {
        return usrlib.join(rest).display().to_string();
    }
    if let Some(rest) = arg.strip_prefix("/opt/flink/") {
        return flink_home.join(rest).display().to_string();
    }
    arg.to_string()
}

/// The kubelet's expansion of `$(VAR)` in a command or argument with the container's
/// environment: a defined variable is replaced, an undefined one is left as written, and
/// `$$` is a literal `$`.
pub fn expand(word: &str, env: &BTreeMap<String, String>) -> String {
    let mut out = String::with_capacity(word.len());
    let mut rest = word;
    while let Some(at) = rest.find('$') {
        out.push_str(&rest[..at]);
        let tail = &rest[at..];
        if let Some(after) = tail.strip_prefix("$$") {
            out.push('$');
            rest = after;
        } else if let Some((name, after)) = tail
            .strip_prefix("$(")
            .and_then(|t| t.split_once(')'))
            .filter(|(name, _)| env.contains_key(*name))
        {
            out.push_str(&env[name]);
            rest = after;
        } else {
            out.push('$');
            rest = &tail[1..];
        }
    }
    out.push_str(rest);
    out
}

/// The command of a Flink container (its `$(VAR)`s expanded with `env`), or why it cannot run
/// here.
pub fn command(
    container: &Value,
    env: &BTreeMap<String, String>,
    flink_home: &Path,
    usrlib: &Path,
) -> Result<(String, Vec<String>), String> {
    let words: Vec<String> = ["command", "args"]
        .iter()
        .flat_map(|k| {
            container
                .get(*k)
                .and_then(Value::as_array)
                .cloned()
                .unwrap_or_default()
        })
        .filter_map(|v| v.as_str().map(|w| expand(w, env)))
        .collect();
    // The image's `bash -c "<script> <args>"` (how Flink's native decorators start a
    // JobManager or TaskManager): the command line is split into its words.
    let words = match words.iter().position(|w| w == "-c") {
        Some(at) if at > 0 && words[at - 1].ends_with("bash") && at + 1 < words.len() => {
            let mut split = words[..at - 1].to_vec();
            split.extend(shell_words(&words[at + 1]));
            split
        }
        _ => words,
    };
    let position = words.iter().position(|w| script_for(w).is_some()).ok_or_else(|| {
        format!(
            "container {:?} runs {words:?}; the process runtime runs Flink's entrypoints (jobmanager, taskmanager, standalone-job, kubernetes-jobmanager.sh, kubernetes-taskmanager.sh)",
            container.get("name").and_then(Value::as_str).unwrap_or("")
        )
    })?;
    let (script, foreground) = script_for(&words[position]).expect("found above");
    let mut args = vec![flink_home.join("bin").join(script).display().to_string()];
    if foreground {
        args.push("start-foreground".into());
    }
    args.extend(
        words[position + 1..]
            .iter()
            .map(|w| map_path(w, flink_home, usrlib)),
    );
    Ok(("bash".into(), args))
}

/// The words of a shell command line: split at unquoted whitespace, single and double quotes
/// grouping (and removed), a backslash escaping the next character outside single quotes.
pub fn shell_words(line: &str) -> Vec<String> {
    let mut words = Vec::new();
    let mut word = String::new();
    let mut in_word = false;
    let mut chars = line.chars();
    let mut quote: Option<char> = None;
    while let Some(c) = chars.next() {
        match (quote, c) {
            (Some(q), c) if c == q => quote = None,
            (Some('\''), c) => word.push(c),
            (_, '\\') => {
                if let Some(next) = chars.next() {
                    word.push(next);
                }
                in_word = true;
            }
            (Some(_), c) => word.push(c),
            (None, '\'' | '"') => {
                quote = Some(c);
                in_word = true;
            }
            (None, c) if c.is_whitespace() => {
                if in_word {
                    words.push(std::mem::take(&mut word));
                    in_word = false;
                }
            }
            (None, c) => {
                word.push(c);
                in_word = true;
            }
        }
    }
    if in_word {
        words.push(word);
    }
    words
}

/// Container environment with `fieldRef`s resolved the way the kubelet does.
pub fn environment(container: &Value, pod: &Value, pod_ip: &str) -> BTreeMap<String, String> {
    let mut env = BTreeMap::new();
    for var in container
        .get("env")
        .and_then(Value::as_array)
        .into_iter()
        .flatten()
    {
        let Some(name) = var.get("name").and_then(Value::as_str) else {
            continue;
        };
        let value = match (
            var.get("value"),
            var.pointer("/valueFrom/fieldRef/fieldPath")
                .and_then(Value::as_str),
        ) {
            (Some(v), _) => v.as_str().unwrap_or("").to_string(),
            (None, Some("status.podIP")) => pod_ip.to_string(),
            (None, Some(path)) => pod
                .pointer(&format!("/{}", path.replace('.', "/")))
                .and_then(Value::as_str)
                .unwrap_or("")
                .to_string(),
            _ => String::new(),
        };
        env.insert(name.to_string(), value);
    }
    env
}

/// Writes a pod's volumes under `dir`; returns mount path → local directory.
pub fn materialize_volumes(
    pod: &Value,
    container: &Value,
    dir: &Path,
    config_maps: &[Value],
    secrets: &[Value],
) -> Result<BTreeMap<String, PathBuf>, String> {
    let namespace = pod
        .pointer("/metadata/namespace")
        .and_then(Value::as_str)
        .unwrap_or("default");
    let find = |items: &[Value], name: &str| {
        items
            .iter()
            .find(|o| {
                o.pointer("/metadata/name").and_then(Value::as_str) == Some(name)
                    && o.pointer("/metadata/namespace").and_then(Value::as_str) == Some(namespace)
            })
            .cloned()
    };
    let mut volumes = BTreeMap::new();
    for volume in pod
        .pointer("/spec/volumes")
        .and_then(Value::as_array)
        .into_iter()
        .flatten()
    {
        let name = volume
            .get("name")
            .and_then(Value::as_str)
            .unwrap_or("volume");
        let target = dir.join("volumes").join(name);
        std::fs::create_dir_all(&target).map_err(|e| format!("volume {name}: {e}"))?;
        let files: BTreeMap<String, Vec<u8>> = if let Some(source) = volume.get("configMap") {
            let cm_name = source.get("name").and_then(Value::as_str).unwrap_or("");
            let cm = find(config_maps, cm_name)
                .ok_or_else(|| format!("configmap \"{cm_name}\" not found"))?;
            let mut files = text_files(&cm, "data");
            files.extend(base64_files(&cm, "binaryData"));
            select_items(source, &mut files);
            files
        } else if let Some(source) = volume.get("secret") {
            let secret_name = source
                .get("secretName")
                .and_then(Value::as_str)
                .unwrap_or("");
            let secret = find(secrets, secret_name)
                .ok_or_else(|| format!("secret \"{secret_name}\" not found"))?;
            let mut files = text_files(&secret, "stringData");
            files.extend(base64_files(&secret, "data"));
            select_items(source, &mut files);
            files
        } else if let Some(path) = volume.pointer("/hostPath/path").and_then(Value::as_str) {
            std::fs::create_dir_all(path).map_err(|e| format!("hostPath {path}: {e}"))?;
            volumes.insert(name.to_string(), PathBuf::from(path));
            continue;
        } else {
            BTreeMap::new()
        };
        for (file, bytes) in files {
            let path = target.join(&file);
            if let Some(parent) = path.parent() {
                std::fs::create_dir_all(parent).map_err(|e| e.to_string())?;
            }
            std::fs::write(&path, bytes).map_err(|e| format!("{}: {e}", path.display()))?;
        }
        volumes.insert(name.to_string(), target);
    }
    let mut mounts = BTreeMap::new();
    for mount in container
        .get("volumeMounts")
        .and_then(Value::as_array)
        .into_iter()
        .flatten()
    {
        let (Some(name), Some(path)) = (
            mount.get("name").and_then(Value::as_str),
            mount.get("mountPath").and_then(Value::as_str),
        ) else {
            continue;
        };
        if let Some(dir) = volumes.get(name) {
            mounts.insert(path.to_string(), dir.clone());
        }
    }
    Ok(mounts)
}

/// A ConfigMap's `data` or a Secret's `stringData`: file name → text.
fn text_files(object: &Value, field: &str) -> BTreeMap<String, Vec<u8>> {
    object
        .get(field)
        .and_then(Value::as_object)
        .map(|d| {
            d.iter()
                .map(|(k, v)| (k.clone(), v.as_str().unwrap_or("").as_bytes().to_vec()))
                .collect()
        })
        .unwrap_or_default()
}

/// A ConfigMap's `binaryData` or a Secret's `data`: file name → decoded bytes.
fn base64_files(object: &Value, field: &str) -> BTreeMap<String, Vec<u8>> {
    object
        .get(field)
        .and_then(Value::as_object)
        .map(|d| {
            d.iter()
                .map(|(k, v)| (k.clone(), base64_decode(v.as_str().unwrap_or(""))))
                .collect()
        })
        .unwrap_or_default()
}

fn select_items(source: &Value, files: &mut BTreeMap<String, Vec<u8>>) {
    if let Some(items) = source.get("items").and_then(Value::as_array) {
        let mut selected = BTreeMap::new();
        for item in items {
            if let (Some(key), Some(path)) = (
                item.get("key").and_then(Value::as_str),
                item.get("path").and_then(Value::as_str),
            ) && let Some(bytes) = files.get(key)
            {
                selected.insert(path.to_string(), bytes.clone());
            }
        }
        *files = selected;
    }
}

fn base64_decode(text: &str) -> Vec<u8> {
    const ALPHABET: &[u8] = b"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";
    let mut out = Vec::new();
    let (mut buffer, mut bits) = (0u32, 0u32);
    for c in text
        .bytes()
        .filter(|c| !c.is_ascii_whitespace() && *c != b'=')
    {
        let Some(value) = ALPHABET.iter().position(|a| *a == c) else {
            continue;
        };
        buffer = (buffer << 6) | value as u32;
        bits += 6;
        if bits >= 8 {
            bits -= 8;
            out.push((buffer >> bits) as u8);
        }
    }
    out
}

/// The pod's Flink configuration: what its config volume (or the distribution) holds, then
/// `FLINK_PROPERTIES` (as the image's entrypoint appends them), then the pod's own address
/// for every bind and advertised host.
pub fn flink_config(
    conf_source: Option<&Path>,
    flink_home: &Path,
    env: &BTreeMap<String, String>,
    pod_ip: &str,
) -> Result<BTreeMap<String, String>, String> {
    let read_flat = |path: &Path| -> Result<BTreeMap<String, String>, String> {
        let text = std::fs::read_to_string(path).map_err(|e| format!("{}: {e}", path.display()))?;
        let conf: flink_api::FlinkConfiguration =
            serde_saphyr::from_str(&text).map_err(|e| format!("{}: {e}", path.display()))?;
        Ok(conf.flat())
    };
    let shipped = read_flat(&flink_home.join("conf/config.yaml"))?;
    let mut config = match conf_source {
        Some(dir) if dir.join("config.yaml").is_file() => read_flat(&dir.join("config.yaml"))?,
        Some(dir) if dir.join("flink-conf.yaml").is_file() => {
            read_flat(&dir.join("flink-conf.yaml"))?
        }
        _ => shipped.clone(),
    };
    // Flink needs the JVM options its distribution ships (module opens) whatever the image config says.
    if let Some(opts) = shipped.get("env.java.opts.all") {
        config
            .entry("env.java.opts.all".into())
            .or_insert_with(|| opts.clone());
    }
    for line in env
        .get("FLINK_PROPERTIES")
        .map(String::as_str)
        .unwrap_or("")
        .lines()
    {
        if let Some((k, v)) = line.split_once(':') {
            config.insert(k.trim().to_string(), v.trim().to_string());
        }
    }
    if let Some(address) = env.get("JOB_MANAGER_RPC_ADDRESS") {
        config.insert("jobmanager.rpc.address".into(), address.clone());
    }
    for key in [
        "jobmanager.bind-host",
        "taskmanager.bind-host",
        "rest.bind-address",
        "taskmanager.host",
    ] {
        config.insert(key.into(), pod_ip.into());
    }
    Ok(config)
}

/// Paths in the configuration's values as the container sees them, to where they are here:
/// a mounted volume's path to its directory (the native TaskManager pod template in the
/// configuration volume), `/opt/flink/usrlib/...` to the jar directory and `/opt/flink/...` to
/// the distribution (`pipeline.jars: local:///opt/flink/usrlib/job.jar` in native mode).
pub fn map_config_paths(
    config: &mut BTreeMap<String, String>,
    mounts: &BTreeMap<String, PathBuf>,
    flink_home: &Path,
    usrlib: &Path,
) {
    let mut prefixes: Vec<(String, String)> = mounts
        .iter()
        .map(|(at, dir)| {
            (
                format!("{}/", at.trim_end_matches('/')),
                format!("{}/", dir.display()),
            )
        })
        .collect();
    prefixes.sort_by_key(|(at, _)| std::cmp::Reverse(at.len()));
    prefixes.push((
        "/opt/flink/usrlib/".into(),
        format!("{}/", usrlib.display()),
    ));
    prefixes.push(("/opt/flink/".into(), format!("{}/", flink_home.display())));
    for value in config.values_mut() {
        if !value.contains("/opt/") && !mounts.keys().any(|at| value.contains(at.as_str())) {
            continue;
        }
        // Each occurrence is mapped once, by the longest prefix that names it.
        let mut out = String::with_capacity(value.len());
        let mut rest = value.as_str();
        'scan: while !rest.is_empty() {
            // Only where a path starts: the value's start, after a scheme's `//`, or after a
            // separator (`s3://bucket/opt/flink/x` is not the container's `/opt/flink`).
            let at_path_start =
                out.is_empty() || out.ends_with("//") || out.ends_with([':', ';', ',', ' ', '=']);
            for (at, to) in prefixes.iter().filter(|_| at_path_start) {
                if rest.starts_with(at.as_str()) {
                    out.push_str(to);
                    rest = &rest[at.len()..];
                    continue 'scan;
                }
            }
            let c = rest.chars().next().unwrap_or_default();
            out.push(c);
            rest = &rest[c.len_utf8()..];
        }
        *value = out;
    }
}

/// The pod's `config.yaml`, written as the operator renders one.
pub fn config_yaml(config: &BTreeMap<String, String>) -> Result<String, String> {
    flink_api::config::config_file_text(config, flink_api::config::ConfigFile::Yaml)
        .map_err(|(key, problem)| format!("configuration key {key:?}: {problem}"))
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn variables_expand_like_the_kubelet_does() {
        let env = BTreeMap::from([
            ("A".to_string(), "x".to_string()),
            ("EMPTY".to_string(), String::new()),
        ]);
        assert_eq!(expand("$(A)-$(A)", &env), "x-x");
        assert_eq!(expand("$(UNDEFINED) $(EMPTY).", &env), "$(UNDEFINED) .");
        assert_eq!(expand("$$(A) costs $5 $", &env), "$(A) costs $5 $");
        assert_eq!(expand("$(A", &env), "$(A");
    }

    #[test]
    fn flink_entrypoints_map_to_the_distribution_scripts() {
        let home = Path::new("/flink");
        let usrlib = Path::new("/jars");
        let c = json!({"name": "flink-main-container", "args": ["standalone-job", "--job-classname", "A", "--jars", "local:///opt/flink/usrlib/job.jar"]});
        let env = BTreeMap::from([("POD_NAME".to_string(), "tm-1".to_string())]);
        let (program, args) = command(&c, &env, home, usrlib).unwrap();
        assert_eq!(program, "bash");
        assert_eq!(
            args,
            [
                "/flink/bin/standalone-job.sh",
                "start-foreground",
                "--job-classname",
                "A",
                "--jars",
                "/jars/job.jar"
            ]
        );
        let tm = json!({"name": "tm", "command": ["/docker-entrypoint.sh"], "args": ["taskmanager", "-Dtaskmanager.resource-id=$(POD_NAME)"]});
        assert_eq!(
            command(&tm, &env, home, usrlib).unwrap().1,
            [
                "/flink/bin/taskmanager.sh",
                "start-foreground",
                "-Dtaskmanager.resource-id=tm-1"
            ]
        );
        assert!(
            command(
                &json!({"name": "x", "command": ["nginx"]}),
                &env,
                home,
                usrlib
            )
            .unwrap_err()
            .contains("Flink's entrypoints")
        );
    }

    /// Flink's native decorators start a TaskManager as the image's entrypoint running
    /// `bash -c "kubernetes-taskmanager.sh <dynamic properties>"`.
    #[test]
    fn a_bash_wrapped_native_entrypoint_runs_its_script_with_its_words() {
        let tm = json!({"name": "flink-main-container", "command": ["/docker-entrypoint.sh"],
            "args": ["bash", "-c", "kubernetes-taskmanager.sh -D taskmanager.memory.network.min=134217730b -D 'pipeline.name=a b' -Dx=\\\"y\\\""]});
        let (program, args) = command(
            &tm,
            &BTreeMap::new(),
            Path::new("/flink"),
            Path::new("/jars"),
        )
        .unwrap();
        assert_eq!(program, "bash");
        assert_eq!(
            args,
            [
                "/flink/bin/kubernetes-taskmanager.sh",
                "-D",
                "taskmanager.memory.network.min=134217730b",
                "-D",
                "pipeline.name=a b",
                "-Dx=\"y\""
            ]
        );
    }

    #[test]
    fn container_paths_in_the_configuration_map_to_where_they_are_here() {
        let mut config = BTreeMap::from([
            (
                "pipeline.jars".to_string(),
                "local:///opt/flink/usrlib/job.jar;local:///opt/flink/usrlib/lib.jar".to_string(),
            ),
            (
                "kubernetes.pod-template-file.taskmanager".to_string(),
                "/opt/flink/conf/taskmanager-pod-template.yaml".to_string(),
            ),
            ("plugins".to_string(), "/opt/flink/plugins/x".to_string()),
            ("state.dir".to_string(), "file:///tmp/state".to_string()),
            (
                "checkpoints".to_string(),
                "s3://bucket/opt/flink/cp;file:///data/opt/flink/x".to_string(),
            ),
        ]);
        let mounts = BTreeMap::from([(
            "/opt/flink/conf".to_string(),
            PathBuf::from("/pod/conf-volume"),
        )]);
        map_config_paths(
            &mut config,
            &mounts,
            Path::new("/flink"),
            Path::new("/jars"),
        );
        assert_eq!(
            config["pipeline.jars"],
            "local:///jars/job.jar;local:///jars/lib.jar"
        );
        assert_eq!(
            config["kubernetes.pod-template-file.taskmanager"],
            "/pod/conf-volume/taskmanager-pod-template.yaml"
        );
        assert_eq!(config["plugins"], "/flink/plugins/x");
        assert_eq!(config["state.dir"], "file:///tmp/state");
        assert_eq!(
            config["checkpoints"], "s3://bucket/opt/flink/cp;file:///data/opt/flink/x",
            "only where a path starts"
        );
    }

    #[test]
    fn config_map_and_secret_volumes_are_written_where_they_are_mounted() {
        let dir = std::env::temp_dir().join(format!("sandbox-volumes-{}", std::process::id()));
        let pod = json!({"metadata": {"namespace": "ns"}, "spec": {"volumes": [
            {"name": "conf", "configMap": {"name": "cm", "items": [{"key": "config.yaml", "path": "config.yaml"}, {"key": "blob", "path": "blob.bin"}]}},
            {"name": "creds", "secret": {"secretName": "s"}}]}});
        let container = json!({"volumeMounts": [{"name": "conf", "mountPath": "/opt/flink/conf"}, {"name": "creds", "mountPath": "/creds"}]});
        let cms = vec![
            json!({"metadata": {"name": "cm", "namespace": "ns"}, "data": {"config.yaml": "a: 1", "other": "x"}, "binaryData": {"blob": "AAE="}}),
        ];
        let secrets = vec![
            json!({"metadata": {"name": "s", "namespace": "ns"}, "data": {"token": "c2VjcmV0"}}),
        ];
        let mounts = materialize_volumes(&pod, &container, &dir, &cms, &secrets).unwrap();
        let conf = &mounts["/opt/flink/conf"];
        assert_eq!(
            std::fs::read_to_string(conf.join("config.yaml")).unwrap(),
            "a: 1"
        );
        assert_eq!(std::fs::read(conf.join("blob.bin")).unwrap(), [0u8, 1]);
        assert!(!conf.join("other").exists(), "items select what is written");
        assert_eq!(
            std::fs::read_to_string(mounts["/creds"].join("token")).unwrap(),
            "secret"
        );
        let missing = materialize_volumes(&pod, &container, &dir, &[], &secrets).unwrap_err();
        assert!(missing.contains("configmap \"cm\" not found"), "{missing}");
        let _ = std::fs::remove_dir_all(dir);
    }

    #[test]
    fn secrets_are_base64_decoded() {
        assert_eq!(base64_decode("aGVsbG8="), b"hello");
    }
}
