//! Upstream's state as its `KubernetesAutoScalerStateStore` writes it (Jackson YAML with the
//! JavaTimeModule: instants as ISO-8601 map keys, durations as seconds), gzipped and
//! base64-encoded.

use super::*;
use std::io::Write;

const SOURCE: &str = "bc764cd8ddf7a0cff126f51c16239658";
const MAP: &str = "0a448493b4782967b150582570326227";

fn packed(text: &str) -> String {
    use base64::Engine as _;
    let mut gz = flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::default());
    gz.write_all(text.as_bytes()).expect("gzip");
    base64::engine::general_purpose::STANDARD.encode(gz.finish().expect("gzip"))
}

const HISTORY: &str = r#"---
bc764cd8ddf7a0cff126f51c16239658:
  "2024-05-01T10:15:30.123Z":
    currentParallelism: 2
    newParallelism: 4
    metrics:
      TRUE_PROCESSING_RATE:
        current: 1100.0
        average: 1000.0
      EXPECTED_PROCESSING_RATE:
        current: 2000.0
        average: 1900.0
  "2024-05-01T09:00:00Z":
    currentParallelism: 1
    newParallelism: 2
    metrics:
      TRUE_PROCESSING_RATE:
        current: "Infinity"
        average: "Infinity"
0a448493b4782967b150582570326227:
  "2024-05-01T10:15:30.123Z":
    currentParallelism: 4
    newParallelism: 8
    metrics: {}
"#;

const TRACKING: &str = r#"---
scalingRecords:
  "2024-05-01T09:00:00Z":
    restartDuration: 42.500000000
  "2024-05-01T10:15:30.123Z":
    restartDuration: 12.000000000
  "2024-05-01T11:00:00Z": {}
"#;

fn java_operators(entries: &[(&str, String)]) -> BTreeMap<String, String> {
    entries
        .iter()
        .map(|(k, v)| (k.to_string(), v.clone()))
        .collect()
}

#[test]
fn a_job_moved_from_the_java_operator_keeps_its_overrides_history_and_rescale_times() {
    let data = java_operators(&[
        (PARALLELISM_OVERRIDES, format!("{SOURCE}:4,'{MAP}:8'")),
        (SCALING_HISTORY, packed(HISTORY)),
        (SCALING_TRACKING, packed(TRACKING)),
        ("collectedMetrics", packed("{}")),
    ]);
    assert!(present(&data));
    let imported = import(&data);
    let state = &imported.state;
    assert_eq!(
        state.overrides,
        BTreeMap::from([(SOURCE.to_string(), 4), (MAP.to_string(), 8)])
    );
    let source = &state.history.0[SOURCE];
    assert_eq!(
        source
            .iter()
            .map(|r| (r.current, r.new))
            .collect::<Vec<_>>(),
        [(1, 2), (2, 4)],
        "oldest first"
    );
    assert_eq!(source[1].time_ms, 1_714_558_530_123);
    assert_eq!(source[1].true_processing_rate, 1000.0, "the average");
    assert_eq!(source[1].expected_processing_rate, 2000.0, "the current");
    assert!(source[0].true_processing_rate.is_infinite());
    assert!(
        state.history.0[MAP][0].true_processing_rate.is_nan(),
        "not recorded"
    );
    assert_eq!(state.restart_times_ms, [42_500, 12_000]);
    assert_eq!(state.rescale_requested_ms, Some(1_714_561_200_000));
    assert!(
        imported
            .log
            .iter()
            .any(|l| l.contains("collectedMetrics is not taken")),
        "{:?}",
        imported.log
    );
}

#[test]
fn plain_text_as_older_versions_wrote_it_and_iso_durations_are_read_too() {
    let data = java_operators(&[
        (SCALING_HISTORY, HISTORY.to_string()),
        (
            SCALING_TRACKING,
            "scalingRecords:\n  \"2024-05-01T09:00:00Z\":\n    restartDuration: PT1M30S\n".into(),
        ),
    ]);
    let state = import(&data).state;
    assert_eq!(state.history.0[SOURCE].len(), 2);
    assert_eq!(state.restart_times_ms, [90_000]);
    assert_eq!(state.rescale_requested_ms, None);
}

#[test]
fn what_cannot_be_read_is_left_out_and_said_and_the_rest_is_taken() {
    let data = java_operators(&[
        (PARALLELISM_OVERRIDES, format!("{SOURCE}:4,not a vertex:2")),
        (SCALING_HISTORY, packed("- a list, not a map")),
        (SCALING_TRACKING, packed(TRACKING)),
    ]);
    let imported = import(&data);
    assert!(imported.state.overrides.is_empty());
    assert!(imported.state.history.0.is_empty());
    assert_eq!(imported.state.restart_times_ms.len(), 2);
    let log = imported.log.join("\n");
    assert!(
        log.contains(
            "parallelismOverrides cannot be read (\"not a vertex\" is not a job vertex id)"
        ),
        "{log}"
    );
    assert!(log.contains("scalingHistory cannot be read"), "{log}");
    // Parallelism out of range.
    let data = java_operators(&[(PARALLELISM_OVERRIDES, format!("{SOURCE}:0"))]);
    assert!(import(&data).state.overrides.is_empty());
}

/// The ConfigMap is the tenant's: a key that inflates past the cap is refused, not read whole.
#[test]
fn a_compressed_key_that_inflates_past_the_cap_is_refused() {
    let bomb = packed(&" ".repeat(MAX_TEXT_BYTES as usize + 1024));
    assert!(bomb.len() < 64 << 10, "{} bytes compressed", bomb.len());
    let data = java_operators(&[(SCALING_HISTORY, bomb)]);
    let imported = import(&data);
    assert!(imported.state.history.0.is_empty());
    assert!(
        imported.log[0].contains("decompresses to more than 2 MiB"),
        "{:?}",
        imported.log
    );
}

#[test]
fn records_beyond_the_cap_are_dropped_oldest_first() {
    let mut yaml = format!("{SOURCE}:\n");
    for i in 0..(MAX_RECORDS + 5) {
        yaml.push_str(&format!(
            "  \"2024-05-01T10:{:02}:{:02}Z\":\n    currentParallelism: 1\n    newParallelism: 2\n",
            i / 60,
            i % 60
        ));
    }
    let data = java_operators(&[(SCALING_HISTORY, packed(&yaml))]);
    let records = &import(&data).state.history.0[SOURCE];
    assert_eq!(records.len(), MAX_RECORDS);
    assert_eq!(records[0].time_ms, 1_714_557_605_000, "the sixth");
}
