//! Every key of upstream's generated configuration tables either acts here or is listed in
//! docs/configuration.md with the reason it does not, and the table there tells the truth: a
//! row that says a key acts names a key the code reads, an operator key that is not read stays
//! out of Flink's configuration, and upstream's default of every operator key we read is
//! accepted. Upstream's tables are read at test time from the shared test data.

#[path = "../../api/tests/shared_data.rs"]
mod shared_data;

use flink_operator::operator_config::{self, Dynamic};
use flink_operator::settings::Settings;
use std::collections::BTreeMap;
use std::path::Path;

const TABLES: [&str; 4] = [
    "kubernetes_operator_config_configuration.html",
    "kubernetes_operator_metric_configuration.html",
    "auto_scaler_configuration.html",
    "autoscaler_standalone_configuration.html",
];

/// Upstream's keys with their defaults, from the generated HTML tables.
fn upstream_keys() -> BTreeMap<String, String> {
    let dir = shared_data::shared_dir().join("upstream-config");
    let mut keys = BTreeMap::new();
    for table in TABLES {
        let text =
            std::fs::read_to_string(dir.join(table)).unwrap_or_else(|e| panic!("{table}: {e}"));
        for row in text.split("<tr>").skip(1) {
            let Some(key) = between(row, "<h5>", "</h5>") else {
                continue;
            };
            // The default is the cell after the key's.
            let after = &row[row.find("</h5>").expect("a key cell") + 5..];
            let default = after
                .split_once("<td")
                .and_then(|(_, rest)| between(rest, ">", "</td>"))
                .unwrap_or_default();
            keys.insert(unescape(key), unescape(default));
        }
    }
    assert!(keys.len() > 140, "upstream's tables read: {}", keys.len());
    keys
}

fn between<'a>(text: &'a str, start: &str, end: &str) -> Option<&'a str> {
    let from = text.find(start)? + start.len();
    let to = text[from..].find(end)? + from;
    Some(&text[from..to])
}

fn unescape(text: &str) -> String {
    text.replace("&lt;", "<")
        .replace("&gt;", ">")
        .replace("&quot;", "\"")
        .replace("&amp;", "&")
        .trim()
        .to_string()
}

struct Row {
    scope: String,
    here: String,
    notes: String,
}

/// docs/configuration.md's table: key, scope, here, notes.
fn documented() -> BTreeMap<String, Row> {
    let path = shared_data::repo_dir().join("docs/configuration.md");
    let text = std::fs::read_to_string(&path).expect("docs/configuration.md");
    let mut rows = BTreeMap::new();
    for line in text.lines().filter(|l| l.starts_with("| `")) {
        let cells: Vec<String> = line
            .trim_matches('|')
            .replace("\\|", "\u{1}")
            .split('|')
            .map(|c| c.trim().replace('\u{1}', "|"))
            .collect();
        assert_eq!(cells.len(), 4, "a row of four cells: {line}");
        let key = cells[0].trim_matches('`').to_string();
        let row = Row {
            scope: cells[1].clone(),
            here: cells[2].clone(),
            notes: cells[3].clone(),
        };
        assert!(
            rows.insert(key.clone(), row).is_none(),
            "{key} is listed twice"
        );
    }
    rows
}

/// Every non-test Rust source of the workspace, for the string literals it holds.
fn sources() -> String {
    fn walk(dir: &Path, out: &mut String) {
        for entry in std::fs::read_dir(dir)
            .expect("a source directory")
            .flatten()
        {
            let path = entry.path();
            if path.is_dir() {
                walk(&path, out);
            } else if path.extension().is_some_and(|e| e == "rs") {
                out.push_str(&std::fs::read_to_string(&path).expect("a source file"));
            }
        }
    }
    let mut all = String::new();
    for krate in std::fs::read_dir(shared_data::repo_dir().join("host"))
        .expect("host/")
        .flatten()
    {
        let src = krate.path().join("src");
        if src.is_dir() {
            walk(&src, &mut all);
        }
    }
    all
}

/// A concrete key for one with a `<name>` in it.
fn concrete(key: &str) -> String {
    key.replace("<listener-name>", "audit")
        .replace("<name>", "custom")
        .replace("<parameter>", "param")
}

fn config_yaml(key: &str, value: &str) -> BTreeMap<String, String> {
    BTreeMap::from([(
        "config.yaml".to_string(),
        format!("{key}: '{}'\n", value.replace('\'', "''")),
    )])
}

#[test]
fn every_upstream_key_acts_or_is_documented_with_its_reason() {
    let upstream = upstream_keys();
    let documented = documented();
    let missing: Vec<&String> = upstream
        .keys()
        .filter(|k| !documented.contains_key(*k))
        .collect();
    assert!(
        missing.is_empty(),
        "upstream keys not in docs/configuration.md: {missing:#?}"
    );
    let stale: Vec<&String> = documented
        .keys()
        .filter(|k| !upstream.contains_key(*k))
        .collect();
    assert!(
        stale.is_empty(),
        "rows in docs/configuration.md that upstream's tables do not have: {stale:#?}"
    );

    let sources = sources();
    let base = Dynamic::from_settings(&Settings::default());
    let mut wrong = Vec::new();
    for (key, row) in &documented {
        let acts = matches!(row.here.as_str(), "acts" | "at once" | "at start");
        if !acts && !matches!(row.here.as_str(), "not read" | "not yet") {
            wrong.push(format!("{key}: `here` is {:?}", row.here));
            continue;
        }
        if !matches!(row.scope.as_str(), "operator" | "resource" | "standalone") {
            wrong.push(format!("{key}: `scope` is {:?}", row.scope));
        }
        if !acts && row.notes.is_empty() {
            wrong.push(format!("{key}: {} without a reason", row.here));
        }
        if acts {
            let short = key
                .strip_prefix("kubernetes.operator.")
                .or_else(|| key.strip_prefix("job.autoscaler."))
                .unwrap_or(key);
            if !sources.contains(&format!("\"{key}\""))
                && !sources.contains(&format!("\"{short}\""))
            {
                wrong.push(format!("{key}: said to act, but no code names it"));
            }
        }
        if row.scope != "operator" {
            continue;
        }
        // Operator keys never become Flink options of a deployment; upstream's defaults of
        // those read here are accepted; those not read are reported as such.
        let default = upstream[key].trim_matches('"');
        let value = match default {
            "(none)" | "" if acts => continue,
            "(none)" | "" => "1",
            value => value,
        };
        let key = concrete(key);
        match operator_config::parse(&config_yaml(&key, value), &base) {
            Ok(loaded) => {
                if loaded.dynamic.flink_defaults.contains_key(&key) {
                    wrong.push(format!("{key}: reaches Flink's configuration"));
                }
                if !acts && !loaded.not_read.contains(&key) {
                    wrong.push(format!("{key}: not reported as not read"));
                }
                if acts && loaded.not_read.contains(&key) {
                    wrong.push(format!("{key}: said to act, but reported as not read"));
                }
            }
            Err(problems) => wrong.push(format!(
                "{key}: upstream's default {value:?} is refused: {problems:?}"
            )),
        }
    }
    assert!(
        wrong.is_empty(),
        "docs/configuration.md is wrong: {wrong:#?}"
    );
}
