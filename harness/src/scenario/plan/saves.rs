//! Values saved by steps (`save:`) and their use as `${name}`: which names a scenario's steps save, and
//! where; text planned with them kept as references ([`Text`]), filled in when the step runs. A name a
//! step saves is never read from the environment: used before the step that saves it, or in a key whose
//! value must be known before the steps run, it is refused where it is written.

use std::cell::RefCell;

use super::planner::{Planner, loc};
use super::text::{JsonText, Text, json_references};
use crate::scenario::error::{Loc, ScenarioErrorKind};
use crate::scenario::interpolate::{InterpolateError, Resolved, interpolate_keeping};
use crate::scenario::model::{Spanned, StepEntry, StepSpec};

/// Where a step saves a value.
#[derive(Debug, Clone)]
struct SaveSite {
    name: String,
    /// The index of the step that saves it.
    step: usize,
    loc: Option<Loc>,
}

/// The values a scenario's steps save, and which step the planner is at.
#[derive(Debug, Clone, Default)]
pub(super) struct ScenarioSaves {
    sites: Vec<SaveSite>,
    /// The step being planned; `None` before the steps (containers) and outside scenarios.
    step: Option<usize>,
}

/// How a name used in a step's text is to be read.
enum Use {
    /// From the environment: no step saves it.
    Environment,
    /// A value saved by an earlier step.
    Saved,
    /// Saved by this step or a later one (at this line): not there yet.
    TooEarly(u32),
}

impl ScenarioSaves {
    /// The save sites of a scenario's steps, in order.
    pub(super) fn of(steps: &[Spanned<StepEntry>]) -> ScenarioSaves {
        let mut sites = Vec::new();
        for (index, step) in steps.iter().enumerate() {
            let save = match &step.value.kind {
                Some(StepSpec::Http(http)) => &http.save,
                Some(StepSpec::Exec(exec)) => &exec.save,
                _ => continue,
            };
            for (name, _) in &save.0 {
                sites.push(SaveSite { name: name.value.clone(), step: index, loc: loc(name) });
            }
        }
        ScenarioSaves { sites, step: None }
    }

    pub(super) fn at_step(&mut self, index: usize) {
        self.step = Some(index);
    }

    /// Plans what is fixed before the steps run (the scenario's own keys).
    pub(super) fn before_steps(&mut self) {
        self.step = None;
    }

    fn use_of(&self, name: &str) -> Use {
        let mut sites = self.sites.iter().filter(|s| s.name == name).peekable();
        if sites.peek().is_none() {
            return Use::Environment;
        }
        let current = self.step;
        let mut first_line = 0;
        for site in sites {
            if current.is_some_and(|step| site.step < step) {
                return Use::Saved;
            }
            if first_line == 0 {
                first_line = site.loc.map_or(0, |l| l.line);
            }
        }
        Use::TooEarly(first_line)
    }

    /// Whether a step of the scenario saves `name`.
    pub(super) fn is_saved(&self, name: &str) -> bool {
        self.sites.iter().any(|s| s.name == name)
    }
}

impl Planner<'_> {
    /// Text of a step that may use values saved by earlier steps: environment variables are filled in
    /// now, saved values kept for when the step runs.
    pub(super) fn text(&mut self, text: &str, at: Option<Loc>) -> Text {
        let too_early = RefCell::new(Vec::new());
        let saves = &self.saves;
        let lookup = |name: &str| match saves.use_of(name) {
            Use::Saved => Resolved::Kept,
            Use::TooEarly(line) => {
                too_early.borrow_mut().push((name.to_owned(), line));
                Resolved::Kept
            }
            Use::Environment => (self.lookup)(name).map_or(Resolved::Unset, Resolved::Value),
        };
        let result = interpolate_keeping(text, &lookup);
        for (name, saved_line) in too_early.into_inner() {
            self.error(at, ScenarioErrorKind::UsedBeforeSaved { name, saved_line });
        }
        match result {
            Ok(segments) => Text::from_segments(segments),
            Err(InterpolateError::Undefined(name)) => {
                self.error(at, ScenarioErrorKind::UndefinedVariable { name });
                Text::fixed(text)
            }
            Err(InterpolateError::Malformed(why)) => {
                self.error(at, ScenarioErrorKind::BadVariable(why));
                Text::fixed(text)
            }
        }
    }

    pub(super) fn text_opt(&mut self, text: &Option<String>, at: Option<Loc>) -> Option<Text> {
        text.as_ref().map(|t| self.text(t, at))
    }

    /// A JSON value whose strings may use saved values (and nothing else: JSON takes no environment
    /// variables, so that a `$` in it stays as written).
    pub(super) fn json_text(&mut self, value: &serde_json::Value, at: Option<Loc>) -> JsonText {
        let names = json_references(value, &|name| self.saves.is_saved(name));
        let mut saved = Vec::new();
        for name in names {
            match self.saves.use_of(&name) {
                Use::TooEarly(saved_line) => self.error(at, ScenarioErrorKind::UsedBeforeSaved { name, saved_line }),
                _ => saved.push(name),
            }
        }
        JsonText { value: value.clone(), saved }
    }

    /// Refuses saved values in `text`, for a key whose value must be known before the steps run; says
    /// whether it used one (then its text is not worth checking further).
    pub(super) fn refuse_saved(&mut self, text: &str, at: Option<Loc>) -> bool {
        let mut refused = false;
        for name in crate::scenario::interpolate::references(text) {
            match self.saves.use_of(&name) {
                Use::Environment => {}
                Use::Saved => {
                    self.error(at, ScenarioErrorKind::SavedValueNotHere { name });
                    refused = true;
                }
                Use::TooEarly(saved_line) => {
                    self.error(at, ScenarioErrorKind::UsedBeforeSaved { name, saved_line });
                    refused = true;
                }
            }
        }
        refused
    }

    /// A name to save a value under: a word, as variable names are.
    pub(super) fn save_name(&mut self, name: &Spanned<String>) -> Option<String> {
        let valid = !name.value.is_empty() && name.value.chars().all(|c| c.is_ascii_alphanumeric() || c == '_');
        if !valid {
            self.error(loc(name), ScenarioErrorKind::InvalidSaveName(name.value.clone()));
            return None;
        }
        Some(name.value.clone())
    }
}
