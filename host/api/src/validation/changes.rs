//! Changes that cannot be applied to a running resource, given its previous spec.

use super::FieldError;
use crate::deployment::FlinkDeploymentSpec;
use crate::session_job::FlinkSessionJobSpec;
use crate::snapshot::{FlinkStateSnapshot, SnapshotState};

pub fn deployment_change(old: &FlinkDeploymentSpec, new: &FlinkDeploymentSpec) -> Vec<FieldError> {
    let mut errors = Vec::new();
    match (old.is_application(), new.is_application()) {
        (false, true) => errors.push(FieldError::new(
            "spec.job",
            "cannot turn a session cluster into an application cluster; create a new FlinkDeployment",
        )),
        (true, false) => errors.push(FieldError::new(
            "spec.job",
            "cannot be removed from an application cluster to make it a session cluster; create a new FlinkDeployment",
        )),
        _ => {}
    }
    if old.mode_or_default() != new.mode_or_default() {
        errors.push(FieldError::new(
            "spec.mode",
            format!(
                "cannot change from {} to {} on a deployed cluster; create a new FlinkDeployment",
                old.mode_or_default().as_str(),
                new.mode_or_default().as_str()
            ),
        ));
    }
    errors
}

pub fn session_job_change(old: &FlinkSessionJobSpec, new: &FlinkSessionJobSpec) -> Vec<FieldError> {
    let mut errors = Vec::new();
    if old.deployment_name != new.deployment_name {
        errors.push(FieldError::new(
            "spec.deploymentName",
            format!(
                "cannot move a session job to another deployment (from {:?} to {:?}); delete it and create it again",
                old.deployment_name.as_deref().unwrap_or(""),
                new.deployment_name.as_deref().unwrap_or("")
            ),
        ));
    }
    errors
}

pub fn snapshot_change(old: &FlinkStateSnapshot, new: &FlinkStateSnapshot) -> Vec<FieldError> {
    let settled = old.status.as_ref().and_then(|s| s.state).is_some_and(|s| {
        matches!(
            s,
            SnapshotState::Completed | SnapshotState::Failed | SnapshotState::Abandoned
        )
    });
    if settled && old.spec != new.spec {
        let state = old
            .status
            .as_ref()
            .and_then(|s| s.state)
            .map(|s| format!("{s:?}"))
            .unwrap_or_default();
        vec![FieldError::new(
            "spec",
            format!(
                "cannot change a FlinkStateSnapshot after it ended ({}); create a new FlinkStateSnapshot",
                state.to_uppercase()
            ),
        )]
    } else {
        Vec::new()
    }
}
