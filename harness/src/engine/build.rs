//! Image builds: the context folder as a tar (honouring `.dockerignore`), sent to the engine's builder,
//! with the build log kept so that a failure can show the instruction that failed and its last lines.

use std::collections::HashMap;
use std::path::{Path, PathBuf};

use bollard::Docker;
use bollard::query_parameters::{BuildImageOptions, BuilderVersion, RemoveImageOptions};
use futures_util::StreamExt;

use super::dockerignore::{DockerIgnore, PatternError};
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
        message: String,
        /// The Dockerfile instruction that failed, as the builder names it (`[3/3] COPY app.py .`).
        step: Option<String>,
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

/// The Dockerfile of a context as `docker build` finds it: the name given, or, for the default name,
/// `dockerfile` as the docker CLI also accepts.
pub fn find_dockerfile(context: &Path, dockerfile: &str) -> Result<String, BuildError> {
    if context.join(dockerfile).is_file() {
        return Ok(dockerfile.to_owned());
    }
    if dockerfile == "Dockerfile" && context.join("dockerfile").is_file() {
        return Ok("dockerfile".to_owned());
    }
    let mut found: Vec<String> = std::fs::read_dir(context)
        .map_err(|e| BuildError::Context { path: context.to_path_buf(), message: e.to_string() })?
        .filter_map(Result::ok)
        .map(|entry| {
            let name = entry.file_name().to_string_lossy().into_owned();
            if entry.file_type().is_ok_and(|t| t.is_dir()) { format!("{name}/") } else { name }
        })
        .collect();
    found.sort();
    Err(BuildError::NoDockerfile { context: context.to_path_buf(), dockerfile: dockerfile.to_owned(), found })
}

/// Why a COPY or ADD source was "not found", judged from the context folder itself: the file is there
/// but `.dockerignore` leaves it out, its name differs in case only, or it is not there at all.
pub fn explain_missing_source(context: &Path, message: &str) -> Option<String> {
    static PATTERNS: std::sync::LazyLock<[regex::Regex; 2]> = std::sync::LazyLock::new(|| {
        [
            // BuildKit: `failed to compute cache key: "/app.py" not found: not found` (and `"/app.py": not found`)
            regex::Regex::new(r#""/?([^"]+)":? not found"#).expect("a valid pattern"),
            // the legacy builder: `COPY failed: ... stat app.py: file does not exist`
            regex::Regex::new(r"stat (\S+): file does not exist").expect("a valid pattern"),
        ]
    });
    let source = PATTERNS.iter().find_map(|p| p.captures(message))?.get(1)?.as_str().trim_start_matches("./");
    if source.is_empty() || source.contains(['*', '?', '[']) || source.split('/').any(|part| part == "..") {
        return None;
    }
    if context.join(source).exists() {
        let ignored = std::fs::read_to_string(context.join(".dockerignore"))
            .ok()
            .and_then(|text| DockerIgnore::parse(&text).ok())
            .is_some_and(|ignore| ignore.is_ignored(source));
        return Some(if ignored {
            format!("`{source}` is in the folder, but `.dockerignore` leaves it out of the build context")
        } else {
            format!("`{source}` is in the folder but was not in the build context")
        });
    }
    let (parent, name) = match source.rsplit_once('/') {
        Some((parent, name)) => (context.join(parent), name),
        None => (context.to_path_buf(), source),
    };
    let siblings: Vec<String> = std::fs::read_dir(&parent)
        .map(|entries| entries.filter_map(Result::ok).map(|e| e.file_name().to_string_lossy().into_owned()).collect())
        .unwrap_or_default();
    if let Some(other) = siblings.iter().find(|s| s.eq_ignore_ascii_case(name)) {
        return Some(format!("the folder has `{other}`, not `{name}`: file names are case-sensitive in a build"));
    }
    let close = siblings
        .iter()
        .map(|s| (strsim::jaro_winkler(s, name), s))
        .filter(|(score, _)| *score > 0.85)
        .max_by(|a, b| a.0.total_cmp(&b.0));
    Some(match close {
        Some((_, other)) => format!("there is no `{source}` in the folder; did you mean `{other}`?"),
        None => format!("there is no `{source}` in the folder"),
    })
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
    pub fn failed_step(&self) -> Option<&str> {
        match self {
            BuildError::Failed { step, .. } => step.as_deref(),
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

/// A build context packed as a tar in an unlinked temporary file: a submission that holds a virtualenv
/// or a dataset costs disk for the length of its build, not seatrial's memory (and a killed run leaves
/// no file). Each builder reads it from the start.
#[derive(Debug, Clone)]
pub struct ContextTar {
    file: std::sync::Arc<std::fs::File>,
    pub len: u64,
}

impl ContextTar {
    /// The tar as a request body, read in chunks as the engine takes it.
    fn chunks(&self) -> impl futures_util::Stream<Item = Result<bytes::Bytes, std::io::Error>> + Send + 'static {
        const CHUNK: usize = 1 << 20;
        futures_util::stream::try_unfold((self.file.clone(), 0u64), |(file, offset)| async move {
            let reader = file.clone();
            let chunk = tokio::task::spawn_blocking(move || {
                use std::os::unix::fs::FileExt;
                let mut buffer = vec![0; CHUNK];
                let read = reader.read_at(&mut buffer, offset)?;
                buffer.truncate(read);
                Ok::<_, std::io::Error>(buffer)
            })
            .await
            .map_err(std::io::Error::other)??;
            if chunk.is_empty() {
                return Ok(None);
            }
            let next = offset + chunk.len() as u64;
            Ok(Some((bytes::Bytes::from(chunk), (file, next))))
        })
    }

    #[cfg(test)]
    fn bytes(&self) -> Vec<u8> {
        use std::os::unix::fs::FileExt;
        let mut all = vec![0; usize::try_from(self.len).unwrap()];
        self.file.read_exact_at(&mut all, 0).unwrap();
        all
    }
}

/// The context folder as an uncompressed tar, as the docker CLI sends it: `.dockerignore` applied, the
/// Dockerfile and `.dockerignore` always included, symlinks kept as links.
pub fn context_tar(context: &Path, dockerfile: &str) -> Result<ContextTar, BuildError> {
    let io_error = |e: std::io::Error| BuildError::Context { path: context.to_path_buf(), message: e.to_string() };
    let ignore = match std::fs::read_to_string(context.join(".dockerignore")) {
        Ok(text) => DockerIgnore::parse(&text)?,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => DockerIgnore::default(),
        Err(e) => return Err(io_error(e)),
    };
    let always = [dockerfile.trim_start_matches("./"), ".dockerignore"];
    let file = tempfile::tempfile().map_err(|e| BuildError::Context {
        path: std::env::temp_dir(),
        message: format!("cannot make a temporary file for the build context: {e}"),
    })?;
    let mut builder = tar::Builder::new(std::io::BufWriter::new(file));
    builder.follow_symlinks(false);
    // The engine's tar reader refuses GNU sparse headers (`unhandled tar header type 83`).
    builder.sparse(false);
    builder.mode(tar::HeaderMode::Deterministic);
    let mut stack = vec![PathBuf::new()];
    while let Some(relative) = stack.pop() {
        let mut entries: Vec<_> = std::fs::read_dir(context.join(&relative))
            .map_err(io_error)?
            .collect::<Result<_, _>>()
            .map_err(io_error)?;
        entries.sort_by_key(|e| e.file_name());
        for entry in entries {
            let rel = relative.join(entry.file_name());
            let rel_text = rel.to_string_lossy().replace('\\', "/");
            let file_type = entry.file_type().map_err(io_error)?;
            let excluded = ignore.is_ignored(&rel_text) && !always.contains(&rel_text.as_str());
            if file_type.is_dir() {
                // An excluded folder is still searched when a `!` pattern may re-include something in it.
                if !excluded || ignore.has_exclusions() {
                    if !excluded {
                        builder.append_dir(&rel, entry.path()).map_err(io_error)?;
                    }
                    stack.push(rel);
                }
            } else if !excluded {
                builder.append_path_with_name(entry.path(), &rel).map_err(io_error)?;
            }
        }
    }
    let file = builder.into_inner().map_err(io_error)?.into_inner().map_err(|e| io_error(e.into_error()))?;
    let len = file.metadata().map_err(io_error)?.len();
    Ok(ContextTar { file: std::sync::Arc::new(file), len })
}

/// Images that the legacy builder made for the steps of builds that have not (yet) succeeded. They
/// carry none of our labels (the builder labels only the final image), so they are remembered here:
/// a build that fails, times out or is interrupted leaves them untagged, and the run's sweep removes them.
static UNFINISHED_STEP_IMAGES: std::sync::Mutex<Vec<String>> = std::sync::Mutex::new(Vec::new());

fn unfinished_step_images() -> std::sync::MutexGuard<'static, Vec<String>> {
    UNFINISHED_STEP_IMAGES.lock().unwrap_or_else(|p| p.into_inner())
}

/// Whether some failed build's step images still wait to be removed.
pub fn has_unfinished_step_images() -> bool {
    !unfinished_step_images().is_empty()
}

/// One BuildKit build with a session, its progress read from the `moby.buildkit.trace` messages.
async fn buildkit_build(
    docker: &Docker,
    request: &BuildRequest,
    context_tar: &ContextTar,
) -> Result<String, BuildError> {
    static SESSIONS: std::sync::atomic::AtomicU64 = std::sync::atomic::AtomicU64::new(0);
    let session = SESSIONS.fetch_add(1, std::sync::atomic::Ordering::SeqCst);
    let options = BuildImageOptions {
        version: BuilderVersion::BuilderBuildKit,
        session: Some(format!("seatrial-{}-{session}", std::process::id())),
        ..Engine::build_options(request)
    };
    let mut stream = docker.build_image(options, None, Some(bollard::body_try_stream(context_tar.chunks())));
    let mut progress = BuildKitProgress::default();
    while let Some(item) = stream.next().await {
        match item {
            Ok(info) => {
                if let Some(bollard::models::BuildInfoAux::BuildKit(status)) = info.aux {
                    progress.record(status, &request.progress);
                }
            }
            // Before the first word of progress, an error means there is no BuildKit to talk to.
            Err(e) if !progress.started => {
                return Err(BuildError::BuilderUnavailable { message: super::with_causes(&e) });
            }
            Err(bollard::errors::Error::DockerStreamError { error }) => {
                return Err(BuildError::Failed {
                    message: error,
                    step: progress.failed_step(),
                    log: progress.log.into_text(),
                });
            }
            Err(other) => return Err(EngineError::new("build image", &request.tag, other).into()),
        }
    }
    if !progress.started {
        return Err(BuildError::BuilderUnavailable { message: "no build progress came back".to_owned() });
    }
    Ok(request.tag.clone())
}

/// BuildKit's progress, as the `moby.buildkit.trace` messages tell it: each Dockerfile instruction once
/// it completes (`[2/3] COPY app.py .`), and what its commands printed. Internal steps and the
/// DONE/CACHED state are left out: they vary with the cache, and say nothing about a failure.
#[derive(Default)]
struct BuildKitProgress {
    started: bool,
    /// Vertices already written to the log.
    completed: std::collections::HashSet<String>,
    /// Vertices already told to the progress sink as started.
    told: std::collections::HashSet<String>,
    /// The first instruction that failed: (name, error).
    failed: Option<(String, String)>,
    log: BuildLog,
}

impl BuildKitProgress {
    fn record(&mut self, status: bollard::moby::buildkit::v1::StatusResponse, sink: &BuildProgressSink) {
        self.started = true;
        for log in status.logs {
            self.log.push(&String::from_utf8_lossy(&log.msg));
        }
        for vertex in status.vertexes {
            let instruction = vertex.name.starts_with('[') && !vertex.name.starts_with("[internal]");
            if instruction
                && vertex.started.is_some()
                && vertex.completed.is_none()
                && self.told.insert(vertex.digest.clone())
            {
                sink.tell(&vertex.name);
            }
            // BuildKit shares a vertex between concurrent builds with the same base, under the name the
            // first build gave it (`[1/3] FROM ...` in a 2-step build): a FROM is shown only when it fails.
            let quiet_from = vertex.name.contains("] FROM ") && vertex.error.is_empty();
            if vertex.completed.is_none() || !instruction || quiet_from || !self.completed.insert(vertex.digest.clone())
            {
                continue;
            }
            self.log.push(&vertex.name);
            if !vertex.error.is_empty() {
                self.failed.get_or_insert_with(|| (vertex.name.clone(), vertex.error.clone()));
                self.log.push(": ERROR: ");
                self.log.push(&vertex.error);
            }
            self.log.push("\n");
        }
    }

    fn failed_step(&self) -> Option<String> {
        self.failed.as_ref().map(|(name, _)| name.clone())
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

/// The id in a legacy-builder line ` ---> 3f2a9c1d0b7e` (a step's resulting image).
fn step_image(line: &str) -> Option<&str> {
    let id = line.trim().strip_prefix("---> ")?;
    (id.len() == 12 && id.bytes().all(|b| b.is_ascii_hexdigit())).then_some(id)
}

impl Engine {
    /// Removes the untagged step images of builds that did not succeed. An image is refused while the
    /// dropped build's container still stands on it (the engine removes that container a moment after
    /// the build is dropped), so refusals are tried again for a few seconds; one that a running build
    /// still builds on stays remembered for the next sweep.
    pub async fn remove_unfinished_step_images(&self) -> Vec<String> {
        let mut removed = Vec::new();
        let deadline = std::time::Instant::now() + std::time::Duration::from_secs(5);
        loop {
            let ids: Vec<String> = std::mem::take(&mut *unfinished_step_images());
            let mut refused = Vec::new();
            for id in ids {
                let untagged = match self.docker.inspect_image(&id).await {
                    Ok(image) => image.repo_tags.unwrap_or_default().is_empty(),
                    Err(_) => continue,
                };
                let options = RemoveImageOptions { force: false, noprune: false, ..Default::default() };
                if untagged && self.docker.remove_image(&id, Some(options), None).await.is_ok() {
                    removed.push(id);
                } else if untagged {
                    refused.push(id);
                }
            }
            let done = refused.is_empty() || std::time::Instant::now() >= deadline;
            unfinished_step_images().extend(refused);
            if done {
                return removed;
            }
            tokio::time::sleep(std::time::Duration::from_millis(250)).await;
        }
    }

    /// Builds an image from a context tar with BuildKit where the engine offers it (one container-free
    /// solve: 5 s instead of 29 s for a 5-instruction Dockerfile on fuse-overlayfs, measured in bench/),
    /// else, or with `SEATRIAL_BUILDER=legacy`, with the legacy builder. The builder's output is kept:
    /// on failure it is the evidence.
    pub async fn build_image(&self, request: &BuildRequest, context_tar: &ContextTar) -> Result<String, BuildError> {
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
                Err(BuildError::Failed { message, .. }) if message.contains("frontend gateway.v0") => {
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

    /// A BuildKit build on a runtime of its own: bollard serves the build's session on a task that it
    /// never ends, which would keep a connection to the engine open for every build (measured: 49 builds,
    /// 49 connections). Dropping that runtime ends it. Dropping this future ends the build: the session
    /// and the build's connection close, and the engine cancels the build.
    async fn build_with_buildkit(
        &self,
        request: &BuildRequest,
        context_tar: &ContextTar,
    ) -> Result<String, BuildError> {
        let (dropped, cancelled) = tokio::sync::oneshot::channel::<()>();
        let request = request.clone();
        let context_tar = context_tar.clone();
        let build = tokio::task::spawn_blocking(move || {
            let runtime = tokio::runtime::Builder::new_current_thread()
                .enable_all()
                .build()
                .map_err(|e| BuildError::BuilderUnavailable { message: e.to_string() })?;
            runtime.block_on(async move {
                // A failed connection says nothing about BuildKit: tried again, then an engine error,
                // so that one hiccup does not send the rest of the run to the legacy builder.
                let mut attempt = 0;
                let docker = loop {
                    match Engine::connect_client().await {
                        Ok((docker, _)) => break docker,
                        Err(e) if attempt >= 2 => {
                            return Err(BuildError::Engine(EngineError {
                                operation: "build image",
                                resource: request.tag.clone(),
                                message: e.to_string(),
                                status: None,
                                unanswered: true,
                            }));
                        }
                        Err(_) => {
                            attempt += 1;
                            tokio::time::sleep(std::time::Duration::from_millis(500 * attempt)).await;
                        }
                    }
                };
                tokio::select! {
                    built = buildkit_build(&docker, &request, &context_tar) => built,
                    _ = cancelled => Err(BuildError::Failed {
                        message: "the build was abandoned".to_owned(),
                        step: None,
                        log: String::new(),
                    }),
                }
            })
        });
        let built = build.await;
        drop(dropped);
        built.unwrap_or_else(|e| Err(BuildError::BuilderUnavailable { message: e.to_string() }))
    }

    async fn build_with_legacy_builder(
        &self,
        request: &BuildRequest,
        context_tar: &ContextTar,
    ) -> Result<String, BuildError> {
        let options = Self::build_options(request);
        let mut stream = self.docker.build_image(options, None, Some(bollard::body_try_stream(context_tar.chunks())));
        let mut log = BuildLog::default();
        // Kept apart from the log: a step's flood of output may have pushed its `Step` line out of it.
        let mut last_step: Option<String> = None;
        let mut image_id = None;
        let mut step_images = Vec::new();
        let failed = |message: String, step: Option<String>, log: BuildLog| BuildError::Failed {
            message,
            step,
            log: log.into_text(),
        };
        while let Some(item) = stream.next().await {
            match item {
                Ok(info) => {
                    if let Some(text) = info.stream {
                        for id in text.lines().filter_map(step_image) {
                            step_images.push(id.to_owned());
                            unfinished_step_images().push(id.to_owned());
                        }
                        let text = uncount_label_steps(&text, request.labels.len());
                        if let Some(step) = last_step_line(&text) {
                            if last_step.as_deref() != Some(step) {
                                request.progress.tell(step);
                            }
                            last_step = Some(step.to_owned());
                        }
                        log.push(&text);
                    }
                    if let Some(detail) = info.error_detail {
                        return Err(failed(detail.message.unwrap_or_default(), last_step, log));
                    }
                    if let Some(bollard::models::BuildInfoAux::Default(image)) = info.aux
                        && let Some(id) = image.id
                    {
                        image_id = Some(id);
                    }
                }
                Err(bollard::errors::Error::DockerStreamError { error }) => {
                    return Err(failed(error, last_step, log));
                }
                Err(other) => return Err(EngineError::new("build image", &request.tag, other).into()),
            }
        }
        // The step images of a successful build are the final image's parents: removed with it.
        unfinished_step_images().retain(|id| !step_images.contains(id));
        Ok(image_id.unwrap_or_else(|| request.tag.clone()))
    }

    pub async fn remove_image(&self, reference: &str) -> Result<(), EngineError> {
        let options = RemoveImageOptions { force: true, noprune: false, ..Default::default() };
        match self.docker.remove_image(reference, Some(options), None).await {
            Err(bollard::errors::Error::DockerResponseServerError { status_code: 404, .. }) | Ok(_) => Ok(()),
            Err(e) => Err(EngineError::new("remove image", reference, e)),
        }
    }

    /// Whether the engine has this image locally.
    pub async fn has_image(&self, reference: &str) -> Result<bool, EngineError> {
        match self.docker.inspect_image(reference).await {
            Ok(_) => Ok(true),
            Err(bollard::errors::Error::DockerResponseServerError { status_code: 404, .. }) => Ok(false),
            Err(e) => Err(EngineError::new("inspect image", reference, e)),
        }
    }

    /// Pulls an image the engine does not have.
    pub async fn pull_image(&self, reference: &str) -> Result<(), EngineError> {
        let options = bollard::query_parameters::CreateImageOptions {
            from_image: Some(reference.to_owned()),
            ..Default::default()
        };
        let mut stream = self.docker.create_image(Some(options), None, None);
        while let Some(item) = stream.next().await {
            item.map_err(|e| EngineError::new("pull image", reference, e))?;
        }
        Ok(())
    }
}

/// The legacy builder runs a LABEL step per label after the Dockerfile's own and counts them in
/// `Step 3/9`; a student whose Dockerfile has 3 instructions should read `Step 3/3`.
fn uncount_label_steps(text: &str, labels: usize) -> std::borrow::Cow<'_, str> {
    if !text.contains("Step ") {
        return text.into();
    }
    let lines: Vec<String> = text
        .split_inclusive('\n')
        .map(|line| {
            let parsed = line.strip_prefix("Step ").and_then(|rest| {
                let (count, instruction) = rest.split_once(" : ")?;
                let (n, total) = count.split_once('/')?;
                let (n, total) = (n.parse::<usize>().ok()?, total.parse::<usize>().ok()?);
                let own = total.checked_sub(labels).filter(|own| n <= *own)?;
                Some(format!("Step {n}/{own} : {instruction}"))
            });
            parsed.unwrap_or_else(|| line.to_owned())
        })
        .collect();
    lines.concat().into()
}

/// The last instruction a piece of legacy-builder output started: `Step 3/7 : RUN pip install ...`.
fn last_step_line(text: &str) -> Option<&str> {
    text.lines().rev().find(|l| l.starts_with("Step ")).map(str::trim)
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
    fn context_tar_honours_dockerignore_but_keeps_the_dockerfile() {
        let dir = tempfile::tempdir().unwrap();
        let root = dir.path();
        std::fs::write(root.join("Dockerfile.dev"), "FROM scratch\n").unwrap();
        std::fs::write(root.join(".dockerignore"), "Dockerfile.*\n*.sqlite3\ncache\n").unwrap();
        std::fs::write(root.join("app.py"), "print(1)\n").unwrap();
        std::fs::write(root.join("db.sqlite3"), "x").unwrap();
        std::fs::create_dir(root.join("cache")).unwrap();
        std::fs::write(root.join("cache/blob"), "x").unwrap();
        let bytes = context_tar(root, "Dockerfile.dev").unwrap().bytes();
        let mut archive = tar::Archive::new(bytes.as_slice());
        let mut names: Vec<String> =
            archive.entries().unwrap().map(|e| e.unwrap().path().unwrap().display().to_string()).collect();
        names.sort();
        assert_eq!(names, vec![".dockerignore", "Dockerfile.dev", "app.py"]);
    }

    #[test]
    fn reads_step_images_from_the_legacy_builder_output() {
        assert_eq!(step_image(" ---> 3f2a9c1d0b7e"), Some("3f2a9c1d0b7e"));
        assert_eq!(step_image(" ---> Running in 3f2a9c1d0b7e"), None);
        assert_eq!(step_image(" ---> Using cache"), None);
    }

    #[test]
    fn finds_the_failed_step() {
        let log = "Step 1/3 : FROM x\n ---> abc\nStep 2/3 : RUN false\n ---> Running in 1\n# printed by RUN\n";
        assert_eq!(last_step_line(log), Some("Step 2/3 : RUN false"));
    }

    #[test]
    fn a_missing_dockerfile_names_what_the_folder_holds() {
        let dir = tempfile::tempdir().unwrap();
        let err = find_dockerfile(dir.path(), "Dockerfile").unwrap_err().to_string();
        assert!(err.starts_with("there is no `Dockerfile` in ") && err.ends_with(" (the folder is empty)"), "{err}");
        std::fs::write(dir.path().join("Dockerfile.txt"), "FROM x\n").unwrap();
        std::fs::create_dir(dir.path().join("src")).unwrap();
        let err = find_dockerfile(dir.path(), "Dockerfile").unwrap_err().to_string();
        assert!(err.ends_with(" (the folder holds `Dockerfile.txt`, `src/`)"), "{err}");
        std::fs::write(dir.path().join("dockerfile"), "FROM x\n").unwrap();
        assert_eq!(find_dockerfile(dir.path(), "Dockerfile").unwrap(), "dockerfile", "as `docker build` takes it");
    }

    #[test]
    fn a_missing_copy_source_is_explained_from_the_folder() {
        let dir = tempfile::tempdir().unwrap();
        let root = dir.path();
        std::fs::write(root.join("kv.py"), "").unwrap();
        std::fs::write(root.join("App.py"), "").unwrap();
        std::fs::write(root.join("requirements.txt"), "").unwrap();
        std::fs::write(root.join(".dockerignore"), "*\n!Dockerfile\n").unwrap();
        let buildkit = |name: &str| format!("failed to compute cache key: \"/{name}\" not found: not found");
        assert_eq!(
            explain_missing_source(root, &buildkit("kv.py")).unwrap(),
            "`kv.py` is in the folder, but `.dockerignore` leaves it out of the build context"
        );
        assert_eq!(
            explain_missing_source(root, &buildkit("app.py")).unwrap(),
            "the folder has `App.py`, not `app.py`: file names are case-sensitive in a build"
        );
        assert_eq!(
            explain_missing_source(root, &buildkit("requirement.txt")).unwrap(),
            "there is no `requirement.txt` in the folder; did you mean `requirements.txt`?"
        );
        let legacy = "COPY failed: file not found in build context or excluded by .dockerignore: stat config.ini: file does not exist";
        assert_eq!(explain_missing_source(root, legacy).unwrap(), "there is no `config.ini` in the folder");
        assert_eq!(explain_missing_source(root, "exit code: 1"), None);
    }

    #[test]
    fn label_steps_are_not_counted() {
        let out = uncount_label_steps("Step 3/9 : RUN a : b\n ---> Running in 1\nStep 9/9 : LABEL x=y\n", 6);
        assert_eq!(out, "Step 3/3 : RUN a : b\n ---> Running in 1\nStep 9/9 : LABEL x=y\n");
        assert_eq!(uncount_label_steps("Step 2/2 : FROM x", 6), "Step 2/2 : FROM x");
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
