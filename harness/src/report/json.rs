//! `--report json FILE`: the whole run as data, for tools (dashboards, bots, a teacher's own scripts):
//! every scenario, image build, step, expectation, actual, diagnosis and log tail. Its JSON Schema is
//! generated from these types (`seatrial schema --report`), committed as `seatrial-report.schema.json`.

use std::path::{Path, PathBuf};

use schemars::JsonSchema;
use serde::Serialize;

use crate::outcome::events::{Event, ReportError, Reporter};
use crate::outcome::{Failure, FailureKind, ScenarioOutcome, StepStatus};
use crate::scenario::Where;

/// The version of this format; raised when a field changes meaning or goes away.
pub const FORMAT_VERSION: u32 = 1;

/// A seatrial run.
#[derive(Debug, Serialize, JsonSchema)]
pub struct JsonReport {
    /// The version of this format.
    pub format_version: u32,
    /// seatrial's version.
    pub seatrial: String,
    /// The run's id: every resource the run made carries the label `org.seatrial.run=<run_id>`.
    pub run_id: String,
    /// The run's wall time.
    pub duration_seconds: f64,
    /// Why the container engine stopped answering during the run, if it did.
    pub engine_lost: Option<String>,
    /// Why the run was cut short (`interrupted by SIGINT`), if it was.
    pub cancelled: Option<String>,
    pub summary: JsonSummary,
    /// Every scenario that ran or was cut short, by test name.
    pub scenarios: Vec<JsonScenario>,
}

/// How many scenarios ended how.
#[derive(Debug, Default, Serialize, JsonSchema)]
pub struct JsonSummary {
    pub passed: usize,
    /// A check did not hold.
    pub failed: usize,
    /// The scenario could not be carried out (engine error, time limit).
    pub errors: usize,
    /// Cut short by a signal.
    pub interrupted: usize,
}

/// How a scenario, build or step ended.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, JsonSchema)]
#[serde(rename_all = "snake_case")]
pub enum JsonStatus {
    Passed,
    /// A check did not hold.
    Failed,
    /// It could not be carried out.
    Error,
    /// When grading: it could not run because something it needs failed first.
    Blocked,
    /// It did not run: an earlier step failed.
    NotRun,
    /// Cut short by a signal.
    Interrupted,
}

/// A place in a scenario file.
#[derive(Debug, Serialize, JsonSchema)]
pub struct JsonPlace {
    /// The scenario file, as it was named on the command line.
    pub file: PathBuf,
    /// 1-based; absent where the place is the whole file.
    pub line: Option<u32>,
    pub column: Option<u32>,
}

/// One scenario: a test case.
#[derive(Debug, Serialize, JsonSchema)]
pub struct JsonScenario {
    pub name: String,
    /// `file-stem::name`, as libtest filters and JUnit name it.
    pub test_name: String,
    pub at: JsonPlace,
    pub status: JsonStatus,
    pub duration_seconds: f64,
    /// The images of `images:` it used.
    pub builds: Vec<JsonBuild>,
    pub steps: Vec<JsonStep>,
    /// The first thing that went wrong.
    pub failure: Option<JsonFailure>,
    /// Problems outside the steps: a container that could not be made or never became ready.
    pub setup: Vec<JsonFailure>,
    /// A failure of the scenario as a whole (its time limit, a lost engine), which no step carries.
    pub scenario_failure: Option<JsonFailure>,
    /// The last lines of each container's log, when the scenario did not pass.
    pub logs: Vec<JsonLogTail>,
    /// With `--keep`: how to reach the resources left for debugging.
    pub kept: Vec<String>,
    /// What seatrial says besides the checks: the compose version, what it changed in a compose stack's
    /// copy (ports, fixed names), compose's own warnings.
    pub notes: Vec<String>,
}

#[derive(Debug, Serialize, JsonSchema)]
pub struct JsonBuild {
    pub image: String,
    pub status: JsonStatus,
    pub failure: Option<JsonFailure>,
}

#[derive(Debug, Serialize, JsonSchema)]
pub struct JsonStep {
    /// One line: `http GET web:8000/notes`.
    pub summary: String,
    /// The check's name (its `name:`, else the summary) and points, when grading.
    pub name: String,
    pub points: u32,
    pub at: JsonPlace,
    pub status: JsonStatus,
    pub duration_seconds: f64,
    pub failure: Option<JsonFailure>,
}

/// What did not hold, with the evidence.
#[derive(Debug, Serialize, JsonSchema)]
pub struct JsonFailure {
    pub status: JsonStatus,
    /// What was being done: `step 2 of 5 (http GET web:8000/notes)`.
    pub what: String,
    pub at: JsonPlace,
    pub expected: String,
    pub actual: String,
    /// Why it happened, as seatrial found out from the container.
    pub diagnosis: Vec<String>,
    /// Supporting output, such as the tail of a build log.
    pub evidence: Option<String>,
}

#[derive(Debug, Serialize, JsonSchema)]
pub struct JsonLogTail {
    pub container: String,
    pub lines: String,
}

fn place(at: &Where) -> JsonPlace {
    JsonPlace { file: at.file.to_path_buf(), line: at.loc.map(|l| l.line), column: at.loc.map(|l| l.column) }
}

fn failure_status(kind: &FailureKind) -> JsonStatus {
    match kind {
        FailureKind::Failed => JsonStatus::Failed,
        FailureKind::Error => JsonStatus::Error,
        FailureKind::Blocked => JsonStatus::Blocked,
    }
}

fn failure(f: &Failure) -> JsonFailure {
    JsonFailure {
        status: failure_status(&f.kind),
        what: f.what.clone(),
        at: place(&f.at),
        expected: f.expected.clone(),
        actual: f.actual.clone(),
        diagnosis: f.diagnosis.clone(),
        evidence: f.evidence.clone(),
    }
}

/// One scenario's outcome as data.
pub fn scenario(outcome: &ScenarioOutcome) -> JsonScenario {
    JsonScenario {
        name: outcome.name.clone(),
        test_name: outcome.test_name.clone(),
        at: place(&outcome.at),
        status: outcome.failure().map_or(JsonStatus::Passed, |f| failure_status(&f.kind)),
        duration_seconds: outcome.duration.as_secs_f64(),
        builds: outcome
            .builds
            .iter()
            .map(|b| JsonBuild {
                image: b.image.clone(),
                status: b.failure.as_ref().map_or(JsonStatus::Passed, |f| failure_status(&f.kind)),
                failure: b.failure.as_ref().map(failure),
            })
            .collect(),
        steps: outcome
            .steps
            .iter()
            .map(|s| JsonStep {
                summary: s.summary.clone(),
                name: s.grading.name.clone(),
                points: s.grading.points,
                at: place(&s.at),
                status: match (&s.status, &s.failure) {
                    (StepStatus::Passed, _) => JsonStatus::Passed,
                    (StepStatus::NotRun, _) => JsonStatus::NotRun,
                    (StepStatus::Failed, Some(f)) => failure_status(&f.kind),
                    (StepStatus::Failed, None) => JsonStatus::Failed,
                },
                duration_seconds: s.duration.as_secs_f64(),
                failure: s.failure.as_ref().map(failure),
            })
            .collect(),
        failure: outcome.failure().map(failure),
        setup: outcome.setup.iter().map(failure).collect(),
        scenario_failure: outcome.scenario_failure.as_ref().map(failure),
        logs: outcome
            .logs
            .iter()
            .map(|l| JsonLogTail { container: l.container.clone(), lines: l.lines.clone() })
            .collect(),
        kept: outcome.kept.clone(),
        notes: outcome.notes.clone(),
    }
}

/// The JSON report as a reporter: collects scenarios as they finish, writes the file when the run does.
pub struct JsonReporter {
    path: PathBuf,
    run_id: String,
    /// Started and not finished, with where each is written.
    running: Vec<(String, JsonPlace)>,
    scenarios: Vec<JsonScenario>,
    cancelled: Option<String>,
}

impl JsonReporter {
    pub fn new(path: &Path) -> JsonReporter {
        JsonReporter {
            path: path.to_path_buf(),
            run_id: String::new(),
            running: Vec::new(),
            scenarios: Vec::new(),
            cancelled: None,
        }
    }

    fn report(&mut self, duration: std::time::Duration, engine_lost: Option<&str>) -> JsonReport {
        let mut scenarios = std::mem::take(&mut self.scenarios);
        scenarios.sort_by(|a, b| a.test_name.cmp(&b.test_name));
        let mut summary = JsonSummary::default();
        for s in &scenarios {
            match s.status {
                JsonStatus::Passed => summary.passed += 1,
                JsonStatus::Failed | JsonStatus::Blocked => summary.failed += 1,
                JsonStatus::Interrupted => summary.interrupted += 1,
                JsonStatus::Error | JsonStatus::NotRun => summary.errors += 1,
            }
        }
        JsonReport {
            format_version: FORMAT_VERSION,
            seatrial: env!("CARGO_PKG_VERSION").to_owned(),
            run_id: self.run_id.clone(),
            duration_seconds: duration.as_secs_f64(),
            engine_lost: engine_lost.map(str::to_owned),
            cancelled: self.cancelled.clone(),
            summary,
            scenarios,
        }
    }
}

impl Reporter for JsonReporter {
    fn handle(&mut self, event: &Event<'_>) -> Result<(), ReportError> {
        match event {
            Event::RunStarted { run_id, .. } => self.run_id = (*run_id).to_owned(),
            Event::ScenarioStarted { test_name, at } => self.running.push(((*test_name).to_owned(), place(at))),
            Event::ScenarioFinished { outcome } => {
                self.running.retain(|(name, _)| name != &outcome.test_name);
                self.scenarios.push(scenario(outcome));
            }
            Event::Cancelled { reason } => {
                self.cancelled = Some((*reason).to_owned());
                for (test_name, at) in std::mem::take(&mut self.running) {
                    self.scenarios.push(cut_short(test_name, at));
                }
            }
            Event::RunFinished { duration, engine_lost } => {
                let report = self.report(*duration, *engine_lost);
                let text = serde_json::to_string_pretty(&report).map_err(|e| ReportError(e.to_string()))?;
                super::write::write_atomically(&self.path, text.as_bytes())
                    .map_err(|e| ReportError(format!("cannot write the JSON report {}: {e}", self.path.display())))?;
                eprintln!("JSON report: {}", self.path.display());
            }
            Event::Phase { .. } | Event::Tick => {}
        }
        Ok(())
    }
}

/// A scenario cut short by a signal: only its name is known for sure.
fn cut_short(test_name: String, at: JsonPlace) -> JsonScenario {
    let name = test_name.split_once("::").map_or(test_name.as_str(), |(_, n)| n).to_owned();
    JsonScenario {
        name,
        at,
        test_name,
        status: JsonStatus::Interrupted,
        duration_seconds: 0.0,
        builds: Vec::new(),
        steps: Vec::new(),
        failure: None,
        setup: Vec::new(),
        scenario_failure: None,
        logs: Vec::new(),
        kept: Vec::new(),
        notes: Vec::new(),
    }
}

/// The JSON Schema of the report, generated from the same types that write it.
pub fn schema_json() -> String {
    let mut schema = schemars::schema_for!(JsonReport);
    schema.insert("$id".into(), "https://github.com/seatrial/seatrial/raw/main/seatrial-report.schema.json".into());
    serde_json::to_string_pretty(&schema).unwrap_or_default()
}
