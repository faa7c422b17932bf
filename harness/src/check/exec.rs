//! A command's exit code and output against `expect:`.

use super::Mismatch;
use crate::engine::container::ExecOutput;
use crate::scenario::plan::ExecStep;
use crate::text::excerpt;

pub fn check_exec(step: &ExecStep, output: &ExecOutput) -> Vec<Mismatch> {
    let mut mismatches = Vec::new();
    if output.exit_code != step.exit {
        let mut actual = format!("exit code {}", output.exit_code);
        // The output explains an unexpected exit code, unless another mismatch below shows it already.
        if step.stdout_contains.is_none() && step.stderr_contains.is_none() {
            let shown = format!("stdout {}, stderr {}", excerpt(&output.stdout, 300), excerpt(&output.stderr, 300));
            actual = format!("{actual}, {shown}");
        }
        mismatches.push(Mismatch::new(format!("exit code {}", step.exit), actual));
    }
    if let Some(text) = &step.stdout_contains
        && !output.stdout.contains(text.as_str())
    {
        mismatches.push(Mismatch::new(
            format!("stdout contains {text:?}"),
            format!("stdout {}", excerpt(&output.stdout, 300)),
        ));
    }
    if let Some(text) = &step.stderr_contains
        && !output.stderr.contains(text.as_str())
    {
        mismatches.push(Mismatch::new(
            format!("stderr contains {text:?}"),
            format!("stderr {}", excerpt(&output.stderr, 300)),
        ));
    }
    mismatches
}
