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

#[derive(Debug, Clone, PartialEq, Eq)]
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
    /// The first thing that went wrong: what console and JUnit show.
    pub failure: Option<Failure>,
    /// When grading: problems outside the graded checks (a container that never became ready), which
    /// explain why later checks failed.
    pub setup: Vec<Failure>,
    pub logs: Vec<LogTail>,
    pub duration: Duration,
    /// Resources kept for debugging with `--keep`: how to reach them.
    pub kept: Vec<String>,
}

impl ScenarioOutcome {
    pub fn passed(&self) -> bool {
        self.failure.is_none()
    }
}
