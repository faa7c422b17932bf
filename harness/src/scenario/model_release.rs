//! The release steps as written: `replace` (run a container from another image on the same volumes) and
//! `kill` (crash it with a signal). `pause`, `unpause`, `disconnect` and `connect` name a container only.
//! Part of the file model: nothing is checked here beyond YAML's own types.

use schemars::JsonSchema;
use serde::Deserialize;

use super::model::{DurationText, Spanned, word};

/// Stops a container gracefully (its stop signal, then its grace period), removes it and runs the same
/// container definition from another image, with the same volumes: an upgrade from release N to N+1.
#[derive(Debug, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct ReplaceStepSpec {
    /// The container to replace; it keeps its name, ports, environment, volumes and `ready:` check.
    pub container: Spanned<String>,
    /// The image it runs from now on: a name from `images:` (or an engine reference such as `app:2.0`).
    pub image: Spanned<String>,
}

/// Sends a container a signal that ends it at once, with no graceful stop: a crash, a power cut.
#[derive(Debug, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct KillStepSpec {
    /// The container to kill; it must be running, and is stopped afterwards (`start` it again).
    pub container: Spanned<String>,
    /// The signal: a name with or without `SIG` (`KILL`, `SIGQUIT`) or a number (default `KILL`).
    #[serde(default)]
    #[schemars(schema_with = "word")]
    pub signal: Option<Spanned<String>>,
    /// How long the container may take to exit after the signal, e.g. `5s` (default `10s`).
    pub within: Option<Spanned<DurationText>>,
}
