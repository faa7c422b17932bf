//! Everything that speaks to the container engine: builds, containers, volumes, networks, exec, logs,
//! labels and sweeping. In: what to create; out: engine facts (ids, host ports, exit codes, logs).
//! Every resource carries seatrial's labels and every error says what we were doing and to what.

pub mod build;
pub mod container;
pub mod dockerignore;
pub mod labels;
pub mod sweep;

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
}

impl EngineError {
    pub fn new(operation: &'static str, resource: impl Into<String>, err: bollard::errors::Error) -> Self {
        let status = match &err {
            bollard::errors::Error::DockerResponseServerError { status_code, .. } => Some(*status_code),
            _ => None,
        };
        let message = match err {
            bollard::errors::Error::DockerResponseServerError { message, .. } => message,
            bollard::errors::Error::DockerStreamError { error } => error,
            other => other.to_string(),
        };
        EngineError { operation, resource: resource.into(), message, status }
    }

    pub fn is_not_found(&self) -> bool {
        self.status == Some(404)
    }
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
}

impl std::fmt::Debug for Engine {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Engine").field("host", &self.host).finish()
    }
}

impl Engine {
    /// Connects as the docker CLI does: DOCKER_HOST when set, else the local socket, else Podman's.
    pub async fn connect() -> Result<Engine, ConnectError> {
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
        docker.ping().await.map_err(|e| unreachable(e.to_string()))?;
        Ok(Engine { docker, host })
    }

    /// Whether the engine runs on this machine, so that its containers' `/proc/<pid>` is ours to read.
    pub fn is_local(&self) -> bool {
        self.host.starts_with("unix://") || self.host.starts_with('/')
    }
}
