//! What running a scenario gave: the contract between the runner and every reporter.
//! A check that did not hold is data here (`Failed`), not an `Err`.

use std::time::Duration;

use crate::scenario::Where;

/// Why a scenario did not pass.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum FailureKind {
    /// A check did not hold: the container did something other than expected.
    Failed,
    /// The scenario could not be carried out: engine error, time limit, interruption.
    Error,
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
    pub steps: Vec<StepOutcome>,
    pub failure: Option<Failure>,
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
