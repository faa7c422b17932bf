//! Which file of a build context is its Dockerfile, by the docker CLI's rule: in, a folder and the
//! Dockerfile a build names (or none); out, that file's name in the folder, when it is there. Not a
//! pipeline stage: planning (`scenario`), building (`engine`) and grading (`grade`) all ask, and must
//! give the same answer, so the rule lives once, below them all.

use std::path::Path;

/// The Dockerfile's name when a build names none.
pub const DEFAULT_NAME: &str = "Dockerfile";

/// Taken too when a build names none and there is no `Dockerfile`, as `docker build` does.
const LOWER_CASE_NAME: &str = "dockerfile";

/// The Dockerfile a build asks for.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Wanted<'a> {
    /// None named: `Dockerfile`, else a lower-case `dockerfile`.
    Default,
    /// This path, relative to the context, exactly as written.
    Named(&'a str),
}

/// The Dockerfile's name in `context`, or `None` when the folder has no such file.
pub fn find(context: &Path, wanted: Wanted<'_>) -> Option<String> {
    let name = match wanted {
        Wanted::Default => DEFAULT_NAME,
        Wanted::Named(name) => name,
    };
    if context.join(name).is_file() {
        return Some(name.to_owned());
    }
    (wanted == Wanted::Default && context.join(LOWER_CASE_NAME).is_file()).then(|| LOWER_CASE_NAME.to_owned())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn takes_a_lower_case_dockerfile_only_when_none_is_named() {
        let dir = tempfile::tempdir().unwrap();
        assert_eq!(find(dir.path(), Wanted::Default), None);
        std::fs::write(dir.path().join("dockerfile"), "FROM x\n").unwrap();
        assert_eq!(find(dir.path(), Wanted::Default).as_deref(), Some("dockerfile"));
        assert_eq!(find(dir.path(), Wanted::Named("Dockerfile")), None, "a name given is taken as written");
        std::fs::write(dir.path().join("Dockerfile"), "FROM x\n").unwrap();
        assert_eq!(find(dir.path(), Wanted::Default).as_deref(), Some("Dockerfile"));
        std::fs::create_dir(dir.path().join("docker")).unwrap();
        std::fs::write(dir.path().join("docker/prod.Dockerfile"), "FROM x\n").unwrap();
        assert_eq!(
            find(dir.path(), Wanted::Named("docker/prod.Dockerfile")).as_deref(),
            Some("docker/prod.Dockerfile")
        );
        assert_eq!(find(dir.path(), Wanted::Named("docker")), None, "a folder is not a Dockerfile");
    }
}
