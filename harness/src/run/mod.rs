//! The executor: a planned scenario in, a [`crate::outcome::ScenarioOutcome`] out. Each scenario gets its own
//! network, volumes and containers (a [`scope::Scope`]) that are removed whatever happens; images are
//! built once per run ([`images::ImageCache`]).

pub mod cancel;
pub mod http_answer;
pub mod images;
pub mod limits;
pub mod policy;
pub mod ready;
pub mod scope;
pub mod steps;

use std::collections::HashMap;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use crate::engine::build::BuildError;
use crate::engine::build::BuildProgressSink;
use crate::engine::container::{ContainerConfig, DEFAULT_NETWORK, MountConfig};
use crate::engine::labels::RunId;
use crate::engine::watch::EngineWatch;
use crate::engine::{Engine, EngineError};
use crate::outcome::events::{Event, Events, Phase};
use crate::outcome::{BuildOutcome, Failure, FailureKind, LogTail, ScenarioOutcome, StepOutcome, StepStatus};
use crate::scenario::plan::{ImageRef, Mount, PlannedContainer, PlannedScenario};
use crate::scenario::{Step, Where};
use cancel::Cancellation;
use policy::{Keep, LoneContainerNetwork, OnFailure, Policy};
use scope::Scope;

/// Lines of each container's log shown with a failure.
pub const LOG_TAIL_LINES: usize = 20;

/// What every scenario of a run shares.
pub struct RunContext {
    pub engine: Engine,
    pub run: RunId,
    pub images: images::ImageCache,
    pub http: reqwest::Client,
    /// How failures and resources are treated (testing or grading).
    pub policy: Policy,
    /// Set once the run is cancelled: from then on nothing new is created.
    pub cancellation: Cancellation,
    /// Says when the engine stops answering, so that every running scenario ends at once.
    pub watch: EngineWatch,
    /// Where the run's events go: every reporter.
    pub events: Events,
}

impl RunContext {
    /// The context of a run whose scenarios (and the engine watch) run on `runtime`.
    pub fn new(
        engine: Engine,
        run: RunId,
        policy: Policy,
        cancellation: Cancellation,
        events: Events,
        runtime: &tokio::runtime::Handle,
    ) -> RunContext {
        let http = reqwest::Client::builder()
            .no_proxy()
            .redirect(reqwest::redirect::Policy::none())
            .build()
            .unwrap_or_default();
        let watch = EngineWatch::start(&engine, runtime);
        RunContext { engine, run, images: images::ImageCache::default(), http, policy, cancellation, watch, events }
    }

    /// Why the engine is gone, once it is: from then on no engine call is worth making.
    pub fn engine_lost(&self) -> Option<String> {
        self.watch.lost_reason()
    }
}

/// Why a scenario stops early: a check that did not hold, or an engine that could not do what was asked.
#[derive(Debug)]
pub enum Halt {
    Check { expected: String, actual: String, diagnosis: Vec<String>, evidence: Option<String> },
    Engine(EngineError),
}

impl From<EngineError> for Halt {
    fn from(e: EngineError) -> Self {
        Halt::Engine(e)
    }
}

impl Halt {
    pub fn check(expected: impl Into<String>, actual: impl Into<String>) -> Halt {
        Halt::Check { expected: expected.into(), actual: actual.into(), diagnosis: Vec::new(), evidence: None }
    }

    fn into_failure(self, at: Where, what: String) -> Failure {
        match self {
            Halt::Check { expected, actual, diagnosis, evidence } => {
                Failure { kind: FailureKind::Failed, at, what, expected, actual, diagnosis, evidence }
            }
            Halt::Engine(e) => Failure {
                kind: FailureKind::Error,
                at,
                what,
                expected: "the engine to carry out the request".to_owned(),
                actual: e.to_string(),
                diagnosis: Vec::new(),
                evidence: None,
            },
        }
    }
}

/// What the scenario's task has done so far; read after it ends, however it ends.
#[derive(Default)]
struct Progress {
    steps: Vec<StepOutcome>,
    failure: Option<Failure>,
    setup: Vec<Failure>,
    /// What the task is doing now, for a time-limit message.
    current: Option<(Where, String)>,
}

type SharedProgress = Arc<Mutex<Progress>>;

fn lock(progress: &SharedProgress) -> std::sync::MutexGuard<'_, Progress> {
    progress.lock().unwrap_or_else(|p| p.into_inner())
}

/// How a scenario's task ended.
enum Ending {
    Finished(Result<(), tokio::task::JoinError>),
    TimedOut,
    EngineLost(String),
}

/// Runs one scenario to its end and cleans up after it.
/// Emits the scenario's events on the way: started, each phase, finished (unless the run was cancelled:
/// then the driver reports it cut short).
pub async fn run_scenario(ctx: Arc<RunContext>, scenario: Arc<PlannedScenario>) -> ScenarioOutcome {
    let started = Instant::now();
    ctx.events.emit(&Event::ScenarioStarted { test_name: &scenario.test_name, at: &scenario.at });
    let outcome = run_scenario_unreported(&ctx, &scenario, started).await;
    if !ctx.cancellation.is_cancelled() {
        ctx.events.emit(&Event::ScenarioFinished { outcome: &outcome });
    }
    outcome
}

async fn run_scenario_unreported(
    ctx: &Arc<RunContext>,
    scenario: &Arc<PlannedScenario>,
    started: Instant,
) -> ScenarioOutcome {
    let mut scope = Scope::new(&ctx.engine, &ctx.run, &ctx.cancellation, &scenario.test_name);
    if ctx.policy.keep == Keep::FailedScenarios {
        scope.labels.insert(crate::engine::labels::KEEP.to_owned(), "true".to_owned());
    }
    let progress = SharedProgress::default();
    // Builds have their own time limits (`build.timeout`), so the scenario's limit starts after them.
    lock(&progress).current = Some((scenario.at.clone(), "build of the scenario's images".to_owned()));
    let resolved = tokio::select! {
        resolved = resolve_images(ctx, scenario) => Ok(resolved),
        reason = ctx.watch.lost() => Err(reason),
    };
    let (ending, builds) = match resolved {
        Ok((images, builds)) => {
            lock(&progress).current = None;
            let task =
                tokio::spawn(scenario_body(ctx.clone(), scenario.clone(), scope.clone(), progress.clone(), images));
            let abort = task.abort_handle();
            let ending = tokio::select! {
                ended = tokio::time::timeout(scenario.timeout, task) => match ended {
                    Ok(result) => Ending::Finished(result),
                    Err(_) => Ending::TimedOut,
                },
                reason = ctx.watch.lost() => Ending::EngineLost(reason),
            };
            abort.abort();
            (ending, builds)
        }
        Err(reason) => (Ending::EngineLost(reason), Vec::new()),
    };
    let mut progress = std::mem::take(&mut *lock(&progress));
    let ending = match ending {
        Ending::Finished(result) if engine_failed(ctx, progress.failure.as_ref()).await => {
            match ctx.engine_lost() {
                Some(reason) => {
                    // The step that met the dying engine is what the scenario was doing.
                    if let Some(failure) = progress.failure.take() {
                        progress.current = Some((failure.at, failure.what));
                    }
                    Ending::EngineLost(reason)
                }
                None => Ending::Finished(result),
            }
        }
        other => other,
    };
    let (at, what) = progress.current.take().unwrap_or_else(|| (scenario.at.clone(), "scenario".to_owned()));
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
            progress
                .failure
                .get_or_insert_with(|| error(to_the_end, format!("seatrial's task ended abnormally: {join_error}")));
        }
        Ending::TimedOut => {
            progress.failure.get_or_insert_with(|| {
                error(
                    to_the_end,
                    format!("the scenario did not finish within its time limit of {:?}", scenario.timeout),
                )
            });
        }
        // Whatever failed before, the lost engine is the news: it is why the rest did not happen.
        Ending::EngineLost(reason) => {
            progress.failure = Some(error("the container engine to keep answering", reason));
        }
    }
    ctx.events.emit(&Event::Phase { test_name: &scenario.test_name, phase: Phase::Finishing });
    let engine_lost = ctx.engine_lost().is_some();
    let mut logs = Vec::new();
    if progress.failure.is_some() && !engine_lost {
        for (name, live) in ordered_containers(&scope, scenario) {
            let lines =
                ctx.engine.logs(&live.id, Some(LOG_TAIL_LINES)).await.unwrap_or_else(|e| format!("(no log: {e})"));
            logs.push(LogTail { container: name, lines });
        }
    }
    let mut kept = Vec::new();
    if ctx.policy.keep == Keep::FailedScenarios && progress.failure.is_some() {
        kept = describe_kept(&scope, scenario);
    } else if engine_lost {
        // Nothing can be removed without an engine; the next run's sweep removes what is left.
    } else if let Err(e) = scope.cleanup().await {
        progress.failure.get_or_insert_with(|| error(to_the_end, format!("cleanup failed: {e}")));
    }
    for planned in scenario.steps.iter().skip(progress.steps.len()) {
        progress.steps.push(StepOutcome {
            at: planned.at.clone(),
            summary: planned.step.summary(),
            status: StepStatus::NotRun,
            duration: Duration::ZERO,
            grading: planned.grading.clone(),
            failure: None,
        });
    }
    ScenarioOutcome {
        name: scenario.name.clone(),
        test_name: scenario.test_name.clone(),
        at: scenario.at.clone(),
        builds,
        steps: progress.steps,
        failure: progress.failure,
        setup: progress.setup,
        logs,
        duration: started.elapsed(),
        kept,
    }
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

fn ordered_containers(scope: &Scope, scenario: &PlannedScenario) -> Vec<(String, scope::LiveContainer)> {
    let mut live = scope.containers();
    live.sort_by_key(|(name, _)| scenario.containers.iter().position(|c| &c.name == name));
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

/// The image of every container: a tag, or the failure that stands for it (a failed build, a missing image).
type ResolvedImages = HashMap<String, Result<String, Failure>>;

/// Builds (or finds) each container's image before the scenario's clock starts; one outcome per image of
/// `images:` that the scenario uses.
async fn resolve_images(ctx: &RunContext, scenario: &PlannedScenario) -> (ResolvedImages, Vec<BuildOutcome>) {
    let mut images = HashMap::new();
    let mut builds: Vec<BuildOutcome> = Vec::new();
    for container in &scenario.containers {
        let at = container.ready.as_ref().map_or_else(|| scenario.at.clone(), |r| r.at.clone());
        let what = format!("start of container `{}`", container.name);
        let result = resolve_image(ctx, &scenario.test_name, container).await.map_err(|h| {
            let (halt, at, what) = attribute(h, at, &what);
            halt.into_failure(at, what)
        });
        if let ImageRef::Built(image) = &container.image
            && !builds.iter().any(|b| b.image == image.name)
        {
            builds.push(BuildOutcome {
                image: image.name.clone(),
                grading: image.grading.clone(),
                failure: result.as_ref().err().cloned(),
            });
        }
        images.insert(container.name.clone(), result);
    }
    (images, builds)
}

async fn scenario_body(
    ctx: Arc<RunContext>,
    scenario: Arc<PlannedScenario>,
    scope: Scope,
    progress: SharedProgress,
    mut images: ResolvedImages,
) {
    let set_current = |at: &Where, what: String| lock(&progress).current = Some((at.clone(), what));
    let fail = |failure: Failure| {
        let mut progress = lock(&progress);
        progress.failure.get_or_insert(failure);
    };
    // When grading, a container that could not be made is why the steps on it fail.
    let mut unavailable: HashMap<String, String> = HashMap::new();
    // Bring the containers up, in the order written.
    let mut network = None;
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
                fail(failure);
                match ctx.policy.on_failure {
                    OnFailure::GoOn => continue,
                    OnFailure::Stop => return,
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
            let config = container_config(&ctx.engine, &scope, container, image, network).await?;
            scope.create_container(&container.name, config).await?;
            steps::start_and_wait(&ctx, &scope, container).await
        }
        .await;
        if let Err(Halt::Check { diagnosis, .. }) = &mut result {
            diagnosis.extend(limits::limits_hit(&ctx, &scope, &scenario).await);
        }
        if let Err(halt) = result {
            let failure = halt.into_failure(at, what);
            if scope.container(&container.name).is_none() {
                unavailable.insert(container.name.clone(), format!("it could not be created: {}", failure.actual));
            }
            if ctx.policy.on_failure == OnFailure::Stop {
                fail(failure);
                return;
            }
            lock(&progress).setup.push(failure);
        }
    }
    let total = scenario.steps.len();
    for (index, planned) in scenario.steps.iter().enumerate() {
        let what = format!("step {} of {total} ({})", index + 1, planned.step.summary());
        set_current(&planned.at, what.clone());
        let summary = planned.step.summary();
        let phase = Phase::Step { index: index + 1, total, summary: &summary, at: &planned.at };
        ctx.events.emit(&Event::Phase { test_name: &scenario.test_name, phase });
        scope.enter_phase(what.clone());
        let step_started = Instant::now();
        let mut result = match planned.step.container().and_then(|c| unavailable.get(c).map(|why| (c, why))) {
            Some((name, why)) => Err(Halt::check(format!("container `{name}` to run this step on"), why.clone())),
            None => steps::run_step(&ctx, &scope, &scenario, &planned.step).await,
        };
        if let Err(Halt::Check { diagnosis, .. }) = &mut result {
            diagnosis.extend(limits::limits_hit(&ctx, &scope, &scenario).await);
        }
        let blocked = matches!(&result, Err(Halt::Check { .. }))
            && planned.step.container().is_some_and(|c| unavailable.contains_key(c));
        let failure = result.err().map(|mut halt| {
            if let Halt::Check { diagnosis, .. } = &mut halt
                && matches!(planned.step, Step::Http(_) | Step::Exec(_) | Step::Logs(_))
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
        let mut progress = lock(&progress);
        progress.steps.push(StepOutcome {
            at: planned.at.clone(),
            summary: planned.step.summary(),
            status,
            duration: step_started.elapsed(),
            grading: planned.grading.clone(),
            failure: failure.clone(),
        });
        if let Some(failure) = failure {
            progress.failure.get_or_insert(failure);
            if ctx.policy.on_failure == OnFailure::Stop {
                return;
            }
        }
    }
    lock(&progress).current = None;
}

/// A build failure belongs to the image's place in the file; anything else to the container's (`at`).
fn attribute(halt: ImageOrHalt, at: Where, what: &str) -> (Halt, Where, String) {
    match halt {
        ImageOrHalt::Build { halt, image_at, image } => (halt, image_at, format!("build of image `{image}`")),
        ImageOrHalt::Halt(halt) => (halt, at, what.to_owned()),
    }
}

pub enum ImageOrHalt {
    Build { halt: Halt, image_at: Where, image: String },
    Halt(Halt),
}

impl<T: Into<Halt>> From<T> for ImageOrHalt {
    fn from(h: T) -> Self {
        ImageOrHalt::Halt(h.into())
    }
}

async fn resolve_image(ctx: &RunContext, test_name: &str, container: &PlannedContainer) -> Result<String, ImageOrHalt> {
    match &container.image {
        ImageRef::Built(image) => {
            ctx.events.emit(&Event::Phase { test_name, phase: Phase::Building { image: &image.name } });
            let (events, test_name, name) = (ctx.events.clone(), test_name.to_owned(), image.name.clone());
            let progress = BuildProgressSink::new(move |line| {
                let phase = Phase::BuildProgress { image: &name, line };
                events.emit(&Event::Phase { test_name: &test_name, phase });
            });
            ctx.images.get(ctx, image, progress).await.map_err(|err| {
                let log = err.log().unwrap_or_default();
                let tail: Vec<&str> = log.lines().collect();
                let tail = tail[tail.len().saturating_sub(LOG_TAIL_LINES)..].join("\n");
                let mut diagnosis = Vec::new();
                if let Some(step) = err.failed_step() {
                    diagnosis.push(format!("the build failed at `{step}`"));
                }
                diagnosis.extend(err.hint());
                if let BuildError::Failed { message, .. } = &*err {
                    diagnosis.extend(crate::engine::build::explain_missing_source(&image.context, message));
                }
                ImageOrHalt::Build {
                    halt: Halt::Check {
                        expected: format!("image `{}` builds from {}", image.name, image.context.display()),
                        actual: err.to_string(),
                        diagnosis,
                        evidence: (!tail.is_empty()).then_some(tail),
                    },
                    image_at: image.at.clone(),
                    image: image.name.clone(),
                }
            })
        }
        ImageRef::Engine(reference) => {
            if !ctx.engine.has_image(reference).await? {
                ctx.engine.pull_image(reference).await.map_err(|e| {
                    Halt::check(
                        format!("image `{reference}` on the engine or pullable"),
                        format!("not on the engine, and the pull failed: {}", e.message),
                    )
                })?;
            }
            Ok(reference.clone())
        }
    }
}

async fn container_config(
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
