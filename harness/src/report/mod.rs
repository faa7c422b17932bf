//! Outcomes in, text out: the failure message people read (console and JUnit share it) and the JUnit file.

pub mod console;
pub mod github;
pub mod json;
pub mod junit;
pub mod timings;
pub mod write;

use std::fmt::Write as _;

use crate::outcome::{FailureKind, ScenarioOutcome};
use crate::scenario::Where;
use crate::text::{printable, shown_log_line};

/// The whole story of a failed scenario: which step, where in the file, expected, actual, why, and the
/// last log lines of every container of the scenario.
pub fn render_failure(outcome: &ScenarioOutcome) -> String {
    let Some(failure) = outcome.failure() else { return String::new() };
    let mut out = String::new();
    let verb = match failure.kind {
        FailureKind::Failed | FailureKind::Blocked => "failed",
        FailureKind::Error => "could not be carried out",
    };
    let _ = writeln!(out, "scenario `{}`: {} {verb}", outcome.name, failure.what);
    let _ = writeln!(out, "  --> {}", failure.at);
    out.push_str(&source_excerpt(&failure.at));
    let _ = writeln!(out, "  expected: {}", failure.expected);
    let _ = writeln!(out, "  actual:   {}", failure.actual);
    for why in &failure.diagnosis {
        let _ = writeln!(out, "  why:      {why}");
    }
    if let Some(evidence) = &failure.evidence {
        let _ = writeln!(out, "  output:");
        for line in evidence.lines() {
            let _ = writeln!(out, "    | {}", shown_log_line(line));
        }
    }
    for tail in &outcome.logs {
        let lines: Vec<&str> = tail.lines.lines().collect();
        if lines.is_empty() {
            let _ = writeln!(out, "  log of `{}`: (empty)", tail.container);
            continue;
        }
        let _ = writeln!(out, "  log of `{}` (last {} lines):", tail.container, lines.len());
        for line in lines {
            let _ = writeln!(out, "    | {}", shown_log_line(line));
        }
    }
    for note in &outcome.notes {
        let _ = writeln!(out, "  note:     {}", printable(note));
    }
    if !outcome.kept.is_empty() {
        let _ = writeln!(out, "  kept for debugging (--keep):");
        for line in &outcome.kept {
            let _ = writeln!(out, "    {line}");
        }
    }
    out
}

/// The line of the scenario file at `at`, with a caret under what failed, as a compiler shows an error:
///
/// ```text
///    |
/// 19 |       - http: { port: 8000, path: /notes, expect: { body_contains: hello } }
///    |         ^^^^
/// ```
///
/// Empty when the file cannot be read any more or the place has no line.
pub fn source_excerpt(at: &Where) -> String {
    let Some(loc) = at.loc else { return String::new() };
    let Ok(text) = std::fs::read_to_string(&at.file) else { return String::new() };
    let Some((line, token)) = crate::scenario::error::line_and_token(&text, loc) else { return String::new() };
    let number = loc.line.to_string();
    let gutter = " ".repeat(number.len());
    let shown = printable(line.trim_end());
    let indent: String = line[..token.start].chars().map(|c| if c == '\t' { '\t' } else { ' ' }).collect();
    let carets = "^".repeat(line[token].chars().count().max(1));
    format!("  {gutter} |\n  {number} | {shown}\n  {gutter} | {indent}{carets}\n")
}

#[cfg(test)]
mod tests {
    #[test]
    fn the_failing_line_is_shown_with_a_caret() {
        let dir = tempfile::tempdir().unwrap();
        let file = dir.path().join("s.yaml");
        std::fs::write(&file, "steps:\n  - http: { port: 80 }\n").unwrap();
        let at = super::Where { file: file.into(), loc: Some(crate::scenario::Loc { line: 2, column: 5 }) };
        assert_eq!(super::source_excerpt(&at), "    |\n  2 |   - http: { port: 80 }\n    |     ^^^^\n");
    }
}
