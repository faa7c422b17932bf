//! A container's log against `expect: { contains, not_contains }`.

use super::Mismatch;
use crate::scenario::plan::LogsStep;
use crate::text::excerpt;

pub fn check_logs(step: &LogsStep, log: &str) -> Vec<Mismatch> {
    let mut mismatches = Vec::new();
    let tail = || {
        let lines: Vec<&str> = log.lines().collect();
        excerpt(&lines[lines.len().saturating_sub(5)..].join("\n"), 400)
    };
    if let Some(text) = &step.contains
        && !log.contains(text.as_str())
    {
        mismatches.push(Mismatch::new(format!("log contains {text:?}"), format!("not found; log ends {}", tail())));
    }
    if let Some(text) = &step.not_contains
        && let Some(line) = log.lines().find(|l| l.contains(text.as_str()))
    {
        mismatches.push(Mismatch::new(format!("log without {text:?}"), format!("found in {}", excerpt(line, 300))));
    }
    mismatches
}
