//! GitHub Actions (on when `GITHUB_ACTIONS=true`): one `::error` annotation per failed step, at its line
//! and column in the scenario file, so that the failure shows on the pull request's diff; and a Markdown
//! summary appended to `$GITHUB_STEP_SUMMARY`. Both are written when the run finishes, after libtest's
//! own output, so that no workflow command lands in the middle of a line.

use std::io::Write as _;
use std::path::{Path, PathBuf};

use crate::outcome::events::{Event, ReportError, Reporter};
use crate::outcome::{Failure, FailureKind, ScenarioOutcome, StepStatus};
use crate::text::{html_escape, markdown_line};

pub struct GithubReporter {
    /// Paths in annotations are relative to the checkout (`GITHUB_WORKSPACE`), as GitHub expects.
    workspace: Option<PathBuf>,
    summary: Option<PathBuf>,
    outcomes: Vec<ScenarioOutcome>,
    cancelled: Option<String>,
}

impl GithubReporter {
    /// The reporter when running under GitHub Actions, else `None`.
    pub fn from_environment() -> Option<GithubReporter> {
        (std::env::var("GITHUB_ACTIONS").as_deref() == Ok("true")).then(|| GithubReporter {
            workspace: std::env::var_os("GITHUB_WORKSPACE").map(PathBuf::from),
            summary: std::env::var_os("GITHUB_STEP_SUMMARY").filter(|s| !s.is_empty()).map(PathBuf::from),
            outcomes: Vec::new(),
            cancelled: None,
        })
    }

    fn file_for(&self, file: &Path) -> String {
        let absolute = std::path::absolute(file).unwrap_or_else(|_| file.to_path_buf());
        let relative = self.workspace.as_ref().and_then(|w| absolute.strip_prefix(w).ok()).unwrap_or(file);
        relative.display().to_string()
    }

    /// Every annotation of the run, in test name order.
    pub fn annotations(&self) -> Vec<String> {
        let mut lines = Vec::new();
        for outcome in &self.outcomes {
            let mut annotated = Vec::new();
            for step in outcome.steps.iter().filter(|s| s.status == StepStatus::Failed) {
                if let Some(failure) = &step.failure {
                    lines.push(self.annotation(outcome, failure));
                    annotated.push(failure.at.clone());
                }
            }
            // A build, a container that never became ready, a time limit: not a step of its own.
            let builds = outcome.builds.iter().filter_map(|b| b.failure.as_ref());
            for failure in builds.chain(&outcome.setup).chain(&outcome.scenario_failure) {
                if !annotated.contains(&failure.at) {
                    lines.push(self.annotation(outcome, failure));
                    annotated.push(failure.at.clone());
                }
            }
        }
        lines
    }

    fn annotation(&self, outcome: &ScenarioOutcome, failure: &Failure) -> String {
        let mut properties = vec![format!("file={}", property(&self.file_for(&failure.at.file)))];
        if let Some(loc) = failure.at.loc {
            properties.push(format!("line={}", loc.line));
            properties.push(format!("col={}", loc.column));
        }
        properties.push(format!("title={}", property(&format!("{}: {}", outcome.test_name, failure.what))));
        let mut message = format!("expected: {}\nactual:   {}", failure.expected, failure.actual);
        for why in &failure.diagnosis {
            message.push_str(&format!("\nwhy:      {why}"));
        }
        // Container output may hold control characters that would end or forge a workflow command.
        let message: Vec<String> = message.lines().map(crate::text::printable).collect();
        format!("::error {}::{}", properties.join(","), data(&message.join("\n")))
    }

    /// The Markdown for `$GITHUB_STEP_SUMMARY`.
    pub fn summary_markdown(&self) -> String {
        let passed = self.outcomes.iter().filter(|o| o.passed()).count();
        let failed = self.outcomes.len() - passed;
        let mut out = format!("### seatrial: {passed} passed, {failed} failed\n\n");
        if let Some(reason) = &self.cancelled {
            out.push_str(&format!("The run was {reason}.\n\n"));
        }
        out.push_str("| scenario | result | time |\n|---|---|---|\n");
        for outcome in &self.outcomes {
            let result = match outcome.failure() {
                None => "passed".to_owned(),
                Some(f) => format!("{} at {}", if f.kind == FailureKind::Error { "error" } else { "failed" }, f.what),
            };
            out.push_str(&format!(
                "| `{}` | {} | {:.1} s |\n",
                markdown_line(&outcome.test_name),
                markdown_line(&result),
                outcome.duration.as_secs_f64()
            ));
        }
        for outcome in self.outcomes.iter().filter(|o| !o.passed()) {
            out.push_str(&format!("\n<details><summary>{}</summary>\n\n```text\n", html_escape(&outcome.test_name)));
            out.push_str(&super::render_failure(outcome).replace("```", "'''"));
            out.push_str("\n```\n\n</details>\n");
        }
        out
    }
}

/// A workflow command's message: `%`, CR and LF escaped.
fn data(text: &str) -> String {
    text.replace('%', "%25").replace('\r', "%0D").replace('\n', "%0A")
}

/// A workflow command's property: also `:` and `,`.
fn property(text: &str) -> String {
    data(text).replace(':', "%3A").replace(',', "%2C")
}

impl Reporter for GithubReporter {
    fn handle(&mut self, event: &Event<'_>) -> Result<(), ReportError> {
        match event {
            Event::ScenarioFinished { outcome } => self.outcomes.push((*outcome).clone()),
            Event::Cancelled { reason } => self.cancelled = Some((*reason).to_owned()),
            Event::RunFinished { .. } => {
                self.outcomes.sort_by(|a, b| a.test_name.cmp(&b.test_name));
                let mut stdout = std::io::stdout().lock();
                for line in self.annotations() {
                    let _ = writeln!(stdout, "{line}");
                }
                if let Some(path) = &self.summary {
                    let appended = std::fs::OpenOptions::new()
                        .create(true)
                        .append(true)
                        .open(path)
                        .and_then(|mut file| file.write_all(self.summary_markdown().as_bytes()));
                    appended.map_err(|e| ReportError(format!("cannot append to {}: {e}", path.display())))?;
                }
            }
            Event::RunStarted { .. } | Event::ScenarioStarted { .. } | Event::Phase { .. } | Event::Tick => {}
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn escapes_workflow_commands() {
        assert_eq!(data("50%\nnext\r"), "50%25%0Anext%0D");
        assert_eq!(property("a:b,c"), "a%3Ab%2Cc");
    }
}
