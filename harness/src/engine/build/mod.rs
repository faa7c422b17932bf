//! Image builds: in, a [`BuildRequest`] and its context packed as a [`ContextTar`]; out, the built
//! image's id, or a [`BuildError`] that keeps the build log so that a failure can show the instruction
//! that failed and its last lines. `context` packs the folder (honouring `.dockerignore`), `buildkit` and
//! `legacy` are the engine's two builders, and [`Engine::build_image`] here chooses between them.

mod buildkit;
mod context;
mod images;
mod legacy;

use std::collections::HashMap;
use std::path::{Path, PathBuf};

use bollard::query_parameters::BuildImageOptions;

pub use self::context::{ContextTar, context_tar, explain_missing_source, find_dockerfile};
pub use self::legacy::has_unfinished_step_images;
use super::dockerignore::PatternError;
use super::{Engine, EngineError};

/// Why an image could not be built.
#[derive(Debug, Clone, thiserror::Error)]
pub enum BuildError {
    #[error("cannot read the build context {path}: {message}")]
    Context { path: PathBuf, message: String },
    #[error(transparent)]
    Pattern(#[from] PatternError),
    #[error("the build failed: {message}")]
    Failed {
        /// Seatrial's words where the builder's are known to differ between builders and versions
        /// ("the command exited with code 7"), else the builder's own.
        message: String,
        /// The Dockerfile instruction that failed, however the builder named it.
        step: Option<FailedStep>,
        /// What the failed instruction printed, when the builder said which one failed; else the
        /// builder's output (its newest part).
        log: String,
    },
    #[error("there is no `{dockerfile}` in {context}{}", folder_holds(found))]
    NoDockerfile { context: PathBuf, dockerfile: String, found: Vec<String> },
    /// The engine has no such builder (BuildKit on Podman or an old engine); another one is tried.
    #[error("the builder is not available: {message}")]
    BuilderUnavailable { message: String },
    /// The Dockerfile's `# syntax=` line names a frontend image that BuildKit could not fetch, and the
    /// legacy builder, which reads that line as a comment, failed on the Dockerfile too.
    #[error(
        "the Dockerfile's first line asks BuildKit for the frontend image `{frontend}`, which the engine could not \
         fetch ({why}); the legacy builder, tried instead, failed: {legacy}"
    )]
    FrontendUnavailable { frontend: String, why: String, legacy: Box<BuildError> },
    #[error(transparent)]
    Engine(#[from] EngineError),
}

/// `(it is empty)`, or what the folder holds, so that a student sees the file they named wrongly.
fn folder_holds(found: &[String]) -> String {
    const SHOWN: usize = 12;
    match found {
        [] => " (the folder is empty)".to_owned(),
        _ => {
            let mut shown: Vec<String> = found.iter().take(SHOWN).map(|name| format!("`{name}`")).collect();
            if found.len() > SHOWN {
                shown.push(format!("and {} more", found.len() - SHOWN));
            }
            format!(" (the folder holds {})", shown.join(", "))
        }
    }
}

impl BuildError {
    /// The builder's output, when there was one.
    pub fn log(&self) -> Option<&str> {
        match self {
            BuildError::Failed { log, .. } => Some(log),
            BuildError::FrontendUnavailable { legacy, .. } => legacy.log(),
            _ => None,
        }
    }

    /// The Dockerfile instruction at which the build failed, when the builder said.
    pub fn failed_step(&self) -> Option<&FailedStep> {
        match self {
            BuildError::Failed { step, .. } => step.as_ref(),
            BuildError::FrontendUnavailable { legacy, .. } => legacy.failed_step(),
            _ => None,
        }
    }

    /// What the person who wrote the Dockerfile can do about it, when that is known.
    pub fn hint(&self) -> Option<String> {
        match self {
            BuildError::FrontendUnavailable { frontend, .. } => Some(format!(
                "no registry gave the engine `{frontend}`: remove the `# syntax=` line to build with the engine's own \
                 Dockerfile frontend (features newer than the engine's, such as heredocs on Docker 20.10, then need \
                 rewriting), or give the engine the image (`docker load`, or a registry mirror it can reach)"
            )),
            _ => None,
        }
    }
}

/// The Dockerfile instruction at which a build failed. Each builder numbers and frames it its own way
/// (BuildKit `[2/3] RUN make`, per stage; the legacy builder `Step 2/3 : RUN make`; buildah
/// `STEP 2/3: RUN make`, counting the LABEL steps it adds), so only the instruction is kept, with its line
/// in the Dockerfile: the same words whatever the engine.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct FailedStep {
    /// The instruction as the builder showed it: `RUN make`.
    pub instruction: String,
    /// Its line in the Dockerfile (1-based), when it is found there.
    pub line: Option<usize>,
    /// The Dockerfile's name in its context, for the message.
    pub dockerfile: String,
}

impl std::fmt::Display for FailedStep {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "`{}`", self.instruction)?;
        match self.line {
            Some(line) => write!(f, " ({} line {line})", self.dockerfile),
            None => Ok(()),
        }
    }
}

impl FailedStep {
    /// The instruction in a builder's step line, without the builder's numbering.
    pub fn instruction_of(step_line: &str) -> String {
        let mut rest = step_line.trim();
        // BuildKit's `[2/3] `, `[stage-1 2/3] `; buildah's stage prefix `[1/2] ` before `STEP`.
        if rest.starts_with('[')
            && let Some(end) = rest.find("] ")
        {
            rest = &rest[end + 2..];
        }
        for (prefix, separator) in [("Step ", " : "), ("STEP ", ": ")] {
            if let Some(numbered) = rest.strip_prefix(prefix)
                && let Some((count, instruction)) = numbered.split_once(separator)
                && count.split('/').all(|n| n.parse::<usize>().is_ok())
            {
                rest = instruction;
                break;
            }
        }
        rest.trim().to_owned()
    }

    /// The failed step named by a builder's step line, placed in the Dockerfile `text`.
    pub fn locate(step_line: &str, dockerfile_name: &str, text: Option<&str>) -> FailedStep {
        let instruction = FailedStep::instruction_of(step_line);
        let line = text.and_then(|text| instruction_line(text, &instruction));
        FailedStep { instruction, line, dockerfile: dockerfile_name.to_owned() }
    }
}

/// The line where `instruction` starts in a Dockerfile: its lines joined where they end in `\`, compared
/// with runs of white space as one and the instruction's keyword in any case.
fn instruction_line(dockerfile: &str, instruction: &str) -> Option<usize> {
    let squeeze = |text: &str| text.split_whitespace().collect::<Vec<_>>().join(" ");
    let wanted = squeeze(instruction);
    let same = |candidate: &str| {
        let candidate = squeeze(candidate);
        match (candidate.split_once(' '), wanted.split_once(' ')) {
            (Some((k1, r1)), Some((k2, r2))) => k1.eq_ignore_ascii_case(k2) && r1 == r2,
            _ => candidate.eq_ignore_ascii_case(&wanted),
        }
    };
    let lines: Vec<&str> = dockerfile.lines().collect();
    let mut index = 0;
    while index < lines.len() {
        let start = index;
        let mut joined = String::new();
        loop {
            let line = lines[index].trim_end();
            index += 1;
            match line.strip_suffix('\\') {
                Some(continued) if index < lines.len() => {
                    joined.push_str(continued);
                    joined.push(' ');
                }
                _ => {
                    joined.push_str(line);
                    break;
                }
            }
        }
        if same(&joined) {
            return Some(start + 1);
        }
    }
    None
}

/// Seatrial's words for a builder's message where builders say the same thing differently: a RUN command
/// that exited (`executor failed running [...]: exit code: 7` in Docker 20.10's BuildKit, `process "..." did
/// not complete successfully: exit code: 7` in Docker 23+, `The command '...' returned a non-zero code: 7`
/// in the legacy builder, `building at STEP "...": while running runtime: exit status 7` in buildah) and a
/// COPY source that is not in the context. Other messages are the builder's own.
pub fn common_words(message: &str) -> String {
    static EXITED: std::sync::LazyLock<regex::Regex> = std::sync::LazyLock::new(|| {
        regex::Regex::new(r"(?:exit code: |returned a non-zero code: |while running runtime: exit status )(\d+)\s*$")
            .expect("a valid pattern")
    });
    if let Some(code) = EXITED.captures(message.trim()).and_then(|c| c.get(1)) {
        return format!("the command exited with code {}", code.as_str());
    }
    if let Some(source) = context::missing_source(message) {
        return format!("`{source}` is not in the build context");
    }
    message.to_owned()
}

/// What to build.
#[derive(Debug, Clone)]
pub struct BuildRequest {
    pub context: PathBuf,
    pub dockerfile: String,
    pub args: Vec<(String, String)>,
    pub target: Option<String>,
    pub tag: String,
    pub labels: HashMap<String, String>,
    /// Told each Dockerfile instruction as the builder starts it, for a live view of long builds.
    pub progress: BuildProgressSink,
}

/// Where a build's progress goes: each instruction's name as the builder starts it.
#[derive(Clone, Default)]
pub struct BuildProgressSink(Option<std::sync::Arc<ProgressFn>>);

type ProgressFn = dyn Fn(&str) + Send + Sync;

impl BuildProgressSink {
    pub fn new(sink: impl Fn(&str) + Send + Sync + 'static) -> BuildProgressSink {
        BuildProgressSink(Some(std::sync::Arc::new(sink)))
    }

    fn tell(&self, line: &str) {
        if let Some(sink) = &self.0 {
            sink(line);
        }
    }
}

impl std::fmt::Debug for BuildProgressSink {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(if self.0.is_some() { "BuildProgressSink(..)" } else { "BuildProgressSink(none)" })
    }
}

/// How much of a build's output seatrial keeps (the newest part): a RUN step that prints without end
/// must not grow seatrial's memory with it. BuildKit clips a step's output itself (at 2 MiB by default);
/// the legacy builder passes everything on.
pub const BUILD_LOG_LIMIT: usize = 1 << 20;

/// A build's output, the newest [`BUILD_LOG_LIMIT`] bytes of it.
#[derive(Debug, Default)]
struct BuildLog {
    text: String,
    cut: bool,
}

impl BuildLog {
    fn push(&mut self, more: &str) {
        self.text.push_str(more);
        // Cut in halves' worth, not per push, so that a flood costs linear time.
        if self.text.len() > 2 * BUILD_LOG_LIMIT {
            let mut from = self.text.len() - BUILD_LOG_LIMIT;
            while !self.text.is_char_boundary(from) {
                from += 1;
            }
            let from = self.text[from..].find('\n').map_or(from, |newline| from + newline + 1);
            self.text.drain(..from);
            self.cut = true;
        }
    }

    fn into_text(self) -> String {
        if self.cut {
            format!("[earlier build output cut: only the last {} KiB are kept]\n{}", BUILD_LOG_LIMIT >> 10, self.text)
        } else {
            self.text
        }
    }
}

/// The frontend image a Dockerfile's parser directive names (`# syntax=docker/dockerfile:1.4`). Directives
/// come first, before any other comment, blank line or instruction, as BuildKit reads them.
pub fn syntax_frontend(dockerfile: &Path) -> Option<String> {
    use std::io::BufRead as _;
    let file = std::fs::File::open(dockerfile).ok()?;
    for line in std::io::BufReader::new(file).lines().take(16) {
        let line = line.ok()?;
        let directive = line.trim().strip_prefix('#')?;
        let (key, value) = directive.split_once('=')?;
        if key.trim().eq_ignore_ascii_case("syntax") {
            return Some(value.trim().to_owned());
        }
    }
    None
}

/// Whether BuildKit failed because it could not fetch the frontend image of the Dockerfile's `# syntax=`
/// line. Docker 20.10 says `... frontend gateway.v0 ...`; Docker 23+ says `failed to resolve source
/// metadata for docker.io/docker/dockerfile:1: ...` before any instruction runs.
fn frontend_unavailable(message: &str, request: &BuildRequest) -> bool {
    if message.contains("frontend gateway.v0") {
        return true;
    }
    let Some(frontend) = syntax_frontend(&request.context.join(&request.dockerfile)) else { return false };
    let repository = frontend.split(['@', ':']).next().unwrap_or(&frontend);
    message.contains("failed to resolve source metadata for") && !repository.is_empty() && message.contains(repository)
}

/// BuildKit's words for a frontend it could not resolve, cut to the part that names the cause.
fn frontend_failure(message: &str) -> String {
    let lower = message.to_ascii_lowercase();
    if ["dial tcp", "lookup ", "no such host", "i/o timeout", "connection refused", "network is unreachable"]
        .iter()
        .any(|w| lower.contains(w))
    {
        "no registry answers".to_owned()
    } else {
        let message = message.trim();
        match message.char_indices().nth(200) {
            Some((cut, _)) => format!("{}...", &message[..cut]),
            None => message.to_owned(),
        }
    }
}

impl Engine {
    /// Builds an image from a context tar with BuildKit where the engine offers it (one container-free
    /// solve: 5 s instead of 29 s for a 5-instruction Dockerfile on fuse-overlayfs, measured in bench/),
    /// else, or with `SEATRIAL_BUILDER=legacy`, with the legacy builder. The builder's output is kept:
    /// on failure it is the evidence.
    async fn build_with_either(&self, request: &BuildRequest, context_tar: &ContextTar) -> Result<String, BuildError> {
        let mut frontend_refused = None;
        if !self.buildkit_unavailable.load(std::sync::atomic::Ordering::SeqCst) {
            match self.build_with_buildkit(request, context_tar).await {
                Err(BuildError::BuilderUnavailable { .. }) => {
                    // Podman's and older engines' /build has no BuildKit session: the legacy builder it is.
                    self.buildkit_unavailable.store(true, std::sync::atomic::Ordering::SeqCst);
                }
                // A `# syntax=` line names a frontend image that BuildKit must pull; with no registry the
                // legacy builder, which reads the line as a comment, may still build the Dockerfile. If it
                // cannot, its error (often a parse error far from the cause) is told after the real cause.
                Err(BuildError::Failed { message, .. }) if frontend_unavailable(&message, request) => {
                    frontend_refused = Some(message);
                }
                other => return other,
            }
        }
        let built = self.build_with_legacy_builder(request, context_tar).await;
        match (built, frontend_refused) {
            (Err(legacy), Some(why)) => Err(BuildError::FrontendUnavailable {
                frontend: syntax_frontend(&request.context.join(&request.dockerfile))
                    .unwrap_or_else(|| "(named in its `# syntax=` line)".to_owned()),
                why: frontend_failure(&why),
                legacy: Box::new(legacy),
            }),
            (built, _) => built,
        }
    }

    /// Builds with the builder the engine offers, then puts a failure in builder-independent words: the
    /// failed instruction placed in the Dockerfile, a command's exit in seatrial's words.
    pub async fn build_image(&self, request: &BuildRequest, context_tar: &ContextTar) -> Result<String, BuildError> {
        match self.build_with_either(request, context_tar).await {
            Err(BuildError::Failed { message, step, log }) => Err(BuildError::Failed {
                message: common_words(&message),
                step: step.map(|step| {
                    let text = std::fs::read_to_string(request.context.join(&request.dockerfile)).ok();
                    FailedStep::locate(&step.instruction, &request.dockerfile, text.as_deref())
                }),
                log,
            }),
            other => other,
        }
    }

    fn build_options(request: &BuildRequest) -> BuildImageOptions {
        BuildImageOptions {
            dockerfile: request.dockerfile.clone(),
            t: Some(request.tag.clone()),
            buildargs: Some(request.args.iter().cloned().collect()),
            target: request.target.clone().unwrap_or_default(),
            labels: Some(request.labels.clone()),
            rm: true,
            forcerm: true,
            // Never pull: the base images are local (and there may be no registry at all).
            pull: None,
            ..Default::default()
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn reads_the_syntax_directive_only_where_builders_do() {
        let dir = tempfile::tempdir().unwrap();
        let file = dir.path().join("Dockerfile");
        std::fs::write(&file, "# syntax = docker/dockerfile:1.4\nFROM x\n").unwrap();
        assert_eq!(syntax_frontend(&file).as_deref(), Some("docker/dockerfile:1.4"));
        std::fs::write(&file, "# escape=`\n# syntax=a/b\nFROM x\n").unwrap();
        assert_eq!(syntax_frontend(&file).as_deref(), Some("a/b"));
        std::fs::write(&file, "FROM x\n# syntax=a/b\n").unwrap();
        assert_eq!(syntax_frontend(&file), None);
    }

    #[test]
    fn a_failed_step_reads_the_same_from_every_builder() {
        let dockerfile = "FROM seatrial/busybox\nRUN apk add \\\n    curl  &&  true\nrun echo hi >&2 && exit 7\n";
        for line in [
            "[2/3] RUN echo hi >&2 && exit 7",
            "[stage-1 2/3] RUN echo hi >&2 && exit 7",
            "Step 3/3 : RUN echo hi >&2 && exit 7",
            "STEP 3/9: RUN echo hi >&2 && exit 7",
            "[1/2] STEP 3/9: RUN echo hi >&2 && exit 7",
        ] {
            let step = FailedStep::locate(line, "Dockerfile", Some(dockerfile));
            assert_eq!(step.to_string(), "`RUN echo hi >&2 && exit 7` (Dockerfile line 4)", "{line}");
        }
        let continued = FailedStep::locate("[2/3] RUN apk add     curl  &&  true", "Dockerfile", Some(dockerfile));
        assert_eq!(continued.line, Some(2));
        assert_eq!(FailedStep::locate("Step 1/1 : RUN x", "Dockerfile", None).to_string(), "`RUN x`");
    }

    #[test]
    fn a_command_that_exits_reads_the_same_from_every_builder() {
        for message in [
            r#"executor failed running [/bin/sh -c echo "E" >&2 && exit 7]: exit code: 7"#,
            r#"process "/bin/sh -c echo \"E\" >&2 && exit 7" did not complete successfully: exit code: 7"#,
            "The command '/bin/sh -c exit 7' returned a non-zero code: 7",
            r#"building at STEP "RUN echo "E" >&2 && exit 7": while running runtime: exit status 7"#,
        ] {
            assert_eq!(common_words(message), "the command exited with code 7", "{message}");
        }
        for message in [
            r#"failed to compute cache key: "/app.py" not found: not found"#,
            "COPY failed: file not found in build context or excluded by .dockerignore: stat app.py: file does not exist",
            r#"building at STEP "COPY app.py .": checking on sources under "/var/tmp/x": copier: stat: "/app.py": no such file or directory"#,
        ] {
            assert_eq!(common_words(message), "`app.py` is not in the build context", "{message}");
        }
        assert_eq!(common_words("no space left on device"), "no space left on device");
    }

    #[test]
    fn an_unfetchable_frontend_is_told_in_each_docker_s_words() {
        let dir = tempfile::tempdir().unwrap();
        std::fs::write(dir.path().join("Dockerfile"), "# syntax=docker/dockerfile:1\nFROM x\n").unwrap();
        let request = BuildRequest {
            context: dir.path().to_path_buf(),
            dockerfile: "Dockerfile".into(),
            args: Vec::new(),
            target: None,
            tag: "t".into(),
            labels: HashMap::new(),
            progress: BuildProgressSink::default(),
        };
        let docker_26 = "failed to resolve source metadata for docker.io/docker/dockerfile:1: failed to do request: \
                         Head \"https://registry-1.docker.io/v2/docker/dockerfile/manifests/1\": dial tcp: lookup \
                         registry-1.docker.io: no such host";
        assert!(frontend_unavailable(docker_26, &request));
        assert!(frontend_unavailable("failed to solve with frontend gateway.v0: rpc error", &request));
        assert!(!frontend_unavailable("failed to resolve source metadata for docker.io/library/python:3", &request));
        assert_eq!(frontend_failure(docker_26), "no registry answers");
    }

    #[test]
    fn a_flood_of_build_output_keeps_only_its_newest_part() {
        let mut log = BuildLog::default();
        let line = format!("{}\n", "é".repeat(511));
        for _ in 0..(8 * BUILD_LOG_LIMIT / line.len()) {
            log.push(&line);
            assert!(log.text.len() <= 2 * BUILD_LOG_LIMIT + line.len());
        }
        log.push("the last line\n");
        let text = log.into_text();
        assert!(text.starts_with("[earlier build output cut: only the last 1024 KiB are kept]\n"), "{}", &text[..80]);
        assert!(text.ends_with("the last line\n"));
        assert!(text.lines().skip(1).all(|l| l == "é".repeat(511) || l == "the last line"), "cut at a line start");
    }
}
