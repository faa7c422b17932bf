//! Resource limits that bit, told with a failed check: for each container of the scenario, whether the
//! kernel killed it for its memory limit (and during which step), or its processes reached the pids limit.
//! Read only when something failed, so that a passing scenario pays nothing for it.

use super::RunContext;
use super::finish::ordered_containers;
use super::scope::Scope;
use crate::diagnose::limits::{out_of_memory, pids_limit_reached};
use crate::scenario::PlannedScenario;

/// Lines of each container's log searched for fork failures.
const LOG_LINES: usize = 100;

/// A sentence for each limit that a container of the scenario hit.
pub async fn limits_hit(ctx: &RunContext, scope: &Scope, scenario: &PlannedScenario) -> Vec<String> {
    let mut told = Vec::new();
    for (name, live) in ordered_containers(scope, scenario) {
        let Ok(state) = ctx.engine.inspect_container(&live.id).await else { continue };
        let during = state.finished_at.and_then(|exited| scope.phase_at(exited));
        told.extend(out_of_memory(&name, &state, during.as_deref()));
        let pids = if state.running { ctx.engine.pids(&live.id, state.pid).await } else { None };
        let log = ctx.engine.logs(&live.id, Some(LOG_LINES)).await.unwrap_or_default();
        told.extend(pids_limit_reached(&name, state.pids_limit, pids, &log));
    }
    told
}
