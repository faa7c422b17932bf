//! Each step kind against the live containers: lifecycle steps re-resolve host ports and wait for
//! readiness again; checks compare what came back with what the file expects.

use std::time::{Duration, Instant};

use super::guard::{exited_halt, start_failure};
use super::ready::{log_baseline, wait_ready};
use super::scope::Scope;
use super::{Halt, RunContext};
use crate::check::{self, Mismatch};
use crate::diagnose;
use crate::scenario::plan::{LogsStep, PlannedContainer, PlannedScenario, Step};

/// How long a container may take to stop after its stop signal when its scenario gives no
/// `stop_grace_period`: `docker stop`'s and compose's default.
pub const DEFAULT_STOP_GRACE: Duration = Duration::from_secs(10);

pub(super) fn mismatches_to_halt(mismatches: Vec<Mismatch>, diagnosis: Vec<String>) -> Result<(), Halt> {
    if mismatches.is_empty() {
        return Ok(());
    }
    let expected = mismatches.iter().map(|m| m.expected.as_str()).collect::<Vec<_>>().join("; ");
    let actual = mismatches.iter().map(|m| m.actual.as_str()).collect::<Vec<_>>().join("; ");
    Err(Halt::Check { expected, actual, diagnosis, evidence: None })
}

pub(super) fn planned<'a>(scenario: &'a PlannedScenario, name: &str) -> Option<&'a PlannedContainer> {
    scenario.containers.iter().find(|c| c.name == name)
}

pub(super) fn id_of(scope: &Scope, name: &str) -> Result<String, Halt> {
    scope
        .container(name)
        .map(|c| c.id)
        .ok_or_else(|| Halt::check(format!("container `{name}` exists"), "it was never created"))
}

/// Starts a created container and waits for its `ready:` check (or, without one, for it to be running).
pub async fn start_and_wait(ctx: &RunContext, scope: &Scope, container: &PlannedContainer) -> Result<(), Halt> {
    let id = id_of(scope, &container.name)?;
    if let Err(err) = ctx.engine.start_container(&id).await {
        return Err(start_failure(ctx, &container.name, &id, err).await);
    }
    wait_after_lifecycle(ctx, scope, container, 0).await
}

pub(super) async fn wait_after_lifecycle(
    ctx: &RunContext,
    scope: &Scope,
    container: &PlannedContainer,
    log_baseline: usize,
) -> Result<(), Halt> {
    match &container.ready {
        Some(ready) => wait_ready(ctx, scope, &container.name, ready, log_baseline).await,
        None => exited_halt(ctx, scope, &container.name, format!("`{}` running", container.name)).await,
    }
}

pub async fn run_step(ctx: &RunContext, scope: &Scope, scenario: &PlannedScenario, step: &Step) -> Result<(), Halt> {
    // Values saved by earlier steps go into this one's text now.
    let saved = |name: &str| scope.memory.saved.get(name);
    let filled = step.filled(&saved).map_err(|err| Halt::check("the values this step uses", err.to_string()))?;
    let step = &filled;
    match step {
        Step::Http(http) => super::http_step::http_step(ctx, scope, http).await,
        Step::Exec(exec) => {
            let id = id_of(scope, &exec.container)?;
            // An exited container cannot run the command: say why it exited, not the engine's 409.
            let expected = format!("`{}` running, to run `{}` in it", exec.container, exec.cmd.join(" "));
            exited_halt(ctx, scope, &exec.container, expected).await?;
            let cmd: Vec<String> = exec.cmd.iter().map(|word| word.to_string()).collect();
            let ran = tokio::time::timeout(exec.timeout, ctx.engine.exec(&id, &cmd, exec.user.as_deref()))
                .await
                .map_err(|_| {
                    Halt::check(
                        format!("`{}` finishes within {:?}", exec.cmd.join(" "), exec.timeout),
                        "it was still running",
                    )
                })?;
            let mismatches = match &ran {
                Ok(output) => check::exec::check_exec(exec, output),
                Err(_) => Vec::new(),
            };
            if (ran.is_err() || !mismatches.is_empty())
                && let Some(halt) = exited_during_exec(ctx, scope, exec, ran.as_ref().ok(), &mismatches).await
            {
                return Err(halt);
            }
            let output = ran?;
            mismatches_to_halt(mismatches, Vec::new())?;
            save_output(scope, exec, &output)
        }
        Step::Logs(logs) => logs_step(ctx, scope, logs).await,
        Step::Restart(name) | Step::Start(name) | Step::Recreate(name) if super::stack::is_service(scope, name) => {
            super::stack::step(ctx, scope, step).await
        }
        Step::Down { .. } | Step::Up => super::stack::step(ctx, scope, step).await,
        Step::Restart(name) | Step::Start(name) | Step::Recreate(name) => {
            let container =
                planned(scenario, name).ok_or_else(|| Halt::check(format!("a container `{name}`"), "none"))?;
            // A re-created container starts with an empty log; a restarted one keeps its old output.
            let baseline = match step {
                Step::Recreate(_) => 0,
                _ => log_baseline(ctx, scope, name, container.ready.as_ref()).await,
            };
            let grace = container.stop_grace_period.unwrap_or(DEFAULT_STOP_GRACE);
            let started = match step {
                Step::Restart(_) => {
                    let id = id_of(scope, name)?;
                    ctx.engine.restart_container(&id, grace).await.map_err(|e| (id, e))
                }
                Step::Start(_) => {
                    let id = id_of(scope, name)?;
                    ctx.engine.start_container(&id).await.map_err(|e| (id, e))
                }
                _ => {
                    let old = scope
                        .container(name)
                        .ok_or_else(|| Halt::check(format!("container `{name}` exists"), "it does not"))?;
                    let changes = ctx
                        .engine
                        .container_changes(&old.id, crate::engine::changes::ChangesFrom::Fastest)
                        .await
                        .unwrap_or_default();
                    scope.record_discarded(name, diagnose::data_files(&changes, &old.config));
                    stop_for_recreate(ctx, scope, name, &old.id, grace).await?;
                    scope.remove_container(name).await?;
                    let id = scope.create_container(name, old.config).await?;
                    ctx.engine.start_container(&id).await.map_err(|e| (id, e))
                }
            };
            if let Err((id, err)) = started {
                return Err(start_failure(ctx, name, &id, err).await);
            }
            wait_after_lifecycle(ctx, scope, container, baseline).await
        }
        Step::Stop { container, within } => {
            let id = id_of(scope, container)?;
            // Stopping a container that already exited proves nothing about how it stops.
            exited_halt(ctx, scope, container, format!("`{container}` running, to stop within {within:?}")).await?;
            // The grace period outlasts `within` by a second, so that a slow stop is seen, not cut short.
            let grace = *within + Duration::from_secs(1);
            let started = Instant::now();
            ctx.engine.stop_container(&id, grace).await?;
            let took = started.elapsed();
            let state = scope.refresh(container).await?;
            if took <= *within {
                return Ok(());
            }
            let mut diagnosis: Vec<String> =
                diagnose::ignored_stop_signal(container, &state.stop_signal, state.exit_code).into_iter().collect();
            if !diagnosis.is_empty() && super::stack::is_service(scope, container) {
                diagnosis.push(format!(
                    "in the compose file, `{container}`'s PID 1 comes from its `command:` (or its image's CMD): \
                     write it in exec form (`command: [\"gunicorn\", ...]`), `exec` the server at the end of a \
                     start script, or give the service `init: true`"
                ));
            }
            Err(Halt::Check {
                expected: format!("`{container}` stops within {within:?}"),
                actual: format!("it took {:.1}s (exit code {})", took.as_secs_f64(), state.exit_code),
                diagnosis,
                evidence: None,
            })
        }
        Step::Sleep(duration) => {
            tokio::time::sleep(*duration).await;
            Ok(())
        }
        Step::Image(image) => super::contents::image_step(ctx, scope, image).await,
        Step::File(file) => super::contents::file_step(ctx, scope, file).await,
        Step::Replace { container, image } => super::release::replace(ctx, scope, scenario, container, image).await,
        Step::Kill { container, signal, within } => super::release::kill(ctx, scope, container, signal, *within).await,
        Step::Pause(container) => super::release::pause(ctx, scope, container).await,
        Step::Unpause(container) => super::release::unpause(ctx, scope, container).await,
        Step::Disconnect(container) => super::release::disconnect(ctx, scope, container).await,
        Step::Connect(container) => super::release::connect(ctx, scope, container).await,
    }
}

/// How long a container whose exec was killed may take to show as exited: the exec's end and the
/// container's exit are reported apart.
const EXIT_NOTICED_WITHIN: Duration = Duration::from_secs(1);

/// An exec whose container died while it ran: the command was killed with it, and its exit code (137)
/// or the broken output stream says nothing of why. Says that the container exited and why (its exit
/// code, its last line, the kernel's OOM kill); `None` when the container still runs.
async fn exited_during_exec(
    ctx: &RunContext,
    scope: &Scope,
    exec: &crate::scenario::plan::ExecStep,
    output: Option<&crate::engine::container::ExecOutput>,
    mismatches: &[Mismatch],
) -> Option<Halt> {
    // Only a command that was killed (137) or lost its stream can have died with its container.
    let killed = output.is_none_or(|o| o.exit_code == 137 || o.exit_code < 0);
    if !killed {
        return None;
    }
    let deadline = Instant::now() + EXIT_NOTICED_WITHIN;
    let state = loop {
        let state = scope.refresh(&exec.container).await.ok()?;
        if !state.running {
            break state;
        }
        if Instant::now() >= deadline {
            return None;
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    };
    let id = scope.container(&exec.container).map(|c| c.id).unwrap_or_default();
    let log = ctx.engine.logs(&id, Some(200)).await.unwrap_or_default();
    let command = exec.cmd.join(" ");
    let expected = if mismatches.is_empty() {
        format!("`{command}` runs to its end")
    } else {
        mismatches.iter().map(|m| m.expected.as_str()).collect::<Vec<_>>().join("; ")
    };
    let killed_with = match output {
        Some(output) => format!("the command was killed with it (exit code {})", output.exit_code),
        None => "the command's output ended with it".to_owned(),
    };
    let how = if state.oom_killed {
        format!("was killed for memory (exit code {})", state.exit_code)
    } else {
        format!("exited with code {}", state.exit_code)
    };
    let actual = format!("container `{}` {how} while `{command}` ran, and {killed_with}", exec.container);
    Some(Halt::Check {
        expected,
        actual,
        diagnosis: vec![diagnose::exited(&exec.container, &state, &log)],
        evidence: None,
    })
}

/// Stops a container that is about to be re-created as `docker compose up --force-recreate` does: its
/// stop signal, then its grace period, so that it saves its state (a database checkpoints, a cache
/// writes its dump) before it goes. Removing it with force would SIGKILL it on the spot. A container
/// that had to be killed at the end of the grace period is recorded, for the check its lost state fails.
pub(super) async fn stop_for_recreate(
    ctx: &RunContext,
    scope: &Scope,
    name: &str,
    id: &str,
    grace: Duration,
) -> Result<(), Halt> {
    let before = scope.refresh(name).await?;
    if !before.running {
        return Ok(());
    }
    let started = Instant::now();
    ctx.engine.stop_container(id, grace).await?;
    let took = started.elapsed();
    let after = ctx.engine.inspect_container(id).await?;
    if took >= grace && after.exit_code == 137 {
        scope.record_killed(name, diagnose::killed_on_recreate(name, &after.stop_signal, grace));
    }
    Ok(())
}

/// Keeps the values an `exec` step saves from its output; one that is not there fails the step.
fn save_output(
    scope: &Scope,
    exec: &crate::scenario::plan::ExecStep,
    output: &crate::engine::container::ExecOutput,
) -> Result<(), Halt> {
    let mut mismatches = Vec::new();
    for capture in &exec.save {
        match check::capture::from_output(capture, &output.stdout) {
            Ok(value) => scope.memory.saved.insert(&capture.name, value),
            Err(mismatch) => mismatches.push(mismatch),
        }
    }
    mismatches_to_halt(mismatches, Vec::new())
}

async fn logs_step(ctx: &RunContext, scope: &Scope, logs: &LogsStep) -> Result<(), Halt> {
    let id = id_of(scope, &logs.container)?;
    // Only a missing text is worth waiting for; a forbidden one will not go away.
    let mut checked = logs.clone();
    if let Some(text) = &logs.contains
        && ctx.engine.wait_for_log_text(&id, text, logs.within).await?
    {
        // Seen in the stream: the newest part of a long log, read below, may no longer hold it.
        checked.contains = None;
    }
    let log = ctx.engine.logs(&id, None).await?;
    mismatches_to_halt(check::logs::check_logs(&checked, &log), Vec::new())
}
