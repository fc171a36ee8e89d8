//! The Java operator's autoscaler state, as it left it in the same `autoscaler-<name>`
//! ConfigMap (`KubernetesAutoScalerStateStore`): a job moved from it keeps the parallelism its
//! autoscaler chose, its scaling history (for ineffective-scaling detection and the status) and
//! how long its rescales took. Read once, when the ConfigMap holds none of our own state; from
//! then on ours is written beside it.
//!
//! Upstream's keys: `parallelismOverrides` (Flink's map form, `<vertex>:<n>,...`),
//! `scalingHistory` and `scalingTracking` (YAML, gzipped and base64-encoded, or plain as older
//! versions wrote them), `collectedMetrics`, `delayedScaleDown` and `configOverrides`. The
//! last three are not taken: the metric window refills within one metrics window, a pending
//! scale-down waits its interval again, and memory tuning chooses again.
//!
//! The ConfigMap is in the tenant's namespace, so it is read as hostile input: decompression
//! stops at [`MAX_TEXT_BYTES`], YAML parsing keeps serde-saphyr's budget, and at most
//! [`MAX_RECORDS`] records per vertex are kept.

use flink_autoscaler::AutoscalerState;
use flink_autoscaler::history::ScalingRecord;
use serde::Deserialize;
use std::collections::BTreeMap;
use std::io::Read;

pub const PARALLELISM_OVERRIDES: &str = "parallelismOverrides";
pub const SCALING_HISTORY: &str = "scalingHistory";
pub const SCALING_TRACKING: &str = "scalingTracking";
/// Upstream's keys that are not taken, and why (for the log).
pub const NOT_TAKEN: [(&str, &str); 3] = [
    ("collectedMetrics", "the metric window refills"),
    (
        "delayedScaleDown",
        "a pending scale-down waits its interval again",
    ),
    ("configOverrides", "memory tuning chooses again"),
];

/// The most text one key may decompress to (upstream trims its ConfigMap to 1 MB of compressed
/// text, most of it the metric window, which is not read here).
pub const MAX_TEXT_BYTES: u64 = 2 << 20;
/// The most scaling records kept per vertex, and restart times in all.
pub const MAX_RECORDS: usize = 200;
/// The most vertices whose history is kept.
pub const MAX_VERTICES: usize = 1_000;

/// Whether `data` holds upstream's state (any of its keys).
pub fn present(data: &BTreeMap<String, String>) -> bool {
    [PARALLELISM_OVERRIDES, SCALING_HISTORY, SCALING_TRACKING]
        .iter()
        .chain(NOT_TAKEN.iter().map(|(k, _)| k))
        .any(|k| data.contains_key(*k))
}

/// What was taken of upstream's state, and a line for the log about each key.
#[derive(Debug, Default, PartialEq)]
pub struct Imported {
    pub state: AutoscalerState,
    pub log: Vec<String>,
}

/// Upstream's state in `data` as ours. A key that cannot be read is left out and said in the
/// log; the others are still taken.
pub fn import(data: &BTreeMap<String, String>) -> Imported {
    let mut out = Imported::default();
    if let Some(text) = data.get(PARALLELISM_OVERRIDES) {
        match overrides(text) {
            Ok(overrides) => {
                out.log.push(format!(
                    "took the Java operator's parallelism overrides for {} vertices",
                    overrides.len()
                ));
                out.state.overrides = overrides;
            }
            Err(why) => out.log.push(format!(
                "the Java operator's {PARALLELISM_OVERRIDES} cannot be read ({why}); left out"
            )),
        }
    }
    if let Some(text) = data.get(SCALING_HISTORY) {
        match unpacked(text).and_then(|yaml| history(&yaml)) {
            Ok(history) => {
                out.log.push(format!(
                    "took the Java operator's scaling history ({} records)",
                    history.values().map(Vec::len).sum::<usize>()
                ));
                out.state.history.0 = history;
            }
            Err(why) => out.log.push(format!(
                "the Java operator's {SCALING_HISTORY} cannot be read ({why}); left out"
            )),
        }
    }
    if let Some(text) = data.get(SCALING_TRACKING) {
        match unpacked(text).and_then(|yaml| tracking(&yaml)) {
            Ok((restart_times, pending)) => {
                out.log.push(format!(
                    "took the Java operator's rescale times ({} rescales)",
                    restart_times.len()
                ));
                out.state.restart_times_ms = restart_times;
                out.state.rescale_requested_ms = pending;
            }
            Err(why) => out.log.push(format!(
                "the Java operator's {SCALING_TRACKING} cannot be read ({why}); left out"
            )),
        }
    }
    for (key, why) in NOT_TAKEN {
        if data.contains_key(key) {
            out.log
                .push(format!("the Java operator's {key} is not taken: {why}"));
        }
    }
    out
}

/// Flink's map form, as upstream's `ConfigurationUtils.convertValue(map, String)` writes it:
/// `<vertex>:<parallelism>` entries separated by `,`, each possibly in single quotes.
fn overrides(text: &str) -> Result<BTreeMap<String, u32>, String> {
    let mut out = BTreeMap::new();
    for entry in text.split(',').map(str::trim).filter(|e| !e.is_empty()) {
        let entry = entry
            .strip_prefix('\'')
            .and_then(|e| e.strip_suffix('\''))
            .unwrap_or(entry);
        let (vertex, parallelism) = entry
            .split_once(':')
            .ok_or_else(|| format!("{entry:?} is not <vertex>:<parallelism>"))?;
        let vertex = vertex.trim();
        if !is_vertex_id(vertex) {
            return Err(format!("{vertex:?} is not a job vertex id"));
        }
        let parallelism = parallelism
            .trim()
            .parse::<u32>()
            .ok()
            .filter(|p| (1..=32_768).contains(p))
            .ok_or_else(|| format!("{parallelism:?} is not a parallelism from 1 to 32768"))?;
        out.insert(vertex.to_string(), parallelism);
    }
    Ok(out)
}

/// A job vertex id as Flink writes it (32 hexadecimal characters), or any short name of
/// letters, digits, `-` and `_`.
fn is_vertex_id(text: &str) -> bool {
    (1..=64).contains(&text.len())
        && text
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || b == b'-' || b == b'_')
}

/// Upstream's `decompress`: base64 of gzip, or (as older versions wrote it) the text itself.
fn unpacked(text: &str) -> Result<String, String> {
    use base64::Engine as _;
    let Ok(bytes) = base64::engine::general_purpose::STANDARD.decode(text.trim()) else {
        return Ok(text.to_string());
    };
    let mut out = String::new();
    let read = flate2::read::GzDecoder::new(&bytes[..])
        .take(MAX_TEXT_BYTES + 1)
        .read_to_string(&mut out);
    match read {
        Ok(n) if n as u64 > MAX_TEXT_BYTES => Err(format!(
            "it decompresses to more than {} MiB",
            MAX_TEXT_BYTES >> 20
        )),
        Ok(_) => Ok(out),
        // Base64 that is not gzip: the text itself, as upstream falls back.
        Err(_) => Ok(text.to_string()),
    }
}

#[derive(Deserialize)]
#[serde(rename_all = "camelCase")]
struct Summary {
    current_parallelism: u32,
    new_parallelism: u32,
    #[serde(default)]
    metrics: Metrics,
}

/// The two of a summary's metrics that are read; the others are skipped, not kept.
#[derive(Deserialize, Default)]
struct Metrics {
    #[serde(rename = "TRUE_PROCESSING_RATE", default)]
    true_processing_rate: Evaluated,
    #[serde(rename = "EXPECTED_PROCESSING_RATE", default)]
    expected_processing_rate: Evaluated,
}

#[derive(Deserialize, Default)]
struct Evaluated {
    current: Option<Number>,
    average: Option<Number>,
}

/// A Jackson double: a number, or `Infinity`/`NaN` as text.
#[derive(Deserialize, Clone, Copy)]
#[serde(untagged)]
enum Number {
    Value(f64),
    #[serde(deserialize_with = "special")]
    Special(f64),
}

fn special<'de, D: serde::Deserializer<'de>>(d: D) -> Result<f64, D::Error> {
    let text = String::deserialize(d)?;
    match text.trim() {
        "Infinity" | ".inf" | "+Infinity" => Ok(f64::INFINITY),
        "-Infinity" | "-.inf" => Ok(f64::NEG_INFINITY),
        "NaN" | ".nan" => Ok(f64::NAN),
        other => other
            .parse()
            .map_err(|_| serde::de::Error::custom(format!("{other:?} is not a number"))),
    }
}

impl Number {
    fn get(self) -> f64 {
        match self {
            Number::Value(v) | Number::Special(v) => v,
        }
    }
}

/// `Map<JobVertexID, SortedMap<Instant, ScalingSummary>>`: vertex -> ISO-8601 time -> the
/// scaling. The rates are upstream's as its effectiveness detection reads them: the true
/// processing rate's average and the expected one's current value.
fn history(yaml: &str) -> Result<BTreeMap<String, Vec<ScalingRecord>>, String> {
    let parsed: BTreeMap<String, BTreeMap<String, Summary>> =
        serde_saphyr::from_str(yaml).map_err(|e| first_line(&e.to_string()))?;
    if parsed.len() > MAX_VERTICES {
        return Err(format!(
            "it names {} vertices, more than {MAX_VERTICES}",
            parsed.len()
        ));
    }
    let mut out = BTreeMap::new();
    for (vertex, scalings) in parsed {
        if !is_vertex_id(&vertex) {
            return Err(format!("{vertex:?} is not a job vertex id"));
        }
        let mut records = Vec::new();
        for (time, summary) in scalings {
            let rate = |value: Option<Number>| value.map_or(f64::NAN, Number::get);
            records.push(ScalingRecord {
                time_ms: instant_ms(&time)?,
                current: summary.current_parallelism,
                new: summary.new_parallelism,
                true_processing_rate: rate(summary.metrics.true_processing_rate.average),
                expected_processing_rate: rate(summary.metrics.expected_processing_rate.current),
            });
        }
        records.sort_by_key(|r| r.time_ms);
        let excess = records.len().saturating_sub(MAX_RECORDS);
        records.drain(..excess);
        out.insert(vertex, records);
    }
    Ok(out)
}

#[derive(Deserialize)]
#[serde(rename_all = "camelCase")]
struct Tracking {
    #[serde(default)]
    scaling_records: BTreeMap<String, Rescale>,
}

#[derive(Deserialize, Default)]
#[serde(rename_all = "camelCase")]
struct Rescale {
    /// Seconds (Jackson's default for a `Duration`) or ISO-8601 (`PT12.5S`); absent while
    /// the rescale has not finished.
    restart_duration: Option<serde_json::Value>,
}

/// `ScalingTracking`: when each rescale started and how long it took. The restart times,
/// oldest first, and the start of one that has not finished (the last one only).
fn tracking(yaml: &str) -> Result<(Vec<i64>, Option<i64>), String> {
    let parsed: Tracking = serde_saphyr::from_str(yaml).map_err(|e| first_line(&e.to_string()))?;
    let mut started: Vec<(i64, Option<i64>)> = Vec::new();
    for (time, rescale) in parsed.scaling_records {
        let took = match &rescale.restart_duration {
            None | Some(serde_json::Value::Null) => None,
            Some(value) => Some(duration_ms(value)?),
        };
        started.push((instant_ms(&time)?, took));
    }
    started.sort_by_key(|(at, _)| *at);
    let pending = match started.last() {
        Some((at, None)) => Some(*at),
        _ => None,
    };
    let mut times: Vec<i64> = started.iter().filter_map(|(_, took)| *took).collect();
    let excess = times.len().saturating_sub(MAX_RECORDS);
    times.drain(..excess);
    Ok((times, pending))
}

fn instant_ms(text: &str) -> Result<i64, String> {
    text.trim()
        .parse::<jiff::Timestamp>()
        .map(|t| t.as_millisecond())
        .map_err(|_| format!("{text:?} is not an ISO-8601 instant"))
}

fn duration_ms(value: &serde_json::Value) -> Result<i64, String> {
    let ms = match value {
        serde_json::Value::Number(n) => n.as_f64().map(|secs| (secs * 1000.0).round() as i64),
        serde_json::Value::String(s) => match s.trim().parse::<f64>() {
            Ok(secs) => Some((secs * 1000.0).round() as i64),
            Err(_) => s
                .trim()
                .parse::<jiff::SignedDuration>()
                .ok()
                .map(|d| d.as_millis() as i64),
        },
        _ => None,
    };
    ms.filter(|ms| *ms >= 0)
        .ok_or_else(|| format!("{value} is not a duration"))
}

fn first_line(text: &str) -> String {
    text.lines().next().unwrap_or(text).to_string()
}

#[cfg(test)]
mod tests;
