//! Image builds: the context folder as a tar (honouring `.dockerignore`), sent to the engine's builder,
//! with the build log kept so that a failure can show the instruction that failed and its last lines.

use std::collections::HashMap;
use std::path::{Path, PathBuf};

use bollard::query_parameters::{BuildImageOptions, RemoveImageOptions};
use futures_util::StreamExt;

use super::dockerignore::{DockerIgnore, PatternError};
use super::{Engine, EngineError};

/// Why an image could not be built.
#[derive(Debug, Clone, thiserror::Error)]
pub enum BuildError {
    #[error("cannot read the build context {path}: {message}")]
    Context { path: PathBuf, message: String },
    #[error(transparent)]
    Pattern(#[from] PatternError),
    #[error("the build failed: {message}")]
    Failed { message: String, log: String },
    #[error(transparent)]
    Engine(#[from] EngineError),
}

impl BuildError {
    /// The builder's output, when there was one.
    pub fn log(&self) -> Option<&str> {
        match self {
            BuildError::Failed { log, .. } => Some(log),
            _ => None,
        }
    }
}

/// What to build.
#[derive(Debug, Clone)]
pub struct BuildRequest {
    pub context: PathBuf,
    pub dockerfile: String,
    pub args: Vec<(String, String)>,
    pub target: Option<String>,
    pub tag: String,
    pub labels: HashMap<String, String>,
}

/// The context folder as an uncompressed tar, as the docker CLI sends it: `.dockerignore` applied, the
/// Dockerfile and `.dockerignore` always included, symlinks kept as links.
pub fn context_tar(context: &Path, dockerfile: &str) -> Result<Vec<u8>, BuildError> {
    let io_error = |e: std::io::Error| BuildError::Context { path: context.to_path_buf(), message: e.to_string() };
    let ignore = match std::fs::read_to_string(context.join(".dockerignore")) {
        Ok(text) => DockerIgnore::parse(&text)?,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => DockerIgnore::default(),
        Err(e) => return Err(io_error(e)),
    };
    let always = [dockerfile.trim_start_matches("./"), ".dockerignore"];
    let mut builder = tar::Builder::new(Vec::new());
    builder.follow_symlinks(false);
    builder.mode(tar::HeaderMode::Deterministic);
    let mut stack = vec![PathBuf::new()];
    while let Some(relative) = stack.pop() {
        let mut entries: Vec<_> = std::fs::read_dir(context.join(&relative))
            .map_err(io_error)?
            .collect::<Result<_, _>>()
            .map_err(io_error)?;
        entries.sort_by_key(|e| e.file_name());
        for entry in entries {
            let rel = relative.join(entry.file_name());
            let rel_text = rel.to_string_lossy().replace('\\', "/");
            let file_type = entry.file_type().map_err(io_error)?;
            let excluded = ignore.is_ignored(&rel_text) && !always.contains(&rel_text.as_str());
            if file_type.is_dir() {
                // An excluded folder is still searched when a `!` pattern may re-include something in it.
                if !excluded || ignore.has_exclusions() {
                    if !excluded {
                        builder.append_dir(&rel, entry.path()).map_err(io_error)?;
                    }
                    stack.push(rel);
                }
            } else if !excluded {
                builder.append_path_with_name(entry.path(), &rel).map_err(io_error)?;
            }
        }
    }
    builder.into_inner().map_err(io_error)
}

impl Engine {
    /// Builds an image from a context tar. The builder's output is kept: on failure it is the evidence.
    pub async fn build_image(&self, request: &BuildRequest, context_tar: Vec<u8>) -> Result<String, BuildError> {
        let options = BuildImageOptions {
            dockerfile: request.dockerfile.clone(),
            t: Some(request.tag.clone()),
            buildargs: Some(request.args.iter().cloned().collect()),
            target: request.target.clone().unwrap_or_default(),
            labels: Some(request.labels.clone()),
            rm: true,
            forcerm: true,
            // Never pull: the base images are local (and there may be no registry at all).
            pull: None,
            ..Default::default()
        };
        let mut stream = self.docker.build_image(options, None, Some(bollard::body_full(context_tar.into())));
        let mut log = String::new();
        let mut image_id = None;
        while let Some(item) = stream.next().await {
            match item {
                Ok(info) => {
                    if let Some(text) = info.stream {
                        log.push_str(&text);
                    }
                    if let Some(detail) = info.error_detail {
                        let message = detail.message.unwrap_or_default();
                        return Err(BuildError::Failed { message, log });
                    }
                    if let Some(aux) = info.aux.and_then(|a| a.id) {
                        image_id = Some(aux);
                    }
                }
                Err(bollard::errors::Error::DockerStreamError { error }) => {
                    return Err(BuildError::Failed { message: error, log });
                }
                Err(other) => return Err(EngineError::new("build image", &request.tag, other).into()),
            }
        }
        Ok(image_id.unwrap_or_else(|| request.tag.clone()))
    }

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

/// The Dockerfile instruction a legacy-builder log was at when it failed: `Step 3/7 : RUN pip install ...`.
pub fn failed_instruction(log: &str) -> Option<&str> {
    log.lines().rev().find(|l| l.starts_with("Step ") || l.starts_with("#")).map(str::trim)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn context_tar_honours_dockerignore_but_keeps_the_dockerfile() {
        let dir = tempfile::tempdir().unwrap();
        let root = dir.path();
        std::fs::write(root.join("Dockerfile.dev"), "FROM scratch\n").unwrap();
        std::fs::write(root.join(".dockerignore"), "Dockerfile.*\n*.sqlite3\ncache\n").unwrap();
        std::fs::write(root.join("app.py"), "print(1)\n").unwrap();
        std::fs::write(root.join("db.sqlite3"), "x").unwrap();
        std::fs::create_dir(root.join("cache")).unwrap();
        std::fs::write(root.join("cache/blob"), "x").unwrap();
        let bytes = context_tar(root, "Dockerfile.dev").unwrap();
        let mut archive = tar::Archive::new(bytes.as_slice());
        let mut names: Vec<String> =
            archive.entries().unwrap().map(|e| e.unwrap().path().unwrap().display().to_string()).collect();
        names.sort();
        assert_eq!(names, vec![".dockerignore", "Dockerfile.dev", "app.py"]);
    }

    #[test]
    fn finds_the_failed_step() {
        let log = "Step 1/3 : FROM x\n ---> abc\nStep 2/3 : RUN false\n ---> Running in 1\n";
        assert_eq!(failed_instruction(log), Some("Step 2/3 : RUN false"));
    }
}
