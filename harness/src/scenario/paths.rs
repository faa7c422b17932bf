//! Where a scenario may reach on the host: the project a build context must stay in, and the folders a
//! bind mount may name. Every decision is taken on absolute, canonical paths, so that how the file was
//! named on the command line (`file.yaml`, `./file.yaml`, `../x/file.yaml`, an absolute path, a symlinked
//! folder) cannot change what is allowed.

use std::path::{Path, PathBuf};

/// What the caller says about paths, beside the scenario files themselves.
#[derive(Debug, Clone, Default)]
pub struct PathPolicy {
    /// `--root DIR`: the project folder that build contexts must stay in, instead of the one found.
    pub project_root: Option<PathBuf>,
    /// Folders that bind mounts may name besides the scenario's own (when grading: the submission's).
    pub bind_roots: Vec<PathBuf>,
}

/// How the project folder was decided, said in the error that refuses a build context outside it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ProjectFound {
    /// `--root DIR` on the command line.
    Given,
    /// The nearest folder above the scenario file that holds `.git`.
    Git,
    /// No `.git` above the file: the current directory, which holds the file.
    CurrentDir,
    /// Neither: the scenario file's own folder.
    ScenarioFolder,
}

impl ProjectFound {
    pub fn explain(self) -> &'static str {
        match self {
            ProjectFound::Given => "given with `--root`",
            ProjectFound::Git => "the folder that holds `.git`",
            ProjectFound::CurrentDir => "the current directory: there is no `.git` above the scenario file",
            ProjectFound::ScenarioFolder => {
                "the scenario file's folder: there is no `.git` above it and the current directory does not hold it"
            }
        }
    }
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Project {
    pub root: PathBuf,
    pub found: ProjectFound,
}

/// The folder of a scenario file, absolute and with every symlink resolved. A bare file name has the
/// empty path as its parent: that is the current directory, never "anywhere".
pub fn scenario_folder(file: &Path) -> std::io::Result<PathBuf> {
    let parent = match file.parent() {
        Some(parent) if !parent.as_os_str().is_empty() => parent,
        _ => Path::new("."),
    };
    std::path::absolute(parent)?.canonicalize()
}

/// The project of a scenario whose canonical folder is `folder`: `--root` if given, else the nearest
/// folder that holds `.git`, else the current directory when it holds the file (a tarball or a crate
/// without history, run from its top), else the scenario's folder. The filesystem root is never taken
/// for the current directory: that would let a context be anything on the host.
pub fn project_for(folder: &Path, policy: &PathPolicy) -> std::io::Result<Project> {
    if let Some(given) = &policy.project_root {
        return Ok(Project { root: std::path::absolute(given)?.canonicalize()?, found: ProjectFound::Given });
    }
    if let Some(git) = folder.ancestors().find(|a| a.join(".git").exists()) {
        return Ok(Project { root: git.to_path_buf(), found: ProjectFound::Git });
    }
    if let Ok(current) = std::env::current_dir().and_then(|d| d.canonicalize())
        && current.parent().is_some()
        && folder.starts_with(&current)
    {
        return Ok(Project { root: current, found: ProjectFound::CurrentDir });
    }
    Ok(Project { root: folder.to_path_buf(), found: ProjectFound::ScenarioFolder })
}

/// Where `written` (relative to `folder`, or absolute) really is, if it exists.
pub fn resolve(folder: &Path, written: &str) -> std::io::Result<PathBuf> {
    folder.join(written).canonicalize()
}

/// Whether a canonical path lies at or below one of the canonical `roots`.
pub fn is_below_any(real: &Path, roots: &[PathBuf]) -> bool {
    roots.iter().any(|root| real.starts_with(root))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_bare_file_name_lives_in_the_current_directory() {
        let here = std::env::current_dir().unwrap().canonicalize().unwrap();
        assert_eq!(scenario_folder(Path::new("file.yaml")).unwrap(), here);
        assert_eq!(scenario_folder(Path::new("./file.yaml")).unwrap(), here);
    }

    #[test]
    fn a_symlinked_folder_resolves_to_its_target() {
        let dir = tempfile::tempdir().unwrap();
        let real = dir.path().join("real");
        std::fs::create_dir(&real).unwrap();
        std::os::unix::fs::symlink(&real, dir.path().join("link")).unwrap();
        let folder = scenario_folder(&dir.path().join("link/file.yaml")).unwrap();
        assert_eq!(folder, real.canonicalize().unwrap());
    }

    #[test]
    fn a_project_without_git_is_the_scenario_folder_unless_given() {
        let dir = tempfile::tempdir().unwrap();
        let folder = dir.path().canonicalize().unwrap();
        let found = project_for(&folder, &PathPolicy::default()).unwrap();
        // The test runs from the crate, which is not above a temporary folder.
        assert_eq!(found, Project { root: folder.clone(), found: ProjectFound::ScenarioFolder });
        let policy = PathPolicy { project_root: Some(folder.join("..")), ..Default::default() };
        let given = project_for(&folder, &policy).unwrap();
        assert_eq!(given.found, ProjectFound::Given);
        assert_eq!(Some(given.root.as_path()), folder.parent());
    }
}
