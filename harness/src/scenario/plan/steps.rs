//! A scenario's steps: in, a step's entry in the file and the scenario's containers (which are running
//! at that step); out, a [`PlannedStep`] with its checked expectations and its grading.

use std::collections::HashSet;
use std::time::Duration;

use super::http::CaptureFrom;
use super::planner::{Planner, StackState, loc};
use super::{DEFAULT_EXEC_TIMEOUT, DEFAULT_STOP_WITHIN};
use super::{ExecStep, Grading, LogsStep, PlannedContainer, PlannedStep, Step};
use crate::scenario::dialect::StopForm;
use crate::scenario::error::{Loc, ScenarioErrorKind};
use crate::scenario::model::*;

impl Planner<'_> {
    /// The container a step names, if the scenario has it; the error points at the name.
    pub(super) fn container_name(&mut self, name: &Spanned<String>, names: &[String]) -> Option<(String, Option<Loc>)> {
        let at = loc(name);
        // A name the scenario does not know may be a service of a stack that cannot be read yet.
        if names.contains(&name.value) || self.open_names {
            return Some((name.value.clone(), at));
        }
        self.error(at, ScenarioErrorKind::UnknownContainer { name: name.value.clone(), known: names.to_vec() });
        None
    }

    /// Steps that talk to a container need it running at that point of the scenario (and not paused).
    pub(super) fn require_running(&mut self, name: &str, at: Option<Loc>, running: &HashSet<String>, what: &str) {
        if self.refuse_paused_or_cut(name, at, what) {
            return;
        }
        let unknown_service = self.open_names && !self.services.iter().any(|s| s == name) && !running.contains(name);
        let service = unknown_service || self.services.iter().any(|s| s == name);
        if service && self.stack == Some(StackState::Down) {
            self.error(
                at,
                ScenarioErrorKind::Invalid(format!(
                    "the stack is down at this step: `{what}` needs `- up: {{}}` before"
                )),
            );
            return;
        }
        if !running.contains(name) && !unknown_service {
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
                     `connect`, `down`, `up`"
                        .into(),
                ),
            );
            return None;
        };
        let step = match kind {
            StepSpec::Http(h) => self.http_step(h, containers, names, running, at)?,
            StepSpec::Exec(e) => {
                let (container, container_at) = self.container_name(&e.container, names)?;
                self.require_running(&container, container_at, running, "exec");
                if e.cmd.value.is_empty() {
                    self.error(loc(&e.cmd), ScenarioErrorKind::Invalid("`cmd` needs at least the program".into()));
                }
                let cmd = e.cmd.value.iter().map(|a| self.text(a, loc(&e.cmd))).collect();
                Step::Exec(ExecStep {
                    container,
                    cmd,
                    user: self.var_opt(&e.user, at),
                    timeout: self.duration(&e.timeout, DEFAULT_EXEC_TIMEOUT),
                    exit: e.expect.exit.unwrap_or(0),
                    stdout_contains: self.text_opt(&e.expect.stdout_contains, at),
                    stderr_contains: self.text_opt(&e.expect.stderr_contains, at),
                    save: self.captures(&e.save, CaptureFrom::Command),
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
                    contains: self.text_opt(&l.expect.contains, at),
                    not_contains: self.text_opt(&l.expect.not_contains, at),
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
            StepSpec::Stop(form) => {
                let (name, within) = match &form.value {
                    StopForm::Text(name) => (Spanned { value: name.clone(), referenced: form.referenced }, None),
                    StopForm::Full(s) => (s.container.clone(), s.within.clone()),
                };
                let (container, c_at) = self.container_name(&name, names)?;
                if !running.remove(&container) {
                    self.error(
                        c_at,
                        ScenarioErrorKind::Invalid(format!("`{container}` is already stopped at this step")),
                    );
                }
                self.lifecycle_done(&container, c_at, "stop");
                Step::Stop { container, within: self.duration(&within, DEFAULT_STOP_WITHIN) }
            }
            StepSpec::Sleep(d) => Step::Sleep(self.duration(&Some(d.clone()), Duration::ZERO)),
            StepSpec::Down(down) => {
                match self.stack {
                    None => self.error(
                        at,
                        ScenarioErrorKind::Invalid(
                            "`down` takes down the scenario's compose stack, and it has none (add `compose:`)".into(),
                        ),
                    ),
                    Some(StackState::Down) => {
                        self.error(at, ScenarioErrorKind::Invalid("the stack is already down at this step".into()))
                    }
                    Some(StackState::Up) => {}
                }
                self.stack = self.stack.map(|_| StackState::Down);
                for service in &self.services {
                    running.remove(service);
                }
                Step::Down { volumes: down.volumes }
            }
            StepSpec::Up(_) => {
                match self.stack {
                    None => self.error(
                        at,
                        ScenarioErrorKind::Invalid(
                            "`up` brings back the scenario's compose stack, and it has none (add `compose:`)".into(),
                        ),
                    ),
                    Some(StackState::Up) => self.error(
                        at,
                        ScenarioErrorKind::Invalid(
                            "the stack is already up at this step: `up` follows a `down`".into(),
                        ),
                    ),
                    Some(StackState::Down) => {}
                }
                self.stack = self.stack.map(|_| StackState::Up);
                running.extend(self.services.iter().cloned());
                Step::Up
            }
            StepSpec::Replace(_) | StepSpec::Disconnect(_) | StepSpec::Connect(_) if self.names_a_service(kind) => {
                self.error(
                    at,
                    ScenarioErrorKind::Invalid(format!(
                        "`{}` works on the scenario's own containers; a compose service changes in its compose file",
                        kind_word(kind)
                    )),
                );
                return None;
            }
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
}

impl Planner<'_> {
    /// Whether a `replace`, `disconnect` or `connect` names a compose service (or, when the services are
    /// not known yet, anything but a container of the scenario).
    fn names_a_service(&self, kind: &StepSpec) -> bool {
        let name = match kind {
            StepSpec::Replace(r) => &r.container.value,
            StepSpec::Disconnect(c) | StepSpec::Connect(c) => &c.value,
            _ => return false,
        };
        self.services.iter().any(|s| s == name) || (self.open_names && !self.tracked_has(name))
    }
}

fn kind_word(kind: &StepSpec) -> &'static str {
    match kind {
        StepSpec::Replace(_) => "replace",
        StepSpec::Disconnect(_) => "disconnect",
        _ => "connect",
    }
}
