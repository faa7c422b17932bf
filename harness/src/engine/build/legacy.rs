//! The legacy builder (Podman, engines without BuildKit, `SEATRIAL_BUILDER=legacy`): in, a
//! [`BuildRequest`] and its context tar; out, the image's id, with its `Step n/m` lines kept as the build
//! log and told to the sink, and the step images of builds that did not succeed remembered for removal.

use bollard::query_parameters::RemoveImageOptions;
use futures_util::StreamExt;

use super::{BuildError, BuildLog, BuildRequest, ContextTar};
use crate::engine::{Engine, EngineError};

/// Images that the legacy builder made for the steps of builds that have not (yet) succeeded. They
/// carry none of our labels (the builder labels only the final image), so they are remembered here:
/// a build that fails, times out or is interrupted leaves them untagged, and the run's sweep removes them.
static UNFINISHED_STEP_IMAGES: std::sync::Mutex<Vec<String>> = std::sync::Mutex::new(Vec::new());

fn unfinished_step_images() -> std::sync::MutexGuard<'static, Vec<String>> {
    crate::lock::unpoisoned(&UNFINISHED_STEP_IMAGES)
}

/// Whether some failed build's step images still wait to be removed.
pub fn has_unfinished_step_images() -> bool {
    !unfinished_step_images().is_empty()
}

/// The id in a legacy-builder line ` ---> 3f2a9c1d0b7e` (a step's resulting image).
fn step_image(line: &str) -> Option<&str> {
    let id = line.trim().strip_prefix("---> ")?;
    (id.len() == 12 && id.bytes().all(|b| b.is_ascii_hexdigit())).then_some(id)
}

impl Engine {
    /// Removes the untagged step images of builds that did not succeed. An image is refused while the
    /// dropped build's container still stands on it (the engine removes that container a moment after
    /// the build is dropped), so refusals are tried again for a few seconds; one that a running build
    /// still builds on stays remembered for the next sweep.
    pub async fn remove_unfinished_step_images(&self) -> Vec<String> {
        let mut removed = Vec::new();
        let deadline = std::time::Instant::now() + std::time::Duration::from_secs(5);
        loop {
            let ids: Vec<String> = std::mem::take(&mut *unfinished_step_images());
            let mut refused = Vec::new();
            for id in ids {
                let untagged = match self.docker.inspect_image(&id).await {
                    Ok(image) => image.repo_tags.unwrap_or_default().is_empty(),
                    Err(_) => continue,
                };
                let options = RemoveImageOptions { force: false, noprune: false, ..Default::default() };
                if untagged && self.docker.remove_image(&id, Some(options), None).await.is_ok() {
                    removed.push(id);
                } else if untagged {
                    refused.push(id);
                }
            }
            let done = refused.is_empty() || std::time::Instant::now() >= deadline;
            unfinished_step_images().extend(refused);
            if done {
                return removed;
            }
            tokio::time::sleep(std::time::Duration::from_millis(250)).await;
        }
    }

    pub(super) async fn build_with_legacy_builder(
        &self,
        request: &BuildRequest,
        context_tar: &ContextTar,
    ) -> Result<String, BuildError> {
        let options = Self::build_options(request);
        let mut stream = self.docker.build_image(options, None, Some(bollard::body_try_stream(context_tar.chunks())));
        let mut log = BuildLog::default();
        // Kept apart from the log: a step's flood of output may have pushed its `Step` line out of it.
        let mut last_step: Option<String> = None;
        // What the current step printed, without the builder's own lines.
        let mut step_output = BuildLog::default();
        let mut image_id = None;
        let mut step_images = Vec::new();
        let failed = |message: String, step: Option<String>, log: BuildLog, output: BuildLog| {
            let step = step.map(|line| super::FailedStep::locate(&line, &request.dockerfile, None));
            // The failed step's own output is the evidence; the whole log when no step was named.
            let log = if step.is_some() { output.into_text() } else { log.into_text() };
            BuildError::Failed { message, step, log }
        };
        while let Some(item) = stream.next().await {
            match item {
                Ok(info) => {
                    if let Some(text) = info.stream {
                        for id in text.lines().filter_map(step_image) {
                            step_images.push(id.to_owned());
                            unfinished_step_images().push(id.to_owned());
                        }
                        let text = uncount_label_steps(&text, request.labels.len());
                        if let Some(step) = last_step_line(&text) {
                            if last_step.as_deref() != Some(step) {
                                request.progress.tell(step);
                            }
                            last_step = Some(step.to_owned());
                        }
                        for line in text.split_inclusive('\n') {
                            if is_step_line(line) {
                                step_output = BuildLog::default();
                            } else if !is_builder_line(line) {
                                step_output.push(line);
                            }
                        }
                        log.push(&text);
                    }
                    if let Some(detail) = info.error_detail {
                        return Err(failed(detail.message.unwrap_or_default(), last_step, log, step_output));
                    }
                    if let Some(bollard::models::BuildInfoAux::Default(image)) = info.aux
                        && let Some(id) = image.id
                    {
                        image_id = Some(id);
                    }
                }
                Err(bollard::errors::Error::DockerStreamError { error }) => {
                    return Err(failed(error, last_step, log, step_output));
                }
                Err(other) => return Err(EngineError::new("build image", &request.tag, other).into()),
            }
        }
        // The step images of a successful build are the final image's parents: removed with it.
        unfinished_step_images().retain(|id| !step_images.contains(id));
        Ok(image_id.unwrap_or_else(|| request.tag.clone()))
    }
}

/// A step's number and total and its instruction, in the legacy builder's `Step 3/9 : RUN x` or buildah's
/// `STEP 3/9: RUN x` (after buildah's stage prefix `[1/2] `, if any): (prefix up to the count, n, total,
/// separator and instruction).
fn parse_step(line: &str) -> Option<(&str, usize, usize, &str)> {
    let start = line.find("Step ").or_else(|| line.find("STEP "))?;
    let (before, rest) = line.split_at(start);
    if !(before.is_empty() || before.starts_with('[') && before.ends_with("] ")) {
        return None;
    }
    let numbered = &rest[5..];
    let separator = if rest.starts_with("Step ") { numbered.find(" : ") } else { numbered.find(": ") }?;
    let (n, total) = numbered[..separator].split_once('/')?;
    Some((&line[..start + 5], n.parse().ok()?, total.parse().ok()?, &numbered[separator..]))
}

fn is_step_line(line: &str) -> bool {
    parse_step(line.trim_end()).is_some()
}

/// The legacy builder's own lines between a step's output: ` ---> 3f2a9c1d0b7e`, ` ---> Running in ...`,
/// `Removing intermediate container ...`; buildah's `--> 3f2a9c1d0b7`, `COMMIT ...`.
fn is_builder_line(line: &str) -> bool {
    let line = line.trim();
    line.starts_with("---> ")
        || line.starts_with("--> ")
        || line.starts_with("Removing intermediate container ")
        || line.starts_with("COMMIT ")
        || line.starts_with("Successfully built ")
        || line.starts_with("Successfully tagged ")
}

/// The legacy builder and buildah run a LABEL step per label after the Dockerfile's own and count them
/// in `Step 3/9`; a student whose Dockerfile has 3 instructions should read `Step 3/3`.
fn uncount_label_steps(text: &str, labels: usize) -> std::borrow::Cow<'_, str> {
    if !text.contains("Step ") && !text.contains("STEP ") {
        return text.into();
    }
    let lines: Vec<String> = text
        .split_inclusive('\n')
        .map(|line| {
            let parsed = parse_step(line).and_then(|(prefix, n, total, instruction)| {
                let own = total.checked_sub(labels).filter(|own| n <= *own)?;
                Some(format!("{prefix}{n}/{own}{instruction}"))
            });
            parsed.unwrap_or_else(|| line.to_owned())
        })
        .collect();
    lines.concat().into()
}

/// The last instruction a piece of builder output started: `Step 3/7 : RUN pip install ...` (the legacy
/// builder) or `STEP 3/7: RUN pip install ...` (buildah).
fn last_step_line(text: &str) -> Option<&str> {
    text.lines().rev().find(|l| is_step_line(l)).map(str::trim)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn reads_step_images_from_the_legacy_builder_output() {
        assert_eq!(step_image(" ---> 3f2a9c1d0b7e"), Some("3f2a9c1d0b7e"));
        assert_eq!(step_image(" ---> Running in 3f2a9c1d0b7e"), None);
        assert_eq!(step_image(" ---> Using cache"), None);
    }

    #[test]
    fn finds_the_failed_step() {
        let log = "Step 1/3 : FROM x\n ---> abc\nStep 2/3 : RUN false\n ---> Running in 1\n# printed by RUN\n";
        assert_eq!(last_step_line(log), Some("Step 2/3 : RUN false"));
    }

    #[test]
    fn finds_the_failed_step_in_buildah_output() {
        let log = "STEP 1/8: FROM seatrial/busybox\nSTEP 2/8: RUN echo oops >&2 && exit 7\noops\n";
        assert_eq!(last_step_line(log), Some("STEP 2/8: RUN echo oops >&2 && exit 7"));
        assert_eq!(
            uncount_label_steps(log, 6),
            "STEP 1/2: FROM seatrial/busybox\nSTEP 2/2: RUN echo oops >&2 && exit 7\noops\n"
        );
        assert_eq!(uncount_label_steps("[2/2] STEP 3/9: COPY . .\n", 6), "[2/2] STEP 3/3: COPY . .\n");
        assert!(is_builder_line("--> 3f2a9c1d0b7\n") && !is_builder_line("oops\n"));
    }

    #[test]
    fn label_steps_are_not_counted() {
        let out = uncount_label_steps("Step 3/9 : RUN a : b\n ---> Running in 1\nStep 9/9 : LABEL x=y\n", 6);
        assert_eq!(out, "Step 3/3 : RUN a : b\n ---> Running in 1\nStep 9/9 : LABEL x=y\n");
        assert_eq!(uncount_label_steps("Step 2/2 : FROM x", 6), "Step 2/2 : FROM x");
    }
}
