//! Images named in `images:` are built once per run, however many scenarios use them; concurrent
//! requests for the same image wait for the one build. The run removes them at its end.

use std::collections::HashMap;
use std::sync::{Arc, Mutex};

use tokio::sync::OnceCell;

use super::RunContext;
use super::cancel::Cancellation;
use crate::engine::Engine;
use crate::engine::build::{BuildError, BuildProgressSink, BuildRequest, context_tar, find_dockerfile};
use crate::engine::labels::{RunId, short_hash, slug};
use crate::scenario::plan::PlannedImage;

type BuildResult = Result<String, Arc<BuildError>>;

/// The images of one run.
#[derive(Default)]
pub struct ImageCache {
    builds: Mutex<HashMap<String, Arc<OnceCell<BuildResult>>>>,
}

/// What identifies a build: the context, Dockerfile, arguments and target (not where it was written).
fn build_key(image: &PlannedImage) -> String {
    format!("{}\0{}\0{:?}\0{:?}", image.context.display(), image.dockerfile, image.args, image.target)
}

impl ImageCache {
    /// The image's tag, building it first if no scenario of this run has.
    pub async fn get(&self, ctx: &RunContext, image: &PlannedImage, progress: BuildProgressSink) -> BuildResult {
        let cell = {
            let mut builds = self.builds.lock().unwrap_or_else(|p| p.into_inner());
            builds.entry(build_key(image)).or_default().clone()
        };
        cell.get_or_init(|| build(&ctx.engine, &ctx.run, &ctx.cancellation, image, progress)).await.clone()
    }
}

async fn build(
    engine: &Engine,
    run: &RunId,
    cancellation: &Cancellation,
    image: &PlannedImage,
    progress: BuildProgressSink,
) -> BuildResult {
    let dockerfile = find_dockerfile(&image.context, &image.dockerfile).map_err(Arc::new)?;
    let context = image.context.clone();
    let dockerfile_in_tar = dockerfile.clone();
    let tar = tokio::task::spawn_blocking(move || context_tar(&context, &dockerfile_in_tar))
        .await
        .map_err(|e| Arc::new(BuildError::Context { path: image.context.clone(), message: e.to_string() }))?
        .map_err(Arc::new)?;
    let content = format!("{}{}", build_key(image), tar.len);
    let tag = format!("seatrial/{}:{}-{}", slug(&image.name, 40), run.id, short_hash(&content));
    let request = BuildRequest {
        context: image.context.clone(),
        dockerfile,
        args: image.args.clone(),
        target: image.target.clone(),
        tag: tag.clone(),
        labels: run.labels(None),
        progress,
    };
    // An interrupted run drops its builds: the engine then stops the build's container and removes it.
    let built = tokio::select! {
        built = tokio::time::timeout(image.timeout, engine.build_image(&request, &tar)) => built,
        _ = cancellation.cancelled() => Ok(Err(BuildError::Failed {
            message: "the run was interrupted".to_owned(),
            step: None,
            log: String::new(),
        })),
    };
    let result = match built {
        Ok(Ok(_id)) => return Ok(tag),
        Ok(Err(err)) => Err(Arc::new(err)),
        Err(_) => Err(Arc::new(BuildError::Failed {
            message: format!("the build did not finish within {:?}", image.timeout),
            step: None,
            log: String::new(),
        })),
    };
    engine.remove_unfinished_step_images().await;
    result
}
