//! The scenario's life once its images are there: its containers brought up in the order written, then
//! its steps, within the scenario's time limit. What is reached is recorded in the shared progress, so
//! that a time limit or a lost engine still tells what the scenario was doing.

use std::collections::HashMap;
use std::sync::Arc;
use std::time::Instant;

use super::images::ResolvedImages;
use super::policy::{LoneContainerNetwork, OnFailure};
use super::scope::Scope;
use super::{Ending, Halt, RunContext, SharedProgress, limits, lock, steps};
use crate::engine::container::{ContainerConfig, DEFAULT_NETWORK, MountConfig};
use crate::engine::{Engine, EngineError};
use crate::outcome::events::{Event, Phase};
use crate::outcome::{Failure, FailureKind, FailureSite, StepOutcome, StepStatus};
use crate::scenario::plan::{ImageRef, Mount, PlannedContainer, PlannedScenario};
use crate::scenario::{Step, Where};

/// What the steps `down` and `up` need, among the containers that could not be made: the stack.
const STACK: &str = "\u{0}compose stack";

/// Brings the scenario up and runs its steps on a task of its own (a panic there is the scenario's error,
/// not the run's), ending it at the time limit or when the engine is lost.
pub(super) async fn within_time_limit(
    ctx: &Arc<RunContext>,
    scenario: &Arc<PlannedScenario>,
    scope: &Scope,
    progress: &SharedProgress,
    images: ResolvedImages,
    stack: Option<Result<(), Halt>>,
) -> Ending {
    let (ctx_, scenario_, scope_, progress_) = (ctx.clone(), scenario.clone(), scope.clone(), progress.clone());
    let task = tokio::spawn(async move {
        if let Some(unavailable) = bring_up(&ctx_, &scenario_, &scope_, &progress_, images, stack).await {
            run_steps(&ctx_, &scenario_, &scope_, &progress_, &unavailable).await;
        }
    });
    let abort = task.abort_handle();
    let ending = tokio::select! {
        ended = tokio::time::timeout(scenario.timeout, task) => match ended {
            Ok(result) => Ending::Finished(result),
            Err(_) => Ending::TimedOut,
        },
        reason = ctx.watch.lost() => Ending::EngineLost(reason),
    };
    abort.abort();
    ending
}

/// Brings the containers up, in the order written, each started and waited for. Returns the containers
/// that could not be made, with why (when grading, that is why the steps on them fail); `None` when the
/// scenario stops here.
async fn bring_up(
    ctx: &RunContext,
    scenario: &PlannedScenario,
    scope: &Scope,
    progress: &SharedProgress,
    mut images: ResolvedImages,
    stack: Option<Result<(), Halt>>,
) -> Option<HashMap<String, String>> {
    let set_current = |at: &Where, what: String| lock(progress).current = Some((at.clone(), what));
    // A container's failure is recorded among the setup problems (or, for an image of `images:`, with
    // its build), and is the scenario's first failure if nothing failed before.
    let record = |failure: Failure, image: Option<&str>| {
        let mut progress = lock(progress);
        let site = match image {
            Some(image) => FailureSite::Build { image: image.to_owned() },
            None => {
                progress.setup.push(failure);
                FailureSite::Setup(progress.setup.len() - 1)
            }
        };
        progress.first_failure.get_or_insert(site);
    };
    let mut unavailable: HashMap<String, String> = HashMap::new();
    let mut network = None;
    // A stack's other networks, which the scenario's containers join too.
    let mut extra_networks: Vec<String> = Vec::new();
    // The stack first: the scenario's own containers join its network.
    if let Some(compose) = &scenario.compose {
        let what = "start of the compose stack".to_owned();
        set_current(&compose.at, what.clone());
        let phase = Phase::StartingContainer { container: "compose stack", at: &compose.at };
        ctx.events.emit(&Event::Phase { test_name: &scenario.test_name, phase });
        scope.enter_phase(format!("the {what}"));
        let mut result = match stack {
            Some(Ok(())) => super::stack::bring_up(ctx, scope).await,
            Some(Err(halt)) => Err(halt),
            None => Err(Halt::check("the scenario's compose stack", "it was not prepared")),
        };
        if let Err(Halt::Check { diagnosis, .. }) = &mut result {
            diagnosis.extend(limits::limits_hit(ctx, scope, scenario).await);
        }
        let networks = match (result, scope.stack()) {
            (Ok(()), Some(live)) => super::stack::stack_networks(ctx, &live).await,
            (Ok(()), None) => Ok(Vec::new()),
            (Err(halt), _) => Err(halt),
        };
        match networks {
            Ok(networks) => {
                network = networks.first().cloned();
                extra_networks = networks.into_iter().skip(1).collect();
            }
            Err(halt) => {
                let failure = halt.into_failure(compose.at.clone(), what);
                let own: Vec<&str> = scenario.containers.iter().map(|c| c.name.as_str()).collect();
                for planned in &scenario.steps {
                    if let Some(name) = planned.step.container().filter(|n| !own.contains(n))
                        && scope.container(name).is_none()
                    {
                        let why = format!("the compose stack did not come up: {}", failure.actual);
                        unavailable.insert(name.to_owned(), why);
                    }
                }
                unavailable.insert(STACK.to_owned(), format!("it did not come up: {}", failure.actual));
                record(failure, None);
                if ctx.policy.on_failure == OnFailure::Stop {
                    return None;
                }
            }
        }
    }
    // Bring the containers up, in the order written.
    for container in &scenario.containers {
        let what = format!("start of container `{}`", container.name);
        let at = container.ready.as_ref().map_or_else(|| scenario.at.clone(), |r| r.at.clone());
        set_current(&at, what.clone());
        let phase = Phase::StartingContainer { container: &container.name, at: &at };
        ctx.events.emit(&Event::Phase { test_name: &scenario.test_name, phase });
        scope.enter_phase(format!("the {what}"));
        let image = match images.remove(&container.name) {
            Some(Ok(image)) => image,
            Some(Err(failure)) => {
                unavailable.insert(container.name.clone(), format!("it was never created: {}", failure.actual));
                let built = match &container.image {
                    ImageRef::Built(image) => Some(image.name.as_str()),
                    ImageRef::Engine(_) => None,
                };
                record(failure, built);
                match ctx.policy.on_failure {
                    OnFailure::GoOn => continue,
                    OnFailure::Stop => return None,
                }
            }
            None => continue,
        };
        let mut result: Result<(), Halt> = async {
            if network.is_none() {
                // Containers that talk to each other need a network of their own to find each other by
                // name; a lone container uses the engine's default bridge, as `docker run` does, which
                // saves a network create and remove (0.25 s of a 1.2 s lifecycle, measured in bench/).
                // Untrusted submissions always get their own, so that they cannot reach each other.
                let own_network = ctx.policy.lone_container_network == LoneContainerNetwork::OwnNetwork;
                network = Some(if scenario.containers.len() > 1 || own_network {
                    scope.create_network().await?
                } else {
                    DEFAULT_NETWORK.to_owned()
                });
            }
            let network = network.clone().unwrap_or_default();
            let config = container_config(&ctx.engine, scope, container, image, network).await?;
            let id = scope.create_container(&container.name, config).await?;
            for extra in &extra_networks {
                ctx.engine.connect_network(extra, &id, Some(&container.name)).await?;
            }
            steps::start_and_wait(ctx, scope, container).await
        }
        .await;
        if let Err(Halt::Check { diagnosis, .. }) = &mut result {
            diagnosis.extend(limits::limits_hit(ctx, scope, scenario).await);
        }
        if let Err(halt) = result {
            let failure = halt.into_failure(at, what);
            if scope.container(&container.name).is_none() {
                unavailable.insert(container.name.clone(), format!("it could not be created: {}", failure.actual));
            }
            record(failure, None);
            if ctx.policy.on_failure == OnFailure::Stop {
                return None;
            }
        }
    }
    Some(unavailable)
}

/// Runs the steps in order; a failed one ends the scenario or not, as the policy says.
async fn run_steps(
    ctx: &RunContext,
    scenario: &PlannedScenario,
    scope: &Scope,
    progress: &SharedProgress,
    unavailable: &HashMap<String, String>,
) {
    let set_current = |at: &Where, what: String| lock(progress).current = Some((at.clone(), what));
    let total = scenario.steps.len();
    for (index, planned) in scenario.steps.iter().enumerate() {
        let what = format!("step {} of {total} ({})", index + 1, planned.step.summary());
        set_current(&planned.at, what.clone());
        let summary = planned.step.summary();
        let phase = Phase::Step { index: index + 1, total, summary: &summary, at: &planned.at };
        ctx.events.emit(&Event::Phase { test_name: &scenario.test_name, phase });
        scope.enter_phase(what.clone());
        let step_started = Instant::now();
        let needs =
            planned.step.container().or_else(|| matches!(planned.step, Step::Down { .. } | Step::Up).then_some(STACK));
        let mut result = match needs.and_then(|c| unavailable.get(c).map(|why| (c, why))) {
            Some((STACK, why)) => Err(Halt::check("the scenario's compose stack", why.clone())),
            Some((name, why)) => Err(Halt::check(format!("container `{name}` to run this step on"), why.clone())),
            None => steps::run_step(ctx, scope, scenario, &planned.step).await,
        };
        if let Err(Halt::Check { diagnosis, .. }) = &mut result {
            diagnosis.extend(limits::limits_hit(ctx, scope, scenario).await);
            super::release::explain(ctx, scope, &planned.step, diagnosis).await;
        }
        let blocked = matches!(&result, Err(Halt::Check { .. })) && needs.is_some_and(|c| unavailable.contains_key(c));
        let failure = result.err().map(|mut halt| {
            if let Halt::Check { diagnosis, .. } = &mut halt
                && matches!(planned.step, Step::Http(_) | Step::Exec(_) | Step::Logs(_) | Step::File(_))
            {
                diagnosis.extend(scope.take_recreation_losses());
            }
            let mut failure = halt.into_failure(planned.at.clone(), what);
            if blocked {
                failure.kind = FailureKind::Blocked;
            }
            failure
        });
        let status = if failure.is_none() { StepStatus::Passed } else { StepStatus::Failed };
        let mut progress = lock(progress);
        progress.steps.push(StepOutcome {
            at: planned.at.clone(),
            summary: planned.step.summary(),
            status,
            duration: step_started.elapsed(),
            grading: planned.grading.clone(),
            failure,
        });
        if status == StepStatus::Failed {
            let index = progress.steps.len() - 1;
            progress.first_failure.get_or_insert(FailureSite::Step(index));
            if ctx.policy.on_failure == OnFailure::Stop {
                return;
            }
        }
    }
    lock(progress).current = None;
}

pub(super) async fn container_config(
    engine: &Engine,
    scope: &Scope,
    container: &PlannedContainer,
    image: String,
    network: String,
) -> Result<ContainerConfig, EngineError> {
    let mut mounts = Vec::new();
    let mut covered = Vec::new();
    for mount in &container.mounts {
        mounts.push(match mount {
            Mount::Volume { name, target, read_only } => MountConfig::Volume {
                name: scope.create_volume(name).await?,
                target: target.clone(),
                read_only: *read_only,
            },
            Mount::Bind { source, target, read_only } => {
                // Checked when planned; a container of an earlier scenario may since have swapped a folder
                // of the path for a symlink (a submission's folder mounted read-write): looked at again.
                let now = source.canonicalize();
                if now.as_ref().ok() != Some(source) {
                    let now = match now {
                        Ok(real) => format!("it now leads to `{}`", real.display()),
                        Err(e) => format!("it cannot be resolved any more ({e})"),
                    };
                    return Err(EngineError {
                        operation: "mount",
                        resource: source.display().to_string(),
                        message: format!("the path changed since it was checked: {now}, so it is not mounted"),
                        status: None,
                        unanswered: false,
                    });
                }
                MountConfig::Bind { source: source.clone(), target: target.clone(), read_only: *read_only }
            }
        });
        let (Mount::Volume { target, .. } | Mount::Bind { target, .. }) = mount;
        covered.push(clean_container_path(target));
    }
    // An image's `VOLUME` that no mount of the scenario covers would get an anonymous volume from the
    // engine. It gets a volume of the scenario's own instead: the engine copies the image's files into it
    // just the same (an empty volume is filled on its first mount), `recreate` carries it over to the new
    // container as compose carries anonymous volumes, and it carries seatrial's labels, so that cleanup,
    // the sweep and `seatrial clean` remove it. As with the engine's own rule, only a mount at that very
    // path covers it.
    for target in engine.image_volumes(&image).await? {
        if covered.contains(&clean_container_path(&target)) {
            continue;
        }
        let name = scope.create_anonymous_volume(&container.name, &target).await?;
        covered.push(clean_container_path(&target));
        mounts.push(MountConfig::Volume { name, target, read_only: false });
    }
    Ok(ContainerConfig {
        name: scope.container_name(&container.name),
        image,
        env: container.env.iter().map(|(k, v)| format!("{k}={v}")).collect(),
        cmd: container.command.clone(),
        entrypoint: container.entrypoint.clone(),
        user: container.user.clone(),
        workdir: container.workdir.clone(),
        ports: container.ports.clone(),
        mounts,
        network,
        alias: container.name.clone(),
        labels: scope.labels.clone(),
        stop_signal: container.stop_signal.clone(),
        stop_timeout: container.stop_grace_period,
    })
}

/// A path in a container as the engine compares mount points: `/data/` and `/data/./` are `/data`.
fn clean_container_path(path: &str) -> String {
    let mut parts: Vec<&str> = Vec::new();
    for part in path.split('/') {
        match part {
            "" | "." => {}
            ".." => {
                parts.pop();
            }
            _ => parts.push(part),
        }
    }
    format!("/{}", parts.join("/"))
}

#[cfg(test)]
mod tests {
    use super::clean_container_path;

    #[test]
    fn mount_points_compare_as_the_engine_compares_them() {
        assert_eq!(clean_container_path("/data/"), "/data");
        assert_eq!(clean_container_path("/var//lib/./db"), "/var/lib/db");
        assert_eq!(clean_container_path("/a/b/../c"), "/a/c");
        assert_eq!(clean_container_path("/"), "/");
    }
}
