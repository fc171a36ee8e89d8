//! `flink-operator crds`: the generated CRDs, printed or written to the chart.

use std::io::Write;
use std::path::Path;
use std::process::ExitCode;

pub fn run(write: Option<&Path>) -> ExitCode {
    match render(write) {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("flink-operator crds: {e}");
            ExitCode::from(2)
        }
    }
}

fn render(write: Option<&Path>) -> Result<(), String> {
    let mut printed = Vec::new();
    for crd in flink_api::crd::all() {
        let yaml = flink_api::crd::to_yaml(&crd).map_err(|e| format!("cannot render CRD: {e}"))?;
        match write {
            Some(dir) => {
                let path = dir.join(flink_api::crd::file_name(&crd));
                std::fs::write(&path, yaml)
                    .map_err(|e| format!("cannot write {}: {e}", path.display()))?;
            }
            None => printed.push(yaml),
        }
    }
    if !printed.is_empty() {
        match std::io::stdout().write_all(printed.join("---\n").as_bytes()) {
            Err(e) if e.kind() != std::io::ErrorKind::BrokenPipe => {
                return Err(format!("cannot write to standard output: {e}"));
            }
            _ => {}
        }
    }
    Ok(())
}
