//! What the release steps ask of the engine: signals, freezing, network attachment, a container made
//! only to read an image's files, and a log read from a point in time. One method per Engine API call,
//! named after it.

use std::collections::HashMap;

use bollard::models::{
    ContainerCreateBody, EndpointSettings, HostConfig, Mount, MountType, NetworkConnectRequest,
    NetworkDisconnectRequest,
};
use bollard::query_parameters::{CreateContainerOptions, KillContainerOptions, LogsOptions};

use super::{Engine, EngineError};

/// The command given to a container that is never started: an image with no `CMD` (`scratch`) cannot be
/// made into a container without one, and nothing runs it.
const NEVER_RUN: &str = "seatrial-never-started";

impl Engine {
    /// Sends `signal` (`SIGKILL`, or a number) to the container's PID 1 (`POST /containers/{id}/kill`).
    pub async fn kill_container(&self, id: &str, signal: &str) -> Result<(), EngineError> {
        let options = KillContainerOptions { signal: signal.to_owned() };
        self.docker.kill_container(id, Some(options)).await.map_err(|e| EngineError::new("kill container", id, e))
    }

    /// Freezes every process of the container (`POST /containers/{id}/pause`).
    pub async fn pause_container(&self, id: &str) -> Result<(), EngineError> {
        self.docker.pause_container(id).await.map_err(|e| EngineError::new("pause container", id, e))
    }

    /// Thaws a paused container (`POST /containers/{id}/unpause`).
    pub async fn unpause_container(&self, id: &str) -> Result<(), EngineError> {
        self.docker.unpause_container(id).await.map_err(|e| EngineError::new("unpause container", id, e))
    }

    /// Takes the container off `network` (`POST /networks/{id}/disconnect`).
    pub async fn disconnect_network(&self, network: &str, container: &str) -> Result<(), EngineError> {
        let request = NetworkDisconnectRequest { container: container.to_owned(), force: Some(false) };
        self.docker
            .disconnect_network(network, request)
            .await
            .map_err(|e| EngineError::new("disconnect from network", format!("{container} from {network}"), e))
    }

    /// Puts the container on `network` (`POST /networks/{id}/connect`), reachable there as `alias` (the
    /// engine's default bridge knows no aliases: `None`).
    pub async fn connect_network(
        &self,
        network: &str,
        container: &str,
        alias: Option<&str>,
    ) -> Result<(), EngineError> {
        let endpoint_config =
            alias.map(|alias| EndpointSettings { aliases: Some(vec![alias.to_owned()]), ..Default::default() });
        let request = NetworkConnectRequest { container: container.to_owned(), endpoint_config };
        self.docker
            .connect_network(network, request)
            .await
            .map_err(|e| EngineError::new("connect to network", format!("{container} to {network}"), e))
    }

    /// Creates a container from `image` that is never started (`POST /containers/create`): its filesystem
    /// is the image's, for the archive API to read. No network, no command that could run. `volumes`
    /// (volume name, target) cover the image's `VOLUME`s, which the engine would otherwise cover with
    /// anonymous volumes that carry no label; an empty volume gets the image's files there all the same.
    pub async fn create_unstarted_container(
        &self,
        name: &str,
        image: &str,
        labels: HashMap<String, String>,
        volumes: &[(String, String)],
    ) -> Result<String, EngineError> {
        let mounts = volumes
            .iter()
            .map(|(volume, target)| Mount {
                typ: Some(MountType::VOLUME),
                source: Some(volume.clone()),
                target: Some(target.clone()),
                ..Default::default()
            })
            .collect();
        let body = ContainerCreateBody {
            image: Some(image.to_owned()),
            cmd: Some(vec![NEVER_RUN.to_owned()]),
            labels: Some(labels),
            network_disabled: Some(true),
            host_config: Some(HostConfig {
                network_mode: Some("none".to_owned()),
                mounts: Some(mounts),
                ..Default::default()
            }),
            ..Default::default()
        };
        let options = CreateContainerOptions { name: Some(name.to_owned()), ..Default::default() };
        let created = self
            .docker
            .create_container(Some(options), body)
            .await
            .map_err(|e| EngineError::new("create container", name, e))?;
        Ok(created.id)
    }

    /// What the container logged after `after` (an engine time, such as the moment it was killed), the
    /// last `tail` lines of it: the engine's `since` counts whole seconds, so the lines are read with
    /// their timestamps and those up to `after` dropped.
    pub async fn logs_after(&self, id: &str, after: jiff::Timestamp, tail: usize) -> Result<Vec<String>, EngineError> {
        let since = i32::try_from(after.as_second()).unwrap_or(0);
        let options = LogsOptions {
            stdout: true,
            stderr: true,
            since,
            timestamps: true,
            tail: "all".to_owned(),
            ..Default::default()
        };
        let bytes = self.read_logs(id, options).await?;
        let text = String::from_utf8_lossy(&bytes);
        let lines: Vec<String> = text
            .lines()
            .filter_map(|line| {
                let (stamp, rest) = line.split_once(' ').unwrap_or((line, ""));
                let when = stamp.parse::<jiff::Timestamp>().ok()?;
                // Podman stamps lines to the second: such a stamp covers its whole second, which may hold
                // `after` (a line of the same second is kept rather than lost).
                let whole_second = !stamp.contains('.');
                let kept = when > after || (whole_second && when.as_second() >= after.as_second());
                kept.then(|| rest.to_owned())
            })
            .collect();
        Ok(lines[lines.len().saturating_sub(tail)..].to_vec())
    }
}
