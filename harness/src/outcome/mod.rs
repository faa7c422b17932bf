//! What running a scenario gave: the contract between the runner and every reporter ([`events`] carries
//! them, as they happen).
//! A check that did not hold is data here (`Failed`), not an `Err`.

pub mod events;

use std::time::Duration;

use crate::scenario::Where;
use crate::scenario::plan::Grading;

/// Why a scenario did not pass.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum FailureKind {
    /// A check did not hold: the container did something other than expected.
    Failed,
    /// The scenario could not be carried out: engine error, time limit, interruption.
    Error,
    /// When grading: the step could not run because something it needs failed first (its container was
    /// never created because the image did not build).
    Blocked,
}

/// One thing that did not hold, with the evidence a person needs to fix it.
#[derive(Debug, Clone)]
pub struct Failure {
    pub kind: FailureKind,
    /// Where in the scenario file: the step, the `ready:` check or the image.
    pub at: Where,
    /// What was being done: `step 4 (http GET web:8000/notes)`, `ready check of web`, `build of image app`.
    pub what: String,
    pub expected: String,
    pub actual: String,
    /// Why it happened, when seatrial could tell (from the container, not guessed).
    pub diagnosis: Vec<String>,
    /// Supporting output such as the tail of a build log.
    pub evidence: Option<String>,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum StepStatus {
    Passed,
    Failed,
    NotRun,
}

#[derive(Debug, Clone)]
pub struct StepOutcome {
    pub at: Where,
    pub summary: String,
    pub status: StepStatus,
    pub duration: Duration,
    pub grading: Grading,
    /// Why it failed (a step that could not run because its container never started says so here).
    pub failure: Option<Failure>,
}

/// An image of `images:` that a scenario used: built, or why not.
#[derive(Debug, Clone)]
pub struct BuildOutcome {
    pub image: String,
    pub grading: Grading,
    pub failure: Option<Failure>,
}

/// The last lines a container printed, shown with every failure.
#[derive(Debug, Clone)]
pub struct LogTail {
    pub container: String,
    pub lines: String,
}

#[derive(Debug, Clone)]
pub struct ScenarioOutcome {
    pub name: String,
    pub test_name: String,
    pub at: Where,
    /// The images it built (or found built by another scenario of the run), in the order first used.
    pub builds: Vec<BuildOutcome>,
    pub steps: Vec<StepOutcome>,
    /// Where the first thing that went wrong is recorded: what console and JUnit show ([`Self::failure`]).
    pub first_failure: Option<FailureSite>,
    /// Problems outside the steps: a container that could not be made or never became ready. When
    /// grading they explain why later checks failed.
    pub setup: Vec<Failure>,
    /// A failure of the scenario as a whole, which no build, container or step carries: its time limit,
    /// a lost engine, a failed cleanup, seatrial's own task ending abnormally.
    pub scenario_failure: Option<Failure>,
    pub logs: Vec<LogTail>,
    pub duration: Duration,
    /// Resources kept for debugging with `--keep`: how to reach them.
    pub kept: Vec<String>,
    /// What the report says besides the checks: the compose version used, what the rewrite of a compose
    /// stack changed, compose's warnings.
    pub notes: Vec<String>,
}

/// Where in a [`ScenarioOutcome`] a failure is recorded: each failure lives in one place, and the outcome
/// says which of them came first.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum FailureSite {
    /// The build of an image of `images:`, by name.
    Build { image: String },
    /// `setup[i]`: a container that could not be made or never became ready.
    Setup(usize),
    /// `steps[i]`.
    Step(usize),
    /// `scenario_failure`.
    Scenario,
}

impl ScenarioOutcome {
    pub fn passed(&self) -> bool {
        self.first_failure.is_none()
    }

    /// The first thing that went wrong.
    pub fn failure(&self) -> Option<&Failure> {
        match self.first_failure.as_ref()? {
            FailureSite::Build { image } => self.builds.iter().find(|b| &b.image == image)?.failure.as_ref(),
            FailureSite::Setup(i) => self.setup.get(*i),
            FailureSite::Step(i) => self.steps.get(*i)?.failure.as_ref(),
            FailureSite::Scenario => self.scenario_failure.as_ref(),
        }
    }

    /// Records a failure of the scenario as a whole; it comes first only if nothing failed before.
    pub fn fail_as_a_whole(&mut self, failure: Failure) {
        self.scenario_failure = Some(failure);
        self.first_failure.get_or_insert(FailureSite::Scenario);
    }

    /// Records a failure of the scenario as a whole that explains whatever failed before (a lost engine).
    pub fn fail_first_of_all(&mut self, failure: Failure) {
        self.scenario_failure = Some(failure);
        self.first_failure = Some(FailureSite::Scenario);
    }
}
