//! Compose stacks, driven through the compose CLI the user has (DESIGN.md section 9): `config` resolves
//! the user's files as compose itself does; [`rewrite`] makes the copy that runs; lifecycle commands go to
//! compose, everything else (inspect, exec, logs, archive) to the engine on the service's container.

pub mod cli;
pub mod rewrite;

use std::path::{Path, PathBuf};
use std::time::Duration;

use serde_json::Value;

pub use cli::{ComposeCli, Generation, Ran};

/// The labels both compose generations put on what they make.
pub const PROJECT_LABEL: &str = "com.docker.compose.project";
pub const SERVICE_LABEL: &str = "com.docker.compose.service";
pub const ONEOFF_LABEL: &str = "com.docker.compose.oneoff";
pub const NETWORK_LABEL: &str = "com.docker.compose.network";

#[derive(Debug, Clone, thiserror::Error)]
pub enum ComposeError {
    #[error(
        "no compose command found ({tried}); install Docker Compose v2 (the `docker compose` plugin, or the \
         standalone `docker-compose`) or docker-compose 1.29, or name the command in SEATRIAL_COMPOSE"
    )]
    NotFound { tried: String },
    #[error(
        "SEATRIAL_COMPOSE names `{asked}`, which does not answer `version` ({why}); name a compose that works, \
         or unset SEATRIAL_COMPOSE to use the one on PATH"
    )]
    NamedNotFound { asked: String, why: String },
    #[error("cannot run `{command}`: {message}")]
    Spawn { command: String, message: String },
    /// Compose refused or failed: its own words.
    #[error("`{command}` failed: {said}")]
    Failed { command: String, said: String },
    #[error("`{command}` printed a model seatrial cannot read: {message}")]
    Unreadable { command: String, message: String },
}

/// Where a stack's files are and how compose is to read them, as the scenario gives them.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct StackSource {
    pub files: Vec<PathBuf>,
    pub project_directory: Option<PathBuf>,
    pub env_files: Vec<PathBuf>,
    pub profiles: Vec<String>,
    /// Variables for the compose file's own `${VAR}`s.
    pub env: Vec<(String, String)>,
}

/// One running copy of a stack: its project, and the rewritten file that compose runs it from.
pub struct Stack {
    pub cli: ComposeCli,
    engine_host: String,
    pub project: String,
    /// Holds the rewritten file; removed with the stack.
    folder: tempfile::TempDir,
    project_directory: PathBuf,
    profiles: Vec<String>,
}

/// What `config` said: the resolved model and compose's warnings (a variable not set).
pub struct Resolved {
    pub model: Value,
    pub warnings: Vec<String>,
}

impl Stack {
    /// Resolves the user's files with `compose config`, as compose will read them: interpolation,
    /// `extends`, profiles, `.env`.
    pub async fn resolve(
        cli: &ComposeCli,
        engine_host: &str,
        source: &StackSource,
        project: &str,
        scratch: &Path,
    ) -> Result<Resolved, ComposeError> {
        let mut args = vec!["-p".to_owned(), project.to_owned()];
        for file in &source.files {
            args.extend(["-f".to_owned(), file.display().to_string()]);
        }
        let project_directory = project_directory(source);
        args.extend(["--project-directory".to_owned(), project_directory.display().to_string()]);
        // v1 takes one `--env-file`: several are merged, later files winning, as v2 reads them.
        match source.env_files.as_slice() {
            [] => {}
            [one] => args.extend(["--env-file".to_owned(), one.display().to_string()]),
            many => {
                let merged = scratch.join("merged.env");
                let mut text = String::new();
                for file in many {
                    let content = std::fs::read_to_string(file).map_err(|e| ComposeError::Failed {
                        command: "read env_file".to_owned(),
                        said: format!("{}: {e}", file.display()),
                    })?;
                    text.push_str(&content);
                    text.push('\n');
                }
                std::fs::write(&merged, text).map_err(|e| ComposeError::Spawn {
                    command: "write env file".to_owned(),
                    message: e.to_string(),
                })?;
                args.extend(["--env-file".to_owned(), merged.display().to_string()]);
            }
        }
        for profile in &source.profiles {
            args.extend(["--profile".to_owned(), profile.clone()]);
        }
        args.push("config".to_owned());
        if cli.generation == Generation::V2 {
            args.extend(["--format".to_owned(), "json".to_owned()]);
        }
        let shown = format!("{} config", cli.command.join(" "));
        let ran = cli.run(engine_host, &args, &source.env, &project_directory).await?;
        let warnings = warnings(&ran.stderr);
        if !ran.success {
            return Err(ComposeError::Failed { command: shown, said: said(&ran.stderr) });
        }
        let model: Value = match cli.generation {
            Generation::V2 => serde_json::from_str(&ran.stdout).map_err(|e| e.to_string()),
            Generation::V1 => serde_saphyr::from_str(&ran.stdout).map_err(|e| e.to_string()),
        }
        .map_err(|message| ComposeError::Unreadable { command: shown, message })?;
        Ok(Resolved { model, warnings })
    }

    /// Writes the rewritten model where compose will run it from.
    pub fn new(
        cli: &ComposeCli,
        engine_host: &str,
        source: &StackSource,
        project: &str,
        model: &Value,
    ) -> Result<Stack, ComposeError> {
        let folder = tempfile::Builder::new().prefix(&folder_prefix()).tempdir().map_err(|e| ComposeError::Spawn {
            command: "make a folder for the stack's file".to_owned(),
            message: e.to_string(),
        })?;
        let text = serde_json::to_string_pretty(model).unwrap_or_default();
        std::fs::write(folder.path().join("compose.json"), text).map_err(|e| ComposeError::Spawn {
            command: "write the stack's file".to_owned(),
            message: e.to_string(),
        })?;
        Ok(Stack {
            cli: cli.clone(),
            engine_host: engine_host.to_owned(),
            project: project.to_owned(),
            folder,
            project_directory: project_directory(source),
            profiles: source.profiles.clone(),
        })
    }

    /// A scratch folder for `resolve`, removed with the stack... or on its own when no stack is made.
    pub fn scratch() -> std::io::Result<tempfile::TempDir> {
        tempfile::Builder::new().prefix(&folder_prefix()).tempdir()
    }

    fn args(&self, command: &[&str]) -> Vec<String> {
        let mut args = vec![
            "-p".to_owned(),
            self.project.clone(),
            "-f".to_owned(),
            self.folder.path().join("compose.json").display().to_string(),
            "--project-directory".to_owned(),
            self.project_directory.display().to_string(),
        ];
        for profile in &self.profiles {
            args.extend(["--profile".to_owned(), profile.clone()]);
        }
        args.extend(command.iter().map(|w| (*w).to_owned()));
        args
    }

    /// Runs a compose command on the stack; compose's failure is an error with its own words.
    pub async fn command(&self, command: &[&str]) -> Result<Ran, ComposeError> {
        let ran = self.cli.run(&self.engine_host, &self.args(command), &[], &self.project_directory).await?;
        if !ran.success {
            return Err(ComposeError::Failed {
                command: format!("{} {}", self.cli.command.join(" "), command.join(" ")),
                said: said(&ran.stderr),
            });
        }
        Ok(ran)
    }

    /// `up -d` of the given services (all when empty), from the images already there.
    pub async fn up(&self, services: &[String]) -> Result<Ran, ComposeError> {
        let mut command = vec!["up", "-d", "--no-build"];
        command.extend(services.iter().map(String::as_str));
        self.command(&command).await
    }

    pub async fn restart(&self, service: &str, grace: Duration) -> Result<Ran, ComposeError> {
        let grace = grace.as_secs().max(1).to_string();
        self.command(&["restart", "-t", &grace, service]).await
    }

    /// A new container for the service, stopped gracefully first; its anonymous volumes are kept.
    pub async fn recreate(&self, service: &str, grace: Duration) -> Result<Ran, ComposeError> {
        let grace = grace.as_secs().max(1).to_string();
        self.command(&["up", "-d", "--no-build", "--force-recreate", "--no-deps", "-t", &grace, service]).await
    }

    pub async fn start(&self, service: &str) -> Result<Ran, ComposeError> {
        self.command(&["start", service]).await
    }

    /// Stops and removes the stack; its named volumes too with `volumes`. `grace`: how long each container
    /// may take to stop (`None`: each service's own).
    pub async fn down(&self, volumes: bool, grace: Option<Duration>) -> Result<Ran, ComposeError> {
        let grace = grace.map(|g| g.as_secs().to_string());
        let mut command = vec!["down", "--remove-orphans"];
        if volumes {
            command.push("-v");
        }
        if let Some(grace) = &grace {
            command.extend(["-t", grace.as_str()]);
        }
        self.command(&command).await
    }
}

/// Every folder of a stack's copy starts so: `seatrial-compose-<pid>-<process start>-`, so that a sweep can
/// tell the folders of a run that was killed (and could not remove them) from a live run's.
const FOLDER_PREFIX: &str = "seatrial-compose-";

fn folder_prefix() -> String {
    let pid = std::process::id();
    let start = crate::engine::labels::process_start(pid).unwrap_or(0);
    format!("{FOLDER_PREFIX}{pid}-{start}-")
}

/// Removes the stack folders of runs whose process is gone (killed before they could); returns them.
pub fn remove_dead_folders(dry_run: bool) -> Vec<String> {
    let Ok(entries) = std::fs::read_dir(std::env::temp_dir()) else { return Vec::new() };
    let mut removed = Vec::new();
    for entry in entries.flatten() {
        let name = entry.file_name().to_string_lossy().into_owned();
        let Some(rest) = name.strip_prefix(FOLDER_PREFIX) else { continue };
        let mut parts = rest.splitn(3, '-');
        let pid = parts.next().and_then(|p| p.parse::<u32>().ok());
        let start = parts.next().and_then(|s| s.parse::<u64>().ok());
        let dead = match (pid, start) {
            (Some(pid), Some(start)) => crate::engine::labels::process_start(pid) != Some(start),
            // Named before folders carried their process: dead once a day old.
            _ => entry
                .metadata()
                .and_then(|m| m.modified())
                .is_ok_and(|t| t.elapsed().is_ok_and(|age| age > Duration::from_secs(24 * 3600))),
        };
        if dead && (dry_run || std::fs::remove_dir_all(entry.path()).is_ok()) {
            removed.push(entry.path().display().to_string());
        }
    }
    removed
}

fn project_directory(source: &StackSource) -> PathBuf {
    source.project_directory.clone().unwrap_or_else(|| {
        source.files.first().and_then(|f| f.parent()).map_or_else(|| PathBuf::from("."), Path::to_path_buf)
    })
}

/// Compose's warnings, in its words: `WARN[0000] The "FOO" variable is not set. Defaulting to a blank
/// string.` (v2, also as `level=warning msg="..."`) or `WARNING: The FOO variable is not set...` (v1).
pub fn warnings(stderr: &str) -> Vec<String> {
    stderr
        .lines()
        .filter_map(|line| {
            let line = line.trim();
            if let Some(rest) = line.strip_prefix("WARNING:") {
                return Some(rest.trim().to_owned());
            }
            if let Some(rest) = line.strip_prefix("WARN[") {
                return rest.split_once(']').map(|(_, msg)| msg.trim().to_owned());
            }
            if line.contains("level=warning") {
                let msg = line.split_once("msg=")?.1.trim();
                return Some(msg.trim_matches('"').replace("\\\"", "\""));
            }
            // v1 prints some warnings bare (`The FOO variable is not set. Defaulting to a blank string.`).
            line.contains("variable is not set").then(|| line.to_owned())
        })
        .collect()
}

/// What compose said when it failed: its error lines, without progress noise; at most 20 lines.
fn said(stderr: &str) -> String {
    let lines: Vec<&str> = stderr
        .lines()
        .map(str::trim)
        .filter(|l| !l.is_empty())
        .filter(|l| {
            let progress = [
                "Creating", "Created", "Starting", "Started", "Waiting", "Healthy", "Stopping", "Stopped", "Removing",
                "Removed", "Recreate", "Running",
            ];
            !progress.iter().any(|p| {
                l.split_whitespace().last() == Some(p) || l.ends_with(" ... done") || l.starts_with(&format!("{p} "))
            })
        })
        .collect();
    let shown: Vec<&str> = lines.iter().rev().take(20).rev().copied().collect();
    if shown.is_empty() { "(it printed nothing)".to_owned() } else { shown.join("\n") }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn compose_warnings_are_read_from_both_generations() {
        let v2 = "time=\"2026-12-01T17:12:39Z\" level=warning msg=\"The \\\"FOO\\\" variable is not set. Defaulting to a blank string.\"\n";
        assert_eq!(warnings(v2), ["The \"FOO\" variable is not set. Defaulting to a blank string."]);
        assert_eq!(warnings("WARN[0000] The \"FOO\" variable is not set.\n"), ["The \"FOO\" variable is not set."]);
        assert_eq!(warnings("WARNING: The FOO variable is not set. Defaulting to a blank string.\n").len(), 1);
        assert_eq!(
            warnings("The FOO variable is not set. Defaulting to a blank string.\nCreating x ... done\n").len(),
            1
        );
    }

    #[test]
    fn what_compose_said_leaves_out_its_progress() {
        let stderr = "Creating network \"x_default\" with the default driver\nCreating x_db_1 ... done\n Container x-db-1  Started\nERROR: for web  Container \"abc\" is unhealthy.\n";
        assert_eq!(said(stderr), "ERROR: for web  Container \"abc\" is unhealthy.");
    }
}
