//! A graded submission as JUnit: one test case per graded check, so that a CI page or an LMS shows the
//! rubric line by line. A failure's message gives the points lost; hidden checks say only that.

use quick_junit::{NonSuccessKind, Report, TestCase, TestCaseStatus, TestSuite};

use super::gradebook::{CheckResult, FailureView, SubmissionGrade};
use crate::report::junit::{JunitError, keep_schema_attributes, logs_text};
use crate::text::xml_safe;

pub fn to_xml(grade: &SubmissionGrade) -> Result<String, JunitError> {
    let mut report = Report::new("seatrial grade");
    let total = std::time::Duration::from_secs_f64(grade.seconds.max(0.0));
    report.set_time(total);
    let mut suite = TestSuite::new(xml_safe(&grade.id));
    suite.set_time(total);
    let mut hidden = 0;
    for check in grade.checks.iter().filter(|c| c.graded) {
        let name = if check.hidden {
            hidden += 1;
            format!("hidden check {hidden}")
        } else {
            check.name.clone()
        };
        let status = if check.passed { TestCaseStatus::success() } else { failed(check) };
        let mut case = TestCase::new(xml_safe(&name), status);
        case.set_classname(xml_safe(&grade.id));
        suite.add_test_case(case);
    }
    // What went wrong outside the checks (a container that never became ready) explains their failures.
    for (i, note) in grade.notes.iter().enumerate() {
        let mut status = TestCaseStatus::non_success(NonSuccessKind::Error);
        status.set_type("setup failed");
        status.set_message(xml_safe(&format!("expected {}; got {}", note.expected, note.actual)));
        status.set_description(xml_safe(&describe(note)));
        let name = if grade.notes.len() == 1 {
            "before the checks".to_owned()
        } else {
            format!("before the checks {}", i + 1)
        };
        let mut case = TestCase::new(name, status);
        case.set_classname(xml_safe(&grade.id));
        suite.add_test_case(case);
    }
    if grade.checks.iter().any(|c| !c.passed) && !grade.logs.is_empty() {
        suite.set_system_out(logs_text(
            grade.logs.iter().map(|(container, lines)| (container.as_str(), lines.as_str())),
        ));
    }
    report.add_test_suite(suite);
    let xml = report.to_string().map_err(|e| JunitError::Serialize(e.to_string()))?;
    Ok(keep_schema_attributes(&xml))
}

fn failed(check: &CheckResult) -> TestCaseStatus {
    let mut status = TestCaseStatus::non_success(NonSuccessKind::Failure);
    let lost = format!("{} of {} point(s)", check.earned, check.points);
    status.set_type("check failed");
    if check.hidden {
        status.set_message(format!("{lost} (hidden check)"));
        return status;
    }
    let Some(failure) = &check.failure else {
        status.set_message(lost);
        return status;
    };
    status.set_message(xml_safe(&format!("{lost}: expected {}; got {}", failure.expected, failure.actual)));
    let mut description = describe(failure);
    if let Some(feedback) = &check.feedback {
        description.push_str(&format!("hint: {}\n", feedback.trim()));
    }
    if let Some(evidence) = &failure.evidence {
        description.push_str(&format!("\n{evidence}\n"));
    }
    status.set_description(xml_safe(&description));
    status
}

/// What was expected, what came back and why, a line each.
fn describe(failure: &FailureView) -> String {
    let mut text = format!("expected: {}\ngot: {}\n", failure.expected, failure.actual);
    for why in &failure.diagnosis {
        text.push_str(&format!("why: {why}\n"));
    }
    text
}
