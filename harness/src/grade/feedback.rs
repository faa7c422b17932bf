//! The student's feedback file (Markdown): each check with its points and, for each failure, what was
//! expected, what came back, why (the diagnosis), the teacher's hint, and the container's last log lines.
//! Hidden checks count in the score but say nothing about themselves.

use std::fmt::Write as _;

use super::gradebook::{CheckResult, FailureView, SubmissionGrade};
use crate::text::{markdown_line, printable};

pub fn to_markdown(assignment: &str, grade: &SubmissionGrade) -> String {
    let mut out = String::new();
    let _ = writeln!(out, "# Feedback for `{}`\n", inline(&grade.id));
    let _ = writeln!(out, "Assignment: `{}`\n", inline(assignment));
    let _ = writeln!(out, "**Score: {} / {}**\n", grade.score, grade.max);
    out.push_str("| check | result | points |\n|---|---|---|\n");
    let mut hidden = 0;
    for check in grade.checks.iter().filter(|c| c.graded) {
        if check.hidden {
            hidden += 1;
            let _ =
                writeln!(out, "| hidden check {hidden} | {} | {} / {} |", verdict(check), check.earned, check.points);
        } else {
            let _ =
                writeln!(out, "| {} | {} | {} / {} |", cell(&check.name), verdict(check), check.earned, check.points);
        }
    }
    out.push('\n');
    let failures: Vec<&CheckResult> = grade.checks.iter().filter(|c| !c.passed && !c.hidden).collect();
    if !failures.is_empty() || !grade.notes.is_empty() {
        out.push_str("## What went wrong\n\n");
    }
    let (blocked, failures): (Vec<&CheckResult>, Vec<&CheckResult>) =
        failures.into_iter().partition(|c| c.failure.as_ref().is_some_and(|f| f.blocked));
    // One cause behind several failures (a server on the wrong port fails every check after it) is told
    // once, with the checks it cost, instead of under each of them.
    let causes = shared_causes(&grade.notes, &failures);
    for cause in &causes {
        cause_block(&mut out, cause, &grade.notes, &failures);
    }
    let told = |diagnosis: &[String]| diagnosis.first().is_some_and(|d| causes.iter().any(|c| c == d));
    for note in grade.notes.iter().filter(|n| !told(&n.diagnosis)) {
        out.push_str("### Before the checks\n\n");
        failure_block(&mut out, note);
    }
    for check in failures.iter().filter(|c| !c.failure.as_ref().is_some_and(|f| told(&f.diagnosis))) {
        let _ = writeln!(out, "### {}{}\n", heading(&check.name), points_of(check));
        if let Some(feedback) = &check.feedback {
            let _ = writeln!(out, "> {}\n", feedback.trim().replace('\n', "\n> "));
        }
        if let Some(failure) = &check.failure {
            failure_block(&mut out, failure);
        }
    }
    if let Some(first) = blocked.first().and_then(|c| c.failure.as_ref()) {
        out.push_str("### Not checked\n\n");
        let names: Vec<String> = blocked.iter().map(|c| markdown_line(&c.name)).collect();
        let _ = writeln!(out, "{}: {}\n", names.join(", "), markdown_line(&first.actual));
    }
    if grade.checks.iter().any(|c| !c.passed) && !grade.logs.is_empty() {
        out.push_str("## Container logs (last lines)\n\n");
        for (container, lines) in &grade.logs {
            let _ = writeln!(out, "`{}`:\n", inline(container));
            code_block(&mut out, lines);
        }
    }
    out
}

fn points_of(check: &CheckResult) -> String {
    match check.points {
        0 if !check.graded => String::new(),
        1 => " (1 point)".to_owned(),
        n => format!(" ({n} points)"),
    }
}

/// The first diagnoses shared by two or more failures (notes and failed checks), in order of appearance.
fn shared_causes(notes: &[FailureView], failures: &[&CheckResult]) -> Vec<String> {
    let all: Vec<&String> = notes
        .iter()
        .filter_map(|n| n.diagnosis.first())
        .chain(failures.iter().filter_map(|c| c.failure.as_ref()?.diagnosis.first()))
        .collect();
    let mut causes: Vec<String> = Vec::new();
    for cause in &all {
        if all.iter().filter(|c| c == &cause).count() >= 2 && !causes.contains(cause) {
            causes.push((*cause).clone());
        }
    }
    causes
}

/// One cause, then every check it cost with what was expected and what came back.
fn cause_block(out: &mut String, cause: &str, notes: &[FailureView], failures: &[&CheckResult]) {
    let costs: Vec<&&CheckResult> = failures
        .iter()
        .filter(|c| c.failure.as_ref().and_then(|f| f.diagnosis.first()).is_some_and(|d| d == cause))
        .collect();
    let graded: Vec<&&&CheckResult> = costs.iter().filter(|c| c.graded).collect();
    let points: u32 = graded.iter().map(|c| c.points).sum();
    let _ = writeln!(out, "### {}\n", heading(cause));
    let _ = writeln!(
        out,
        "This one cause cost {} check{} ({points} point{}):\n",
        graded.len(),
        if graded.len() == 1 { "" } else { "s" },
        if points == 1 { "" } else { "s" }
    );
    let first_note = notes.iter().find(|n| n.diagnosis.first().is_some_and(|d| d == cause));
    if let Some(note) = first_note {
        let _ = writeln!(
            out,
            "- before the checks: expected {}; got {}",
            markdown_line(&note.expected),
            markdown_line(&note.actual)
        );
    }
    for check in costs {
        let Some(failure) = &check.failure else { continue };
        let _ = writeln!(
            out,
            "- **{}**{}: expected {}; got {}",
            markdown_line(&check.name),
            points_of(check),
            markdown_line(&failure.expected),
            markdown_line(&failure.actual)
        );
        if let Some(feedback) = &check.feedback {
            let _ = writeln!(out, "  > {}", feedback.trim().replace('\n', "\n  > "));
        }
    }
    // Any further explanation the failures had (the first line is the cause itself), said once.
    let mut more: Vec<&String> = Vec::new();
    for diagnosis in first_note
        .map(|n| &n.diagnosis)
        .into_iter()
        .chain(failures.iter().filter_map(|c| c.failure.as_ref().map(|f| &f.diagnosis)))
    {
        if diagnosis.first().is_some_and(|d| d == cause) {
            for why in diagnosis.iter().skip(1) {
                if !more.contains(&why) {
                    more.push(why);
                }
            }
        }
    }
    for why in more {
        let _ = writeln!(out, "- **why:** {}", markdown_line(why));
    }
    out.push('\n');
}

fn verdict(check: &CheckResult) -> &'static str {
    if check.passed { "passed" } else { "failed" }
}

fn failure_block(out: &mut String, failure: &FailureView) {
    let _ = writeln!(out, "- expected: {}", markdown_line(&failure.expected));
    let _ = writeln!(out, "- got: {}", markdown_line(&failure.actual));
    for why in &failure.diagnosis {
        let _ = writeln!(out, "- **why:** {}", markdown_line(why));
    }
    out.push('\n');
    if let Some(evidence) = &failure.evidence {
        code_block(out, evidence);
    }
}

/// A fenced block that the text cannot close early: the fence is longer than any backtick run inside.
fn code_block(out: &mut String, text: &str) {
    let text: Vec<String> = text.lines().map(printable).collect();
    let text = text.join("\n");
    let longest = text.split(|c| c != '`').map(str::len).max().unwrap_or(0);
    let fence = "`".repeat(longest.max(2) + 1);
    let _ = writeln!(out, "{fence}text\n{text}\n{fence}\n");
}

fn cell(text: &str) -> String {
    crate::text::markdown_line(text)
}

fn heading(text: &str) -> String {
    crate::text::markdown_line(text)
}

/// Text inside an inline code span.
fn inline(text: &str) -> String {
    printable(text).replace('`', "'")
}
