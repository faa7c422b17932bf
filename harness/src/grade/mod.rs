//! `seatrial grade`: one assignment's scenarios against many submission folders, in parallel, each
//! submission isolated and limited as untrusted code; writes a gradebook and per-submission feedback.

pub mod collector;
pub mod feedback;
pub mod gradebook;
pub mod junit;

use std::path::{Path, PathBuf};
use std::process::ExitCode;
use std::sync::Arc;
use std::time::Instant;

use crate::exit_code as exit_codes;
use crate::outcome::events::{Event, Events};
use crate::run::policy::Policy;
use crate::run::{self, RunContext};
use crate::scenario::{self, PlannedScenario};
use crate::session::{DeadRuns, Session};
use gradebook::{Gradebook, SubmissionGrade};

#[derive(Debug, Clone)]
pub struct GradeOptions {
    pub assignment: PathBuf,
    /// Submission folders, or one folder that holds them.
    pub submissions: Vec<PathBuf>,
    /// Submissions built at once; [`RUNS_PER_JOB`] times as many run at once.
    pub jobs: usize,
    /// Where the gradebook and the feedback go.
    pub out: PathBuf,
    /// The project folder the assignment's own build contexts must stay in (`--root`).
    pub root: Option<PathBuf>,
    /// Plan the assignment for every submission and stop there: nothing is built or run.
    pub check_only: bool,
    /// Print where the time went, per phase, at the end.
    pub timings: bool,
    /// Whether the submissions may run where container limits do not hold.
    pub trust: Trust,
}

/// What the teacher says of the submissions' code.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Trust {
    /// The default: student code is untrusted, and is graded only where the container limits hold.
    Untrusted,
    /// `--trusted-submissions`: graded even on an engine that ignores the limits.
    Trusted,
}

/// Submissions built at once by default: builds are what saturates the machine, and twice the cores keeps
/// it busy while a build waits on the engine.
pub fn default_jobs() -> usize {
    std::thread::available_parallelism().map_or(2, |n| n.get() * 2).clamp(2, 16)
}

/// Submissions whose containers run at once, per job: a running submission mostly waits (for readiness,
/// for a grace period its PID 1 lets run out), so twice as many run as build.
pub const RUNS_PER_JOB: usize = 2;

/// How long the first submission's build may keep the others from starting theirs (see [`grade_all`]).
const FIRST_BUILD_ALONE_AT_MOST: std::time::Duration = std::time::Duration::from_secs(20);

#[derive(Debug, Clone)]
pub struct Submission {
    pub id: String,
    pub path: PathBuf,
}

/// Why the submissions could not be found.
#[derive(Debug, thiserror::Error)]
pub enum GradeError {
    #[error("{path}: {message}")]
    Submissions { path: String, message: String },
    #[error("cannot write {path}: {message}")]
    Write { path: String, message: String },
}

/// Each path is a submission folder; a lone folder with no Dockerfile of its own whose entries are folders
/// is the class: its subfolders are the submissions.
pub fn find_submissions(paths: &[PathBuf]) -> Result<Vec<Submission>, GradeError> {
    let error = |path: &Path, message: String| GradeError::Submissions { path: path.display().to_string(), message };
    let mut folders = Vec::new();
    if let [one] = paths
        && one.is_dir()
        && crate::dockerfile::find(one, crate::dockerfile::Wanted::Default).is_none()
    {
        let entries = std::fs::read_dir(one).map_err(|e| error(one, e.to_string()))?;
        for entry in entries {
            let path = entry.map_err(|e| error(one, e.to_string()))?.path();
            if path.is_dir() && !path.file_name().is_some_and(|n| n.to_string_lossy().starts_with('.')) {
                folders.push(path);
            }
        }
        if folders.is_empty() {
            return Err(error(one, "has no Dockerfile and no submission folders".to_owned()));
        }
    } else {
        for path in paths {
            if !path.is_dir() {
                return Err(error(path, "is not a folder".to_owned()));
            }
            folders.push(path.clone());
        }
    }
    let mut submissions = Vec::new();
    for folder in folders {
        let path = folder.canonicalize().map_err(|e| error(&folder, e.to_string()))?;
        let id = path.file_name().map(|n| n.to_string_lossy().into_owned()).unwrap_or_else(|| "submission".into());
        if submissions.iter().any(|s: &Submission| s.id == id) {
            return Err(error(&folder, format!("two submissions are named `{id}`")));
        }
        submissions.push(Submission { id, path });
    }
    submissions.sort_by(|a, b| a.id.cmp(&b.id));
    Ok(submissions)
}

/// The assignment planned for one submission: `${SUBMISSION}` is its folder, `${SUBMISSION_ID}` its name.
/// Also says whether the assignment read `${SUBMISSION}`.
/// Bind mounts may name the assignment's folder or the submission's: a symlink in a submission that
/// leads anywhere else is refused.
fn plan_for(options: &GradeOptions, submission: &Submission, report: bool) -> (Option<Vec<PlannedScenario>>, bool) {
    let assignment = &options.assignment;
    let folder = submission.path.display().to_string();
    let read_submission = std::cell::Cell::new(false);
    let lookup = |name: &str| match name {
        "SUBMISSION" => {
            read_submission.set(true);
            Some(folder.clone())
        }
        "SUBMISSION_ID" => Some(submission.id.clone()),
        _ => std::env::var(name).ok(),
    };
    let policy =
        scenario::paths::PathPolicy { project_root: options.root.clone(), bind_roots: vec![submission.path.clone()] };
    let env = scenario::plan::PlanEnv {
        lookup: &lookup,
        paths: &policy,
        submission: scenario::plan::SubmissionVars::Undefined,
    };
    let scenarios = if report {
        crate::load_or_report(&[assignment.to_path_buf()], env)
    } else {
        scenario::load(&[assignment.to_path_buf()], env).ok().map(|loaded| loaded.scenarios)
    };
    let plan = scenarios.map(|scenarios| {
        scenarios
            .into_iter()
            .filter(|s| !s.ignore)
            .map(|mut s| {
                s.test_name = format!("{}::{}", submission.id, s.name);
                s
            })
            .collect()
    });
    (plan, read_submission.get())
}

pub fn grade(options: &GradeOptions) -> ExitCode {
    let submissions = match find_submissions(&options.submissions) {
        Ok(s) => s,
        Err(e) => {
            eprintln!("error: {e}");
            return ExitCode::from(exit_codes::INVALID_INPUT);
        }
    };
    let mut plans = Vec::new();
    for (i, submission) in submissions.iter().enumerate() {
        // The assignment's own mistakes are the same for every submission: reported once.
        let (plan, uses_submission) = plan_for(options, submission, i == 0);
        let Some(plan) = plan else {
            if i > 0 {
                // A problem only this submission has (a symlink in its folder that leads outside it): shown.
                eprintln!("error: the assignment cannot be planned for `{}`:", submission.id);
                let _ = plan_for(options, submission, true);
            }
            return ExitCode::from(exit_codes::INVALID_INPUT);
        };
        // An assignment that never reads the submission's folder grades every student on the same files.
        if !uses_submission {
            eprintln!(
                "error: {}: the assignment never uses ${{SUBMISSION}}, so every submission would be graded on the \
                 same files; build from each submission's folder: `build: {{ context: \"${{SUBMISSION}}\" }}`",
                options.assignment.display()
            );
            return ExitCode::from(exit_codes::INVALID_INPUT);
        }
        plans.push((submission.clone(), plan));
    }
    if options.check_only {
        let scenarios: usize = plans.iter().map(|(_, plan)| plan.len()).sum();
        println!("ok: the assignment plans for {} submission(s), {scenarios} scenario(s) in all", plans.len());
        return ExitCode::SUCCESS;
    }
    let session = match Session::open(DeadRuns::SweepFirst) {
        Ok(session) => session,
        Err(e) => {
            eprintln!("error: {e}");
            return ExitCode::from(e.exit_code());
        }
    };
    // Untrusted code is run only where its limits hold: a rootless engine on a cgroup v1 host accepts the
    // memory and pids limits and ignores them, so one fork bomb would take the machine, not its scenario.
    if let crate::engine::identity::Limits::NotEnforced { why } = &session.engine.identity.limits
        && options.trust == Trust::Untrusted
    {
        eprintln!(
            "error: {} at {} does not enforce container limits: {why}.\n  Submissions are untrusted code: a fork bomb \
             or a memory hog would not be stopped. Grade on a rootful engine, or a rootless one on a cgroup v2 host \
             with the memory and pids controllers delegated; or, if you trust these submissions, pass \
             `--trusted-submissions` (`seatrial doctor` shows what the engine enforces)",
            session.engine.identity.describe(),
            session.engine.host
        );
        return ExitCode::from(exit_codes::ENGINE_UNFIT);
    }
    // What ran while the signal's sweep removed its containers says nothing true about a student: the
    // process ends once the sweep is done, before any more feedback or the gradebook is written.
    let signal_sweep = session.signal_sweep();
    session.runtime.spawn(async move {
        let why = signal_sweep.done().await;
        eprintln!(
            "{}: grading stopped; submissions graded before it have their feedback, the others none, and no \
             gradebook was written",
            why.signal
        );
        std::process::exit(i32::from(why.exit_code));
    });
    let expected = plans
        .iter()
        .map(|(submission, scenarios)| {
            let names = scenarios.iter().map(|s| s.test_name.clone()).collect();
            (submission.clone(), names, hidden_request_paths(scenarios))
        })
        .collect();
    let collector = collector::GradingCollector::new(options.assignment.clone(), options.out.clone(), expected);
    let mut reporters: Vec<Box<dyn crate::outcome::events::Reporter>> = vec![Box::new(collector)];
    if options.timings {
        reporters.push(Box::new(crate::report::timings::PhaseTimings::default()));
    }
    let events = Events::new(reporters);
    let ctx = Arc::new(RunContext::new(
        session.engine.clone(),
        session.run_id.clone(),
        Policy::grading(),
        session.cancellation.clone(),
        events.clone(),
        session.runtime.handle(),
    ));
    let started = Instant::now();
    let failed_tasks = session.runtime.block_on(grade_all(options, &ctx, plans));
    session.sweep_run(
        ctx.engine_lost().as_deref(),
        "the grades of submissions graded after that are not valid: grade them again",
    );
    events.emit(&Event::RunFinished { duration: started.elapsed(), engine_lost: ctx.engine_lost().as_deref() });
    let report_failures = events.failures();
    for failure in &report_failures {
        eprintln!("error: {failure}");
    }
    if ctx.engine_lost().is_some() {
        ExitCode::from(exit_codes::NO_ENGINE)
    } else if failed_tasks > 0 {
        ExitCode::from(exit_codes::SCENARIO_FAILED)
    } else if !report_failures.is_empty() {
        ExitCode::from(exit_codes::INVALID_INPUT)
    } else {
        ExitCode::SUCCESS
    }
}

/// Builds the submissions' images, `jobs` submissions at a time in their order, and runs each
/// submission's scenarios as soon as its images are there, `jobs` x [`RUNS_PER_JOB`] submissions at a
/// time: a submission whose containers wait (for readiness, for a grace period) costs the machine little,
/// and its wait no longer holds the next build back. A scenario is timed and judged from its images
/// phase and its run, never on its wait for a turn. The grading collector grades the submissions as they
/// finish. Returns how many submissions' tasks ended abnormally; never returns once the run is cancelled
/// (the signal's task ends the process).
async fn grade_all(
    options: &GradeOptions,
    ctx: &Arc<RunContext>,
    plans: Vec<(Submission, Vec<PlannedScenario>)>,
) -> usize {
    eprintln!("grading {} submission(s) of {} with {} job(s)", plans.len(), options.assignment.display(), options.jobs);
    let jobs = options.jobs.max(1);
    let builds = Arc::new(tokio::sync::Semaphore::new(jobs));
    let runs = Arc::new(tokio::sync::Semaphore::new(jobs * RUNS_PER_JOB));
    let mut tasks = Vec::new();
    for (i, (_, scenarios)) in plans.into_iter().enumerate() {
        // Submissions start building in their order. The first builds alone: what submissions share (the
        // layers of the same base and starter files) is then exported once, and the others find it in the
        // build cache, where builds started together would each export it at once (measured here: 4
        // cold builds at once took 12 s each; one alone 4.7 s, and the next 0.5 s each from the cache).
        // Alone for a while only: a first build that hangs or installs for long holds the class back no
        // longer than FIRST_BUILD_ALONE_AT_MOST.
        let wanted = if i == 0 { jobs } else { 1 };
        let mut building = builds.clone().acquire_many_owned(u32::try_from(wanted).unwrap_or(1)).await.ok();
        let others = building.as_mut().filter(|_| wanted > 1).and_then(|p| p.split(wanted - 1));
        let (built, first_built) = tokio::sync::oneshot::channel::<()>();
        if let Some(others) = others {
            tokio::spawn(async move {
                let _ = tokio::time::timeout(FIRST_BUILD_ALONE_AT_MOST, first_built).await;
                drop(others);
            });
        }
        let (ctx, runs) = (ctx.clone(), runs.clone());
        tasks.push(tokio::spawn(async move {
            let mut prepared = Vec::new();
            for scenario in scenarios {
                prepared.push(run::prepare_scenario(&ctx, Arc::new(scenario)).await);
            }
            drop((building, built));
            prepared.iter().for_each(|p| p.queued(&ctx));
            let _running = runs.acquire_owned().await.ok();
            for scenario in prepared {
                run::run_prepared(ctx.clone(), scenario).await;
            }
        }));
    }
    let mut failed_tasks = 0;
    for task in tasks {
        if let Err(e) = task.await {
            failed_tasks += 1;
            eprintln!("error: a submission's task ended abnormally: {e}");
        }
    }
    if ctx.cancellation.is_cancelled() {
        // The signal's task removes what the run made and ends the process with its own code.
        std::future::pending::<()>().await;
    }
    failed_tasks
}

fn write_file(path: &Path, text: &str) -> Result<(), GradeError> {
    crate::report::write::write_atomically(path, text.as_bytes())
        .map_err(|e| GradeError::Write { path: path.display().to_string(), message: e.to_string() })
}

/// The request paths of hidden HTTP checks (`/notes/999999`), which a server's access log would show.
fn hidden_request_paths(scenarios: &[PlannedScenario]) -> Vec<String> {
    scenarios
        .iter()
        .flat_map(|s| &s.steps)
        .filter(|planned| planned.grading.hidden)
        .filter_map(|planned| match &planned.step {
            crate::scenario::Step::Http(http) => Some(http.path.split('?').next().unwrap_or_default().to_owned()),
            _ => None,
        })
        .filter(|path| path.len() > 1)
        .collect()
}

/// A hidden check must not be told by the log tail shown to the student: lines naming its path go.
pub(crate) fn withhold_hidden_requests(grade: &mut SubmissionGrade, hidden_paths: &[String]) {
    if hidden_paths.is_empty() {
        return;
    }
    for (_, lines) in &mut grade.logs {
        let kept: Vec<&str> = lines.lines().filter(|l| !hidden_paths.iter().any(|p| l.contains(p.as_str()))).collect();
        *lines = kept.join("\n");
    }
}

pub(crate) fn write_submission(out: &Path, assignment: &str, grade: &SubmissionGrade) -> Result<(), GradeError> {
    let folder = out.join(&grade.id);
    write_file(&folder.join("feedback.md"), &feedback::to_markdown(assignment, grade))?;
    let xml = junit::to_xml(grade).map_err(|e| GradeError::Write {
        path: folder.join("junit.xml").display().to_string(),
        message: e.to_string(),
    })?;
    write_file(&folder.join("junit.xml"), &xml)
}

pub(crate) fn write_gradebook(out: &Path, book: &Gradebook) -> Result<(), GradeError> {
    let csv = book.to_csv().map_err(|e| GradeError::Write { path: "grades.csv".into(), message: e.to_string() })?;
    write_file(&out.join("grades.csv"), &csv)?;
    let json = serde_json::to_string_pretty(book)
        .map_err(|e| GradeError::Write { path: "grades.json".into(), message: e.to_string() })?;
    write_file(&out.join("grades.json"), &json)?;
    write_file(&out.join("grades.html"), &book.to_html())
}
