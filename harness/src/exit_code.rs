//! The exit codes of `seatrial`, in one place (documented in the README's CLI section).

use std::process::ExitCode;

/// Every scenario passed (or `check`, `clean`, `schema` did what was asked).
pub const SUCCESS: u8 = 0;
/// At least one scenario failed.
pub const SCENARIO_FAILED: u8 = 1;
/// A scenario file or the command line is wrong, or a report could not be written; nothing was started
/// when the input was wrong.
pub const INVALID_INPUT: u8 = 2;
/// No container engine answered, or it stopped answering during the run.
pub const NO_ENGINE: u8 = 3;
/// The engine answers but cannot do what was asked as it should: `grade` on an engine that ignores
/// container limits (without `--trusted-submissions`), or a problem `doctor` found (each with its fix).
pub const ENGINE_UNFIT: u8 = 4;
/// Interrupted by SIGINT (128 + 2), after removing everything the run made.
pub const INTERRUPTED: u8 = 130;
/// Terminated by SIGTERM (128 + 15), after removing everything the run made.
pub const TERMINATED: u8 = 143;

/// The process's exit code for one of the codes above.
pub fn exit(code: u8) -> ExitCode {
    ExitCode::from(code)
}
