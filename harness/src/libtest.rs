//! Scenarios as libtest test cases (libtest-mimic): the same runner serves `seatrial run`, `cargo test`
//! (a `harness = false` target) and cargo-nextest. Closures are synchronous; each is handed the shared
//! runtime's handle. Also owns the run's end: sweeping, the JUnit file and the exit code.

use std::path::PathBuf;
use std::process::ExitCode;
use std::sync::{Arc, Mutex};
use std::time::Instant;

use libtest_mimic::{Arguments, Trial};

use crate::exit_code;
use crate::report::junit::{self, Interrupted};
use crate::run::outcome::ScenarioOutcome;
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
}

/// What the run has seen so far, shared by the test threads and the signal handler.
#[derive(Default)]
struct RunLedger {
    outcomes: Mutex<Vec<ScenarioOutcome>>,
    running: Mutex<Vec<String>>,
}

fn locked<T>(m: &Mutex<T>) -> std::sync::MutexGuard<'_, T> {
    m.lock().unwrap_or_else(|p| p.into_inner())
}

/// Loads, runs and reports the scenarios under `options.paths`; returns the process's exit code.
pub fn run_suite(args: &Arguments, options: &SuiteOptions) -> ExitCode {
    let lookup = |name: &str| std::env::var(name).ok();
    let policy = crate::scenario::paths::PathPolicy { project_root: options.root.clone(), bind_roots: Vec::new() };
    let env = crate::scenario::plan::PlanEnv { lookup: &lookup, paths: &policy };
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
    let ledger = Arc::new(RunLedger::default());
    let started = Instant::now();
    // On SIGINT or SIGTERM, once the session has removed what the run made: the report, with the
    // scenarios that were running as interrupted, then the signal's exit code.
    let (signal_sweep, signal_ledger, junit) = (session.signal_sweep(), ledger.clone(), options.junit.clone());
    session.runtime.spawn(async move {
        let why = signal_sweep.done().await;
        let interrupted: Vec<Interrupted> = locked(&signal_ledger.running)
            .iter()
            .map(|test_name| Interrupted {
                test_name: test_name.clone(),
                reason: format!("interrupted by {}", why.signal),
            })
            .collect();
        write_report(junit.as_deref(), &signal_ledger, &interrupted, started);
        std::process::exit(i32::from(why.exit_code));
    });
    let keep = if options.keep { Keep::FailedScenarios } else { Keep::Nothing };
    let ctx = Arc::new(RunContext::new(
        session.engine.clone(),
        session.run_id.clone(),
        Policy::testing(keep),
        session.cancellation.clone(),
        session.runtime.handle(),
    ));

    let handle = session.runtime.handle().clone();
    let trials = scenarios
        .into_iter()
        .map(|planned| {
            let ignore = planned.ignore;
            let name = planned.test_name.clone();
            let (ctx, ledger, handle) = (ctx.clone(), ledger.clone(), handle.clone());
            let planned = Arc::new(planned);
            Trial::test(name, move || {
                locked(&ledger.running).push(planned.test_name.clone());
                let outcome = handle.block_on(run::run_scenario(ctx.clone(), planned.clone()));
                if ctx.cancellation.is_cancelled() {
                    // Cancelled: the signal's task reports this scenario as such and ends the process.
                    loop {
                        std::thread::park();
                    }
                }
                let message = crate::report::render_failure(&outcome);
                let passed = outcome.passed();
                locked(&ledger.running).retain(|n| n != &planned.test_name);
                locked(&ledger.outcomes).push(outcome);
                if passed { Ok(()) } else { Err(message.into()) }
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
    let write_failed = write_report(options.junit.as_deref(), &ledger, &[], started);
    exit_code::exit(if engine_lost.is_some() {
        exit_code::NO_ENGINE
    } else if conclusion.has_failed() {
        exit_code::SCENARIO_FAILED
    } else if write_failed {
        exit_code::INVALID_INPUT
    } else {
        exit_code::SUCCESS
    })
}

/// Writes the JUnit report if one was asked for; says so on stderr. Returns whether writing failed.
fn write_report(
    path: Option<&std::path::Path>,
    ledger: &RunLedger,
    interrupted: &[Interrupted],
    started: Instant,
) -> bool {
    let Some(path) = path else { return false };
    let mut outcomes = locked(&ledger.outcomes).clone();
    outcomes.sort_by(|a, b| a.test_name.cmp(&b.test_name));
    let result = junit::to_xml(&outcomes, interrupted, started.elapsed()).and_then(|xml| junit::write(path, &xml));
    match result {
        Ok(()) => {
            eprintln!("JUnit report: {}", path.display());
            false
        }
        Err(e) => {
            eprintln!("error: {e}");
            true
        }
    }
}
