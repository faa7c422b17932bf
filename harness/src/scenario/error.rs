//! Errors in scenario files, each pointing at a file, line and column, rendered like a compiler's.

use std::fmt::Write as _;
use std::path::{Path, PathBuf};
use std::sync::Arc;

use annotate_snippets::{AnnotationKind, Group, Level, Renderer, Snippet};

/// A 1-based line and column in a scenario file.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
pub struct Loc {
    pub line: u32,
    pub column: u32,
}

impl Loc {
    /// The location serde-saphyr recorded, or `None` where it knows none (line 0).
    pub fn from_saphyr(location: serde_saphyr::Location) -> Option<Loc> {
        let clamp = |n: u64| u32::try_from(n).unwrap_or(u32::MAX);
        (location.line() > 0).then(|| Loc { line: clamp(location.line()), column: clamp(location.column().max(1)) })
    }
}

/// What is wrong in a scenario file.
#[derive(Debug, Clone, thiserror::Error)]
pub enum ScenarioErrorKind {
    #[error("cannot read the file: {0}")]
    Read(String),
    #[error("skipped: {0}")]
    Skipped(String),
    #[error("{0}")]
    Yaml(String),
    #[error("`{key}` takes {takes}, not {found}")]
    WrongType { key: String, takes: String, found: String, example: Option<String> },
    #[error("`{key}` is given twice in this mapping{}", first.map(|l| format!(" (first at line {}, column {})", l.line, l.column)).unwrap_or_default())]
    DuplicateKey { key: String, first: Option<Loc> },
    #[error("`{key}` is missing: {what}")]
    MissingKey { key: String, what: String },
    #[error("the file is not UTF-8 text: the byte 0x{byte:02X} here is not part of a UTF-8 character")]
    NotUtf8 { byte: u8 },
    #[error("this is a compose file (it has `services:`), not a scenario file")]
    ComposeFile,
    #[error("`{name}` is a named volume, private to the scenario and empty at first, not the folder `./{name}`")]
    VolumeShadowsFolder { name: String, target: String },
    #[error("the container name `{name}` is not a valid host name: other containers cannot reach it by name")]
    NotAHostName { name: String },
    #[error("the scenario `{name}` has no containers and no steps: it checks nothing")]
    ChecksNothing { name: String },
    #[error(
        "the host port here is not used: seatrial publishes container port {container_port} on 127.0.0.1 at a free host port itself"
    )]
    HostPortIgnored { container_port: u16 },
    #[error("unknown key `{found}`")]
    UnknownKey { found: String, expected: Vec<String> },
    #[error("unknown step `{found}`")]
    UnknownStep { found: String, expected: Vec<String> },
    #[error("invalid duration `{text}`: {reason}")]
    InvalidDuration { text: String, reason: String },
    #[error("`{name}` is not a container of this scenario")]
    UnknownContainer { name: String, known: Vec<String> },
    #[error("no container of this scenario publishes port {port}")]
    PortNotPublished { port: u16 },
    #[error("port {port} is published by several containers ({containers}): say which with `container:`")]
    AmbiguousPort { port: u16, containers: String },
    #[error("`{path}` does not exist")]
    MissingPath { path: String },
    #[error(
        "`{path}` is outside the scenario's folder `{root}`{}",
        real.as_ref().map(|real| format!(": it leads to `{real}`")).unwrap_or_default()
    )]
    PathEscapes { path: String, real: Option<String>, root: String },
    #[error("the build context `{path}` is outside the project `{project}` ({found})")]
    ContextEscapes { path: String, project: String, found: &'static str },
    #[error("cannot resolve the scenario file's folder `{folder}`: {reason}")]
    UnresolvedFolder { folder: String, reason: String },
    #[error("the environment variable `{name}` is not set and has no default")]
    UndefinedVariable { name: String },
    #[error("invalid variable reference: {0}")]
    BadVariable(String),
    #[error("invalid regular expression: {0}")]
    InvalidRegex(String),
    #[error("invalid JSONPath `{path}`: {reason}")]
    InvalidJsonPath { path: String, reason: String },
    #[error("a scenario named `{0}` already exists in this run")]
    DuplicateScenario(String),
    #[error("invalid volume `{0}`: write `name:/path` for a named volume or `./dir:/path[:ro]` for a bind mount")]
    InvalidVolume(String),
    #[error("invalid HTTP method `{0}`")]
    InvalidMethod(String),
    #[error("`{name}` is not an image of this file's `images:`")]
    UnknownImage { name: String, known: Vec<String> },
    #[error("the image `{0}` is defined in `images:` but no container uses it")]
    UnusedImage(String),
    #[error("invalid stop signal `{text}`: {reason}")]
    InvalidSignal { text: String, reason: String },
    #[error("`${{{name}}}` is used before the step that saves it (line {saved_line})")]
    UsedBeforeSaved { name: String, saved_line: u32 },
    #[error("`${{{name}}}` is a value saved by a step, and this key takes none: it is fixed before the steps run")]
    SavedValueNotHere { name: String },
    #[error("`{0}` cannot name a saved value: use letters, digits and `_`")]
    InvalidSaveName(String),
    #[error("{0}")]
    Invalid(String),
}

/// Errors stop the run before anything starts; warnings are shown and the run goes on.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Severity {
    Error,
    Warning,
}

/// An error in a scenario file with where it is and the text it is in.
#[derive(Debug, Clone)]
pub struct ScenarioError {
    pub file: PathBuf,
    pub loc: Option<Loc>,
    /// Boxed: errors travel in `Result`s, and the kinds with paths are large.
    pub kind: Box<ScenarioErrorKind>,
    pub severity: Severity,
    source_text: Arc<str>,
}

impl std::fmt::Display for ScenarioError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self.loc {
            Some(loc) => write!(f, "{}:{}:{}: {}", self.file.display(), loc.line, loc.column, self.kind),
            None => write!(f, "{}: {}", self.file.display(), self.kind),
        }
    }
}

impl std::error::Error for ScenarioError {}

impl ScenarioError {
    pub fn new(file: &Path, source_text: Arc<str>, loc: Option<Loc>, kind: ScenarioErrorKind) -> Self {
        ScenarioError { file: file.to_path_buf(), loc, kind: Box::new(kind), severity: Severity::Error, source_text }
    }

    /// The same, as a warning.
    pub fn warning(file: &Path, source_text: Arc<str>, loc: Option<Loc>, kind: ScenarioErrorKind) -> Self {
        ScenarioError { severity: Severity::Warning, ..ScenarioError::new(file, source_text, loc, kind) }
    }

    pub fn is_error(&self) -> bool {
        self.severity == Severity::Error
    }

    /// A suggestion for the person who wrote the file.
    pub fn help(&self) -> Option<String> {
        use ScenarioErrorKind::*;
        match &*self.kind {
            UnknownKey { found, expected } if expected.iter().any(|e| e == "image") && compose_key(found).is_some() => {
                compose_key(found).map(str::to_owned)
            }
            UnknownKey { found, expected } | UnknownStep { found, expected } => {
                let known = expected.iter().map(|e| format!("`{e}`")).collect::<Vec<_>>().join(", ");
                Some(match did_you_mean(found, expected) {
                    Some(near) => format!("did you mean `{near}`? (expected one of {known})"),
                    None => format!("expected one of {known}"),
                })
            }
            UnknownImage { name, known } => Some(match did_you_mean(name, known) {
                Some(near) => {
                    format!("did you mean `{near}`? (for an engine image of this name, write `{name}:latest`)")
                }
                None => format!("the images are: {}", known.join(", ")),
            }),
            UnusedImage(_) => Some("remove it, or name it in a container's `image:`".to_owned()),
            UnknownContainer { name, known } => Some(match did_you_mean(name, known) {
                Some(near) => format!("did you mean `{near}`?"),
                None if known.is_empty() => "this scenario defines no containers".to_owned(),
                None => format!("the containers are: {}", known.join(", ")),
            }),
            InvalidDuration { .. } => Some("write durations like `500ms`, `30s`, `1m30s`".to_owned()),
            WrongType { example: Some(example), .. } => Some(format!("for example: `{example}`")),
            DuplicateKey { .. } => Some("keep one of them (YAML keeps no duplicates: the last would win)".to_owned()),
            MissingKey { key, .. } => {
                super::messages::what_key_takes(key).map(|(_, ex)| format!("for example: `{ex}`"))
            }
            HostPortIgnored { container_port } => Some(format!(
                "steps name the container port (`http: {{ port: {container_port} }}`), and parallel scenarios never clash \
                 on host ports; `--keep` prints the host port of a failed scenario"
            )),
            VolumeShadowsFolder { name, target } => Some(format!(
                "to mount the folder beside the scenario file, write `./{name}:{target}`; to keep a named volume, \
                 give it a name that no folder has"
            )),
            NotAHostName { .. } => Some("use letters a-z, digits and `-` (`web`, `api-1`)".to_owned()),
            ChecksNothing { .. } => Some("give it `containers:` to run and `steps:` to check them".to_owned()),
            NotUtf8 { .. } => {
                Some("save the file as UTF-8 (every editor can; `iconv -f latin1 -t utf-8` converts it)".to_owned())
            }
            ComposeFile => Some(
                "a scenario file names the compose file and says what to check: `scenarios: [{ name: stack, compose: \
                 { file: docker-compose.yml }, steps: [...] }]`; each service is a container of the steps, by its \
                 name (docs/scenario-format.md, \"Compose stacks\")"
                    .to_owned(),
            ),
            UndefinedVariable { name } => Some(format!("set it, or give a default: `${{{name}:-value}}`")),
            PathEscapes { .. } => Some(
                "a bind mount's source (or a file to upload) must really be below the folder of the scenario file \
                 (after `..` and symlinks), or below the submission's folder when grading"
                    .to_owned(),
            ),
            ContextEscapes { .. } => Some(
                "a build context must be inside the project, or come from a variable given on the command line, \
                 such as `${SUBMISSION}`; `--root DIR` names the project folder"
                    .to_owned(),
            ),
            PortNotPublished { port } => Some(format!(
                "add {port} to the container's `ports:`, or send the request from inside the scenario's network \
                 with `from: <another container>`"
            )),
            UsedBeforeSaved { name, .. } => Some(format!(
                "a saved value exists from the step after the one that saves it; `${{{name}}}` is not read from the \
                 environment, since a step of this scenario saves it"
            )),
            SavedValueNotHere { .. } => Some(
                "saved values go in a step's request and command text: `http` path, headers, bodies and expected \
                 text; `exec` cmd and expected output; `logs` expected text"
                    .to_owned(),
            ),
            InvalidSignal { text, .. } => {
                let names = super::signal::signal_names();
                let written = text.trim().to_ascii_uppercase();
                let written = if written.starts_with("SIG") { written } else { format!("SIG{written}") };
                // A number out of range is near no name.
                let near = if text.trim().parse::<i64>().is_ok() { None } else { did_you_mean(&written, &names) };
                Some(match near {
                    Some(near) => {
                        format!("did you mean `{near}`? (write a name such as `SIGINT` or `INT`, or a number)")
                    }
                    None => "write a name such as `SIGINT` or `INT`, or a number from 1 to 64".to_owned(),
                })
            }
            _ => None,
        }
    }

    /// The whole message as a person reads it: `--> file:line:col`, the source line, a caret, and help.
    pub fn render(&self, color: bool) -> String {
        let title = self.kind.to_string();
        let path = self.file.display().to_string();
        let renderer = if color { Renderer::styled() } else { Renderer::plain() };
        let level = if self.is_error() { Level::ERROR } else { Level::WARNING };
        let help = self.help();
        let mut groups = Vec::new();
        match self.loc.and_then(|loc| byte_span(&self.source_text, loc)) {
            Some(span) => {
                let line_range = line_window(&self.source_text, span.start);
                let local = (span.start - line_range.start)..(span.end - line_range.start);
                let snippet_text = &self.source_text[line_range.clone()];
                let first_line = self.source_text[..line_range.start].matches('\n').count() + 1;
                groups.push(
                    level.clone().primary_title(title.clone()).element(
                        Snippet::source(snippet_text)
                            .line_start(first_line)
                            .path(path.clone())
                            .annotation(AnnotationKind::Primary.span(local)),
                    ),
                );
            }
            None => {
                groups.push(Group::with_title(level.primary_title(format!("{title}\n  --> {path}"))));
            }
        }
        if let Some(help) = &help {
            groups.push(Group::with_title(Level::HELP.secondary_title(help.clone())));
        }
        let mut out = renderer.render(&groups).to_string();
        out.push('\n');
        out
    }
}

/// Compose's keys for a service that seatrial says otherwise: where to find the same thing.
fn compose_key(key: &str) -> Option<&'static str> {
    Some(match key {
        "environment" => "compose's `environment:` is `env:` here (a mapping, or a list of `KEY=VALUE`)",
        "depends_on" => {
            "containers start in the order they are written, each waiting for its `ready:` check: put the one \
             this depends on first and give it a `ready:`"
        }
        "healthcheck" => {
            "seatrial waits with `ready:` instead (`ready: { http: { port: 8000, path: /health } }`, or `tcp:`, \
             `log:`, `exec:`), probing faster than a healthcheck's interval"
        }
        "build" => {
            "images are built under the file's `images:` (`images: { app: { build: ./app } }`); then `image: app`"
        }
        "expose" => "seatrial publishes the `ports:` it checks, on 127.0.0.1 at free host ports: `ports: [8000]`",
        "restart" => {
            "a restart policy would hide crashes from the checks; a `restart: web` step restarts a container on purpose"
        }
        "container_name" => {
            "seatrial names containers itself, so that scenarios run in parallel without clashing; steps use the \
             name under `containers:`"
        }
        "networks" => "each scenario's containers share a network of their own and reach each other by name",
        "working_dir" => "compose's `working_dir:` is `workdir:` here",
        _ => return None,
    })
}

/// Whether errors on stderr get colours: only on a terminal, and never with `NO_COLOR` set.
pub fn stderr_wants_color() -> bool {
    use std::io::IsTerminal;
    std::io::stderr().is_terminal() && std::env::var_os("NO_COLOR").is_none()
}

/// Renders many errors and warnings one after the other, with a closing count.
pub fn render_all(problems: &[ScenarioError], color: bool) -> String {
    let mut out = String::new();
    for problem in problems {
        out.push_str(&problem.render(color));
        out.push('\n');
    }
    let errors = problems.iter().filter(|p| p.is_error()).count();
    let warnings = problems.len() - errors;
    let plural = |n: usize| if n == 1 { "" } else { "s" };
    match (errors, warnings) {
        (0, w) => _ = writeln!(out, "warning: {w} warning{}", plural(w)),
        (e, 0) => _ = writeln!(out, "error: {e} problem{} found", plural(e)),
        (e, w) => _ = writeln!(out, "error: {e} problem{} found, and {w} warning{}", plural(e), plural(w)),
    }
    out
}

/// The nearest known name, when it is close enough to be a typo: similar by Jaro-Winkler, or one or two
/// edits away (a swap of two letters counts as one, so `wbe` finds `web`).
pub fn did_you_mean<'a>(found: &str, known: &'a [String]) -> Option<&'a str> {
    let edits_allowed = if found.chars().count() <= 4 { 1 } else { 2 };
    known
        .iter()
        .map(|k| (strsim::osa_distance(found, k), strsim::jaro_winkler(found, k), k))
        .filter(|(edits, score, _)| *score > 0.8 || *edits <= edits_allowed)
        .min_by(|a, b| a.0.cmp(&b.0).then(b.1.total_cmp(&a.1)))
        .map(|(_, _, k)| k.as_str())
}

/// The line `loc` is on, and the byte range (within that line) of the token that starts at its column: what
/// a caret under a source line marks, for parse errors and for failures at run time alike.
pub fn line_and_token(text: &str, loc: Loc) -> Option<(&str, std::ops::Range<usize>)> {
    let span = byte_span(text, loc)?;
    let line_start = text[..span.start].rfind('\n').map_or(0, |i| i + 1);
    let line_end = text[span.start..].find('\n').map_or(text.len(), |i| span.start + i);
    Some((&text[line_start..line_end], (span.start - line_start)..(span.end.min(line_end) - line_start)))
}

/// The byte range of the token starting at `loc`: to the end of the word, at least one character.
fn byte_span(text: &str, loc: Loc) -> Option<std::ops::Range<usize>> {
    let line_start =
        if loc.line <= 1 { 0 } else { text.match_indices('\n').nth(usize::try_from(loc.line).ok()? - 2)?.0 + 1 };
    let line_end = text[line_start..].find('\n').map_or(text.len(), |i| line_start + i);
    let line = &text[line_start..line_end];
    let column = usize::try_from(loc.column).ok()?.saturating_sub(1);
    let start = line_start + line.char_indices().nth(column).map_or(line.len(), |(i, _)| i);
    let rest = &text[start..line_end];
    let token_len = rest
        .char_indices()
        .find(|(_, c)| c.is_whitespace() || matches!(c, ':' | ',' | '}' | ']'))
        .map_or(rest.len(), |(i, _)| i);
    let end = start + token_len.max(rest.chars().next().map_or(0, char::len_utf8));
    Some(start..end.max(start))
}

/// The lines around `at`: the line itself and the one before, for context.
fn line_window(text: &str, at: usize) -> std::ops::Range<usize> {
    let line_start = text[..at].rfind('\n').map_or(0, |i| i + 1);
    let start = if line_start == 0 { 0 } else { text[..line_start - 1].rfind('\n').map_or(0, |i| i + 1) };
    let end = text[at..].find('\n').map_or(text.len(), |i| at + i);
    start..end
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn suggests_a_near_key() {
        let known = vec!["timeout".to_owned(), "http".to_owned()];
        assert_eq!(did_you_mean("timout", &known), Some("timeout"));
        assert_eq!(did_you_mean("zzz", &known), None);
        let containers = vec!["web".to_owned(), "db".to_owned()];
        assert_eq!(did_you_mean("wbe", &containers), Some("web"));
        assert_eq!(did_you_mean("cache", &containers), None);
    }

    #[test]
    fn spans_the_word_at_the_location() {
        let text = "a: 1\n  timout: 5s\n";
        let span = byte_span(text, Loc { line: 2, column: 3 }).unwrap();
        assert_eq!(&text[span], "timout");
    }

    #[test]
    fn renders_file_line_column_and_caret() {
        let text: Arc<str> = "scenarios:\n  - name: x\n    stepz: []\n".into();
        let err = ScenarioError::new(
            Path::new("s.yaml"),
            text,
            Some(Loc { line: 3, column: 5 }),
            ScenarioErrorKind::UnknownKey { found: "stepz".into(), expected: vec!["steps".into(), "name".into()] },
        );
        let out = err.render(false);
        assert!(out.contains("--> s.yaml:3:5"), "{out}");
        assert!(out.contains("^^^^^"), "{out}");
        assert!(out.contains("did you mean `steps`?"), "{out}");
    }
}
