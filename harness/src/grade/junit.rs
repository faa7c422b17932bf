//! A graded submission as JUnit: one test case per graded check, so that a CI page or an LMS shows the
//! rubric line by line. A failure's message gives the points lost; hidden checks say only that.

use quick_junit::{NonSuccessKind, Report, TestCase, TestCaseStatus, TestSuite};

use super::gradebook::{CheckResult, SubmissionGrade};
use crate::report::junit::{JunitError, keep_schema_attributes, xml_safe};

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
        let mut description = format!("expected: {}\ngot: {}\n", note.expected, note.actual);
        for why in &note.diagnosis {
            description.push_str(&format!("why: {why}\n"));
        }
        status.set_description(xml_safe(&description));
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
        let logs: String = grade
            .logs
            .iter()
            .map(|(container, lines)| {
                let lines: Vec<String> = lines.lines().map(crate::report::cut_long_line).collect();
                format!("== {container} ==\n{}\n", lines.join("\n"))
            })
            .collect();
        suite.set_system_out(xml_safe(&logs));
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
    let mut description = format!("expected: {}\ngot: {}\n", failure.expected, failure.actual);
    for why in &failure.diagnosis {
        description.push_str(&format!("why: {why}\n"));
    }
    if let Some(feedback) = &check.feedback {
        description.push_str(&format!("hint: {}\n", feedback.trim()));
    }
    if let Some(evidence) = &failure.evidence {
        description.push_str(&format!("\n{evidence}\n"));
    }
    status.set_description(xml_safe(&description));
    status
}
