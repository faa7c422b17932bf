//! Scenarios as libtest test cases (libtest-mimic): the same runner serves `seatrial run`, `cargo test`
//! (a `harness = false` target) and cargo-nextest. Closures are synchronous; each is handed the shared
//! runtime's handle. Also owns the run's end: sweeping, the JUnit file and the exit code.

use std::path::PathBuf;
use std::process::ExitCode;
use std::sync::{Arc, Mutex};
use std::time::Instant;

use libtest_mimic::{Arguments, Trial};

use crate::engine::Engine;
use crate::engine::labels::RunId;
use crate::engine::sweep::SweepScope;
use crate::report::junit::{self, Interrupted};
use crate::run::outcome::ScenarioOutcome;
use crate::run::{self, RunContext};

/// Exit codes of `seatrial` (documented in the README).
pub mod exit_codes {
    pub const SUCCESS: u8 = 0;
    /// At least one scenario failed.
    pub const SCENARIO_FAILED: u8 = 1;
    /// A scenario file (or the command line) is wrong; nothing was started.
    pub const INVALID_INPUT: u8 = 2;
    /// No container engine answered.
    pub const NO_ENGINE: u8 = 3;
    /// Interrupted by SIGINT (128 + 2) or SIGTERM (128 + 15).
    pub const INTERRUPTED: u8 = 130;
    pub const TERMINATED: u8 = 143;
}

/// What a suite run needs besides libtest's own arguments.
#[derive(Debug, Clone, Default)]
pub struct SuiteOptions {
    pub paths: Vec<PathBuf>,
    /// Where to write the JUnit report; `None`: no report.
    pub junit: Option<PathBuf>,
    pub keep: bool,
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
    let Some(scenarios) = crate::load_or_report(&options.paths, &lookup) else {
        return ExitCode::from(exit_codes::INVALID_INPUT);
    };
    if args.list {
        let trials =
            scenarios.iter().map(|s| Trial::test(s.test_name.clone(), || Ok(())).with_ignored_flag(s.ignore)).collect();
        let _listed = libtest_mimic::run(args, trials);
        return ExitCode::SUCCESS;
    }
    let runtime = match tokio::runtime::Builder::new_multi_thread().enable_all().build() {
        Ok(runtime) => runtime,
        Err(e) => {
            eprintln!("error: cannot start the async runtime: {e}");
            return ExitCode::from(exit_codes::NO_ENGINE);
        }
    };
    let engine = match runtime.block_on(Engine::connect()) {
        Ok(engine) => engine,
        Err(e) => {
            eprintln!("error: {e}");
            return ExitCode::from(exit_codes::NO_ENGINE);
        }
    };
    match runtime.block_on(engine.sweep(&SweepScope::Dead, false)) {
        Ok(report) if report.total() > 0 => {
            eprintln!("note: removed {} resource(s) left by earlier, killed runs", report.total());
        }
        Ok(_) => {}
        Err(e) => eprintln!("warning: could not sweep what earlier runs left: {e}"),
    }
    let run_id = RunId::new();
    let ctx = Arc::new(RunContext::new(engine.clone(), run_id.clone(), options.keep));
    let ledger = Arc::new(RunLedger::default());
    let started = Instant::now();
    runtime.spawn(on_signal(engine.clone(), run_id.clone(), ledger.clone(), options.junit.clone(), started));

    let handle = runtime.handle().clone();
    let trials = scenarios
        .into_iter()
        .map(|planned| {
            let ignore = planned.ignore;
            let name = planned.test_name.clone();
            let (ctx, ledger, handle) = (ctx.clone(), ledger.clone(), handle.clone());
            let planned = Arc::new(planned);
            Trial::test(name, move || {
                locked(&ledger.running).push(planned.test_name.clone());
                let outcome = handle.block_on(run::run_scenario(ctx, planned.clone()));
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

    // Built images and anything a scenario could not remove.
    if !options.keep
        && let Err(e) = runtime.block_on(engine.sweep(&SweepScope::Run(run_id.id.clone()), false))
    {
        eprintln!("warning: cleanup at the end of the run: {e}");
    }
    let write_failed = write_report(options.junit.as_deref(), &ledger, &[], started);
    if conclusion.has_failed() {
        ExitCode::from(exit_codes::SCENARIO_FAILED)
    } else if write_failed {
        ExitCode::from(exit_codes::INVALID_INPUT)
    } else {
        ExitCode::SUCCESS
    }
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

/// Waits for SIGINT or SIGTERM, then stops creating and removes everything of this run; gives the exit
/// code and the signal's name (`None` when the signals cannot be watched). `run` and `grade` both end so.
pub async fn sweep_on_signal(engine: &Engine, run_id: &RunId) -> Option<(u8, &'static str)> {
    use tokio::signal::unix::{SignalKind, signal};
    let (Ok(mut interrupt), Ok(mut terminate)) = (signal(SignalKind::interrupt()), signal(SignalKind::terminate()))
    else {
        return None;
    };
    let (code, name) = tokio::select! {
        _ = interrupt.recv() => (exit_codes::INTERRUPTED, "SIGINT"),
        _ = terminate.recv() => (exit_codes::TERMINATED, "SIGTERM"),
    };
    run::INTERRUPTED.store(true, std::sync::atomic::Ordering::SeqCst);
    eprintln!("\n{name}: removing what this run made...");
    let scope = SweepScope::Run(run_id.id.clone());
    // Twice: a request already in flight may create something after the first pass has listed.
    for _ in 0..2 {
        if let Err(e) = engine.sweep(&scope, false).await {
            eprintln!("warning: {e}");
        }
        tokio::time::sleep(std::time::Duration::from_millis(300)).await;
    }
    Some((code, name))
}

/// On SIGINT or SIGTERM: stop creating, remove everything of this run, write the report with the
/// interrupted scenarios as errors, and exit 130 / 143.
async fn on_signal(engine: Engine, run_id: RunId, ledger: Arc<RunLedger>, junit: Option<PathBuf>, started: Instant) {
    let Some((code, name)) = sweep_on_signal(&engine, &run_id).await else { return };
    let interrupted: Vec<Interrupted> = locked(&ledger.running)
        .iter()
        .map(|test_name| Interrupted { test_name: test_name.clone(), reason: format!("interrupted by {name}") })
        .collect();
    write_report(junit.as_deref(), &ledger, &interrupted, started);
    std::process::exit(i32::from(code));
}
