//! The `image` and `file` steps as written: what an image's configuration and the files of a container
//! or an image must be. Read from outside (the engine's image inspect and archive API), so they work on
//! images with no shell. Part of the file model: nothing is checked here beyond YAML's own types.

use std::borrow::Cow;

use indexmap::IndexMap;
use schemars::{JsonSchema, Schema, SchemaGenerator};
use serde::Deserialize;

use super::model::{Scalar, Spanned, list_of_words, word};

/// Checks an image's configuration, read from the engine's image inspect: no container is run, so it
/// works for images with no shell (distroless, scratch).
#[derive(Debug, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct ImageStepSpec {
    /// Whose image: a container of the scenario (the image it runs at this step, after any `replace`),
    /// a name from `images:`, or an engine reference such as `python:3.11-slim`.
    pub of: Spanned<String>,
    /// What the image's configuration must say; every key given must hold.
    #[serde(default)]
    pub expect: ImageExpectSpec,
}

/// What an image's configuration must say (its Dockerfile's `USER`, `WORKDIR`, `EXPOSE`, ...).
#[derive(Debug, Default, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct ImageExpectSpec {
    /// The image's `USER`, exactly as set (`app`, `1000`, `1000:1000`); `""` for none (root).
    #[serde(default)]
    #[schemars(schema_with = "word")]
    pub user: Option<Spanned<String>>,
    /// The image's `WORKDIR`, exactly (`/app`).
    pub workdir: Option<String>,
    /// Ports the image must `EXPOSE`: `8000` (TCP) or `53/udp`; others may be exposed too.
    #[serde(default)]
    #[schemars(schema_with = "list_of_words")]
    pub exposed: Vec<Spanned<Scalar>>,
    /// Environment variables the image must set (`ENV`), each with exactly this value; others may be set too.
    #[serde(default)]
    pub env: IndexMap<String, Scalar>,
    /// The image's `ENTRYPOINT`, exactly, as a list (`[]`: none).
    #[serde(default)]
    #[schemars(schema_with = "list_of_words")]
    pub entrypoint: Option<Vec<String>>,
    /// The image's `CMD`, exactly, as a list (`[]`: none).
    #[serde(default)]
    #[schemars(schema_with = "list_of_words")]
    pub cmd: Option<Vec<String>>,
    /// Labels the image must carry (`LABEL`), each with exactly this value; others may be set too.
    #[serde(default)]
    pub labels: IndexMap<String, Scalar>,
    /// Folders the image must declare with `VOLUME` (`/data`); others may be declared too.
    #[serde(default)]
    pub volumes: Vec<String>,
    /// `true`: the image must define a `HEALTHCHECK`; `false`: it must not (or disable it with `NONE`).
    pub healthcheck: Option<bool>,
    /// The image's size on the engine (uncompressed, all its layers) must be below this: `250MB`
    /// (decimal units, as `docker images` shows sizes: kB, MB, GB) or `200MiB` (KiB, MiB, GiB), or bytes.
    pub size_under: Option<Spanned<ByteSizeText>>,
    /// `true`: the image must run as a user other than root (a `USER` that is neither `root` nor uid 0,
    /// names looked up in the image's `/etc/passwd`); `false`: it must run as root.
    pub not_root: Option<bool>,
}

/// Checks a file or folder of a container (running, stopped or paused) or of an image, read through the
/// engine's archive API: no shell, no `cat` or `stat` needed in the image.
#[derive(Debug, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct FileStepSpec {
    /// The container whose file it is, as it is at this step (running or not). Give `container` or `image`.
    pub container: Option<Spanned<String>>,
    /// The image whose file it is, as built (a name from `images:` or an engine reference), read from a
    /// container created from it and never started. Give `container` or `image`.
    pub image: Option<Spanned<String>>,
    /// The absolute path of the file or folder (`/app/manage.py`).
    pub path: Spanned<String>,
    /// What must hold of it (default: it exists); every key given must hold.
    #[serde(default)]
    pub expect: FileExpectSpec,
}

/// What must hold of a path in a container's or an image's filesystem.
#[derive(Debug, Default, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct FileExpectSpec {
    /// Whether the path must exist (default true); `false` takes no other key.
    pub exists: Option<bool>,
    /// Its permission bits, quoted: octal (`"0644"`, `"4755"`) or as `ls -l` shows them (`-rw-r--r--`,
    /// `drwxr-xr-x`; this form checks the type too). A bare number is refused: YAML readers disagree on
    /// what `0644` means.
    pub mode: Option<Spanned<ModeText>>,
    /// Its owner: a uid (`0`) or a user name (`app`, looked up in the container's `/etc/passwd`).
    #[serde(default)]
    #[schemars(schema_with = "word")]
    pub owner: Option<Spanned<Scalar>>,
    /// Its group: a gid (`0`) or a group name (looked up in the container's `/etc/group`).
    #[serde(default)]
    #[schemars(schema_with = "word")]
    pub group: Option<Spanned<Scalar>>,
    /// What it is: `file`, `directory` or `symlink` (the link itself; content checks follow it).
    #[serde(rename = "type")]
    pub kind: Option<Spanned<FileKindSpec>>,
    /// Text the file must contain (case-sensitive; the first 4 MiB are read).
    pub contains: Option<String>,
    /// A regular expression (Rust regex syntax) the file's content must match somewhere.
    pub matches: Option<Spanned<String>>,
    /// Text the file must not contain (the first 4 MiB are read: a larger file fails unless it is short
    /// enough to be read whole).
    pub not_contains: Option<String>,
    /// Names a folder must hold directly (`[manage.py, notes]`).
    #[serde(default)]
    pub entries: Vec<String>,
}

/// What a path is.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize, JsonSchema)]
#[serde(rename_all = "lowercase")]
pub enum FileKindSpec {
    /// A regular file.
    File,
    /// A folder.
    Directory,
    /// A symbolic link (checked as the link itself, not what it points to).
    Symlink,
}

/// A mode as written. YAML 1.1 reads a bare `0644` as octal, YAML 1.2 as decimal (and this reader
/// `01777` as a float), so a number cannot say which bits were meant: it is kept as a number for the
/// planner to refuse where it stands.
#[derive(Debug, Clone)]
pub enum ModeText {
    Text(String),
    Number(i64),
}

impl<'de> Deserialize<'de> for ModeText {
    fn deserialize<D: serde::Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        struct ModeVisitor;
        impl serde::de::Visitor<'_> for ModeVisitor {
            type Value = ModeText;
            fn expecting(&self, f: &mut std::fmt::Formatter) -> std::fmt::Result {
                f.write_str("a mode in quotes, such as \"0644\" or \"-rw-r--r--\"")
            }
            fn visit_str<E: serde::de::Error>(self, v: &str) -> Result<ModeText, E> {
                Ok(ModeText::Text(v.to_owned()))
            }
            fn visit_i64<E: serde::de::Error>(self, v: i64) -> Result<ModeText, E> {
                Ok(ModeText::Number(v))
            }
            fn visit_u64<E: serde::de::Error>(self, v: u64) -> Result<ModeText, E> {
                Ok(ModeText::Number(i64::try_from(v).unwrap_or(i64::MAX)))
            }
            fn visit_f64<E: serde::de::Error>(self, v: f64) -> Result<ModeText, E> {
                // A bare `01777` reaches here as 1777.0.
                Ok(ModeText::Number(v as i64))
            }
        }
        deserializer.deserialize_any(ModeVisitor)
    }
}

impl JsonSchema for ModeText {
    fn schema_name() -> Cow<'static, str> {
        "Mode".into()
    }

    fn json_schema(_: &mut SchemaGenerator) -> Schema {
        schemars::json_schema!({
            "description": "Permission bits, quoted: octal (`\"0644\"`) or as `ls -l` shows them (`-rw-r--r--`).",
            "type": "string",
            "examples": ["0644", "-rwxr-xr-x"]
        })
    }
}

/// A size as written: `250MB`, `1.5GB`, `200MiB`, `512kB`, or a number of bytes.
#[derive(Debug, Clone)]
pub struct ByteSizeText(pub String);

impl<'de> Deserialize<'de> for ByteSizeText {
    fn deserialize<D: serde::Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        Scalar::deserialize(deserializer).map(|Scalar(text)| ByteSizeText(text))
    }
}

impl JsonSchema for ByteSizeText {
    fn schema_name() -> Cow<'static, str> {
        "ByteSize".into()
    }

    fn json_schema(_: &mut SchemaGenerator) -> Schema {
        schemars::json_schema!({
            "description": "A size: `250MB`, `1.5GB`, `512kB` (decimal, as `docker images` shows sizes), `200MiB`, \
                            `1GiB` (binary), or a number of bytes.",
            "type": ["string", "integer"],
            "examples": ["250MB", "200MiB"]
        })
    }
}

/// The names from `images:` (or engine references) that a step uses: `image: { of: app }`,
/// `file: { image: app }`, `replace: { image: app-v2 }`.
pub fn image_named_by(step: &super::model::StepSpec) -> Option<&str> {
    use super::model::StepSpec;
    match step {
        StepSpec::Image(image) => Some(image.of.value.as_str()),
        StepSpec::File(file) => file.image.as_ref().map(|i| i.value.as_str()),
        StepSpec::Replace(replace) => Some(replace.image.value.as_str()),
        _ => None,
    }
}
