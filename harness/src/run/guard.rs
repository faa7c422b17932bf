//! The guards that explain a failure from what the container really did: it exited (with its exit code,
//! last line and the reason its program could not run), the runtime could not start it, or its published
//! port has nothing behind it (what it listens on instead). Steps and readiness both call them.

use super::scope::Scope;
use super::{Halt, RunContext};
use crate::diagnose;

/// The container must keep running; a container that exited fails the wait at once.
pub async fn exited_halt(ctx: &RunContext, scope: &Scope, name: &str, expected: String) -> Result<(), Halt> {
    let state = scope.refresh(name).await?;
    if state.running {
        return Ok(());
    }
    let id = scope.container(name).map(|c| c.id).unwrap_or_default();
    let log = ctx.engine.logs(&id, Some(200)).await.unwrap_or_default();
    let actual = if state.status == "created" {
        format!("container `{name}` never started")
    } else {
        format!("container `{name}` is {} (exit code {})", state.status, state.exit_code)
    };
    let mut diagnosis = vec![diagnose::exited(name, &state, &log)];
    // A program that could not be run at all: say why, from the file in the container.
    let last_line = log.lines().rev().find(|l| !l.trim().is_empty()).unwrap_or_default();
    let runtime_said = format!("{} {last_line}", state.error);
    diagnosis.extend(diagnose::program_not_started(&ctx.engine, &id, &runtime_said).await);
    if let Some(live) = scope.container(name) {
        let said = diagnose::traceback_last_line(&log).unwrap_or(last_line);
        diagnosis.extend(diagnose::volume_not_writable(&ctx.engine, &id, name, &live.config, said).await);
    }
    Err(Halt::Check { expected, actual, diagnosis, evidence: None })
}

/// A container the engine could not start (the runtime could not run its program) is the image's
/// mistake, a failed check, not a failure of the engine.
pub async fn start_failure(ctx: &RunContext, name: &str, id: &str, err: crate::engine::EngineError) -> Halt {
    let runtime_failed = err.message.contains("OCI runtime") || err.message.contains("exec:");
    if err.unanswered || !runtime_failed {
        return Halt::Engine(err);
    }
    let diagnosis = diagnose::program_not_started(&ctx.engine, id, &err.message).await.into_iter().collect();
    Halt::Check {
        expected: format!("`{name}` starts"),
        actual: format!("the engine could not start it: {}", err.message),
        diagnosis,
        evidence: None,
    }
}

/// What the container listens on, said as the reason a published port does not answer.
pub async fn port_diagnosis(ctx: &RunContext, scope: &Scope, name: &str, port: u16) -> Option<String> {
    port_diagnosis_reached(ctx, scope, name, port, "through a published port").await
}

/// The same, for a port reached `how` (`from `client``).
pub async fn port_diagnosis_reached(
    ctx: &RunContext,
    scope: &Scope,
    name: &str,
    port: u16,
    how: &str,
) -> Option<String> {
    let live = scope.container(name)?;
    let state = ctx.engine.inspect_container(&live.id).await.ok()?;
    let listeners = diagnose::listen::listeners(&ctx.engine, &live.id, state.pid).await?;
    diagnose::listen::explain_port_reached(name, port, &listeners, how)
}
