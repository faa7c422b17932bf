//! The release steps (`replace`, `kill`, `pause`, `unpause`, `disconnect`, `connect`) and the state they
//! leave each container in: in, a step's entry and the state so far; out, the planned [`Step`], with every
//! step refused that the container's state at that point would make fail (a paused container runs no
//! `exec`, a disconnected one answers no `http` through its published port).

use std::collections::{HashMap, HashSet};

use super::DEFAULT_KILL_WITHIN;
use super::planner::{Planner, loc};
use super::{ImageRef, PlannedContainer, ReadyCheck, Step};
use crate::scenario::error::{Loc, ScenarioErrorKind, did_you_mean};
use crate::scenario::model::*;

/// What the release steps did so far in a scenario, step by step. Whether a container runs is the
/// `running` set the steps share; a paused container still counts as running there, as the engine
/// says it is (`State.Running`), and is in `paused` too.
#[derive(Debug, Default)]
pub(in crate::scenario::plan) struct Tracked {
    paused: HashSet<String>,
    disconnected: HashSet<String>,
    /// The image each container runs now: a `replace` changes it.
    images: HashMap<String, ImageRef>,
    /// Containers whose `ready:` check goes through a published port (`http`, `tcp`).
    ready_by_port: HashSet<String>,
}

impl Tracked {
    pub(super) fn new(containers: &[PlannedContainer]) -> Tracked {
        Tracked {
            images: containers.iter().map(|c| (c.name.clone(), c.image.clone())).collect(),
            ready_by_port: containers
                .iter()
                .filter(|c| {
                    c.ready.as_ref().is_some_and(|r| matches!(r.check, ReadyCheck::Http { .. } | ReadyCheck::Tcp(_)))
                })
                .map(|c| c.name.clone())
                .collect(),
            ..Tracked::default()
        }
    }

    pub(super) fn image_of(&self, container: &str) -> Option<&ImageRef> {
        self.images.get(container)
    }
}

impl Planner<'_> {
    /// Whether `name` is a container the steps so far know (not a service that cannot be read yet).
    pub(super) fn tracked_has(&self, name: &str) -> bool {
        self.tracked.images.contains_key(name)
    }

    /// Why a step that needs `name` running cannot have it at this point, beyond its being stopped: it is
    /// paused, or (for `what` that reaches it through a published port) disconnected. `true` when reported.
    pub(super) fn refuse_paused_or_cut(&mut self, name: &str, at: Option<Loc>, what: &str) -> bool {
        if self.tracked.paused.contains(name) {
            self.error(
                at,
                ScenarioErrorKind::Invalid(format!(
                    "`{name}` is paused at this step: `{what}` needs it running (add `- unpause: {name}` before)"
                )),
            );
            return true;
        }
        let through_port = match what {
            "http" => true,
            "restart" | "start" => self.tracked.ready_by_port.contains(name),
            _ => false,
        };
        if through_port && self.tracked.disconnected.contains(name) {
            let why = if what == "http" {
                "`http` reaches it through a published port, which it has only on the network".to_owned()
            } else {
                format!(
                    "`{what}` waits for its `ready:` check through a published port, which it has only on the network"
                )
            };
            self.error(
                at,
                ScenarioErrorKind::Invalid(format!(
                    "`{name}` is disconnected at this step: {why} (add `- connect: {name}` before)"
                )),
            );
            return true;
        }
        false
    }

    /// `start` of a container that runs already: paused says more than running.
    pub(super) fn already_running(&mut self, name: &str, at: Option<Loc>) {
        let message = if self.tracked.paused.contains(name) {
            format!("`{name}` is paused at this step, not stopped: `unpause` it instead")
        } else {
            format!("`{name}` is already running at this step")
        };
        self.error(at, ScenarioErrorKind::Invalid(message));
    }

    /// What a lifecycle step of before (`restart`, `recreate`, `stop`, `start`) does to the release state:
    /// a stop thaws a paused container (the engine stops it all the same), a re-creation makes a new one,
    /// not paused and on the network. `recreate` of a paused container is refused.
    pub(super) fn lifecycle_done(&mut self, name: &str, at: Option<Loc>, what: &str) {
        match what {
            "recreate" => {
                if self.tracked.paused.contains(name) {
                    self.refuse_paused_or_cut(name, at, what);
                }
                self.tracked.paused.remove(name);
                self.tracked.disconnected.remove(name);
            }
            "stop" => {
                self.tracked.paused.remove(name);
            }
            _ => {}
        }
    }

    pub(super) fn release_step(
        &mut self,
        kind: &StepSpec,
        names: &[String],
        running: &mut HashSet<String>,
        at: Option<Loc>,
    ) -> Option<Step> {
        match kind {
            StepSpec::Replace(r) => {
                let (container, c_at) = self.container_name(&r.container, names)?;
                let images = self.images.clone();
                let image = self.image_ref(&r.image, &images);
                // A refused step leaves the state as it was, so that one mistake is reported once.
                if self.refuse_paused(&container, c_at, "replace") {
                    return Some(Step::Replace { container, image });
                }
                running.insert(container.clone());
                self.tracked.disconnected.remove(&container);
                self.tracked.images.insert(container.clone(), image.clone());
                Some(Step::Replace { container, image })
            }
            StepSpec::Kill(k) => {
                let (container, c_at) = self.container_name(&k.container, names)?;
                let signal = match &k.signal {
                    Some(written) => self.signal(written),
                    None => "SIGKILL".to_owned(),
                };
                let within = self.duration(&k.within, DEFAULT_KILL_WITHIN);
                let step = Step::Kill { container: container.clone(), signal, within };
                if self.refuse_paused(&container, c_at, "kill") {
                    return Some(step);
                }
                if !running.remove(&container) {
                    let why = format!(
                        "`{container}` is stopped at this step: `kill` needs it running (add `- start: {container}` before)"
                    );
                    self.error(c_at, ScenarioErrorKind::Invalid(why));
                }
                Some(step)
            }
            StepSpec::Pause(c) => {
                let (container, c_at) = self.container_name(c, names)?;
                if self.refuse_paused(&container, c_at, "pause") {
                    return Some(Step::Pause(container));
                }
                if running.contains(&container) {
                    self.tracked.paused.insert(container.clone());
                } else {
                    let why = format!("`{container}` is stopped at this step: only a running container can be paused");
                    self.error(c_at, ScenarioErrorKind::Invalid(why));
                }
                Some(Step::Pause(container))
            }
            StepSpec::Unpause(c) => {
                let (container, c_at) = self.container_name(c, names)?;
                if !self.tracked.paused.remove(&container) {
                    let why = format!("`{container}` is not paused at this step (add `- pause: {container}` before)");
                    self.error(c_at, ScenarioErrorKind::Invalid(why));
                }
                Some(Step::Unpause(container))
            }
            StepSpec::Disconnect(c) => {
                let (container, c_at) = self.container_name(c, names)?;
                if !self.tracked.disconnected.insert(container.clone()) {
                    let why = format!("`{container}` is already disconnected at this step");
                    self.error(c_at, ScenarioErrorKind::Invalid(why));
                }
                Some(Step::Disconnect(container))
            }
            StepSpec::Connect(c) => {
                let (container, c_at) = self.container_name(c, names)?;
                if !self.tracked.disconnected.remove(&container) {
                    let why = format!(
                        "`{container}` is on the network at this step: `connect` follows a `disconnect: {container}`"
                    );
                    self.error(c_at, ScenarioErrorKind::Invalid(why));
                }
                Some(Step::Connect(container))
            }
            StepSpec::Image(i) => self.image_step(i, names, at),
            StepSpec::File(f) => self.file_step(f, names, at),
            _ => None,
        }
    }

    /// A signal for `kill`: a name with or without `SIG`, or a number; `SIGKILL` when it is none.
    fn signal(&mut self, written: &Spanned<String>) -> String {
        let text = self.var(&written.value, loc(written));
        match crate::scenario::signal::parse_signal(&text) {
            Ok(signal) => signal,
            Err(reason) => {
                let names = crate::scenario::signal::signal_names();
                let hint = match did_you_mean(&text.to_ascii_uppercase(), &names) {
                    Some(near) => format!(" (did you mean `{near}`?)"),
                    None => " (write a name such as `KILL` or `SIGQUIT`, or a number)".to_owned(),
                };
                let why = format!("invalid signal `{text}`: {reason}{hint}");
                self.error(loc(written), ScenarioErrorKind::Invalid(why));
                "SIGKILL".to_owned()
            }
        }
    }

    /// A paused container takes no `replace`, `kill` or `pause`; `true` when reported.
    fn refuse_paused(&mut self, name: &str, at: Option<Loc>, what: &str) -> bool {
        if !self.tracked.paused.contains(name) {
            return false;
        }
        let why = format!("`{name}` is paused at this step: `{what}` it after `- unpause: {name}`");
        self.error(at, ScenarioErrorKind::Invalid(why));
        true
    }
}
