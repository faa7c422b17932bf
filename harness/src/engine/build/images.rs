//! The engine's image calls beside builds: in, an image reference; out, whether the engine has it, or
//! the engine's answer to removing or pulling it.

use bollard::query_parameters::RemoveImageOptions;
use futures_util::StreamExt;

use crate::engine::{Engine, EngineError};

impl Engine {
    pub async fn remove_image(&self, reference: &str) -> Result<(), EngineError> {
        let options = RemoveImageOptions { force: true, noprune: false, ..Default::default() };
        match self.docker.remove_image(reference, Some(options), None).await {
            Err(bollard::errors::Error::DockerResponseServerError { status_code: 404, .. }) | Ok(_) => Ok(()),
            Err(e) => Err(EngineError::new("remove image", reference, e)),
        }
    }

    /// Whether the engine has this image locally.
    pub async fn has_image(&self, reference: &str) -> Result<bool, EngineError> {
        match self.docker.inspect_image(reference).await {
            Ok(_) => Ok(true),
            Err(bollard::errors::Error::DockerResponseServerError { status_code: 404, .. }) => Ok(false),
            Err(e) => Err(EngineError::new("inspect image", reference, e)),
        }
    }

    /// Pulls an image the engine does not have.
    pub async fn pull_image(&self, reference: &str) -> Result<(), EngineError> {
        let options = bollard::query_parameters::CreateImageOptions {
            from_image: Some(reference.to_owned()),
            ..Default::default()
        };
        let mut stream = self.docker.create_image(Some(options), None, None);
        while let Some(item) = stream.next().await {
            item.map_err(|e| EngineError::new("pull image", reference, e))?;
        }
        Ok(())
    }
}
