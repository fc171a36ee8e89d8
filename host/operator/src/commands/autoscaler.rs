//! `flink-operator autoscaler replay`: what the autoscaler decides, sample by sample, for a
//! recorded metric history (a recording, or a stored `autoscaler-<name>` state). The same step
//! function as the operator, so tuning settings here predicts the cluster.

use flink_autoscaler::evaluate::label_of;
use flink_autoscaler::replay::{Recording, replay};
use flink_autoscaler::window::WindowState;
use std::collections::BTreeMap;
use std::io::Write;
use std::path::Path;
use std::process::ExitCode;

/// `KEY=VALUE` settings from the command line.
pub fn parse_settings(pairs: &[String]) -> Result<BTreeMap<String, String>, String> {
    pairs
        .iter()
        .map(|pair| {
            pair.split_once('=')
                .map(|(k, v)| (k.trim().to_string(), v.trim().to_string()))
                .ok_or_else(|| {
                    format!("--config {pair:?}: expected KEY=VALUE, e.g. utilization.target=0.6")
                })
        })
        .collect()
}

pub fn run(history: &Path, config: &[String], json: bool) -> ExitCode {
    let fail = |message: String| {
        eprintln!("error: {message}");
        ExitCode::FAILURE
    };
    let text = match std::fs::read_to_string(history) {
        Ok(text) => text,
        Err(e) => return fail(format!("{}: {e}", history.display())),
    };
    let recording: Recording = match serde_json::from_str(&text) {
        Ok(r) => r,
        Err(e) => {
            return fail(format!(
                "{}: not a recording ({e}); see docs/autoscaler.md for the format",
                history.display()
            ));
        }
    };
    let overrides = match parse_settings(config) {
        Ok(o) => o,
        Err(e) => return fail(e),
    };
    let reports = match replay(&recording, &overrides) {
        Ok(reports) => reports,
        Err(problems) => return fail(problems.join("\n")),
    };
    let mut out = std::io::stdout().lock();
    let first = reports.first().map_or(0, |r| r.time_ms);

    let mut scalings = 0;
    let mut last_state = None;
    for report in &reports {
        if json {
            let _ = writeln!(out, "{}", serde_json::to_string(report).unwrap_or_default());
            continue;
        }
        let at = (report.time_ms - first) as f64 / 1000.0;
        let state = std::mem::discriminant(&report.window);
        if last_state != Some(state) {
            let line = match report.window {
                WindowState::Stabilizing { until_ms } => {
                    format!(
                        "stabilizing until +{:.0} s",
                        (until_ms - first) as f64 / 1000.0
                    )
                }
                WindowState::Filling { full_at_ms } => format!(
                    "collecting; the window is full at +{:.0} s",
                    (full_at_ms - first) as f64 / 1000.0
                ),
                WindowState::Full => "window full: deciding".into(),
                WindowState::Rescaling { .. } => "waiting for the rescale".into(),
            };
            let _ = writeln!(out, "+{at:>7.1} s  {line}");
            last_state = Some(state);
        }
        let Some(decision) = &report.decision else {
            continue;
        };
        for (id, b) in &decision.alignment_blocked {
            let _ = writeln!(
                out,
                "+{at:>7.1} s  {}: {} -> {} blocked by the legacy alignment to {} (key-group.partitions.adjust.mode)",
                label_of(&recording.graph, id),
                b.current,
                b.computed,
                b.over
            );
        }
        if decision.changes.is_empty() {
            continue;
        }
        let verdict = match &report.not_applied {
            Some(why) => format!("recommend (not applied: {why})"),
            None => {
                scalings += 1;
                "scale".into()
            }
        };
        let _ = writeln!(out, "+{at:>7.1} s  {verdict}:");
        for (id, o) in &decision.changes {
            let e = decision.evaluation.vertices.get(id);
            let _ = writeln!(
                out,
                "             {}: {} -> {}  (true processing rate {}/s, target {}/s, catch-up {}/s; scale up below {}/s, down above {}/s)",
                label_of(&recording.graph, id),
                o.current,
                o.new,
                e.map_or(f64::NAN, |e| e.true_processing_rate),
                e.map_or(f64::NAN, |e| e.target_rate),
                e.map_or(f64::NAN, |e| e.catch_up_rate),
                o.thresholds.scale_up,
                o.thresholds.scale_down,
            );
            let _ = writeln!(
                out,
                "               reasons: {}",
                serde_json::to_string(&o.reasons).unwrap_or_default()
            );
        }
        for (id, i) in &decision.ineffective {
            let _ = writeln!(
                out,
                "             {}: the last scale-up was ineffective ({:.0}% of the expected increase)",
                label_of(&recording.graph, id),
                i.effectiveness * 100.0
            );
        }
    }
    if !json {
        let _ = writeln!(
            out,
            "{} samples over {:.0} s, {scalings} scaling(s)",
            reports.len(),
            reports.last().map_or(0, |r| r.time_ms - first) as f64 / 1000.0
        );
    }
    ExitCode::SUCCESS
}
