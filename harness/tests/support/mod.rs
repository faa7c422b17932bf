//! What the integration tests share: the real binary, the docker CLI to look at the engine, and the
//! checks every test ends with (nothing left behind, a report that validates).
#![allow(dead_code)] // each test binary uses its own part of it

use std::path::{Path, PathBuf};
use std::process::{Command, Output, Stdio};
use std::time::{Duration, Instant};

pub fn workspace() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).parent().expect("the crate sits in the workspace").to_path_buf()
}

pub fn seatrial() -> Command {
    let mut command = Command::new(env!("CARGO_BIN_EXE_seatrial"));
    command.current_dir(workspace()).env("NO_COLOR", "1");
    command
}

pub fn docker(args: &[&str]) -> Output {
    Command::new("docker").args(args).output().expect("the docker CLI runs")
}

/// Panics with a clear message when no engine answers: these tests never pass without one.
pub fn require_engine() {
    let info = Command::new("docker").args(["info", "--format", "{{.ServerVersion}}"]).output();
    match info {
        Ok(out) if out.status.success() => {}
        Ok(out) => panic!("no container engine answers: {}", String::from_utf8_lossy(&out.stderr)),
        Err(e) => panic!("cannot run the docker CLI to reach the engine: {e}"),
    }
    let image = docker(&["image", "inspect", "seatrial/busybox"]);
    assert!(
        image.status.success(),
        "the stand-in image seatrial/busybox is missing: run fixtures/base-images/make-base-images.sh"
    );
}

/// Everything on the engine that carries `label` (`key=value`).
pub fn labelled(label: &str) -> Vec<String> {
    let filter = format!("label={label}");
    let mut found = Vec::new();
    for (kind, args) in [
        ("container", vec!["ps", "-aq", "--filter", &filter]),
        ("volume", vec!["volume", "ls", "-q", "--filter", &filter]),
        ("network", vec!["network", "ls", "-q", "--filter", &filter]),
        ("image", vec!["images", "-q", "--filter", &filter]),
    ] {
        let out = docker(&args);
        for line in String::from_utf8_lossy(&out.stdout).lines().filter(|l| !l.trim().is_empty()) {
            found.push(format!("{kind} {line}"));
        }
    }
    found
}

/// Everything on the engine that a seatrial process with this pid made.
pub fn leftovers(pid: u32) -> Vec<String> {
    labelled(&format!("org.seatrial.pid={pid}"))
}

pub fn validate_junit(path: &Path) {
    let schema = workspace().join("../shared/junit/jenkins-xunit-junit-10.xsd");
    let schema =
        if schema.exists() { schema } else { workspace().join("harness/tests/junit/jenkins-xunit-junit-10.xsd") };
    let out = Command::new("xmllint")
        .arg("--noout")
        .arg("--schema")
        .arg(&schema)
        .arg(path)
        .output()
        .expect("xmllint (Debian's libxml2-utils) is needed to validate JUnit reports");
    assert!(out.status.success(), "JUnit report does not validate:\n{}", String::from_utf8_lossy(&out.stderr));
}

/// Starts `seatrial run PATH --junit JUNIT EXTRA...` with stdout piped and stderr dropped.
pub fn spawn_run(path: &Path, junit: &Path, extra: &[&str]) -> std::process::Child {
    seatrial()
        .arg("run")
        .arg(path)
        .arg("--junit")
        .arg(junit)
        .args(extra)
        .stdout(Stdio::piped())
        .stderr(Stdio::null())
        .spawn()
        .expect("seatrial starts")
}

/// Waits until the seatrial process `pid` has `count` running containers on the engine.
pub fn wait_for_containers(pid: u32, count: usize) {
    let deadline = Instant::now() + Duration::from_secs(120);
    let filter = format!("label=org.seatrial.pid={pid}");
    while Instant::now() < deadline {
        let out = docker(&["ps", "-q", "--filter", &filter]);
        if String::from_utf8_lossy(&out.stdout).lines().filter(|l| !l.trim().is_empty()).count() >= count {
            return;
        }
        std::thread::sleep(Duration::from_millis(100));
    }
    panic!("seatrial (pid {pid}) did not have {count} running container(s) within 120s");
}

/// A build context `dir/folder` (parents made as needed) holding `dockerfile` as its Dockerfile.
pub fn write_context(dir: &Path, folder: &str, dockerfile: &str) -> PathBuf {
    let context = dir.join(folder);
    std::fs::create_dir_all(&context).expect("context folder");
    std::fs::write(context.join("Dockerfile"), dockerfile).expect("Dockerfile");
    context
}

pub fn write_scenario(dir: &Path, name: &str, text: &str) -> PathBuf {
    let path = dir.join(name);
    std::fs::write(&path, text).expect("write scenario");
    path
}

/// Waits for `child` at most `limit`; kills it and panics when it is still running then.
pub fn wait_at_most(child: &mut std::process::Child, limit: Duration) -> std::process::ExitStatus {
    let deadline = Instant::now() + limit;
    loop {
        if let Some(status) = child.try_wait().expect("wait on seatrial") {
            return status;
        }
        if Instant::now() >= deadline {
            let _ = child.kill();
            panic!("seatrial did not end within {limit:?}");
        }
        std::thread::sleep(Duration::from_millis(50));
    }
}

/// libtest prints each failure as `---- name ----` followed by its message.
pub fn failure_sections(stdout: &str) -> Vec<(String, String)> {
    let mut sections = Vec::new();
    let mut lines = stdout.lines().peekable();
    while let Some(line) = lines.next() {
        let Some(name) = line.strip_prefix("---- ").and_then(|l| l.strip_suffix(" ----")) else { continue };
        let mut body = String::new();
        while let Some(next) = lines.peek() {
            if next.starts_with("---- ") || next.starts_with("failures:") {
                break;
            }
            body.push_str(next);
            body.push('\n');
            lines.next();
        }
        sections.push((name.to_owned(), body.trim_end().to_owned() + "\n"));
    }
    sections
}

pub fn redactions() -> Vec<(String, &'static str)> {
    vec![
        (regex_escape(&workspace().display().to_string()), "[ROOT]"),
        (r"http://127\.0\.0\.1:\d+".into(), "http://127.0.0.1:[PORT]"),
        (r"took \d+\.\ds".into(), "took [TIME]"),
        (r"\b[0-9a-f]{12}\b".into(), "[ID]"),
        (r"\w+ \d{1,2}, \d{4} - \d\d:\d\d:\d\d".into(), "[DATE]"),
        (r"Django version [0-9.]+".into(), "Django version [VERSION]"),
        // Django's own error pages differ from version to version; what seatrial says of them does not.
        (r"body `\\n<!DOCTYPE html>.*?` ?\.\.\. \(\d+ bytes\)".into(), "body [DJANGO ERROR PAGE]"),
        // The frames of a traceback inside an installed library (Django's, for one) change with its version
        // and where the image installs it; the program's own frames and the exception stay.
        (
            r#"(?m)(^    \| +File "[^"\n]*-packages/[^\n]*\n(^    \|     [^\n]*\n)*)+"#.into(),
            "    | [LIBRARY FRAMES]\n",
        ),
    ]
}

pub fn regex_escape(text: &str) -> String {
    text.chars().map(|c| if c.is_ascii_alphanumeric() || c == '/' { c.to_string() } else { format!("\\{c}") }).collect()
}

/// Sweeps everything of a run id when dropped: a test that drives the engine through the library removes
/// what it made whatever happens (a failed assertion included).
pub struct SweepOnDrop<'a>(pub &'a tokio::runtime::Runtime, pub seatrial::engine::Engine, pub String);

impl Drop for SweepOnDrop<'_> {
    fn drop(&mut self) {
        let scope = seatrial::engine::sweep::SweepScope::Run(self.2.clone());
        let _ = self.0.block_on(self.1.sweep(&scope, seatrial::engine::sweep::SweepMode::Remove));
    }
}
