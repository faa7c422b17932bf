//! Containers, networks and volumes: one method per Engine API call, named after it.

use std::collections::HashMap;
use std::path::PathBuf;
use std::time::Duration;

use bollard::models::{
    ContainerCreateBody, ContainerInspectResponse, EndpointSettings, ExecConfig, HostConfig, HostConfigLogConfig,
    Mount, MountType, NetworkCreateRequest, NetworkingConfig, PortBinding, VolumeCreateRequest,
};
use bollard::query_parameters::{
    CreateContainerOptions, LogsOptions, RemoveContainerOptions, RemoveVolumeOptions, RestartContainerOptions,
    StatsOptions, StopContainerOptions,
};
use futures_util::StreamExt;

use super::{Engine, EngineError, raw};

/// The engine's default network, used by scenarios of a single container; it knows no aliases.
pub const DEFAULT_NETWORK: &str = "bridge";

/// Processes a container may run: enough for any server, too few for a fork bomb to hurt the host.
pub const DEFAULT_PIDS_LIMIT: i64 = 1024;
/// Memory a container may use (2 GiB).
pub const DEFAULT_MEMORY_LIMIT: i64 = 2 << 30;
/// CPU a container may use (one core, in billionths): a busy loop cannot starve the other scenarios.
pub const DEFAULT_NANO_CPUS: i64 = 1_000_000_000;

/// How long the engine may take to answer a stop beyond its grace period (the kill and the wait for
/// the exit): a stop answered later than that is an engine that does not answer.
const STOP_ANSWER_MARGIN: Duration = Duration::from_secs(30);

/// Most of a container's log that seatrial keeps in memory; a log flood cannot exhaust us.
pub const LOG_CAPTURE_LIMIT: usize = 4 << 20;

#[derive(Debug, Clone)]
pub enum MountConfig {
    Volume { name: String, target: String, read_only: bool },
    Bind { source: PathBuf, target: String, read_only: bool },
}

/// What a container is made from.
#[derive(Debug, Clone)]
pub struct ContainerConfig {
    pub name: String,
    pub image: String,
    pub env: Vec<String>,
    pub cmd: Option<Vec<String>>,
    pub entrypoint: Option<Vec<String>>,
    pub user: Option<String>,
    pub workdir: Option<String>,
    pub ports: Vec<u16>,
    pub mounts: Vec<MountConfig>,
    pub network: String,
    pub alias: String,
    pub labels: HashMap<String, String>,
    /// The engine's `StopSignal` (`SIGINT`, or a number); `None`: the image's, else SIGTERM.
    pub stop_signal: Option<String>,
    /// The engine's `StopTimeout`, used by a `docker stop` that names no grace of its own (a person's,
    /// on a container kept with `--keep`); `None`: the engine's 10 s.
    pub stop_timeout: Option<Duration>,
}

/// What [`Engine::path_head`] found.
#[derive(Debug, Clone)]
pub struct PathHead {
    pub uid: u64,
    pub mode: u32,
    pub head: Vec<u8>,
}

/// What the engine says about a container now.
#[derive(Debug, Clone, Default)]
pub struct ContainerState {
    pub id: String,
    pub running: bool,
    pub status: String,
    pub exit_code: i64,
    pub oom_killed: bool,
    pub pid: i64,
    pub restart_count: i64,
    /// Container port -> host port on 127.0.0.1.
    pub host_ports: HashMap<u16, u16>,
    /// The engine's own error for the container (a failed start), if any.
    pub error: String,
    /// The signal a stop sends it: its `stop_signal`, else its image's `STOPSIGNAL`, else `SIGTERM`.
    pub stop_signal: String,
    /// When it last exited, if it has (`State.FinishedAt`).
    pub finished_at: Option<jiff::Timestamp>,
    /// Its memory limit in bytes (`HostConfig.Memory`); 0: none.
    pub memory_limit: i64,
    /// How many processes it may run (`HostConfig.PidsLimit`); 0: no limit.
    pub pids_limit: i64,
}

/// How many processes a container runs, from the engine's one-shot stats (`pids_stats`): the cgroup's
/// `pids.current` and `pids.max`, read alike on cgroup v1 and v2.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct PidsCount {
    pub current: u64,
    /// `None`: no limit.
    pub limit: Option<u64>,
}

/// What a command run inside a container gave.
#[derive(Debug, Clone, Default)]
pub struct ExecOutput {
    pub exit_code: i64,
    pub stdout: String,
    pub stderr: String,
}

impl Engine {
    pub async fn create_network(&self, name: &str, labels: HashMap<String, String>) -> Result<String, EngineError> {
        let request = NetworkCreateRequest {
            name: name.to_owned(),
            driver: Some("bridge".to_owned()),
            labels: Some(labels),
            ..Default::default()
        };
        let created =
            self.docker.create_network(request).await.map_err(|e| EngineError::new("create network", name, e))?;
        Ok(created.id)
    }

    pub async fn remove_network(&self, id: &str) -> Result<(), EngineError> {
        self.docker.remove_network(id).await.map_err(|e| EngineError::new("remove network", id, e))
    }

    pub async fn create_volume(&self, name: &str, labels: HashMap<String, String>) -> Result<(), EngineError> {
        let request = VolumeCreateRequest { name: Some(name.to_owned()), labels: Some(labels), ..Default::default() };
        self.docker.create_volume(request).await.map_err(|e| EngineError::new("create volume", name, e))?;
        Ok(())
    }

    pub async fn remove_volume(&self, name: &str) -> Result<(), EngineError> {
        self.docker
            .remove_volume(name, Some(RemoveVolumeOptions { force: true }))
            .await
            .map_err(|e| EngineError::new("remove volume", name, e))
    }

    /// The folders an image declares with `VOLUME` (`Config.Volumes` of `GET /images/{name}/json`).
    pub async fn image_volumes(&self, image: &str) -> Result<Vec<String>, EngineError> {
        let inspect =
            self.docker.inspect_image(image).await.map_err(|e| EngineError::new("inspect image", image, e))?;
        Ok(inspect.config.and_then(|c| c.volumes).unwrap_or_default())
    }

    /// Creates a container on its scenario's network; every port published on 127.0.0.1 at a free port.
    pub async fn create_container(&self, config: &ContainerConfig) -> Result<String, EngineError> {
        let port_key = |p: &u16| format!("{p}/tcp");
        let exposed = config.ports.iter().map(port_key).collect::<Vec<_>>();
        // Podman draws a free host port when the container is made and binds it only when it starts; in
        // between, a loopback connection's ephemeral port (readiness probes make many, and each lingers
        // in TIME_WAIT) can take it, and the start fails with `address already in use` (measured: 1 in 13
        // of the failing set's scenarios). A local Podman is given a port below the ephemeral range,
        // which no outgoing connection uses; Docker binds the port it draws at once, and keeps drawing.
        let choose = self.identity.product == super::identity::Product::Podman && self.is_local();
        let bindings = config
            .ports
            .iter()
            .map(|p| {
                let host_port =
                    if choose { host_ports::free_below_ephemeral().unwrap_or_default() } else { String::new() };
                let binding = PortBinding { host_ip: Some("127.0.0.1".to_owned()), host_port: Some(host_port) };
                (port_key(p), Some(vec![binding]))
            })
            .collect();
        let mounts = config
            .mounts
            .iter()
            .map(|m| match m {
                MountConfig::Volume { name, target, read_only } => Mount {
                    typ: Some(MountType::VOLUME),
                    source: Some(name.clone()),
                    target: Some(target.clone()),
                    read_only: Some(*read_only),
                    ..Default::default()
                },
                MountConfig::Bind { source, target, read_only } => Mount {
                    typ: Some(MountType::BIND),
                    source: Some(source.display().to_string()),
                    target: Some(target.clone()),
                    read_only: Some(*read_only),
                    ..Default::default()
                },
            })
            .collect();
        let host_config = HostConfig {
            port_bindings: Some(bindings),
            mounts: Some(mounts),
            network_mode: Some(config.network.clone()),
            // Safety defaults: a fork bomb, a memory hog or a log flood harms only its own container.
            privileged: Some(false),
            init: Some(false),
            pids_limit: Some(DEFAULT_PIDS_LIMIT),
            memory: Some(DEFAULT_MEMORY_LIMIT),
            // No swap beyond the memory limit: a memory hog is killed, not paged.
            memory_swap: Some(DEFAULT_MEMORY_LIMIT),
            nano_cpus: Some(DEFAULT_NANO_CPUS),
            log_config: Some(HostConfigLogConfig {
                typ: Some("json-file".to_owned()),
                config: Some(HashMap::from([
                    ("max-size".to_owned(), "20m".to_owned()),
                    ("max-file".to_owned(), "1".to_owned()),
                ])),
            }),
            ..Default::default()
        };
        let endpoint = EndpointSettings { aliases: Some(vec![config.alias.clone()]), ..Default::default() };
        let body = ContainerCreateBody {
            image: Some(config.image.clone()),
            env: Some(config.env.clone()),
            cmd: config.cmd.clone(),
            entrypoint: config.entrypoint.clone(),
            user: config.user.clone(),
            working_dir: config.workdir.clone(),
            exposed_ports: Some(exposed),
            labels: Some(config.labels.clone()),
            stop_signal: config.stop_signal.clone(),
            stop_timeout: config.stop_timeout.map(|grace| i64::from(whole_seconds(grace))),
            host_config: Some(host_config),
            // The default bridge knows no aliases: only a scenario network gets the endpoint settings.
            networking_config: (config.network != DEFAULT_NETWORK).then(|| NetworkingConfig {
                endpoints_config: Some(HashMap::from([(config.network.clone(), endpoint)])),
            }),
            ..Default::default()
        };
        let options = CreateContainerOptions { name: Some(config.name.clone()), ..Default::default() };
        let created = self
            .docker
            .create_container(Some(options), body)
            .await
            .map_err(|e| EngineError::new("create container", &config.name, e))?;
        Ok(created.id)
    }

    pub async fn start_container(&self, id: &str) -> Result<(), EngineError> {
        self.docker.start_container(id, None).await.map_err(|e| EngineError::new("start container", id, e))
    }

    /// Sends the container its stop signal (its `StopSignal`) and waits `grace` for it to exit before
    /// the engine kills it.
    pub async fn stop_container(&self, id: &str, grace: Duration) -> Result<(), EngineError> {
        let options = StopContainerOptions { t: Some(whole_seconds(grace)), ..Default::default() };
        match self.waiting_out(grace).stop_container(id, Some(options)).await {
            // 304: already stopped, which is what was asked.
            Err(bollard::errors::Error::DockerResponseServerError { status_code: 304, .. }) => Ok(()),
            other => other.map_err(|e| EngineError::new("stop container", id, e)),
        }
    }

    pub async fn restart_container(&self, id: &str, grace: Duration) -> Result<(), EngineError> {
        let options = RestartContainerOptions { t: Some(whole_seconds(grace)), ..Default::default() };
        self.waiting_out(grace)
            .restart_container(id, Some(options))
            .await
            .map_err(|e| EngineError::new("restart container", id, e))
    }

    /// The client for a request that the engine answers only after a grace period: one whose time limit
    /// outlasts the grace, where the client's own (2 minutes) would cut a long `stop_grace_period` short.
    fn waiting_out(&self, grace: Duration) -> std::borrow::Cow<'_, bollard::Docker> {
        let needed = grace + STOP_ANSWER_MARGIN;
        if needed <= self.docker.timeout() {
            std::borrow::Cow::Borrowed(&self.docker)
        } else {
            std::borrow::Cow::Owned(self.docker.clone().with_timeout(needed))
        }
    }

    /// Removes a container and its anonymous volumes (a Dockerfile's `VOLUME` without a mount).
    pub async fn remove_container(&self, id: &str) -> Result<(), EngineError> {
        let options = RemoveContainerOptions { force: true, v: true, ..Default::default() };
        match self.docker.remove_container(id, Some(options)).await {
            Err(bollard::errors::Error::DockerResponseServerError { status_code: 404, .. }) => Ok(()),
            // Another removal of it (a sweep's, an interrupt's) is under way: done once it is gone.
            Err(bollard::errors::Error::DockerResponseServerError { status_code: 409, message })
                if message.contains("already in progress") =>
            {
                let deadline = std::time::Instant::now() + Duration::from_secs(30);
                while std::time::Instant::now() < deadline {
                    match self.docker.inspect_container(id, None).await {
                        Err(bollard::errors::Error::DockerResponseServerError { status_code: 404, .. }) => {
                            return Ok(());
                        }
                        _ => tokio::time::sleep(Duration::from_millis(100)).await,
                    }
                }
                Err(EngineError {
                    operation: "remove container",
                    resource: id.to_owned(),
                    message: format!("{message}, and it was still there 30s later"),
                    status: Some(409),
                    unanswered: false,
                })
            }
            other => other.map_err(|e| EngineError::new("remove container", id, e)),
        }
    }

    /// The first `limit` bytes of a file in a container's filesystem (read through the archive API, so
    /// it works for images with no shell and for containers that never started); `None` when there is
    /// no such file.
    pub async fn read_file_head(&self, id: &str, path: &str, limit: usize) -> Option<Vec<u8>> {
        self.path_head(id, path, limit).await.map(|found| found.head)
    }

    /// Who owns a path in a container's filesystem (a folder too), its mode and the start of its content.
    pub async fn path_head(&self, id: &str, path: &str, limit: usize) -> Option<PathHead> {
        let options = bollard::query_parameters::DownloadFromContainerOptions { path: path.to_owned() };
        let mut stream = self.docker.download_from_container(id, Some(options));
        let mut tar_bytes = Vec::new();
        // The first tar header (512 bytes) and the start of the file are enough; a folder's archive,
        // however big, is not read further.
        while let Some(chunk) = stream.next().await {
            tar_bytes.extend_from_slice(&chunk.ok()?);
            if tar_bytes.len() >= 512 + limit {
                break;
            }
        }
        let mut archive = tar::Archive::new(tar_bytes.as_slice());
        let mut entry = archive.entries().ok()?.next()?.ok()?;
        let (uid, mode) = (entry.header().uid().ok()?, entry.header().mode().ok()?);
        let mut head = vec![0; limit];
        let mut read = 0;
        while read < limit {
            match std::io::Read::read(&mut entry, &mut head[read..]) {
                Ok(0) | Err(_) => break,
                Ok(n) => read += n,
            }
        }
        head.truncate(read);
        Some(PathHead { uid, mode, head })
    }

    /// The user a container's processes run as (`Config.User`, the image's USER unless overridden).
    pub async fn container_user(&self, id: &str) -> Option<String> {
        let inspect = self.inspect_leniently(id).await.ok()?;
        Some(inspect.config.and_then(|c| c.user).unwrap_or_default())
    }

    /// `GET /containers/{id}/json`, read so that a state word bollard 0.21 does not know cannot fail it:
    /// Podman reports `stopped` for a moment between a container's exit and its cleanup, and bollard then
    /// fails the whole inspect ("unknown variant `stopped`"). Such an answer is read again as JSON, the
    /// state taken as what it means (`stopped` is exited); without a raw transport (TLS, ssh) it is asked
    /// again until the state has moved on.
    pub(crate) async fn inspect_leniently(&self, id: &str) -> Result<ContainerInspectResponse, EngineError> {
        let operation = "inspect container";
        let mut typed = self.docker.inspect_container(id, None).await;
        if !matches!(&typed, Err(e) if raw::is_unknown_value(e)) {
            return typed.map_err(|e| EngineError::new(operation, id, e));
        }
        if let Some(raw) = &self.raw {
            let path = format!("/v{}/containers/{id}/json", self.docker.client_version());
            let (_, mut json) = raw.get_json(&path).await.map_err(|(status, message)| EngineError {
                operation,
                resource: id.to_owned(),
                message,
                status,
                unanswered: status.is_none(),
            })?;
            raw::make_state_known(&mut json, "/State/Status");
            return serde_json::from_value(json).map_err(|e| EngineError {
                operation,
                resource: id.to_owned(),
                message: format!("cannot read the engine's answer: {e}"),
                status: None,
                unanswered: false,
            });
        }
        let deadline = std::time::Instant::now() + Duration::from_secs(5);
        while std::time::Instant::now() < deadline && matches!(&typed, Err(e) if raw::is_unknown_value(e)) {
            tokio::time::sleep(Duration::from_millis(100)).await;
            typed = self.docker.inspect_container(id, None).await;
        }
        typed.map_err(|e| EngineError::new(operation, id, e))
    }

    pub async fn inspect_container(&self, id: &str) -> Result<ContainerState, EngineError> {
        let inspect = self.inspect_leniently(id).await?;
        let state = inspect.state.unwrap_or_default();
        let stop_signal = inspect.config.as_ref().and_then(|c| c.stop_signal.clone()).filter(|s| !s.is_empty());
        let limits = inspect.host_config.as_ref();
        // A container that never exited has the zero time (`0001-01-01T00:00:00Z`).
        let finished_at = state
            .finished_at
            .as_deref()
            .and_then(|t| t.parse::<jiff::Timestamp>().ok())
            .filter(|t| *t > jiff::Timestamp::UNIX_EPOCH);
        let mut host_ports = HashMap::new();
        for (key, bindings) in inspect.network_settings.and_then(|n| n.ports).unwrap_or_default() {
            let Some(port) = key.strip_suffix("/tcp").and_then(|p| p.parse::<u16>().ok()) else { continue };
            let host = bindings
                .unwrap_or_default()
                .into_iter()
                .filter(|b| b.host_ip.as_deref().is_none_or(|ip| ip == "127.0.0.1" || ip == "0.0.0.0"))
                .find_map(|b| b.host_port.and_then(|p| p.parse::<u16>().ok()));
            if let Some(host) = host {
                host_ports.insert(port, host);
            }
        }
        Ok(ContainerState {
            id: inspect.id.unwrap_or_else(|| id.to_owned()),
            running: state.running.unwrap_or(false),
            status: state.status.map(|s| s.to_string()).unwrap_or_default(),
            exit_code: state.exit_code.unwrap_or(0),
            oom_killed: state.oom_killed.unwrap_or(false),
            pid: state.pid.unwrap_or(0),
            restart_count: inspect.restart_count.unwrap_or(0),
            host_ports,
            error: state.error.unwrap_or_default(),
            stop_signal: stop_signal.map_or_else(|| "SIGTERM".to_owned(), |s| signal_name(&s)),
            finished_at,
            memory_limit: limits.and_then(|h| h.memory).unwrap_or(0),
            pids_limit: limits.and_then(|h| h.pids_limit).unwrap_or(0).max(0),
        })
    }

    /// How many processes the container runs now, and may run; `None` when the engine gives no count (the
    /// container is not running, or a rootless cgroup v1). The engine's stats read them from the
    /// container's `pids` cgroup, and answer a one-shot request only at their next collection (about 1 s
    /// here): where the engine is local and the cgroup of its process `pid` names the container, the same
    /// two files are read here at once; else `GET /containers/{id}/stats`, one shot.
    pub async fn pids(&self, id: &str, pid: i64) -> Option<PidsCount> {
        if self.is_local()
            && let Some(count) = pids_from_cgroup(id, pid)
        {
            return Some(count);
        }
        let options = StatsOptions { stream: false, one_shot: true };
        let stats = self.docker.stats(id, Some(options)).next().await?.ok()?;
        let pids = stats.pids_stats?;
        let limit = pids.limit.filter(|l| *l > 0 && *l < u64::from(u32::MAX));
        Some(PidsCount { current: pids.current?, limit })
    }

    /// The container's output (stdout and stderr interleaved), the last `tail` lines or all of it,
    /// keeping at most [`LOG_CAPTURE_LIMIT`] bytes (the newest).
    pub async fn logs(&self, id: &str, tail: Option<usize>) -> Result<String, EngineError> {
        self.logs_since(id, 0, tail).await
    }

    /// The same, of what the container wrote since `since` (seconds since the epoch; 0: all of it).
    ///
    /// The tail is cut here, not by the engine: Podman 4's `tail=N` joins a partial line (one written
    /// without its newline yet, as `print(..., end="")` does) to the line before it and counts it as a line
    /// of its own, so the lines it gives are not the ones written. The whole log is read instead; the
    /// json-file log seatrial gives every container holds at most 20 MB, and at most
    /// [`LOG_CAPTURE_LIMIT`] of it is held at once.
    pub async fn logs_since(&self, id: &str, since: i32, tail: Option<usize>) -> Result<String, EngineError> {
        let options = LogsOptions { stdout: true, stderr: true, since, tail: "all".to_owned(), ..Default::default() };
        let mut bytes = self.read_logs(id, options).await?;
        if let Some(lines) = tail {
            bytes.drain(..last_lines_start(&bytes, lines));
        }
        Ok(String::from_utf8_lossy(&bytes).into_owned())
    }

    /// The newest [`LOG_CAPTURE_LIMIT`] bytes of the log the engine streams for `options`: a flood costs a
    /// bounded buffer, whatever the log holds.
    pub(crate) async fn read_logs(&self, id: &str, options: LogsOptions) -> Result<Vec<u8>, EngineError> {
        let mut stream = self.docker.logs(id, Some(options));
        let mut bytes: Vec<u8> = Vec::new();
        while let Some(chunk) = stream.next().await {
            let chunk = chunk.map_err(|e| EngineError::new("read logs of", id, e))?;
            bytes.extend_from_slice(&chunk.into_bytes());
            if bytes.len() > 2 * LOG_CAPTURE_LIMIT {
                bytes.drain(..bytes.len() - LOG_CAPTURE_LIMIT);
            }
        }
        if bytes.len() > LOG_CAPTURE_LIMIT {
            bytes.drain(..bytes.len() - LOG_CAPTURE_LIMIT);
        }
        Ok(bytes)
    }

    /// Follows the container's output until `text` appears in it, for at most `within`; false when it did
    /// not (the time ran out, or the container stopped). One pass over the stream, whatever its size:
    /// a log flood costs no memory and is not read again and again.
    pub async fn wait_for_log_text(&self, id: &str, text: &str, within: Duration) -> Result<bool, EngineError> {
        let needle = text.as_bytes();
        let search = async {
            // Where to pick up again when the engine ends a follow early (it does when the log file
            // rotates): from a second before, rather than from the start of a flood.
            let mut since = 0;
            loop {
                let options = LogsOptions {
                    stdout: true,
                    stderr: true,
                    follow: true,
                    since,
                    tail: "all".to_owned(),
                    ..Default::default()
                };
                let mut stream = self.docker.logs(id, Some(options));
                // The end of the previous chunk, so that a text split across two chunks is still found.
                let mut window: Vec<u8> = Vec::new();
                while let Some(chunk) = stream.next().await {
                    let chunk = chunk.map_err(|e| EngineError::new("follow logs of", id, e))?.into_bytes();
                    window.extend_from_slice(&chunk);
                    if window.windows(needle.len().max(1)).any(|w| w == needle) {
                        return Ok(true);
                    }
                    window.drain(..window.len().saturating_sub(needle.len().saturating_sub(1)));
                }
                since = unix_seconds().saturating_sub(1);
                tokio::time::sleep(Duration::from_millis(100)).await;
            }
        };
        tokio::time::timeout(within, search).await.unwrap_or(Ok(false))
    }

    /// Runs a command in a running container and waits for it; the exit code comes from `inspect_exec`.
    pub async fn exec(&self, id: &str, cmd: &[String], user: Option<&str>) -> Result<ExecOutput, EngineError> {
        let config = ExecConfig {
            attach_stdout: Some(true),
            attach_stderr: Some(true),
            cmd: Some(cmd.to_vec()),
            user: user.map(str::to_owned),
            ..Default::default()
        };
        let exec = self.docker.create_exec(id, config).await.map_err(|e| EngineError::new("create exec in", id, e))?;
        let started =
            self.docker.start_exec(&exec.id, None).await.map_err(|e| EngineError::new("start exec in", id, e))?;
        let mut out = ExecOutput::default();
        let (mut stdout, mut stderr) = (Vec::new(), Vec::new());
        if let bollard::exec::StartExecResults::Attached { mut output, .. } = started {
            while let Some(chunk) = output.next().await {
                match chunk.map_err(|e| EngineError::new("read exec output in", id, e))? {
                    bollard::container::LogOutput::StdErr { message } => push_capped(&mut stderr, &message),
                    other => push_capped(&mut stdout, &other.into_bytes()),
                }
            }
        }
        let inspect =
            self.docker.inspect_exec(&exec.id).await.map_err(|e| EngineError::new("inspect exec in", id, e))?;
        out.exit_code = inspect.exit_code.unwrap_or(-1);
        out.stdout = String::from_utf8_lossy(&stdout).into_owned();
        out.stderr = String::from_utf8_lossy(&stderr).into_owned();
        Ok(out)
    }
}

/// `pids.current` and `pids.max` of the cgroup of process `pid` (the `pids` controller's on cgroup v1,
/// the unified one on v2), when that cgroup's path names container `id`: else `None` (another host's
/// process, or a cgroup namespace of seatrial's own that hides the path).
fn pids_from_cgroup(id: &str, pid: i64) -> Option<PidsCount> {
    if pid <= 0 || id.is_empty() {
        return None;
    }
    let cgroups = std::fs::read_to_string(format!("/proc/{pid}/cgroup")).ok()?;
    let entries: Vec<(&str, &str)> = cgroups
        .lines()
        .filter_map(|line| {
            let mut fields = line.splitn(3, ':');
            let (_, controllers, path) = (fields.next()?, fields.next()?, fields.next()?);
            Some((controllers, path))
        })
        .collect();
    let folder = match entries.iter().find(|(controllers, _)| controllers.split(',').any(|c| c == "pids")) {
        Some((_, path)) => format!("/sys/fs/cgroup/pids{path}"),
        None => format!("/sys/fs/cgroup{}", entries.iter().find(|(controllers, _)| controllers.is_empty())?.1),
    };
    if !folder.contains(id) {
        return None;
    }
    let read = |file: &str| std::fs::read_to_string(format!("{folder}/{file}")).ok();
    let current = read("pids.current")?.trim().parse().ok()?;
    // `max`: no limit, as the engine's stats say with 0.
    let limit = read("pids.max")?.trim().parse::<u64>().ok().filter(|l| *l > 0 && *l < u64::from(u32::MAX));
    Some(PidsCount { current, limit })
}

/// Host ports chosen by seatrial for engines that draw theirs too early (Podman).
mod host_ports {
    use std::sync::Mutex;

    /// Ports handed out lately by this process: two containers made at once never get the same one.
    static GIVEN: Mutex<Vec<u16>> = Mutex::new(Vec::new());
    /// How many ports below the ephemeral range are drawn from.
    const SPAN: u16 = 12_000;

    /// The first port of the kernel's ephemeral range (`ip_local_port_range`, 32768 by default).
    fn ephemeral_start() -> u16 {
        std::fs::read_to_string("/proc/sys/net/ipv4/ip_local_port_range")
            .ok()
            .and_then(|range| range.split_whitespace().next()?.parse().ok())
            .unwrap_or(32_768)
    }

    /// A port below the ephemeral range that nothing listens on now (bound and released on 127.0.0.1), as
    /// the engine's `HostPort`; `None` when none is found in a few hundred tries (the engine then draws).
    pub fn free_below_ephemeral() -> Option<String> {
        let top = ephemeral_start();
        let bottom = top.saturating_sub(SPAN).max(1024);
        if top <= bottom {
            return None;
        }
        let mut given = crate::lock::unpoisoned(&GIVEN);
        // A draw that differs between processes and calls, without a random-number crate: the clock's
        // nanoseconds, the pid and a counter, mixed.
        let nanos = std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).map_or(0, |d| d.subsec_nanos());
        let mut seed = u64::from(nanos) ^ (u64::from(std::process::id()) << 32) ^ (given.len() as u64) << 16;
        for _ in 0..400 {
            seed = seed.wrapping_mul(6_364_136_223_846_793_005).wrapping_add(1_442_695_040_888_963_407);
            let port = bottom + ((seed >> 33) % u64::from(top - bottom)) as u16;
            if given.contains(&port) || std::net::TcpListener::bind(("127.0.0.1", port)).is_err() {
                continue;
            }
            if given.len() >= 1024 {
                given.remove(0);
            }
            given.push(port);
            return Some(port.to_string());
        }
        None
    }
}

/// Where the last `lines` lines of `log` start (a last line without its newline counts as one).
fn last_lines_start(log: &[u8], lines: usize) -> usize {
    if lines == 0 {
        return log.len();
    }
    let body = log.strip_suffix(b"\n").unwrap_or(log);
    body.iter().enumerate().rev().filter(|(_, b)| **b == b'\n').nth(lines - 1).map_or(0, |(at, _)| at + 1)
}

/// A signal by its name: Podman reports a container's stop signal as a number (`15`), Docker by name.
pub fn signal_name(signal: &str) -> String {
    // Linux's numbering (x86, arm): signal n is NAMES[n - 1].
    const NAMES: [&str; 31] = [
        "HUP", "INT", "QUIT", "ILL", "TRAP", "ABRT", "BUS", "FPE", "KILL", "USR1", "SEGV", "USR2", "PIPE", "ALRM",
        "TERM", "STKFLT", "CHLD", "CONT", "STOP", "TSTP", "TTIN", "TTOU", "URG", "XCPU", "XFSZ", "VTALRM", "PROF",
        "WINCH", "IO", "PWR", "SYS",
    ];
    match signal.trim().parse::<usize>() {
        Ok(number @ 1..=31) => format!("SIG{}", NAMES[number - 1]),
        _ => signal.to_owned(),
    }
}

fn push_capped(buffer: &mut Vec<u8>, bytes: &[u8]) {
    let room = LOG_CAPTURE_LIMIT.saturating_sub(buffer.len());
    buffer.extend_from_slice(&bytes[..bytes.len().min(room)]);
}

/// Now, in the seconds the engine's `since` takes.
pub fn unix_seconds() -> i32 {
    let now = std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).map_or(0, |d| d.as_secs());
    i32::try_from(now).unwrap_or(i32::MAX)
}

fn whole_seconds(duration: Duration) -> i32 {
    i32::try_from(duration.as_secs() + u64::from(duration.subsec_nanos() > 0)).unwrap_or(i32::MAX)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_tail_is_the_last_lines_written() {
        let log = b"first\nApplying x... OK\nApplying y... OK\nlast\n";
        assert_eq!(&log[last_lines_start(log, 2)..], b"Applying y... OK\nlast\n");
        assert_eq!(&log[last_lines_start(log, 10)..], log);
        assert_eq!(&log[last_lines_start(log, 0)..], b"");
        let partial = b"a\nb\nwaiting...";
        assert_eq!(&partial[last_lines_start(partial, 2)..], b"b\nwaiting...");
    }

    #[test]
    fn chosen_host_ports_are_free_distinct_and_below_the_ephemeral_range() {
        let ports: Vec<u16> =
            (0..50).filter_map(|_| host_ports::free_below_ephemeral()).map(|p| p.parse().expect("a number")).collect();
        assert_eq!(ports.len(), 50, "a port is found every time");
        let mut distinct = ports.clone();
        distinct.sort_unstable();
        distinct.dedup();
        assert_eq!(distinct.len(), ports.len(), "{ports:?}");
        let range = std::fs::read_to_string("/proc/sys/net/ipv4/ip_local_port_range").unwrap_or_default();
        let start: u16 = range.split_whitespace().next().and_then(|p| p.parse().ok()).unwrap_or(32_768);
        assert!(ports.iter().all(|p| *p < start && *p >= 1024), "{ports:?}");
    }

    #[test]
    fn stop_signals_read_by_name() {
        assert_eq!(signal_name("15"), "SIGTERM");
        assert_eq!(signal_name("2"), "SIGINT");
        assert_eq!(signal_name("SIGQUIT"), "SIGQUIT");
        assert_eq!(signal_name("40"), "40");
    }
}
