//! A tenant's `flinkConfiguration` and job arguments reach Flink's configuration file. Whatever
//! they hold, the file Flink reads back (with its own parser, from the installed distribution)
//! holds exactly the rendered keys and values, and the arguments element for element; what a
//! file cannot hold is refused by validation, naming the field.

use flink_api::FlinkDeployment;
use flink_api::config::{ConfigFile, file_entry_problem};
use flink_operator::render::{self, RenderInput};
use flink_operator_tests::flink_cluster::{FlinkInstall, repo_dir};
use proptest::prelude::*;
use proptest::strategy::ValueTree;
use proptest::test_runner::TestRunner;
use serde_json::{Value, json};
use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::process::Command;

/// Strings a tenant might write to break out of a value: line breaks, quotes, YAML indicators,
/// comment signs, escapes, separators Flink splits lists on, and any other character.
fn hostile_text() -> impl Strategy<Value = String> {
    let pieces = prop::sample::select(vec![
        "\n",
        "\r\n",
        "\r",
        "\0",
        "\t",
        "\u{7f}",
        "\u{85}",
        "\u{2028}",
        "\u{feff}",
        "\u{fffe}",
        "\"",
        "'",
        "\\",
        "\\n",
        "\\u0041",
        ": ",
        ":",
        "#",
        " #",
        "- ",
        "[",
        "]",
        "{",
        "}",
        ",",
        ";",
        "&a",
        "*a",
        "!!str",
        "%",
        "@",
        "`",
        "|",
        ">",
        "?",
        "---",
        "...",
        "~",
        "null",
        "true",
        "0x1F",
        "1e3",
        " ",
        "  ",
        "é",
        "😀",
        "kubernetes.operator.x: y",
        "\nhigh-availability.type: kubernetes",
        "${HOME}",
        "$(POD_NAME)",
    ]);
    let piece = prop_oneof![
        pieces.prop_map(String::from),
        "[a-z.]{1,8}",
        any::<char>().prop_map(String::from),
    ];
    prop::collection::vec(piece, 0..6).prop_map(|p| p.concat())
}

/// Keys as tenants write them (dotted names), some with hostile pieces.
fn hostile_key() -> impl Strategy<Value = String> {
    prop_oneof![
        3 => "[a-z]{1,6}(\\.[a-z-]{1,8}){0,3}",
        1 => ("[a-z]{1,6}", hostile_text()).prop_map(|(a, b)| format!("user.{a}{b}")),
    ]
}

/// One generated deployment: its version's file format, its configuration and its arguments.
#[derive(Debug, Clone)]
struct Case {
    legacy: bool,
    config: BTreeMap<String, String>,
    args: Vec<String>,
}

fn case() -> impl Strategy<Value = Case> {
    (
        any::<bool>(),
        prop::collection::btree_map(hostile_key(), hostile_text(), 0..6),
        prop::collection::vec(hostile_text(), 0..4),
    )
        .prop_map(|(legacy, config, args)| Case {
            legacy,
            config,
            args,
        })
}

fn deployment(case: &Case) -> FlinkDeployment {
    serde_json::from_value(json!({
        "apiVersion": "flink.apache.org/v1beta1",
        "kind": "FlinkDeployment",
        "metadata": {"name": "tenant", "namespace": "team-a", "uid": "u", "generation": 1},
        "spec": {
            "image": "flink:2.3",
            "flinkVersion": if case.legacy { "v1_20" } else { "v2_3" },
            "flinkConfiguration": case.config,
            "serviceAccount": "flink",
            "jobManager": {"resource": {"memory": "1g", "cpu": 1}},
            "taskManager": {"resource": {"memory": "1g", "cpu": 1}},
            "mode": "native",
            "job": {"jarURI": "local:///opt/flink/usrlib/job.jar", "args": case.args,
                    "parallelism": 1, "upgradeMode": "stateless"}
        }
    }))
    .expect("a FlinkDeployment")
}

/// The rendered ConfigMap's file, written into a directory of its own.
fn render_into(resource: &FlinkDeployment, dir: &Path) -> (String, BTreeMap<String, String>) {
    let defaults = BTreeMap::new();
    let input = RenderInput::for_resource(resource, &resource.spec, &defaults);
    let config = render::flink_config(&input).expect("a valid spec renders its configuration");
    let objects = render::render(&input).expect("a valid spec renders");
    let file = render::config_file_name(input.version());
    let text = objects.config_map["data"][file]
        .as_str()
        .expect("the ConfigMap holds the file")
        .to_string();
    std::fs::create_dir_all(dir).expect("mkdir");
    std::fs::write(dir.join(file), &text).expect("write");
    (text, config)
}

/// Flink's own reading of every directory (one JVM for all).
fn read_back(install: &FlinkInstall, dirs: &[PathBuf]) -> Vec<Value> {
    let jar = sandbox::flink_dist::java_program(
        &install.flink_home,
        &sandbox::flink_dist::cache_dir(),
        &repo_dir().join("tests/java/config-readback/src"),
        "config-readback",
        "org.flinkoperator.tests.ConfigReadback",
    )
    .expect("the read-back helper compiles");
    let output = Command::new("java")
        .args([
            "-Dfile.encoding=UTF-8",
            "-Dsun.stdout.encoding=UTF-8",
            "-cp",
        ])
        .arg(format!(
            "{}:{}/lib/*",
            jar.display(),
            install.flink_home.display()
        ))
        .arg("org.flinkoperator.tests.ConfigReadback")
        .args(dirs)
        .output()
        .expect("java runs");
    assert!(
        output.status.success(),
        "{}",
        String::from_utf8_lossy(&output.stderr)
    );
    String::from_utf8(output.stdout)
        .expect("UTF-8")
        .lines()
        .map(|l| serde_json::from_str(l).unwrap_or_else(|e| panic!("{e}: {l}")))
        .collect()
}

#[test]
fn rendered_configuration_reads_back_through_flinks_own_parser_with_no_key_the_spec_did_not_hold() {
    let install = FlinkInstall::ensure().expect("the pinned Flink");
    let work = std::env::temp_dir().join(format!("hostile-config-{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&work);
    let mut runner = TestRunner::deterministic();
    let strategy = case();
    let (mut rendered, mut refused) = (Vec::new(), 0);
    for i in 0..400 {
        let case = strategy
            .new_tree(&mut runner)
            .expect("a generated case")
            .current();
        let resource = deployment(&case);
        let errors = flink_api::validation::deployment(&resource);
        let file = if case.legacy {
            ConfigFile::Legacy
        } else {
            ConfigFile::Yaml
        };
        let expected_refusal = case
            .config
            .iter()
            .any(|(k, v)| file_entry_problem(k, v, file).is_some())
            || case.args.iter().any(|a| {
                a.chars().any(|c| c.is_control() && c != '\t') || (case.legacy && a.contains('#'))
            });
        let refused_here = errors.iter().any(|e| {
            e.path.starts_with("spec.flinkConfiguration.") || e.path.starts_with("spec.job.args[")
        });
        assert_eq!(
            refused_here, expected_refusal,
            "case {i} {case:?}: validation said {errors:?}"
        );
        if !errors.is_empty() {
            refused += 1;
            continue;
        }
        let dir = work.join(format!("case-{i}"));
        let (text, config) = render_into(&resource, &dir);
        rendered.push((dir, case, text, config));
    }
    assert!(
        rendered.len() > 100 && refused > 20,
        "the generator exercises both: {} rendered, {refused} refused",
        rendered.len()
    );
    let dirs: Vec<PathBuf> = rendered.iter().map(|(d, ..)| d.clone()).collect();
    let answers = read_back(&install, &dirs);
    assert_eq!(answers.len(), rendered.len());
    for ((_, case, text, config), answer) in rendered.iter().zip(&answers) {
        assert!(answer.get("error").is_none(), "{answer}\n{text}");
        let read: BTreeMap<String, String> =
            serde_json::from_value(answer["entries"].clone()).expect("entries");
        // Flink 1.x skips empty values; the renderer leaves them out.
        let expected: BTreeMap<String, String> = config
            .iter()
            .filter(|(_, v)| !(case.legacy && v.is_empty()))
            .map(|(k, v)| (k.clone(), v.clone()))
            .collect();
        assert_eq!(
            read, expected,
            "Flink read another configuration from\n{text}"
        );
        let args: Vec<String> = serde_json::from_value(answer["args"].clone()).unwrap_or_default();
        assert_eq!(args, case.args, "Flink read other arguments from\n{text}");
    }
    std::fs::remove_dir_all(&work).expect("cleanup");
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 256, .. ProptestConfig::default() })]

    /// Whatever a tenant writes, validation answers (with field paths) and never panics, and a
    /// spec it accepts always renders.
    #[test]
    fn validation_never_panics_and_what_it_accepts_renders(case in case()) {
        let resource = deployment(&case);
        let errors = flink_api::validation::deployment(&resource);
        for error in &errors {
            prop_assert!(error.path.starts_with("spec.") || error.path.starts_with("metadata."), "{error}");
        }
        if errors.is_empty() {
            let defaults = BTreeMap::new();
            let input = RenderInput::for_resource(&resource, &resource.spec, &defaults);
            prop_assert!(render::render(&input).is_ok());
        }
    }
}
