//! Everything that speaks to the container engine: builds, containers, volumes, networks, exec, logs,
//! labels and sweeping. In: what to create; out: engine facts (ids, host ports, exit codes, logs).
//! Every resource carries seatrial's labels and every error says what we were doing and to what.

pub mod archive;
pub mod build;
pub mod container;
pub mod control;
pub mod dockerignore;
pub mod exec_stream;
pub mod image;
pub mod labels;
pub mod sweep;
pub mod watch;

use bollard::Docker;

/// An engine call that did not succeed: what we were doing, to what, and what the engine said.
#[derive(Debug, Clone, thiserror::Error)]
#[error("{operation} `{resource}`: {message}")]
pub struct EngineError {
    pub operation: &'static str,
    pub resource: String,
    pub message: String,
    /// The HTTP status of the engine's answer, when it gave one (404 no such container, 409 conflict).
    pub status: Option<u16>,
    /// The request never got an answer: the connection to the engine failed or broke.
    pub unanswered: bool,
}

impl EngineError {
    pub fn new(operation: &'static str, resource: impl Into<String>, err: bollard::errors::Error) -> Self {
        let status = match &err {
            bollard::errors::Error::DockerResponseServerError { status_code, .. } => Some(*status_code),
            _ => None,
        };
        let unanswered = matches!(
            err,
            bollard::errors::Error::HyperResponseError { .. }
                | bollard::errors::Error::HyperLegacyError { .. }
                | bollard::errors::Error::IOError { .. }
                | bollard::errors::Error::RequestTimeoutError
        );
        let message = match err {
            bollard::errors::Error::DockerResponseServerError { message, .. } => message,
            bollard::errors::Error::DockerStreamError { error } => error,
            other => with_causes(&other),
        };
        EngineError { operation, resource: resource.into(), message, status, unanswered }
    }

    pub fn is_not_found(&self) -> bool {
        self.status == Some(404)
    }
}

/// An error and its causes on one line: a transport error's own text ("client error (Connect)") says
/// little; its causes say what happened ("No such file or directory").
pub fn with_causes(err: &dyn std::error::Error) -> String {
    let mut text = err.to_string();
    let mut source = err.source();
    while let Some(cause) = source {
        let cause_text = cause.to_string();
        if !text.contains(&cause_text) {
            text.push_str(": ");
            text.push_str(&cause_text);
        }
        source = cause.source();
    }
    text
}

/// Why there is no engine to talk to.
#[derive(Debug, thiserror::Error)]
pub enum ConnectError {
    #[error(
        "cannot reach the container engine at {host}: {message}\n  (is the Docker daemon running? DOCKER_HOST selects another engine)"
    )]
    Unreachable { host: String, message: String },
}

/// A connected engine whose API version has been negotiated.
#[derive(Clone)]
pub struct Engine {
    pub(crate) docker: Docker,
    /// Where the engine is, for messages: `unix:///var/run/docker.sock`.
    pub host: String,
    /// Set once a BuildKit build could not even start (or by `SEATRIAL_BUILDER=legacy`): from then on
    /// builds go to the legacy builder.
    pub(crate) buildkit_unavailable: std::sync::Arc<std::sync::atomic::AtomicBool>,
}

impl std::fmt::Debug for Engine {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Engine").field("host", &self.host).finish()
    }
}

impl Engine {
    /// Connects as the docker CLI does: DOCKER_HOST when set, else the local socket, else Podman's.
    pub async fn connect() -> Result<Engine, ConnectError> {
        let (docker, host) = Self::connect_client().await?;
        let unreachable = |message: String| ConnectError::Unreachable { host: host.clone(), message };
        docker.ping().await.map_err(|e| unreachable(e.to_string()))?;
        let legacy_asked = std::env::var("SEATRIAL_BUILDER").is_ok_and(|b| b == "legacy");
        Ok(Engine { docker, host, buildkit_unavailable: std::sync::Arc::new(legacy_asked.into()) })
    }

    /// A client of its own, with the API version negotiated: for work that must live and die on a
    /// runtime of its own (a BuildKit build, whose session bollard never closes).
    pub(crate) async fn connect_client() -> Result<(Docker, String), ConnectError> {
        let host = std::env::var("DOCKER_HOST").unwrap_or_else(|_| "unix:///var/run/docker.sock".to_owned());
        let unreachable = |message: String| ConnectError::Unreachable { host: host.clone(), message };
        let docker =
            if std::env::var_os("DOCKER_HOST").is_none() && !std::path::Path::new("/var/run/docker.sock").exists() {
                Docker::connect_with_podman_defaults().map_err(|e| unreachable(e.to_string()))?
            } else {
                Docker::connect_with_defaults().map_err(|e| unreachable(e.to_string()))?
            };
        let docker = tokio::time::timeout(std::time::Duration::from_secs(10), docker.negotiate_version())
            .await
            .map_err(|_| unreachable("no answer within 10s".to_owned()))?
            .map_err(|e| unreachable(e.to_string()))?;
        Ok((docker, host))
    }

    /// Whether the engine answers now (`GET /_ping`).
    pub async fn ping(&self, within: std::time::Duration) -> Result<(), String> {
        match tokio::time::timeout(within, self.docker.ping()).await {
            Ok(Ok(_)) => Ok(()),
            Ok(Err(e)) => Err(with_causes(&e)),
            Err(_) => Err(format!("no answer to a ping within {within:?}")),
        }
    }

    /// Whether the engine runs on this machine, so that its containers' `/proc/<pid>` is ours to read.
    pub fn is_local(&self) -> bool {
        self.host.starts_with("unix://") || self.host.starts_with('/')
    }
}
