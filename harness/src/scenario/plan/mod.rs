//! From the file as written to a plan that can run: in, a parsed [`ScenarioFile`](super::model::ScenarioFile);
//! out, [`PlannedScenario`]s with names resolved, paths checked, variables interpolated and durations
//! typed. Every problem found is collected, not just the first. `types` is the plan; `planner` plans a
//! file, its scenarios and images, `containers` and `steps` the parts of a scenario; `contents` the `image`
//! and `file` steps (their types beside them), `release` the release steps and the state they leave each
//! container in.

mod containers;
mod contents;
mod planner;
mod release;
mod steps;
mod types;

use std::time::Duration;

pub use self::contents::{
    ByteLimit, FileExpect, FileKind, FileSource, FileStep, ImageExpect, ImageStep, ImageSubject, ModeExpect, Owner,
    parse_byte_size, parse_mode,
};
pub use self::planner::{Lookup, PlanEnv, plan_file};
pub use self::types::{
    Body, ExecStep, Grading, HttpExpect, HttpStep, ImageRef, JsonExpectation, LogsStep, Mount, PlannedContainer,
    PlannedImage, PlannedScenario, PlannedStep, Ready, ReadyCheck, Step, Where,
};

// What a plan takes where the file names no duration; here because the planner's files share them.
pub const DEFAULT_READY_TIMEOUT: Duration = Duration::from_secs(60);
pub const DEFAULT_BUILD_TIMEOUT: Duration = Duration::from_secs(600);
pub const DEFAULT_SCENARIO_TIMEOUT: Duration = Duration::from_secs(300);
pub const DEFAULT_HTTP_TIMEOUT: Duration = Duration::from_secs(10);
pub const DEFAULT_EXEC_TIMEOUT: Duration = Duration::from_secs(60);
pub const DEFAULT_STOP_WITHIN: Duration = Duration::from_secs(10);
pub const DEFAULT_KILL_WITHIN: Duration = Duration::from_secs(10);
