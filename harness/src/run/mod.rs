//! The executor: a planned scenario in, a [`crate::outcome::ScenarioOutcome`] out. Each scenario gets its own
//! network, volumes and containers (a [`scope::Scope`]) that are removed whatever happens; images are
//! built once per run ([`images::ImageCache`]).

pub mod cancel;
mod contents;
mod finish;
pub mod guard;
pub mod http_answer;
pub mod http_session;
mod http_step;
pub mod images;
mod lifecycle;
pub mod limits;
pub mod policy;
pub mod ready;
pub mod relay;
pub mod release;
pub mod scope;
pub mod stack;
pub mod steps;

use std::sync::{Arc, Mutex};
use std::time::Instant;

use crate::engine::labels::RunId;
use crate::engine::watch::EngineWatch;
use crate::engine::{Engine, EngineError};
use crate::outcome::events::{Event, Events, Phase};
use crate::outcome::{Failure, FailureKind, FailureSite, ScenarioOutcome, StepOutcome};
use crate::scenario::Where;
use crate::scenario::plan::PlannedScenario;
use cancel::Cancellation;
use policy::{Keep, Policy};
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
    /// The compose CLI, found when the first stack needs it.
    compose: tokio::sync::OnceCell<Result<crate::compose::ComposeCli, crate::compose::ComposeError>>,
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
        // No idle connection is kept: a server that stops gracefully (nginx on SIGQUIT) waits for the open
        // connections of its clients, and one left open here would make its stop look slow.
        let http = reqwest::Client::builder()
            .no_proxy()
            .pool_max_idle_per_host(0)
            // Browsers and curl always send one; some apps read it without a default.
            .user_agent(concat!("seatrial/", env!("CARGO_PKG_VERSION")))
            .redirect(reqwest::redirect::Policy::none())
            .build()
            .unwrap_or_default();
        let watch = EngineWatch::start(&engine, runtime);
        RunContext {
            engine,
            run,
            images: images::ImageCache::default(),
            http,
            policy,
            cancellation,
            watch,
            events,
            compose: tokio::sync::OnceCell::new(),
        }
    }

    /// The compose CLI the user has, found once per run.
    pub async fn compose_cli(&self) -> Result<crate::compose::ComposeCli, crate::compose::ComposeError> {
        self.compose.get_or_init(|| crate::compose::ComposeCli::find(&self.engine.host)).await.clone()
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
    setup: Vec<Failure>,
    first_failure: Option<FailureSite>,
    /// What the task is doing now, for a time-limit message.
    current: Option<(Where, String)>,
}

type SharedProgress = Arc<Mutex<Progress>>;

fn lock(progress: &SharedProgress) -> std::sync::MutexGuard<'_, Progress> {
    crate::lock::unpoisoned(progress)
}

/// How a scenario's task ended.
enum Ending {
    Finished(Result<(), tokio::task::JoinError>),
    TimedOut,
    EngineLost(String),
}

/// Runs one scenario to its end and cleans up after it: images -> bring up -> steps -> finish. Emits the
/// scenario's events on the way: started, each phase, finished (unless the run was cancelled: then the
/// driver reports it cut short).
pub async fn run_scenario(ctx: Arc<RunContext>, scenario: Arc<PlannedScenario>) -> ScenarioOutcome {
    let prepared = prepare_scenario(&ctx, scenario).await;
    run_prepared(ctx, prepared).await
}

/// A scenario whose images are built (or failed to build): what [`run_prepared`] brings up. A driver that
/// holds it while others run (grade builds the next submissions while earlier ones run) pays for the
/// wait in nothing the scenario is timed or judged on.
pub struct PreparedScenario {
    scenario: Arc<PlannedScenario>,
    scope: Scope,
    progress: SharedProgress,
    /// The images, and the compose stack's copy made ready (its builds are images too).
    #[allow(clippy::type_complexity)]
    resolved: Result<((images::ResolvedImages, Vec<crate::outcome::BuildOutcome>), Option<Result<(), Halt>>), String>,
    /// How long the images phase took: the scenario's own time before the wait, if any.
    prepared_in: std::time::Duration,
}

/// The first phase of a scenario: started, then its images built (or found). Builds have their own time
/// limits (`build.timeout`), so the scenario's limit starts after them.
pub async fn prepare_scenario(ctx: &RunContext, scenario: Arc<PlannedScenario>) -> PreparedScenario {
    let started = Instant::now();
    ctx.events.emit(&Event::ScenarioStarted { test_name: &scenario.test_name, at: &scenario.at });
    let mut scope = Scope::new(&ctx.engine, &ctx.run, &ctx.cancellation, &scenario.test_name);
    if ctx.policy.keep == Keep::FailedScenarios {
        scope.labels.insert(crate::engine::labels::KEEP.to_owned(), "true".to_owned());
    }
    let progress = SharedProgress::default();
    lock(&progress).current = Some((scenario.at.clone(), "build of the scenario's images".to_owned()));
    // A compose stack's services are built in this phase too, once `config` has said which.
    let prepare_stack = async {
        match &scenario.compose {
            Some(plan) => Some(stack::prepare(ctx, &scenario, &scope, plan).await),
            None => None,
        }
    };
    let resolved = tokio::select! {
        resolved = async { (images::resolve_images(ctx, &scenario).await, prepare_stack.await) } => Ok(resolved),
        reason = ctx.watch.lost() => Err(reason),
    };
    PreparedScenario { scenario, scope, progress, resolved, prepared_in: started.elapsed() }
}

impl PreparedScenario {
    /// Says that the scenario waits for its turn to run (a driver's limit on scenarios at once).
    pub fn queued(&self, ctx: &RunContext) {
        ctx.events.emit(&Event::Phase { test_name: &self.scenario.test_name, phase: Phase::Queued });
    }
}

/// The rest of a prepared scenario: bring up -> steps -> finish, then its outcome.
pub async fn run_prepared(ctx: Arc<RunContext>, prepared: PreparedScenario) -> ScenarioOutcome {
    let PreparedScenario { scenario, scope, progress, resolved, prepared_in } = prepared;
    // Its time is its images phase and what follows, not a wait for its turn in between.
    let started = Instant::now().checked_sub(prepared_in).unwrap_or_else(Instant::now);
    let (ending, builds) = match resolved {
        Ok(((images, builds), stack)) => {
            lock(&progress).current = None;
            (lifecycle::within_time_limit(&ctx, &scenario, &scope, &progress, images, stack).await, builds)
        }
        Err(reason) => (Ending::EngineLost(reason), Vec::new()),
    };
    let outcome = finish::finish(&ctx, &scenario, &scope, progress, ending, builds, started).await;
    if !ctx.cancellation.is_cancelled() {
        ctx.events.emit(&Event::ScenarioFinished { outcome: &outcome });
    }
    outcome
}
