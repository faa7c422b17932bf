//! The BuildKit builder: in, a [`BuildRequest`] and its context tar; out, the image's tag, with the
//! progress that the `moby.buildkit.trace` messages tell kept as the build log and told to the sink.

use bollard::Docker;
use bollard::query_parameters::{BuildImageOptions, BuilderVersion};
use futures_util::StreamExt;

use super::{BuildError, BuildLog, BuildProgressSink, BuildRequest, ContextTar, FailedStep};
use crate::engine::{Engine, EngineError};

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
                return Err(BuildError::BuilderUnavailable { message: crate::engine::with_causes(&e) });
            }
            Err(bollard::errors::Error::DockerStreamError { error }) => {
                return Err(progress.into_failure(error, &request.dockerfile));
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
    /// The first instruction that failed: (name, digest).
    failed: Option<(String, String)>,
    log: BuildLog,
    /// What each vertex printed, by digest: a failure shows its own instruction's output.
    outputs: std::collections::HashMap<String, BuildLog>,
}

impl BuildKitProgress {
    fn record(&mut self, status: bollard::moby::buildkit::v1::StatusResponse, sink: &BuildProgressSink) {
        self.started = true;
        for log in status.logs {
            let text = String::from_utf8_lossy(&log.msg);
            self.log.push(&text);
            self.outputs.entry(log.vertex).or_default().push(&text);
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
                self.failed.get_or_insert_with(|| (vertex.name.clone(), vertex.digest.clone()));
                self.log.push(": ERROR: ");
                self.log.push(&vertex.error);
            }
            self.log.push("\n");
        }
    }

    /// The failed instruction and what it printed; else no step and the whole log.
    fn into_failure(mut self, message: String, dockerfile: &str) -> BuildError {
        match self.failed.take() {
            Some((name, digest)) => BuildError::Failed {
                message,
                step: Some(FailedStep::locate(&name, dockerfile, None)),
                log: self.outputs.remove(&digest).map(BuildLog::into_text).unwrap_or_default(),
            },
            None => BuildError::Failed { message, step: None, log: self.log.into_text() },
        }
    }
}

impl Engine {
    /// A BuildKit build on a runtime of its own: bollard serves the build's session on a task that it
    /// never ends, which would keep a connection to the engine open for every build (measured: 49 builds,
    /// 49 connections). Dropping that runtime ends it. Dropping this future ends the build: the session
    /// and the build's connection close, and the engine cancels the build.
    pub(super) async fn build_with_buildkit(
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
}
