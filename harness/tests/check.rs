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
    let out = seatrial(&["check", "scenarios", "harness/tests/failing", "harness/tests/compose-failing"]);
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

/// The same for the schema of `--report json` files.
#[test]
fn the_committed_report_schema_is_current() {
    let out = seatrial(&["schema", "--report"]);
    assert!(out.status.success());
    let committed =
        std::fs::read_to_string(workspace().join("seatrial-report.schema.json")).expect("seatrial-report.schema.json");
    assert!(
        committed == String::from_utf8_lossy(&out.stdout),
        "seatrial-report.schema.json is stale: run `cargo run -- schema --report > seatrial-report.schema.json`"
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

/// seatrial as a user runs it from `cwd`, with no engine reachable.
fn seatrial_in(cwd: &Path, args: &[&str]) -> Output {
    Command::new(env!("CARGO_BIN_EXE_seatrial"))
        .args(args)
        .current_dir(cwd)
        .env("NO_COLOR", "1")
        .env("DOCKER_HOST", "unix:///nonexistent/seatrial-check.sock")
        .output()
        .expect("seatrial runs")
}

/// A project (`proj`, with `.git`) whose scenario folder holds every kind of way out, a folder outside it,
/// and a submission whose folder holds a way out of its own.
struct EscapeWorld {
    _dir: tempfile::TempDir,
    top: PathBuf,
}

impl EscapeWorld {
    fn new() -> EscapeWorld {
        let dir = tempfile::tempdir().expect("a temporary folder");
        let top = dir.path().canonicalize().expect("canonical");
        let scen = top.join("proj/scen");
        for folder in ["outside", "proj/.git", "proj/scen/data", "proj/other", "subs/alice/data"] {
            std::fs::create_dir_all(top.join(folder)).expect("folder");
        }
        std::fs::write(top.join("outside/secret.txt"), "secret").expect("secret");
        std::fs::write(scen.join("data/Dockerfile"), "FROM seatrial/busybox\n").expect("Dockerfile");
        std::fs::write(top.join("subs/alice/Dockerfile"), "FROM seatrial/busybox\n").expect("Dockerfile");
        let link = |target: &Path, at: &Path| std::os::unix::fs::symlink(target, at).expect("symlink");
        link(Path::new("/"), &scen.join("link-root"));
        link(Path::new("/etc"), &scen.join("link-etc"));
        link(&top.join("outside"), &scen.join("link-out"));
        link(Path::new("/etc"), &scen.join("via"));
        link(Path::new("../../.."), &scen.join("data/up"));
        link(&scen, &top.join("proj/linked-scen"));
        link(Path::new("/etc"), &top.join("subs/alice/static"));
        EscapeWorld { _dir: dir, top }
    }

    fn scen(&self) -> PathBuf {
        self.top.join("proj/scen")
    }

    /// Writes a scenario file whose one container mounts `source`, and whose image builds from `context`.
    fn write(&self, file: &str, source: &str, context: &str) {
        let text = format!(
            "images:\n  app: {{ build: {{ context: \"{context}\" }} }}\nscenarios:\n  - name: reaches\n    containers:\n      \
             box: {{ image: app, command: [sleep, '9'], volumes: [\"{source}:/mnt\"] }}\n"
        );
        std::fs::write(self.scen().join(file), text).expect("scenario file");
    }

    /// The ways to name `file` on the command line, each with the folder it is run from.
    fn namings(&self, file: &str) -> Vec<(&'static str, PathBuf, String)> {
        vec![
            ("bare", self.scen(), file.to_owned()),
            ("./", self.scen(), format!("./{file}")),
            ("../x/", self.top.join("proj/other"), format!("../scen/{file}")),
            ("absolute", PathBuf::from("/"), self.scen().join(file).display().to_string()),
            ("symlinked folder", self.top.join("proj"), format!("linked-scen/{file}")),
        ]
    }
}

/// Every way to name a scenario file against every way out of its folder, for `check`, `run` and `grade`:
/// each is refused with exit 2 and the reason, and the same file with an honest mount passes `check`.
#[test]
fn no_way_of_naming_a_file_lets_a_path_escape() {
    let world = EscapeWorld::new();
    let outside = world.top.join("outside").display().to_string();
    let mounts = [
        "../../outside",
        "./link-root",
        "./link-etc",
        "./link-out",
        "./via/ssl",
        "./data/up/outside",
        "/etc",
        outside.as_str(),
    ];
    let contexts = ["/etc", "../../outside", "./link-out", "./link-root", "./data/up/outside"];
    let mut cases = Vec::new();
    for (i, source) in mounts.iter().enumerate() {
        let file = format!("mount-{i}.yaml");
        world.write(&file, source, "./data");
        cases.push((file, format!("`{source}` is outside the scenario's folder")));
    }
    for (i, context) in contexts.iter().enumerate() {
        let file = format!("context-{i}.yaml");
        world.write(&file, "./data", context);
        cases.push((file, format!("the build context `{context}` is outside the project")));
    }
    world.write("honest.yaml", "./data", "./data");
    for (file, says) in &cases {
        for (naming, cwd, named) in world.namings(file) {
            for command in ["check", "run"] {
                let out = seatrial_in(&cwd, &[command, &named]);
                let stderr = String::from_utf8_lossy(&out.stderr);
                assert_eq!(out.status.code(), Some(2), "{command} {naming} {file}: {stderr}");
                assert!(stderr.contains(says.as_str()), "{command} {naming} {file} says {says:?}: {stderr}");
            }
        }
    }
    for (naming, cwd, named) in world.namings("honest.yaml") {
        let out = seatrial_in(&cwd, &["check", &named]);
        assert!(out.status.success(), "{naming}: {}", String::from_utf8_lossy(&out.stderr));
    }
}

/// When grading, a bind mount may name the submission's folder, but not a symlink in it that leads out.
#[test]
fn a_submission_cannot_mount_outside_its_folder() {
    let world = EscapeWorld::new();
    let assignment = |source: &str| {
        let text = format!(
            "images:\n  app: {{ build: {{ context: \"${{SUBMISSION}}\" }} }}\nscenarios:\n  - name: reaches\n    \
             containers:\n      box: {{ image: app, command: [sleep, '9'], volumes: [\"{source}:/mnt\"] }}\n"
        );
        std::fs::write(world.scen().join("assignment.yaml"), text).expect("assignment");
    };
    let subs = world.top.join("subs").display().to_string();
    let grade = |naming: &(&str, PathBuf, String)| {
        seatrial_in(&naming.1, &["grade", "--check", &naming.2, &subs, "--out", "/nonexistent/grades"])
    };
    assignment("${SUBMISSION}/data");
    for naming in world.namings("assignment.yaml") {
        let out = grade(&naming);
        assert!(out.status.success(), "{}: {}", naming.0, String::from_utf8_lossy(&out.stderr));
    }
    for source in ["${SUBMISSION}/static", "${SUBMISSION}/../../outside", "./link-etc"] {
        assignment(source);
        for naming in world.namings("assignment.yaml") {
            let out = grade(&naming);
            let stderr = String::from_utf8_lossy(&out.stderr);
            assert_eq!(out.status.code(), Some(2), "{} {source}: {stderr}", naming.0);
            assert!(stderr.contains("is outside the scenario's folder"), "{} {source}: {stderr}", naming.0);
        }
    }
}

/// A copy of the project without `.git` (a tarball, a shallow CI checkout, a published crate) checks clean
/// when run from its top; from elsewhere the refusal says how the project was decided, and `--root` fixes it.
#[test]
fn a_copy_without_git_checks_from_its_top_or_with_root() {
    let dir = tempfile::tempdir().expect("a temporary folder");
    let copy = dir.path().join("copy");
    let status = Command::new("cp")
        .args(["-r", "scenarios", "fixtures"])
        .arg(dir.path())
        .current_dir(workspace())
        .status()
        .expect("cp runs");
    assert!(status.success());
    std::fs::create_dir(&copy).expect("copy folder");
    for folder in ["scenarios", "fixtures"] {
        std::fs::rename(dir.path().join(folder), copy.join(folder)).expect("move");
    }
    let out = seatrial_in(&copy, &["check", "scenarios"]);
    assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
    let elsewhere = seatrial_in(&copy.join("fixtures"), &["check", "../scenarios"]);
    let stderr = String::from_utf8_lossy(&elsewhere.stderr);
    assert_eq!(elsewhere.status.code(), Some(2), "{stderr}");
    assert!(stderr.contains("no `.git` above it") && stderr.contains("--root DIR"), "{stderr}");
    let rooted = seatrial_in(&copy.join("fixtures"), &["check", "../scenarios", "--root", ".."]);
    assert!(rooted.status.success(), "{}", String::from_utf8_lossy(&rooted.stderr));
}

/// `check` reads regular files only, each at most 1 MiB, and walks a folder with a symlink loop once:
/// a FIFO, a device, a huge file or a loop never hangs it or fills its memory.
#[test]
fn check_reads_only_what_it_should() {
    let dir = tempfile::tempdir().expect("a temporary folder");
    let folder = dir.path().join("scenarios");
    std::fs::create_dir(&folder).expect("folder");
    std::fs::write(folder.join("good.yaml"), "scenarios: []\n").expect("file");
    let fifo = folder.join("pipe.yaml");
    assert!(Command::new("mkfifo").arg(&fifo).status().expect("mkfifo").success());
    std::os::unix::fs::symlink("..", folder.join("loop")).expect("symlink");
    std::os::unix::fs::symlink("/", folder.join("to-root")).expect("symlink");
    std::os::unix::fs::symlink("self.yaml", folder.join("self.yaml")).expect("symlink");
    let big = folder.join("big.yaml");
    std::fs::File::create(&big).and_then(|f| f.set_len(5 << 20)).expect("a 5 MiB file");
    let started = std::time::Instant::now();
    let out = seatrial_in(dir.path(), &["check", "scenarios"]);
    let stderr = one_line_per_problem(&String::from_utf8_lossy(&out.stderr));
    assert!(started.elapsed() < std::time::Duration::from_secs(5), "no long walk: {:?}", started.elapsed());
    assert_eq!(out.status.code(), Some(2), "{stderr}");
    for (says, at) in [
        ("error: cannot read the file: it is 5.0 MiB; scenario files are read up to 1 MiB", "big.yaml"),
        ("warning: skipped: it is a FIFO: seatrial reads scenarios only from regular files", "pipe.yaml"),
        ("warning: skipped: the symlink leads to `/`, which holds this folder: a loop", "to-root"),
        ("warning: skipped: the symlink is a loop: following it never ends", "self.yaml"),
    ] {
        let line = format!("{says} --> scenarios/{at}");
        assert_eq!(stderr.lines().filter(|l| *l == line).count(), 1, "{line}:\n{stderr}");
    }
    let loops = stderr.lines().filter(|l| l.ends_with("which holds this folder: a loop --> scenarios/loop")).count();
    assert_eq!(loops, 1, "{stderr}");
    std::fs::remove_file(&big).expect("remove");
    let out = seatrial_in(dir.path(), &["check", "scenarios"]);
    assert!(out.status.success(), "warnings only: {}", String::from_utf8_lossy(&out.stderr));
    for named in [fifo.as_path(), Path::new("/dev/zero")] {
        let out = seatrial_in(dir.path(), &["check", &named.display().to_string()]);
        let stderr = String::from_utf8_lossy(&out.stderr);
        assert_eq!(out.status.code(), Some(2), "{stderr}");
        assert!(stderr.contains("seatrial reads scenarios only from regular files"), "{stderr}");
    }
}

/// Rendered problems without a source line read `title\n  --> path`: joined, one line each.
fn one_line_per_problem(stderr: &str) -> String {
    let mut out = String::new();
    for line in stderr.lines() {
        match line.trim_start().strip_prefix("--> ") {
            Some(path) if out.ends_with('\n') => {
                out.pop();
                out.push_str(&format!(" --> {path}\n"));
            }
            _ => {
                out.push_str(line);
                out.push('\n');
            }
        }
    }
    out
}

/// Files that run but do something the author likely did not mean: a warning each (exit 0), snapshotted.
#[test]
fn every_doubtful_file_gets_a_warning_and_still_checks() {
    let root = workspace().display().to_string();
    insta::with_settings!({ filters => vec![(root.as_str(), "[WORKSPACE]")] }, {
        insta::glob!("warnings/*.yaml", |path| {
            let relative = path.strip_prefix(workspace()).expect("inside the workspace").display().to_string();
            let out = seatrial(&["check", &relative]);
            let stderr = String::from_utf8_lossy(&out.stderr);
            assert_eq!(out.status.code(), Some(0), "{stderr}");
            assert!(stderr.contains("warning: "), "{stderr}");
            insta::assert_snapshot!(stderr);
        });
    });
}

/// No word of the YAML library's reaches a user: every bad and doubtful file, and generated files that
/// break the parser's limits, are told in our words.
#[test]
fn no_message_speaks_the_yaml_librarys_language() {
    const LIBRARY_WORDS: [&str; 12] = [
        "option<",
        "duplicatekeypolicy",
        "from_str",
        "budget",
        "scalar",
        "mapping start",
        "sequence start",
        "deserialize",
        "serde",
        "invalid type",
        "unknown variant",
        "utf-8 sequence",
    ];
    let dir = tempfile::tempdir().expect("a temporary folder");
    let mut big = String::from("scenarios:\n");
    for i in 0..3000 {
        big.push_str(&format!(
            "  - name: s{i}\n    steps: [{{sleep: 1s}}, {{sleep: 1s}}, {{sleep: 1s}}, {{sleep: 1s}}, {{sleep: 1s}}]\n"
        ));
    }
    let deep = format!(
        "scenarios:\n  - name: x\n    steps:\n      - http: {{ port: 80, json: {}{} }}\n",
        "[".repeat(100),
        "]".repeat(100)
    );
    let mut files = Vec::new();
    for (name, text) in [("too-many-values.yaml", big), ("too-deep.yaml", deep)] {
        std::fs::write(dir.path().join(name), text).expect("generated file");
        files.push(dir.path().join(name));
    }
    for folder in ["harness/tests/bad", "harness/tests/warnings"] {
        for entry in std::fs::read_dir(workspace().join(folder)).expect("folder") {
            let path = entry.expect("entry").path();
            if path.extension().is_some_and(|e| e == "yaml") {
                files.push(path);
            }
        }
    }
    for file in files {
        let out = seatrial(&["check", &file.display().to_string()]);
        let stderr = String::from_utf8_lossy(&out.stderr).to_lowercase();
        assert!(!stderr.is_empty(), "{} says something", file.display());
        for word in LIBRARY_WORDS {
            assert!(!stderr.contains(word), "{} speaks the library's `{word}`:\n{stderr}", file.display());
        }
    }
}
