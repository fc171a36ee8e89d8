//! Test harness shared by the integration and end-to-end suites.

pub mod fault_proxy;
pub mod flink_cluster;
pub mod helm;
pub mod rbac;
pub mod support;
