//! A scenario's `compose:`: in, the entry as written; out, a [`PlannedCompose`] with its paths resolved
//! and confined, plus the services the files name (read here only to check the steps' names: compose
//! itself resolves the files when the scenario runs).

use std::path::PathBuf;

use super::planner::{Planner, loc};
use super::{ImageRef, PlannedCompose, PlannedContainer};
use crate::compose::StackSource;
use crate::scenario::error::{Loc, ScenarioErrorKind};
use crate::scenario::model::*;

/// What the compose files say of their services, as far as can be read before compose runs.
pub(super) struct KnownServices {
    /// `None`: the files cannot be read now (a submission's, when an assignment is checked): any name a
    /// step gives is taken, and compose says at run time whether it exists.
    pub names: Option<Vec<String>>,
    /// Services whose published container ports could all be read, as stand-ins for the checks of
    /// `http` steps.
    pub stand_ins: Vec<PlannedContainer>,
}

impl Planner<'_> {
    pub(super) fn compose(&mut self, spec: &Spanned<ComposeSpec>) -> (Option<PlannedCompose>, KnownServices) {
        let c = &spec.value;
        let mut unknown = false;
        let mut files = Vec::new();
        for written in c.file.value.items() {
            match self.compose_path(written, loc(&c.file), false) {
                Some((path, certain)) => {
                    unknown |= !certain;
                    files.push(path);
                }
                None => {
                    unknown = true;
                    self.compose_refused = true;
                }
            }
        }
        if files.is_empty() && c.file.value.items().is_empty() {
            self.error(loc(&c.file), ScenarioErrorKind::Invalid("`file` names no compose file".into()));
        }
        let project_directory =
            c.project_directory.as_ref().and_then(|d| self.compose_path(&d.value, loc(d), true)).map(|(p, _)| p);
        let env_files = c
            .env_file
            .as_ref()
            .map(|files| {
                files
                    .value
                    .items()
                    .iter()
                    .filter_map(|f| self.compose_path(f, loc(files), false))
                    .map(|(p, _)| p)
                    .collect()
            })
            .unwrap_or_default();
        let mut env = Vec::new();
        for (key, value) in &c.env.0 {
            let value = self.var(&value.value.0, loc(value));
            env.push((key.clone(), value));
        }
        let read = if unknown { None } else { read_services(&files) };
        let names = read.as_ref().map(|services| services.iter().map(|(name, _)| name.clone()).collect::<Vec<_>>());
        let check_name = |planner: &mut Self, name: &Spanned<String>| {
            if let Some(known) = &names
                && !known.contains(&name.value)
            {
                planner.error(
                    loc(name),
                    ScenarioErrorKind::UnknownContainer { name: name.value.clone(), known: known.clone() },
                );
            }
        };
        let mut services = Vec::new();
        for service in c.services.iter().flatten() {
            check_name(self, service);
            services.push(service.value.clone());
        }
        let mut ready = Vec::new();
        for (service, spec) in &c.ready {
            let name = Spanned { value: service.clone(), referenced: spec.referenced };
            check_name(self, &name);
            if let Some(check) = self.ready(spec) {
                ready.push((service.clone(), check));
            }
        }
        let stand_ins = read
            .into_iter()
            .flatten()
            .filter_map(|(name, ports)| {
                Some(PlannedContainer {
                    name,
                    image: ImageRef::Engine(String::new()),
                    ports: ports?,
                    mounts: Vec::new(),
                    env: Vec::new(),
                    command: None,
                    entrypoint: None,
                    user: None,
                    workdir: None,
                    ready: None,
                    stop_signal: None,
                    stop_grace_period: None,
                })
            })
            .collect();
        let planned = PlannedCompose {
            at: self.at(loc(spec)),
            source: StackSource { files, project_directory, env_files, profiles: c.profiles.clone(), env },
            services,
            ready,
            roots: self.bind_roots().to_vec(),
        };
        (Some(planned), KnownServices { names, stand_ins })
    }

    /// A file or folder the stack names, and whether it is known now. Like a build context it may sit
    /// beside the scenario's folder but not outside the project; from a variable (`${SUBMISSION}/...`) it
    /// is the submission's, and its absence is the submission's failure when the scenario runs.
    fn compose_path(&mut self, written: &str, at: Option<Loc>, folder: bool) -> Option<(PathBuf, bool)> {
        let text = self.var(written, at);
        let from_variable = written.contains("${");
        let joined = self.folder().join(&text);
        if self.is_placeholder(&text) {
            return Some((joined, false));
        }
        let real = match joined.canonicalize() {
            Ok(real) => real,
            Err(_) if from_variable => return Some((joined, false)),
            Err(_) => {
                self.error(at, ScenarioErrorKind::MissingPath { path: self.shown(&text) });
                return None;
            }
        };
        if folder != real.is_dir() {
            let what = if folder { "a folder" } else { "a file" };
            self.error(at, ScenarioErrorKind::Invalid(format!("`{}` is not {what}", self.shown(&text))));
            return None;
        }
        if !from_variable && !self.in_project(&real) {
            let (project, found) = self.project_said();
            let what = if folder { "the project folder" } else { "the compose file" };
            self.error(
                at,
                ScenarioErrorKind::Invalid(format!(
                    "{what} `{text}` is outside the project `{project}` ({found}); give `--root DIR` to test a \
                     project elsewhere"
                )),
            );
            return None;
        }
        Some((real, true))
    }
}

/// Each service of the files and its published container ports (`None` when one cannot be read before
/// compose interpolates it); `None` when a file cannot be read or is not a compose file.
fn read_services(files: &[PathBuf]) -> Option<Vec<(String, Option<Vec<u16>>)>> {
    let mut services: Vec<(String, Option<Vec<u16>>)> = Vec::new();
    for file in files {
        let meta = std::fs::metadata(file).ok()?;
        if !meta.is_file() || meta.len() > 1 << 20 {
            return None;
        }
        let text = std::fs::read_to_string(file).ok()?;
        let model: serde_json::Value = serde_saphyr::from_str(&text).ok()?;
        let serde_json::Value::Object(found) = model.get("services")? else { return None };
        for (name, service) in found {
            let ports = match service.get("ports") {
                None => Some(Vec::new()),
                Some(serde_json::Value::Array(ports)) => ports.iter().map(container_port).collect(),
                Some(_) => None,
            };
            match services.iter_mut().find(|(n, _)| n == name) {
                // A later file overrides: its ports add to the earlier ones, as compose merges them.
                Some((_, known)) => {
                    *known = match (known.take(), ports) {
                        (Some(mut a), Some(b)) => {
                            a.extend(b);
                            Some(a)
                        }
                        _ => None,
                    }
                }
                None => services.push((name.clone(), ports)),
            }
        }
    }
    Some(services)
}

/// The container port of a `ports:` entry (`"8000:8000"`, `"127.0.0.1:8080:80/tcp"`, `8000`, or the long
/// form's `target`), when it is a plain number.
fn container_port(entry: &serde_json::Value) -> Option<u16> {
    match entry {
        serde_json::Value::Number(n) => n.as_u64().and_then(|n| u16::try_from(n).ok()),
        serde_json::Value::String(s) => {
            let spec = s.split('/').next()?;
            spec.rsplit(':').next()?.parse().ok()
        }
        serde_json::Value::Object(m) => match m.get("target")? {
            serde_json::Value::Number(n) => n.as_u64().and_then(|n| u16::try_from(n).ok()),
            serde_json::Value::String(s) => s.parse().ok(),
            _ => None,
        },
        _ => None,
    }
}

#[cfg(test)]
mod tests {
    use super::container_port;
    use serde_json::json;

    #[test]
    fn container_ports_are_read_from_every_form() {
        assert_eq!(container_port(&json!("8000:8000")), Some(8000));
        assert_eq!(container_port(&json!("127.0.0.1:8080:80/tcp")), Some(80));
        assert_eq!(container_port(&json!(5432)), Some(5432));
        assert_eq!(container_port(&json!({ "target": 80, "published": 8080 })), Some(80));
        assert_eq!(container_port(&json!("${PORT}")), None);
    }
}
