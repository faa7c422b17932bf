//! A scenario's containers: in, a container's entry in the file (and the images the file builds);
//! out, a [`PlannedContainer`]: its image, ports, mounts, environment, command, readiness check and stop
//! signal, each checked.

use std::collections::HashMap;
use std::sync::Arc;
use std::time::Duration;

use super::DEFAULT_READY_TIMEOUT;
use super::planner::{Planner, loc};
use super::{ImageRef, Mount, PlannedContainer, PlannedImage, Ready, ReadyCheck};
use crate::scenario::dialect::{OneOrMany, Words, parse_env_file};
use crate::scenario::error::{Loc, ScenarioErrorKind, did_you_mean};
use crate::scenario::model::*;

impl Planner<'_> {
    pub(super) fn container(
        &mut self,
        name: &str,
        spec: &Spanned<ContainerSpec>,
        images: &HashMap<String, Arc<PlannedImage>>,
    ) -> PlannedContainer {
        let c = &spec.value;
        // Containers reach each other by this name: one that is not a valid host name never resolves
        // (`wget: bad address`).
        let host_name_char = |ch: char| ch.is_ascii_alphanumeric() || matches!(ch, '-' | '_' | '.');
        if !name.chars().all(host_name_char) || name.starts_with(['-', '.']) || name.len() > 63 {
            self.warn(loc(spec), ScenarioErrorKind::NotAHostName { name: name.to_owned() });
        }
        let image = self.image_ref(&c.image, images);
        let mut ports = Vec::new();
        for port in &c.ports {
            let number = port.value.container;
            if number == 0 {
                self.error(loc(port), ScenarioErrorKind::Invalid("port 0 is not a port".into()));
            } else if ports.contains(&number) {
                self.error(loc(port), ScenarioErrorKind::Invalid(format!("port {number} is listed twice")));
            } else {
                ports.push(number);
            }
            if port.value.host_given && !self.host_ports_noted {
                self.host_ports_noted = true;
                self.warn(loc(port), ScenarioErrorKind::HostPortIgnored { container_port: number });
            }
        }
        let mounts = c.volumes.iter().filter_map(|v| self.mount(v)).collect();
        let mut env: Vec<(String, String)> = match &c.env_file {
            Some(files) => self.env_files(files),
            None => Vec::new(),
        };
        for (key, value) in &c.env.0 {
            let value = self.var(&value.value.0, loc(value));
            env.retain(|(k, _)| k != key);
            env.push((key.clone(), value));
        }
        let strings = |p: &mut Self, list: &Option<Spanned<Words>>| {
            list.as_ref().map(|l| l.value.0.iter().map(|a| p.var(a, loc(l))).collect::<Vec<_>>())
        };
        let command = strings(self, &c.command);
        let entrypoint = strings(self, &c.entrypoint);
        let user = c.user.as_ref().map(|u| self.var(&u.value, loc(u)));
        let workdir = c.workdir.as_ref().map(|w| self.var(&w.value, loc(w)));
        let ready = c.ready.as_ref().and_then(|r| self.ready(r));
        let stop_signal = c.stop_signal.as_ref().and_then(|s| self.stop_signal(s));
        let stop_grace_period = c.stop_grace_period.as_ref().map(|g| self.duration(&Some(g.clone()), Duration::ZERO));
        PlannedContainer {
            name: name.to_owned(),
            image,
            ports,
            mounts,
            env,
            command,
            entrypoint,
            user,
            workdir,
            ready,
            stop_signal,
            stop_grace_period,
        }
    }

    /// The image a name stands for: one of `images:`, or an engine reference. A plain name close to one in
    /// `images:` is refused as a typo (`ap:latest` names an engine image `ap`).
    pub(super) fn image_ref(
        &mut self,
        written: &Spanned<String>,
        images: &HashMap<String, Arc<PlannedImage>>,
    ) -> ImageRef {
        let image_text = self.var(&written.value, loc(written));
        match images.get(&image_text) {
            Some(built) => ImageRef::Built(built.clone()),
            None => {
                let known: Vec<String> = images.keys().cloned().collect();
                let looks_like_a_local_name = !image_text.contains([':', '/', '@']);
                if image_text.trim().is_empty() {
                    self.error(loc(written), ScenarioErrorKind::Invalid("the image name is empty".into()));
                } else if looks_like_a_local_name && did_you_mean(&image_text, &known).is_some() {
                    self.error(loc(written), ScenarioErrorKind::UnknownImage { name: image_text.clone(), known });
                }
                ImageRef::Engine(image_text)
            }
        }
    }

    /// A stop signal the engine will take, in its canonical form (`INT` -> `SIGINT`).
    fn stop_signal(&mut self, spec: &Spanned<String>) -> Option<String> {
        let text = self.var(&spec.value, loc(spec));
        match crate::scenario::signal::parse_signal(&text) {
            Ok(signal) => Some(signal),
            Err(reason) => {
                self.error(loc(spec), ScenarioErrorKind::InvalidSignal { text, reason });
                None
            }
        }
    }

    /// The variables of `env_file:` files, in order (a later file wins), read as compose reads them.
    fn env_files(&mut self, files: &Spanned<OneOrMany>) -> Vec<(String, String)> {
        let at = loc(files);
        let mut vars: Vec<(String, String)> = Vec::new();
        for written in files.value.items() {
            let text = self.var(written, at);
            let Some(path) = self.confined_path(&text, at) else { continue };
            // Confined like a bind mount; and read only when it is a file of reasonable size.
            let read = match std::fs::metadata(&path) {
                Ok(meta) if meta.is_file() && meta.len() <= 1 << 20 => {
                    std::fs::read_to_string(&path).map_err(|e| e.to_string()).and_then(|t| parse_env_file(&t))
                }
                Ok(_) => Err("it is not a regular file of at most 1 MiB".to_owned()),
                Err(e) => Err(e.to_string()),
            };
            match read {
                Ok(pairs) => {
                    for (key, value) in pairs {
                        vars.retain(|(k, _)| *k != key);
                        vars.push((key, value));
                    }
                }
                Err(e) => self.error(
                    at,
                    ScenarioErrorKind::Invalid(format!(
                        "the env file `{}` cannot be read as `KEY=VALUE` lines: {e}",
                        self.shown(&text)
                    )),
                ),
            }
        }
        vars
    }

    fn mount(&mut self, spec: &Spanned<String>) -> Option<Mount> {
        let at = loc(spec);
        let text = self.var(&spec.value, at);
        let mut parts = text.split(':');
        let (Some(source), Some(target)) = (parts.next(), parts.next()) else {
            self.error(at, ScenarioErrorKind::InvalidVolume(text.clone()));
            return None;
        };
        let read_only = match parts.next() {
            None | Some("rw") => false,
            Some("ro") => true,
            Some(_) => {
                self.error(at, ScenarioErrorKind::InvalidVolume(text.clone()));
                return None;
            }
        };
        if parts.next().is_some() || source.is_empty() || !target.starts_with('/') {
            self.error(at, ScenarioErrorKind::InvalidVolume(text.clone()));
            return None;
        }
        let target = target.to_owned();
        if source.starts_with('.') || source.starts_with('/') {
            let source = self.confined_path(source, at)?;
            Some(Mount::Bind { source, target, read_only })
        } else if source.chars().all(|c| c.is_ascii_alphanumeric() || matches!(c, '_' | '-' | '.')) {
            // `files:/srv` is a named volume, which starts empty: a folder of that name beside the file
            // suggests the author meant to mount it.
            if self.folder().join(source).is_dir() {
                self.warn(
                    at,
                    ScenarioErrorKind::VolumeShadowsFolder { name: source.to_owned(), target: target.clone() },
                );
            }
            Some(Mount::Volume { name: source.to_owned(), target, read_only })
        } else {
            self.error(at, ScenarioErrorKind::InvalidVolume(text.clone()));
            None
        }
    }

    /// A readiness check. Its port need not be published: one that is not is probed from inside the
    /// scenario's network.
    pub(super) fn ready(&mut self, spec: &Spanned<ReadySpec>) -> Option<Ready> {
        let r = &spec.value;
        let at = loc(spec);
        let mut checks = Vec::new();
        if let Some(http) = &r.http {
            if http.port.value == 0 {
                self.error(loc(&http.port), ScenarioErrorKind::Invalid("port 0 is not a port".into()));
            }
            checks.push(ReadyCheck::Http { port: http.port.value, path: http.path.clone(), status: http.status });
        }
        if let Some(log) = &r.log {
            checks.push(ReadyCheck::Log(self.var(log, at)));
        }
        if let Some(exec) = &r.exec {
            if exec.is_empty() {
                self.error(at, ScenarioErrorKind::Invalid("`exec` needs a command".into()));
            }
            checks.push(ReadyCheck::Exec(exec.iter().map(|a| self.var(a, at)).collect()));
        }
        if let Some(tcp) = &r.tcp {
            if tcp.value == 0 {
                self.error(loc(tcp), ScenarioErrorKind::Invalid("port 0 is not a port".into()));
            }
            checks.push(ReadyCheck::Tcp(tcp.value));
        }
        let timeout = self.duration(&r.timeout, DEFAULT_READY_TIMEOUT);
        if checks.len() != 1 {
            self.error(
                at,
                ScenarioErrorKind::Invalid("`ready:` takes exactly one of `http`, `log`, `exec`, `tcp`".into()),
            );
            return None;
        }
        Some(Ready { check: checks.remove(0), timeout, at: self.at(at) })
    }

    pub(super) fn require_port(&mut self, port: u16, at: Option<Loc>, ports: &[u16]) {
        if !ports.contains(&port) {
            self.error(at, ScenarioErrorKind::PortNotPublished { port });
        }
    }
}
