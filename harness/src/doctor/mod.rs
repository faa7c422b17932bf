//! `seatrial doctor`: in, the engine seatrial would use (DOCKER_HOST, Docker's socket or Podman's) and the
//! host's compose CLI; out, one screen saying what answered and what seatrial will do with it (API,
//! builder, storage and free disk, whether container limits hold, compose), then each problem with its
//! fix. Exit 0 when seatrial can run here, 3 when no engine answers, 4 on any other problem.

pub mod compose;

use std::process::ExitCode;
use std::time::{Duration, Instant};

use crate::engine::container::{ContainerConfig, DEFAULT_MEMORY_LIMIT, DEFAULT_NETWORK, DEFAULT_PIDS_LIMIT};
use crate::engine::identity::{Builder, Limits};
use crate::engine::labels::RunId;
use crate::engine::{Engine, resolve_host};
use crate::exit_code;
use crate::session::{DeadRuns, Session, SessionError};

/// The image the limits probe runs: seatrial's own stand-in busybox, which the fixtures make.
pub const PROBE_IMAGE: &str = "seatrial/busybox";
/// Below this much free disk where the engine keeps images, builds fail: a problem.
const DISK_PROBLEM: u64 = 2 << 30;
/// Below this much, a class's builds may not fit: a warning.
const DISK_WARNING: u64 = 10 << 30;

/// One line of the screen: a topic and what was found.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Finding {
    pub topic: &'static str,
    pub text: String,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Severity {
    /// seatrial runs, but something it does is weaker here (say how).
    Warning,
    /// seatrial cannot run here as it should until this is fixed.
    Problem,
}

/// Something to fix, and how.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Issue {
    pub severity: Severity,
    pub what: String,
    pub fix: String,
}

/// What the doctor found.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Report {
    pub findings: Vec<Finding>,
    pub issues: Vec<Issue>,
    /// No engine answered at all.
    pub no_engine: bool,
}

impl Report {
    fn found(&mut self, topic: &'static str, text: impl Into<String>) {
        self.findings.push(Finding { topic, text: text.into() });
    }

    fn issue(&mut self, severity: Severity, what: impl Into<String>, fix: impl Into<String>) {
        self.issues.push(Issue { severity, what: what.into(), fix: fix.into() });
    }

    /// The screen: one line per finding, then each issue with its fix, then the verdict.
    pub fn render(&self) -> String {
        let mut out = String::new();
        for finding in &self.findings {
            out.push_str(&format!("{:<9} {}\n", finding.topic, finding.text));
        }
        for issue in &self.issues {
            let word = match issue.severity {
                Severity::Warning => "warning",
                Severity::Problem => "problem",
            };
            out.push_str(&format!("\n{word}: {}\n  fix: {}\n", issue.what, issue.fix));
        }
        let problems = self.issues.iter().filter(|i| i.severity == Severity::Problem).count();
        out.push('\n');
        out.push_str(&match problems {
            0 => "ok: seatrial can run here\n".to_owned(),
            n => format!("seatrial cannot run here as it should: {n} problem(s) to fix\n"),
        });
        out
    }

    pub fn exit_code(&self) -> u8 {
        if self.no_engine {
            exit_code::NO_ENGINE
        } else if self.issues.iter().any(|i| i.severity == Severity::Problem) {
            exit_code::ENGINE_UNFIT
        } else {
            exit_code::SUCCESS
        }
    }
}

/// `seatrial doctor`.
pub fn doctor() -> ExitCode {
    let report = match Session::open(DeadRuns::Leave) {
        Ok(session) => {
            let report = session.runtime.block_on(examine(&session.engine, &session.run_id));
            // The probe's container is removed by the probe; this catches one it could not remove.
            session.sweep_run(None, "");
            report
        }
        Err(e) => without_engine(&e),
    };
    print!("{}", report.render());
    exit_code::exit(report.exit_code())
}

/// The report when no engine answers: where seatrial looked, why it failed, and how to start one.
fn without_engine(error: &SessionError) -> Report {
    let mut report = Report { no_engine: true, ..Report::default() };
    let (host, source) = resolve_host();
    let why = match error {
        SessionError::Engine(crate::engine::ConnectError::Unreachable { message, .. }) => message.clone(),
        other => other.to_string(),
    };
    report.found("engine", format!("none answered at {host} ({source}): {why}"));
    report_compose(&mut report);
    report.issue(
        Severity::Problem,
        "no container engine answers",
        "start Docker (`sudo systemctl start docker`) or Podman's Docker-compatible API (`sudo systemctl start \
         podman.socket`, or `podman system service --time=0 &`), or point DOCKER_HOST at a running engine \
         (`export DOCKER_HOST=unix:///run/podman/podman.sock`)",
    );
    report
}

/// Everything the doctor asks of a connected engine.
pub async fn examine(engine: &Engine, run: &RunId) -> Report {
    let mut report = Report::default();
    let identity = &engine.identity;
    report.found("engine", format!("{} on {} (from {})", identity.describe(), engine.host, engine.host_source));
    report.found(
        "api",
        format!(
            "{} negotiated (the engine speaks up to {}, seatrial up to {})",
            identity.api_version,
            identity.engine_api_version,
            bollard::API_DEFAULT_VERSION
        ),
    );
    report.found(
        "builder",
        match identity.builder.builder {
            Builder::BuildKit => format!("BuildKit through the Engine API: {}", identity.builder.why),
            Builder::Legacy => format!("the legacy builder: {}", identity.builder.why),
        },
    );
    report_storage(&mut report, engine);
    report_limits(&mut report, engine, run).await;
    report_compose(&mut report);
    report_compose_choice(&mut report, &engine.host).await;
    report
}

fn report_storage(report: &mut Report, engine: &Engine) {
    let identity = &engine.identity;
    let root = &identity.root_dir;
    let free = if engine.is_local() && !root.is_empty() { free_bytes(root) } else { None };
    let driver = if identity.storage_driver.is_empty() { "unknown driver" } else { &identity.storage_driver };
    match free {
        Some(free) => {
            report.found("storage", format!("{driver}, images in {root}: {} free", gib(free)));
            let fix = "remove unused images and build cache (`docker system prune`, `docker builder prune`), or give \
                       the engine's disk more room";
            if free < DISK_PROBLEM {
                report.issue(Severity::Problem, format!("only {} free for images in {root}", gib(free)), fix);
            } else if free < DISK_WARNING {
                report.issue(Severity::Warning, format!("only {} free for images in {root}", gib(free)), fix);
            }
        }
        None if engine.is_local() => {
            report.found("storage", format!("{driver}, images in {root} (free space unknown)"))
        }
        None => report.found("storage", format!("{driver} (the engine is on another machine: free disk not seen)")),
    }
}

/// Whether the limits seatrial gives every container hold: a container made as seatrial makes them
/// reads its own cgroup's limits; where the probe image is missing, the engine's own info decides.
async fn report_limits(report: &mut Report, engine: &Engine, run: &RunId) {
    let pids = DEFAULT_PIDS_LIMIT;
    let memory = gib(DEFAULT_MEMORY_LIMIT.unsigned_abs());
    let not_enforced = |why: &str| Issue {
        severity: Severity::Warning,
        what: format!("container limits are not enforced: {why}"),
        fix: "`seatrial grade` refuses untrusted submissions here: use a rootful engine, or a rootless one on a \
              cgroup v2 host with the memory and pids controllers delegated, or, for submissions you trust, \
              `seatrial grade --trusted-submissions`"
            .to_owned(),
    };
    match probe_limits(engine, run).await {
        Ok(seen) if seen.pids == pids.to_string() && seen.memory == DEFAULT_MEMORY_LIMIT.to_string() => {
            report.found(
                "limits",
                format!("enforced: a {PROBE_IMAGE} container given {pids} processes and {memory} saw those limits"),
            );
        }
        Ok(seen) => {
            report.found(
                "limits",
                format!(
                    "NOT enforced: a {PROBE_IMAGE} container given {pids} processes and {memory} saw pids.max `{}` \
                     and a memory limit of `{}`",
                    seen.pids, seen.memory
                ),
            );
            let why = match &engine.identity.limits {
                Limits::NotEnforced { why } => why.clone(),
                Limits::Enforced => "the container's cgroup does not carry them".to_owned(),
            };
            report.issues.push(not_enforced(&why));
        }
        Err(probe) => {
            let not_probed = match &probe {
                Probe::NoImage(why) => why.clone(),
                Probe::Failed(_) => "the probe container did not run".to_owned(),
            };
            match &engine.identity.limits {
                Limits::Enforced => {
                    report.found("limits", format!("enforced, as the engine's info says (not probed: {not_probed})"));
                }
                Limits::NotEnforced { why } => {
                    report
                        .found("limits", format!("NOT enforced, as the engine's info says (not probed: {not_probed})"));
                    report.issues.push(not_enforced(why));
                }
            }
            // Every scenario's containers are made as the probe's was: if it cannot run, none can.
            if let Probe::Failed(why) = probe {
                report.issue(
                    Severity::Problem,
                    format!("a container made as seatrial makes them could not run: {why}"),
                    format!(
                        "the engine's own words above say why (`docker run --rm {PROBE_IMAGE} true` shows the same); \
                         rootless Podman needs /dev/net/tun usable by its user and a working slirp4netns"
                    ),
                );
            }
        }
    }
}

/// Why the limits were not probed.
#[derive(Debug)]
enum Probe {
    /// The probe image is not on the engine: nothing is wrong with the engine.
    NoImage(String),
    /// The engine could not make or run the container.
    Failed(String),
}

/// The limits a probe container saw in its own cgroup (v2 or v1 paths).
#[derive(Debug)]
struct LimitsSeen {
    pids: String,
    memory: String,
}

const PROBE_SCRIPT: &str = "cat /sys/fs/cgroup/pids.max 2>/dev/null || cat /sys/fs/cgroup/pids/pids.max; \
                            cat /sys/fs/cgroup/memory.max 2>/dev/null || cat /sys/fs/cgroup/memory/memory.limit_in_bytes";

async fn probe_limits(engine: &Engine, run: &RunId) -> Result<LimitsSeen, Probe> {
    if !engine.has_image(PROBE_IMAGE).await.map_err(|e| Probe::Failed(e.to_string()))? {
        let why = format!("{PROBE_IMAGE} is not on the engine; fixtures/base-images/make-base-images.sh makes it");
        return Err(Probe::NoImage(why));
    }
    let config = ContainerConfig {
        name: format!("seatrial-{}-doctor", run.id),
        image: PROBE_IMAGE.to_owned(),
        env: Vec::new(),
        cmd: Some(vec!["sh".to_owned(), "-c".to_owned(), PROBE_SCRIPT.to_owned()]),
        entrypoint: None,
        user: None,
        workdir: None,
        ports: Vec::new(),
        mounts: Vec::new(),
        network: DEFAULT_NETWORK.to_owned(),
        alias: "doctor".to_owned(),
        labels: run.labels(Some("doctor")),
        stop_signal: None,
        stop_timeout: None,
    };
    let id = engine.create_container(&config).await.map_err(|e| Probe::Failed(e.to_string()))?;
    let seen = read_probe(engine, &id).await.map_err(Probe::Failed);
    // Removed whatever the probe gave; the session's sweep catches it if this fails.
    let _ = engine.remove_container(&id).await;
    seen
}

async fn read_probe(engine: &Engine, id: &str) -> Result<LimitsSeen, String> {
    engine.start_container(id).await.map_err(|e| e.to_string())?;
    let deadline = Instant::now() + Duration::from_secs(30);
    loop {
        let state = engine.inspect_container(id).await.map_err(|e| e.to_string())?;
        if !state.running && state.status != "created" {
            break;
        }
        if Instant::now() >= deadline {
            return Err("the probe container did not exit within 30s".to_owned());
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    let log = engine.logs(id, None).await.map_err(|e| e.to_string())?;
    let mut lines = log.lines().map(str::trim);
    match (lines.next(), lines.next()) {
        (Some(pids), Some(memory)) => Ok(LimitsSeen { pids: pids.to_owned(), memory: memory.to_owned() }),
        _ => Err(format!("the probe container printed `{}`", log.trim())),
    }
}

fn report_compose(report: &mut Report) {
    let found = compose::find();
    if found.is_empty() {
        report.found("compose", "none found (neither `docker compose` nor `docker-compose` answers)");
    } else {
        report.found("compose", found.iter().map(ToString::to_string).collect::<Vec<_>>().join("; "));
    }
}

/// Compose stacks run with the first compose found, unless `SEATRIAL_COMPOSE` names another: that one is
/// asked as a run would ask it.
async fn report_compose_choice(report: &mut Report, host: &str) {
    if std::env::var(crate::compose::cli::COMPOSE_VARIABLE).is_ok_and(|v| !v.trim().is_empty()) {
        match crate::compose::ComposeCli::find(host).await {
            Ok(cli) => report.found("stacks", format!("compose stacks run with {}", cli.describe())),
            Err(why) => report.issue(
                Severity::Problem,
                why.to_string(),
                "name a compose command that works in SEATRIAL_COMPOSE, or unset it",
            ),
        }
    }
}

/// Free bytes on the file system holding `dir`, from `df` (POSIX output, 1024-byte blocks).
fn free_bytes(dir: &str) -> Option<u64> {
    let output = std::process::Command::new("df").args(["-Pk", dir]).output().ok()?;
    let text = String::from_utf8_lossy(&output.stdout);
    let available: u64 = text.lines().nth(1)?.split_whitespace().nth(3)?.parse().ok()?;
    Some(available * 1024)
}

/// `33.2 GiB`.
fn gib(bytes: u64) -> String {
    // Shown with one decimal: precision below 100 MiB says nothing here.
    let tenths = bytes.saturating_mul(10) / (1 << 30);
    format!("{}.{} GiB", tenths / 10, tenths % 10)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_problem_fails_the_doctor_and_a_warning_does_not() {
        let mut report = Report::default();
        report.found("engine", "Docker 26.1.5 on unix:///x (from DOCKER_HOST)");
        report.issue(Severity::Warning, "only 5.0 GiB free", "prune");
        assert_eq!(report.exit_code(), 0);
        assert!(report.render().ends_with("\nwarning: only 5.0 GiB free\n  fix: prune\n\nok: seatrial can run here\n"));
        report.issue(Severity::Problem, "only 1.0 GiB free", "prune");
        assert_eq!(report.exit_code(), exit_code::ENGINE_UNFIT);
        assert!(report.render().ends_with("seatrial cannot run here as it should: 1 problem(s) to fix\n"));
        assert_eq!(gib(2 << 30), "2.0 GiB");
        assert_eq!(gib(1_610_612_736), "1.5 GiB");
    }
}
