//! A scaling plugin that misbehaves on request, so tests can prove the host contains every
//! kind of misbehaviour. The tenant config chooses how: `{"misbehave": "loop"}`. Never bind it
//! to a real tenant.

use flink_policy_sdk::scaling::{
    Guest, ParallelismOverride, PluginError, ScalingDecision, ScalingInput, VertexParallelism,
};
use flink_policy_sdk::{LogLevel, log};
use std::hint::black_box;

fn misbehaviour(config: &str) -> &str {
    // No serde here: the plugin must stay tiny and must not depend on what it tests.
    let Some(start) = config.find("\"misbehave\"") else {
        return "none";
    };
    let rest = &config[start + "\"misbehave\"".len()..];
    let rest = rest.trim_start().trim_start_matches(':').trim_start();
    rest.strip_prefix('"')
        .and_then(|r| r.split('"').next())
        .unwrap_or("none")
}

#[inline(never)]
#[allow(unconditional_recursion)]
fn recurse(depth: u64) -> u64 {
    let frame = black_box([depth; 64]);
    recurse(black_box(depth + 1)) + frame[3]
}

fn misbehave(how: &str) -> Option<ScalingDecision> {
    match how {
        "loop" => {
            let mut n = 0u64;
            loop {
                n = black_box(n.wrapping_add(1));
            }
        }
        "memory" => {
            let mut hoard: Vec<Vec<u8>> = Vec::new();
            loop {
                hoard.push(vec![1; 1 << 20]);
                black_box(&hoard);
            }
        }
        "recursion" => Some(ScalingDecision::Veto(recurse(0).to_string())),
        "trap" => panic!("the hostile plugin panics on purpose"),
        "huge-output" => Some(ScalingDecision::Veto("x".repeat(16 << 20))),
        "log-flood" => {
            for i in 0..10_000 {
                log(LogLevel::Info, &format!("flood line {i}"));
            }
            Some(ScalingDecision::Follow)
        }
        "nonsense" => Some(ScalingDecision::Override(ParallelismOverride {
            vertices: vec![
                VertexParallelism {
                    vertex_id: "no-such-vertex".into(),
                    parallelism: 0,
                },
                VertexParallelism {
                    vertex_id: "no-such-vertex".into(),
                    parallelism: u32::MAX,
                },
            ],
            reason: String::new(),
        })),
        _ => None,
    }
}

struct Policy;

impl Guest for Policy {
    fn validate_config(config: String) -> Result<(), String> {
        match misbehaviour(&config) {
            "loop-in-validate" => {
                misbehave("loop");
                Ok(())
            }
            "reject-config" => Err("config.misbehave: reject-config rejects every config".into()),
            _ => Ok(()),
        }
    }

    fn decide(input: ScalingInput) -> Result<ScalingDecision, PluginError> {
        match misbehaviour(&input.config) {
            "plugin-error" => Err(flink_policy_sdk::error(
                "the hostile plugin fails on purpose",
            )),
            how => Ok(misbehave(how).unwrap_or(ScalingDecision::Follow)),
        }
    }
}

flink_policy_sdk::export_scaling!(Policy);

#[cfg(test)]
mod tests {
    #[test]
    fn the_config_chooses_the_misbehaviour() {
        assert_eq!(super::misbehaviour(r#"{"misbehave": "loop"}"#), "loop");
        assert_eq!(super::misbehaviour(r#"{ "misbehave" :"trap" }"#), "trap");
        assert_eq!(super::misbehaviour("{}"), "none");
    }
}
