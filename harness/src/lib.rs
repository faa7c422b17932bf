//! seatrial puts container images through their trials before they ship.
//!
//! The pipeline, one module per stage: [`scenario`] (files -> plan) -> [`run`] (plan -> outcomes, against
//! the [`engine`], with [`check`] for assertions) -> [`report`] (outcomes -> console, JUnit).

pub mod check;
pub mod cli;
pub mod compose;
pub mod diagnose;
pub mod dockerfile;
pub mod doctor;
pub mod engine;
pub mod exit_code;
pub mod grade;
pub mod libtest;
pub mod lock;
pub mod outcome;
pub mod report;
pub mod run;
pub mod scenario;
pub mod session;
pub mod text;

use std::path::PathBuf;
use std::process::ExitCode;

use scenario::PlannedScenario;

/// Loads and plans the files, printing every error and warning on stderr the same way for every command;
/// `None` when there were errors (the caller exits with code 2).
pub fn load_or_report(paths: &[PathBuf], env: scenario::plan::PlanEnv<'_>) -> Option<Vec<PlannedScenario>> {
    let color = scenario::error::stderr_wants_color();
    match scenario::load(paths, env) {
        Ok(loaded) => {
            if !loaded.warnings.is_empty() {
                eprint!("{}", scenario::error::render_all(&loaded.warnings, color));
            }
            Some(loaded.scenarios)
        }
        Err(problems) => {
            eprint!("{}", scenario::error::render_all(&problems, color));
            None
        }
    }
}

/// `seatrial check`: plans every file with no engine and reports every error; exit 0 or 2.
pub fn check_files(paths: &[PathBuf], policy: &scenario::paths::PathPolicy) -> ExitCode {
    let lookup = |name: &str| std::env::var(name).ok();
    // An assignment checks like any file: `${SUBMISSION}` stands for each submission's folder.
    let submission = scenario::plan::SubmissionVars::Placeholders;
    match load_or_report(paths, scenario::plan::PlanEnv { lookup: &lookup, paths: policy, submission }) {
        Some(scenarios) => {
            println!("ok: {} scenario(s) checked", scenarios.len());
            ExitCode::SUCCESS
        }
        None => ExitCode::from(exit_code::INVALID_INPUT),
    }
}

/// `seatrial clean`: removes what dead runs left (or one run's resources), or lists it with `dry_run`.
pub fn clean(dry_run: bool, run: Option<String>) -> ExitCode {
    let session = match session::Session::open(session::DeadRuns::Leave) {
        Ok(session) => session,
        Err(e) => {
            eprintln!("error: {e}");
            return exit_code::exit(e.exit_code());
        }
    };
    let scope = run.map_or(engine::sweep::SweepScope::Dead, engine::sweep::SweepScope::Run);
    let engine = &session.engine;
    let swept = session.runtime.block_on(async {
        if dry_run {
            engine.sweep(&scope, engine::sweep::SweepMode::List).await
        } else {
            engine.sweep_until_empty(&scope).await
        }
    });
    match swept {
        Ok(report) => {
            let verb = if dry_run { "would remove" } else { "removed" };
            for (kind, names) in [
                ("container", &report.containers),
                ("network", &report.networks),
                ("volume", &report.volumes),
                ("image", &report.images),
                ("folder", &report.folders),
            ] {
                for name in names {
                    println!("{verb} {kind} {}", name.trim_start_matches('/'));
                }
            }
            println!("{verb} {} resource(s)", report.total());
            for e in &report.errors {
                eprintln!("warning: {e}");
            }
            exit_code::exit(exit_code::SUCCESS)
        }
        Err(e) => {
            eprintln!("error: {e}");
            exit_code::exit(exit_code::NO_ENGINE)
        }
    }
}
