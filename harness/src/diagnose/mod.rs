//! Why a failure happened, read from the container itself: what it listens on, how it exited, whether
//! PID 1 ignored SIGTERM, what it wrote outside its volumes. In: engine facts; out: sentences for people.

pub mod listen;

use crate::engine::container::ContainerState;

/// What a container's exit says, with the last line of a Python traceback when the log has one.
pub fn exited(name: &str, state: &ContainerState, log: &str) -> String {
    let mut text = format!("container `{name}` exited with code {}", state.exit_code);
    if state.oom_killed {
        text.push_str(" (killed: out of memory)");
    }
    if !state.error.is_empty() {
        text.push_str(&format!(" (engine: {})", state.error));
    }
    if let Some(last) = traceback_last_line(log) {
        text.push_str(&format!("; the program raised `{last}`"));
    }
    text
}

/// The exception line that ends a Python traceback in `log`, if there is one.
pub fn traceback_last_line(log: &str) -> Option<&str> {
    let lines: Vec<&str> = log.lines().collect();
    let start = lines.iter().rposition(|l| l.starts_with("Traceback (most recent call last)"))?;
    lines[start + 1..]
        .iter()
        .find(|l| !l.starts_with(' ') && !l.trim().is_empty())
        .map(|l| l.trim())
}

/// A stop that took the whole grace period and ended in SIGKILL means PID 1 did not act on SIGTERM.
pub fn ignored_sigterm(name: &str, exit_code: i64) -> Option<String> {
    (exit_code == 137).then(|| {
        format!(
            "PID 1 of `{name}` ignored SIGTERM and was killed with SIGKILL (exit code 137). The kernel gives PID 1 \
             no default signal handling: a shell-form CMD (`CMD python app.py`) makes /bin/sh PID 1, which does \
             not pass SIGTERM on, and a program that installs no SIGTERM handler ignores it. Use the exec form \
             (`CMD [\"python\", \"app.py\"]`) and handle SIGTERM, or run an init (`docker run --init`)"
        )
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn finds_the_exception_of_a_traceback() {
        let log = "starting\nTraceback (most recent call last):\n  File \"app.py\", line 1\n    boom()\nNameError: name 'boom' is not defined\n";
        assert_eq!(traceback_last_line(log), Some("NameError: name 'boom' is not defined"));
        assert_eq!(traceback_last_line("all fine\n"), None);
    }
}
