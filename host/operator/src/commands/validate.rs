//! `flink-operator validate`: every problem in users' YAML, one line each.

use flink_api::API_VERSION;
use flink_api::document::{
    Finding, MAX_INPUT_BYTES, other_kubernetes_object, split_documents, validate_documents,
};
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

pub fn run(inputs: &[PathBuf], jar_schemes: Vec<String>, strict: bool) -> ExitCode {
    let settings = ValidationSettings {
        session_job_jar_schemes: jar_schemes
            .iter()
            .map(|s| s.trim().to_ascii_lowercase())
            .collect(),
        ..ValidationSettings::default()
    };
    let checked = read_and_validate(inputs, &settings, strict);
    let mut err = std::io::stderr().lock();
    for note in &checked.notes {
        let _ = writeln!(err, "{note}");
    }
    let lines = checked.problems;
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

/// What [`read_and_validate`] found.
pub struct Checked {
    /// Every document read, Flink resources and other objects alike.
    pub documents: Vec<Value>,
    /// One line per problem (`file:doc-index: kind/name: field: message`).
    pub problems: Vec<String>,
    /// One line per other Kubernetes object that was skipped.
    pub notes: Vec<String>,
}

/// Reads every input and validates all Flink resources together. Other Kubernetes objects in
/// the files are skipped with a note, or refused with `strict`.
pub fn read_and_validate(
    inputs: &[PathBuf],
    settings: &ValidationSettings,
    strict: bool,
) -> Checked {
    let mut lines = Vec::new();
    let mut notes = Vec::new();
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
    let flink: Vec<Value> = documents
        .iter()
        .enumerate()
        .map(|(i, document)| match other_kubernetes_object(document) {
            Some(what) => {
                let origin = &origins[i];
                let name = document
                    .pointer("/metadata/name")
                    .and_then(Value::as_str)
                    .unwrap_or("?");
                let kind = document.get("kind").and_then(Value::as_str).unwrap_or("?");
                let at = format!("{}:{}: {kind}/{name}", origin.file, origin.index);
                if strict {
                    lines.push(format!("{at}: kind: {what} is not a {API_VERSION} resource, and --strict refuses other objects; validate the Flink resources alone"));
                } else {
                    notes.push(format!("{at}: skipped: {what} is not a {API_VERSION} resource (--strict refuses it)"));
                }
                // Left out of validation, its index kept for the others' origins.
                Value::Null
            }
            None => document.clone(),
        })
        .collect();
    lines.extend(
        validate_documents(flink, settings)
            .iter()
            .map(|f| line(f, &origins)),
    );
    Checked {
        documents,
        problems: lines,
        notes,
    }
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
