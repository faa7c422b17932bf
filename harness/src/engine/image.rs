//! An image's configuration as the engine holds it (`GET /images/{name}/json`): in, an image reference;
//! out, [`ImageFacts`]. No container is made, so it works for images with no shell and for `scratch`.

use std::collections::BTreeMap;

use super::{Engine, EngineError};

/// What an image says about how its containers run, and how big it is.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct ImageFacts {
    /// `Config.User`: empty when the Dockerfile sets no `USER` (root).
    pub user: String,
    /// `Config.WorkingDir`: empty when there is no `WORKDIR` (`/`).
    pub workdir: String,
    /// `Config.ExposedPorts`, as the engine writes them: `8000/tcp`, sorted.
    pub exposed: Vec<String>,
    /// `Config.Env`, split at the first `=`, in the image's order.
    pub env: Vec<(String, String)>,
    /// `Config.Entrypoint`; empty when there is none.
    pub entrypoint: Vec<String>,
    /// `Config.Cmd`; empty when there is none.
    pub cmd: Vec<String>,
    pub labels: BTreeMap<String, String>,
    /// `Config.Volumes`, sorted.
    pub volumes: Vec<String>,
    /// `Config.Healthcheck.Test` (`["CMD-SHELL", "curl -f ..."]`, `["NONE"]`); `None` when the image has none.
    pub healthcheck: Option<Vec<String>>,
    /// The image's size in bytes, all its layers, uncompressed (`Size`, what `docker images` shows).
    pub size: u64,
}

impl Engine {
    /// The image's configuration and size (`GET /images/{name}/json`).
    pub async fn inspect_image(&self, reference: &str) -> Result<ImageFacts, EngineError> {
        let inspect =
            self.docker.inspect_image(reference).await.map_err(|e| EngineError::new("inspect image", reference, e))?;
        let config = inspect.config.unwrap_or_default();
        let mut exposed = config.exposed_ports.unwrap_or_default();
        exposed.sort();
        let mut volumes = config.volumes.unwrap_or_default();
        volumes.sort();
        let env = config
            .env
            .unwrap_or_default()
            .into_iter()
            .map(|pair| match pair.split_once('=') {
                Some((key, value)) => (key.to_owned(), value.to_owned()),
                None => (pair, String::new()),
            })
            .collect();
        Ok(ImageFacts {
            user: config.user.unwrap_or_default(),
            workdir: config.working_dir.unwrap_or_default(),
            exposed,
            env,
            entrypoint: config.entrypoint.unwrap_or_default(),
            cmd: config.cmd.unwrap_or_default(),
            labels: config.labels.unwrap_or_default().into_iter().collect(),
            volumes,
            healthcheck: config.healthcheck.and_then(|h| h.test).filter(|test| !test.is_empty()),
            size: inspect.size.and_then(|s| u64::try_from(s).ok()).unwrap_or(0),
        })
    }
}
