//! One autoscaler step of an autoscaled FlinkDeployment, decided purely from what the
//! controller read (`controller::autoscaling` reads, asks the tenant's scaling plugin between
//! [`begin`] and [`Begun::finish`], and nothing else): whether the autoscaler is on, the stored
//! state and its reset, restoring the chosen parallelism, `AutoscalerState::step`, letting idle
//! TaskManagers go, the plugin's verdict, memory tuning, the quota, the in-place rescale or the
//! redeploy, and the state to store. Every write it asks for is an [`Effect`] of the
//! deployment's plan, so `act` carries them out with the rest (state first, written ahead).

use super::{
    AutoscalerView, ScalingPolicy, cluster_resources, idle_to_release, in_place_requirements,
    is_adaptive, memory_redeploy, notes_of, redeploy_needed, resolve, state_config_map, status_of,
    summary_of,
};
use crate::reconcile::{Effect, Note, Plan, Reason};
use crate::render;
use flink_api::deployment::KubernetesDeploymentMode;
use flink_api::{FlinkDeployment, FlinkSessionJob};
use flink_autoscaler::decide::JobDecision;
use flink_autoscaler::limits::{ClusterResources, quota_problem, task_managers_needed};
use flink_autoscaler::memory::MemoryRecommendation;
use flink_autoscaler::window::MetricWindow;
use flink_autoscaler::{AutoscalerSettings, AutoscalerState, GraphVertex, Sample, StepReport};
use flink_rest::{JobDetails, ResourceRequirements, TaskManagerSummary};
use serde_json::json;
use std::collections::BTreeMap;

/// A stored state stays well inside a ConfigMap's 1 MiB (compressed; the window is thinned to
/// fit).
pub const STATE_LIMIT_BYTES: usize = 512 * 1024;
/// `binaryData` key: the state as gzip-compressed JSON (`AutoscalerState`, a replayable
/// recording once decompressed).
pub const STATE_KEY: &str = "state.json.gz";
/// `data` key: the `spec.job.autoscalerResetNonce` the state was stored under.
pub const NONCE_KEY: &str = "resetNonce";
/// Kubernetes' annotation for the pods a ReplicaSet deletes first (lowest cost first).
pub const POD_DELETION_COST: &str = "controller.kubernetes.io/pod-deletion-cost";
/// The cost given to a TaskManager pod being released.
pub const RELEASE_COST: &str = "-1000";

pub fn pack(state: &AutoscalerState) -> Vec<u8> {
    let mut encoder = flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::default());
    match serde_json::to_writer(&mut encoder, state) {
        Ok(()) => encoder.finish().unwrap_or_default(),
        Err(_) => Vec::new(),
    }
}

/// The most a stored state may decompress to: the ConfigMap is in the tenant's namespace, so a
/// small gzip that inflates without end is refused instead of read whole (ours stays below:
/// 512 KiB of compressed JSON is a few MiB).
pub const UNPACKED_LIMIT_BYTES: u64 = 16 << 20;

pub fn unpack(bytes: &[u8]) -> Option<AutoscalerState> {
    use std::io::Read as _;
    let mut json = Vec::new();
    flate2::read::GzDecoder::new(bytes)
        .take(UNPACKED_LIMIT_BYTES + 1)
        .read_to_end(&mut json)
        .ok()?;
    if json.len() as u64 > UNPACKED_LIMIT_BYTES {
        return None;
    }
    serde_json::from_slice(&json).ok()
}

/// Whether the deployment is autoscaled (`job.autoscaler.enabled` in its configuration over
/// the operator's defaults), and with which settings.
pub enum Enabled {
    Off,
    /// On, with settings that cannot be used: the autoscaler pauses and says why.
    Invalid(Note),
    On(Box<AutoscalerSettings>),
}

pub fn enabled(resource: &FlinkDeployment, defaults: &BTreeMap<String, String>) -> Enabled {
    if resource.spec.job.is_none() {
        return Enabled::Off;
    }
    enabled_by(&crate::reconcile::job::configuration(
        defaults,
        resource.spec.configuration().flat(),
    ))
}

/// Whether a job whose effective flat configuration is `config` is autoscaled, and with which
/// settings (for a session job: its session cluster's configuration under its own, as
/// upstream's).
pub fn enabled_by(config: &BTreeMap<String, String>) -> Enabled {
    let config = config.clone();
    let on = flink_api::config::options::AUTOSCALER_ENABLED.flag_in_flat(&config, false);
    if !on {
        return Enabled::Off;
    }
    match AutoscalerSettings::from_config(&config) {
        Ok(settings) => Enabled::On(Box::new(settings)),
        Err(problems) => Enabled::Invalid(Note::warning(
            Reason::AutoscalerConfigInvalid,
            format!("The autoscaler is paused: {}", problems.join("; ")),
        )),
    }
}

/// What is autoscaled: a FlinkDeployment's job, or a FlinkSessionJob's job on its session
/// cluster. A session job is rescaled in place only: the session cluster's TaskManagers are
/// shared, so they are neither added, released nor re-sized for one job, and the job is never
/// redeployed for its parallelism.
#[derive(Clone, Copy, Debug)]
pub enum Autoscaled<'a> {
    Deployment(&'a FlinkDeployment),
    /// With the Flink configuration its session cluster's spec renders.
    SessionJob(&'a FlinkSessionJob, &'a BTreeMap<String, String>),
}

impl<'a> Autoscaled<'a> {
    pub fn name(&self) -> String {
        match self {
            Autoscaled::Deployment(d) => d.metadata.name.clone(),
            Autoscaled::SessionJob(j, _) => j.metadata.name.clone(),
        }
        .unwrap_or_default()
    }

    /// The FlinkDeployment whose REST API serves the job.
    pub fn cluster(&self) -> String {
        match self {
            Autoscaled::Deployment(_) => self.name(),
            Autoscaled::SessionJob(j, _) => j.spec.deployment_name.clone().unwrap_or_default(),
        }
    }

    /// The state ConfigMap's name: `autoscaler-<name>` for a deployment (upstream's), and
    /// `autoscaler-<name>.sessionjob` for a session job, which no deployment's can be (their
    /// names have no dots), so a session job and a deployment of one name keep apart.
    pub fn state_config_map(&self) -> String {
        match self {
            Autoscaled::Deployment(_) => state_config_map(&self.name()),
            Autoscaled::SessionJob(..) => format!("{}.sessionjob", state_config_map(&self.name())),
        }
    }

    fn kind(&self) -> &'static str {
        match self {
            Autoscaled::Deployment(_) => "FlinkDeployment",
            Autoscaled::SessionJob(..) => "FlinkSessionJob",
        }
    }

    fn uid(&self) -> String {
        match self {
            Autoscaled::Deployment(d) => d.metadata.uid.clone(),
            Autoscaled::SessionJob(j, _) => j.metadata.uid.clone(),
        }
        .unwrap_or_default()
    }

    fn job(&self) -> Option<&'a flink_api::JobSpec> {
        match self {
            Autoscaled::Deployment(d) => d.spec.job.as_ref(),
            Autoscaled::SessionJob(j, _) => j.spec.job.as_ref(),
        }
    }

    pub fn namespace(&self) -> String {
        match self {
            Autoscaled::Deployment(d) => d.metadata.namespace.clone(),
            Autoscaled::SessionJob(j, _) => j.metadata.namespace.clone(),
        }
        .unwrap_or_else(|| "default".into())
    }

    fn deployment(&self) -> Option<&'a FlinkDeployment> {
        match self {
            Autoscaled::Deployment(d) => Some(d),
            Autoscaled::SessionJob(..) => None,
        }
    }

    /// What the status says about the last decision and the scaling plugin's part in it.
    fn stored_status(&self) -> (Option<String>, Option<flink_api::PolicyDecision>) {
        let (autoscaler, policies) = match self {
            Autoscaled::Deployment(d) => match d.status.as_ref() {
                Some(s) => (s.autoscaler.as_ref(), &s.policies[..]),
                None => (None, &[][..]),
            },
            Autoscaled::SessionJob(j, _) => match j.status.as_ref() {
                Some(s) => (s.autoscaler.as_ref(), &s.policies[..]),
                None => (None, &[][..]),
            },
        };
        (
            autoscaler.and_then(|a| a.message.clone()),
            policies
                .iter()
                .find(|p| p.extension_point == flink_policy::ExtensionPoint::Scaling.world())
                .cloned(),
        )
    }
}

/// The `autoscaler-<name>` ConfigMap as read.
#[derive(Clone, Debug, Default, PartialEq)]
pub struct StoredState {
    /// `binaryData[state.json.gz]`.
    pub packed: Option<Vec<u8>>,
    /// `data[resetNonce]`.
    pub nonce: Option<String>,
    /// The Java operator's keys in `data`, when it autoscaled the job before
    /// ([`super::upstream_state`]).
    pub upstream: BTreeMap<String, String>,
}

/// A TaskManager pod of the cluster (not being deleted).
#[derive(Clone, Debug, PartialEq)]
pub struct TaskManagerPod {
    pub name: String,
    /// It carries a pod-deletion-cost mark.
    pub marked: bool,
}

/// The running job, as one sample reads it.
#[derive(Clone, Debug, PartialEq)]
pub struct SampledJob {
    pub id: String,
    pub details: JobDetails,
    pub graph: Vec<GraphVertex>,
    pub sample: Sample,
    /// `/jobs/:id/resource-requirements`, read for a job on the adaptive scheduler (None:
    /// not adaptive, or the read failed).
    pub requirements: Option<ResourceRequirements>,
    /// `/taskmanagers`, read when memory tuning is on or idle TaskManagers may be let go.
    pub task_managers: Option<Vec<TaskManagerSummary>>,
    /// The TaskManager pods, listed when idle TaskManagers may be let go.
    pub pods: Option<Vec<TaskManagerPod>>,
}

/// Whether idle TaskManagers of this deployment may be let go after a scale-down (so the
/// controller lists its TaskManagers and their pods): a standalone cluster whose TaskManager
/// count the operator chooses, on the adaptive scheduler, with more than one TaskManager.
pub fn may_release(
    resource: &FlinkDeployment,
    details: &JobDetails,
    task_managers: Option<u32>,
) -> bool {
    let fixed = resource
        .spec
        .task_manager
        .as_ref()
        .and_then(|tm| tm.replicas)
        .is_some();
    resource.spec.mode_or_default() == KubernetesDeploymentMode::Standalone
        && !fixed
        && is_adaptive(details)
        && task_managers.is_some_and(|n| n > 1)
}

/// What one step is decided from.
pub struct StepInput<'a> {
    pub resource: Autoscaled<'a>,
    pub settings: &'a AutoscalerSettings,
    /// The operator's Flink defaults for the namespace.
    pub defaults: &'a BTreeMap<String, String>,
    /// The state ConfigMap (None: there is none yet).
    pub stored: Option<StoredState>,
    /// The running job's sample (None: no sample this time, the job does not run or the
    /// deployment is being changed).
    pub sampled: Option<SampledJob>,
    /// The TaskManager Deployment's replicas, when it exists.
    pub task_managers: Option<u32>,
    pub now_ms: i64,
}

/// The autoscaler's part of one reconcile: what it hands the deployment's decision (None: the
/// deployment is not autoscaled, or its settings cannot be used), the writes it asks for and
/// its events.
#[derive(Clone, Debug, Default, PartialEq)]
pub struct AutoscalerStep {
    pub view: Option<AutoscalerView>,
    pub actions: Vec<Effect>,
    pub notes: Vec<Note>,
    /// For the operator's log (the decision itself is in the view and the events).
    pub log: Vec<String>,
}

impl AutoscalerStep {
    /// Only `note` (the settings cannot be used).
    pub fn paused(note: Note) -> Self {
        Self {
            notes: vec![note],
            ..Self::default()
        }
    }
}

/// `plan` with the autoscaler's writes and events: its effects right after a leading
/// `AddFinalizer` (its state first; `act` stores it before anything else), its events first.
/// Added after the pod-template plugin had its say, so a plan held for the plugin still
/// carries the autoscaler's step, which does not depend on it.
pub fn with_step<S>(mut plan: Plan<S>, step: &AutoscalerStep) -> Plan<S> {
    let at = usize::from(plan.actions.first() == Some(&Effect::AddFinalizer));
    plan.actions.splice(at..at, step.actions.iter().cloned());
    plan.notes.splice(0..0, step.notes.iter().cloned());
    plan
}

/// A step taken up to the point where the tenant's scaling plugin is asked.
pub struct Begun<'a> {
    input: StepInput<'a>,
    state: AutoscalerState,
    nonce_changed: bool,
    report: Option<StepReport>,
    /// The job's resource requirements as they are after restoring the chosen parallelism.
    requirements: Option<ResourceRequirements>,
    actions: Vec<Effect>,
    notes: Vec<Note>,
    log: Vec<String>,
}

/// Loads the stored state (reset on a new `autoscalerResetNonce`), restores the chosen
/// parallelism a job does not run, steps the autoscaler on the sample and lets idle
/// TaskManagers go.
pub fn begin(input: StepInput<'_>) -> Begun<'_> {
    let mut notes = Vec::new();
    let mut log = Vec::new();
    let nonce = job_nonce(&input.resource);
    let stored = input.stored.as_ref();
    let from_java =
        stored.filter(|s| s.packed.is_none() && super::upstream_state::present(&s.upstream));
    let mut state = match stored.and_then(|s| s.packed.as_deref()) {
        Some(bytes) => unpack(bytes).unwrap_or_else(|| {
            // Never silently: the overrides and history it held are lost.
            log.push("the stored autoscaler state cannot be read; starting over".into());
            AutoscalerState::default()
        }),
        None => match from_java {
            Some(stored) => {
                let imported = super::upstream_state::import(&stored.upstream);
                log.extend(imported.log.into_iter().map(|l| format!("autoscaler: {l}")));
                notes.push(Note::normal(
                    Reason::AutoscalerStateImported,
                    format!(
                        "Took the Java operator's autoscaler state: parallelism overrides for {} vertices, {} scaling records",
                        imported.state.overrides.len(),
                        imported.state.history.0.values().map(Vec::len).sum::<usize>()
                    ),
                ));
                imported.state
            }
            None => AutoscalerState::default(),
        },
    };
    // The Java operator's state is what its own reset left: no reset nonce to compare with.
    let nonce_changed = from_java.is_none() && stored.map(|s| s.nonce.clone()) != Some(nonce);
    if nonce_changed && input.stored.is_some() {
        state = AutoscalerState::default();
        notes.push(Note::normal(
            Reason::AutoscalerReset,
            "spec.job.autoscalerResetNonce changed: metric and scaling history and overrides cleared",
        ));
    }
    let mut begun = Begun {
        requirements: input.sampled.as_ref().and_then(|s| s.requirements.clone()),
        input,
        state,
        nonce_changed,
        report: None,
        actions: Vec::new(),
        notes,
        log,
    };
    if begun.input.sampled.is_none() {
        return begun;
    }
    begun.restore_chosen_parallelism();
    let Some(job) = begun.input.sampled.as_ref() else {
        return begun;
    };
    let running_since = job
        .details
        .timestamps
        .get("RUNNING")
        .copied()
        .filter(|t| *t > 0)
        .unwrap_or(job.details.start_time);
    let report = begun.state.step(
        &job.graph,
        job.sample.clone(),
        running_since,
        begun.input.settings,
    );
    if let Some(took) = report.rescale_took_ms {
        begun
            .log
            .push(format!("autoscaler: rescale finished in {took} ms"));
    }
    begun.notes.extend(notes_of(&report, &job.graph));
    let adaptive = is_adaptive(&job.details);
    begun.report = Some(report);
    if begun.state.rescale_requested_ms.is_none() && adaptive {
        begun.release_idle_task_managers();
    }
    begun
}

fn job_nonce(resource: &Autoscaled) -> Option<String> {
    resource
        .job()
        .and_then(|j| j.autoscaler_reset_nonce)
        .map(|n| n.to_string())
}

impl<'a> Begun<'a> {
    /// The job and the decision the tenant's scaling plugin is asked about (None: no decision
    /// this time, nothing to ask).
    pub fn question(&self) -> Option<(&str, &[GraphVertex], &JobDecision, &MetricWindow)> {
        let job = self.input.sampled.as_ref()?;
        let decision = self.report.as_ref()?.decision.as_ref()?;
        Some((&job.id, &job.graph, decision, &self.state.window))
    }

    /// A deployed job on the adaptive scheduler that does not run the parallelism the
    /// autoscaler chose gets it in place. Flink 2.x does not apply
    /// `pipeline.jobvertex-parallelism-overrides` to the job an application cluster submits
    /// (seen on Flink 2.3: a redeploy came up at the graph's own parallelism), so the overrides
    /// a deploy renders are not enough; the resource requirements are, and they are only
    /// written when they differ (an in-place rescale still waiting for slots is left alone).
    fn restore_chosen_parallelism(&mut self) {
        let Some(job) = self.input.sampled.as_ref() else {
            return;
        };
        let differs = flink_autoscaler::job::not_running(&job.graph, &self.state.overrides);
        if differs.is_empty() || !is_adaptive(&job.details) {
            return;
        }
        let Some(current) = &self.requirements else {
            self.log.push(
                "autoscaler: cannot restore the chosen parallelism: the job's resource requirements were not read".into(),
            );
            return;
        };
        let wanted = in_place_requirements(current, &self.state.overrides);
        if &wanted == current {
            return;
        }
        self.actions.push(Effect::SetResourceRequirements {
            cluster: self.input.resource.cluster(),
            job_id: job.id.clone(),
            requirements: wanted.clone(),
        });
        self.notes.push(Note::normal(
            Reason::Scaling,
            format!(
                "Restoring the chosen parallelism in place: {}",
                summary_of(&job.graph, &differs)
            ),
        ));
        self.requirements = Some(wanted);
    }

    /// After an in-place scale-down a standalone cluster has TaskManagers the job no longer
    /// uses: the idle ones beyond what the job needs (at the parallelism chosen for it) are let
    /// go. They get the lowest `controller.kubernetes.io/pod-deletion-cost` (any other
    /// TaskManager pod loses an earlier mark), then the Deployment's replicas drop by as many,
    /// so its ReplicaSet deletes exactly those pods and no running task is touched.
    fn release_idle_task_managers(&mut self) {
        let (Some(job), Some(deployment)) = (
            self.input.sampled.as_ref(),
            self.input.resource.deployment(),
        ) else {
            return;
        };
        let (Some(running), true) = (
            self.input.task_managers,
            may_release(deployment, &job.details, self.input.task_managers),
        ) else {
            return;
        };
        let cluster = cluster_of(&self.spec_config(), self.input.task_managers);
        let needed = task_managers_needed(
            &job.graph,
            &self.state.overrides,
            cluster.slots_per_task_manager,
        );
        if running <= needed.max(1) {
            return;
        }
        let (Some(reported), Some(pods)) = (&job.task_managers, &job.pods) else {
            self.log.push(
                "autoscaler: idle TaskManagers not released: Flink's TaskManagers or their pods were not read".into(),
            );
            return;
        };
        let names: Vec<String> = pods.iter().map(|p| p.name.clone()).collect();
        let released = idle_to_release(reported, &names, running, needed);
        if released.is_empty() {
            return;
        }
        let marks = pods
            .iter()
            .filter_map(|pod| {
                let cost = released
                    .contains(&pod.name)
                    .then(|| RELEASE_COST.to_string());
                (cost.is_some() || pod.marked).then(|| (pod.name.clone(), cost))
            })
            .collect();
        self.actions.push(Effect::ReleaseTaskManagers {
            marks,
            replicas: running - released.len() as u32,
        });
        self.notes.push(Note::normal(
            Reason::Scaling,
            format!(
                "Releasing {} idle TaskManager(s) the job no longer needs ({}); {} remain",
                released.len(),
                released.join(", "),
                running as usize - released.len()
            ),
        ));
    }

    /// The Flink configuration the cluster's spec renders (a deployment's without the
    /// autoscaler's memory tuning; a session job's is its session cluster's).
    fn spec_config(&self) -> BTreeMap<String, String> {
        match self.input.resource {
            Autoscaled::Deployment(deployment) => {
                render::flink_config(&render::RenderInput::for_resource(
                    deployment,
                    &deployment.spec,
                    self.input.defaults,
                ))
                .unwrap_or_default()
            }
            Autoscaled::SessionJob(_, cluster) => cluster.clone(),
        }
    }

    /// The TaskManagers the job has now, for the quota: a deployment's are its cluster's; a
    /// session job's are what its widest vertex takes of its shared cluster's.
    fn task_managers_now(
        &self,
        job: &SampledJob,
        config: &BTreeMap<String, String>,
    ) -> ClusterResources {
        match self.input.resource {
            Autoscaled::Deployment(_) => cluster_of(config, self.input.task_managers),
            Autoscaled::SessionJob(..) => {
                let cluster = cluster_of(config, None);
                let taken = task_managers_needed(
                    &job.graph,
                    &BTreeMap::new(),
                    cluster.slots_per_task_manager,
                );
                ClusterResources {
                    task_managers: taken,
                    ..cluster
                }
            }
        }
    }

    /// Why `job` cannot be rescaled as decided, known before anything is recorded: a session
    /// job is rescaled in place only; a deployment's job off the adaptive scheduler is
    /// redeployed, which Flink 2.x's ignored parallelism overrides make pointless.
    fn refusal(&self, job: &SampledJob, summary: &str) -> Option<String> {
        if is_adaptive(&job.details) {
            return None;
        }
        match self.input.resource {
            Autoscaled::SessionJob(..) => Some(format!(
                "Not rescaled ({summary}): a session job is rescaled in place only, and its session cluster {} does not run the adaptive scheduler; set jobmanager.scheduler: adaptive in the session cluster's flinkConfiguration",
                self.input.resource.cluster()
            )),
            Autoscaled::Deployment(d) if !overrides_honoured(d) => Some(format!(
                "Not rescaled ({summary}): the job does not run the adaptive scheduler, and Flink 2.x does not apply pipeline.jobvertex-parallelism-overrides to the job it runs, so a redeploy would not change its parallelism; use jobmanager.scheduler: adaptive (the default for autoscaled jobs)"
            )),
            Autoscaled::Deployment(_) => None,
        }
    }

    /// Ends the step with the tenant's scaling verdict (None: no plugin, or nothing was asked):
    /// what is applied and how, the redeploy a job needs, the state to store and the view the
    /// deployment's decision gets.
    pub fn finish(mut self, verdict: Option<&ScalingPolicy>) -> AutoscalerStep {
        let mut message = None;
        let mut policy = None;
        let mut redeploy = None;
        if let (Some(job), Some(report)) = (self.input.sampled.clone(), self.report.clone()) {
            let decided = match report.decision.clone() {
                Some(decision) => self.decide(&job, &report, &decision, verdict),
                // Asked on every sample until the TaskManagers run the tuned memory.
                None => Decided {
                    memory_change: self.memory_change(&job),
                    ..Decided::default()
                },
            };
            message = decided.message;
            policy = decided.policy;
            redeploy = self.redeploy_of(&job, decided.memory_change);
        }
        // What was said less than scaling.event.interval ago is not said again.
        let recommended = self
            .report
            .as_ref()
            .and_then(|r| r.decision.as_ref())
            .map(|d| {
                d.changes
                    .iter()
                    .map(|(v, o)| format!("{v}:{}", o.new))
                    .collect::<Vec<_>>()
                    .join(",")
            })
            .unwrap_or_default();
        self.notes = super::throttle(
            std::mem::take(&mut self.notes),
            &recommended,
            &mut self.state.reported_ms,
            self.input.now_ms,
            self.input.settings.scaling_event_interval.as_millis() as i64,
        );
        // A sample without news keeps what the status said about the last decision.
        let (stored_message, stored_policy) = self.input.resource.stored_status();
        let message = message.or(stored_message);
        let policy = policy.or(stored_policy);
        let mut packed = pack(&self.state);
        if packed.len() > STATE_LIMIT_BYTES {
            let dropped = self
                .state
                .thin_until(|s| pack(s).len() <= STATE_LIMIT_BYTES);
            self.log.push(format!(
                "autoscaler: metric window thinned by {dropped} samples to fit the ConfigMap"
            ));
            packed = pack(&self.state);
        }
        let previous = self.input.stored.as_ref().and_then(|s| s.packed.as_deref());
        // A reconcile that took no sample changes nothing: no write. A changed state is
        // written ahead of the requests it records (a rescale asked for is never asked twice).
        if previous != Some(packed.as_slice()) || self.nonce_changed {
            let map = self.state_config_map(packed);
            self.actions
                .insert(0, Effect::StoreAutoscalerState(Box::new(map)));
        }
        // Tuning switched off: deploys render the user's memory again.
        let memory = self
            .state
            .memory
            .clone()
            .filter(|_| self.input.settings.memory_tuning.enabled);
        AutoscalerStep {
            view: Some(AutoscalerView {
                status: status_of(&self.state, self.report.as_ref(), message),
                overrides: self.state.overrides.clone(),
                policy,
                redeploy,
                memory,
            }),
            actions: self.actions,
            notes: self.notes,
            log: self.log,
        }
    }

    /// A decision of the autoscaler with the tenant's verdict: resolved, checked against the
    /// quota, with memory tuning, recorded in the state and applied (in place, or by a
    /// redeploy the deployment's decision makes).
    fn decide(
        &mut self,
        job: &SampledJob,
        report: &StepReport,
        decision: &JobDecision,
        verdict: Option<&ScalingPolicy>,
    ) -> Decided {
        let mut resolved = resolve(report, &job.graph, verdict, !report.hold);
        self.notes.append(&mut resolved.notes);
        let mut message = resolved.message;
        // A rescale that cannot happen is said and not recorded: recording it would show a
        // parallelism the job does not run and feed the history a scaling that never was.
        if !resolved.apply.is_empty()
            && let Some(why) = self.refusal(job, &summary_of(&job.graph, &resolved.apply))
        {
            self.notes
                .push(Note::warning(Reason::ScalingLimited, why.clone()));
            message = Some(why);
            resolved.apply.clear();
        }
        // The rendered configuration, once, for the TaskManagers and the memory tuning (a
        // deployment's only: a session cluster's TaskManagers are shared).
        let config = (!resolved.apply.is_empty()).then(|| self.spec_config());
        let mut cluster = config.as_ref().map(|c| self.task_managers_now(job, c));
        let tuned = match (&config, &cluster, self.input.resource.deployment()) {
            (Some(config), Some(cluster), Some(_)) => {
                self.tune_memory(config, &job.graph, decision, &resolved.apply, cluster)
            }
            _ => None,
        };
        let tuning = self.input.settings.memory_tuning.enabled;
        if let Some(tuned) = &tuned {
            self.notes.push(Note::normal(
                Reason::ConfigurationRecommendation,
                format!(
                    "Memory tuning recommends the following configuration (automatic tuning is {}):\n{}",
                    if tuning { "enabled" } else { "disabled" },
                    tuned.describe()
                ),
            ));
        }
        let tuned = tuned.filter(|_| tuning);
        // The quota is checked with the memory the TaskManagers will have.
        if let (Some(cluster), Some(tuned)) = (cluster.as_mut(), &tuned) {
            cluster.memory = tuned.process;
        }
        if let Some(cluster) = &cluster
            && let Some(problem) = quota_problem(
                &job.graph,
                &resolved.apply,
                cluster,
                self.input.settings.quota_cpu,
                self.input.settings.quota_memory,
            )
        {
            self.notes.push(Note::warning(
                Reason::ScalingLimited,
                format!("Not scaled: {problem}"),
            ));
            message = Some(problem);
            resolved.apply.clear();
        }
        let applying = !resolved.apply.is_empty();
        if applying {
            self.state.record_applied(
                &job.graph,
                decision,
                &resolved.apply,
                self.input.now_ms,
                self.input.settings,
            );
            if let Some(tuned) = tuned
                && tuned.replaces(self.state.memory.as_ref())
            {
                self.state.memory = Some(tuned);
            }
        }
        let memory_change = self.memory_change(job);
        if applying
            && let Some(failure) = self.apply(
                job,
                cluster.as_ref(),
                &resolved.apply,
                memory_change.as_deref(),
            )
        {
            message = Some(failure);
        }
        Decided {
            message,
            policy: resolved.policy,
            memory_change,
        }
    }

    /// The memory tuning recommendation for a rescale to `apply` (None when the TaskManagers'
    /// memory cannot be derived or Flink did not report their usage).
    fn tune_memory(
        &mut self,
        config: &BTreeMap<String, String>,
        graph: &[GraphVertex],
        decision: &JobDecision,
        apply: &BTreeMap<String, u32>,
        cluster: &ClusterResources,
    ) -> Option<MemoryRecommendation> {
        if cluster.memory == 0 {
            return None;
        }
        let spec = match flink_autoscaler::memory::TaskManagerMemory::derive(config, cluster.memory)
        {
            Ok(spec) => spec,
            Err(why) => {
                self.log
                    .push(format!("autoscaler: TaskManager memory not tuned: {why}"));
                return None;
            }
        };
        let spt = cluster.slots_per_task_manager;
        let task_managers = (
            task_managers_needed(graph, &BTreeMap::new(), spt),
            task_managers_needed(graph, apply, spt),
        );
        match flink_autoscaler::memory::recommend(
            &spec,
            &decision.evaluation.memory_used,
            graph,
            apply,
            config,
            task_managers,
            &self.input.settings.memory_tuning,
        ) {
            Ok(recommended) => recommended,
            Err(why) => {
                self.log
                    .push(format!("autoscaler: TaskManager memory not tuned: {why}"));
                None
            }
        }
    }

    /// The TaskManagers run another memory than memory tuning chose (from Flink's
    /// `/taskmanagers`, read when tuning is on).
    fn memory_change(&self, job: &SampledJob) -> Option<String> {
        let tuned = self
            .state
            .memory
            .as_ref()
            .filter(|_| self.input.settings.memory_tuning.enabled)?;
        memory_redeploy(job.task_managers.as_deref()?, tuned)
    }

    /// What a redeploy must change, derived from what runs: the vertices' parallelism (a job
    /// off the adaptive scheduler) and the TaskManagers' memory (`memory`).
    fn redeploy_of(&self, job: &SampledJob, memory: Option<String>) -> Option<String> {
        // A session job is rescaled in place only.
        let deployment = self.input.resource.deployment()?;
        let parallelism = redeploy_needed(&job.details, &job.graph, &self.state.overrides)
            .filter(|_| overrides_honoured(deployment));
        match (parallelism, memory) {
            (Some(p), Some(m)) => Some(format!("{p}; {m}")),
            (p, m) => p.or(m),
        }
    }

    /// Rescales in place; a deployment's standalone cluster first gets the TaskManagers the new
    /// slots need (`cluster`: its TaskManagers now). Returns why, when the rescale cannot be
    /// done.
    fn apply(
        &mut self,
        job: &SampledJob,
        cluster: Option<&ClusterResources>,
        changes: &BTreeMap<String, u32>,
        memory_change: Option<&str>,
    ) -> Option<String> {
        let summary = summary_of(&job.graph, changes);
        // A session job: in place (its refusal off the adaptive scheduler came earlier).
        let Some(resource) = self.input.resource.deployment() else {
            return self.request_in_place(job, changes, &summary);
        };
        if let Some(memory) = memory_change {
            // The deployment's decision redeploys the job with both (`AutoscalerView::redeploy`).
            self.notes.push(Note::normal(
                Reason::Scaling,
                format!(
                    "Rescaling by a redeploy in the job's upgrade mode: {summary}; {memory}: TaskManager memory cannot change in place"
                ),
            ));
            return None;
        }
        if !is_adaptive(&job.details) {
            // The deployment's decision redeploys the job (`AutoscalerView::redeploy`).
            self.notes.push(Note::normal(
                Reason::Scaling,
                format!(
                    "Rescaling by a redeploy in the job's upgrade mode: {summary}; the job does not run the adaptive scheduler (jobmanager.scheduler: adaptive), so it cannot be rescaled in place"
                ),
            ));
            return None;
        }
        if let Some(cluster) = cluster
            && resource.spec.mode_or_default() == KubernetesDeploymentMode::Standalone
            && resource
                .spec
                .task_manager
                .as_ref()
                .and_then(|tm| tm.replicas)
                .is_none()
        {
            let needed = task_managers_needed(&job.graph, changes, cluster.slots_per_task_manager);
            if needed > cluster.task_managers {
                self.actions
                    .push(Effect::ScaleTaskManagers { replicas: needed });
            }
        }
        self.request_in_place(job, changes, &summary)
    }

    /// Asks the job's JobManager for the new parallelism (`/resource-requirements`).
    fn request_in_place(
        &mut self,
        job: &SampledJob,
        changes: &BTreeMap<String, u32>,
        summary: &str,
    ) -> Option<String> {
        let Some(current) = &self.requirements else {
            let why = format!(
                "the in-place rescale ({summary}) was not asked for: the job's resource requirements could not be read; the new parallelism applies at the next deploy or sample"
            );
            self.notes
                .push(Note::warning(Reason::ScalingLimited, why.clone()));
            return Some(why);
        };
        let requirements = in_place_requirements(current, changes);
        self.actions.push(Effect::SetResourceRequirements {
            cluster: self.input.resource.cluster(),
            job_id: job.id.clone(),
            requirements,
        });
        self.notes.push(Note::normal(
            Reason::Scaling,
            format!("Rescaling in place: {summary}"),
        ));
        None
    }

    /// The state ConfigMap, owned by the autoscaled resource (deleted with it).
    fn state_config_map(&self, packed: Vec<u8>) -> serde_json::Value {
        let resource = &self.input.resource;
        let name = resource.name();
        let mut data = BTreeMap::new();
        if let Some(nonce) = job_nonce(resource) {
            data.insert(NONCE_KEY.to_string(), nonce);
        }
        json!({
            "apiVersion": "v1",
            "kind": "ConfigMap",
            "metadata": {
                "name": resource.state_config_map(),
                "labels": {"app": name, "component": "autoscaler"},
                "ownerReferences": [{
                    "apiVersion": flink_api::API_VERSION,
                    "kind": resource.kind(),
                    "name": name,
                    "uid": resource.uid(),
                    "controller": true,
                    "blockOwnerDeletion": true,
                }],
            },
            "data": data,
            "binaryData": {STATE_KEY: k8s_openapi::ByteString(packed)},
        })
    }
}

/// What a decision came to.
#[derive(Default)]
struct Decided {
    /// Why the decision was not applied as the built-in autoscaler proposed it.
    message: Option<String>,
    policy: Option<flink_api::PolicyDecision>,
    /// The TaskManagers' memory a redeploy changes.
    memory_change: Option<String>,
}

/// Whether a redeploy with `pipeline.jobvertex-parallelism-overrides` sets the job's
/// parallelism: Flink 1.x applies the overrides to the job it runs; Flink 2.3 does not (seen:
/// a DataStream job submitted with them, in an application and a session cluster, runs its
/// graph's own parallelism).
fn overrides_honoured(resource: &FlinkDeployment) -> bool {
    !resource
        .spec
        .flink_version
        .unwrap_or(flink_api::deployment::FlinkVersion::V2_3)
        .is_2x()
}

/// The cluster's TaskManagers as they run now (`task_managers`: the Deployment's replicas),
/// with what each one has (from the rendered `config`).
fn cluster_of(config: &BTreeMap<String, String>, task_managers: Option<u32>) -> ClusterResources {
    cluster_resources(config, task_managers.unwrap_or(0))
}
