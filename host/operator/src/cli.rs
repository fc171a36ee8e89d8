//! The command line: one subcommand per job, each a thin call into a library.

use crate::commands;
use crate::observability::logging::{self, LogFormat};
use clap::{Parser, Subcommand};
use std::path::PathBuf;
use std::process::ExitCode;

#[derive(Parser, Debug)]
#[command(
    name = "flink-operator",
    version,
    about = "Flink Kubernetes operator with WebAssembly policy plugins"
)]
pub struct Cli {
    #[command(subcommand)]
    pub command: Command,
}

#[derive(Subcommand, Debug)]
pub enum Command {
    /// Validate FlinkDeployment, FlinkSessionJob, FlinkStateSnapshot and FlinkBlueGreenDeployment
    /// YAML: prints `file:doc-index: kind/name: field: message` per problem, exits 1 on any.
    Validate {
        /// A file, a directory (searched for *.yaml and *.yml) or `-` for standard input.
        #[arg(short = 'f', long = "filename", required = true)]
        inputs: Vec<PathBuf>,
        /// URI schemes session-job jars may be fetched from (the operator's
        /// `kubernetes.operator.user.artifacts.allowed-schemes`; `local` mode adds `local`).
        #[arg(long, value_delimiter = ',', default_value = "https")]
        jar_schemes: Vec<String>,
        /// Refuse other Kubernetes objects in the files (by default they are skipped with a
        /// note on standard error).
        #[arg(long)]
        strict: bool,
    },
    /// Run a local cluster on loopback: the Kubernetes API stand-in with our CRDs and a
    /// kubeconfig for kubectl, optionally with resources applied (`-f`). Ctrl-C stops it.
    /// Not in the production image (built without the `local` feature).
    #[cfg(feature = "local")]
    Local {
        /// Resources to apply once the cluster is up (files, directories or `-`).
        #[arg(short = 'f', long = "filename")]
        files: Vec<PathBuf>,
        /// Port of the API stand-in on 127.0.0.1 (0 picks a free one).
        #[arg(long, default_value_t = 0)]
        port: u16,
        /// Where to write the kubeconfig (default: ~/.cache/flink-operator/local).
        #[arg(long)]
        dir: Option<PathBuf>,
        /// Do not install Flink when none is found (serve the API only).
        #[arg(long)]
        no_install: bool,
        /// Stop after this many seconds instead of waiting for Ctrl-C.
        #[arg(long, hide = true)]
        run_for_seconds: Option<u64>,
        /// A directory of policy plugins (`<plugin>.wasm`) that the `flink-operator-policies`
        /// ConfigMap in `default` binds to tenants; watched for changes.
        #[arg(long)]
        plugin_dir: Option<PathBuf>,
    },
    /// Run the operator against the current kubeconfig's cluster (or, in a pod, its own).
    Run(Box<RunArgs>),
    /// Print the CRDs as YAML, or write one file per CRD into a directory.
    Crds {
        #[arg(long)]
        write: Option<PathBuf>,
    },
    /// Tools for policy plugin authors: check, run and test a plugin (a .wasm component).
    Plugin {
        #[command(subcommand)]
        command: PluginCommand,
    },
    /// The autoscaler offline: replay a recorded metric history with chosen settings.
    Autoscaler {
        #[command(subcommand)]
        command: AutoscalerCommand,
    },
}

/// `flink-operator run`'s options.
#[derive(clap::Args, Debug)]
pub struct RunArgs {
    /// Namespaces to watch (repeat or comma-separate); all when none are given.
    #[arg(long = "namespace", value_delimiter = ',')]
    namespaces: Vec<String>,
    /// Reconcile only resources whose labels match this selector.
    #[arg(long)]
    label_selector: Option<String>,
    /// Seconds between reconciles of a resource at rest.
    #[arg(long, default_value_t = 60)]
    reconcile_interval: u64,
    /// Seconds between reconciles while a resource is changing.
    #[arg(long, default_value_t = 10)]
    progress_interval: u64,
    /// Resources reconciled at once.
    #[arg(long, default_value_t = 200)]
    concurrency: u16,
    /// The operator's namespace, where the policies ConfigMap lives (default: $POD_NAMESPACE,
    /// else `default`).
    #[arg(long)]
    operator_namespace: Option<String>,
    /// The operator ConfigMap (in the operator's namespace), read at start and reloaded when it
    /// changes: `kubernetes.operator.*` keys and default Flink configuration (docs/operations.md).
    #[arg(long, default_value = "flink-operator-config")]
    config_map: String,
    /// The ConfigMap binding policy plugins to tenants.
    #[arg(long, default_value = "flink-operator-policies")]
    policies_config_map: String,
    /// A directory of policy plugins (`<plugin>.wasm`), watched for changes.
    #[arg(long)]
    plugin_dir: Option<PathBuf>,
    /// Where compiled plugins are cached across restarts.
    #[arg(long)]
    plugin_cache_dir: Option<PathBuf>,
    /// Pre-reserve this many plugin instance slots (calls at once): about half the fixed
    /// cost of a call, for `slots x 4 x 512 MiB` of reserved virtual memory.
    #[arg(long)]
    plugin_pool_slots: Option<u32>,
    /// MiB of memory all plugin calls together may hold: each call reserves its binding's
    /// memory limit before it runs, so the reconcile concurrency cannot multiply it.
    #[arg(long, default_value_t = 1024)]
    plugin_memory_budget_mb: u64,
    /// Where to serve `/metrics`, `/healthz` and `/readyz`.
    #[arg(long, default_value = "0.0.0.0:8080")]
    http_address: std::net::SocketAddr,
    /// Log lines as text or as one JSON object per line.
    #[arg(long, value_enum, default_value_t)]
    log_format: LogFormat,
    /// Share the work with the other replicas through Leases in the operator's namespace
    /// (`<lease-prefix>-shard-<i>`): each reconciles the resources of the shards it holds.
    #[arg(long)]
    leader_elect: bool,
    /// Shards the resources are spread over (1: active/standby).
    #[arg(long, default_value_t = 1, value_parser = clap::value_parser!(u32).range(1..=1024))]
    shards: u32,
    /// Seconds a Lease lasts without renewal before another replica takes it.
    #[arg(long, default_value_t = 15)]
    lease_duration: u64,
    /// Seconds after its last renewal a holder stops reconciling (shorter than the lease
    /// duration, so that two replicas never reconcile one resource).
    #[arg(long, default_value_t = 10)]
    renew_deadline: u64,
    /// Seconds between Lease renewals.
    #[arg(long, default_value_t = 2)]
    retry_period: u64,
    /// Lease names start with this.
    #[arg(long, default_value = crate::sharding::elector::DEFAULT_LEASE_PREFIX)]
    lease_prefix: String,
    /// Serve the admission webhook (`/validate`, `/mutate`) over TLS here.
    #[arg(long)]
    webhook_address: Option<std::net::SocketAddr>,
    /// `tls.crt` and `tls.key` (e.g. cert-manager's Secret, mounted); without it the
    /// operator makes a certificate and shares it through `--webhook-secret`.
    #[arg(long)]
    webhook_cert_dir: Option<PathBuf>,
    /// The webhook Service: the generated certificate is for its DNS names.
    #[arg(long, default_value = "flink-operator-webhook")]
    webhook_service: String,
    /// The Secret that shares a generated certificate between replicas.
    #[arg(long, default_value = "flink-operator-webhook-cert")]
    webhook_secret: String,
    /// The Validating- and MutatingWebhookConfiguration whose caBundle gets the generated
    /// CA.
    #[arg(long)]
    webhook_configuration: Option<String>,
    /// URI schemes session-job jars may be fetched from
    /// (`kubernetes.operator.user.artifacts.allowed-schemes`; the operator ConfigMap wins).
    #[arg(long, value_delimiter = ',', default_value = "https")]
    artifact_schemes: Vec<String>,
    /// Refuse jar hosts that are or resolve to loopback, link-local, private, wildcard or
    /// multicast addresses (`...user.artifacts.disallow-restricted-hosts`).
    #[arg(long, default_value_t = true, action = clap::ArgAction::Set)]
    artifact_disallow_restricted_hosts: bool,
    /// Where downloaded jars are written before their upload (`...user.artifacts.base.dir`).
    #[arg(long, default_value = "/opt/flink/artifacts")]
    artifact_base_dir: PathBuf,
    /// A directory of the operator's file system that `local://PREFIX/...` session-job jars are
    /// read from (and `file://` ones, when that scheme is allowed): `PREFIX=DIR`. Repeatable;
    /// none by default, so no file of the operator can be named.
    #[arg(long = "artifact-local-root", value_name = "PREFIX=DIR", value_parser = local_root)]
    artifact_local_roots: Vec<(String, PathBuf)>,
    /// A directory of the operator's file system under which it deletes a `file:` savepoint
    /// whose cluster is gone (only a directory holding `_metadata`). Repeatable; none by
    /// default, so no resource can make the operator delete a file.
    #[arg(long = "snapshot-local-root", value_name = "DIR")]
    snapshot_local_roots: Vec<PathBuf>,
}

fn local_root(text: &str) -> Result<(String, PathBuf), String> {
    let (prefix, dir) = text
        .split_once('=')
        .ok_or("expected PREFIX=DIR, e.g. /opt/flink/usrlib=/srv/jars")?;
    if !prefix.starts_with('/') || !dir.starts_with('/') {
        return Err("PREFIX and DIR must be absolute paths".into());
    }
    Ok((prefix.trim_end_matches('/').to_string(), PathBuf::from(dir)))
}

#[derive(Subcommand, Debug)]
pub enum AutoscalerCommand {
    /// Print each decision the autoscaler takes over a recorded metric history, with its
    /// reasons. The history is a recording (docs/autoscaler.md) or a stored state:
    /// `kubectl get configmap autoscaler-NAME -o jsonpath='{.binaryData.state\.json\.gz}' |
    /// base64 -d | gunzip`.
    Replay {
        #[arg(long)]
        history: PathBuf,
        /// A setting to use instead of the recording's: `KEY=VALUE`, with or without the
        /// `job.autoscaler.` prefix (e.g. `utilization.target=0.6`). Repeatable.
        #[arg(long = "config", value_name = "KEY=VALUE")]
        config: Vec<String>,
        /// One JSON report per sample instead of the summary.
        #[arg(long)]
        json: bool,
    },
}

#[derive(Subcommand, Debug)]
pub enum PluginCommand {
    /// Print a plugin's world, interface version, digest, imports and exports; exits 1 with the
    /// reason when this operator would refuse to load it.
    Check { file: PathBuf },
    /// Call a plugin once with an input (JSON of its extension point's input) and print the
    /// decision as the operator would use it, with the fuel and time it took.
    Run {
        file: PathBuf,
        /// The input: a scaling, upgrade or pod-template input as JSON (see docs/plugins.md).
        #[arg(long)]
        input: PathBuf,
        /// The tenant config (JSON) to use instead of the input's `config`.
        #[arg(long)]
        config: Option<PathBuf>,
        /// Fuel budget (default: the extension point's).
        #[arg(long)]
        fuel: Option<u64>,
        /// Deadline in milliseconds (default: the extension point's).
        #[arg(long)]
        deadline_ms: Option<u64>,
        /// Memory cap in MiB (default: 64).
        #[arg(long)]
        memory_mb: Option<u64>,
    },
    /// Run the contract suite (what any plugin must do before it is bound to a tenant).
    Test {
        file: PathBuf,
        /// The tenant config (JSON) the plugin will be bound with (default: `{}`).
        #[arg(long)]
        config: Option<PathBuf>,
    },
}

pub fn run(cli: Cli) -> ExitCode {
    match cli.command {
        Command::Validate {
            inputs,
            jar_schemes,
            strict,
        } => commands::validate::run(&inputs, jar_schemes, strict),
        Command::Crds { write } => commands::crds::run(write.as_deref()),
        Command::Autoscaler {
            command:
                AutoscalerCommand::Replay {
                    history,
                    config,
                    json,
                },
        } => commands::autoscaler::run(&history, &config, json),
        Command::Plugin { command } => match command {
            PluginCommand::Check { file } => commands::plugin::check(&file),
            PluginCommand::Run {
                file,
                input,
                config,
                fuel,
                deadline_ms,
                memory_mb,
            } => commands::plugin::run(
                &file,
                &input,
                config.as_deref(),
                commands::plugin::RunLimits {
                    fuel,
                    deadline_ms,
                    memory_mb,
                },
            ),
            PluginCommand::Test { file, config } => {
                commands::plugin::test(&file, config.as_deref())
            }
        },
        Command::Run(args) => {
            let RunArgs {
                namespaces,
                label_selector,
                reconcile_interval,
                progress_interval,
                concurrency,
                operator_namespace,
                policies_config_map,
                config_map,
                plugin_dir,
                plugin_cache_dir,
                plugin_pool_slots,
                plugin_memory_budget_mb,
                http_address,
                log_format,
                leader_elect,
                shards,
                lease_duration,
                renew_deadline,
                retry_period,
                lease_prefix,
                webhook_address,
                webhook_cert_dir,
                webhook_service,
                webhook_secret,
                webhook_configuration,
                artifact_schemes,
                artifact_disallow_restricted_hosts,
                artifact_base_dir,
                artifact_local_roots,
                snapshot_local_roots,
            } = *args;
            logging::init(log_format, "warn,flink_operator=info");
            let mut settings = crate::settings::Settings {
                watch_namespaces: namespaces,
                label_selector,
                concurrency,
                ..Default::default()
            };
            settings.intervals.reconcile = std::time::Duration::from_secs(reconcile_interval);
            settings.intervals.progress = std::time::Duration::from_secs(progress_interval);
            if let Some(namespace) = operator_namespace {
                settings.policies.namespace = namespace;
            }
            settings.policies.config_map = policies_config_map;
            settings.config_map = Some(config_map);
            settings.policies.plugin_dir = plugin_dir;
            settings.policies.cache_dir = plugin_cache_dir;
            settings.policies.pool_slots = plugin_pool_slots;
            settings.policies.budget.memory_bytes = plugin_memory_budget_mb << 20;
            settings.http_address = Some(http_address);
            settings.validation.session_job_jar_schemes = artifact_schemes
                .iter()
                .map(|s| s.trim().to_ascii_lowercase())
                .collect();
            settings.validation.disallow_restricted_hosts = artifact_disallow_restricted_hosts;
            settings.artifacts.base_dir = artifact_base_dir;
            settings.artifacts.local_roots = artifact_local_roots;
            settings.snapshots.local_roots = snapshot_local_roots;
            if let Some(address) = webhook_address {
                let namespace = &settings.policies.namespace;
                settings.webhook = Some(crate::webhook::WebhookSettings {
                    address,
                    cert_dir: webhook_cert_dir,
                    dns_names: [
                        webhook_service.clone(),
                        format!("{webhook_service}.{namespace}"),
                        format!("{webhook_service}.{namespace}.svc"),
                        format!("{webhook_service}.{namespace}.svc.cluster.local"),
                    ]
                    .to_vec(),
                    secret: webhook_secret,
                    configuration: webhook_configuration,
                    reload_every: std::time::Duration::from_secs(10),
                });
            }
            if leader_elect {
                let timing = crate::sharding::lease::Timing {
                    lease_duration: std::time::Duration::from_secs(lease_duration),
                    renew_deadline: std::time::Duration::from_secs(renew_deadline),
                    retry_period: std::time::Duration::from_secs(retry_period),
                };
                if let Some(problem) = timing.problem() {
                    eprintln!(
                        "flink-operator run: --lease-duration/--renew-deadline/--retry-period: {problem}"
                    );
                    return ExitCode::from(2);
                }
                settings.sharding = Some(crate::sharding::elector::ShardingSettings {
                    identity: crate::sharding::elector::replica_identity(),
                    namespace: settings.policies.namespace.clone(),
                    shards,
                    timing,
                    lease_prefix,
                });
            }
            commands::run::run(settings)
        }
        #[cfg(feature = "local")]
        Command::Local {
            files,
            port,
            dir,
            no_install,
            run_for_seconds,
            plugin_dir,
        } => {
            logging::init(LogFormat::Text, "warn");
            commands::local::run(commands::local::LocalOptions {
                files,
                port,
                dir,
                no_install,
                run_for: run_for_seconds.map(std::time::Duration::from_secs),
                plugin_dir,
            })
        }
    }
}
