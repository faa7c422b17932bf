//! What a compose stack made, found through the engine by the labels both compose generations set:
//! each service's container, its configuration as the engine holds it, its health.

use std::collections::HashMap;
use std::path::PathBuf;
use std::time::Duration;

use bollard::query_parameters::ListVolumesOptions;

use super::container::{ContainerConfig, MountConfig};
use super::{Engine, EngineError};
use crate::compose::{ONEOFF_LABEL, PROJECT_LABEL, SERVICE_LABEL};

/// What the engine says of a container's healthcheck.
#[derive(Debug, Clone)]
pub struct Health {
    /// `starting`, `healthy` or `unhealthy`.
    pub status: String,
    /// What the last check printed.
    pub last_output: String,
    /// How many checks the engine keeps a record of (none: no check has run yet).
    pub checks_run: usize,
}

/// A service's container as the engine lists it.
#[derive(Debug, Clone)]
pub struct ServiceContainer {
    pub service: String,
    pub id: String,
}

impl Engine {
    /// The containers of a compose project's services (not one-off `run`s), the first of each service.
    pub async fn service_containers(&self, project: &str) -> Result<Vec<ServiceContainer>, EngineError> {
        let filters = HashMap::from([("label".to_owned(), vec![format!("{PROJECT_LABEL}={project}")])]);
        let mut found: Vec<(String, String, String)> = Vec::new();
        for c in self.list_containers_leniently(&filters).await? {
            let labels = c.labels.unwrap_or_default();
            if labels.get(ONEOFF_LABEL).is_some_and(|o| o.eq_ignore_ascii_case("true")) {
                continue;
            }
            let (Some(service), Some(id)) = (labels.get(SERVICE_LABEL), c.id) else { continue };
            let number = labels.get("com.docker.compose.container-number").cloned().unwrap_or_default();
            found.push((service.clone(), number, id));
        }
        found.sort();
        let mut services: Vec<ServiceContainer> = Vec::new();
        for (service, _, id) in found {
            if !services.iter().any(|s| s.service == service) {
                services.push(ServiceContainer { service, id });
            }
        }
        Ok(services)
    }

    /// The names of a compose project's networks, its default network first.
    pub async fn project_networks(&self, project: &str) -> Result<Vec<String>, EngineError> {
        let filters = HashMap::from([("label".to_owned(), vec![format!("{PROJECT_LABEL}={project}")])]);
        let networks = self
            .docker
            .list_networks(Some(bollard::query_parameters::ListNetworksOptions { filters: Some(filters) }))
            .await
            .map_err(|e| EngineError::new("list networks", project, e))?;
        let mut names: Vec<String> = networks.into_iter().filter_map(|n| n.name).collect();
        let default = format!("{project}_default");
        names.sort_by_key(|n| (*n != default, n.clone()));
        Ok(names)
    }

    /// A container's configuration as the engine holds it: what compose made of the service, for the
    /// diagnoses that read a configuration (files lost outside every volume, its stop signal).
    pub async fn config_of(&self, id: &str, alias: &str) -> Result<ContainerConfig, EngineError> {
        let inspect = self.inspect_leniently(id).await?;
        let config = inspect.config.unwrap_or_default();
        let host = inspect.host_config.unwrap_or_default();
        let ports = host
            .port_bindings
            .unwrap_or_default()
            .keys()
            .filter_map(|k| k.strip_suffix("/tcp").and_then(|p| p.parse::<u16>().ok()))
            .collect();
        let mounts = inspect
            .mounts
            .unwrap_or_default()
            .into_iter()
            .filter_map(|m| {
                let target = m.destination?;
                let read_only = !m.rw.unwrap_or(true);
                match m.typ.map(|t| t.to_string()).as_deref() {
                    Some("bind") => Some(MountConfig::Bind { source: PathBuf::from(m.source?), target, read_only }),
                    _ => Some(MountConfig::Volume { name: m.name.unwrap_or_default(), target, read_only }),
                }
            })
            .collect();
        Ok(ContainerConfig {
            name: inspect.name.unwrap_or_default().trim_start_matches('/').to_owned(),
            image: config.image.unwrap_or_default(),
            env: config.env.unwrap_or_default(),
            cmd: config.cmd,
            entrypoint: config.entrypoint,
            user: config.user.filter(|u| !u.is_empty()),
            workdir: config.working_dir.filter(|w| !w.is_empty()),
            ports,
            mounts,
            network: host.network_mode.unwrap_or_default(),
            alias: alias.to_owned(),
            labels: config.labels.unwrap_or_default(),
            stop_signal: config.stop_signal.filter(|s| !s.is_empty()),
            stop_timeout: config.stop_timeout.and_then(|t| u64::try_from(t).ok()).map(Duration::from_secs),
        })
    }

    /// The container's health, `None` without a healthcheck.
    pub async fn health(&self, id: &str) -> Result<Option<Health>, EngineError> {
        let inspect = self.inspect_leniently(id).await?;
        let Some(health) = inspect.state.and_then(|s| s.health) else { return Ok(None) };
        let status = health.status.map(|s| s.to_string()).unwrap_or_default();
        if status.is_empty() || status == "none" {
            return Ok(None);
        }
        let mut log = health.log.unwrap_or_default();
        let checks_run = log.len();
        let last_output = log.pop().and_then(|l| l.output).unwrap_or_default().trim().to_owned();
        Ok(Some(Health { status, last_output, checks_run }))
    }

    /// The anonymous volumes a container mounts (named by the engine: 64 hex digits). Compose passes a
    /// re-created container its predecessor's by name, after which the engine no longer removes them
    /// with the container: whoever removes the container must remove them too.
    pub async fn anonymous_volumes_of(&self, id: &str) -> Vec<String> {
        let Ok(inspect) = self.inspect_leniently(id).await else { return Vec::new() };
        inspect
            .mounts
            .unwrap_or_default()
            .into_iter()
            .filter(|m| m.typ.as_ref().map(|t| t.to_string()).as_deref() == Some("volume"))
            .filter_map(|m| m.name)
            .filter(|name| name.len() == 64 && name.chars().all(|c| c.is_ascii_hexdigit()))
            .collect()
    }

    /// Removes the volumes of a compose project that carry no label of ours: the anonymous volumes
    /// compose makes for an image's `VOLUME`s. Returns their names.
    pub async fn remove_project_volumes(&self, project: &str) -> Result<Vec<String>, EngineError> {
        let filters = HashMap::from([("label".to_owned(), vec![format!("{PROJECT_LABEL}={project}")])]);
        let volumes = self
            .docker
            .list_volumes(Some(ListVolumesOptions { filters: Some(filters) }))
            .await
            .map_err(|e| EngineError::new("list volumes", project, e))?;
        let mut removed = Vec::new();
        for v in volumes.volumes.unwrap_or_default() {
            if self.remove_volume(&v.name).await.is_ok() {
                removed.push(v.name);
            }
        }
        Ok(removed)
    }
}
