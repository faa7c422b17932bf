//! The JUnit file: one test case per scenario, written atomically, valid against the Jenkins xUnit
//! schema (`jenkins-xunit-junit-10.xsd`) whatever the containers printed.

use std::path::Path;
use std::time::Duration;

use quick_junit::{NonSuccessKind, Report, TestCase, TestCaseStatus, TestSuite};

use super::render_failure;
use crate::outcome::events::{Event, ReportError, Reporter};
use crate::outcome::{FailureKind, ScenarioOutcome};
use crate::text::xml_safe;

/// Why the report could not be written.
#[derive(Debug, thiserror::Error)]
pub enum JunitError {
    #[error("cannot serialise the JUnit report: {0}")]
    Serialize(String),
    #[error("cannot write the JUnit report {path}: {message}")]
    Write { path: String, message: String },
}

/// A scenario that was running when the run was interrupted.
#[derive(Debug, Clone)]
pub struct Interrupted {
    pub test_name: String,
    pub reason: String,
}

fn suite_name(test_name: &str) -> &str {
    test_name.split_once("::").map_or("seatrial", |(file, _)| file)
}

fn suite_for<'a>(suites: &'a mut Vec<TestSuite>, name: &str) -> &'a mut TestSuite {
    match suites.iter().position(|s| s.name.as_str() == name) {
        Some(i) => &mut suites[i],
        None => {
            suites.push(TestSuite::new(name));
            let last = suites.len() - 1;
            &mut suites[last]
        }
    }
}

/// Containers' last log lines as a `system-out` block: `== name ==` and each line cut when very long.
pub(crate) fn logs_text<'a>(logs: impl Iterator<Item = (&'a str, &'a str)>) -> String {
    let text: String = logs
        .map(|(container, lines)| {
            let lines: Vec<String> = lines.lines().map(crate::text::cut_long_line).collect();
            format!("== {container} ==\n{}\n", lines.join("\n"))
        })
        .collect();
    xml_safe(&text)
}

/// Builds the report's XML: one suite per scenario file.
pub fn to_xml(
    outcomes: &[ScenarioOutcome],
    interrupted: &[Interrupted],
    total: Duration,
) -> Result<String, JunitError> {
    let mut report = Report::new("seatrial");
    report.set_time(total);
    let mut suites: Vec<TestSuite> = Vec::new();
    for outcome in outcomes {
        let status = match outcome.failure() {
            None => TestCaseStatus::success(),
            Some(failure) => {
                let kind = match failure.kind {
                    FailureKind::Failed | FailureKind::Blocked => NonSuccessKind::Failure,
                    FailureKind::Error => NonSuccessKind::Error,
                };
                let mut status = TestCaseStatus::non_success(kind);
                status.set_message(xml_safe(&format!(
                    "{}: expected {}; actual {}",
                    failure.what, failure.expected, failure.actual
                )));
                status.set_type(match failure.kind {
                    FailureKind::Failed | FailureKind::Blocked => "check failed",
                    FailureKind::Error => "error",
                });
                status.set_description(xml_safe(&render_failure(outcome)));
                status
            }
        };
        let mut case = TestCase::new(xml_safe(&outcome.name), status);
        case.set_classname(xml_safe(suite_name(&outcome.test_name)));
        case.set_time(outcome.duration);
        let mut out: String = outcome.notes.iter().map(|note| format!("note: {}\n", xml_safe(note))).collect();
        if !outcome.logs.is_empty() {
            out.push_str(&logs_text(outcome.logs.iter().map(|t| (t.container.as_str(), t.lines.as_str()))));
        }
        if !out.is_empty() {
            case.set_system_out(out);
        }
        suite_for(&mut suites, suite_name(&outcome.test_name)).add_test_case(case);
    }
    for stopped in interrupted {
        let mut status = TestCaseStatus::non_success(NonSuccessKind::Error);
        status.set_message(xml_safe(&stopped.reason));
        status.set_type("interrupted");
        let name = stopped.test_name.split_once("::").map_or(stopped.test_name.as_str(), |(_, n)| n);
        let mut case = TestCase::new(xml_safe(name), status);
        case.set_classname(xml_safe(suite_name(&stopped.test_name)));
        suite_for(&mut suites, suite_name(&stopped.test_name)).add_test_case(case);
    }
    for suite in &mut suites {
        let time = suite.test_cases.iter().filter_map(|c| c.time).sum();
        suite.set_time(time);
    }
    report.add_test_suites(suites);
    let xml = report.to_string().map_err(|e| JunitError::Serialize(e.to_string()))?;
    Ok(keep_schema_attributes(&xml))
}

/// The Jenkins schema allows only name, time, tests, failures and errors on `<testsuites>`; quick-junit
/// also writes `skipped` (and sometimes `uuid`, `timestamp`), so the root tag is rewritten.
pub(crate) fn keep_schema_attributes(xml: &str) -> String {
    const ALLOWED: [&str; 5] = ["name", "time", "tests", "failures", "errors"];
    let Some(start) = xml.find("<testsuites") else { return xml.to_owned() };
    let Some(end) = xml[start..].find('>').map(|e| start + e) else { return xml.to_owned() };
    let tag = &xml[start + "<testsuites".len()..end];
    let self_closing = tag.ends_with('/');
    let mut kept = String::from("<testsuites");
    // quick-junit escapes `"` inside values, so each attribute is `name="value"` with no `"` inside.
    for attribute in tag.trim_end_matches('/').split('"').collect::<Vec<_>>().chunks(2) {
        if let [name_part, value] = attribute {
            let name = name_part.trim().trim_end_matches('=').trim();
            if ALLOWED.contains(&name) {
                kept.push_str(&format!(" {name}=\"{value}\""));
            }
        }
    }
    if self_closing {
        kept.push('/');
    }
    format!("{}{kept}{}", &xml[..start], &xml[end..])
}

/// Writes the report atomically (see [`super::write`]).
pub fn write(path: &Path, xml: &str) -> Result<(), JunitError> {
    super::write::write_atomically(path, xml.as_bytes())
        .map_err(|e| JunitError::Write { path: path.display().to_string(), message: e.to_string() })
}

/// The JUnit file as a reporter: collects every finished scenario (and, on cancellation, those cut
/// short) and writes the file when the run finishes.
pub struct JunitReporter {
    path: std::path::PathBuf,
    outcomes: Vec<ScenarioOutcome>,
    running: Vec<String>,
    interrupted: Vec<Interrupted>,
}

impl JunitReporter {
    pub fn new(path: &Path) -> JunitReporter {
        JunitReporter { path: path.to_path_buf(), outcomes: Vec::new(), running: Vec::new(), interrupted: Vec::new() }
    }
}

impl Reporter for JunitReporter {
    fn handle(&mut self, event: &Event<'_>) -> Result<(), ReportError> {
        match event {
            Event::ScenarioStarted { test_name, .. } => self.running.push((*test_name).to_owned()),
            Event::ScenarioFinished { outcome } => {
                self.running.retain(|name| name != &outcome.test_name);
                self.outcomes.push((*outcome).clone());
            }
            Event::Cancelled { reason } => {
                for test_name in self.running.drain(..) {
                    self.interrupted.push(Interrupted { test_name, reason: (*reason).to_owned() });
                }
            }
            Event::RunFinished { duration, .. } => {
                self.outcomes.sort_by(|a, b| a.test_name.cmp(&b.test_name));
                let written =
                    to_xml(&self.outcomes, &self.interrupted, *duration).and_then(|xml| write(&self.path, &xml));
                written.map_err(|e| ReportError(e.to_string()))?;
                eprintln!("JUnit report: {}", self.path.display());
            }
            Event::RunStarted { .. } | Event::Phase { .. } | Event::Tick => {}
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::outcome::{Failure, LogTail};
    use crate::scenario::Where;
    use std::sync::Arc;

    fn outcome(failure: Option<Failure>) -> ScenarioOutcome {
        ScenarioOutcome {
            name: "notes survive".into(),
            test_name: "django-app::notes survive".into(),
            at: Where { file: Arc::from(Path::new("s.yaml")), loc: None },
            builds: vec![],
            steps: vec![],
            first_failure: failure.is_some().then_some(crate::outcome::FailureSite::Scenario),
            scenario_failure: failure,
            setup: vec![],
            logs: vec![LogTail {
                container: "web".into(),
                lines: "a\u{0}b \u{1b}[31mred\u{1b}[0m \u{FFFF}\u{FFFE} ]]> <&>\n".into(),
            }],
            duration: Duration::from_millis(1234),
            kept: vec![],
            notes: vec![],
        }
    }

    #[test]
    fn root_keeps_only_schema_attributes_and_hostile_text_is_removed() {
        let failed = Failure {
            kind: FailureKind::Failed,
            at: Where { file: Arc::from(Path::new("s.yaml")), loc: None },
            what: "step 1".into(),
            expected: "status 200".into(),
            actual: "status 500 \u{FFFF}".into(),
            diagnosis: vec![],
            evidence: None,
        };
        let xml = to_xml(&[outcome(Some(failed)), outcome(None)], &[], Duration::from_secs(2)).unwrap();
        let root = xml.lines().find(|l| l.contains("<testsuites")).unwrap();
        assert!(!root.contains("skipped"), "{root}");
        assert!(root.contains("tests=\"2\""), "{root}");
        assert!(!xml.contains('\u{FFFF}') && !xml.contains('\u{FFFE}') && !xml.contains('\u{0}'));
        assert!(!xml.contains("]]>"), "CDATA end must be escaped: {xml}");
    }
}
