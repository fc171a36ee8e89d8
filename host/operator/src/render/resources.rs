//! Memory and CPU as Flink options and as container resources.

use super::RenderError;

const KIB: u64 = 1 << 10;
const MIB: u64 = 1 << 20;
const GIB: u64 = 1 << 30;

pub fn memory_bytes(text: &str, path: &str) -> Result<u64, RenderError> {
    flink_api::quantity::parse_memory(text).map_err(|e| RenderError::new(path, e))
}

/// Bytes as a Flink memory size in the largest exact unit (`2g`, `1536m`, `100b`).
pub fn flink_memory_text(bytes: u64) -> String {
    match bytes {
        b if b > 0 && b % GIB == 0 => format!("{}g", b / GIB),
        b if b > 0 && b % MIB == 0 => format!("{}m", b / MIB),
        b if b > 0 && b % KIB == 0 => format!("{}k", b / KIB),
        b => format!("{b}b"),
    }
}

/// Bytes as a Kubernetes quantity in the largest exact binary unit (`2Gi`, `1536Mi`, `100`).
pub fn memory_quantity(bytes: u64) -> String {
    match bytes {
        b if b > 0 && b % GIB == 0 => format!("{}Gi", b / GIB),
        b if b > 0 && b % MIB == 0 => format!("{}Mi", b / MIB),
        b if b > 0 && b % KIB == 0 => format!("{}Ki", b / KIB),
        b => b.to_string(),
    }
}

/// Cores as a Flink option value (`0.5`, `2.0`).
pub fn cpu_text(cores: f64) -> String {
    format!("{cores:?}")
}

/// Cores as a Kubernetes quantity: whole cores as `2`, else millicores (`500m`).
pub fn cpu_quantity(cores: f64) -> String {
    let millis = (cores * 1000.0).round() as i64;
    if millis % 1000 == 0 {
        (millis / 1000).to_string()
    } else {
        format!("{millis}m")
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn memory_is_written_in_the_largest_exact_unit() {
        assert_eq!(flink_memory_text(2 * GIB), "2g");
        assert_eq!(flink_memory_text(1536 * MIB), "1536m");
        assert_eq!(flink_memory_text(100), "100b");
        assert_eq!(memory_quantity(2 * GIB), "2Gi");
        assert_eq!(memory_quantity(768 * MIB), "768Mi");
    }

    #[test]
    fn cpu_is_whole_cores_or_millicores() {
        assert_eq!(cpu_quantity(2.0), "2");
        assert_eq!(cpu_quantity(0.5), "500m");
        assert_eq!(cpu_quantity(1.25), "1250m");
        assert_eq!(cpu_text(1.0), "1.0");
    }
}
