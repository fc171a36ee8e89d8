//! The Helm chart, linted and installed by Helm 4's own engine (PyPI `helm-sdkpy`) into the
//! API stand-in through its kubeconfig, like `helm install` into a cluster; then the installed
//! objects are checked: the CRDs, least-privilege RBAC for both scopes, the operator's
//! Deployment (its arguments parse with this operator's CLI, hardened security context,
//! probes), and the values schema refusing bad values with Helm's message.

use flink_operator::cli::Cli;
use flink_operator_tests::flink_cluster::repo_dir;
use flink_operator_tests::helm::Helm;
use flink_operator_tests::rbac::{Rbac, Request};
use sandbox::{ApiServer, ServerHandle};
use serde_json::{Value, json};
use std::path::{Path, PathBuf};

/// A stand-in on loopback; dropping it drops its runtime, which stops the server.
struct Cluster {
    _runtime: tokio::runtime::Runtime,
    server: ServerHandle,
    kubeconfig: PathBuf,
    _dir: TempDir,
}

struct TempDir(PathBuf);

impl Drop for TempDir {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.0);
    }
}

impl Cluster {
    /// A fresh API stand-in with no CRDs: Helm installs them from the chart.
    fn start(name: &str) -> Cluster {
        let runtime = tokio::runtime::Builder::new_multi_thread()
            .worker_threads(1)
            .enable_all()
            .build()
            .expect("runtime");
        let server = runtime.block_on(async {
            ApiServer::default()
                .start("127.0.0.1:0".parse().expect("addr"))
                .await
                .expect("stand-in starts")
        });
        let dir = std::env::temp_dir().join(format!("helm-chart-{name}-{}", std::process::id()));
        std::fs::create_dir_all(&dir).expect("temp dir");
        let kubeconfig = dir.join("kubeconfig");
        std::fs::write(&kubeconfig, server.kubeconfig()).expect("kubeconfig");
        Cluster {
            _runtime: runtime,
            server,
            kubeconfig,
            _dir: TempDir(dir),
        }
    }

    fn install(
        &self,
        helm: &Helm,
        namespace: &str,
        release: &str,
        values: Value,
    ) -> Result<Value, String> {
        self.helm(helm, &["install"], namespace, release, values)
    }

    /// `command` is `install` or `upgrade`, with its flags.
    fn helm(
        &self,
        helm: &Helm,
        command: &[&str],
        namespace: &str,
        release: &str,
        values: Value,
    ) -> Result<Value, String> {
        let kubeconfig = self.kubeconfig.display().to_string();
        let chart = chart().display().to_string();
        let values = values.to_string();
        let mut args = vec![command[0], &kubeconfig, namespace, release, &chart, &values];
        args.extend(&command[1..]);
        helm.run(&args)
    }

    fn kubectl(&self, args: &[&str]) {
        let status = std::process::Command::new("kubectl")
            .args(args)
            .env("KUBECONFIG", &self.kubeconfig)
            .status()
            .expect("kubectl runs");
        assert!(status.success(), "kubectl {args:?}");
    }

    fn get(&self, group: &str, plural: &str, namespace: Option<&str>, name: &str) -> Option<Value> {
        self.server.with_store(|s| {
            let rt = s.resource_type(group, "v1", plural).cloned()?;
            s.get(&rt, namespace, name).ok()
        })
    }

    fn list(&self, group: &str, plural: &str) -> Vec<Value> {
        self.server.with_store(|s| {
            s.resource_type(group, "v1", plural)
                .cloned()
                .and_then(|rt| s.list(&rt, &Default::default()).ok())
                .map(|(items, _)| items)
                .unwrap_or_default()
        })
    }

    /// The installed RBAC, to ask who may do what where.
    fn rbac(&self) -> Rbac {
        let mut objects = Vec::new();
        for (plural, kind) in [
            ("roles", "Role"),
            ("clusterroles", "ClusterRole"),
            ("rolebindings", "RoleBinding"),
            ("clusterrolebindings", "ClusterRoleBinding"),
        ] {
            for mut object in self.list("rbac.authorization.k8s.io", plural) {
                object["kind"] = json!(kind);
                objects.push(object);
            }
        }
        Rbac::of(objects)
    }
}

fn request<'a>(
    verb: &'a str,
    group: &'a str,
    resource: &'a str,
    namespace: Option<&'a str>,
) -> Request<'a> {
    Request {
        verb,
        group,
        resource,
        namespace,
        name: None,
    }
}

const VERBS: [&str; 8] = [
    "get",
    "list",
    "watch",
    "create",
    "update",
    "patch",
    "delete",
    "deletecollection",
];

/// `account` may do nothing at all in `namespace`: no verb on anything the operator's
/// namespace holds (its ConfigMaps are every tenant's defaults and plugin bindings).
fn assert_nothing_in(rbac: &Rbac, account: (&str, &str), namespace: &str) {
    for (group, resource) in [
        ("", "configmaps"),
        ("", "secrets"),
        ("", "pods"),
        ("", "pods/exec"),
        ("", "serviceaccounts"),
        ("", "serviceaccounts/token"),
        ("", "services"),
        ("apps", "deployments"),
        ("coordination.k8s.io", "leases"),
        ("events.k8s.io", "events"),
        ("flink.apache.org", "flinkdeployments"),
    ] {
        for verb in VERBS {
            assert!(
                !rbac.allows(account, &request(verb, group, resource, Some(namespace))),
                "{account:?} may {verb} {group}/{resource} in {namespace}"
            );
        }
    }
}

/// `account` cannot grant itself more: no RBAC writes, no impersonation, no tokens of other
/// accounts, no exec into pods, nowhere.
fn assert_no_escalation(rbac: &Rbac, account: (&str, &str)) {
    for namespace in [None, Some("team-x"), Some(account.0)] {
        for (verb, group, resource) in [
            ("create", "rbac.authorization.k8s.io", "roles"),
            ("create", "rbac.authorization.k8s.io", "rolebindings"),
            ("create", "rbac.authorization.k8s.io", "clusterroles"),
            ("create", "rbac.authorization.k8s.io", "clusterrolebindings"),
            ("bind", "rbac.authorization.k8s.io", "clusterroles"),
            ("escalate", "rbac.authorization.k8s.io", "clusterroles"),
            ("impersonate", "", "serviceaccounts"),
            ("impersonate", "", "users"),
            ("create", "", "serviceaccounts/token"),
            ("create", "", "pods/exec"),
            ("list", "", "secrets"),
            (
                "create",
                "certificates.k8s.io",
                "certificatesigningrequests",
            ),
        ] {
            assert!(
                !rbac.allows(account, &request(verb, group, resource, namespace)),
                "{account:?} may {verb} {group}/{resource} in {namespace:?}"
            );
        }
    }
}

fn chart() -> PathBuf {
    repo_dir().join("charts/flink-operator")
}

fn names(objects: &[Value]) -> Vec<String> {
    let mut names: Vec<String> = objects
        .iter()
        .map(|o| {
            format!(
                "{}/{}",
                o.pointer("/metadata/namespace")
                    .and_then(Value::as_str)
                    .unwrap_or(""),
                o.pointer("/metadata/name")
                    .and_then(Value::as_str)
                    .unwrap_or("")
            )
        })
        .collect();
    names.sort();
    names
}

fn helm() -> Helm {
    Helm::ensure().unwrap_or_else(|e| panic!("cannot install helm-sdkpy: {e}"))
}

/// Lint messages at warning (2) or error (3) severity, as (severity, path).
fn problems(lint: &Value) -> Vec<(u64, String)> {
    lint["Messages"]
        .as_array()
        .into_iter()
        .flatten()
        .filter_map(|m| {
            let severity = m["Severity"].as_u64()?;
            (severity >= 2).then(|| (severity, m["Path"].as_str().unwrap_or("").to_string()))
        })
        .collect()
}

fn copy_dir(from: &Path, to: &Path) {
    std::fs::create_dir_all(to).expect("mkdir");
    for entry in std::fs::read_dir(from).expect("read chart").flatten() {
        let target = to.join(entry.file_name());
        if entry.path().is_dir() {
            copy_dir(&entry.path(), &target);
        } else {
            std::fs::copy(entry.path(), &target).expect("copy");
        }
    }
}

/// Two first uses at once, into an empty cache of their own: before `first_use`, both
/// created the same venv and one failed with "File exists" (issue 24).
#[test]
fn two_first_uses_of_helm_at_once_both_get_a_working_helm() {
    let cache = std::env::temp_dir().join(format!("helm-first-use-{}", std::process::id()));
    let _cleanup = TempDir(cache.clone());
    let start = std::sync::Arc::new(std::sync::Barrier::new(2));
    let users: Vec<_> = (0..2)
        .map(|_| {
            let (cache, start) = (cache.clone(), start.clone());
            std::thread::spawn(move || {
                start.wait();
                let helm = Helm::ensure_in(&cache)?;
                helm.run(&["lint", &chart().display().to_string()])
            })
        })
        .collect();
    for user in users {
        let lint = user
            .join()
            .expect("no panic")
            .expect("installed and linted");
        assert_eq!(problems(&lint), vec![], "{lint:#}");
    }
}

#[test]
fn the_chart_lints_clean_and_a_broken_copy_does_not() {
    let helm = helm();
    let lint = helm
        .run(&["lint", &chart().display().to_string()])
        .expect("lint runs");
    assert_eq!(problems(&lint), vec![], "{lint:#}");

    let broken = std::env::temp_dir().join(format!("broken-chart-{}", std::process::id()));
    let _cleanup = TempDir(broken.clone());
    copy_dir(&chart(), &broken);
    std::fs::write(
        broken.join("templates/broken.yaml"),
        "{{ .Values.nope.deeper }}\n",
    )
    .unwrap();
    let values = std::fs::read_to_string(broken.join("values.yaml")).unwrap();
    std::fs::write(
        broken.join("values.yaml"),
        values.replace("logFormat: json", "logFormat: xml"),
    )
    .unwrap();
    let lint = helm
        .run(&["lint", &broken.display().to_string()])
        .expect("lint runs");
    assert_eq!(
        problems(&lint),
        vec![
            (3, "values.yaml".to_string()),
            (3, "templates/".to_string())
        ],
        "{lint:#}"
    );
}

#[test]
fn a_cluster_wide_install_creates_the_crds_least_privilege_rbac_and_a_hardened_operator() {
    let helm = helm();
    let cluster = Cluster::start("wide");
    let release = cluster
        .install(&helm, "flink-system", "ops", json!({}))
        .unwrap_or_else(|e| panic!("helm install: {e}"));
    assert_eq!(release["info"]["status"], "deployed", "{release:#}");

    // The CRDs come from crds/, and kubectl can use them at once.
    let crds = names(&cluster.list("apiextensions.k8s.io", "customresourcedefinitions"));
    assert_eq!(
        crds,
        [
            "/flinkbluegreendeployments.flink.apache.org",
            "/flinkdeployments.flink.apache.org",
            "/flinksessionjobs.flink.apache.org",
            "/flinkstatesnapshots.flink.apache.org"
        ]
    );
    cluster.kubectl(&["get", "flinkdeployments", "-A"]);

    // Every namespace is watched: one ClusterRole, bound to the operator's service account.
    let role = cluster
        .get(
            "rbac.authorization.k8s.io",
            "clusterroles",
            None,
            "ops-flink-operator",
        )
        .expect("the operator's ClusterRole");
    let rules = role["rules"].as_array().expect("rules");
    for rule in rules {
        for field in ["apiGroups", "resources", "verbs"] {
            assert!(
                !rule[field].as_array().unwrap().contains(&json!("*")),
                "no wildcard {field}: {rule}"
            );
        }
        assert!(
            !rule["resources"]
                .as_array()
                .unwrap()
                .contains(&json!("secrets")),
            "the operator reads no Secrets: {rule}"
        );
    }
    assert!(rules.iter().any(|r| {
        r["apiGroups"] == json!(["flink.apache.org"])
            && r["resources"]
                .as_array()
                .unwrap()
                .contains(&json!("flinkdeployments"))
            && r["verbs"].as_array().unwrap().contains(&json!("watch"))
    }));
    let binding = cluster
        .get(
            "rbac.authorization.k8s.io",
            "clusterrolebindings",
            None,
            "ops-flink-operator",
        )
        .expect("the ClusterRoleBinding");
    assert_eq!(
        binding["subjects"],
        json!([{"kind": "ServiceAccount", "name": "ops-flink-operator", "namespace": "flink-system"}])
    );
    assert!(
        cluster
            .get(
                "",
                "serviceaccounts",
                Some("flink-system"),
                "ops-flink-operator"
            )
            .is_some()
    );
    // Flink's own pods (a tenant's image) get no account in the operator's namespace; with
    // every namespace watched, none is made unless namespaces are listed for it.
    assert!(
        cluster
            .get("", "serviceaccounts", Some("flink-system"), "flink")
            .is_none()
    );
    let rbac = cluster.rbac();
    assert_nothing_in(&rbac, ("flink-system", "flink"), "flink-system");
    assert_no_escalation(&rbac, ("flink-system", "ops-flink-operator"));
    let operator = ("flink-system", "ops-flink-operator");
    assert!(rbac.allows(
        operator,
        &request(
            "watch",
            "flink.apache.org",
            "flinkdeployments",
            Some("team-x")
        )
    ));
    assert!(rbac.allows(
        operator,
        &request("create", "apps", "deployments", Some("team-x"))
    ));
    assert!(!rbac.allows(operator, &request("get", "", "secrets", Some("team-x"))));
    assert!(rbac.allows(
        operator,
        &Request {
            name: Some("flink-operator-policies"),
            ..request("patch", "", "configmaps", Some("flink-system"))
        }
    ));

    // The operator: arguments this binary accepts, non-root, read-only, probes on its port.
    let deployment = cluster
        .get(
            "apps",
            "deployments",
            Some("flink-system"),
            "ops-flink-operator",
        )
        .expect("the operator Deployment");
    let pod = &deployment["spec"]["template"]["spec"];
    let container = &pod["containers"][0];
    let args = args_of(&deployment);
    let parsed = <Cli as clap::Parser>::try_parse_from(
        std::iter::once("flink-operator".to_string()).chain(args.iter().cloned()),
    );
    assert!(
        parsed.is_ok(),
        "{args:?}: {}",
        parsed.err().map(|e| e.to_string()).unwrap_or_default()
    );
    assert!(
        args.contains(&"--http-address=0.0.0.0:8080".to_string()),
        "{args:?}"
    );
    assert!(args.contains(&"--log-format=json".to_string()), "{args:?}");
    // Two replicas share the work through Leases in the release namespace.
    assert_eq!(deployment["spec"]["replicas"], 2);
    assert!(args.contains(&"--leader-elect".to_string()), "{args:?}");
    assert!(args.contains(&"--shards=4".to_string()), "{args:?}");
    let policies_role = cluster
        .get(
            "rbac.authorization.k8s.io",
            "roles",
            Some("flink-system"),
            "ops-flink-operator-policies",
        )
        .expect("the Role in the operator's namespace");
    assert!(
        policies_role["rules"]
            .as_array()
            .unwrap()
            .iter()
            .any(|r| r["resources"] == json!(["leases"])
                && r["verbs"].as_array().unwrap().contains(&json!("update"))),
        "{policies_role:#}"
    );
    assert_eq!(pod["serviceAccountName"], "ops-flink-operator");
    assert_eq!(pod["securityContext"]["runAsNonRoot"], true);
    assert_eq!(container["securityContext"]["readOnlyRootFilesystem"], true);
    assert_eq!(
        container["securityContext"]["allowPrivilegeEscalation"],
        false
    );
    assert_eq!(
        container["securityContext"]["capabilities"]["drop"],
        json!(["ALL"])
    );
    assert_eq!(container["livenessProbe"]["httpGet"]["path"], "/healthz");
    assert_eq!(container["readinessProbe"]["httpGet"]["path"], "/readyz");
    assert_eq!(container["ports"][0]["containerPort"], 8080);
    assert_eq!(
        container["env"][1]["valueFrom"]["fieldRef"]["fieldPath"],
        "metadata.namespace"
    );

    // The bindings ConfigMap parses as the operator reads it; metrics Service and PDB exist.
    let policies = cluster
        .get(
            "",
            "configmaps",
            Some("flink-system"),
            "flink-operator-policies",
        )
        .expect("the policies ConfigMap");
    let text = policies["data"]["policies.yaml"]
        .as_str()
        .expect("policies.yaml");
    flink_policy::tenancy::PolicyConfig::parse(text).unwrap_or_else(|e| panic!("{e:?}: {text}"));
    assert!(
        cluster
            .get(
                "",
                "services",
                Some("flink-system"),
                "ops-flink-operator-metrics"
            )
            .is_some()
    );
    assert!(
        cluster
            .get(
                "policy",
                "poddisruptionbudgets",
                Some("flink-system"),
                "ops-flink-operator"
            )
            .is_some()
    );
    // Helm recorded its release the way it does in a cluster: a Secret (sent as protobuf).
    assert!(
        cluster
            .get(
                "",
                "secrets",
                Some("flink-system"),
                "sh.helm.release.v1.ops.v1"
            )
            .is_some()
    );
}

#[test]
fn a_namespaced_install_grants_nothing_cluster_wide_and_an_upgrade_can_take_over_the_crds() {
    let helm = helm();
    let cluster = Cluster::start("scoped");
    for namespace in ["team-a", "team-b"] {
        cluster.kubectl(&["create", "namespace", namespace]);
    }
    // The operator's own namespace is watched too: Flink's job account still gets nothing there.
    let mut values = json!({
        "watchNamespaces": ["team-a", "team-b", "ops"],
        "policies": {
            "pluginConfigMap": "team-plugins",
            "policiesYaml": "tenants:\n- name: team-a\n  namespaces: [team-a]\n"
        },
        "operator": {"logFormat": "text"},
        "operatorConfig": {
            "configYaml": "kubernetes.operator.reconcile.interval: 30 s\n",
            "namespaces": {"team-a": "taskmanager.numberOfTaskSlots: 4\n"}
        }
    });
    cluster
        .install(&helm, "ops", "scoped", values.clone())
        .unwrap_or_else(|e| panic!("helm install: {e}"));

    assert_eq!(
        cluster.list("rbac.authorization.k8s.io", "clusterroles"),
        Vec::<Value>::new()
    );
    assert_eq!(
        cluster.list("rbac.authorization.k8s.io", "clusterrolebindings"),
        Vec::<Value>::new()
    );
    let roles = names(&cluster.list("rbac.authorization.k8s.io", "roles"));
    assert_eq!(
        roles,
        [
            "ops/scoped-flink-operator",
            "ops/scoped-flink-operator-policies",
            "team-a/flink",
            "team-a/scoped-flink-operator",
            "team-b/flink",
            "team-b/scoped-flink-operator"
        ]
    );
    let rbac = cluster.rbac();
    for job in ["team-a", "team-b"] {
        let flink = (job, "flink");
        assert!(rbac.allows(flink, &request("create", "", "pods", Some(job))));
        assert!(rbac.allows(flink, &request("watch", "", "pods", Some(job))));
        assert!(rbac.allows(flink, &request("update", "", "configmaps", Some(job))));
        assert!(rbac.allows(flink, &request("get", "apps", "deployments", Some(job))));
        // Nothing beyond what Flink's client asks for.
        for (verb, group, resource) in [
            ("patch", "", "pods"),
            ("get", "", "secrets"),
            ("update", "apps", "deployments"),
            ("delete", "apps", "deployments"),
            ("create", "coordination.k8s.io", "leases"),
            ("create", "", "services"),
        ] {
            assert!(
                !rbac.allows(flink, &request(verb, group, resource, Some(job))),
                "{verb} {resource}"
            );
        }
        assert_nothing_in(&rbac, flink, "ops");
        assert_no_escalation(&rbac, flink);
    }
    assert_nothing_in(&rbac, ("ops", "flink"), "ops");
    let operator = ("ops", "scoped-flink-operator");
    assert_no_escalation(&rbac, operator);
    assert_nothing_in(&rbac, operator, "team-c");
    assert!(rbac.allows(
        operator,
        &request(
            "watch",
            "flink.apache.org",
            "flinkdeployments",
            Some("team-b")
        )
    ));
    assert!(!rbac.allows(
        operator,
        &request("watch", "flink.apache.org", "flinkdeployments", None)
    ));
    let deployment = cluster
        .get("apps", "deployments", Some("ops"), "scoped-flink-operator")
        .expect("the operator Deployment");
    let pod = &deployment["spec"]["template"]["spec"];
    let args = pod["containers"][0]["args"].as_array().unwrap();
    assert!(
        args.contains(&json!("--namespace=team-a,team-b,ops")),
        "{args:?}"
    );
    assert!(args.contains(&json!("--plugin-dir=/plugins")), "{args:?}");
    assert!(
        pod["volumes"]
            .as_array()
            .unwrap()
            .iter()
            .any(|v| v["configMap"]["name"] == "team-plugins"),
        "{pod:#}"
    );
    let policies = cluster
        .get("", "configmaps", Some("ops"), "flink-operator-policies")
        .expect("the policies ConfigMap");
    let config = flink_policy::tenancy::PolicyConfig::parse(
        policies["data"]["policies.yaml"].as_str().unwrap(),
    )
    .expect("the bindings parse");
    assert_eq!(config.tenants.len(), 1);

    // The operator ConfigMap reads as the operator reads it.
    let operator_config = cluster
        .get("", "configmaps", Some("ops"), "flink-operator-config")
        .expect("the operator ConfigMap");
    let data: std::collections::BTreeMap<String, String> =
        serde_json::from_value(operator_config["data"].clone()).unwrap();
    let base = flink_operator::operator_config::Dynamic::from_settings(&Default::default());
    let loaded = flink_operator::operator_config::parse(&data, &base)
        .unwrap_or_else(|problems| panic!("{problems:?}"));
    assert_eq!(
        loaded.dynamic.intervals.reconcile,
        std::time::Duration::from_secs(30)
    );
    assert_eq!(
        loaded.dynamic.flink_defaults_for("team-a")["taskmanager.numberOfTaskSlots"],
        "4"
    );

    // crds/ is install-only. The documented switch: upgrade with templated CRDs, taking
    // ownership of the ones crds/ created; from then on `helm upgrade` upgrades them, and they
    // are kept on uninstall.
    let crd = || {
        cluster
            .get(
                "apiextensions.k8s.io",
                "customresourcedefinitions",
                None,
                "flinkdeployments.flink.apache.org",
            )
            .expect("the FlinkDeployment CRD")
    };
    assert_eq!(
        crd()["metadata"]["annotations"]["meta.helm.sh/release-name"],
        Value::Null
    );
    values["crds"] = json!({"templated": true});
    cluster
        .helm(
            &helm,
            &["upgrade", "--take-ownership"],
            "ops",
            "scoped",
            values,
        )
        .unwrap_or_else(|e| panic!("helm upgrade: {e}"));
    let annotations = crd()["metadata"]["annotations"].clone();
    assert_eq!(
        annotations["meta.helm.sh/release-name"], "scoped",
        "{annotations}"
    );
    assert_eq!(
        annotations["helm.sh/resource-policy"], "keep",
        "{annotations}"
    );
}

#[test]
fn bad_values_are_refused_by_the_schema_with_the_field_named() {
    let helm = helm();
    let cluster = Cluster::start("bad");
    for (values, field) in [
        (
            json!({"replicas": 2, "leaderElection": {"enabled": false}}),
            "replicas > 1 needs leaderElection.enabled",
        ),
        (json!({"operator": {"logFormat": "xml"}}), "logFormat"),
        (json!({"watchNamespace": ["a"]}), "watchNamespace"),
    ] {
        let error = cluster
            .install(&helm, "flink-system", "bad", values.clone())
            .expect_err(&format!("{values} must be refused"));
        assert!(error.contains(field), "{values}: {error}");
    }
    assert_eq!(
        cluster.list("apps", "deployments"),
        Vec::<Value>::new(),
        "nothing half-installed"
    );
}

fn args_of(deployment: &Value) -> Vec<String> {
    deployment["spec"]["template"]["spec"]["containers"][0]["args"]
        .as_array()
        .unwrap()
        .iter()
        .map(|a| a.as_str().unwrap().to_string())
        .collect()
}

#[test]
fn the_webhook_comes_with_its_own_certificate_or_with_cert_manager() {
    let helm = helm();

    // The operator makes the certificate: it may write one Secret and two caBundles, no more.
    let cluster = Cluster::start("webhook");
    cluster
        .install(
            &helm,
            "flink-system",
            "ops",
            json!({"webhook": {"enabled": true}}),
        )
        .unwrap_or_else(|e| panic!("helm install: {e}"));
    let service = cluster
        .get(
            "",
            "services",
            Some("flink-system"),
            "ops-flink-operator-webhook",
        )
        .expect("the webhook Service");
    assert_eq!(service["spec"]["ports"][0]["port"], 443);
    assert_eq!(service["spec"]["ports"][0]["targetPort"], "webhook");
    for (plural, path) in [
        ("validatingwebhookconfigurations", "/validate"),
        ("mutatingwebhookconfigurations", "/mutate"),
    ] {
        let configuration = cluster
            .get(
                "admissionregistration.k8s.io",
                plural,
                None,
                "ops-flink-operator",
            )
            .unwrap_or_else(|| panic!("the {plural}"));
        let webhook = &configuration["webhooks"][0];
        assert_eq!(
            webhook["clientConfig"]["service"],
            json!({"name": "ops-flink-operator-webhook", "namespace": "flink-system", "path": path})
        );
        assert_eq!(webhook["failurePolicy"], "Fail");
        assert_eq!(webhook["admissionReviewVersions"], json!(["v1"]));
    }
    let deployment = cluster
        .get(
            "apps",
            "deployments",
            Some("flink-system"),
            "ops-flink-operator",
        )
        .expect("the operator Deployment");
    let args = args_of(&deployment);
    let parsed = <Cli as clap::Parser>::try_parse_from(
        std::iter::once("flink-operator".to_string()).chain(args.iter().cloned()),
    );
    assert!(parsed.is_ok(), "{args:?}: {:?}", parsed.err());
    for arg in [
        "--webhook-address=0.0.0.0:9443",
        "--webhook-service=ops-flink-operator-webhook",
        "--webhook-secret=ops-flink-operator-webhook-cert",
        "--webhook-configuration=ops-flink-operator",
    ] {
        assert!(args.contains(&arg.to_string()), "{arg} in {args:?}");
    }
    let role = cluster
        .get(
            "rbac.authorization.k8s.io",
            "clusterroles",
            None,
            "ops-flink-operator-webhook",
        )
        .expect("the caBundle ClusterRole");
    assert_eq!(
        role["rules"],
        json!([{"apiGroups": ["admissionregistration.k8s.io"],
                "resources": ["validatingwebhookconfigurations", "mutatingwebhookconfigurations"],
                "resourceNames": ["ops-flink-operator"], "verbs": ["get", "patch"]}])
    );
    let policies_role = cluster
        .get(
            "rbac.authorization.k8s.io",
            "roles",
            Some("flink-system"),
            "ops-flink-operator-policies",
        )
        .expect("the operator's namespaced Role");
    let secret_rules: Vec<&Value> = policies_role["rules"]
        .as_array()
        .unwrap()
        .iter()
        .filter(|r| r["resources"] == json!(["secrets"]))
        .collect();
    assert_eq!(
        secret_rules,
        [
            &json!({"apiGroups": [""], "resources": ["secrets"], "verbs": ["create"]}),
            &json!({"apiGroups": [""], "resources": ["secrets"], "resourceNames": ["ops-flink-operator-webhook-cert"], "verbs": ["get"]})
        ]
    );

    // cert-manager makes it: an Issuer and a Certificate, its CA injected, the Secret mounted,
    // and the operator gets no Secret or webhook-configuration rights.
    let cluster = Cluster::start("cert-manager");
    let crds = repo_dir().join("tests/fixtures/helm/cert-manager-crds.yaml");
    cluster.kubectl(&["apply", "-f", &crds.display().to_string()]);
    cluster
        .install(
            &helm,
            "flink-system",
            "ops",
            json!({"webhook": {"enabled": true, "certManager": {"enabled": true}}}),
        )
        .unwrap_or_else(|e| panic!("helm install: {e}"));
    let certificate = cluster
        .get(
            "cert-manager.io",
            "certificates",
            Some("flink-system"),
            "ops-flink-operator-webhook",
        )
        .expect("the Certificate");
    assert_eq!(
        certificate["spec"]["secretName"],
        "ops-flink-operator-webhook-cert"
    );
    assert_eq!(
        certificate["spec"]["dnsNames"][0],
        "ops-flink-operator-webhook.flink-system.svc"
    );
    assert!(
        cluster
            .get(
                "cert-manager.io",
                "issuers",
                Some("flink-system"),
                "ops-flink-operator-webhook"
            )
            .is_some()
    );
    let configuration = cluster
        .get(
            "admissionregistration.k8s.io",
            "validatingwebhookconfigurations",
            None,
            "ops-flink-operator",
        )
        .expect("the ValidatingWebhookConfiguration");
    assert_eq!(
        configuration["metadata"]["annotations"]["cert-manager.io/inject-ca-from"],
        "flink-system/ops-flink-operator-webhook"
    );
    let deployment = cluster
        .get(
            "apps",
            "deployments",
            Some("flink-system"),
            "ops-flink-operator",
        )
        .expect("the operator Deployment");
    assert!(args_of(&deployment).contains(&"--webhook-cert-dir=/webhook-certs".to_string()));
    assert!(
        deployment["spec"]["template"]["spec"]["volumes"]
            .as_array()
            .unwrap()
            .iter()
            .any(|v| v["secret"]["secretName"] == "ops-flink-operator-webhook-cert")
    );
    assert!(
        cluster
            .get(
                "rbac.authorization.k8s.io",
                "clusterroles",
                None,
                "ops-flink-operator-webhook"
            )
            .is_none()
    );
}

/// Upstream's chart values file (the Apache operator's defaults, read from the shared test
/// data): installs as is, and what it means here is applied.
#[test]
fn the_apache_operators_default_values_install_and_map_onto_this_chart() {
    let shared = std::env::var_os("FLINK_OPERATOR_SHARED")
        .map(PathBuf::from)
        .unwrap_or_else(|| repo_dir().join("../shared"));
    let text = std::fs::read_to_string(shared.join("upstream-config/helm-values.yaml"))
        .expect("upstream's helm-values.yaml in the shared test data");
    let values: Value = serde_saphyr::from_str(&text).expect("upstream's values are YAML");
    let helm = helm();
    let cluster = Cluster::start("upstream");
    let release = cluster
        .install(&helm, "flink-system", "flink-operator", values)
        .unwrap_or_else(|e| panic!("upstream's default values: {e}"));
    assert_eq!(release["info"]["status"], "deployed", "{release:#}");
    let notes = release["info"]["notes"].as_str().unwrap_or_default();
    assert!(
        notes.contains("is the Java operator's image") && notes.contains("logging ("),
        "the values that mean nothing here are named: {notes}"
    );

    let deployment = cluster
        .get(
            "apps",
            "deployments",
            Some("flink-system"),
            "flink-operator",
        )
        .expect("the operator's Deployment");
    let pod = &deployment["spec"]["template"]["spec"];
    // operatorServiceAccount, podSecurityContext, strategy, webhook.create, image.
    assert_eq!(pod["serviceAccountName"], "flink-operator");
    assert!(
        cluster
            .get(
                "",
                "serviceaccounts",
                Some("flink-system"),
                "flink-operator"
            )
            .is_some()
    );
    assert_eq!(pod["securityContext"]["runAsUser"], 9999);
    assert_eq!(pod["securityContext"]["runAsNonRoot"], true, "ours stay");
    assert_eq!(deployment["spec"]["strategy"]["type"], "Recreate");
    assert_eq!(
        pod["containers"][0]["image"],
        "ghcr.io/apache/flink-kubernetes-operator:latest"
    );
    let args = args_of(&deployment);
    assert!(
        args.iter().any(|a| a.starts_with("--webhook-address=")),
        "{args:?}"
    );
    assert!(
        args.contains(&"--http-address=0.0.0.0:8080".to_string()),
        "upstream's empty metrics.port keeps ours: {args:?}"
    );
    assert_eq!(
        pod["containers"][0]["startupProbe"]["failureThreshold"], 30,
        "operatorHealth.startupProbe"
    );
    // defaultConfiguration's flink-conf.yaml is the operator ConfigMap's config.yaml.
    let config = cluster
        .get(
            "",
            "configmaps",
            Some("flink-system"),
            "flink-operator-config",
        )
        .expect("the operator ConfigMap");
    let yaml = config["data"]["config.yaml"].as_str().unwrap_or_default();
    assert!(
        yaml.contains("kubernetes.operator.reconcile.interval: 15 s"),
        "{yaml}"
    );
    // defaultConfiguration's log4j-console.properties (append: Flink's console logging first,
    // the values' lines after it); its empty logback-console.xml is left out.
    let log4j = config["data"]["log4j-console.properties"]
        .as_str()
        .unwrap_or_default();
    let default = std::fs::read_to_string(
        repo_dir().join("charts/flink-operator/files/log4j-console.properties"),
    )
    .expect("the chart's default");
    let (first, rest) = log4j.split_at(
        log4j
            .find("# Flink Deployment Logging Overrides")
            .unwrap_or_else(|| panic!("the values' lines: {log4j}")),
    );
    assert_eq!(first.trim_end(), default.trim_end());
    assert!(rest.contains("# rootLogger.level = DEBUG"), "{log4j}");
    assert!(
        config["data"].get("logback-console.xml").is_none(),
        "{config:#}"
    );
    assert!(
        notes.contains("log4j-operator.properties"),
        "the operator's own log files mean nothing here: {notes}"
    );
}
