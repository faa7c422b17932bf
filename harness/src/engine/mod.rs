//! Everything that speaks to the container engine: builds, containers, volumes, networks, exec, logs,
//! labels and sweeping. In: what to create; out: engine facts (ids, host ports, exit codes, logs).
//! Every resource carries seatrial's labels and every error says what we were doing and to what.

pub mod archive;
pub mod build;
pub mod changes;
pub mod container;
pub mod control;
pub mod dockerignore;
pub mod exec_stream;
pub mod identity;
pub mod image;
pub mod labels;
pub mod raw;
pub mod stack;
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

/// Where the engine address came from.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum HostSource {
    /// The `DOCKER_HOST` variable.
    DockerHost,
    /// Docker's default socket, `/var/run/docker.sock`.
    DockerDefault,
    /// Rootless Podman's socket, `$XDG_RUNTIME_DIR/podman/podman.sock`.
    PodmanRootless,
    /// Rootful Podman's socket, `/run/podman/podman.sock`.
    PodmanSystem,
}

impl std::fmt::Display for HostSource {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(match self {
            HostSource::DockerHost => "DOCKER_HOST",
            HostSource::DockerDefault => "Docker's default socket",
            HostSource::PodmanRootless => "rootless Podman's socket",
            HostSource::PodmanSystem => "Podman's system socket",
        })
    }
}

const DOCKER_SOCKET: &str = "/var/run/docker.sock";
const PODMAN_SYSTEM_SOCKET: &str = "/run/podman/podman.sock";

/// The engine to talk to, as the docker CLI finds it, then Podman's sockets: a non-empty `DOCKER_HOST`,
/// else Docker's socket when it exists, else rootless Podman's, else Podman's system socket.
pub fn resolve_host() -> (String, HostSource) {
    if let Some(host) = std::env::var("DOCKER_HOST").ok().filter(|h| !h.trim().is_empty()) {
        return (host, HostSource::DockerHost);
    }
    let docker = (format!("unix://{DOCKER_SOCKET}"), HostSource::DockerDefault);
    if std::path::Path::new(DOCKER_SOCKET).exists() {
        return docker;
    }
    if let Some(runtime) = std::env::var_os("XDG_RUNTIME_DIR") {
        let socket = std::path::Path::new(&runtime).join("podman/podman.sock");
        if socket.exists() {
            return (format!("unix://{}", socket.display()), HostSource::PodmanRootless);
        }
    }
    if std::path::Path::new(PODMAN_SYSTEM_SOCKET).exists() {
        return (format!("unix://{PODMAN_SYSTEM_SOCKET}"), HostSource::PodmanSystem);
    }
    docker
}

/// A connected engine whose API version has been negotiated, and who it is.
#[derive(Clone)]
pub struct Engine {
    pub(crate) docker: Docker,
    /// Where the engine is, for messages: `unix:///var/run/docker.sock`.
    pub host: String,
    /// Where that address came from.
    pub host_source: HostSource,
    /// Who answered, and what it offers (builder, limits), read at connect.
    pub identity: std::sync::Arc<identity::Identity>,
    /// Plain HTTP to the same engine, for what bollard's types cannot read; `None` over TLS and ssh.
    pub(crate) raw: Option<raw::RawClient>,
    /// Set when the engine offers no BuildKit (or by `SEATRIAL_BUILDER=legacy`), or once a BuildKit build
    /// could not even start: from then on builds go to the legacy builder.
    pub(crate) buildkit_unavailable: std::sync::Arc<std::sync::atomic::AtomicBool>,
}

impl std::fmt::Debug for Engine {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Engine").field("host", &self.host).finish()
    }
}

impl Engine {
    /// Connects as the docker CLI does (DOCKER_HOST when set, else the local socket, else Podman's) and
    /// asks the engine who it is, so that the builder is chosen before anything is built.
    pub async fn connect() -> Result<Engine, ConnectError> {
        let (docker, host) = Self::connect_client().await?;
        let (_, host_source) = resolve_host();
        let unreachable = |message: String| ConnectError::Unreachable { host: host.clone(), message };
        docker.ping().await.map_err(|e| unreachable(with_causes(&e)))?;
        let raw = raw::RawClient::for_host(&host);
        let answers = tokio::time::timeout(std::time::Duration::from_secs(20), identity::ask(&docker, raw.as_ref()))
            .await
            .map_err(|_| unreachable("no answer to /version and /info within 20s".to_owned()))?
            .map_err(unreachable)?;
        let asked = std::env::var("SEATRIAL_BUILDER").ok();
        let identity =
            identity::Identity::from_answers(&answers, &docker.client_version().to_string(), asked.as_deref());
        let legacy = identity.builder.builder == identity::Builder::Legacy;
        Ok(Engine {
            docker,
            host,
            host_source,
            identity: std::sync::Arc::new(identity),
            raw,
            buildkit_unavailable: std::sync::Arc::new(legacy.into()),
        })
    }

    /// A client of its own, with the API version negotiated: for work that must live and die on a
    /// runtime of its own (a BuildKit build, whose session bollard never closes).
    pub(crate) async fn connect_client() -> Result<(Docker, String), ConnectError> {
        let (host, _) = resolve_host();
        let unreachable = |message: String| ConnectError::Unreachable { host: host.clone(), message };
        let docker = Docker::connect_with_host(&host).map_err(|e| unreachable(e.to_string()))?;
        let docker = tokio::time::timeout(std::time::Duration::from_secs(10), docker.negotiate_version())
            .await
            .map_err(|_| unreachable("no answer within 10s".to_owned()))?
            .map_err(|e| unreachable(with_causes(&e)))?;
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
