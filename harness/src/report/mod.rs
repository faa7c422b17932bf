//! Outcomes in, text out: the failure message people read (console and JUnit share it) and the JUnit file.

pub mod console;
pub mod github;
pub mod json;
pub mod junit;
pub mod write;

use std::fmt::Write as _;

use crate::outcome::{FailureKind, ScenarioOutcome};
use crate::scenario::Where;

/// Container output made safe to print: ANSI escape sequences (colours, cursor moves) removed, other
/// control characters (NUL, a lone ESC) shown as escapes, so that a container cannot repaint the terminal
/// or hide text in a report.
/// Longest log line shown in full: a flood of 64 KiB lines must not make a report of megabytes.
pub const LOG_LINE_LIMIT: usize = 500;

/// A line of container output as shown on the console: printable, and cut after [`LOG_LINE_LIMIT`].
pub fn shown_log_line(line: &str) -> String {
    cut_long_line(&printable(line))
}

/// The line, cut after [`LOG_LINE_LIMIT`] characters with a note of how many were left out.
pub fn cut_long_line(line: &str) -> String {
    match line.char_indices().nth(LOG_LINE_LIMIT) {
        Some((cut, _)) => {
            let rest = line[cut..].chars().count();
            format!("{} [... {rest} more characters]", &line[..cut])
        }
        None => line.to_owned(),
    }
}

pub fn printable(line: &str) -> String {
    let mut out = String::with_capacity(line.len());
    let mut chars = line.chars().peekable();
    while let Some(c) = chars.next() {
        if c == '\u{1b}' && chars.peek() == Some(&'[') {
            chars.next();
            // A CSI sequence ends with a byte in @..~.
            for end in chars.by_ref() {
                if ('@'..='~').contains(&end) {
                    break;
                }
            }
        } else if c.is_control() && c != '\t' {
            out.push_str(&c.escape_unicode().to_string());
        } else {
            out.push(c);
        }
    }
    out
}

/// The whole story of a failed scenario: which step, where in the file, expected, actual, why, and the
/// last log lines of every container of the scenario.
pub fn render_failure(outcome: &ScenarioOutcome) -> String {
    let Some(failure) = &outcome.failure else { return String::new() };
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

    #[test]
    fn long_log_lines_are_cut() {
        let line = "x".repeat(super::LOG_LINE_LIMIT + 7);
        assert_eq!(super::shown_log_line(&line), format!("{} [... 7 more characters]", "x".repeat(500)));
        assert_eq!(super::shown_log_line("short"), "short");
    }

    #[test]
    fn printable_drops_ansi_and_escapes_controls() {
        assert_eq!(
            super::printable("\u{1b}[91mred\u{1b}[0m nul \u{0} esc \u{1b}x\ttab"),
            "red nul \\u{0} esc \\u{1b}x\ttab"
        );
    }
}
