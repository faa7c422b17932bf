//! From the file as written to a plan that can run: in, a parsed [`ScenarioFile`](super::model::ScenarioFile);
//! out, [`PlannedScenario`]s with names resolved, paths checked, variables interpolated and durations
//! typed. Every problem found is collected, not just the first. `types` is the plan; `planner` plans a
//! file, its scenarios and images, `containers` and `steps` the parts of a scenario; `contents` the `image`
//! and `file` steps (their types beside them), `release` the release steps and the state they leave each
//! container in.

mod compose;
mod containers;
mod contents;
mod fill;
mod http;
mod planner;
mod release;
mod saves;
mod steps;
pub mod text;
mod types;

use std::time::Duration;

pub use self::contents::{
    ByteLimit, FileExpect, FileKind, FileSource, FileStep, ImageExpect, ImageStep, ImageSubject, ModeExpect, Owner,
    parse_byte_size, parse_mode,
};
pub use self::fill::FillError;
pub use self::planner::{Lookup, PlanEnv, SUBMISSION_VARIABLES, SubmissionVars, plan_file};
pub use self::text::{JsonText, Pattern, Text};
pub use self::types::{
    Body, Capture, CaptureSource, Comparison, Cookies, ExecStep, FileContent, Grading, HttpExpect, HttpStep, ImageRef,
    JsonExpectation, JsonTest, LogsStep, Mount, Part, PartValue, PlannedCompose, PlannedContainer, PlannedImage,
    PlannedScenario, PlannedStep, Ready, ReadyCheck, Redirects, Step, Where,
};

// What a plan takes where the file names no duration; here because the planner's files share them.
pub const DEFAULT_READY_TIMEOUT: Duration = Duration::from_secs(60);
pub const DEFAULT_BUILD_TIMEOUT: Duration = Duration::from_secs(600);
pub const DEFAULT_SCENARIO_TIMEOUT: Duration = Duration::from_secs(300);
pub const DEFAULT_HTTP_TIMEOUT: Duration = Duration::from_secs(10);
pub const DEFAULT_EXEC_TIMEOUT: Duration = Duration::from_secs(60);
pub const DEFAULT_STOP_WITHIN: Duration = Duration::from_secs(10);
pub const DEFAULT_KILL_WITHIN: Duration = Duration::from_secs(10);
