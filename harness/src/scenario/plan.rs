//! From the file as written to a plan that can run: names resolved, paths checked, variables
//! interpolated, durations typed. Every problem found is collected, not just the first.

use std::collections::{HashMap, HashSet};
use std::path::{Component, Path, PathBuf};
use std::sync::Arc;
use std::time::Duration;

use super::duration::parse_duration;
use super::error::{Loc, ScenarioError, ScenarioErrorKind, did_you_mean};
use super::interpolate::{InterpolateError, interpolate};
use super::model::*;
use super::paths::{self, PathPolicy};

pub const DEFAULT_READY_TIMEOUT: Duration = Duration::from_secs(60);
pub const DEFAULT_BUILD_TIMEOUT: Duration = Duration::from_secs(600);
pub const DEFAULT_SCENARIO_TIMEOUT: Duration = Duration::from_secs(300);
pub const DEFAULT_HTTP_TIMEOUT: Duration = Duration::from_secs(10);
pub const DEFAULT_EXEC_TIMEOUT: Duration = Duration::from_secs(60);
pub const DEFAULT_STOP_WITHIN: Duration = Duration::from_secs(10);

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
    /// Named `build` in the gradebook.
    pub grading: Grading,
}

#[derive(Debug, Clone)]
pub enum ImageRef {
    /// Built by seatrial from `images:`.
    Built(Arc<PlannedImage>),
    /// Any reference the engine knows (`nginx:1.27`).
    Engine(String),
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
    Json(serde_json::Value),
    Raw(String),
}

#[derive(Debug, Clone)]
pub struct JsonExpectation {
    pub path_text: String,
    pub path: serde_json_path::JsonPath,
    pub value: serde_json::Value,
}

#[derive(Debug, Clone, Default)]
pub struct HttpExpect {
    /// `None`: any 2xx.
    pub status: Option<u16>,
    pub headers: Vec<(String, String)>,
    pub body_contains: Option<String>,
    pub body_regex: Option<regex::Regex>,
    pub json: Vec<JsonExpectation>,
}

#[derive(Debug, Clone)]
pub struct HttpStep {
    pub container: String,
    pub port: u16,
    pub method: String,
    pub path: String,
    pub headers: Vec<(String, String)>,
    pub body: Option<Body>,
    pub timeout: Duration,
    pub expect: HttpExpect,
}

#[derive(Debug, Clone)]
pub struct ExecStep {
    pub container: String,
    pub cmd: Vec<String>,
    pub user: Option<String>,
    pub timeout: Duration,
    pub exit: i64,
    pub stdout_contains: Option<String>,
    pub stderr_contains: Option<String>,
}

#[derive(Debug, Clone)]
pub struct LogsStep {
    pub container: String,
    pub within: Duration,
    pub contains: Option<String>,
    pub not_contains: Option<String>,
}

#[derive(Debug, Clone)]
pub enum Step {
    Http(HttpStep),
    Exec(ExecStep),
    Logs(LogsStep),
    Restart(String),
    Recreate(String),
    Start(String),
    Stop { container: String, within: Duration },
    Sleep(Duration),
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
        }
    }

    /// The container the step acts on, if any.
    pub fn container(&self) -> Option<&str> {
        match self {
            Step::Http(h) => Some(&h.container),
            Step::Exec(e) => Some(&e.container),
            Step::Logs(l) => Some(&l.container),
            Step::Restart(c) | Step::Recreate(c) | Step::Start(c) | Step::Stop { container: c, .. } => Some(c),
            Step::Sleep(_) => None,
        }
    }

    /// A one-line summary for reports: `http GET :8000/notes`.
    pub fn summary(&self) -> String {
        match self {
            Step::Http(h) => format!("http {} {}:{}{}", h.method, h.container, h.port, h.path),
            Step::Exec(e) => format!("exec {}: {}", e.container, e.cmd.join(" ")),
            Step::Logs(l) => format!("logs {}", l.container),
            Step::Restart(c) => format!("restart {c}"),
            Step::Recreate(c) => format!("recreate {c}"),
            Step::Start(c) => format!("start {c}"),
            Step::Stop { container, within } => format!("stop {container} within {within:?}"),
            Step::Sleep(d) => format!("sleep {d:?}"),
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
    pub containers: Vec<PlannedContainer>,
    pub steps: Vec<PlannedStep>,
    pub ignore: bool,
    pub timeout: Duration,
}

/// Looks up environment variables for `${VAR}`.
pub type Lookup<'a> = &'a dyn Fn(&str) -> Option<String>;

/// What planning reads besides the file itself: variables, and what paths may reach.
#[derive(Clone, Copy)]
pub struct PlanEnv<'a> {
    pub lookup: Lookup<'a>,
    pub paths: &'a PathPolicy,
}

/// Plans one parsed file. `errors` collects every problem; the result holds what could be planned.
pub fn plan_file(
    path: &Path,
    text: &Arc<str>,
    file: &ScenarioFile,
    env: PlanEnv<'_>,
    errors: &mut Vec<ScenarioError>,
) -> Vec<PlannedScenario> {
    // Every path decision is taken on the folder's canonical form: a bare file name, `./`, `../x/`, an
    // absolute path and a symlinked folder all get the same answer. A folder that cannot be resolved
    // leaves nothing to confine paths to, so the file is refused.
    let resolved = paths::scenario_folder(path).and_then(|folder| {
        let project = paths::project_for(&folder, env.paths)?;
        Ok((folder, project))
    });
    let (folder, project) = match resolved {
        Ok(resolved) => resolved,
        Err(err) => {
            let folder = path.parent().map_or_else(|| ".".to_owned(), display_dir);
            let reason = err.to_string();
            errors.push(ScenarioError::new(
                path,
                text.clone(),
                None,
                ScenarioErrorKind::UnresolvedFolder { folder, reason },
            ));
            return Vec::new();
        }
    };
    let mut bind_roots = vec![folder.clone()];
    bind_roots.extend(env.paths.bind_roots.iter().filter_map(|root| root.canonicalize().ok()));
    let mut planner = Planner {
        path: Arc::from(path),
        shown_root: path.parent().map_or_else(|| ".".to_owned(), display_dir),
        folder,
        project,
        bind_roots,
        text: text.clone(),
        lookup: env.lookup,
        errors,
    };
    planner.file(file)
}

struct Planner<'a> {
    path: Arc<Path>,
    /// The scenario's folder as the user named it, for messages.
    shown_root: String,
    /// The scenario's folder, absolute and canonical: relative paths in the file start here.
    folder: PathBuf,
    project: paths::Project,
    /// Canonical folders a bind mount may name: the scenario's, and those the caller allows.
    bind_roots: Vec<PathBuf>,
    text: Arc<str>,
    lookup: Lookup<'a>,
    errors: &'a mut Vec<ScenarioError>,
}

fn loc<T>(spanned: &Spanned<T>) -> Option<Loc> {
    Loc::from_saphyr(spanned.referenced)
}

impl Planner<'_> {
    fn at(&self, loc: Option<Loc>) -> Where {
        Where { file: self.path.clone(), loc }
    }

    fn error(&mut self, loc: Option<Loc>, kind: ScenarioErrorKind) {
        self.errors.push(ScenarioError::new(&self.path, self.text.clone(), loc, kind));
    }

    fn warn(&mut self, loc: Option<Loc>, kind: ScenarioErrorKind) {
        self.errors.push(ScenarioError::warning(&self.path, self.text.clone(), loc, kind));
    }

    fn var(&mut self, text: &str, at: Option<Loc>) -> String {
        match interpolate(text, self.lookup) {
            Ok(value) => value,
            Err(InterpolateError::Undefined(name)) => {
                self.error(at, ScenarioErrorKind::UndefinedVariable { name });
                text.to_owned()
            }
            Err(InterpolateError::Malformed(why)) => {
                self.error(at, ScenarioErrorKind::BadVariable(why));
                text.to_owned()
            }
        }
    }

    fn var_opt(&mut self, text: &Option<String>, at: Option<Loc>) -> Option<String> {
        text.as_ref().map(|t| self.var(t, at))
    }

    fn duration(&mut self, text: &Option<Spanned<DurationText>>, default: Duration) -> Duration {
        let Some(text) = text else { return default };
        let value = self.var(&text.value.0, loc(text));
        match parse_duration(&value) {
            Ok(d) => d,
            Err(reason) => {
                self.error(loc(text), ScenarioErrorKind::InvalidDuration { text: value, reason });
                default
            }
        }
    }

    /// A bind mount's source: it must really be (after `..` and every symlink) below the scenario's
    /// folder or a folder the caller allows (a submission's, when grading).
    fn confined_path(&mut self, text: &str, at: Option<Loc>) -> Option<PathBuf> {
        let root = self.shown_root.clone();
        match paths::resolve(&self.folder, text) {
            Ok(real) if paths::is_below_any(&real, &self.bind_roots) => Some(real),
            Ok(real) => {
                let real = Some(real.display().to_string());
                self.error(at, ScenarioErrorKind::PathEscapes { path: text.to_owned(), real, root });
                None
            }
            // Said without looking further when the words alone leave the folder.
            Err(_) if !is_relative_inside(text) && !text.starts_with('/') => {
                self.error(at, ScenarioErrorKind::PathEscapes { path: text.to_owned(), real: None, root });
                None
            }
            Err(_) => {
                self.error(at, ScenarioErrorKind::MissingPath { path: self.shown(text) });
                None
            }
        }
    }

    /// A path of the file as the user would find it from where they named the file.
    fn shown(&self, text: &str) -> String {
        match self.path.parent() {
            Some(parent) if !parent.as_os_str().is_empty() => parent.join(text).display().to_string(),
            _ => text.to_owned(),
        }
    }

    /// A build context is read into a tar, never mounted, so it may sit beside the scenario folder
    /// (`../fixtures/app`), but not outside the project (see [`paths::project_for`]). A context that
    /// comes from a variable (`${SUBMISSION}`) was chosen on the command line, and may be anywhere.
    fn context_path(&mut self, written: &str, text: &str, at: Option<Loc>) -> Option<PathBuf> {
        let real = match paths::resolve(&self.folder, text) {
            Ok(real) => real,
            Err(_) => {
                self.error(at, ScenarioErrorKind::MissingPath { path: self.shown(text) });
                return None;
            }
        };
        if !real.is_dir() {
            self.error(at, ScenarioErrorKind::Invalid(format!("build context `{text}` is not a folder")));
            return None;
        }
        let from_variable = written.contains("${");
        if !from_variable && !real.starts_with(&self.project.root) {
            let project = self.project.root.display().to_string();
            let found = self.project.found.explain();
            self.error(at, ScenarioErrorKind::ContextEscapes { path: text.to_owned(), project, found });
            return None;
        }
        Some(real)
    }

    fn file(&mut self, file: &ScenarioFile) -> Vec<PlannedScenario> {
        let mut images = HashMap::new();
        for (name, spec) in &file.images.0 {
            let name = &name.value;
            let check_name = if file.images.0.len() == 1 { "build".to_owned() } else { format!("build {name}") };
            if let Some(image) = self.image(name, spec, check_name) {
                images.insert(name.clone(), Arc::new(image));
            }
        }
        let stem = self.path.file_stem().map(|s| s.to_string_lossy().into_owned()).unwrap_or_default();
        let mut seen = HashSet::new();
        let mut scenarios = Vec::new();
        for spec in &file.scenarios {
            let name = spec.value.name.value.trim().to_owned();
            if name.is_empty() {
                self.error(loc(&spec.value.name), ScenarioErrorKind::Invalid("a scenario needs a name".into()));
            } else if !seen.insert(name.clone()) {
                self.error(loc(&spec.value.name), ScenarioErrorKind::DuplicateScenario(name.clone()));
            }
            scenarios.push(self.scenario(&stem, name, spec, &images));
        }
        for (name, _) in &file.images.0 {
            let used =
                file.scenarios.iter().any(|s| s.value.containers.values().any(|c| c.value.image.value == name.value));
            if !used {
                self.warn(loc(name), ScenarioErrorKind::UnusedImage(name.value.clone()));
            }
        }
        scenarios
    }

    fn image(&mut self, name: &str, spec: &Spanned<ImageSpec>, check_name: String) -> Option<PlannedImage> {
        let build = &spec.value.build;
        let reported = self.errors.len();
        let context_text = self.var(&build.context.value, loc(&build.context));
        // An undefined variable was reported; a "does not exist" for its unexpanded text would mislead.
        let context = if self.errors.len() > reported {
            None
        } else {
            self.context_path(&build.context.value, &context_text, loc(&build.context))
        };
        let dockerfile = match &build.dockerfile {
            Some(d) => {
                let value = self.var(&d.value, loc(d));
                if !is_relative_inside(&value) {
                    self.error(
                        loc(d),
                        ScenarioErrorKind::Invalid(format!(
                            "the Dockerfile `{value}` must be a relative path inside the build context `{context_text}`"
                        )),
                    );
                }
                (value, loc(d))
            }
            None => ("Dockerfile".to_owned(), loc(&build.context)),
        };
        // A submission's folder (a context from a variable) without its Dockerfile is the submission's
        // mistake, reported as its failed build, not a mistake of the assignment file.
        let context_from_variable = build.context.value.contains("${");
        if let Some(context) = &context
            && !context_from_variable
            && !context.join(&dockerfile.0).is_file()
            // `docker build` also takes a lower-case `dockerfile` when none is named.
            && !(build.dockerfile.is_none() && context.join("dockerfile").is_file())
        {
            let path = context.join(&dockerfile.0).display().to_string();
            self.error(dockerfile.1, ScenarioErrorKind::MissingPath { path });
        }
        let args = build.args.iter().map(|(k, v)| (k.clone(), self.var(&v.value.0, loc(v)))).collect();
        let target = build.target.as_ref().map(|t| self.var(&t.value, loc(t)));
        let timeout = self.duration(&build.timeout, DEFAULT_BUILD_TIMEOUT);
        let grading = Grading {
            name: check_name,
            points: spec.value.points.as_ref().map_or(0, |p| p.value),
            feedback: spec.value.feedback.as_ref().map(|f| self.var(f, loc(spec))),
            hidden: spec.value.hidden,
        };
        Some(PlannedImage {
            name: name.to_owned(),
            at: self.at(loc(spec)),
            context: context?,
            dockerfile: dockerfile.0.replace('\\', "/"),
            args,
            target,
            timeout,
            grading,
        })
    }

    fn scenario(
        &mut self,
        stem: &str,
        name: String,
        spec: &Spanned<ScenarioSpec>,
        images: &HashMap<String, Arc<PlannedImage>>,
    ) -> PlannedScenario {
        let s = &spec.value;
        let containers: Vec<PlannedContainer> =
            s.containers.iter().map(|(cname, c)| self.container(cname, c, images)).collect();
        let names: Vec<String> = containers.iter().map(|c| c.name.clone()).collect();
        let mut running: HashSet<String> = names.iter().cloned().collect();
        let mut steps = Vec::new();
        for step in &s.steps {
            if let Some(planned) = self.step(step, &containers, &names, &mut running) {
                steps.push(planned);
            }
        }
        PlannedScenario {
            test_name: format!("{stem}::{name}"),
            name,
            at: self.at(loc(spec)),
            containers,
            steps,
            ignore: s.ignore,
            timeout: self.duration(&s.timeout, DEFAULT_SCENARIO_TIMEOUT),
        }
    }

    fn container(
        &mut self,
        name: &str,
        spec: &Spanned<ContainerSpec>,
        images: &HashMap<String, Arc<PlannedImage>>,
    ) -> PlannedContainer {
        let c = &spec.value;
        let image_text = self.var(&c.image.value, loc(&c.image));
        let image = match images.get(&image_text) {
            Some(built) => ImageRef::Built(built.clone()),
            None => {
                let known: Vec<String> = images.keys().cloned().collect();
                let looks_like_a_local_name = !image_text.contains([':', '/', '@']);
                if image_text.trim().is_empty() {
                    self.error(loc(&c.image), ScenarioErrorKind::Invalid("the image name is empty".into()));
                } else if looks_like_a_local_name && did_you_mean(&image_text, &known).is_some() {
                    self.error(loc(&c.image), ScenarioErrorKind::UnknownImage { name: image_text.clone(), known });
                }
                ImageRef::Engine(image_text)
            }
        };
        let mut ports = Vec::new();
        for port in &c.ports {
            if port.value == 0 {
                self.error(loc(port), ScenarioErrorKind::Invalid("port 0 is not a port".into()));
            } else if ports.contains(&port.value) {
                self.error(loc(port), ScenarioErrorKind::Invalid(format!("port {} is listed twice", port.value)));
            } else {
                ports.push(port.value);
            }
        }
        let mounts = c.volumes.iter().filter_map(|v| self.mount(v)).collect();
        let env = c.env.iter().map(|(k, v)| (k.clone(), self.var(&v.value.0, loc(v)))).collect();
        let strings = |p: &mut Self, list: &Option<Spanned<Vec<String>>>| {
            list.as_ref().map(|l| l.value.iter().map(|a| p.var(a, loc(l))).collect::<Vec<_>>())
        };
        let command = strings(self, &c.command);
        let entrypoint = strings(self, &c.entrypoint);
        let user = c.user.as_ref().map(|u| self.var(&u.value, loc(u)));
        let workdir = c.workdir.as_ref().map(|w| self.var(&w.value, loc(w)));
        let ready = c.ready.as_ref().and_then(|r| self.ready(r, &ports));
        let stop_signal = c.stop_signal.as_ref().and_then(|s| self.stop_signal(s));
        let stop_grace_period = c.stop_grace_period.as_ref().map(|g| self.duration(&Some(g.clone()), Duration::ZERO));
        PlannedContainer {
            name: name.to_owned(),
            image,
            ports,
            mounts,
            env,
            command,
            entrypoint,
            user,
            workdir,
            ready,
            stop_signal,
            stop_grace_period,
        }
    }

    /// A stop signal the engine will take, in its canonical form (`INT` -> `SIGINT`).
    fn stop_signal(&mut self, spec: &Spanned<String>) -> Option<String> {
        let text = self.var(&spec.value, loc(spec));
        match super::signal::parse_signal(&text) {
            Ok(signal) => Some(signal),
            Err(reason) => {
                self.error(loc(spec), ScenarioErrorKind::InvalidSignal { text, reason });
                None
            }
        }
    }

    fn mount(&mut self, spec: &Spanned<String>) -> Option<Mount> {
        let at = loc(spec);
        let text = self.var(&spec.value, at);
        let mut parts = text.split(':');
        let (Some(source), Some(target)) = (parts.next(), parts.next()) else {
            self.error(at, ScenarioErrorKind::InvalidVolume(text.clone()));
            return None;
        };
        let read_only = match parts.next() {
            None | Some("rw") => false,
            Some("ro") => true,
            Some(_) => {
                self.error(at, ScenarioErrorKind::InvalidVolume(text.clone()));
                return None;
            }
        };
        if parts.next().is_some() || source.is_empty() || !target.starts_with('/') {
            self.error(at, ScenarioErrorKind::InvalidVolume(text.clone()));
            return None;
        }
        let target = target.to_owned();
        if source.starts_with('.') || source.starts_with('/') {
            let source = self.confined_path(source, at)?;
            Some(Mount::Bind { source, target, read_only })
        } else if source.chars().all(|c| c.is_ascii_alphanumeric() || matches!(c, '_' | '-' | '.')) {
            Some(Mount::Volume { name: source.to_owned(), target, read_only })
        } else {
            self.error(at, ScenarioErrorKind::InvalidVolume(text.clone()));
            None
        }
    }

    fn ready(&mut self, spec: &Spanned<ReadySpec>, ports: &[u16]) -> Option<Ready> {
        let r = &spec.value;
        let at = loc(spec);
        let mut checks = Vec::new();
        if let Some(http) = &r.http {
            self.require_port(http.port.value, loc(&http.port), ports);
            checks.push(ReadyCheck::Http { port: http.port.value, path: http.path.clone(), status: http.status });
        }
        if let Some(log) = &r.log {
            checks.push(ReadyCheck::Log(self.var(log, at)));
        }
        if let Some(exec) = &r.exec {
            if exec.is_empty() {
                self.error(at, ScenarioErrorKind::Invalid("`exec` needs a command".into()));
            }
            checks.push(ReadyCheck::Exec(exec.iter().map(|a| self.var(a, at)).collect()));
        }
        if let Some(tcp) = &r.tcp {
            self.require_port(tcp.value, loc(tcp), ports);
            checks.push(ReadyCheck::Tcp(tcp.value));
        }
        let timeout = self.duration(&r.timeout, DEFAULT_READY_TIMEOUT);
        if checks.len() != 1 {
            self.error(
                at,
                ScenarioErrorKind::Invalid("`ready:` takes exactly one of `http`, `log`, `exec`, `tcp`".into()),
            );
            return None;
        }
        Some(Ready { check: checks.remove(0), timeout, at: self.at(at) })
    }

    fn require_port(&mut self, port: u16, at: Option<Loc>, ports: &[u16]) {
        if !ports.contains(&port) {
            self.error(at, ScenarioErrorKind::PortNotPublished { port });
        }
    }

    /// The container a step names, if the scenario has it; the error points at the name.
    fn container_name(&mut self, name: &Spanned<String>, names: &[String]) -> Option<(String, Option<Loc>)> {
        let at = loc(name);
        if names.contains(&name.value) {
            return Some((name.value.clone(), at));
        }
        self.error(at, ScenarioErrorKind::UnknownContainer { name: name.value.clone(), known: names.to_vec() });
        None
    }

    /// Steps that talk to a container need it running at that point of the scenario.
    fn require_running(&mut self, name: &str, at: Option<Loc>, running: &HashSet<String>, what: &str) {
        if !running.contains(name) {
            self.error(
                at,
                ScenarioErrorKind::Invalid(format!(
                    "`{name}` is stopped at this step: `{what}` needs it running (add `- start: {name}` before)"
                )),
            );
        }
    }

    fn step(
        &mut self,
        spec: &Spanned<StepEntry>,
        containers: &[PlannedContainer],
        names: &[String],
        running: &mut HashSet<String>,
    ) -> Option<PlannedStep> {
        let at = loc(spec);
        let Some(kind) = &spec.value.kind else {
            self.error(
                at,
                ScenarioErrorKind::Invalid(
                    "this step names no step kind: give one of `http`, `exec`, `logs`, `restart`, `recreate`, \
                     `start`, `stop`, `sleep`"
                        .into(),
                ),
            );
            return None;
        };
        let step = match kind {
            StepSpec::Http(h) => {
                let container = match &h.container {
                    Some(c) => {
                        let (c, _) = self.container_name(c, names)?;
                        if let Some(planned) = containers.iter().find(|p| p.name == c) {
                            self.require_port(h.port.value, loc(&h.port), &planned.ports);
                        }
                        c
                    }
                    None => {
                        let publishing: Vec<&str> = containers
                            .iter()
                            .filter(|c| c.ports.contains(&h.port.value))
                            .map(|c| c.name.as_str())
                            .collect();
                        match publishing.as_slice() {
                            [one] => (*one).to_owned(),
                            // Reported, and the rest of the step is still checked.
                            [] => {
                                self.error(loc(&h.port), ScenarioErrorKind::PortNotPublished { port: h.port.value });
                                String::new()
                            }
                            many => {
                                let containers = many.join(", ");
                                self.error(at, ScenarioErrorKind::AmbiguousPort { port: h.port.value, containers });
                                String::new()
                            }
                        }
                    }
                };
                if !container.is_empty() {
                    self.require_running(&container, at, running, "http");
                }
                let method = match &h.method {
                    Some(m) => {
                        let upper = m.value.trim().to_ascii_uppercase();
                        if upper.is_empty() || !upper.chars().all(|c| c.is_ascii_alphabetic()) {
                            self.error(loc(m), ScenarioErrorKind::InvalidMethod(m.value.clone()));
                        }
                        upper
                    }
                    None => "GET".to_owned(),
                };
                let body = match (&h.json, &h.body) {
                    (Some(_), Some(_)) => {
                        self.error(at, ScenarioErrorKind::Invalid("give either `json` or `body`, not both".into()));
                        None
                    }
                    (Some(json), None) => Some(Body::Json(json.clone())),
                    (None, Some(raw)) => Some(Body::Raw(self.var(raw, at))),
                    (None, None) => None,
                };
                let path = self.var(&h.path, at);
                if !path.starts_with('/') {
                    self.error(at, ScenarioErrorKind::Invalid(format!("the path `{path}` must start with `/`")));
                }
                let headers = h.headers.iter().map(|(k, v)| (k.clone(), self.var(v, at))).collect();
                let expect = self.http_expect(&h.expect, at);
                Step::Http(HttpStep {
                    container,
                    port: h.port.value,
                    method,
                    path,
                    headers,
                    body,
                    timeout: self.duration(&h.timeout, DEFAULT_HTTP_TIMEOUT),
                    expect,
                })
            }
            StepSpec::Exec(e) => {
                let (container, container_at) = self.container_name(&e.container, names)?;
                self.require_running(&container, container_at, running, "exec");
                if e.cmd.value.is_empty() {
                    self.error(loc(&e.cmd), ScenarioErrorKind::Invalid("`cmd` needs at least the program".into()));
                }
                let cmd = e.cmd.value.iter().map(|a| self.var(a, loc(&e.cmd))).collect();
                Step::Exec(ExecStep {
                    container,
                    cmd,
                    user: self.var_opt(&e.user, at),
                    timeout: self.duration(&e.timeout, DEFAULT_EXEC_TIMEOUT),
                    exit: e.expect.exit.unwrap_or(0),
                    stdout_contains: self.var_opt(&e.expect.stdout_contains, at),
                    stderr_contains: self.var_opt(&e.expect.stderr_contains, at),
                })
            }
            StepSpec::Logs(l) => {
                let (container, _) = self.container_name(&l.container, names)?;
                if l.expect.contains.is_none() && l.expect.not_contains.is_none() {
                    self.error(
                        at,
                        ScenarioErrorKind::Invalid("`logs` needs `expect: { contains: ... }` or `not_contains`".into()),
                    );
                }
                Step::Logs(LogsStep {
                    container,
                    within: self.duration(&l.within, Duration::ZERO),
                    contains: self.var_opt(&l.expect.contains, at),
                    not_contains: self.var_opt(&l.expect.not_contains, at),
                })
            }
            StepSpec::Restart(c) | StepSpec::Recreate(c) | StepSpec::Start(c) => {
                let (c, c_at) = self.container_name(c, names)?;
                match kind {
                    StepSpec::Restart(_) => {
                        self.require_running(&c, c_at, running, "restart");
                        running.insert(c.clone());
                        Step::Restart(c)
                    }
                    StepSpec::Recreate(_) => {
                        running.insert(c.clone());
                        Step::Recreate(c)
                    }
                    _ => {
                        if running.contains(&c) {
                            self.error(
                                c_at,
                                ScenarioErrorKind::Invalid(format!("`{c}` is already running at this step")),
                            );
                        }
                        running.insert(c.clone());
                        Step::Start(c)
                    }
                }
            }
            StepSpec::Stop(s) => {
                let (container, c_at) = self.container_name(&s.container, names)?;
                if !running.remove(&container) {
                    self.error(
                        c_at,
                        ScenarioErrorKind::Invalid(format!("`{container}` is already stopped at this step")),
                    );
                }
                Step::Stop { container, within: self.duration(&s.within, DEFAULT_STOP_WITHIN) }
            }
            StepSpec::Sleep(d) => Step::Sleep(self.duration(&Some(d.clone()), Duration::ZERO)),
        };
        let g = &spec.value.grading;
        let name = match &g.name {
            Some(n) if n.value.trim().is_empty() => {
                self.error(loc(n), ScenarioErrorKind::Invalid("a step's `name` cannot be empty".into()));
                step.summary()
            }
            Some(n) => self.var(n.value.trim(), loc(n)),
            None => step.summary(),
        };
        let grading = Grading {
            name,
            points: g.points.as_ref().map_or(0, |p| p.value),
            feedback: g.feedback.as_ref().map(|f| self.var(f, at)),
            hidden: g.hidden,
        };
        Some(PlannedStep { at: self.at(at), step, grading })
    }

    fn http_expect(&mut self, e: &HttpExpectSpec, at: Option<Loc>) -> HttpExpect {
        if let Some(status) = e.status
            && !(100..=599).contains(&status)
        {
            self.error(at, ScenarioErrorKind::Invalid(format!("{status} is not an HTTP status")));
        }
        let body_regex = e.body_regex.as_ref().and_then(|r| {
            let text = self.var(&r.value, loc(r));
            match regex::Regex::new(&text) {
                Ok(re) => Some(re),
                Err(err) => {
                    self.error(loc(r), ScenarioErrorKind::InvalidRegex(err.to_string()));
                    None
                }
            }
        });
        let mut json = Vec::new();
        for (path_text, value) in &e.json.0 {
            let text = path_text.value.clone();
            match serde_json_path::JsonPath::parse(&text) {
                Ok(path) => json.push(JsonExpectation { path_text: text, path, value: value.clone() }),
                Err(err) => self.error(
                    loc(path_text).or(at),
                    ScenarioErrorKind::InvalidJsonPath { path: text, reason: err.to_string() },
                ),
            }
        }
        HttpExpect {
            status: e.status,
            headers: e.headers.iter().map(|(k, v)| (k.to_ascii_lowercase(), self.var(v, at))).collect(),
            body_contains: self.var_opt(&e.body_contains, at),
            body_regex,
            json,
        }
    }
}

fn is_relative_inside(path: &str) -> bool {
    Path::new(path).components().all(|c| matches!(c, Component::Normal(_) | Component::CurDir))
}

fn display_dir(dir: &Path) -> String {
    if dir.as_os_str().is_empty() { ".".to_owned() } else { dir.display().to_string() }
}
