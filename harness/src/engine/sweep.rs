//! Finding and removing what seatrial made: this run's resources at its end, and what a killed run left.
//! A resource belongs to a dead run when its run's process is gone from this host (or its pid now
//! belongs to a process that started later), or, for a run started on another host, when it is older
//! than the stale age. A live run's resources are never touched.

use std::collections::HashMap;
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use bollard::models::ContainerSummary;
use bollard::query_parameters::{ListContainersOptions, ListImagesOptions, ListNetworksOptions, ListVolumesOptions};

use super::labels::{self, HOSTNAME, PID, PID_START, RUN, STARTED};
use super::{Engine, EngineError, raw};

/// Runs from another host older than this are taken as dead.
pub const STALE_AGE: Duration = Duration::from_secs(6 * 3600);

/// Which runs' resources to remove.
#[derive(Debug, Clone)]
pub enum SweepScope {
    /// Everything of this one run (its own end, or its Ctrl-C).
    Run(String),
    /// Everything of runs that are no longer alive.
    Dead,
}

/// What a sweep found (and removed, unless it was a dry run).
#[derive(Debug, Default, Clone)]
pub struct SweepReport {
    pub containers: Vec<String>,
    pub networks: Vec<String>,
    pub volumes: Vec<String>,
    pub images: Vec<String>,
    /// Folders of compose stacks' copies that killed runs left on this host.
    pub folders: Vec<String>,
    pub errors: Vec<EngineError>,
}

impl SweepReport {
    pub fn total(&self) -> usize {
        self.containers.len() + self.networks.len() + self.volumes.len() + self.images.len() + self.folders.len()
    }

    /// Adds a later pass: what it removed, and its errors in place of the earlier ones.
    fn absorb(&mut self, later: SweepReport) {
        self.containers.extend(later.containers);
        self.networks.extend(later.networks);
        self.volumes.extend(later.volumes);
        self.images.extend(later.images);
        self.folders.extend(later.folders);
        self.errors = later.errors;
    }
}

fn is_dead(resource_labels: &HashMap<String, String>) -> bool {
    if resource_labels.contains_key(labels::KEEP) {
        return false;
    }
    let same_host = resource_labels.get(HOSTNAME).is_some_and(|h| *h == labels::hostname());
    let pid = resource_labels.get(PID).and_then(|p| p.parse::<u32>().ok());
    if same_host && let Some(pid) = pid {
        if pid == std::process::id() {
            return false;
        }
        let recorded_start = resource_labels.get(PID_START).and_then(|s| s.parse::<u64>().ok());
        return match (labels::process_start(pid), recorded_start) {
            (None, _) => !std::path::Path::new(&format!("/proc/{pid}")).exists(),
            (Some(now_start), Some(recorded)) => now_start != recorded,
            (Some(_), None) => false,
        };
    }
    let started = resource_labels.get(STARTED).and_then(|s| s.parse::<u64>().ok()).unwrap_or(0);
    let now = SystemTime::now().duration_since(UNIX_EPOCH).map_or(0, |d| d.as_secs());
    now.saturating_sub(started) > STALE_AGE.as_secs()
}

/// Whether a sweep removes what it finds or only lists it (`seatrial clean --dry-run`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum SweepMode {
    Remove,
    List,
}

impl Engine {
    /// Removes (or with [`SweepMode::List`] only lists) the resources in `scope`: containers first, then networks,
    /// volumes and images, so that nothing is still in use when its turn comes.
    pub async fn sweep(&self, scope: &SweepScope, mode: SweepMode) -> Result<SweepReport, EngineError> {
        let dry_run = mode == SweepMode::List;
        let filter_value = match scope {
            SweepScope::Run(id) => format!("{RUN}={id}"),
            SweepScope::Dead => RUN.to_owned(),
        };
        let filters = HashMap::from([("label".to_owned(), vec![filter_value])]);
        let wanted = |l: &HashMap<String, String>| match scope {
            SweepScope::Run(_) => true,
            SweepScope::Dead => is_dead(l),
        };
        let mut report = SweepReport::default();

        let containers = self.list_containers_leniently(&filters).await?;
        // Runs seen alive: a compose stack's anonymous volumes carry no label of ours, only its project's
        // name, which holds the run's id; they go with their run.
        let mut alive: std::collections::HashSet<String> = std::collections::HashSet::new();
        let mut note_alive = |l: &HashMap<String, String>| {
            if !wanted(l)
                && let Some(run) = l.get(RUN)
            {
                alive.insert(run.clone());
            }
        };
        for c in containers {
            note_alive(&c.labels.clone().unwrap_or_default());
            if wanted(&c.labels.clone().unwrap_or_default()) {
                let id = c.id.unwrap_or_default();
                report.containers.push(c.names.and_then(|n| n.first().cloned()).unwrap_or_else(|| id.clone()));
                let anonymous = self.anonymous_volumes_of(&id).await;
                if !dry_run && let Err(e) = self.remove_container(&id).await {
                    report.errors.push(e);
                }
                for volume in anonymous {
                    if dry_run || self.remove_volume(&volume).await.is_ok() {
                        report.volumes.push(volume);
                    }
                }
            }
        }

        let networks = self
            .docker
            .list_networks(Some(ListNetworksOptions { filters: Some(filters.clone()) }))
            .await
            .map_err(|e| EngineError::new("list networks", RUN, e))?;
        for n in networks {
            note_alive(&n.labels.clone().unwrap_or_default());
            if wanted(&n.labels.clone().unwrap_or_default()) {
                let id = n.id.unwrap_or_default();
                report.networks.push(n.name.unwrap_or_else(|| id.clone()));
                if !dry_run && let Err(e) = self.remove_network(&id).await.or_else(ignore_not_found) {
                    report.errors.push(e);
                }
            }
        }

        let volumes = self
            .docker
            .list_volumes(Some(ListVolumesOptions { filters: Some(filters.clone()) }))
            .await
            .map_err(|e| EngineError::new("list volumes", RUN, e))?;
        for v in volumes.volumes.unwrap_or_default() {
            note_alive(&v.labels);
            if wanted(&v.labels) {
                report.volumes.push(v.name.clone());
                if !dry_run && let Err(e) = self.remove_volume(&v.name).await.or_else(ignore_not_found) {
                    report.errors.push(e);
                }
            }
        }

        let images = self
            .docker
            .list_images(Some(ListImagesOptions { filters: Some(filters), ..Default::default() }))
            .await
            .map_err(|e| EngineError::new("list images", RUN, e))?;
        for image in &images {
            note_alive(&image.labels);
        }
        for image in images {
            if wanted(&image.labels) {
                let name = image.repo_tags.first().cloned().unwrap_or_else(|| image.id.clone());
                report.images.push(name);
                if !dry_run && let Err(e) = self.remove_image(&image.id).await {
                    report.errors.push(e);
                }
            }
        }
        for volume in self.compose_volumes().await? {
            let run = volume.project.split('-').nth(1).unwrap_or_default().to_owned();
            let theirs = match scope {
                SweepScope::Run(id) => run == *id,
                SweepScope::Dead => !alive.contains(&run),
            };
            if theirs {
                report.volumes.push(volume.name.clone());
                if !dry_run && let Err(e) = self.remove_volume(&volume.name).await.or_else(ignore_not_found) {
                    report.errors.push(e);
                }
            }
        }
        if let SweepScope::Run(_) = scope
            && !dry_run
        {
            report.images.extend(self.remove_unfinished_step_images().await);
        }
        if let SweepScope::Dead = scope {
            report.folders = crate::compose::remove_dead_folders(dry_run);
        }
        Ok(report)
    }
}

/// A volume that compose made for one of seatrial's stacks.
struct ComposeVolume {
    name: String,
    project: String,
}

impl Engine {
    /// The volumes of compose projects that seatrial named (`seatrial-<run>-...`) and that carry no label
    /// of ours: the anonymous volumes compose makes for an image's `VOLUME`s.
    async fn compose_volumes(&self) -> Result<Vec<ComposeVolume>, EngineError> {
        let project = crate::compose::PROJECT_LABEL;
        let filters = HashMap::from([("label".to_owned(), vec![project.to_owned()])]);
        let volumes = self
            .docker
            .list_volumes(Some(ListVolumesOptions { filters: Some(filters) }))
            .await
            .map_err(|e| EngineError::new("list volumes", project, e))?;
        Ok(volumes
            .volumes
            .unwrap_or_default()
            .into_iter()
            .filter(|v| !v.labels.contains_key(RUN))
            .filter_map(|v| {
                let project = v.labels.get(project)?.clone();
                project.starts_with("seatrial-").then_some(ComposeVolume { name: v.name, project })
            })
            .collect())
    }

    /// `GET /containers/json?all=1`, read so that a state word bollard 0.21 does not know (Podman's
    /// transient `stopped`) cannot fail the listing, and with it a sweep: read again as JSON where the raw
    /// transport reaches the engine, else asked again until the state has moved on.
    pub(crate) async fn list_containers_leniently(
        &self,
        filters: &HashMap<String, Vec<String>>,
    ) -> Result<Vec<ContainerSummary>, EngineError> {
        let options = || ListContainersOptions { all: true, filters: Some(filters.clone()), ..Default::default() };
        let mut typed = self.docker.list_containers(Some(options())).await;
        if let (Err(e), Some(raw)) = (&typed, &self.raw)
            && raw::is_unknown_value(e)
        {
            let filters = serde_json::to_string(filters).unwrap_or_default();
            let encoded = percent_encoding::utf8_percent_encode(&filters, percent_encoding::NON_ALPHANUMERIC);
            let path = format!("/v{}/containers/json?all=1&filters={encoded}", self.docker.client_version());
            let unread = |status: Option<u16>, message: String| EngineError {
                operation: "list containers",
                resource: RUN.to_owned(),
                message,
                status,
                unanswered: status.is_none(),
            };
            let (_, mut json) = raw.get_json(&path).await.map_err(|(status, message)| unread(status, message))?;
            for entry in json.as_array_mut().into_iter().flatten() {
                raw::make_state_known(entry, "/State");
            }
            return serde_json::from_value(json).map_err(|e| unread(None, format!("cannot read the answer: {e}")));
        }
        let deadline = std::time::Instant::now() + Duration::from_secs(5);
        while std::time::Instant::now() < deadline && matches!(&typed, Err(e) if raw::is_unknown_value(e)) {
            tokio::time::sleep(Duration::from_millis(100)).await;
            typed = self.docker.list_containers(Some(options())).await;
        }
        typed.map_err(|e| EngineError::new("list containers", RUN, e))
    }

    /// Sweeps pass after pass (300 ms apart, 8 at most) until a pass after the first finds nothing,
    /// meets no error and leaves no step image waiting: a request in flight may create something after
    /// a pass has listed, and the engine refuses what it is still tearing down (a network whose
    /// container is going, the step image under a dropped build). One report for all passes.
    pub async fn sweep_until_empty(&self, scope: &SweepScope) -> Result<SweepReport, EngineError> {
        let mut report = self.sweep(scope, SweepMode::Remove).await?;
        for _ in 1..8 {
            tokio::time::sleep(Duration::from_millis(300)).await;
            let Ok(pass) = self.sweep(scope, SweepMode::Remove).await else { break };
            let empty = pass.total() == 0 && pass.errors.is_empty();
            report.absorb(pass);
            if empty && !super::build::has_unfinished_step_images() {
                break;
            }
        }
        Ok(report)
    }
}

fn ignore_not_found(e: EngineError) -> Result<(), EngineError> {
    if e.is_not_found() { Ok(()) } else { Err(e) }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn run_labels(pid: u32, start: Option<u64>) -> HashMap<String, String> {
        let mut l = HashMap::from([
            (RUN.to_owned(), "0000abcd".to_owned()),
            (PID.to_owned(), pid.to_string()),
            (HOSTNAME.to_owned(), labels::hostname()),
            (STARTED.to_owned(), "0".to_owned()),
        ]);
        if let Some(start) = start {
            l.insert(PID_START.to_owned(), start.to_string());
        }
        l
    }

    #[test]
    fn a_run_is_alive_only_while_its_own_process_is() {
        let parent = std::os::unix::process::parent_id();
        let started = labels::process_start(parent).expect("the parent process has a start time");
        assert!(!is_dead(&run_labels(parent, Some(started))), "the process that made it still runs");
        assert!(is_dead(&run_labels(parent, Some(started + 1))), "its pid was taken by a later process");
        assert!(!is_dead(&run_labels(parent, None)), "labels of older versions: the pid alone decides");
        assert!(is_dead(&run_labels(u32::MAX, Some(started))), "no such process");
        let mut kept = run_labels(u32::MAX, None);
        kept.insert(labels::KEEP.to_owned(), "true".to_owned());
        assert!(!is_dead(&kept), "what --keep left waits for `clean --run`");
    }
}
