//! The real binary against the real engine: failing scenarios fail at the right step with the right
//! message, Ctrl-C and SIGKILL leave nothing behind, `--keep` keeps, and reports stay valid.
//! These tests need a container engine and fail loudly when none answers.

mod support;

use std::path::Path;
use std::process::Command;

use support::{
    failure_sections, leftovers, redactions, regex_escape, require_engine, seatrial, spawn_run, validate_junit,
    wait_for_containers, workspace,
};

/// Held (shared) by every test that starts a seatrial run, and alone by the one that leaves a killed run
/// for `clean` to find.
static RUNS: std::sync::RwLock<()> = std::sync::RwLock::new(());

/// Failing scenarios whose message on Podman is Podman's own (see the test).
const PODMAN_OWN_MESSAGES: [&str; 1] = ["upgrade::an upgrade whose new image cannot write the old data"];

fn engine_is_podman() -> bool {
    let version = support::docker(&["version", "--format", "{{range .Server.Components}}{{.Name}},{{end}}"]);
    String::from_utf8_lossy(&version.stdout).contains("Podman")
}

#[test]
fn failing_scenarios_fail_at_the_right_step_with_the_right_message() {
    require_engine();
    let _run = RUNS.read().unwrap_or_else(std::sync::PoisonError::into_inner);
    let report = tempfile::tempdir().expect("a temporary folder");
    let junit = report.path().join("junit.xml");
    let json = report.path().join("run.json");
    let step_summary = report.path().join("summary.md");
    // As under GitHub Actions, with every report asked for: they all tell the same run.
    let child = support::seatrial()
        .arg("run")
        .arg("harness/tests/failing")
        .arg("--junit")
        .arg(&junit)
        .arg("--report")
        .arg("json")
        .arg(&json)
        .env("GITHUB_ACTIONS", "true")
        .env("GITHUB_WORKSPACE", workspace())
        .env("GITHUB_STEP_SUMMARY", &step_summary)
        .stdout(std::process::Stdio::piped())
        .stderr(std::process::Stdio::null())
        .spawn()
        .expect("seatrial starts");
    let pid = child.id();
    let out = child.wait_with_output().expect("seatrial ends");
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert_eq!(out.status.code(), Some(1), "some scenarios fail, so exit 1:\n{stdout}");
    check_github_and_json_reports(&stdout, &step_summary, &json);
    assert!(stdout.contains("0 passed; 20 failed"), "every scenario in failing/ fails:\n{stdout}");
    let sections = failure_sections(&stdout);
    assert_eq!(sections.len(), 20, "{stdout}");
    let settings = {
        let mut s = insta::Settings::clone_current();
        for (pattern, replacement) in redactions() {
            s.add_filter(&pattern, replacement);
        }
        s.set_prepend_module_to_snapshot(false);
        s
    };
    // Where an engine itself behaves otherwise, the message is that engine's, kept in a snapshot of its own
    // (README's compatibility matrix says why): Podman 4.3 gives a new named volume to the container's
    // user, so release 2 can write release 1's data and fails elsewhere.
    let podman = engine_is_podman();
    for (name, message) in &sections {
        let mut snapshot = format!("failing__{}", name.replace("::", "__").replace(' ', "_"));
        if podman && PODMAN_OWN_MESSAGES.contains(&name.as_str()) {
            snapshot.push_str("@podman");
        }
        settings.bind(|| insta::assert_snapshot!(snapshot, message));
    }
    // The classic: the database outside the volume fails at the step after `recreate`, and says why.
    let (_, classic) = sections.iter().find(|(n, _)| n == "recreate::notes are lost on re-creation").expect("ran");
    assert!(classic.contains("step 3 of 3") && classic.contains("recreate.yaml:19:9"), "{classic}");
    assert!(classic.contains("/app/db.sqlite3"), "{classic}");
    validate_junit(&junit);
    assert_eq!(leftovers(pid), Vec::<String>::new(), "the run must remove everything it made");
}

/// One `::error` annotation per failed scenario (testing stops at the first failure), at the failing
/// step's line and column; the step summary; and a JSON report that its committed schema accepts.
fn check_github_and_json_reports(stdout: &str, step_summary: &Path, json: &Path) {
    let annotations: Vec<&str> = stdout.lines().filter(|l| l.starts_with("::error ")).collect();
    assert_eq!(annotations.len(), 20, "{stdout}");
    assert!(
        annotations.iter().any(|a| a.starts_with(
            "::error file=harness/tests/failing/recreate.yaml,line=19,col=9,title=recreate%3A%3Anotes are lost on \
             re-creation%3A step 3 of 3"
        )),
        "{annotations:#?}"
    );
    let summary = std::fs::read_to_string(step_summary).expect("the step summary was written");
    assert!(summary.starts_with("### seatrial: 0 passed, 20 failed"), "{summary}");
    let report: serde_json::Value =
        serde_json::from_str(&std::fs::read_to_string(json).expect("the JSON report")).expect("JSON");
    assert_eq!(
        report["summary"]["failed"].as_u64().unwrap_or(0) + report["summary"]["errors"].as_u64().unwrap_or(0),
        20
    );
    let recreate = report["scenarios"]
        .as_array()
        .and_then(|all| all.iter().find(|s| s["test_name"] == "recreate::notes are lost on re-creation"))
        .expect("the recreate scenario is in the report");
    assert_eq!(recreate["failure"]["at"]["line"], 19, "{recreate:#}");
    assert!(recreate["logs"].as_array().is_some_and(|logs| !logs.is_empty()), "{recreate:#}");
    let validated = std::process::Command::new("check-jsonschema")
        .arg("--schemafile")
        .arg(workspace().join("seatrial-report.schema.json"))
        .arg(json)
        .output()
        .expect("check-jsonschema must be installed: `pip install check-jsonschema` (.ci/run does it)");
    assert!(validated.status.success(), "{}", String::from_utf8_lossy(&validated.stdout));
}

fn write_scenario(dir: &Path, text: &str) -> std::path::PathBuf {
    support::write_scenario(dir, "interrupt.yaml", text)
}

const LONG_SCENARIO: &str = r#"
scenarios:
  - name: waits a long time
    containers:
      box:
        image: seatrial/busybox
        command: [sh, -c, "trap 'exit 0' TERM; echo up; sleep 3600 & wait"]
        volumes: ["state:/state"]
        ready: { log: up }
    steps:
      - sleep: 120s
"#;

#[test]
fn ctrl_c_removes_everything_and_reports_the_scenario_as_interrupted() {
    require_engine();
    let _run = RUNS.read().unwrap_or_else(std::sync::PoisonError::into_inner);
    let dir = tempfile::tempdir().expect("a temporary folder");
    let scenario = write_scenario(dir.path(), LONG_SCENARIO);
    let junit = dir.path().join("junit.xml");
    let mut child = spawn_run(&scenario, &junit, &[]);
    let pid = child.id();
    wait_for_containers(pid, 1);
    assert!(Command::new("kill").args(["-INT", &pid.to_string()]).status().expect("kill runs").success());
    let status = child.wait().expect("seatrial ends");
    assert_eq!(status.code(), Some(130));
    assert_eq!(leftovers(pid), Vec::<String>::new(), "Ctrl-C must remove everything the run made");
    let xml = std::fs::read_to_string(&junit).expect("the report is written on Ctrl-C");
    assert!(xml.contains("interrupted by SIGINT"), "{xml}");
    validate_junit(&junit);
}

#[test]
fn a_killed_run_is_swept_by_clean() {
    require_engine();
    // Alone: every run starts by sweeping dead runs, and would sweep this one before `clean` does.
    let _alone = RUNS.write().unwrap_or_else(std::sync::PoisonError::into_inner);
    let dir = tempfile::tempdir().expect("a temporary folder");
    let scenario = write_scenario(dir.path(), LONG_SCENARIO);
    let mut child = spawn_run(&scenario, &dir.path().join("junit.xml"), &[]);
    let pid = child.id();
    wait_for_containers(pid, 1);
    child.kill().expect("SIGKILL");
    child.wait().expect("reaped");
    assert!(!leftovers(pid).is_empty(), "SIGKILL leaves the run's resources behind");
    let listed = seatrial().args(["clean", "--dry-run"]).output().expect("clean runs");
    assert!(String::from_utf8_lossy(&listed.stdout).contains("would remove container"), "{listed:?}");
    assert!(!leftovers(pid).is_empty(), "--dry-run removes nothing");
    let cleaned = seatrial().arg("clean").output().expect("clean runs");
    assert!(cleaned.status.success(), "{cleaned:?}");
    assert_eq!(leftovers(pid), Vec::<String>::new(), "clean removes what the killed run left");
}

#[test]
fn keep_leaves_a_failed_scenario_and_says_how_to_reach_it() {
    require_engine();
    let _run = RUNS.read().unwrap_or_else(std::sync::PoisonError::into_inner);
    let dir = tempfile::tempdir().expect("a temporary folder");
    let scenario = write_scenario(
        dir.path(),
        r#"
scenarios:
  - name: fails and is kept
    containers:
      box:
        image: seatrial/busybox
        command: [sh, -c, "trap 'exit 0' TERM; sleep 3600 & wait"]
    steps:
      - exec: { container: box, cmd: ["false"] }
"#,
    );
    let child = spawn_run(&scenario, &dir.path().join("junit.xml"), &["--keep"]);
    let pid = child.id();
    let out = child.wait_with_output().expect("seatrial ends");
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert_eq!(out.status.code(), Some(1));
    assert!(stdout.contains("kept for debugging") && stdout.contains("docker exec -it seatrial-"), "{stdout}");
    let kept = leftovers(pid);
    assert!(kept.iter().any(|k| k.starts_with("container")), "{kept:?}");
    let run_id = stdout
        .lines()
        .find_map(|l| l.trim().strip_prefix("remove with: seatrial clean --run "))
        .expect("the message says how to remove what was kept")
        .to_owned();
    let cleaned = seatrial().args(["clean", "--run", &run_id]).output().expect("clean runs");
    assert!(cleaned.status.success(), "{cleaned:?}");
    assert_eq!(leftovers(pid), Vec::<String>::new());
}

/// Readiness gives up early only on a server that will never answer. A slow starter on a scenario's own
/// network (where the engine's DNS server listens inside the container on 127.0.0.11), a server
/// that opens another port seconds before its own, and one that listens 26 s before it accepts (the
/// probes' connections wait in its accept queue, unanswered, as gunicorn's do while its workers
/// import the app) are all waited for.
#[test]
fn readiness_waits_for_slow_starters_and_gives_up_on_hopeless_servers() {
    require_engine();
    let _run = RUNS.read().unwrap_or_else(std::sync::PoisonError::into_inner);
    let dir = tempfile::tempdir().expect("a temporary folder");
    let scenario = support::write_scenario(
        dir.path(),
        "slow.yaml",
        r#"
scenarios:
  - name: slow start on its own network
    containers:
      web:
        image: seatrial/busybox
        ports: [8080]
        command: [sh, -c, "echo waiting; sleep 8; exec httpd -f -p 8080 -h /etc"]
        ready: { http: { port: 8080, path: /passwd }, timeout: 30s }
      side:
        image: seatrial/busybox
        command: [sh, -c, "trap 'exit 0' TERM; sleep 3600 & wait"]
    steps:
      - http: { port: 8080, path: /passwd, expect: { body_contains: "root:" } }

  - name: another port first
    containers:
      web:
        image: seatrial/busybox
        ports: [8080]
        command: [sh, -c, "httpd -p 9000 -h /etc; sleep 4; exec httpd -f -p 8080 -h /etc"]
        ready: { http: { port: 8080, path: /passwd }, timeout: 30s }

  - name: listens long before it accepts
    containers:
      web:
        image: python:3.11-slim
        ports: [8080]
        command:
          - python
          - -c
          - |
            import socket, time
            listener = socket.create_server(("0.0.0.0", 8080), backlog=64)
            time.sleep(26)
            while True:
                connection, _ = listener.accept()
                connection.recv(65536)
                connection.sendall(b"HTTP/1.1 200 OK\r\nContent-Length: 2\r\nConnection: close\r\n\r\nok")
                connection.close()
        ready: { http: { port: 8080, path: / }, timeout: 60s }

  - name: only a wrong port
    containers:
      web:
        image: seatrial/busybox
        ports: [8080]
        command: [httpd, -f, -p, "5000", -h, /etc]
        ready: { http: { port: 8080, path: /passwd }, timeout: 60s }

  - name: refuses every probe
    containers:
      web:
        image: seatrial/busybox
        ports: [8080]
        command: [sh, -c, "echo serving /etc, not /www >&2; exec httpd -f -p 8080 -h /etc"]
        ready: { http: { port: 8080, path: /www/index.html }, timeout: 60s }
"#,
    );
    let junit = dir.path().join("junit.xml");
    let child = spawn_run(&scenario, &junit, &["--test-threads", "5"]);
    let pid = child.id();
    let out = child.wait_with_output().expect("seatrial ends");
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert_eq!(out.status.code(), Some(1), "{stdout}");
    for passes in ["slow start on its own network", "another port first", "listens long before it accepts"] {
        let line = stdout.lines().find(|l| l.starts_with(&format!("test slow::{passes} "))).unwrap_or_default();
        assert!(line.ends_with("... ok"), "{passes} must pass:\n{stdout}");
    }
    assert!(stdout.contains("nothing listens on 8080 inside `web`; something listens on 5000\n"), "{stdout}");
    assert!(
        stdout.contains("it answers, but refuses: GET /www/index.html answered 404 to every probe for 6s"),
        "{stdout}"
    );
    assert!(stdout.contains("the server in `web` logged: `serving /etc, not /www`"), "{stdout}");
    let xml = std::fs::read_to_string(&junit).expect("report");
    for case in ["only a wrong port", "refuses every probe"] {
        let found = xml.split(&format!("<testcase name=\"{case}\"")).nth(1).expect("the test case");
        let seconds: f64 =
            found.split("time=\"").nth(1).and_then(|t| t.split('"').next()).expect("time").parse().expect("secs");
        assert!(seconds < 30.0, "{case}: fails long before its 60 s ready time: {seconds} s");
    }
    assert_eq!(leftovers(pid), Vec::<String>::new());
}

/// A program the runtime cannot run is explained from the file in the container: not executable,
/// Windows line endings, no `#!` line.
#[test]
fn a_program_that_cannot_run_is_explained_from_the_file() {
    require_engine();
    let _run = RUNS.read().unwrap_or_else(std::sync::PoisonError::into_inner);
    let dir = tempfile::tempdir().expect("a temporary folder");
    for (name, script, chmod) in [
        ("crlf", "#!/bin/sh\r\necho started\r\n", "RUN chmod +x /start.sh\n"),
        ("noexec", "#!/bin/sh\necho started\n", ""),
        ("nobang", "echo started\n", "RUN chmod +x /start.sh\n"),
    ] {
        let dockerfile = format!("FROM seatrial/busybox\nCOPY start.sh /start.sh\n{chmod}ENTRYPOINT [\"/start.sh\"]\n");
        let context = support::write_context(dir.path(), name, &dockerfile);
        std::fs::write(context.join("start.sh"), script).expect("script");
    }
    let scenario = support::write_scenario(
        dir.path(),
        "programs.yaml",
        "images:\n  crlf: { build: { context: crlf } }\n  noexec: { build: { context: noexec } }\n  nobang: { build: { context: nobang } }\nscenarios:\n  - name: crlf\n    containers: { app: { image: crlf, ready: { log: started } } }\n  - name: noexec\n    containers: { app: { image: noexec, ready: { log: started } } }\n  - name: nobang\n    containers: { app: { image: nobang, ready: { log: started } } }\n",
    );
    let child = spawn_run(&scenario, &dir.path().join("junit.xml"), &[]);
    let pid = child.id();
    let out = child.wait_with_output().expect("seatrial ends");
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert_eq!(out.status.code(), Some(1), "{stdout}");
    for says in [
        "`/start.sh` has Windows line endings (CRLF)",
        "`/start.sh` is not executable: `RUN chmod +x /start.sh`",
        "`/start.sh` is a script with no `#!` first line",
    ] {
        assert!(stdout.contains(says), "{says}:\n{stdout}");
    }
    assert!(!stdout.contains("the engine to carry out the request"), "not an engine failure:\n{stdout}");
    assert_eq!(leftovers(pid), Vec::<String>::new());
}

/// `file` reads a bounded part of a file, whatever its size: a 2 GiB file (sparse on disk, streamed in
/// full by the engine's archive API) is cut after 4 MiB, the stream dropped, the check's failure says
/// so, and seatrial's memory stays small. The same file from the image itself goes through a container
/// created and never started, which the scenario removes.
#[test]
fn a_huge_file_is_read_in_part_and_the_failure_says_so() {
    require_engine();
    let dir = tempfile::tempdir().expect("a temporary folder");
    support::write_context(dir.path(), "huge", "FROM seatrial/busybox\nRUN truncate -s 2G /huge\n");
    let scenario = support::write_scenario(
        dir.path(),
        "huge.yaml",
        r#"
images:
  huge: { build: { context: huge } }
scenarios:
  - name: a needle in a huge file
    containers:
      box:
        image: huge
        command: [sh, -c, "trap 'exit 0' TERM; sleep 3600 & wait"]
    steps:
      - file: { container: box, path: /huge, expect: { type: file, not_contains: needle } }
  - name: the same file in the image
    steps:
      - file: { image: huge, path: /huge, expect: { contains: needle } }
"#,
    );
    let started = std::time::Instant::now();
    let child = spawn_run(&scenario, &dir.path().join("junit.xml"), &[]);
    let pid = child.id();
    let mut peak_kib = 0;
    let out = {
        let mut child = child;
        loop {
            if let Ok(status) = std::fs::read_to_string(format!("/proc/{pid}/status"))
                && let Some(kib) = status
                    .lines()
                    .find_map(|l| l.strip_prefix("VmHWM:"))
                    .and_then(|v| v.trim().trim_end_matches(" kB").trim().parse::<u64>().ok())
            {
                peak_kib = peak_kib.max(kib);
            }
            if child.try_wait().expect("wait on seatrial").is_some() {
                break child.wait_with_output().expect("seatrial ends");
            }
            std::thread::sleep(std::time::Duration::from_millis(50));
        }
    };
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert_eq!(out.status.code(), Some(1), "{stdout}");
    assert_eq!(stdout.matches("(the file is 2 GiB; seatrial read its first 4 MiB)").count(), 2, "{stdout}");
    assert!(stdout.contains("not in the part read, but the rest was not read"), "{stdout}");
    eprintln!("2 GiB file: {:?} for the run, seatrial's peak memory {peak_kib} KiB", started.elapsed());
    assert!(started.elapsed().as_secs() < 60, "2 GiB are not read: {:?}", started.elapsed());
    assert!(peak_kib < 100 * 1024, "seatrial's peak memory {peak_kib} KiB");
    assert_eq!(leftovers(pid), Vec::<String>::new());
}

/// `seatrial doctor` names the engine the docker CLI reaches (DOCKER_HOST honoured), the builder that
/// engine offers, what it stores and where, proves the limits on a real container, and finds compose as
/// the CLI does; one screen, the same shape on every engine (values redacted), exit 0.
#[test]
fn doctor_describes_the_engine_that_answers() {
    require_engine();
    let out = seatrial().arg("doctor").output().expect("seatrial doctor runs");
    let stdout = String::from_utf8_lossy(&out.stdout).into_owned();
    assert_eq!(out.status.code(), Some(0), "{stdout}\n{}", String::from_utf8_lossy(&out.stderr));
    let line =
        |topic: &str| stdout.lines().find_map(|l| l.strip_prefix(topic)).map(str::trim).unwrap_or_default().to_owned();
    // What the docker CLI says of the same engine.
    let version =
        support::docker(&["version", "--format", "{{.Server.Version}}|{{range .Server.Components}}{{.Name}},{{end}}"]);
    let version = String::from_utf8_lossy(&version.stdout).trim().to_owned();
    let (server, components) = version.split_once('|').expect("version|components");
    let podman = components.contains("Podman");
    let product = if podman { "Podman" } else { "Docker" };
    let host = std::env::var("DOCKER_HOST").ok().filter(|h| !h.is_empty());
    let engine = line("engine");
    assert!(engine.starts_with(&format!("{product} {server} on ")), "{engine}");
    match &host {
        Some(host) => assert!(engine.ends_with(&format!("on {host} (from DOCKER_HOST)")), "{engine}"),
        None => assert!(engine.ends_with("(from Docker's default socket)"), "{engine}"),
    }
    let builder = line("builder");
    assert!(builder.starts_with(if podman { "the legacy builder: Podman" } else { "BuildKit through" }), "{builder}");
    let driver = support::docker(&["info", "--format", "{{.Driver}}"]);
    assert!(line("storage").starts_with(String::from_utf8_lossy(&driver.stdout).trim()), "{stdout}");
    let compose = line("compose");
    for (found, args) in [("`docker compose`", &["compose", "version", "--short"][..]), ("`docker-compose`", &[])] {
        let answered = match args {
            [] => {
                Command::new("docker-compose").args(["version", "--short"]).output().is_ok_and(|o| o.status.success())
            }
            args => support::docker(args).status.success(),
        };
        assert_eq!(compose.contains(found), answered, "{found}: {compose}");
    }
    let settings = {
        let mut s = insta::Settings::clone_current();
        for (pattern, replacement) in [
            (r"(?m)^(engine +)(Docker|Podman) \S+ on \S+ \(from [^)]+\)$", "$1[ENGINE] on [HOST] (from [SOURCE])"),
            (
                r"(?m)^(api +)\d+\.\d+ negotiated \(the engine speaks up to \d+\.\d+",
                "$1[API] negotiated (the engine speaks up to [API]",
            ),
            (r"(?m)^(builder +)(BuildKit through the Engine API|the legacy builder): .*$", "$1[BUILDER]: [WHY]"),
            (r"(?m)^(storage +)\S+, images in \S+: \d+\.\d GiB free$", "$1[DRIVER], images in [DIR]: [FREE] free"),
            (r"(?m)^(compose +).*$", "$1[COMPOSE]"),
            // Disk space is the machine's, not seatrial's.
            (r"\nwarning: only \d+\.\d GiB free for images in \S+\n  fix: .*\n", ""),
        ] {
            s.add_filter(pattern, replacement);
        }
        s.set_prepend_module_to_snapshot(false);
        s
    };
    settings.bind(|| insta::assert_snapshot!("doctor__engine_answers", stdout));
    assert_eq!(support::labelled("org.seatrial.scenario=doctor"), Vec::<String>::new(), "the probe is removed");
}

/// With no engine at DOCKER_HOST, the doctor says where it looked and how to start one, and exits 3.
#[test]
fn doctor_without_an_engine_says_how_to_start_one() {
    let dir = tempfile::tempdir().expect("a temporary folder");
    let socket = dir.path().join("no-engine.sock");
    let out = seatrial()
        .arg("doctor")
        .env("DOCKER_HOST", format!("unix://{}", socket.display()))
        .output()
        .expect("seatrial doctor runs");
    let stdout = String::from_utf8_lossy(&out.stdout).into_owned();
    assert_eq!(out.status.code(), Some(3), "{stdout}");
    let settings = {
        let mut s = insta::Settings::clone_current();
        s.add_filter(&regex_escape(&socket.display().to_string()), "[SOCKET]");
        s.add_filter(r"(?m)^(engine +none answered at unix://\[SOCKET\] \(DOCKER_HOST\)): .*$", "$1: [WHY]");
        s.add_filter(r"(?m)^(compose +).*$", "$1[COMPOSE]");
        s.set_prepend_module_to_snapshot(false);
        s
    };
    settings.bind(|| insta::assert_snapshot!("doctor__no_engine", stdout));
}

/// A container's changes read from its layer on this host (the fast way, where the engine is local)
/// are the engine's own `docker diff`: added and changed files and folders, a deleted file marking its
/// folder changed, a volume's files absent.
#[test]
fn a_containers_changes_read_from_its_layer_are_the_engines() {
    use seatrial::engine::Engine;
    use seatrial::engine::changes::ChangesFrom;
    use seatrial::engine::container::{ContainerConfig, DEFAULT_NETWORK, MountConfig};
    use seatrial::engine::labels::RunId;

    require_engine();
    let _run = RUNS.read().unwrap_or_else(std::sync::PoisonError::into_inner);
    let runtime = tokio::runtime::Runtime::new().expect("a runtime");
    let run = RunId::new();
    let engine = runtime.block_on(Engine::connect()).expect("the engine answers");
    // Whatever happens below, what it made goes.
    let _sweep = support::SweepOnDrop(&runtime, engine.clone(), run.id.clone());
    let name = format!("seatrial-{}-changes", run.id);
    let script = "mkdir -p /app/uploads.d /srv && echo 1 > /app/db.sqlite3 && echo 2 > /app/uploads.d/a.png \
                  && echo 3 > /data/in-volume && rm /bin/vi && echo x >> /etc/passwd && mkdir /srv/b && touch /srv/b/x /srv/b-x \
                  && echo written && sleep 60";
    let volume = format!("{name}-data");
    runtime.block_on(async {
        engine.create_volume(&volume, run.labels(None)).await.expect("a volume");
        let config = ContainerConfig {
            name: name.clone(),
            image: "seatrial/busybox".to_owned(),
            env: Vec::new(),
            cmd: Some(vec!["sh".into(), "-c".into(), script.into()]),
            entrypoint: None,
            user: None,
            workdir: None,
            ports: Vec::new(),
            mounts: vec![MountConfig::Volume { name: volume.clone(), target: "/data".into(), read_only: false }],
            network: DEFAULT_NETWORK.to_owned(),
            alias: "box".into(),
            labels: run.labels(Some("changes")),
            stop_signal: None,
            stop_timeout: None,
        };
        let id = engine.create_container(&config).await.expect("a container");
        engine.start_container(&id).await.expect("it starts");
        let deadline = std::time::Instant::now() + std::time::Duration::from_secs(20);
        while !engine.logs(&id, None).await.expect("its log").contains("written") {
            assert!(std::time::Instant::now() < deadline, "the script did not finish writing");
            tokio::time::sleep(std::time::Duration::from_millis(100)).await;
        }
        let fast = engine.container_changes(&id, ChangesFrom::Fastest).await.expect("changes");
        let mut engines = engine.container_changes(&id, ChangesFrom::Engine).await.expect("the engine's changes");
        // The engine lists them in its driver's order (a naive diff: the order folders are read in). Whether a
        // folder that only holds a changed file counts as changed itself is the driver's choice (overlay2's
        // native diff lists `/etc` for `/etc/passwd`; fuse-overlayfs' naive diff does not): folders with a
        // listed entry below them are left out of the comparison.
        let leaves = |list: &[String]| -> Vec<String> {
            let mut leaves: Vec<String> =
                list.iter().filter(|p| !list.iter().any(|q| q.starts_with(&format!("{p}/")))).cloned().collect();
            leaves.sort();
            leaves
        };
        engines.sort();
        assert_eq!(leaves(&fast), leaves(&engines));
        for path in ["/app/db.sqlite3", "/app/uploads.d/a.png", "/bin", "/etc/passwd", "/srv/b/x", "/srv/b-x"] {
            assert!(fast.iter().any(|p| p == path), "{path} in {fast:?}");
        }
        assert!(!fast.iter().any(|p| p.starts_with("/data/") || p == "/bin/vi"), "{fast:?}");
        engine.remove_container(&id).await.expect("removed");
        engine.remove_volume(&volume).await.expect("removed");
    });
}
