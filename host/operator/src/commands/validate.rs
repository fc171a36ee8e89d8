//! `flink-operator validate`: every problem in users' YAML, one line each.

use flink_api::document::{Finding, MAX_INPUT_BYTES, split_documents, validate_documents};
use flink_api::validation::ValidationSettings;
use serde_json::Value;
use std::io::{Read, Write};
use std::path::{Path, PathBuf};
use std::process::ExitCode;

/// Where a document came from: its file and its index among the file's non-empty documents.
struct Origin {
    file: String,
    index: usize,
}

pub fn run(inputs: &[PathBuf], jar_schemes: Vec<String>) -> ExitCode {
    let settings = ValidationSettings {
        session_job_jar_schemes: jar_schemes
            .iter()
            .map(|s| s.trim().to_ascii_lowercase())
            .collect(),
        ..ValidationSettings::default()
    };
    let (_, lines) = read_and_validate(inputs, &settings);
    let mut out = std::io::stdout().lock();
    for l in &lines {
        // A closed pipe (e.g. `| head`) is not a validation failure.
        let _ = writeln!(out, "{l}");
    }
    if lines.is_empty() {
        ExitCode::SUCCESS
    } else {
        ExitCode::FAILURE
    }
}

/// Reads every input and validates all documents together; the documents and one line per
/// problem (`file:doc-index: kind/name: field: message`).
pub fn read_and_validate(
    inputs: &[PathBuf],
    settings: &ValidationSettings,
) -> (Vec<Value>, Vec<String>) {
    let mut lines = Vec::new();
    let mut documents = Vec::new();
    let mut origins = Vec::new();
    for input in inputs {
        for file in expand(input, &mut lines) {
            match read_input(&file) {
                Ok(text) => match split_documents(&text) {
                    Ok(docs) => {
                        for (index, doc) in docs.into_iter().enumerate() {
                            origins.push(Origin {
                                file: display(&file),
                                index,
                            });
                            documents.push(doc);
                        }
                    }
                    Err(e) => lines.push(format!("{}: {e}", display(&file))),
                },
                Err(e) => lines.push(format!("{}: {e}", display(&file))),
            }
        }
    }
    lines.extend(
        validate_documents(documents.clone(), settings)
            .iter()
            .map(|f| line(f, &origins)),
    );
    (documents, lines)
}

fn line(finding: &Finding, origins: &[Origin]) -> String {
    let origin = &origins[finding.index];
    format!(
        "{}:{}: {}/{}: {}",
        origin.file,
        origin.index,
        finding.kind.as_deref().unwrap_or("?"),
        finding.name.as_deref().unwrap_or("?"),
        finding.error
    )
}

fn display(path: &Path) -> String {
    if path == Path::new("-") {
        "<stdin>".into()
    } else {
        path.display().to_string()
    }
}

/// A file as itself; a directory as its YAML files, sorted, recursively.
fn expand(input: &Path, lines: &mut Vec<String>) -> Vec<PathBuf> {
    if input == Path::new("-") || !input.is_dir() {
        return vec![input.to_path_buf()];
    }
    let mut files = Vec::new();
    let mut stack = vec![input.to_path_buf()];
    while let Some(dir) = stack.pop() {
        let entries = match std::fs::read_dir(&dir) {
            Ok(entries) => entries,
            Err(e) => {
                lines.push(format!("{}: cannot read directory: {e}", dir.display()));
                continue;
            }
        };
        for entry in entries.flatten() {
            let path = entry.path();
            if path.is_dir() {
                stack.push(path);
            } else if path.extension().is_some_and(|e| e == "yaml" || e == "yml") {
                files.push(path);
            }
        }
    }
    files.sort();
    if files.is_empty() {
        lines.push(format!(
            "{}: no *.yaml or *.yml files in this directory",
            input.display()
        ));
    }
    files
}

fn read_input(path: &Path) -> Result<String, String> {
    let limit = MAX_INPUT_BYTES as u64 + 1;
    let mut bytes = Vec::new();
    let read = if path == Path::new("-") {
        std::io::stdin().lock().take(limit).read_to_end(&mut bytes)
    } else {
        std::fs::File::open(path)
            .map_err(|e| format!("cannot open: {e}"))?
            .take(limit)
            .read_to_end(&mut bytes)
    };
    read.map_err(|e| format!("cannot read: {e}"))?;
    if bytes.len() as u64 >= limit {
        return Err(format!(
            "larger than the {} MiB limit; a Kubernetes object is at most about 1.5 MiB",
            MAX_INPUT_BYTES >> 20
        ));
    }
    String::from_utf8(bytes).map_err(|e| {
        format!(
            "not UTF-8 text (invalid byte at offset {})",
            e.utf8_error().valid_up_to()
        )
    })
}
