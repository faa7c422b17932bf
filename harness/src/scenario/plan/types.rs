//! The plan's types, the contract between planning and running: the planner writes them from a scenario
//! file, `run` reads them. Images to build, containers, steps and what each is worth, each with the
//! place in the file it came from.

use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::Duration;

use super::text::{JsonText, Pattern, Text};
use crate::scenario::error::Loc;

/// A place in a scenario file, shown as `file:line:col`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Where {
    pub file: Arc<Path>,
    pub loc: Option<Loc>,
}

impl std::fmt::Display for Where {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self.loc {
            Some(loc) => write!(f, "{}:{}:{}", self.file.display(), loc.line, loc.column),
            None => write!(f, "{}", self.file.display()),
        }
    }
}

/// An image to build, as every scenario that names it will use it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PlannedImage {
    pub name: String,
    pub at: Where,
    pub context: PathBuf,
    /// Relative to the context, with `/` separators.
    pub dockerfile: String,
    pub args: Vec<(String, String)>,
    pub target: Option<String>,
    pub timeout: Duration,
    /// What the build is worth; the gradebook calls the check `build` (`build <image>` when there are several).
    pub grading: Grading,
}

#[derive(Debug, Clone)]
pub enum ImageRef {
    /// Built by seatrial from `images:`.
    Built(Arc<PlannedImage>),
    /// Any reference the engine knows (`nginx:1.27`).
    Engine(String),
}

impl ImageRef {
    /// The image as the file names it: its name in `images:`, or the engine reference.
    pub fn name(&self) -> &str {
        match self {
            ImageRef::Built(image) => &image.name,
            ImageRef::Engine(reference) => reference,
        }
    }
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Mount {
    /// A named volume private to the scenario.
    Volume { name: String, target: String, read_only: bool },
    /// A folder below the scenario file's folder.
    Bind { source: PathBuf, target: String, read_only: bool },
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub enum ReadyCheck {
    Http { port: u16, path: String, status: Option<u16> },
    Log(String),
    Exec(Vec<String>),
    Tcp(u16),
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Ready {
    pub check: ReadyCheck,
    pub timeout: Duration,
    pub at: Where,
}

#[derive(Debug, Clone)]
pub struct PlannedContainer {
    pub name: String,
    pub image: ImageRef,
    pub ports: Vec<u16>,
    pub mounts: Vec<Mount>,
    pub env: Vec<(String, String)>,
    pub command: Option<Vec<String>>,
    pub entrypoint: Option<Vec<String>>,
    pub user: Option<String>,
    pub workdir: Option<String>,
    pub ready: Option<Ready>,
    /// `SIGINT` or a number; `None`: the image's `STOPSIGNAL`, else SIGTERM.
    pub stop_signal: Option<String>,
    /// How long a stop waits after the signal before SIGKILL; `None`: the default grace.
    pub stop_grace_period: Option<Duration>,
}

#[derive(Debug, Clone)]
pub enum Body {
    Json(JsonText),
    Raw(Text),
    /// `application/x-www-form-urlencoded`, fields in the order written.
    Form(Vec<(String, Text)>),
    /// `multipart/form-data`, parts in the order written.
    Multipart(Vec<Part>),
}

/// One part of a multipart body.
#[derive(Debug, Clone)]
pub struct Part {
    pub name: String,
    pub value: PartValue,
}

#[derive(Debug, Clone)]
pub enum PartValue {
    Text(Text),
    File { content: FileContent, filename: String, content_type: Option<String> },
}

/// Where a file sent in a multipart body comes from.
#[derive(Debug, Clone)]
pub enum FileContent {
    /// A file below the scenario's folder (canonical; read when the step runs).
    Path(PathBuf),
    Inline(Text),
}

/// A test of the nodes a JSONPath selects.
#[derive(Debug, Clone)]
pub enum JsonTest {
    /// Exactly one node, equal to this value (with its type).
    Equals(JsonText),
    /// At least one node (`true`), or none (`false`).
    Exists(bool),
    /// Exactly this many nodes.
    Count(u64),
    /// Exactly one node, a number, compared with this one.
    Compare(Comparison, serde_json::Number),
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Comparison {
    Less,
    LessOrEqual,
    Greater,
    GreaterOrEqual,
}

impl Comparison {
    /// The key in the file.
    pub fn key(self) -> &'static str {
        match self {
            Comparison::Less => "lt",
            Comparison::LessOrEqual => "le",
            Comparison::Greater => "gt",
            Comparison::GreaterOrEqual => "ge",
        }
    }

    pub fn symbol(self) -> &'static str {
        match self {
            Comparison::Less => "<",
            Comparison::LessOrEqual => "<=",
            Comparison::Greater => ">",
            Comparison::GreaterOrEqual => ">=",
        }
    }
}

#[derive(Debug, Clone)]
pub struct JsonExpectation {
    pub path_text: String,
    pub path: serde_json_path::JsonPath,
    /// Every test must hold.
    pub tests: Vec<JsonTest>,
}

#[derive(Debug, Clone, Default)]
pub struct HttpExpect {
    /// `None`: any 2xx.
    pub status: Option<u16>,
    pub headers: Vec<(String, Text)>,
    pub body_contains: Option<Text>,
    pub body_not_contains: Option<Text>,
    pub body_regex: Option<Pattern>,
    pub json: Vec<JsonExpectation>,
    /// How long the whole answer may take.
    pub max_time: Option<Duration>,
}

/// Whether a request belongs to the scenario's cookie session.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Cookies {
    /// Sends the cookies the session holds for the container, and keeps those the answer sets.
    Session,
    /// Sends none and keeps none, as a client outside the session.
    Without,
}

/// What a redirect answer is.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Redirects {
    /// The answer, checked as it is.
    Return,
    /// A step on the way: its `Location` is asked next, up to the final answer.
    Follow,
}

/// Where a saved value comes from.
#[derive(Debug, Clone)]
pub enum CaptureSource {
    Json {
        path_text: String,
        path: serde_json_path::JsonPath,
    },
    Cookie(String),
    /// A header name, lower-case.
    Header(String),
    Regex(regex::Regex),
    Body,
    Status,
    Stdout,
}

/// A value a step saves for later ones.
#[derive(Debug, Clone)]
pub struct Capture {
    pub name: String,
    pub source: CaptureSource,
}

#[derive(Debug, Clone)]
pub struct HttpStep {
    pub container: String,
    pub port: u16,
    /// The container the request is sent from, inside the scenario's network; `None`: from the host,
    /// through the published port.
    pub from: Option<String>,
    pub method: String,
    pub path: Text,
    pub headers: Vec<(String, Text)>,
    pub body: Option<Body>,
    pub cookies: Cookies,
    pub redirects: Redirects,
    pub timeout: Duration,
    pub expect: HttpExpect,
    pub save: Vec<Capture>,
}

#[derive(Debug, Clone)]
pub struct ExecStep {
    pub container: String,
    pub cmd: Vec<Text>,
    pub user: Option<String>,
    pub timeout: Duration,
    pub exit: i64,
    pub stdout_contains: Option<Text>,
    pub stderr_contains: Option<Text>,
    pub save: Vec<Capture>,
}

#[derive(Debug, Clone)]
pub struct LogsStep {
    pub container: String,
    pub within: Duration,
    pub contains: Option<Text>,
    pub not_contains: Option<Text>,
}

#[derive(Debug, Clone)]
pub enum Step {
    Http(Box<HttpStep>),
    Exec(ExecStep),
    Logs(LogsStep),
    Restart(String),
    Recreate(String),
    Start(String),
    Stop {
        container: String,
        within: Duration,
    },
    Sleep(Duration),
    Image(super::ImageStep),
    File(super::FileStep),
    /// Runs the container's definition from another image, on the same volumes.
    Replace {
        container: String,
        image: ImageRef,
    },
    /// `signal`: `SIGKILL` or a number, as the engine takes it.
    Kill {
        container: String,
        signal: String,
        within: Duration,
    },
    Pause(String),
    Unpause(String),
    Disconnect(String),
    Connect(String),
    /// `compose down` of the scenario's stack; its named volumes too with `volumes`.
    Down {
        volumes: bool,
    },
    /// `compose up -d` of the scenario's stack after a `down`.
    Up,
}

impl Step {
    /// The step's keyword in the file.
    pub fn kind(&self) -> &'static str {
        match self {
            Step::Http(_) => "http",
            Step::Exec(_) => "exec",
            Step::Logs(_) => "logs",
            Step::Restart(_) => "restart",
            Step::Recreate(_) => "recreate",
            Step::Start(_) => "start",
            Step::Stop { .. } => "stop",
            Step::Sleep(_) => "sleep",
            Step::Image(_) => "image",
            Step::File(_) => "file",
            Step::Replace { .. } => "replace",
            Step::Kill { .. } => "kill",
            Step::Pause(_) => "pause",
            Step::Unpause(_) => "unpause",
            Step::Disconnect(_) => "disconnect",
            Step::Connect(_) => "connect",
            Step::Down { .. } => "down",
            Step::Up => "up",
        }
    }

    /// The container the step acts on, if any.
    pub fn container(&self) -> Option<&str> {
        match self {
            Step::Http(h) => Some(&h.container),
            Step::Exec(e) => Some(&e.container),
            Step::Logs(l) => Some(&l.container),
            Step::Restart(c) | Step::Recreate(c) | Step::Start(c) | Step::Stop { container: c, .. } => Some(c),
            Step::Sleep(_) | Step::Down { .. } | Step::Up => None,
            Step::Image(i) => i.container(),
            Step::File(f) => f.container(),
            Step::Replace { container: c, .. } | Step::Kill { container: c, .. } => Some(c),
            Step::Pause(c) | Step::Unpause(c) | Step::Disconnect(c) | Step::Connect(c) => Some(c),
        }
    }

    /// A one-line summary for reports: `http GET :8000/notes`.
    pub fn summary(&self) -> String {
        match self {
            Step::Http(h) => match &h.from {
                Some(from) => format!("http {} {}:{}{} from {from}", h.method, h.container, h.port, h.path),
                None => format!("http {} {}:{}{}", h.method, h.container, h.port, h.path),
            },
            Step::Exec(e) => format!("exec {}: {}", e.container, e.cmd.join(" ")),
            Step::Logs(l) => format!("logs {}", l.container),
            Step::Restart(c) => format!("restart {c}"),
            Step::Recreate(c) => format!("recreate {c}"),
            Step::Start(c) => format!("start {c}"),
            Step::Stop { container, within } => format!("stop {container} within {within:?}"),
            Step::Sleep(d) => format!("sleep {d:?}"),
            Step::Image(i) => format!("image {}", i.shown),
            Step::File(f) => format!("file {}:{}", f.shown, f.path),
            Step::Replace { container, image } => format!("replace {container} with {}", image.name()),
            Step::Kill { container, signal, .. } => format!("kill {container} with {signal}"),
            Step::Pause(c) => format!("pause {c}"),
            Step::Unpause(c) => format!("unpause {c}"),
            Step::Disconnect(c) => format!("disconnect {c}"),
            Step::Connect(c) => format!("connect {c}"),
            Step::Down { volumes: false } => "down".to_owned(),
            Step::Down { volumes: true } => "down with volumes".to_owned(),
            Step::Up => "up".to_owned(),
        }
    }
}

#[derive(Debug, Clone)]
pub struct PlannedStep {
    pub at: Where,
    pub step: Step,
    pub grading: Grading,
}

/// What a check is worth and what the student is told when it fails; zero points outside grading.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Grading {
    /// The check's name in reports and the gradebook.
    pub name: String,
    pub points: u32,
    pub feedback: Option<String>,
    pub hidden: bool,
}

#[derive(Debug, Clone)]
pub struct PlannedScenario {
    pub name: String,
    /// `file-stem::name`, the test's name for libtest filters and JUnit.
    pub test_name: String,
    pub at: Where,
    /// The compose stack whose services are containers of the scenario, brought up first.
    pub compose: Option<Arc<PlannedCompose>>,
    pub containers: Vec<PlannedContainer>,
    pub steps: Vec<PlannedStep>,
    pub ignore: bool,
    pub timeout: Duration,
}

/// A compose stack of a scenario, as the file gives it; compose itself reads the files when it runs.
#[derive(Debug, Clone)]
pub struct PlannedCompose {
    pub at: Where,
    pub source: crate::compose::StackSource,
    /// The services `up` starts; empty: all.
    pub services: Vec<String>,
    /// A readiness check per service, by service name.
    pub ready: Vec<(String, Ready)>,
    /// Folders that a build context or bind mount of the stack must stay in when the stack is untrusted
    /// (graded): the scenario's and the submission's.
    pub roots: Vec<PathBuf>,
}

impl PlannedCompose {
    pub fn ready_of(&self, service: &str) -> Option<&Ready> {
        self.ready.iter().find(|(name, _)| name == service).map(|(_, ready)| ready)
    }
}
