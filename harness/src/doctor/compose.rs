//! Finding the compose CLI a user has: the `docker compose` v2 plugin, a standalone `docker-compose` v2,
//! or the Python `docker-compose` v1 (names with `_`, DESIGN.md section 4), each with its version.

use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

/// One compose command that answered.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ComposeFound {
    /// How it is called: `docker compose` or `docker-compose`.
    pub command: &'static str,
    pub version: String,
}

impl ComposeFound {
    /// `1` or `2`, from the version's first number.
    pub fn major(&self) -> Option<u32> {
        self.version.trim_start_matches('v').split('.').next()?.parse().ok()
    }
}

impl std::fmt::Display for ComposeFound {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        let kind = match (self.command, self.major()) {
            ("docker compose", _) => "v2, CLI plugin",
            (_, Some(1)) => "v1",
            (_, Some(_)) => "v2, standalone",
            (_, None) => "unknown version",
        };
        write!(f, "`{}` {} ({kind})", self.command, self.version)
    }
}

/// How long a `version` call may take: compose v1 is a Python program that starts in about a second.
const VERSION_TIMEOUT: Duration = Duration::from_secs(15);

/// Every compose command that answers `version --short`, the plugin first.
pub fn find() -> Vec<ComposeFound> {
    let mut found = Vec::new();
    for (command, program, args) in [
        ("docker compose", "docker", &["compose", "version", "--short"][..]),
        ("docker-compose", "docker-compose", &["version", "--short"][..]),
    ] {
        if let Some(version) = run_for_version(program, args) {
            found.push(ComposeFound { command, version });
        }
    }
    found
}

/// The first line `program args` prints on success, within [`VERSION_TIMEOUT`]; `None` when it is not
/// installed, fails (the docker CLI without the plugin says "unknown command"), or hangs.
fn run_for_version(program: &str, args: &[&str]) -> Option<String> {
    let mut child = Command::new(program)
        .args(args)
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::null())
        .spawn()
        .ok()?;
    let deadline = Instant::now() + VERSION_TIMEOUT;
    loop {
        match child.try_wait() {
            Ok(Some(_)) => break,
            Ok(None) if Instant::now() < deadline => std::thread::sleep(Duration::from_millis(20)),
            _ => {
                let _ = child.kill();
                let _ = child.wait();
                return None;
            }
        }
    }
    let output = child.wait_with_output().ok()?;
    let version = String::from_utf8_lossy(&output.stdout).lines().next()?.trim().to_owned();
    (output.status.success() && version.chars().next().is_some_and(|c| c.is_ascii_digit() || c == 'v'))
        .then_some(version)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names_each_kind_of_compose() {
        let plugin = ComposeFound { command: "docker compose", version: "2.26.1".into() };
        assert_eq!(plugin.to_string(), "`docker compose` 2.26.1 (v2, CLI plugin)");
        let v1 = ComposeFound { command: "docker-compose", version: "1.29.2".into() };
        assert_eq!(v1.to_string(), "`docker-compose` 1.29.2 (v1)");
        let standalone = ComposeFound { command: "docker-compose", version: "v2.40.0".into() };
        assert_eq!(standalone.to_string(), "`docker-compose` v2.40.0 (v2, standalone)");
    }
}
