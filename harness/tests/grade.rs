//! `seatrial grade` on the class in fixtures/class: the real binary against the real engine. Every score
//! must equal the teacher's (fixtures/class/expected-grades.csv), the feedback must name the real mistake,
//! and nothing of the run may stay on the engine.

mod support;

use std::path::{Path, PathBuf};
use std::process::Command;

fn workspace() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).parent().expect("the crate sits in the workspace").to_path_buf()
}

fn require_engine() {
    let info = Command::new("docker").args(["image", "inspect", "python:3.11-slim"]).output();
    match info {
        Ok(out) if out.status.success() => {}
        Ok(out) => panic!(
            "no engine, or the stand-in python:3.11-slim is missing (fixtures/base-images/make-base-images.sh): {}",
            String::from_utf8_lossy(&out.stderr)
        ),
        Err(e) => panic!("cannot run the docker CLI to reach the engine: {e}"),
    }
}

#[test]
fn grades_the_class_as_the_teacher_does() {
    require_engine();
    let out_dir = tempfile::tempdir().expect("tempdir");
    let child = Command::new(env!("CARGO_BIN_EXE_seatrial"))
        .args(["grade", "fixtures/class/assignment.yaml", "fixtures/class/submissions", "--out"])
        .arg(out_dir.path())
        .current_dir(workspace())
        .env("NO_COLOR", "1")
        .output()
        .expect("seatrial grade runs");
    let stderr = String::from_utf8_lossy(&child.stderr);
    assert!(child.status.success(), "{stderr}");

    let expected = std::fs::read_to_string(workspace().join("fixtures/class/expected-grades.csv")).expect("expected");
    let got = std::fs::read_to_string(out_dir.path().join("grades.csv")).expect("grades.csv");
    assert_eq!(got.trim(), expected.trim(), "{stderr}");

    let feedback = |id: &str| {
        std::fs::read_to_string(out_dir.path().join(id).join("feedback.md")).expect("feedback.md of every submission")
    };
    // Each mistake named from what the container really did.
    for (id, says) in [
        ("02-bob", "listens on 127.0.0.1:8000"),
        ("04-dave", "something listens on 5000"),
        ("05-erin", "ValueError"),
        ("06-frank", "SIGTERM"),
        ("07-grace", "/app/notes.db"),
        ("08-heidi", "COPY app.py"),
        ("09-ivan", "the server in `web` raised `sqlite3.OperationalError: unable to open database file`"),
        ("09-ivan", "`web` runs as user `app` (uid 999), but the volume's folder `/data` belongs to uid 0 (mode 755)"),
        ("10-judy", "SIGTERM"),
    ] {
        let text = feedback(id);
        assert!(text.contains(says), "{id}'s feedback names the mistake ({says}):\n{text}");
    }
    let alice = feedback("01-alice");
    assert!(alice.contains("**Score: 10 / 10**"), "{alice}");
    // Hidden checks count but do not tell.
    // Not even through the log tail (the servers log each request's path).
    for id in ["01-alice", "02-bob", "03-carol", "04-dave", "05-erin", "06-frank", "07-grace", "09-ivan", "10-judy"] {
        assert!(!feedback(id).contains("no-such-page"), "{id}: a hidden check's details stay hidden");
    }

    let html = std::fs::read_to_string(out_dir.path().join("grades.html")).expect("grades.html");
    assert!(html.contains("pass rate") && html.contains("02-bob"), "{html}");
    let json: serde_json::Value =
        serde_json::from_str(&std::fs::read_to_string(out_dir.path().join("grades.json")).expect("grades.json"))
            .expect("grades.json is JSON");
    assert_eq!(json["submissions"].as_array().map(Vec::len), Some(10));
    // Each submission's JUnit file lists the rubric: one test case per check, hidden ones unnamed.
    for (id, failures) in [("01-alice", 0), ("08-heidi", 7)] {
        let junit = out_dir.path().join(id).join("junit.xml");
        support::validate_junit(&junit);
        let xml = std::fs::read_to_string(&junit).expect("junit.xml");
        assert!(xml.contains(&format!("<testcase name=\"answers on port 8000\" classname=\"{id}\"")), "{xml}");
        assert!(xml.contains("<testcase name=\"hidden check 1\"") && !xml.contains("no-such-page"), "{xml}");
        assert!(xml.contains(&format!("tests=\"7\" failures=\"{failures}\"")), "{xml}");
    }

    // Nothing of the grading run is left: containers, volumes, networks, built images.
    for args in [
        vec!["ps", "-aq", "--filter", "label=org.seatrial.run"],
        vec!["volume", "ls", "-q", "--filter", "label=org.seatrial.run"],
        vec!["network", "ls", "-q", "--filter", "label=org.seatrial.run"],
        vec!["images", "-q", "--filter", "label=org.seatrial.run"],
    ] {
        let out = Command::new("docker").args(&args).output().expect("docker runs");
        assert_eq!(String::from_utf8_lossy(&out.stdout).trim(), "", "left on the engine: docker {args:?}");
    }
}

/// Teachers' mistakes on the command line and in the assignment stop `grade` before anything runs.
#[test]
fn an_assignment_that_never_reads_the_submission_and_zero_jobs_are_refused() {
    let dir = tempfile::tempdir().expect("tempdir");
    support::write_context(dir.path(), "class/alice", "FROM seatrial/busybox\n");
    std::fs::write(
        dir.path().join("fixed.yaml"),
        "# graded per ${SUBMISSION}, says the comment, but the build does not\nimages:\n  app:\n    build: { context: class/alice }\n    points: 1\nscenarios:\n  - name: runs\n    containers:\n      app: { image: app }\n",
    )
    .expect("assignment");
    let grade = |extra: &[&str]| {
        Command::new(env!("CARGO_BIN_EXE_seatrial"))
            .current_dir(dir.path())
            .args(["grade", "fixed.yaml", "class", "--out", "out"])
            .args(extra)
            .output()
            .expect("seatrial runs")
    };
    let out = grade(&[]);
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(2), "{stderr}");
    assert!(stderr.contains("fixed.yaml: the assignment never uses ${SUBMISSION}"), "{stderr}");
    let out = grade(&["--jobs", "0"]);
    assert_eq!(out.status.code(), Some(2));
    assert!(String::from_utf8_lossy(&out.stderr).contains("invalid value '0' for '--jobs"));
    assert!(!dir.path().join("out").exists(), "nothing is written");
}
