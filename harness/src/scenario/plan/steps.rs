//! A scenario's steps: in, a step's entry in the file and the scenario's containers (which are running
//! at that step); out, a [`PlannedStep`] with its checked expectations and its grading.

use std::collections::HashSet;
use std::time::Duration;

use super::planner::{Planner, loc};
use super::{
    Body, ExecStep, Grading, HttpExpect, HttpStep, JsonExpectation, LogsStep, PlannedContainer, PlannedStep, Step,
};
use super::{DEFAULT_EXEC_TIMEOUT, DEFAULT_HTTP_TIMEOUT, DEFAULT_STOP_WITHIN};
use crate::scenario::error::{Loc, ScenarioErrorKind};
use crate::scenario::model::*;

impl Planner<'_> {
    /// The container a step names, if the scenario has it; the error points at the name.
    pub(super) fn container_name(&mut self, name: &Spanned<String>, names: &[String]) -> Option<(String, Option<Loc>)> {
        let at = loc(name);
        if names.contains(&name.value) {
            return Some((name.value.clone(), at));
        }
        self.error(at, ScenarioErrorKind::UnknownContainer { name: name.value.clone(), known: names.to_vec() });
        None
    }

    /// Steps that talk to a container need it running at that point of the scenario (and not paused).
    fn require_running(&mut self, name: &str, at: Option<Loc>, running: &HashSet<String>, what: &str) {
        if self.refuse_paused_or_cut(name, at, what) {
            return;
        }
        if !running.contains(name) {
            self.error(
                at,
                ScenarioErrorKind::Invalid(format!(
                    "`{name}` is stopped at this step: `{what}` needs it running (add `- start: {name}` before)"
                )),
            );
        }
    }

    pub(super) fn step(
        &mut self,
        spec: &Spanned<StepEntry>,
        containers: &[PlannedContainer],
        names: &[String],
        running: &mut HashSet<String>,
    ) -> Option<PlannedStep> {
        let at = loc(spec);
        let Some(kind) = &spec.value.kind else {
            self.error(
                at,
                ScenarioErrorKind::Invalid(
                    "this step names no step kind: give one of `http`, `exec`, `logs`, `restart`, `recreate`, \
                     `start`, `stop`, `sleep`, `image`, `file`, `replace`, `kill`, `pause`, `unpause`, `disconnect`, \
                     `connect`"
                        .into(),
                ),
            );
            return None;
        };
        let step = match kind {
            StepSpec::Http(h) => {
                let container = match &h.container {
                    Some(c) => {
                        let (c, _) = self.container_name(c, names)?;
                        if let Some(planned) = containers.iter().find(|p| p.name == c) {
                            self.require_port(h.port.value, loc(&h.port), &planned.ports);
                        }
                        c
                    }
                    None => {
                        let publishing: Vec<&str> = containers
                            .iter()
                            .filter(|c| c.ports.contains(&h.port.value))
                            .map(|c| c.name.as_str())
                            .collect();
                        match publishing.as_slice() {
                            [one] => (*one).to_owned(),
                            // Reported, and the rest of the step is still checked.
                            [] => {
                                self.error(loc(&h.port), ScenarioErrorKind::PortNotPublished { port: h.port.value });
                                String::new()
                            }
                            many => {
                                let containers = many.join(", ");
                                self.error(at, ScenarioErrorKind::AmbiguousPort { port: h.port.value, containers });
                                String::new()
                            }
                        }
                    }
                };
                if !container.is_empty() {
                    self.require_running(&container, at, running, "http");
                }
                let method = match &h.method {
                    Some(m) => {
                        let upper = m.value.trim().to_ascii_uppercase();
                        if upper.is_empty() || !upper.chars().all(|c| c.is_ascii_alphabetic()) {
                            self.error(loc(m), ScenarioErrorKind::InvalidMethod(m.value.clone()));
                        }
                        upper
                    }
                    None => "GET".to_owned(),
                };
                let body = match (&h.json, &h.body) {
                    (Some(_), Some(_)) => {
                        self.error(at, ScenarioErrorKind::Invalid("give either `json` or `body`, not both".into()));
                        None
                    }
                    (Some(json), None) => Some(Body::Json(json.clone())),
                    (None, Some(raw)) => Some(Body::Raw(self.var(raw, at))),
                    (None, None) => None,
                };
                let path = self.var(&h.path, at);
                if !path.starts_with('/') {
                    self.error(at, ScenarioErrorKind::Invalid(format!("the path `{path}` must start with `/`")));
                }
                let headers = h.headers.iter().map(|(k, v)| (k.clone(), self.var(v, at))).collect();
                let expect = self.http_expect(&h.expect, at);
                Step::Http(HttpStep {
                    container,
                    port: h.port.value,
                    method,
                    path,
                    headers,
                    body,
                    timeout: self.duration(&h.timeout, DEFAULT_HTTP_TIMEOUT),
                    expect,
                })
            }
            StepSpec::Exec(e) => {
                let (container, container_at) = self.container_name(&e.container, names)?;
                self.require_running(&container, container_at, running, "exec");
                if e.cmd.value.is_empty() {
                    self.error(loc(&e.cmd), ScenarioErrorKind::Invalid("`cmd` needs at least the program".into()));
                }
                let cmd = e.cmd.value.iter().map(|a| self.var(a, loc(&e.cmd))).collect();
                Step::Exec(ExecStep {
                    container,
                    cmd,
                    user: self.var_opt(&e.user, at),
                    timeout: self.duration(&e.timeout, DEFAULT_EXEC_TIMEOUT),
                    exit: e.expect.exit.unwrap_or(0),
                    stdout_contains: self.var_opt(&e.expect.stdout_contains, at),
                    stderr_contains: self.var_opt(&e.expect.stderr_contains, at),
                })
            }
            StepSpec::Logs(l) => {
                let (container, _) = self.container_name(&l.container, names)?;
                if l.expect.contains.is_none() && l.expect.not_contains.is_none() {
                    self.error(
                        at,
                        ScenarioErrorKind::Invalid("`logs` needs `expect: { contains: ... }` or `not_contains`".into()),
                    );
                }
                Step::Logs(LogsStep {
                    container,
                    within: self.duration(&l.within, Duration::ZERO),
                    contains: self.var_opt(&l.expect.contains, at),
                    not_contains: self.var_opt(&l.expect.not_contains, at),
                })
            }
            StepSpec::Restart(c) | StepSpec::Recreate(c) | StepSpec::Start(c) => {
                let (c, c_at) = self.container_name(c, names)?;
                match kind {
                    StepSpec::Restart(_) => {
                        self.require_running(&c, c_at, running, "restart");
                        running.insert(c.clone());
                        Step::Restart(c)
                    }
                    StepSpec::Recreate(_) => {
                        self.lifecycle_done(&c, c_at, "recreate");
                        running.insert(c.clone());
                        Step::Recreate(c)
                    }
                    _ => {
                        if running.contains(&c) {
                            self.already_running(&c, c_at);
                        } else {
                            self.refuse_paused_or_cut(&c, c_at, "start");
                        }
                        running.insert(c.clone());
                        Step::Start(c)
                    }
                }
            }
            StepSpec::Stop(s) => {
                let (container, c_at) = self.container_name(&s.container, names)?;
                if !running.remove(&container) {
                    self.error(
                        c_at,
                        ScenarioErrorKind::Invalid(format!("`{container}` is already stopped at this step")),
                    );
                }
                self.lifecycle_done(&container, c_at, "stop");
                Step::Stop { container, within: self.duration(&s.within, DEFAULT_STOP_WITHIN) }
            }
            StepSpec::Sleep(d) => Step::Sleep(self.duration(&Some(d.clone()), Duration::ZERO)),
            StepSpec::Image(_)
            | StepSpec::File(_)
            | StepSpec::Replace(_)
            | StepSpec::Kill(_)
            | StepSpec::Pause(_)
            | StepSpec::Unpause(_)
            | StepSpec::Disconnect(_)
            | StepSpec::Connect(_) => self.release_step(kind, names, running, at)?,
        };
        let g = &spec.value.grading;
        let name = match &g.name {
            Some(n) if n.value.trim().is_empty() => {
                self.error(loc(n), ScenarioErrorKind::Invalid("a step's `name` cannot be empty".into()));
                step.summary()
            }
            Some(n) => self.var(n.value.trim(), loc(n)),
            None => step.summary(),
        };
        let grading = Grading {
            name,
            points: g.points.as_ref().map_or(0, |p| p.value),
            feedback: g.feedback.as_ref().map(|f| self.var(f, at)),
            hidden: g.hidden,
        };
        Some(PlannedStep { at: self.at(at), step, grading })
    }

    fn http_expect(&mut self, e: &HttpExpectSpec, at: Option<Loc>) -> HttpExpect {
        if let Some(status) = e.status
            && !(100..=599).contains(&status)
        {
            self.error(at, ScenarioErrorKind::Invalid(format!("{status} is not an HTTP status")));
        }
        let body_regex = e.body_regex.as_ref().and_then(|r| {
            let text = self.var(&r.value, loc(r));
            match regex::Regex::new(&text) {
                Ok(re) => Some(re),
                Err(err) => {
                    self.error(loc(r), ScenarioErrorKind::InvalidRegex(err.to_string()));
                    None
                }
            }
        });
        let mut json = Vec::new();
        for (path_text, value) in &e.json.0 {
            let text = path_text.value.clone();
            match serde_json_path::JsonPath::parse(&text) {
                Ok(path) => json.push(JsonExpectation { path_text: text, path, value: value.clone() }),
                Err(err) => self.error(
                    loc(path_text).or(at),
                    ScenarioErrorKind::InvalidJsonPath { path: text, reason: err.to_string() },
                ),
            }
        }
        HttpExpect {
            status: e.status,
            headers: e.headers.iter().map(|(k, v)| (k.to_ascii_lowercase(), self.var(v, at))).collect(),
            body_contains: self.var_opt(&e.body_contains, at),
            body_regex,
            json,
        }
    }
}
