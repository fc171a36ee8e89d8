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
