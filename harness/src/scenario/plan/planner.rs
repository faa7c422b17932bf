//! The planner: in, one parsed scenario file and what planning reads besides it ([`PlanEnv`]); out, its
//! [`PlannedScenario`]s and every problem found. Here: the file, its images and scenarios, variables,
//! durations and the paths a file may name; a scenario's containers and steps are planned in
//! `containers` and `steps`.

use std::collections::{HashMap, HashSet};
use std::path::{Component, Path, PathBuf};
use std::sync::Arc;
use std::time::Duration;

use super::saves::ScenarioSaves;
use super::{DEFAULT_BUILD_TIMEOUT, DEFAULT_SCENARIO_TIMEOUT};
use super::{Grading, PlannedContainer, PlannedImage, PlannedScenario, Where};
use crate::scenario::dialect::BuildForm;
use crate::scenario::duration::parse_duration;
use crate::scenario::error::{Loc, ScenarioError, ScenarioErrorKind};
use crate::scenario::interpolate::{InterpolateError, interpolate};
use crate::scenario::model::*;
use crate::scenario::paths::{self, PathPolicy};

/// Looks up environment variables for `${VAR}`.
pub type Lookup<'a> = &'a dyn Fn(&str) -> Option<String>;

/// What planning reads besides the file itself: variables, and what paths may reach.
#[derive(Clone, Copy)]
pub struct PlanEnv<'a> {
    pub lookup: Lookup<'a>,
    pub paths: &'a PathPolicy,
    pub submission: SubmissionVars,
}

/// What `${SUBMISSION}` and `${SUBMISSION_ID}` mean when the environment does not set them.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum SubmissionVars {
    /// Nothing: an unset one is an undefined variable (running a file).
    Undefined,
    /// Each submission's folder and name, unknown yet (checking an assignment): paths from them are not
    /// looked at.
    Placeholders,
}

/// The variables `seatrial grade` sets for each submission.
pub const SUBMISSION_VARIABLES: [&str; 2] = ["SUBMISSION", "SUBMISSION_ID"];

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
        saves: ScenarioSaves::default(),
        errors,
        host_ports_noted: false,
        submission: env.submission,
        images: HashMap::new(),
        tracked: super::release::Tracked::default(),
        open_names: false,
        services: Vec::new(),
        stack: None,
        compose_refused: false,
    };
    planner.file(file)
}

pub(super) struct Planner<'a> {
    path: Arc<Path>,
    /// The scenario's folder as the user named it, for messages.
    shown_root: String,
    /// The scenario's folder, absolute and canonical: relative paths in the file start here.
    folder: PathBuf,
    project: paths::Project,
    /// Canonical folders a bind mount may name: the scenario's, and those the caller allows.
    bind_roots: Vec<PathBuf>,
    text: Arc<str>,
    pub(super) lookup: Lookup<'a>,
    /// What the steps of the scenario being planned save, and which step is being planned.
    pub(super) saves: ScenarioSaves,
    errors: &'a mut Vec<ScenarioError>,
    /// Whether the warning that host ports in `ports:` are not used was given (once per file).
    pub(super) host_ports_noted: bool,
    submission: SubmissionVars,
    /// The file's `images:`, planned: steps name them too (`image: { of: app }`, `replace`).
    pub(super) images: HashMap<String, Arc<PlannedImage>>,
    /// What the release steps did so far in the scenario being planned: paused and disconnected
    /// containers, and the image each container runs.
    pub(super) tracked: super::release::Tracked,
    /// The scenario's compose services, when they cannot be known before compose runs: steps may name
    /// any container, and compose says at run time whether it is a service.
    pub(super) open_names: bool,
    /// The scenario's compose services, by name.
    pub(super) services: Vec<String>,
    /// Whether the scenario has a compose stack, and whether a `down` took it down at the step planned.
    pub(super) stack: Option<StackState>,
    /// A compose file of the scenario was refused (missing, outside the project): what its services would
    /// have said is not said again step by step.
    pub(super) compose_refused: bool,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(super) enum StackState {
    Up,
    Down,
}

pub(super) fn loc<T>(spanned: &Spanned<T>) -> Option<Loc> {
    Loc::from_saphyr(spanned.referenced)
}

impl Planner<'_> {
    pub(super) fn at(&self, loc: Option<Loc>) -> Where {
        Where { file: self.path.clone(), loc }
    }

    pub(super) fn error(&mut self, loc: Option<Loc>, kind: ScenarioErrorKind) {
        self.errors.push(ScenarioError::new(&self.path, self.text.clone(), loc, kind));
    }

    pub(super) fn warn(&mut self, loc: Option<Loc>, kind: ScenarioErrorKind) {
        self.errors.push(ScenarioError::warning(&self.path, self.text.clone(), loc, kind));
    }

    /// Text whose variables are filled in now, from the environment: a value saved by a step is refused.
    pub(super) fn var(&mut self, text: &str, at: Option<Loc>) -> String {
        if self.refuse_saved(text, at) {
            return text.to_owned();
        }
        match interpolate(text, self.lookup) {
            Ok(value) => value,
            Err(InterpolateError::Undefined(name))
                if self.submission == SubmissionVars::Placeholders && SUBMISSION_VARIABLES.contains(&name.as_str()) =>
            {
                text.to_owned()
            }
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

    pub(super) fn var_opt(&mut self, text: &Option<String>, at: Option<Loc>) -> Option<String> {
        text.as_ref().map(|t| self.var(t, at))
    }

    pub(super) fn duration(&mut self, text: &Option<Spanned<DurationText>>, default: Duration) -> Duration {
        let Some(text) = text else { return default };
        let reported = self.errors.len();
        let value = self.var(&text.value.0, loc(text));
        // A variable that was refused or unset leaves no duration worth reading.
        if self.errors.len() > reported {
            return default;
        }
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
    pub(super) fn confined_path(&mut self, text: &str, at: Option<Loc>) -> Option<PathBuf> {
        if self.is_placeholder(text) {
            return Some(PathBuf::from(text));
        }
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

    /// A path of the file as the user would find it from where they named the file (`./data`, not
    /// `././data`).
    pub(super) fn shown(&self, text: &str) -> String {
        let joined = match self.path.parent() {
            Some(parent) if !parent.as_os_str().is_empty() => parent.join(text),
            _ => PathBuf::from(text),
        };
        let mut shown = PathBuf::new();
        for (i, part) in joined.components().enumerate() {
            if i == 0 || part != Component::CurDir {
                shown.push(part);
            }
        }
        shown.display().to_string()
    }

    /// A path that still holds `${SUBMISSION}` while an assignment is checked: each submission's, unknown yet.
    pub(super) fn is_placeholder(&self, text: &str) -> bool {
        self.submission == SubmissionVars::Placeholders
            && SUBMISSION_VARIABLES.iter().any(|v| text.contains(&format!("${{{v}")))
    }

    /// The scenario's folder, canonical.
    pub(super) fn folder(&self) -> &Path {
        &self.folder
    }

    pub(super) fn bind_roots(&self) -> &[PathBuf] {
        &self.bind_roots
    }

    /// Whether a canonical path is inside the project folder.
    pub(super) fn in_project(&self, real: &Path) -> bool {
        real.starts_with(&self.project.root)
    }

    /// The project folder and how it was found, for the error that refuses a path outside it.
    pub(super) fn project_said(&self) -> (String, &'static str) {
        (self.project.root.display().to_string(), self.project.found.explain())
    }

    /// A build context is read into a tar, never mounted, so it may sit beside the scenario folder
    /// (`../fixtures/app`), but not outside the project (see [`paths::project_for`]). A context that
    /// comes from a variable (`${SUBMISSION}`) was chosen on the command line, and may be anywhere.
    fn context_path(&mut self, written: &str, text: &str, at: Option<Loc>) -> Option<PathBuf> {
        if self.is_placeholder(text) {
            return Some(PathBuf::from(text));
        }
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
            if let Some(image) = self.image(name, spec) {
                images.insert(name.clone(), Arc::new(image));
            }
        }
        self.images = images.clone();
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
            let used = file.scenarios.iter().any(|s| {
                s.value.containers.values().any(|c| c.value.image.value == name.value)
                    || s.value
                        .steps
                        .iter()
                        .any(|step| step.value.kind.as_ref().and_then(image_named_by) == Some(name.value.as_str()))
            });
            if !used {
                self.warn(loc(name), ScenarioErrorKind::UnusedImage(name.value.clone()));
            }
        }
        scenarios
    }

    fn image(&mut self, name: &str, spec: &Spanned<ImageSpec>) -> Option<PlannedImage> {
        let short_form;
        let build = match &spec.value.build.value {
            BuildForm::Full(build) => build,
            // `build: ./app`, as compose writes it: the context, with every other setting at its default.
            BuildForm::Text(context) => {
                short_form = BuildSpec {
                    context: Spanned { value: context.clone(), referenced: spec.value.build.referenced },
                    dockerfile: None,
                    args: Default::default(),
                    target: None,
                    timeout: None,
                };
                &short_form
            }
        };
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
            None => (crate::dockerfile::DEFAULT_NAME.to_owned(), loc(&build.context)),
        };
        // A submission's folder (a context from a variable) without its Dockerfile is the submission's
        // mistake, reported as its failed build, not a mistake of the assignment file.
        let context_from_variable = build.context.value.contains("${");
        let wanted = match &build.dockerfile {
            Some(_) => crate::dockerfile::Wanted::Named(&dockerfile.0),
            None => crate::dockerfile::Wanted::Default,
        };
        if let Some(context) = &context
            && !context_from_variable
            && crate::dockerfile::find(context, wanted).is_none()
        {
            let path = context.join(&dockerfile.0).display().to_string();
            self.error(dockerfile.1, ScenarioErrorKind::MissingPath { path });
        }
        let args = build.args.iter().map(|(k, v)| (k.clone(), self.var(&v.value.0, loc(v)))).collect();
        let target = build.target.as_ref().map(|t| self.var(&t.value, loc(t)));
        let timeout = self.duration(&build.timeout, DEFAULT_BUILD_TIMEOUT);
        let grading = Grading {
            // The check is the image's build; the gradebook names its column.
            name: name.to_owned(),
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
        if s.compose.is_none() && s.containers.is_empty() && s.steps.is_empty() {
            self.warn(loc(&spec.value.name), ScenarioErrorKind::ChecksNothing { name: name.clone() });
        }
        // Containers start before any step: a value a step saves cannot be used in them.
        self.saves = ScenarioSaves::of(&s.steps);
        let (compose, known) = match &s.compose {
            Some(spec) => {
                let (planned, known) = self.compose(spec);
                (planned.map(Arc::new), Some(known))
            }
            None => (None, None),
        };
        let containers: Vec<PlannedContainer> =
            s.containers.iter().map(|(cname, c)| self.container(cname, c, images)).collect();
        let mut names: Vec<String> = containers.iter().map(|c| c.name.clone()).collect();
        // Steps are checked against the scenario's containers and the stack's services alike.
        let mut checked_against = containers.clone();
        self.open_names = known.as_ref().is_some_and(|k| k.names.is_none());
        self.services = Vec::new();
        self.stack = compose.as_ref().map(|_| StackState::Up);
        if let Some(known) = known {
            for service in known.names.iter().flatten() {
                if names.contains(service) {
                    self.error(
                        loc(&spec.value.name),
                        ScenarioErrorKind::Invalid(format!(
                            "`{service}` is both a container of the scenario and a service of its compose stack: \
                             rename the container"
                        )),
                    );
                }
            }
            self.services = known.names.clone().unwrap_or_default();
            names.extend(self.services.iter().cloned());
            checked_against.extend(known.stand_ins);
        }
        let mut running: HashSet<String> = names.iter().cloned().collect();
        self.tracked = super::release::Tracked::new(&checked_against);
        let mut steps = Vec::new();
        for (index, step) in s.steps.iter().enumerate() {
            self.saves.at_step(index);
            if let Some(planned) = self.step(step, &checked_against, &names, &mut running) {
                steps.push(planned);
            }
        }
        self.open_names = false;
        self.stack = None;
        self.compose_refused = false;
        // The scenario's own keys are fixed before its steps run too.
        self.saves.before_steps();
        let timeout = self.duration(&s.timeout, DEFAULT_SCENARIO_TIMEOUT);
        self.saves = ScenarioSaves::default();
        PlannedScenario {
            test_name: format!("{stem}::{name}"),
            name,
            at: self.at(loc(spec)),
            compose,
            containers,
            steps,
            ignore: s.ignore,
            timeout,
        }
    }
}

fn is_relative_inside(path: &str) -> bool {
    Path::new(path).components().all(|c| matches!(c, Component::Normal(_) | Component::CurDir))
}

fn display_dir(dir: &Path) -> String {
    if dir.as_os_str().is_empty() { ".".to_owned() } else { dir.display().to_string() }
}
