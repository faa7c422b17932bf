//! The resources of one scenario: its network, volumes and containers, removed whatever happens
//! (pass, failure, time limit, panic). State sits behind a lock so that the scenario's task and the
//! cleanup that outlives it see the same list.

use std::collections::HashMap;
use std::sync::{Arc, Mutex, MutexGuard};
use std::time::Duration;

use super::cancel::Cancellation;
use crate::engine::container::{ContainerConfig, ContainerState};
use crate::engine::labels::{RunId, short_hash, slug};
use crate::engine::{Engine, EngineError};

/// A container of the scenario as seatrial knows it now.
#[derive(Debug, Clone)]
pub struct LiveContainer {
    pub id: String,
    pub config: ContainerConfig,
    /// Container port -> host port, re-read after every lifecycle step.
    pub host_ports: HashMap<u16, u16>,
}

#[derive(Debug, Default)]
struct ScopeState {
    /// Files a re-creation threw away with a container's own layer, by container.
    discarded: HashMap<String, Vec<String>>,
    /// Why a re-creation had to kill a container rather than let it stop (a sentence), by container.
    killed: HashMap<String, String>,
    /// What the scenario did when, in order (`step 2 of 3 (sleep 5s)`): to tell at which step a container
    /// died, from the time the engine says it exited.
    phases: Vec<(jiff::Timestamp, String)>,
    network: Option<String>,
    volumes: Vec<String>,
    containers: HashMap<String, LiveContainer>,
    /// Containers created from an image and never started, to read its files, by image.
    unstarted: HashMap<String, String>,
    /// What the release steps did that a later failure may need to be told, by container.
    release: super::release::ReleaseLedger,
    /// The scenario's compose stack, once its copy is written (taken down in cleanup).
    stack: Option<Arc<super::stack::LiveStack>>,
    /// Which of `containers` are the stack's services (compose removes them, not the scope).
    services: std::collections::HashSet<String>,
    /// Anonymous volumes of the stack's services, removed in cleanup: compose hands them from container to
    /// container by name, after which the engine no longer removes them with their container.
    stack_volumes: Vec<String>,
    /// What the report should say besides the checks (the compose version, what the rewrite changed).
    notes: Vec<String>,
}

/// One scenario's resources and the names they get.
#[derive(Clone)]
pub struct Scope {
    engine: Engine,
    /// `seatrial-<run>-<scenario>`: the prefix of every name.
    pub prefix: String,
    pub labels: HashMap<String, String>,
    /// What the steps keep for later ones: saved values, cookies.
    pub memory: super::http_session::ScenarioMemory,
    cancellation: Cancellation,
    state: Arc<Mutex<ScopeState>>,
}

impl Scope {
    pub fn new(engine: &Engine, run: &RunId, cancellation: &Cancellation, test_name: &str) -> Scope {
        let prefix = format!("seatrial-{}-{}-{}", run.id, slug(test_name, 32), short_hash(test_name));
        Scope {
            engine: engine.clone(),
            prefix,
            labels: run.labels(Some(test_name)),
            memory: Default::default(),
            cancellation: cancellation.clone(),
            state: Arc::default(),
        }
    }

    fn state(&self) -> MutexGuard<'_, ScopeState> {
        crate::lock::unpoisoned(&self.state)
    }

    pub fn network_name(&self) -> String {
        self.prefix.clone()
    }

    pub fn volume_name(&self, volume: &str) -> String {
        format!("{}-{}", self.prefix, slug(volume, 40))
    }

    pub fn container_name(&self, container: &str) -> String {
        format!("{}-{}", self.prefix, slug(container, 40))
    }

    /// Refuses to create anything once the run is interrupted, so that the final sweep is final.
    fn refuse_if_interrupted(&self, what: &str) -> Result<(), EngineError> {
        if self.cancellation.is_cancelled() {
            return Err(EngineError {
                operation: "create",
                resource: what.to_owned(),
                message: "the run was interrupted".to_owned(),
                status: None,
                unanswered: false,
            });
        }
        Ok(())
    }

    pub async fn create_network(&self) -> Result<String, EngineError> {
        self.refuse_if_interrupted("network")?;
        let name = self.network_name();
        let id = self.engine.create_network(&name, self.labels.clone()).await?;
        self.state().network = Some(id);
        Ok(name)
    }

    /// The volume that stands in for the anonymous volume the engine would make for an image's `VOLUME`
    /// at `target` of `container`. `_` is in no slug, so no volume the scenario names can have this name.
    pub fn anonymous_volume_name(&self, container: &str, target: &str) -> String {
        let hash = short_hash(&format!("{container}\n{target}"));
        format!("{}-{}_{}-{hash}", self.prefix, slug(container, 40), slug(target, 40))
    }

    /// A named volume of the scenario (`data:/data`), made once however many containers mount it.
    pub async fn create_volume(&self, volume: &str) -> Result<String, EngineError> {
        self.create_volume_named(self.volume_name(volume)).await
    }

    /// The scenario's stand-in for an anonymous volume of `container` at `target`.
    pub async fn create_anonymous_volume(&self, container: &str, target: &str) -> Result<String, EngineError> {
        self.create_volume_named(self.anonymous_volume_name(container, target)).await
    }

    async fn create_volume_named(&self, name: String) -> Result<String, EngineError> {
        if self.state().volumes.contains(&name) {
            return Ok(name);
        }
        self.refuse_if_interrupted(&name)?;
        self.engine.create_volume(&name, self.labels.clone()).await?;
        self.state().volumes.push(name.clone());
        Ok(name)
    }

    /// Creates a container (recorded before it starts, so that a failed start still gets removed).
    pub async fn create_container(&self, key: &str, config: ContainerConfig) -> Result<String, EngineError> {
        self.refuse_if_interrupted(&config.name)?;
        let id = self.engine.create_container(&config).await?;
        self.state()
            .containers
            .insert(key.to_owned(), LiveContainer { id: id.clone(), config, host_ports: HashMap::new() });
        Ok(id)
    }

    /// A container of `image` that is never started, made once per scenario and image: its filesystem is
    /// the image's, for the archive API to read (`file: { image: ... }`). It carries the scenario's labels,
    /// so that cleanup, the sweep and `seatrial clean` find it.
    pub async fn unstarted_container(&self, image: &str) -> Result<String, EngineError> {
        if let Some(id) = self.state().unstarted.get(image) {
            return Ok(id.clone());
        }
        // `_` is in no slug, so no container or volume of the scenario can have these names.
        let name = format!("{}-{}_image-{}", self.prefix, slug(image, 40), short_hash(image));
        self.refuse_if_interrupted(&name)?;
        let mut volumes = Vec::new();
        for target in self.engine.image_volumes(image).await? {
            let hash = short_hash(&format!("{image}\n{target}"));
            let volume = format!("{}-{}_image-{}_{hash}", self.prefix, slug(image, 30), slug(&target, 30));
            volumes.push((self.create_volume_named(volume).await?, target));
        }
        let id = self.engine.create_unstarted_container(&name, image, self.labels.clone(), &volumes).await?;
        self.state().unstarted.insert(image.to_owned(), id.clone());
        Ok(id)
    }

    pub fn set_stack(&self, stack: Arc<super::stack::LiveStack>) {
        self.state().stack = Some(stack);
    }

    pub fn stack(&self) -> Option<Arc<super::stack::LiveStack>> {
        self.state().stack.clone()
    }

    /// Registers a service's container under the service's name.
    pub fn add_service(&self, service: &str, live: LiveContainer) {
        let mut state = self.state();
        state.services.insert(service.to_owned());
        state.containers.insert(service.to_owned(), live);
    }

    /// Records anonymous volumes of the stack, to remove in cleanup.
    pub fn add_stack_volumes(&self, volumes: Vec<String>) {
        let mut state = self.state();
        for volume in volumes {
            if !state.stack_volumes.contains(&volume) {
                state.stack_volumes.push(volume);
            }
        }
    }

    /// Forgets the services' containers (before they are found again, or after `down`).
    pub fn forget_services(&self) {
        let mut state = self.state();
        let services: Vec<String> = state.services.drain().collect();
        for service in services {
            state.containers.remove(&service);
        }
    }

    /// The scenario's own containers (not the stack's services), by name.
    pub fn own_containers(&self) -> Vec<(String, LiveContainer)> {
        let state = self.state();
        state
            .containers
            .iter()
            .filter(|(k, _)| !state.services.contains(*k))
            .map(|(k, v)| (k.clone(), v.clone()))
            .collect()
    }

    pub fn add_note(&self, note: String) {
        let mut state = self.state();
        if !state.notes.contains(&note) {
            state.notes.push(note);
        }
    }

    pub fn notes(&self) -> Vec<String> {
        self.state().notes.clone()
    }

    /// The release steps' record, to change or read under the scope's lock.
    pub fn with_release<T>(&self, f: impl FnOnce(&mut super::release::ReleaseLedger) -> T) -> T {
        f(&mut self.state().release)
    }

    /// Removes a container and forgets it (for `recreate`).
    pub async fn remove_container(&self, key: &str) -> Result<Option<LiveContainer>, EngineError> {
        let Some(live) = self.container(key) else { return Ok(None) };
        self.engine.remove_container(&live.id).await?;
        self.state().containers.remove(key);
        Ok(Some(live))
    }

    /// Records the files that a container's re-creation discarded.
    pub fn record_discarded(&self, key: &str, files: Vec<String>) {
        if !files.is_empty() {
            self.state().discarded.entry(key.to_owned()).or_default().extend(files);
        }
    }

    /// Notes that the scenario now does `what` (`step 2 of 3 (sleep 5s)`, `the start of container `web``).
    pub fn enter_phase(&self, what: String) {
        self.state().phases.push((jiff::Timestamp::now(), what));
    }

    /// What the scenario was doing at `when` (an engine time, such as a container's exit); `None` before
    /// its first phase.
    pub fn phase_at(&self, when: jiff::Timestamp) -> Option<String> {
        let state = self.state();
        state.phases.iter().rev().find(|(started, _)| *started <= when).map(|(_, what)| what.clone())
    }

    /// Records that a re-creation killed a container that did not stop within its grace period.
    pub fn record_killed(&self, key: &str, why: String) {
        self.state().killed.insert(key.to_owned(), why);
    }

    /// What re-creations lost, as sentences, each told once: the first check that reads data after a
    /// re-creation is the one they explain. A kill comes before the files, being the likelier cause.
    pub fn take_recreation_losses(&self) -> Vec<String> {
        let mut state = self.state();
        let mut killed: Vec<(String, String)> = state.killed.drain().collect();
        let mut discarded: Vec<(String, Vec<String>)> = state.discarded.drain().collect();
        killed.sort();
        discarded.sort();
        let killed = killed.into_iter().map(|(_, why)| why);
        killed
            .chain(discarded.iter().map(|(container, files)| crate::diagnose::discarded_on_recreate(container, files)))
            .collect()
    }

    pub fn container(&self, key: &str) -> Option<LiveContainer> {
        self.state().containers.get(key).cloned()
    }

    /// Reads the container's state and records its host ports, which change on every restart.
    pub async fn refresh(&self, key: &str) -> Result<ContainerState, EngineError> {
        let id = self.container(key).map(|c| c.id).unwrap_or_else(|| self.container_name(key));
        let state = self.engine.inspect_container(&id).await?;
        if let Some(live) = self.state().containers.get_mut(key) {
            live.host_ports = state.host_ports.clone();
        }
        Ok(state)
    }

    /// Scenario container names and ids, in no particular order.
    pub fn containers(&self) -> Vec<(String, LiveContainer)> {
        self.state().containers.iter().map(|(k, v)| (k.clone(), v.clone())).collect()
    }

    /// Removes everything, containers first. Every removal is tried; the first error is returned.
    ///
    /// A container whose scenario names its `stop_signal` or `stop_grace_period` is stopped with them
    /// first, as `docker compose down` does, so that what it does on the way out (flush to a bind mount,
    /// say goodbye to a peer) happens. The others are removed at once: their volumes and network go right
    /// after, so a graceful stop would buy nothing and cost the whole grace period for every PID 1 that
    /// ignores SIGTERM (a shell, `sleep`, busybox `httpd`). After an interruption nothing waits.
    pub async fn cleanup(&self) -> Result<(), EngineError> {
        let (containers, services, stack, network, volumes, unstarted) = {
            let mut state = self.state();
            let unstarted: Vec<String> = state.unstarted.drain().map(|(_, id)| id).collect();
            let services = std::mem::take(&mut state.services);
            let (services, containers): (Vec<_>, Vec<_>) =
                state.containers.drain().partition(|(name, _)| services.contains(name));
            (
                containers.into_iter().map(|(_, c)| c).collect::<Vec<_>>(),
                services.into_iter().map(|(_, c)| c).collect::<Vec<_>>(),
                state.stack.take(),
                state.network.take(),
                std::mem::take(&mut state.volumes),
                unstarted,
            )
        };
        let interrupted = self.cancellation.is_cancelled();
        let mut first_error = None;
        let removals = containers.iter().map(|live| async move {
            let declared = live.config.stop_signal.is_some() || live.config.stop_timeout.is_some();
            if declared && !interrupted {
                let grace = live.config.stop_timeout.unwrap_or(super::steps::DEFAULT_STOP_GRACE);
                // A stop that fails (the container already gone) leaves the removal to say what is wrong.
                let _ = self.engine.stop_container(&live.id, grace).await;
            }
            self.engine.remove_container(&live.id).await
        });
        let unstarted = unstarted.iter().map(|id| self.engine.remove_container(id));
        for result in futures_util::future::join_all(removals)
            .await
            .into_iter()
            .chain(futures_util::future::join_all(unstarted).await)
        {
            if let Err(e) = result {
                first_error.get_or_insert(e);
            }
        }
        // The stack goes after the scenario's own containers, which may sit on its network; its services'
        // containers and anonymous volumes are removed after it too, should compose have left any.
        if let Some(stack) = stack {
            for live in &services {
                let anonymous = self.engine.anonymous_volumes_of(&live.id).await;
                self.add_stack_volumes(anonymous);
            }
            let grace = if interrupted { Some(Duration::ZERO) } else { stack.cleanup_grace() };
            if let Err(e) = stack.stack.down(true, grace).await {
                first_error.get_or_insert(EngineError {
                    operation: "compose down",
                    resource: stack.stack.project.clone(),
                    message: e.to_string(),
                    status: None,
                    unanswered: false,
                });
            }
            for live in &services {
                if let Err(e) = self.engine.remove_container(&live.id).await {
                    first_error.get_or_insert(e);
                }
            }
            if let Err(e) = self.engine.remove_project_volumes(&stack.stack.project).await {
                first_error.get_or_insert(e);
            }
            let anonymous = std::mem::take(&mut self.state().stack_volumes);
            for volume in anonymous {
                if let Err(e) = self.engine.remove_volume(&volume).await
                    && !e.is_not_found()
                {
                    first_error.get_or_insert(e);
                }
            }
        }
        if let Some(network) = network
            && let Err(e) = self.engine.remove_network(&network).await
        {
            first_error.get_or_insert(e);
        }
        for volume in volumes {
            if let Err(e) = self.engine.remove_volume(&volume).await {
                first_error.get_or_insert(e);
            }
        }
        first_error.map_or(Ok(()), Err)
    }
}
