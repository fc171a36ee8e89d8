//! Rules for FlinkStateSnapshot specs.

use super::{FieldError, check_name};
use crate::snapshot::FlinkStateSnapshot;

pub fn snapshot(resource: &FlinkStateSnapshot) -> Vec<FieldError> {
    let mut errors = Vec::new();
    check_name(resource.metadata.name.as_deref(), 63, &mut errors);
    let spec = &resource.spec;
    let already_exists = spec
        .savepoint
        .as_ref()
        .and_then(|s| s.already_exists)
        .unwrap_or(false);
    match (&spec.savepoint, &spec.checkpoint) {
        (Some(_), Some(_)) => errors.push(FieldError::new(
            "spec",
            "sets both `savepoint` and `checkpoint`; a snapshot is one or the other, keep one",
        )),
        (None, None) => errors.push(FieldError::new(
            "spec",
            "sets neither `savepoint` nor `checkpoint`; add `savepoint: {}` or `checkpoint: {}`",
        )),
        _ => {}
    }
    if let Some(savepoint) = &spec.savepoint
        && already_exists
        && savepoint
            .path
            .as_deref()
            .is_none_or(|p| p.trim().is_empty())
    {
        errors.push(FieldError::new(
            "spec.savepoint.path",
            "is required with `alreadyExists: true`; give the path of the existing savepoint",
        ));
    }
    match &spec.job_reference {
        None if !already_exists => errors.push(FieldError::new(
            "spec.jobReference",
            "is required to take a snapshot; set `kind` (FlinkDeployment or FlinkSessionJob) and `name`",
        )),
        Some(reference) => {
            if reference.kind.is_none() {
                errors.push(FieldError::new(
                    "spec.jobReference.kind",
                    "is required; use FlinkDeployment or FlinkSessionJob",
                ));
            }
            if reference.name.as_deref().is_none_or(|n| n.trim().is_empty()) {
                errors.push(FieldError::new(
                    "spec.jobReference.name",
                    "is required; name the FlinkDeployment or FlinkSessionJob in this namespace",
                ));
            }
        }
        None => {}
    }
    if let Some(limit) = spec.backoff_limit.filter(|l| *l < -1) {
        errors.push(FieldError::new(
            "spec.backoffLimit",
            format!("must be -1 (retry forever), 0 (never retry) or more, got {limit}"),
        ));
    }
    errors
}
