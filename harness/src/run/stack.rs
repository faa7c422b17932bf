//! A scenario's compose stack, a second source of containers for the one executor: `config`, seatrial's
//! builds of the services, the rewritten copy brought up with compose, then each service's container
//! registered in the scope under its service name, so that every step and diagnosis works on it as on a
//! container of the scenario. Lifecycle steps of a service go to compose.

use std::collections::HashMap;
use std::sync::Arc;
use std::time::{Duration, Instant};

use super::guard::exited_halt;
use super::ready::wait_ready;
use super::scope::{LiveContainer, Scope};
use super::steps::DEFAULT_STOP_GRACE;
use super::{Halt, RunContext};
use crate::compose::rewrite::{self, RewriteInput, ServiceFacts};
use crate::compose::{ComposeError, Stack};
use crate::diagnose;
use crate::engine::build::BuildProgressSink;
use crate::outcome::events::{Event, Phase};
use crate::scenario::plan::{DEFAULT_BUILD_TIMEOUT, Grading, PlannedCompose, PlannedImage, PlannedScenario, Step};

/// The stack while the scenario runs.
pub struct LiveStack {
    pub stack: Stack,
    pub services: Vec<ServiceFacts>,
    pub plan: Arc<PlannedCompose>,
}

impl std::fmt::Debug for LiveStack {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("LiveStack").field("project", &self.stack.project).finish()
    }
}

impl LiveStack {
    fn facts(&self, service: &str) -> Option<&ServiceFacts> {
        self.services.iter().find(|s| s.name == service)
    }

    /// The services `up` starts: those the scenario names (and what they depend on), else all those
    /// of no profile or of a profile it enables.
    fn started(&self) -> Vec<String> {
        if self.plan.services.is_empty() {
            let enabled = |s: &&ServiceFacts| {
                s.profiles.is_empty() || s.profiles.iter().any(|p| self.plan.source.profiles.contains(p))
            };
            return self.services.iter().filter(enabled).map(|s| s.name.clone()).collect();
        }
        let mut started: Vec<String> = Vec::new();
        let mut todo = self.plan.services.clone();
        while let Some(name) = todo.pop() {
            if started.contains(&name) {
                continue;
            }
            if let Some(facts) = self.facts(&name) {
                todo.extend(facts.depends_on.iter().cloned());
            }
            started.push(name);
        }
        started
    }

    /// How long each container may take to stop in cleanup: at once, unless a service says how it
    /// stops (it may write something out on the way).
    pub fn cleanup_grace(&self) -> Option<Duration> {
        let declared = self.services.iter().any(|s| s.stop_grace_period.is_some() || s.stop_signal.is_some());
        if declared { None } else { Some(Duration::ZERO) }
    }
}

fn compose_halt(expected: impl Into<String>, err: ComposeError) -> Halt {
    Halt::check(expected, err.to_string())
}

/// Resolves, builds and rewrites the scenario's stack, before the scenario's clock starts (builds have
/// their own time limits): the copy is ready for `up`, and recorded in the scope.
pub(super) async fn prepare(
    ctx: &RunContext,
    scenario: &PlannedScenario,
    scope: &Scope,
    plan: &Arc<PlannedCompose>,
) -> Result<(), Halt> {
    let cli = ctx.compose_cli().await.map_err(|e| compose_halt("a compose command to run the stack", e))?;
    missing_files(plan)?;
    scope.add_note(format!("compose: {}", cli.describe()));
    let scratch = Stack::scratch().map_err(|e| Halt::check("a scratch folder for compose", e.to_string()))?;
    let resolved = Stack::resolve(&cli, &ctx.engine.host, &plan.source, &scope.prefix, scratch.path())
        .await
        .map_err(|e| compose_halt("compose to read the stack's files", e))?;
    for warning in &resolved.warnings {
        scope.add_note(format!("compose warned: {warning}"));
    }
    let untrusted = ctx.policy.untrusted.then_some(plan.roots.as_slice());
    let mut built = HashMap::new();
    for build in rewrite::builds(&resolved.model).map_err(|e| Halt::check("a stack seatrial can build", e))? {
        let context = build.context.canonicalize().unwrap_or_else(|_| build.context.clone());
        if let Some(roots) = untrusted
            && !crate::scenario::paths::is_below_any(&context, roots)
        {
            return Err(Halt::check(
                format!("service `{}` builds from the submission's folder", build.service),
                format!("it builds from `{}`", context.display()),
            ));
        }
        let image = PlannedImage {
            name: build.service.clone(),
            at: plan.at.clone(),
            context,
            dockerfile: build.dockerfile,
            args: build.args,
            target: build.target,
            timeout: DEFAULT_BUILD_TIMEOUT,
            grading: Grading { name: format!("build {}", build.service), points: 0, feedback: None, hidden: false },
        };
        ctx.events
            .emit(&Event::Phase { test_name: &scenario.test_name, phase: Phase::Building { image: &image.name } });
        let (events, test_name, name) = (ctx.events.clone(), scenario.test_name.clone(), image.name.clone());
        let progress = BuildProgressSink::new(move |line| {
            let phase = Phase::BuildProgress { image: &name, line };
            events.emit(&Event::Phase { test_name: &test_name, phase });
        });
        let tag = ctx.images.get(ctx, &image, progress).await.map_err(|err| super::images::build_halt(&image, &err))?;
        built.insert(build.service, tag);
    }
    let mut image_volumes = HashMap::new();
    if cli.generation == crate::compose::Generation::V1 {
        for (service, facts) in rewrite::services(&resolved.model) {
            let image =
                built.get(service).cloned().or_else(|| facts.get("image").and_then(|i| i.as_str()).map(str::to_owned));
            if let Some(image) = image
                && let Ok(volumes) = ctx.engine.image_volumes(&image).await
            {
                image_volumes.insert(service.clone(), volumes);
            }
        }
    }
    let input = RewriteInput {
        labels: &scope.labels,
        built: &built,
        untrusted,
        project: &scope.prefix,
        image_volumes: &image_volumes,
    };
    let rewritten = rewrite::rewrite(resolved.model, &input)
        .map_err(|refused| Halt::check("a stack that stays in its own containers", refused))?;
    for note in rewritten.notes {
        scope.add_note(note);
    }
    let stack = Stack::new(&cli, &ctx.engine.host, &plan.source, &scope.prefix, &rewritten.model)
        .map_err(|e| compose_halt("a copy of the stack to run", e))?;
    // Recorded before `up`, so that a stack that half came up is taken down all the same.
    scope.set_stack(Arc::new(LiveStack { stack, services: rewritten.services, plan: plan.clone() }));
    Ok(())
}

/// Brings the prepared stack up and waits for each service.
pub(super) async fn bring_up(ctx: &RunContext, scope: &Scope) -> Result<(), Halt> {
    let live = scope.stack().ok_or_else(|| Halt::check("the scenario's compose stack", "it was not prepared"))?;
    up(ctx, scope, &live).await
}

/// A compose file that is not there (a submission's, named from `${SUBMISSION}`) is said plainly, with
/// the compose files its folder does have, rather than in compose's words of a missing file.
fn missing_files(plan: &PlannedCompose) -> Result<(), Halt> {
    for file in &plan.source.files {
        if file.is_file() {
            continue;
        }
        let name = file.file_name().map(|n| n.to_string_lossy().into_owned()).unwrap_or_default();
        let others: Vec<String> = file
            .parent()
            .and_then(|dir| std::fs::read_dir(dir).ok())
            .into_iter()
            .flatten()
            .flatten()
            .map(|e| e.file_name().to_string_lossy().into_owned())
            .filter(|n| n.contains("compose") && (n.ends_with(".yml") || n.ends_with(".yaml")))
            .collect();
        let actual = match others.as_slice() {
            [] => "there is no such file, nor any other compose file beside it".to_owned(),
            found => format!("there is no such file; beside it: `{}`", found.join("`, `")),
        };
        return Err(Halt::check(format!("the compose file `{name}`"), actual));
    }
    Ok(())
}

/// `compose up -d` of the services the scenario starts, then each registered and waited for.
async fn up(ctx: &RunContext, scope: &Scope, live: &LiveStack) -> Result<(), Halt> {
    let started = if live.plan.services.is_empty() { Vec::new() } else { live.started() };
    // Compose waits for `depends_on` conditions without end of its own: a healthcheck that never runs
    // would hold it until the scenario's time limit, which says nothing of why.
    let upped = match tokio::time::timeout(UP_WITHIN, live.stack.up(&started)).await {
        Ok(upped) => upped,
        Err(_) => Err(ComposeError::Failed {
            command: format!("{} up -d", live.stack.cli.command.join(" ")),
            said: format!("it had not finished after {UP_WITHIN:?}"),
        }),
    };
    register(ctx, scope, live).await?;
    if let Err(err) = upped {
        // Compose stopped at a service that did not come up: say which and why, from its container.
        let failed = failed_service(ctx, scope, live).await;
        return Err(match failed {
            Some(Halt::Check { expected, actual, mut diagnosis, evidence }) => {
                diagnosis.insert(0, format!("compose said: {err}"));
                Halt::Check { expected, actual, diagnosis, evidence }
            }
            _ => compose_halt("the stack to come up", err),
        });
    }
    for service in live.started() {
        wait_service(ctx, scope, live, &service, 0).await?;
    }
    Ok(())
}

/// Puts each service's container in the scope under the service's name (a re-creation gives it a new
/// id; `down` removes them).
async fn register(ctx: &RunContext, scope: &Scope, live: &LiveStack) -> Result<(), Halt> {
    scope.forget_services();
    for found in ctx.engine.service_containers(&live.stack.project).await? {
        let config = ctx.engine.config_of(&found.id, &found.service).await?;
        let state = ctx.engine.inspect_container(&found.id).await?;
        scope.add_service(&found.service, LiveContainer { id: found.id, config, host_ports: state.host_ports });
    }
    Ok(())
}

/// The first started service whose container exited or is unhealthy, as a failure that says why.
async fn failed_service(ctx: &RunContext, scope: &Scope, live: &LiveStack) -> Option<Halt> {
    for service in live.started() {
        if scope.container(&service).is_none() {
            continue;
        }
        if let Err(halt) = service_alive(ctx, scope, live, &service).await {
            return Some(halt);
        }
        match ctx.engine.health(&scope.container(&service)?.id).await {
            Ok(Some(health)) if health.status == "unhealthy" => {
                return Some(unhealthy(live, &service, &health.last_output));
            }
            Ok(Some(health)) if health.status == "starting" && health.checks_run == 0 => {
                return Some(Halt::check(
                    format!("service `{service}` healthy"),
                    "its health is still `starting`: no healthcheck has run at all. An engine that runs \
                     healthchecks through systemd timers (Podman) runs none where systemd does not run",
                ));
            }
            _ => {}
        }
    }
    None
}

/// A service's container must run (or, with no `ready:` of its own, may have finished with exit code 0,
/// as a one-shot job does); one that exited says why, and what it depends on.
async fn service_alive(ctx: &RunContext, scope: &Scope, live: &LiveStack, service: &str) -> Result<(), Halt> {
    let state = scope.refresh(service).await?;
    // Under a restart policy the engine restarts a crashed container and calls it running meanwhile. A
    // crash or two while what it needs comes up is how `restart: on-failure` stacks wait; one that keeps
    // crashing is said as such, with why it exits.
    if state.restart_count >= CRASH_LOOP && (state.status == "restarting" || state.exit_code != 0) {
        return Err(crashing(ctx, scope, live, service, &state).await);
    }
    if !state.running && state.exit_code == 0 && state.status == "exited" && live.plan.ready_of(service).is_none() {
        return Ok(());
    }
    let result = exited_halt(ctx, scope, service, format!("service `{service}` running")).await;
    result.map_err(|halt| with_dependencies(live, service, halt))
}

/// A service that exited at start often could not reach what it depends on yet: said with its failure.
fn with_dependencies(live: &LiveStack, service: &str, mut halt: Halt) -> Halt {
    if let (Halt::Check { diagnosis, .. }, Some(facts)) = (&mut halt, live.facts(service))
        && !facts.depends_on.is_empty()
    {
        let on: Vec<String> = facts.depends_on.iter().map(|d| format!("`{d}`")).collect();
        diagnosis.push(format!(
            "`{service}` depends on {}: an app that exits at start often could not reach what it depends on \
             yet (`depends_on` with `condition: service_healthy` and a healthcheck on it make compose wait)",
            on.join(", ")
        ));
    }
    halt
}

/// Waits for a service as the scenario says: its `ready:` check, else healthy (with a healthcheck), else
/// running.
async fn wait_service(
    ctx: &RunContext,
    scope: &Scope,
    live: &LiveStack,
    service: &str,
    log_baseline: usize,
) -> Result<(), Halt> {
    if scope.container(service).is_none() {
        return Err(Halt::check(format!("service `{service}` has a container"), "compose made none"));
    }
    if let Some(ready) = live.plan.ready_of(service) {
        let waited = wait_ready(ctx, scope, service, ready, log_baseline).await;
        if let Err(halt) = waited {
            let exited = scope.refresh(service).await.is_ok_and(|state| !state.running);
            return Err(if exited { with_dependencies(live, service, halt) } else { halt });
        }
        return Ok(());
    }
    if live.facts(service).is_some_and(|f| f.healthcheck.is_some()) {
        return wait_healthy(ctx, scope, live, service).await;
    }
    service_alive(ctx, scope, live, service).await
}

/// Restarts by the engine's restart policy after which a service is said to keep crashing.
const CRASH_LOOP: i64 = 3;

/// How long `compose up` may take, waiting for `depends_on` conditions included.
const UP_WITHIN: Duration = Duration::from_secs(180);

/// How long a service with a healthcheck and no `ready:` may take to be healthy.
const HEALTHY_WITHIN: Duration = Duration::from_secs(120);

async fn wait_healthy(ctx: &RunContext, scope: &Scope, live: &LiveStack, service: &str) -> Result<(), Halt> {
    let deadline = Instant::now() + HEALTHY_WITHIN;
    loop {
        service_alive(ctx, scope, live, service).await?;
        let id = scope.container(service).map(|c| c.id).unwrap_or_default();
        let Some(health) = ctx.engine.health(&id).await? else { return Ok(()) };
        let status = health.status;
        match status.as_str() {
            "healthy" => return Ok(()),
            "unhealthy" => {
                // A container that crashed under a restart policy loses its health with it: the crash is
                // the news, not the check.
                let state = scope.refresh(service).await?;
                if state.restart_count > 0 && state.exit_code != 0 {
                    return Err(crashing(ctx, scope, live, service, &state).await);
                }
                return Err(unhealthy(live, service, &health.last_output));
            }
            _ if Instant::now() >= deadline => {
                return Err(Halt::check(
                    format!("service `{service}` healthy within {HEALTHY_WITHIN:?}"),
                    format!("its health is still `{status}`"),
                ));
            }
            _ => tokio::time::sleep(Duration::from_millis(100)).await,
        }
    }
}

/// A service that the engine keeps restarting under its restart policy: how often, and why it exits.
async fn crashing(
    ctx: &RunContext,
    scope: &Scope,
    live: &LiveStack,
    service: &str,
    state: &crate::engine::container::ContainerState,
) -> Halt {
    let id = scope.container(service).map(|c| c.id).unwrap_or_default();
    let log = ctx.engine.logs(&id, Some(200)).await.unwrap_or_default();
    let halt = Halt::Check {
        expected: format!("service `{service}` running"),
        actual: format!(
            "it keeps crashing: the engine restarted it {} time(s) under its restart policy (last exit code {})",
            state.restart_count, state.exit_code
        ),
        diagnosis: vec![diagnose::exited(service, state, &log)],
        evidence: None,
    };
    with_dependencies(live, service, halt)
}

/// A service its healthcheck declared unhealthy: the check, and what it printed last.
fn unhealthy(live: &LiveStack, service: &str, said: &str) -> Halt {
    let test = live.facts(service).and_then(|f| f.healthcheck.clone()).unwrap_or_default();
    let said = if said.trim().is_empty() {
        "it printed nothing".to_owned()
    } else {
        format!("it printed {}", crate::text::excerpt(said, 200))
    };
    Halt::Check {
        expected: format!("service `{service}` healthy"),
        actual: format!("its healthcheck `{test}` kept failing until compose declared it unhealthy ({said})"),
        diagnosis: Vec::new(),
        evidence: None,
    }
}

/// Whether a step's container is a service of the scenario's stack.
pub(super) fn is_service(scope: &Scope, name: &str) -> bool {
    scope.stack().is_some_and(|live| live.facts(name).is_some())
}

/// A lifecycle step (`restart`, `recreate`, `start`, `stop`) on a service, through compose; `down` and
/// `up` of the whole stack.
pub(super) async fn step(ctx: &RunContext, scope: &Scope, step: &Step) -> Result<(), Halt> {
    let live = scope.stack().ok_or_else(|| Halt::check("the scenario's compose stack", "there is none"))?;
    match step {
        Step::Restart(service) | Step::Start(service) | Step::Recreate(service) => {
            let grace = live.facts(service).and_then(|f| f.stop_grace_period).unwrap_or(DEFAULT_STOP_GRACE);
            let baseline = match (step, live.plan.ready_of(service)) {
                (Step::Recreate(_), _) | (_, None) => 0,
                (_, Some(ready)) => super::ready::log_baseline(ctx, scope, service, Some(ready)).await,
            };
            let ran = match step {
                Step::Restart(_) => live.stack.restart(service, grace).await,
                Step::Start(_) => live.stack.start(service).await,
                _ => {
                    let old = super::steps::id_of(scope, service)?;
                    scope.add_stack_volumes(ctx.engine.anonymous_volumes_of(&old).await);
                    let changes = ctx
                        .engine
                        .container_changes(&old, crate::engine::changes::ChangesFrom::Fastest)
                        .await
                        .unwrap_or_default();
                    if let Some(config) = scope.container(service).map(|c| c.config) {
                        scope.record_discarded(service, diagnose::data_files(&changes, &config));
                    }
                    let ran = live.stack.recreate(service, grace).await;
                    if let Ok(ran) = &ran
                        && ran.took >= grace
                    {
                        let signal = scope
                            .container(service)
                            .and_then(|c| c.config.stop_signal)
                            .unwrap_or_else(|| "SIGTERM".to_owned());
                        scope.record_killed(service, diagnose::killed_on_recreate(service, &signal, grace));
                    }
                    ran
                }
            };
            register(ctx, scope, &live).await?;
            ran.map_err(|e| compose_halt(format!("compose to {} `{service}`", step.kind()), e))?;
            wait_service(ctx, scope, &live, service, baseline).await
        }
        Step::Down { volumes } => {
            let own = scope.own_containers();
            for network in stack_networks(ctx, &live).await? {
                for (_, container) in &own {
                    let _ = ctx.engine.disconnect_network(&network, &container.id).await;
                }
            }
            for (_, service) in scope.containers().into_iter().filter(|(name, _)| is_service(scope, name)) {
                let anonymous = ctx.engine.anonymous_volumes_of(&service.id).await;
                scope.add_stack_volumes(anonymous);
            }
            let ran = live.stack.down(*volumes, None).await;
            scope.forget_services();
            ran.map_err(|e| compose_halt("compose to take the stack down", e))?;
            Ok(())
        }
        Step::Up => {
            up(ctx, scope, &live).await?;
            for network in stack_networks(ctx, &live).await? {
                for (name, container) in scope.own_containers() {
                    ctx.engine.connect_network(&network, &container.id, Some(&name)).await?;
                }
            }
            Ok(())
        }
        _ => Err(Halt::check("a step compose carries out", step.summary())),
    }
}

/// The stack's networks, which the scenario's own containers join (its default network first, where
/// they are made), so that a test client reaches every service by name.
pub(super) async fn stack_networks(ctx: &RunContext, live: &LiveStack) -> Result<Vec<String>, Halt> {
    Ok(ctx.engine.project_networks(&live.stack.project).await?)
}
