//! Scenarios as libtest test cases (libtest-mimic): the same runner serves `seatrial run`, `cargo test`
//! (a `harness = false` target) and cargo-nextest. Closures are synchronous; each is handed the shared
//! runtime's handle. Also owns the run's end: sweeping, the JUnit file and the exit code.

use std::path::PathBuf;
use std::process::ExitCode;
use std::sync::Arc;
use std::time::Instant;

use libtest_mimic::{Arguments, Trial};

use crate::exit_code;
use crate::outcome::events::{Event, Events, Reporter};
use crate::report::console::LiveConsole;
use crate::report::github::GithubReporter;
use crate::report::json::JsonReporter;
use crate::report::junit::JunitReporter;
use crate::run::policy::{Keep, Policy};
use crate::run::{self, RunContext};
use crate::session::{DeadRuns, Session};

/// What a suite run needs besides libtest's own arguments.
#[derive(Debug, Clone, Default)]
pub struct SuiteOptions {
    pub paths: Vec<PathBuf>,
    /// Where to write the JUnit report; `None`: no report.
    pub junit: Option<PathBuf>,
    pub keep: bool,
    /// The project folder build contexts must stay in (`--root`); `None`: found from `.git` or the
    /// current directory (see `scenario::paths::project_for`).
    pub root: Option<PathBuf>,
    /// Where to write the JSON report (`--report json FILE`); `None`: none.
    pub json: Option<PathBuf>,
    /// Print where the time went, per phase, at the end (`--timings`).
    pub timings: bool,
}

/// How often reporters get a [`Event::Tick`] to show long phases live.
const TICK_EVERY: std::time::Duration = std::time::Duration::from_secs(5);

/// Loads, runs and reports the scenarios under `options.paths`; returns the process's exit code.
pub fn run_suite(args: &Arguments, options: &SuiteOptions) -> ExitCode {
    let lookup = |name: &str| std::env::var(name).ok();
    let policy = crate::scenario::paths::PathPolicy { project_root: options.root.clone(), bind_roots: Vec::new() };
    let submission = crate::scenario::plan::SubmissionVars::Undefined;
    let env = crate::scenario::plan::PlanEnv { lookup: &lookup, paths: &policy, submission };
    let Some(scenarios) = crate::load_or_report(&options.paths, env) else {
        return exit_code::exit(exit_code::INVALID_INPUT);
    };
    if args.list {
        let trials =
            scenarios.iter().map(|s| Trial::test(s.test_name.clone(), || Ok(())).with_ignored_flag(s.ignore)).collect();
        let _listed = libtest_mimic::run(args, trials);
        return exit_code::exit(exit_code::SUCCESS);
    }
    let session = match Session::open(DeadRuns::SweepFirst) {
        Ok(session) => session,
        Err(e) => {
            eprintln!("error: {e}");
            return exit_code::exit(e.exit_code());
        }
    };
    let started = Instant::now();
    let mut reporters: Vec<Box<dyn Reporter>> = vec![Box::new(LiveConsole::default())];
    if let Some(path) = &options.junit {
        reporters.push(Box::new(JunitReporter::new(path)));
    }
    if let Some(path) = &options.json {
        reporters.push(Box::new(JsonReporter::new(path)));
    }
    if options.timings {
        reporters.push(Box::new(crate::report::timings::PhaseTimings::default()));
    }
    if let Some(github) = GithubReporter::from_environment() {
        reporters.push(Box::new(github));
    }
    let events = Events::new(reporters);
    events.emit(&Event::RunStarted { run_id: &session.run_id.id, scenarios: scenarios.len() });
    // On SIGINT or SIGTERM, once the session has removed what the run made: the reports, with the
    // scenarios that were running as cut short, then the signal's exit code.
    let (signal_sweep, signal_events) = (session.signal_sweep(), events.clone());
    session.runtime.spawn(async move {
        let why = signal_sweep.done().await;
        signal_events.emit(&Event::Cancelled { reason: &format!("interrupted by {}", why.signal) });
        signal_events.emit(&Event::RunFinished { duration: started.elapsed(), engine_lost: None });
        for failure in signal_events.failures() {
            eprintln!("error: {failure}");
        }
        std::process::exit(i32::from(why.exit_code));
    });
    let ticking = events.clone();
    session.runtime.spawn(async move {
        loop {
            tokio::time::sleep(TICK_EVERY).await;
            ticking.emit(&Event::Tick);
        }
    });
    let keep = if options.keep { Keep::FailedScenarios } else { Keep::Nothing };
    let ctx = Arc::new(RunContext::new(
        session.engine.clone(),
        session.run_id.clone(),
        Policy::testing(keep),
        session.cancellation.clone(),
        events.clone(),
        session.runtime.handle(),
    ));

    let handle = session.runtime.handle().clone();
    let trials = scenarios
        .into_iter()
        .map(|planned| {
            let ignore = planned.ignore;
            let name = planned.test_name.clone();
            let (ctx, handle) = (ctx.clone(), handle.clone());
            let planned = Arc::new(planned);
            Trial::test(name, move || {
                let outcome = handle.block_on(run::run_scenario(ctx.clone(), planned.clone()));
                if ctx.cancellation.is_cancelled() {
                    // Cancelled: the signal's task reports this scenario as cut short and ends the process.
                    loop {
                        std::thread::park();
                    }
                }
                if outcome.passed() { Ok(()) } else { Err(crate::report::render_failure(&outcome).into()) }
            })
            .with_ignored_flag(ignore)
        })
        .collect();
    let conclusion = libtest_mimic::run(args, trials);

    let engine_lost = ctx.engine_lost();
    if !options.keep || engine_lost.is_some() {
        session.sweep_run(
            engine_lost.as_deref(),
            "what this run made stays on the engine; the next run (or `seatrial clean`) removes it",
        );
    }
    events.emit(&Event::RunFinished { duration: started.elapsed(), engine_lost: engine_lost.as_deref() });
    let report_failures = events.failures();
    for failure in &report_failures {
        eprintln!("error: {failure}");
    }
    exit_code::exit(if engine_lost.is_some() {
        exit_code::NO_ENGINE
    } else if conclusion.has_failed() {
        exit_code::SCENARIO_FAILED
    } else if !report_failures.is_empty() {
        exit_code::INVALID_INPUT
    } else {
        exit_code::SUCCESS
    })
}
