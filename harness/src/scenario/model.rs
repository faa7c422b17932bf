//! The scenario file as written: serde types that keep the line and column of every value that a later
//! error may need to point at. Nothing here is checked beyond YAML's own types; `plan` does that.

use std::borrow::Cow;

use indexmap::IndexMap;
use schemars::{JsonSchema, Schema, SchemaGenerator};
use serde::Deserialize;

use super::dialect::{BuildForm, EnvVars, OWN_MESSAGE, OneOrMany, PortSpec, StopForm, Words};
pub use super::model_checks::*;
pub use super::model_release::*;

/// A whole scenario file: images to build and the scenarios that use them.
#[derive(Debug, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
#[schemars(title = "seatrial scenario file")]
pub struct ScenarioFile {
    /// Images built once per run, by name, shared by every scenario of the file that names them.
    #[serde(default)]
    pub images: SpannedKeyMap<Spanned<ImageSpec>>,
    /// The test cases of this file, each run against fresh containers, volumes and network.
    pub scenarios: Vec<Spanned<ScenarioSpec>>,
}

/// An image that seatrial builds from a context folder.
#[derive(Debug, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct ImageSpec {
    /// How to build the image: the context folder (`build: ./app`), or a mapping with `context:`.
    pub build: Spanned<BuildForm>,
    /// Grading: points earned when the image builds (default 0).
    pub points: Option<Spanned<u32>>,
    /// Grading: shown to the student when the build fails.
    pub feedback: Option<String>,
    /// Grading: counted, but the feedback is withheld from the student's report (default false).
    #[serde(default)]
    pub hidden: bool,
}

/// Where and how to build an image.
#[derive(Debug, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct BuildSpec {
    /// The build context folder, relative to the scenario file's folder (`../fixtures/app`), or a
    /// variable such as `${SUBMISSION}` when grading.
    pub context: Spanned<String>,
    /// The Dockerfile, relative to the context (default `Dockerfile`).
    pub dockerfile: Option<Spanned<String>>,
    /// Build arguments (`ARG`), by name; values may use `${VAR:-default}`.
    #[serde(default)]
    pub args: IndexMap<String, Spanned<Scalar>>,
    /// The stage to build in a multi-stage Dockerfile (default: the last stage).
    pub target: Option<Spanned<String>>,
    /// How long the build may take, e.g. `3m` (default `10m`).
    pub timeout: Option<Spanned<DurationText>>,
}

/// One test case: containers to run and the steps to put them through.
#[derive(Debug, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct ScenarioSpec {
    /// The test's name, unique in the run; reports call it `<file stem>::<name>`.
    pub name: Spanned<String>,
    /// A compose stack whose services are the scenario's containers, by service name; brought up with
    /// the compose CLI before `containers:`, which join its default network.
    pub compose: Option<Spanned<ComposeSpec>>,
    /// Containers by name, started in the order written, each waiting for its `ready:` check.
    #[serde(default)]
    pub containers: IndexMap<String, Spanned<ContainerSpec>>,
    /// What to do and check, in order. Each step is a mapping with exactly one step kind.
    #[serde(default)]
    pub steps: Vec<Spanned<StepEntry>>,
    /// Marks the scenario as ignored: it runs only with `--ignored` or `--include-ignored` (default false).
    #[serde(default)]
    pub ignore: bool,
    /// How long the whole scenario may take, builds excluded, e.g. `2m` (default `5m`).
    pub timeout: Option<Spanned<DurationText>>,
}

/// A compose stack to test: the user's compose files, read by the user's compose CLI.
#[derive(Debug, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct ComposeSpec {
    /// The compose file, or several (later ones override earlier ones, as with `-f`), relative to the
    /// scenario file.
    pub file: Spanned<OneOrMany>,
    /// The folder compose resolves relative paths against (default: the first file's folder).
    pub project_directory: Option<Spanned<String>>,
    /// Files of variables for the compose file's own `${VAR}`s (default: `.env` in the project folder).
    pub env_file: Option<Spanned<OneOrMany>>,
    /// Profiles to enable, as `--profile`.
    #[serde(default)]
    pub profiles: Vec<String>,
    /// The services to start (with what they depend on); default all.
    pub services: Option<Vec<Spanned<String>>>,
    /// Variables for the compose file's own `${VAR}`s, over seatrial's environment.
    #[serde(default)]
    pub env: EnvVars,
    /// A readiness check per service, waited for after `up` and after each lifecycle step of the service
    /// (default: healthy for a service with a healthcheck, else running).
    #[serde(default)]
    pub ready: IndexMap<String, Spanned<ReadySpec>>,
}

/// `down`: stops and removes the stack; its volumes stay unless `volumes: true`.
#[derive(Debug, Default, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct DownStepSpec {
    /// Removes the stack's named volumes too, as `down -v` (default false).
    #[serde(default)]
    pub volumes: bool,
}

/// `up`: brings the stack back after a `down`, and waits for every service to be ready.
#[derive(Debug, Default, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct UpStepSpec {}

/// How to run one container of a scenario.
#[derive(Debug, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct ContainerSpec {
    /// A name from `images:`, or any image the engine has, such as `nginx:1.27`.
    pub image: Spanned<String>,
    /// Container ports, published on 127.0.0.1 at free host ports; steps name the container port.
    /// Compose's `"8000:8000"` is read as its container port.
    #[serde(default)]
    pub ports: Vec<Spanned<PortSpec>>,
    /// `name:/path` (a named volume private to the scenario, kept across `restart` and `recreate`) or
    /// `./dir:/path[:ro]` (a bind mount of a folder below the scenario file's folder).
    #[serde(default)]
    pub volumes: Vec<Spanned<String>>,
    /// Environment variables, by name (or a list of `KEY=VALUE`); values may use `${VAR:-default}`.
    #[serde(default)]
    pub env: EnvVars,
    /// Files of `KEY=VALUE` lines (compose's `env_file`), below the scenario file's folder; `env:` wins.
    pub env_file: Option<Spanned<OneOrMany>>,
    /// Replaces the image's CMD: a list, `[python, app.py]`, or one string split as a shell would.
    #[serde(default)]
    pub command: Option<Spanned<Words>>,
    /// Replaces the image's ENTRYPOINT: a list, or one string split as a shell would.
    #[serde(default)]
    pub entrypoint: Option<Spanned<Words>>,
    /// The user to run as (`1000`, `app`, `1000:1000`); default: the image's.
    #[serde(default)]
    #[schemars(schema_with = "word")]
    pub user: Option<Spanned<String>>,
    /// The working directory; default: the image's.
    pub workdir: Option<Spanned<String>>,
    /// When the container counts as started (default: as soon as it runs).
    pub ready: Option<Spanned<ReadySpec>>,
    /// The signal that asks the container to stop, as compose writes it: `SIGINT`, `INT` or a number
    /// (default: the image's `STOPSIGNAL`, else `SIGTERM`). `stop`, `restart`, `recreate` and the final
    /// cleanup send it.
    #[serde(default)]
    #[schemars(schema_with = "word")]
    pub stop_signal: Option<Spanned<String>>,
    /// How long the container may take to stop after its stop signal before it is killed, e.g. `1m30s`
    /// (default `10s`), for `restart`, `recreate` and the final cleanup.
    pub stop_grace_period: Option<Spanned<DurationText>>,
}

/// When a container counts as ready. Exactly one of `http`, `log`, `exec`, `tcp`.
#[derive(Debug, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct ReadySpec {
    /// Ready when an HTTP GET on this container port answers.
    pub http: Option<HttpReadySpec>,
    /// Ready when the container's log contains this text.
    pub log: Option<String>,
    /// Ready when this command exits 0 inside the container.
    pub exec: Option<Vec<String>>,
    /// Ready when this container port accepts TCP connections.
    pub tcp: Option<Spanned<u16>>,
    /// How long to wait, e.g. `30s` (default `60s`). A container that exits fails at once.
    pub timeout: Option<Spanned<DurationText>>,
}

/// An HTTP readiness probe.
#[derive(Debug, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct HttpReadySpec {
    /// The container port; it must be in the container's `ports:`.
    pub port: Spanned<u16>,
    /// The path to GET (default `/`).
    #[serde(default = "root_path")]
    pub path: String,
    /// The status that means ready (default: any 2xx or 3xx).
    pub status: Option<u16>,
}

fn root_path() -> String {
    "/".to_owned()
}

/// One step as written: one step kind, plus what grading needs to score it.
#[derive(Debug)]
pub struct StepEntry {
    /// `None` when the mapping names no step kind (the planner reports it where the step is).
    pub kind: Option<StepSpec>,
    pub grading: StepGradingSpec,
}

/// Keys that may sit beside the step kind in a step.
#[derive(Debug, Default, JsonSchema)]
pub struct StepGradingSpec {
    /// The check's name in reports and the gradebook (default: a summary of the step).
    pub name: Option<Spanned<String>>,
    /// Grading: points earned when the step passes (default 0).
    pub points: Option<Spanned<u32>>,
    /// Grading: shown to the student when the step fails.
    pub feedback: Option<String>,
    /// Grading: counted, but the feedback is withheld from the student's report (default false).
    #[serde(default)]
    pub hidden: bool,
}

/// What a step does, written as its key: `- restart: web`, `- http: { port: 8000 }`.
#[derive(Debug, Deserialize, JsonSchema)]
#[serde(rename_all = "snake_case", deny_unknown_fields)]
pub enum StepSpec {
    /// An HTTP request to a published container port, and what must come back.
    Http(Box<HttpStepSpec>),
    /// A command run inside a container, and what it must print and exit with.
    Exec(ExecStepSpec),
    /// Text the container's log must (or must not) contain.
    Logs(LogsStepSpec),
    /// Restarts the named container and waits for its `ready:` check again.
    Restart(Spanned<String>),
    /// Stops the named container gracefully (its stop signal, then its grace period), removes it and runs a
    /// new one from the same image with the same volumes, its image's `VOLUME`s included.
    Recreate(Spanned<String>),
    /// Starts the named container after a `stop`, and waits for it to be ready.
    Start(Spanned<String>),
    /// Stops a container with its stop signal (SIGTERM unless `stop_signal` says otherwise); it must have
    /// exited `within` the given time. `stop: web` stops it with the default `within`.
    Stop(Spanned<StopForm>),
    /// Waits this long, e.g. `500ms`.
    Sleep(Spanned<DurationText>),
    /// Checks an image's configuration (user, workdir, exposed ports, env, entrypoint, cmd, labels, volumes,
    /// healthcheck, size), read from the engine without running it.
    Image(ImageStepSpec),
    /// Checks a file or folder of a container or an image (existence, type, mode, owner, content), read
    /// through the engine's archive API: no shell needed.
    File(FileStepSpec),
    /// Stops a container gracefully and runs it again from another image, with the same volumes (an upgrade).
    Replace(ReplaceStepSpec),
    /// Kills a running container with a signal (default `KILL`): a crash; it is stopped afterwards.
    Kill(KillStepSpec),
    /// Freezes every process of the named container (`docker pause`): it holds its connections and answers
    /// nothing until `unpause`.
    Pause(Spanned<String>),
    /// Thaws the named paused container.
    Unpause(Spanned<String>),
    /// Takes the named container off the scenario's network: the others cannot reach it, nor it them, and
    /// its published ports go away, until `connect`.
    Disconnect(Spanned<String>),
    /// Puts the named disconnected container back on the scenario's network, under its name.
    Connect(Spanned<String>),
    /// Stops and removes the compose stack (`compose down`), keeping its volumes unless `volumes: true`.
    Down(DownStepSpec),
    /// Brings the compose stack up again after a `down` (`compose up -d`) and waits for its services.
    Up(UpStepSpec),
}

/// An HTTP request and its expectations.
#[derive(Debug, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct HttpStepSpec {
    /// The container to reach; may be left out when exactly one container publishes `port` (or, with
    /// `from`, when the scenario has one other container).
    pub container: Option<Spanned<String>>,
    /// The container port (seatrial finds the host port it is published at; with `from`, it need not be
    /// published).
    pub port: Spanned<u16>,
    /// Sends the request from inside the scenario's network, from this container of the scenario, to
    /// `http://<container>:<port>` (the port need not be published). The container needs `nc` or
    /// `python3` to carry the connection.
    pub from: Option<Spanned<String>>,
    /// HTTP method (default `GET`).
    pub method: Option<Spanned<String>>,
    /// The request path, starting with `/` (default `/`).
    #[serde(default = "root_path")]
    pub path: String,
    /// Request headers, by name.
    #[serde(default)]
    pub headers: IndexMap<String, String>,
    /// A JSON body (sets `content-type: application/json`).
    pub json: Option<serde_json::Value>,
    /// A raw body.
    pub body: Option<String>,
    /// A form, sent as `application/x-www-form-urlencoded`: field -> value (a list sends the field once
    /// per value).
    pub form: Option<IndexMap<String, FormValue>>,
    /// A `multipart/form-data` body, as a browser sends an upload: field -> text, or a file
    /// (`{ path: upload.txt }` below the scenario's folder, or `{ content: ..., filename: ... }`).
    pub multipart: Option<IndexMap<String, Spanned<MultipartValue>>>,
    /// Whether the scenario's cookies for this container are sent, and the answer's kept (default true:
    /// as a browser does).
    #[serde(default = "yes")]
    pub cookies: bool,
    /// Whether a redirect (3xx with `Location`) is followed to the final answer, which the expectations
    /// then check (default false: the redirect itself is the answer).
    #[serde(default)]
    pub follow_redirects: bool,
    /// How long the request may take, e.g. `5s` (default `10s`).
    pub timeout: Option<Spanned<DurationText>>,
    /// What the response must be (default: any 2xx status).
    #[serde(default)]
    pub expect: HttpExpectSpec,
    /// Values taken from the answer, by name, for later steps to use as `${name}`:
    /// `{ json: "$.id" }`, `{ cookie: csrftoken }`, `{ header: location }`, `{ regex: "token=(\\w+)" }`,
    /// `body`, `status`.
    #[serde(default)]
    pub save: SpannedKeyMap<Spanned<CaptureSpec>>,
}

fn yes() -> bool {
    true
}

/// A form field's value: text, or a list of texts (the field sent once per value).
#[derive(Debug, Clone)]
pub struct FormValue(pub Vec<String>);

impl<'de> Deserialize<'de> for FormValue {
    fn deserialize<D: serde::Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        struct FormVisitor;
        impl<'de> serde::de::Visitor<'de> for FormVisitor {
            type Value = FormValue;
            fn expecting(&self, f: &mut std::fmt::Formatter) -> std::fmt::Result {
                f.write_str("a text, number or boolean, or a list of them")
            }
            fn visit_str<E: serde::de::Error>(self, v: &str) -> Result<FormValue, E> {
                Ok(FormValue(vec![v.to_owned()]))
            }
            fn visit_bool<E: serde::de::Error>(self, v: bool) -> Result<FormValue, E> {
                Ok(FormValue(vec![v.to_string()]))
            }
            fn visit_i64<E: serde::de::Error>(self, v: i64) -> Result<FormValue, E> {
                Ok(FormValue(vec![v.to_string()]))
            }
            fn visit_u64<E: serde::de::Error>(self, v: u64) -> Result<FormValue, E> {
                Ok(FormValue(vec![v.to_string()]))
            }
            fn visit_f64<E: serde::de::Error>(self, v: f64) -> Result<FormValue, E> {
                Ok(FormValue(vec![v.to_string()]))
            }
            fn visit_seq<A: serde::de::SeqAccess<'de>>(self, mut seq: A) -> Result<FormValue, A::Error> {
                let mut values = Vec::new();
                while let Some(value) = seq.next_element::<Scalar>()? {
                    values.push(value.0);
                }
                Ok(FormValue(values))
            }
        }
        deserializer.deserialize_any(FormVisitor)
    }
}

impl JsonSchema for FormValue {
    fn schema_name() -> Cow<'static, str> {
        "FormValue".into()
    }

    fn json_schema(_: &mut SchemaGenerator) -> Schema {
        schemars::json_schema!({
            "description": "A form field's value (text, number or boolean), or a list of them: the field is sent once per value.",
            "type": ["string", "number", "boolean", "array"],
            "items": { "type": ["string", "number", "boolean"] }
        })
    }
}

/// One part of a `multipart/form-data` body: a text field, or a file.
#[derive(Debug, Clone)]
pub enum MultipartValue {
    Text(String),
    File(FilePartSpec),
}

/// A file sent in a `multipart/form-data` body: from a file, or written here.
#[derive(Debug, Clone, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct FilePartSpec {
    /// A file below the scenario file's folder (as a bind mount's source), sent as it is.
    pub path: Option<Spanned<String>>,
    /// The file's content, written here instead of `path`; may use `${VAR}` and saved values.
    pub content: Option<String>,
    /// The file name the server is told (default: the name of `path`, else the field's name).
    pub filename: Option<String>,
    /// The part's content type (default: guessed from the file name, else `application/octet-stream`).
    #[serde(rename = "type")]
    pub content_type: Option<String>,
}

impl<'de> Deserialize<'de> for MultipartValue {
    fn deserialize<D: serde::Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        struct PartVisitor;
        impl<'de> serde::de::Visitor<'de> for PartVisitor {
            type Value = MultipartValue;
            fn expecting(&self, f: &mut std::fmt::Formatter) -> std::fmt::Result {
                f.write_str("a text field's value, or a file: `{ path: upload.txt }` or `{ content: ... }`")
            }
            fn visit_str<E: serde::de::Error>(self, v: &str) -> Result<MultipartValue, E> {
                Ok(MultipartValue::Text(v.to_owned()))
            }
            fn visit_bool<E: serde::de::Error>(self, v: bool) -> Result<MultipartValue, E> {
                Ok(MultipartValue::Text(v.to_string()))
            }
            fn visit_i64<E: serde::de::Error>(self, v: i64) -> Result<MultipartValue, E> {
                Ok(MultipartValue::Text(v.to_string()))
            }
            fn visit_u64<E: serde::de::Error>(self, v: u64) -> Result<MultipartValue, E> {
                Ok(MultipartValue::Text(v.to_string()))
            }
            fn visit_f64<E: serde::de::Error>(self, v: f64) -> Result<MultipartValue, E> {
                Ok(MultipartValue::Text(v.to_string()))
            }
            fn visit_map<A: serde::de::MapAccess<'de>>(self, map: A) -> Result<MultipartValue, A::Error> {
                let file = FilePartSpec::deserialize(serde::de::value::MapAccessDeserializer::new(map))?;
                Ok(MultipartValue::File(file))
            }
        }
        deserializer.deserialize_any(PartVisitor)
    }
}

impl JsonSchema for MultipartValue {
    fn schema_name() -> Cow<'static, str> {
        "MultipartValue".into()
    }

    fn json_schema(generator: &mut SchemaGenerator) -> Schema {
        let file = generator.subschema_for::<FilePartSpec>();
        schemars::json_schema!({
            "description": "A text field's value, or a file: `{ path: upload.txt }` (below the scenario's folder) or `{ content: ..., filename: ... }`.",
            "anyOf": [ { "type": ["string", "number", "boolean"] }, file ]
        })
    }
}

/// What to save from an answer or a command's output: a JSONPath, a cookie, a header or a regex over the
/// body (or over stdout for `exec`), or the whole `body`, `status` or `stdout`.
#[derive(Debug, Clone)]
pub enum CaptureSpec {
    /// `{ json: "$.id" }`: the one value the JSONPath selects in the body, with its JSON type.
    Json(String),
    /// `{ cookie: csrftoken }`: the cookie's value, as the answer set it or the session holds it.
    Cookie(String),
    /// `{ header: location }`: the header's (first) value.
    Header(String),
    /// `{ regex: "token=(\\w+)" }`: the first group of the first match (the whole match without a group).
    Regex(String),
    /// `body`: the whole body.
    Body,
    /// `status`: the status code, a number.
    Status,
    /// `stdout`: a command's standard output, without its last line break.
    Stdout,
}

/// The keys of a capture written as a mapping.
pub const CAPTURE_KEYS: [&str; 4] = ["json", "cookie", "header", "regex"];
/// The captures written as a word.
pub const CAPTURE_WORDS: [&str; 3] = ["body", "status", "stdout"];

impl<'de> Deserialize<'de> for CaptureSpec {
    fn deserialize<D: serde::Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        struct CaptureVisitor;
        impl<'de> serde::de::Visitor<'de> for CaptureVisitor {
            type Value = CaptureSpec;
            fn expecting(&self, f: &mut std::fmt::Formatter) -> std::fmt::Result {
                f.write_str(
                    "what to save: `{ json: \"$.id\" }`, `{ cookie: name }`, `{ header: name }`, `{ regex: ... }`, \
                     `body`, `status` or `stdout`",
                )
            }
            fn visit_str<E: serde::de::Error>(self, v: &str) -> Result<CaptureSpec, E> {
                match v {
                    "body" => Ok(CaptureSpec::Body),
                    "status" => Ok(CaptureSpec::Status),
                    "stdout" => Ok(CaptureSpec::Stdout),
                    other => Err(E::unknown_variant(other, &CAPTURE_WORDS)),
                }
            }
            fn visit_map<A: serde::de::MapAccess<'de>>(self, mut map: A) -> Result<CaptureSpec, A::Error> {
                use serde::de::Error as _;
                let Some(key) = map.next_key::<String>()? else {
                    return Err(A::Error::custom("say what to save: one of `json`, `cookie`, `header`, `regex`"));
                };
                let value: String = map.next_value()?;
                let capture = match key.as_str() {
                    "json" => CaptureSpec::Json(value),
                    "cookie" => CaptureSpec::Cookie(value),
                    "header" => CaptureSpec::Header(value),
                    "regex" => CaptureSpec::Regex(value),
                    other => return Err(A::Error::unknown_field(other, &CAPTURE_KEYS)),
                };
                if let Some(second) = map.next_key::<String>()? {
                    return Err(A::Error::custom(format!(
                        "a saved value comes from one place: `{key}` and `{second}` (save them under two names)"
                    )));
                }
                Ok(capture)
            }
        }
        deserializer.deserialize_any(CaptureVisitor)
    }
}

impl JsonSchema for CaptureSpec {
    fn schema_name() -> Cow<'static, str> {
        "Capture".into()
    }

    fn json_schema(_: &mut SchemaGenerator) -> Schema {
        let one = |key: &str, description: &str| {
            schemars::json_schema!({
                "type": "object",
                "description": description,
                "properties": { key: { "type": "string", "description": description } },
                "required": [key],
                "additionalProperties": false
            })
        };
        schemars::json_schema!({
            "description": "What to save for later steps (`${name}`): `{ json: \"$.id\" }`, `{ cookie: csrftoken }`, `{ header: location }`, `{ regex: \"token=(\\\\w+)\" }` (its first group), or `body`, `status` (http) or `stdout` (exec).",
            "anyOf": [
                { "type": "string", "enum": ["body", "status", "stdout"], "description": "The whole body, the status code, or a command's standard output." },
                one("json", "The one value this JSONPath (RFC 9535) selects in the body, with its JSON type."),
                one("cookie", "The value of this cookie, as the answer set it or the scenario's session holds it for the container."),
                one("header", "The first value of this header of the answer (name in any case)."),
                one("regex", "The first group of the first match of this regex (Rust syntax) in the body, or in stdout for `exec`; the whole match when it has no group.")
            ]
        })
    }
}

/// What an HTTP response must be.
#[derive(Debug, Default, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct HttpExpectSpec {
    /// Expected status (default: any 2xx).
    pub status: Option<u16>,
    /// Headers that must be present with these values (names are case-insensitive).
    #[serde(default)]
    pub headers: IndexMap<String, String>,
    /// Text the body must contain.
    pub body_contains: Option<String>,
    /// Text the body must not contain.
    pub body_not_contains: Option<String>,
    /// A regular expression (Rust regex syntax) the body must match.
    pub body_regex: Option<Spanned<String>>,
    /// JSONPath (RFC 9535, e.g. `$[0].text`) -> the value the single node it selects must equal, or a
    /// test: `{ exists: true }`, `{ exists: false }`, `{ count: 3 }` (nodes selected), `{ gt: 0, le: 10 }`
    /// (a number), `{ equals: value }`.
    #[serde(default)]
    pub json: SpannedKeyMap<serde_json::Value>,
    /// How long the answer may take at most, from sending the request to its body read (redirects
    /// followed included), e.g. `200ms`.
    pub max_time: Option<Spanned<DurationText>>,
}

/// A command run inside a running container.
#[derive(Debug, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct ExecStepSpec {
    /// The container to run it in.
    pub container: Spanned<String>,
    /// The command as a list, no shell: `[ls, /data]` (write `[sh, -c, "..."]` for a shell).
    #[schemars(schema_with = "list_of_words")]
    pub cmd: Spanned<Vec<String>>,
    /// The user to run it as (default: the container's).
    #[serde(default)]
    #[schemars(schema_with = "word")]
    pub user: Option<String>,
    /// How long it may take, e.g. `10s` (default `60s`).
    pub timeout: Option<Spanned<DurationText>>,
    /// What it must exit with and print (default: exit 0).
    #[serde(default)]
    pub expect: ExecExpectSpec,
    /// Values taken from its output, by name, for later steps to use as `${name}`: `stdout`, or
    /// `{ regex: "id=(\\d+)" }` over stdout.
    #[serde(default)]
    pub save: SpannedKeyMap<Spanned<CaptureSpec>>,
}

/// What a command run by `exec` must give.
#[derive(Debug, Default, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct ExecExpectSpec {
    /// Expected exit code (default 0).
    pub exit: Option<i64>,
    /// Text its standard output must contain.
    pub stdout_contains: Option<String>,
    /// Text its standard error must contain.
    pub stderr_contains: Option<String>,
}

/// A check of a container's log (stdout and stderr).
#[derive(Debug, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct LogsStepSpec {
    /// The container whose log to read.
    pub container: Spanned<String>,
    /// How long to wait for `contains` to appear, e.g. `5s` (default: check once).
    pub within: Option<Spanned<DurationText>>,
    /// What the log must (not) contain; at least one of the two.
    #[serde(default)]
    pub expect: LogsExpectSpec,
}

/// What a container's log must (not) contain.
#[derive(Debug, Default, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct LogsExpectSpec {
    /// Text the log must contain.
    pub contains: Option<String>,
    /// Text the log must not contain (e.g. `Traceback`).
    pub not_contains: Option<String>,
}

/// A graceful stop, timed.
#[derive(Debug, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct StopStepSpec {
    /// The container to stop; it must be running at this step.
    pub container: Spanned<String>,
    /// The container must have exited this long after its stop signal, e.g. `5s` (default `10s`).
    pub within: Option<Spanned<DurationText>>,
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

/// YAML reads `1000` and `60` as numbers; where a string is meant (`user: 1000`, `[sleep, 60]`), the
/// files take them as text, and so must the schema.
pub(crate) fn word(_: &mut SchemaGenerator) -> Schema {
    schemars::json_schema!({ "type": ["string", "number"] })
}

pub(crate) fn list_of_words(generator: &mut SchemaGenerator) -> Schema {
    schemars::json_schema!({ "type": "array", "items": word(generator) })
}

impl JsonSchema for Scalar {
    fn schema_name() -> Cow<'static, str> {
        "Scalar".into()
    }

    fn json_schema(_: &mut SchemaGenerator) -> Schema {
        schemars::json_schema!({
            "description": "A string, number or boolean, used as text (`DEBUG: 0` means \"0\").",
            "type": ["string", "number", "boolean"]
        })
    }
}

impl<V: JsonSchema> JsonSchema for SpannedKeyMap<V> {
    fn schema_name() -> Cow<'static, str> {
        format!("Map_of_{}", V::schema_name()).into()
    }

    fn json_schema(generator: &mut SchemaGenerator) -> Schema {
        schemars::json_schema!({ "type": "object", "additionalProperties": generator.subschema_for::<V>() })
    }
}

/// A value with the line and column it was written at. serde-saphyr's own `Spanned`, kept in a type of ours
/// so that the JSON Schema can describe it as the bare value it is in the file.
#[derive(Debug, Clone)]
pub struct Spanned<T> {
    pub value: T,
    pub referenced: serde_saphyr::Location,
}

impl<'de, T: Deserialize<'de>> Deserialize<'de> for Spanned<T> {
    fn deserialize<D: serde::Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        let spanned = serde_saphyr::Spanned::<T>::deserialize(deserializer)?;
        Ok(Spanned { value: spanned.value, referenced: spanned.referenced })
    }
}

impl<T: JsonSchema> JsonSchema for Spanned<T> {
    fn inline_schema() -> bool {
        T::inline_schema()
    }

    fn schema_name() -> Cow<'static, str> {
        T::schema_name()
    }

    fn schema_id() -> Cow<'static, str> {
        T::schema_id()
    }

    fn json_schema(generator: &mut SchemaGenerator) -> Schema {
        T::json_schema(generator)
    }
}

/// The keys a step may carry beside its kind.
pub const STEP_GRADING_KEYS: [&str; 4] = ["name", "points", "feedback", "hidden"];

impl<'de> Deserialize<'de> for StepEntry {
    fn deserialize<D: serde::Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        struct EntryVisitor;
        impl<'de> serde::de::Visitor<'de> for EntryVisitor {
            type Value = StepEntry;
            fn expecting(&self, f: &mut std::fmt::Formatter) -> std::fmt::Result {
                f.write_str("a step: a mapping with one step kind, such as `restart: web`")
            }
            fn visit_map<A: serde::de::MapAccess<'de>>(self, mut map: A) -> Result<StepEntry, A::Error> {
                use serde::de::Error as _;
                let mut grading = StepGradingSpec::default();
                let mut kind: Option<(String, StepSpec)> = None;
                let mut seen = Vec::new();
                while let Some(key) = map.next_key::<String>()? {
                    if seen.contains(&key) {
                        return Err(A::Error::custom(format!("{OWN_MESSAGE}`{key}` is given twice in this step")));
                    }
                    seen.push(key.clone());
                    match key.as_str() {
                        "name" => grading.name = Some(map.next_value()?),
                        "points" => grading.points = Some(map.next_value()?),
                        "feedback" => grading.feedback = Some(map.next_value()?),
                        "hidden" => grading.hidden = map.next_value()?,
                        _ => {
                            // The derived enum decides which kinds exist, so the list cannot drift.
                            let step = StepSpec::deserialize(OneVariant { variant: key.clone(), map: &mut map })?;
                            if let Some((first, _)) = &kind {
                                return Err(A::Error::custom(format!(
                                    "{OWN_MESSAGE}a step does one thing: it has both `{first}` and `{key}` (make them \
                                     two steps)"
                                )));
                            }
                            kind = Some((key, step));
                        }
                    }
                }
                Ok(StepEntry { kind: kind.map(|(_, step)| step), grading })
            }
        }
        deserializer.deserialize_map(EntryVisitor)
    }
}

/// Presents one key of a mapping and its value as an externally tagged enum to the derived `StepSpec`.
struct OneVariant<'a, A> {
    variant: String,
    map: &'a mut A,
}

impl<'de, A: serde::de::MapAccess<'de>> serde::Deserializer<'de> for OneVariant<'_, A> {
    type Error = A::Error;

    fn deserialize_any<V: serde::de::Visitor<'de>>(self, visitor: V) -> Result<V::Value, A::Error> {
        visitor.visit_enum(self)
    }

    fn deserialize_enum<V: serde::de::Visitor<'de>>(
        self,
        _name: &'static str,
        _variants: &'static [&'static str],
        visitor: V,
    ) -> Result<V::Value, A::Error> {
        visitor.visit_enum(self)
    }

    serde::forward_to_deserialize_any! {
        bool i8 i16 i32 i64 i128 u8 u16 u32 u64 u128 f32 f64 char str string bytes byte_buf option unit
        unit_struct newtype_struct seq tuple tuple_struct map struct identifier ignored_any
    }
}

impl<'de, 'a, A: serde::de::MapAccess<'de>> serde::de::EnumAccess<'de> for OneVariant<'a, A> {
    type Error = A::Error;
    type Variant = OneVariantValue<'a, A>;

    fn variant_seed<S: serde::de::DeserializeSeed<'de>>(self, seed: S) -> Result<(S::Value, Self::Variant), A::Error> {
        use serde::de::IntoDeserializer as _;
        let tag = seed.deserialize(self.variant.into_deserializer())?;
        Ok((tag, OneVariantValue { map: self.map }))
    }
}

struct OneVariantValue<'a, A> {
    map: &'a mut A,
}

impl<'de, A: serde::de::MapAccess<'de>> serde::de::VariantAccess<'de> for OneVariantValue<'_, A> {
    type Error = A::Error;

    fn unit_variant(self) -> Result<(), A::Error> {
        self.map.next_value::<serde::de::IgnoredAny>().map(drop)
    }

    fn newtype_variant_seed<S: serde::de::DeserializeSeed<'de>>(self, seed: S) -> Result<S::Value, A::Error> {
        self.map.next_value_seed(seed)
    }

    fn tuple_variant<V: serde::de::Visitor<'de>>(self, _len: usize, _visitor: V) -> Result<V::Value, A::Error> {
        Err(serde::de::Error::custom("tuple steps do not exist"))
    }

    fn struct_variant<V: serde::de::Visitor<'de>>(
        self,
        _fields: &'static [&'static str],
        _visitor: V,
    ) -> Result<V::Value, A::Error> {
        Err(serde::de::Error::custom("struct steps do not exist"))
    }
}

impl JsonSchema for StepEntry {
    fn schema_name() -> Cow<'static, str> {
        "Step".into()
    }

    /// The derived schema of `StepSpec` (one object per kind, `additionalProperties: false`) with the
    /// grading keys added to each kind's object.
    fn json_schema(generator: &mut SchemaGenerator) -> Schema {
        let kinds = StepSpec::json_schema(generator);
        let grading = StepGradingSpec::json_schema(generator);
        let grading_properties = grading.get("properties").cloned().unwrap_or_default();
        let mut schema = kinds.clone();
        if let Some(serde_json::Value::Array(variants)) = schema.get_mut("oneOf") {
            for variant in variants.iter_mut() {
                let description = variant.get("description").cloned();
                if let (Some(serde_json::Value::Object(props)), serde_json::Value::Object(extra)) =
                    (variant.get_mut("properties"), &grading_properties)
                {
                    // The kind's own key carries the variant's description, where editors show it.
                    for kind in props.values_mut() {
                        if let (serde_json::Value::Object(kind), Some(description)) = (kind, &description) {
                            kind.entry("description").or_insert_with(|| description.clone());
                        }
                    }
                    props.extend(extra.clone());
                }
            }
        }
        schema.insert(
            "description".into(),
            "One step: exactly one step kind (`http`, `exec`, `logs`, `restart`, `recreate`, `start`, `stop`, \
             `sleep`, `image`, `file`, `replace`, `kill`, `pause`, `unpause`, `disconnect`, `connect`), optionally \
             with `name`, `points`, `feedback` and `hidden`."
                .into(),
        );
        schema
    }
}

/// A duration as written (`500ms`, `30s`, `1m30s`, `2 minutes`), or a `${VAR}` that gives one.
#[derive(Debug, Clone, Deserialize)]
#[serde(transparent)]
pub struct DurationText(pub String);

impl JsonSchema for DurationText {
    fn schema_name() -> Cow<'static, str> {
        "Duration".into()
    }

    fn json_schema(_: &mut SchemaGenerator) -> Schema {
        schemars::json_schema!({
            "description": "A duration: `500ms`, `30s`, `1m30s`, `2 minutes`, or a `${VAR}` that gives one.",
            "type": "string",
            "pattern": crate::scenario::duration::DURATION_PATTERN,
            "examples": ["500ms", "30s", "1m30s"]
        })
    }
}
