//! Reading user documents: multi-document YAML in, typed resources or field-precise problems out.
//!
//! Each document goes through the same steps as at the API server and the operator: it must be a
//! `flink.apache.org/v1beta1` kind we serve, fit the CRD schema (types, enums, unknown fields),
//! read as the typed resource, and pass the validation rules.

use crate::crd;
use crate::validation::{self, FieldError, ValidationSettings};
use crate::{
    API_VERSION, FlinkBlueGreenDeployment, FlinkDeployment, FlinkSessionJob, FlinkStateSnapshot,
};
use serde::de::DeserializeOwned;
use serde_json::Value;

/// Larger inputs are refused before parsing (a Kubernetes object is at most ~1.5 MiB).
pub const MAX_INPUT_BYTES: usize = 8 << 20;

/// Label of upstream's canary (health-check) resources.
pub const CANARY_LABEL: &str = "flink.apache.org/canary";

/// The resources of the API group.
#[derive(Clone, Debug, PartialEq)]
pub enum FlinkResource {
    Deployment(Box<FlinkDeployment>),
    SessionJob(Box<FlinkSessionJob>),
    Snapshot(Box<FlinkStateSnapshot>),
    BlueGreen(Box<FlinkBlueGreenDeployment>),
}

impl FlinkResource {
    pub fn kind(&self) -> &'static str {
        match self {
            Self::Deployment(_) => "FlinkDeployment",
            Self::SessionJob(_) => "FlinkSessionJob",
            Self::Snapshot(_) => "FlinkStateSnapshot",
            Self::BlueGreen(_) => "FlinkBlueGreenDeployment",
        }
    }

    pub fn name(&self) -> Option<&str> {
        match self {
            Self::Deployment(r) => r.metadata.name.as_deref(),
            Self::SessionJob(r) => r.metadata.name.as_deref(),
            Self::Snapshot(r) => r.metadata.name.as_deref(),
            Self::BlueGreen(r) => r.metadata.name.as_deref(),
        }
    }

    /// Upstream's health-check resources: labelled `flink.apache.org/canary: "true"`, never
    /// deployed, exempt from the rules.
    pub fn is_canary(&self) -> bool {
        let labels = match self {
            Self::Deployment(r) => &r.metadata.labels,
            Self::SessionJob(r) => &r.metadata.labels,
            Self::Snapshot(r) => &r.metadata.labels,
            Self::BlueGreen(r) => &r.metadata.labels,
        };
        labels
            .as_ref()
            .and_then(|l| l.get(CANARY_LABEL))
            .is_some_and(|v| v == "true")
    }

    /// The rules of its kind (not across resources: see [`validation::references`]).
    pub fn validate(&self, settings: &ValidationSettings) -> Vec<FieldError> {
        match self {
            Self::Deployment(r) => validation::deployment(r),
            Self::SessionJob(r) => validation::session_job(r, settings),
            Self::Snapshot(r) => validation::snapshot(r),
            Self::BlueGreen(r) => validation::blue_green(r),
        }
    }
}

/// Why a document could not be read, or what is wrong with it.
#[derive(Clone, Debug, PartialEq)]
pub struct DocumentProblems {
    pub kind: Option<String>,
    pub name: Option<String>,
    pub errors: Vec<FieldError>,
}

/// Splits YAML into documents; an empty document stays as `null` so indexes match positions.
/// One error for the whole input when it is
/// too large or not YAML: nothing in it can be trusted then.
pub fn split_documents(text: &str) -> Result<Vec<Value>, String> {
    if text.len() > MAX_INPUT_BYTES {
        return Err(format!(
            "input is {} bytes, more than the {} MiB limit; a Kubernetes object is at most about 1.5 MiB",
            text.len(),
            MAX_INPUT_BYTES >> 20
        ));
    }
    serde_saphyr::from_multiple(text)
        .map_err(|e| format!("not valid YAML: {}", first_line(&e.to_string())))
}

fn first_line(text: &str) -> String {
    let line = text.lines().next().unwrap_or(text);
    if line.len() > 300 {
        format!("{}…", &line[..line.floor_char_boundary(300)])
    } else {
        line.to_string()
    }
}

/// A Kubernetes object of another API group, as files that carry Flink resources also hold
/// (upstream's e2e files have PersistentVolumeClaims and IngressClasses): `Kind (apiVersion)`.
/// A `flink.apache.org` document of an unknown kind or version is no other object: it is a
/// mistake `read_document` names.
pub fn other_kubernetes_object(document: &Value) -> Option<String> {
    let api_version = document.get("apiVersion")?.as_str()?;
    let kind = document.get("kind")?.as_str()?;
    let group = api_version.split_once('/').map_or("", |(group, _)| group);
    (group != crate::GROUP && !kind.is_empty()).then(|| format!("{kind} ({api_version})"))
}

/// Reads one document as a resource: kind, schema, typed fields. Rules are not applied here.
pub fn read_document(document: Value) -> Result<FlinkResource, DocumentProblems> {
    let text = |key: &str| {
        document
            .get(key)
            .and_then(Value::as_str)
            .map(str::to_string)
    };
    let kind = text("kind");
    let name = document
        .pointer("/metadata/name")
        .and_then(Value::as_str)
        .map(str::to_string);
    let problems = |errors: Vec<FieldError>| DocumentProblems {
        kind: kind.clone(),
        name: name.clone(),
        errors,
    };
    if !document.is_object() {
        return Err(problems(vec![FieldError::new(
            "",
            "document is not a mapping; expected a Kubernetes resource",
        )]));
    }
    let api_version = text("apiVersion");
    if api_version.as_deref() != Some(API_VERSION) {
        return Err(problems(vec![FieldError::new(
            "apiVersion",
            format!(
                "must be {API_VERSION}, got {:?}",
                api_version.unwrap_or_default()
            ),
        )]));
    }
    let reader: fn(Value) -> Result<FlinkResource, FieldError> = match kind.as_deref() {
        Some("FlinkDeployment") => |v| typed(v).map(|r| FlinkResource::Deployment(Box::new(r))),
        Some("FlinkSessionJob") => |v| typed(v).map(|r| FlinkResource::SessionJob(Box::new(r))),
        Some("FlinkStateSnapshot") => |v| typed(v).map(|r| FlinkResource::Snapshot(Box::new(r))),
        Some("FlinkBlueGreenDeployment") => {
            |v| typed(v).map(|r| FlinkResource::BlueGreen(Box::new(r)))
        }
        other => {
            return Err(problems(vec![FieldError::new(
                "kind",
                format!(
                    "{:?} is not a {API_VERSION} kind; use FlinkDeployment, FlinkSessionJob, FlinkStateSnapshot or FlinkBlueGreenDeployment",
                    other.unwrap_or_default()
                ),
            )]));
        }
    };
    if !document.get("metadata").is_some_and(Value::is_object) {
        return Err(problems(vec![FieldError::new(
            "metadata",
            "is required; give at least `metadata.name`",
        )]));
    }
    let crd = kind
        .as_deref()
        .and_then(crd::for_kind)
        .ok_or_else(|| problems(vec![]))?;
    let schema_errors = crd::check_against_schema(&document, &crd::schema_of(&crd));
    if !schema_errors.is_empty() {
        return Err(problems(schema_errors));
    }
    let mut document = document;
    if let Some(map) = document.as_object_mut() {
        // Canary resources carry no spec; the typed resource wants one.
        map.entry("spec")
            .or_insert_with(|| Value::Object(Default::default()));
    }
    reader(document).map_err(|e| problems(vec![e]))
}

fn typed<T: DeserializeOwned>(document: Value) -> Result<T, FieldError> {
    serde_path_to_error::deserialize(document)
        .map_err(|e| FieldError::new(&e.path().to_string(), e.inner().to_string()))
}

/// One problem found in a set of documents, located by document index.
#[derive(Clone, Debug, PartialEq)]
pub struct Finding {
    pub index: usize,
    pub kind: Option<String>,
    pub name: Option<String>,
    pub error: FieldError,
}

/// Reads and validates every document, and the references between them.
pub fn validate_documents(documents: Vec<Value>, settings: &ValidationSettings) -> Vec<Finding> {
    let mut findings = Vec::new();
    let mut resources = Vec::new();
    for (index, document) in documents.into_iter().enumerate() {
        if document.is_null() {
            continue;
        }
        match read_document(document) {
            Ok(resource) => {
                let errors = if resource.is_canary() {
                    Vec::new()
                } else {
                    resource.validate(settings)
                };
                for error in errors {
                    findings.push(Finding {
                        index,
                        kind: Some(resource.kind().into()),
                        name: resource.name().map(str::to_string),
                        error,
                    });
                }
                resources.push((index, resource));
            }
            Err(p) => findings.extend(p.errors.into_iter().map(|error| Finding {
                index,
                kind: p.kind.clone(),
                name: p.name.clone(),
                error,
            })),
        }
    }
    findings.extend(cross_references(&resources));
    findings.sort_by_key(|f| f.index);
    findings
}

fn cross_references(resources: &[(usize, FlinkResource)]) -> Vec<Finding> {
    let deployments: Vec<&FlinkDeployment> = resources
        .iter()
        .filter_map(|(_, r)| {
            if let FlinkResource::Deployment(d) = r {
                Some(d.as_ref())
            } else {
                None
            }
        })
        .collect();
    let jobs: Vec<(usize, &FlinkSessionJob)> = resources
        .iter()
        .filter_map(|(i, r)| {
            if let FlinkResource::SessionJob(j) = r {
                Some((*i, j.as_ref()))
            } else {
                None
            }
        })
        .collect();
    let snapshots: Vec<(usize, &FlinkStateSnapshot)> = resources
        .iter()
        .filter_map(|(i, r)| {
            if let FlinkResource::Snapshot(s) = r {
                Some((*i, s.as_ref()))
            } else {
                None
            }
        })
        .collect();
    let job_refs: Vec<&FlinkSessionJob> = jobs.iter().map(|(_, j)| *j).collect();
    let snapshot_refs: Vec<&FlinkStateSnapshot> = snapshots.iter().map(|(_, s)| *s).collect();
    let problems = validation::references(&deployments, &job_refs, &snapshot_refs);
    let finding = |index: usize, kind: &str, name: Option<&String>, error: FieldError| Finding {
        index,
        kind: Some(kind.into()),
        name: name.cloned(),
        error,
    };
    problems
        .session_jobs
        .into_iter()
        .map(|(i, e)| {
            finding(
                jobs[i].0,
                "FlinkSessionJob",
                jobs[i].1.metadata.name.as_ref(),
                e,
            )
        })
        .chain(problems.snapshots.into_iter().map(|(i, e)| {
            finding(
                snapshots[i].0,
                "FlinkStateSnapshot",
                snapshots[i].1.metadata.name.as_ref(),
                e,
            )
        }))
        .collect()
}
