//! A command's exit code and output against `expect:`.

use super::Mismatch;
use crate::engine::container::ExecOutput;
use crate::scenario::plan::ExecStep;
use crate::text::excerpt;

pub fn check_exec(step: &ExecStep, output: &ExecOutput) -> Vec<Mismatch> {
    let mut mismatches = Vec::new();
    let stdout_missed = step.stdout_contains.as_ref().is_some_and(|t| !output.stdout.contains(t.as_str()));
    let stderr_missed = step.stderr_contains.as_ref().is_some_and(|t| !output.stderr.contains(t.as_str()));
    if output.exit_code != step.exit {
        let mut actual = format!("exit code {}", output.exit_code);
        // The output explains an unexpected exit code: each stream that no mismatch below shows already
        // (a missing stdout line says nothing of the error on stderr).
        if !stdout_missed {
            actual.push_str(&format!(", stdout {}", excerpt(&output.stdout, 300)));
        }
        if !stderr_missed {
            actual.push_str(&format!(", stderr {}", excerpt(&output.stderr, 300)));
        }
        mismatches.push(Mismatch::new(format!("exit code {}", step.exit), actual));
    }
    if let Some(text) = step.stdout_contains.as_ref().filter(|_| stdout_missed) {
        mismatches.push(Mismatch::new(
            format!("stdout contains {text:?}"),
            format!("stdout {}", excerpt(&output.stdout, 300)),
        ));
    }
    if let Some(text) = step.stderr_contains.as_ref().filter(|_| stderr_missed) {
        mismatches.push(Mismatch::new(
            format!("stderr contains {text:?}"),
            format!("stderr {}", excerpt(&output.stderr, 300)),
        ));
    }
    mismatches
}
