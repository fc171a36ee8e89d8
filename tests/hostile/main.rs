//! The hostile suite: what a tenant controls (its resources, its JobManager's answers, its
//! plugins) tried as an attacker would, one named case per promise of docs/security.md. Each
//! case failed on the code before the promise was kept.

mod config_file;
mod job_manager_answers;
mod pod_plugins;
