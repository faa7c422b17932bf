//! The forms people bring from `docker run` and compose, read where their meaning is clear: a command as
//! one string (split as compose splits it), `env:` as a list of `KEY=VALUE`, `ports: ["8000:8000"]`,
//! `stop: web`, `build: ./dir`. Each becomes the same model value as seatrial's own form.

use std::borrow::Cow;

use indexmap::IndexMap;
use schemars::{JsonSchema, Schema, SchemaGenerator};
use serde::Deserialize;
use serde::de::value::{MapAccessDeserializer, SeqAccessDeserializer};

use super::model::{BuildSpec, Scalar, Spanned, StopStepSpec};

/// Errors of ours raised while the YAML is read start with this, so that the error mapping shows them as
/// they are (the library's own messages are translated).
pub const OWN_MESSAGE: &str = "seatrial: ";

fn own<E: serde::de::Error>(message: String) -> E {
    E::custom(format!("{OWN_MESSAGE}{message}"))
}

/// A command: a list of words, or one string split into words as a shell would (compose's rule; no shell
/// runs it: write `[sh, -c, "..."]` for one).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Words(pub Vec<String>);

impl<'de> Deserialize<'de> for Words {
    fn deserialize<D: serde::Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        struct WordsVisitor;
        impl<'de> serde::de::Visitor<'de> for WordsVisitor {
            type Value = Words;
            fn expecting(&self, f: &mut std::fmt::Formatter) -> std::fmt::Result {
                f.write_str("a command: a list of words, or one string")
            }
            fn visit_str<E: serde::de::Error>(self, v: &str) -> Result<Words, E> {
                shell_words::split(v).map(Words).map_err(|_| {
                    own(format!(
                        "the command `{v}` has a quote that is never closed: close it, or write the command as a list"
                    ))
                })
            }
            fn visit_seq<A: serde::de::SeqAccess<'de>>(self, seq: A) -> Result<Words, A::Error> {
                let words = Vec::<Scalar>::deserialize(SeqAccessDeserializer::new(seq))?;
                Ok(Words(words.into_iter().map(|w| w.0).collect()))
            }
        }
        deserializer.deserialize_any(WordsVisitor)
    }
}

impl JsonSchema for Words {
    fn schema_name() -> Cow<'static, str> {
        "Command".into()
    }

    fn json_schema(_: &mut SchemaGenerator) -> Schema {
        schemars::json_schema!({
            "description": "A command: a list of words (`[python, app.py]`), or one string split as a shell would.",
            "anyOf": [
                { "type": "string" },
                { "type": "array", "items": { "type": ["string", "number"] } }
            ]
        })
    }
}

/// Environment variables: a mapping, or a list of `KEY=VALUE` as compose and `docker run -e` write them.
/// A bare `KEY` takes the value of `KEY` from seatrial's own environment, as compose does (empty when unset).
#[derive(Debug, Default)]
pub struct EnvVars(pub IndexMap<String, Spanned<Scalar>>);

impl<'de> Deserialize<'de> for EnvVars {
    fn deserialize<D: serde::Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        struct EnvVisitor;
        impl<'de> serde::de::Visitor<'de> for EnvVisitor {
            type Value = EnvVars;
            fn expecting(&self, f: &mut std::fmt::Formatter) -> std::fmt::Result {
                f.write_str("variables as a mapping, or a list of KEY=VALUE")
            }
            fn visit_map<A: serde::de::MapAccess<'de>>(self, map: A) -> Result<EnvVars, A::Error> {
                Ok(EnvVars(IndexMap::deserialize(MapAccessDeserializer::new(map))?))
            }
            fn visit_seq<A: serde::de::SeqAccess<'de>>(self, seq: A) -> Result<EnvVars, A::Error> {
                let items = Vec::<Spanned<String>>::deserialize(SeqAccessDeserializer::new(seq))?;
                let mut vars = IndexMap::new();
                for item in items {
                    let (key, value) = match item.value.split_once('=') {
                        Some((key, value)) => (key.trim().to_owned(), value.to_owned()),
                        // Compose passes a bare `KEY` from its own environment; unset, it is empty here.
                        None => (item.value.trim().to_owned(), format!("${{{}:-}}", item.value.trim())),
                    };
                    if key.is_empty() || key.contains(char::is_whitespace) {
                        return Err(own(format!(
                            "`{}` is not `KEY=VALUE`: a variable's name comes first, without spaces",
                            item.value
                        )));
                    }
                    vars.insert(key, Spanned { value: Scalar(value), referenced: item.referenced });
                }
                Ok(EnvVars(vars))
            }
        }
        deserializer.deserialize_any(EnvVisitor)
    }
}

impl JsonSchema for EnvVars {
    fn schema_name() -> Cow<'static, str> {
        "Environment".into()
    }

    fn json_schema(generator: &mut SchemaGenerator) -> Schema {
        let scalar = generator.subschema_for::<Scalar>();
        schemars::json_schema!({
            "description": "Variables by name (`{ DEBUG: \"0\" }`), or a list of `KEY=VALUE` (a bare `KEY` takes its value from seatrial's environment).",
            "anyOf": [
                { "type": "object", "additionalProperties": scalar },
                { "type": "array", "items": { "type": "string" } }
            ]
        })
    }
}

/// A published port as written: a container port (`8000`), or compose's and `docker run -p`'s forms
/// (`"8000:8000"`, `"127.0.0.1:8080:8000"`, `"8000/tcp"`), of which seatrial uses the container port:
/// it publishes every port on 127.0.0.1 at a free host port itself.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct PortSpec {
    pub container: u16,
    /// The form gave a host port, which seatrial does not use (said once, as a warning).
    pub host_given: bool,
}

impl PortSpec {
    /// Reads compose's short syntax; an error says what is wrong with it.
    pub fn parse(text: &str) -> Result<PortSpec, String> {
        let (ports, protocol) = match text.split_once('/') {
            Some((ports, protocol)) => (ports, Some(protocol)),
            None => (text, None),
        };
        if let Some(protocol) = protocol
            && !protocol.eq_ignore_ascii_case("tcp")
        {
            return Err(format!("`{text}` is a {protocol} port: seatrial checks TCP ports"));
        }
        let parts: Vec<&str> = ports.rsplitn(2, ':').collect();
        let container = parts[0].trim();
        if container.contains('-') {
            return Err(format!("`{text}` is a range of ports: list each container port (`[8000, 8001]`)"));
        }
        let container: u16 = container
            .parse()
            .ok()
            .filter(|p| *p > 0)
            .ok_or_else(|| format!("`{text}` does not end with a container port (a number from 1 to 65535)"))?;
        Ok(PortSpec { container, host_given: parts.len() > 1 })
    }
}

impl<'de> Deserialize<'de> for PortSpec {
    fn deserialize<D: serde::Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        struct PortVisitor;
        impl serde::de::Visitor<'_> for PortVisitor {
            type Value = PortSpec;
            fn expecting(&self, f: &mut std::fmt::Formatter) -> std::fmt::Result {
                f.write_str("a container port")
            }
            fn visit_u64<E: serde::de::Error>(self, v: u64) -> Result<PortSpec, E> {
                let container = u16::try_from(v).map_err(|_| own(format!("{v} is not a port (1 to 65535)")))?;
                Ok(PortSpec { container, host_given: false })
            }
            fn visit_i64<E: serde::de::Error>(self, v: i64) -> Result<PortSpec, E> {
                u64::try_from(v)
                    .map_err(|_| own(format!("{v} is not a port (1 to 65535)")))
                    .and_then(|v| self.visit_u64(v))
            }
            fn visit_str<E: serde::de::Error>(self, v: &str) -> Result<PortSpec, E> {
                PortSpec::parse(v).map_err(own)
            }
        }
        deserializer.deserialize_any(PortVisitor)
    }
}

impl JsonSchema for PortSpec {
    fn schema_name() -> Cow<'static, str> {
        "Port".into()
    }

    fn json_schema(_: &mut SchemaGenerator) -> Schema {
        schemars::json_schema!({
            "description": "A container port (`8000`), or compose's `\"8000:8000\"` / `\"8000/tcp\"`, of which the container port is used.",
            "anyOf": [
                { "type": "integer", "minimum": 1, "maximum": 65535 },
                { "type": "string", "pattern": "^([0-9.]+:)?([0-9]+:)?[0-9]+(/[tT][cC][pP])?$" }
            ]
        })
    }
}

/// A name alone, or the whole mapping: `stop: web` or `stop: { container: web, within: 5s }`;
/// `build: ./app` or `build: { context: ./app, ... }` (compose's short forms).
#[derive(Debug)]
pub enum TextOr<T> {
    Text(String),
    Full(T),
}

/// `stop:`: the container's name (stopped with the default `within`), or the whole step.
pub type StopForm = TextOr<StopStepSpec>;
/// `build:`: the context folder, or the whole build.
pub type BuildForm = TextOr<Box<BuildSpec>>;

impl<'de, T: Deserialize<'de>> Deserialize<'de> for TextOr<T> {
    fn deserialize<D: serde::Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        struct TextOrVisitor<T>(std::marker::PhantomData<T>);
        impl<'de, T: Deserialize<'de>> serde::de::Visitor<'de> for TextOrVisitor<T> {
            type Value = TextOr<T>;
            fn expecting(&self, f: &mut std::fmt::Formatter) -> std::fmt::Result {
                f.write_str("a name, or a mapping")
            }
            fn visit_str<E: serde::de::Error>(self, v: &str) -> Result<TextOr<T>, E> {
                Ok(TextOr::Text(v.to_owned()))
            }
            fn visit_map<A: serde::de::MapAccess<'de>>(self, map: A) -> Result<TextOr<T>, A::Error> {
                Ok(TextOr::Full(T::deserialize(MapAccessDeserializer::new(map))?))
            }
        }
        deserializer.deserialize_any(TextOrVisitor(std::marker::PhantomData))
    }
}

impl<T: JsonSchema> JsonSchema for TextOr<T> {
    fn schema_name() -> Cow<'static, str> {
        format!("TextOr{}", T::schema_name()).into()
    }

    fn json_schema(generator: &mut SchemaGenerator) -> Schema {
        let full = generator.subschema_for::<T>();
        schemars::json_schema!({ "anyOf": [{ "type": "string" }, full] })
    }
}

/// One value or a list of them (`env_file: .env` or `env_file: [.env, .env.test]`).
#[derive(Debug, Clone, JsonSchema)]
#[serde(untagged)]
pub enum OneOrMany {
    One(String),
    Many(Vec<String>),
}

impl OneOrMany {
    pub fn items(&self) -> Vec<&str> {
        match self {
            OneOrMany::One(one) => vec![one.as_str()],
            OneOrMany::Many(many) => many.iter().map(String::as_str).collect(),
        }
    }
}

impl<'de> Deserialize<'de> for OneOrMany {
    fn deserialize<D: serde::Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        struct OneOrManyVisitor;
        impl<'de> serde::de::Visitor<'de> for OneOrManyVisitor {
            type Value = OneOrMany;
            fn expecting(&self, f: &mut std::fmt::Formatter) -> std::fmt::Result {
                f.write_str("a path, or a list of paths")
            }
            fn visit_str<E: serde::de::Error>(self, v: &str) -> Result<OneOrMany, E> {
                Ok(OneOrMany::One(v.to_owned()))
            }
            fn visit_seq<A: serde::de::SeqAccess<'de>>(self, seq: A) -> Result<OneOrMany, A::Error> {
                Ok(OneOrMany::Many(Vec::deserialize(SeqAccessDeserializer::new(seq))?))
            }
        }
        deserializer.deserialize_any(OneOrManyVisitor)
    }
}

/// The variables of an env file as compose reads one: `KEY=VALUE` lines, `#` comments and blank lines, an
/// optional `export `, values in single quotes (as written) or double quotes (`\n` escapes), unquoted
/// values trimmed and cut at ` #`. (dotenvy refuses unquoted spaces, which compose accepts.)
pub fn parse_env_file(text: &str) -> Result<Vec<(String, String)>, String> {
    let mut vars = Vec::new();
    for (number, line) in text.lines().enumerate() {
        let line = line.trim();
        if line.is_empty() || line.starts_with('#') {
            continue;
        }
        let line = line.strip_prefix("export ").unwrap_or(line);
        let Some((key, value)) = line.split_once('=') else {
            return Err(format!("line {} is not `KEY=VALUE`: `{line}`", number + 1));
        };
        let key = key.trim();
        if key.is_empty() || key.contains(char::is_whitespace) {
            return Err(format!("line {} has no variable name before `=`", number + 1));
        }
        let value = value.trim();
        let value = if let Some(quoted) = value.strip_prefix('\'') {
            quoted
                .split_once('\'')
                .map(|(v, _)| v.to_owned())
                .ok_or(format!("line {}: a `'` is never closed", number + 1))?
        } else if let Some(quoted) = value.strip_prefix('"') {
            let (v, _) = quoted.split_once('"').ok_or(format!("line {}: a `\"` is never closed", number + 1))?;
            v.replace("\\n", "\n")
        } else {
            value.split(" #").next().unwrap_or_default().trim_end().to_owned()
        };
        vars.push((key.to_owned(), value));
    }
    Ok(vars)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn reads_env_files_as_compose_does() {
        let text = "# comment\nA=hello world\nexport B='x # y'\nC=\"one\\ntwo\"\nD=v # note\n\nE=\n";
        let vars = parse_env_file(text).unwrap();
        let expected: Vec<(String, String)> =
            [("A", "hello world"), ("B", "x # y"), ("C", "one\ntwo"), ("D", "v"), ("E", "")]
                .iter()
                .map(|(k, v)| ((*k).to_owned(), (*v).to_owned()))
                .collect();
        assert_eq!(vars, expected);
        assert!(parse_env_file("NOEQUALS\n").unwrap_err().contains("line 1"));
    }

    #[test]
    fn reads_compose_port_forms() {
        let port = |text| PortSpec::parse(text);
        assert_eq!(port("8000"), Ok(PortSpec { container: 8000, host_given: false }));
        assert_eq!(port("8080:8000"), Ok(PortSpec { container: 8000, host_given: true }));
        assert_eq!(port("127.0.0.1:8080:8000/tcp"), Ok(PortSpec { container: 8000, host_given: true }));
        assert_eq!(port("8000/tcp"), Ok(PortSpec { container: 8000, host_given: false }));
        assert!(port("53/udp").unwrap_err().contains("udp port"));
        assert!(port("8000-8001").unwrap_err().contains("range"));
        assert!(port("web").unwrap_err().contains("container port"));
    }
}
