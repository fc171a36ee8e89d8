//! `flink-operator validate` as users run it: upstream's examples pass, each bad fixture fails
//! with exactly the expected field-precise lines, garbage gets one clear line.

use std::collections::BTreeSet;
use std::io::Write;
use std::path::{Path, PathBuf};
use std::process::{Command, Output, Stdio};

fn repo() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../..")
}

fn shared() -> PathBuf {
    let dir = std::env::var_os("FLINK_OPERATOR_SHARED")
        .map(PathBuf::from)
        .unwrap_or_else(|| repo().join("../shared"));
    assert!(
        dir.join("upstream-examples").is_dir(),
        "shared/ test data not found at {}",
        dir.display()
    );
    dir
}

fn validate(args: &[&str]) -> Output {
    Command::new(env!("CARGO_BIN_EXE_flink-operator"))
        .arg("validate")
        .args(args)
        .output()
        .expect("binary runs")
}

fn stdout_lines(output: &Output) -> Vec<String> {
    String::from_utf8_lossy(&output.stdout)
        .lines()
        .map(str::to_string)
        .collect()
}

#[test]
fn every_upstream_example_validates_clean() {
    let dir = shared().join("upstream-examples");
    let output = validate(&["-f", dir.to_str().unwrap()]);
    assert_eq!(stdout_lines(&output), Vec::<String>::new());
    assert!(output.status.success());
}

/// The examples are for `flink-operator local`, which serves `local://` jars of its jar
/// directory; with the operator's defaults (https only) their session job is refused.
#[test]
fn every_project_example_validates_clean() {
    let output = validate(&[
        "--jar-schemes",
        "https,local",
        "-f",
        repo().join("examples").to_str().unwrap(),
    ]);
    assert_eq!(stdout_lines(&output), Vec::<String>::new());
    assert!(output.status.success());
}

#[test]
fn each_bad_fixture_fails_with_exactly_its_expected_lines() {
    let dir = repo().join("tests/fixtures/invalid");
    let mut fixtures: Vec<PathBuf> = std::fs::read_dir(&dir)
        .unwrap()
        .map(|e| e.unwrap().path())
        .collect();
    fixtures.sort();
    assert!(fixtures.len() >= 20, "only {} bad fixtures", fixtures.len());
    for fixture in fixtures {
        let text = std::fs::read_to_string(&fixture).unwrap();
        let expected: BTreeSet<String> = text
            .lines()
            .filter_map(|l| l.strip_prefix("# expect: "))
            .map(str::to_string)
            .collect();
        assert!(
            !expected.is_empty(),
            "{} has no `# expect:` line",
            fixture.display()
        );
        let output = validate(&["-f", fixture.to_str().unwrap()]);
        assert_eq!(
            output.status.code(),
            Some(1),
            "{} should fail",
            fixture.display()
        );
        let file = fixture.display().to_string();
        let got: BTreeSet<String> = stdout_lines(&output)
            .iter()
            .map(|l| {
                let rest = l
                    .strip_prefix(&format!("{file}:"))
                    .unwrap_or_else(|| panic!("line without file: {l}"));
                // `doc-index: kind/name: field: message`, or `message` for a file-level problem.
                match rest.split_once(": ") {
                    Some((index, detail)) if index.parse::<usize>().is_ok() => detail.to_string(),
                    _ => rest.trim_start().to_string(),
                }
            })
            .collect();
        let matches = got.len() == expected.len()
            && expected.iter().all(|e| {
                got.iter()
                    .any(|g| g == e || (e == "not valid YAML" && g.starts_with(e)))
            });
        assert!(
            matches,
            "{}\nexpected: {expected:#?}\ngot: {got:#?}",
            fixture.display()
        );
    }
}

#[test]
fn lines_name_file_document_index_kind_and_name() {
    let fixture = repo().join("tests/fixtures/invalid/session-job-on-application-cluster.yaml");
    let output = validate(&["-f", fixture.to_str().unwrap()]);
    let lines = stdout_lines(&output);
    assert_eq!(lines.len(), 1);
    assert!(
        lines[0].starts_with(&format!(
            "{}:1: FlinkSessionJob/onapp: spec.deploymentName: ",
            fixture.display()
        )),
        "{}",
        lines[0]
    );
}

fn temp_file(name: &str, bytes: &[u8]) -> PathBuf {
    let dir = std::env::temp_dir().join(format!("flink-operator-validate-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    let path = dir.join(name);
    std::fs::write(&path, bytes).unwrap();
    path
}

fn one_clear_line(path: &Path, expected: &str) {
    let output = validate(&["-f", path.to_str().unwrap()]);
    let lines = stdout_lines(&output);
    assert_eq!(
        output.status.code(),
        Some(1),
        "{lines:?} {}",
        String::from_utf8_lossy(&output.stderr)
    );
    assert_eq!(lines.len(), 1, "{lines:?}");
    assert!(
        lines[0].contains(expected),
        "{} does not contain {expected}",
        lines[0]
    );
    assert!(
        output.stderr.is_empty(),
        "stderr: {}",
        String::from_utf8_lossy(&output.stderr)
    );
}

#[test]
fn garbage_gets_one_clear_line_and_never_a_panic() {
    one_clear_line(
        &temp_file("binary.yaml", &[0xff, 0xfe, 0x00, 0x12]),
        "not UTF-8 text",
    );
    one_clear_line(
        &temp_file("huge.yaml", &vec![b'#'; 9 << 20]),
        "larger than the 8 MiB limit",
    );
    one_clear_line(&temp_file("tabs.yaml", b"a:\n\t- b\n"), "not valid YAML");
    one_clear_line(
        &temp_file("list.yaml", b"- 1\n- 2\n"),
        "document is not a mapping",
    );
    let bomb = "a: &a [x, x, x, x, x, x, x, x, x]\nb: &b [*a, *a, *a, *a, *a, *a, *a, *a, *a]\nc: &c [*b, *b, *b, *b, *b, *b, *b, *b, *b]\nd: &d [*c, *c, *c, *c, *c, *c, *c, *c, *c]\ne: &e [*d, *d, *d, *d, *d, *d, *d, *d, *d]\nf: &f [*e, *e, *e, *e, *e, *e, *e, *e, *e]\ng: &g [*f, *f, *f, *f, *f, *f, *f, *f, *f]\n";
    let output = validate(&[
        "-f",
        temp_file("bomb.yaml", bomb.as_bytes()).to_str().unwrap(),
    ]);
    assert_eq!(output.status.code(), Some(1));
    assert_eq!(
        stdout_lines(&output).len(),
        1,
        "{:?}",
        stdout_lines(&output)
    );
    one_clear_line(&repo().join("does-not-exist.yaml"), "cannot open");
}

#[test]
fn standard_input_is_read_with_dash() {
    let mut child = Command::new(env!("CARGO_BIN_EXE_flink-operator"))
        .args(["validate", "-f", "-"])
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .spawn()
        .unwrap();
    child
        .stdin
        .take()
        .unwrap()
        .write_all(b"apiVersion: flink.apache.org/v1beta1\nkind: FlinkStateSnapshot\nmetadata: {name: s}\nspec: {checkpoint: {}, jobReference: {kind: FlinkDeployment, name: d}, backoffLimit: -2}\n")
        .unwrap();
    let output = child.wait_with_output().unwrap();
    assert_eq!(
        stdout_lines(&output),
        vec![
            "<stdin>:0: FlinkStateSnapshot/s: spec.backoffLimit: must be -1 (retry forever), 0 (never retry) or more, got -2"
        ]
    );
}

#[test]
fn crds_command_prints_the_four_crds() {
    let output = Command::new(env!("CARGO_BIN_EXE_flink-operator"))
        .arg("crds")
        .output()
        .unwrap();
    assert!(output.status.success());
    let text = String::from_utf8(output.stdout).unwrap();
    for name in [
        "flinkdeployments",
        "flinksessionjobs",
        "flinkstatesnapshots",
        "flinkbluegreendeployments",
    ] {
        assert!(
            text.contains(&format!("name: {name}.flink.apache.org")),
            "{name} missing"
        );
    }
    assert_eq!(text.matches("\n---\n").count(), 3);
}

/// Upstream's e2e files carry PersistentVolumeClaims and IngressClasses beside the Flink
/// resources: those are skipped with a note (and refused with `--strict`); a Flink resource of
/// an unknown kind is still a mistake.
#[test]
fn other_kubernetes_objects_are_skipped_with_a_note_or_refused_with_strict() {
    let file = temp_file(
        "mixed.yaml",
        b"apiVersion: v1\nkind: PersistentVolumeClaim\nmetadata: {name: flink-data}\nspec: {accessModes: [ReadWriteOnce]}\n---\napiVersion: networking.k8s.io/v1\nkind: IngressClass\nmetadata: {name: nginx}\nspec: {controller: k8s.io/ingress-nginx}\n---\napiVersion: flink.apache.org/v1beta1\nkind: FlinkDeployment\nmetadata: {name: app}\nspec:\n  flinkVersion: v2_3\n  job: {jarURI: 'local:///opt/flink/usrlib/job.jar', parallelism: 0}\n",
    );
    let path = file.to_str().unwrap();
    let output = validate(&["-f", path]);
    assert_eq!(
        stdout_lines(&output),
        vec![format!(
            "{path}:2: FlinkDeployment/app: spec.job.parallelism: must be at least 1, got 0"
        )],
        "only the Flink resource is judged, at its own index"
    );
    let notes = String::from_utf8_lossy(&output.stderr);
    assert!(
        notes.contains(&format!("{path}:0: PersistentVolumeClaim/flink-data: skipped: PersistentVolumeClaim (v1) is not a flink.apache.org/v1beta1 resource")),
        "{notes}"
    );
    assert!(
        notes.contains(&format!("{path}:1: IngressClass/nginx: skipped")),
        "{notes}"
    );
    let strict = validate(&["--strict", "-f", path]);
    let lines = stdout_lines(&strict);
    assert_eq!(lines.len(), 3, "{lines:?}");
    assert!(lines[0].starts_with(&format!("{path}:0: PersistentVolumeClaim/flink-data: kind: PersistentVolumeClaim (v1) is not a flink.apache.org/v1beta1 resource, and --strict refuses")), "{lines:?}");
    assert!(!strict.status.success());
    // A typo in a Flink kind is not another object.
    let typo = temp_file(
        "typo.yaml",
        b"apiVersion: flink.apache.org/v1beta1\nkind: FlinkDeploymnet\nmetadata: {name: app}\nspec: {}\n",
    );
    let output = validate(&["-f", typo.to_str().unwrap()]);
    assert!(!output.status.success());
    assert!(
        stdout_lines(&output)[0]
            .contains("kind: \"FlinkDeploymnet\" is not a flink.apache.org/v1beta1 kind")
    );
}
