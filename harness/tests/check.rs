//! `seatrial check` and `seatrial schema` as a user meets them; no engine needed.

use std::path::{Path, PathBuf};
use std::process::{Command, Output};

fn workspace() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).parent().expect("the crate sits in the workspace").to_path_buf()
}

fn seatrial(args: &[&str]) -> Output {
    Command::new(env!("CARGO_BIN_EXE_seatrial"))
        .args(args)
        .current_dir(workspace())
        .env("NO_COLOR", "1")
        // The engine must not be reached: a bad file is refused before anything starts.
        .env("DOCKER_HOST", "unix:///nonexistent/seatrial-check.sock")
        .output()
        .expect("seatrial runs")
}

/// One snapshot per kind of mistake: the whole message as the user sees it.
#[test]
fn every_bad_file_exits_2_and_points_at_its_mistake() {
    let root = workspace().display().to_string();
    insta::with_settings!({ filters => vec![(root.as_str(), "[WORKSPACE]")] }, {
        insta::glob!("bad/*.yaml", |path| {
            let relative = path.strip_prefix(workspace()).expect("inside the workspace").display().to_string();
            let out = seatrial(&["check", &relative]);
            let stderr = String::from_utf8_lossy(&out.stderr);
            assert_eq!(out.status.code(), Some(2), "{stderr}");
            assert!(stderr.contains(&format!("--> {relative}:")), "names the file, line and column: {stderr}");
            let run = seatrial(&["run", &relative]);
            assert_eq!(run.status.code(), Some(2), "run refuses the same file before starting anything");
            assert_eq!(run.stderr, out.stderr, "run reports the same errors as check");
            insta::assert_snapshot!(stderr);
        });
    });
}

#[test]
fn all_errors_of_all_files_come_in_one_go() {
    let out = seatrial(&["check", "harness/tests/bad"]);
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(2));
    let files = std::fs::read_dir(workspace().join("harness/tests/bad")).expect("bad files").count();
    for entry in std::fs::read_dir(workspace().join("harness/tests/bad")).expect("bad files") {
        let name = entry.expect("entry").file_name().to_string_lossy().into_owned();
        assert!(stderr.contains(&format!("/{name}:")), "{name} is reported: {stderr}");
    }
    assert!(files >= 15, "one bad file per kind of mistake");
}

#[test]
fn the_project_scenarios_check_clean() {
    let out = seatrial(&["check", "scenarios", "harness/tests/failing"]);
    assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
    assert!(String::from_utf8_lossy(&out.stdout).starts_with("ok: "));
}

#[test]
fn a_warning_alone_does_not_fail_the_check() {
    let dir = tempfile::tempdir().expect("tempdir");
    let file = dir.path().join("unused.yaml");
    std::fs::create_dir(dir.path().join("app")).expect("app folder");
    std::fs::write(dir.path().join("app/Dockerfile"), "FROM scratch\n").expect("Dockerfile");
    std::fs::write(
        &file,
        "images:\n  app:\n    build: { context: ./app }\nscenarios:\n  - name: x\n    containers:\n      web: { image: \"busybox:1\" }\n",
    )
    .expect("scenario");
    let out = seatrial(&["check", &file.display().to_string()]);
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(out.status.success(), "{stderr}");
    assert!(stderr.contains("warning: the image `app` is defined in `images:` but no container uses it"), "{stderr}");
    assert!(stderr.contains("unused.yaml:2:3"), "{stderr}");
}

/// The committed schema is what the binary prints: editors and CI read the file, not the binary.
#[test]
fn the_committed_schema_is_current() {
    let out = seatrial(&["schema"]);
    assert!(out.status.success());
    let committed = std::fs::read_to_string(workspace().join("seatrial.schema.json")).expect("seatrial.schema.json");
    assert!(
        committed == String::from_utf8_lossy(&out.stdout),
        "seatrial.schema.json is stale: run `cargo run -- schema > seatrial.schema.json`"
    );
}

#[test]
fn every_field_of_the_schema_has_a_description() {
    let schema: serde_json::Value = serde_json::from_slice(&seatrial(&["schema"]).stdout).expect("the schema is JSON");
    let mut missing = Vec::new();
    walk(&schema, "$", &mut missing);
    assert!(missing.is_empty(), "fields without a description: {missing:#?}");
}

fn walk(node: &serde_json::Value, at: &str, missing: &mut Vec<String>) {
    match node {
        serde_json::Value::Object(map) => {
            if let Some(serde_json::Value::Object(properties)) = map.get("properties") {
                for (key, field) in properties {
                    if field.get("description").is_none() {
                        missing.push(format!("{at}.{key}"));
                    }
                }
            }
            for (key, child) in map {
                walk(child, &format!("{at}.{key}"), missing);
            }
        }
        serde_json::Value::Array(items) => {
            for (i, child) in items.iter().enumerate() {
                walk(child, &format!("{at}[{i}]"), missing);
            }
        }
        _ => {}
    }
}

fn check_jsonschema(files: &[PathBuf]) -> Output {
    Command::new("check-jsonschema")
        .arg("--schemafile")
        .arg(workspace().join("seatrial.schema.json"))
        .args(files)
        .output()
        .expect("check-jsonschema must be installed: `pip install check-jsonschema` (.ci/run does it)")
}

fn yaml_files(dir: &str) -> Vec<PathBuf> {
    let mut files: Vec<PathBuf> = std::fs::read_dir(workspace().join(dir))
        .expect("folder")
        .map(|e| e.expect("entry").path())
        .filter(|p| p.extension().is_some_and(|e| e == "yaml"))
        .collect();
    files.sort();
    files
}

/// A real JSON Schema validator accepts every file seatrial accepts in the project.
#[test]
fn a_real_validator_accepts_the_project_scenarios() {
    let mut files = yaml_files("scenarios");
    files.extend(yaml_files("harness/tests/failing"));
    files.extend(yaml_files("harness/tests/hostile"));
    files.extend(yaml_files("harness/tests/interrupt"));
    if workspace().join("docs/examples").is_dir() {
        files.extend(yaml_files("docs/examples"));
    }
    let out = check_jsonschema(&files);
    assert!(out.status.success(), "{}{}", String::from_utf8_lossy(&out.stdout), String::from_utf8_lossy(&out.stderr));
}

/// ... and rejects the mistakes a schema can see (the rest needs `seatrial check`: paths, variables, names).
#[test]
fn a_real_validator_rejects_bad_files() {
    for name in [
        "typo-in-key",
        "unknown-step",
        "wrong-type",
        "bad-duration",
        "yaml-syntax",
        "two-kinds-in-one-step",
        "step-without-kind",
        "negative-points",
    ] {
        let file = workspace().join(format!("harness/tests/bad/{name}.yaml"));
        let out = check_jsonschema(&[file]);
        assert_eq!(out.status.code(), Some(1), "{name}: {}", String::from_utf8_lossy(&out.stdout));
    }
}
