//! The images phase: each container's image found or built before the scenario's clock starts. Images
//! named in `images:` are built once per run, however many scenarios use them; concurrent requests for
//! the same image wait for the one build. The run removes them at its end.

use std::collections::HashMap;
use std::sync::{Arc, Mutex};

use tokio::sync::OnceCell;

use super::cancel::Cancellation;
use super::{Halt, LOG_TAIL_LINES, RunContext};
use crate::engine::Engine;
use crate::engine::build::{BuildError, BuildProgressSink, BuildRequest, context_tar, find_dockerfile};
use crate::engine::labels::{RunId, short_hash, slug};
use crate::outcome::events::{Event, Phase};
use crate::outcome::{BuildOutcome, Failure};
use crate::scenario::Where;
use crate::scenario::plan::PlannedImage;
use crate::scenario::plan::{FileSource, ImageRef, ImageSubject, PlannedContainer, PlannedScenario, Step};

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
            let mut builds = crate::lock::unpoisoned(&self.builds);
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

/// The image of every container: a tag, or the failure that stands for it (a failed build, a missing image).
pub(super) type ResolvedImages = HashMap<String, Result<String, Failure>>;

/// Builds (or finds) each container's image before the scenario's clock starts; one outcome per image of
/// `images:` that the scenario uses.
pub(super) async fn resolve_images(
    ctx: &RunContext,
    scenario: &PlannedScenario,
) -> (ResolvedImages, Vec<BuildOutcome>) {
    let mut images = HashMap::new();
    let mut builds: Vec<BuildOutcome> = Vec::new();
    for container in &scenario.containers {
        let at = container.ready.as_ref().map_or_else(|| scenario.at.clone(), |r| r.at.clone());
        let what = format!("start of container `{}`", container.name);
        let result = resolve_image(ctx, &scenario.test_name, container).await.map_err(|h| {
            let (halt, at, what) = attribute(h, at, &what);
            halt.into_failure(at, what)
        });
        if let ImageRef::Built(image) = &container.image
            && !builds.iter().any(|b| b.image == image.name)
        {
            builds.push(BuildOutcome {
                image: image.name.clone(),
                grading: image.grading.clone(),
                failure: result.as_ref().err().cloned(),
            });
        }
        images.insert(container.name.clone(), result);
    }
    // Images that only steps name are built before the clock starts too; a step that needs one that
    // failed fails with its build's failure.
    for image in step_images(scenario) {
        let ImageRef::Built(planned) = image else { continue };
        if builds.iter().any(|b| b.image == planned.name) {
            continue;
        }
        let result = built_image(ctx, &scenario.test_name, planned).await;
        builds.push(BuildOutcome {
            image: planned.name.clone(),
            grading: planned.grading.clone(),
            failure: result.err().map(|h| {
                let (halt, at, what) = attribute(h, planned.at.clone(), "build");
                halt.into_failure(at, what)
            }),
        });
    }
    (images, builds)
}

/// A build failure belongs to the image's place in the file; anything else to the container's (`at`).
fn attribute(halt: ImageOrHalt, at: Where, what: &str) -> (Halt, Where, String) {
    match halt {
        ImageOrHalt::Build { halt, image_at, image } => (halt, image_at, format!("build of image `{image}`")),
        ImageOrHalt::Halt(halt) => (halt, at, what.to_owned()),
    }
}

pub enum ImageOrHalt {
    Build { halt: Halt, image_at: Where, image: String },
    Halt(Halt),
}

impl<T: Into<Halt>> From<T> for ImageOrHalt {
    fn from(h: T) -> Self {
        ImageOrHalt::Halt(h.into())
    }
}

async fn resolve_image(ctx: &RunContext, test_name: &str, container: &PlannedContainer) -> Result<String, ImageOrHalt> {
    match &container.image {
        ImageRef::Built(image) => built_image(ctx, test_name, image).await,
        ImageRef::Engine(reference) => Ok(engine_image(ctx, reference).await?),
    }
}

/// The tag of an image of `images:`, built now unless this run has built it (or failed to) already.
async fn built_image(ctx: &RunContext, test_name: &str, image: &PlannedImage) -> Result<String, ImageOrHalt> {
    ctx.events.emit(&Event::Phase { test_name, phase: Phase::Building { image: &image.name } });
    let (events, test_name, name) = (ctx.events.clone(), test_name.to_owned(), image.name.clone());
    let progress = BuildProgressSink::new(move |line| {
        let phase = Phase::BuildProgress { image: &name, line };
        events.emit(&Event::Phase { test_name: &test_name, phase });
    });
    ctx.images.get(ctx, image, progress).await.map_err(|err| ImageOrHalt::Build {
        halt: build_halt(image, &err),
        image_at: image.at.clone(),
        image: image.name.clone(),
    })
}

/// A failed build as a check that did not hold: the instruction it failed at, its hint and the log tail.
pub(super) fn build_halt(image: &PlannedImage, err: &BuildError) -> Halt {
    let log = err.log().unwrap_or_default();
    let tail: Vec<&str> = log.lines().collect();
    let tail = tail[tail.len().saturating_sub(LOG_TAIL_LINES)..].join("\n");
    let mut diagnosis = Vec::new();
    if let Some(step) = err.failed_step() {
        diagnosis.push(format!("the build failed at {step}"));
    }
    diagnosis.extend(err.hint());
    if let BuildError::Failed { message, .. } = err {
        diagnosis.extend(crate::engine::build::explain_missing_source(&image.context, message));
    }
    Halt::Check {
        expected: format!("image `{}` builds from {}", image.name, image.context.display()),
        actual: err.to_string(),
        diagnosis,
        evidence: (!tail.is_empty()).then_some(tail),
    }
}

/// An engine image: the reference, once the engine has it (pulled if need be).
async fn engine_image(ctx: &RunContext, reference: &str) -> Result<String, Halt> {
    if !ctx.engine.has_image(reference).await? {
        ctx.engine.pull_image(reference).await.map_err(|e| {
            Halt::check(
                format!("image `{reference}` on the engine or pullable"),
                format!("not on the engine, and the pull failed: {}", e.message),
            )
        })?;
    }
    Ok(reference.to_owned())
}

/// The images that steps name (`image: { of: app }`, `file: { image: app }`, `replace: { image: app-v2 }`),
/// each once, in the order of the steps.
fn step_images(scenario: &PlannedScenario) -> Vec<&ImageRef> {
    let mut images: Vec<&ImageRef> = Vec::new();
    for planned in &scenario.steps {
        let image = match &planned.step {
            Step::Image(image) => match &image.of {
                ImageSubject::Image(image) => Some(image),
                ImageSubject::Container(_) => None,
            },
            Step::File(file) => match &file.source {
                FileSource::Image(image) => Some(image),
                FileSource::Container(_) => None,
            },
            Step::Replace { image, .. } => Some(image),
            _ => None,
        };
        if let Some(image) = image
            && !images.iter().any(|known| known.name() == image.name())
        {
            images.push(image);
        }
    }
    images
}

/// The tag of an image a step names, at the step: built (or found) in the images phase, so this is the
/// build's outcome, failed or not.
pub(super) async fn step_image(ctx: &RunContext, image: &ImageRef) -> Result<String, Halt> {
    match image {
        ImageRef::Built(image) => {
            // No build events: the build is done; this is its outcome, not a phase of the scenario.
            let built = ctx.images.get(ctx, image, BuildProgressSink::default()).await;
            built.map_err(|err| build_halt(image, &err))
        }
        ImageRef::Engine(reference) => engine_image(ctx, reference).await,
    }
}
