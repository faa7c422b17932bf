//! The build context: in, the context folder and its Dockerfile's name; out, the folder as a tar in an
//! unlinked temporary file (`.dockerignore` applied), and the words that explain a Dockerfile or a COPY
//! source the build could not find there.

use std::path::{Path, PathBuf};

use super::BuildError;
use crate::engine::dockerignore::DockerIgnore;

/// The Dockerfile of a context as `docker build` finds it: the name given, or, for the default name,
/// `dockerfile` as the docker CLI also accepts.
pub fn find_dockerfile(context: &Path, dockerfile: &str) -> Result<String, BuildError> {
    // The plan writes out the default name: a build cannot tell `Dockerfile` named from none named.
    let wanted = if dockerfile == crate::dockerfile::DEFAULT_NAME {
        crate::dockerfile::Wanted::Default
    } else {
        crate::dockerfile::Wanted::Named(dockerfile)
    };
    if let Some(found) = crate::dockerfile::find(context, wanted) {
        return Ok(found);
    }
    let mut found: Vec<String> = std::fs::read_dir(context)
        .map_err(|e| BuildError::Context { path: context.to_path_buf(), message: e.to_string() })?
        .filter_map(Result::ok)
        .map(|entry| {
            let name = entry.file_name().to_string_lossy().into_owned();
            if entry.file_type().is_ok_and(|t| t.is_dir()) { format!("{name}/") } else { name }
        })
        .collect();
    found.sort();
    Err(BuildError::NoDockerfile { context: context.to_path_buf(), dockerfile: dockerfile.to_owned(), found })
}

/// Why a COPY or ADD source was "not found", judged from the context folder itself: the file is there
/// but `.dockerignore` leaves it out, its name differs in case only, or it is not there at all.
pub fn explain_missing_source(context: &Path, message: &str) -> Option<String> {
    let source = missing_source(message)?;
    let source = source.as_str();
    if context.join(source).exists() {
        let ignored = std::fs::read_to_string(context.join(".dockerignore"))
            .ok()
            .and_then(|text| DockerIgnore::parse(&text).ok())
            .is_some_and(|ignore| ignore.is_ignored(source));
        return Some(if ignored {
            format!("`{source}` is in the folder, but `.dockerignore` leaves it out of the build context")
        } else {
            format!("`{source}` is in the folder but was not in the build context")
        });
    }
    let (parent, name) = match source.rsplit_once('/') {
        Some((parent, name)) => (context.join(parent), name),
        None => (context.to_path_buf(), source),
    };
    let siblings: Vec<String> = std::fs::read_dir(&parent)
        .map(|entries| entries.filter_map(Result::ok).map(|e| e.file_name().to_string_lossy().into_owned()).collect())
        .unwrap_or_default();
    if let Some(other) = siblings.iter().find(|s| s.eq_ignore_ascii_case(name)) {
        return Some(format!("the folder has `{other}`, not `{name}`: file names are case-sensitive in a build"));
    }
    let close = siblings
        .iter()
        .map(|s| (strsim::jaro_winkler(s, name), s))
        .filter(|(score, _)| *score > 0.85)
        .max_by(|a, b| a.0.total_cmp(&b.0));
    Some(match close {
        Some((_, other)) => format!("there is no `{source}` in the folder; did you mean `{other}`?"),
        None => format!("there is no `{source}` in the folder"),
    })
}

/// The COPY or ADD source that a builder's message says is missing from the context, when it is a plain
/// path inside it (no pattern, no `..`).
pub fn missing_source(message: &str) -> Option<String> {
    static PATTERNS: std::sync::LazyLock<[regex::Regex; 4]> = std::sync::LazyLock::new(|| {
        [
            // BuildKit: `failed to compute cache key: "/app.py" not found: not found` (and `"/app.py": not found`)
            regex::Regex::new(r#""/?([^"]+)":? not found"#).expect("a valid pattern"),
            // the legacy builder: `COPY failed: ... stat app.py: file does not exist`
            regex::Regex::new(r"stat (\S+): file does not exist").expect("a valid pattern"),
            // buildah: `building at STEP "COPY app.py .": checking on sources under "...": copier: stat:
            // "/app.py": no such file or directory`
            regex::Regex::new(r#"copier: stat: "/?([^"]+)": no such file or directory"#).expect("a valid pattern"),
            // seatrial's own words for all of them (`common_words`)
            regex::Regex::new(r"^`([^`]+)` is not in the build context$").expect("a valid pattern"),
        ]
    });
    let source = PATTERNS.iter().find_map(|p| p.captures(message))?.get(1)?.as_str().trim_start_matches("./");
    if source.is_empty() || source.contains(['*', '?', '[']) || source.split('/').any(|part| part == "..") {
        return None;
    }
    Some(source.to_owned())
}

/// A build context packed as a tar in an unlinked temporary file: a submission that holds a virtualenv
/// or a dataset costs disk for the length of its build, not seatrial's memory (and a killed run leaves
/// no file). Each builder reads it from the start.
#[derive(Debug, Clone)]
pub struct ContextTar {
    file: std::sync::Arc<std::fs::File>,
    pub len: u64,
}

impl ContextTar {
    /// The tar as a request body, read in chunks as the engine takes it.
    pub(super) fn chunks(
        &self,
    ) -> impl futures_util::Stream<Item = Result<bytes::Bytes, std::io::Error>> + Send + 'static {
        const CHUNK: usize = 1 << 20;
        futures_util::stream::try_unfold((self.file.clone(), 0u64), |(file, offset)| async move {
            let reader = file.clone();
            let chunk = tokio::task::spawn_blocking(move || {
                use std::os::unix::fs::FileExt;
                let mut buffer = vec![0; CHUNK];
                let read = reader.read_at(&mut buffer, offset)?;
                buffer.truncate(read);
                Ok::<_, std::io::Error>(buffer)
            })
            .await
            .map_err(std::io::Error::other)??;
            if chunk.is_empty() {
                return Ok(None);
            }
            let next = offset + chunk.len() as u64;
            Ok(Some((bytes::Bytes::from(chunk), (file, next))))
        })
    }

    #[cfg(test)]
    fn bytes(&self) -> Vec<u8> {
        use std::os::unix::fs::FileExt;
        let mut all = vec![0; usize::try_from(self.len).unwrap()];
        self.file.read_exact_at(&mut all, 0).unwrap();
        all
    }
}

/// The context folder as an uncompressed tar, as the docker CLI sends it: `.dockerignore` applied, the
/// Dockerfile and `.dockerignore` always included, symlinks kept as links.
pub fn context_tar(context: &Path, dockerfile: &str) -> Result<ContextTar, BuildError> {
    let io_error = |e: std::io::Error| BuildError::Context { path: context.to_path_buf(), message: e.to_string() };
    let ignore = match std::fs::read_to_string(context.join(".dockerignore")) {
        Ok(text) => DockerIgnore::parse(&text)?,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => DockerIgnore::default(),
        Err(e) => return Err(io_error(e)),
    };
    let always = [dockerfile.trim_start_matches("./"), ".dockerignore"];
    let file = tempfile::tempfile().map_err(|e| BuildError::Context {
        path: std::env::temp_dir(),
        message: format!("cannot make a temporary file for the build context: {e}"),
    })?;
    let mut builder = tar::Builder::new(std::io::BufWriter::new(file));
    builder.follow_symlinks(false);
    // The engine's tar reader refuses GNU sparse headers (`unhandled tar header type 83`).
    builder.sparse(false);
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
    let file = builder.into_inner().map_err(io_error)?.into_inner().map_err(|e| io_error(e.into_error()))?;
    let len = file.metadata().map_err(io_error)?.len();
    Ok(ContextTar { file: std::sync::Arc::new(file), len })
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
        let bytes = context_tar(root, "Dockerfile.dev").unwrap().bytes();
        let mut archive = tar::Archive::new(bytes.as_slice());
        let mut names: Vec<String> =
            archive.entries().unwrap().map(|e| e.unwrap().path().unwrap().display().to_string()).collect();
        names.sort();
        assert_eq!(names, vec![".dockerignore", "Dockerfile.dev", "app.py"]);
    }

    #[test]
    fn a_missing_dockerfile_names_what_the_folder_holds() {
        let dir = tempfile::tempdir().unwrap();
        let err = find_dockerfile(dir.path(), "Dockerfile").unwrap_err().to_string();
        assert!(err.starts_with("there is no `Dockerfile` in ") && err.ends_with(" (the folder is empty)"), "{err}");
        std::fs::write(dir.path().join("Dockerfile.txt"), "FROM x\n").unwrap();
        std::fs::create_dir(dir.path().join("src")).unwrap();
        let err = find_dockerfile(dir.path(), "Dockerfile").unwrap_err().to_string();
        assert!(err.ends_with(" (the folder holds `Dockerfile.txt`, `src/`)"), "{err}");
        std::fs::write(dir.path().join("dockerfile"), "FROM x\n").unwrap();
        assert_eq!(find_dockerfile(dir.path(), "Dockerfile").unwrap(), "dockerfile", "as `docker build` takes it");
    }

    #[test]
    fn a_missing_copy_source_is_explained_from_the_folder() {
        let dir = tempfile::tempdir().unwrap();
        let root = dir.path();
        std::fs::write(root.join("kv.py"), "").unwrap();
        std::fs::write(root.join("App.py"), "").unwrap();
        std::fs::write(root.join("requirements.txt"), "").unwrap();
        std::fs::write(root.join(".dockerignore"), "*\n!Dockerfile\n").unwrap();
        let buildkit = |name: &str| format!("failed to compute cache key: \"/{name}\" not found: not found");
        assert_eq!(
            explain_missing_source(root, &buildkit("kv.py")).unwrap(),
            "`kv.py` is in the folder, but `.dockerignore` leaves it out of the build context"
        );
        assert_eq!(
            explain_missing_source(root, &buildkit("app.py")).unwrap(),
            "the folder has `App.py`, not `app.py`: file names are case-sensitive in a build"
        );
        assert_eq!(
            explain_missing_source(root, &buildkit("requirement.txt")).unwrap(),
            "there is no `requirement.txt` in the folder; did you mean `requirements.txt`?"
        );
        let legacy = "COPY failed: file not found in build context or excluded by .dockerignore: stat config.ini: file does not exist";
        assert_eq!(explain_missing_source(root, legacy).unwrap(), "there is no `config.ini` in the folder");
        assert_eq!(explain_missing_source(root, "exit code: 1"), None);
    }
}
