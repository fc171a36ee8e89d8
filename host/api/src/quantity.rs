//! Memory, CPU and duration values as upstream reads them.
//!
//! Memory is read as a Flink `MemorySize` first (`2048m` is 2048 MiB, as Flink users mean it),
//! and only then as a Kubernetes quantity (`2Gi`, `1.5G`, `512Mi`). CPU is a number of cores
//! (`0.5`) or a Kubernetes quantity (`500m`).

use std::time::Duration;

const KIB: f64 = 1024.0;

/// Bytes from a Flink memory size (`1024`, `64 kb`, `2048m`, `1g`, `1 tebibytes`).
pub fn parse_flink_memory(text: &str) -> Option<u64> {
    let text = text.trim();
    let split = text
        .find(|c: char| !c.is_ascii_digit())
        .unwrap_or(text.len());
    let (number, unit) = text.split_at(split);
    let number: u64 = number.parse().ok()?;
    let multiplier: u64 = match unit.trim().to_ascii_lowercase().as_str() {
        "" | "b" | "bytes" => 1,
        "k" | "kb" | "kibibytes" => 1 << 10,
        "m" | "mb" | "mebibytes" => 1 << 20,
        "g" | "gb" | "gibibytes" => 1 << 30,
        "t" | "tb" | "tebibytes" => 1 << 40,
        _ => return None,
    };
    number.checked_mul(multiplier)
}

/// The value of a Kubernetes quantity in base units (`500m` = 0.5, `2Gi` = 2·2³⁰, `1e3` = 1000).
pub fn parse_k8s_quantity(text: &str) -> Option<f64> {
    let text = text.trim();
    let split = text
        .find(|c: char| !(c.is_ascii_digit() || c == '.' || c == '+' || c == '-'))
        .unwrap_or(text.len());
    let (number, suffix) = text.split_at(split);
    if number.is_empty() || number.starts_with('.') && number.len() == 1 {
        return None;
    }
    let value: f64 = number.parse().ok()?;
    let multiplier = match suffix {
        "" => 1.0,
        "m" => 1e-3,
        "k" => 1e3,
        "M" => 1e6,
        "G" => 1e9,
        "T" => 1e12,
        "P" => 1e15,
        "E" => 1e18,
        "Ki" => KIB,
        "Mi" => KIB.powi(2),
        "Gi" => KIB.powi(3),
        "Ti" => KIB.powi(4),
        "Pi" => KIB.powi(5),
        "Ei" => KIB.powi(6),
        exp if exp.starts_with(['e', 'E']) => 10f64.powi(exp[1..].parse().ok()?),
        _ => return None,
    };
    let result = value * multiplier;
    result.is_finite().then_some(result)
}

/// Bytes of a memory value: Flink size first, then Kubernetes quantity. The error says both.
pub fn parse_memory(text: &str) -> Result<u64, String> {
    if let Some(bytes) = parse_flink_memory(text) {
        return Ok(bytes);
    }
    match parse_k8s_quantity(text) {
        Some(v) if v >= 0.0 => Ok(v.round() as u64),
        _ => Err(format!(
            "not a memory size, got {text:?}; use a Flink size like `2048m` or `2g`, or a Kubernetes quantity like `2Gi`"
        )),
    }
}

/// Cores of a CPU value: a number (`0.5`, `2`) or a Kubernetes quantity (`500m`).
pub fn parse_cpu(text: &str) -> Result<f64, String> {
    parse_k8s_quantity(text).filter(|v| *v >= 0.0).ok_or_else(|| {
        format!("not a CPU amount, got {text:?}; use cores like `0.5` or `2`, or millicores like `500m`")
    })
}

/// A Flink duration: `500ms`, `30 s`, `1min`, `2 h`, `1d`; a bare number is milliseconds.
pub fn parse_flink_duration(text: &str) -> Result<Duration, String> {
    let text = text.trim();
    let split = text
        .find(|c: char| !c.is_ascii_digit())
        .unwrap_or(text.len());
    let (number, unit) = text.split_at(split);
    let bad =
        || format!("not a duration, got {text:?}; use e.g. `500ms`, `30s`, `5min`, `1h` or `1d`");
    let n: u64 = number.parse().map_err(|_| bad())?;
    let ms_per: u64 = match unit.trim().to_ascii_lowercase().as_str() {
        "" | "ms" | "milli" | "millis" | "millisecond" | "milliseconds" => 1,
        "s" | "sec" | "secs" | "second" | "seconds" => 1_000,
        "m" | "min" | "mins" | "minute" | "minutes" => 60_000,
        "h" | "hour" | "hours" => 3_600_000,
        "d" | "day" | "days" => 86_400_000,
        _ => return Err(bad()),
    };
    n.checked_mul(ms_per)
        .map(Duration::from_millis)
        .ok_or_else(bad)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn flink_sizes_win_over_kubernetes_milli() {
        assert_eq!(parse_memory("2048m"), Ok(2048 << 20));
        assert_eq!(parse_memory("1g"), Ok(1 << 30));
        assert_eq!(parse_memory("64 kb"), Ok(64 << 10));
        assert_eq!(parse_memory("1024"), Ok(1024));
    }

    #[test]
    fn kubernetes_quantities_are_understood_after_flink_sizes() {
        assert_eq!(parse_memory("2Gi"), Ok(2 << 30));
        assert_eq!(parse_memory("1.5Gi"), Ok(3 << 29));
        assert_eq!(parse_memory("1e3"), Ok(1000));
        assert!(parse_memory("two gigs").unwrap_err().contains("`2Gi`"));
        assert!(parse_memory("").is_err());
    }

    #[test]
    fn cpu_accepts_cores_and_millicores() {
        assert_eq!(parse_cpu("0.5"), Ok(0.5));
        assert_eq!(parse_cpu("500m"), Ok(0.5));
        assert_eq!(parse_cpu("2"), Ok(2.0));
        assert!(parse_cpu("fast").is_err());
        assert!(parse_cpu("-1").is_err());
    }

    #[test]
    fn durations_in_flink_units() {
        assert_eq!(parse_flink_duration("1m"), Ok(Duration::from_secs(60)));
        assert_eq!(parse_flink_duration("30 s"), Ok(Duration::from_secs(30)));
        assert_eq!(parse_flink_duration("250"), Ok(Duration::from_millis(250)));
        assert!(parse_flink_duration("soon").is_err());
    }
}
