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
    /// No container engine answered, or it stopped answering during the run.
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
    let signals = runtime.block_on(async { Interrupts::catch() });
    let engine = match runtime.block_on(Engine::connect()) {
        Ok(engine) => engine,
        Err(e) => {
            eprintln!("error: {e}");
            return ExitCode::from(exit_codes::NO_ENGINE);
        }
    };
    let run_id = RunId::new();
    let ledger = Arc::new(RunLedger::default());
    let started = Instant::now();
    if let Some(signals) = signals {
        runtime.spawn(on_signal(
            signals,
            engine.clone(),
            run_id.clone(),
            ledger.clone(),
            options.junit.clone(),
            started,
        ));
    }
    match runtime.block_on(engine.sweep(&SweepScope::Dead, false)) {
        Ok(report) if report.total() > 0 => {
            eprintln!("note: removed {} resource(s) left by earlier, killed runs", report.total());
        }
        Ok(_) => {}
        Err(e) => eprintln!("warning: could not sweep what earlier runs left: {e}"),
    }
    let ctx = Arc::new(RunContext::new(engine.clone(), run_id.clone(), options.keep, runtime.handle()));

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
                if run::INTERRUPTED.load(std::sync::atomic::Ordering::SeqCst) {
                    // Interrupted: the signal handler reports this scenario as such and ends the process.
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
    // Built images and anything a scenario could not remove.
    if let Some(reason) = &engine_lost {
        eprintln!(
            "error: {reason}\n  what this run made stays on the engine; the next run (or `seatrial clean`) removes it"
        );
    } else if !options.keep
        && let Err(e) = runtime.block_on(engine.sweep(&SweepScope::Run(run_id.id.clone()), false))
    {
        eprintln!("warning: cleanup at the end of the run: {e}");
    }
    let write_failed = write_report(options.junit.as_deref(), &ledger, &[], started);
    if engine_lost.is_some() {
        ExitCode::from(exit_codes::NO_ENGINE)
    } else if conclusion.has_failed() {
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

/// SIGINT and SIGTERM, caught from the moment this is made (on a runtime): a signal that arrives while
/// the run is still connecting waits here instead of killing the process before it can clean up.
pub struct Interrupts {
    interrupt: tokio::signal::unix::Signal,
    terminate: tokio::signal::unix::Signal,
}

impl Interrupts {
    /// Starts catching both signals; `None` when they cannot be watched. Needs a tokio runtime.
    pub fn catch() -> Option<Interrupts> {
        use tokio::signal::unix::{SignalKind, signal};
        Some(Interrupts {
            interrupt: signal(SignalKind::interrupt()).ok()?,
            terminate: signal(SignalKind::terminate()).ok()?,
        })
    }
}

/// Waits for SIGINT or SIGTERM, then stops creating and removes everything of this run; gives the exit
/// code and the signal's name. `run` and `grade` both end so.
pub async fn sweep_on_signal(mut signals: Interrupts, engine: &Engine, run_id: &RunId) -> (u8, &'static str) {
    let (code, name) = tokio::select! {
        _ = signals.interrupt.recv() => (exit_codes::INTERRUPTED, "SIGINT"),
        _ = signals.terminate.recv() => (exit_codes::TERMINATED, "SIGTERM"),
    };
    run::interrupt();
    eprintln!("\n{name}: removing what this run made...");
    let scope = SweepScope::Run(run_id.id.clone());
    match engine.sweep_until_empty(&scope).await {
        Ok(report) => report.errors.iter().for_each(|e| eprintln!("warning: {e}")),
        Err(e) => eprintln!("warning: {e}"),
    }
    (code, name)
}

/// On SIGINT or SIGTERM: stop creating, remove everything of this run, write the report with the
/// interrupted scenarios as errors, and exit 130 / 143.
async fn on_signal(
    signals: Interrupts,
    engine: Engine,
    run_id: RunId,
    ledger: Arc<RunLedger>,
    junit: Option<PathBuf>,
    started: Instant,
) {
    let (code, name) = sweep_on_signal(signals, &engine, &run_id).await;
    let interrupted: Vec<Interrupted> = locked(&ledger.running)
        .iter()
        .map(|test_name| Interrupted { test_name: test_name.clone(), reason: format!("interrupted by {name}") })
        .collect();
    write_report(junit.as_deref(), &ledger, &interrupted, started);
    std::process::exit(i32::from(code));
}
