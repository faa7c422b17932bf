//! A command's exit code and output against `expect:`.

use super::{Mismatch, excerpt};
use crate::engine::container::ExecOutput;
use crate::scenario::plan::ExecStep;

pub fn check_exec(step: &ExecStep, output: &ExecOutput) -> Vec<Mismatch> {
    let mut mismatches = Vec::new();
    let shown = || format!("stdout {}, stderr {}", excerpt(&output.stdout, 300), excerpt(&output.stderr, 300));
    if output.exit_code != step.exit {
        mismatches.push(Mismatch::new(format!("exit code {}", step.exit), format!("exit code {}, {}", output.exit_code, shown())));
    }
    if let Some(text) = &step.stdout_contains {
        if !output.stdout.contains(text.as_str()) {
            mismatches.push(Mismatch::new(format!("stdout contains {text:?}"), format!("stdout {}", excerpt(&output.stdout, 300))));
        }
    }
    if let Some(text) = &step.stderr_contains {
        if !output.stderr.contains(text.as_str()) {
            mismatches.push(Mismatch::new(format!("stderr contains {text:?}"), format!("stderr {}", excerpt(&output.stderr, 300))));
        }
    }
    mismatches
}
