//! The scenario file as written: serde types that keep the line and column of every value that a later
//! error may need to point at. Nothing here is checked beyond YAML's own types; `plan` does that.

use indexmap::IndexMap;
use serde::Deserialize;
use serde_saphyr::Spanned;

/// A whole scenario file: images to build and the scenarios that use them.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ScenarioFile {
    /// Images built once per run, by name, shared by every scenario that names them.
    #[serde(default)]
    pub images: IndexMap<String, Spanned<ImageSpec>>,
    /// The test cases of this file.
    pub scenarios: Vec<Spanned<ScenarioSpec>>,
}

/// An image that seatrial builds from a context folder.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ImageSpec {
    pub build: BuildSpec,
}

/// Where and how to build an image.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct BuildSpec {
    /// The build context, relative to the scenario file's folder.
    pub context: Spanned<String>,
    /// The Dockerfile, relative to the context (default `Dockerfile`).
    pub dockerfile: Option<Spanned<String>>,
    /// Build arguments (`ARG`).
    #[serde(default)]
    pub args: IndexMap<String, Spanned<Scalar>>,
    /// The stage to build in a multi-stage Dockerfile.
    pub target: Option<Spanned<String>>,
    /// How long the build may take (default 10m).
    pub timeout: Option<Spanned<String>>,
}

/// One test case: containers to run and the steps to put them through.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ScenarioSpec {
    pub name: Spanned<String>,
    /// Containers, started in the order written, each waiting for its `ready:` check.
    #[serde(default)]
    pub containers: IndexMap<String, Spanned<ContainerSpec>>,
    #[serde(default)]
    pub steps: Vec<Spanned<StepSpec>>,
    /// Marks the scenario as ignored: it runs only with `--ignored` or `--include-ignored`.
    #[serde(default)]
    pub ignore: bool,
    /// How long the whole scenario may take (default 5m).
    pub timeout: Option<Spanned<String>>,
}

/// How to run one container of a scenario.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ContainerSpec {
    /// A name from `images:` or any engine reference such as `nginx:1.27`.
    pub image: Spanned<String>,
    /// Container ports, published on 127.0.0.1 at free host ports.
    #[serde(default)]
    pub ports: Vec<Spanned<u16>>,
    /// `name:/path` (a named volume private to the scenario) or `./dir:/path[:ro]` (a bind mount below the
    /// scenario file's folder).
    #[serde(default)]
    pub volumes: Vec<Spanned<String>>,
    #[serde(default)]
    pub env: IndexMap<String, Spanned<Scalar>>,
    /// Replaces the image's CMD.
    pub command: Option<Spanned<Vec<String>>>,
    /// Replaces the image's ENTRYPOINT.
    pub entrypoint: Option<Spanned<Vec<String>>>,
    pub user: Option<Spanned<String>>,
    pub workdir: Option<Spanned<String>>,
    pub ready: Option<Spanned<ReadySpec>>,
}

/// When a container counts as ready. Exactly one of `http`, `log`, `exec`, `tcp`.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ReadySpec {
    pub http: Option<HttpReadySpec>,
    /// A text the container's log must contain.
    pub log: Option<String>,
    /// A command that must exit 0 inside the container.
    pub exec: Option<Vec<String>>,
    /// A container port that must accept connections.
    pub tcp: Option<Spanned<u16>>,
    /// How long to wait (default 60s).
    pub timeout: Option<Spanned<String>>,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct HttpReadySpec {
    pub port: Spanned<u16>,
    #[serde(default = "root_path")]
    pub path: String,
    /// The status that means ready (default: any 2xx or 3xx).
    pub status: Option<u16>,
}

fn root_path() -> String {
    "/".to_owned()
}

/// One step of a scenario, written as a one-key mapping: `- restart: web`.
#[derive(Debug, Deserialize)]
#[serde(rename_all = "snake_case", deny_unknown_fields)]
pub enum StepSpec {
    Http(Box<HttpStepSpec>),
    Exec(ExecStepSpec),
    Logs(LogsStepSpec),
    Restart(String),
    Recreate(String),
    Start(String),
    Stop(StopStepSpec),
    Sleep(Spanned<String>),
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct HttpStepSpec {
    /// The container to reach; may be left out when one container publishes `port`.
    pub container: Option<String>,
    /// The container port (seatrial finds the host port it is published at).
    pub port: Spanned<u16>,
    /// HTTP method (default GET).
    pub method: Option<Spanned<String>>,
    #[serde(default = "root_path")]
    pub path: String,
    #[serde(default)]
    pub headers: IndexMap<String, String>,
    /// A JSON body (sets `content-type: application/json`).
    pub json: Option<serde_json::Value>,
    /// A raw body.
    pub body: Option<String>,
    /// Per-request timeout (default 10s).
    pub timeout: Option<Spanned<String>>,
    #[serde(default)]
    pub expect: HttpExpectSpec,
}

#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct HttpExpectSpec {
    /// Expected status (default: any 2xx).
    pub status: Option<u16>,
    /// Headers that must be present with these values (names are case-insensitive).
    #[serde(default)]
    pub headers: IndexMap<String, String>,
    pub body_contains: Option<String>,
    pub body_regex: Option<Spanned<String>>,
    /// JSONPath (RFC 9535) -> the value the single node it selects must equal.
    #[serde(default)]
    pub json: SpannedKeyMap<serde_json::Value>,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ExecStepSpec {
    pub container: String,
    pub cmd: Spanned<Vec<String>>,
    pub user: Option<String>,
    pub timeout: Option<Spanned<String>>,
    #[serde(default)]
    pub expect: ExecExpectSpec,
}

#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ExecExpectSpec {
    /// Expected exit code (default 0).
    pub exit: Option<i64>,
    pub stdout_contains: Option<String>,
    pub stderr_contains: Option<String>,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct LogsStepSpec {
    pub container: String,
    /// How long to wait for the text to appear (default: check once).
    pub within: Option<Spanned<String>>,
    #[serde(default)]
    pub expect: LogsExpectSpec,
}

#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct LogsExpectSpec {
    pub contains: Option<String>,
    pub not_contains: Option<String>,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct StopStepSpec {
    pub container: String,
    /// The container must have exited this long after the stop request (default 10s).
    pub within: Option<Spanned<String>>,
}

/// A YAML scalar kept as text, so that `DEBUG: 0` and `DEBUG: "0"` mean the same in `env:` and `args:`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Scalar(pub String);

impl<'de> Deserialize<'de> for Scalar {
    fn deserialize<D: serde::Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        struct ScalarVisitor;
        impl serde::de::Visitor<'_> for ScalarVisitor {
            type Value = Scalar;
            fn expecting(&self, f: &mut std::fmt::Formatter) -> std::fmt::Result {
                f.write_str("a string, number or boolean")
            }
            fn visit_str<E: serde::de::Error>(self, v: &str) -> Result<Scalar, E> {
                Ok(Scalar(v.to_owned()))
            }
            fn visit_bool<E: serde::de::Error>(self, v: bool) -> Result<Scalar, E> {
                Ok(Scalar(v.to_string()))
            }
            fn visit_i64<E: serde::de::Error>(self, v: i64) -> Result<Scalar, E> {
                Ok(Scalar(v.to_string()))
            }
            fn visit_u64<E: serde::de::Error>(self, v: u64) -> Result<Scalar, E> {
                Ok(Scalar(v.to_string()))
            }
            fn visit_f64<E: serde::de::Error>(self, v: f64) -> Result<Scalar, E> {
                Ok(Scalar(v.to_string()))
            }
        }
        deserializer.deserialize_any(ScalarVisitor)
    }
}

/// A mapping whose keys keep their line and column (for errors about a key, such as a bad JSONPath),
/// in the order written.
#[derive(Debug)]
pub struct SpannedKeyMap<V>(pub Vec<(Spanned<String>, V)>);

impl<V> Default for SpannedKeyMap<V> {
    fn default() -> Self {
        SpannedKeyMap(Vec::new())
    }
}

impl<'de, V: Deserialize<'de>> Deserialize<'de> for SpannedKeyMap<V> {
    fn deserialize<D: serde::Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        struct MapVisitor<V>(std::marker::PhantomData<V>);
        impl<'de, V: Deserialize<'de>> serde::de::Visitor<'de> for MapVisitor<V> {
            type Value = SpannedKeyMap<V>;
            fn expecting(&self, f: &mut std::fmt::Formatter) -> std::fmt::Result {
                f.write_str("a mapping")
            }
            fn visit_map<A: serde::de::MapAccess<'de>>(self, mut map: A) -> Result<Self::Value, A::Error> {
                let mut entries = Vec::new();
                while let Some(key) = map.next_key::<Spanned<String>>()? {
                    entries.push((key, map.next_value()?));
                }
                Ok(SpannedKeyMap(entries))
            }
        }
        deserializer.deserialize_map(MapVisitor(std::marker::PhantomData))
    }
}
