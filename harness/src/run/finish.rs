//! The end of a scenario, however it ended: the failure that says why (a time limit, a lost engine, a
//! panic), the containers' last log lines, the resources kept (`--keep`) or removed, and the outcome.

use std::sync::Arc;
use std::time::{Duration, Instant};

use super::policy::Keep;
use super::scope::{self, Scope};
use super::{Ending, LOG_TAIL_LINES, RunContext, SharedProgress, lock};
use crate::outcome::events::{Event, Phase};
use crate::outcome::{BuildOutcome, Failure, FailureKind, LogTail, ScenarioOutcome, StepOutcome, StepStatus};
use crate::scenario::plan::PlannedScenario;

/// The scenario's outcome, after its logs are read and its resources removed (or kept).
pub(super) async fn finish(
    ctx: &Arc<RunContext>,
    scenario: &Arc<PlannedScenario>,
    scope: &Scope,
    progress: SharedProgress,
    ending: Ending,
    builds: Vec<BuildOutcome>,
    started: Instant,
) -> ScenarioOutcome {
    let progress = std::mem::take(&mut *lock(&progress));
    let mut outcome = ScenarioOutcome {
        name: scenario.name.clone(),
        test_name: scenario.test_name.clone(),
        at: scenario.at.clone(),
        builds,
        steps: progress.steps,
        first_failure: progress.first_failure,
        setup: progress.setup,
        scenario_failure: None,
        logs: Vec::new(),
        duration: Duration::ZERO,
        kept: Vec::new(),
        notes: scope.notes(),
    };
    let mut current = progress.current;
    let ending = match ending {
        Ending::Finished(result) if engine_failed(ctx, outcome.failure()).await => match ctx.engine_lost() {
            Some(reason) => {
                // The step that met the dying engine is what the scenario was doing.
                if let Some(failure) = outcome.failure() {
                    current = Some((failure.at.clone(), failure.what.clone()));
                }
                Ending::EngineLost(reason)
            }
            None => Ending::Finished(result),
        },
        other => other,
    };
    let (at, what) = current.unwrap_or_else(|| (scenario.at.clone(), "scenario".to_owned()));
    let error = |expected: &str, actual: String| Failure {
        kind: FailureKind::Error,
        at: at.clone(),
        what: what.clone(),
        expected: expected.to_owned(),
        actual,
        diagnosis: Vec::new(),
        evidence: None,
    };
    let to_the_end = "the scenario to run to its end";
    match ending {
        Ending::Finished(Ok(())) => {}
        Ending::Finished(Err(join_error)) => {
            outcome.fail_as_a_whole(error(to_the_end, format!("seatrial's task ended abnormally: {join_error}")));
        }
        Ending::TimedOut => {
            let why = format!("the scenario did not finish within its time limit of {:?}", scenario.timeout);
            outcome.fail_as_a_whole(error(to_the_end, why));
        }
        // Whatever failed before, the lost engine is the news: it is why the rest did not happen.
        Ending::EngineLost(reason) => {
            outcome.fail_first_of_all(error("the container engine to keep answering", reason));
        }
    }
    ctx.events.emit(&Event::Phase { test_name: &scenario.test_name, phase: Phase::Finishing });
    let engine_lost = ctx.engine_lost().is_some();
    if !outcome.passed() && !engine_lost {
        for (name, live) in ordered_containers(scope, scenario) {
            let lines =
                ctx.engine.logs(&live.id, Some(LOG_TAIL_LINES)).await.unwrap_or_else(|e| format!("(no log: {e})"));
            outcome.logs.push(LogTail { container: name, lines });
        }
    }
    if ctx.policy.keep == Keep::FailedScenarios && !outcome.passed() {
        outcome.kept = describe_kept(scope, scenario);
    } else if engine_lost {
        // Nothing can be removed without an engine; the next run's sweep removes what is left.
    } else if let Err(e) = scope.cleanup().await
        && outcome.passed()
    {
        outcome.fail_as_a_whole(error(to_the_end, format!("cleanup failed: {e}")));
    }
    for planned in scenario.steps.iter().skip(outcome.steps.len()) {
        outcome.steps.push(StepOutcome {
            at: planned.at.clone(),
            summary: planned.step.summary(),
            status: StepStatus::NotRun,
            duration: Duration::ZERO,
            grading: planned.grading.clone(),
            failure: None,
        });
    }
    outcome.duration = started.elapsed();
    outcome
}

/// Whether the scenario's error came from an engine that is going away; if so, waits for the engine
/// watch's verdict, so that the error names the engine rather than the last request that broke.
async fn engine_failed(ctx: &RunContext, failure: Option<&Failure>) -> bool {
    use crate::engine::watch::{LOST_AFTER, PING_TIMEOUT};
    if !failure.is_some_and(|f| f.kind == FailureKind::Error) || ctx.engine.ping(PING_TIMEOUT).await.is_ok() {
        return false;
    }
    tokio::time::timeout(LOST_AFTER + 2 * PING_TIMEOUT, ctx.watch.lost()).await.is_ok()
}

pub(super) fn ordered_containers(scope: &Scope, scenario: &PlannedScenario) -> Vec<(String, scope::LiveContainer)> {
    let mut live = scope.containers();
    // The scenario's containers in the order written, then the stack's services by name.
    live.sort_by_key(|(name, _)| {
        (scenario.containers.iter().position(|c| &c.name == name).unwrap_or(usize::MAX), name.clone())
    });
    live
}

fn describe_kept(scope: &Scope, scenario: &PlannedScenario) -> Vec<String> {
    let mut lines = Vec::new();
    if scenario.containers.len() > 1 {
        lines.push(format!("network {}", scope.network_name()));
    }
    for (name, live) in ordered_containers(scope, scenario) {
        let ports: Vec<String> = live.host_ports.iter().map(|(c, h)| format!("{c} -> 127.0.0.1:{h}")).collect();
        lines.push(format!(
            "container {name}: {} (ports {}); docker exec -it {} sh; docker logs {}",
            live.config.name,
            if ports.is_empty() { "none".to_owned() } else { ports.join(", ") },
            live.config.name,
            live.config.name
        ));
    }
    lines.push(format!(
        "remove with: seatrial clean --run {}",
        scope.labels.get(crate::engine::labels::RUN).cloned().unwrap_or_default()
    ));
    lines
}
